//! The seed's table documents, verbatim, and a loader for tables of any
//! size, shared by the query-plan tests and the `seed_documents` benchmark.

use sea_orm::{ConnectionTrait, DatabaseConnection, Value};
use serde_json::json;
use wxnotify::db::DatabaseKind;
use wxnotify::db::sql::Sql;

/// The follower sync's update, once per follower (`mutation accountupdate`).
pub const SYNC_UPDATE: &str = r#"mutation accountupdate($unionid:String,$unionobject:jsonb,$openid:String){ update_account(where:{oauth2_user_info_map:{_contains:$unionobject}},_set:{unionid:$unionid,oaopenid:$openid}){ affected_rows returning{ id unionid oaopenid } } }"#;

/// The digest's `notice` query.
pub const NOTICE: &str = r#"query notice{ account(where:{_and:[ {oaopenid:{_is_null:false}}, {point_count:{id:{_is_null:false}}} {_or:[ {user_status:{_eq:"经纪人"}}, {user_status:{_eq:"新人"}}]} ]}){ oaopenid, chatnotice:point_count_aggregate(where:{type:{_eq:"聊天"}}){ aggregate{ count } }, nonchatnotice:point_count_aggregate(where:{type:{_eq:"投递邀约"}}){ aggregate{ count } } } }"#;

/// The access-token cache read.
pub const GETCACHE: &str = "query getcache{ actok{ tok expiredtime } } ";

/// The real-time notice throttle's upsert.
pub const NOTICE_UPSERT: &str = r#"mutation upsertNotice($account: bigint!, $expire: timestamptz!) {
    insert_notice_one(
        object: {account_account: $account, expire_time: $expire},
        on_conflict: {constraint: notice_account_account_key, update_columns: [expire_time]}
    ) { id account_account expire_time }
}"#;

/// How many accounts carry unread `point_count` rows, whatever the table
/// size, so the `notice` query's answer does not grow with it.
pub const UNREAD_ACCOUNTS: i64 = 100;

/// Unread rows per such account: seven 聊天, three 投递邀约.
const UNREAD_TYPES: [&str; 10] = ["聊天", "聊天", "聊天", "聊天", "聊天", "聊天", "聊天", "投递邀约", "投递邀约", "投递邀约"];

/// The accounts with unread rows: spread over the whole id range (so no
/// plan finds them by reading a prefix), of every status and both states.
pub fn unread_accounts(accounts: i64) -> Vec<i64> {
    let stride = (accounts / UNREAD_ACCOUNTS).max(1);
    (0..UNREAD_ACCOUNTS).map(|k| k * stride + 1 + k % stride.min(6)).filter(|n| *n <= accounts).collect()
}

/// The unionid account `n` logged in with (only in its login map, as Zion
/// stores it).
pub fn unionid(n: i64) -> String {
    format!("uSeed{n:07}")
}

/// `accounts` accounts as Zion's login leaves them (mp openid and the login
/// map; no `unionid` column), every second one following, three statuses in
/// turn; [`unread_accounts`] have ten unread rows each. Then statistics, so
/// planners see the real sizes.
pub async fn load(db: &DatabaseConnection, accounts: i64) {
    let now = chrono::Utc::now();
    let ids: Vec<i64> = (1..=accounts).collect();
    for chunk in ids.chunks(2000) {
        let mut sql =
            Sql::new("INSERT INTO account (id, created_at, updated_at, mp_openid, oaopenid, user_status, oauth2_user_info_map) VALUES ");
        for (i, n) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push(",");
            }
            let status = ["经纪人", "新人", "游客"][(*n % 3) as usize];
            sql.list([
                Value::from(*n),
                now.into(),
                now.into(),
                format!("oMp{n}").into(),
                (n % 2 == 0).then(|| format!("oOa{n}")).into(),
                status.into(),
                json!({ "WECHAT": { "openId": format!("oMp{n}"), "unionId": unionid(*n) } }).into(),
            ]);
        }
        sql.execute(db).await.expect("loading accounts");
    }
    let mut sql = Sql::new("INSERT INTO point_count (created_at, updated_at, account_account, type, sender, content) VALUES ");
    for n in unread_accounts(accounts) {
        for (k, kind) in UNREAD_TYPES.iter().enumerate() {
            if !sql.params.is_empty() {
                sql.push(",");
            }
            sql.list([Value::from(now), now.into(), n.into(), (*kind).into(), format!("sender{k}").into(), "hello".into()]);
        }
    }
    sql.execute(db).await.expect("loading unread rows");
    if DatabaseKind::of(db) == DatabaseKind::Postgres {
        // Explicit ids above: move the sequence past them.
        db.execute_unprepared("SELECT setval(pg_get_serial_sequence('account', 'id'), (SELECT max(id) FROM account))")
            .await
            .expect("setval");
    }
    db.execute_unprepared("ANALYZE").await.expect("ANALYZE");
}
