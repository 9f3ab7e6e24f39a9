use sea_orm_migration::prelude::*;

use crate::columns::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut t = table("notice");
        t.col(col("account_account").big_integer().not_null())
            .col(col("expire_time").timestamp_with_time_zone().not_null())
            .foreign_key(&mut foreign_key("notice", "account_account", "account"));
        create_table(manager, t, vec![unique("notice", &["account_account"])]).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_table(manager, "notice").await
    }
}
