//! `callback_event_received_at_idx`: dedupe records of WeChat callbacks are
//! pruned by age as new events arrive; the index keeps that delete a short
//! range read instead of a scan of every event kept.
use sea_orm_migration::prelude::*;

use crate::columns::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.create_index(index("callback_event", "received_at")).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_index(Index::drop().name("callback_event_received_at_idx").table(Alias::new("callback_event")).to_owned()).await
    }
}
