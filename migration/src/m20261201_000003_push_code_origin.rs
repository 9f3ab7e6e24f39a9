//! Where a send credit came from and whom it reaches: `openid` (the openid
//! WeChat reported the credit for; a service-account subscription notice is
//! sent to it, follower or not) and `source` (CLIENT: reported by the
//! mini-program through `grantSubscription`; WECHAT: pushed by WeChat's
//! `subscribe_msg_popup_event`; BOTH: the two reports of one acceptance,
//! counted once).
use sea_orm_migration::prelude::*;

use crate::columns::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const COLUMNS: [&str; 2] = ["openid", "source"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite adds only one at a time.
        for name in COLUMNS {
            let mut column = col(name);
            column.string();
            manager.alter_table(Table::alter().table(Alias::new("push_code")).add_column(column).to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for name in COLUMNS {
            manager.alter_table(Table::alter().table(Alias::new("push_code")).drop_column(Alias::new(name)).to_owned()).await?;
        }
        Ok(())
    }
}
