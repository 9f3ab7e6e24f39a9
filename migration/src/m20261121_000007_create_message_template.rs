use sea_orm_migration::prelude::*;

use crate::columns::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut t = table("message_template");
        t.col(col("name").string().not_null())
            .col(col("channel").string().not_null())
            .col(col("template_id").string().not_null())
            .col(col("page").string())
            .col(col("url").string())
            .col(col("data").json_binary().not_null());
        create_table(manager, t, vec![unique("message_template", &["name"])]).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_table(manager, "message_template").await
    }
}
