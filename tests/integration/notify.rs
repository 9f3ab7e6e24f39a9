//! Sending against the simulator, on SQLite and PostgreSQL: digests counted
//! per type and resumable without double sends, real-time notices throttled
//! to one per window under concurrency (also across two server processes),
//! errcode reactions (43004 unlinks, 45009 leaves the rest pending), the
//! mini-program credits, template rendering, and bad input that changes
//! nothing.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use futures::future::join_all;
use sea_orm::EntityTrait;
use sea_orm::sea_query::Expr;
use serde_json::{Value, json};
use wxnotify::auth::Role;
use wxnotify::notify::credits::{self, CreditKind};
use wxnotify::notify::digest::{self, DigestRequest};
use wxnotify::notify::outbox::{self, Scope};
use wxnotify::sim::{SimFollower, SimHandle, SimMpUser};

use crate::common::{TestApp, borrowed, sim_settings, start_server};
use crate::with_simulator;

const SEND: &str = "/cgi-bin/message/template/send";

/// Inserts accounts (each a JSON object of columns) and returns their ids
/// in order; every `oaopenid` becomes a simulator follower, every
/// `mp_openid` a mini-program user.
async fn accounts(app: &TestApp, sim: &SimHandle, mut rows: Value) -> Vec<i64> {
    for row in rows.as_array_mut().unwrap() {
        // The same columns in every row, so they are inserted as one group, in order.
        for column in ["nickname", "user_status", "oaopenid", "mp_openid"] {
            row.as_object_mut().unwrap().entry(column).or_insert(Value::Null);
        }
        if let Some(openid) = row["oaopenid"].as_str() {
            sim.add_followers([SimFollower::new(openid)]);
        }
        if let Some(openid) = row["mp_openid"].as_str() {
            sim.add_mp_users([SimMpUser::new(openid, None, &[])]);
        }
    }
    let data =
        app.data("mutation($a: [account_insert_input!]!) { insert_account(objects: $a) { returning { id } } }", json!({ "a": rows })).await;
    data["insert_account"]["returning"].as_array().unwrap().iter().map(|r| r["id"].as_i64().unwrap()).collect()
}

/// `n` unread rows of `kind` for `account`.
async fn unread(app: &TestApp, account: i64, kind: &str, n: usize) {
    let rows: Vec<Value> = (0..n)
        .map(|i| json!({ "account_account": account, "type": kind, "sender": format!("s{i}"), "content": format!("c{i}") }))
        .collect();
    app.data("mutation($r: [point_count_insert_input!]!) { insert_point_count(objects: $r) { affected_rows } }", json!({ "r": rows }))
        .await;
}

async fn template(app: &TestApp, name: &str, channel: &str, template_id: &str, data: Value) {
    app.data(
        "mutation($o: message_template_insert_input!) { insert_message_template_one(object: $o) { id } }",
        json!({ "o": { "name": name, "channel": channel, "template_id": template_id, "page": "pages/inbox", "data": data } }),
    )
    .await;
}

async fn digest_template(app: &TestApp) {
    let data = json!({
        "thing1": {"value": "{{nickname}}"},
        "thing2": {"value": "{{summary}}"},
        "number3": {"value": "{{total}}"},
        "number4": {"value": "{{counts.聊天}}"}
    });
    template(app, "digest", "OA_TEMPLATE", "tmpl-digest", data).await;
}

async fn realtime_templates(app: &TestApp) {
    let single = json!({"thing1": {"value": "{{sender}}"}, "thing2": {"value": "{{content}}"}, "time3": {"value": "{{now}}"}});
    template(app, "realtime_single", "OA_TEMPLATE", "tmpl-single", single).await;
    template(app, "realtime_multi", "OA_TEMPLATE", "tmpl-multi", json!({"thing1": {"value": "你收到了{{count}}条消息"}})).await;
}

const DIGEST: &str = r#"mutation($w: account_bool_exp, $t: String, $d: Boolean, $r: String) {
    notifyDigest(where: $w, template: $t, dry_run: $d, run_id: $r) { run_id candidates sent failed skipped pending stopped } }"#;

const NOTIFY: &str =
    r#"mutation($a: bigint!, $w: Int) { notifyAccount(account_id: $a, window_seconds: $w) { status channel msgid delivery_id error } }"#;

/// The simulator's accepted messages by recipient.
fn sent_to(sim: &SimHandle) -> BTreeMap<String, Vec<Value>> {
    let mut out: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for message in sim.sent_messages() {
        out.entry(message.touser.clone()).or_default().push(message.payload.clone());
    }
    out
}

async fn scalar(app: &TestApp, query: &str, vars: Value, path: &[&str]) -> Value {
    let mut data = app.data(query, vars).await;
    for key in path {
        data = data[*key].clone();
    }
    data
}

fn error_of(body: &Value) -> (String, String) {
    let error = &body["errors"][0];
    (error["extensions"]["code"].as_str().unwrap_or_default().to_string(), error["message"].as_str().unwrap_or_default().to_string())
}

with_simulator! {
    async fn a_digest_counts_unread_rows_per_type_and_sends_one_message_per_following_account(app, sim) {
        digest_template(&app).await;
        let ids = accounts(&app, &sim, json!([
            {"nickname": "Alice", "user_status": "经纪人", "oaopenid": "oaAlice"},
            {"nickname": "Bob", "user_status": "新人", "oaopenid": "oaBob"},
            {"nickname": "Carol", "user_status": "经纪人"},
            {"nickname": "Dave", "user_status": "游客", "oaopenid": "oaDave"},
            {"nickname": "Erin", "user_status": "经纪人", "oaopenid": "oaErin"}
        ])).await;
        unread(&app, ids[0], "聊天", 3).await;
        unread(&app, ids[0], "投递邀约", 1).await;
        unread(&app, ids[1], "投递邀约", 2).await;
        unread(&app, ids[2], "聊天", 1).await;
        unread(&app, ids[3], "聊天", 1).await;
        let filter = json!({"user_status": {"_in": ["经纪人", "新人"]}});

        let dry = app.data(DIGEST, json!({ "w": filter, "d": true })).await["notifyDigest"].clone();
        assert_eq!((dry["candidates"].as_i64(), dry["sent"].as_i64()), (Some(2), Some(0)));
        assert_eq!(app.count("delivery").await, 0, "a dry run writes nothing");

        let report = app.data(DIGEST, json!({ "w": filter })).await["notifyDigest"].clone();
        assert_eq!(report["candidates"], 2, "{report}");
        assert_eq!((report["sent"].as_i64(), report["failed"].as_i64(), report["skipped"].as_i64()), (Some(2), Some(0), Some(0)));
        let sent = sent_to(&sim);
        assert_eq!(sent.keys().cloned().collect::<Vec<_>>(), ["oaAlice", "oaBob"]);
        let alice = &sent["oaAlice"][0]["data"];
        assert_eq!(alice["thing1"]["value"], "Alice");
        assert_eq!(alice["thing2"]["value"], "聊天3条，投递邀约1条");
        assert_eq!((alice["number3"]["value"].as_str(), alice["number4"]["value"].as_str()), (Some("4"), Some("3")));
        let bob = &sent["oaBob"][0]["data"];
        assert_eq!((bob["thing2"]["value"].as_str(), bob["number3"]["value"].as_str(), bob["number4"]["value"].as_str()),
            (Some("投递邀约2条"), Some("2"), Some("0")));
        assert_eq!(sent["oaAlice"][0]["miniprogram"]["pagepath"], "pages/inbox");
        let run_id = report["run_id"].as_str().unwrap();
        assert_eq!(sent["oaAlice"][0]["client_msg_id"], format!("digest:{run_id}:{}", ids[0]), "WeChat can drop a resend");

        let rows = app.data("{ delivery(order_by: {id: asc}) { account_account status msgid sent_at dedupe_key } }", json!({})).await;
        for row in rows["delivery"].as_array().unwrap() {
            assert_eq!(row["status"], "SENT", "{row}");
            assert!(row["msgid"].as_i64().is_some() && row["sent_at"].is_string(), "{row}");
        }

        let everyone = app.data(DIGEST, json!({})).await["notifyDigest"].clone();
        assert_eq!(everyone["candidates"], 3, "without `where`: every following account with unread rows (Dave too)");
    }

    async fn a_digest_rerun_after_a_crash_sends_nothing_twice(app, sim) {
        digest_template(&app).await;
        let rows: Vec<Value> = (0..6).map(|n| json!({"nickname": format!("u{n}"), "oaopenid": format!("oaUser{n}")})).collect();
        let ids = accounts(&app, &sim, Value::Array(rows)).await;
        for id in &ids {
            unread(&app, *id, "聊天", 2).await;
        }
        // The crashed run: everything queued, two messages sent, a third
        // claimed when the process died.
        let services = app.state.services.clone();
        let plan = digest::plan(&services, &DigestRequest::default(), "crash-run").await.unwrap();
        let (candidates, planned) = (plan.candidates, plan.bulk);
        assert_eq!(candidates, 6);
        let queued = outbox::enqueue(&services.db, &planned).await.unwrap();
        let queued: Vec<i64> = queued.iter().map(|(id, _)| *id).collect();
        let first = outbox::deliver(&services, &Scope::Ids(queued[..2].to_vec())).await.unwrap();
        assert_eq!(first.sent, 2);
        app.sql(&format!("UPDATE delivery SET status = 'SENDING' WHERE id = {}", queued[2])).await;
        assert_eq!(sim.sent_messages().len(), 2);

        let again = app.data(DIGEST, json!({ "r": "crash-run" })).await["notifyDigest"].clone();
        assert_eq!(again["run_id"], "crash-run");
        assert_eq!((again["sent"].as_i64(), again["skipped"].as_i64()), (Some(3), Some(3)), "{again}");
        let sent = sent_to(&sim);
        assert_eq!(sent.len(), 5, "the in-flight message is not sent again: {:?}", sent.keys());
        assert!(sent.values().all(|messages| messages.len() == 1), "nobody got two messages");
        assert!(!sent.contains_key("oaUser2"));

        let third = app.data(DIGEST, json!({ "r": "crash-run" })).await["notifyDigest"].clone();
        assert_eq!((third["sent"].as_i64(), third["skipped"].as_i64()), (Some(0), Some(6)));
        assert_eq!(app.count("delivery").await, 6, "one delivery per account and run");

        // Recovery settles the row a dead process left in flight without resending it.
        outbox::settle_stale(&services.db, Utc::now() + chrono::Duration::seconds(1)).await.unwrap();
        outbox::recover(&services, chrono::Utc::now()).await.unwrap();
        let row = app.data("query($k: String!) { delivery(where: {dedupe_key: {_eq: $k}}) { status errmsg } }",
            json!({ "k": format!("digest:crash-run:{}", ids[2]) })).await;
        assert_eq!(row["delivery"][0]["status"], "FAILED");
        assert!(row["delivery"][0]["errmsg"].as_str().unwrap().starts_with("outcome unknown"), "{row}");
        assert_eq!(sim.sent_messages().len(), 5);
    }

    async fn sixty_four_concurrent_notices_for_one_account_send_exactly_one_message(app, sim) {
        realtime_templates(&app).await;
        let ids = accounts(&app, &sim, json!([{"nickname": "Alice", "oaopenid": "oaAlice"}])).await;
        unread(&app, ids[0], "聊天", 2).await;
        let token = app.token(Role::User, Some("999"));
        let calls = (0..64).map(|_| app.graphql_with(Some(&token), NOTIFY, json!({ "a": ids[0] })));
        let answers = join_all(calls).await;
        let statuses: Vec<String> = answers.iter().map(|a| a["data"]["notifyAccount"]["status"].as_str().unwrap_or("ERROR").to_string()).collect();
        assert_eq!(statuses.iter().filter(|s| *s == "SENT").count(), 1, "{statuses:?} {:?}", answers.iter().find(|a| a.get("errors").is_some()));
        assert_eq!(statuses.iter().filter(|s| *s == "THROTTLED").count(), 63);
        assert_eq!(sim.sent_messages().len(), 1);
        assert_eq!(sim.sent_messages()[0].payload["data"]["thing1"]["value"], "你收到了2条消息");
        assert_eq!((app.count("notice").await, app.count("delivery").await), (1, 1));
    }

    async fn a_throttled_notice_costs_one_sql_statement(app, sim) {
        realtime_templates(&app).await;
        let ids = accounts(&app, &sim, json!([{"nickname": "Alice", "oaopenid": "oaAlice"}])).await;
        unread(&app, ids[0], "聊天", 1).await;
        let token = app.token(Role::User, Some("999"));
        assert_eq!(app.graphql_with(Some(&token), NOTIFY, json!({ "a": ids[0] })).await["data"]["notifyAccount"]["status"], "SENT");
        // The sweeper, heartbeat and scheduler share the pool: count the
        // statements that touch what a notice reads or writes.
        app.state.sql_statements.record();
        let answer = app.graphql_with(Some(&token), NOTIFY, json!({ "a": ids[0] })).await;
        let statements = app.state.sql_statements.take_recorded();
        assert_eq!(answer["data"]["notifyAccount"]["status"], "THROTTLED", "{answer}");
        let tables = ["FROM account", "notice", "point_count", "message_template", "push_code", "wechat_template"];
        let touches = |sql: &str| tables.iter().any(|t| sql.contains(t));
        let ours: Vec<String> = statements.iter().map(|s| s.sql.clone()).filter(|sql| touches(sql)).collect();
        assert_eq!(ours.len(), 1, "{ours:#?}");
        // One row by the unique key on notice.account_account.
        assert!(ours[0].starts_with("SELECT expire_time FROM notice WHERE account_account = "), "{ours:#?}");
    }

    async fn two_server_processes_send_one_notice_between_them(app, sim) {
        realtime_templates(&app).await;
        let ids = accounts(&app, &sim, json!([{"nickname": "Alice", "oaopenid": "oaAlice"}])).await;
        unread(&app, ids[0], "聊天", 1).await;
        let settings = sim_settings(&sim);
        let (_state, second, stop, _server) = start_server(app.test_db.url.clone(), &borrowed(&settings)).await;
        let token = app.token(Role::Admin, None);
        let body = json!({ "query": NOTIFY, "variables": { "a": ids[0] } });
        let calls = (0..64).map(|n| {
            let url = if n % 2 == 0 { format!("{}/api/graphql", app.address) } else { format!("{second}/api/graphql") };
            let request = app.client.post(url).bearer_auth(&token).json(&body);
            async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
        });
        let answers = join_all(calls).await;
        let sent = answers.iter().filter(|a| a["data"]["notifyAccount"]["status"] == "SENT").count();
        let throttled = answers.iter().filter(|a| a["data"]["notifyAccount"]["status"] == "THROTTLED").count();
        assert_eq!((sent, throttled), (1, 63), "{:?}", answers.iter().find(|a| a.get("errors").is_some()));
        assert_eq!(sim.sent_messages().len(), 1);
        let _ = stop.send(());
    }

    async fn real_time_notices_pick_their_template_and_fall_back_to_mini_program_credits(app, sim) {
        realtime_templates(&app).await;
        let ids = accounts(&app, &sim, json!([
            {"nickname": "A", "oaopenid": "oaA"},
            {"nickname": "B", "oaopenid": "oaB"},
            {"nickname": "C", "mp_openid": "mpC"},
            {"nickname": "D", "mp_openid": "mpD"}
        ])).await;
        app.data("mutation($r: point_count_insert_input!) { insert_point_count_one(object: $r) { id } }",
            json!({ "r": {"account_account": ids[0], "type": "聊天", "sender": "小红",
                "content": "第一行\n第二行：这是一条很长很长很长很长很长很长的消息"} })).await;

        let single = scalar(&app, NOTIFY, json!({ "a": ids[0] }), &["notifyAccount"]).await;
        assert_eq!((single["status"].as_str(), single["channel"].as_str()), (Some("SENT"), Some("OA_TEMPLATE")), "{single}");
        assert!(single["msgid"].as_i64().is_some());
        let message = &sim.sent_messages()[0];
        assert_eq!(message.template_id, "tmpl-single");
        assert_eq!(message.payload["data"]["thing1"]["value"], "小红");
        let content = message.payload["data"]["thing2"]["value"].as_str().unwrap();
        assert_eq!(content.chars().count(), 20, "cut to thing's 20 characters: {content}");
        assert!(content.starts_with("第一行 第二行") && !content.contains('\n'), "{content}");
        let again = scalar(&app, NOTIFY, json!({ "a": ids[0] }), &["notifyAccount", "status"]).await;
        assert_eq!(again, "THROTTLED");

        assert_eq!(scalar(&app, NOTIFY, json!({ "a": ids[1] }), &["notifyAccount", "status"]).await, "NOTHING_TO_SEND");

        // C does not follow: without a credit there is no way to reach them,
        // and the window stays open.
        unread(&app, ids[2], "聊天", 2).await;
        template(&app, "realtime_multi_subscribe", "MP_SUBSCRIBE", "tmpl-sub", json!({"thing1": {"value": "你有{{count}}条新消息"}})).await;
        template(&app, "realtime_multi_form", "MP_FORM", "tmpl-form", json!({"keyword1": {"value": "{{count}}条新消息"}})).await;
        assert_eq!(scalar(&app, NOTIFY, json!({ "a": ids[2] }), &["notifyAccount", "status"]).await, "NOT_FOLLOWING");
        assert_eq!(app.count("notice").await, 1, "no window was claimed for C");
        let c_token = app.token(Role::User, Some(&ids[2].to_string()));
        let granted = app.graphql_with(Some(&c_token), r#"mutation { grantSubscription(template_ids: ["tmpl-sub"]) { stored } }"#, json!({})).await;
        assert_eq!(granted["data"]["grantSubscription"]["stored"], 1, "{granted}");
        let by_credit = scalar(&app, NOTIFY, json!({ "a": ids[2] }), &["notifyAccount"]).await;
        assert_eq!((by_credit["status"].as_str(), by_credit["channel"].as_str()), (Some("SENT"), Some("MP_SUBSCRIBE")), "{by_credit}");
        let last = sim.sent_messages().pop().unwrap();
        assert_eq!((last.path.as_str(), last.touser.as_str(), last.template_id.as_str()), ("/cgi-bin/message/subscribe/send", "mpC", "tmpl-sub"));
        assert_eq!(last.payload["data"]["thing1"]["value"], "你有2条新消息");

        // D has no subscription, only form ids: the oldest one pays.
        unread(&app, ids[3], "聊天", 3).await;
        let d_token = app.token(Role::User, Some(&ids[3].to_string()));
        let collected = app.graphql_with(Some(&d_token), r#"mutation { collectFormIds(form_ids: [{form_id: "form-old"}, {form_id: "form-new"}]) { stored } }"#, json!({})).await;
        assert_eq!(collected["data"]["collectFormIds"]["stored"], 2, "{collected}");
        let by_form = scalar(&app, NOTIFY, json!({ "a": ids[3] }), &["notifyAccount"]).await;
        assert_eq!((by_form["status"].as_str(), by_form["channel"].as_str()), (Some("SENT"), Some("MP_FORM")), "{by_form}");
        let last = sim.sent_messages().pop().unwrap();
        assert_eq!((last.path.as_str(), last.payload["form_id"].as_str()), ("/cgi-bin/message/wxopen/template/send", Some("form-old")));
        let left = app.data("{ push_code { code } }", json!({})).await;
        assert_eq!(left, json!({ "push_code": [{ "code": "form-new" }] }));
    }

    async fn a_43004_answer_unlinks_the_account_and_marks_the_follower_gone(app, sim) {
        digest_template(&app).await;
        let ids = accounts(&app, &sim, json!([{"nickname": "Gone", "oaopenid": "oaGone"}, {"nickname": "Here", "oaopenid": "oaHere"}])).await;
        sim.add_followers([SimFollower::new("oaGone").unsubscribed()]);
        app.data(r#"mutation { insert_oa_follower(objects: [{openid: "oaGone", subscribed: true}, {openid: "oaHere", subscribed: true}]) { affected_rows } }"#, json!({})).await;
        unread(&app, ids[0], "聊天", 1).await;
        unread(&app, ids[1], "聊天", 1).await;
        let report = app.data(DIGEST, json!({})).await["notifyDigest"].clone();
        assert_eq!((report["sent"].as_i64(), report["failed"].as_i64()), (Some(1), Some(1)), "{report}");
        let state = app.data("{ account(order_by: {id: asc}) { oaopenid } oa_follower(order_by: {openid: asc}) { openid subscribed } delivery(where: {status: {_eq: \"FAILED\"}}) { errcode touser } }", json!({})).await;
        assert_eq!(state["account"], json!([{ "oaopenid": null }, { "oaopenid": "oaHere" }]));
        assert_eq!(state["oa_follower"], json!([{ "openid": "oaGone", "subscribed": false }, { "openid": "oaHere", "subscribed": true }]));
        assert_eq!(state["delivery"], json!([{ "errcode": 43004, "touser": "oaGone" }]));
        assert_eq!(sim.count_calls(SEND), 2, "43004 is not retried");
    }

    async fn a_45009_stops_the_batch_leaves_the_rest_pending_and_a_later_run_finishes_them(app, sim) {
        digest_template(&app).await;
        let rows: Vec<Value> = (0..5).map(|n| json!({"nickname": format!("u{n}"), "oaopenid": format!("oaUser{n}")})).collect();
        let ids = accounts(&app, &sim, Value::Array(rows)).await;
        for id in &ids {
            unread(&app, *id, "投递邀约", 1).await;
        }
        sim.set_daily_quota(SEND, Some(2));
        // WeChat will not say what is left (48001: the account may not call
        // quota/get), so the digest starts and meets the quota mid-run.
        sim.inject_fault("/cgi-bin/openapi/quota/get", 48001, 100);
        let first = app.data(DIGEST, json!({ "r": "quota-run" })).await["notifyDigest"].clone();
        assert_eq!((first["sent"].as_i64(), first["pending"].as_i64(), first["failed"].as_i64()), (Some(2), Some(3), Some(0)), "{first}");
        assert!(first["stopped"].as_str().unwrap().contains("45009"), "{first}");
        let pending = app.data(r#"{ delivery_aggregate(where: {status: {_eq: "PENDING"}}) { aggregate { count } } }"#, json!({})).await;
        assert_eq!(pending["delivery_aggregate"]["aggregate"]["count"], 3);

        sim.set_daily_quota(SEND, None);
        let second = app.data(DIGEST, json!({ "r": "quota-run" })).await["notifyDigest"].clone();
        assert_eq!((second["sent"].as_i64(), second["skipped"].as_i64(), second["pending"].as_i64()), (Some(3), Some(2), Some(0)), "{second}");
        let sent = sent_to(&sim);
        assert_eq!(sent.len(), 5);
        assert!(sent.values().all(|m| m.len() == 1));
    }

    async fn credits_are_checked_spent_oldest_first_and_each_used_once(app, sim) {
        let ids = accounts(&app, &sim, json!([
            {"nickname": "X", "mp_openid": "mpX"}, {"nickname": "Y", "mp_openid": "mpY"},
            {"nickname": "P", "mp_openid": "mpP"}, {"nickname": "Q", "mp_openid": "mpQ"}, {"nickname": "R", "mp_openid": "mpR"}
        ])).await;
        let (x, y) = (ids[0], ids[1]);
        // An expired credit, older than the rest: dropped, never used.
        let past = (Utc::now() - chrono::Duration::minutes(1)).to_rfc3339();
        app.data("mutation($o: push_code_insert_input!) { insert_push_code_one(object: $o) { id } }",
            json!({ "o": {"account_account": x, "kind": "FORM_ID", "code": "expired-one", "expire_at": past} })).await;
        let token = app.token(Role::User, Some(&x.to_string()));
        let soon = Utc::now().timestamp_millis() + 3_600_000;
        let gone = Utc::now().timestamp_millis() - 1_000;
        let collect = r#"mutation($f: [FormIdInput!]!) { collectFormIds(form_ids: $f) { stored duplicates rejected expired } }"#;
        let report = app.graphql_with(Some(&token), collect, json!({ "f": [
            {"form_id": "f1"}, {"form_id": "the formId is a mock one"}, {"form_id": "f2", "expire": soon},
            {"form_id": "f1"}, {"form_id": "late", "expire": gone}
        ] })).await;
        assert_eq!(report["data"]["collectFormIds"], json!({ "stored": 2, "duplicates": 1, "rejected": 1, "expired": 1 }), "{report}");
        let again = app.graphql_with(Some(&token), collect, json!({ "f": [{"form_id": "f2"}] })).await;
        assert_eq!(again["data"]["collectFormIds"]["duplicates"], 1);
        let week = app.data("query($a: bigint!) { push_code(where: {code: {_eq: \"f1\"}, account_account: {_eq: $a}}) { expire_at } }", json!({ "a": x })).await;
        let expire = chrono::DateTime::parse_from_rfc3339(week["push_code"][0]["expire_at"].as_str().unwrap()).unwrap();
        assert!(expire <= Utc::now() + chrono::Duration::days(7) && expire > Utc::now() + chrono::Duration::days(6), "7-day life: {expire}");

        let db = &app.state.services.db;
        let codes = [
            credits::claim(db, x, CreditKind::FormId, None).await.unwrap().and_then(|c| c.code),
            credits::claim(db, x, CreditKind::FormId, None).await.unwrap().and_then(|c| c.code),
            credits::claim(db, x, CreditKind::FormId, None).await.unwrap().and_then(|c| c.code),
        ];
        assert_eq!(codes, [Some("f1".to_string()), Some("f2".to_string()), None]);
        let left = app.data("query($a: bigint!) { push_code(where: {account_account: {_eq: $a}}) { id } }", json!({ "a": x })).await;
        assert_eq!(left["push_code"], json!([]), "the expired credit was dropped");

        // 32 claimers, 5 credits: each credit goes to exactly one claimer.
        let y_token = app.token(Role::User, Some(&y.to_string()));
        let five: Vec<Value> = (0..5).map(|n| json!({"form_id": format!("y{n}")})).collect();
        app.graphql_with(Some(&y_token), collect, json!({ "f": five })).await;
        let claims = (0..32).map(|_| async { credits::claim(db, y, CreditKind::FormId, None).await.unwrap() });
        let won: Vec<String> = join_all(claims).await.into_iter().flatten().filter_map(|c| c.code).collect();
        let mut distinct = won.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!((won.len(), distinct.len()), (5, 5), "{won:?}");

        // The broadcast: a subscription for the template first, else a form id.
        let p_token = app.token(Role::User, Some(&ids[2].to_string()));
        app.graphql_with(Some(&p_token), r#"mutation { grantSubscription(template_ids: ["tmpl-b"]) { stored } }"#, json!({})).await;
        app.graphql_with(Some(&p_token), collect, json!({ "f": [{"form_id": "p-form"}] })).await;
        let q_token = app.token(Role::User, Some(&ids[3].to_string()));
        app.graphql_with(Some(&q_token), collect, json!({ "f": [{"form_id": "q-form"}] })).await;
        let broadcast = r#"mutation { pushBroadcast(template: "tmpl-b", page: "pages/index", key_words: ["{{nickname}}", "签到提醒"]) { sent no_credit failed } }"#;
        let first = app.data(broadcast, json!({})).await;
        assert_eq!(first["pushBroadcast"], json!({ "sent": 2, "no_credit": 3, "failed": 0 }));
        let by_user: BTreeMap<String, (String, Value)> =
            sim.sent_messages().into_iter().map(|m| (m.touser.clone(), (m.path.clone(), m.payload.clone()))).collect();
        assert_eq!(by_user["mpP"].0, "/cgi-bin/message/subscribe/send");
        assert_eq!(by_user["mpP"].1["data"]["keyword1"]["value"], "P");
        assert_eq!((by_user["mpQ"].0.as_str(), by_user["mpQ"].1["form_id"].as_str()), ("/cgi-bin/message/wxopen/template/send", Some("q-form")));
        let second = app.data(broadcast, json!({})).await;
        assert_eq!(second["pushBroadcast"], json!({ "sent": 1, "no_credit": 4, "failed": 0 }), "P's form id pays now; Q has none left");
    }

    async fn send_template_message_logs_a_delivery_and_never_sends_a_client_msg_id_twice(app, sim) {
        sim.add_followers([SimFollower::new("oaRaw")]);
        let send = r#"mutation($i: SendTemplateMessageInput!) { sendTemplateMessage(input: $i) { errcode errmsg msgid delivery_id status } }"#;
        let input = json!({ "touser": "oaRaw", "template_id": "tmpl-raw", "data": {"thing1": {"value": "你好"}}, "client_msg_id": "m-1",
            "miniprogram": {"appid": "wxsimmp000000001", "pagepath": "pages/index"} });
        let first = app.data(send, json!({ "i": input })).await["sendTemplateMessage"].clone();
        assert_eq!((first["errcode"].as_i64(), first["errmsg"].as_str(), first["status"].as_str()), (Some(0), Some("ok"), Some("SENT")));
        let again = app.data(send, json!({ "i": input })).await["sendTemplateMessage"].clone();
        assert_eq!((again["delivery_id"].clone(), again["msgid"].clone()), (first["delivery_id"].clone(), first["msgid"].clone()));
        assert_eq!(sim.sent_messages().len(), 1, "the same client_msg_id is sent once");

        let stranger = app.data(send, json!({ "i": {"touser": "oaNobody", "template_id": "t", "data": {"thing1": "x"}} })).await["sendTemplateMessage"].clone();
        assert_eq!((stranger["errcode"].as_i64(), stranger["status"].as_str()), (Some(40003), Some("FAILED")), "{stranger}");
        let empty = app.graphql(send, json!({ "i": {"touser": "oaRaw", "template_id": "t", "data": {}} })).await;
        assert_eq!(error_of(&empty).0, "validation-failed");
        assert_eq!(app.count("delivery").await, 2);
    }

    async fn bad_input_is_refused_with_a_clear_error_and_changes_nothing(app, sim) {
        let ids = accounts(&app, &sim, json!([{"nickname": "A", "oaopenid": "oaA"}])).await;
        unread(&app, ids[0], "聊天", 2).await;
        let missing = app.graphql(DIGEST, json!({})).await;
        assert_eq!(error_of(&missing), ("not-found".to_string(), error_of(&missing).1));
        assert!(error_of(&missing).1.contains("message template `digest` does not exist"), "{missing}");
        let notice = app.graphql(NOTIFY, json!({ "a": ids[0] })).await;
        assert!(error_of(&notice).1.contains("`realtime_multi` does not exist"), "{notice}");

        digest_template(&app).await;
        let bad_where = app.graphql(DIGEST, json!({ "w": {"no_such_column": {"_eq": 1}} })).await;
        assert!(error_of(&bad_where).1.contains("unknown field \"no_such_column\""), "{bad_where}");
        let bad_operator = app.graphql(r#"mutation { notifyDigest(where: {oaopenid: {_is_null: "yes"}}) { sent } }"#, json!({})).await;
        assert!(bad_operator.get("errors").is_some(), "{bad_operator}");
        let null_operand = app.graphql(DIGEST, json!({ "w": {"nickname": {"_eq": null}} })).await;
        assert!(error_of(&null_operand).1.contains("null"), "{null_operand}");
        template(&app, "typo", "OA_TEMPLATE", "t", json!({"thing1": {"value": "{{nick_name}}"}})).await;
        let typo = app.graphql(DIGEST, json!({ "t": "typo" })).await;
        assert!(error_of(&typo).1.contains("{{nick_name}} is not a placeholder"), "{typo}");
        let window = app.graphql(NOTIFY, json!({ "a": ids[0], "w": 0 })).await;
        assert!(error_of(&window).1.contains("window_seconds"), "{window}");
        let nobody = app.graphql(NOTIFY, json!({ "a": 424242 })).await;
        assert_eq!(error_of(&nobody).0, "not-found");
        let user = app.token(Role::User, Some(&ids[0].to_string()));
        let spam = app.graphql_with(Some(&user), NOTIFY, json!({ "a": ids[0], "w": 1 })).await;
        assert!(error_of(&spam).1.contains("at least 600"), "a user cannot shorten the throttle: {spam}");
        let refused = app.graphql_with(Some(&user), DIGEST, json!({})).await;
        assert_eq!(error_of(&refused).0, "access-denied");
        assert!(refused["data"].is_null());
        let anonymous = app.graphql_with(None, r#"mutation { collectFormIds(form_ids: [{form_id: "f"}]) { stored } }"#, json!({})).await;
        assert_eq!(error_of(&anonymous).0, "access-denied");

        assert_eq!((app.count("delivery").await, app.count("notice").await, app.count("push_code").await), (0, 0, 0));
        assert_eq!(sim.sent_messages().len(), 0);
    }

    async fn pending_deliveries_are_sent_when_a_server_starts(app, sim) {
        digest_template(&app).await;
        let ids = accounts(&app, &sim, json!([{"nickname": "A", "oaopenid": "oaA"}, {"nickname": "B", "oaopenid": "oaB"}])).await;
        unread(&app, ids[0], "聊天", 1).await;
        unread(&app, ids[1], "聊天", 1).await;
        let services = app.state.services.clone();
        let planned = digest::plan(&services, &DigestRequest::default(), "before-crash").await.unwrap().bulk;
        let queued = outbox::enqueue(&services.db, &planned).await.unwrap();
        // B's message was in flight long ago when its process died.
        entity::delivery::Entity::update_many()
            .col_expr(entity::delivery::Column::Status, Expr::value("SENDING"))
            .col_expr(entity::delivery::Column::UpdatedAt, Expr::value(Utc::now() - chrono::Duration::hours(2)))
            .filter_by_id(queued[1].0)
            .exec(&services.db)
            .await
            .unwrap();

        let settings = sim_settings(&sim);
        let (_state, _address, stop, _server) = start_server(app.test_db.url.clone(), &borrowed(&settings)).await;
        let query = r#"{ delivery(order_by: {id: asc}) { status errmsg } }"#;
        let mut rows = Value::Null;
        for _ in 0..200 {
            rows = app.data(query, json!({})).await["delivery"].clone();
            if rows[0]["status"] == "SENT" && rows[1]["status"] == "FAILED" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!((rows[0]["status"].as_str(), rows[1]["status"].as_str()), (Some("SENT"), Some("FAILED")), "{rows}");
        assert!(rows[1]["errmsg"].as_str().unwrap().starts_with("outcome unknown"));
        assert_eq!(sent_to(&sim).keys().cloned().collect::<Vec<_>>(), ["oaA"], "the uncertain one is not resent");
        let _ = stop.send(());
    }
}

/// `filter_by_id` for update_many, without pulling QueryFilter into every test.
trait FilterById {
    fn filter_by_id(self, id: i64) -> Self;
}

impl FilterById for sea_orm::UpdateMany<entity::delivery::Entity> {
    fn filter_by_id(self, id: i64) -> Self {
        use sea_orm::{ColumnTrait, QueryFilter};
        self.filter(entity::delivery::Column::Id.eq(id))
    }
}

with_simulator! {
    async fn a_scheduled_digest_job_sends_like_notify_digest(app, sim) {
        digest_template(&app).await;
        let ids = accounts(&app, &sim, json!([
            {"nickname": "Alice", "user_status": "经纪人", "oaopenid": "oaAlice"},
            {"nickname": "Bob", "user_status": "游客", "oaopenid": "oaBob"}
        ])).await;
        unread(&app, ids[0], "聊天", 2).await;
        unread(&app, ids[1], "聊天", 1).await;
        app.data(r#"mutation { addScheduledJob(input: {name: "daily", group: "digest", jobType: NOTIFY_DIGEST,
            triggerConfigs: [{triggerType: "cron", cron: "0 0 20 * * ?"}],
            dataMap: {where: {user_status: {_eq: "经纪人"}}, template: "digest"}}) { name } }"#, json!({})).await;
        let triggered = app.data(r#"mutation { triggerScheduledJob(group: "digest", name: "daily") }"#, json!({})).await;
        assert_eq!(triggered, json!({ "triggerScheduledJob": true }));
        let run = crate::common::finished_job_run(&app).await;
        assert_eq!(run["status"], "SUCCEEDED", "{run}");
        assert_eq!((run["result"]["candidates"].as_i64(), run["result"]["sent"].as_i64()), (Some(1), Some(1)), "{run}");
        assert_eq!(sent_to(&sim).keys().cloned().collect::<Vec<_>>(), ["oaAlice"]);
    }
}

/// A rolling deploy: the old server is stopped mid-digest, the new one
/// sends the rest. No server here helps send another's run (the base
/// server included): this test is about the rows a stopped run leaves, and
/// a helper would send them with it (see two_servers_share_one_digest).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_server_finishes_the_sends_it_started_and_a_running_one_sends_the_rest() {
    for backend in [wxnotify::db::DatabaseKind::Sqlite, wxnotify::db::DatabaseKind::Postgres] {
        let Some((app, sim)) = digest_server(backend, &[("OUTBOX_HELP", "false")]).await else { continue };
        let rows: Vec<Value> = (0..40).map(|i| json!({ "nickname": format!("u{i}"), "oaopenid": format!("oaU{i}") })).collect();
        for id in accounts(&app, &sim, Value::Array(rows)).await {
            unread(&app, id, "聊天", 1).await;
        }
        app.data(
            r#"mutation { addScheduledJob(input: {name: "daily", group: "digest", jobType: NOTIFY_DIGEST,
            triggerConfigs: [{triggerType: "cron", cron: "0 0 20 * * ?"}], dataMap: {template: "digest"}}) { name } }"#,
            json!({}),
        )
        .await;
        // A rolling deploy: the new server is up before the old one stops.
        let mut settings = sim_settings(&sim);
        settings.push(("PENDING_RETRY_AFTER".into(), "5s".into()));
        settings.push(("OUTBOX_HELP".into(), "false".into()));
        let (_state, _new, stop_new, new_server) = start_server(app.test_db.url.clone(), &borrowed(&settings)).await;
        // The old server runs the job, slowly, and is stopped mid-run.
        sim.set_latency(Duration::from_millis(250));
        let mut settings = sim_settings(&sim);
        settings.push(("WECHAT_CONCURRENCY".into(), "4".into()));
        let (_state, first, stop_first, first_server) = start_server(app.test_db.url.clone(), &borrowed(&settings)).await;
        let trigger = json!({ "query": r#"mutation { triggerScheduledJob(group: "digest", name: "daily") }"# });
        let response = app.client.post(format!("{first}/api/graphql")).bearer_auth(app.admin_token()).json(&trigger).send().await.unwrap();
        assert_eq!(response.json::<Value>().await.unwrap()["data"]["triggerScheduledJob"], true);
        for _ in 0..1000 {
            if !sim.sent_messages().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(!sim.sent_messages().is_empty(), "the job began sending within 10 s");
        stop_first.send(()).unwrap();
        first_server.await.unwrap();

        // The run ended before the server did, and said why; every message
        // WeChat has is SENT, nothing is left in flight, the rest waits.
        let run = app.data("{ job_run { status result } }", json!({})).await["job_run"][0].clone();
        assert_eq!(run["status"], "SUCCEEDED", "{run}");
        assert!(run["result"]["stopped"].as_str().unwrap_or_default().contains("stopping"), "{run}");
        let status = |s: &'static str| {
            let app = &app;
            async move {
                app.data("query($s: String!) { delivery_aggregate(where: {status: {_eq: $s}}) { aggregate { count } } }", json!({ "s": s }))
                    .await["delivery_aggregate"]["aggregate"]["count"]
                    .as_i64()
                    .unwrap()
            }
        };
        let sent = sim.sent_messages().len() as i64;
        assert_eq!(status("SENT").await, sent);
        assert_eq!(status("SENDING").await, 0);
        assert_eq!(status("PENDING").await, 40 - sent);
        assert!(sent < 40, "the stop came before the run's end ({sent} sent)");

        // The server still running sends the rest once they have sat for
        // PENDING_RETRY_AFTER, each message once.
        sim.set_latency(Duration::ZERO);
        for _ in 0..400 {
            if status("SENT").await == 40 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        stop_new.send(()).unwrap();
        new_server.await.unwrap();
        assert_eq!(status("SENT").await, 40);
        let tousers = sent_to(&sim);
        assert_eq!((sim.sent_messages().len(), tousers.len()), (40, 40), "every follower once: {tousers:?}");
        let metrics = app.get("/metrics").await.text().await.unwrap();
        for status in ["SENT", "PENDING"] {
            let line = format!(r#"wxnotify_deliveries_total{{channel="OA_TEMPLATE",status="{status}"}}"#);
            assert!(metrics.contains(&line), "{line} in {metrics}");
        }
        app.stop().await;
    }
}

/// `n` following accounts, each with one unread row, in two mutations.
async fn followers_with_unread(app: &TestApp, sim: &SimHandle, n: usize) -> Vec<i64> {
    let rows: Vec<Value> = (0..n).map(|i| json!({ "nickname": format!("u{i}"), "oaopenid": format!("oaShared{i:04}") })).collect();
    let ids = accounts(app, sim, Value::Array(rows)).await;
    let unread: Vec<Value> = ids.iter().map(|id| json!({ "account_account": id, "type": "聊天", "sender": "s", "content": "c" })).collect();
    app.data("mutation($r: [point_count_insert_input!]!) { insert_point_count(objects: $r) { affected_rows } }", json!({ "r": unread }))
        .await;
    ids
}

/// Runs the digest `run_id` on `app` while watching `helper`'s leases:
/// the report, and the most rows the helper held at once.
async fn digest_watching(app: &TestApp, helper: &wxnotify::AppState, run_id: &str) -> (Value, usize) {
    let watching = std::sync::atomic::AtomicBool::new(true);
    let watch = async {
        let mut most = 0;
        while watching.load(std::sync::atomic::Ordering::SeqCst) {
            most = most.max(helper.services.leases.held().len());
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        most
    };
    let run = async {
        let report = app.data(DIGEST, json!({ "r": run_id })).await["notifyDigest"].clone();
        watching.store(false, std::sync::atomic::Ordering::SeqCst);
        report
    };
    tokio::join!(run, watch)
}

/// (status, count) of every delivery.
async fn statuses(app: &TestApp) -> BTreeMap<String, i64> {
    let rows = wxnotify::db::sql::Sql::new("SELECT status, count(*) AS n FROM delivery GROUP BY status").all(&app.db).await.unwrap();
    rows.iter().map(|r| (r.try_get::<String>("", "status").unwrap(), r.try_get::<i64>("", "n").unwrap())).collect()
}

with_simulator! {
    async fn two_servers_share_one_digest_and_send_each_message_once(app, sim) {
        digest_template(&app).await;
        followers_with_unread(&app, &sim, 600).await;
        let mut settings = sim_settings(&sim);
        settings.push(("WECHAT_CONCURRENCY".into(), "4".into()));
        let (helper, _address, stop, server) = start_server(app.test_db.url.clone(), &borrowed(&settings)).await;
        sim.set_latency(Duration::from_millis(50));
        let (report, held) = digest_watching(&app, &helper, "shared").await;
        assert!(held > 0, "the second server claimed some of the run's rows");
        assert_eq!((report["sent"].as_i64(), report["failed"].as_i64(), report["skipped"].as_i64(), report["pending"].as_i64()),
            (Some(600), Some(0), Some(0), Some(0)), "{report}");
        let sent = sent_to(&sim);
        assert_eq!((sim.sent_messages().len(), sent.len()), (600, 600), "every follower once");
        assert_eq!(statuses(&app).await, BTreeMap::from([("SENT".to_string(), 600)]));
        let _ = stop.send(());
        server.await.unwrap();
    }

    async fn a_quota_stop_in_a_shared_digest_is_reported_exactly_and_a_rerun_finishes_it(app, sim) {
        digest_template(&app).await;
        followers_with_unread(&app, &sim, 400).await;
        let mut settings = sim_settings(&sim);
        settings.push(("WECHAT_CONCURRENCY".into(), "4".into()));
        let (helper, _address, stop, server) = start_server(app.test_db.url.clone(), &borrowed(&settings)).await;
        sim.set_latency(Duration::from_millis(40));
        sim.set_daily_quota(SEND, Some(150));
        // WeChat will not say what is left, so the run meets the quota mid-way.
        sim.inject_fault("/cgi-bin/openapi/quota/get", 48001, 100);
        let (first, _) = digest_watching(&app, &helper, "quota-shared").await;
        assert!(first["stopped"].as_str().unwrap_or_default().contains("45009"), "{first}");
        let in_db = statuses(&app).await;
        assert_eq!(in_db.get("SENT").copied(), Some(150), "{in_db:?}");
        assert_eq!(in_db.get("PENDING").copied(), Some(250), "{in_db:?}");
        assert_eq!((first["sent"].as_i64(), first["pending"].as_i64(), first["failed"].as_i64()), (Some(150), Some(250), Some(0)), "{first}");

        sim.set_daily_quota(SEND, None);
        let (second, _) = digest_watching(&app, &helper, "quota-shared").await;
        assert_eq!((second["sent"].as_i64(), second["skipped"].as_i64(), second["pending"].as_i64()), (Some(250), Some(150), Some(0)), "{second}");
        let sent = sent_to(&sim);
        assert_eq!((sim.sent_messages().len(), sent.len()), (400, 400), "every follower once");
        let _ = stop.send(());
        server.await.unwrap();
    }
}

/// A server on `backend` (`None` when that database is not here) with the
/// simulator, the settings `extra` and the digest template.
async fn digest_server(backend: wxnotify::db::DatabaseKind, extra: &[(&str, &str)]) -> Option<(TestApp, SimHandle)> {
    let sim = wxnotify::sim::Simulator::start(Default::default()).await.unwrap();
    let mut settings = sim_settings(&sim);
    settings.extend(extra.iter().map(|(name, value)| (name.to_string(), value.to_string())));
    let app = crate::common::spawn_app_with(backend, &borrowed(&settings)).await?;
    digest_template(&app).await;
    Some((app, sim))
}

/// A digest goes a page of `WXNOTIFY_DIGEST_PAGE` accounts at a time: here
/// two, so that the filter, the accounts without a way or a reason to be
/// reached, the quota and a rerun all fall across page ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_digest_read_and_queued_a_page_at_a_time_reaches_each_candidate_once_within_the_quota() {
    for backend in [wxnotify::db::DatabaseKind::Sqlite, wxnotify::db::DatabaseKind::Postgres] {
        let sim = wxnotify::sim::Simulator::start(Default::default()).await.unwrap();
        let mut settings = sim_settings(&sim);
        settings.push(("DIGEST_PAGE".into(), "2".into()));
        let Some(app) = crate::common::spawn_app_with(backend, &borrowed(&settings)).await else { continue };
        digest_template(&app).await;
        // 3 does not follow, 5 has nothing unread, 7 is filtered out.
        let rows: Vec<Value> = (0..9)
            .map(|n| {
                let status = if n == 7 { "游客" } else { "新人" };
                let openid = (n != 3).then(|| format!("oaPage{n}"));
                json!({"nickname": format!("p{n}"), "user_status": status, "oaopenid": openid})
            })
            .collect();
        let ids = accounts(&app, &sim, Value::Array(rows)).await;
        for (n, id) in ids.iter().enumerate() {
            if n != 5 {
                unread(&app, *id, "聊天", n + 1).await;
            }
        }
        let filter = json!({"user_status": {"_eq": "新人"}});
        let expected: Vec<String> = [0, 1, 2, 4, 6, 8].iter().map(|n| format!("oaPage{n}")).collect();

        let dry = app.data(DIGEST, json!({ "w": filter, "d": true })).await["notifyDigest"].clone();
        assert_eq!((dry["candidates"].as_i64(), dry["sent"].as_i64()), (Some(6), Some(0)), "{backend:?}: {dry}");
        assert_eq!(app.count("delivery").await, 0, "a dry run writes nothing");

        // Four sends left today: refused whole before anything is queued...
        sim.set_daily_quota(SEND, Some(4));
        let refused = app.graphql(DIGEST, json!({ "w": filter, "r": "paged" })).await;
        assert!(error_of(&refused).1.contains("would send 6 template messages but only 4 are left"), "{backend:?}: {refused}");
        assert_eq!(app.count("delivery").await, 0, "{backend:?}: nothing queued");
        // ...or, told to send what fits, the first four accounts in id order.
        let fits = app
            .data(
                r#"mutation($w: account_bool_exp) { notifyDigest(where: $w, run_id: "paged", send_what_fits: true) { candidates sent skipped over_quota } }"#,
                json!({ "w": filter }),
            )
            .await["notifyDigest"]
            .clone();
        assert_eq!(
            (fits["candidates"].as_i64(), fits["sent"].as_i64(), fits["over_quota"].as_i64()),
            (Some(6), Some(4), Some(2)),
            "{backend:?}: {fits}"
        );
        assert_eq!(sent_to(&sim).keys().cloned().collect::<Vec<_>>(), expected[..4], "{backend:?}");

        // The same run tomorrow sends the other two, and nobody twice.
        sim.set_daily_quota(SEND, None);
        let rest = app.data(DIGEST, json!({ "w": filter, "r": "paged" })).await["notifyDigest"].clone();
        assert_eq!((rest["sent"].as_i64(), rest["skipped"].as_i64()), (Some(2), Some(4)), "{backend:?}: {rest}");
        let sent = sent_to(&sim);
        assert_eq!(sent.keys().cloned().collect::<Vec<_>>(), expected, "{backend:?}");
        assert!(sent.values().all(|messages| messages.len() == 1), "{backend:?}: one message each");
        assert_eq!(sent["oaPage8"][0]["data"]["thing2"]["value"], "聊天9条", "{backend:?}: each page's counts are its own accounts'");
        assert_eq!(app.count("delivery").await, 6);

        // Read by pages of one, two or a thousand, the candidates are the same.
        let paged = |page: &'static str| {
            let mut settings = settings.clone();
            settings.retain(|(name, _)| name != "DIGEST_PAGE");
            settings.push(("DIGEST_PAGE".into(), page.into()));
            let url = app.test_db.url.clone();
            async move {
                let (state, _, stop, server) = start_server(url, &borrowed(&settings)).await;
                let found = digest::candidates_of(&state.services, None, "digest").await.unwrap();
                let _ = stop.send(());
                server.await.unwrap();
                found.iter().map(|c| (c.account.id, c.counts.clone())).collect::<Vec<_>>()
            }
        };
        let by_two = paged("2").await;
        assert_eq!(by_two.len(), 7, "{backend:?}: every following account with unread rows, 7 included: {by_two:?}");
        assert_eq!(paged("1").await, by_two, "{backend:?}");
        assert_eq!(paged("1000").await, by_two, "{backend:?}");
        app.stop().await;
    }
}

/// The announcement of a running digest is renewed every third of
/// `WXNOTIFY_DELIVERY_LEASE` beside the sends, never instead of them: on
/// SQLite a claim whose rows are not read yet holds the write lock, and a
/// renewal that waited for it while the claims stood still broke the run
/// with the pool's timeouts. Here the lease is short, so the announcement
/// is renewed dozens of times while claims of 256 rows stream in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_digest_renewing_its_announcement_while_it_claims_sends_every_message() {
    for backend in [wxnotify::db::DatabaseKind::Sqlite, wxnotify::db::DatabaseKind::Postgres] {
        let Some((app, sim)) = digest_server(backend, &[("DELIVERY_LEASE", "150ms"), ("WECHAT_CONCURRENCY", "64")]).await else { continue };
        let n = 3000;
        let now = Utc::now().to_rfc3339();
        app.sql(&format!(
            "WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < {n}) \
             INSERT INTO account (created_at, updated_at, nickname, oaopenid) SELECT '{now}', '{now}', 'r' || n, 'oaRenew' || n FROM g"
        ))
        .await;
        app.sql(&format!(
            "INSERT INTO point_count (created_at, updated_at, account_account, type, sender, content) \
             SELECT '{now}', '{now}', id, '聊天', 's', 'c' FROM account"
        ))
        .await;
        sim.add_followers((1..=n).map(|i| SimFollower::new(format!("oaRenew{i}"))));
        let report = app.data(DIGEST, json!({ "r": "renewing" })).await["notifyDigest"].clone();
        assert_eq!(
            (report["sent"].as_i64(), report["pending"].as_i64(), report["stopped"].as_str()),
            (Some(n), Some(0), None),
            "{backend:?}: {report}"
        );
        assert_eq!(sim.sent_messages().len(), n as usize, "{backend:?}");
        app.stop().await;
    }
}

/// A digest starts sending once its first page is queued, while the rest
/// are read, rendered and queued: here 60 pages of five accounts, and the
/// first message is sent before the last page's rows are written. When
/// WeChat's quota stops the sends early, the pages queued after the stop
/// are still counted exactly, left PENDING for the same run_id later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_digest_sends_while_it_queues_its_later_pages_and_counts_every_message_after_a_stop() {
    for backend in [wxnotify::db::DatabaseKind::Sqlite, wxnotify::db::DatabaseKind::Postgres] {
        let Some((app, sim)) = digest_server(backend, &[("DIGEST_PAGE", "5"), ("WECHAT_CONCURRENCY", "2")]).await else { continue };
        followers_with_unread(&app, &sim, 300).await;

        let report = app.data(DIGEST, json!({ "r": "overlapping" })).await["notifyDigest"].clone();
        assert_eq!(
            (report["candidates"].as_i64(), report["sent"].as_i64(), report["pending"].as_i64(), report["skipped"].as_i64()),
            (Some(300), Some(300), Some(0), Some(0)),
            "{backend:?}: {report}"
        );
        let sent = sent_to(&sim);
        assert_eq!((sim.sent_messages().len(), sent.len()), (300, 300), "{backend:?}: every follower once");
        let rows = entity::delivery::Entity::find().all(&app.db).await.unwrap();
        let first_sent = rows.iter().filter_map(|r| r.sent_at).min().unwrap();
        let last_queued = rows.iter().map(|r| r.created_at).max().unwrap();
        let queued_later = rows.iter().filter(|r| r.created_at > first_sent).count();
        assert!(
            first_sent < last_queued,
            "{backend:?}: the first message should go (it went at {first_sent}) before the last page is queued (at {last_queued})"
        );
        assert!(queued_later >= 5, "{backend:?}: {queued_later} rows were queued after the first send");

        // WeChat stops the next run after 20 sends while pages are still
        // being queued; quota/get will not say what is left.
        app.sql("DELETE FROM delivery").await;
        sim.set_daily_quota(SEND, Some(320));
        sim.inject_fault("/cgi-bin/openapi/quota/get", 48001, 100);
        let stopped = app.data(DIGEST, json!({ "r": "stopped" })).await["notifyDigest"].clone();
        assert!(stopped["stopped"].as_str().unwrap_or_default().contains("45009"), "{backend:?}: {stopped}");
        let in_db = statuses(&app).await;
        assert_eq!(in_db.get("SENT").copied(), Some(20), "{backend:?}: {in_db:?}");
        assert_eq!(in_db.get("PENDING").copied(), Some(280), "{backend:?}: every page was queued: {in_db:?}");
        assert_eq!(
            (stopped["sent"].as_i64(), stopped["pending"].as_i64(), stopped["failed"].as_i64(), stopped["skipped"].as_i64()),
            (Some(20), Some(280), Some(0), Some(0)),
            "{backend:?}: the report counts what was queued after the stop: {stopped}"
        );
        sim.set_daily_quota(SEND, None);
        let rest = app.data(DIGEST, json!({ "r": "stopped" })).await["notifyDigest"].clone();
        assert_eq!(
            (rest["sent"].as_i64(), rest["skipped"].as_i64(), rest["pending"].as_i64()),
            (Some(280), Some(20), Some(0)),
            "{backend:?}: {rest}"
        );
        assert_eq!(sim.sent_messages().len(), 600, "{backend:?}: each follower once per run");
        app.stop().await;
    }
}

/// When queueing a run fails half-way, what was queued and handed on is
/// still sent, once, and the error is what the caller gets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_queueing_fails_sends_what_it_queued_and_returns_the_error() {
    for backend in [wxnotify::db::DatabaseKind::Sqlite, wxnotify::db::DatabaseKind::Postgres] {
        let Some((app, sim)) = digest_server(backend, &[]).await else { continue };
        followers_with_unread(&app, &sim, 6).await;
        let services = app.state.services.clone();
        let plan = digest::plan(&services, &DigestRequest::default(), "half").await.unwrap();
        let (feeder, feed) = outbox::feed();
        let producing = async {
            let mut feeder = feeder;
            let queued = outbox::enqueue(&services.db, &plan.bulk[..3]).await?;
            feeder.send(queued.iter().map(|(id, _)| *id).collect());
            Err::<((), outbox::Feeder), _>(sea_orm::DbErr::Custom("the database went away".into()))
        };
        let result = outbox::deliver_shared(&services, "digest:half:", feed, producing).await;
        assert!(matches!(&result, Err(sea_orm::DbErr::Custom(e)) if e == "the database went away"), "{backend:?}: {:?}", result.err());
        assert_eq!(statuses(&app).await, BTreeMap::from([("SENT".to_string(), 3)]), "{backend:?}");
        assert_eq!(sim.sent_messages().len(), 3, "{backend:?}");
        app.stop().await;
    }
}

/// The paged candidate statements (the page's accounts, its counts) against
/// one grouped join written by hand, over generated accounts, unread rows
/// and `where` filters, read by pages of several sizes: the same accounts
/// with the same counts, on both databases. Without a `where` the counts
/// read the unread rows alone, so the accounts no template reaches (not
/// following, or an empty openid) must be dropped from them.
#[tokio::test]
async fn the_paged_candidates_are_what_one_grouped_join_counts() {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use sea_orm::{ConnectionTrait, Statement};
    for backend in [wxnotify::db::DatabaseKind::Sqlite, wxnotify::db::DatabaseKind::Postgres] {
        let sim = wxnotify::sim::Simulator::start(Default::default()).await.unwrap();
        let settings = sim_settings(&sim);
        let Some(app) = crate::common::spawn_app_with(backend, &borrowed(&settings)).await else { continue };
        digest_template(&app).await;
        let mut rng = StdRng::seed_from_u64(18);
        let statuses = ["新人", "经纪人", "游客"];
        let rows: Vec<Value> = (0..60)
            .map(|n| {
                let openid = match rng.random_range(0..6) {
                    0 => Value::Null,
                    1 => json!(""),
                    _ => json!(format!("oaCand{n}")),
                };
                json!({"nickname": format!("c{n}"), "user_status": statuses[rng.random_range(0..3)], "oaopenid": openid})
            })
            .collect();
        let ids = accounts(&app, &sim, Value::Array(rows)).await;
        let mut unread_rows = Vec::new();
        for id in &ids {
            for _ in 0..rng.random_range(0..5) {
                let kind = [json!("聊天"), json!("投递邀约"), Value::Null][rng.random_range(0..3)].clone();
                unread_rows.push(json!({ "account_account": id, "type": kind, "sender": "s", "content": "c" }));
            }
        }
        app.data(
            "mutation($r: [point_count_insert_input!]!) { insert_point_count(objects: $r) { affected_rows } }",
            json!({ "r": unread_rows }),
        )
        .await;
        // Each filter with the same condition by hand, over the alias `a`.
        let middle = ids[ids.len() / 2];
        let filters: Vec<(Option<Value>, String)> = vec![
            (None, "1=1".into()),
            (Some(json!({})), "1=1".into()),
            (Some(json!({"user_status": {"_eq": "新人"}})), "a.user_status = '新人'".into()),
            (Some(json!({"id": {"_gt": middle}})), format!("a.id > {middle}")),
            (
                Some(json!({"_or": [{"user_status": {"_eq": "游客"}}, {"nickname": {"_like": "%3%"}}]})),
                "(a.user_status = '游客' OR a.nickname LIKE '%3%')".into(),
            ),
            (
                Some(json!({"point_count": {"type": {"_eq": "投递邀约"}}})),
                "EXISTS (SELECT 1 FROM point_count AS q WHERE q.account_account = a.id AND q.type = '投递邀约')".into(),
            ),
        ];
        type Found = Vec<(i64, BTreeMap<String, i64>)>;
        let mut expected: Vec<Found> = Vec::new();
        for (_, by_hand) in &filters {
            let sql = format!(
                "SELECT a.id, p.type AS kind, count(*) AS n FROM account AS a JOIN point_count AS p ON p.account_account = a.id \
                 WHERE a.oaopenid IS NOT NULL AND a.oaopenid <> '' AND {by_hand} GROUP BY a.id, p.type"
            );
            let mut found: BTreeMap<i64, BTreeMap<String, i64>> = BTreeMap::new();
            for row in app.db.query_all_raw(Statement::from_string(app.db.get_database_backend(), sql)).await.unwrap() {
                let kind: Option<String> = row.try_get("", "kind").unwrap();
                // A row without a type is counted under the digest's label for it.
                *found.entry(row.try_get("", "id").unwrap()).or_default().entry(kind.unwrap_or_else(|| "其他".into())).or_default() +=
                    row.try_get::<i64>("", "n").unwrap();
            }
            expected.push(found.into_iter().collect());
        }
        assert!(expected.iter().all(|found| !found.is_empty()), "{backend:?}: every filter keeps some candidates: {expected:?}");
        assert!(expected[0].len() < ids.len(), "{backend:?}: some accounts are not candidates");
        // Times in other forms than the server writes: SQLite's own
        // `CURRENT_TIMESTAMP` text, and on SQLite two more its driver reads
        // (a time without seconds, which the server's JSON page of accounts
        // leaves to the driver, and one with an offset after a space).
        let odd: Vec<i64> = expected[0].iter().take(3).map(|(id, _)| *id).collect();
        let mut odd_times = vec![format!("UPDATE account SET created_at = '2026-11-30 08:15:00.25' WHERE id = {}", odd[0])];
        if backend == wxnotify::db::DatabaseKind::Sqlite {
            odd_times.push(format!("UPDATE account SET created_at = '2026-11-30T08:16' WHERE id = {}", odd[1]));
            odd_times.push(format!("UPDATE account SET updated_at = '2026-11-30 08:17:00+08:00' WHERE id = {}", odd[2]));
        }
        for sql in odd_times {
            app.db.execute_raw(Statement::from_string(app.db.get_database_backend(), sql)).await.unwrap();
        }
        // The account columns a message can name, NULLs included (no account
        // here has a unionid), as the driver reads them.
        type Time = Option<chrono::DateTime<chrono::Utc>>;
        type Columns = (Option<String>, Option<String>, Option<String>, Option<String>, Time, Time);
        let mut columns: BTreeMap<i64, Columns> = BTreeMap::new();
        let sql = "SELECT id, nickname, user_status, oaopenid, unionid, created_at, updated_at FROM account";
        for row in app.db.query_all_raw(Statement::from_string(app.db.get_database_backend(), sql)).await.unwrap() {
            let text = |column: &str| row.try_get::<Option<String>>("", column).unwrap();
            let time = |column: &str| row.try_get::<Time>("", column).unwrap();
            let read = (text("nickname"), text("user_status"), text("oaopenid"), text("unionid"), time("created_at"), time("updated_at"));
            columns.insert(row.try_get("", "id").unwrap(), read);
        }
        assert!(columns.values().all(|c| c.3.is_none() && c.4.is_some() && c.5.is_some()), "{backend:?}: {columns:?}");
        let quarter_past = chrono::DateTime::parse_from_rfc3339("2026-11-30T08:15:00.25Z").unwrap();
        assert_eq!(columns[&odd[0]].4, Some(quarter_past.to_utc()), "{backend:?}");
        for page in ["1", "3", "7", "1000"] {
            let mut settings = settings.clone();
            settings.push(("DIGEST_PAGE".into(), page.into()));
            let (state, _, stop, server) = start_server(app.test_db.url.clone(), &borrowed(&settings)).await;
            for ((filter, by_hand), expected) in filters.iter().zip(&expected) {
                let found = digest::candidates_of(&state.services, filter.as_ref(), "digest").await.unwrap();
                for c in &found {
                    let a = &c.account;
                    let read =
                        (a.nickname.clone(), a.user_status.clone(), a.oaopenid.clone(), a.unionid.clone(), a.created_at, a.updated_at);
                    assert_eq!(read, columns[&a.id], "{backend:?}, pages of {page}: account {}", a.id);
                }
                let found: Found = found.into_iter().map(|c| (c.account.id, c.counts)).collect();
                assert_eq!(&found, expected, "{backend:?}, pages of {page}, where {filter:?} ({by_hand})");
            }
            let _ = stop.send(());
            server.await.unwrap();
        }
        app.stop().await;
    }
}
