use sea_orm_migration::prelude::*;

/// The callback events already handled, so WeChat's retries of one event
/// (same FromUserName, CreateTime and Event) are recognised by every server
/// process. Server-internal: not in the GraphQL surface.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let table = Table::create()
            .table(Alias::new("callback_event"))
            .if_not_exists()
            .col(ColumnDef::new(Alias::new("dedupe_key")).string().not_null().primary_key())
            .col(ColumnDef::new(Alias::new("event")).string().not_null())
            .col(ColumnDef::new(Alias::new("received_at")).timestamp_with_time_zone().not_null())
            .to_owned();
        manager.create_table(table).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Alias::new("callback_event")).to_owned()).await
    }
}
