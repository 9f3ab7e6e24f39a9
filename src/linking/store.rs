//! The link SQL shared by login, sync, callback and bind: followers, links
//! by unionid (the `unionid` column or `oauth2_user_info_map.WECHAT.unionId`),
//! unlinks. Statements are written once for both databases where their SQL
//! agrees (`$n` parameters, `UPDATE ... FROM`, `IS DISTINCT FROM`) and per
//! dialect where it does not (reading JSON).

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr, QueryResult, Statement, Value};

use crate::settings::DatabaseKind;

/// Runs `sql` with `values`; returns the rows it changed.
pub(crate) async fn execute(db: &impl ConnectionTrait, sql: &str, values: Vec<Value>) -> Result<u64, DbErr> {
    let statement = Statement::from_sql_and_values(db.get_database_backend(), sql, values);
    Ok(db.execute_raw(statement).await?.rows_affected())
}

/// Runs a query expected to return at most one row.
pub(crate) async fn query_one(db: &impl ConnectionTrait, sql: &str, values: Vec<Value>) -> Result<Option<QueryResult>, DbErr> {
    db.query_one_raw(Statement::from_sql_and_values(db.get_database_backend(), sql, values)).await
}

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
    let sql = "INSERT INTO oa_follower (created_at, updated_at, openid, unionid, subscribed, subscribe_time) \
               VALUES ($1, $1, $2, $3, $4, $5) \
               ON CONFLICT (openid) DO UPDATE SET unionid = COALESCE(excluded.unionid, oa_follower.unionid), \
               subscribed = excluded.subscribed, \
               subscribe_time = COALESCE(excluded.subscribe_time, oa_follower.subscribe_time), \
               updated_at = excluded.updated_at";
    let values = vec![Utc::now().into(), openid.into(), unionid.map(str::to_string).into(), subscribed.into(), subscribe_time.into()];
    execute(db, sql, values).await.map(|_| ())
}

/// Links every account of `unionid` (by column, or by its login map, which
/// then also fills the column) to `openid`; returns the accounts changed.
pub(crate) async fn link_by_unionid(db: &impl ConnectionTrait, kind: DatabaseKind, openid: &str, unionid: &str) -> Result<u64, DbErr> {
    let sql = format!(
        "UPDATE account SET oaopenid = $1, unionid = $2, updated_at = $3 \
         WHERE (unionid = $2 OR (unionid IS NULL AND {map} = $2)) \
         AND (oaopenid IS DISTINCT FROM $1 OR unionid IS NULL)",
        map = map_unionid(kind, "oauth2_user_info_map")
    );
    execute(db, &sql, vec![openid.into(), unionid.into(), Utc::now().into()]).await
}

/// Links one account to `openid` (scan-to-bind), filling its unionid when
/// it had none.
pub(crate) async fn link_account(db: &impl ConnectionTrait, account_id: i64, openid: &str, unionid: Option<&str>) -> Result<u64, DbErr> {
    let sql = "UPDATE account SET oaopenid = $2, unionid = COALESCE(unionid, $3), updated_at = $4 WHERE id = $1";
    execute(db, sql, vec![account_id.into(), openid.into(), unionid.map(str::to_string).into(), Utc::now().into()]).await
}

/// What a send learnt from WeChat: the accounts whose `oaopenid` is one of
/// `refused` stop pointing at it (43004 / 40003), and the followers in
/// `unfollowed` are marked gone (43004). Returns the accounts unlinked.
pub(crate) async fn unlink_refused(db: &impl ConnectionTrait, refused: &[String], unfollowed: &[String]) -> Result<u64, DbErr> {
    if refused.is_empty() {
        return Ok(0);
    }
    let now = Utc::now();
    let accounts = execute(
        db,
        &format!("UPDATE account SET oaopenid = NULL, updated_at = $1 WHERE oaopenid IN ({})", placeholders(2, refused.len())),
        std::iter::once(now.into()).chain(refused.iter().map(|o| o.clone().into())).collect(),
    )
    .await?;
    if !unfollowed.is_empty() {
        let sql =
            format!("UPDATE oa_follower SET subscribed = false, updated_at = $1 WHERE openid IN ({})", placeholders(2, unfollowed.len()));
        execute(db, &sql, std::iter::once(now.into()).chain(unfollowed.iter().map(|o| o.clone().into())).collect()).await?;
    }
    Ok(accounts)
}

/// `$from, $from+1, …` for `count` parameters.
fn placeholders(from: usize, count: usize) -> String {
    (from..from + count).map(|n| format!("${n}")).collect::<Vec<_>>().join(", ")
}

/// Clears `oaopenid` wherever it is `openid` (the follower left).
pub(crate) async fn unlink_openid(db: &impl ConnectionTrait, openid: &str) -> Result<u64, DbErr> {
    let sql = "UPDATE account SET oaopenid = NULL, updated_at = $2 WHERE oaopenid = $1";
    execute(db, sql, vec![openid.into(), Utc::now().into()]).await
}

/// The service-account openid of a current follower with `unionid`.
pub(crate) async fn follower_openid(db: &impl ConnectionTrait, unionid: &str) -> Result<Option<String>, DbErr> {
    let sql = "SELECT openid FROM oa_follower WHERE unionid = $1 AND subscribed ORDER BY updated_at DESC LIMIT 1";
    match query_one(db, sql, vec![unionid.into()]).await? {
        Some(row) => Ok(Some(row.try_get::<String>("", "openid")?)),
        None => Ok(None),
    }
}

/// The unionids an account is known by: its `unionid` column and its login
/// map's `WECHAT.unionId` (either may be missing).
pub(crate) async fn account_unionids(db: &impl ConnectionTrait, kind: DatabaseKind, account_id: i64) -> Result<Vec<String>, DbErr> {
    let sql = format!("SELECT unionid, {} AS mapped FROM account WHERE id = $1", map_unionid(kind, "oauth2_user_info_map"));
    let Some(row) = query_one(db, &sql, vec![account_id.into()]).await? else { return Ok(Vec::new()) };
    let column: Option<String> = row.try_get("", "unionid")?;
    let mapped: Option<String> = row.try_get("", "mapped")?;
    Ok(column.into_iter().chain(mapped).collect())
}
