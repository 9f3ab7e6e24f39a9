//! The durable cron scheduler behind Zion's `addScheduledJob`.
//!
//! Jobs live in `scheduled_job` with their next occurrence; every server
//! process ticks a few times a second and fires the jobs that are due. An
//! occurrence is claimed atomically (compare-and-set of `next_fire_at`, then
//! a `job_run` row unique per job and occurrence), so several processes on
//! one database fire it once. A job never overlaps itself. An occurrence
//! missed by more than [`MISFIRE_THRESHOLD`] (the server was down) runs once
//! when the job's `should_recover` is set, Quartz's "fire once now", and not
//! at all otherwise.

pub mod cron;
pub mod graphql;
pub mod jobs;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use entity::{job_run, scheduled_job};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ActiveValue::Set, ColumnTrait, DbErr, EntityTrait, QueryFilter};

use crate::services::Services;
pub use cron::{CronError, Schedule};

/// How often each process looks for due jobs.
const TICK: Duration = Duration::from_millis(250);
/// Later than this, an occurrence counts as missed (Quartz's default).
const MISFIRE_THRESHOLD: chrono::TimeDelta = chrono::TimeDelta::seconds(60);
/// A run still RUNNING after this long was abandoned by a process that died.
const ABANDONED_AFTER: chrono::TimeDelta = chrono::TimeDelta::hours(1);

pub const RUNNING: &str = "RUNNING";
pub const SUCCEEDED: &str = "SUCCEEDED";
pub const FAILED: &str = "FAILED";

/// Starts the scheduler loop; it stops taking occurrences when the server
/// starts stopping (runs already started finish: see [`Services::spawn`]).
pub fn spawn(services: Arc<Services>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        tracing::info!("scheduler started");
        loop {
            if let Err(e) = tick(&services).await {
                tracing::warn!(error = %e, "scheduler tick failed; retrying");
            }
            tokio::select! {
                _ = tokio::time::sleep(TICK) => {}
                _ = services.stopping.cancelled() => break,
            }
        }
        tracing::info!("scheduler stopped");
    })
}

/// Fires every job whose next occurrence has come.
async fn tick(services: &Arc<Services>) -> Result<(), DbErr> {
    let now = Utc::now();
    let due = scheduled_job::Entity::find()
        .filter(scheduled_job::Column::Paused.eq(false))
        .filter(scheduled_job::Column::NextFireAt.lte(now))
        .all(&services.db)
        .await?;
    for job in due {
        if services.stopping.is_cancelled() {
            break; // the occurrence stays due for whichever process runs next
        }
        if let Err(e) = fire(services, job, now).await {
            tracing::warn!(error = %e, "firing a scheduled job failed");
        }
    }
    Ok(())
}

async fn fire(services: &Arc<Services>, job: scheduled_job::Model, now: DateTime<Utc>) -> Result<(), DbErr> {
    let Some(occurrence) = job.next_fire_at else { return Ok(()) };
    let next = match Schedule::parse(&job.cron) {
        Ok(schedule) => schedule.next_after(now.max(occurrence), services.settings.timezone),
        Err(e) => {
            tracing::error!(group = %job.group, name = %job.name, error = %e, "pausing a job whose cron no longer parses");
            set_paused(services, job.id, true, job.next_fire_at).await?;
            return Ok(());
        }
    };
    let missed = now - occurrence > MISFIRE_THRESHOLD;
    let run = !missed || job.should_recover;
    if !advance(services, &job, occurrence, next, run).await? {
        return Ok(()); // another process took this occurrence
    }
    if missed {
        tracing::info!(group = %job.group, name = %job.name, %occurrence, recovered = run, "missed occurrence");
    }
    if run {
        start_run(services, &job, occurrence).await?;
    }
    if next.is_none() && !job.durable {
        scheduled_job::Entity::delete_by_id(job.id).exec(&services.db).await?;
    }
    Ok(())
}

/// Moves the job from `occurrence` to `next`, only if no other process has:
/// true when this process won the occurrence.
async fn advance(
    services: &Services,
    job: &scheduled_job::Model,
    occurrence: DateTime<Utc>,
    next: Option<DateTime<Utc>>,
    ran: bool,
) -> Result<bool, DbErr> {
    let mut update = scheduled_job::Entity::update_many()
        .col_expr(scheduled_job::Column::NextFireAt, Expr::value(next))
        .col_expr(scheduled_job::Column::UpdatedAt, Expr::value(Utc::now()));
    if next.is_none() {
        // The schedule is over: a durable job is kept, paused, so no active
        // job is left without a next fire time.
        update = update.col_expr(scheduled_job::Column::Paused, Expr::value(true));
    }
    if ran {
        update = update.col_expr(scheduled_job::Column::LastFireAt, Expr::value(occurrence));
    }
    let result = update
        .filter(scheduled_job::Column::Id.eq(job.id))
        .filter(scheduled_job::Column::NextFireAt.eq(occurrence))
        .filter(scheduled_job::Column::Paused.eq(false))
        .exec(&services.db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Records a run of `job` for `occurrence` and executes it in the
/// background, unless the job is still running (no overlap) or the
/// occurrence already has a run. True when a run started.
async fn start_run(services: &Arc<Services>, job: &scheduled_job::Model, occurrence: DateTime<Utc>) -> Result<bool, DbErr> {
    let now = Utc::now();
    let busy = job_run::Entity::find()
        .filter(job_run::Column::ScheduledJobScheduledJob.eq(job.id))
        .filter(job_run::Column::Status.eq(RUNNING))
        .filter(job_run::Column::StartedAt.gt(now - ABANDONED_AFTER))
        .one(&services.db)
        .await?;
    if busy.is_some() {
        tracing::info!(group = %job.group, name = %job.name, %occurrence, "skipped: the previous run is still running");
        return Ok(false);
    }
    let run = job_run::ActiveModel {
        scheduled_job_scheduled_job: Set(job.id),
        scheduled_for: Set(occurrence),
        started_at: Set(Some(now)),
        status: Set(RUNNING.to_string()),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    };
    let claim = OnConflict::columns([job_run::Column::ScheduledJobScheduledJob, job_run::Column::ScheduledFor]).do_nothing().to_owned();
    let inserted = job_run::Entity::insert(run).on_conflict(claim).exec(&services.db).await;
    let run_id = match inserted {
        Ok(result) => result.last_insert_id,
        Err(DbErr::RecordNotInserted) => return Ok(false),
        Err(e) => return Err(e),
    };
    let (job, services) = (job.clone(), services.clone());
    services.clone().spawn(async move {
        tracing::info!(group = %job.group, name = %job.name, job_type = %job.job_type, "job started");
        let started = std::time::Instant::now();
        let outcome = jobs::execute(&services, &job, occurrence).await;
        let status = if outcome.is_ok() { SUCCEEDED } else { FAILED };
        ::metrics::counter!("wxnotify_job_runs_total", "job_type" => job.job_type.clone(), "status" => status).increment(1);
        ::metrics::histogram!("wxnotify_job_duration_seconds", "job_type" => job.job_type.clone()).record(started.elapsed().as_secs_f64());
        if let Err(e) = finish_run(&services, run_id, &outcome).await {
            tracing::error!(error = %e, run_id, "recording a job's outcome failed");
        }
        match outcome {
            Ok(_) => {
                tracing::info!(group = %job.group, name = %job.name, elapsed_ms = started.elapsed().as_millis() as u64, "job succeeded")
            }
            Err(e) => tracing::warn!(group = %job.group, name = %job.name, error = %e, "job failed"),
        }
    });
    Ok(true)
}

async fn finish_run(services: &Services, run_id: i64, outcome: &Result<serde_json::Value, String>) -> Result<(), DbErr> {
    let (status, result, error) = match outcome {
        Ok(result) => (SUCCEEDED, Some(result.clone()), None),
        Err(e) => (FAILED, None, Some(e.clone())),
    };
    job_run::Entity::update_many()
        .col_expr(job_run::Column::Status, Expr::value(status))
        .col_expr(job_run::Column::Result, Expr::value(result))
        .col_expr(job_run::Column::Error, Expr::value(error))
        .col_expr(job_run::Column::FinishedAt, Expr::value(Some(Utc::now())))
        .col_expr(job_run::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(job_run::Column::Id.eq(run_id))
        .exec(&services.db)
        .await?;
    Ok(())
}

async fn find(services: &Services, group: &str, name: &str) -> Result<Option<scheduled_job::Model>, DbErr> {
    scheduled_job::Entity::find()
        .filter(scheduled_job::Column::Group.eq(group))
        .filter(scheduled_job::Column::Name.eq(name))
        .one(&services.db)
        .await
}

/// Pauses a job; false when there is no such job.
pub async fn pause(services: &Services, group: &str, name: &str) -> Result<bool, DbErr> {
    let Some(job) = find(services, group, name).await? else { return Ok(false) };
    set_paused(services, job.id, true, job.next_fire_at).await?;
    Ok(true)
}

/// What resuming a job did.
pub enum Resumed {
    Yes,
    NoSuchJob,
    /// The job's cron (given) has no fire time left; it stays paused.
    NeverFires(String),
}

/// Lets a job fire again, from now on; a job whose schedule has no fire
/// time left stays paused, so no active job lacks a next fire time.
pub async fn resume(services: &Services, group: &str, name: &str) -> Result<Resumed, DbErr> {
    let Some(job) = find(services, group, name).await? else { return Ok(Resumed::NoSuchJob) };
    let next = Schedule::parse(&job.cron).ok().and_then(|s| s.next_after(Utc::now(), services.settings.timezone));
    if next.is_none() {
        return Ok(Resumed::NeverFires(job.cron));
    }
    set_paused(services, job.id, false, next).await?;
    Ok(Resumed::Yes)
}

async fn set_paused(services: &Services, id: i64, paused: bool, next: Option<DateTime<Utc>>) -> Result<(), DbErr> {
    scheduled_job::Entity::update_many()
        .col_expr(scheduled_job::Column::Paused, Expr::value(paused))
        .col_expr(scheduled_job::Column::NextFireAt, Expr::value(next))
        .col_expr(scheduled_job::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(scheduled_job::Column::Id.eq(id))
        .exec(&services.db)
        .await?;
    Ok(())
}

/// Deletes a job and its runs; false when there is no such job.
pub async fn delete(services: &Services, group: &str, name: &str) -> Result<bool, DbErr> {
    let result = scheduled_job::Entity::delete_many()
        .filter(scheduled_job::Column::Group.eq(group))
        .filter(scheduled_job::Column::Name.eq(name))
        .exec(&services.db)
        .await?;
    Ok(result.rows_affected > 0)
}

/// Runs a job now, once, whatever its schedule (not while it is running).
pub async fn trigger(services: &Arc<Services>, group: &str, name: &str) -> Result<bool, DbErr> {
    let Some(job) = find(services, group, name).await? else { return Ok(false) };
    start_run(services, &job, Utc::now()).await
}
