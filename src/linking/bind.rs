//! Scan-to-bind: a temporary `QR_STR_SCENE` code whose scene is a random
//! token (in `bind_scene`, with its expiry) naming one account. Scanning it,
//! as a follower (SCAN) or by following through it (subscribe), links that
//! follower to that account; no unionid is needed. A scene binds once.

use base64::Engine;
use chrono::{DateTime, Utc};
use entity::account;
use sea_orm::{DbErr, EntityTrait};

use super::LinkError;
use crate::db::sql::Sql;
use crate::services::Services;
use crate::wechat::QrCode;
use crate::wechat::qrcode::{EXPIRE_MAX_SECONDS, SCENE_MAX_CHARS};

/// Every bind scene starts so, telling them from other parametric codes.
pub const SCENE_PREFIX: &str = "bind_";
/// Life of a code when the caller names none.
pub const DEFAULT_EXPIRE_SECONDS: u32 = 1800;

/// A fresh scene: the prefix and 32 random bytes (48 characters in all).
fn new_scene() -> String {
    let random = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    let scene = format!("{SCENE_PREFIX}{random}");
    debug_assert!(scene.len() <= SCENE_MAX_CHARS);
    scene
}

/// Creates a bind code for `account_id`, valid `expire_seconds` (60 s to 30
/// days; default 30 minutes). The scene is stored before WeChat is asked, so
/// a code that exists always binds; a failed request removes it again.
pub async fn create_bind_qr_code(services: &Services, account_id: i64, expire_seconds: Option<i64>) -> Result<QrCode, LinkError> {
    let expire = match expire_seconds {
        None => DEFAULT_EXPIRE_SECONDS,
        Some(s) if (60..=EXPIRE_MAX_SECONDS as i64).contains(&s) => s as u32,
        Some(s) => return Err(LinkError::Invalid(format!("expire_seconds must be 60 to {EXPIRE_MAX_SECONDS} (30 days), not {s}"))),
    };
    let db = &services.db;
    account::Entity::find_by_id(account_id).one(db).await?.ok_or(LinkError::NoAccount(account_id))?;
    let scene = new_scene();
    let expires_at = Utc::now() + chrono::Duration::seconds(expire as i64);
    let mut sql = Sql::new("INSERT INTO bind_scene (scene, account_account, expires_at, created_at) VALUES (");
    sql.bind(scene.clone()).push(", ").bind(account_id).push(", ").bind(expires_at).push(", ").bind(Utc::now()).push(")");
    sql.execute(db).await?;
    match services.wechat.create_qrcode(&scene, expire).await {
        Ok(code) => {
            tracing::info!(account = account_id, expire_seconds = code.expire_seconds, "created a bind QR code");
            Ok(code)
        }
        Err(e) => {
            let mut sql = Sql::new("DELETE FROM bind_scene WHERE scene = ");
            sql.bind(scene);
            sql.execute(db).await?;
            Err(e.into())
        }
    }
}

/// Uses a live scene up: the account it names, or `None` when it is
/// unknown, expired or already used. Expired scenes are swept on the way.
pub(crate) async fn consume_scene(services: &Services, scene: &str) -> Result<Option<i64>, DbErr> {
    if !scene.starts_with(SCENE_PREFIX) {
        return Ok(None);
    }
    let now: DateTime<Utc> = Utc::now();
    let mut sweep = Sql::new("DELETE FROM bind_scene WHERE expires_at <= ");
    sweep.bind(now);
    sweep.execute(&services.db).await?;
    let mut sql = Sql::new("DELETE FROM bind_scene WHERE scene = ");
    sql.bind(scene).push(" RETURNING account_account");
    match sql.one(&services.db).await? {
        Some(row) => Ok(Some(row.try_get::<i64>("", "account_account")?)),
        None => Ok(None),
    }
}
