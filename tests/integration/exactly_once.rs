//! Every message exactly once, and the delivery log exact, on SQLite and
//! PostgreSQL: a template message whose outcome is unknown (its sender died,
//! its answer timed out, the database would not take the answer) is sent
//! again with its `client_msg_id` inside the re-send window and settled SENT
//! with the msgid WeChat names; past the window, or without such an id, it
//! becomes FAILED "outcome unknown" and is never sent. The real binary is
//! killed with SIGKILL mid-digest, alone and beside a second server, and its
//! PostgreSQL is stopped mid-digest.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use wxnotify::notify::digest::{self, DigestRequest};
use wxnotify::notify::outbox;
use wxnotify::sim::{RepeatAnswer, SimFollower, SimHandle, Simulator};
use wxnotify::wechat::TemplateMessage;

use crate::common::{TestApp, borrowed, sim_settings, spawn_app_with};
use wxnotify::db::DatabaseKind;

/// A server on a fresh database talking to `sim`, with short leases so a
/// lapsed one is seen quickly.
async fn spawn(backend: DatabaseKind, sim: &SimHandle, extra: &[(&str, &str)]) -> Option<TestApp> {
    let mut settings = sim_settings(sim);
    settings.push(("DELIVERY_LEASE".into(), "1s".into()));
    settings.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    spawn_app_with(backend, &borrowed(&settings)).await
}

/// `n` following accounts with one unread row each, and the digest template.
async fn followers_with_unread(app: &TestApp, sim: &SimHandle, n: usize) -> Vec<i64> {
    let rows: Vec<Value> = (0..n).map(|i| json!({ "nickname": format!("u{i}"), "oaopenid": format!("oaU{i:04}") })).collect();
    sim.add_followers((0..n).map(|i| SimFollower::new(format!("oaU{i:04}"))));
    let data =
        app.data("mutation($a: [account_insert_input!]!) { insert_account(objects: $a) { returning { id } } }", json!({ "a": rows })).await;
    let ids: Vec<i64> = data["insert_account"]["returning"].as_array().unwrap().iter().map(|r| r["id"].as_i64().unwrap()).collect();
    let unread: Vec<Value> = ids.iter().map(|id| json!({ "account_account": id, "type": "聊天" })).collect();
    app.data("mutation($r: [point_count_insert_input!]!) { insert_point_count(objects: $r) { affected_rows } }", json!({ "r": unread }))
        .await;
    app.data(
        "mutation($o: message_template_insert_input!) { insert_message_template_one(object: $o) { id } }",
        json!({ "o": { "name": "digest", "channel": "OA_TEMPLATE", "template_id": "tmpl-digest",
                "data": {"thing1": {"value": "{{nickname}}"}, "thing2": {"value": "{{summary}}"}} } }),
    )
    .await;
    ids
}

/// Puts a row back to SENDING as a dead sender leaves it: first claimed
/// `claimed_ago`, its lease lapsed.
async fn abandon(app: &TestApp, id: i64, claimed_ago: chrono::Duration) {
    let now = Utc::now();
    entity::delivery::Entity::update_many()
        .col_expr(entity::delivery::Column::Status, Expr::value("SENDING"))
        .col_expr(entity::delivery::Column::ClaimedAt, Expr::value(now - claimed_ago))
        .col_expr(entity::delivery::Column::LeaseOwner, Expr::value("pid1-dead"))
        .col_expr(entity::delivery::Column::LeaseUntil, Expr::value(now - chrono::Duration::seconds(1)))
        .filter(entity::delivery::Column::Id.eq(id))
        .exec(&app.db)
        .await
        .unwrap();
}

/// Every delivery: id → (status, msgid, errmsg).
async fn deliveries(app: &TestApp) -> BTreeMap<i64, (String, Option<i64>, Option<String>)> {
    let rows = app.data("{ delivery(order_by: {id: asc}) { id status msgid errmsg } }", json!({})).await;
    rows["delivery"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let text = |k: &str| r[k].as_str().map(String::from);
            (r["id"].as_i64().unwrap(), (text("status").unwrap(), r["msgid"].as_i64(), text("errmsg")))
        })
        .collect()
}

/// Polls (up to 60 s) until no delivery is PENDING or SENDING.
async fn settled(app: &TestApp) -> BTreeMap<i64, (String, Option<i64>, Option<String>)> {
    let mut rows = deliveries(app).await;
    for _ in 0..600 {
        if rows.values().all(|(status, ..)| status != "PENDING" && status != "SENDING") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        rows = deliveries(app).await;
    }
    rows
}

/// The simulator's accepted messages by recipient: their msgids.
fn msgids_by_user(sim: &SimHandle) -> BTreeMap<String, Vec<i64>> {
    let mut out: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for message in sim.sent_messages() {
        out.entry(message.touser.clone()).or_default().push(message.msgid);
    }
    out
}

macro_rules! each_backend_and_answer {
    ($(async fn $name:ident($backend:ident, $answer:ident) $body:block)*) => {$(
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite_answer_45065() {
                let ($backend, $answer) = (DatabaseKind::Sqlite, RepeatAnswer::Exists);
                $body
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite_answer_ok() {
                let ($backend, $answer) = (DatabaseKind::Sqlite, RepeatAnswer::Ok);
                $body
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres_answer_45065() {
                let ($backend, $answer) = (DatabaseKind::Postgres, RepeatAnswer::Exists);
                $body
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres_answer_ok() {
                let ($backend, $answer) = (DatabaseKind::Postgres, RepeatAnswer::Ok);
                $body
            }
        }
    )*};
}

each_backend_and_answer! {
    async fn lapsed_sends_inside_the_window_are_resent_and_settled_past_it_never(backend, answer) {
        let sim = Simulator::start(Default::default()).await.unwrap();
        sim.set_repeat_answer(answer);
        // The test's own sweep settles the rows: with a long lease the
        // server's background sweeper (every half lease, at most a minute)
        // does not take them first.
        let Some(app) = spawn(backend, &sim, &[("DELIVERY_LEASE", "2m")]).await else { return };
        let ids = followers_with_unread(&app, &sim, 4).await;
        let services = app.state.services.clone();
        let planned = digest::plan(&services, &DigestRequest::default(), "crashed").await.unwrap().bulk;
        let queued: Vec<i64> = outbox::enqueue(&services.db, &planned).await.unwrap().iter().map(|(id, _)| *id).collect();
        // Row 0: WeChat has it, the dead sender never recorded it. Row 1: the
        // sender died before WeChat got it. Row 2: like row 0, but first sent
        // 9 minutes ago, past the 8-minute window. Row 3 stays PENDING.
        for row in [0, 2] {
            let message: TemplateMessage = serde_json::from_value(planned[row].payload.clone()).unwrap();
            services.wechat.send_template(&message).await.unwrap();
        }
        let first_msgid = sim.sent_messages()[0].msgid;
        abandon(&app, queued[0], chrono::Duration::minutes(1)).await;
        abandon(&app, queued[1], chrono::Duration::minutes(1)).await;
        abandon(&app, queued[2], chrono::Duration::minutes(9)).await;

        let tally = outbox::sweep(&services).await.unwrap();
        assert_eq!((tally.sent, tally.failed), (2, 0), "{tally:?}");
        let rows = deliveries(&app).await;
        let row = |n: usize| rows[&queued[n]].clone();
        assert_eq!((row(0).0.as_str(), row(0).1), ("SENT", Some(first_msgid)), "settled by the msgid WeChat already had");
        assert_eq!(row(1).0, "SENT");
        assert!(row(1).1.is_some());
        assert_eq!(row(2).0, "FAILED");
        assert!(row(2).2.as_deref().unwrap_or_default().starts_with("outcome unknown"), "{:?}", row(2));
        assert_eq!(row(3).0, "PENDING");
        assert_eq!(sim.repeats_dropped(), 1, "WeChat dropped the one repeat");
        let by_user = msgids_by_user(&sim);
        assert_eq!(by_user.len(), 3, "{by_user:?}");
        assert!(by_user.values().all(|m| m.len() == 1), "nobody got two: {by_user:?}");
        assert!(!by_user.contains_key("oaU0003"));
        assert_eq!(ids.len(), 4);
        app.stop().await;
    }

    async fn a_send_that_times_out_is_resent_inside_the_window(backend, answer) {
        let sim = Simulator::start(Default::default()).await.unwrap();
        sim.set_repeat_answer(answer);
        sim.add_followers([SimFollower::new("oaSlow")]);
        let Some(app) = spawn(backend, &sim, &[("WECHAT_TIMEOUT", "400ms")]).await else { return };
        // Warm the token cache, then make WeChat take the send but answer late.
        app.state.services.wechat.access_token(wxnotify::wechat::App::Oa).await.unwrap();
        sim.set_answer_delay(Duration::from_millis(1500));
        let send = r#"mutation($i: SendTemplateMessageInput!) { sendTemplateMessage(input: $i) { status errmsg delivery_id } }"#;
        let input = json!({ "touser": "oaSlow", "template_id": "tmpl", "data": {"thing1": {"value": "hi"}}, "client_msg_id": "slow-1" });
        let first = app.data(send, json!({ "i": input })).await["sendTemplateMessage"].clone();
        assert_eq!(first["status"], "SENDING", "{first}");
        assert!(first["errmsg"].as_str().unwrap_or_default().contains("re-sent with the same client_msg_id"), "{first}");
        assert_eq!(sim.sent_messages().len(), 1, "WeChat has it");
        sim.set_answer_delay(Duration::ZERO);

        let rows = settled(&app).await;
        let (status, msgid, _) = rows.values().next().cloned().unwrap();
        assert_eq!((status.as_str(), msgid), ("SENT", Some(sim.sent_messages()[0].msgid)), "{rows:?}");
        assert_eq!((sim.sent_messages().len(), sim.repeats_dropped()), (1, 1), "re-sent once, dropped by WeChat");
        app.stop().await;
    }
}

/// WeChat's errmsg for 40001 recommends stable_token, and it cannot
/// invalidate a token another system holds: it is the default.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_come_from_stable_token_by_default() {
    for backend in [DatabaseKind::Sqlite, DatabaseKind::Postgres] {
        let sim = Simulator::start(Default::default()).await.unwrap();
        sim.add_followers([SimFollower::new("oaFan")]);
        let Some(app) = spawn(backend, &sim, &[]).await else { continue };
        let send =
            r#"mutation { sendTemplateMessage(input: {touser: "oaFan", template_id: "t", data: {thing1: {value: "hi"}}}) { status } }"#;
        assert_eq!(app.data(send, json!({})).await["sendTemplateMessage"]["status"], "SENT");
        assert_eq!((sim.count_calls("/cgi-bin/stable_token"), sim.count_calls("/cgi-bin/token")), (1, 0), "{backend:?}");
        app.stop().await;
    }
}

/// The real `wxnotify` binary on a database, killed when dropped.
struct Binary {
    child: std::process::Child,
    base: String,
    logs: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Binary {
    /// Starts `wxnotify serve` talking to `sim` and waits for its address.
    fn start(sim: &SimHandle, database_url: &str, extra: &[(&str, &str)]) -> Binary {
        use std::io::{BufRead, BufReader};
        use std::process::{Command, Stdio};
        let mut command = Command::new(env!("CARGO_BIN_EXE_wxnotify"));
        command
            .arg("serve")
            .envs(sim_settings(sim).into_iter().map(|(k, v)| (format!("WXNOTIFY_{k}"), v)))
            .env("WXNOTIFY_DATABASE_URL", database_url)
            .env("WXNOTIFY_LISTEN", "127.0.0.1:0")
            .env("WXNOTIFY_JWT_SECRET", crate::common::JWT_SECRET)
            .env("WXNOTIFY_LOG_FORMAT", "json")
            .env("WXNOTIFY_SCHEDULER", "false")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in extra {
            command.env(format!("WXNOTIFY_{k}"), v);
        }
        let mut child = command.spawn().expect("the wxnotify binary starts");
        let (lines, logged) = std::sync::mpsc::channel::<String>();
        let mut stderr = BufReader::new(child.stderr.take().expect("stderr is piped"));
        let logs = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = logs.clone();
        // Drains the log for the process's whole life, so it never blocks on a full pipe.
        std::thread::spawn(move || {
            // Bytes, not `lines()`: a line that is not UTF-8 must not stop the
            // draining, or the server blocks on a full pipe.
            let mut raw = Vec::new();
            while stderr.read_until(b'\n', &mut raw).is_ok_and(|n| n > 0) {
                let line = String::from_utf8_lossy(&raw).trim_end_matches('\n').to_string();
                raw.clear();
                if std::env::var_os("WXNOTIFY_TEST_SHOW_LOGS").is_some() {
                    eprintln!("{line}");
                }
                kept.lock().unwrap().push(line.clone());
                let _ = lines.send(line);
            }
        });
        let addr = loop {
            let line = logged.recv_timeout(Duration::from_secs(60)).expect("the server logs that it listens");
            if let Some(addr) = serde_json::from_str::<Value>(&line).ok().and_then(|l| l["fields"]["addr"].as_str().map(String::from)) {
                break addr;
            }
        };
        Binary { child, base: format!("http://{addr}"), logs }
    }

    /// What a test that failed to settle needs to see: the delivery rows
    /// by status and holder, the run announcements, what the simulator
    /// got, whether this server is alive and answers, and its last logs.
    async fn explain(&mut self, db: &sea_orm::DatabaseConnection, sim: &SimHandle) -> String {
        let mut out = String::new();
        let held = wxnotify::db::sql::Sql::new(
            "SELECT status, COALESCE(lease_owner, '-') AS owner, COUNT(*) AS n, MIN(lease_until) AS until FROM delivery \
             GROUP BY status, lease_owner ORDER BY status",
        )
        .all(db)
        .await;
        match held {
            Ok(rows) => {
                for r in rows {
                    let status: String = r.try_get("", "status").unwrap_or_default();
                    let owner: String = r.try_get("", "owner").unwrap_or_default();
                    let n: i64 = r.try_get("", "n").unwrap_or_default();
                    let until: Option<chrono::DateTime<Utc>> = r.try_get("", "until").ok().flatten();
                    out += &format!("delivery: {status} held by {owner}: {n} rows, earliest lease_until {until:?}\n");
                }
            }
            Err(e) => out += &format!("delivery: unreadable: {e}\n"),
        }
        if let Ok(rows) = wxnotify::db::sql::Sql::new("SELECT key, value FROM wxnotify_meta").all(db).await {
            for r in rows {
                let key: String = r.try_get("", "key").unwrap_or_default();
                let value: String = r.try_get("", "value").unwrap_or_default();
                out += &format!("wxnotify_meta: {key} = {value}\n");
            }
        }
        out +=
            &format!("simulator: {} messages, {} repeats dropped; now {}\n", sim.sent_messages().len(), sim.repeats_dropped(), Utc::now());
        out += &format!("server process: {:?}\n", self.child.try_wait());
        let probe = tokio::time::timeout(Duration::from_secs(5), reqwest::get(format!("{}/healthz", self.base))).await;
        out += &format!("server answers /healthz within 5 s: {}\n", matches!(probe, Ok(Ok(_))));
        let logs = self.logs.lock().unwrap();
        out += &format!("its last log lines ({} in all):\n", logs.len());
        for line in logs.iter().rev().take(40).rev() {
            out += line;
            out += "\n";
        }
        out
    }

    fn logged(&self, text: &str) -> bool {
        self.logs.lock().unwrap().iter().any(|line| line.contains(text))
    }

    /// SIGKILL: no shutdown, no last words.
    fn kill(&mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("the killed server is reaped");
    }

    async fn graphql(&self, query: &str, variables: Value) -> Value {
        graphql_at(&self.base, query, variables).await
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn graphql_at(base: &str, query: &str, variables: Value) -> Value {
    let response = reqwest::Client::new()
        .post(format!("{base}/api/graphql"))
        .bearer_auth(admin_token())
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .expect("POST /api/graphql");
    response.json().await.expect("a JSON answer")
}

/// `n` following accounts with unread rows and the digest template, through
/// the server's own GraphQL.
async fn seed(server: &Binary, sim: &SimHandle, n: usize) {
    sim.add_followers((0..n).map(|i| SimFollower::new(format!("oaU{i:04}"))));
    let rows: Vec<Value> = (0..n).map(|i| json!({ "nickname": format!("u{i}"), "oaopenid": format!("oaU{i:04}") })).collect();
    let inserted = server
        .graphql("mutation($a: [account_insert_input!]!) { insert_account(objects: $a) { returning { id } } }", json!({ "a": rows }))
        .await;
    let ids: Vec<i64> = inserted["data"]["insert_account"]["returning"]
        .as_array()
        .expect("accounts inserted")
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    let unread: Vec<Value> = ids.iter().map(|id| json!({ "account_account": id, "type": "聊天" })).collect();
    server
        .graphql("mutation($r: [point_count_insert_input!]!) { insert_point_count(objects: $r) { affected_rows } }", json!({ "r": unread }))
        .await;
    let template = json!({ "name": "digest", "channel": "OA_TEMPLATE", "template_id": "tmpl-digest",
        "data": {"thing1": {"value": "{{nickname}}"}, "thing2": {"value": "{{summary}}"}} });
    server
        .graphql(
            "mutation($o: message_template_insert_input!) { insert_message_template_one(object: $o) { id } }",
            json!({ "o": template }),
        )
        .await;
}

const DIGEST: &str = r#"mutation($r: String) { notifyDigest(run_id: $r) { run_id candidates sent failed skipped pending stopped } }"#;

/// Starts a digest on `server` without waiting for its answer (there is
/// none when the server is killed).
fn start_digest(server: &Binary) -> tokio::task::JoinHandle<()> {
    let request = reqwest::Client::new().post(format!("{}/api/graphql", server.base)).bearer_auth(admin_token()).json(&json!({
        "query": DIGEST, "variables": { "r": "nightly" } }));
    tokio::spawn(async move {
        let _ = request.send().await;
    })
}

fn admin_token() -> String {
    wxnotify::auth::Jwt::new(&wxnotify::settings::Secret::new(crate::common::JWT_SECRET)).mint(
        wxnotify::auth::Role::Admin,
        None,
        Duration::from_secs(3600),
    )
}

async fn wait_for_sends(sim: &SimHandle, n: usize) {
    for _ in 0..3000 {
        if sim.sent_messages().len() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the digest did not reach {n} sends within 30 s");
}

/// The delivery log straight from the database: (touser, status, msgid, errmsg).
async fn log(db: &sea_orm::DatabaseConnection) -> Vec<(String, String, Option<i64>, Option<String>)> {
    wxnotify::db::sql::Sql::new("SELECT touser, status, msgid, errmsg FROM delivery ORDER BY id")
        .all(db)
        .await
        .expect("the delivery log reads")
        .iter()
        .map(|r| {
            (
                r.try_get("", "touser").unwrap(),
                r.try_get("", "status").unwrap(),
                r.try_get("", "msgid").unwrap(),
                r.try_get("", "errmsg").unwrap(),
            )
        })
        .collect()
}

/// Polls the log (up to 90 s) until nothing is PENDING or SENDING.
async fn settled_log(db: &sea_orm::DatabaseConnection) -> Vec<(String, String, Option<i64>, Option<String>)> {
    let mut rows = log(db).await;
    for _ in 0..900 {
        if !rows.is_empty() && rows.iter().all(|(_, status, ..)| status != "PENDING" && status != "SENDING") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        rows = log(db).await;
    }
    rows
}

/// Every follower has exactly one message at the simulator, and every
/// delivery is SENT with the msgid the simulator gave that follower.
fn assert_exactly_once(sim: &SimHandle, rows: &[(String, String, Option<i64>, Option<String>)], followers: usize) {
    let by_user = msgids_by_user(sim);
    assert_eq!(by_user.len(), followers, "every follower got a message");
    let twice: Vec<_> = by_user.iter().filter(|(_, m)| m.len() != 1).collect();
    assert!(twice.is_empty(), "nobody got two: {twice:?}");
    assert_eq!(rows.len(), followers, "one delivery per follower");
    for (touser, status, msgid, errmsg) in rows {
        assert_eq!(status, "SENT", "{touser}: {status} {errmsg:?}");
        assert_eq!(*msgid, Some(by_user[touser][0]), "{touser}'s delivery names the msgid WeChat gave it");
    }
}

async fn count_status(db: &sea_orm::DatabaseConnection, status: &str) -> usize {
    log(db).await.iter().filter(|(_, s, ..)| s == status).count()
}

/// SIGKILL mid-digest, then a restart that finishes the run by its run_id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_digest_then_restart_sends_every_message_once_and_logs_each_sent() {
    for backend in [DatabaseKind::Sqlite, DatabaseKind::Postgres] {
        let Some(test_db) = crate::common::TestDb::new(backend).await else { continue };
        let sim = Simulator::start(Default::default()).await.unwrap();
        let settings = [("DELIVERY_LEASE", "2s"), ("WECHAT_CONCURRENCY", "4")];
        let mut first = Binary::start(&sim, &test_db.url, &settings);
        seed(&first, &sim, 300).await;
        sim.set_latency(Duration::from_millis(30));
        let run = start_digest(&first);
        wait_for_sends(&sim, 60).await;
        first.kill();
        let _ = run.await;
        let db = test_db.connect().await;
        let in_flight = count_status(&db, "SENDING").await;
        // A kill between two chunks (a sub-millisecond gap) leaves none in
        // flight; the run is still checked, the note says what it covered.
        if in_flight == 0 {
            eprintln!("note: {backend:?}: the kill fell between two chunks; nothing was in flight");
        }
        assert!(sim.sent_messages().len() < 300, "the kill came before the end");

        let second = Binary::start(&sim, &test_db.url, &settings);
        let resumed = second.graphql(DIGEST, json!({ "r": "nightly" })).await;
        assert!(resumed.get("errors").is_none(), "{resumed}");
        let rows = settled_log(&db).await;
        assert_exactly_once(&sim, &rows, 300);
        assert!(sim.repeats_dropped() <= in_flight, "only messages in flight were repeated");
        eprintln!("{backend:?}: {in_flight} in flight at the kill, {} repeats dropped by WeChat", sim.repeats_dropped());
        drop(second);
        db.close().await.ok();
    }
}

/// SIGKILL mid-digest with a second server already running: it settles the
/// dead one's messages on its own, once their leases lapse.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_server_settles_a_killed_ones_messages_without_a_restart() {
    for backend in [DatabaseKind::Sqlite, DatabaseKind::Postgres] {
        let Some(test_db) = crate::common::TestDb::new(backend).await else { continue };
        let sim = Simulator::start(Default::default()).await.unwrap();
        let mut survivor = Binary::start(&sim, &test_db.url, &[("DELIVERY_LEASE", "2s"), ("PENDING_RETRY_AFTER", "2s")]);
        let mut doomed = Binary::start(&sim, &test_db.url, &[("DELIVERY_LEASE", "2s"), ("WECHAT_CONCURRENCY", "4")]);
        seed(&doomed, &sim, 200).await;
        sim.set_latency(Duration::from_millis(30));
        let run = start_digest(&doomed);
        wait_for_sends(&sim, 50).await;
        doomed.kill();
        let _ = run.await;
        let db = test_db.connect().await;
        if count_status(&db, "SENDING").await == 0 {
            eprintln!("note: {backend:?}: the kill fell between two chunks; nothing was in flight");
        }

        let rows = settled_log(&db).await;
        if sim.sent_messages().len() != 200 || rows.iter().any(|(_, s, ..)| s == "PENDING" || s == "SENDING") {
            panic!("{backend:?}: the survivor did not settle the run within 90 s\n{}", survivor.explain(&db, &sim).await);
        }
        assert_exactly_once(&sim, &rows, 200);
        assert!(survivor.graphql("{ delivery_aggregate { aggregate { count } } }", json!({})).await["data"].is_object());
        db.close().await.ok();
    }
}

/// A PostgreSQL server of the test's own (initdb into a temporary
/// directory), so it can be stopped without touching anyone else's.
struct PrivatePostgres {
    dir: tempfile::TempDir,
    bin: std::path::PathBuf,
    port: u16,
}

impl PrivatePostgres {
    /// `None` (with a note) when no PostgreSQL binaries are installed,
    /// except under `CI=true`, where that fails the test.
    fn start() -> Option<PrivatePostgres> {
        let bin = std::fs::read_dir("/usr/lib/postgresql").ok().and_then(|versions| {
            let mut found: Vec<_> =
                versions.filter_map(Result::ok).map(|v| v.path().join("bin")).filter(|b| b.join("initdb").exists()).collect();
            found.sort();
            found.pop()
        });
        let Some(bin) = bin else {
            assert!(std::env::var("CI").as_deref() != Ok("true"), "CI=true: no PostgreSQL binaries under /usr/lib/postgresql/*/bin");
            eprintln!("note: no PostgreSQL binaries under /usr/lib/postgresql/*/bin; skipping the private-PostgreSQL test");
            return None;
        };
        let dir = tempfile::tempdir().expect("a temporary directory");
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let server = PrivatePostgres { dir, bin, port };
        // initdb refuses to run as root; the postgres user owns the cluster then.
        if is_root() {
            run(std::process::Command::new("chown").args(["-R", "postgres"]).arg(server.dir.path()));
        }
        run(server.command("initdb").args(["-A", "trust", "-U", "postgres", "-D"]).arg(server.data()));
        server.pg_ctl_start();
        Some(server)
    }

    fn data(&self) -> std::path::PathBuf {
        self.dir.path().join("data")
    }

    fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    fn command(&self, tool: &str) -> std::process::Command {
        let path = self.bin.join(tool);
        let mut command = if is_root() {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            std::process::Command::new(path)
        };
        command.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
        command
    }

    fn pg_ctl_start(&self) {
        let options = format!("-p {} -k {} -c listen_addresses=127.0.0.1", self.port, self.dir.path().display());
        let log = self.dir.path().join("postgres.log");
        run(self.command("pg_ctl").arg("-D").arg(self.data()).arg("-o").arg(options).arg("-l").arg(log).args(["-w", "start"]));
    }

    /// Stops the server at once, as a crash does: no checkpoint, every
    /// connection cut.
    fn stop_immediately(&self) {
        run(self.command("pg_ctl").arg("-D").arg(self.data()).args(["-m", "immediate", "-w", "stop"]));
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self.command("pg_ctl").arg("-D").arg(self.data()).args(["-m", "immediate", "-w", "stop"]).status();
    }
}

fn is_root() -> bool {
    std::process::Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0\n")).unwrap_or(false)
}

fn run(command: &mut std::process::Command) {
    let status = command.status().unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(status.success(), "{command:?}: {status}");
}

/// The database stops mid-digest: PostgreSQL stopped with `-m immediate`
/// (its own instance) and started 3 s later, then once more until the
/// server's statements fail outright; SQLite locked by another writer past
/// the server's busy timeout. Every follower gets one message, every
/// delivery ends SENT with its msgid, the server stays up and says what
/// happened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_going_away_mid_digest_loses_no_outcome_and_sends_nothing_twice() {
    use sea_orm::ConnectionTrait;
    for (backend, until_refused) in [(DatabaseKind::Postgres, false), (DatabaseKind::Postgres, true), (DatabaseKind::Sqlite, true)] {
        let (private, test_db) = match backend {
            DatabaseKind::Postgres => {
                let Some(private) = PrivatePostgres::start() else { continue };
                let admin = sea_orm::Database::connect(private.url("postgres")).await.expect("the private PostgreSQL answers");
                admin.execute_unprepared("CREATE DATABASE wxnotify").await.unwrap();
                admin.close().await.ok();
                (Some(private), None)
            }
            DatabaseKind::Sqlite => (None, crate::common::TestDb::new(backend).await),
        };
        let url = match (&private, &test_db) {
            (Some(private), _) => private.url("wxnotify"),
            (_, Some(db)) => db.url.clone(),
            _ => continue,
        };
        let sim = Simulator::start(Default::default()).await.unwrap();
        // A run the outage stopped leaves the rest PENDING; the sweeper
        // sends it once it has sat for PENDING_RETRY_AFTER.
        let settings = [("DELIVERY_LEASE", "2s"), ("WECHAT_CONCURRENCY", "4"), ("PENDING_RETRY_AFTER", "2s"), ("REQUEST_TIMEOUT", "5m")];
        let server = Binary::start(&sim, &url, &settings);
        seed(&server, &sim, 200).await;
        sim.set_latency(Duration::from_millis(30));
        let base = server.base.clone();
        let run = tokio::spawn(async move { graphql_at(&base, DIGEST, json!({ "r": "nightly" })).await });
        wait_for_sends(&sim, 50).await;
        match &private {
            Some(private) => {
                private.stop_immediately();
                tokio::time::sleep(Duration::from_secs(3)).await;
                // A pool waits up to 10 s for a connection; past that the
                // outbox's own retries carry the outcomes.
                for _ in 0..4000 {
                    if !until_refused || server.logged("the database refused an outbox statement") {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                private.pg_ctl_start();
            }
            None => {
                // Another writer holds the file longer than the server's
                // 30-second busy timeout, so its statements fail outright.
                let mut options = sea_orm::ConnectOptions::new(url.clone());
                options.max_connections(1).sqlx_logging(false);
                let locker = sea_orm::Database::connect(options).await.unwrap();
                locker.execute_unprepared("BEGIN EXCLUSIVE").await.unwrap();
                for _ in 0..3300 {
                    if server.logged("the database refused an outbox statement") {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                locker.execute_unprepared("COMMIT").await.unwrap();
                locker.close().await.ok();
            }
        }
        let report = run.await.expect("the digest request returns");
        assert!(report.get("errors").is_none(), "{backend:?}: {report}");
        eprintln!("{backend:?} (until refused: {until_refused}): {report}");
        let db = sea_orm::Database::connect(&url).await.unwrap();
        let rows = settled_log(&db).await;
        assert_exactly_once(&sim, &rows, 200);
        // The run's own count can be lower than 200: the sweeper may send
        // rows the run queued while it waited for the database.
        assert_eq!(report["data"]["notifyDigest"]["failed"], 0, "{report}");
        let health = reqwest::get(format!("{}/healthz", server.base)).await.unwrap();
        assert!(health.status().is_success(), "the server stayed up");
        if until_refused {
            assert!(server.logged("the database refused an outbox statement"), "{backend:?}: the server said the database went away");
            assert!(server.logged("the database answered again"), "{backend:?}: and that it came back");
        }
        db.close().await.ok();
        drop(server);
    }
}
