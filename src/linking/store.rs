//! The link SQL shared by login, sync, callback and bind: followers, links
//! by unionid (the `unionid` column or `oauth2_user_info_map.WECHAT.unionId`),
//! unlinks. Statements are built with [`Sql`], once for both databases where
//! their SQL agrees (`UPDATE ... FROM`, `IS DISTINCT FROM`) and per database
//! kind where it does not (reading JSON).

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr};

use crate::db::DatabaseKind;
use crate::db::sql::Sql;

/// `column`'s `WECHAT.unionId` as text, NULL when absent or not JSON.
pub(crate) fn map_unionid(kind: DatabaseKind, column: &str) -> String {
    match kind {
        DatabaseKind::Postgres => format!("({column} -> 'WECHAT' ->> 'unionId')"),
        // Text that is not JSON would make json_extract fail the whole statement.
        DatabaseKind::Sqlite => format!("(CASE WHEN json_valid({column}) THEN json_extract({column}, '$.WECHAT.unionId') END)"),
    }
}

/// Records what WeChat says of one follower. A missing unionid or
/// subscribe_time keeps the one already known.
pub(crate) async fn upsert_follower(
    db: &impl ConnectionTrait,
    openid: &str,
    unionid: Option<&str>,
    subscribed: bool,
    subscribe_time: Option<DateTime<Utc>>,
) -> Result<(), DbErr> {
    let mut sql = Sql::new("INSERT INTO oa_follower (created_at, updated_at, openid, unionid, subscribed, subscribe_time) VALUES (");
    let now = sql.param(Utc::now());
    sql.push(&format!("{now}, {now}, ")).bind(openid).push(", ").bind(unionid.map(str::to_string)).push(", ").bind(subscribed);
    sql.push(", ").bind(subscribe_time).push(
        ") ON CONFLICT (openid) DO UPDATE SET unionid = COALESCE(excluded.unionid, oa_follower.unionid), \
         subscribed = excluded.subscribed, \
         subscribe_time = COALESCE(excluded.subscribe_time, oa_follower.subscribe_time), \
         updated_at = excluded.updated_at",
    );
    sql.execute(db).await.map(|_| ())
}

/// Links every account of `unionid` (by column, or by its login map, which
/// then also fills the column) to `openid`; returns the accounts changed.
pub(crate) async fn link_by_unionid(db: &impl ConnectionTrait, kind: DatabaseKind, openid: &str, unionid: &str) -> Result<u64, DbErr> {
    let mut sql = Sql::default();
    let (openid, unionid, now) = (sql.param(openid), sql.param(unionid), sql.param(Utc::now()));
    sql.push(&format!(
        "UPDATE account SET oaopenid = {openid}, unionid = {unionid}, updated_at = {now} \
         WHERE (unionid = {unionid} OR (unionid IS NULL AND {map} = {unionid})) \
         AND (oaopenid IS DISTINCT FROM {openid} OR unionid IS NULL)",
        map = map_unionid(kind, "oauth2_user_info_map")
    ));
    sql.execute(db).await
}

/// Links one account to `openid` (scan-to-bind), filling its unionid when
/// it had none.
pub(crate) async fn link_account(db: &impl ConnectionTrait, account_id: i64, openid: &str, unionid: Option<&str>) -> Result<u64, DbErr> {
    let mut sql = Sql::new("UPDATE account SET oaopenid = ");
    sql.bind(openid).push(", unionid = COALESCE(unionid, ").bind(unionid.map(str::to_string)).push("), updated_at = ").bind(Utc::now());
    sql.push(" WHERE id = ").bind(account_id);
    sql.execute(db).await
}

/// What a send learnt from WeChat: the accounts whose `oaopenid` is one of
/// `refused` stop pointing at it (43004 / 40003), and the followers in
/// `unfollowed` are marked gone (43004). Returns the accounts unlinked.
pub(crate) async fn unlink_refused(db: &impl ConnectionTrait, refused: &[String], unfollowed: &[String]) -> Result<u64, DbErr> {
    if refused.is_empty() {
        return Ok(0);
    }
    let now = Utc::now();
    let mut sql = Sql::new("UPDATE account SET oaopenid = NULL, updated_at = ");
    sql.bind(now).push(" WHERE oaopenid IN ").list(refused.iter().cloned());
    let accounts = sql.execute(db).await?;
    if !unfollowed.is_empty() {
        let mut sql = Sql::new("UPDATE oa_follower SET subscribed = false, updated_at = ");
        sql.bind(now).push(" WHERE openid IN ").list(unfollowed.iter().cloned());
        sql.execute(db).await?;
    }
    Ok(accounts)
}

/// Clears `oaopenid` wherever it is `openid` (the follower left).
pub(crate) async fn unlink_openid(db: &impl ConnectionTrait, openid: &str) -> Result<u64, DbErr> {
    let mut sql = Sql::new("UPDATE account SET oaopenid = NULL, updated_at = ");
    sql.bind(Utc::now()).push(" WHERE oaopenid = ").bind(openid);
    sql.execute(db).await
}

/// The service-account openid of a current follower with `unionid`.
pub(crate) async fn follower_openid(db: &impl ConnectionTrait, unionid: &str) -> Result<Option<String>, DbErr> {
    let mut sql = Sql::new("SELECT openid FROM oa_follower WHERE unionid = ");
    sql.bind(unionid).push(" AND subscribed ORDER BY updated_at DESC LIMIT 1");
    match sql.one(db).await? {
        Some(row) => Ok(Some(row.try_get::<String>("", "openid")?)),
        None => Ok(None),
    }
}

/// The unionids an account is known by: its `unionid` column and its login
/// map's `WECHAT.unionId` (either may be missing).
pub(crate) async fn account_unionids(db: &impl ConnectionTrait, kind: DatabaseKind, account_id: i64) -> Result<Vec<String>, DbErr> {
    let mut sql = Sql::new(format!("SELECT unionid, {} AS mapped FROM account WHERE id = ", map_unionid(kind, "oauth2_user_info_map")));
    sql.bind(account_id);
    let Some(row) = sql.one(db).await? else { return Ok(Vec::new()) };
    let column: Option<String> = row.try_get("", "unionid")?;
    let mapped: Option<String> = row.try_get("", "mapped")?;
    Ok(column.into_iter().chain(mapped).collect())
}
