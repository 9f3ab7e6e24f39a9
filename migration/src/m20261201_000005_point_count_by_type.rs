//! `point_count` is read per account and per type (digest counts, the
//! `notice` aggregates, a notice's newest row): the index over
//! `account_account` alone becomes one over `(account_account, type)`
//! (declared in `entity::point_count::INDEXES`), which serves the foreign
//! key's lookups by its first column and hands grouped rows over in order,
//! so the digest's candidate query no longer sorts a million joined rows.
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::ConnectionTrait;

use crate::columns::index;

#[derive(DeriveMigrationName)]
pub struct Migration;

const OLD: &str = "point_count_account_account_idx";
const NEW: &str = "point_count_account_account_type_idx";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::m20261201_000001_declared_indexes::create_declared(manager).await?;
        manager.get_connection().execute_unprepared(&format!("DROP INDEX IF EXISTS \"{OLD}\"")).await.map(|_| ())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.create_index(index("point_count", "account_account")).await?;
        manager.get_connection().execute_unprepared(&format!("DROP INDEX IF EXISTS \"{NEW}\"")).await.map(|_| ())
    }
}
