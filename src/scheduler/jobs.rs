//! What each job type does when it fires.

use std::sync::Arc;

use entity::scheduled_job;
use serde_json::Value;

use chrono::{DateTime, Utc};

use crate::flows;
use crate::notify::{self, digest::DigestRequest};
use crate::services::Services;

/// The job types `addScheduledJob` accepts; `scheduled_job.job_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobType {
    /// Runs a saved action flow (`dataMap {actionFlowUuid, versionId?, inputs?}`).
    ActionFlow,
    /// A follower sync.
    SyncFollowers,
    /// A resumable digest (`dataMap {where?, template?}`).
    NotifyDigest,
    /// A template-library sync (`syncTemplates`).
    SyncTemplates,
}

impl JobType {
    pub const ALL: [JobType; 4] = [JobType::ActionFlow, JobType::SyncFollowers, JobType::NotifyDigest, JobType::SyncTemplates];

    pub fn as_str(self) -> &'static str {
        match self {
            JobType::ActionFlow => "ACTION_FLOW",
            JobType::SyncFollowers => "SYNC_FOLLOWERS",
            JobType::NotifyDigest => "NOTIFY_DIGEST",
            JobType::SyncTemplates => "SYNC_TEMPLATES",
        }
    }

    pub fn parse(text: &str) -> Option<JobType> {
        JobType::ALL.into_iter().find(|t| t.as_str() == text)
    }

    /// Every name, for messages.
    pub fn names() -> String {
        JobType::ALL.map(JobType::as_str).join(", ")
    }
}

/// Runs one job for one occurrence; its result, or what went wrong.
pub async fn execute(services: &Arc<Services>, job: &scheduled_job::Model, occurrence: DateTime<Utc>) -> Result<Value, String> {
    match JobType::parse(&job.job_type) {
        Some(JobType::ActionFlow) => action_flow(services, &job.data_map).await,
        Some(JobType::NotifyDigest) => digest(services, job, occurrence).await,
        Some(JobType::SyncFollowers) => {
            let report = crate::linking::sync::sync_followers(services, None).await.map_err(|e| e.to_string())?;
            serde_json::to_value(report).map_err(|e| e.to_string())
        }
        Some(JobType::SyncTemplates) => {
            let report = crate::templates::sync(services).await.map_err(|e| e.to_string())?;
            serde_json::to_value(report).map_err(|e| e.to_string())
        }
        None => Err(format!("unknown job type {}: use one of {}", job.job_type, JobType::names())),
    }
}

/// `dataMap {where?, template?}`. The run id is the job's and the
/// occurrence's, so a run cut short is resumed, not repeated, by a retry.
async fn digest(services: &Services, job: &scheduled_job::Model, occurrence: DateTime<Utc>) -> Result<Value, String> {
    let filter = job.data_map.get("where").filter(|w| !w.is_null()).cloned();
    let template = match job.data_map.get("template") {
        None | Some(Value::Null) => None,
        Some(Value::String(t)) => Some(t.clone()),
        Some(_) => return Err("dataMap.template must be a template name".into()),
    };
    let request = DigestRequest {
        filter,
        template,
        dry_run: false,
        run_id: Some(format!("job-{}-{}", job.id, occurrence.timestamp())),
        send_what_fits: false,
    };
    let report = notify::digest::run(services, &request).await.map_err(|e| e.to_string())?;
    serde_json::to_value(report).map_err(|e| e.to_string())
}

/// `dataMap {actionFlowUuid, versionId?, inputs?}`, as Zion writes it.
pub struct ActionFlowJob {
    pub uuid: String,
    pub version: Option<i32>,
    pub inputs: Value,
}

impl ActionFlowJob {
    pub fn parse(data_map: &Value) -> Result<ActionFlowJob, String> {
        let uuid = data_map
            .get("actionFlowUuid")
            .and_then(Value::as_str)
            .ok_or("dataMap.actionFlowUuid is required for ACTION_FLOW jobs")?
            .to_string();
        let version = match data_map.get("versionId") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_i64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                    .and_then(|n| i32::try_from(n).ok())
                    .ok_or("dataMap.versionId must be a whole number")?,
            ),
        };
        let inputs = data_map.get("inputs").cloned().unwrap_or(Value::Null);
        if !matches!(inputs, Value::Null | Value::Object(_)) {
            return Err("dataMap.inputs must be an object of variables".into());
        }
        Ok(ActionFlowJob { uuid, version, inputs })
    }
}

async fn action_flow(services: &Services, data_map: &Value) -> Result<Value, String> {
    let job = ActionFlowJob::parse(data_map)?;
    let flow = flows::load(&services.db, &job.uuid, job.version).await.map_err(|e| e.to_string())?;
    let schema = services.schema.get().ok_or("the server's schema is not ready")?;
    flows::run(schema, &flow, job.inputs).await.map_err(|e| e.to_string())
}
