//! A send credit's code is unique per kind (`push_code_kind_code_key`), so a
//! form id collected twice, even by two requests at once, is stored once.
//! Subscription credits have no code (NULL), and NULLs never conflict.
use sea_orm_migration::prelude::*;

use crate::columns::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.create_index(unique("push_code", &["kind", "code"])).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_index(Index::drop().name("push_code_kind_code_key").table(Alias::new("push_code")).to_owned()).await
    }
}
