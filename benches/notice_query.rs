//! The seed's `notice` query over HTTP against the same question asked in
//! hand-written SQL, on SQLite and PostgreSQL, at 1,000, 10,000 and 100,000
//! accounts with 10 unread rows each (two types). Two hand-written
//! baselines: the correlated subqueries a person writes first (the shape
//! Hasura compiles), and the best single statement, one join of account
//! with point_count grouped by account. Prints medians, both ratios and the
//! SQL statements one GraphQL request runs. On PostgreSQL at 10,000
//! accounts it also prints `EXPLAIN (ANALYZE, BUFFERS)` of the statement the
//! server compiled and of both hand-written ones, and runs the PostGraphile
//! peer (`benches/peers/postgraphile/`, v4 with the aggregates and filter
//! plugins, over the same database): single-request latency and the
//! throughput of 8 concurrent clients, each against wxnotify's
//! (`WXNOTIFY_BENCH_PEERS=0` skips the peer; `NODE` and `NPM` pick the
//! programs). `WXNOTIFY_BENCH_AGGREGATES` and `WXNOTIFY_BENCH_JSON` pick the
//! server's aggregate plan and where its JSON is put together,
//! `WXNOTIFY_BENCH_DATABASES=sqlite|postgres` one database. See
//! docs/performance.md.
//!
//! Run: `cargo bench --bench notice_query` (PostgreSQL from
//! `WXNOTIFY_TEST_POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432/test?sslmode=disable`).

#[path = "../tests/integration/common/mod.rs"]
mod common;
#[path = "support/mod.rs"]
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{TestDb, median, ms};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use serde_json::json;
use wxnotify::db::DatabaseKind;
use wxnotify::db::sql::Sql;

const NOTICE: &str = r#"query notice{ account(where:{_and:[ {oaopenid:{_is_null:false}}, {point_count:{id:{_is_null:false}}} {_or:[ {user_status:{_eq:"经纪人"}}, {user_status:{_eq:"新人"}}]} ]}){ oaopenid, chatnotice:point_count_aggregate(where:{type:{_eq:"聊天"}}){ aggregate{ count } }, nonchatnotice:point_count_aggregate(where:{type:{_eq:"投递邀约"}}){ aggregate{ count } } } }"#;

/// The question as correlated subqueries, one per count.
const CORRELATED: &str = r#"SELECT a.oaopenid,
    (SELECT count(*) FROM point_count p WHERE p.account_account = a.id AND p.type = '聊天') AS chat,
    (SELECT count(*) FROM point_count p WHERE p.account_account = a.id AND p.type = '投递邀约') AS job
  FROM account a
  WHERE a.oaopenid IS NOT NULL
    AND EXISTS (SELECT 1 FROM point_count p WHERE p.account_account = a.id)
    AND (a.user_status = '经纪人' OR a.user_status = '新人')
  ORDER BY a.id"#;

/// The question as one grouped join (the inner join keeps the accounts that
/// have rows), PostgreSQL's spelling.
const GROUPED_POSTGRES: &str = r#"SELECT a.oaopenid,
    count(*) FILTER (WHERE p.type = '聊天') AS chat,
    count(*) FILTER (WHERE p.type = '投递邀约') AS job
  FROM account a JOIN point_count p ON p.account_account = a.id
  WHERE a.oaopenid IS NOT NULL AND (a.user_status = '经纪人' OR a.user_status = '新人')
  GROUP BY a.id
  ORDER BY a.id"#;

/// [`GROUPED_POSTGRES`] in SQLite's spelling.
const GROUPED_SQLITE: &str = r#"SELECT a.oaopenid,
    sum(p.type = '聊天') AS chat,
    sum(p.type = '投递邀约') AS job
  FROM account a JOIN point_count p ON p.account_account = a.id
  WHERE a.oaopenid IS NOT NULL AND (a.user_status = '经纪人' OR a.user_status = '新人')
  GROUP BY a.id
  ORDER BY a.id"#;

/// Requests the 8 concurrent clients share, for wxnotify and the peer.
const CONCURRENT_REQUESTS: usize = 80;
const CLIENTS: usize = 8;

const ROUNDS: usize = 25;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    support::print_load_average();
    println!("seed `notice` query: GraphQL over HTTP vs hand-written SQL ({ROUNDS} rounds, medians)");
    println!(
        "{:<9} {:>9} {:>7} {:>13} {:>16} {:>13} {:>12} {:>11} {:>11}",
        "database", "accounts", "rows", "graphql (ms)", "correlated (ms)", "grouped (ms)", "/correlated", "/grouped", "statements"
    );
    // `WXNOTIFY_BENCH_DATABASES=sqlite|postgres` measures one database.
    let only = std::env::var("WXNOTIFY_BENCH_DATABASES").ok();
    for backend in [DatabaseKind::Sqlite, DatabaseKind::Postgres] {
        if only.as_deref().is_some_and(|only| !only.eq_ignore_ascii_case(&format!("{backend:?}"))) {
            continue;
        }
        for accounts in [1_000, 10_000, 100_000] {
            let Some(db) = TestDb::new(backend).await else {
                println!("{backend:?}: PostgreSQL unreachable, skipped");
                continue;
            };
            run(&db, accounts).await;
        }
    }
}

/// Rows of the answer and the sums of its two counts, to check that every
/// path answers the same question.
type Answer = (usize, i64, i64);

async fn run(test_db: &TestDb, accounts: i64) {
    // `WXNOTIFY_BENCH_AGGREGATES=correlated|grouped|auto` measures one plan
    // of the table engine's aggregates (see `hasura::sql::select`).
    let plan = std::env::var("WXNOTIFY_BENCH_AGGREGATES").unwrap_or_else(|_| "auto".into());
    // `WXNOTIFY_BENCH_JSON=auto|database|server`: where the rows become JSON
    // (the server's `WXNOTIFY_TABLE_JSON`).
    let json_rows = std::env::var("WXNOTIFY_BENCH_JSON").unwrap_or_else(|_| "auto".into());
    let (state, address, stop, server) = common::start_server(
        test_db.url.clone(),
        &[("SCHEDULER", "false"), ("TABLE_AGGREGATES", plan.as_str()), ("TABLE_JSON", json_rows.as_str())],
    )
    .await;
    seed(&state.db, accounts).await;
    // The seeding analyzed the tables; the server reads SQLite's statistics
    // at start and after each hourly refresh, so read them now as it would.
    state.engine.refresh_statistics().await.unwrap();
    let token = wxnotify::auth::Jwt::new(&wxnotify::settings::Secret::new(common::JWT_SECRET)).mint(
        wxnotify::auth::Role::Admin,
        None,
        Duration::from_secs(3600),
    );
    let client = reqwest::Client::new();
    let body = json!({ "query": NOTICE });
    let url = format!("{address}/api/graphql");
    let mut graphql = Vec::with_capacity(ROUNDS);
    let mut statements = 0;
    let mut answer = (0, 0, 0);
    for round in 0..=ROUNDS {
        let before = state.sql_statements.get();
        let started = Instant::now();
        let response = client.post(&url).bearer_auth(&token).json(&body).send().await.unwrap();
        let bytes = response.bytes().await.unwrap();
        let elapsed = started.elapsed();
        statements = state.sql_statements.get() - before;
        if round == 0 {
            answer = graphql_answer(&bytes);
            continue; // warm-up
        }
        graphql.push(elapsed);
    }
    let direct: DatabaseConnection = Database::connect(&test_db.url).await.unwrap();
    let grouped_sql = match test_db.backend {
        DatabaseKind::Postgres => GROUPED_POSTGRES,
        DatabaseKind::Sqlite => GROUPED_SQLITE,
    };
    let correlated = time_sql(&direct, CORRELATED, answer).await;
    let grouped = time_sql(&direct, grouped_sql, answer).await;
    let g = median(&mut graphql);
    let big = test_db.backend == DatabaseKind::Postgres && accounts == 10_000;
    if big {
        explain(&state, &client, &address, &token, &body, &direct, &[("correlated", CORRELATED), ("grouped", grouped_sql)]).await;
    }
    println!(
        "{:<9} {:>9} {:>7} {:>13.2} {:>16.2} {:>13.2} {:>11.2}× {:>10.2}× {:>11}",
        format!("{:?}", test_db.backend).to_lowercase(),
        accounts,
        answer.0,
        ms(g),
        ms(correlated),
        ms(grouped),
        ms(g) / ms(correlated),
        ms(g) / ms(grouped),
        statements
    );
    if big && std::env::var("WXNOTIFY_BENCH_PEERS").as_deref() != Ok("0") {
        let throughput = concurrent(&client, &url, &token, &body).await;
        println!(
            "postgres  wxnotify with {CLIENTS} clients: {CONCURRENT_REQUESTS} requests in {} ({:.1} requests/s)",
            support::secs(throughput),
            CONCURRENT_REQUESTS as f64 / throughput.as_secs_f64()
        );
        match postgraphile(test_db).await {
            Some(peer) => {
                let peer_answer = (peer.rows, peer.chat, peer.job);
                assert_eq!(peer_answer, answer, "PostGraphile and wxnotify answer the same (rows, 聊天 total, 投递邀约 total)");
                println!(
                    "postgres  postgraphile: median {:.2} ms, {CLIENTS} clients {:.1} requests/s (same answer: {} rows, {} + {} counted)",
                    peer.median_ms, peer.per_second, answer.0, answer.1, answer.2
                );
                println!(
                    "postgres  wxnotify vs postgraphile: single request {}; {CLIENTS} clients {}",
                    support::faster_than(g, Duration::from_secs_f64(peer.median_ms / 1000.0), "peer"),
                    support::faster_than(
                        throughput,
                        Duration::from_secs_f64(CONCURRENT_REQUESTS as f64 / peer.per_second),
                        &format!("peer at the same {CONCURRENT_REQUESTS} requests"),
                    ),
                );
            }
            None => println!("postgres  postgraphile peer did not finish; see its output above"),
        }
    }
    direct.close().await.ok();
    let _ = stop.send(());
    server.await.ok();
}

/// The answer of one GraphQL response.
fn graphql_answer(bytes: &[u8]) -> Answer {
    let value: serde_json::Value = serde_json::from_slice(bytes).unwrap();
    assert!(value.get("errors").is_none(), "{value}");
    let rows = value["data"]["account"].as_array().unwrap();
    let sum = |key: &str| rows.iter().map(|r| r[key]["aggregate"]["count"].as_i64().unwrap()).sum();
    (rows.len(), sum("chatnotice"), sum("nonchatnotice"))
}

/// The median time of `sql` (decoded to rows), checked against `answer`.
async fn time_sql(direct: &DatabaseConnection, sql: &str, answer: Answer) -> Duration {
    let mut times = Vec::with_capacity(ROUNDS);
    for round in 0..=ROUNDS {
        let started = Instant::now();
        let result = Sql::new(sql).all(direct).await.unwrap();
        let decoded: Vec<(String, i64, i64)> = result
            .iter()
            .map(|r| (r.try_get_by_index(0).unwrap(), r.try_get_by_index(1).unwrap(), r.try_get_by_index(2).unwrap()))
            .collect();
        let elapsed = started.elapsed();
        let got = (decoded.len(), decoded.iter().map(|d| d.1).sum(), decoded.iter().map(|d| d.2).sum());
        assert_eq!(got, answer, "both paths answer the same question");
        if round > 0 {
            times.push(elapsed);
        }
    }
    median(&mut times)
}

/// [`CONCURRENT_REQUESTS`] requests from [`CLIENTS`] clients at once.
async fn concurrent(client: &reqwest::Client, url: &str, token: &str, body: &serde_json::Value) -> Duration {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (client, url, token, body, next) = (client.clone(), url.to_string(), token.to_string(), body.clone(), next.clone());
            tokio::spawn(async move {
                while next.fetch_add(1, Ordering::Relaxed) < CONCURRENT_REQUESTS {
                    let response = client.post(&url).bearer_auth(&token).json(&body).send().await.unwrap();
                    assert!(response.status().is_success());
                    response.bytes().await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    started.elapsed()
}

/// What the PostGraphile peer prints.
#[derive(serde::Deserialize)]
struct PeerRun {
    rows: usize,
    chat: i64,
    job: i64,
    median_ms: f64,
    per_second: f64,
}

/// Runs `benches/peers/postgraphile/bench.js` over the bench's database,
/// installing its packages (`npm ci`) when they are missing.
async fn postgraphile(test_db: &TestDb) -> Option<PeerRun> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/peers/postgraphile");
    let node = std::env::var("NODE").unwrap_or_else(|_| "node".into());
    let npm = std::env::var("NPM").unwrap_or_else(|_| "npm".into());
    if !std::path::Path::new(dir).join("node_modules").exists() {
        println!("postgres  installing the PostGraphile peer ({npm} ci in {dir})");
        let installed = tokio::process::Command::new(&npm).args(["ci", "--no-audit", "--no-fund"]).current_dir(dir).status().await;
        if !matches!(installed, Ok(status) if status.success()) {
            println!("{npm} ci failed: {installed:?}");
            return None;
        }
    }
    let mut command = tokio::process::Command::new(&node);
    command
        .arg("bench.js")
        .current_dir(dir)
        .env("DATABASE_URL", &test_db.url)
        .env("ROUNDS", ROUNDS.to_string())
        .env("REQUESTS", CONCURRENT_REQUESTS.to_string())
        .env("CLIENTS", CLIENTS.to_string());
    let stdout = support::run_peer(&mut command, &format!("{node} bench.js in {dir}")).await?;
    stdout.lines().rev().find_map(|line| serde_json::from_str(line).ok())
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
    hand_written: &[(&str, &str)],
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
    for (name, sql) in hand_written {
        let rows = Sql::new(format!("EXPLAIN (ANALYZE, BUFFERS) {sql}")).all(direct).await.unwrap();
        show(format!("the hand-written SQL, {name}"), rows);
    }
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
