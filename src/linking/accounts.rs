//! Which account an openid WeChat names belongs to, for events that carry
//! only the openid (subscription popups and changes): the mini-program
//! openid is the account's `mp_openid`; a service-account openid is the
//! follower link, or else the user's unionid, which `user/info` gives for
//! followers and non-followers alike once the apps share an Open Platform
//! account.

use chrono::Utc;
use sea_orm::ConnectionTrait;

use super::LinkError;
use super::store::{self, map_unionid, query_one};
use crate::services::Services;

/// The account whose mini-program openid is `openid`.
pub async fn by_mp_openid(db: &impl ConnectionTrait, openid: &str) -> Result<Option<i64>, LinkError> {
    let row = query_one(db, "SELECT id FROM account WHERE mp_openid = $1", vec![openid.into()]).await?;
    Ok(row.map(|r| r.try_get::<i64>("", "id")).transpose()?)
}

/// The account of the service-account user `openid`: the one linked to it,
/// else (asking WeChat's `user/info` for the unionid, and recording the
/// follower as WeChat describes them) the account of that unionid. A
/// follower found this way is linked, as a subscribe event would.
pub async fn by_oa_openid(services: &Services, openid: &str) -> Result<Option<i64>, LinkError> {
    let db = &services.db;
    let linked = query_one(db, "SELECT id FROM account WHERE oaopenid = $1 ORDER BY id LIMIT 1", vec![openid.into()]).await?;
    if let Some(row) = linked {
        return Ok(Some(row.try_get("", "id")?));
    }
    let info = services.wechat.user_info(openid).await?;
    let subscribe_time = if info.subscribe { Some(info.subscribe_time.unwrap_or_else(Utc::now)) } else { None };
    store::upsert_follower(db, openid, info.unionid.as_deref(), info.subscribe, subscribe_time).await?;
    let Some(unionid) = info.unionid.as_deref() else { return Ok(None) };
    if info.subscribe {
        store::link_by_unionid(db, services.settings.database_kind, openid, unionid).await?;
    }
    let sql = format!(
        "SELECT id FROM account WHERE unionid = $1 OR (unionid IS NULL AND {} = $1) ORDER BY id LIMIT 1",
        map_unionid(services.settings.database_kind, "oauth2_user_info_map")
    );
    let row = query_one(db, &sql, vec![unionid.into()]).await?;
    Ok(row.map(|r| r.try_get::<i64>("", "id")).transpose()?)
}
