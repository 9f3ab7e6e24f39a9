//! `delivery_status_idx`: the outbox finds its PENDING rows on start without
//! reading every message ever sent.
use sea_orm_migration::prelude::*;

use crate::columns::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.create_index(index("delivery", "status")).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_index(Index::drop().name("delivery_status_idx").table(Alias::new("delivery")).to_owned()).await
    }
}
