//! Sending at scale, on SQLite and PostgreSQL, against the simulator:
//!
//! - digest: 100,000 following accounts with 1,000,000 unread rows (two
//!   types): the time of the ONE candidate query (median of 5), then a
//!   digest of 4,000 of them against a simulator answering each send after
//!   20 ms, at two concurrency settings: sends per second against the bound
//!   `concurrency / latency`;
//! - real-time burst: 10,000 `notifyAccount` calls over HTTP spread over 100
//!   accounts by 64 concurrent clients: calls per second, and the messages
//!   sent, which must be exactly 100 (one per account per window); then
//!   the same calls from `wrk` (a process of its own, 64 connections,
//!   `benches/support/burst.lua`, for `WRK_SECONDS`) over the next 100
//!   accounts, since the in-process clients share the server's two runtime
//!   workers (without `wrk` installed the bench says so and goes on).
//!
//! Next to each figure, a bound or a baseline timed in the same run: the
//! candidate query against a bare `GROUP BY` over the same unread rows (and,
//! on PostgreSQL, its `EXPLAIN (ANALYZE, BUFFERS)`); the sends against
//! `concurrency / latency`; the burst against the same 64 clients posting a
//! trivial GraphQL query (`{ __typename }`) to the same server (and `wrk`'s
//! burst against `wrk` posting it). See
//! docs/performance.md.
//!
//! Run: `cargo bench --bench notify` (PostgreSQL from
//! `WXNOTIFY_TEST_POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432/test?sslmode=disable`).
//! `WXNOTIFY_BENCH_PARTS=candidates,sends,burst` picks parts (all by
//! default), e.g. to profile one of them alone.
//!
//! With `WXNOTIFY_BENCH_SCALE=1` it then runs a digest to 100,000 and to
//! 1,000,000 following accounts (one unread row each) with `wxnotify
//! serve` and `wxnotify sim` as processes (simulator latency
//! `WXNOTIFY_BENCH_SCALE_LATENCY_MS`, default 0; `WXNOTIFY_WECHAT_CONCURRENCY`
//! 64), on each database (`WXNOTIFY_BENCH_SCALE_DATABASES=sqlite|postgres`
//! for one): the digest's time (goal: the 1,000,000 run at most 11× the
//! 100,000 run), the server's peak RSS (`VmHWM`, goal: at most 256 MiB)
//! and the progress lines its log showed. `WXNOTIFY_BENCH_PARTS=scale`
//! runs only that.

#[path = "../tests/integration/common/mod.rs"]
mod common;
#[path = "support/mod.rs"]
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{TestDb, median, ms};
use sea_orm::{ConnectionTrait, DatabaseConnection};
use serde_json::{Value, json};
use wxnotify::db::DatabaseKind;
use wxnotify::db::sql::Sql;
use wxnotify::notify::digest::{self, DigestRequest};
use wxnotify::sim::{SimConfig, SimFollower, SimHandle, Simulator};

const ACCOUNTS: i64 = 100_000;
const ROWS_PER_ACCOUNT: i64 = 10;
const DIGEST_SENDS: i64 = 4_000;
const LATENCY: Duration = Duration::from_millis(20);
const BURST_CALLS: usize = 10_000;
const BURST_ACCOUNTS: i64 = 100;
const CLIENTS: usize = 64;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    support::print_load_average();
    println!(
        "notify: {ACCOUNTS} following accounts, {} unread rows; simulator latency {} ms",
        ACCOUNTS * ROWS_PER_ACCOUNT,
        LATENCY.as_millis()
    );
    if ["candidates", "sends", "burst"].iter().any(|p| part(p)) {
        for backend in [DatabaseKind::Sqlite, DatabaseKind::Postgres] {
            let Some(db) = TestDb::new(backend).await else {
                println!("{backend:?}: PostgreSQL unreachable, skipped");
                continue;
            };
            run(&db).await;
        }
    }
    if std::env::var("WXNOTIFY_BENCH_SCALE").as_deref() == Ok("1") {
        scale().await;
    }
}

const SCALE_CONCURRENCY: &str = "64";

/// A digest to 100,000 and to 1,000,000 followers, `wxnotify serve` and
/// `wxnotify sim` as processes, on each database.
async fn scale() {
    let latency: u64 = std::env::var("WXNOTIFY_BENCH_SCALE_LATENCY_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(0);
    println!();
    println!(
        "scale: a digest from wxnotify serve against wxnotify sim, {latency} ms latency, WXNOTIFY_WECHAT_CONCURRENCY={SCALE_CONCURRENCY}"
    );
    println!(
        "{:<9} {:>10} {:>11} {:>9} {:>10} {:>11} {:>14}",
        "database", "recipients", "digest (s)", "sends/s", "peak RSS", "page lines", "progress lines"
    );
    for backend in support::scale_databases() {
        let mut times = Vec::new();
        for recipients in [100_000usize, 1_000_000] {
            let Some(db) = TestDb::new(backend).await else {
                println!("{backend:?}: PostgreSQL unreachable, skipped");
                break;
            };
            let Some(run) = scale_run(&db, recipients, latency).await else { break };
            println!(
                "{:<9} {:>10} {:>11.2} {:>9.0} {:>6.1} MiB {:>11} {:>14}",
                format!("{backend:?}"),
                recipients,
                run.digest.as_secs_f64(),
                recipients as f64 / run.digest.as_secs_f64(),
                run.peak_rss_kib as f64 / 1024.0,
                run.page_lines,
                run.progress_lines
            );
            if run.peak_rss_kib > 256 * 1024 {
                println!("{backend:?}: the server's peak RSS is above 256 MiB at {recipients} recipients");
            }
            times.push(run.digest);
        }
        if let [small, large] = times[..] {
            println!(
                "{backend:?}: the 1,000,000-recipient digest took {:.2}× the 100,000-recipient one (goal: at most 11×)",
                large.as_secs_f64() / small.as_secs_f64()
            );
        }
    }
}

struct ScaleRun {
    /// From posting `notifyDigest` to its answer.
    digest: Duration,
    peak_rss_kib: u64,
    /// Log lines of queued pages, and of sending progress.
    page_lines: usize,
    progress_lines: usize,
}

async fn scale_run(test_db: &TestDb, recipients: usize, latency: u64) -> Option<ScaleRun> {
    let binary = env!("CARGO_BIN_EXE_wxnotify");
    let path = std::env::var("PATH").unwrap_or_default();
    let sim_port = support::free_port();
    let mut sim = tokio::process::Command::new(binary)
        .args(["sim", "--listen", &format!("127.0.0.1:{sim_port}"), "--followers", &recipients.to_string()])
        .args(["--latency-ms", &latency.to_string()])
        // WeChat raises an account's daily limit past 100,000 followers.
        .args(["--daily-quota", &format!("/cgi-bin/message/template/send={}", recipients.max(100_000))])
        .env_clear()
        .env("PATH", &path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("wxnotify sim starts");
    if !support::wait_for_port(sim_port, Duration::from_secs(120)).await {
        println!("wxnotify sim did not listen on {sim_port}");
        return None;
    }
    let port = support::free_port();
    let defaults = SimConfig::default();
    let env = [
        ("WXNOTIFY_DATABASE_URL", test_db.url.clone()),
        ("WXNOTIFY_JWT_SECRET", common::JWT_SECRET.into()),
        ("WXNOTIFY_LISTEN", format!("127.0.0.1:{port}")),
        ("WXNOTIFY_WECHAT_API_BASE", format!("http://127.0.0.1:{sim_port}")),
        ("WXNOTIFY_OA_APPID", defaults.oa_appid.clone()),
        ("WXNOTIFY_OA_SECRET", defaults.oa_secret.clone()),
        ("WXNOTIFY_WECHAT_CONCURRENCY", SCALE_CONCURRENCY.into()),
        ("WXNOTIFY_REQUEST_TIMEOUT", "3h".into()),
        ("WXNOTIFY_SCHEDULER", "false".into()),
        ("RUST_LOG", "info".into()),
        ("PATH", path),
    ];
    let migrate =
        tokio::process::Command::new(binary).arg("migrate").env_clear().envs(env.clone()).output().await.expect("wxnotify migrate runs");
    assert!(migrate.status.success(), "wxnotify migrate: {}", String::from_utf8_lossy(&migrate.stderr));
    let db = sea_orm::Database::connect(&test_db.url).await.expect("the scale database");
    let seeded = Instant::now();
    seed_followers(&db, test_db.backend, recipients as i64).await;
    db.close().await.ok();
    println!("  {recipients} accounts seeded in {:.1} s", seeded.elapsed().as_secs_f64());

    let mut server = tokio::process::Command::new(binary)
        .arg("serve")
        .env_clear()
        .envs(env)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("wxnotify serve starts");
    let pid = server.id().expect("a running process");
    let (peak, watcher) = support::watch_peak_rss(pid);
    // The log, read as it comes (a full pipe would stall the server).
    let mut stderr = server.stderr.take().expect("the server's log");
    let log = tokio::spawn(async move {
        let mut text = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut stderr, &mut text).await.ok();
        String::from_utf8_lossy(&text).into_owned()
    });
    if !support::wait_for_port(port, Duration::from_secs(120)).await {
        println!("wxnotify serve did not listen on {port}");
        return None;
    }
    let token = wxnotify::auth::Jwt::new(&wxnotify::settings::Secret::new(common::JWT_SECRET)).mint(
        wxnotify::auth::Role::Admin,
        None,
        Duration::from_secs(4 * 3600),
    );
    let body = json!({ "query": "mutation { notifyDigest { run_id candidates sent failed skipped } }" });
    let started = Instant::now();
    let answer: Value = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/api/graphql"))
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await
        .expect("the digest request")
        .json()
        .await
        .expect("the digest's answer");
    let digest = started.elapsed();
    let report = &answer["data"]["notifyDigest"];
    server.start_kill().ok();
    server.wait().await.ok();
    watcher.abort();
    sim.kill().await.ok();
    let log = support::strip_ansi(&log.await.unwrap_or_default());
    // Where the time went: queueing (the last page's line), then sending.
    for line in log.lines().filter(|l| l.contains("digest queued; sending") || l.contains("delivery run: time in the database")) {
        println!("  {recipients}: {}", line.split_once(" INFO ").map_or(line, |(_, rest)| rest.trim()));
    }
    if let Some(last) = log.lines().rfind(|l| l.contains("digest queued a page")) {
        println!(
            "  {recipients}: last page queued: {}",
            last.split_once("digest queued a page of recipients").map_or("", |(_, rest)| rest.trim())
        );
    }
    if report["sent"].as_u64() != Some(recipients as u64) {
        println!("the digest did not send {recipients} messages: {answer}");
        println!("{}", log.lines().rev().take(20).collect::<Vec<_>>().join("\n"));
        return None;
    }
    Some(ScaleRun {
        digest,
        peak_rss_kib: peak.load(Ordering::Relaxed),
        page_lines: log.lines().filter(|l| l.contains("digest queued a page")).count(),
        progress_lines: log.lines().filter(|l| l.contains("delivery progress")).count(),
    })
}

/// `n` following accounts with the simulator's generated openids
/// (`oSimFollower<n, 16 digits>`, from 0) and one unread row each, in two
/// statements.
async fn seed_followers(db: &DatabaseConnection, backend: DatabaseKind, n: i64) {
    let openid = match backend {
        DatabaseKind::Postgres => "'oSimFollower' || lpad(CAST(n - 1 AS TEXT), 16, '0')",
        DatabaseKind::Sqlite => "'oSimFollower' || printf('%016d', n - 1)",
    };
    let now = chrono::Utc::now();
    let mut sql = Sql::default();
    let (at, count) = (sql.param(now), sql.param(n));
    sql.push(&format!(
        "WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < {count}) \
         INSERT INTO account (created_at, updated_at, nickname, user_status, oaopenid) SELECT {at}, {at}, 'user' || n, '新人', {openid} FROM g"
    ));
    sql.execute(db).await.expect("seeding accounts");
    let mut sql = Sql::default();
    let at = sql.param(now);
    sql.push(&format!(
        "INSERT INTO point_count (created_at, updated_at, account_account, type, sender, content) \
         SELECT {at}, {at}, id, '聊天', 'sender', 'content' FROM account"
    ));
    sql.execute(db).await.expect("seeding unread rows");
    templates(db).await;
    settle(db).await;
}

async fn simulator() -> SimHandle {
    let followers = (1..=ACCOUNTS).map(|n| SimFollower::new(format!("oa-{n}"))).collect();
    let mut config = SimConfig { followers, latency: LATENCY, ..SimConfig::default() };
    config.daily_quotas.clear();
    Simulator::start(config).await.expect("the simulator starts")
}

/// One process's sends are measured against one process's bound: the other
/// servers of the bench do not help (`WXNOTIFY_OUTBOX_HELP`; the scale_out
/// bench measures that).
fn overrides(sim: &SimHandle, concurrency: &str) -> Vec<(String, String)> {
    let mut settings = common::sim_settings(sim);
    settings.push(("WECHAT_CONCURRENCY".into(), concurrency.into()));
    settings.push(("OUTBOX_HELP".into(), "false".into()));
    settings
}

async fn run(test_db: &TestDb) {
    let name = format!("{:?}", test_db.backend).to_lowercase();
    let sim = simulator().await;
    let settings = overrides(&sim, "16");
    let (state, address, stop, server) = common::start_server(test_db.url.clone(), &common::borrowed(&settings)).await;
    let seeded = Instant::now();
    seed(&state.db).await;
    println!("\n[{name}] seeded in {:.1} s", seeded.elapsed().as_secs_f64());

    if part("candidates") {
        candidate_query(&name, &state, test_db.backend).await;
    }
    if part("sends") {
        sends(&name, &sim, test_db).await;
    }
    if part("burst") {
        burst(&name, &address, &sim).await;
    }
    let _ = stop.send(());
    server.await.ok();
}

/// Whether `WXNOTIFY_BENCH_PARTS` (a comma-separated list; every part when
/// unset) names `name`.
fn part(name: &str) -> bool {
    std::env::var("WXNOTIFY_BENCH_PARTS").map_or(true, |parts| parts.split(',').any(|p| p.trim() == name))
}

async fn candidate_query(name: &str, state: &wxnotify::AppState, backend: DatabaseKind) {
    let services = state.services.clone();
    let mut samples = Vec::new();
    let mut found = 0;
    for _ in 0..5 {
        let started = Instant::now();
        found = digest::candidates_of(&services, None, digest::DEFAULT_TEMPLATE).await.expect("the candidate query").len();
        samples.push(started.elapsed());
    }
    let candidates = median(&mut samples);
    let mut samples = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        Sql::new(BARE_GROUP_BY).all(&services.db).await.expect("the bare GROUP BY");
        samples.push(started.elapsed());
    }
    let bare = median(&mut samples);
    println!(
        "[{name}] candidate query: {found} candidates, median {:.0} ms ({:.0} % of the goal 1000 ms; {})",
        ms(candidates),
        ms(candidates) / 10.0,
        support::times_baseline(candidates, bare, &format!("bare GROUP BY of the unread rows, {:.0} ms", ms(bare)))
    );
    if backend == DatabaseKind::Postgres {
        explain_candidates(state).await;
    }
}

async fn sends(name: &str, sim: &SimHandle, test_db: &TestDb) {
    println!(
        "[{name}] {:>11} {:>7} {:>10} {:>9} {:>13} {:>10}",
        "concurrency", "sends", "elapsed s", "sends/s", "bound sends/s", "of bound"
    );
    let mut first_id = 1;
    for concurrency in [16usize, 64] {
        let settings = overrides(sim, &concurrency.to_string());
        let (one, _, stop_one, server_one) = common::start_server(test_db.url.clone(), &common::borrowed(&settings)).await;
        let before = sim.sent_messages().len();
        let filter = json!({"id": {"_gte": first_id, "_lt": first_id + DIGEST_SENDS}});
        let request = DigestRequest { filter: Some(filter), ..DigestRequest::default() };
        let (started, started_at) = (Instant::now(), chrono::Utc::now());
        let report = digest::run(&one.services, &request).await.expect("the digest runs");
        let elapsed = started.elapsed();
        assert_eq!(report.sent as i64, DIGEST_SENDS, "{report:?}");
        let arrivals: Vec<_> = sim.sent_messages()[before..].iter().map(|m| (m.at - started_at).as_seconds_f64()).collect();
        assert_eq!(arrivals.len(), DIGEST_SENDS as usize);
        let rate = report.sent as f64 / elapsed.as_secs_f64();
        let bound = concurrency as f64 / LATENCY.as_secs_f64();
        // Sends arrive at the simulator when they leave: the first after the
        // digest's start-up (plan, quota check, first page), the last one
        // latency before the answer the run waits for.
        let (first, last) = arrivals.iter().fold((f64::MAX, 0f64), |(lo, hi), &t| (lo.min(t), hi.max(t)));
        println!(
            "[{name}] {concurrency:>11} {:>7} {:>10.2} {rate:>9.0} {bound:>13.0} {:>9.0}%   first send left at {:.0} ms, the last at {:.0} ms",
            report.sent,
            elapsed.as_secs_f64(),
            100.0 * rate / bound,
            first * 1000.0,
            last * 1000.0,
        );
        first_id += DIGEST_SENDS;
        let _ = stop_one.send(());
        server_one.await.ok();
    }
}

/// The least a candidate query reads: every unread row, counted per
/// account and type.
const BARE_GROUP_BY: &str = "SELECT account_account, type, count(*) FROM point_count GROUP BY account_account, type";

/// `EXPLAIN (ANALYZE, BUFFERS)` of the statements the candidate query runs.
async fn explain_candidates(state: &wxnotify::AppState) {
    state.sql_statements.record();
    digest::candidates_of(&state.services, None, digest::DEFAULT_TEMPLATE).await.expect("the candidate query");
    // The scheduler's own polls share the pool; only the candidate query reads point_count.
    for statement in state.sql_statements.take_recorded().into_iter().filter(|s| s.sql.contains("point_count")) {
        let mut explained = statement.clone();
        explained.sql = format!("EXPLAIN (ANALYZE, BUFFERS) {}", statement.sql);
        let Ok(rows) = state.db.query_all_raw(explained).await else { continue };
        println!("--- candidate query statement:\n{}", statement.sql);
        for row in rows {
            println!("    {}", row.try_get::<String>("", "QUERY PLAN").unwrap_or_default());
        }
    }
}

/// `CALLS` trivial requests from `CLIENTS` clients: the HTTP and GraphQL
/// floor the burst is measured against.
async fn trivial_rate(url: &str, token: &str) -> f64 {
    let next = Arc::new(AtomicUsize::new(0));
    let client = reqwest::Client::new();
    let started = Instant::now();
    let workers = (0..CLIENTS).map(|_| {
        let (next, client, url, token) = (next.clone(), client.clone(), url.to_string(), token.to_string());
        tokio::spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < BURST_CALLS {
                let body = json!({ "query": "{ __typename }" });
                let answer: Value = client.post(&url).bearer_auth(&token).json(&body).send().await.unwrap().json().await.unwrap();
                assert!(answer.get("errors").is_none(), "{answer}");
            }
        })
    });
    for worker in futures::future::join_all(workers).await {
        worker.unwrap();
    }
    BURST_CALLS as f64 / started.elapsed().as_secs_f64()
}

/// 10,000 calls over 100 accounts from 64 clients.
async fn burst(name: &str, address: &str, sim: &SimHandle) {
    let token = wxnotify::auth::Jwt::new(&wxnotify::settings::Secret::new(common::JWT_SECRET)).mint(
        wxnotify::auth::Role::User,
        Some("1"),
        Duration::from_secs(3600),
    );
    let before = sim.sent_messages().len();
    let next = Arc::new(AtomicUsize::new(0));
    let client = reqwest::Client::new();
    let url = format!("{address}/api/graphql");
    let started = Instant::now();
    let workers = (0..CLIENTS).map(|_| {
        let (next, client, url, token) = (next.clone(), client.clone(), url.clone(), token.clone());
        tokio::spawn(async move {
            let mut statuses = Vec::new();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= BURST_CALLS {
                    return statuses;
                }
                // Accounts BURST_ACCOUNTS+1.. were not in the digest above.
                let account = ACCOUNTS - (n as i64 % BURST_ACCOUNTS);
                let body =
                    json!({ "query": "mutation($a: bigint!) { notifyAccount(account_id: $a) { status } }", "variables": { "a": account } });
                let answer: Value = client.post(&url).bearer_auth(&token).json(&body).send().await.unwrap().json().await.unwrap();
                statuses.push(answer["data"]["notifyAccount"]["status"].as_str().unwrap_or("ERROR").to_string());
            }
        })
    });
    let statuses: Vec<String> = futures::future::join_all(workers).await.into_iter().flat_map(|r| r.unwrap()).collect();
    let elapsed = started.elapsed();
    let sent = sim.sent_messages().len() - before;
    let count = |s: &str| statuses.iter().filter(|x| *x == s).count();
    println!(
        "[{name}] real-time burst: {} calls from {CLIENTS} clients over {BURST_ACCOUNTS} accounts in {:.2} s = {:.0} calls/s; \
         SENT {}, THROTTLED {}, other {}; messages sent {sent} (must be {BURST_ACCOUNTS})",
        statuses.len(),
        elapsed.as_secs_f64(),
        statuses.len() as f64 / elapsed.as_secs_f64(),
        count("SENT"),
        count("THROTTLED"),
        statuses.len() - count("SENT") - count("THROTTLED"),
    );
    let rate = statuses.len() as f64 / elapsed.as_secs_f64();
    let floor = trivial_rate(&url, &token).await;
    println!(
        "[{name}] real-time burst: {rate:.0} calls/s = {:.0} % of the goal 5000 calls/s; {:.0} % of a trivial query's {floor:.0} calls/s from the same clients",
        100.0 * rate / 5000.0,
        100.0 * rate / floor
    );
    assert_eq!(sent, BURST_ACCOUNTS as usize, "exactly one message per account per window");
    wrk_burst(name, &url, &token, sim).await;
}

/// How long each `wrk` run lasts.
const WRK_SECONDS: u64 = 3;

/// The burst again, with the 64 clients in a `wrk` process (64
/// connections, 2 threads, `benches/support/burst.lua`) instead of this
/// process's reqwest clients, which share the server's two runtime workers,
/// over the next 100 accounts; then the trivial query from the same `wrk`.
/// `wrk` runs for a time, not a count: its calls in `WRK_SECONDS` seconds.
async fn wrk_burst(name: &str, url: &str, token: &str, sim: &SimHandle) {
    let before = sim.sent_messages().len();
    // Accounts ACCOUNTS - BURST_ACCOUNTS and down: neither in the digest nor in the burst above.
    let Some(burst) = wrk(url, token, "notify", ACCOUNTS - BURST_ACCOUNTS).await else { return };
    let sent = sim.sent_messages().len() - before;
    let Some(trivial) = wrk(url, token, "trivial", 0).await else { return };
    println!(
        "[{name}] real-time burst, wrk: {} calls from {CLIENTS} connections over {BURST_ACCOUNTS} accounts in {:.2} s = {:.0} calls/s; \
         SENT {}, THROTTLED {}, other {}; messages sent {sent} (must be {BURST_ACCOUNTS})",
        burst.answered,
        burst.seconds,
        burst.rate(),
        burst.sent,
        burst.throttled,
        burst.other,
    );
    println!(
        "[{name}] real-time burst, wrk: {:.0} calls/s = {:.0} % of the goal 5000 calls/s; {:.0} % of a trivial query's {:.0} calls/s from the same wrk",
        burst.rate(),
        100.0 * burst.rate() / 5000.0,
        100.0 * burst.rate() / trivial.rate(),
        trivial.rate(),
    );
    assert_eq!(burst.other + trivial.other, 0, "every call answered SENT or THROTTLED (the trivial query without errors)");
    assert_eq!(burst.sent, BURST_ACCOUNTS as usize, "one SENT per account");
    assert_eq!(sent, BURST_ACCOUNTS as usize, "exactly one message per account per window");
}

/// What one `wrk` run counted (`burst.lua`'s `done` line).
struct WrkRun {
    answered: usize,
    sent: usize,
    throttled: usize,
    other: usize,
    seconds: f64,
}

impl WrkRun {
    fn rate(&self) -> f64 {
        self.answered as f64 / self.seconds
    }
}

/// Runs `wrk` with `burst.lua` in `mode` over `BURST_ACCOUNTS` accounts
/// counting down from `first`; `None` after saying why when `wrk` is
/// missing or fails.
async fn wrk(url: &str, token: &str, mode: &str, first: i64) -> Option<WrkRun> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/support/burst.lua");
    let (connections, seconds) = (format!("-c{CLIENTS}"), format!("-d{WRK_SECONDS}s"));
    let (first, accounts) = (first.to_string(), BURST_ACCOUNTS.to_string());
    let mut command = tokio::process::Command::new("wrk");
    command.args(["-t2", &connections, &seconds, "-s", script, url, "--", token, mode, &first, &accounts]);
    let out = support::run_peer(&mut command, "wrk (Debian/Ubuntu: apt-get install wrk)").await?;
    let line = out.lines().find_map(|l| l.strip_prefix("WXNOTIFY "))?;
    let field = |key: &str| -> u64 {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
            .unwrap_or_else(|| panic!("{key} in {line}"))
    };
    Some(WrkRun {
        answered: field("answered") as usize,
        sent: field("sent") as usize,
        throttled: field("throttled") as usize,
        other: field("other") as usize,
        seconds: field("duration_us") as f64 / 1e6,
    })
}

/// The accounts (all following, as `oa-<id>`) and their unread rows, in two
/// statements. Timestamps are bound, so both databases store them as they
/// store every other timestamp.
async fn seed(db: &DatabaseConnection) {
    let now = chrono::Utc::now();
    // Each script is given the placeholders of now, the account count and the rows per account.
    let run = |script: fn(&str, &str, &str) -> String| {
        let mut sql = Sql::default();
        let (at, count, rows) = (sql.param(now), sql.param(ACCOUNTS), sql.param(ROWS_PER_ACCOUNT));
        sql.push(&script(&at, &count, &rows));
        async move { sql.execute(db).await.unwrap() }
    };
    run(|now, accounts, _| {
        format!(
            r#"WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < {accounts})
        INSERT INTO account (created_at, updated_at, nickname, user_status, oaopenid)
        SELECT {now}, {now}, 'user' || n, CASE WHEN n % 2 = 0 THEN '经纪人' ELSE '新人' END, 'oa-' || n FROM g"#
        )
    })
    .await;
    run(|now, accounts, rows| {
        format!(
            r#"WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < {accounts} * {rows})
        INSERT INTO point_count (created_at, updated_at, account_account, type, sender, content)
        SELECT {now}, {now}, (n - 1) / {rows} + 1, CASE WHEN n % 3 = 0 THEN '投递邀约' ELSE '聊天' END, 'sender', 'content' FROM g"#
        )
    })
    .await;
    templates(db).await;
    settle(db).await;
}

/// Statistics for the seeded tables; on PostgreSQL also the visibility map,
/// as autovacuum leaves a table it has caught up with, so a count can read
/// the `(account_account, type)` index alone (freshly inserted rows must be
/// checked in the heap, which took a candidate page 110 ms instead of 59;
/// docs/performance.md).
async fn settle(db: &DatabaseConnection) {
    let statement = match DatabaseKind::of(db) {
        DatabaseKind::Postgres => "VACUUM ANALYZE",
        DatabaseKind::Sqlite => "ANALYZE",
    };
    db.execute_unprepared(statement).await.unwrap();
}

/// The digest's template and the real-time one.
async fn templates(db: &DatabaseConnection) {
    db.execute_unprepared(
        r#"INSERT INTO message_template (created_at, updated_at, name, channel, template_id, data) VALUES
           ('2026-01-01T00:00:00+00:00', '2026-01-01T00:00:00+00:00', 'digest', 'OA_TEMPLATE', 'tmpl-digest',
            '{"thing1":{"value":"{{nickname}}"},"thing2":{"value":"{{summary}}"},"number3":{"value":"{{total}}"}}'),
           ('2026-01-01T00:00:00+00:00', '2026-01-01T00:00:00+00:00', 'realtime_multi', 'OA_TEMPLATE', 'tmpl-multi',
            '{"thing1":{"value":"你收到了{{count}}条消息"}}')"#,
    )
    .await
    .expect("the templates");
}
