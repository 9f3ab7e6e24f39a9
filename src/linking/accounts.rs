//! Which account an openid WeChat names belongs to, for events that carry
//! only the openid (subscription popups and changes): the mini-program
//! openid is the account's `mp_openid`; a service-account openid is the
//! follower link, or else the user's unionid, which `user/info` gives for
//! followers and non-followers alike once the apps share an Open Platform
//! account.

use chrono::Utc;
use sea_orm::ConnectionTrait;

use super::LinkError;
use super::store::{self, map_unionid};
use crate::db::sql::Sql;
use crate::services::Services;

/// The account whose mini-program openid is `openid`.
pub async fn by_mp_openid(db: &impl ConnectionTrait, openid: &str) -> Result<Option<i64>, LinkError> {
    let mut sql = Sql::new("SELECT id FROM account WHERE mp_openid = ");
    sql.bind(openid.to_string());
    Ok(sql.one(db).await?.map(|r| r.try_get::<i64>("", "id")).transpose()?)
}

/// The account of the service-account user `openid`: the one linked to it,
/// else (asking WeChat's `user/info` for the unionid, and recording the
/// follower as WeChat describes them) the account of that unionid. A
/// follower found this way is linked, as a subscribe event would.
pub async fn by_oa_openid(services: &Services, openid: &str) -> Result<Option<i64>, LinkError> {
    let db = &services.db;
    let mut linked = Sql::new("SELECT id FROM account WHERE oaopenid = ");
    linked.bind(openid.to_string()).push(" ORDER BY id LIMIT 1");
    if let Some(row) = linked.one(db).await? {
        return Ok(Some(row.try_get("", "id")?));
    }
    let info = learn(services, openid).await?;
    let Some(unionid) = info.unionid.as_deref() else { return Ok(None) };
    let mut sql = Sql::new("SELECT id FROM account WHERE unionid = ");
    let unionid_p = sql.param(unionid.to_string());
    sql.push(&format!(
        "{unionid_p} OR (unionid IS NULL AND {} = {unionid_p}) ORDER BY id LIMIT 1",
        map_unionid(services.settings.database_kind, "oauth2_user_info_map")
    ));
    Ok(sql.one(db).await?.map(|r| r.try_get::<i64>("", "id")).transpose()?)
}

/// What WeChat's `user/info` says of `openid`, recorded: the follower row
/// (following or not, with the unionid), and for a follower the accounts
/// of that unionid linked to it. Events carry only the openid; this is how
/// the unionid (and whether they still follow) is learnt.
pub async fn learn(services: &Services, openid: &str) -> Result<crate::wechat::UserInfo, LinkError> {
    let info = services.wechat.user_info(openid).await?;
    let subscribe_time = if info.subscribe { Some(info.subscribe_time.unwrap_or_else(Utc::now)) } else { None };
    store::upsert_follower(&services.db, openid, info.unionid.as_deref(), info.subscribe, subscribe_time).await?;
    if let (true, Some(unionid)) = (info.subscribe, info.unionid.as_deref()) {
        store::link_by_unionid(&services.db, services.settings.database_kind, openid, unionid).await?;
    }
    Ok(info)
}
