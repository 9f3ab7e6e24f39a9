//! Limits and refusals: each limit is a setting, answers with a clear error,
//! changes nothing, and leaves the server up.

use serde_json::{Value, json};
use wxnotify::auth::Role;

use crate::both_databases;
use std::time::Duration;

use wxnotify::sim::{SimMpUser, Simulator};

use crate::common::{TestApp, borrowed, sim_settings, spawn_app_with};
use wxnotify::db::DatabaseKind;

async fn still_up(app: &TestApp) {
    assert_eq!(app.get("/healthz").await.status(), 200, "the server stays up");
}

fn message(body: &Value) -> &str {
    body["errors"][0]["message"].as_str().unwrap_or_default()
}

both_databases! {
    async fn a_refused_field_answers_without_any_data(app) {
        app.data(r#"mutation { insert_account_one(object: {nickname: "me"}) { id } }"#, json!({})).await;
        let user = app.token(Role::User, Some("1"));
        let body = app.graphql_with(Some(&user), "{ account { id } actok_by_pk(id: 1) { tok } }", json!({})).await;
        assert_eq!(body["data"], Value::Null, "{body}");
        assert_eq!(body["errors"][0]["extensions"]["code"], "access-denied");
        let body = app.graphql_with(Some(&user), "{ account { id } }", json!({})).await;
        assert_eq!(body["data"], json!({ "account": [{ "id": 1 }] }));
    }

    async fn too_deep_too_wide_and_too_long_lists_are_refused(app) {
        let deep = format!("{{ account {} }}", "{ point_count { account ".repeat(12) + "{ id }" + &" } }".repeat(12));
        let body = app.graphql(&deep, json!({})).await;
        assert_eq!(body["errors"][0]["extensions"]["code"], "too-deep", "{body}");
        assert!(message(&body).contains("WXNOTIFY_MAX_QUERY_DEPTH") && body["data"].is_null(), "{body}");
        let body = app.graphql("{ account(limit: 10001) { id } }", json!({})).await;
        assert!(message(&body).contains("WXNOTIFY_MAX_LIMIT"), "{body}");
        let aliases = |n: usize| format!("{{ {} }}", (0..n).map(|i| format!("a{i}: __typename")).collect::<Vec<_>>().join(" "));
        let body = app.graphql(&aliases(65), json!({})).await;
        assert_eq!(body["errors"][0]["extensions"]["code"], "too-many-aliases", "{body}");
        assert!(message(&body).contains("WXNOTIFY_MAX_QUERY_ALIASES") && body["data"].is_null(), "{body}");
        let body = app.graphql(&aliases(64), json!({})).await;
        assert_eq!(body["data"]["a63"], "query_root", "{body}");
        still_up(&app).await;
    }

    async fn oversized_bodies_and_batches_are_refused(app) {
        let huge = "x".repeat(1_100_000);
        let response = app
            .client
            .post(format!("{}/api/graphql", app.address))
            .bearer_auth(app.admin_token())
            .json(&json!({ "query": format!("mutation {{ insert_account_one(object: {{nickname: \"{huge}\"}}) {{ id }} }}") }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 413);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["errors"][0]["extensions"]["code"], "body-too-large", "{body}");
        assert!(message(&body).contains("WXNOTIFY_MAX_BODY_BYTES"), "{body}");
        let batch: Vec<Value> = (0..21).map(|_| json!({ "query": "{ __typename }" })).collect();
        let response = app.client.post(format!("{}/api/graphql", app.address)).json(&batch).send().await.unwrap();
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["errors"][0]["extensions"]["code"], "batch-too-large", "{body}");
        let batch: Vec<Value> = (0..2).map(|_| json!({ "query": "{ __typename }" })).collect();
        let response = app.client.post(format!("{}/api/graphql", app.address)).json(&batch).send().await.unwrap();
        let body: Value = response.json().await.unwrap();
        assert_eq!(body, json!([{ "data": { "__typename": "query_root" } }, { "data": { "__typename": "query_root" } }]));
        assert_eq!(app.count("account").await, 0);
        still_up(&app).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_limit_is_a_setting() {
    for backend in [DatabaseKind::Sqlite, DatabaseKind::Postgres] {
        let overrides =
            [("MAX_LIMIT", "5"), ("MAX_QUERY_COMPLEXITY", "3"), ("MAX_BATCH", "1"), ("MAX_BODY_BYTES", "200"), ("MAX_QUERY_ALIASES", "1")];
        let Some(app) = spawn_app_with(backend, &overrides).await else { continue };
        let body = app.graphql("{ account(limit: 6) { id } }", json!({})).await;
        assert!(message(&body).contains("WXNOTIFY_MAX_LIMIT") || message(&body).contains("complex"), "{body}");
        let body = app.graphql("{ account { id nickname unionid oaopenid } }", json!({})).await;
        assert_eq!(body["errors"][0]["extensions"]["code"], "too-complex", "{body}");
        assert!(message(&body).contains("WXNOTIFY_MAX_QUERY_COMPLEXITY"), "{body}");
        let body = app.graphql("{ a: __typename b: __typename }", json!({})).await;
        assert_eq!(body["errors"][0]["extensions"]["code"], "too-many-aliases", "{body}");
        let batch: Vec<Value> = (0..2).map(|_| json!({ "query": "{ __typename }" })).collect();
        let response = app.client.post(format!("{}/api/graphql", app.address)).json(&batch).send().await.unwrap();
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["errors"][0]["extensions"]["code"], "batch-too-large", "{body}");
        let response = app
            .client
            .post(format!("{}/api/graphql", app.address))
            .json(&json!({ "query": format!("{{ account(where: {{nickname: {{_eq: \"{}\"}}}}) {{ id }} }}", "y".repeat(300)) }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 413);
        still_up(&app).await;
    }
}

const LOGIN: &str = "mutation($c: String!) { loginWithWechatMiniApp(code: $c) { account { id } } }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_are_limited_per_client_address() {
    for backend in [DatabaseKind::Sqlite, DatabaseKind::Postgres] {
        let sim = Simulator::start(Default::default()).await.expect("the simulator starts");
        let codes: Vec<String> = (0..6).map(|i| format!("code-{i}")).collect();
        sim.add_mp_users([SimMpUser::new("oMpOne", None, &codes.iter().map(String::as_str).collect::<Vec<_>>())]);
        let mut settings = sim_settings(&sim);
        settings.extend([("LOGIN_RATE_LIMIT".into(), "3/min".into()), ("CLIENT_IP_HEADER".into(), "X-Forwarded-For".into())]);
        let Some(app) = spawn_app_with(backend, &borrowed(&settings)).await else { continue };
        let login = |forwarded: &'static str, code: &str| {
            let request = app.client.post(format!("{}/api/graphql", app.address)).header("X-Forwarded-For", forwarded);
            let request = request.json(&json!({ "query": LOGIN, "variables": { "c": code } }));
            async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
        };
        // The proxy appends the client's address: the last entry counts.
        for code in &codes[..3] {
            let body = login("6.6.6.6, 10.0.0.1", code).await;
            assert!(body["data"]["loginWithWechatMiniApp"]["account"]["id"].is_i64(), "{body}");
        }
        let refused = login("7.7.7.7, 10.0.0.1", &codes[3]).await;
        assert_eq!(refused["errors"][0]["extensions"]["code"], "rate-limited", "{refused}");
        assert!(message(&refused).contains("WXNOTIFY_LOGIN_RATE_LIMIT") && refused["data"].is_null(), "{refused}");
        assert_eq!(sim.count_calls("/sns/jscode2session"), 3, "a refused login never reaches WeChat");
        let other = login("10.0.0.2", &codes[4]).await;
        assert!(other["data"]["loginWithWechatMiniApp"]["account"]["id"].is_i64(), "another address has its own allowance: {other}");
        assert_eq!(app.count("account").await, 1);
        still_up(&app).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_past_the_timeout_answers_504_and_its_work_still_finishes_once() {
    for backend in [DatabaseKind::Sqlite, DatabaseKind::Postgres] {
        let sim = Simulator::start(Default::default()).await.expect("the simulator starts");
        sim.add_mp_users([SimMpUser::new("oMpSlow", Some("uSlow"), &["slow-code"])]);
        sim.set_latency(Duration::from_secs(2));
        let mut settings = sim_settings(&sim);
        settings.push(("REQUEST_TIMEOUT".into(), "500ms".into()));
        let Some(app) = spawn_app_with(backend, &borrowed(&settings)).await else { continue };
        let response =
            app.client.post(format!("{}/api/graphql", app.address)).json(&json!({ "query": LOGIN, "variables": { "c": "slow-code" } }));
        let response = response.send().await.unwrap();
        assert_eq!(response.status(), 504, "WXNOTIFY_REQUEST_TIMEOUT answers 504");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["errors"][0]["extensions"]["code"], "timeout", "{body}");
        assert!(message(&body).contains("WXNOTIFY_REQUEST_TIMEOUT"), "{body}");
        still_up(&app).await;
        // The login was not cut off half-way: it finishes, once.
        for _ in 0..100 {
            if app.count("account").await == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(app.count("account").await, 1, "the login finished in the background");
        assert_eq!(sim.count_calls("/sns/jscode2session"), 1);
    }
}
