//! SeaORM entities for every wxnotify table (see `docs/architecture.md`
//! for which module owns each).
//!
//! Zion conventions hold for every table: an `id bigint` primary key,
//! `created_at` / `updated_at` set by the server, foreign keys named
//! `<relation>_<table>`, JSON as `jsonb`. The GraphQL table surface is generated
//! from these definitions (columns, unique keys, relations), so adding a table
//! means adding a module here, a migration, and one line in the server's table
//! registry.
//!
//! Unique constraints follow PostgreSQL's default naming, because Hasura
//! documents name them in `on_conflict`: a single column `#[sea_orm(unique)]`
//! is `<table>_<column>_key`; a composite key is declared with
//! `unique_key = "<table>_<col>_<col>_key"` on each of its columns.
//!
//! Indexes beyond keys: a plain column index is `#[sea_orm(indexed)]`;
//! expression and GIN indexes are the module's `INDEXES` (see [`index`]).

/// Sets `created_at` on insert and moves `updated_at` on every save, so
/// code that writes through SeaORM keeps the system columns true.
macro_rules! system_timestamps {
    () => {
        #[async_trait::async_trait]
        impl ActiveModelBehavior for ActiveModel {
            async fn before_save<C>(mut self, _db: &C, insert: bool) -> Result<Self, DbErr>
            where
                C: ConnectionTrait,
            {
                let now = chrono::Utc::now();
                if insert && self.created_at.is_not_set() {
                    self.created_at = sea_orm::ActiveValue::Set(now);
                }
                self.updated_at = sea_orm::ActiveValue::Set(now);
                Ok(self)
            }
        }
    };
}

pub mod account;
pub mod action_flow;
pub mod actok;
pub mod delivery;
pub mod index;
pub mod job_run;
pub mod message_template;
pub mod notice;
pub mod oa_follower;
pub mod point_count;
pub mod push_code;
pub mod scheduled_job;
pub mod wechat_template;
