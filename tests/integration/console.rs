//! The web console in a real headless Chromium, on SQLite and PostgreSQL,
//! with every host but loopback unreachable: the IDE renders, its editor
//! closes brackets, Ctrl+Enter runs the seed's `notice` query with an admin
//! token and shows the same answer the API gives; the schema explorer finds
//! `update_account`; the dashboard asks anonymous and user callers for an
//! admin and shows an admin the linked count, a delivery made in the test
//! and a failure's errcode with its meaning; a zh-CN browser gets the
//! Chinese UI. No page request leaves the server's origin.
//!
//! `WXNOTIFY_CONSOLE_SCREENSHOTS=DIR` also writes a PNG of each view to DIR
//! (the README's pictures in `docs/` come from there).

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use wxnotify::auth::Role;
use wxnotify::sim::{SimFollower, SimHandle, SimMpUser};

use crate::browser::{Browser, Page};
use crate::common::TestApp;
use crate::with_simulator;
use wxnotify::db::DatabaseKind;

const NOTICE: &str = r#"query notice{ account(where:{_and:[ {oaopenid:{_is_null:false}}, {point_count:{id:{_is_null:false}}} {_or:[ {user_status:{_eq:"经纪人"}}, {user_status:{_eq:"新人"}}]} ]}){ oaopenid, chatnotice:point_count_aggregate(where:{type:{_eq:"聊天"}}){ aggregate{ count } }, nonchatnotice:point_count_aggregate(where:{type:{_eq:"投递邀约"}}){ aggregate{ count } } } }"#;
const SEND: &str = r#"mutation($i: SendTemplateMessageInput!) { sendTemplateMessage(input: $i) { errcode status delivery_id } }"#;

/// A follower who logged in to the mini-program, linked by a sync, with
/// unread rows for the notice query, and a user who does not follow; one
/// message sent, one refused (43004).
async fn seed(app: &TestApp, sim: &SimHandle) {
    sim.add_followers([SimFollower::new("oaConsole").with_unionid("uConsole"), SimFollower::new("oaGone")]);
    sim.add_mp_users([
        SimMpUser::new("mpConsole", Some("uConsole"), &["code-console"]),
        SimMpUser::new("mpNotFollowing", Some("uNotFollowing"), &["code-not-following"]),
    ]);
    let login = app.data(r#"mutation { loginWithWechatMiniApp(code: "code-console") { account { id } } }"#, json!({})).await;
    app.data(r#"mutation { loginWithWechatMiniApp(code: "code-not-following") { account { id } } }"#, json!({})).await;
    let id = login["loginWithWechatMiniApp"]["account"]["id"].clone();
    app.data("mutation { syncFollowers { matched } }", json!({})).await;
    app.data(
        r#"mutation($id: bigint!) { update_account_by_pk(pk_columns: {id: $id}, _set: {user_status: "新人"}) { id }
           insert_point_count(objects: [{account_account: $id, type: "聊天", sender: "x", content: "hi"},
                                        {account_account: $id, type: "投递邀约", sender: "y", content: "offer"}]) { affected_rows } }"#,
        json!({ "id": id }),
    )
    .await;
    let input = json!({ "touser": "oaConsole", "template_id": "tmpl-console", "data": { "thing1": { "value": "你好" } } });
    let sent = app.data(SEND, json!({ "i": input })).await;
    assert_eq!(sent["sendTemplateMessage"]["status"], "SENT", "{sent}");
    sim.inject_fault("/cgi-bin/message/template/send", 43004, 1);
    let input = json!({ "touser": "oaGone", "template_id": "tmpl-console", "data": { "thing1": { "value": "再见" } } });
    let refused = app.graphql(SEND, json!({ "i": input })).await;
    assert!(app.count("delivery").await == 2, "{refused}");
}

async fn open<'b>(browser: &'b Browser, app: &TestApp) -> Page<'b> {
    let page = browser.page().await;
    page.goto(&format!("{}/", app.address)).await;
    page.until("document.body && document.body.dataset.ready === 'true'", "the console starts").await;
    page
}

async fn screenshot(page: &Page<'_>, app: &TestApp, name: &str) {
    let Ok(dir) = std::env::var("WXNOTIFY_CONSOLE_SCREENSHOTS") else { return };
    if app.backend != DatabaseKind::Sqlite {
        return; // one set of pictures is enough
    }
    std::fs::create_dir_all(&dir).expect("the screenshot directory");
    std::fs::write(format!("{dir}/{name}.png"), page.screenshot().await).expect("writing a screenshot");
}

/// Every request the page made went to the server it came from.
fn assert_same_origin(page: &Page<'_>, app: &TestApp) {
    let requests = page.requests();
    assert!(requests.iter().any(|u| u.ends_with("/api/graphql")), "the request log saw the page's own requests: {requests:?}");
    let foreign: Vec<&String> = requests.iter().filter(|u| !u.starts_with(&format!("{}/", app.address))).collect();
    assert!(foreign.is_empty(), "requests left the origin {}: {foreign:?}", app.address);
}

async fn text(page: &Page<'_>, selector: &str) -> String {
    let value = page.eval(&format!("(document.querySelector({selector:?}) || {{}}).textContent || ''")).await;
    value.as_str().unwrap_or_default().to_string()
}

with_simulator! {
    async fn the_console_runs_the_seed_query_explores_the_schema_and_shows_the_dashboard(app, sim) {
        seed(&app, &sim).await;
        let browser = Browser::launch("en-US,en").await;
        let page = open(&browser, &app).await;
        assert_eq!(text(&page, "#tab-ide").await, "GraphQL IDE");
        assert_eq!(page.eval("document.documentElement.lang").await, "en");
        for example in ["notice", "accountupdate", "getcache", "jj"] {
            let found = page.eval(&format!("!!document.querySelector('[data-example={example}]')")).await;
            assert_eq!(found, json!(true), "the seed example {example} is listed");
        }

        // Anonymous: the IDE works, the dashboard asks for an admin.
        page.click("#tab-dashboard").await;
        page.until("document.getElementById('dash-message').dataset.state === 'need-admin'", "the dashboard refuses anonymous").await;
        assert!(text(&page, "#dash-message").await.contains("admin"));
        page.click("#tab-ide").await;

        // The editor closes brackets as they are typed and steps over closers.
        page.fill("#query", "").await;
        page.type_text("{ account(").await;
        page.type_text(")}").await;
        assert_eq!(page.eval("document.getElementById('query').value").await, "{ account()}");

        // Log in with an admin token, load the seed's notice query, run it with Ctrl+Enter.
        page.click("#login-open").await;
        page.fill("#login-token", &app.admin_token()).await;
        page.click("#login-token-use").await;
        page.until("document.getElementById('who').dataset.role === 'admin'", "the admin token is taken").await;
        page.click("#login-close").await;
        page.click("[data-example=notice]").await;
        assert_eq!(page.eval("document.getElementById('query').value").await, NOTICE, "the example is the seed's text");
        page.eval("document.getElementById('query').focus()").await;
        page.press("Enter", "Enter", 13, 2).await;
        page.until("document.getElementById('result').dataset.done", "the notice query answers").await;
        let shown: Value = serde_json::from_str(&text(&page, "#result").await).expect("the result is JSON");
        let expected = app.graphql(NOTICE, json!({})).await;
        assert_eq!(shown, expected, "the IDE shows what the API answers");
        assert_eq!(shown["data"]["account"][0]["oaopenid"], "oaConsole", "{shown}");
        assert_eq!(shown["data"]["account"][0]["chatnotice"]["aggregate"]["count"], 1);
        // Prettified, the document still gives the same answer.
        page.click("#prettify").await;
        let pretty = page.eval("document.getElementById('query').value").await;
        assert!(pretty.as_str().unwrap_or_default().lines().count() > 5, "{pretty}");
        page.eval("{ const r = document.getElementById('result'); r.textContent = ''; delete r.dataset.done; document.getElementById('query').focus(); }").await;
        page.press("Enter", "Enter", 13, 2).await;
        page.until("document.getElementById('result').dataset.done", "the prettified query answers").await;
        let again: Value = serde_json::from_str(&text(&page, "#result").await).expect("the result is JSON");
        assert_eq!(again, expected, "prettifying changed the document's meaning:\n{pretty}");
        let history = text(&page, "#history").await;
        assert!(history.contains("notice"), "the run is in the history: {history}");
        screenshot(&page, &app, "console-ide").await;

        // The seed's addScheduledJob, run from its example, shows up on the dashboard below.
        page.click("[data-example=jj]").await;
        page.eval("{ const r = document.getElementById('result'); delete r.dataset.done; document.getElementById('query').focus(); }").await;
        page.press("Enter", "Enter", 13, 2).await;
        page.until("document.getElementById('result').dataset.done", "the addScheduledJob mutation answers").await;
        let added: Value = serde_json::from_str(&text(&page, "#result").await).expect("the result is JSON");
        assert_eq!(added["data"]["addScheduledJob"]["name"], "updateOrderShippingStatus", "{added}");

        // The schema explorer finds update_account, with its arguments.
        page.click("#explorer-toggle").await;
        page.until("document.querySelectorAll('#explorer-body [data-name]').length > 0", "the explorer reads the schema").await;
        page.fill("#explorer-search", "update_account").await;
        let field = page.until("(document.querySelector('#explorer-body [data-name=update_account]') || {}).textContent", "the explorer finds update_account").await;
        let field = field.as_str().unwrap_or_default();
        assert!(field.contains("where") && field.contains("_set"), "{field}");
        let others = page.eval("[...document.querySelectorAll('#explorer-body [data-name]')].map(e => e.dataset.name)").await;
        assert!(others.as_array().is_some_and(|names| names.iter().all(|n| n.as_str().unwrap_or_default().contains("update_account"))), "{others}");
        screenshot(&page, &app, "console-explorer").await;
        page.click("#explorer-toggle").await;

        // The dashboard: linked count, the delivery sent above, the refusal's errcode explained.
        page.click("#tab-dashboard").await;
        page.until("document.getElementById('dash-message').dataset.state === 'ok'", "the dashboard loads for an admin").await;
        assert_eq!(text(&page, "[data-stat=linked]").await, "1");
        assert_eq!(text(&page, "[data-stat=accounts]").await, "2");
        assert_eq!(text(&page, "[data-stat=with_unionid]").await, "2");
        assert_eq!(text(&page, "[data-stat=coverage]").await, "50%");
        // oaGone's 43004 told the server it no longer follows.
        assert_eq!(text(&page, "[data-stat=followers]").await, "1");
        assert_eq!(text(&page, "[data-total=SENT]").await, "SENT: 1");
        assert_eq!(text(&page, "[data-total=FAILED]").await, "FAILED: 1");
        assert_eq!(page.eval("document.querySelectorAll('#d-chart rect[data-status]').length").await, json!(2));
        let recent = text(&page, "#d-recent").await;
        assert!(recent.contains("oaConsole") && recent.contains("SENT"), "{recent}");
        let jobs = text(&page, "#d-jobs").await;
        assert!(jobs.contains("updateOrderShippingStatus.updateOrderShippingStatus") && jobs.contains("0 */1 * * *"), "{jobs}");
        // Kept in the database by the sync itself, naming the process that ran it.
        let me = format!("pid {}", std::process::id());
        let syncs = text(&page, "#d-syncs").await;
        assert!(syncs.contains(&me), "the sync the seed ran is listed with who ran it: {syncs}");
        assert_eq!(page.eval("document.querySelectorAll('#d-syncs tbody tr').length").await, json!(1), "{syncs}");
        // Each job shows its coming fire times (three, hourly), not only the next one.
        let fires = page.eval("[...document.querySelectorAll('#d-jobs tbody tr')].map(r => r.children[3].textContent)[0]").await;
        assert_eq!(fires.as_str().unwrap_or_default().matches(" · ").count(), 2, "three fire times: {fires} in {jobs}");
        // The token the send used: when it expires and which process refreshed it, never the token.
        let tokens = text(&page, "#d-tokens").await;
        assert!(tokens.contains(&me), "who refreshed the token: {tokens}");
        let token = app.data("{ actok { tok } }", json!({})).await["actok"][0]["tok"].as_str().unwrap_or_default().to_string();
        assert!(!token.is_empty() && !page.eval("document.body.innerHTML").await.to_string().contains(&token), "the token is never shown");
        let failures = text(&page, "#d-failures").await;
        assert!(failures.contains("43004") && failures.contains("must follow"), "{failures}");
        screenshot(&page, &app, "console-dashboard").await;

        assert_same_origin(&page, &app);
    }

    async fn a_zh_cn_browser_gets_the_chinese_console_and_a_user_is_asked_for_an_admin(app, sim) {
        seed(&app, &sim).await;
        sim.add_mp_users([SimMpUser::new("mpSecond", None, &["code-second"])]);
        let browser = Browser::launch("zh-CN,zh").await;
        let page = open(&browser, &app).await;
        assert_eq!(page.eval("navigator.language").await, "zh-CN");
        assert_eq!(page.eval("document.documentElement.lang").await, "zh-CN");
        assert_eq!(text(&page, "#tab-ide").await, "GraphQL 调试");
        assert_eq!(text(&page, "#tab-dashboard").await, "运行看板");
        assert_eq!(text(&page, "[data-example=notice]").await, "通知查询（种子文档）");

        // A mini-program user logs in with a code from the page: the IDE is theirs, the dashboard is not.
        page.click("#login-open").await;
        page.fill("#login-code", "code-second").await;
        page.click("#login-code-use").await;
        page.until("document.getElementById('who').dataset.role === 'user'", "the code login gives a user token").await;
        page.click("#login-close").await;
        page.click("#tab-dashboard").await;
        page.until("document.getElementById('dash-message').dataset.state === 'need-admin'", "the dashboard refuses a user").await;
        assert!(text(&page, "#dash-message").await.contains("仅限管理员"));

        // An admin sees the Chinese dashboard, errcode meanings in Chinese.
        page.click("#login-open").await;
        page.fill("#login-token", &app.token(Role::Admin, None)).await;
        page.click("#login-token-use").await;
        page.click("#login-close").await;
        page.until("document.getElementById('dash-message').dataset.state === 'ok'", "the dashboard loads for an admin").await;
        assert!(text(&page, "#d-failures").await.contains("需要接收者关注公众号"));
        assert_eq!(text(&page, "[data-stat=linked]").await, "1");
        screenshot(&page, &app, "console-zh-CN").await;

        // The language switch goes back to English.
        page.eval("{ const s = document.getElementById('lang'); s.value = 'en'; s.dispatchEvent(new Event('change')); }").await;
        assert_eq!(text(&page, "#tab-dashboard").await, "Dashboard");
        assert_same_origin(&page, &app);
    }
}

crate::both_databases! {
    async fn the_request_log_catches_a_request_to_another_host(app) {
        // The same-origin check above can fail: a page without the console's
        // policy that loads from elsewhere shows up in the log.
        let browser = Browser::launch("en-US").await;
        let page = browser.page().await;
        page.goto("about:blank").await;
        page.eval("const i = new Image(); i.src = 'http://cdn.example.com/react.js'; document.body.append(i); true").await;
        page.until("true", "the image is requested").await;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !page.requests().iter().any(|u| u.contains("cdn.example.com")) {
            assert!(std::time::Instant::now() < deadline, "the request log never saw the foreign request: {:?}", page.requests());
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(!page.requests().iter().all(|u| u.starts_with(&app.address)));
    }

    async fn the_console_is_one_small_page_with_versioned_assets_and_a_same_origin_policy(app) {
        let page = app.get("/").await;
        assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
        assert_eq!(page.headers()["cache-control"], "no-cache");
        let csp = page.headers()["content-security-policy"].to_str().unwrap().to_string();
        assert!(csp.contains("default-src 'none'") && csp.contains("connect-src 'self'"), "{csp}");
        let html = page.text().await.unwrap();
        assert_eq!(app.get("/api/graphql").await.text().await.unwrap(), html, "a browser's GET /api/graphql opens the console");
        let mut bytes = html.len();
        for (asset, kind) in [("console.js", "text/javascript; charset=utf-8"), ("console.css", "text/css; charset=utf-8")] {
            let start = html.find(&format!("/console/{asset}?v=")).unwrap_or_else(|| panic!("the page names {asset}"));
            let url = &html[start..start + html[start..].find('"').unwrap()];
            let response = app.get(url).await;
            assert_eq!(response.status(), 200, "{url}");
            assert_eq!(response.headers()["content-type"], kind);
            assert_eq!(response.headers()["cache-control"], "public, max-age=31536000, immutable");
            bytes += response.text().await.unwrap().len();
            let stale = app.get(&format!("/console/{asset}?v=old")).await;
            assert_eq!(stale.headers()["cache-control"], "no-cache", "another version is revalidated");
        }
        assert!(bytes < 300 * 1024, "the console is {bytes} bytes; keep it under 300 KB");
    }

    async fn the_stats_endpoint_is_for_admins_and_refuses_bad_windows(app) {
        let url = format!("{}/api/console/stats", app.address);
        let anonymous = app.client.get(&url).send().await.unwrap();
        assert_eq!(anonymous.status(), 403);
        let user = app.client.get(&url).bearer_auth(app.token(Role::User, Some("1"))).send().await.unwrap();
        assert_eq!(user.status(), 403);
        let body: Value = user.json().await.unwrap();
        assert_eq!(body["errors"][0]["extensions"]["code"], "access-denied");
        let forged = app.client.get(&url).bearer_auth("a.b.c").send().await.unwrap();
        assert_eq!(forged.status(), 401);
        let bad = app.client.get(format!("{url}?window=2y")).bearer_auth(app.admin_token()).send().await.unwrap();
        assert_eq!(bad.status(), 400);
        let body: Value = bad.json().await.unwrap();
        assert!(body["errors"][0]["message"].as_str().unwrap().contains("1h, 24h, 7d"), "{body}");
        let ok: Value = app.client.get(&url).bearer_auth(app.admin_token()).send().await.unwrap().json().await.unwrap();
        assert_eq!(ok["linking"]["accounts"], 0);
        assert_eq!(ok["deliveries"]["buckets"], 24);
        assert_eq!(ok["tokens"], json!([]));

        // A database failure is logged and answered generically; the server stays up.
        app.sql("DROP TABLE job_run").await;
        let broken = app.client.get(&url).bearer_auth(app.admin_token()).send().await.unwrap();
        assert_eq!(broken.status(), 500);
        let body: Value = broken.json().await.unwrap();
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains("see the server log") && !message.contains("job_run"), "{body}");
        assert_eq!(body["errors"][0]["extensions"]["code"], "unexpected");
        assert_eq!(app.get("/healthz").await.status(), 200);
    }

    async fn the_stats_count_deliveries_by_bucket_status_and_errcode(app) {
        // Deliveries at known times: three this hour, one 3 hours ago, one
        // 2 days ago (outside the 24h window).
        let now = chrono::Utc::now();
        let row = |key: &str, channel: &str, status: &str, errcode: Option<i32>| json!({
            "channel": channel, "touser": key, "template_id": "t", "payload": {}, "dedupe_key": key, "status": status,
            "attempts": 1, "errcode": errcode, "errmsg": errcode.map(|_| "user refuse to accept the msg"),
        });
        let rows = json!([
            row("k1", "OA_TEMPLATE", "SENT", None),
            row("k2", "MP_SUBSCRIBE", "FAILED", Some(43101)),
            row("k3", "OA_TEMPLATE", "FAILED", Some(43101)),
            row("k4", "OA_TEMPLATE", "SKIPPED", None),
            row("k5", "OA_TEMPLATE", "SKIPPED", None),
        ]);
        app.data("mutation($o: [delivery_insert_input!]!) { insert_delivery(objects: $o) { affected_rows } }", json!({ "o": rows })).await;
        // k4 becomes PENDING only now: created after the server started and
        // just updated, neither the start-up recovery nor the sweeper sends it.
        for (key, hours, status) in [("k3", 3, "FAILED"), ("k4", 0, "PENDING"), ("k5", 48, "SKIPPED")] {
            entity::delivery::Entity::update_many()
                .col_expr(entity::delivery::Column::CreatedAt, Expr::value(now - chrono::Duration::hours(hours)))
                .col_expr(entity::delivery::Column::Status, Expr::value(status))
                .filter(entity::delivery::Column::DedupeKey.eq(key))
                .exec(&app.db)
                .await
                .expect("moving a delivery back in time");
        }
        let url = format!("{}/api/console/stats?window=24h", app.address);
        let stats: Value = app.client.get(&url).bearer_auth(app.admin_token()).send().await.unwrap().json().await.unwrap();
        let series = stats["deliveries"]["series"].as_array().unwrap().clone();
        let mut seen: Vec<(i64, String, String, i64)> = series
            .iter()
            .map(|s| (s["bucket"].as_i64().unwrap(), s["status"].as_str().unwrap().into(), s["channel"].as_str().unwrap().into(), s["count"].as_i64().unwrap()))
            .collect();
        seen.sort();
        assert_eq!(seen, vec![
            (20, "FAILED".into(), "OA_TEMPLATE".into(), 1),
            (23, "FAILED".into(), "MP_SUBSCRIBE".into(), 1),
            (23, "PENDING".into(), "OA_TEMPLATE".into(), 1),
            (23, "SENT".into(), "OA_TEMPLATE".into(), 1),
        ], "{series:?}");
        assert_eq!(stats["failures"], json!([{ "errcode": 43101, "count": 2, "errmsg": "user refuse to accept the msg", "last_at": stats["failures"][0]["last_at"] }]));
        assert_eq!(stats["outbox"]["pending"], 1);
        assert_eq!(stats["outbox"]["sending"], 0);
    }
}
