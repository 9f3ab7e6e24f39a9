use sea_orm_migration::prelude::*;

use crate::columns::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut t = table("point_count");
        t.col(col("account_account").big_integer().not_null())
            .col(col("type").string())
            .col(col("sender").string())
            .col(col("content").text())
            .foreign_key(&mut foreign_key("point_count", "account_account", "account"));
        create_table(manager, t, vec![index("point_count", "account_account")]).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_table(manager, "point_count").await
    }
}
