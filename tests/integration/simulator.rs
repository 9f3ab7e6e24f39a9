//! The simulator behaves like WeChat: exact answer shapes, limits, token
//! lifetimes, code reuse, quotas, and signed callback pushes. These talk to
//! it over raw HTTP and need no database, so each runs once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::routing::post;
use serde_json::{Value, json};
use wxnotify::sim::{CallbackTarget, SimConfig, SimEvent, SimFollower, SimHandle, SimMpUser, SimTemplate, Simulator};
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
async fn follower_pages_skip_those_who_left_and_follow_the_list_as_it_changes() {
    // Followers 0..10, of whom 1, 4 and 5 left before the listing.
    let mut followers: Vec<SimFollower> = (0..10).map(SimFollower::generated).collect();
    for n in [1, 4, 5] {
        followers[n] = SimFollower::generated(n).unsubscribed();
    }
    let wire = Wire::start(SimConfig { page_size: 3, followers, ..SimConfig::default() }).await;
    let token = wire.token().await;
    let id = |n: usize| SimFollower::generated(n).openid;
    let page = |next: String| {
        let wire = &wire;
        let token = token.clone();
        async move { wire.get("/cgi-bin/user/get", &[("access_token", token.as_str()), ("next_openid", next.as_str())]).await }
    };
    let openids = |answer: &Value| -> Vec<String> {
        answer["data"]["openid"].as_array().unwrap().iter().map(|o| o.as_str().unwrap().to_string()).collect()
    };

    let first = page(String::new()).await;
    assert_eq!(first["total"], 7);
    assert_eq!(openids(&first), [id(0), id(2), id(3)]);
    // Between pages 6 leaves, 4 comes back and a new follower arrives (at
    // the end of the list): the next pages and their total say so.
    wire.sim.add_followers([SimFollower::generated(6).unsubscribed(), SimFollower::generated(4), SimFollower::generated(10)]);
    let second = page(first["next_openid"].as_str().unwrap().to_string()).await;
    assert_eq!(second["total"], 8);
    assert_eq!(openids(&second), [id(4), id(7), id(8)]);
    let third = page(second["next_openid"].as_str().unwrap().to_string()).await;
    assert_eq!(openids(&third), [id(9), id(10)]);
    assert_eq!(third["total"], 8);
    let after = page(third["next_openid"].as_str().unwrap().to_string()).await;
    assert_eq!(after, json!({ "total": 8, "count": 0, "next_openid": "" }));
    // A next_openid that is no longer a follower is refused, as an unknown one is.
    assert_eq!(page(id(6)).await["errcode"], 40003);
    assert_eq!(page(id(1)).await["errcode"], 40003);
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

/// As WeChat does: a call takes effect when it arrives, and a caller that
/// stops waiting for the answer (a timeout, a dropped connection) does not
/// undo it; the answer comes the latency after the arrival.
#[tokio::test]
async fn a_send_whose_caller_gives_up_during_the_latency_still_reaches_the_user() {
    let wire = Wire::start(SimConfig { followers: vec![SimFollower::new("oFollower")], ..SimConfig::default() }).await;
    let token = wire.token().await;
    wire.sim.set_latency(Duration::from_secs(30));
    let body = json!({ "touser": "oFollower", "template_id": "t", "data": { "thing1": { "value": "hi" } } });
    let url = format!("{}{TEMPLATE_SEND}?access_token={token}", wire.sim.base_url());
    // A client of its own: a fresh connection, no pooled one to find closed.
    let caller = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    let gave_up = caller.post(&url).json(&body).timeout(Duration::from_millis(300)).send().await;
    assert!(gave_up.as_ref().is_err_and(|e| e.is_timeout()), "the caller's timeout ends the wait, 30 s before the answer: {gave_up:?}");
    // Well before the answer is due (the simulator may take the request in
    // a moment after the caller gave up).
    for _ in 0..100 {
        if !wire.sim.sent_messages().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let sent = wire.sim.sent_messages();
    assert_eq!(sent.len(), 1, "WeChat had the message before its answer was due");
    assert_eq!((sent[0].touser.as_str(), sent[0].template_id.as_str()), ("oFollower", "t"));
    assert_eq!(wire.sim.count_calls(TEMPLATE_SEND), 1);
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

const TEMPLATE_SEND: &str = "/cgi-bin/message/template/send";

/// A simulator with one follower and a legacy and a category template.
async fn with_templates() -> Wire {
    let templates = vec![
        SimTemplate::legacy("tmpl-legacy", "会员卡升级通知", &["keyword1", "keyword2"]),
        SimTemplate::category("tmpl-category", "预约提醒", &["thing1", "time2", "const3"]),
    ];
    Wire::start(SimConfig { followers: vec![SimFollower::new("oFollower")], templates, ..SimConfig::default() }).await
}

impl Wire {
    async fn send(&self, token: &str, template_id: &str, data: Value) -> Value {
        let body = json!({ "touser": "oFollower", "template_id": template_id, "data": data });
        self.post(TEMPLATE_SEND, &[("access_token", token)], body).await
    }

    async fn blocked_page(&self, token: &str, largest_id: i64, limit: i64) -> Value {
        let body = json!({ "tmpl_msg_id": "tmpl-category", "largest_id": largest_id, "limit": limit });
        self.post("/wxa/sec/queryblocktmplmsg", &[("access_token", token)], body).await
    }

    async fn quota(&self, token: &str, cgi_path: &str) -> Value {
        self.post("/cgi-bin/openapi/quota/get", &[("access_token", token)], json!({ "cgi_path": cgi_path })).await
    }
}

#[tokio::test]
async fn get_all_private_template_lists_the_library() {
    let wire = with_templates().await;
    let token = wire.token().await;
    let answer = wire.get("/cgi-bin/template/get_all_private_template", &[("access_token", &token)]).await;
    let list = answer["template_list"].as_array().expect("a template_list");
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["template_id"], "tmpl-legacy");
    assert_eq!(list[0]["content"], "{{first.DATA}}\n项目1:{{keyword1.DATA}}\n项目2:{{keyword2.DATA}}\n{{remark.DATA}}");
    assert_eq!(list[1]["content"], "thing1:{{thing1.DATA}}\ntime2:{{time2.DATA}}\nconst3:{{const3.DATA}}");
    for item in list {
        for field in ["title", "primary_industry", "deputy_industry", "example"] {
            assert!(item[field].is_string(), "{field} in {item}");
        }
    }
    wire.sim.remove_template("tmpl-legacy");
    wire.sim.add_template(SimTemplate::category("tmpl-new", "新模板", &["thing1"]));
    let answer = wire.get("/cgi-bin/template/get_all_private_template", &[("access_token", &token)]).await;
    let ids: Vec<&str> = answer["template_list"].as_array().unwrap().iter().map(|t| t["template_id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["tmpl-category", "tmpl-new"]);
    assert_eq!(wire.sim.count_calls("/cgi-bin/template/get_all_private_template"), 2);
    let refused = wire.get("/cgi-bin/template/get_all_private_template", &[("access_token", "not-a-token")]).await;
    assert_eq!(refused["errcode"], 40001);
}

#[tokio::test]
async fn a_legacy_template_has_its_values_cut_the_way_wechat_cuts_them() {
    let wire = with_templates().await;
    let token = wire.token().await;
    let data = json!({
        "first": { "value": "您好" },
        "keyword1": { "value": "一二三四五六七八九十一二三四五六七八九十多余的字", "color": "#173177" },
        "keyword2": { "value": "第一行\n第二行" },
        "remark": { "value": "谢谢" },
    });
    let answer = wire.send(&token, "tmpl-legacy", data).await;
    assert_eq!(answer["errcode"], 0, "{answer}");
    let sent = wire.sim.sent_messages();
    assert_eq!(answer["msgid"], sent[0].msgid);
    assert_eq!(
        sent[0].payload["data"],
        json!({ "keyword1": { "value": "一二三四五六七八九十一二三四五六七八九十" }, "keyword2": { "value": "第一行 第二行" } }),
        "what the user sees: no first/remark, no colour, values cut at 20, no line breaks"
    );
}

#[tokio::test]
async fn a_category_template_refuses_a_value_breaking_its_type_with_47003_naming_the_field() {
    let wire = with_templates().await;
    let token = wire.token().await;
    let too_long =
        wire.send(&token, "tmpl-category", json!({ "thing1": { "value": "x".repeat(21) }, "time2": { "value": "15:01" } })).await;
    assert_eq!(too_long["errcode"], 47003);
    assert!(too_long["errmsg"].as_str().unwrap().starts_with("argument invalid! data.thing1.value invalid"), "{too_long}");
    let not_a_time = wire.send(&token, "tmpl-category", json!({ "thing1": { "value": "体检" }, "time2": { "value": "明天上午" } })).await;
    assert!(not_a_time["errmsg"].as_str().unwrap().starts_with("argument invalid! data.time2.value invalid"), "{not_a_time}");
    let constant = wire.send(&token, "tmpl-category", json!({ "const3": { "value": "x" } })).await;
    assert!(constant["errmsg"].as_str().unwrap().starts_with("argument invalid! data.const3.value invalid"), "{constant}");
    let missing_key = wire.send(&token, "tmpl-category", json!({ "thing9": { "value": "体检" } })).await;
    assert!(missing_key["errmsg"].as_str().unwrap().starts_with("argument invalid! data.thing9.value invalid"), "{missing_key}");
    assert!(wire.sim.sent_messages().is_empty());

    let fine =
        wire.send(&token, "tmpl-category", json!({ "thing1": { "value": "体检" }, "time2": { "value": "2026年12月1日 15:01" } })).await;
    assert_eq!(fine["errcode"], 0, "{fine}");
    assert_eq!(wire.sim.sent_messages()[0].payload["data"]["time2"]["value"], "2026年12月1日 15:01");
    // An id outside the library keeps the old behaviour: anything goes.
    let unknown = wire.send(&token, "tmpl-elsewhere", json!({ "thing1": { "value": "x".repeat(40) } })).await;
    assert_eq!(unknown["errcode"], 0);
}

#[tokio::test]
async fn first_and_remark_are_refused_on_a_category_template() {
    let wire = with_templates().await;
    let token = wire.token().await;
    for key in ["first", "remark"] {
        let answer = wire.send(&token, "tmpl-category", json!({ key: { "value": "您好" }, "thing1": { "value": "体检" } })).await;
        assert_eq!(answer["errcode"], 47003);
        assert!(answer["errmsg"].as_str().unwrap().starts_with(&format!("argument invalid! data.{key}.value invalid")), "{answer}");
    }
}

#[tokio::test]
async fn a_review_share_answers_40252_to_every_nth_send_and_review_settles_them() {
    let wire = with_templates().await;
    wire.sim.set_review_share(0.5);
    let token = wire.token().await;
    let mut errcodes = Vec::new();
    for n in 0..4 {
        let answer = wire.send(&token, "tmpl-category", json!({ "thing1": { "value": format!("体检{n}") } })).await;
        if answer["errcode"] == 40252 {
            assert!(answer.get("msgid").is_none(), "WeChat's 40252 carries no msgid: {answer}");
            assert!(answer["errmsg"].as_str().unwrap().contains("审核"), "{answer}");
        }
        errcodes.push(answer["errcode"].as_i64().unwrap());
    }
    assert_eq!(errcodes, [0, 40252, 0, 40252]);
    assert_eq!(wire.sim.sent_messages().len(), 2);

    let first = wire.blocked_page(&token, 0, 100).await;
    assert_eq!(first["errcode"], 0);
    let items = first["msginfo"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!((items[0]["id"].as_i64(), items[0]["openid"].as_str()), (Some(1), Some("oFollower")));
    assert_eq!(items[0]["title"], "预约提醒");
    assert!(items[0]["content"].as_str().unwrap().contains("thing1:体检1"), "{}", items[0]);
    assert!(items[0]["send_timestamp"].as_i64().unwrap() > 1_700_000_000);
    assert_eq!(wire.blocked_page(&token, 1, 100).await["msginfo"].as_array().unwrap().len(), 1, "pages after largest_id");
    assert_eq!(wire.blocked_page(&token, 0, 101).await["errcode"], 47003, "at most 100 a page");

    let approved = wire.sim.review(1, true).unwrap();
    let SimEvent::TemplateSendJobFinish { openid, msgid, status } = approved else { panic!("{approved:?}") };
    assert_eq!((openid.as_str(), status.as_str()), ("oFollower", "success"));
    assert_eq!(wire.sim.sent_messages().last().unwrap().msgid, msgid, "an approved message is sent");
    let refused = wire.sim.review(2, false).unwrap();
    assert!(matches!(refused, SimEvent::TemplateSendJobFinish { ref status, .. } if status == "failed: system failed"));
    assert!(wire.sim.review(2, false).is_err(), "settled once");
    assert_eq!(wire.sim.sent_messages().len(), 3);
    assert!(wire.blocked_page(&token, 0, 100).await["msginfo"].as_array().unwrap().is_empty());
    assert_eq!(wire.sim.count_calls("/wxa/sec/queryblocktmplmsg"), 4);

    wire.sim.set_review_share(1.0);
    let reviewed = wire.send(&token, "tmpl-legacy", json!({ "keyword1": { "value": "x" } })).await;
    assert_eq!(reviewed["errcode"], 40252);
    assert_eq!(wire.sim.blocked().len(), 1);
}

#[tokio::test]
async fn quota_get_answers_the_daily_limit_and_todays_calls() {
    let wire = with_templates().await;
    let token = wire.token().await;
    for _ in 0..3 {
        wire.send(&token, "tmpl-category", json!({ "thing1": { "value": "体检" } })).await;
    }
    let answer = wire.quota(&token, TEMPLATE_SEND).await;
    assert_eq!(answer, json!({ "errcode": 0, "errmsg": "ok", "quota": { "daily_limit": 100000, "used": 3, "remain": 99997 } }));
    wire.sim.set_daily_quota(TEMPLATE_SEND, Some(3));
    assert_eq!(wire.quota(&token, TEMPLATE_SEND).await["quota"], json!({ "daily_limit": 3, "used": 3, "remain": 0 }));

    let unlimited = wire.quota(&token, "/cgi-bin/template/get_all_private_template").await;
    assert_eq!(unlimited["quota"]["used"], 0);
    assert!(unlimited["quota"]["daily_limit"].as_i64().unwrap() >= 1_000_000, "{unlimited}");
    assert_eq!(wire.quota(&token, "/cgi-bin/nothing/here").await["errcode"], 76021);
    assert_eq!(wire.quota(&token, "https://api.weixin.qq.com/cgi-bin/token").await["errcode"], 76003);
    assert_eq!(wire.quota(&token, "/sns/jscode2session").await["errcode"], 76022);
    assert_eq!(wire.quota(&token, "/cgi-bin/message/subscribe/send").await["errcode"], 76022, "the mini-program's API");
    assert_eq!(wire.sim.count_calls("/cgi-bin/openapi/quota/get"), 7);
}

#[tokio::test]
async fn subscribe_messages_refuse_values_breaking_their_type_with_47003_naming_the_field() {
    let wire = Wire::start(SimConfig { mp_users: vec![SimMpUser::new("oMpUser", None, &[])], ..SimConfig::default() }).await;
    let mp = wire.sim.mp_appid();
    let token = wire.get("/cgi-bin/token", &[("grant_type", "client_credential"), ("appid", &mp), ("secret", "sim-mp-secret")]).await;
    let token = token["access_token"].as_str().unwrap().to_string();
    let send = |data: Value| {
        let body = json!({ "touser": "oMpUser", "template_id": "tmpl-sub", "data": data });
        (body, token.clone())
    };
    for (data, field) in [
        (json!({ "character_string1": { "value": "订单123" } }), "character_string1"),
        (json!({ "phrase2": { "value": "配送中ok" } }), "phrase2"),
        (json!({ "number3": { "value": "12a" } }), "number3"),
        (json!({ "thing4": { "value": "x".repeat(21) } }), "thing4"),
    ] {
        let (body, token) = send(data);
        let answer = wire.post("/cgi-bin/message/subscribe/send", &[("access_token", &token)], body).await;
        assert_eq!(answer["errcode"], 47003, "{answer}");
        assert!(answer["errmsg"].as_str().unwrap().starts_with(&format!("argument invalid! data.{field}.value invalid")), "{answer}");
    }
    let (body, token) =
        send(json!({ "character_string1": { "value": "ORD-123" }, "phrase2": { "value": "配送中" }, "time3": { "value": "15:01" } }));
    let answer = wire.post("/cgi-bin/message/subscribe/send", &[("access_token", &token)], body).await;
    assert_eq!(answer["errcode"], 0, "{answer}");
}

#[tokio::test]
async fn the_control_api_adds_templates_and_sets_the_review_share() {
    let wire = Wire::start(SimConfig { followers: vec![SimFollower::new("oFollower")], ..SimConfig::default() }).await;
    let base = wire.sim.base_url();
    let templates = json!([{ "template_id": "tmpl-category", "title": "预约提醒", "content": "项目:{{thing1.DATA}}", "example": "" }]);
    wire.http.post(format!("{base}/_sim/templates")).json(&templates).send().await.unwrap();
    wire.http.post(format!("{base}/_sim/review-share")).json(&json!({ "share": 1.0 })).send().await.unwrap();
    let token = wire.token().await;
    assert_eq!(wire.send(&token, "tmpl-category", json!({ "thing1": { "value": "x".repeat(21) } })).await["errcode"], 47003);
    assert_eq!(wire.send(&token, "tmpl-category", json!({ "thing1": { "value": "体检" } })).await["errcode"], 40252);
    let blocked: Value = wire.http.get(format!("{base}/_sim/blocked")).send().await.unwrap().json().await.unwrap();
    assert_eq!(blocked[0]["content"], "项目:体检");
}
