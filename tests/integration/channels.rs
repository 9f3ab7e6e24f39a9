//! The channel order of `notifyAccount` (`WXNOTIFY_CHANNEL_ORDER`), on
//! SQLite and PostgreSQL: the first configured channel that reaches the
//! account and has what it needs (a follower link, a credit) carries the
//! notice.

use serde_json::{Value, json};
use wxnotify::auth::Role;
use wxnotify::sim::{SimFollower, SimMpUser, Simulator};

use crate::common::{TestApp, borrowed, sim_settings, spawn_app_with};
use wxnotify::db::DatabaseKind;

const NOTIFY: &str = r#"mutation($a: bigint!) { notifyAccount(account_id: $a) { status channel error } }"#;

async fn account(app: &TestApp, nickname: &str, oaopenid: &str, mp_openid: &str) -> i64 {
    let data = app
        .data(
            "mutation($o: account_insert_input!) { insert_account_one(object: $o) { id } }",
            json!({ "o": { "nickname": nickname, "oaopenid": oaopenid, "mp_openid": mp_openid } }),
        )
        .await;
    let id = data["insert_account_one"]["id"].as_i64().unwrap();
    app.data(
        "mutation($r: point_count_insert_input!) { insert_point_count_one(object: $r) { id } }",
        json!({ "r": { "account_account": id, "type": "聊天", "sender": "s", "content": "c" } }),
    )
    .await;
    id
}

async fn template(app: &TestApp, name: &str, channel: &str, template_id: &str) {
    app.data(
        "mutation($o: message_template_insert_input!) { insert_message_template_one(object: $o) { id } }",
        json!({ "o": { "name": name, "channel": channel, "template_id": template_id, "page": "pages/inbox",
                "data": {"thing1": {"value": "{{sender}}"}} } }),
    )
    .await;
}

async fn notify(app: &TestApp, account: i64) -> (Value, Value) {
    let answer = app.data(NOTIFY, json!({ "a": account })).await["notifyAccount"].clone();
    (answer["status"].clone(), answer["channel"].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_configured_channel_order_decides_which_channel_carries_a_notice() {
    for backend in [DatabaseKind::Sqlite, DatabaseKind::Postgres] {
        let sim = Simulator::start(Default::default()).await.unwrap();
        sim.add_followers([SimFollower::new("oaA"), SimFollower::new("oaB")]);
        sim.add_mp_users([SimMpUser::new("mpA", None, &[]), SimMpUser::new("mpB", None, &[])]);
        let mut settings = sim_settings(&sim);
        settings.push(("CHANNEL_ORDER".into(), "MP_SUBSCRIBE,OA_TEMPLATE".into()));
        let Some(app) = spawn_app_with(backend, &borrowed(&settings)).await else { continue };
        template(&app, "realtime_single", "OA_TEMPLATE", "tmpl-oa").await;
        template(&app, "realtime_single_subscribe", "MP_SUBSCRIBE", "tmpl-sub").await;
        template(&app, "realtime_single_form", "MP_FORM", "tmpl-form").await;
        let (a, b) = (account(&app, "A", "oaA", "mpA").await, account(&app, "B", "oaB", "mpB").await);

        // A follows but granted a subscription: the credit's channel comes first.
        let token = app.token(Role::User, Some(&a.to_string()));
        let granted =
            app.graphql_with(Some(&token), r#"mutation { grantSubscription(template_ids: ["tmpl-sub"]) { stored } }"#, json!({})).await;
        assert_eq!(granted["data"]["grantSubscription"]["stored"], 1, "{granted}");
        assert_eq!(notify(&app, a).await, (json!("SENT"), json!("MP_SUBSCRIBE")), "{backend:?}");
        assert_eq!(app.count("push_code").await, 0, "the credit was spent");
        // B has no credit: the next channel, the follower's template message.
        assert_eq!(notify(&app, b).await, (json!("SENT"), json!("OA_TEMPLATE")), "{backend:?}");
        let paths: Vec<String> = sim.sent_messages().iter().map(|m| m.path.clone()).collect();
        assert_eq!(paths, ["/cgi-bin/message/subscribe/send", "/cgi-bin/message/template/send"]);
        app.stop().await;

        // The same accounts under the default order: a follower gets the
        // template message even with a credit at hand.
        let Some(app) = spawn_app_with(backend, &borrowed(&sim_settings(&sim))).await else { continue };
        template(&app, "realtime_single", "OA_TEMPLATE", "tmpl-oa").await;
        template(&app, "realtime_single_subscribe", "MP_SUBSCRIBE", "tmpl-sub").await;
        let a = account(&app, "A", "oaA", "mpA").await;
        let token = app.token(Role::User, Some(&a.to_string()));
        app.graphql_with(Some(&token), r#"mutation { grantSubscription(template_ids: ["tmpl-sub"]) { stored } }"#, json!({})).await;
        assert_eq!(notify(&app, a).await, (json!("SENT"), json!("OA_TEMPLATE")), "{backend:?}");
        assert_eq!(app.count("push_code").await, 1, "the credit is kept");
        app.stop().await;
    }
}
