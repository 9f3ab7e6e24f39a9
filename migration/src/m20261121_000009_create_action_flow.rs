use sea_orm_migration::prelude::*;

use crate::columns::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut t = table("action_flow");
        t.col(col("uuid").string().not_null())
            .col(col("version_id").integer().not_null())
            .col(col("name").string().not_null())
            .col(col("document").text().not_null());
        create_table(manager, t, vec![unique("action_flow", &["uuid", "version_id"])]).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_table(manager, "action_flow").await
    }
}
