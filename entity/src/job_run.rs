//! One firing of a scheduled job; unique per occurrence, so it fires once.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "job_run", comment = "One firing of a scheduled job; unique per occurrence, so it fires once.")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    #[sea_orm(unique_key = "job_run_scheduled_job_scheduled_job_scheduled_for_key")]
    pub scheduled_job_scheduled_job: i64,
    #[sea_orm(unique_key = "job_run_scheduled_job_scheduled_job_scheduled_for_key")]
    pub scheduled_for: DateTimeUtc,
    pub started_at: Option<DateTimeUtc>,
    pub finished_at: Option<DateTimeUtc>,
    pub status: String,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub result: Option<Json>,
    #[sea_orm(column_type = "Text", nullable)]
    pub error: Option<String>,
}

/// What each column means; the GraphQL schema shows these.
pub const DOCS: &[(&str, &str)] = &[
    ("scheduled_job_scheduled_job", "The job that fired."),
    ("scheduled_for", "The cron occurrence this run is for."),
    ("started_at", "When the run started."),
    ("finished_at", "When the run ended."),
    ("status", "RUNNING, SUCCEEDED or FAILED."),
    ("result", "What the run returned."),
    ("error", "Why the run failed."),
];

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::scheduled_job::Entity",
        from = "Column::ScheduledJobScheduledJob",
        to = "super::scheduled_job::Column::Id",
        on_delete = "Cascade"
    )]
    ScheduledJob,
}

impl Related<super::scheduled_job::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::ScheduledJob.def()
    }
}

system_timestamps!();
