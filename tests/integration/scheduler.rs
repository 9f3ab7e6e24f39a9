//! The scheduler and action flows: Zion's addScheduledJob document, cron
//! firing, pausing, misfire recovery across restarts, several processes.

use std::time::Duration;

use chrono::Utc;
use serde_json::{Value, json};
use wxnotify::auth::Role;

use crate::both_databases;
use crate::common::{TestApp, TestDb, start_server};
use wxnotify::db::DatabaseKind;
use wxnotify::db::sql::Sql;

const SEED_FLOW: &str = "03664ed6-1a92-4cb1-bb36-cb7c022c22f5";

async fn save_flow(app: &TestApp, uuid: Option<&str>, document: &str) -> Value {
    app.data(
        "mutation($u: String, $d: String!) { saveActionFlow(uuid: $u, name: \"flow\", document: $d) { uuid version_id } }",
        json!({ "u": uuid, "d": document }),
    )
    .await["saveActionFlow"]
        .clone()
}

/// A flow that counts its own executions in `delivery.attempts` of the row
/// with dedupe_key "counter", so double firing shows.
async fn counting_flow(app: &TestApp) -> String {
    app.data(
        r#"mutation { insert_delivery_one(object: {channel: "OA_TEMPLATE", touser: "-", template_id: "-", payload: {},
        dedupe_key: "counter", status: "SKIPPED", attempts: 0}) { id } }"#,
        json!({}),
    )
    .await;
    let flow = save_flow(
        app,
        None,
        r#"mutation { update_delivery(where: {dedupe_key: {_eq: "counter"}}, _inc: {attempts: 1}) { affected_rows } }"#,
    )
    .await;
    flow["uuid"].as_str().unwrap().to_string()
}

async fn executions(app: &TestApp) -> i64 {
    app.data(r#"{ delivery(where: {dedupe_key: {_eq: "counter"}}) { attempts } }"#, json!({})).await["delivery"][0]["attempts"]
        .as_i64()
        .unwrap()
}

async fn schedule(app: &TestApp, name: &str, cron: &str, flow: &str, recover: bool) -> Value {
    app.data(
        r#"mutation($n: String!, $c: String!, $f: String!, $r: Boolean) { addScheduledJob(input: {name: $n, group: "g",
            triggerConfigs: [{triggerType: "cron", cron: $c}], jobType: ACTION_FLOW, shouldRecover: $r,
            dataMap: {actionFlowUuid: $f}}) { id name next_fire_at } }"#,
        json!({ "n": name, "c": cron, "f": flow, "r": recover }),
    )
    .await["addScheduledJob"]
        .clone()
}

async fn runs(app: &TestApp, status: &str) -> i64 {
    app.data("query($s: String!) { job_run_aggregate(where: {status: {_eq: $s}}) { aggregate { count } } }", json!({ "s": status }))
        .await["job_run_aggregate"]["aggregate"]["count"]
        .as_i64()
        .unwrap()
}

both_databases! {
    async fn the_seed_add_scheduled_job_document_runs_verbatim(app) {
        for version in 1..=3 {
            let saved = save_flow(&app, Some(SEED_FLOW), "query { account_aggregate { aggregate { count } } }").await;
            assert_eq!(saved, json!({ "uuid": SEED_FLOW, "version_id": version }));
        }
        let data = app.data(r#"mutation jj { addScheduledJob( schemaExId: "Ywng9oV59KX" input: { shouldRecover: true description: "定时获取订单在ERP中的信息" triggerConfigs: [ { triggerType: "cron" name: "updateOrderShippingStatus" group: "updateOrderShippingStatus" cron: "0 */1 * * *" } ] name: "updateOrderShippingStatus" group: "updateOrderShippingStatus" durable: true dataMap: { actionFlowUuid: "03664ed6-1a92-4cb1-bb36-cb7c022c22f5" inputs: {} versionId: 3 } jobType: ACTION_FLOW } ) { name } }"#, json!({})).await;
        assert_eq!(data, json!({ "addScheduledJob": { "name": "updateOrderShippingStatus" } }));
        // The curl variant: a 7-field Quartz expression (and "cro n" as the copy wraps it).
        let body = app.graphql(r#"mutation jj {\n addScheduledJob(\n schemaExId: \"Ywng9oV59KX\"\n input: { \n shouldRecover: true\n description: \"定时获取订单在ERP中的信息\"\n triggerConfigs: [\n {\n triggerType: \"cro n\"\n name: \"updateOrderShippingStatus\"\n group: \"updateOrderShippingStatus\"\n cron: \"0 0 * ? * * *\"\n }\n ]\n name: \"updateOrderShippingStatus\"\n group: \"updateOrderShippingStatus\"\n durable: true\n dataMap: {\n actionFlowUuid: \"03664ed6-1a92-4cb1-bb36-cb7c022c22f5\"\n inputs: {}\n versionId: 3\n }\n jobType: ACTION_FLOW\n }\n ) {\n name\n }\n}"#.replace("\\n", "\n").replace("\\\"", "\"").as_str(), json!({})).await;
        assert!(body.get("errors").is_none(), "{body}");
        let jobs = app.data("{ scheduled_job { group name cron job_type should_recover durable paused next_fire_at data_map } }", json!({})).await;
        let job = &jobs["scheduled_job"][0];
        assert_eq!(jobs["scheduled_job"].as_array().unwrap().len(), 1, "the second add replaced the first");
        assert_eq!(job["cron"], "0 0 * ? * * *");
        assert_eq!(job["job_type"], "ACTION_FLOW");
        assert_eq!(job["should_recover"], true);
        assert_eq!(job["data_map"], json!({ "actionFlowUuid": SEED_FLOW, "inputs": {}, "versionId": 3 }));
        let next = chrono::DateTime::parse_from_rfc3339(job["next_fire_at"].as_str().unwrap()).unwrap();
        assert_eq!(next.timestamp() % 3600, 0, "fires on the hour: {next}");
        assert!(next > Utc::now() && next <= Utc::now() + chrono::TimeDelta::hours(1));
    }

    async fn a_bad_schedule_is_refused_naming_what_is_wrong(app) {
        let flow = counting_flow(&app).await;
        for (cron, expected) in [("0 0 25 * * ?", "hour field"), ("0 0 9 ? * 9", "day-of-week field"), ("every hour", "2 fields")] {
            let body = app.graphql(
                r#"mutation($c: String!, $f: String!) { addScheduledJob(input: {name: "bad", group: "g", triggerConfigs: [{triggerType: "cron", cron: $c}], jobType: ACTION_FLOW, dataMap: {actionFlowUuid: $f}}) { id } }"#,
                json!({ "c": cron, "f": flow }),
            ).await;
            let message = body["errors"][0]["message"].as_str().unwrap_or_default();
            assert!(message.contains(expected), "{cron}: {body}");
        }
        let body = app.graphql(r#"mutation { addScheduledJob(input: {name: "bad", group: "g", triggerConfigs: [{triggerType: "cron", cron: "* * * * * ?"}], jobType: ACTION_FLOW, dataMap: {}}) { id } }"#, json!({})).await;
        assert!(body["errors"][0]["message"].as_str().unwrap().contains("actionFlowUuid"), "{body}");
        assert_eq!(app.count("scheduled_job").await, 0);
        let user = app.token(Role::User, Some("1"));
        let body = app.graphql_with(Some(&user), r#"mutation { pauseScheduledJob(group: "g", name: "x") }"#, json!({})).await;
        assert_eq!(body["errors"][0]["extensions"]["code"], "access-denied", "{body}");
    }

    async fn a_per_second_job_fires_each_second_and_stops_when_paused(app) {
        let flow = counting_flow(&app).await;
        schedule(&app, "tick", "* * * * * ?", &flow, false).await;
        tokio::time::sleep(Duration::from_millis(3500)).await;
        let fired = executions(&app).await;
        assert!((2..=5).contains(&fired), "about one run a second, got {fired} in 3.5 s");
        let paused = app.data(r#"mutation { pauseScheduledJob(group: "g", name: "tick") }"#, json!({})).await;
        assert_eq!(paused, json!({ "pauseScheduledJob": true }));
        tokio::time::sleep(Duration::from_millis(600)).await;
        let at_pause = executions(&app).await;
        tokio::time::sleep(Duration::from_millis(2000)).await;
        assert_eq!(executions(&app).await, at_pause, "a paused job does not fire");
        assert_eq!(runs(&app, "SUCCEEDED").await, at_pause, "each execution is one succeeded job_run");

        let resumed = app.data(r#"mutation { resumeScheduledJob(group: "g", name: "tick") }"#, json!({})).await;
        assert_eq!(resumed, json!({ "resumeScheduledJob": true }));
        tokio::time::sleep(Duration::from_millis(2200)).await;
        assert!(executions(&app).await > at_pause, "a resumed job fires again");
        let deleted = app.data(r#"mutation { deleteScheduledJob(group: "g", name: "tick") gone: deleteScheduledJob(group: "g", name: "tick") }"#, json!({})).await;
        assert_eq!(deleted, json!({ "deleteScheduledJob": true, "gone": false }));
        assert_eq!(app.count("job_run").await, 0, "runs go with their job");
    }

    async fn a_triggered_job_runs_once_now_and_records_failures(app) {
        let flow = counting_flow(&app).await;
        schedule(&app, "yearly", "0 0 0 1 1 ?", &flow, false).await;
        let data = app.data(r#"mutation { triggerScheduledJob(group: "g", name: "yearly") missing: triggerScheduledJob(group: "g", name: "nope") }"#, json!({})).await;
        assert_eq!(data, json!({ "triggerScheduledJob": true, "missing": false }));
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(executions(&app).await, 1);
        let run = app.data("{ job_run { status result error started_at finished_at } }", json!({})).await;
        assert_eq!(run["job_run"][0]["status"], "SUCCEEDED", "{run}");
        assert_eq!(run["job_run"][0]["result"], json!({ "update_delivery": { "affected_rows": 1 } }));

        let broken = save_flow(&app, None, "mutation { delete_account(where: {id: {_eq: null}}) { affected_rows } }").await;
        schedule(&app, "broken", "0 0 0 1 1 ?", broken["uuid"].as_str().unwrap(), false).await;
        app.data(r#"mutation { triggerScheduledJob(group: "g", name: "broken") }"#, json!({})).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let failed = app.data(r#"{ job_run(where: {status: {_eq: "FAILED"}}) { error } }"#, json!({})).await;
        assert!(failed["job_run"][0]["error"].as_str().unwrap().contains("null"), "{failed}");
    }

    async fn action_flows_keep_versions_and_run_with_inputs(app) {
        let first = save_flow(&app, Some("f"), r#"mutation($n: String) { insert_account_one(object: {nickname: $n}) { nickname } }"#).await;
        let second = save_flow(&app, Some("f"), r#"query($n: String) { account(where: {nickname: {_eq: $n}}) { nickname } }"#).await;
        assert_eq!((first["version_id"].clone(), second["version_id"].clone()), (json!(1), json!(2)));
        let data = app.data(r#"mutation { a: runActionFlow(uuid: "f", version_id: 1, inputs: {n: "zoe"}) b: runActionFlow(uuid: "f", inputs: {n: "zoe"}) }"#, json!({})).await;
        assert_eq!(data["a"], json!({ "insert_account_one": { "nickname": "zoe" } }));
        assert_eq!(data["b"], json!({ "account": [{ "nickname": "zoe" }] }));
        let body = app.graphql(r#"mutation { saveActionFlow(name: "x", document: "query {") { uuid } }"#, json!({})).await;
        assert_eq!(body["errors"][0]["extensions"]["code"], "validation-failed", "{body}");
        let body = app.graphql(r#"mutation { runActionFlow(uuid: "nope") }"#, json!({})).await;
        assert_eq!(body["errors"][0]["extensions"]["code"], "not-found", "{body}");
        assert_eq!(app.count("action_flow").await, 2);
    }
}

/// Stops the server that owns `app`'s database, moves `next_fire_at` of the
/// named jobs two hours back, and starts a new server on the same database.
async fn restart_after_downtime(backend: DatabaseKind) {
    let Some(db) = TestDb::new(backend).await else { return };
    let (state, address, stop, server) = start_server(db.url.clone(), &[]).await;
    let app = crate::common::attach(state, address, &db);
    let flow = counting_flow(&app).await;
    schedule(&app, "recovering", "0 0 * * * ?", &flow, true).await;
    schedule(&app, "skipping", "0 0 * * * ?", &flow, false).await;
    let _ = stop.send(());
    server.await.unwrap();

    let missed = (Utc::now() - chrono::TimeDelta::hours(2)).with_timezone(&Utc);
    let missed = chrono::DurationRound::duration_trunc(missed, chrono::TimeDelta::seconds(1)).unwrap();
    let direct = db.connect().await;
    let mut sql = Sql::new("UPDATE scheduled_job SET next_fire_at = ");
    sql.bind(missed);
    sql.execute(&direct).await.unwrap();
    direct.close().await.ok();

    let (state, address, stop, server) = start_server(db.url.clone(), &[]).await;
    let app = crate::common::attach(state, address, &db);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(executions(&app).await, 1, "only the recovering job ran, once");
    let jobs = app
        .data("{ scheduled_job(order_by: {name: asc}) { name next_fire_at last_fire_at job_runs: job_run { scheduled_for } } }", json!({}))
        .await;
    let recovering = &jobs["scheduled_job"][0];
    let skipping = &jobs["scheduled_job"][1];
    assert_eq!(recovering["job_runs"].as_array().unwrap().len(), 1);
    let ran_for = chrono::DateTime::parse_from_rfc3339(recovering["job_runs"][0]["scheduled_for"].as_str().unwrap()).unwrap();
    assert_eq!(ran_for.timestamp(), missed.timestamp(), "the run is for the missed occurrence");
    assert_eq!(skipping["job_runs"], json!([]));
    for job in [recovering, skipping] {
        let next = chrono::DateTime::parse_from_rfc3339(job["next_fire_at"].as_str().unwrap()).unwrap();
        assert!(next > Utc::now(), "back on schedule: {job}");
    }
    let _ = stop.send(());
    server.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missed_run_is_recovered_once_on_restart_only_when_asked_sqlite() {
    restart_after_downtime(DatabaseKind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missed_run_is_recovered_once_on_restart_only_when_asked_postgres() {
    restart_after_downtime(DatabaseKind::Postgres).await;
}

/// Two server processes on one database, one per-second job: every
/// occurrence runs once, on one of them.
async fn two_processes_fire_each_occurrence_once(backend: DatabaseKind) {
    let Some(db) = TestDb::new(backend).await else { return };
    let (first, first_address, stop_first, first_server) = start_server(db.url.clone(), &[]).await;
    let (_second, _, stop_second, second_server) = start_server(db.url.clone(), &[]).await;
    let app = crate::common::attach(first, first_address, &db);
    let flow = counting_flow(&app).await;
    schedule(&app, "tick", "* * * * * ?", &flow, false).await;
    tokio::time::sleep(Duration::from_millis(4200)).await;
    app.data(r#"mutation { pauseScheduledJob(group: "g", name: "tick") }"#, json!({})).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let fired = executions(&app).await;
    let rows = app.data("{ job_run { scheduled_for } }", json!({})).await;
    let mut occurrences: Vec<&str> = rows["job_run"].as_array().unwrap().iter().map(|r| r["scheduled_for"].as_str().unwrap()).collect();
    let total = occurrences.len();
    occurrences.sort_unstable();
    occurrences.dedup();
    assert_eq!(occurrences.len(), total, "no occurrence has two runs");
    assert_eq!(fired as usize, total, "each run executed once");
    assert!((3..=6).contains(&total), "about one a second: {total}");
    let _ = stop_first.send(());
    let _ = stop_second.send(());
    first_server.await.unwrap();
    second_server.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_fire_each_occurrence_once_sqlite() {
    two_processes_fire_each_occurrence_once(DatabaseKind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_fire_each_occurrence_once_postgres() {
    two_processes_fire_each_occurrence_once(DatabaseKind::Postgres).await;
}
