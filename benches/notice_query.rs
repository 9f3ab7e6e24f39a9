//! The seed's `notice` query over HTTP against the same question asked in
//! hand-written SQL, on SQLite and PostgreSQL, at 1,000 and 10,000 accounts
//! with 10 unread rows each (two types). Prints medians, their ratio and the
//! SQL statements one GraphQL request runs. On PostgreSQL at 10,000
//! accounts it also prints `EXPLAIN (ANALYZE, BUFFERS)` of the statement the
//! server compiled and of the hand-written one (see docs/performance.md).
//!
//! Run: `cargo bench --bench notice_query` (PostgreSQL from
//! `WXNOTIFY_TEST_POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432/test`).

#[path = "../tests/integration/common/mod.rs"]
mod common;
#[path = "support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use common::{TestDb, median, ms};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use serde_json::json;
use wxnotify::db::DatabaseKind;
use wxnotify::db::sql::Sql;

const NOTICE: &str = r#"query notice{ account(where:{_and:[ {oaopenid:{_is_null:false}}, {point_count:{id:{_is_null:false}}} {_or:[ {user_status:{_eq:"经纪人"}}, {user_status:{_eq:"新人"}}]} ]}){ oaopenid, chatnotice:point_count_aggregate(where:{type:{_eq:"聊天"}}){ aggregate{ count } }, nonchatnotice:point_count_aggregate(where:{type:{_eq:"投递邀约"}}){ aggregate{ count } } } }"#;

const HAND_WRITTEN: &str = r#"SELECT a.oaopenid,
    (SELECT count(*) FROM point_count p WHERE p.account_account = a.id AND p.type = '聊天') AS chat,
    (SELECT count(*) FROM point_count p WHERE p.account_account = a.id AND p.type = '投递邀约') AS job
  FROM account a
  WHERE a.oaopenid IS NOT NULL
    AND EXISTS (SELECT 1 FROM point_count p WHERE p.account_account = a.id)
    AND (a.user_status = '经纪人' OR a.user_status = '新人')
  ORDER BY a.id"#;

const ROUNDS: usize = 25;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    support::print_load_average();
    println!("seed `notice` query: GraphQL over HTTP vs hand-written SQL ({ROUNDS} rounds, medians)");
    println!(
        "{:<9} {:>9} {:>7} {:>13} {:>10} {:>7} {:>19}",
        "database", "accounts", "rows", "graphql (ms)", "sql (ms)", "ratio", "statements/request"
    );
    for backend in [DatabaseKind::Sqlite, DatabaseKind::Postgres] {
        for accounts in [1_000, 10_000] {
            let Some(db) = TestDb::new(backend).await else {
                println!("{backend:?}: PostgreSQL unreachable, skipped");
                continue;
            };
            run(&db, accounts).await;
        }
    }
}

async fn run(test_db: &TestDb, accounts: i64) {
    let (state, address, stop, server) = common::start_server(test_db.url.clone(), &[("SCHEDULER", "false")]).await;
    seed(&state.db, accounts).await;
    let token = wxnotify::auth::Jwt::new(&wxnotify::settings::Secret::new(common::JWT_SECRET)).mint(
        wxnotify::auth::Role::Admin,
        None,
        Duration::from_secs(3600),
    );
    let client = reqwest::Client::new();
    let body = json!({ "query": NOTICE });
    let mut graphql = Vec::with_capacity(ROUNDS);
    let mut statements = 0;
    let mut rows = 0;
    for round in 0..=ROUNDS {
        let before = state.sql_statements.get();
        let started = Instant::now();
        let response = client.post(format!("{address}/api/graphql")).bearer_auth(&token).json(&body).send().await.unwrap();
        let bytes = response.bytes().await.unwrap();
        let elapsed = started.elapsed();
        statements = state.sql_statements.get() - before;
        if round == 0 {
            let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            assert!(value.get("errors").is_none(), "{value}");
            rows = value["data"]["account"].as_array().unwrap().len();
            continue; // warm-up
        }
        graphql.push(elapsed);
    }
    let direct: DatabaseConnection = Database::connect(&test_db.url).await.unwrap();
    let mut sql = Vec::with_capacity(ROUNDS);
    for round in 0..=ROUNDS {
        let started = Instant::now();
        let result = Sql::new(HAND_WRITTEN).all(&direct).await.unwrap();
        let decoded: Vec<(String, i64, i64)> = result
            .iter()
            .map(|r| (r.try_get_by_index(0).unwrap(), r.try_get_by_index(1).unwrap(), r.try_get_by_index(2).unwrap()))
            .collect();
        let elapsed = started.elapsed();
        assert_eq!(decoded.len(), rows, "both paths answer the same question");
        if round > 0 {
            sql.push(elapsed);
        }
    }
    let (g, s) = (median(&mut graphql), median(&mut sql));
    if test_db.backend == DatabaseKind::Postgres && accounts == 10_000 {
        explain(&state, &client, &address, &token, &body, &direct).await;
    }
    println!(
        "{:<9} {:>9} {:>7} {:>13.2} {:>10.2} {:>7.2} {:>19}",
        format!("{:?}", test_db.backend).to_lowercase(),
        accounts,
        rows,
        ms(g),
        ms(s),
        ms(g) / ms(s),
        statements
    );
    direct.close().await.ok();
    let _ = stop.send(());
    server.await.ok();
}

/// `EXPLAIN (ANALYZE, BUFFERS)` of the statements one request compiled and
/// of the hand-written SQL.
async fn explain(
    state: &wxnotify::AppState,
    client: &reqwest::Client,
    address: &str,
    token: &str,
    body: &serde_json::Value,
    direct: &DatabaseConnection,
) {
    state.sql_statements.record();
    client.post(format!("{address}/api/graphql")).bearer_auth(token).json(body).send().await.unwrap().bytes().await.unwrap();
    let statements = state.sql_statements.take_recorded();
    let show = |title: String, rows: Vec<sea_orm::QueryResult>| {
        println!("--- {title}");
        for row in rows {
            println!("    {}", row.try_get::<String>("", "QUERY PLAN").unwrap_or_default());
        }
    };
    for statement in statements.into_iter().filter(|s| s.sql.contains("\"account\"")) {
        let mut explained = statement.clone();
        explained.sql = format!("EXPLAIN (ANALYZE, BUFFERS) {}", statement.sql);
        let rows = state.db.query_all_raw(explained).await.unwrap_or_else(|e| panic!("{e}: {}", statement.sql));
        show(format!("the statement the server compiled:\n{}", statement.sql), rows);
    }
    let rows = Sql::new(format!("EXPLAIN (ANALYZE, BUFFERS) {HAND_WRITTEN}")).all(direct).await.unwrap();
    show("the hand-written SQL".into(), rows);
}

/// `accounts` accounts (4 in 5 following, statuses 经纪人/新人/游客), each with
/// 10 unread rows alternating 聊天 and 投递邀约, written in two statements.
async fn seed(db: &DatabaseConnection, accounts: i64) {
    let now = chrono::Utc::now();
    // Each script is given the placeholders of now and the account count.
    let run = |script: fn(&str, &str) -> String| {
        let mut sql = Sql::default();
        let (at, count) = (sql.param(now), sql.param(accounts));
        sql.push(&script(&at, &count));
        async move { sql.execute(db).await.unwrap() }
    };
    run(|now, accounts| {
        format!(
            r#"WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < {accounts})
        INSERT INTO account (created_at, updated_at, nickname, user_status, oaopenid)
        SELECT {now}, {now}, 'user' || n,
               CASE WHEN n % 3 = 0 THEN '游客' WHEN n % 3 = 1 THEN '经纪人' ELSE '新人' END,
               CASE WHEN n % 5 = 0 THEN NULL ELSE 'oa-' || n END
        FROM g"#
        )
    })
    .await;
    run(|now, accounts| {
        format!(
            r#"WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < {accounts} * 10)
        INSERT INTO point_count (created_at, updated_at, account_account, type, sender, content)
        SELECT {now}, {now}, (n - 1) / 10 + 1, CASE WHEN n % 2 = 0 THEN '聊天' ELSE '投递邀约' END, 'sender', 'content'
        FROM g"#
        )
    })
    .await;
    db.execute_unprepared("ANALYZE").await.unwrap();
}
