//! Hostile input: malformed JSON, wrong types, huge strings, deep nesting,
//! injection attempts in every string operator and in names, forged tokens.
//! Each gets a clear error, nothing changes, and the server stays up.

use base64::Engine;
use serde_json::{Value, json};

use crate::both_databases;
use crate::common::TestApp;

async fn post_raw(app: &TestApp, body: &str, content_type: &str) -> (u16, String) {
    let response = app
        .client
        .post(format!("{}/api/graphql", app.address))
        .bearer_auth(app.admin_token())
        .header("content-type", content_type)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

async fn unchanged(app: &TestApp) {
    assert_eq!(app.count("account").await, 2, "nothing changed");
    let names = app.data("{ account(order_by: {id: asc}) { nickname } }", json!({})).await;
    assert_eq!(names, json!({ "account": [{ "nickname": "alice" }, { "nickname": "bob" }] }));
    assert_eq!(app.get("/healthz").await.status(), 200, "the server stays up");
}

fn errors(body: &Value) -> bool {
    body.get("errors").is_some_and(|e| e.as_array().is_some_and(|a| !a.is_empty()))
}

both_databases! {
    async fn malformed_requests_are_refused_and_change_nothing(app) {
        app.data(r#"mutation { insert_account(objects: [{nickname: "alice"}, {nickname: "bob"}]) { affected_rows } }"#, json!({})).await;
        for (body, content_type) in [
            ("{", "application/json"),
            ("{\"query\": 42}", "application/json"),
            ("not json at all", "application/json"),
            ("{\"query\": \"mutation { delete_account(where: {}) { affected_rows } \"}", "application/json"),
            ("{\"query\": \"{ account { id } }\", \"variables\": [1]}", "application/json"),
            ("\u{0}\u{1}\u{2}", "application/octet-stream"),
        ] {
            let (status, text) = post_raw(&app, body, content_type).await;
            assert!(status == 400 || status == 415 || text.contains("errors"), "{body:?}: {status} {text}");
        }
        for (document, variables) in [
            ("mutation($n: Int) { update_account(where: {}, _set: {nickname: $n}) { affected_rows } }", json!({ "n": 5 })),
            ("mutation { update_account(where: {id: {_eq: \"1 OR 1=1\"}}, _set: {nickname: \"x\"}) { affected_rows } }", json!({})),
            ("mutation { update_account(where: {nickname: {_eq: 1}}, _set: {nickname: \"x\"}) { affected_rows } }", json!({})),
            ("mutation { delete_account(where: {nickname: {_regex: \".*\"}}) { affected_rows } }", json!({})),
            ("mutation { delete_account(where: {\"nickname\": {_eq: \"a\"}}) { affected_rows } }", json!({})),
            ("mutation { delete_account(where: {nick_name: {_eq: \"a\"}}) { affected_rows } }", json!({})),
            ("{ account(order_by: {nickname: sideways}) { id } }", json!({})),
            ("{ account(order_by: {\"id; DROP TABLE account\": asc}) { id } }", json!({})),
            ("query($o: [account_order_by!]) { account(order_by: $o) { id } }", json!({ "o": [{ "id; DROP TABLE account --": "asc" }] })),
            ("query($o: [account_order_by!]) { account(order_by: $o) { id } }", json!({ "o": [{ "id": "asc; DROP TABLE account" }] })),
            ("query($d: [account_select_column!]) { account(distinct_on: $d) { id } }", json!({ "d": ["id\" FROM account; --"] })),
            ("{ account(limit: -1) { id } }", json!({})),
            ("{ account_by_pk(id: 99999999999999999999999) { id } }", json!({})),
        ] {
            let body = app.graphql(document, variables.clone()).await;
            assert!(errors(&body), "{document} {variables}: {body}");
        }
        unchanged(&app).await;
    }

    async fn injection_in_string_operators_is_only_data(app) {
        app.data(r#"mutation { insert_account(objects: [{nickname: "alice"}, {nickname: "bob"}]) { affected_rows } }"#, json!({})).await;
        let nasty = [
            "' OR '1'='1", "\" OR \"1\"=\"1", "'; DROP TABLE account; --", "%' OR 1=1 --", "\\", "\\'", "$1", "?", "'||(SELECT 1)||'",
            "\u{0}", "😀", "a\"b'c`d",
        ];
        for value in nasty {
            for op in ["_eq", "_neq", "_gt", "_lt", "_like", "_nlike", "_ilike", "_nilike"] {
                let body = app.graphql(
                    "query($w: account_bool_exp) { account(where: $w) { id } }",
                    json!({ "w": { "nickname": { op: value } } }),
                ).await;
                if errors(&body) {
                    // PostgreSQL refuses NUL in text: an error, never a change.
                    assert!(value.contains('\u{0}'), "{op} {value:?}: {body}");
                    continue;
                }
                let ids = body["data"]["account"].as_array().unwrap().len();
                let expected = match op {
                    "_neq" => 2,
                    "_gt" => usize::from(value < "alice") + usize::from(value < "bob"),
                    "_lt" => usize::from(value > "alice") + usize::from(value > "bob"),
                    "_nlike" | "_nilike" => 2,
                    _ => 0,
                };
                assert_eq!(ids, expected, "{op} {value:?}");
            }
            for op in ["_contains", "_contained_in", "_has_key"] {
                let operand = if op == "_has_key" { json!(value) } else { json!({ value: value }) };
                let body = app.graphql("query($w: account_bool_exp) { account(where: $w) { id } }", json!({ "w": { "oauth2_user_info_map": { op: operand } } })).await;
                assert!(errors(&body) || body["data"]["account"] == json!([]), "{op} {value:?}: {body}");
            }
        }
        unchanged(&app).await;
    }

    async fn huge_and_deep_inputs_are_refused(app) {
        app.data(r#"mutation { insert_account(objects: [{nickname: "alice"}, {nickname: "bob"}]) { affected_rows } }"#, json!({})).await;
        let mut deep = json!({ "id": { "_eq": 1 } });
        for _ in 0..200 {
            deep = json!({ "_not": deep });
        }
        let request = json!({ "query": "mutation($w: account_bool_exp!) { delete_account(where: $w) { affected_rows } }", "variables": { "w": deep } });
        let (status, text) = post_raw(&app, &request.to_string(), "application/json").await;
        assert!(status >= 400 || text.contains("errors"), "{status} {text}");
        let nested = format!("{{ account(where: {}) {{ id }} }}", "{_not: ".repeat(3000) + "{}" + &"}".repeat(3000));
        let (status, text) = post_raw(&app, &json!({ "query": nested }).to_string(), "application/json").await;
        assert!(status >= 400 || text.contains("errors"), "{status} {}", &text[..text.len().min(200)]);
        let long = "x".repeat(900_000);
        let body = app.graphql("query($w: String) { account(where: {nickname: {_eq: $w}}) { id } }", json!({ "w": long })).await;
        assert!(errors(&body) || body["data"]["account"] == json!([]), "a long string is just a string");
        assert_eq!(app.get("/healthz").await.status(), 200);
        assert!(app.count("account").await >= 1);
    }

    async fn forged_tokens_are_refused(app) {
        app.data(r#"mutation { insert_account(objects: [{nickname: "alice"}, {nickname: "bob"}]) { affected_rows } }"#, json!({})).await;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let claims = b64.encode(json!({ "role": "admin", "exp": 4_000_000_000_u64 }).to_string());
        let real = app.admin_token();
        let real_signature = real.rsplit('.').next().unwrap();
        let forged = [
            format!("{}.{claims}.", b64.encode(r#"{"alg":"none","typ":"JWT"}"#)),
            format!("{}.{claims}.{real_signature}", b64.encode(r#"{"alg":"HS256","typ":"JWT"}"#)),
            format!("{}.{claims}.{real_signature}", b64.encode(r#"{"alg":"HS512","typ":"JWT"}"#)),
            "Bearer".to_string(),
            "a.b.c".to_string(),
            String::new(),
        ];
        for token in forged {
            let body = app.graphql_with(Some(&token), "mutation { delete_account(where: {}) { affected_rows } }", json!({})).await;
            assert!(errors(&body), "{token}: {body}");
            assert!(body.get("data").is_none_or(Value::is_null), "{body}");
        }
        let response = app.client.post(format!("{}/api/graphql", app.address)).header("authorization", "Basic YWRtaW46YWRtaW4=")
            .json(&json!({ "query": "mutation { delete_account(where: {}) { affected_rows } }" })).send().await.unwrap();
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["errors"][0]["extensions"]["code"], "invalid-jwt", "{body}");
        unchanged(&app).await;
    }
}
