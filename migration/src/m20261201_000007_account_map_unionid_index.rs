//! PostgreSQL: accounts known only by their login map's unionId, indexed by
//! it (`(oauth2_user_info_map -> 'WECHAT' ->> 'unionId') WHERE unionid IS
//! NULL`). Linking such an account to a follower (a follower sync's batches,
//! a subscribe event) is then an index probe instead of a scan of every
//! unlinked account; the GIN index on the map serves `@>` only. Partial, so
//! an account leaves it once its `unionid` column is filled. SQLite already
//! has the `json_extract` index the entity declares.
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE INDEX IF NOT EXISTS account_map_unionid_unlinked_idx ON account \
                 ((oauth2_user_info_map -> 'WECHAT' ->> 'unionId')) WHERE unionid IS NULL",
            )
            .await
            .map(|_| ())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        manager.get_connection().execute_unprepared("DROP INDEX IF EXISTS account_map_unionid_unlinked_idx").await.map(|_| ())
    }
}
