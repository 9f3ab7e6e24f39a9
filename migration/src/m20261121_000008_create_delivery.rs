use sea_orm_migration::prelude::*;

use crate::columns::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut t = table("delivery");
        t.col(col("account_account").big_integer())
            .col(col("channel").string().not_null())
            .col(col("touser").string().not_null())
            .col(col("template_id").string().not_null())
            .col(col("payload").json_binary().not_null())
            .col(col("dedupe_key").string().not_null())
            .col(col("status").string().not_null().default("PENDING"))
            .col(col("attempts").integer().not_null().default(0))
            .col(col("errcode").integer())
            .col(col("errmsg").text())
            .col(col("msgid").big_integer())
            .col(col("sent_at").timestamp_with_time_zone())
            .foreign_key(&mut foreign_key("delivery", "account_account", "account"));
        create_table(
            manager,
            t,
            vec![unique("delivery", &["dedupe_key"]), index("delivery", "msgid"), index("delivery", "account_account")],
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_table(manager, "delivery").await
    }
}
