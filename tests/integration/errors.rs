//! The one error mapping: a database failure reaches the client as code
//! `unexpected` with a generic message, never with SQL or driver text, and
//! the server keeps answering.

use serde_json::{Value, json};

use crate::both_databases;
use crate::common::TestApp;

/// Words that would mean SQL, a table name or the driver's text leaked.
const LEAKS: [&str; 10] =
    ["scheduled_job", "action_flow", "relation", "no such table", "sql", "sqlx", "database error", "returned from", "select", "insert"];

fn assert_generic(body: &Value, what: &str) {
    let error = &body["errors"][0];
    assert_eq!(error["extensions"]["code"], "unexpected", "{what}: {body}");
    assert_eq!(error["message"], wxnotify::error::UNEXPECTED_MESSAGE, "{what}: {body}");
    // The operation's own name is in `path`; look only at the messages.
    let messages: String = body["errors"].as_array().unwrap().iter().map(|e| e["message"].to_string().to_lowercase()).collect();
    for leak in LEAKS {
        assert!(!messages.contains(leak), "{what}: `{leak}` reached the client: {body}");
    }
}

async fn break_tables(app: &TestApp) {
    app.sql("ALTER TABLE scheduled_job RENAME TO scheduled_job_moved").await;
    app.sql("ALTER TABLE action_flow RENAME TO action_flow_moved").await;
}

both_databases! {
    async fn a_database_failure_in_a_scheduler_mutation_is_answered_generically(app) {
        let flow = app
            .data(r#"mutation { saveActionFlow(name: "f", document: "query { account { id } }") { uuid } }"#, json!({}))
            .await["saveActionFlow"]["uuid"]
            .as_str()
            .unwrap()
            .to_string();
        break_tables(&app).await;
        let add = app
            .graphql(
                r#"mutation($f: String!) { addScheduledJob(input: {name: "n", group: "g",
                    triggerConfigs: [{triggerType: "cron", cron: "0 0 12 * * ?"}], jobType: ACTION_FLOW,
                    dataMap: {actionFlowUuid: $f}}) { id } }"#,
                json!({ "f": flow }),
            )
            .await;
        assert_generic(&add, "addScheduledJob");
        assert_eq!(add["data"], Value::Null, "{add}");
        for mutation in ["pauseScheduledJob", "resumeScheduledJob", "deleteScheduledJob", "triggerScheduledJob"] {
            let body = app.graphql(&format!(r#"mutation {{ {mutation}(group: "g", name: "n") }}"#), json!({})).await;
            assert_generic(&body, mutation);
        }
        let save = app.graphql(r#"mutation { saveActionFlow(name: "f", document: "query { account { id } }") { uuid } }"#, json!({})).await;
        assert_generic(&save, "saveActionFlow");
        let run = app.graphql(&format!(r#"mutation {{ runActionFlow(uuid: "{flow}") }}"#), json!({})).await;
        assert_generic(&run, "runActionFlow");
        // The server is still up, and a request that needs no broken table works.
        assert!(app.get("/healthz").await.status().is_success());
        assert_eq!(app.data("{ account_aggregate { aggregate { count } } }", json!({})).await["account_aggregate"]["aggregate"]["count"], 0);
    }
}
