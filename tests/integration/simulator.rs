//! The simulator behaves like WeChat: exact answer shapes, limits, token
//! lifetimes, code reuse, quotas, and signed callback pushes. These talk to
//! it over raw HTTP and need no database, so each runs once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::routing::post;
use serde_json::{Value, json};
use wxnotify::sim::{CallbackTarget, SimConfig, SimEvent, SimFollower, SimHandle, SimMpUser, Simulator};
use wxnotify::wechat::crypto;

struct Wire {
    sim: SimHandle,
    http: reqwest::Client,
}

impl Wire {
    async fn start(config: SimConfig) -> Wire {
        Wire { sim: Simulator::start(config).await.expect("the simulator starts"), http: reqwest::Client::new() }
    }

    async fn get(&self, path: &str, query: &[(&str, &str)]) -> Value {
        let url = reqwest::Url::parse_with_params(&format!("{}{path}", self.sim.base_url()), query).unwrap();
        self.http.get(url).send().await.unwrap().json().await.unwrap()
    }

    async fn post(&self, path: &str, query: &[(&str, &str)], body: Value) -> Value {
        let url = reqwest::Url::parse_with_params(&format!("{}{path}", self.sim.base_url()), query).unwrap();
        self.http.post(url).json(&body).send().await.unwrap().json().await.unwrap()
    }

    async fn token(&self) -> String {
        let oa = self.sim.oa_appid();
        let answer = self.get("/cgi-bin/token", &[("grant_type", "client_credential"), ("appid", &oa), ("secret", "sim-oa-secret")]).await;
        answer["access_token"].as_str().expect("a token").to_string()
    }

    async fn stable_token(&self, force_refresh: bool) -> Value {
        let body = json!({ "grant_type": "client_credential", "appid": self.sim.oa_appid(), "secret": "sim-oa-secret", "force_refresh": force_refresh });
        self.post("/cgi-bin/stable_token", &[], body).await
    }

    async fn errcode_with(&self, token: &str) -> i64 {
        let answer = self.get("/cgi-bin/user/get", &[("access_token", token)]).await;
        answer.get("errcode").and_then(Value::as_i64).unwrap_or(0)
    }
}

fn crowd(n: usize) -> SimConfig {
    SimConfig { followers: (0..n).map(SimFollower::generated).collect(), ..SimConfig::default() }
}

#[tokio::test]
async fn follower_pages_end_with_an_empty_page_that_has_no_data_key() {
    let wire = Wire::start(SimConfig { page_size: 2, ..crowd(3) }).await;
    let token = wire.token().await;
    let first = wire.get("/cgi-bin/user/get", &[("access_token", &token), ("next_openid", "")]).await;
    assert_eq!(first["total"], 3);
    assert_eq!(first["count"], 2);
    assert_eq!(first["next_openid"], first["data"]["openid"][1], "next_openid is the last openid of the page");

    let last = wire.get("/cgi-bin/user/get", &[("access_token", &token), ("next_openid", first["next_openid"].as_str().unwrap())]).await;
    assert_eq!(last["count"], 1);
    assert_eq!(last["next_openid"], last["data"]["openid"][0], "the last page names its last openid too");

    let after = wire.get("/cgi-bin/user/get", &[("access_token", &token), ("next_openid", last["next_openid"].as_str().unwrap())]).await;
    assert_eq!(after, json!({ "total": 3, "count": 0, "next_openid": "" }));

    let unknown = wire.get("/cgi-bin/user/get", &[("access_token", &token), ("next_openid", "oNobody")]).await;
    assert_eq!(unknown["errcode"], 40003);
}

#[tokio::test]
async fn the_default_page_holds_ten_thousand_openids() {
    let wire = Wire::start(crowd(10_001)).await;
    let token = wire.token().await;
    let first = wire.get("/cgi-bin/user/get", &[("access_token", &token)]).await;
    assert_eq!(first["count"], 10_000);
    assert_eq!(first["data"]["openid"].as_array().unwrap().len(), 10_000);
}

#[tokio::test]
async fn batchget_takes_a_hundred_openids_and_refuses_more_with_45035() {
    let wire = Wire::start(crowd(101)).await;
    let token = wire.token().await;
    let list = |n: usize| json!({ "user_list": (0..n).map(|i| json!({ "openid": SimFollower::generated(i).openid, "lang": "zh_CN" })).collect::<Vec<_>>() });
    let hundred = wire.post("/cgi-bin/user/info/batchget", &[("access_token", &token)], list(100)).await;
    assert_eq!(hundred["user_info_list"].as_array().unwrap().len(), 100);
    let more = wire.post("/cgi-bin/user/info/batchget", &[("access_token", &token)], list(101)).await;
    assert_eq!(more["errcode"], 45035);
}

#[tokio::test]
async fn an_unfollowed_user_shows_only_openid_and_unionid() {
    let wire =
        Wire::start(SimConfig { followers: vec![SimFollower::new("oGone").with_unionid("uGone").unsubscribed()], ..SimConfig::default() })
            .await;
    let token = wire.token().await;
    let info = wire.get("/cgi-bin/user/info", &[("access_token", &token), ("openid", "oGone")]).await;
    assert_eq!(info, json!({ "subscribe": 0, "openid": "oGone", "unionid": "uGone" }));
    let send = json!({ "touser": "oGone", "template_id": "t", "data": { "thing1": { "value": "hi" } } });
    let refused = wire.post("/cgi-bin/message/template/send", &[("access_token", &token)], send).await;
    assert_eq!(refused["errcode"], 43004);
}

#[tokio::test]
async fn a_new_token_leaves_the_previous_one_valid_for_five_minutes_then_tokens_expire() {
    let wire = Wire::start(SimConfig::default()).await;
    let first = wire.token().await;
    let second = wire.token().await;
    assert_ne!(first, second);
    assert_eq!(wire.errcode_with(&first).await, 0, "the overlap keeps the old token working");
    wire.sim.advance_clock(Duration::from_secs(301));
    assert_eq!(wire.errcode_with(&first).await, 40001);
    assert_eq!(wire.errcode_with(&second).await, 0);
    wire.sim.advance_clock(Duration::from_secs(7200));
    assert_eq!(wire.errcode_with(&second).await, 42001);
}

#[tokio::test]
async fn stable_token_returns_the_same_token_with_its_remaining_life() {
    let wire = Wire::start(SimConfig::default()).await;
    let first = wire.stable_token(false).await;
    assert_eq!(first["expires_in"], 7200);
    wire.sim.advance_clock(Duration::from_secs(1000));
    let again = wire.stable_token(false).await;
    assert_eq!(again["access_token"], first["access_token"]);
    let left = again["expires_in"].as_i64().unwrap();
    assert!((6100..=6200).contains(&left), "the remaining life, not a fresh 7200: {left}");

    // In its last five minutes a new one is issued; the old one lives on.
    wire.sim.advance_clock(Duration::from_secs(6000));
    let renewed = wire.stable_token(false).await;
    assert_ne!(renewed["access_token"], first["access_token"]);
    assert_eq!(wire.errcode_with(first["access_token"].as_str().unwrap()).await, 0);

    let forced = wire.stable_token(true).await;
    assert_eq!(wire.errcode_with(renewed["access_token"].as_str().unwrap()).await, 40001, "force_refresh kills the old one");
    assert_eq!(wire.errcode_with(forced["access_token"].as_str().unwrap()).await, 0);
}

#[tokio::test]
async fn a_wrong_secret_or_appid_is_refused() {
    let wire = Wire::start(SimConfig::default()).await;
    let oa = wire.sim.oa_appid();
    let wrong = wire.get("/cgi-bin/token", &[("grant_type", "client_credential"), ("appid", &oa), ("secret", "nope")]).await;
    assert_eq!(wrong["errcode"], 40125);
    let unknown = wire.get("/cgi-bin/token", &[("grant_type", "client_credential"), ("appid", "wxnobody00000000"), ("secret", "x")]).await;
    assert_eq!(unknown["errcode"], 40013);
}

#[tokio::test]
async fn the_daily_token_quota_answers_45009_until_the_next_day() {
    let wire = Wire::start(SimConfig::default()).await;
    wire.sim.set_daily_quota("/cgi-bin/token", Some(2));
    wire.token().await;
    wire.token().await;
    let oa = wire.sim.oa_appid();
    let third = wire.get("/cgi-bin/token", &[("grant_type", "client_credential"), ("appid", &oa), ("secret", "sim-oa-secret")]).await;
    assert_eq!(third["errcode"], 45009);
    wire.sim.advance_clock(Duration::from_secs(24 * 3600));
    wire.token().await;
}

#[tokio::test]
async fn a_login_code_works_once() {
    let wire = Wire::start(SimConfig { mp_users: vec![SimMpUser::new("oMp1", Some("uOne"), &["code-1"])], ..SimConfig::default() }).await;
    let mp = wire.sim.mp_appid();
    let login = |code: &'static str| {
        let mp = mp.clone();
        let wire = &wire;
        async move {
            wire.get(
                "/sns/jscode2session",
                &[("appid", &mp), ("secret", "sim-mp-secret"), ("js_code", code), ("grant_type", "authorization_code")],
            )
            .await
        }
    };
    let first = login("code-1").await;
    assert_eq!((first["openid"].as_str(), first["unionid"].as_str()), (Some("oMp1"), Some("uOne")));
    assert!(first["session_key"].is_string());
    assert_eq!(login("code-1").await["errcode"], 40163);
    assert_eq!(login("never-issued").await["errcode"], 40029);
    assert_eq!(login("sim-code:oMp1:x").await["openid"], "oMp1");
    assert_eq!(login("sim-code:oMp1:x").await["errcode"], 40163);
}

#[tokio::test]
async fn injected_faults_answer_the_next_calls_then_stop_and_every_call_is_recorded() {
    let wire = Wire::start(crowd(1)).await;
    let token = wire.token().await;
    wire.sim.inject_fault("/cgi-bin/user/get", -1, 2);
    assert_eq!(wire.errcode_with(&token).await, -1);
    assert_eq!(wire.errcode_with(&token).await, -1);
    assert_eq!(wire.errcode_with(&token).await, 0);

    wire.sim.invalidate_tokens(&wire.sim.oa_appid());
    assert_eq!(wire.errcode_with(&token).await, 40001);

    let calls = wire.sim.calls();
    let errcodes: Vec<i64> = calls.iter().filter(|c| c.path == "/cgi-bin/user/get").map(|c| c.errcode).collect();
    assert_eq!(errcodes, [-1, -1, 0, 40001]);
    assert!(calls.iter().all(|c| !c.query.contains("sim-oa-secret") && !c.query.contains(&token)), "secrets are masked");
    assert_eq!(wire.sim.token_fetches(), 1);
}

#[tokio::test]
async fn the_control_api_steers_a_separately_running_simulator() {
    let wire = Wire::start(SimConfig::default()).await;
    let base = wire.sim.base_url();
    let followers = json!([{ "openid": "oAdded", "unionid": "uAdded" }]);
    wire.http.post(format!("{base}/_sim/followers")).json(&followers).send().await.unwrap();
    wire.http.post(format!("{base}/_sim/faults")).json(&json!({ "path": "/cgi-bin/user/info", "errcode": 45011 })).send().await.unwrap();
    let token = wire.token().await;
    let limited = wire.get("/cgi-bin/user/info", &[("access_token", &token), ("openid", "oAdded")]).await;
    assert_eq!(limited["errcode"], 45011);
    let info = wire.get("/cgi-bin/user/info", &[("access_token", &token), ("openid", "oAdded")]).await;
    assert_eq!(info["unionid"], "uAdded");
    let calls: Value = wire.http.get(format!("{base}/_sim/calls")).send().await.unwrap().json().await.unwrap();
    assert_eq!(calls.as_array().unwrap().len(), 3);
}

/// A stand-in for the server's callback URL that keeps what it receives.
async fn callback_receiver() -> (String, Arc<Mutex<Vec<(HashMap<String, String>, String)>>>) {
    type Seen = Arc<Mutex<Vec<(HashMap<String, String>, String)>>>;
    let seen: Seen = Arc::default();
    async fn receive(State(seen): State<Seen>, Query(query): Query<HashMap<String, String>>, body: String) -> &'static str {
        seen.lock().unwrap().push((query, body));
        "success"
    }
    let app = axum::Router::new().route("/wechat/callback", post(receive)).with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/wechat/callback", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

/// The text of one XML element, CDATA or not.
fn element(xml: &str, name: &str) -> String {
    let start = xml.find(&format!("<{name}>")).unwrap_or_else(|| panic!("no <{name}> in {xml}")) + name.len() + 2;
    let end = xml.find(&format!("</{name}>")).unwrap();
    xml[start..end].trim_start_matches("<![CDATA[").trim_end_matches("]]>").to_string()
}

#[tokio::test]
async fn a_plain_subscribe_push_is_signed_and_makes_the_user_a_follower() {
    let wire = Wire::start(SimConfig::default()).await;
    let token = wire.token().await;
    let ticket = wire
        .post(
            "/cgi-bin/qrcode/create",
            &[("access_token", &token)],
            json!({ "expire_seconds": 600, "action_name": "QR_STR_SCENE", "action_info": { "scene": { "scene_str": "bind:7" } } }),
        )
        .await["ticket"]
        .as_str()
        .unwrap()
        .to_string();
    let (url, seen) = callback_receiver().await;
    let target = CallbackTarget { url, token: "cb-token".into(), aes_key: None, ..Default::default() };
    let outcome = wire.sim.push(&target, SimEvent::Subscribe { openid: "oNew".into(), ticket: Some(ticket.clone()) }).await.unwrap();
    assert_eq!((outcome.status, outcome.body.as_str()), (200, "success"));

    let (query, body) = seen.lock().unwrap()[0].clone();
    let expected = crypto::signature("cb-token", &query["timestamp"], &query["nonce"]);
    assert!(crypto::signature_matches(&query["signature"], &expected));
    assert_eq!(query["openid"], "oNew");
    assert_eq!(element(&body, "FromUserName"), "oNew");
    assert_eq!(element(&body, "Event"), "subscribe");
    assert_eq!(element(&body, "EventKey"), "qrscene_bind:7");
    assert_eq!(element(&body, "Ticket"), ticket);
    let follower = wire.sim.follower("oNew").expect("now a follower");
    assert!(follower.subscribed && follower.qr_scene_str.as_deref() == Some("bind:7"));
}

#[tokio::test]
async fn safe_mode_pushes_are_encrypted_for_the_appid_and_carry_msg_signature() {
    const AES_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
    let wire = Wire::start(crowd(1)).await;
    let (url, seen) = callback_receiver().await;
    let target = CallbackTarget { url, token: "cb-token".into(), aes_key: Some(AES_KEY.into()), ..Default::default() };
    let openid = SimFollower::generated(0).openid;
    let event = SimEvent::TemplateSendJobFinish { openid: openid.clone(), msgid: 42, status: "failed: system failed".into() };
    let delivery = wire.sim.prepare(&target, event).unwrap();
    delivery.send().await.unwrap();
    delivery.send().await.unwrap();

    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0], seen[1], "a retried push is the very same request");
    let (query, body) = &seen[0];
    assert_eq!(query["encrypt_type"], "aes");
    let encrypted = element(body, "Encrypt");
    let expected = crypto::msg_signature("cb-token", &query["timestamp"], &query["nonce"], &encrypted);
    assert!(crypto::signature_matches(&query["msg_signature"], &expected));
    let key = crypto::AesKey::parse(AES_KEY).unwrap();
    let xml = crypto::decrypt(&key, &encrypted, &wire.sim.oa_appid()).unwrap();
    assert_eq!(element(&xml, "Event"), "TEMPLATESENDJOBFINISH");
    assert_eq!(element(&xml, "MsgID"), "42");
    assert_eq!(element(&xml, "Status"), "failed: system failed");
    assert_eq!(element(&xml, "FromUserName"), openid);
}

#[tokio::test]
async fn unsubscribe_and_scan_pushes_change_and_read_the_world() {
    let wire = Wire::start(crowd(1)).await;
    let token = wire.token().await;
    let openid = SimFollower::generated(0).openid;
    let (url, seen) = callback_receiver().await;
    let target = CallbackTarget { url, token: "cb-token".into(), aes_key: None, ..Default::default() };
    let qr = json!({ "expire_seconds": 60, "action_name": "QR_STR_SCENE", "action_info": { "scene": { "scene_str": "bind:9" } } });
    let ticket = wire.post("/cgi-bin/qrcode/create", &[("access_token", &token)], qr).await["ticket"].as_str().unwrap().to_string();

    wire.sim.push(&target, SimEvent::Scan { openid: openid.clone(), ticket: ticket.clone() }).await.unwrap();
    wire.sim.push(&target, SimEvent::Unsubscribe { openid: openid.clone() }).await.unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(element(&seen[0].1, "Event"), "SCAN");
    assert_eq!(element(&seen[0].1, "EventKey"), "bind:9", "SCAN carries the bare scene");
    assert_eq!(element(&seen[1].1, "Event"), "unsubscribe");
    assert!(!wire.sim.follower(&openid).unwrap().subscribed);

    wire.sim.advance_clock(Duration::from_secs(61));
    let expired = wire.sim.push(&target, SimEvent::Scan { openid, ticket }).await;
    assert!(expired.is_err(), "an expired ticket names no scene");
}
