//! `loginWithWechatMiniApp`: a `wx.login` code in, the account and a user
//! token out. The account is upserted by mp_openid with the login map Zion
//! keeps (`{"WECHAT":{"openId","unionId"}}`, merged into what is there) and
//! the `unionid` column; when that unionid already follows the service
//! account (a row in `oa_follower`), `oaopenid` is set in the same request.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::DbErr;
use serde_json::json;

use super::LinkError;
use super::store;
use crate::auth::{Caller, Role};
use crate::db::DatabaseKind;
use crate::db::sql::Sql;
use crate::services::Services;

/// How long a login token lasts.
pub const LOGIN_TOKEN_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// A logged-in account and its token.
#[derive(Clone, Debug)]
pub struct LoginOutcome {
    pub account_id: i64,
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

/// Logs a mini-program user in (see the module docs).
pub async fn login(services: &Services, code: &str) -> Result<LoginOutcome, LinkError> {
    let session = services.wechat.login(code).await?;
    let db = &services.db;
    let kind = services.settings.database_kind;
    let mut wechat = json!({ "openId": session.openid });
    if let Some(unionid) = &session.unionid {
        wechat["unionId"] = json!(unionid);
    }
    let mut sql = Sql::new("INSERT INTO account (created_at, updated_at, mp_openid, unionid, oauth2_user_info_map) VALUES (");
    let now = sql.param(Utc::now());
    sql.push(&format!("{now}, {now}, ")).bind(session.openid.clone()).push(", ").bind(session.unionid.clone());
    sql.push(", ").bind(json!({ "WECHAT": wechat })).push(&format!(
        ") ON CONFLICT (mp_openid) DO UPDATE SET unionid = COALESCE(excluded.unionid, account.unionid), \
         oauth2_user_info_map = {merged}, updated_at = excluded.updated_at RETURNING id",
        merged = merged_map(kind)
    ));
    let row = sql.one(db).await?.ok_or_else(|| DbErr::RecordNotFound("the upserted account".into()))?;
    let id: i64 = row.try_get("", "id")?;
    let linked_now = link_if_following(services, id).await?;
    let expires_at = Utc::now() + chrono::Duration::from_std(LOGIN_TOKEN_TTL).unwrap_or_default();
    let token = services.jwt.mint(Role::User, Some(&id.to_string()), LOGIN_TOKEN_TTL);
    tracing::info!(account = id, linked_now, "mini-program login");
    Ok(LoginOutcome { account_id: id, token, expires_at })
}

/// Links the account when its unionid (column, just filled from the login
/// map) belongs to a current follower; true when this login linked it.
async fn link_if_following(services: &Services, id: i64) -> Result<bool, DbErr> {
    let mut sql = Sql::new("UPDATE account SET oaopenid = f.openid, updated_at = ");
    sql.bind(Utc::now()).push(" FROM oa_follower f WHERE account.id = ").bind(id);
    sql.push(" AND f.unionid = account.unionid AND f.subscribed AND account.oaopenid IS DISTINCT FROM f.openid");
    Ok(sql.execute(&services.db).await? > 0)
}

/// The stored login map with the new `WECHAT` keys merged in: other keys,
/// and a unionId this login did not carry, are kept.
fn merged_map(kind: DatabaseKind) -> &'static str {
    match kind {
        DatabaseKind::Postgres => {
            "CASE WHEN jsonb_typeof(account.oauth2_user_info_map -> 'WECHAT') = 'object' \
             THEN account.oauth2_user_info_map || jsonb_build_object('WECHAT', \
                  (account.oauth2_user_info_map -> 'WECHAT') || (excluded.oauth2_user_info_map -> 'WECHAT')) \
             WHEN jsonb_typeof(account.oauth2_user_info_map) = 'object' \
             THEN account.oauth2_user_info_map || excluded.oauth2_user_info_map \
             ELSE excluded.oauth2_user_info_map END"
        }
        // json_patch merges objects recursively (RFC 7396).
        DatabaseKind::Sqlite => {
            "CASE WHEN json_valid(account.oauth2_user_info_map) AND json_type(account.oauth2_user_info_map) = 'object' \
             THEN json_patch(account.oauth2_user_info_map, excluded.oauth2_user_info_map) \
             ELSE excluded.oauth2_user_info_map END"
        }
    }
}

/// `oaOpenidByUnionid`: the service-account openid of a current follower.
/// A user may ask only about its own unionid (the `unionid` column or the
/// login map's), so it cannot probe who else follows.
pub async fn oa_openid_by_unionid(services: &Services, caller: &Caller, unionid: &str) -> Result<Option<String>, LinkError> {
    if unionid.is_empty() || unionid.len() > 128 {
        return Err(LinkError::Invalid("unionid must be 1 to 128 characters".into()));
    }
    if caller.role == Role::User {
        let own = match caller.account_id() {
            Some(id) => store::account_unionids(&services.db, services.settings.database_kind, id).await?,
            None => Vec::new(),
        };
        if !own.iter().any(|u| u == unionid) {
            return Err(LinkError::NotYours("a user may look up only its own unionid".into()));
        }
    }
    Ok(store::follower_openid(&services.db, unionid).await?)
}
