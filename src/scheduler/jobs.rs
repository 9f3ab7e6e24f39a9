//! What each job type does when it fires.

use std::sync::Arc;

use entity::scheduled_job;
use serde_json::Value;

use chrono::{DateTime, Utc};

use crate::flows;
use crate::notify::{self, digest::DigestRequest};
use crate::services::Services;

/// The job types `addScheduledJob` accepts.
pub const JOB_TYPES: [&str; 3] = ["ACTION_FLOW", "SYNC_FOLLOWERS", "NOTIFY_DIGEST"];

/// Runs one job for one occurrence; its result, or what went wrong.
pub async fn execute(services: &Arc<Services>, job: &scheduled_job::Model, occurrence: DateTime<Utc>) -> Result<Value, String> {
    match job.job_type.as_str() {
        "ACTION_FLOW" => action_flow(services, &job.data_map).await,
        "NOTIFY_DIGEST" => digest(services, job, occurrence).await,
        "SYNC_FOLLOWERS" => {
            let report = crate::linking::sync::sync_followers(services, None).await.map_err(|e| e.to_string())?;
            serde_json::to_value(report).map_err(|e| e.to_string())
        }
        other => Err(format!("unknown job type {other}: use one of {}", JOB_TYPES.join(", "))),
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
    let request = DigestRequest { filter, template, dry_run: false, run_id: Some(format!("job-{}-{}", job.id, occurrence.timestamp())) };
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
