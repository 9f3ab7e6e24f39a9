use sea_orm_migration::prelude::*;

/// The scenes of live scan-to-bind QR codes: a random token WeChat echoes in
/// the scan event, naming the account to bind. Used once, then deleted.
/// Server-internal: not in the GraphQL surface.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let table = Table::create()
            .table(Alias::new("bind_scene"))
            .if_not_exists()
            .col(ColumnDef::new(Alias::new("scene")).string().not_null().primary_key())
            .col(ColumnDef::new(Alias::new("account_account")).big_integer().not_null())
            .col(ColumnDef::new(Alias::new("expires_at")).timestamp_with_time_zone().not_null())
            .col(ColumnDef::new(Alias::new("created_at")).timestamp_with_time_zone().not_null())
            .foreign_key(
                ForeignKey::create()
                    .name("bind_scene_account_account_fkey")
                    .from(Alias::new("bind_scene"), Alias::new("account_account"))
                    .to(Alias::new("account"), Alias::new("id"))
                    .on_delete(ForeignKeyAction::Cascade),
            )
            .to_owned();
        manager.create_table(table).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Alias::new("bind_scene")).to_owned()).await
    }
}
