//! The outbox's claim on a message in flight: `claimed_at` (when it was
//! first handed to WeChat, the start of its `client_msg_id` re-send window),
//! `lease_owner` (the server process sending it) and `lease_until` (renewed
//! by that process's heartbeat; once it lapses any server settles the row).
use sea_orm_migration::prelude::*;

use crate::columns::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const COLUMNS: [&str; 3] = ["claimed_at", "lease_owner", "lease_until"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite adds only one at a time.
        for name in COLUMNS {
            let mut column = col(name);
            match name {
                "lease_owner" => column.string(),
                _ => column.timestamp_with_time_zone(),
            };
            manager.alter_table(Table::alter().table(Alias::new("delivery")).add_column(column).to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for name in COLUMNS {
            manager.alter_table(Table::alter().table(Alias::new("delivery")).drop_column(Alias::new(name)).to_owned()).await?;
        }
        Ok(())
    }
}
