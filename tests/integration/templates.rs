//! Templates WeChat accepts, on SQLite and PostgreSQL: the account's
//! template library synced into `wechat_template` (removed ones marked);
//! `message_template` rows checked against it when saved; each recipient's
//! values fitted before queueing (cut with an ellipsis or FAILED without a
//! call, never a 47003 from WeChat); 40252 reviews settled by the later
//! report; `previewMessage`; digests refused over the day's quota.

use serde_json::{Value, json};
use wxnotify::db::DatabaseKind;
use wxnotify::sim::{CallbackTarget, SimFollower, SimHandle, SimSubscriptionTemplate, SimTemplate, Simulator};
use wxnotify::wechat::App;

use crate::common::{TestApp, borrowed, sim_settings, spawn_app_with};

const OA_TOKEN: &str = "oa-push-token";
const SYNC: &str = "mutation { syncTemplates { listed added updated removed skipped } }";
const NOTIFY: &str = r#"mutation($a: bigint!) { notifyAccount(account_id: $a) { status channel error delivery_id } }"#;
const DIGEST: &str = r#"mutation($r: String, $d: Boolean, $f: Boolean) {
  notifyDigest(run_id: $r, dry_run: $d, send_what_fits: $f) { candidates sent in_review failed skipped cut refused problems over_quota } }"#;

fn backends() -> [DatabaseKind; 2] {
    [DatabaseKind::Sqlite, DatabaseKind::Postgres]
}

async fn start(backend: DatabaseKind, sim: &SimHandle, extra: &[(&str, &str)]) -> Option<TestApp> {
    let mut settings = sim_settings(sim);
    settings.push(("OA_TOKEN".into(), OA_TOKEN.into()));
    settings.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    spawn_app_with(backend, &borrowed(&settings)).await
}

async fn save_template(app: &TestApp, name: &str, template_id: &str, data: Value) -> Value {
    app.graphql(
        "mutation($o: message_template_insert_input!) { insert_message_template_one(object: $o) { id } }",
        json!({ "o": { "name": name, "channel": "OA_TEMPLATE", "template_id": template_id, "page": "pages/inbox", "data": data } }),
    )
    .await
}

fn refusal(answer: &Value) -> String {
    assert_eq!(answer["errors"][0]["extensions"]["code"], "validation-failed", "{answer}");
    answer["errors"][0]["message"].as_str().unwrap().to_string()
}

async fn follower_account(app: &TestApp, openid: &str, nickname: &str) -> i64 {
    let data = app
        .data(
            "mutation($o: account_insert_input!) { insert_account_one(object: $o) { id } }",
            json!({ "o": { "nickname": nickname, "oaopenid": openid, "mp_openid": format!("mp-{openid}") } }),
        )
        .await;
    let id = data["insert_account_one"]["id"].as_i64().unwrap();
    app.data(
        "mutation($r: point_count_insert_input!) { insert_point_count_one(object: $r) { id } }",
        json!({ "r": { "account_account": id, "type": "聊天", "sender": "小王", "content": "在吗" } }),
    )
    .await;
    id
}

async fn deliveries(app: &TestApp) -> Vec<Value> {
    let data = app.data("{ delivery(order_by: {id: asc}) { status touser errcode errmsg msgid notes payload } }", json!({})).await;
    data["delivery"].as_array().unwrap().clone()
}

fn template_sends(sim: &SimHandle) -> Vec<i64> {
    sim.calls().iter().filter(|c| c.path == "/cgi-bin/message/template/send").map(|c| c.errcode).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_synced_library_checks_every_saved_message_template() {
    for backend in backends() {
        let sim = Simulator::start(Default::default()).await.unwrap();
        sim.add_template(SimTemplate::category("tmpl-cat", "新消息提醒", &["thing1", "time2", "character_string3"]));
        sim.add_template(SimTemplate::legacy("tmpl-old", "旧模板", &["keyword1", "keyword2"]));
        sim.add_subscription_template(App::Oa, SimSubscriptionTemplate::one_time("tmpl-oa-sub", "订阅提醒", &["thing1"]));
        let Some(app) = start(backend, &sim, &[]).await else { continue };

        // Before any sync nothing is known, so nothing is refused.
        assert!(save_template(&app, "anything", "tmpl-unknown", json!({ "thing9": { "value": "x" } })).await["errors"].is_null());

        let report = app.data(SYNC, json!({})).await["syncTemplates"].clone();
        assert_eq!(
            (report["listed"].as_i64(), report["added"].as_i64(), report["removed"].as_i64()),
            (Some(3), Some(3), Some(0)),
            "{backend:?}: {report}"
        );
        let rows =
            app.data("{ wechat_template(order_by: {template_id: asc}) { template_id channel kind keywords removed_at } }", json!({})).await;
        let rows = rows["wechat_template"].as_array().unwrap().clone();
        assert_eq!(rows.len(), 3);
        assert_eq!((rows[0]["template_id"].as_str(), rows[0]["kind"].as_str()), (Some("tmpl-cat"), Some("CATEGORY")));
        assert_eq!(
            rows[0]["keywords"],
            json!([{ "key": "thing1", "type": "thing" }, { "key": "time2", "type": "time" }, { "key": "character_string3", "type": "character_string" }])
        );
        assert_eq!((rows[1]["template_id"].as_str(), rows[1]["kind"].as_str()), (Some("tmpl-oa-sub"), Some("CATEGORY")));
        assert_eq!(rows[1]["channel"], "OA_SUBSCRIBE");
        assert_eq!((rows[2]["template_id"].as_str(), rows[2]["kind"].as_str()), (Some("tmpl-old"), Some("LEGACY")));

        let good =
            json!({ "thing1": { "value": "{{sender}}" }, "time2": { "value": "{{now}}" }, "character_string3": { "value": "NO-{{id}}" } });
        assert!(save_template(&app, "digest", "tmpl-cat", good.clone()).await["errors"].is_null());
        let unknown = json!({ "thing1": { "value": "a" }, "thing9": { "value": "b" }, "time2": { "value": "{{now}}" }, "character_string3": { "value": "1" } });
        let text = refusal(&save_template(&app, "bad1", "tmpl-cat", unknown).await);
        assert!(text.contains("data.thing9 is not a keyword of template tmpl-cat"), "{text}");
        let mut remark = good.clone();
        remark["remark"] = json!({ "value": "谢谢" });
        let text = refusal(&save_template(&app, "bad2", "tmpl-cat", remark.clone()).await);
        assert!(text.contains("data.remark") && text.contains("category template"), "{text}");
        let text = refusal(
            &save_template(&app, "bad3", "tmpl-cat", json!({ "thing1": { "value": "a" }, "character_string3": { "value": "1" } })).await,
        );
        assert!(text.contains("lacks time2"), "{text}");
        let mut chinese = good.clone();
        chinese["character_string3"] = json!({ "value": "订单号" });
        let text = refusal(&save_template(&app, "bad4", "tmpl-cat", chinese).await);
        assert!(text.contains("character_string3"), "{text}");
        // A legacy template takes first/remark and cuts nothing at save time.
        let legacy = json!({ "first": { "value": "你好" }, "keyword1": { "value": "{{sender}}" }, "keyword2": { "value": "x" }, "remark": { "value": "谢谢" } });
        assert!(save_template(&app, "old", "tmpl-old", legacy).await["errors"].is_null());
        // An update is checked too, and a refused one changes nothing.
        let update = app
            .graphql(
                r#"mutation($d: jsonb) { update_message_template(where: {name: {_eq: "digest"}}, _set: {data: $d}) { affected_rows } }"#,
                json!({ "d": remark }),
            )
            .await;
        assert!(refusal(&update).contains("data.remark"));
        let kept = app.data(r#"{ message_template(where: {name: {_eq: "digest"}}) { data } }"#, json!({})).await;
        assert_eq!(kept["message_template"][0]["data"], good, "{backend:?}");
        assert_eq!(app.count("message_template").await, 3, "only the three good rows were saved");

        // Removed from WeChat: marked, not deleted; templates naming it are refused.
        sim.remove_template("tmpl-old");
        let report = app.data(SYNC, json!({})).await["syncTemplates"].clone();
        assert_eq!((report["removed"].as_i64(), report["added"].as_i64()), (Some(1), Some(0)), "{report}");
        let gone = app.data(r#"{ wechat_template(where: {template_id: {_eq: "tmpl-old"}}) { removed_at } }"#, json!({})).await;
        assert!(gone["wechat_template"][0]["removed_at"].is_string(), "{gone}");
        let text = refusal(&save_template(&app, "old2", "tmpl-old", json!({ "keyword1": { "value": "x" } })).await);
        assert!(text.contains("not in the account's OA_TEMPLATE template library"), "{text}");
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_digest_overflowing_a_thing_key_is_cut_with_an_ellipsis_or_failed_never_refused_by_wechat() {
    for (backend, overflow) in backends().into_iter().flat_map(|b| [(b, "cut"), (b, "fail")]) {
        let sim = Simulator::start(Default::default()).await.unwrap();
        sim.add_followers([SimFollower::new("oaLong"), SimFollower::new("oaShort")]);
        sim.add_template(SimTemplate::category("tmpl-digest", "未读提醒", &["thing1", "thing2"]));
        let Some(app) = start(backend, &sim, &[("TEMPLATE_OVERFLOW", overflow)]).await else { continue };
        app.data(SYNC, json!({})).await;
        let data = json!({ "thing1": { "value": "{{nickname}}" }, "thing2": { "value": "{{summary}}" } });
        assert!(save_template(&app, "digest", "tmpl-digest", data).await["errors"].is_null());
        follower_account(&app, "oaLong", "一个名字非常非常长的用户他的昵称超过了二十个字").await;
        follower_account(&app, "oaShort", "小李").await;

        let dry = app.data(DIGEST, json!({ "d": true })).await["notifyDigest"].clone();
        let expected = if overflow == "cut" { (Some(1), Some(0)) } else { (Some(0), Some(1)) };
        assert_eq!((dry["cut"].as_i64(), dry["refused"].as_i64()), expected, "{backend:?} {overflow}: {dry}");
        assert!(dry["problems"][0].as_str().unwrap().contains("`digest`: 1 recipient(s)"), "{dry}");
        assert!(template_sends(&sim).is_empty(), "a dry run sends nothing");

        let report = app.data(DIGEST, json!({ "r": format!("long-{overflow}") })).await["notifyDigest"].clone();
        let rows = deliveries(&app).await;
        let long = rows.iter().find(|d| d["touser"] == "oaLong").unwrap();
        if overflow == "cut" {
            assert_eq!(report["sent"], 2, "{report}");
            let value = long["payload"]["data"]["thing1"]["value"].as_str().unwrap().to_string();
            assert!(value.ends_with('…') && value.chars().count() <= 20, "{value}");
            assert!(long["notes"].as_str().unwrap().contains("thing1 cut to"), "{long}");
            let sent = sim.sent_messages();
            assert!(sent.iter().any(|m| m.touser == "oaLong" && m.payload["data"]["thing1"]["value"] == value.as_str()));
        } else {
            assert_eq!((report["sent"].as_i64(), report["refused"].as_i64()), (Some(1), Some(1)), "{report}");
            assert_eq!(long["status"], "FAILED");
            assert!(long["errmsg"].as_str().unwrap().contains("data.thing1.value"), "{long}");
            assert!(sim.sent_messages().iter().all(|m| m.touser != "oaLong"), "never sent");
        }
        assert!(template_sends(&sim).iter().all(|code| *code == 0), "{backend:?} {overflow}: no 47003 from WeChat");
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_character_string_filled_with_chinese_is_refused_before_sending() {
    for backend in backends() {
        let sim = Simulator::start(Default::default()).await.unwrap();
        sim.add_followers([SimFollower::new("oaC")]);
        sim.add_template(SimTemplate::category("tmpl-code", "验证提醒", &["character_string1"]));
        let Some(app) = start(backend, &sim, &[]).await else { continue };
        app.data(SYNC, json!({})).await;
        assert!(
            save_template(&app, "realtime_single", "tmpl-code", json!({ "character_string1": { "value": "{{sender}}" } })).await["errors"]
                .is_null()
        );
        let account = follower_account(&app, "oaC", "c").await;
        let notice = app.data(NOTIFY, json!({ "a": account })).await["notifyAccount"].clone();
        assert_eq!(notice["status"], "FAILED", "{backend:?}: {notice}");
        assert!(notice["error"].as_str().unwrap().contains("character_string1"), "{notice}");
        assert!(template_sends(&sim).is_empty(), "{backend:?}: WeChat was never called");
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_in_review_is_never_resent_and_the_later_report_settles_it() {
    for backend in backends() {
        let sim = Simulator::start(Default::default()).await.unwrap();
        sim.add_followers([SimFollower::new("oaR1"), SimFollower::new("oaR2"), SimFollower::new("oaR3")]);
        sim.add_template(SimTemplate::category("tmpl-rev", "提醒", &["thing1"]));
        let Some(app) = start(backend, &sim, &[("PENDING_RETRY_AFTER", "1s"), ("DELIVERY_LEASE", "1s")]).await else { continue };
        app.data(SYNC, json!({})).await;
        assert!(
            save_template(&app, "realtime_single", "tmpl-rev", json!({ "thing1": { "value": "{{sender}}" } })).await["errors"].is_null()
        );
        let (a, b) = (follower_account(&app, "oaR1", "r1").await, follower_account(&app, "oaR2", "r2").await);
        sim.set_review_share(1.0);
        for account in [a, b] {
            let notice = app.data(NOTIFY, json!({ "a": account })).await["notifyAccount"].clone();
            assert_eq!(notice["status"], "IN_REVIEW", "{backend:?}: {notice}");
        }
        let rows = deliveries(&app).await;
        assert!(rows.iter().all(|d| d["status"] == "IN_REVIEW" && d["errcode"] == 40252 && d["msgid"].is_null()), "{rows:?}");
        // The sweeper passes them over: WeChat has them.
        tokio::time::sleep(std::time::Duration::from_secs(3)).await;
        assert_eq!(template_sends(&sim), [40252, 40252], "{backend:?}: never resent");

        let blocked = sim.blocked();
        let target = CallbackTarget { url: format!("{}/wechat/callback", app.address), token: OA_TOKEN.into(), ..Default::default() };
        for (item, approve) in blocked.iter().zip([true, false]) {
            let event = sim.review(item.id, approve).unwrap();
            let outcome = sim.push(&target, event).await.unwrap();
            assert_eq!(outcome.status, 200, "{}", outcome.body);
        }
        let rows = deliveries(&app).await;
        let by = |openid: &str| rows.iter().find(|d| d["touser"] == openid).unwrap().clone();
        let approved = by(&blocked[0].touser);
        assert_eq!(approved["status"], "SENT", "{backend:?}: {approved}");
        assert!(approved["msgid"].is_i64() && approved["errmsg"].is_null(), "{approved}");
        let refused = by(&blocked[1].touser);
        assert_eq!(refused["status"], "FAILED", "{refused}");
        assert!(refused["errmsg"].as_str().unwrap().contains("failed"), "{refused}");

        // One WeChat lists as intercepted (queryblocktmplmsg) and never reports.
        let c = follower_account(&app, "oaR3", "r3").await;
        assert_eq!(app.data(NOTIFY, json!({ "a": c })).await["notifyAccount"]["status"], "IN_REVIEW");
        let services = app.state.services.clone();
        assert_eq!(wxnotify::notify::outbox::settle_reviews(&services, chrono::Duration::hours(1)).await.unwrap(), 0, "too young");
        assert_eq!(wxnotify::notify::outbox::settle_reviews(&services, chrono::Duration::zero()).await.unwrap(), 1);
        let rows = deliveries(&app).await;
        let third = rows.iter().find(|d| d["touser"] == "oaR3").unwrap();
        assert_eq!(third["status"], "FAILED", "{backend:?}: {third}");
        assert!(third["errmsg"].as_str().unwrap().contains("intercepted by WeChat's content review"), "{third}");
        assert_eq!(by("oaR1")["status"].as_str(), approved["status"].as_str(), "settled rows are left alone");
        assert_eq!(template_sends(&sim).len(), 3, "{backend:?}: one call per message, never resent");
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preview_shows_one_accounts_message_as_it_would_be_read_and_sends_nothing() {
    for backend in backends() {
        let sim = Simulator::start(Default::default()).await.unwrap();
        sim.add_followers([SimFollower::new("oaP")]);
        sim.add_template(SimTemplate::category("tmpl-p", "未读提醒", &["thing1", "thing2"]));
        let Some(app) = start(backend, &sim, &[]).await else { continue };
        app.data(SYNC, json!({})).await;
        let data = json!({ "thing1": { "value": "{{nickname}}" }, "thing2": { "value": "你有{{total}}条未读：{{summary}}" } });
        assert!(save_template(&app, "digest", "tmpl-p", data).await["errors"].is_null());
        let account = follower_account(&app, "oaP", "一个名字非常非常长的用户他的昵称超过了二十个字").await;
        let preview = app
            .data(
                "query($a: bigint!) { previewMessage(template: \"digest\", account_id: $a) { channel template_id payload content problems cut sendable } }",
                json!({ "a": account }),
            )
            .await["previewMessage"]
            .clone();
        assert_eq!(
            (preview["channel"].as_str(), preview["template_id"].as_str()),
            (Some("OA_TEMPLATE"), Some("tmpl-p")),
            "{backend:?}: {preview}"
        );
        assert_eq!(preview["payload"]["touser"], "oaP");
        assert_eq!(preview["cut"], json!(["thing1"]));
        assert_eq!(preview["sendable"], true);
        let content = preview["content"].as_str().unwrap();
        assert!(
            content.contains("thing2:你有1条未读：聊天1条") && content.contains("thing1:一个名字") && content.contains('…'),
            "{content}"
        );
        assert!(preview["problems"][0].as_str().unwrap().contains("thing1 cut"), "{preview}");
        assert!(sim.calls().iter().all(|c| !c.path.contains("send")), "nothing sent");
        assert_eq!(app.count("delivery").await, 0, "nothing queued");
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_digest_over_the_days_quota_is_refused_with_the_numbers_unless_told_to_send_what_fits() {
    for backend in backends() {
        let sim = Simulator::start(Default::default()).await.unwrap();
        sim.add_followers([SimFollower::new("oaQ1"), SimFollower::new("oaQ2"), SimFollower::new("oaQ3")]);
        sim.set_daily_quota("/cgi-bin/message/template/send", Some(2));
        let Some(app) = start(backend, &sim, &[]).await else { continue };
        assert!(save_template(&app, "digest", "tmpl-q", json!({ "thing1": { "value": "{{summary}}" } })).await["errors"].is_null());
        for openid in ["oaQ1", "oaQ2", "oaQ3"] {
            follower_account(&app, openid, openid).await;
        }
        let dry = app.data(DIGEST, json!({ "d": true })).await["notifyDigest"].clone();
        assert!(dry["problems"][0].as_str().unwrap().contains("would send 3 template messages but only 2 are left"), "{backend:?}: {dry}");
        let refused = app.graphql(DIGEST, json!({ "r": "quota-1" })).await;
        assert_eq!(refused["errors"][0]["extensions"]["code"], "wechat-quota", "{refused}");
        let text = refused["errors"][0]["message"].as_str().unwrap().to_string();
        assert!(text.contains("would send 3 template messages but only 2 are left today (daily limit 2, used 0)"), "{backend:?}: {text}");
        assert!(text.contains("send_what_fits"), "{text}");
        assert_eq!(app.count("delivery").await, 0, "nothing queued");

        let report = app.data(DIGEST, json!({ "r": "quota-1", "f": true })).await["notifyDigest"].clone();
        assert_eq!((report["sent"].as_i64(), report["over_quota"].as_i64()), (Some(2), Some(1)), "{backend:?}: {report}");
        assert_eq!(sim.sent_messages().len(), 2);

        // doctor and /metrics show what is left.
        let checks = wxnotify::doctor::run(&app.state.settings).await;
        let quota = checks.into_iter().find(|c| c.name == "quota").unwrap().verdict;
        let wxnotify::doctor::Verdict::Warn(text) = quota else { panic!("{backend:?}: nothing left is a warning: {quota:?}") };
        assert!(text.contains("/cgi-bin/message/template/send: 0 of 2 left today") && text.contains("/cgi-bin/user/get:"), "{text}");
        // The recorder is the process's: other tests' servers write the same
        // gauges, so only their presence is this test's to check.
        let metrics = app.get("/metrics").await.text().await.unwrap();
        assert!(metrics.contains(r#"wxnotify_wechat_quota_remaining{api="/cgi-bin/message/template/send"}"#), "{metrics}");
        assert!(metrics.contains(r#"wxnotify_wechat_quota_daily_limit{api="/cgi-bin/user/get"}"#), "{metrics}");
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_sync_templates_job_fills_the_library() {
    for backend in backends() {
        let sim = Simulator::start(Default::default()).await.unwrap();
        sim.add_template(SimTemplate::category("tmpl-job", "定时同步", &["thing1"]));
        let Some(app) = start(backend, &sim, &[]).await else { continue };
        app.data(
            r#"mutation { addScheduledJob(input: {name: "templates", group: "wechat", jobType: SYNC_TEMPLATES,
            triggerConfigs: [{triggerType: "cron", cron: "0 0 4 * * ?"}]}) { name } }"#,
            json!({}),
        )
        .await;
        app.data(r#"mutation { triggerScheduledJob(group: "wechat", name: "templates") }"#, json!({})).await;
        let run = crate::common::finished_job_run(&app).await;
        assert_eq!(run["status"], "SUCCEEDED", "{backend:?}: {run}");
        assert_eq!((run["result"]["listed"].as_i64(), run["result"]["added"].as_i64()), (Some(1), Some(1)), "{run}");
        assert_eq!(app.count("wechat_template").await, 1);
        app.stop().await;
    }
}
