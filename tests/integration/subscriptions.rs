//! Subscription messages on both apps, on SQLite and PostgreSQL: credits
//! WeChat reports through the service account's callback and the
//! mini-program's message push (XML and JSON, plain and safe mode), counted
//! once however many report them; service-account subscription notices
//! (OA_SUBSCRIBE, `subscribe/bizsend`) reaching users who do not follow;
//! `subscribe_msg_sent_event` settling deliveries; change events removing
//! credits; digests taking the channel order.

use serde_json::{Value, json};
use wxnotify::auth::Role;
use wxnotify::doctor::Verdict;
use wxnotify::sim::{CallbackTarget, PushApp, PushFormat, SimEvent, SimFollower, SimHandle, SimMpUser, SimSubscriptionTemplate, Simulator};
use wxnotify::wechat::App;

use crate::common::{TestApp, borrowed, sim_settings, spawn_app_with};
use wxnotify::db::DatabaseKind;

const OA_TOKEN: &str = "oa-push-token";
const MP_TOKEN: &str = "mp-push-token";
const AES_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
const NOTIFY: &str = r#"mutation($a: bigint!) { notifyAccount(account_id: $a) { status channel error delivery_id } }"#;

async fn start(backend: DatabaseKind, sim: &SimHandle) -> Option<TestApp> {
    let mut settings = sim_settings(sim);
    for (k, v) in [("OA_TOKEN", OA_TOKEN), ("MP_TOKEN", MP_TOKEN), ("OA_AES_KEY", AES_KEY), ("MP_AES_KEY", AES_KEY)] {
        settings.push((k.into(), v.into()));
    }
    spawn_app_with(backend, &borrowed(&settings)).await
}

fn oa(app: &TestApp) -> CallbackTarget {
    CallbackTarget { url: format!("{}/wechat/callback", app.address), token: OA_TOKEN.into(), ..Default::default() }
}

fn mp(app: &TestApp, format: PushFormat, safe: bool) -> CallbackTarget {
    CallbackTarget {
        url: format!("{}/wechat/mp-callback", app.address),
        token: MP_TOKEN.into(),
        aes_key: safe.then(|| AES_KEY.to_string()),
        app: PushApp::MiniProgram,
        format,
    }
}

async fn insert_account(app: &TestApp, object: Value) -> i64 {
    let data = app.data("mutation($o: account_insert_input!) { insert_account_one(object: $o) { id } }", json!({ "o": object })).await;
    let id = data["insert_account_one"]["id"].as_i64().unwrap();
    app.data(
        "mutation($r: point_count_insert_input!) { insert_point_count_one(object: $r) { id } }",
        json!({ "r": { "account_account": id, "type": "聊天", "sender": "小王", "content": "在吗" } }),
    )
    .await;
    id
}

async fn template(app: &TestApp, name: &str, channel: &str, template_id: &str) {
    app.data(
        "mutation($o: message_template_insert_input!) { insert_message_template_one(object: $o) { id } }",
        json!({ "o": { "name": name, "channel": channel, "template_id": template_id, "page": "pages/inbox",
                "data": {"thing1": {"value": "{{nickname}}"}} } }),
    )
    .await;
}

/// The account's credits: (kind, template_id, openid, source).
async fn credits(app: &TestApp, account: i64) -> Vec<(String, String, Option<String>, String)> {
    let data = app
        .data(
            "query($a: bigint!) { push_code(where: {account_account: {_eq: $a}}, order_by: {id: asc}) { kind template_id openid source } }",
            json!({ "a": account }),
        )
        .await;
    data["push_code"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["kind"].as_str().unwrap().to_string(),
                c["template_id"].as_str().unwrap().to_string(),
                c["openid"].as_str().map(str::to_string),
                c["source"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

async fn delivery(app: &TestApp, id: i64) -> Value {
    let data = app
        .data("query($id: bigint!) { delivery_by_pk(id: $id) { status channel touser msgid errcode errmsg } }", json!({ "id": id }))
        .await;
    data["delivery_by_pk"].clone()
}

async fn pushed(sim: &SimHandle, target: &CallbackTarget, event: SimEvent) {
    let outcome = sim.push(target, event).await.unwrap();
    assert_eq!((outcome.status, outcome.body.as_str()), (200, "success"), "{target:?}");
}

fn backends() -> [DatabaseKind; 2] {
    [DatabaseKind::Sqlite, DatabaseKind::Postgres]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_popup_accepted_on_the_service_account_pays_a_notice_to_a_non_follower_settled_by_the_sent_event() {
    for backend in backends() {
        let sim = Simulator::start(Default::default()).await.unwrap();
        // Followed once and left: WeChat still knows their unionid.
        sim.add_followers([SimFollower::new("oaGone").with_unionid("uGone").unsubscribed()]);
        sim.add_subscription_template(App::Oa, SimSubscriptionTemplate::one_time("tmpl-oa-sub", "消息提醒", &["thing1"]));
        let Some(app) = start(backend, &sim).await else { continue };
        template(&app, "realtime_single", "OA_TEMPLATE", "tmpl-oa").await;
        template(&app, "realtime_single_oa_subscribe", "OA_SUBSCRIBE", "tmpl-oa-sub").await;
        let account = insert_account(&app, json!({ "nickname": "gone", "mp_openid": "mpGone", "unionid": "uGone" })).await;

        let before = app.data(NOTIFY, json!({ "a": account })).await["notifyAccount"].clone();
        assert_eq!(before["status"], "NOT_FOLLOWING", "{backend:?}: no follower link and no credit yet");

        // WeChat pushes the popup; its retry (the very same request) is answered and ignored.
        let popup = sim
            .prepare(
                &oa(&app),
                SimEvent::SubscriptionPopup { openid: "oaGone".into(), accepted: vec!["tmpl-oa-sub".into()], rejected: vec![] },
            )
            .unwrap();
        for _ in 0..2 {
            let outcome = popup.send().await.unwrap();
            assert_eq!((outcome.status, outcome.body.as_str()), (200, "success"));
        }
        assert_eq!(
            credits(&app, account).await,
            [("OA_SUBSCRIBE".into(), "tmpl-oa-sub".into(), Some("oaGone".into()), "WECHAT".into())],
            "{backend:?}: one credit, on the openid WeChat named"
        );
        let follower = app.data(r#"{ oa_follower(where: {openid: {_eq: "oaGone"}}) { unionid subscribed } }"#, json!({})).await;
        assert_eq!(follower["oa_follower"], json!([{ "unionid": "uGone", "subscribed": false }]), "recorded, not as a follower");

        let notice = app.data(NOTIFY, json!({ "a": account })).await["notifyAccount"].clone();
        assert_eq!((notice["status"].as_str(), notice["channel"].as_str()), (Some("SENT"), Some("OA_SUBSCRIBE")), "{backend:?}: {notice}");
        let sent = sim.sent_messages();
        assert_eq!(sent.len(), 1);
        assert_eq!((sent[0].path.as_str(), sent[0].touser.as_str()), ("/cgi-bin/message/subscribe/bizsend", "oaGone"));
        assert_eq!(sent[0].payload["miniprogram"], json!({ "appid": sim.mp_appid(), "pagepath": "pages/inbox" }));
        assert_eq!(app.count("push_code").await, 0, "the credit was spent");
        assert_eq!(sim.oa_subscribe_credits("oaGone", "tmpl-oa-sub"), 0);
        let id = notice["delivery_id"].as_i64().unwrap();
        let row = delivery(&app, id).await;
        assert_eq!((row["status"].as_str(), row["msgid"].as_i64()), (Some("SENT"), None), "bizsend answers without a msgid");

        // WeChat's result names the msgid; it settles this delivery.
        let sent_event = SimEvent::SubscriptionSent { openid: "oaGone".into(), msgid: sent[0].msgid, errcode: 0, status: "success".into() };
        pushed(&sim, &oa(&app), sent_event).await;
        let row = delivery(&app, id).await;
        assert_eq!((row["status"].as_str(), row["msgid"].as_i64()), (Some("SENT"), Some(sent[0].msgid)), "{backend:?}");

        // Without a credit, bizsend is not tried again: nothing reaches them.
        app.sql("DELETE FROM notice").await;
        let again = app.data(NOTIFY, json!({ "a": account })).await["notifyAccount"].clone();
        assert_eq!(again["status"], "NOT_FOLLOWING", "{backend:?}");
        assert_eq!(sim.sent_messages().len(), 1);
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mini_program_pushes_in_xml_and_json_plain_and_safe_record_each_acceptance_once() {
    for backend in backends() {
        let sim = Simulator::start(Default::default()).await.unwrap();
        sim.add_mp_users([SimMpUser::new("mpA", None, &[])]);
        let Some(app) = start(backend, &sim).await else { continue };
        let account = insert_account(&app, json!({ "nickname": "a", "mp_openid": "mpA" })).await;
        let token = app.token(Role::User, Some(&account.to_string()));
        let grant = |template: &str| {
            let (app, token, template) = (&app, token.clone(), template.to_string());
            async move {
                let answer = app
                    .graphql_with(
                        Some(&token),
                        "mutation($t: [String!]!) { grantSubscription(template_ids: $t) { stored } }",
                        json!({ "t": [template] }),
                    )
                    .await;
                assert_eq!(answer["data"]["grantSubscription"]["stored"], 1, "{answer}");
            }
        };
        let mut expected = Vec::new();
        for (n, (format, safe)) in
            [(PushFormat::Xml, false), (PushFormat::Xml, true), (PushFormat::Json, false), (PushFormat::Json, true)].into_iter().enumerate()
        {
            let target = mp(&app, format, safe);
            // WeChat first, then the client's own report of the same tap: one credit.
            let first = format!("tmpl-{n}-a");
            let popup = sim
                .prepare(
                    &target,
                    SimEvent::SubscriptionPopup { openid: "mpA".into(), accepted: vec![first.clone()], rejected: vec!["tmpl-no".into()] },
                )
                .unwrap();
            assert!(popup.body.trim_start().starts_with(if format == PushFormat::Json { '{' } else { '<' }), "{}", popup.body);
            assert_eq!(popup.query.iter().any(|(k, _)| k == "msg_signature"), safe);
            for _ in 0..2 {
                let outcome = popup.send().await.unwrap();
                assert_eq!((outcome.status, outcome.body.as_str()), (200, "success"), "{format:?} safe={safe}");
            }
            grant(&first).await;
            expected.push(("SUBSCRIBE".to_string(), first, Some("mpA".to_string()), "BOTH".to_string()));
            // The client first, then WeChat: one credit.
            let second = format!("tmpl-{n}-b");
            grant(&second).await;
            pushed(&sim, &target, SimEvent::SubscriptionPopup { openid: "mpA".into(), accepted: vec![second.clone()], rejected: vec![] })
                .await;
            expected.push(("SUBSCRIBE".to_string(), second, Some("mpA".to_string()), "BOTH".to_string()));
            assert_eq!(credits(&app, account).await, expected, "{backend:?} {format:?} safe={safe}");
        }
        // A second acceptance of the same template (a second later) is a second credit.
        sim.advance_clock(std::time::Duration::from_secs(1));
        pushed(
            &sim,
            &mp(&app, PushFormat::Json, false),
            SimEvent::SubscriptionPopup { openid: "mpA".into(), accepted: vec!["tmpl-0-a".into()], rejected: vec![] },
        )
        .await;
        assert_eq!(credits(&app, account).await.len(), expected.len() + 1);

        // Turning it off removes every credit of that template, whoever reported it.
        pushed(
            &sim,
            &mp(&app, PushFormat::Xml, true),
            SimEvent::SubscriptionChange { openid: "mpA".into(), rejected: vec!["tmpl-0-a".into()] },
        )
        .await;
        let left = credits(&app, account).await;
        assert_eq!(left.len(), expected.len() - 1, "{left:?}");
        assert!(left.iter().all(|c| c.1 != "tmpl-0-a"), "{left:?}");
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mini_program_sent_event_settles_the_delivery_by_its_msgid_and_a_change_event_removes_a_service_account_credit() {
    for backend in backends() {
        let sim = Simulator::start(Default::default()).await.unwrap();
        sim.add_mp_users([SimMpUser::new("mpB", None, &[])]);
        sim.add_followers([SimFollower::new("oaB").with_unionid("uB")]);
        let Some(app) = start(backend, &sim).await else { continue };
        template(&app, "realtime_single", "MP_SUBSCRIBE", "tmpl-mp").await;
        let account = insert_account(&app, json!({ "nickname": "b", "mp_openid": "mpB", "unionid": "uB" })).await;
        pushed(
            &sim,
            &mp(&app, PushFormat::Json, true),
            SimEvent::SubscriptionPopup { openid: "mpB".into(), accepted: vec!["tmpl-mp".into()], rejected: vec![] },
        )
        .await;
        let notice = app.data(NOTIFY, json!({ "a": account })).await["notifyAccount"].clone();
        assert_eq!((notice["status"].as_str(), notice["channel"].as_str()), (Some("SENT"), Some("MP_SUBSCRIBE")), "{backend:?}: {notice}");
        let msgid = sim.sent_messages()[0].msgid;
        let id = notice["delivery_id"].as_i64().unwrap();
        pushed(
            &sim,
            &mp(&app, PushFormat::Json, false),
            SimEvent::SubscriptionSent { openid: "mpB".into(), msgid, errcode: 10005, status: "failed:user block".into() },
        )
        .await;
        let row = delivery(&app, id).await;
        assert_eq!(
            (row["status"].as_str(), row["msgid"].as_i64(), row["errcode"].as_i64()),
            (Some("FAILED"), Some(msgid), Some(10005)),
            "{row}"
        );
        assert!(row["errmsg"].as_str().unwrap().contains("failed:user block"), "{row}");

        // A service-account credit, then the user turns the notice off.
        pushed(
            &sim,
            &oa(&app),
            SimEvent::SubscriptionPopup { openid: "oaB".into(), accepted: vec!["tmpl-oa-sub".into()], rejected: vec![] },
        )
        .await;
        assert_eq!(credits(&app, account).await, [("OA_SUBSCRIBE".into(), "tmpl-oa-sub".into(), Some("oaB".into()), "WECHAT".into())]);
        pushed(&sim, &oa(&app), SimEvent::SubscriptionChange { openid: "oaB".into(), rejected: vec!["tmpl-oa-sub".into()] }).await;
        assert_eq!(credits(&app, account).await, [], "{backend:?}");
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_digest_reaches_followers_by_template_and_others_by_their_credits_spending_each_once() {
    const DIGEST: &str =
        r#"mutation($r: String, $d: Boolean) { notifyDigest(run_id: $r, dry_run: $d) { run_id candidates sent failed skipped pending } }"#;
    for backend in backends() {
        let sim = Simulator::start(Default::default()).await.unwrap();
        sim.add_followers([SimFollower::new("oaF").with_unionid("uF"), SimFollower::new("oaN").with_unionid("uN").unsubscribed()]);
        sim.add_mp_users([SimMpUser::new("mpM", None, &[])]);
        let Some(app) = start(backend, &sim).await else { continue };
        template(&app, "digest", "OA_TEMPLATE", "tmpl-digest").await;
        template(&app, "digest_oa_subscribe", "OA_SUBSCRIBE", "tmpl-digest-oa").await;
        template(&app, "digest_subscribe", "MP_SUBSCRIBE", "tmpl-digest-mp").await;
        let follower = insert_account(&app, json!({ "nickname": "f", "mp_openid": "mpF", "unionid": "uF", "oaopenid": "oaF" })).await;
        let non_follower = insert_account(&app, json!({ "nickname": "n", "mp_openid": "mpN", "unionid": "uN" })).await;
        let mp_user = insert_account(&app, json!({ "nickname": "m", "mp_openid": "mpM" })).await;
        let _unreachable = insert_account(&app, json!({ "nickname": "x", "mp_openid": "mpX" })).await;
        // Two acceptances for the non-follower: one is spent, one is left.
        for _ in 0..2 {
            pushed(
                &sim,
                &oa(&app),
                SimEvent::SubscriptionPopup { openid: "oaN".into(), accepted: vec!["tmpl-digest-oa".into()], rejected: vec![] },
            )
            .await;
            sim.advance_clock(std::time::Duration::from_secs(1));
        }
        pushed(
            &sim,
            &mp(&app, PushFormat::Xml, false),
            SimEvent::SubscriptionPopup { openid: "mpM".into(), accepted: vec!["tmpl-digest-mp".into()], rejected: vec![] },
        )
        .await;

        let dry = app.data(DIGEST, json!({ "d": true })).await["notifyDigest"].clone();
        assert_eq!(dry["candidates"], 3, "{backend:?}: {dry}");
        assert_eq!(app.count("push_code").await, 3, "a dry run spends nothing");

        let report = app.data(DIGEST, json!({ "r": "mixed-1" })).await["notifyDigest"].clone();
        assert_eq!((report["candidates"].as_i64(), report["sent"].as_i64()), (Some(3), Some(3)), "{backend:?}: {report}");
        let mut sent: Vec<(String, String)> = sim.sent_messages().iter().map(|m| (m.path.clone(), m.touser.clone())).collect();
        sent.sort();
        assert_eq!(
            sent,
            [
                ("/cgi-bin/message/subscribe/bizsend".to_string(), "oaN".to_string()),
                ("/cgi-bin/message/subscribe/send".to_string(), "mpM".to_string()),
                ("/cgi-bin/message/template/send".to_string(), "oaF".to_string()),
            ]
        );
        assert_eq!(credits(&app, non_follower).await.len(), 1, "one of the two credits spent");
        assert_eq!(credits(&app, mp_user).await.len(), 0);
        assert_eq!(credits(&app, follower).await.len(), 0);

        // The same run again queues nothing and spends no credit.
        let again = app.data(DIGEST, json!({ "r": "mixed-1" })).await["notifyDigest"].clone();
        assert_eq!((again["sent"].as_i64(), again["skipped"].as_i64()), (Some(0), Some(2)), "{backend:?}: {again}");
        assert_eq!(credits(&app, non_follower).await.len(), 1, "{backend:?}: a resumed run spends no second credit");
        assert_eq!(sim.sent_messages().len(), 3);
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mini_program_push_checks_signatures_and_says_what_is_missing() {
    let sim = Simulator::start(Default::default()).await.unwrap();
    sim.add_mp_users([SimMpUser::new("mpA", None, &[])]);
    for backend in backends() {
        let Some(app) = start(backend, &sim).await else { continue };
        let client = reqwest::Client::new();
        let url = format!("{}/wechat/mp-callback", app.address);
        // WeChat's check when the push URL is saved.
        let ok = mp(&app, PushFormat::Json, false);
        let signed = sim.prepare(&ok, SimEvent::SubscriptionChange { openid: "mpA".into(), rejected: vec!["t".into()] }).unwrap();
        let mut query = signed.query.clone();
        query.push(("echostr".into(), "echo-123".into()));
        let with = |url: &str, query: &[(String, String)]| reqwest::Url::parse_with_params(url, query).unwrap();
        let echo = client.get(with(&url, &query)).send().await.unwrap();
        assert_eq!((echo.status().as_u16(), echo.text().await.unwrap()), (200, "echo-123".to_string()));
        // Signed with the service account's Token: refused, nothing recorded.
        let wrong = CallbackTarget { token: OA_TOKEN.into(), ..mp(&app, PushFormat::Json, false) };
        let refused = sim
            .push(&wrong, SimEvent::SubscriptionPopup { openid: "mpA".into(), accepted: vec!["t".into()], rejected: vec![] })
            .await
            .unwrap();
        assert_eq!(refused.status, 401, "{}", refused.body);
        // Not a message.
        let garbage = client.post(with(&url, &signed.query)).body("{\"FromUserName\": 5").send().await.unwrap();
        assert_eq!(garbage.status().as_u16(), 400);
        assert_eq!(app.count("push_code").await, 0);
        assert_eq!(app.count("callback_event").await, 0);
        app.stop().await;

        // A server without WXNOTIFY_MP_TOKEN says so.
        let Some(bare) = spawn_app_with(backend, &borrowed(&sim_settings(&sim))).await else { continue };
        let answer = client
            .post(with(&format!("{}/wechat/mp-callback", bare.address), &signed.query))
            .body(signed.body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status().as_u16(), 503);
        assert!(answer.text().await.unwrap().contains("WXNOTIFY_MP_TOKEN"));
        bare.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_checks_subscription_templates_against_each_apps_library() {
    for backend in backends() {
        let sim = Simulator::start(Default::default()).await.unwrap();
        sim.add_subscription_template(App::Oa, SimSubscriptionTemplate::one_time("tmpl-oa-sub", "消息提醒", &["thing1"]));
        sim.add_subscription_template(App::Mp, SimSubscriptionTemplate::one_time("tmpl-mp", "回复提醒", &["thing2"]));
        let Some(app) = start(backend, &sim).await else { continue };
        let verdict = |name: &'static str| {
            let settings = app.state.settings.clone();
            async move {
                let checks = wxnotify::doctor::run(&settings).await;
                checks.into_iter().find(|c| c.name == name).map(|c| c.verdict).expect("the check runs")
            }
        };
        assert!(matches!(verdict("subscription templates").await, Verdict::Ok(t) if t.contains("no OA_SUBSCRIBE")));
        assert!(matches!(verdict("mini-program push").await, Verdict::Ok(t) if t.contains("safe mode")));
        template(&app, "a_oa", "OA_SUBSCRIBE", "tmpl-oa-sub").await;
        let ok = verdict("subscription templates").await;
        assert_eq!(ok, Verdict::Ok("1 subscription message template(s) match the accounts' libraries".into()), "{backend:?}");
        template(&app, "b_mp", "MP_SUBSCRIBE", "tmpl-mp").await;
        template(&app, "c_oa", "OA_SUBSCRIBE", "tmpl-gone").await;
        let Verdict::Fail(problems) = verdict("subscription templates").await else { panic!("{backend:?}: mismatches fail") };
        assert!(problems.contains("`b_mp` fills thing1, which template tmpl-mp (回复提醒) does not have"), "{problems}");
        assert!(problems.contains("`c_oa` names OA_SUBSCRIBE tmpl-gone, which the account's library does not have"), "{problems}");
        assert!(!problems.contains("a_oa"), "{problems}");
        app.stop().await;
    }
}
