//! The seed's table documents at 1,000 and 100,000 accounts, on SQLite and
//! PostgreSQL, over HTTP: the median of each, and the ratio between the two
//! sizes (goal ≤ 1.5×: a call costs the same whatever the table size). Then
//! what indexes cost writers (an update of the login map with and without
//! the declared indexes, same table, same run), and the seed's per-follower
//! loop (`user/info`, then the `accountupdate` document) for 10,000
//! followers against 100,000 accounts next to `syncFollowers` on the same
//! data, with the simulator answering WeChat at no latency.
//!
//! Run: `cargo bench --bench seed_documents` (PostgreSQL from
//! `WXNOTIFY_TEST_POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432/test?sslmode=disable`).

#[path = "../tests/integration/common/mod.rs"]
mod common;
#[path = "support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::seed_docs::{self, GETCACHE, NOTICE, NOTICE_UPSERT, SYNC_UPDATE};
use common::{TestDb, median, ms};
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};
use wxnotify::AppState;
use wxnotify::db::DatabaseKind;
use wxnotify::db::sql::Sql;
use wxnotify::sim::{SimConfig, SimFollower, Simulator};

const SIZES: [i64; 2] = [1_000, 100_000];
const ROUNDS: usize = 51;
const GOAL: f64 = 1.5;
const FOLLOWERS: i64 = 10_000;
/// Alternating phases of the index write-cost measurement.
const PHASES: usize = 5;
const DOCUMENTS: [&str; 4] = ["accountupdate", "notice", "getcache", "upsertNotice"];

/// A running server on a loaded database, and a client for it.
struct Bench {
    state: Arc<AppState>,
    address: String,
    token: String,
    client: reqwest::Client,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Bench {
    async fn start(test_db: &TestDb, accounts: i64, extra: &[(&str, &str)]) -> Bench {
        let mut settings = vec![("SCHEDULER", "false")];
        settings.extend_from_slice(extra);
        let (state, address, stop, _server) = common::start_server(test_db.url.clone(), &settings).await;
        seed_docs::load(&state.db, accounts).await;
        let token = wxnotify::auth::Jwt::new(&wxnotify::settings::Secret::new(common::JWT_SECRET)).mint(
            wxnotify::auth::Role::Admin,
            None,
            Duration::from_secs(3600),
        );
        let bench = Bench { state, address, token, client: reqwest::Client::new(), _stop: stop };
        bench.call(r#"mutation { insert_actok_one(object: {appid: "wxcc99eeed41fadcbd", tok: "t", expiredtime: "2030-01-01T00:00:00Z"}) { id } }"#, json!({})).await;
        bench
    }

    /// One document over HTTP; its time, after checking it answered.
    async fn call(&self, query: &str, variables: Value) -> Duration {
        let started = Instant::now();
        let body = json!({ "query": query, "variables": variables });
        let response = self.client.post(format!("{}/api/graphql", self.address)).bearer_auth(&self.token).json(&body).send().await;
        let value: Value = response.expect("POST /api/graphql").json().await.expect("a JSON answer");
        let elapsed = started.elapsed();
        assert!(value.get("errors").is_none(), "{value}");
        elapsed
    }

    async fn sql(&self, sql: &str) {
        self.state.db.execute_unprepared(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    async fn text(&self, sql: &str) -> String {
        let row = Sql::new(sql).one(&self.state.db).await;
        row.expect(sql).expect(sql).try_get_by_index::<String>(0).expect(sql)
    }
}

/// The variables of round `round` of `document` at `accounts` accounts:
/// different accounts each round, spread over the table.
fn variables(document: &str, accounts: i64, round: usize) -> Value {
    let n = (round as i64 * 7919) % accounts + 1;
    match document {
        "accountupdate" => json!({
            "unionid": seed_docs::unionid(n), "unionobject": { "WECHAT": { "unionId": seed_docs::unionid(n) } }, "openid": format!("oNew{n}")
        }),
        "upsertNotice" => json!({ "account": n, "expire": format!("2026-11-21T10:{:02}:00+08:00", round % 60) }),
        _ => json!({}),
    }
}

fn query_of(document: &str) -> &'static str {
    match document {
        "accountupdate" => SYNC_UPDATE,
        "notice" => NOTICE,
        "getcache" => GETCACHE,
        _ => NOTICE_UPSERT,
    }
}

/// The median of each document at both sizes, the calls alternating
/// between the two servers so that both see the same machine load.
async fn medians(small: &Bench, large: &Bench) -> Vec<(Duration, Duration)> {
    let mut out = Vec::new();
    for document in DOCUMENTS {
        let (mut a, mut b) = (Vec::with_capacity(ROUNDS), Vec::with_capacity(ROUNDS));
        for round in 0..=ROUNDS {
            let x = small.call(query_of(document), variables(document, SIZES[0], round)).await;
            let y = large.call(query_of(document), variables(document, SIZES[1], round)).await;
            if round > 0 {
                // round 0 warms up
                a.push(x);
                b.push(y);
            }
        }
        out.push((median(&mut a), median(&mut b)));
    }
    out
}

/// Median time of `update_account_by_pk` writing a new login map.
async fn map_updates(bench: &Bench, accounts: i64, salt: &str) -> Duration {
    let mut samples = Vec::with_capacity(ROUNDS);
    for round in 0..=ROUNDS {
        let n = (round as i64 * 104_729) % accounts + 1;
        let map = json!({ "WECHAT": { "openId": format!("oMp{n}"), "unionId": format!("{salt}{n}") } });
        let elapsed = bench
            .call(
                "mutation($id: bigint!, $m: jsonb) { update_account_by_pk(pk_columns: {id: $id}, _set: {oauth2_user_info_map: $m}) { id } }",
                json!({ "id": n, "m": map }),
            )
            .await;
        if round > 0 {
            samples.push(elapsed);
        }
    }
    median(&mut samples)
}

/// The login-map update with the declared indexes and with them dropped
/// (recreated from their own definitions), in alternating phases so both
/// conditions see the same machine load.
async fn index_write_cost(bench: &Bench, backend: DatabaseKind, accounts: i64) {
    let names: &[&str] = match backend {
        DatabaseKind::Postgres => &["account_oauth2_user_info_map_idx"],
        DatabaseKind::Sqlite => &["account_oauth2_user_info_map_unionid_idx", "account_oauth2_user_info_map_openid_idx"],
    };
    let mut definitions = Vec::new();
    for name in names {
        definitions.push(match backend {
            DatabaseKind::Postgres => bench.text(&format!("SELECT pg_get_indexdef('{name}'::regclass)")).await,
            DatabaseKind::Sqlite => bench.text(&format!("SELECT sql FROM sqlite_master WHERE name = '{name}'")).await,
        });
    }
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for phase in 0..PHASES {
        with.push(map_updates(bench, accounts, &format!("uWith{phase}-")).await);
        for name in names {
            bench.sql(&format!("DROP INDEX {name}")).await;
        }
        without.push(map_updates(bench, accounts, &format!("uWithout{phase}-")).await);
        for definition in &definitions {
            bench.sql(definition).await;
        }
    }
    let (with, without) = (median(&mut with), median(&mut without));
    println!(
        "{:<9} login-map update at {accounts} accounts: {:.2} ms with the declared indexes, {:.2} ms without ({:.2}×)",
        format!("{backend:?}"),
        ms(with),
        ms(without),
        ms(with) / ms(without)
    );
}

/// The seed's loop against `syncFollowers` for the same followers.
async fn follower_loops(backend: DatabaseKind) {
    let Some(test_db) = TestDb::new(backend).await else { return };
    let accounts = SIZES[1];
    // Follower k is account 10k + 3, by the unionid in its login map.
    let account_of = |k: i64| k * (accounts / FOLLOWERS) + 3;
    let followers = (0..FOLLOWERS).map(|k| SimFollower::new(format!("oFollower{k:08}")).with_unionid(seed_docs::unionid(account_of(k))));
    let sim = Simulator::start(SimConfig { followers: followers.collect(), latency: Duration::ZERO, ..SimConfig::default() })
        .await
        .expect("the simulator starts");
    let settings = common::sim_settings(&sim);
    let bench = Bench::start(&test_db, accounts, &common::borrowed(&settings)).await;

    let started = Instant::now();
    for k in 0..FOLLOWERS {
        let openid = format!("oFollower{k:08}");
        let info = bench.state.services.wechat.user_info(&openid).await.expect("user/info");
        let unionid = info.unionid.expect("every follower has a unionid");
        let variables = json!({ "unionid": unionid, "unionobject": { "WECHAT": { "unionId": unionid } }, "openid": openid });
        bench.call(SYNC_UPDATE, variables).await;
    }
    let seed = started.elapsed();

    // The same starting point for the sync: the links as loaded.
    bench.sql("UPDATE account SET unionid = NULL, oaopenid = CASE WHEN id % 2 = 0 THEN 'oOa' || id END").await;
    let started = Instant::now();
    let report = wxnotify::linking::sync::sync_followers(&bench.state.services, None).await.expect("the sync succeeds");
    let sync = started.elapsed();
    assert_eq!(report.matched, FOLLOWERS as u64, "{report:?}");
    println!(
        "{:<9} {FOLLOWERS} followers, {accounts} accounts: seed loop {:.2} s ({:.2} ms per follower), syncFollowers {:.2} s ({:.1}× faster)",
        format!("{backend:?}"),
        seed.as_secs_f64(),
        ms(seed) / FOLLOWERS as f64,
        sync.as_secs_f64(),
        seed.as_secs_f64() / sync.as_secs_f64()
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    support::print_load_average();
    println!("seed documents over HTTP, medians of {ROUNDS} calls; ratio = 100,000 accounts / 1,000 accounts (goal ≤ {GOAL}×)");
    println!("{:<9} {:<14} {:>14} {:>16} {:>7} {:>5}", "database", "document", "1,000 (ms)", "100,000 (ms)", "ratio", "goal");
    for backend in [DatabaseKind::Sqlite, DatabaseKind::Postgres] {
        let (Some(small_db), Some(large_db)) = (TestDb::new(backend).await, TestDb::new(backend).await) else {
            println!("{backend:?}: PostgreSQL unreachable, skipped");
            continue;
        };
        let small = Bench::start(&small_db, SIZES[0], &[]).await;
        let large = Bench::start(&large_db, SIZES[1], &[]).await;
        for (document, (a, b)) in DOCUMENTS.iter().zip(medians(&small, &large).await) {
            let ratio = ms(b) / ms(a);
            let verdict = if ratio <= GOAL { "met" } else { "MISSED" };
            println!("{:<9} {document:<14} {:>14.2} {:>16.2} {ratio:>6.2}× {verdict:>5}", format!("{backend:?}"), ms(a), ms(b));
        }
        index_write_cost(&large, backend, SIZES[1]).await;
    }
    for backend in [DatabaseKind::Sqlite, DatabaseKind::Postgres] {
        follower_loops(backend).await;
    }
}
