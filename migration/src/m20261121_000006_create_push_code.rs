use sea_orm_migration::prelude::*;

use crate::columns::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut t = table("push_code");
        t.col(col("account_account").big_integer().not_null())
            .col(col("kind").string().not_null())
            .col(col("code").string())
            .col(col("template_id").string())
            .col(col("expire_at").timestamp_with_time_zone())
            .foreign_key(&mut foreign_key("push_code", "account_account", "account"));
        create_table(manager, t, vec![index("push_code", "account_account")]).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_table(manager, "push_code").await
    }
}
