use sea_orm_migration::prelude::*;

/// Server-internal key/value pairs (the development JWT secret). Not a Zion
/// table: no system columns, not in the GraphQL surface.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let table = Table::create()
            .table(Alias::new("wxnotify_meta"))
            .if_not_exists()
            .col(ColumnDef::new(Alias::new("key")).string().not_null().primary_key())
            .col(ColumnDef::new(Alias::new("value")).text().not_null())
            .to_owned();
        manager.create_table(table).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Alias::new("wxnotify_meta")).to_owned()).await
    }
}
