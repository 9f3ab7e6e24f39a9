//! Scale-out of digest sends on PostgreSQL: one digest queued by one
//! `wxnotify serve` process while 1, 2 and 3 such processes run on the same
//! database, against one simulator whose latency is the bottleneck (50 ms
//! per send, `WXNOTIFY_WECHAT_CONCURRENCY=8` per process). Every process
//! helps send the run (`WXNOTIFY_OUTBOX_HELP`, see `src/notify/outbox.rs`),
//! so the send rate should grow with the processes: printed next to each
//! rate are its bound (processes × 8 / 50 ms) and its ratio to one process
//! (goal ≥ 2.5× with 3). Every message is checked to have been sent once,
//! and the report to count them all. The peak RSS (VmHWM) of each process
//! is printed too.
//!
//! Run: `cargo bench --bench scale_out` (PostgreSQL from
//! `WXNOTIFY_TEST_POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432/test?sslmode=disable`;
//! `WXNOTIFY_BENCH_MESSAGES` changes the 2,400 messages).

#[path = "../tests/integration/common/mod.rs"]
mod common;
#[path = "support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::TestDb;
use sea_orm::{ConnectionTrait, DatabaseConnection};
use serde_json::{Value, json};
use wxnotify::db::DatabaseKind;
use wxnotify::db::sql::Sql;
use wxnotify::sim::{SimConfig, SimFollower, SimHandle, Simulator};

const LATENCY: Duration = Duration::from_millis(50);
const CONCURRENCY: usize = 8;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    support::print_load_average();
    let messages: i64 = std::env::var("WXNOTIFY_BENCH_MESSAGES").ok().and_then(|v| v.parse().ok()).unwrap_or(2_400);
    println!(
        "scale_out: one digest of {messages} messages, simulator latency {} ms, WXNOTIFY_WECHAT_CONCURRENCY={CONCURRENCY} per process",
        LATENCY.as_millis()
    );
    println!(
        "{:>9} {:>9} {:>8} {:>13} {:>9} {:>12} {:>16}",
        "processes", "elapsed s", "sends/s", "bound sends/s", "of bound", "vs 1 process", "peak RSS MiB"
    );
    let mut one = None;
    for processes in 1..=3usize {
        let Some(db) = TestDb::new(DatabaseKind::Postgres).await else {
            println!("PostgreSQL unreachable, skipped");
            return;
        };
        let (elapsed, rss) = run(&db, processes, messages).await;
        let rate = messages as f64 / elapsed.as_secs_f64();
        let bound = (processes * CONCURRENCY) as f64 / LATENCY.as_secs_f64();
        let base = *one.get_or_insert(rate);
        let rss: Vec<String> = rss.iter().map(|kib| format!("{:.0}", *kib as f64 / 1024.0)).collect();
        println!(
            "{processes:>9} {:>9.2} {rate:>8.0} {bound:>13.0} {:>8.0}% {:>11.2}× {:>16}",
            elapsed.as_secs_f64(),
            100.0 * rate / bound,
            rate / base,
            rss.join("/")
        );
    }
}

/// One digest with `processes` servers up; its time and each server's peak RSS (KiB).
async fn run(db: &TestDb, processes: usize, messages: i64) -> (Duration, Vec<u64>) {
    let followers = (1..=messages).map(|n| SimFollower::new(format!("oa-{n}"))).collect();
    let mut config = SimConfig { followers, latency: LATENCY, ..SimConfig::default() };
    config.daily_quotas.clear();
    let sim = Simulator::start(config).await.expect("the simulator starts");
    let mut servers: Vec<Server> = Vec::new();
    for _ in 0..processes {
        servers.push(Server::start(&sim, &db.url));
    }
    let connection = db.connect().await;
    seed(&connection, messages).await;
    // Every helper looks for announced runs every 250 ms; all are up by now.
    let started = Instant::now();
    let answer = servers[0].digest().await;
    let elapsed = started.elapsed();
    let report = &answer["data"]["notifyDigest"];
    assert_eq!(report["sent"].as_i64(), Some(messages), "{answer}");
    let mut by_user: BTreeMap<String, usize> = BTreeMap::new();
    for message in sim.sent_messages() {
        *by_user.entry(message.touser.clone()).or_default() += 1;
    }
    assert_eq!(by_user.len() as i64, messages, "every follower got a message");
    assert!(by_user.values().all(|n| *n == 1), "nobody got two");
    let rss = servers.iter().map(Server::peak_rss_kib).collect();
    drop(servers);
    connection.close().await.ok();
    (elapsed, rss)
}

/// The accounts (following as `oa-<n>`), one unread row each, the template.
async fn seed(db: &DatabaseConnection, messages: i64) {
    let mut sql = Sql::default();
    let (now, count) = (sql.param(chrono::Utc::now()), sql.param(messages));
    sql.push(&format!(
        r#"INSERT INTO account (created_at, updated_at, nickname, oaopenid)
           SELECT {now}, {now}, 'user' || n, 'oa-' || n FROM generate_series(1, {count}) AS n"#
    ));
    sql.execute(db).await.unwrap();
    db.execute_unprepared(
        "INSERT INTO point_count (created_at, updated_at, account_account, type, sender, content) \
         SELECT now(), now(), id, '聊天', 'sender', 'content' FROM account",
    )
    .await
    .unwrap();
    db.execute_unprepared(
        r#"INSERT INTO message_template (created_at, updated_at, name, channel, template_id, data) VALUES
           (now(), now(), 'digest', 'OA_TEMPLATE', 'tmpl-digest', '{"thing1":{"value":"{{nickname}}"},"thing2":{"value":"{{summary}}"}}')"#,
    )
    .await
    .unwrap();
    db.execute_unprepared("ANALYZE").await.unwrap();
}

/// A `wxnotify serve` process, killed when dropped.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(sim: &SimHandle, database_url: &str) -> Server {
        let mut command = Command::new(env!("CARGO_BIN_EXE_wxnotify"));
        command
            .arg("serve")
            .envs(common::sim_settings(sim).into_iter().map(|(k, v)| (format!("WXNOTIFY_{k}"), v)))
            .env("WXNOTIFY_DATABASE_URL", database_url)
            .env("WXNOTIFY_LISTEN", "127.0.0.1:0")
            .env("WXNOTIFY_JWT_SECRET", common::JWT_SECRET)
            .env("WXNOTIFY_LOG_FORMAT", "json")
            .env("WXNOTIFY_SCHEDULER", "false")
            .env("WXNOTIFY_WECHAT_CONCURRENCY", CONCURRENCY.to_string())
            .env("WXNOTIFY_REQUEST_TIMEOUT", "10m")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("the wxnotify binary starts");
        let stderr = BufReader::new(child.stderr.take().expect("stderr is piped"));
        let (lines, logged) = std::sync::mpsc::channel::<String>();
        // Drains the log for the process's whole life, so it never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                if std::env::var_os("WXNOTIFY_BENCH_SHOW_LOGS").is_some() {
                    eprintln!("{line}");
                }
                let _ = lines.send(line);
            }
        });
        let addr = loop {
            let line = logged.recv_timeout(Duration::from_secs(60)).expect("the server logs that it listens");
            if let Some(addr) = serde_json::from_str::<Value>(&line).ok().and_then(|l| l["fields"]["addr"].as_str().map(String::from)) {
                break addr;
            }
        };
        Server { child, base: format!("http://{addr}") }
    }

    async fn digest(&self) -> Value {
        let token = wxnotify::auth::Jwt::new(&wxnotify::settings::Secret::new(common::JWT_SECRET)).mint(
            wxnotify::auth::Role::Admin,
            None,
            Duration::from_secs(3600),
        );
        let query = "mutation { notifyDigest { run_id candidates sent failed skipped pending stopped } }";
        let response = reqwest::Client::new()
            .post(format!("{}/api/graphql", self.base))
            .bearer_auth(token)
            .json(&json!({ "query": query }))
            .send()
            .await
            .expect("POST /api/graphql");
        response.json().await.expect("a JSON answer")
    }

    /// VmHWM from /proc/<pid>/status, in KiB (0 where there is none).
    fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
