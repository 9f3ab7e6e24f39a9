use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::ConnectionTrait;

/// Where a follower sync collects the listing before applying it: rows are
/// written while WeChat pages through the followers and turned into links
/// in one transaction only once the listing is complete. Server-internal
/// (no system columns, not in the GraphQL surface); empty between syncs.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let table = Table::create()
            .table(Alias::new("follower_sync_stage"))
            .if_not_exists()
            .col(ColumnDef::new(Alias::new("openid")).string().not_null().primary_key())
            .col(ColumnDef::new(Alias::new("unionid")).string())
            .col(ColumnDef::new(Alias::new("subscribe_time")).timestamp_with_time_zone())
            .to_owned();
        manager.create_table(table).await?;
        if manager.get_database_backend() == sea_orm_migration::sea_orm::DbBackend::Postgres {
            // Disposable rows: no WAL for them, and PostgreSQL hash-joins
            // on unionid without an index; SQLite's nested loops need one.
            return manager.get_connection().execute_unprepared("ALTER TABLE follower_sync_stage SET UNLOGGED").await.map(|_| ());
        }
        let index = Index::create()
            .name("follower_sync_stage_unionid_idx")
            .table(Alias::new("follower_sync_stage"))
            .col(Alias::new("unionid"))
            .if_not_exists()
            .to_owned();
        manager.create_index(index).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Alias::new("follower_sync_stage")).to_owned()).await
    }
}
