//! Limits and refusals: each limit is a setting, answers with a clear error,
//! changes nothing, and leaves the server up.

use serde_json::{Value, json};
use wxnotify::auth::Role;

use crate::both_databases;
use crate::common::{Backend, TestApp, spawn_app_with};

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
        assert!(message(&body).contains("too deep") || message(&body).to_lowercase().contains("depth"), "{body}");
        let body = app.graphql("{ account(limit: 10001) { id } }", json!({})).await;
        assert!(message(&body).contains("WXNOTIFY_MAX_LIMIT"), "{body}");
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
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let overrides = [("MAX_LIMIT", "5"), ("MAX_QUERY_COMPLEXITY", "3"), ("MAX_BATCH", "1"), ("MAX_BODY_BYTES", "200")];
        let Some(app) = spawn_app_with(backend, &overrides).await else { continue };
        let body = app.graphql("{ account(limit: 6) { id } }", json!({})).await;
        assert!(message(&body).contains("WXNOTIFY_MAX_LIMIT") || message(&body).contains("complex"), "{body}");
        let body = app.graphql("{ account { id nickname unionid oaopenid } }", json!({})).await;
        assert!(message(&body).to_lowercase().contains("complex"), "{body}");
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
