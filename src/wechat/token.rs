//! The access-token cache: one token per appid in the `actok` table, shared
//! by every server process, refreshed by exactly one caller.
//!
//! The database row is the shared copy; each process keeps the row it last
//! read in memory and reads it again only when something may have changed
//! (see [`watch`](super::token_watch)): on PostgreSQL a trigger announces
//! every change of `actok` on a `LISTEN` channel, on SQLite the database
//! file's change counters move. So a token another process fetched or
//! discarded is seen by the next call (on PostgreSQL, as soon as the
//! notification arrives), and a steady stream of calls reads the row about
//! once a second instead of once a call. A token counts as fresh until
//! `refresh_before` ahead of its `expiredtime`; then one caller refreshes:
//!
//! - within a process, a per-appid async mutex lets one task through while
//!   the others wait and then reuse its token;
//! - across processes on PostgreSQL, that task locks the row
//!   (`SELECT ... FOR UPDATE`, inserting it first when missing), re-checks
//!   freshness under the lock, and only then asks WeChat;
//! - across processes on SQLite, which has no row locks, it takes a short
//!   lease with an atomic compare-and-set in `wxnotify_meta`, re-checks,
//!   fetches, and publishes with `UPDATE ... WHERE tok = <the stale token>`;
//!   a process that loses either race re-reads and uses the winner's token.
//!
//! When WeChat refuses a token, [`TokenCache::discard`] drops the in-memory
//! copy and marks the row expired only if it is still the cached one, so a
//! storm of failures discards once.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use entity::actok;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QuerySelect, TransactionTrait,
    TryInsertResult,
};

use super::WechatError;
use super::token_watch::Watch;
use crate::db::DatabaseKind;
use crate::db::sql::Sql;

/// A token just handed out by WeChat.
pub struct Fetched {
    pub token: String,
    /// Seconds of life WeChat promised.
    pub expires_in: i64,
}

/// The shared token cache of one client.
pub struct TokenCache {
    db: DatabaseConnection,
    kind: DatabaseKind,
    refresh_before: chrono::Duration,
    /// How long a SQLite refresh lease lasts; a crashed holder blocks others
    /// no longer than this.
    lease: Duration,
    /// The in-process single flight, one mutex per appid.
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// One read of the row at a time per appid: when the copy goes out of
    /// date (every commit moves SQLite's stamp; on PostgreSQL the copy ages
    /// out every second), the calls that notice it together wait for one
    /// read instead of each taking a pooled connection for the same row (at
    /// 64 sends at once that was 64 reads, opening new pool connections).
    readers: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// The row of each appid as last read, valid while `watch` says nothing
    /// changed since.
    copies: Mutex<HashMap<String, Copy>>,
    watch: Watch,
    /// Moves each time this process discards or replaces a token: a copy
    /// read before is not used after, even when the database's own signal
    /// of the change has not arrived yet.
    local: std::sync::atomic::AtomicU64,
}

/// One `actok` row as read, with the change stamp taken just before.
struct Copy {
    row: actok::Model,
    stamp: u64,
    /// [`TokenCache::local`] when the read began.
    local: u64,
    read_at: std::time::Instant,
}

/// However still the database looks, a copy is read again after this long:
/// the file-based watch on SQLite can miss a change made within the same
/// clock tick, and a notification can be lost with its connection.
const MAX_COPY_AGE: Duration = Duration::from_secs(1);

/// How often a SQLite process waiting on another's lease looks again.
const LEASE_POLL: Duration = Duration::from_millis(20);

impl TokenCache {
    /// `database_url` is the one `db` was opened with; on SQLite it names
    /// the file whose change counters are watched.
    pub fn new(db: DatabaseConnection, kind: DatabaseKind, database_url: &str, refresh_before: Duration, call_timeout: Duration) -> Self {
        let watch = Watch::new(&db, kind, database_url);
        TokenCache {
            db,
            watch,
            copies: Mutex::new(HashMap::new()),
            local: std::sync::atomic::AtomicU64::new(0),
            kind,
            refresh_before: chrono::Duration::from_std(refresh_before).unwrap_or(chrono::Duration::minutes(5)),
            // A fetch with its busy retries fits well within this.
            lease: (call_timeout * 4).max(Duration::from_secs(30)),
            locks: Mutex::new(HashMap::new()),
            readers: Mutex::new(HashMap::new()),
        }
    }

    /// The cached token of `appid`, or one freshly fetched with `fetch` by the
    /// single caller that wins the right to refresh.
    pub async fn get<F, Fut>(&self, appid: &str, fetch: F) -> Result<String, WechatError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Fetched, WechatError>>,
    {
        if let Some(token) = self.read_fresh(appid).await? {
            return Ok(token);
        }
        let lock = self.lock_for(appid);
        let _single_flight = lock.lock().await;
        // Whoever held the lock before us has probably refreshed already.
        if let Some(token) = self.read_fresh(appid).await? {
            return Ok(token);
        }
        let token = match self.kind {
            DatabaseKind::Postgres => self.refresh_under_row_lock(appid, fetch).await,
            DatabaseKind::Sqlite => self.refresh_under_lease(appid, fetch).await,
        };
        // The row changed (or may have): the next call reads it once.
        self.forget(appid);
        token
    }

    /// Another token of `appid` after WeChat refused `refused`: that one is
    /// marked expired ([`TokenCache::discard`]) and the next is read or
    /// fetched as [`TokenCache::get`] does, never `refused` itself.
    pub async fn replace<F, Fut>(&self, appid: &str, refused: &str, fetch: F) -> Result<String, WechatError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<Fetched, WechatError>>,
    {
        self.discard(appid, refused).await?;
        let token = self.get(appid, &fetch).await?;
        if token != refused {
            return Ok(token);
        }
        // A copy another call read just before a change its stamp could not
        // tell (on SQLite a file's size and times can stay the same across a
        // commit within one tick of the kernel's clock): read the row
        // itself, which the discard above expired unless someone replaced it.
        self.forget(appid);
        self.get(appid, fetch).await
    }

    /// Marks `failed` expired if it is still the cached token of `appid`;
    /// true when it was. A token someone already replaced stays untouched.
    async fn discard(&self, appid: &str, failed: &str) -> Result<bool, WechatError> {
        {
            let mut copies = self.copies.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            self.local.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
            if copies.get(appid).is_some_and(|copy| copy.row.tok == failed) {
                copies.remove(appid);
            }
        }
        let result = actok::Entity::update_many()
            .col_expr(actok::Column::Expiredtime, Expr::value(DateTime::<Utc>::UNIX_EPOCH))
            .col_expr(actok::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(actok::Column::Appid.eq(appid))
            .filter(actok::Column::Tok.eq(failed))
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected > 0)
    }

    fn lock_for(&self, appid: &str) -> Arc<tokio::sync::Mutex<()>> {
        lock_in(&self.locks, appid)
    }

    fn is_fresh(&self, row: &actok::Model) -> bool {
        !row.tok.is_empty() && row.expiredtime - self.refresh_before > Utc::now()
    }

    async fn read(&self, db: &impl ConnectionTrait, appid: &str) -> Result<Option<actok::Model>, WechatError> {
        Ok(actok::Entity::find().filter(actok::Column::Appid.eq(appid)).one(db).await?)
    }

    /// The fresh token of `appid`: the in-memory copy while nothing changed
    /// since it was read, else the row. Callers that find the copy out of
    /// date at the same moment share one read (see [`TokenCache::readers`]).
    async fn read_fresh(&self, appid: &str) -> Result<Option<String>, WechatError> {
        // Taken before the read: a change after it moves the stamp, so the
        // copy is read again next time.
        let (mut stamp, mut local) = self.seen();
        if let Some(token) = self.copied(appid, stamp, local) {
            return Ok(token);
        }
        // Without a stamp nothing is kept, so there is nothing to share.
        let reader = stamp.map(|_| lock_in(&self.readers, appid));
        let _reading = match &reader {
            Some(reader) => {
                let guard = reader.lock().await;
                // The read we waited for counts if nothing moved since it began.
                (stamp, local) = self.seen();
                if let Some(token) = self.copied(appid, stamp, local) {
                    return Ok(token);
                }
                Some(guard)
            }
            None => None,
        };
        let row = self.read(&self.db, appid).await?;
        {
            let mut copies = self.copies.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            match (stamp, &row) {
                (Some(stamp), Some(row)) => {
                    copies.insert(appid.to_string(), Copy { row: row.clone(), stamp, local, read_at: std::time::Instant::now() });
                }
                _ => {
                    copies.remove(appid);
                }
            }
        }
        Ok(row.filter(|row| self.is_fresh(row)).map(|row| row.tok))
    }

    /// The watch's stamp and this process's own change count, as of now.
    fn seen(&self) -> (Option<u64>, u64) {
        (self.watch.stamp(), self.local.load(std::sync::atomic::Ordering::Acquire))
    }

    /// What the in-memory copy of `appid` says, if it was read at `stamp`
    /// and `local` and is young enough: the token, or `None` when it is due
    /// for a refresh.
    fn copied(&self, appid: &str, stamp: Option<u64>, local: u64) -> Option<Option<String>> {
        let stamp = stamp?;
        let copies = self.copies.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let copy = copies.get(appid).filter(|c| c.stamp == stamp && c.local == local && c.read_at.elapsed() < MAX_COPY_AGE)?;
        Some(Some(copy.row.clone()).filter(|row| self.is_fresh(row)).map(|row| row.tok))
    }

    /// Forgets the copy of `appid`: after this process wrote the row, or
    /// when the copy handed out a token WeChat had just refused.
    fn forget(&self, appid: &str) {
        let mut copies = self.copies.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        self.local.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        copies.remove(appid);
    }

    /// PostgreSQL: the row lock makes every other process wait for this
    /// transaction, then see the token it wrote.
    async fn refresh_under_row_lock<F, Fut>(&self, appid: &str, fetch: F) -> Result<String, WechatError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Fetched, WechatError>>,
    {
        let txn = self.db.begin().await?;
        insert_placeholder(&txn, appid).await?;
        let row = actok::Entity::find()
            .filter(actok::Column::Appid.eq(appid))
            .lock_exclusive()
            .one(&txn)
            .await?
            .ok_or_else(|| sea_orm::DbErr::RecordNotFound(format!("actok row of {appid} after inserting it")))?;
        if self.is_fresh(&row) {
            txn.commit().await?;
            return Ok(row.tok);
        }
        // An error drops the transaction, which rolls back and frees the row.
        let fetched = fetch().await?;
        write_token(&txn, appid, None, &fetched).await?;
        note_refresher(&txn, appid).await?;
        txn.commit().await?;
        Ok(fetched.token)
    }

    /// SQLite: whoever takes the lease refreshes; the others poll until the
    /// new token appears or the lease runs out (then one of them takes it).
    async fn refresh_under_lease<F, Fut>(&self, appid: &str, fetch: F) -> Result<String, WechatError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Fetched, WechatError>>,
    {
        let deadline = tokio::time::Instant::now() + self.lease * 2;
        loop {
            if let Some(token) = self.read_fresh(appid).await? {
                return Ok(token);
            }
            if let Some(lease) = self.take_lease(appid).await? {
                let result = self.refresh_holding_lease(appid, fetch).await;
                self.release_lease(&lease).await;
                return result;
            }
            if tokio::time::Instant::now() > deadline {
                return Err(sea_orm::DbErr::Custom(format!(
                    "another process has been refreshing the access token of {appid} for over {:?}",
                    self.lease * 2
                ))
                .into());
            }
            tokio::time::sleep(LEASE_POLL).await;
        }
    }

    async fn refresh_holding_lease<F, Fut>(&self, appid: &str, fetch: F) -> Result<String, WechatError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Fetched, WechatError>>,
    {
        // The previous lease holder may have finished just before we took it.
        let seen = self.read(&self.db, appid).await?;
        if let Some(row) = seen.as_ref().filter(|row| self.is_fresh(row)) {
            return Ok(row.tok.clone());
        }
        let fetched = fetch().await?;
        if self.publish(appid, seen.as_ref().map(|row| row.tok.as_str()), &fetched).await? {
            note_refresher(&self.db, appid).await?;
            return Ok(fetched.token);
        }
        // Someone else published first: use the winner's token, so every
        // process converges on one.
        Ok(self.read_fresh(appid).await?.unwrap_or(fetched.token))
    }

    /// Compare-and-set: writes `fetched` only if the row still holds `seen`
    /// (or, with no row yet, only if nobody inserted one meanwhile).
    async fn publish(&self, appid: &str, seen: Option<&str>, fetched: &Fetched) -> Result<bool, WechatError> {
        match seen {
            Some(seen) => write_token(&self.db, appid, Some(seen), fetched).await,
            None => {
                let expires = expiry(fetched);
                let row = new_row(appid, &fetched.token, expires);
                let inserted =
                    actok::Entity::insert(row).on_conflict_do_nothing_on([actok::Column::Appid]).exec_without_returning(&self.db).await?;
                Ok(matches!(inserted, TryInsertResult::Inserted(n) if n > 0))
            }
        }
    }

    /// Takes the SQLite refresh lease of `appid` unless a live one exists.
    /// The value is `<until, ms since epoch>:<owner>`; SQLite's CAST reads
    /// the leading number, so one conditional upsert both checks and takes.
    async fn take_lease(&self, appid: &str) -> Result<Option<Lease>, WechatError> {
        let now = Utc::now().timestamp_millis();
        let until = now + self.lease.as_millis() as i64;
        let lease = Lease { key: format!("actok_refresh:{appid}"), value: format!("{until}:{}", hex::encode(rand::random::<[u8; 8]>())) };
        let mut sql = Sql::new("INSERT INTO wxnotify_meta (key, value) VALUES (");
        sql.bind(lease.key.clone()).push(", ").bind(lease.value.clone());
        sql.push(") ON CONFLICT (key) DO UPDATE SET value = excluded.value WHERE CAST(wxnotify_meta.value AS INTEGER) < ").bind(now);
        let taken = sql.execute(&self.db).await?;
        Ok((taken > 0).then_some(lease))
    }

    async fn release_lease(&self, lease: &Lease) {
        let mut sql = Sql::new("DELETE FROM wxnotify_meta WHERE key = ");
        sql.bind(lease.key.clone()).push(" AND value = ").bind(lease.value.clone());
        let released = sql.execute(&self.db).await;
        if let Err(e) = released {
            // Harmless beyond a delay: the lease runs out by itself.
            tracing::warn!(error = %e, key = lease.key, "could not release the token refresh lease");
        }
    }
}

/// The async mutex of `appid` in `locks`, made on first use.
fn lock_in(locks: &Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>, appid: &str) -> Arc<tokio::sync::Mutex<()>> {
    // A poisoned map only means another thread panicked mid-insert; the
    // map itself is still sound.
    let mut locks = locks.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    locks.entry(appid.to_string()).or_default().clone()
}

struct Lease {
    key: String,
    value: String,
}

fn expiry(fetched: &Fetched) -> DateTime<Utc> {
    Utc::now() + chrono::Duration::seconds(fetched.expires_in)
}

fn new_row(appid: &str, token: &str, expiredtime: DateTime<Utc>) -> actok::ActiveModel {
    let now = Utc::now();
    actok::ActiveModel {
        appid: Set(appid.to_string()),
        tok: Set(token.to_string()),
        expiredtime: Set(expiredtime),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
}

/// An empty, long-expired row, so `FOR UPDATE` has something to lock.
async fn insert_placeholder(db: &impl ConnectionTrait, appid: &str) -> Result<(), WechatError> {
    actok::Entity::insert(new_row(appid, "", DateTime::<Utc>::UNIX_EPOCH))
        .on_conflict_do_nothing_on([actok::Column::Appid])
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// Writes the token; with `only_if`, only when the row still holds that one.
/// The key under which `wxnotify_meta` says which process last refreshed
/// `appid`'s token (shown on the console; the token itself never is).
pub fn refresher_key(appid: &str) -> String {
    format!("token_refreshed_by:{appid}")
}

async fn note_refresher(db: &impl ConnectionTrait, appid: &str) -> Result<(), WechatError> {
    Ok(crate::db::meta_put(db, &refresher_key(appid), &crate::db::process_identity()).await?)
}

async fn write_token(db: &impl ConnectionTrait, appid: &str, only_if: Option<&str>, fetched: &Fetched) -> Result<bool, WechatError> {
    let mut update = actok::Entity::update_many()
        .col_expr(actok::Column::Tok, Expr::value(fetched.token.clone()))
        .col_expr(actok::Column::Expiredtime, Expr::value(expiry(fetched)))
        .col_expr(actok::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(actok::Column::Appid.eq(appid));
    if let Some(seen) = only_if {
        update = update.filter(actok::Column::Tok.eq(seen));
    }
    Ok(update.exec(db).await?.rows_affected > 0)
}
