//! `syncFollowers` at scale: 100,000 followers (every second one with a
//! unionid), 20 ms of simulated WeChat latency per call and 50,000 matching
//! accounts (half by the `unionid` column, half only through
//! `oauth2_user_info_map`), on SQLite and PostgreSQL. Prints the wall time of
//! a first sync and of a repeat sync, the WeChat calls made against the
//! minimum (pages + ceil(N/100) batchgets + 1 token), and the seed's own
//! algorithm (one `user/info` call and one UPDATE per follower, in
//! sequence) timed on a 2,000-follower sample and extrapolated to 100,000.
//!
//! Run: `cargo bench --bench sync_followers` (PostgreSQL from
//! `WXNOTIFY_TEST_POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432/test`).

#[path = "../tests/integration/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::TestDb;
use sea_orm::{DatabaseConnection, Value};
use serde_json::json;
use wxnotify::db::DatabaseKind;
use wxnotify::db::sql::Sql;
use wxnotify::sim::{SimConfig, SimFollower, SimHandle, Simulator};

const FOLLOWERS: usize = 100_000;
const LATENCY: Duration = Duration::from_millis(20);
const SAMPLE: usize = 2_000;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let page = SimConfig::default().page_size;
    // The listing ends on an empty page when the last one is full.
    let pages = FOLLOWERS / page + 1;
    let minimum = pages + FOLLOWERS.div_ceil(100) + 1;
    println!(
        "syncFollowers: {FOLLOWERS} followers, {} ms WeChat latency, 50000 matching accounts, WXNOTIFY_WECHAT_CONCURRENCY={}",
        LATENCY.as_millis(),
        concurrency()
    );
    println!("minimum WeChat calls: {pages} pages + {} batchgets + 1 token = {minimum}", FOLLOWERS.div_ceil(100));
    println!(
        "{:<9} {:>14} {:>15} {:>10} {:>9} {:>8} {:>9} {:>22} {:>14}",
        "database",
        "first sync (s)",
        "repeat sync (s)",
        "api calls",
        "vs min",
        "matched",
        "cleared",
        "seed sample 2000 (s)",
        "seed 100k (s)"
    );
    for backend in [DatabaseKind::Sqlite, DatabaseKind::Postgres] {
        let Some(db) = TestDb::new(backend).await else {
            println!("{backend:?}: PostgreSQL unreachable, skipped");
            continue;
        };
        run(backend, &db, minimum).await;
    }
}

async fn run(backend: DatabaseKind, test_db: &TestDb, minimum: usize) {
    let config = SimConfig { followers: (0..FOLLOWERS).map(SimFollower::generated).collect(), latency: LATENCY, ..SimConfig::default() };
    let sim = Simulator::start(config).await.expect("the simulator starts");
    let mut settings = common::sim_settings(&sim);
    settings.extend([("SCHEDULER".into(), "false".into()), ("WECHAT_CONCURRENCY".into(), concurrency())]);
    let settings = common::borrowed(&settings);
    let (state, _address, _stop, _server) = common::start_server(test_db.url.clone(), &settings).await;
    seed_accounts(&state.db).await;

    let calls_before = sim.calls().len();
    let started = Instant::now();
    let report = wxnotify::linking::sync::sync_followers(&state.services, None).await.expect("the sync succeeds");
    let first = started.elapsed();
    let calls = sim.calls().len() - calls_before;
    assert_eq!(report.api_calls as usize, calls, "the report counts what WeChat saw");
    assert_eq!(report.matched, 50_000, "{report:?}");

    let started = Instant::now();
    wxnotify::linking::sync::sync_followers(&state.services, None).await.expect("the repeat sync succeeds");
    let repeat = started.elapsed();

    let seed = seed_algorithm(&state.db, &sim, &state.services.wechat).await;
    let extrapolated = seed.as_secs_f64() * FOLLOWERS as f64 / SAMPLE as f64;
    println!(
        "{:<9} {:>14.2} {:>15.2} {:>10} {:>8.2}% {:>8} {:>9} {:>22.1} {:>14.0}",
        format!("{backend:?}"),
        first.as_secs_f64(),
        repeat.as_secs_f64(),
        calls,
        (calls as f64 / minimum as f64 - 1.0) * 100.0,
        report.matched,
        report.cleared,
        seed.as_secs_f64(),
        extrapolated
    );
}

/// 50,000 accounts for the even (unionid-carrying) followers: every other
/// one by the `unionid` column, the rest only through the login map.
async fn seed_accounts(db: &DatabaseConnection) {
    let now = chrono::Utc::now();
    let evens: Vec<usize> = (0..FOLLOWERS).step_by(2).collect();
    for chunk in evens.chunks(1000) {
        let mut sql = Sql::new("INSERT INTO account (created_at, updated_at, mp_openid, unionid, oauth2_user_info_map) VALUES ");
        for (i, n) in chunk.iter().enumerate() {
            let unionid = SimFollower::generated(*n).unionid.expect("even followers have one");
            let by_column = n % 4 == 0;
            if i > 0 {
                sql.push(",");
            }
            sql.list([
                Value::from(now),
                now.into(),
                format!("oMp{n}").into(),
                by_column.then(|| unionid.clone()).into(),
                json!({ "WECHAT": { "openId": format!("oMp{n}"), "unionId": unionid } }).into(),
            ]);
        }
        sql.execute(db).await.expect("seeding accounts");
    }
}

/// The seed's way: for each follower, `user/info`, then one UPDATE by
/// unionid, one after another. Timed on the first `SAMPLE` followers.
async fn seed_algorithm(db: &DatabaseConnection, sim: &SimHandle, wechat: &wxnotify::wechat::WechatClient) -> Duration {
    let _ = sim;
    let started = Instant::now();
    for n in 0..SAMPLE {
        let openid = SimFollower::generated(n).openid;
        let info = wechat.user_info(&openid).await.expect("user/info");
        if let Some(unionid) = info.unionid {
            let mut sql = Sql::new("UPDATE account SET oaopenid = ");
            sql.bind(openid).push(" WHERE unionid = ").bind(unionid);
            sql.execute(db).await.expect("the seed's update");
        }
    }
    started.elapsed()
}

/// The batch concurrency to run with: `WXNOTIFY_WECHAT_CONCURRENCY`, or the
/// server's default.
fn concurrency() -> String {
    std::env::var("WXNOTIFY_WECHAT_CONCURRENCY").unwrap_or_else(|_| "16".into())
}
