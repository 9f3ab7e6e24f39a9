//! A durable cron job (Zion's `addScheduledJob`).
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "scheduled_job", comment = "A durable cron job (Zion's addScheduledJob).")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    #[sea_orm(unique_key = "scheduled_job_group_name_key")]
    pub name: String,
    #[sea_orm(unique_key = "scheduled_job_group_name_key")]
    pub group: String,
    pub description: Option<String>,
    pub cron: String,
    pub job_type: String,
    #[sea_orm(column_type = "JsonBinary")]
    pub data_map: Json,
    pub durable: bool,
    pub should_recover: bool,
    pub paused: bool,
    pub next_fire_at: Option<DateTimeUtc>,
    pub last_fire_at: Option<DateTimeUtc>,
}

/// What each column means; the GraphQL schema shows these.
pub const DOCS: &[(&str, &str)] = &[
    ("name", "The job's name; (group, name) is unique."),
    ("group", "The job's group."),
    ("description", "What the job is for."),
    ("cron", "Quartz (6 or 7 fields, ? L W #) or classic 5-field cron expression."),
    ("job_type", "ACTION_FLOW, SYNC_FOLLOWERS or NOTIFY_DIGEST."),
    ("data_map", "The job's parameters (e.g. actionFlowUuid, inputs, versionId)."),
    ("durable", "Kept when it has no future firing."),
    ("should_recover", "Run once on start when a firing was missed while the server was down."),
    ("paused", "Paused jobs do not fire."),
    ("next_fire_at", "The next occurrence."),
    ("last_fire_at", "The last occurrence that fired."),
];

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::job_run::Entity")]
    JobRun,
}

impl Related<super::job_run::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::JobRun.def()
    }
}

system_timestamps!();
