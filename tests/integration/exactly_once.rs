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

use crate::common::{Backend, TestApp, borrowed, sim_settings, spawn_app_with};

/// A server on a fresh database talking to `sim`, with short leases so a
/// lapsed one is seen quickly.
async fn spawn(backend: Backend, sim: &SimHandle, extra: &[(&str, &str)]) -> Option<TestApp> {
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
                let ($backend, $answer) = (Backend::Sqlite, RepeatAnswer::Exists);
                $body
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite_answer_ok() {
                let ($backend, $answer) = (Backend::Sqlite, RepeatAnswer::Ok);
                $body
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres_answer_45065() {
                let ($backend, $answer) = (Backend::Postgres, RepeatAnswer::Exists);
                $body
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres_answer_ok() {
                let ($backend, $answer) = (Backend::Postgres, RepeatAnswer::Ok);
                $body
            }
        }
    )*};
}

each_backend_and_answer! {
    async fn lapsed_sends_inside_the_window_are_resent_and_settled_past_it_never(backend, answer) {
        let sim = Simulator::start(Default::default()).await.unwrap();
        sim.set_repeat_answer(answer);
        let Some(app) = spawn(backend, &sim, &[]).await else { return };
        let ids = followers_with_unread(&app, &sim, 4).await;
        let services = app.state.services.clone();
        let (_, planned) = digest::plan(&services, &DigestRequest::default(), "crashed").await.unwrap();
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
