//! A named lease in `wxnotify_meta`, so one piece of work (a follower sync)
//! runs once at a time across every server process, on both databases.
//!
//! The row's value is `<until, ms since epoch>:<owner>`. Taking it is one
//! conditional upsert (it succeeds only when the row is absent or expired);
//! a heartbeat renews it while the holder works, by compare-and-set on the
//! value, so a holder that stalled past its expiry and was overtaken notices
//! ([`Lease::is_lost`]) instead of writing over the new holder's work.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use sea_orm::{DatabaseConnection, DbErr};

use crate::db::DatabaseKind;
use crate::db::sql::Sql;

/// A held lease; released on [`Lease::release`] (or by expiry after a crash).
pub struct Lease {
    db: DatabaseConnection,
    key: String,
    /// The value written last; the row holds it while the lease is ours.
    value: Arc<Mutex<String>>,
    lost: Arc<AtomicBool>,
    heartbeat: tokio::task::JoinHandle<()>,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn lease_value(ttl: Duration, owner: &str) -> String {
    format!("{}:{owner}", now_ms() + ttl.as_millis() as i64)
}

impl Lease {
    /// Takes the lease `key` for `ttl` (renewed every third of it) unless
    /// someone holds a live one; `None` then.
    pub async fn try_take(db: &DatabaseConnection, kind: DatabaseKind, key: &str, ttl: Duration) -> Result<Option<Lease>, DbErr> {
        let owner = hex::encode(rand::random::<[u8; 8]>());
        let value = lease_value(ttl, &owner);
        let until = match kind {
            // SQLite's CAST reads the leading number and ignores the rest.
            DatabaseKind::Sqlite => "CAST(wxnotify_meta.value AS INTEGER)",
            DatabaseKind::Postgres => "CAST(split_part(wxnotify_meta.value, ':', 1) AS BIGINT)",
        };
        let mut sql = Sql::new("INSERT INTO wxnotify_meta (key, value) VALUES (");
        sql.bind(key).push(", ").bind(value.clone());
        sql.push(&format!(") ON CONFLICT (key) DO UPDATE SET value = excluded.value WHERE {until} < ")).bind(now_ms());
        if sql.execute(db).await? == 0 {
            return Ok(None);
        }
        let value = Arc::new(Mutex::new(value));
        let lost = Arc::new(AtomicBool::new(false));
        let heartbeat = tokio::spawn(renew(db.clone(), key.to_string(), owner, ttl, value.clone(), lost.clone()));
        Ok(Some(Lease { db: db.clone(), key: key.to_string(), value, lost, heartbeat }))
    }

    /// The row's value while the lease is ours.
    pub fn value(&self) -> String {
        self.value.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    /// True once a renewal found the lease taken over.
    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::Relaxed)
    }

    /// Gives the lease up (only if it is still ours).
    pub async fn release(self) {
        self.heartbeat.abort();
        let mut sql = Sql::new("DELETE FROM wxnotify_meta WHERE key = ");
        sql.bind(self.key.clone()).push(" AND value = ").bind(self.value());
        let released = sql.execute(&self.db).await;
        if let Err(e) = released {
            // Harmless beyond a delay: the lease runs out by itself.
            tracing::warn!(error = %e, key = self.key, "could not release a lease; it expires by itself");
        }
    }
}

async fn renew(db: DatabaseConnection, key: String, owner: String, ttl: Duration, value: Arc<Mutex<String>>, lost: Arc<AtomicBool>) {
    loop {
        tokio::time::sleep(ttl / 3).await;
        let old = value.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let new = lease_value(ttl, &owner);
        let mut sql = Sql::new("UPDATE wxnotify_meta SET value = ");
        sql.bind(new.clone()).push(" WHERE key = ").bind(key.clone()).push(" AND value = ").bind(old);
        match sql.execute(&db).await {
            Ok(0) => {
                tracing::error!(key, "lost a lease to another holder; the work it guards will stop");
                lost.store(true, Ordering::Relaxed);
                return;
            }
            Ok(_) => *value.lock().unwrap_or_else(PoisonError::into_inner) = new,
            // A failed renewal is retried next beat; the lease outlives two misses.
            Err(e) => tracing::warn!(error = %e, key, "could not renew a lease; retrying"),
        }
    }
}
