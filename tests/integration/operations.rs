//! Running it: `/metrics`, `wxnotify doctor`.

use serde_json::json;
use wxnotify::doctor::{self, Verdict};
use wxnotify::settings::Settings;
use wxnotify::sim::{SimConfig, Simulator};

use crate::both_databases;
use crate::common::JWT_SECRET;

both_databases! {
    async fn metrics_count_requests_and_statements(app) {
        app.data("query listAccounts { account { id } }", json!({})).await;
        let response = app.get("/metrics").await;
        assert_eq!(response.status(), 200);
        let text = response.text().await.unwrap();
        assert!(text.contains(r#"wxnotify_graphql_requests_total{operation="listAccounts",outcome="ok"}"#), "{text}");
        assert!(text.contains("wxnotify_sql_statements_total"), "{text}");
        assert!(text.contains("wxnotify_graphql_request_duration_seconds"), "{text}");
        assert!(!text.contains(crate::common::JWT_SECRET));
    }

    async fn doctor_checks_the_database_and_both_apps(app) {
        let sim = Simulator::start(SimConfig::default()).await.unwrap();
        let (base, oa, mp) = (sim.base_url(), sim.oa_appid(), sim.mp_appid());
        let settings = |oa_secret: &str| {
            Settings::with_overrides([
                ("DATABASE_URL", app.test_db.url.as_str()), ("JWT_SECRET", JWT_SECRET), ("WECHAT_API_BASE", base.as_str()),
                ("OA_APPID", oa.as_str()), ("OA_SECRET", oa_secret), ("MP_APPID", mp.as_str()), ("MP_SECRET", "sim-mp-secret"),
            ])
            .unwrap()
        };
        // A wrong secret shows while no valid token is cached (once one is,
        // doctor reuses it and spends no quota).
        let checks = doctor::run(&settings("wrong-secret")).await;
        let verdict = |name: &str| &checks.iter().find(|c| c.name == name).unwrap().verdict;
        assert!(matches!(verdict("service account"), Verdict::Fail(t) if t.contains("WXNOTIFY_OA_SECRET")), "{checks:?}");
        assert!(!doctor::print(&checks));

        let checks = doctor::run(&settings("sim-oa-secret")).await;
        let verdict = |name: &str| &checks.iter().find(|c| c.name == name).unwrap().verdict;
        for name in ["database", "migrations", "jwt secret", "service account", "mini-program"] {
            assert!(matches!(verdict(name), Verdict::Ok(_)), "{name}: {checks:?}");
        }
        assert!(matches!(verdict("callback"), Verdict::Warn(t) if t.contains("WXNOTIFY_OA_TOKEN")), "{checks:?}");
        assert!(doctor::print(&checks));
    }

    async fn doctor_says_whether_postgresql_is_reached_over_tls_on_this_host(app) {
        if app.backend != wxnotify::db::DatabaseKind::Postgres {
            assert!(doctor::run(&app.state.settings).await.iter().all(|c| c.name != "database tls"), "SQLite has no transport");
            return;
        }
        let base = app.test_db.url.split('?').next().unwrap().to_string();
        let with = |mode: &str| {
            let url = format!("{base}?sslmode={mode}");
            Settings::with_overrides([("DATABASE_URL", url.as_str()), ("JWT_SECRET", JWT_SECRET)]).unwrap()
        };
        let transport = |checks: Vec<doctor::Check>| checks.into_iter().find(|c| c.name == "database tls").map(|c| c.verdict);
        let plain = transport(doctor::run(&with("disable")).await);
        assert!(matches!(&plain, Some(Verdict::Ok(t)) if t.contains("no TLS")), "{plain:?}");
        // `prefer` takes TLS exactly when the server offers it.
        let setting = wxnotify::db::sql::Sql::new("SELECT current_setting('ssl') AS ssl").one(&app.db).await.unwrap().unwrap();
        let offered = setting.try_get::<String>("", "ssl").unwrap() == "on";
        let preferred = transport(doctor::run(&with("prefer")).await);
        if offered {
            assert!(matches!(&preferred, Some(Verdict::Warn(t)) if t.contains("sslmode=disable")), "{preferred:?}");
        } else {
            assert!(matches!(&preferred, Some(Verdict::Ok(t)) if t.contains("no TLS")), "{preferred:?}");
        }
    }
}

#[tokio::test]
async fn doctor_says_when_the_database_cannot_be_opened() {
    let settings = Settings::with_overrides([("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none"), ("JWT_SECRET", JWT_SECRET)]).unwrap();
    let checks = doctor::run(&settings).await;
    assert_eq!(checks.len(), 1);
    assert!(matches!(&checks[0].verdict, Verdict::Fail(t) if t.contains("WXNOTIFY_DATABASE_URL")), "{checks:?}");
}

/// The real binary, as operators run it: JSON logs at `debug` carry no
/// secret or token through a login, a send and a SIGTERM, every line is
/// JSON, and SIGTERM stops the server cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_never_carry_secrets_and_sigterm_stops_cleanly() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    use crate::common::{TestDb, sim_settings};
    use wxnotify::db::DatabaseKind;
    use wxnotify::sim::{SimFollower, SimMpUser};

    for backend in [DatabaseKind::Sqlite, DatabaseKind::Postgres] {
        let Some(test_db) = TestDb::new(backend).await else { continue };
        let sim = Simulator::start(SimConfig::default()).await.unwrap();
        sim.add_followers([SimFollower::new("oaFan")]);
        sim.add_mp_users([SimMpUser::new("oMpFan", Some("uFan"), &["login-code"])]);
        let mut server = KillOnDrop(
            Command::new(env!("CARGO_BIN_EXE_wxnotify"))
                .arg("serve")
                .envs(sim_settings(&sim).into_iter().map(|(k, v)| (format!("WXNOTIFY_{k}"), v)))
                .env("WXNOTIFY_DATABASE_URL", &test_db.url)
                .env("WXNOTIFY_LISTEN", "127.0.0.1:0")
                .env("WXNOTIFY_JWT_SECRET", JWT_SECRET)
                .env("WXNOTIFY_LOG_FORMAT", "json")
                .env("RUST_LOG", "debug")
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("the wxnotify binary starts"),
        );
        let (lines, logged) = std::sync::mpsc::channel::<String>();
        let stderr = BufReader::new(server.0.stderr.take().unwrap());
        std::thread::spawn(move || stderr.lines().map_while(Result::ok).try_for_each(|line| lines.send(line)));
        // The port it bound, from its own "listening" line.
        let mut logs = Vec::new();
        let addr = loop {
            let line = logged.recv_timeout(std::time::Duration::from_secs(30)).expect("the server logs that it listens");
            let listening =
                serde_json::from_str::<serde_json::Value>(&line).ok().and_then(|l| l["fields"]["addr"].as_str().map(String::from));
            logs.push(line);
            if let Some(addr) = listening {
                break addr;
            }
        };
        let client = reqwest::Client::new();
        let base = format!("http://{addr}");
        assert!(client.get(format!("{base}/healthz")).send().await.is_ok_and(|r| r.status().is_success()), "the server answers /healthz");
        let graphql = |token: Option<String>, query: &'static str| {
            let mut request = client.post(format!("{base}/api/graphql")).json(&json!({ "query": query }));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            async move { request.send().await.unwrap().json::<serde_json::Value>().await.unwrap() }
        };
        let login = graphql(None, r#"mutation { loginWithWechatMiniApp(code: "login-code") { jwt { token } } }"#).await;
        let user_jwt = login["data"]["loginWithWechatMiniApp"]["jwt"]["token"].as_str().expect("a token").to_string();
        let admin_jwt = wxnotify::auth::Jwt::new(&wxnotify::settings::Secret::new(JWT_SECRET)).mint(
            wxnotify::auth::Role::Admin,
            None,
            std::time::Duration::from_secs(60),
        );
        let send =
            r#"mutation { sendTemplateMessage(input: {touser: "oaFan", template_id: "t", data: {thing1: {value: "hi"}}}) { status } }"#;
        let sent = graphql(Some(admin_jwt.clone()), send).await;
        assert_eq!(sent["data"]["sendTemplateMessage"]["status"], "SENT", "{sent}");
        let db = test_db.connect().await;
        let access_token =
            wxnotify::db::sql::Sql::new("SELECT tok FROM actok").one(&db).await.unwrap().unwrap().try_get::<String>("", "tok").unwrap();
        db.close().await.unwrap();

        let terminated = Command::new("kill").args(["-TERM", &server.0.id().to_string()]).status().unwrap();
        assert!(terminated.success());
        let mut status = None;
        for _ in 0..100 {
            status = server.0.try_wait().unwrap();
            if status.is_some() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let status = status.expect("the server stops within 10 s of SIGTERM");
        logs.extend(logged.iter()); // until the process closed its stderr
        let logs = logs.join("\n");
        assert!(status.success(), "SIGTERM is a clean stop: {status}\n{logs}");
        assert!(logs.contains("wxnotify stopped"), "{logs}");
        for line in logs.lines().filter(|l| !l.trim().is_empty()) {
            assert!(serde_json::from_str::<serde_json::Value>(line).is_ok(), "not a JSON line: {line}");
        }
        for secret in ["sim-oa-secret", "sim-mp-secret", JWT_SECRET, &user_jwt, &admin_jwt, &access_token, "login-code"] {
            assert!(!logs.contains(secret), "the logs carry {secret:?}");
        }
    }
}

/// A child process that does not outlive a failed test.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
