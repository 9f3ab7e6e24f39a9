//! `wechat_template`: the account's template library, synced from WeChat.
use sea_orm_migration::prelude::*;

use crate::columns::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut t = table("wechat_template");
        t.col(col("template_id").string().not_null())
            .col(col("channel").string().not_null())
            .col(col("kind").string().not_null())
            .col(col("title").string().not_null())
            .col(col("content").text().not_null())
            .col(col("example").text().not_null())
            .col(col("keywords").json_binary().not_null())
            .col(col("synced_at").timestamp_with_time_zone().not_null())
            .col(col("removed_at").timestamp_with_time_zone());
        create_table(manager, t, vec![unique("wechat_template", &["template_id"])]).await?;
        // What wxnotify changed in a message before sending it (values cut).
        let mut notes = col("notes");
        notes.text();
        manager.alter_table(Table::alter().table(Alias::new("delivery")).add_column(notes).to_owned()).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.alter_table(Table::alter().table(Alias::new("delivery")).drop_column(Alias::new("notes")).to_owned()).await?;
        drop_table(manager, "wechat_template").await
    }
}
