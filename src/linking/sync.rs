//! `syncFollowers`: the whole follower list, made into links.
//!
//! 1. Take the `follower_sync` lease (a second sync is refused with
//!    [`LinkError::SyncRunning`]).
//! 2. List: pages of `user/get` one after another, each page's openids to
//!    `batchget` in chunks of 100, `WXNOTIFY_WECHAT_CONCURRENCY` calls at
//!    once; paging runs up to [`PAGES_AHEAD`] pages ahead of the batchgets,
//!    so they never wait for it. Users arrive on a channel and are written
//!    to `follower_sync_stage` in multi-row statements while WeChat is still
//!    answering, each a twentieth of the followers (5,000 to 50,000 users).
//! 3. Applying, in one transaction of set-based statements: upsert
//!    `oa_follower` from the stage, link accounts by the `unionid` column and
//!    by the login map, clear links of followers no longer listed, mark those
//!    followers unsubscribed, count, empty the stage.
//!
//!    On SQLite that transaction starts after the last page (a writer there
//!    locks the whole database). On PostgreSQL it starts with the listing:
//!    each staged batch is upserted and linked as it arrives, inside the
//!    transaction, so WeChat's latency hides the row writes and only the
//!    clearing, marking and counting wait for the last page. Rows it wrote
//!    stay locked until the commit: a callback about one of them waits for
//!    the sync and then wins over it.
//!
//! A failure anywhere before the commit leaves every link and follower as it
//! was (the stage is emptied). Events the callback handles while a sync runs
//! win over the listing: a follower who (un)followed after the listing began
//! is neither cleared nor re-linked by it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use sea_orm::{DatabaseConnection, DatabaseTransaction, DbErr, TransactionTrait};
use tokio::sync::mpsc;

use super::LinkError;
use super::lease::Lease;
use super::store::map_unionid;
use crate::db::DatabaseKind;
use crate::db::sql::Sql;
use crate::services::Services;
use crate::wechat::{UserInfo, WechatClient, WechatError, count_calls_into};

/// The lease key in `wxnotify_meta`.
pub const SYNC_LEASE: &str = "follower_sync";
/// How long the lease lasts without renewal (renewed every third of it).
const LEASE_TTL: Duration = Duration::from_secs(60);
/// Fewest users per insert into the stage. Few, large statements keep the
/// writer well ahead of WeChat (on PostgreSQL every statement costs a round
/// trip, and one of 2,000 users often waited 40 ms more in TCP); the last
/// one, written after the listing ends, stays quick.
const STAGE_CHUNK: usize = 5000;
/// Most users per insert: what the writer may hold, with as many again
/// waiting in the channel from the batchgets.
const MAX_STAGE_CHUNK: usize = 50_000;
/// Batches a large sync is cut into ([`stage_chunk`]).
const BATCHES_PER_SYNC: u64 = 20;
/// Listing pages held while the batchgets catch up (10,000 openids each).
pub const PAGES_AHEAD: usize = 8;
/// Most openids one `batchget` takes.
const BATCH: usize = crate::wechat::followers::BATCHGET_LIMIT;

/// What one sync did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SyncReport {
    /// Followers listed (who follow now).
    pub followers: u64,
    /// Accounts linked to a listed follower after the sync.
    pub matched: u64,
    /// Accounts whose link this sync set or changed.
    pub updated: u64,
    /// Accounts whose link this sync cleared (their follower left).
    pub cleared: u64,
    /// Listed followers no account is linked to.
    pub unmatched: u64,
    /// HTTP requests sent to WeChat (token fetches and retries included).
    pub api_calls: u64,
    pub duration_ms: u64,
}

/// Where a running sync is, for progress bars.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SyncPhase {
    Listing,
    Applying,
}

/// A progress report; `total` is WeChat's follower count (a hint: it moves).
#[derive(Clone, Debug)]
pub struct SyncProgress {
    pub phase: SyncPhase,
    pub listed: u64,
    pub fetched: u64,
    pub total: u64,
}

/// Receives progress reports (called from the sync's tasks).
pub type ProgressFn = Arc<dyn Fn(&SyncProgress) + Send + Sync>;

/// Runs one follower sync. See the module docs for the steps.
pub async fn sync_followers(services: &Services, progress: Option<ProgressFn>) -> Result<SyncReport, LinkError> {
    let started = Instant::now();
    let kind = services.settings.database_kind;
    let lease = Lease::try_take(&services.db, kind, SYNC_LEASE, LEASE_TTL).await?.ok_or(LinkError::SyncRunning)?;
    tracing::info!("follower sync: started");
    let mut result = run(services, &lease, progress).await;
    if let Ok(report) = &mut result {
        report.duration_ms = started.elapsed().as_millis() as u64;
        // Kept while the lease is held, so no other sync's record interleaves.
        if let Err(e) = remember(&services.db, report).await {
            tracing::warn!(error = %e, "follower sync: done, but its report could not be kept for the console");
        }
    }
    if result.is_err() {
        // The stage holds nothing anyone else reads; empty it for the next sync.
        if let Err(e) = Sql::new("DELETE FROM follower_sync_stage").execute(&services.db).await {
            tracing::warn!(error = %e, "follower sync: could not empty the stage; the next sync will");
        }
    }
    lease.release().await;
    let outcome = match &result {
        Ok(_) => "ok",
        Err(LinkError::Stopping | LinkError::LeaseLost) => "interrupted",
        Err(_) => "failed",
    };
    ::metrics::counter!("wxnotify_follower_syncs_total", "outcome" => outcome).increment(1);
    ::metrics::histogram!("wxnotify_follower_sync_duration_seconds").record(started.elapsed().as_secs_f64());
    let report = result?;
    ::metrics::gauge!("wxnotify_followers").set(report.followers as f64);
    tracing::info!(?report, "follower sync: done");
    Ok(report)
}

/// Where the last finished syncs are kept (newest first), however they were
/// started (request, job or `wxnotify sync`), for the console.
pub const RECENT_SYNCS_KEY: &str = "follower_sync:recent";
/// How many finished syncs are kept.
pub const RECENT_SYNCS_KEPT: usize = 10;

/// Keeps `report` among the recent syncs. The caller holds the sync lease
/// (one sync runs at a time), so this read-modify-write cannot interleave
/// with another sync's.
async fn remember(db: &sea_orm::DatabaseConnection, report: &SyncReport) -> Result<(), sea_orm::DbErr> {
    let mut recent: Vec<serde_json::Value> =
        crate::db::meta_get(db, RECENT_SYNCS_KEY).await?.and_then(|text| serde_json::from_str(&text).ok()).unwrap_or_default();
    let mut entry = serde_json::to_value(report).unwrap_or_default();
    entry["at"] = serde_json::json!(chrono::Utc::now());
    entry["by"] = serde_json::json!(crate::db::process_identity());
    recent.insert(0, entry);
    recent.truncate(RECENT_SYNCS_KEPT);
    crate::db::meta_put(db, RECENT_SYNCS_KEY, &serde_json::Value::Array(recent).to_string()).await
}

async fn run(services: &Services, lease: &Lease, progress: Option<ProgressFn>) -> Result<SyncReport, LinkError> {
    let db = &services.db;
    let kind = services.settings.database_kind;
    let listing_started = Utc::now();
    // Left over only by a sync that crashed; we hold the lease, so it is ours to clear.
    Sql::new("DELETE FROM follower_sync_stage").execute(db).await?;
    let calls = Arc::new(AtomicU64::new(0));
    let reporter = Reporter { progress, listed: AtomicU64::new(0), fetched: AtomicU64::new(0), total: AtomicU64::new(0) };
    let reporter = Arc::new(reporter);
    let stage = match kind {
        DatabaseKind::Postgres => {
            let txn = db.begin().await?;
            // Every batch runs the same statement; its plan does not depend
            // on the values (index probes per user), so plan it once rather
            // than for each of a million followers' 200 batches.
            Sql::new("SET LOCAL plan_cache_mode = force_generic_plan").execute(&txn).await?;
            Stage::Applying { txn, listing_started, now: Utc::now(), done: Applied::default() }
        }
        DatabaseKind::Sqlite => Stage::Deferred(kind),
    };
    // A stopping server abandons the listing: nothing has changed yet (the
    // transaction of an incremental apply is dropped, so rolled back).
    let stage = tokio::select! {
        staged = stage_listing(services, stage, calls.clone(), reporter.clone()) => staged?,
        _ = services.stopping.cancelled() => return Err(LinkError::Stopping),
    };
    if lease.is_lost() {
        return Err(LinkError::LeaseLost);
    }
    reporter.report(SyncPhase::Applying);
    tracing::info!(listed = reporter.listed.load(Ordering::Relaxed), "follower sync: listing complete; applying");
    let mut report = match stage {
        Stage::Deferred(_) => apply(db.begin().await?, kind, lease, listing_started, Utc::now(), None).await?,
        Stage::Applying { txn, listing_started, now, done } => apply(txn, kind, lease, listing_started, now, Some(done)).await?,
    };
    report.api_calls = calls.load(Ordering::Relaxed);
    Ok(report)
}

/// Where staged users go.
enum Stage {
    /// SQLite: into the stage only; applied after the last page.
    Deferred(DatabaseKind),
    /// PostgreSQL: into the stage, and each batch upserted and linked at
    /// once inside `txn`.
    Applying { txn: DatabaseTransaction, listing_started: DateTime<Utc>, now: DateTime<Utc>, done: Applied },
}

/// What the batches applied during the listing did, so far.
#[derive(Clone, Copy, Debug, Default)]
struct Applied {
    followers_upserted: u64,
    linked: u64,
    batches: u64,
    ms: u64,
    /// Of `ms`: the stage writes and the batch statements, each summed
    /// (they run side by side).
    ms_staging: u64,
    ms_statement: u64,
}

impl Stage {
    async fn write(&mut self, db: &DatabaseConnection, users: &[UserInfo]) -> Result<(), DbErr> {
        match self {
            Stage::Deferred(kind) => write_stage(db, *kind, &json_rows(users)).await,
            Stage::Applying { txn, listing_started, now, done } => {
                if users.is_empty() {
                    return Ok(());
                }
                let started = Instant::now();
                // The stage is written beside the transaction, on a connection
                // of its own: the two use both cores, and a failure empties it.
                let rows = json_rows(users);
                let staging = async {
                    write_stage(db, DatabaseKind::Postgres, &rows).await?;
                    Ok::<_, DbErr>(started.elapsed())
                };
                let applying = async {
                    let row = apply_batch(&rows, *listing_started, *now)
                        .one(&*txn)
                        .await?
                        .ok_or_else(|| DbErr::RecordNotFound("the applied batch's counts".into()))?;
                    Ok::<_, DbErr>((row, started.elapsed()))
                };
                let (staged_in, (row, applied_in)) = futures::try_join!(staging, applying)?;
                done.ms_staging += staged_in.as_millis() as u64;
                done.ms_statement += applied_in.as_millis() as u64;
                let count = |column: &str| row.try_get::<i64>("", column).map(|n| n.max(0) as u64);
                done.followers_upserted += count("followers")?;
                done.linked += count("by_column")? + count("by_map")?;
                done.batches += 1;
                done.ms += started.elapsed().as_millis() as u64;
                Ok(())
            }
        }
    }
}

/// Counts and forwards progress.
struct Reporter {
    progress: Option<ProgressFn>,
    listed: AtomicU64,
    fetched: AtomicU64,
    total: AtomicU64,
}

impl Reporter {
    fn report(&self, phase: SyncPhase) {
        if let Some(progress) = &self.progress {
            let load = |n: &AtomicU64| n.load(Ordering::Relaxed);
            progress(&SyncProgress { phase, listed: load(&self.listed), fetched: load(&self.fetched), total: load(&self.total) });
        }
    }
}

/// Lists every follower into the stage: the WeChat calls and the database
/// writes run side by side, joined by a bounded channel; the first failure
/// of either stops both.
async fn stage_listing(services: &Services, mut stage: Stage, calls: Arc<AtomicU64>, reporter: Arc<Reporter>) -> Result<Stage, LinkError> {
    // Room for a whole batch of answers while the writer applies the one before.
    let (tx, mut rx) = mpsc::channel::<Vec<UserInfo>>(MAX_STAGE_CHUNK / BATCH);
    let listing = list(services.wechat.clone(), services.settings.wechat_concurrency.max(1), tx, reporter.clone());
    let listing = async { count_calls_into(calls, listing).await.map_err(LinkError::from) };
    let writing = async {
        let mut pending: Vec<UserInfo> = Vec::with_capacity(STAGE_CHUNK * 2);
        while let Some(users) = rx.recv().await {
            // Someone who left between user/get and batchget is not a follower.
            pending.extend(users.into_iter().filter(|u| u.subscribe));
            // The first page, which every answer comes from, said the total.
            let chunk = stage_chunk(reporter.total.load(Ordering::Relaxed));
            while pending.len() >= chunk {
                let rest = pending.split_off(chunk);
                stage.write(&services.db, &pending).await?;
                pending = rest;
            }
        }
        stage.write(&services.db, &pending).await?;
        Ok::<_, LinkError>(())
    };
    futures::try_join!(listing, writing)?;
    Ok(stage)
}

/// Users per batch for a sync of `total` followers: a twentieth of them,
/// from [`STAGE_CHUNK`] to [`MAX_STAGE_CHUNK`]. On PostgreSQL each batch is
/// applied at once, and its cost is mostly the index pages it writes to
/// (`oa_follower`'s and `account`'s keys are random, so a batch of 5,000
/// touches about as many leaf pages once an index outgrows that): batches
/// that grow with the follower count write each page for more rows, so a
/// million followers cost ten times a hundred thousand, not seventeen.
fn stage_chunk(total: u64) -> usize {
    usize::try_from(total / BATCHES_PER_SYNC).unwrap_or(MAX_STAGE_CHUNK).clamp(STAGE_CHUNK, MAX_STAGE_CHUNK)
}

/// Lists every follower and sends each `batchget` answer on `users`; the
/// first WeChat failure ends the listing with that error.
///
/// Paging runs ahead of the batchgets (up to [`PAGES_AHEAD`] pages held):
/// the next page is asked for as soon as the last one arrives, so the
/// batchgets never wait for `user/get`.
/// Batchgets finish in any order (the stage does not care), so one slow
/// answer holds up none of the others.
async fn list(
    wechat: WechatClient,
    concurrency: usize,
    users: mpsc::Sender<Vec<UserInfo>>,
    reporter: Arc<Reporter>,
) -> Result<(), WechatError> {
    let (pages_tx, pages_rx) = mpsc::channel::<Vec<String>>(PAGES_AHEAD);
    let paging = page_through(wechat.clone(), pages_tx, reporter.clone());
    let fetching = fetch_users(wechat, concurrency, pages_rx, users, reporter);
    futures::try_join!(paging, fetching).map(|_| ())
}

/// Walks `user/get` from the first page to the last, sending each page's
/// openids on `pages`.
async fn page_through(wechat: WechatClient, pages: mpsc::Sender<Vec<String>>, reporter: Arc<Reporter>) -> Result<(), WechatError> {
    let mut cursor: Option<String> = None;
    loop {
        let page = wechat.follower_page(cursor.as_deref()).await?;
        reporter.total.store(page.total, Ordering::Relaxed);
        let listed = reporter.listed.fetch_add(page.openids.len() as u64, Ordering::Relaxed) + page.openids.len() as u64;
        tracing::info!(listed, total = page.total, "follower sync: listed a page");
        reporter.report(SyncPhase::Listing);
        cursor = page.next().map(str::to_string);
        // A closed channel: the batchgets failed, and their error is the one to report.
        if pages.send(page.openids).await.is_err() || cursor.is_none() {
            return Ok(());
        }
    }
}

/// Sends `batchget` for every page's openids, `concurrency` calls at once,
/// and each answer on `users`.
async fn fetch_users(
    wechat: WechatClient,
    concurrency: usize,
    pages: mpsc::Receiver<Vec<String>>,
    users: mpsc::Sender<Vec<UserInfo>>,
    reporter: Arc<Reporter>,
) -> Result<(), WechatError> {
    let pages = futures::stream::unfold(pages, |mut pages| async move { pages.recv().await.map(|page| (page, pages)) });
    let chunks = pages.flat_map(|openids| futures::stream::iter(openids.chunks(BATCH).map(<[String]>::to_vec).collect::<Vec<_>>()));
    let mut answers = std::pin::pin!(
        chunks
            .map(|chunk| {
                let wechat = wechat.clone();
                async move { wechat.user_info_batch(&chunk).await }
            })
            .buffer_unordered(concurrency)
    );
    while let Some(batch) = answers.try_next().await? {
        reporter.fetched.fetch_add(batch.len() as u64, Ordering::Relaxed);
        reporter.report(SyncPhase::Listing);
        if users.send(batch).await.is_err() {
            // The writer stopped (it failed); its error is the one to report.
            break;
        }
    }
    Ok(())
}

/// One insert into the stage of the users in `rows` ([`json_rows`]), passed
/// as a single JSON text parameter and unpacked by the database (far cheaper
/// for PostgreSQL to parse and plan than thousands of bound values).
async fn write_stage(db: &DatabaseConnection, kind: DatabaseKind, rows: &str) -> Result<(), DbErr> {
    if rows == "[]" {
        return Ok(());
    }
    let mut sql = Sql::new("INSERT INTO follower_sync_stage (openid, unionid, subscribe_time) ");
    let rows = sql.param(rows);
    sql.push(&match kind {
        DatabaseKind::Postgres => {
            format!("SELECT x.o, x.u, x.t FROM jsonb_to_recordset(CAST({rows} AS jsonb)) AS x(o text, u text, t timestamptz)")
        }
        // Timestamps go through the same text form the driver writes elsewhere.
        DatabaseKind::Sqlite => {
            format!("SELECT json_extract(value, '$.o'), json_extract(value, '$.u'), json_extract(value, '$.t') FROM json_each({rows}) WHERE TRUE")
        }
    });
    // The list can shift while it is paged, repeating an openid.
    sql.push(" ON CONFLICT (openid) DO NOTHING");
    sql.execute(db).await.map(|_| ())
}

/// `users` as the text of one JSON array of `{o, u, t}` (openid, unionid,
/// subscribe time), written once per batch and bound as text wherever the
/// batch goes.
fn json_rows(users: &[UserInfo]) -> String {
    #[derive(serde::Serialize)]
    struct Row<'a> {
        o: &'a str,
        u: Option<&'a str>,
        t: Option<String>,
    }
    let rows: Vec<Row> = users
        .iter()
        .map(|u| Row {
            o: &u.openid,
            u: u.unionid.as_deref(),
            // The driver's own text form, so SQLite compares like with like.
            t: u.subscribe_time.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false)),
        })
        .collect();
    serde_json::to_string(&rows).unwrap_or_else(|_| "[]".into())
}

/// PostgreSQL, inside the sync's transaction: one batch of users upserted
/// into `oa_follower` and linked by the `unionid` column and the login map,
/// in one statement (the same conditions as [`upsert_followers`],
/// [`link_by_column`] and [`link_by_map`], over the batch instead of the
/// whole stage). Followers whose unsubscribe arrived after the listing began
/// are left out, and the upsert leaves a row such an event wrote meanwhile
/// alone; the final [`drop_left_during_listing`] and [`clear_gone_links`]
/// catch events that arrive later. An openid the listing repeats in a later
/// batch finds its row and link already written and changes nothing.
/// Answers the rows each part wrote.
fn apply_batch(rows: &str, listing_started: DateTime<Utc>, now: DateTime<Utc>) -> Sql {
    let mut sql = Sql::default();
    let rows = sql.param(rows);
    let started = sql.param(listing_started);
    let now = sql.param(now);
    let map_unionid = map_unionid(DatabaseKind::Postgres, "account.oauth2_user_info_map");
    // One probe of oa_follower per user serves both the left-after-start
    // check and the upsert's is-it-changed check. A probe by index, always:
    // the table's statistics predate this transaction's inserts (a first
    // sync of a million followers grows it from nothing), and a hash join
    // over what the planner takes for an empty table would scan the whole
    // of it for every batch.
    sql.push(&format!(
        "WITH batch AS ( \
           SELECT DISTINCT ON (x.o) x.o AS openid, x.u AS unionid, x.t AS subscribe_time, \
                  f.openid IS NOT NULL AND f.unionid IS NOT DISTINCT FROM x.u AND f.subscribed \
                    AND f.subscribe_time IS NOT DISTINCT FROM x.t AS unchanged \
           FROM jsonb_to_recordset(CAST({rows} AS jsonb)) AS x(o text, u text, t timestamptz) \
           LEFT JOIN LATERAL (SELECT * FROM oa_follower f WHERE f.openid = x.o LIMIT 1) f ON TRUE \
           WHERE f.openid IS NULL OR f.subscribed OR f.updated_at < {started}), \
         followers AS ( \
           INSERT INTO oa_follower (created_at, updated_at, openid, unionid, subscribed, subscribe_time) \
           SELECT {now}, {now}, s.openid, s.unionid, TRUE, s.subscribe_time FROM batch s WHERE NOT s.unchanged \
           ON CONFLICT (openid) DO UPDATE SET unionid = excluded.unionid, subscribed = TRUE, \
             subscribe_time = excluded.subscribe_time, updated_at = excluded.updated_at \
           WHERE oa_follower.subscribed OR oa_follower.updated_at < {started} \
           RETURNING 1), \
         by_column AS ( \
           UPDATE account SET oaopenid = s.openid, updated_at = {now} FROM batch s \
           WHERE s.unionid = account.unionid AND account.oaopenid IS DISTINCT FROM s.openid RETURNING 1), \
         by_map AS ( \
           UPDATE account SET unionid = s.unionid, oaopenid = s.openid, updated_at = {now} FROM batch s \
           WHERE account.unionid IS NULL AND s.unionid = {map_unionid} RETURNING 1) \
         SELECT (SELECT count(*) FROM followers) AS followers, (SELECT count(*) FROM by_column) AS by_column, \
                (SELECT count(*) FROM by_map) AS by_map"
    ));
    sql
}

/// Applies the listing in `txn`: all of it (`done` is `None`), or what the
/// batches applied during the listing (`done`) left: the clearing, marking
/// and counting.
async fn apply(
    txn: DatabaseTransaction,
    kind: DatabaseKind,
    lease: &Lease,
    listing_started: DateTime<Utc>,
    now: DateTime<Utc>,
    done: Option<Applied>,
) -> Result<SyncReport, LinkError> {
    // A write first: SQLite takes its write lock now rather than failing to
    // upgrade a read later, and PostgreSQL locks the lease row until commit.
    let mut hold = Sql::new("UPDATE wxnotify_meta SET value = value WHERE key = ");
    hold.bind(lease.key()).push(" AND value = ").bind(lease.value());
    let held = hold.execute(&txn).await?;
    if held == 0 {
        return Err(LinkError::LeaseLost);
    }
    let clock = Instant::now();
    let mut steps_ms = Vec::with_capacity(7);
    let mut step = |started: Instant| steps_ms.push(started.elapsed().as_millis() as u64);
    if kind == DatabaseKind::Postgres {
        // The stage was empty at the last autovacuum; without fresh
        // statistics the planner joins 100,000 rows as if they were a few.
        Sql::new("ANALYZE follower_sync_stage").execute(&txn).await?;
        if done.is_some() {
            // The batches may have grown it from nothing in this transaction.
            Sql::new("ANALYZE oa_follower").execute(&txn).await?;
        }
    }
    let t = Instant::now();
    drop_left_during_listing(listing_started).execute(&txn).await?;
    step(t);
    let (followers_upserted, linked) = match done {
        Some(done) => (done.followers_upserted, done.linked),
        None => {
            let t = Instant::now();
            let upserted = upsert_followers(now).execute(&txn).await?;
            step(t);
            let t = Instant::now();
            let by_column = link_by_column(now).execute(&txn).await?;
            step(t);
            let t = Instant::now();
            let by_map = link_by_map(kind, now).execute(&txn).await?;
            step(t);
            (upserted, by_column + by_map)
        }
    };
    let t = Instant::now();
    let cleared = clear_gone_links(now, listing_started).execute(&txn).await?;
    step(t);
    let t = Instant::now();
    let gone = mark_gone_followers(now, listing_started).execute(&txn).await?;
    step(t);
    let counts = Sql::new(COUNTS).one(&txn).await?.ok_or_else(|| DbErr::RecordNotFound("the sync's counts".into()))?;
    let count = |column: &str| counts.try_get::<i64>("", column).map(|n| n.max(0) as u64);
    let report = SyncReport {
        followers: count("followers")?,
        matched: count("matched")?,
        updated: linked,
        cleared,
        unmatched: count("unmatched")?,
        ..SyncReport::default()
    };
    Sql::new(empty_stage(kind)).execute(&txn).await?;
    txn.commit().await?;
    let apply_ms = clock.elapsed().as_millis() as u64;
    let during_listing = done.unwrap_or_default();
    tracing::info!(
        followers_upserted,
        followers_gone = gone,
        linked = report.updated,
        cleared,
        apply_ms,
        ?steps_ms,
        batches_applied_while_listing = during_listing.batches,
        ms_applying_while_listing = during_listing.ms,
        ms_staging_while_listing = during_listing.ms_staging,
        ms_batch_statements_while_listing = during_listing.ms_statement,
        "follower sync: applied"
    );
    Ok(report)
}

/// Followers whose unsubscribe arrived after the listing began are not
/// followers, whatever the listing saw: out of the stage with them.
fn drop_left_during_listing(listing_started: DateTime<Utc>) -> Sql {
    let mut sql =
        Sql::new("DELETE FROM follower_sync_stage WHERE openid IN (SELECT openid FROM oa_follower WHERE NOT subscribed AND updated_at >= ");
    sql.bind(listing_started).push(")");
    sql
}

/// New and changed followers from the stage; unchanged ones are left out
/// before the upsert (PostgreSQL would lock and rewrite every conflicting
/// row otherwise).
fn upsert_followers(now: DateTime<Utc>) -> Sql {
    let mut sql = Sql::default();
    let now = sql.param(now);
    sql.push(&format!(
        "INSERT INTO oa_follower (created_at, updated_at, openid, unionid, subscribed, subscribe_time) \
         SELECT {now}, {now}, s.openid, s.unionid, TRUE, s.subscribe_time \
         FROM follower_sync_stage s LEFT JOIN oa_follower f ON f.openid = s.openid \
         WHERE f.openid IS NULL OR f.unionid IS DISTINCT FROM s.unionid OR NOT f.subscribed \
            OR f.subscribe_time IS DISTINCT FROM s.subscribe_time \
         ON CONFLICT (openid) DO UPDATE SET unionid = excluded.unionid, subscribed = TRUE, \
         subscribe_time = excluded.subscribe_time, updated_at = excluded.updated_at"
    ));
    sql
}

/// Accounts whose `unionid` column names a listed follower.
fn link_by_column(now: DateTime<Utc>) -> Sql {
    let mut sql = Sql::new("UPDATE account SET oaopenid = s.openid, updated_at = ");
    sql.bind(now).push(" FROM follower_sync_stage s WHERE s.unionid = account.unionid AND account.oaopenid IS DISTINCT FROM s.openid");
    sql
}

/// Accounts known only by their login map's unionId; fills the column too.
fn link_by_map(kind: DatabaseKind, now: DateTime<Utc>) -> Sql {
    let mut sql = Sql::new("UPDATE account SET unionid = s.unionid, oaopenid = s.openid, updated_at = ");
    sql.bind(now).push(" FROM follower_sync_stage s WHERE account.unionid IS NULL AND s.unionid = ");
    sql.push(&map_unionid(kind, "account.oauth2_user_info_map"));
    sql
}

/// Empties the stage (TRUNCATE where it is cheaper and transactional).
fn empty_stage(kind: DatabaseKind) -> &'static str {
    match kind {
        DatabaseKind::Postgres => "TRUNCATE follower_sync_stage",
        DatabaseKind::Sqlite => "DELETE FROM follower_sync_stage",
    }
}

/// Links to followers the listing no longer has, unless the follower was
/// confirmed by a callback after the listing began.
fn clear_gone_links(now: DateTime<Utc>, listing_started: DateTime<Utc>) -> Sql {
    let mut sql = Sql::new("UPDATE account SET oaopenid = NULL, updated_at = ");
    sql.bind(now).push(
        " WHERE oaopenid IS NOT NULL \
         AND NOT EXISTS (SELECT 1 FROM follower_sync_stage s WHERE s.openid = account.oaopenid) \
         AND NOT EXISTS (SELECT 1 FROM oa_follower f WHERE f.openid = account.oaopenid AND f.subscribed AND f.updated_at >= ",
    );
    sql.bind(listing_started).push(")");
    sql
}

/// Followers the listing no longer has, untouched since it began.
fn mark_gone_followers(now: DateTime<Utc>, listing_started: DateTime<Utc>) -> Sql {
    let mut sql = Sql::new("UPDATE oa_follower SET subscribed = FALSE, updated_at = ");
    sql.bind(now).push(" WHERE subscribed AND updated_at < ").bind(listing_started);
    sql.push(" AND NOT EXISTS (SELECT 1 FROM follower_sync_stage s WHERE s.openid = oa_follower.openid)");
    sql
}

const COUNTS: &str = "SELECT \
    (SELECT count(*) FROM follower_sync_stage) AS followers, \
    (SELECT count(*) FROM account a WHERE a.oaopenid IN (SELECT openid FROM follower_sync_stage)) AS matched, \
    (SELECT count(*) FROM follower_sync_stage s WHERE NOT EXISTS (SELECT 1 FROM account a WHERE a.oaopenid = s.openid)) AS unmatched";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sync_is_cut_into_twenty_batches_of_five_to_fifty_thousand_users() {
        assert_eq!(stage_chunk(0), STAGE_CHUNK);
        assert_eq!(stage_chunk(100_000), 5_000);
        assert_eq!(stage_chunk(300_000), 15_000);
        assert_eq!(stage_chunk(1_000_000), 50_000);
        assert_eq!(stage_chunk(u64::MAX), MAX_STAGE_CHUNK);
        // The channel holds a whole batch of batchget answers.
        assert_eq!(MAX_STAGE_CHUNK % BATCH, 0);
    }
}
