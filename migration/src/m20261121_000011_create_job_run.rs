use sea_orm_migration::prelude::*;

use crate::columns::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut t = table("job_run");
        t.col(col("scheduled_job_scheduled_job").big_integer().not_null())
            .col(col("scheduled_for").timestamp_with_time_zone().not_null())
            .col(col("started_at").timestamp_with_time_zone())
            .col(col("finished_at").timestamp_with_time_zone())
            .col(col("status").string().not_null())
            .col(col("result").json_binary())
            .col(col("error").text())
            .foreign_key(&mut foreign_key("job_run", "scheduled_job_scheduled_job", "scheduled_job"));
        create_table(manager, t, vec![unique("job_run", &["scheduled_job_scheduled_job", "scheduled_for"])]).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_table(manager, "job_run").await
    }
}
