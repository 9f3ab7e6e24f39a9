//! `syncFollowers` at scale: 100,000 followers (every second one with a
//! unionid), 20 ms of simulated WeChat latency per call and 50,000 matching
//! accounts (half by the `unionid` column, half only through
//! `oauth2_user_info_map`), on SQLite and PostgreSQL. Prints the wall time of
//! a first sync and of a repeat sync, the WeChat calls made against the
//! minimum (pages + ceil(N/100) batchgets + 1 token), and the seed's own
//! algorithm (one `user/info` call and one UPDATE per follower, in
//! sequence) timed on a 2,000-follower sample and extrapolated to 100,000.
//!
//! Every time is printed next to the network bound, (pages +
//! ceil(batchgets / concurrency)) × latency, and the first sync is split
//! into stages: the listing pages, the batchgets, and the apply step (from
//! the sync's own progress report to its end). On PostgreSQL the wechatpy
//! peer (`benches/peers/wechatpy_sync.py`, sequential and with a 16-thread
//! pool) then syncs the same followers from the same simulator into the
//! same database, and wxnotify's ratio to each is printed
//! (`WXNOTIFY_BENCH_PEERS=0` skips it; `PYTHON` picks the interpreter). See
//! docs/performance.md.
//!
//! With `WXNOTIFY_BENCH_SCALE=1` it then syncs 100,000 and 1,000,000
//! followers with the real programs: `wxnotify sim` (latency
//! `WXNOTIFY_BENCH_SCALE_LATENCY_MS`, default 20) and `wxnotify sync` in
//! processes of their own, each size on a fresh database with half as many
//! matching accounts, and prints the time of each, their ratio (goal: at
//! most 11×), the sync process's peak RSS (`VmHWM`, goal: at most 256 MiB)
//! and how many progress lines its log showed.
//!
//! Run: `cargo bench --bench sync_followers` (PostgreSQL from
//! `WXNOTIFY_TEST_POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432/test?sslmode=disable`).

#[path = "../tests/integration/common/mod.rs"]
mod common;
#[path = "support/mod.rs"]
mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::TestDb;
use sea_orm::{DatabaseConnection, Value};
use serde_json::json;
use wxnotify::db::DatabaseKind;
use wxnotify::db::sql::Sql;
use wxnotify::linking::sync::{SyncPhase, SyncProgress};
use wxnotify::sim::{CallRecord, SimConfig, SimFollower, SimHandle, Simulator};

const FOLLOWERS: usize = 100_000;
const LATENCY: Duration = Duration::from_millis(20);
const SAMPLE: usize = 2_000;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    support::print_load_average();
    let page = SimConfig::default().page_size;
    // The listing ends on an empty page when the last one is full.
    let pages = FOLLOWERS / page + 1;
    let minimum = pages + FOLLOWERS.div_ceil(100) + 1;
    let bound = network_bound(pages);
    println!(
        "syncFollowers: {FOLLOWERS} followers, {} ms WeChat latency, 50000 matching accounts, WXNOTIFY_WECHAT_CONCURRENCY={}",
        LATENCY.as_millis(),
        concurrency()
    );
    println!("minimum WeChat calls: {pages} pages + {} batchgets + 1 token = {minimum}", FOLLOWERS.div_ceil(100));
    println!(
        "network bound: ({pages} pages + ceil({} batchgets / {}) ) × {} ms = {}",
        FOLLOWERS.div_ceil(100),
        concurrency(),
        LATENCY.as_millis(),
        support::secs(bound)
    );
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
        run(backend, &db, minimum, bound).await;
    }
    if std::env::var("WXNOTIFY_BENCH_SCALE").as_deref() == Ok("1") {
        scale().await;
    }
}

/// `wxnotify sync` against `wxnotify sim` at 100,000 and 1,000,000
/// followers, on each database.
async fn scale() {
    let latency: u64 = std::env::var("WXNOTIFY_BENCH_SCALE_LATENCY_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    println!();
    println!("scale: wxnotify sync and wxnotify sim as processes, {latency} ms latency, WXNOTIFY_WECHAT_CONCURRENCY={}", concurrency());
    println!(
        "{:<9} {:>10} {:>10} {:>14} {:>10} {:>15} {:>9}",
        "database", "followers", "sync (s)", "process (s)", "peak RSS", "progress lines", "matched"
    );
    for backend in support::scale_databases() {
        let mut times = Vec::new();
        for followers in [100_000usize, 1_000_000] {
            let Some(db) = TestDb::new(backend).await else {
                println!("{backend:?}: PostgreSQL unreachable, skipped");
                break;
            };
            match scale_run(&db, followers, latency).await {
                Some(run) => {
                    println!(
                        "{:<9} {:>10} {:>10.2} {:>14.2} {:>6.1} MiB {:>15} {:>9}",
                        format!("{backend:?}"),
                        followers,
                        run.sync.as_secs_f64(),
                        run.process.as_secs_f64(),
                        run.peak_rss_kib as f64 / 1024.0,
                        run.progress_lines,
                        run.matched
                    );
                    if run.peak_rss_kib > 256 * 1024 {
                        println!("{backend:?}: peak RSS above 256 MiB at {followers} followers");
                    }
                    times.push(run.sync);
                }
                None => break,
            }
        }
        if let [small, large] = times[..] {
            println!(
                "{backend:?}: 1,000,000 followers took {:.2}× the 100,000-follower sync (goal: at most 11×)",
                large.as_secs_f64() / small.as_secs_f64()
            );
        }
    }
}

struct ScaleRun {
    /// The sync's own `duration_ms`.
    sync: Duration,
    /// From starting the process to its exit (connecting and migrating too).
    process: Duration,
    peak_rss_kib: u64,
    /// Log lines reporting progress (`listed a page`).
    progress_lines: usize,
    matched: u64,
}

async fn scale_run(test_db: &TestDb, followers: usize, latency: u64) -> Option<ScaleRun> {
    let binary = env!("CARGO_BIN_EXE_wxnotify");
    let port = support::free_port();
    let defaults = SimConfig::default();
    let mut sim = tokio::process::Command::new(binary)
        .args(["sim", "--listen", &format!("127.0.0.1:{port}"), "--followers", &followers.to_string()])
        .args(["--latency-ms", &latency.to_string()])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("wxnotify sim starts");
    let base = format!("http://127.0.0.1:{port}");
    if !support::wait_for_port(port, Duration::from_secs(120)).await {
        println!("wxnotify sim did not listen on {port}");
        return None;
    }
    let env = [
        ("WXNOTIFY_DATABASE_URL", test_db.url.clone()),
        ("WXNOTIFY_JWT_SECRET", "0123456789abcdef0123456789abcdef".into()),
        ("WXNOTIFY_WECHAT_API_BASE", base),
        ("WXNOTIFY_OA_APPID", defaults.oa_appid.clone()),
        ("WXNOTIFY_OA_SECRET", defaults.oa_secret.clone()),
        ("WXNOTIFY_WECHAT_CONCURRENCY", concurrency()),
        ("RUST_LOG", "info".into()),
        ("PATH", std::env::var("PATH").unwrap_or_default()),
    ];
    let migrate =
        tokio::process::Command::new(binary).arg("migrate").env_clear().envs(env.clone()).output().await.expect("wxnotify migrate runs");
    assert!(migrate.status.success(), "wxnotify migrate: {}", String::from_utf8_lossy(&migrate.stderr));
    let db = sea_orm::Database::connect(&test_db.url).await.expect("the scale database");
    seed_accounts_n(&db, followers).await;
    db.close().await.ok();

    let started = Instant::now();
    let child = tokio::process::Command::new(binary)
        .arg("sync")
        .env_clear()
        .envs(env)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("wxnotify sync starts");
    let pid = child.id().expect("a running process");
    let (peak, watcher) = support::watch_peak_rss(pid);
    let output = child.wait_with_output().await.expect("wxnotify sync ends");
    let process = started.elapsed();
    watcher.abort();
    sim.kill().await.ok();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        println!("wxnotify sync failed ({}):\n{stdout}\n{stderr}", output.status);
        return None;
    }
    let field = |name: &str| stdout.lines().find_map(|l| l.strip_prefix(name)).and_then(|v| v.trim().parse::<u64>().ok());
    if let Some(applied) = stderr.lines().find(|l| l.contains("follower sync: applied")) {
        println!("  {followers} followers, the sync's log: {}", support::strip_ansi(applied));
    }
    Some(ScaleRun {
        sync: Duration::from_millis(field("duration_ms").unwrap_or_default()),
        process,
        peak_rss_kib: peak.load(std::sync::atomic::Ordering::Relaxed),
        progress_lines: stderr.lines().filter(|l| l.contains("listed a page")).count(),
        matched: field("matched").unwrap_or_default(),
    })
}

/// (pages + ceil(batchgets / concurrency)) × latency: the listing pages
/// follow one another, the batchgets go `concurrency` at a time.
fn network_bound(pages: usize) -> Duration {
    let concurrency: usize = concurrency().parse().expect("WXNOTIFY_WECHAT_CONCURRENCY is a number");
    LATENCY * (pages + FOLLOWERS.div_ceil(100).div_ceil(concurrency)) as u32
}

async fn run(backend: DatabaseKind, test_db: &TestDb, minimum: usize, bound: Duration) {
    let config = SimConfig { followers: (0..FOLLOWERS).map(SimFollower::generated).collect(), latency: LATENCY, ..SimConfig::default() };
    let sim = Simulator::start(config).await.expect("the simulator starts");
    let mut settings = common::sim_settings(&sim);
    settings.extend([("SCHEDULER".into(), "false".into()), ("WECHAT_CONCURRENCY".into(), concurrency())]);
    let settings = common::borrowed(&settings);
    let (state, _address, _stop, _server) = common::start_server(test_db.url.clone(), &settings).await;
    seed_accounts(&state.db).await;

    let calls_before = sim.calls().len();
    // When the sync reports that it has left the listing for the apply step.
    let applying: Arc<Mutex<Option<Instant>>> = Arc::default();
    let seen = applying.clone();
    let progress: wxnotify::linking::sync::ProgressFn = Arc::new(move |p: &SyncProgress| {
        if p.phase == SyncPhase::Applying {
            seen.lock().unwrap().get_or_insert_with(Instant::now);
        }
    });
    let started_at = chrono::Utc::now();
    let started = Instant::now();
    let report = wxnotify::linking::sync::sync_followers(&state.services, Some(progress)).await.expect("the sync succeeds");
    let first = started.elapsed();
    let records = sim.calls();
    let calls = records.len() - calls_before;
    let applying = applying.lock().unwrap().map(|at| at - started);
    assert_eq!(report.api_calls as usize, calls, "the report counts what WeChat saw");
    assert_eq!(report.matched, 50_000, "{report:?}");

    let started = Instant::now();
    wxnotify::linking::sync::sync_followers(&state.services, None).await.expect("the repeat sync succeeds");
    let repeat = started.elapsed();

    // `WXNOTIFY_BENCH_SEED=0` skips the seed's loop (some 45 s per database).
    let seed = if std::env::var("WXNOTIFY_BENCH_SEED").as_deref() == Ok("0") {
        Duration::ZERO
    } else {
        seed_algorithm(&state.db, &sim, &state.services.wechat).await
    };
    let extrapolated = seed.as_secs_f64() * FOLLOWERS as f64 / SAMPLE as f64;
    let name = format!("{backend:?}");
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
    println!("{name:<9} first sync:  {}", support::of_bound(first, bound));
    println!("{name:<9} repeat sync: {}", support::of_bound(repeat, bound));
    if extrapolated > 0.0 {
        println!(
            "{name:<9} first sync vs the seed's algorithm: {}",
            support::faster_than(first, Duration::from_secs_f64(extrapolated), "seed's one-call-per-follower loop (extrapolated)")
        );
    } else {
        println!("{name:<9} first sync vs the seed's algorithm: not measured (WXNOTIFY_BENCH_SEED=0)");
    }
    stages(&name, &records[calls_before..], started_at, applying, first);
    if backend == DatabaseKind::Postgres && std::env::var("WXNOTIFY_BENCH_PEERS").as_deref() != Ok("0") {
        for threads in [1, 16] {
            unlink_accounts(&state.db).await;
            match peer(&sim, test_db, threads).await {
                Some((peer_time, line)) => {
                    println!("{name:<9} peer: {line}");
                    println!(
                        "{name:<9} wxnotify first sync {} vs wechatpy {}: {}",
                        support::secs(first),
                        if threads == 1 { "sequential".to_string() } else { format!("{threads}-thread pool") },
                        support::faster_than(first, peer_time, "peer")
                    );
                }
                None => println!("{name:<9} peer with {threads} thread(s) did not finish; see its output above"),
            }
        }
    }
}

/// Where the first sync's time went: the listing pages and the batchgets
/// (from the simulator's call records, which are taken when each answer
/// leaves) and the apply step (from the sync's progress report to its end).
fn stages(name: &str, records: &[CallRecord], started_at: chrono::DateTime<chrono::Utc>, applying: Option<Duration>, total: Duration) {
    let span = |path: &str| {
        let times: Vec<_> = records.iter().filter(|c| c.path == path).map(|c| c.at).collect();
        let (first, last) = (times.iter().min().copied()?, times.iter().max().copied()?);
        let offset = |at: chrono::DateTime<chrono::Utc>| (at - started_at).to_std().unwrap_or_default();
        Some((times.len(), offset(first), offset(last)))
    };
    let show = |label: &str, path: &str| match span(path) {
        Some((n, first, last)) => {
            println!(
                "{name:<9}   {label:<10} {n:>5} calls, answers from {} to {} after the start",
                support::secs(first),
                support::secs(last)
            )
        }
        None => println!("{name:<9}   {label:<10} none"),
    };
    println!("{name:<9} first sync by stage (total {}):", support::secs(total));
    show("pages", "/cgi-bin/user/get");
    show("batchgets", "/cgi-bin/user/info/batchget");
    if let Some(applying) = applying {
        println!(
            "{name:<9}   listing and staging until {}, then the apply step {} ({:.0} % of the sync)",
            support::secs(applying),
            support::secs(total.saturating_sub(applying)),
            100.0 * total.saturating_sub(applying).as_secs_f64() / total.as_secs_f64()
        );
    }
}

/// Unlinks every account again, so a peer starts where wxnotify started.
async fn unlink_accounts(db: &DatabaseConnection) {
    Sql::new("UPDATE account SET oaopenid = NULL").execute(db).await.expect("unlinking the accounts");
}

/// Runs the wechatpy peer against `sim` and the bench's database; its time
/// (its own `seconds=` line) and its summary line.
async fn peer(sim: &SimHandle, test_db: &TestDb, threads: usize) -> Option<(Duration, String)> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/peers/wechatpy_sync.py");
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let mut command = tokio::process::Command::new(&python);
    command
        .arg(script)
        .args(["--api-base", &sim.base_url(), "--database-url", &test_db.url])
        .args(["--followers", &FOLLOWERS.to_string(), "--threads", &threads.to_string()])
        .args(["--appid", &sim.oa_appid(), "--secret", "sim-oa-secret"]);
    let stdout = support::run_peer(&mut command, &format!("{python} {script}")).await?;
    let seconds: f64 = stdout.lines().find_map(|l| l.strip_prefix("seconds="))?.trim().parse().ok()?;
    let line = stdout.lines().find(|l| l.starts_with("wechatpy")).unwrap_or_default().to_string();
    Some((Duration::from_secs_f64(seconds), line))
}

/// 50,000 accounts for the even (unionid-carrying) followers: every other
/// one by the `unionid` column, the rest only through the login map.
async fn seed_accounts(db: &DatabaseConnection) {
    seed_accounts_n(db, FOLLOWERS).await
}

/// One account for each even follower of `followers`, as [`seed_accounts`].
async fn seed_accounts_n(db: &DatabaseConnection, followers: usize) {
    let now = chrono::Utc::now();
    let evens: Vec<usize> = (0..followers).step_by(2).collect();
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
