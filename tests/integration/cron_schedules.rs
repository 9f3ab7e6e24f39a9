//! Cron through the server: the issue's examples added or refused as Quartz
//! does, `cronPreview`, and a job whose schedule ends is paused rather than
//! left active without a next fire time.

use std::time::Duration;

use chrono::{DateTime, Datelike, Timelike, Utc, Weekday};
use serde_json::{Value, json};
use wxnotify::auth::Role;

use crate::both_databases;
use crate::common::TestApp;

const ADD: &str = r#"mutation($n: String!, $c: String!, $f: String!) { addScheduledJob(input: {name: $n, group: "cron",
    triggerConfigs: [{triggerType: "cron", cron: $c}], jobType: ACTION_FLOW, dataMap: {actionFlowUuid: $f}}) { id next_fire_at paused } }"#;

/// A harmless action flow for the jobs to run.
async fn flow(app: &TestApp) -> String {
    let saved = app
        .data(
            r#"mutation { saveActionFlow(name: "count", document: "query { account_aggregate { aggregate { count } } }") { uuid } }"#,
            json!({}),
        )
        .await;
    saved["saveActionFlow"]["uuid"].as_str().unwrap().to_string()
}

const PREVIEW: &str = r#"query($c: String!, $n: Int, $z: String) { cronPreview(cron: $c, count: $n, timezone: $z) {
    valid error fire_times timezone } }"#;

fn times(preview: &Value) -> Vec<DateTime<Utc>> {
    preview["fire_times"].as_array().unwrap().iter().map(|t| t.as_str().unwrap().parse().unwrap()).collect()
}

async fn preview(app: &TestApp, cron: &str, count: Option<i64>, zone: Option<&str>) -> Value {
    app.data(PREVIEW, json!({ "c": cron, "n": count, "z": zone })).await["cronPreview"].clone()
}

/// Active jobs (not paused) without a next fire time: there must be none.
async fn active_without_next(app: &TestApp) -> usize {
    let jobs = app.data("{ scheduled_job(where: {paused: {_eq: false}, next_fire_at: {_is_null: true}}) { id } }", json!({})).await;
    jobs["scheduled_job"].as_array().unwrap().len()
}

both_databases! {
    async fn the_issue_examples_are_added_or_refused_as_quartz_does(app) {
        let f = flow(&app).await;
        let accepted = ["0 0/5 14 * * ?", "0/15 * * * * ?", "0 15 10 L-2 * ?", "0 0 12 ? * FRI-MON", "0 0 22-2 * * ?", "0 0 12 ? * L"];
        for (i, cron) in accepted.iter().enumerate() {
            let job = app.data(ADD, json!({ "n": format!("ok{i}"), "c": cron, "f": f })).await["addScheduledJob"].clone();
            assert!(job["next_fire_at"].is_string(), "{cron}: {job}");
        }
        let refused = [
            ("* * * * * *", "? in one of them"),
            ("0 0 12 1 * MON", "? in one of them"),
            ("0 0 12 ? * ?", "exactly one of them"),
            ("0 0 12 1,15,L * ?", "day-of-month field"),
            ("0 0 12 * * ? 2020", "never fires"),
            ("0 0 12 30 2 ?", "never fires"),
        ];
        for (cron, expected) in refused {
            let body = app.graphql(ADD, json!({ "n": "refused", "c": cron, "f": f })).await;
            assert_eq!(body["errors"][0]["extensions"]["code"], "validation-failed", "{cron}: {body}");
            let message = body["errors"][0]["message"].as_str().unwrap_or_default();
            assert!(message.contains(expected), "{cron}: {body}");
        }
        assert_eq!(app.count("scheduled_job").await, accepted.len() as i64, "a refused schedule stores nothing");
        assert_eq!(active_without_next(&app).await, 0);
    }

    async fn cron_preview_lists_the_next_fire_times_or_the_error(app) {
        // `L` alone in day-of-week is Saturday; the default zone is Asia/Shanghai.
        let saturdays = preview(&app, "0 0 12 ? * L", None, None).await;
        assert_eq!(saturdays["valid"], true, "{saturdays}");
        assert_eq!(saturdays["timezone"], "Asia/Shanghai");
        let fire = times(&saturdays);
        assert_eq!(fire.len(), 5, "count defaults to 5");
        for (i, t) in fire.iter().enumerate() {
            let local = t.with_timezone(&chrono_tz::Asia::Shanghai);
            assert_eq!((local.weekday(), local.hour(), local.minute()), (Weekday::Sat, 12, 0), "{saturdays}");
            assert!(*t > Utc::now() - chrono::TimeDelta::minutes(1));
            if i > 0 {
                assert_eq!(*t - fire[i - 1], chrono::TimeDelta::days(7), "{saturdays}");
            }
        }
        let ny = preview(&app, "0 30 9 ? * MON-FRI", Some(3), Some("America/New_York")).await;
        assert_eq!(ny["timezone"], "America/New_York");
        for t in times(&ny) {
            let local = t.with_timezone(&chrono_tz::America::New_York);
            assert_eq!((local.hour(), local.minute()), (9, 30), "{ny}");
            assert!(!matches!(local.weekday(), Weekday::Sat | Weekday::Sun), "{ny}");
        }
        let bad = preview(&app, "0 0 12 ? * 8", None, None).await;
        assert_eq!(bad["valid"], false);
        assert!(bad["error"].as_str().unwrap().contains("day-of-week field"), "{bad}");
        assert_eq!(bad["fire_times"], json!([]));
        let over = preview(&app, "0 0 12 1 1 ? 2020", None, None).await;
        assert_eq!((over["valid"].clone(), over["fire_times"].clone()), (json!(false), json!([])), "{over}");
        assert!(over["error"].as_str().unwrap().contains("never fires"), "{over}");

        for (vars, expected) in [
            (json!({ "c": "0 0 12 * * ?", "n": 0 }), "count 0"),
            (json!({ "c": "0 0 12 * * ?", "n": 101 }), "count 101"),
            (json!({ "c": "0 0 12 * * ?", "z": "Mars/Olympus" }), "IANA time zone"),
        ] {
            let body = app.graphql(PREVIEW, vars).await;
            assert_eq!(body["errors"][0]["extensions"]["code"], "validation-failed", "{body}");
            assert!(body["errors"][0]["message"].as_str().unwrap().contains(expected), "{body}");
        }
        let user = app.token(Role::User, Some("1"));
        let body = app.graphql_with(Some(&user), PREVIEW, json!({ "c": "0 0 12 * * ?" })).await;
        assert_eq!(body["data"]["cronPreview"]["valid"], true, "a user may preview: {body}");
        let body = app.graphql_with(None, PREVIEW, json!({ "c": "0 0 12 * * ?" })).await;
        assert_eq!(body["errors"][0]["extensions"]["code"], "access-denied", "{body}");
    }

    async fn a_job_whose_schedule_ends_is_paused_not_left_active(app) {
        // One occurrence, a few seconds from now (7 fields: the year pins it).
        let at = (Utc::now() + chrono::TimeDelta::seconds(3)).with_timezone(&chrono_tz::Asia::Shanghai);
        let cron = format!("{} {} {} {} {} ? {}", at.second(), at.minute(), at.hour(), at.day(), at.month(), at.year());
        let f = flow(&app).await;
        let job = app.data(ADD, json!({ "n": "once", "c": cron, "f": f })).await["addScheduledJob"].clone();
        assert!(job["next_fire_at"].is_string(), "{job}");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while app.count("job_run").await == 0 {
            assert!(std::time::Instant::now() < deadline, "the single occurrence never ran");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let row = app.data(r#"{ scheduled_job(where: {name: {_eq: "once"}}) { paused next_fire_at last_fire_at } }"#, json!({})).await;
        let row = &row["scheduled_job"][0];
        assert_eq!((row["paused"].clone(), row["next_fire_at"].clone()), (json!(true), Value::Null), "{row}");
        assert!(row["last_fire_at"].is_string(), "{row}");
        assert_eq!(active_without_next(&app).await, 0);
        let body = app.graphql(r#"mutation { resumeScheduledJob(group: "cron", name: "once") }"#, json!({})).await;
        assert_eq!(body["errors"][0]["extensions"]["code"], "validation-failed", "{body}");
        assert!(body["errors"][0]["message"].as_str().unwrap().contains("never fires"), "{body}");
        assert_eq!(active_without_next(&app).await, 0, "a refused resume leaves the job paused");
    }
}
