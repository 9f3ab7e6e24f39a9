//! Linking users against the simulator, on SQLite and PostgreSQL: the
//! follower sync (paging, unionids by column and by login map, missing
//! unionids, unfollows cleared, a failed listing changing nothing, a listing
//! staged in several inserts, two syncs at once), login linking at once and its account selection (relations and
//! aggregates, as that user), callback events in plain and safe mode with
//! retries and the pruning of old dedupe records, scan-to-bind, and hostile
//! callback bodies.

use serde_json::{Value, json};
use wxnotify::sim::{CallbackTarget, SimConfig, SimEvent, SimFollower, SimHandle, SimMpUser, Simulator};
use wxnotify::wechat::crypto;

use crate::common::{TestApp, borrowed, sim_settings, spawn_app_with, start_server};
use wxnotify::db::DatabaseKind;
use wxnotify::db::sql::Sql;

const CALLBACK_TOKEN: &str = "test-callback-token";
const AES_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
/// Small pages, so a few hundred followers span several.
const PAGE: usize = 50;
const SYNC: &str = "mutation { syncFollowers { followers matched updated cleared unmatched api_calls duration_ms } }";

/// Each test twice, on a fresh SQLite file and a fresh PostgreSQL database,
/// with a server pointed at a fresh simulator of `followers` generated
/// followers (every even one with a unionid) and `PAGE` openids per page.
macro_rules! with_followers {
    ($(async fn $name:ident($app:ident, $sim:ident, followers = $n:expr) $body:block)*) => {$(
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                if let Some(($app, $sim)) = start(DatabaseKind::Sqlite, $n).await $body
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(($app, $sim)) = start(DatabaseKind::Postgres, $n).await $body
            }
        }
    )*};
}

async fn start(backend: DatabaseKind, followers: usize) -> Option<(TestApp, SimHandle)> {
    let config = SimConfig { followers: (0..followers).map(SimFollower::generated).collect(), page_size: PAGE, ..SimConfig::default() };
    let sim = Simulator::start(config).await.expect("the simulator starts");
    let app = spawn_app_with(backend, &borrowed(&settings(&sim))).await?;
    Some((app, sim))
}

/// The simulator's settings plus the callback's token and key.
fn settings(sim: &SimHandle) -> Vec<(String, String)> {
    let mut settings = sim_settings(sim);
    settings
        .extend([("OA_TOKEN", CALLBACK_TOKEN), ("OA_AES_KEY", AES_KEY), ("WECHAT_CONCURRENCY", "4")].map(|(k, v)| (k.into(), v.into())));
    settings
}

fn openid(n: usize) -> String {
    SimFollower::generated(n).openid
}

fn unionid(n: usize) -> String {
    SimFollower::generated(n).unionid.expect("even followers have a unionid")
}

/// Inserts accounts through the table surface; returns their ids in order.
async fn insert_accounts(app: &TestApp, objects: Value) -> Vec<i64> {
    let data = app
        .data("mutation($o: [account_insert_input!]!) { insert_account(objects: $o) { returning { id } } }", json!({ "o": objects }))
        .await;
    data["insert_account"]["returning"].as_array().unwrap().iter().map(|r| r["id"].as_i64().unwrap()).collect()
}

async fn account(app: &TestApp, id: i64) -> Value {
    let data =
        app.data("query($id: bigint!) { account_by_pk(id: $id) { unionid oaopenid oauth2_user_info_map } }", json!({ "id": id })).await;
    data["account_by_pk"].clone()
}

async fn follower(app: &TestApp, openid: &str) -> Value {
    let data =
        app.data("query($o: String!) { oa_follower(where: {openid: {_eq: $o}}) { unionid subscribed } }", json!({ "o": openid })).await;
    data["oa_follower"][0].clone()
}

/// Every `dedupe_key` in `callback_event`.
async fn callback_keys(app: &TestApp) -> Vec<String> {
    let rows = Sql::new("SELECT dedupe_key FROM callback_event ORDER BY dedupe_key").all(&app.db).await.unwrap();
    rows.iter().map(|row| row.try_get::<String>("", "dedupe_key").unwrap()).collect()
}

async fn sync(app: &TestApp) -> Value {
    app.data(SYNC, json!({})).await["syncFollowers"].clone()
}

fn target(app: &TestApp, safe: bool) -> CallbackTarget {
    CallbackTarget {
        url: format!("{}/wechat/callback", app.address),
        token: CALLBACK_TOKEN.into(),
        aes_key: safe.then(|| AES_KEY.to_string()),
        ..Default::default()
    }
}

with_followers! {
    async fn sync_links_by_unionid_column_and_login_map_across_pages_and_clears_unfollows(app, sim, followers = 230) {
        let ids = insert_accounts(&app, json!([
            { "mp_openid": "m0", "unionid": unionid(0) },
            { "mp_openid": "m2", "oauth2_user_info_map": { "WECHAT": { "openId": "m2", "unionId": unionid(2) } } },
            { "mp_openid": "m4", "unionid": unionid(4), "oaopenid": "oStaleOpenid" },
            { "mp_openid": "mx", "unionid": "uFollowsNothing", "oaopenid": "oLeftLongAgo" },
            { "mp_openid": "my" },
        ])).await;

        let report = sync(&app).await;
        // 230 followers in pages of 50: 5 pages and the empty one after, 5
        // batchgets (one per page), one token.
        assert_eq!(report["followers"], 230, "{report}");
        assert_eq!(report["matched"], 3, "{report}");
        assert_eq!(report["updated"], 3, "{report}");
        assert_eq!(report["cleared"], 1, "{report}");
        assert_eq!(report["unmatched"], 227, "{report}");
        assert_eq!(report["api_calls"], 6 + 5 + 1, "{report}");
        assert_eq!(report["api_calls"].as_u64().unwrap() as usize, sim.calls().len());

        assert_eq!(account(&app, ids[0]).await["oaopenid"], openid(0));
        let by_map = account(&app, ids[1]).await;
        assert_eq!(by_map["oaopenid"], openid(2), "linked through oauth2_user_info_map alone");
        assert_eq!(by_map["unionid"], unionid(2), "and the unionid column is filled");
        assert_eq!(account(&app, ids[2]).await["oaopenid"], openid(4), "a stale link is corrected");
        assert_eq!(account(&app, ids[3]).await["oaopenid"], Value::Null, "a link to a follower not listed is cleared");
        assert_eq!(account(&app, ids[4]).await["oaopenid"], Value::Null);
        assert_eq!(app.count("oa_follower").await, 230);
        assert_eq!(follower(&app, &openid(1)).await, json!({ "unionid": null, "subscribed": true }), "no unionid for odd followers");
        assert_eq!(app.count("follower_sync_stage").await, 0);

        // Again: nothing to change.
        let again = sync(&app).await;
        assert_eq!((again["updated"].clone(), again["cleared"].clone(), again["matched"].clone()), (json!(0), json!(0), json!(3)), "{again}");

        // Follower 0 leaves: the next sync clears the link and marks them.
        sim.add_followers([SimFollower::generated(0).unsubscribed()]);
        let after = sync(&app).await;
        assert_eq!((after["followers"].clone(), after["cleared"].clone(), after["matched"].clone()), (json!(229), json!(1), json!(2)), "{after}");
        assert_eq!(account(&app, ids[0]).await["oaopenid"], Value::Null);
        assert_eq!(follower(&app, &openid(0)).await["subscribed"], false);
    }

    async fn a_listing_that_fails_midway_changes_no_link_and_no_follower(app, sim, followers = 230) {
        let ids = insert_accounts(&app, json!([{ "mp_openid": "m0", "unionid": unionid(0) }, { "mp_openid": "m8", "unionid": unionid(8) }])).await;
        sync(&app).await;
        assert_eq!(account(&app, ids[0]).await["oaopenid"], openid(0));

        // Follower 0 leaves and follower 8's unionid changes hands, but the
        // second page of the next listing fails (daily quota reached).
        sim.add_followers([SimFollower::generated(0).unsubscribed(), SimFollower::generated(8).with_unionid("uSomeoneElse")]);
        let used = sim.count_calls("/cgi-bin/user/get") as u64;
        sim.set_daily_quota("/cgi-bin/user/get", Some(used + 1));
        let body = app.graphql(SYNC, json!({})).await;
        assert_eq!(body["errors"][0]["extensions"]["code"], "wechat-quota", "{body}");
        assert_eq!(account(&app, ids[0]).await["oaopenid"], openid(0), "no link cleared");
        assert_eq!(account(&app, ids[1]).await["oaopenid"], openid(8), "no link changed");
        assert_eq!(follower(&app, &openid(0)).await["subscribed"], true);
        assert_eq!(follower(&app, &openid(8)).await["unionid"], unionid(8));
        assert_eq!(app.count("follower_sync_stage").await, 0);

        // A batchget that fails (WeChat refuses it) changes nothing either.
        sim.set_daily_quota("/cgi-bin/user/get", None);
        sim.inject_fault("/cgi-bin/user/info/batchget", 40003, 1);
        let body = app.graphql(SYNC, json!({})).await;
        assert!(body["errors"][0]["message"].as_str().unwrap().contains("40003"), "{body}");
        assert_eq!(account(&app, ids[0]).await["oaopenid"], openid(0));

        // Once WeChat answers, the sync goes through and the lease was freed.
        let report = sync(&app).await;
        assert_eq!(report["cleared"], 1, "{report}");
        assert_eq!(account(&app, ids[0]).await["oaopenid"], Value::Null);
        assert_eq!(follower(&app, &openid(8)).await["unionid"], "uSomeoneElse");
    }

    async fn a_listing_larger_than_one_stage_insert_is_staged_whole(app, sim, followers = 12_345) {
        // More followers than one insert into the stage takes (several full ones and a partial last one).
        let ids = insert_accounts(&app, json!([{ "unionid": unionid(0) }, { "unionid": unionid(6_000) }, { "unionid": unionid(12_344) }])).await;
        let report = sync(&app).await;
        assert_eq!((report["followers"].clone(), report["matched"].clone(), report["unmatched"].clone()), (json!(12_345), json!(3), json!(12_342)), "{report}");
        assert_eq!(report["api_calls"].as_u64().unwrap() as usize, sim.calls().len(), "{report}");
        for (id, n) in ids.iter().zip([0, 6_000, 12_344]) {
            assert_eq!(account(&app, *id).await["oaopenid"], openid(n), "follower {n}");
        }
        assert_eq!(app.count("oa_follower").await, 12_345);
        assert_eq!(app.count("follower_sync_stage").await, 0);
    }

    async fn two_syncs_at_once_do_not_interleave_across_processes(app, sim, followers = 230) {
        insert_accounts(&app, json!([{ "mp_openid": "m0", "unionid": unionid(0) }])).await;
        sim.set_latency(std::time::Duration::from_millis(150));
        let first = {
            let (client, address, token) = (app.client.clone(), app.address.clone(), app.admin_token());
            tokio::spawn(async move {
                let response = client.post(format!("{address}/api/graphql")).bearer_auth(token).json(&json!({ "query": SYNC })).send().await.unwrap();
                response.json::<Value>().await.unwrap()
            })
        };
        while sim.count_calls("/cgi-bin/user/get") == 0 {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        // A second server process on the same database.
        let (_state, second, _stop, _server) = start_server(app.test_db.url.clone(), &borrowed(&settings(&sim))).await;
        let response = app.client.post(format!("{second}/api/graphql")).bearer_auth(app.admin_token()).json(&json!({ "query": SYNC })).send().await.unwrap();
        let refused: Value = response.json().await.unwrap();
        assert_eq!(refused["errors"][0]["extensions"]["code"], "sync-running", "{refused}");

        let first = first.await.unwrap();
        assert_eq!(first["data"]["syncFollowers"]["matched"], 1, "{first}");
        sim.set_latency(std::time::Duration::ZERO);
        assert_eq!(sync(&app).await["matched"], 1, "the lease is released after the first sync");
    }

    async fn a_sync_cut_short_by_a_stopping_server_changes_nothing_and_frees_the_lease(app, sim, followers = 230) {
        let ids = insert_accounts(&app, json!([{ "mp_openid": "m0", "unionid": unionid(0) }])).await;
        sim.set_latency(std::time::Duration::from_millis(300));
        // Another server process runs the sync and is stopped while it lists.
        let (_state, second, stop, server) = start_server(app.test_db.url.clone(), &borrowed(&settings(&sim))).await;
        let running = {
            let request = app.client.post(format!("{second}/api/graphql")).bearer_auth(app.admin_token()).json(&json!({ "query": SYNC }));
            tokio::spawn(async move { request.send().await.unwrap().json::<Value>().await.unwrap() })
        };
        for _ in 0..1000 {
            if sim.count_calls("/cgi-bin/user/get") > 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(sim.count_calls("/cgi-bin/user/get") > 0, "the sync began listing within 10 s");
        stop.send(()).unwrap();
        server.await.unwrap();
        let interrupted = running.await.unwrap();
        assert_eq!(interrupted["errors"][0]["extensions"]["code"], "sync-interrupted", "{interrupted}");
        assert_eq!(account(&app, ids[0]).await["oaopenid"], Value::Null, "no link was set");
        assert_eq!((app.count("oa_follower").await, app.count("follower_sync_stage").await), (0, 0));
        let metrics = app.get("/metrics").await.text().await.unwrap();
        assert!(metrics.contains(r#"wxnotify_follower_syncs_total{outcome="interrupted"}"#), "{metrics}");

        sim.set_latency(std::time::Duration::ZERO);
        assert_eq!(sync(&app).await["matched"], 1, "the lease was freed");
        let metrics = app.get("/metrics").await.text().await.unwrap();
        assert!(metrics.contains("wxnotify_follower_sync_duration_seconds") && metrics.contains("wxnotify_followers "), "{metrics}");
    }

    async fn login_links_at_once_when_the_unionid_already_follows(app, sim, followers = 20) {
        sim.add_mp_users([
            SimMpUser::new("oMpFan", Some(&unionid(6)), &["code-fan"]),
            SimMpUser::new("oMpStranger", None, &["code-stranger", "code-stranger-2"]),
        ]);
        sync(&app).await;
        let login = "mutation($c: String!) { loginWithWechatMiniApp(code: $c) { account { id me: mp_openid oaopenid unionid oauth2_user_info_map } jwt { token expires_at } } }";
        let body = app.graphql_with(None, login, json!({ "c": "code-fan" })).await;
        let fan = &body["data"]["loginWithWechatMiniApp"];
        assert_eq!(fan["account"]["oaopenid"], openid(6), "{body}");
        assert_eq!(fan["account"]["me"], "oMpFan", "aliases work");
        assert_eq!(fan["account"]["oauth2_user_info_map"], json!({ "WECHAT": { "openId": "oMpFan", "unionId": unionid(6) } }));
        let id = fan["account"]["id"].as_i64().unwrap();

        // The token is a user token for that account.
        let token = fan["jwt"]["token"].as_str().unwrap();
        let own = app.graphql_with(Some(token), "{ account { id } }", json!({})).await;
        assert_eq!(own["data"]["account"], json!([{ "id": id }]), "{own}");

        let stranger = app.graphql_with(None, login, json!({ "c": "code-stranger" })).await;
        let first = stranger["data"]["loginWithWechatMiniApp"]["account"].clone();
        assert_eq!(first["oaopenid"], Value::Null, "{stranger}");
        let again = app.graphql_with(None, login, json!({ "c": "code-stranger-2" })).await;
        assert_eq!(again["data"]["loginWithWechatMiniApp"]["account"]["id"], first["id"], "one account per mp_openid");

        let used = app.graphql_with(None, login, json!({ "c": "code-fan" })).await;
        assert_eq!(used["errors"][0]["extensions"]["code"], "invalid-code", "{used}");

        // oaOpenidByUnionid: admin and user; anonymous is refused.
        let query = "query($u: String!) { oaOpenidByUnionid(unionid: $u) }";
        assert_eq!(app.data(query, json!({ "u": unionid(6) })).await["oaOpenidByUnionid"], openid(6));
        assert_eq!(app.data(query, json!({ "u": "uNobody" })).await["oaOpenidByUnionid"], Value::Null);
        let as_user = app.graphql_with(Some(token), query, json!({ "u": unionid(6) })).await;
        assert_eq!(as_user["data"]["oaOpenidByUnionid"], openid(6));
        let anonymous = app.graphql_with(None, query, json!({ "u": unionid(6) })).await;
        assert_eq!(anonymous["errors"][0]["extensions"]["code"], "access-denied");
    }

    async fn login_returns_the_account_with_relations_and_aggregates_as_that_user(app, sim, followers = 0) {
        sim.add_mp_users([SimMpUser::new("oMpRich", Some("uRich"), &["first", "second", "third"])]);
        let first = app.graphql_with(None, "mutation { loginWithWechatMiniApp(code: \"first\") { account { id } } }", json!({})).await;
        let id = first["data"]["loginWithWechatMiniApp"]["account"]["id"].as_i64().unwrap();
        let other = insert_accounts(&app, json!([{ "mp_openid": "mOther" }])).await[0];
        app.data("mutation($o: [point_count_insert_input!]!) { insert_point_count(objects: $o) { affected_rows } }", json!({ "o": [
            { "account_account": id, "type": "聊天", "sender": "a", "content": "hi" },
            { "account_account": id, "type": "聊天", "sender": "b", "content": "hello" },
            { "account_account": id, "type": "投递邀约", "sender": "c", "content": "an invitation" },
            { "account_account": other, "type": "聊天", "sender": "d", "content": "someone else's" },
        ] })).await;
        app.data("mutation($o: [push_code_insert_input!]!) { insert_push_code(objects: $o) { affected_rows } }", json!({ "o": [
            { "account_account": id, "kind": "FORM_ID", "code": "f1" },
            { "account_account": other, "kind": "FORM_ID", "code": "f2" },
        ] })).await;

        let login = r#"mutation($c: String!) { loginWithWechatMiniApp(code: $c) { account {
            id me: mp_openid unionid
            point_count(order_by: {id: asc}) { sender }
            chats: point_count_aggregate(where: {type: {_eq: "聊天"}}) { aggregate { count } }
            point_count_aggregate { aggregate { count } }
            codes: push_code { kind code }
            push_code_aggregate { aggregate { count } }
        } jwt { token } } }"#;
        let body = app.graphql_with(None, login, json!({ "c": "second" })).await;
        assert_eq!(body["data"]["loginWithWechatMiniApp"]["account"], json!({
            "id": id, "me": "oMpRich", "unionid": "uRich",
            "point_count": [{ "sender": "a" }, { "sender": "b" }, { "sender": "c" }],
            "chats": { "aggregate": { "count": 2 } },
            "point_count_aggregate": { "aggregate": { "count": 3 } },
            "codes": [{ "kind": "FORM_ID", "code": "f1" }],
            "push_code_aggregate": { "aggregate": { "count": 1 } },
        }), "{body}");
        assert!(body["data"]["loginWithWechatMiniApp"]["jwt"]["token"].is_string(), "{body}");

        // Read as the account itself, not as an admin: users may not read deliveries.
        let refused = app.graphql_with(None, "mutation { loginWithWechatMiniApp(code: \"third\") { account { id delivery { id } } } }", json!({})).await;
        assert_eq!(refused["errors"][0]["extensions"]["code"], "access-denied", "{refused}");
    }

    async fn callback_events_in_plain_and_safe_mode_link_unlink_and_ignore_retries(app, sim, followers = 0) {
        sim.add_followers([SimFollower::new("oNewFan").with_unionid("uNewFan").unsubscribed()]);
        sim.add_mp_users([SimMpUser::new("oMpNewFan", Some("uNewFan"), &["c1"])]);
        let login = app.graphql_with(None, "mutation { loginWithWechatMiniApp(code: \"c1\") { account { id oaopenid } } }", json!({})).await;
        let id = login["data"]["loginWithWechatMiniApp"]["account"]["id"].as_i64().unwrap();

        for safe in [false, true] {
            let follow = sim.prepare(&target(&app, safe), SimEvent::Subscribe { openid: "oNewFan".into(), ticket: None }).unwrap();
            let answer = follow.send().await.unwrap();
            assert_eq!((answer.status, answer.body.as_str()), (200, "success"), "safe mode: {safe}");
            assert_eq!(account(&app, id).await["oaopenid"], "oNewFan", "safe mode: {safe}");
            assert_eq!(follower(&app, "oNewFan").await, json!({ "unionid": "uNewFan", "subscribed": true }));

            let leave = sim.prepare(&target(&app, safe), SimEvent::Unsubscribe { openid: "oNewFan".into() }).unwrap();
            assert_eq!(leave.send().await.unwrap().body, "success");
            assert_eq!(account(&app, id).await["oaopenid"], Value::Null);
            assert_eq!(follower(&app, "oNewFan").await["subscribed"], false);

            // They follow again (WeChat's CreateTime has whole seconds); its
            // late retry of the unsubscribe is harmless.
            sim.advance_clock(std::time::Duration::from_secs(2));
            sim.push(&target(&app, safe), SimEvent::Subscribe { openid: "oNewFan".into(), ticket: None }).await.unwrap();
            let calls = sim.count_calls("/cgi-bin/user/info");
            let retry = leave.send().await.unwrap();
            assert_eq!((retry.status, retry.body.as_str()), (200, "success"));
            assert_eq!(account(&app, id).await["oaopenid"], "oNewFan", "a replayed unsubscribe changes nothing");
            assert_eq!(follow.send().await.unwrap().body, "success");
            assert_eq!(sim.count_calls("/cgi-bin/user/info"), calls, "a replayed subscribe does no work");
            sim.push(&target(&app, safe), SimEvent::Unsubscribe { openid: "oNewFan".into() }).await.unwrap();
            // Tell this round's events from the next one's (CreateTime is in seconds).
            sim.advance_clock(std::time::Duration::from_secs(5));
        }

        // Send reports update the delivery by msgid.
        app.sql("INSERT INTO delivery (created_at, updated_at, channel, touser, template_id, payload, dedupe_key, status, attempts, msgid) VALUES \
                 ('2026-01-01T00:00:00+00:00', '2026-01-01T00:00:00+00:00', 'OA_TEMPLATE', 'oNewFan', 't', '{}', 'd1', 'SENT', 1, 101), \
                 ('2026-01-01T00:00:00+00:00', '2026-01-01T00:00:00+00:00', 'OA_TEMPLATE', 'oNewFan', 't', '{}', 'd2', 'SENT', 1, 102)").await;
        sim.push(&target(&app, false), SimEvent::TemplateSendJobFinish { openid: "oNewFan".into(), msgid: 101, status: "success".into() }).await.unwrap();
        sim.push(&target(&app, true), SimEvent::TemplateSendJobFinish { openid: "oNewFan".into(), msgid: 102, status: "failed:user block".into() }).await.unwrap();
        let rows = app.data("{ delivery(order_by: {msgid: asc}) { msgid status errmsg } }", json!({})).await;
        assert_eq!(rows["delivery"], json!([
            { "msgid": 101, "status": "SENT", "errmsg": null },
            { "msgid": 102, "status": "FAILED", "errmsg": "failed:user block" },
        ]));

        // GET: WeChat's URL check.
        let (timestamp, nonce) = ("1700000000", "42");
        let signature = crypto::signature(CALLBACK_TOKEN, timestamp, nonce);
        let good = app.get(&format!("/wechat/callback?signature={signature}&timestamp={timestamp}&nonce={nonce}&echostr=hello")).await;
        assert_eq!((good.status().as_u16(), good.text().await.unwrap()), (200, "hello".to_string()));
        let bad = app.get(&format!("/wechat/callback?signature=0000&timestamp={timestamp}&nonce={nonce}&echostr=hello")).await;
        assert_eq!(bad.status(), 401);
    }

    async fn callback_records_older_than_a_day_are_forgotten_when_an_event_arrives(app, sim, followers = 2) {
        let now = chrono::Utc::now();
        let kept = [("oLate:1:subscribe", now - chrono::TimeDelta::minutes(1)), ("oDay:2:subscribe", now - chrono::TimeDelta::hours(23))];
        let stale = [("oOld:3:subscribe", now - chrono::TimeDelta::hours(25)), ("oAncient:4:subscribe", now - chrono::TimeDelta::days(90))];
        for (key, received_at) in kept.iter().chain(&stale) {
            let mut insert = Sql::new("INSERT INTO callback_event (dedupe_key, event, received_at) VALUES (");
            insert.bind(*key).push(", 'subscribe', ").bind(*received_at).push(")");
            insert.execute(&app.db).await.unwrap();
        }

        sim.push(&target(&app, false), SimEvent::Subscribe { openid: openid(0), ticket: None }).await.unwrap();
        let keys = callback_keys(&app).await;
        assert_eq!(keys.len(), 3, "the two recent records and the new event's: {keys:?}");
        assert!(kept.iter().all(|(key, _)| keys.contains(&key.to_string())), "{keys:?}");
        assert!(keys.iter().any(|key| key.starts_with(&format!("{}:", openid(0)))), "{keys:?}");
        assert_eq!(follower(&app, &openid(0)).await["subscribed"], true, "the event itself was applied");
    }

    async fn scanning_a_bind_code_binds_that_account_once(app, sim, followers = 4) {
        sim.add_mp_users([SimMpUser::new("oMpA", None, &["ca"]), SimMpUser::new("oMpB", None, &["cb"])]);
        let login = |code: &'static str| {
            let app = &app;
            async move {
                let body = app.graphql_with(None, &format!("mutation {{ loginWithWechatMiniApp(code: \"{code}\") {{ account {{ id }} jwt {{ token }} }} }}"), json!({})).await;
                let result = &body["data"]["loginWithWechatMiniApp"];
                (result["account"]["id"].as_i64().unwrap(), result["jwt"]["token"].as_str().unwrap().to_string())
            }
        };
        let (a, token_a) = login("ca").await;
        let (b, _) = login("cb").await;
        let create = "mutation($id: bigint!) { createBindQrCode(account_id: $id, expire_seconds: 600) { ticket url expire_seconds image_url } }";
        let denied = app.graphql_with(Some(&token_a), create, json!({ "id": b })).await;
        assert_eq!(denied["errors"][0]["extensions"]["code"], "access-denied", "{denied}");
        let code = app.graphql_with(Some(&token_a), create, json!({ "id": a })).await;
        let code = &code["data"]["createBindQrCode"];
        assert_eq!(code["expire_seconds"], 600, "{code}");
        assert!(code["image_url"].as_str().unwrap().starts_with("https://mp.weixin.qq.com/cgi-bin/showqrcode?ticket="));
        let ticket = code["ticket"].as_str().unwrap().to_string();
        let scene = sim.qr_scene(&ticket).unwrap();
        assert!(scene.len() <= 64 && scene.len() >= 40, "an unguessable scene: {scene}");
        let other = app.graphql_with(Some(&token_a), create, json!({ "id": a })).await;
        let other = sim.qr_scene(other["data"]["createBindQrCode"]["ticket"].as_str().unwrap()).unwrap();
        assert_ne!(scene, other, "every code has a scene of its own");

        // An existing follower without a unionid scans it.
        sim.push(&target(&app, true), SimEvent::Scan { openid: openid(1), ticket: ticket.clone() }).await.unwrap();
        assert_eq!(account(&app, a).await["oaopenid"], openid(1));
        // Someone else scanning the same code later binds nothing.
        sim.push(&target(&app, false), SimEvent::Scan { openid: openid(3), ticket: ticket.clone() }).await.unwrap();
        assert_eq!(account(&app, a).await["oaopenid"], openid(1));

        // Following through a code binds too.
        let code = app.data(create, json!({ "id": b })).await;
        let ticket = code["createBindQrCode"]["ticket"].as_str().unwrap().to_string();
        sim.push(&target(&app, false), SimEvent::Subscribe { openid: "oBrandNew".into(), ticket: Some(ticket) }).await.unwrap();
        assert_eq!(account(&app, b).await["oaopenid"], "oBrandNew");
        assert_eq!(follower(&app, "oBrandNew").await["subscribed"], true);

        let missing = app.graphql(create, json!({ "id": 999_999 })).await;
        assert_eq!(missing["errors"][0]["extensions"]["code"], "not-found", "{missing}");
    }

    async fn hostile_callback_bodies_are_refused_and_change_nothing(app, sim, followers = 2) {
        sim.push(&target(&app, false), SimEvent::Subscribe { openid: openid(0), ticket: None }).await.unwrap();
        let (events, followers) = (app.count("callback_event").await, app.count("oa_follower").await);
        let (timestamp, nonce) = ("1700000000", "7");
        let signature = crypto::signature(CALLBACK_TOKEN, timestamp, nonce);
        let post = |query: String, body: String| {
            let app = &app;
            async move {
                // A fresh connection each time: the server closes one whose body it refused unread.
                let client = reqwest::Client::new();
                let response = client.post(format!("{}/wechat/callback?{query}", app.address)).body(body).send().await.unwrap();
                response.status().as_u16()
            }
        };
        let signed = format!("signature={signature}&timestamp={timestamp}&nonce={nonce}");
        let event = |inner: &str| format!("<xml><FromUserName>oAttacker</FromUserName><CreateTime>1</CreateTime><MsgType>event</MsgType><Event>subscribe</Event>{inner}</xml>");
        let laughs = format!("<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;\">]>{}", event("<EventKey>&b;</EventKey>"));
        assert_eq!(post(signed.clone(), laughs).await, 400, "a DTD");
        let external = format!("<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]>{}", event("<EventKey>&e;</EventKey>"));
        assert_eq!(post(signed.clone(), external).await, 400, "an external entity");
        assert_eq!(post(signed.clone(), event("<EventKey>&e;</EventKey>")).await, 400, "an undeclared entity");
        assert_eq!(post(signed.clone(), "<xml><FromUserName>o</FromUserName>".into()).await, 400, "truncated");
        assert_eq!(post(signed.clone(), "\u{0}\u{1}garbage".into()).await, 400, "garbage");
        assert_eq!(post(signed.clone(), "<xml><MsgType>event</MsgType></xml>".into()).await, 400, "no FromUserName");
        assert_eq!(post(signed.clone(), event(&"<Pad>x</Pad>".repeat(20_000))).await, 413, "oversized");
        assert_eq!(post(format!("signature=bad&timestamp={timestamp}&nonce={nonce}"), event("")).await, 401, "a bad signature");
        assert_eq!(post(String::new(), event("")).await, 401, "no signature");

        // Safe mode: a wrong msg_signature, and a message for another appid.
        let key = crypto::AesKey::parse(AES_KEY).unwrap();
        let foreign = crypto::encrypt(&key, &event(""), "wxsomeoneelse0001");
        let body = format!("<xml><Encrypt><![CDATA[{foreign}]]></Encrypt></xml>");
        let msg_signature = crypto::msg_signature(CALLBACK_TOKEN, timestamp, nonce, &foreign);
        assert_eq!(post(format!("{signed}&encrypt_type=aes&msg_signature={msg_signature}"), body.clone()).await, 403, "another appid");
        assert_eq!(post(format!("{signed}&encrypt_type=aes&msg_signature=bad"), body).await, 401, "a bad msg_signature");

        assert_eq!(app.count("callback_event").await, events, "nothing recorded");
        assert_eq!(app.count("oa_follower").await, followers, "nothing changed");
        assert_eq!(follower(&app, "oAttacker").await, Value::Null);
        let still = app.get("/healthz").await;
        assert_eq!(still.status(), 200, "the server is fine");
    }
}

with_followers! {
    async fn a_scheduled_sync_job_links_like_sync_followers(app, sim, followers = 120) {
        let ids = insert_accounts(&app, json!([{ "unionid": unionid(0) }, { "unionid": unionid(2) }])).await;
        app.data(r#"mutation { addScheduledJob(input: {name: "nightly", group: "sync", jobType: SYNC_FOLLOWERS,
            triggerConfigs: [{triggerType: "cron", cron: "0 0 3 * * ?"}]}) { name } }"#, json!({})).await;
        app.data(r#"mutation { triggerScheduledJob(group: "sync", name: "nightly") }"#, json!({})).await;
        let run = crate::common::finished_job_run(&app).await;
        assert_eq!(run["status"], "SUCCEEDED", "{run}");
        assert_eq!((run["result"]["followers"].as_i64(), run["result"]["matched"].as_i64()), (Some(120), Some(2)), "{run}");
        assert_eq!(account(&app, ids[0]).await["oaopenid"], json!(openid(0)));
        let _ = &sim;
    }
}
