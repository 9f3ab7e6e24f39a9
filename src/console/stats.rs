//! `GET /api/console/stats` (admin only): what the dashboard shows that
//! GraphQL cannot give in one cheap request: linking coverage, deliveries
//! over time by status and channel, failures by errcode, the outbox
//! backlog, scheduled jobs with their next fire times and last runs, the
//! last follower syncs (however they were started, kept by the sync itself)
//! and the access tokens' state (when each expires, when and by which
//! process it was refreshed; never the token itself). Every figure is one aggregate statement, written once for
//! SQLite and PostgreSQL except where their SQL differs (epoch seconds).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use sea_orm::{DatabaseConnection, DbErr, QueryResult};
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::Role;
use crate::db::DatabaseKind;
use crate::db::sql::Sql;
use crate::delivery::Status;
use crate::error::CodedError;
use crate::linking::sync::{RECENT_SYNCS_KEPT, RECENT_SYNCS_KEY};
use crate::scheduler::jobs::JobType;

/// The chart's windows: (name, length in seconds, buckets).
const WINDOWS: [(&str, i64, i64); 3] = [("1h", 3_600, 60), ("24h", 86_400, 24), ("7d", 604_800, 28)];
const RUNS_SHOWN: i64 = 20;
const FAILURE_GROUPS: i64 = 20;

#[derive(serde::Deserialize)]
pub struct Params {
    window: Option<String>,
}

pub async fn handler(State(state): State<Arc<AppState>>, headers: HeaderMap, Query(params): Query<Params>) -> Response {
    // The same credentials GraphQL takes: a bearer token or the admin secret.
    let caller = match state.services.jwt.authenticate(&headers).await {
        Ok(caller) => caller,
        Err(e) => return refusal(StatusCode::UNAUTHORIZED, e.code(), &e.to_string()),
    };
    if caller.role != Role::Admin {
        let message = "the dashboard's statistics are for admins: send an admin token (`wxnotify token --role admin`)";
        return refusal(StatusCode::FORBIDDEN, "access-denied", message);
    }
    let name = params.window.as_deref().unwrap_or("24h");
    let Some(&(name, length, buckets)) = WINDOWS.iter().find(|w| w.0 == name) else {
        let message = format!("window={name} is not one of 1h, 24h, 7d: pick one of those");
        return refusal(StatusCode::BAD_REQUEST, "bad-request", &message);
    };
    match collect(&state.db, state.settings.timezone, Window { name, length, bucket: length / buckets }).await {
        Ok(body) => ([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "console statistics: a database query failed");
            let message = "the dashboard's statistics could not be read; see the server log";
            refusal(StatusCode::INTERNAL_SERVER_ERROR, "unexpected", message)
        }
    }
}

fn refusal(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({ "errors": [{ "message": message, "extensions": { "code": code } }] }))).into_response()
}

#[derive(Clone, Copy)]
struct Window {
    name: &'static str,
    length: i64,
    bucket: i64,
}

async fn collect(db: &DatabaseConnection, zone: chrono_tz::Tz, window: Window) -> Result<Value, DbErr> {
    let now = Utc::now();
    Ok(json!({
        "generated_at": now,
        "linking": linking(db).await?,
        "deliveries": deliveries(db, window, now).await?,
        "failures": failures(db).await?,
        "outbox": outbox(db).await?,
        "jobs": jobs(db, zone, now).await?,
        "runs": runs(db).await?,
        "syncs": syncs(db).await?,
        "tokens": tokens(db, now).await?,
    }))
}

fn count(row: &QueryResult, column: &str) -> Result<i64, DbErr> {
    Ok(row.try_get::<Option<i64>>("", column)?.unwrap_or(0))
}

async fn linking(db: &DatabaseConnection) -> Result<Value, DbErr> {
    let accounts = Sql::new("SELECT count(*) AS accounts, count(unionid) AS with_unionid, count(oaopenid) AS linked FROM account").all(db);
    let followers = Sql::new(
        "SELECT count(CASE WHEN subscribed THEN 1 END) AS followers, \
         count(CASE WHEN subscribed AND unionid IS NOT NULL THEN 1 END) AS with_unionid FROM oa_follower",
    )
    .all(db);
    let (accounts, followers) = (accounts.await?, followers.await?);
    let (Some(a), Some(f)) = (accounts.first(), followers.first()) else { return Ok(Value::Null) };
    Ok(json!({
        "accounts": count(a, "accounts")?,
        "with_unionid": count(a, "with_unionid")?,
        "linked": count(a, "linked")?,
        "followers": count(f, "followers")?,
        "followers_with_unionid": count(f, "with_unionid")?,
    }))
}

/// Seconds since 1970 of a timestamp column, in the database's own SQL.
fn epoch(db: &DatabaseConnection, column: &str) -> String {
    match DatabaseKind::of(db) {
        DatabaseKind::Postgres => format!("CAST(floor(extract(epoch FROM {column})) AS BIGINT)"),
        DatabaseKind::Sqlite => format!("CAST(strftime('%s', {column}) AS INTEGER)"),
    }
}

async fn deliveries(db: &DatabaseConnection, window: Window, now: DateTime<Utc>) -> Result<Value, DbErr> {
    // Buckets end at the next bucket boundary after now, so the last one is the current one.
    let end = (now.timestamp() / window.bucket + 1) * window.bucket;
    let start = end - window.length;
    let since = DateTime::<Utc>::from_timestamp(start, 0).unwrap_or(now);
    let mut sql = Sql::new("SELECT (");
    sql.push(&epoch(db, "created_at")).push(" - ").bind(start).push(") / ").bind(window.bucket);
    sql.push(" AS bucket, status, channel, count(*) AS n FROM delivery WHERE created_at >= ").bind(since);
    sql.push(" GROUP BY 1, status, channel ORDER BY 1, status, channel");
    let rows = sql.all(db).await?;
    let mut series = Vec::with_capacity(rows.len());
    for row in &rows {
        series.push(json!({
            "bucket": count(row, "bucket")?,
            "status": row.try_get::<String>("", "status")?,
            "channel": row.try_get::<String>("", "channel")?,
            "count": count(row, "n")?,
        }));
    }
    Ok(json!({
        "window": window.name, "start": since, "bucket_seconds": window.bucket,
        "buckets": window.length / window.bucket, "series": series,
    }))
}

async fn failures(db: &DatabaseConnection) -> Result<Value, DbErr> {
    let mut sql =
        Sql::new("SELECT errcode, count(*) AS n, max(errmsg) AS errmsg, max(updated_at) AS last_at FROM delivery WHERE status = ");
    sql.push(Status::Failed.sql()).push(" GROUP BY errcode ORDER BY n DESC, errcode LIMIT ").bind(FAILURE_GROUPS);
    let rows = sql.all(db).await?;
    let mut groups = Vec::with_capacity(rows.len());
    for row in &rows {
        groups.push(json!({
            "errcode": row.try_get::<Option<i32>>("", "errcode")?,
            "count": count(row, "n")?,
            "errmsg": row.try_get::<Option<String>>("", "errmsg")?,
            "last_at": row.try_get::<Option<DateTime<Utc>>>("", "last_at")?,
        }));
    }
    Ok(Value::Array(groups))
}

async fn outbox(db: &DatabaseConnection) -> Result<Value, DbErr> {
    let (pending, sending) = (Status::Pending.sql(), Status::Sending.sql());
    let sql = format!(
        "SELECT count(CASE WHEN status = {pending} THEN 1 END) AS pending, \
         count(CASE WHEN status = {sending} THEN 1 END) AS sending, \
         min(created_at) AS oldest FROM delivery WHERE status IN ({pending}, {sending})"
    );
    let rows = Sql::new(sql).all(db).await?;
    let Some(row) = rows.first() else { return Ok(Value::Null) };
    Ok(json!({
        "pending": count(row, "pending")?,
        "sending": count(row, "sending")?,
        "oldest_at": row.try_get::<Option<DateTime<Utc>>>("", "oldest")?,
    }))
}

/// How many coming fire times the dashboard shows per job.
const NEXT_FIRES: usize = 3;

async fn jobs(db: &DatabaseConnection, zone: chrono_tz::Tz, now: DateTime<Utc>) -> Result<Value, DbErr> {
    let sql = "SELECT \"group\", name, cron, job_type, paused, next_fire_at, last_fire_at FROM scheduled_job \
               ORDER BY paused, next_fire_at, \"group\", name LIMIT 100";
    let rows = Sql::new(sql).all(db).await?;
    let mut jobs = Vec::with_capacity(rows.len());
    for row in &rows {
        jobs.push(json!({
            "group": row.try_get::<String>("", "group")?,
            "name": row.try_get::<String>("", "name")?,
            "cron": row.try_get::<String>("", "cron")?,
            "job_type": row.try_get::<String>("", "job_type")?,
            "paused": row.try_get::<bool>("", "paused")?,
            "next_fire_at": row.try_get::<Option<DateTime<Utc>>>("", "next_fire_at")?,
            "next_fire_times": next_fires(&row.try_get::<String>("", "cron")?, zone, now),
            "last_fire_at": row.try_get::<Option<DateTime<Utc>>>("", "last_fire_at")?,
        }));
    }
    Ok(Value::Array(jobs))
}

const RUN_COLUMNS: &str = "j.\"group\" AS job_group, j.name AS job_name, r.scheduled_for, r.finished_at, r.status, r.error, \
                           CAST(r.result AS TEXT) AS result FROM job_run r JOIN scheduled_job j ON j.id = r.scheduled_job_scheduled_job";

fn run_json(row: &QueryResult) -> Result<Value, DbErr> {
    let result = row.try_get::<Option<String>>("", "result")?.and_then(|r| serde_json::from_str::<Value>(&r).ok());
    Ok(json!({
        "group": row.try_get::<String>("", "job_group")?,
        "name": row.try_get::<String>("", "job_name")?,
        "scheduled_for": row.try_get::<DateTime<Utc>>("", "scheduled_for")?,
        "finished_at": row.try_get::<Option<DateTime<Utc>>>("", "finished_at")?,
        "status": row.try_get::<String>("", "status")?,
        "error": row.try_get::<Option<String>>("", "error")?,
        "result": result,
    }))
}

async fn runs(db: &DatabaseConnection) -> Result<Value, DbErr> {
    let mut sql = Sql::new(format!("SELECT {RUN_COLUMNS} ORDER BY r.id DESC LIMIT "));
    sql.bind(RUNS_SHOWN);
    let rows = sql.all(db).await?;
    Ok(Value::Array(rows.iter().map(run_json).collect::<Result<_, _>>()?))
}

/// The job's next fire times in the server's zone (none for a schedule
/// that no longer parses or never fires again).
fn next_fires(cron: &str, zone: chrono_tz::Tz, now: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    crate::scheduler::Schedule::parse(cron).map(|s| s.preview(now, zone, NEXT_FIRES)).unwrap_or_default()
}

/// The last finished follower syncs, however they were started (kept by
/// `linking::sync` in `wxnotify_meta`), and the errors of sync jobs that
/// failed (from `job_run`), newest first.
async fn syncs(db: &DatabaseConnection) -> Result<Value, DbErr> {
    let kept = RECENT_SYNCS_KEPT;
    let mut syncs: Vec<(DateTime<Utc>, Value)> = Vec::new();
    let recent = crate::db::meta_get(db, RECENT_SYNCS_KEY).await?;
    for mut sync in recent.and_then(|text| serde_json::from_str::<Vec<Value>>(&text).ok()).unwrap_or_default() {
        let Some(at) = sync["at"].as_str().and_then(|t| DateTime::parse_from_rfc3339(t).ok()) else { continue };
        sync["source"] = json!(sync["by"].as_str().unwrap_or("a server"));
        syncs.push((at.with_timezone(&Utc), sync));
    }
    let mut sql = Sql::new(format!(
        "SELECT {RUN_COLUMNS} WHERE j.job_type = '{}' AND r.error IS NOT NULL ORDER BY r.id DESC LIMIT ",
        JobType::SyncFollowers.as_str()
    ));
    sql.bind(kept as i64);
    for row in &sql.all(db).await? {
        let run = run_json(row)?;
        let at = row.try_get::<Option<DateTime<Utc>>>("", "finished_at")?.unwrap_or(row.try_get("", "scheduled_for")?);
        let source = format!("job {}.{}", run["group"].as_str().unwrap_or(""), run["name"].as_str().unwrap_or(""));
        syncs.push((at, json!({ "at": at, "source": source, "error": run["error"] })));
    }
    syncs.sort_by_key(|s| std::cmp::Reverse(s.0));
    Ok(Value::Array(syncs.into_iter().take(kept).map(|(_, s)| s).collect()))
}

/// Each app's cached access token: when it expires and when it was fetched.
async fn tokens(db: &DatabaseConnection, now: DateTime<Utc>) -> Result<Value, DbErr> {
    let rows = Sql::new("SELECT appid, expiredtime, updated_at FROM actok ORDER BY appid").all(db).await?;
    let mut tokens = Vec::with_capacity(rows.len());
    for row in &rows {
        let expires = row.try_get::<DateTime<Utc>>("", "expiredtime")?;
        let appid = row.try_get::<String>("", "appid")?;
        tokens.push(json!({
            "appid": appid,
            "expires_at": expires,
            "expires_in_seconds": (expires - now).num_seconds(),
            "refreshed_at": row.try_get::<DateTime<Utc>>("", "updated_at")?,
            "refreshed_by": crate::db::meta_get(db, &crate::wechat::token::refresher_key(&appid)).await?,
        }));
    }
    Ok(Value::Array(tokens))
}
