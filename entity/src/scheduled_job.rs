//! A durable cron job (Zion's `addScheduledJob`).
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "scheduled_job")]
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
    /// Quartz (6 or 7 fields) or classic 5-field cron.
    pub cron: String,
    /// ACTION_FLOW, SYNC_FOLLOWERS or NOTIFY_DIGEST.
    pub job_type: String,
    #[sea_orm(column_type = "JsonBinary")]
    pub data_map: Json,
    pub durable: bool,
    pub should_recover: bool,
    pub paused: bool,
    pub next_fire_at: Option<DateTimeUtc>,
    pub last_fire_at: Option<DateTimeUtc>,
}

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
