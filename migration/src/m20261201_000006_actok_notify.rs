//! PostgreSQL: every change to `actok` (a refresh, a discard, an edit by
//! hand) is announced on the channel `wxnotify_actok` with the appid, so the
//! token caches of every server process drop their in-memory copy at once
//! instead of reading the row on every call. SQLite has no notifications;
//! its caches watch the database file instead.
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The channel the token caches `LISTEN` on.
pub const CHANNEL: &str = "wxnotify_actok";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        db.execute_unprepared(&format!(
            "CREATE OR REPLACE FUNCTION wxnotify_actok_notify() RETURNS trigger LANGUAGE plpgsql AS $$ \
             BEGIN \
               IF TG_LEVEL = 'STATEMENT' THEN PERFORM pg_notify('{CHANNEL}', ''); \
               ELSIF TG_OP = 'DELETE' THEN PERFORM pg_notify('{CHANNEL}', OLD.appid); \
               ELSE PERFORM pg_notify('{CHANNEL}', NEW.appid); END IF; \
               RETURN NULL; \
             END $$"
        ))
        .await?;
        db.execute_unprepared(
            "CREATE OR REPLACE TRIGGER actok_notify AFTER INSERT OR UPDATE OR DELETE ON actok \
             FOR EACH ROW EXECUTE FUNCTION wxnotify_actok_notify()",
        )
        .await?;
        db.execute_unprepared(
            "CREATE OR REPLACE TRIGGER actok_notify_truncate AFTER TRUNCATE ON actok \
             FOR EACH STATEMENT EXECUTE FUNCTION wxnotify_actok_notify()",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        db.execute_unprepared("DROP TRIGGER IF EXISTS actok_notify ON actok").await?;
        db.execute_unprepared("DROP TRIGGER IF EXISTS actok_notify_truncate ON actok").await?;
        db.execute_unprepared("DROP FUNCTION IF EXISTS wxnotify_actok_notify()").await?;
        Ok(())
    }
}
