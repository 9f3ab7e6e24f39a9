//! The database: connecting, migrating, and the few server-internal values
//! kept there (the development JWT secret).
//!
//! SQLite is the embedded default (a file created on first start); PostgreSQL
//! is for production. Both run every behaviour; where their SQL differs, the
//! code asks [`DatabaseKind`] (the crate's one name for which database,
//! [`kind`]). Every statement written by hand is built with [`sql::Sql`].

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub mod kind;
pub mod row;
pub mod sql;

use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbErr, Statement};

pub use kind::DatabaseKind;
use sql::Sql;

use crate::settings::{Secret, Settings};

/// Counts every SQL statement a connection pool runs (for `/metrics`, and for
/// tests that prove a request's statement count does not grow with its rows),
/// and on request keeps them (for tests that read their query plans).
#[derive(Clone, Debug, Default)]
pub struct StatementCounter {
    count: Arc<AtomicU64>,
    recording: Arc<AtomicBool>,
    recorded: Arc<Mutex<Vec<Statement>>>,
}

impl StatementCounter {
    pub fn get(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Starts keeping every statement run from now on, forgetting earlier ones.
    pub fn record(&self) {
        self.recorded.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clear();
        self.recording.store(true, Ordering::Relaxed);
    }

    /// Stops keeping statements and hands back those kept since [`Self::record`].
    pub fn take_recorded(&self) -> Vec<Statement> {
        self.recording.store(false, Ordering::Relaxed);
        std::mem::take(&mut *self.recorded.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    fn observe(&self, statement: &Statement) {
        self.count.fetch_add(1, Ordering::Relaxed);
        // Checked first so a server that never records pays no lock.
        if self.recording.load(Ordering::Relaxed) {
            self.recorded.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(statement.clone());
        }
    }
}

/// Opens a pool like [`connect`], counting the statements it runs.
pub async fn connect_counted(settings: &Settings) -> anyhow::Result<(DatabaseConnection, StatementCounter)> {
    let mut db = connect(settings).await?;
    let counter = StatementCounter::default();
    let inner = counter.clone();
    db.set_metric_callback(move |info| {
        inner.observe(info.statement);
        ::metrics::counter!("wxnotify_sql_statements_total").increment(1);
    });
    Ok((db, counter))
}

/// Prepared statements each SQLite connection keeps (see [`connect`]).
const SQLITE_STATEMENT_CACHE: usize = 10;

/// How long a pooled connection is trusted without a ping since its last use.
const POOLED_TRUSTED_FOR: Duration = Duration::from_secs(10);

/// Opens a pool for the configured database, creating a SQLite file when it
/// does not exist yet.
pub async fn connect(settings: &Settings) -> anyhow::Result<DatabaseConnection> {
    let mut options = ConnectOptions::new(normalize_url(&settings.database_url, settings.database_kind));
    // A connection used in the last few seconds is handed out as it is;
    // only one idle longer is pinged first. Pinging on every acquire (the
    // pool's default) doubled the round trips of every statement. A
    // connection that died in between fails its statement and is dropped;
    // the outbox's writes retry (see `notify::outbox::persist`).
    options.test_before_acquire_if_idle_for(POOLED_TRUSTED_FOR);
    options.sqlx_logging(false).acquire_timeout(Duration::from_secs(10)).max_connections(match settings.database_kind {
        // One writer at a time anyway; a few readers in WAL mode.
        DatabaseKind::Sqlite => 8,
        DatabaseKind::Postgres => 32,
    });
    if settings.database_kind == DatabaseKind::Sqlite {
        options.map_sqlx_sqlite_opts(|o| {
            // SQLite keeps each cached statement's compiled program in this
            // process: an outbox record of 512 rows is hundreds of KiB, and
            // at the default of 100 per connection the cache of eight
            // connections grew past 200 MiB in a 100,000-message digest.
            o.statement_cache_capacity(SQLITE_STATEMENT_CACHE)
                .journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(30))
                .foreign_keys(true)
        });
    }
    let db = Database::connect(options).await.map_err(|e| {
        anyhow::anyhow!("cannot open the database named by WXNOTIFY_DATABASE_URL ({}): {e}", redact_url(&settings.database_url))
    })?;
    Ok(db)
}

/// Applies every pending migration.
pub async fn migrate(db: &DatabaseConnection) -> anyhow::Result<()> {
    Migrator::up(db, None).await.map_err(|e| anyhow::anyhow!("migrating the database failed: {e}"))
}

/// Has SQLite bring its planner's statistics up to date: `PRAGMA
/// optimize=0x10002` analyzes the tables whose statistics are missing or
/// whose size has changed a lot since, within a time limit SQLite sets itself
/// (SQLite recommends it when a connection opens and every few hours on
/// long-lived ones). The table engine reads the sizes back (see
/// `hasura::statistics`). Nothing to do on PostgreSQL, whose autovacuum
/// analyzes.
pub async fn optimize(db: &DatabaseConnection) -> Result<(), DbErr> {
    if db.get_database_backend() != sea_orm::DatabaseBackend::Sqlite {
        return Ok(());
    }
    Sql::new("PRAGMA optimize=0x10002").execute(db).await.map(|_| ())
}

/// `SELECT 1`, for `/healthz`.
pub async fn ping(db: &DatabaseConnection) -> Result<(), DbErr> {
    Sql::new("SELECT 1").execute(db).await.map(|_| ())
}

/// The JWT secret: the configured one, or on SQLite a development secret
/// generated once and kept in the database. The flag says it was generated.
pub async fn jwt_secret(db: &DatabaseConnection, settings: &Settings) -> anyhow::Result<(Secret, bool)> {
    if let Some(secret) = &settings.jwt_secret {
        return Ok((secret.clone(), false));
    }
    anyhow::ensure!(settings.database_kind == DatabaseKind::Sqlite, "WXNOTIFY_JWT_SECRET: is required with PostgreSQL");
    let fresh = hex::encode(rand::random::<[u8; 32]>());
    // Insert-if-absent then read, so two processes starting together agree.
    let mut insert = Sql::new("INSERT INTO wxnotify_meta (key, value) VALUES (");
    insert.bind("dev_jwt_secret").push(", ").bind(fresh).push(") ON CONFLICT (key) DO NOTHING");
    insert.execute(db).await?;
    let row = Sql::new("SELECT value FROM wxnotify_meta WHERE key = 'dev_jwt_secret'")
        .one(db)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the development JWT secret vanished from wxnotify_meta"))?;
    Ok((Secret::new(row.try_get::<String>("", "value")?), true))
}

/// Sets a server-internal value in `wxnotify_meta` (this module owns the
/// table; leases and the records below go through here or `linking::lease`).
pub async fn meta_put(db: &impl ConnectionTrait, key: &str, value: &str) -> Result<(), sea_orm::DbErr> {
    let mut sql = Sql::new("INSERT INTO wxnotify_meta (key, value) VALUES (");
    sql.bind(key).push(", ").bind(value).push(") ON CONFLICT (key) DO UPDATE SET value = excluded.value");
    sql.execute(db).await.map(|_| ())
}

/// A server-internal value from `wxnotify_meta`.
pub async fn meta_get(db: &impl ConnectionTrait, key: &str) -> Result<Option<String>, sea_orm::DbErr> {
    let mut sql = Sql::new("SELECT value FROM wxnotify_meta WHERE key = ");
    sql.bind(key);
    match sql.one(db).await? {
        Some(row) => Ok(Some(row.try_get::<String>("", "value")?)),
        None => Ok(None),
    }
}

/// Who this process is, for records other processes read ("which server
/// refreshed the token"): the host name and the process id.
pub fn process_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".into());
    format!("{host} (pid {})", std::process::id())
}

/// SQLite URLs get `mode=rwc` so a missing file is created, as promised.
fn normalize_url(url: &str, kind: DatabaseKind) -> String {
    if kind == DatabaseKind::Sqlite && !url.contains("mode=") && !url.contains(":memory:") {
        let sep = if url.contains('?') { '&' } else { '?' };
        format!("{url}{sep}mode=rwc")
    } else {
        url.to_string()
    }
}

/// The URL without its password, for messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!("{}{}:****{}", &url[..scheme + 3], &userinfo[..colon], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact_url("postgres://u:pw@h/db"), "postgres://u:****@h/db");
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact_url("sqlite://wxnotify.db"), "sqlite://wxnotify.db");
    }

    #[test]
    fn sqlite_files_are_created() {
        assert_eq!(normalize_url("sqlite://a.db", DatabaseKind::Sqlite), "sqlite://a.db?mode=rwc");
        assert_eq!(normalize_url("sqlite://a.db?mode=ro", DatabaseKind::Sqlite), "sqlite://a.db?mode=ro");
    }
}
