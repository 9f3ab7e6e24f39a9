use sea_orm_migration::prelude::*;

use crate::columns::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut t = table("scheduled_job");
        t.col(col("name").string().not_null())
            .col(col("group").string().not_null())
            .col(col("description").text())
            .col(col("cron").string().not_null())
            .col(col("job_type").string().not_null())
            .col(col("data_map").json_binary().not_null())
            .col(col("durable").boolean().not_null().default(true))
            .col(col("should_recover").boolean().not_null().default(false))
            .col(col("paused").boolean().not_null().default(false))
            .col(col("next_fire_at").timestamp_with_time_zone())
            .col(col("last_fire_at").timestamp_with_time_zone());
        create_table(manager, t, vec![unique("scheduled_job", &["group", "name"])]).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_table(manager, "scheduled_job").await
    }
}
