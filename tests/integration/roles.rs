//! Roles (`docs/dialect.md`), each role against each class of operation, on
//! SQLite and PostgreSQL: reads (list, by key, aggregate) and writes
//! (insert, update, delete) of every table, and every operation beyond
//! tables. A refusal is an `access-denied` error with no data and changes
//! nothing; a user's reads and deletes see only its own rows.

use serde_json::{Value, json};
use wxnotify::auth::Role;

use crate::both_databases;
use crate::common::TestApp;

/// Every table, with a column an update may set to a string.
const TABLES: &[(&str, &str, &str)] = &[
    ("account", "nickname", "\"x\""),
    ("point_count", "content", "\"x\""),
    ("actok", "appid", "\"x\""),
    ("notice", "expire_time", "\"2020-01-01T00:00:00Z\""),
    ("oa_follower", "unionid", "\"x\""),
    ("push_code", "template_id", "\"x\""),
    ("message_template", "page", "\"x\""),
    ("delivery", "errmsg", "\"x\""),
    ("action_flow", "name", "\"x\""),
    ("scheduled_job", "description", "\"x\""),
    ("job_run", "error", "\"x\""),
];

/// Tables a user reads (its own rows of).
const USER_READS: &[&str] = &["account", "point_count", "push_code"];

/// Operations only an admin may run.
const ADMIN_OPERATIONS: &[&str] = &[
    "mutation { syncFollowers { __typename } }",
    r#"mutation { sendTemplateMessage(input: {touser: "oaB", template_id: "t", data: {}}) { __typename } }"#,
    "mutation { notifyDigest(dry_run: true) { __typename } }",
    r#"mutation { pushBroadcast(template: "t", key_words: []) { __typename } }"#,
    r#"mutation { addScheduledJob(input: {name: "n", group: "g", jobType: SYNC_FOLLOWERS, triggerConfigs: [{triggerType: "cron", cron: "0 0 20 * * ?"}]}) { __typename } }"#,
    r#"mutation { pauseScheduledJob(group: "g", name: "n") }"#,
    r#"mutation { resumeScheduledJob(group: "g", name: "n") }"#,
    r#"mutation { deleteScheduledJob(group: "g", name: "n") }"#,
    r#"mutation { triggerScheduledJob(group: "g", name: "n") }"#,
    r#"mutation { saveActionFlow(name: "f", document: "query { __typename }") { __typename } }"#,
    r#"mutation { runActionFlow(uuid: "00000000-0000-0000-0000-000000000000") }"#,
];

/// Operations a user may run, for itself (they may still fail for other
/// reasons here: no WeChat app is configured in these tests).
const USER_OPERATIONS: &[&str] = &[
    r#"{ oaOpenidByUnionid(unionid: "uMe") }"#,
    "mutation { notifyAccount(account_id: 2) { __typename } }",
    "mutation { collectFormIds(form_ids: []) { __typename } }",
    "mutation { grantSubscription(template_ids: []) { __typename } }",
    "mutation { createBindQrCode(account_id: 1) { __typename } }",
];

fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"].as_str().unwrap_or_default()
}

/// Accounts 1 (the user) and 2 (someone else), each with a point_count and
/// a push_code row, and one row in every admin-only table.
async fn seed(app: &TestApp) {
    app.data(
        r#"mutation {
            insert_account(objects: [{nickname: "me", unionid: "uMe"}, {nickname: "other", oaopenid: "oaB"}]) { affected_rows }
            insert_point_count(objects: [{account_account: 1, type: "聊天"}, {account_account: 2, type: "聊天"}]) { affected_rows }
            insert_push_code(objects: [{account_account: 1, kind: "FORM_ID", code: "f1"}, {account_account: 2, kind: "FORM_ID", code: "f2"}]) { affected_rows }
            insert_actok_one(object: {appid: "wxapp", tok: "secret-token", expiredtime: "2030-01-01T00:00:00Z"}) { id }
            insert_notice_one(object: {account_account: 2, expire_time: "2020-01-01T00:00:00Z"}) { id }
            insert_oa_follower_one(object: {openid: "oaB"}) { id }
            insert_message_template_one(object: {name: "digest", channel: "OA_TEMPLATE", template_id: "t", data: {}}) { id }
        }"#,
        json!({}),
    )
    .await;
}

/// Row counts of every table, to show a refusal changed nothing.
async fn snapshot(app: &TestApp) -> Vec<i64> {
    let mut counts = Vec::new();
    for (table, _, _) in TABLES {
        counts.push(app.count(table).await);
    }
    counts
}

both_databases! {
    async fn every_role_against_every_class_of_operation(app) {
        seed(&app).await;
        let user = app.token(Role::User, Some("1"));
        let admin = app.admin_token();
        let before = snapshot(&app).await;

        for (table, column, value) in TABLES {
            let reads = [
                format!("{{ {table} {{ id }} }}"),
                format!("{{ {table}_by_pk(id: 1) {{ id }} }}"),
                format!("{{ {table}_aggregate {{ aggregate {{ count }} }} }}"),
            ];
            // Admin writes touch nothing (id -1); the others aim at every row.
            let writes = |filter: &str| {
                [
                    format!("mutation {{ insert_{table}(objects: []) {{ affected_rows }} }}"),
                    format!("mutation {{ update_{table}(where: {filter}, _set: {{{column}: {value}}}) {{ affected_rows }} }}"),
                    format!("mutation {{ delete_{table}(where: {filter}) {{ affected_rows }} }}"),
                ]
            };
            for document in reads.iter().chain(&writes("{id: {_eq: -1}}")) {
                let body = app.graphql_with(Some(&admin), document, json!({})).await;
                assert!(body.get("errors").is_none(), "admin: {document}: {body}");
            }
            for (i, document) in reads.iter().chain(&writes("{}")).enumerate() {
                let body = app.graphql_with(None, document, json!({})).await;
                assert_eq!((code(&body), &body["data"]), ("access-denied", &Value::Null), "anonymous: {document}");
                let allowed = match i {
                    0..=2 => USER_READS.contains(table),
                    3 => *table == "point_count",
                    4 => false,
                    _ if *table == "point_count" => continue, // a user's delete of its own rows: below
                    _ => false,
                };
                let body = app.graphql_with(Some(&user), document, json!({})).await;
                if allowed {
                    assert!(body.get("errors").is_none(), "user: {document}: {body}");
                } else {
                    assert_eq!((code(&body), &body["data"]), ("access-denied", &Value::Null), "user: {document}");
                }
            }
        }

        assert_eq!(snapshot(&app).await, before, "no refusal changed a row");

        // A user's rows are its own: lists, keys and aggregates are filtered.
        let own = app
            .graphql_with(Some(&user), "{ account { id } point_count { account_account } push_code_aggregate { aggregate { count } } other: account_by_pk(id: 2) { id } }", json!({}))
            .await;
        assert_eq!(
            own["data"],
            json!({ "account": [{ "id": 1 }], "point_count": [{ "account_account": 1 }], "push_code_aggregate": { "aggregate": { "count": 1 } }, "other": null })
        );
        // ... and relations do not lead to other accounts' rows either.
        let through = app.graphql_with(Some(&user), "{ point_count { account { id point_count { account_account } } } }", json!({})).await;
        assert_eq!(through, json!({ "data": { "point_count": [{ "account": { "id": 1, "point_count": [{ "account_account": 1 }] } }] } }));
        // A delete aimed at every row removes only the user's own.
        let deleted = app.graphql_with(Some(&user), "mutation { delete_point_count(where: {}) { affected_rows } }", json!({})).await;
        assert_eq!(deleted, json!({ "data": { "delete_point_count": { "affected_rows": 1 } } }));
        let left = app.data("{ point_count { account_account } }", json!({})).await;
        assert_eq!(left, json!({ "point_count": [{ "account_account": 2 }] }));
        let before = snapshot(&app).await;

        for document in ADMIN_OPERATIONS {
            for token in [None, Some(user.as_str())] {
                let body = app.graphql_with(token, document, json!({})).await;
                assert_eq!((code(&body), &body["data"]), ("access-denied", &Value::Null), "{token:?}: {document}: {body}");
            }
        }
        for document in USER_OPERATIONS {
            let body = app.graphql_with(None, document, json!({})).await;
            assert_eq!((code(&body), &body["data"]), ("access-denied", &Value::Null), "anonymous: {document}: {body}");
        }
        let someone_elses = app.graphql_with(Some(&user), "mutation { createBindQrCode(account_id: 2) { __typename } }", json!({})).await;
        assert_eq!(code(&someone_elses), "access-denied", "{someone_elses}");
        let probe = app.graphql_with(Some(&user), r#"{ oaOpenidByUnionid(unionid: "uOther") }"#, json!({})).await;
        assert_eq!((code(&probe), &probe["data"]), ("access-denied", &Value::Null), "a user cannot probe others' unionids: {probe}");
        assert_eq!(snapshot(&app).await, before, "no refusal changed a row");

        // Those allowed get past the role check (WeChat is not configured
        // here, so some fail later, for that reason).
        for document in ADMIN_OPERATIONS {
            let body = app.graphql_with(Some(&admin), document, json!({})).await;
            assert_ne!(code(&body), "access-denied", "admin: {document}: {body}");
        }
        for document in USER_OPERATIONS {
            for token in [&user, &admin] {
                let body = app.graphql_with(Some(token), document, json!({})).await;
                assert_ne!(code(&body), "access-denied", "{document}: {body}");
            }
        }
        let login = app.graphql_with(None, r#"mutation { loginWithWechatMiniApp(code: "c") { jwt { token } } }"#, json!({})).await;
        assert_ne!(code(&login), "access-denied", "anyone may log in: {login}");    }
}
