use sea_orm_migration::prelude::*;

use crate::columns::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut t = table("actok");
        t.col(col("appid").string().not_null())
            .col(col("tok").text().not_null())
            .col(col("expiredtime").timestamp_with_time_zone().not_null());
        create_table(manager, t, vec![unique("actok", &["appid"])]).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_table(manager, "actok").await
    }
}
