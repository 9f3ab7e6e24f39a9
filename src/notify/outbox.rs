//! The outbox: every message is a `delivery` row before it is a WeChat call.
//!
//! A row's life: PENDING (written with a unique `dedupe_key`, so the same
//! message can never be queued twice) → SENDING (claimed by one sender in one
//! atomic UPDATE; PostgreSQL claimers skip each other's rows) → SENT (msgid,
//! sent_at), IN_REVIEW (40252: WeChat's report, or its list of intercepted
//! messages, settles it; never sent again), FAILED (errcode, errmsg) or
//! SKIPPED (the reason in errmsg). A message WeChat would refuse (checked
//! against the synced template) is written FAILED at once and never sent.
//! Claims run ahead of the sends and outcomes are recorded in batches while
//! sends go on (`pipeline`), and the errcode reactions of `docs/wechat.md`
//! applied in bulk: 43004 unlinks the account and marks the follower
//! unsubscribed, 40003 unlinks, 45009 / 45011 / a busy WeChat stop the run
//! and put the rows claimed but not sent back to PENDING, so a later run
//! (or the next server start) finishes the rest. A digest is shared: every
//! running server helps send it ([`deliver_shared`], [`help`]).
//!
//! What a crash leaves behind, and how every row still ends exact:
//! - PENDING rows were never sent: [`recover`] sends them on the next start.
//! - A SENDING row is held by a lease: its sender names itself in
//!   `lease_owner` and renews `lease_until` with a heartbeat
//!   ([`renew_leases`]) while the send is in flight. When the lease lapses
//!   (the process died, or it could not record the outcome), any server's
//!   sweep settles the row within `WXNOTIFY_DELIVERY_LEASE` plus one sweep.
//! - Such a row, and a send that timed out or lost its connection
//!   mid-request, may or may not have reached WeChat. A service-account
//!   template message carries `client_msg_id` = its dedupe key, and WeChat
//!   sends one message per openid + `client_msg_id` for 10 minutes: inside
//!   `WXNOTIFY_RESEND_WINDOW` of its first send it is sent again with the
//!   same id, and the answer (a msgid, or 45065 naming the earlier msgid)
//!   settles it SENT. Past the window, or on a channel without such an id,
//!   it becomes FAILED with an errmsg starting "outcome unknown" and is
//!   never sent again: a duplicate is worse than a gap for a notification.
//! - An outcome WeChat gave that the database would not take is written
//!   again with bounded retries; if the database stays away longer, the
//!   lease lapses and the rule above settles the row.

use entity::delivery;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use sea_orm::{ConnectionTrait, DbErr, QueryResult};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

pub use crate::delivery::{Channel, Leases, Status};

use crate::db::sql::{Sql, skip_locked};
use crate::services::Services;
use crate::wechat::send::CLIENT_MSG_ID_TOO_FAST;
use crate::wechat::{FormTemplateMessage, OaSubscribeMessage, Reaction, SubscribeMessage, TemplateMessage, WechatClient, WechatError};

/// Renews the lease of every row this process is sending; the heartbeat
/// (see [`super::spawn_heartbeat`]) calls it a few times per lease.
pub async fn renew_leases(services: &Services) -> Result<u64, DbErr> {
    let held = services.leases.held();
    let until = Utc::now() + lease_of(services);
    let mut renewed = 0;
    for chunk in held.chunks(500) {
        let mut sql = Sql::new("UPDATE delivery SET lease_until = ");
        sql.bind(until)
            .push(" WHERE status = ")
            .push(Status::Sending.sql())
            .push(" AND lease_owner = ")
            .bind(services.leases.owner().to_string());
        sql.push(" AND id IN ").list(chunk.iter().copied());
        renewed += sql.execute(&services.db).await?;
    }
    Ok(renewed)
}

fn lease_of(services: &Services) -> chrono::Duration {
    chrono::Duration::from_std(services.settings.delivery_lease).unwrap_or_else(|_| chrono::Duration::seconds(30))
}

/// A message to queue.
#[derive(Clone, Debug)]
pub struct NewDelivery {
    pub account: Option<i64>,
    pub channel: Channel,
    pub touser: String,
    pub template_id: String,
    /// The request body WeChat gets.
    pub payload: Value,
    pub dedupe_key: String,
    /// Why it must not be sent (a value breaks its template's rule): the
    /// row is written FAILED with this errmsg and WeChat is never called.
    pub refused: Option<String>,
    /// What was changed before sending (values cut), kept in `notes`.
    pub notes: Option<String>,
}

impl NewDelivery {
    fn of(account: Option<i64>, channel: Channel, touser: &str, template_id: &str, payload: Value, key: String) -> Self {
        NewDelivery {
            account,
            channel,
            touser: touser.to_string(),
            template_id: template_id.to_string(),
            payload,
            dedupe_key: key,
            refused: None,
            notes: None,
        }
    }

    /// The same row with what checking it against the template found.
    pub fn fitted(mut self, fit: &crate::templates::Fitted) -> Self {
        self.refused = fit.refused.clone();
        self.notes = fit.notes.clone();
        self
    }

    pub fn template(account: Option<i64>, message: &TemplateMessage, key: String) -> Self {
        let payload = serde_json::to_value(message).unwrap_or(Value::Null);
        Self::of(account, Channel::OaTemplate, &message.touser, &message.template_id, payload, key)
    }

    pub fn oa_subscribe(account: Option<i64>, message: &OaSubscribeMessage, key: String) -> Self {
        let payload = serde_json::to_value(message).unwrap_or(Value::Null);
        Self::of(account, Channel::OaSubscribe, &message.touser, &message.template_id, payload, key)
    }

    pub fn subscribe(account: Option<i64>, message: &SubscribeMessage, key: String) -> Self {
        let payload = serde_json::to_value(message).unwrap_or(Value::Null);
        Self::of(account, Channel::MpSubscribe, &message.touser, &message.template_id, payload, key)
    }

    pub fn form(account: Option<i64>, message: &FormTemplateMessage, key: String) -> Self {
        let payload = serde_json::to_value(message).unwrap_or(Value::Null);
        Self::of(account, Channel::MpForm, &message.touser, &message.template_id, payload, key)
    }
}

/// Rows per INSERT: 8 parameters each, far below either database's limit
/// (32,766 for SQLite, 65,535 for PostgreSQL). SQLite looks each `$N` up
/// among the statement's names one by one, so its cost grows with the
/// square of the rows: 4,000 rows took 1.34 s in statements of 1,000 and
/// 0.26–0.32 s in statements of 100 (see docs/performance.md).
/// PostgreSQL pays per statement (and per commit) instead: 40 statements
/// of 100 took 2.0 s there, 4 of 1,000 0.40–0.47 s.
pub fn insert_chunk(db: &impl ConnectionTrait) -> usize {
    match crate::db::DatabaseKind::of(db) {
        crate::db::DatabaseKind::Sqlite => 100,
        crate::db::DatabaseKind::Postgres => 1000,
    }
}

/// Queues `rows`; a row whose `dedupe_key` exists already is left as it is.
/// Returns, for every row, the id of its delivery and whether it is still
/// PENDING (false: an earlier attempt already handled that key).
///
/// One statement per [`insert_chunk`] rows: the INSERT returns the rows it
/// wrote (PENDING, or FAILED when refused); only the keys it skipped, which
/// an earlier attempt queued, are read back.
pub async fn enqueue(db: &impl ConnectionTrait, rows: &[NewDelivery]) -> Result<Vec<(i64, bool)>, DbErr> {
    let mut out = Vec::with_capacity(rows.len());
    for chunk in rows.chunks(insert_chunk(db)) {
        let mut found: HashMap<String, (i64, bool)> = HashMap::with_capacity(chunk.len());
        for row in insert(db, chunk).await? {
            let key: String = row.try_get("", "dedupe_key")?;
            let pending = row.try_get::<String>("", "status")? == Status::Pending.as_str();
            found.insert(key, (row.try_get("", "id")?, pending));
        }
        let skipped: Vec<String> = chunk.iter().filter(|r| !found.contains_key(&r.dedupe_key)).map(|r| r.dedupe_key.clone()).collect();
        if !skipped.is_empty() {
            let mut sql = Sql::new("SELECT id, status, dedupe_key FROM delivery WHERE dedupe_key IN ");
            sql.list(skipped);
            for row in sql.all(db).await? {
                let pending = row.try_get::<String>("", "status")? == Status::Pending.as_str();
                found.insert(row.try_get("", "dedupe_key")?, (row.try_get("", "id")?, pending));
            }
        }
        for row in chunk {
            let entry = found.get(&row.dedupe_key).copied();
            out.push(entry.ok_or_else(|| DbErr::Custom(format!("delivery {} vanished right after it was queued", row.dedupe_key)))?);
        }
    }
    Ok(out)
}

/// Inserts `rows`, skipping keys already queued; returns the rows written.
async fn insert(db: &impl ConnectionTrait, rows: &[NewDelivery]) -> Result<Vec<QueryResult>, DbErr> {
    let now = Utc::now();
    let mut sql = Sql::new(
        "INSERT INTO delivery (created_at, updated_at, account_account, channel, touser, template_id, payload, dedupe_key, status, attempts, errmsg, notes) VALUES ",
    );
    let now_p = sql.param(now);
    for (i, row) in rows.iter().enumerate() {
        sql.push(if i > 0 { ", (" } else { "(" });
        sql.push(&format!("{now_p}, {now_p}, "));
        sql.bind(row.account).push(", ").bind(row.channel.as_str()).push(", ").bind(row.touser.clone()).push(", ");
        sql.bind(row.template_id.clone()).push(", ").bind(row.payload.clone()).push(", ").bind(row.dedupe_key.clone());
        let status = if row.refused.is_some() { Status::Failed } else { Status::Pending };
        sql.push(", ").push(status.sql()).push(", 0, ").bind(row.refused.clone()).push(", ").bind(row.notes.clone()).push(")");
    }
    sql.push(" ON CONFLICT (dedupe_key) DO NOTHING RETURNING id, status, dedupe_key");
    sql.all(db).await
}

/// Which rows a [`deliver`] run may claim.
#[derive(Clone, Debug)]
pub enum Scope {
    /// These rows, when still PENDING.
    Ids(Vec<i64>),
    /// Every PENDING row, oldest first.
    Pending,
}

/// What one run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub sent: u64,
    /// Taken by WeChat for review (40252); the report settles them.
    pub in_review: u64,
    pub failed: u64,
    pub skipped: u64,
    /// Rows left for later: PENDING (after a stop), or SENDING with an
    /// unknown outcome, to be re-sent with their `client_msg_id`.
    pub pending: u64,
    /// Why the run stopped early (quota, rate limit, WeChat busy, settings).
    pub stopped: Option<String>,
}

impl Tally {
    pub fn is_empty(&self) -> bool {
        *self == Tally::default()
    }
}

/// Claims, sends and records the rows of `scope`, `WXNOTIFY_WECHAT_CONCURRENCY`
/// at a time, until done or until WeChat says to stop (see [`pipeline`]).
pub async fn deliver(services: &Services, scope: &Scope) -> Result<Tally, DbErr> {
    let chunk = claim_size(services);
    let source = match scope {
        Scope::Ids(ids) => Source::Ids(ids.chunks(chunk)),
        Scope::Pending => Source::Oldest,
    };
    let run = pipeline(services, source).await?;
    let mut tally = run.tally;
    // What this run did not claim stays PENDING for a later one.
    tally.pending += run.unattempted.len() as u64;
    Ok(tally)
}

/// Rows one claiming statement takes.
pub fn claim_size(services: &Services) -> usize {
    (services.settings.wechat_concurrency * 4).clamp(1, 256)
}

/// Settles rows a dead process left SENDING (see the module doc), then
/// sends the PENDING rows earlier processes left. Runs when a server starts.
pub async fn recover(services: &Services, started: DateTime<Utc>) -> Result<Tally, DbErr> {
    let mut tally = settle_abandoned(services).await?;
    // Only what earlier processes left: work queued since this process
    // started belongs to whoever queued it.
    let leftovers = pending_before(services, delivery::Column::CreatedAt, started, None).await?;
    add(&mut tally, deliver(services, &Scope::Ids(leftovers)).await?);
    Ok(tally)
}

/// Where shared runs are announced: `wxnotify_meta` keys with this prefix.
const SHARED_KEY: &str = "outbox-run:";

/// How long after withdrawing its announcement a run's owner lets claims
/// that read the announcement just before finish committing.
const SHARED_SETTLE: Duration = Duration::from_millis(100);

/// How often the owner of a shared run looks whether the rows other
/// processes hold have settled.
const SHARED_WAIT: Duration = Duration::from_millis(100);

/// A run one process queued and every server process helps send (see
/// [`deliver_shared`] and [`help`]): announced in `wxnotify_meta` under
/// `outbox-run:<prefix>`, the value `<until, ms since epoch>:<owner>:<first
/// id>:<last id>`. Its rows are the deliveries between the two ids whose
/// `dedupe_key` starts with the prefix.
pub struct SharedRun {
    key: String,
    prefix: String,
    owner: String,
    first: i64,
    last: i64,
    until_ms: i64,
}

impl SharedRun {
    fn new(services: &Services, prefix: &str, first: i64, last: i64) -> SharedRun {
        SharedRun {
            key: format!("{SHARED_KEY}{prefix}"),
            prefix: prefix.to_string(),
            owner: services.leases.owner().to_string(),
            first,
            last,
            until_ms: until_ms(services),
        }
    }

    fn value(&self) -> String {
        format!("{}:{}:{}:{}", self.until_ms, self.owner, self.first, self.last)
    }

    fn parse(key: &str, value: &str) -> Option<SharedRun> {
        let prefix = key.strip_prefix(SHARED_KEY)?.to_string();
        let mut parts = value.splitn(4, ':');
        let until_ms = parts.next()?.parse().ok()?;
        let owner = parts.next()?.to_string();
        let first = parts.next()?.parse().ok()?;
        let last = parts.next()?.parse().ok()?;
        Some(SharedRun { key: key.to_string(), prefix, owner, first, last, until_ms })
    }

    /// Which announcement this is, whatever its renewals.
    fn identity(&self) -> String {
        format!("{}={}:{}", self.key, self.owner, self.first)
    }
}

fn until_ms(services: &Services) -> i64 {
    Utc::now().timestamp_millis() + services.settings.delivery_lease.as_millis() as i64
}

/// Announces `run`: false when a live announcement of the same prefix is there.
async fn announce(services: &Services, run: &SharedRun) -> Result<bool, DbErr> {
    let until = match crate::db::DatabaseKind::of(&services.db) {
        // SQLite's CAST reads the leading number and ignores the rest.
        crate::db::DatabaseKind::Sqlite => "CAST(wxnotify_meta.value AS INTEGER)",
        crate::db::DatabaseKind::Postgres => "CAST(split_part(wxnotify_meta.value, ':', 1) AS BIGINT)",
    };
    let mut sql = Sql::new("INSERT INTO wxnotify_meta (key, value) VALUES (");
    sql.bind(run.key.clone()).push(", ").bind(run.value());
    sql.push(&format!(") ON CONFLICT (key) DO UPDATE SET value = excluded.value WHERE {until} < ")).bind(Utc::now().timestamp_millis());
    Ok(sql.execute(&services.db).await? > 0)
}

/// Renews the announcement while `work` runs, every third of a lease.
///
/// The renewal runs beside `work`, never instead of it: `work` is polled
/// while a renewal waits for the database. On SQLite a statement whose
/// rows `work` has not read yet keeps its lock until they are read (a
/// claim's `UPDATE ... RETURNING` holds the write lock), so a renewal
/// awaited while `work` sat unpolled waited for that lock until the
/// pool's timeouts broke the run.
async fn keep_announced<T>(services: &Services, run: &mut SharedRun, work: impl std::future::Future<Output = T>) -> T {
    let every = (services.settings.delivery_lease / 3).max(Duration::from_millis(30));
    let renew = async {
        loop {
            tokio::time::sleep(every).await;
            let before = run.value();
            run.until_ms = until_ms(services);
            let mut sql = Sql::new("UPDATE wxnotify_meta SET value = ");
            sql.bind(run.value()).push(" WHERE key = ").bind(run.key.clone()).push(" AND value = ").bind(before);
            match sql.execute(&services.db).await {
                Ok(1) => {}
                Ok(_) => {
                    tracing::warn!(key = %run.key, "the announcement of a shared delivery run was gone; the other servers stop helping")
                }
                Err(e) => {
                    tracing::warn!(key = %run.key, error = %e, "renewing the announcement of a shared delivery run failed; trying again")
                }
            }
        }
    };
    tokio::select! {
        done = work => done,
        _ = renew => unreachable!("the renewal loop never ends"),
    }
}

async fn withdraw(services: &Services, run: &SharedRun) {
    let mut sql = Sql::new("DELETE FROM wxnotify_meta WHERE key = ");
    sql.bind(run.key.clone()).push(" AND value = ").bind(run.value());
    if let Err(e) = sql.execute(&services.db).await {
        tracing::warn!(key = %run.key, error = %e, "withdrawing the announcement of a shared delivery run failed; it lapses on its own");
    }
}

/// The sending end of a [`Feed`]: what a run queues, handed on as it is
/// queued (see [`deliver_shared`]).
pub struct Feeder {
    tx: tokio::sync::mpsc::UnboundedSender<Vec<i64>>,
    /// Every id handed on.
    all: Vec<i64>,
    /// Ids handed on after the run's own sending had stopped.
    unfed: Vec<i64>,
}

/// The receiving end of a [`Feeder`].
pub struct Feed {
    rx: tokio::sync::mpsc::UnboundedReceiver<Vec<i64>>,
    buffer: std::collections::VecDeque<i64>,
}

/// A [`Feeder`] and the [`Feed`] it hands ids to.
pub fn feed() -> (Feeder, Feed) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    (Feeder { tx, all: Vec::new(), unfed: Vec::new() }, Feed { rx, buffer: Default::default() })
}

impl Feeder {
    /// Hands on PENDING rows just queued; they are sent from now on.
    pub fn send(&mut self, ids: Vec<i64>) {
        if ids.is_empty() {
            return;
        }
        self.all.extend_from_slice(&ids);
        if let Err(back) = self.tx.send(ids) {
            self.unfed.extend(back.0);
        }
    }

    /// How many ids were handed on.
    pub fn len(&self) -> usize {
        self.all.len()
    }

    pub fn is_empty(&self) -> bool {
        self.all.is_empty()
    }
}

/// [`deliver`] for a run every server process helps send, while it is
/// being queued: `producing` queues the run's rows (PENDING, their
/// `dedupe_key` starting with `prefix`) and hands each batch to the
/// [`Feeder`] it was given as soon as it is written; this process sends
/// them from the first batch on, while the rest are read, rendered and
/// queued. When `producing` is done and gives the feeder back, the rows
/// it handed on are announced, so the [`help`] of every other server
/// claims them too, from the newest down, while this process claims them
/// from the oldest up; claims never overlap (each is one atomic UPDATE;
/// PostgreSQL claimers skip each other's rows). When this process's own
/// claims run dry it withdraws the announcement, waits for the rows others
/// hold to settle, sends what they handed back to PENDING (unless the run
/// stopped), and counts the rows it did not send itself from the database:
/// the tally covers every row handed on.
///
/// If `producing` fails, what it handed on is still sent (those rows are
/// queued; a later run would send them anyway), then its error is returned.
pub async fn deliver_shared<T, E>(
    services: &Services,
    prefix: &str,
    feed: Feed,
    producing: impl std::future::Future<Output = Result<(T, Feeder), E>>,
) -> Result<(T, Tally), E>
where
    E: From<DbErr>,
{
    let own_done = tokio::sync::Notify::new();
    let own = async {
        let run = pipeline(services, Source::Feed(feed)).await;
        own_done.notify_one();
        run
    };
    let owner = async {
        let (made, feeder) = producing.await?;
        let Feeder { tx, all, unfed } = feeder;
        // The feed ends: the claims run dry once the last batch is sent.
        drop(tx);
        if let (Some(&first), Some(&last)) = (all.iter().min(), all.iter().max()) {
            let mut run = SharedRun::new(services, prefix, first, last);
            match announce(services, &run).await {
                Ok(true) => {
                    keep_announced(services, &mut run, own_done.notified()).await;
                    withdraw(services, &run).await;
                }
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "could not announce the delivery run to the other servers; sending it alone"),
            }
        }
        Ok::<_, E>((made, unfed))
    };
    let (own, owner) = tokio::join!(own, owner);
    let (made, unfed) = owner?;
    let own = own?;
    let others = own.missed.into_iter().chain(own.unattempted).chain(unfed).collect();
    Ok((made, after_shared(services, own.tally, others).await?))
}

/// The end of a shared run, once this process's own claims ran dry:
/// `others` are the run's rows it did not claim. It waits for the rows
/// other live senders hold to settle, sends what they handed back to
/// PENDING (unless the run stopped), and counts the rest from the database.
async fn after_shared(services: &Services, mut tally: Tally, mut others: std::collections::BTreeSet<i64>) -> Result<Tally, DbErr> {
    if others.is_empty() {
        return Ok(tally);
    }
    let chunk = claim_size(services);
    tokio::time::sleep(SHARED_SETTLE).await;
    for _ in 0..3 {
        wait_for_others(services, &others).await?;
        if tally.stopped.is_some() || services.stopping.is_cancelled() {
            break;
        }
        let again = pending_among(services, &others).await?;
        if again.is_empty() {
            break;
        }
        let run = pipeline(services, Source::Ids(again.chunks(chunk))).await?;
        let not_ours: std::collections::HashSet<i64> = run.missed.iter().chain(&run.unattempted).copied().collect();
        for id in again.iter().filter(|id| !not_ours.contains(id)) {
            others.remove(id);
        }
        add(&mut tally, run.tally);
    }
    add(&mut tally, counted(services, &others).await?);
    Ok(tally)
}

/// Waits until no row of `ids` is held by another live sender.
async fn wait_for_others(services: &Services, ids: &std::collections::BTreeSet<i64>) -> Result<(), DbErr> {
    let mut check: Vec<i64> = ids.iter().copied().collect();
    loop {
        let now = Utc::now();
        let rows = among(services, "waiting for other senders", &check, "", |sql| {
            sql.push("SELECT id FROM delivery WHERE status = ").push(Status::Sending.sql());
            sql.push(" AND lease_owner IS NOT NULL AND lease_owner <> ").bind(services.leases.owner().to_string());
            sql.push(" AND lease_until > ").bind(now).push(" AND ");
        })
        .await?;
        let held = rows.iter().map(|row| row.try_get::<i64>("", "id")).collect::<Result<Vec<_>, _>>()?;
        if held.is_empty() {
            return Ok(());
        }
        // Only the rows still held need another look.
        check = held;
        tokio::time::sleep(SHARED_WAIT).await;
    }
}

/// The rows of `ids` that are PENDING.
async fn pending_among(services: &Services, ids: &std::collections::BTreeSet<i64>) -> Result<Vec<i64>, DbErr> {
    let ids: Vec<i64> = ids.iter().copied().collect();
    let rows = among(services, "reading deliveries handed back", &ids, "", |sql| {
        sql.push("SELECT id FROM delivery WHERE status = ").push(Status::Pending.sql()).push(" AND ");
    })
    .await?;
    let mut out = rows.iter().map(|row| row.try_get::<i64>("", "id")).collect::<Result<Vec<_>, _>>()?;
    out.sort_unstable();
    Ok(out)
}

/// What became of `ids`, from the database, as a tally (SENDING and
/// PENDING rows count as left for later).
async fn counted(services: &Services, ids: &std::collections::BTreeSet<i64>) -> Result<Tally, DbErr> {
    let ids: Vec<i64> = ids.iter().copied().collect();
    let mut tally = Tally::default();
    let rows = among(services, "counting deliveries other servers sent", &ids, " GROUP BY status", |sql| {
        sql.push("SELECT status, count(*) AS n FROM delivery WHERE ");
    })
    .await?;
    for row in rows {
        let n = row.try_get::<i64>("", "n")? as u64;
        match row.try_get::<String>("", "status")?.as_str() {
            s if s == Status::Sent.as_str() => tally.sent += n,
            s if s == Status::InReview.as_str() => tally.in_review += n,
            s if s == Status::Failed.as_str() => tally.failed += n,
            s if s == Status::Skipped.as_str() => tally.skipped += n,
            _ => tally.pending += n,
        }
    }
    Ok(tally)
}

/// Runs `<head>id IN (...)<tail>` over `ids`, [`AMONG_CHUNK`] ids per
/// statement, each with [`persist`]'s retries, and returns every row.
async fn among(
    services: &Services,
    what: &'static str,
    ids: &[i64],
    tail: &str,
    head: impl Fn(&mut Sql),
) -> Result<Vec<QueryResult>, DbErr> {
    let mut out = Vec::new();
    for chunk in ids.chunks(AMONG_CHUNK) {
        let mut sql = Sql::default();
        head(&mut sql);
        sql.push("id IN ").list(chunk.iter().copied()).push(tail);
        out.extend(persist(what, || sql.clone().all(&services.db)).await?);
    }
    Ok(out)
}

/// Most ids one [`among`] statement lists.
const AMONG_CHUNK: usize = 1000;

/// What every server does every little while when `WXNOTIFY_OUTBOX_HELP`
/// is on (see [`super::spawn_sweeper`]): claims and sends the rows of runs
/// other processes announced ([`deliver_shared`]), within this process's
/// own `WXNOTIFY_WECHAT_CONCURRENCY`. `done` holds the announcements this
/// process has finished helping (their claims ran dry or WeChat said to
/// stop); what is left of them is their owner's.
pub async fn help(services: &Services, done: &mut std::collections::HashSet<String>) -> Result<Tally, DbErr> {
    let mut sql = Sql::new("SELECT key, value FROM wxnotify_meta WHERE key LIKE ");
    sql.bind(format!("{SHARED_KEY}%"));
    let rows = sql.all(&services.db).await?;
    let now = Utc::now().timestamp_millis();
    let runs: Vec<SharedRun> = rows
        .iter()
        .filter_map(|r| SharedRun::parse(&r.try_get::<String>("", "key").ok()?, &r.try_get::<String>("", "value").ok()?))
        .collect();
    done.retain(|identity| runs.iter().any(|run| run.identity() == *identity));
    let mut tally = Tally::default();
    for run in runs.iter().filter(|run| run.owner != services.leases.owner() && run.until_ms > now) {
        if services.stopping.is_cancelled() {
            break;
        }
        if !done.insert(run.identity()) {
            continue;
        }
        tracing::info!(run = %run.prefix, owner = %run.owner, "helping another server send its delivery run");
        add(&mut tally, pipeline(services, Source::Shared { run, below: run.last + 1 }).await?.tally);
    }
    Ok(tally)
}

/// Most rows one sweep takes.
const SWEEP_BATCH: u64 = 1000;

/// What every server does every little while (see [`super::spawn_sweeper`]):
/// settles SENDING rows whose lease lapsed and sends PENDING rows nobody
/// has touched for `WXNOTIFY_PENDING_RETRY_AFTER`: those a server put back
/// as it stopped while another was already running (a rolling deploy), or
/// that a run left after a quota stop (then the first send says whether the
/// quota is back).
pub async fn sweep(services: &Services) -> Result<Tally, DbErr> {
    let mut tally = settle_abandoned(services).await?;
    let idle = chrono::Duration::from_std(services.settings.pending_retry_after).unwrap_or_else(|_| chrono::Duration::hours(1));
    let stale = pending_before(services, delivery::Column::UpdatedAt, Utc::now() - idle, Some(SWEEP_BATCH)).await?;
    if !stale.is_empty() {
        add(&mut tally, deliver(services, &Scope::Ids(stale)).await?);
    }
    Ok(tally)
}

fn add(total: &mut Tally, more: Tally) {
    total.sent += more.sent;
    total.in_review += more.in_review;
    total.failed += more.failed;
    total.skipped += more.skipped;
    total.pending += more.pending;
    total.stopped = total.stopped.take().or(more.stopped);
}

/// The SENDING rows whose lease lapsed: template messages inside the
/// re-send window are sent again with their `client_msg_id`, the rest are
/// marked FAILED (outcome unknown).
async fn settle_abandoned(services: &Services) -> Result<Tally, DbErr> {
    let cutoffs = Cutoffs::now(services);
    let settled = settle_unresendable(&services.db, &cutoffs).await?;
    if settled > 0 {
        tracing::warn!(
            rows = settled,
            "deliveries whose sender stopped while WeChat may have had them were marked FAILED (outcome unknown; not resent)"
        );
    }
    Ok(pipeline(services, Source::Lapsed(&cutoffs)).await?.tally)
}

/// The instants that decide what becomes of a SENDING row.
struct Cutoffs {
    now: DateTime<Utc>,
    /// Rows first sent before this are past the re-send window.
    window: DateTime<Utc>,
    /// Rows claimed before leases existed have no `lease_until`; untouched
    /// since this, their sender is gone.
    legacy: DateTime<Utc>,
}

impl Cutoffs {
    fn now(services: &Services) -> Cutoffs {
        let now = Utc::now();
        let window = chrono::Duration::from_std(services.settings.resend_window).unwrap_or_else(|_| chrono::Duration::minutes(8));
        let legacy = services.settings.wechat_timeout * 12 + Duration::from_secs(60);
        let legacy = chrono::Duration::from_std(legacy).unwrap_or_else(|_| chrono::Duration::hours(1));
        Cutoffs { now, window: now - window, legacy: now - legacy }
    }

    /// `lapsed AND ...`: the SQL test that nobody holds the row any more.
    fn lapsed(&self, sql: &mut Sql) {
        sql.push("(lease_until < ").bind(self.now).push(" OR (lease_until IS NULL AND updated_at < ").bind(self.legacy).push("))");
    }
}

/// Marks FAILED (outcome unknown) the lapsed SENDING rows that cannot be
/// re-sent safely: past the window, or on a channel without `client_msg_id`.
async fn settle_unresendable(db: &impl ConnectionTrait, cutoffs: &Cutoffs) -> Result<u64, DbErr> {
    let mut sql = Sql::new("UPDATE delivery SET status = ");
    sql.push(Status::Failed.sql()).push(", errcode = NULL, lease_owner = NULL, lease_until = NULL, errmsg = CASE WHEN channel = ");
    sql.bind(Channel::OaTemplate.as_str()).push(" THEN ").bind(UNKNOWN_PAST_WINDOW).push(" ELSE ").bind(UNKNOWN_NO_KEY).push(" END");
    sql.push(", updated_at = ").bind(cutoffs.now).push(" WHERE status = ").push(Status::Sending.sql()).push(" AND ");
    cutoffs.lapsed(&mut sql);
    sql.push(" AND (channel <> ").bind(Channel::OaTemplate.as_str());
    sql.push(" OR COALESCE(claimed_at, updated_at) < ").bind(cutoffs.window).push(")");
    sql.execute(db).await
}

/// Takes over lapsed SENDING template messages still inside the window, a
/// chunk at a time; their window keeps starting at their first claim.
async fn reclaim(services: &Services, cutoffs: &Cutoffs, limit: usize) -> Result<Vec<Claimed>, DbErr> {
    let db = &services.db;
    let lapsed_test = |sql: &mut Sql| {
        sql.push("status = ").push(Status::Sending.sql()).push(" AND channel = ").bind(Channel::OaTemplate.as_str()).push(" AND ");
        cutoffs.lapsed(sql);
        sql.push(" AND COALESCE(claimed_at, updated_at) >= ").bind(cutoffs.window);
    };
    // Picked once (see `claim`).
    let mut sql = Sql::new("WITH picked AS MATERIALIZED (SELECT id FROM delivery WHERE ");
    lapsed_test(&mut sql);
    sql.push(" ORDER BY id LIMIT ").bind(limit as i64).push(skip_locked(db)).push(") ");
    sql.push("UPDATE delivery SET claimed_at = COALESCE(claimed_at, updated_at), lease_owner = ");
    sql.bind(services.leases.owner().to_string()).push(", lease_until = ").bind(cutoffs.now + lease_of(services));
    sql.push(", updated_at = ").bind(cutoffs.now);
    // The outer test is what PostgreSQL re-checks after waiting for a row
    // another server just took, so a row is never taken twice.
    sql.push(" WHERE ");
    lapsed_test(&mut sql);
    sql.push(" AND id IN (SELECT id FROM picked)");
    returning(services, sql, true).await
}

/// Marks FAILED (outcome unknown) every SENDING row untouched since
/// `cutoff`, whatever its channel and lease; for operators and tests that
/// know its sender is gone.
pub async fn settle_stale(db: &impl ConnectionTrait, cutoff: DateTime<Utc>) -> Result<u64, DbErr> {
    let mut sql = Sql::new("UPDATE delivery SET status = ");
    sql.push(Status::Failed.sql()).push(", errcode = NULL, lease_owner = NULL, lease_until = NULL, errmsg = ");
    sql.bind(UNKNOWN_NO_KEY).push(", updated_at = ").bind(Utc::now());
    sql.push(" WHERE status = ").push(Status::Sending.sql()).push(" AND updated_at < ").bind(cutoff);
    sql.execute(db).await
}

/// Ids of PENDING rows whose `column` is before `cutoff`, oldest first.
async fn pending_before(
    services: &Services,
    column: delivery::Column,
    cutoff: DateTime<Utc>,
    limit: Option<u64>,
) -> Result<Vec<i64>, DbErr> {
    delivery::Entity::find()
        .select_only()
        .column(delivery::Column::Id)
        .filter(delivery::Column::Status.eq(Status::Pending.as_str()))
        .filter(column.lt(cutoff))
        .order_by_asc(delivery::Column::Id)
        .limit(limit)
        .into_tuple()
        .all(&services.db)
        .await
}

/// Attempts at one outbox statement before the database counts as gone.
const DB_ATTEMPTS: u32 = 10;

/// Runs `op` until the database takes it, at most [`DB_ATTEMPTS`] times
/// with growing pauses (about half a minute in all), so a database that
/// restarts mid-run loses nothing WeChat already answered.
async fn persist<T, F, Fut>(what: &'static str, mut op: F) -> Result<T, DbErr>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, DbErr>>,
{
    let mut pause = Duration::from_millis(250);
    for attempt in 1.. {
        match op().await {
            Ok(value) => {
                if attempt > 1 {
                    tracing::info!(what, attempt, "the database answered again");
                }
                return Ok(value);
            }
            Err(e) if attempt < DB_ATTEMPTS => {
                tracing::warn!(what, attempt, error = %e, retry_in_ms = pause.as_millis() as u64, "the database refused an outbox statement; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
            Err(e) => return Err(e),
        }
    }
    unreachable!("the loop returns")
}

const SERVER_STOPPING: &str = "the server is stopping: messages not yet sent stay PENDING; a running server sends them after WXNOTIFY_PENDING_RETRY_AFTER, a starting one at once";

const UNKNOWN_NO_KEY: &str = "outcome unknown: the sending process stopped while WeChat had the message, and this channel has no \
    client_msg_id to re-send it safely; not resent so it cannot arrive twice (set status to PENDING to resend)";

const UNKNOWN_PAST_WINDOW: &str = "outcome unknown: the sending process stopped while WeChat had the message, and WXNOTIFY_RESEND_WINDOW \
    has passed, so WeChat may no longer drop a repeat of its client_msg_id; not resent so it cannot arrive twice (set status to PENDING to resend)";

/// How soon a template message whose send timed out is tried again.
const UNKNOWN_RETRY: Duration = Duration::from_secs(5);

/// After 45066 ("same clientmsgid retry too fast") WeChat asks for a minute.
const TOO_FAST_RETRY: Duration = Duration::from_secs(60);

/// A row this run owns.
#[derive(Clone, Debug)]
struct Claimed {
    id: i64,
    account: Option<i64>,
    channel: Option<Channel>,
    touser: String,
    payload: String,
    /// Its outcome is unknown: this send repeats an earlier one.
    resend: bool,
}

enum Claim<'a> {
    Ids(&'a [i64]),
    Oldest(usize),
    /// The newest PENDING rows of a shared run below an id, while the run
    /// is still shared.
    Shared {
        run: &'a SharedRun,
        below: i64,
        limit: usize,
    },
}

async fn claim(services: &Services, which: &Claim<'_>) -> Result<Vec<Claimed>, DbErr> {
    let now = Utc::now();
    let mut sql = Sql::default();
    // The rows to take are picked first, once: PostgreSQL may run a LIMIT
    // subquery inside `IN` more than once, taking more rows than asked.
    match which {
        Claim::Ids(_) => {}
        Claim::Oldest(limit) => {
            sql.push("WITH picked AS MATERIALIZED (SELECT id FROM delivery WHERE status = ").push(Status::Pending.sql());
            sql.push(" ORDER BY id LIMIT ").bind(*limit as i64).push(skip_locked(&services.db)).push(") ");
        }
        Claim::Shared { run, below, limit } => {
            // The primary key bounds the scan; the key prefix keeps to the
            // run's own rows; the announcement must still be there, so a
            // run its owner has ended is not claimed from any more.
            sql.push("WITH picked AS MATERIALIZED (SELECT id FROM delivery WHERE id >= ").bind(run.first).push(" AND id < ").bind(*below);
            sql.push(" AND status = ").push(Status::Pending.sql());
            sql.push(&format!(" AND substr(dedupe_key, 1, {}) = ", run.prefix.chars().count())).bind(run.prefix.clone());
            sql.push(" AND EXISTS (SELECT 1 FROM wxnotify_meta WHERE key = ").bind(run.key.clone());
            sql.push(") ORDER BY id DESC LIMIT ").bind(*limit as i64).push(skip_locked(&services.db)).push(") ");
        }
    }
    sql.push("UPDATE delivery SET status = ").push(Status::Sending.sql()).push(", updated_at = ");
    let now_p = sql.param(now);
    sql.push(&format!("{now_p}, claimed_at = {now_p}, lease_owner = "));
    sql.bind(services.leases.owner().to_string()).push(", lease_until = ").bind(now + lease_of(services));
    // The outer status test is what PostgreSQL re-checks after waiting for a
    // row another claimer just took, so a row is never claimed twice.
    sql.push(" WHERE status = ").push(Status::Pending.sql()).push(" AND id IN ");
    match which {
        Claim::Ids(ids) => {
            sql.list(ids.iter().copied());
        }
        Claim::Oldest(_) | Claim::Shared { .. } => {
            sql.push("(SELECT id FROM picked)");
        }
    }
    returning(services, sql, false).await
}

/// Runs a claiming UPDATE and holds the rows it returns.
async fn returning(services: &Services, mut sql: Sql, resend: bool) -> Result<Vec<Claimed>, DbErr> {
    sql.push(" RETURNING id, account_account, channel, touser, CAST(payload AS TEXT) AS payload");
    let mut rows = sql.all(&services.db).await?.iter().map(|r| claimed_of(r, resend)).collect::<Result<Vec<_>, _>>()?;
    rows.sort_by_key(|r| r.id);
    services.leases.hold(rows.iter().map(|r| r.id));
    Ok(rows)
}

fn claimed_of(row: &QueryResult, resend: bool) -> Result<Claimed, DbErr> {
    Ok(Claimed {
        id: row.try_get("", "id")?,
        account: row.try_get("", "account_account")?,
        channel: Channel::parse(&row.try_get::<String>("", "channel")?),
        touser: row.try_get("", "touser")?,
        payload: row.try_get("", "payload")?,
        resend,
    })
}

/// What became of one claimed row.
#[derive(Clone, Debug)]
enum Outcome {
    Sent(Option<i64>),
    /// WeChat took it for review (40252): IN_REVIEW, never sent again; its
    /// report settles it.
    InReview(Option<i64>),
    /// WeChat may have it: a template message stays SENDING, unheld, and
    /// is re-sent with its `client_msg_id` once `retry_in` has passed.
    Unknown {
        errcode: Option<i64>,
        errmsg: String,
        retry_in: Duration,
    },
    Failed {
        errcode: Option<i64>,
        errmsg: String,
        unlink: Option<Unlink>,
    },
    /// WeChat did not take the message: back to PENDING.
    Unsent {
        errcode: Option<i64>,
        errmsg: String,
        tried: bool,
    },
    Skipped(String),
}

impl Outcome {
    /// The `delivery.status` the row takes (Unsent: back to PENDING).
    fn status(&self) -> &'static str {
        match self {
            Outcome::Sent(_) => Status::Sent.as_str(),
            Outcome::InReview(_) => Status::InReview.as_str(),
            Outcome::Unknown { .. } => Status::Sending.as_str(),
            Outcome::Failed { .. } => Status::Failed.as_str(),
            Outcome::Unsent { .. } => Status::Pending.as_str(),
            Outcome::Skipped(_) => Status::Skipped.as_str(),
        }
    }
}

/// How a failure changes the account's link to the service account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Unlink {
    /// 43004: the user left; the follower row says so too.
    Unfollowed,
    /// 40003: the openid is wrong for this account.
    WrongOpenid,
}

/// Where a run's rows come from.
enum Source<'a> {
    /// These ids (still PENDING), a chunk per claim.
    Ids(std::slice::Chunks<'a, i64>),
    /// Ids (still PENDING) handed on while the run is being queued, up to
    /// a chunk per claim: a claim takes what has come, waiting only when
    /// nothing has (see [`deliver_shared`]).
    Feed(Feed),
    /// The oldest PENDING rows.
    Oldest,
    /// PENDING rows of a run another process shares (see [`help`]), from
    /// the newest down: below `below`, and down to the run's first id.
    Shared { run: &'a SharedRun, below: i64 },
    /// Lapsed SENDING template messages inside the re-send window.
    Lapsed(&'a Cutoffs),
}

/// What [`pipeline`] did, and the ids of a [`Source::Ids`] it did not claim:
/// `missed` were not PENDING when claimed (another sender has them, or had
/// them), `unattempted` were never tried (the run stopped first).
struct Run {
    tally: Tally,
    missed: Vec<i64>,
    unattempted: Vec<i64>,
}

/// Most outcomes one recording statement writes.
const RECORD_BATCH: usize = 512;

/// Fewer outcomes than this wait up to [`RECORD_LINGER`] for company.
const RECORD_MIN: usize = 32;
const RECORD_LINGER: Duration = Duration::from_millis(5);

/// Recording statements in flight at once: each waits for its commit to
/// reach the disk, and the database flushes concurrent commits together.
const RECORD_PARALLEL: usize = 3;

/// The outbox's engine. Three stages run at once, so that sending is bound
/// by WeChat's latency and not by our statements:
/// - the claimer claims a chunk at a time ahead of the sends (leases held
///   from the claim), checks the chunk's links, and hands the rows on;
/// - the sender keeps `WXNOTIFY_WECHAT_CONCURRENCY` sends in flight,
///   starting the next row as each send finishes;
/// - the recorder writes outcomes as they come, many per statement (with
///   [`persist`]'s retries, up to [`RECORD_PARALLEL`] statements at once),
///   then lets go of the rows' leases, applies the unlinks, counts and
///   observes them.
///
/// A semaphore bounds the rows claimed but not yet recorded (four chunks),
/// so memory stays bounded and a slow database slows the claims. A stop
/// (WeChat's quota, rate limit or busy answer, or the server stopping)
/// ends the claims; rows claimed but not started are recorded back to
/// PENDING; sends in flight finish and are recorded.
async fn pipeline(services: &Services, mut source: Source<'_>) -> Result<Run, DbErr> {
    let chunk = claim_size(services);
    let ahead = chunk * 4;
    let permits = tokio::sync::Semaphore::new(ahead);
    let halt = Arc::new(Halt { stop: AtomicBool::new(false), reason: std::sync::Mutex::new(None), stopping: services.stopping.clone() });
    let (claimed_tx, mut claimed_rx) = tokio::sync::mpsc::unbounded_channel::<(Claimed, Option<String>)>();
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<(Claimed, Outcome)>();
    let timings = Timings::default();

    let claimer = async {
        let mut missed = Vec::new();
        let result: Result<(), DbErr> = async {
            loop {
                if services.stopping.is_cancelled() {
                    halt.note(SERVER_STOPPING);
                }
                if halt.is_stopped() {
                    return Ok(());
                }
                let permit = permits.acquire_many(chunk as u32).await.map_err(|_| DbErr::Custom("the outbox pipeline closed".into()))?;
                if halt.is_stopped() {
                    return Ok(());
                }
                let started = std::time::Instant::now();
                let (rows, asked) = match &mut source {
                    Source::Ids(chunks) => match chunks.next() {
                        Some(ids) => {
                            let which = Claim::Ids(ids);
                            (persist("claiming deliveries", || claim(services, &which)).await?, Some(ids.to_vec()))
                        }
                        None => return Ok(()),
                    },
                    Source::Feed(feed) => {
                        if feed.buffer.is_empty() {
                            tokio::select! {
                                more = feed.rx.recv() => match more {
                                    Some(ids) => feed.buffer.extend(ids),
                                    None => return Ok(()),
                                },
                                _ = services.stopping.cancelled() => continue,
                            }
                        }
                        while feed.buffer.len() < chunk
                            && let Ok(ids) = feed.rx.try_recv()
                        {
                            feed.buffer.extend(ids);
                        }
                        let ids: Vec<i64> = feed.buffer.drain(..feed.buffer.len().min(chunk)).collect();
                        let which = Claim::Ids(&ids);
                        (persist("claiming deliveries", || claim(services, &which)).await?, Some(ids))
                    }
                    Source::Oldest => {
                        let which = Claim::Oldest(chunk);
                        (persist("claiming deliveries", || claim(services, &which)).await?, None)
                    }
                    Source::Shared { run, below } => {
                        let which = Claim::Shared { run, below: *below, limit: chunk };
                        let rows = persist("claiming deliveries of a shared run", || claim(services, &which)).await?;
                        *below = rows.iter().map(|r| r.id).min().unwrap_or(run.first);
                        (rows, None)
                    }
                    Source::Lapsed(cutoffs) => {
                        let rows = persist("re-claiming lapsed deliveries", || reclaim(services, cutoffs, chunk)).await?;
                        if !rows.is_empty() {
                            tracing::info!(
                                rows = rows.len(),
                                "re-sending template messages whose outcome is unknown, with their client_msg_id"
                            );
                        }
                        (rows, None)
                    }
                };
                timings.add(&timings.claim, started);
                if let Some(asked) = asked {
                    let got: std::collections::HashSet<i64> = rows.iter().map(|r| r.id).collect();
                    missed.extend(asked.iter().copied().filter(|id| !got.contains(id)));
                } else if rows.is_empty() {
                    return Ok(());
                }
                let started = std::time::Instant::now();
                let mut unlinked = match persist("checking links before sending", || unlinked_rows(&services.db, &rows)).await {
                    Ok(unlinked) => unlinked,
                    Err(e) => {
                        // Nothing was sent: once the leases lapse the rows are
                        // settled by the rule for unknown outcomes, the safe side.
                        services.leases.release(rows.iter().map(|r| r.id));
                        return Err(e);
                    }
                };
                timings.add(&timings.check, started);
                // The recorder hands back a permit per row it records.
                permit.forget();
                permits.add_permits(chunk.saturating_sub(rows.len()));
                for row in rows {
                    let skip = unlinked.remove(&row.id);
                    let _ = claimed_tx.send((row, skip));
                }
            }
        }
        .await;
        drop(claimed_tx);
        let unattempted: Vec<i64> = match &mut source {
            Source::Ids(chunks) => chunks.flatten().copied().collect(),
            Source::Feed(feed) => {
                // From here on the feeder keeps what it hands on itself.
                feed.rx.close();
                let mut left: Vec<i64> = feed.buffer.drain(..).collect();
                while let Ok(ids) = feed.rx.try_recv() {
                    left.extend(ids);
                }
                left
            }
            _ => Vec::new(),
        };
        (result, missed, unattempted)
    };

    let sender = async {
        let concurrency = services.settings.wechat_concurrency.max(1);
        let mut in_flight = futures::stream::FuturesUnordered::new();
        let mut open = true;
        loop {
            tokio::select! {
                next = claimed_rx.recv(), if open && in_flight.len() < concurrency => match next {
                    Some((row, skip)) => {
                        let (client, halt) = (services.wechat.clone(), halt.clone());
                        in_flight.push(async move {
                            let outcome = send_unless_stopped(&client, &row, &halt, skip).await;
                            (row, outcome)
                        });
                    }
                    None => open = false,
                },
                Some(done) = in_flight.next(), if !in_flight.is_empty() => {
                    let _ = done_tx.send(done);
                }
                else => break,
            }
        }
        drop(done_tx);
    };

    let recorder = async {
        let mut tally = Tally::default();
        let mut broken: Option<DbErr> = None;
        let failed = AtomicBool::new(false);
        let mut flushing = futures::stream::FuturesUnordered::new();
        let mut open = true;
        loop {
            tokio::select! {
                first = done_rx.recv(), if open && flushing.len() < RECORD_PARALLEL => {
                    let Some(first) = first else {
                        open = false;
                        continue;
                    };
                    let mut batch = vec![first];
                    let linger = tokio::time::Instant::now() + RECORD_LINGER;
                    while batch.len() < RECORD_BATCH {
                        match done_rx.try_recv() {
                            Ok(done) => batch.push(done),
                            Err(tokio::sync::mpsc::error::TryRecvError::Empty) if batch.len() < RECORD_MIN => {
                                match tokio::time::timeout_at(linger, done_rx.recv()).await {
                                    Ok(Some(done)) => batch.push(done),
                                    _ => break,
                                }
                            }
                            Err(_) => break,
                        }
                    }
                    let (failed, timings) = (&failed, &timings);
                    flushing.push(async move {
                        let started = std::time::Instant::now();
                        let settled = settle_batch(services, &batch, failed.load(Ordering::SeqCst)).await;
                        timings.add(&timings.record, started);
                        (batch.len(), settled)
                    });
                }
                Some((rows, settled)) = flushing.next(), if !flushing.is_empty() => {
                    match settled {
                        Ok(more) => {
                            let before = tally.sent + tally.failed + tally.skipped;
                            add(&mut tally, more);
                            let done = tally.sent + tally.failed + tally.skipped;
                            if done / 1000 != before / 1000 {
                                tracing::info!(sent = tally.sent, failed = tally.failed, skipped = tally.skipped, "delivery progress");
                            }
                        }
                        Err(e) => {
                            // No new send starts; what is in flight is still recorded if
                            // the database takes it, else the leases lapse (module doc).
                            failed.store(true, Ordering::SeqCst);
                            halt.stop.store(true, Ordering::SeqCst);
                            broken.get_or_insert(e);
                        }
                    }
                    permits.add_permits(rows);
                }
                else => break,
            }
        }
        (tally, broken)
    };

    let ((claimed, missed, unattempted), (), (mut tally, broken)) = tokio::join!(claimer, sender, recorder);
    timings.log(&tally);
    claimed?;
    if let Some(e) = broken {
        return Err(e);
    }
    if let Ok(mut reason) = halt.reason.lock()
        && let Some(reason) = reason.take()
    {
        tracing::warn!(%reason, "delivery run stopped; the rest stays PENDING for a later run");
        tally.stopped = Some(reason);
    }
    Ok(Run { tally, missed, unattempted })
}

/// Records a batch of outcomes in one statement, lets go of the rows'
/// leases, applies the unlinks, and counts and observes the outcomes.
/// After an earlier failure (`broken`) it tries once, without retries.
async fn settle_batch(services: &Services, batch: &[(Claimed, Outcome)], broken: bool) -> Result<Tally, DbErr> {
    let recorded = if broken {
        record(&services.db, batch).await
    } else {
        persist("recording what WeChat answered", || record(&services.db, batch)).await
    };
    services.leases.release(batch.iter().map(|(row, _)| row.id));
    if let Err(e) = recorded {
        tracing::error!(rows = batch.len(), error = %e,
            "the database did not take what WeChat answered for these deliveries; once their leases lapse, template messages \
             are re-sent with the same client_msg_id (WeChat drops the repeat) and the rest marked outcome unknown");
        return Err(e);
    }
    persist("unlinking refused openids", || apply_unlinks(&services.db, batch)).await?;
    let mut tally = Tally::default();
    count(&mut tally, batch);
    observe(batch);
    Ok(tally)
}

/// Where a run's time went in the database, logged when it ends.
#[derive(Default)]
struct Timings {
    claim: std::sync::Mutex<(u32, Duration)>,
    check: std::sync::Mutex<(u32, Duration)>,
    record: std::sync::Mutex<(u32, Duration)>,
}

impl Timings {
    fn add(&self, what: &std::sync::Mutex<(u32, Duration)>, started: std::time::Instant) {
        if let Ok(mut entry) = what.lock() {
            entry.0 += 1;
            entry.1 += started.elapsed();
        }
    }

    fn log(&self, tally: &Tally) {
        let get = |what: &std::sync::Mutex<(u32, Duration)>| what.lock().map(|e| (e.0, e.1.as_millis() as u64)).unwrap_or_default();
        let ((claims, claim_ms), (checks, check_ms), (records, record_ms)) = (get(&self.claim), get(&self.check), get(&self.record));
        let rows = tally.sent + tally.in_review + tally.failed + tally.skipped + tally.pending;
        if rows >= 1000 {
            tracing::info!(rows, claims, claim_ms, checks, check_ms, records, record_ms, "delivery run: time in the database");
        } else if rows > 0 {
            tracing::debug!(rows, claims, claim_ms, checks, check_ms, records, record_ms, "delivery run: time in the database");
        }
    }
}

/// Why the sends of a run that have not started yet should not start.
struct Halt {
    /// Set by the first send WeChat told to stop (quota, rate limit, busy),
    /// or when the database stopped taking outcomes.
    stop: AtomicBool,
    reason: std::sync::Mutex<Option<String>>,
    /// The server is stopping.
    stopping: CancellationToken,
}

impl Halt {
    fn is_stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst) || self.stopping.is_cancelled()
    }

    /// Keeps the first reason the run stopped.
    fn note(&self, why: &str) {
        if let Ok(mut reason) = self.reason.lock() {
            reason.get_or_insert_with(|| why.to_string());
        }
    }
}

async fn send_unless_stopped(client: &WechatClient, row: &Claimed, halt: &Halt, skip: Option<String>) -> Outcome {
    if let Some(reason) = skip {
        return Outcome::Skipped(reason);
    }
    // A repeat is not held back by a stop: it settles a row WeChat may have.
    if halt.stopping.is_cancelled() && !row.resend {
        halt.note(SERVER_STOPPING);
        return Outcome::Unsent { errcode: None, errmsg: SERVER_STOPPING.to_string(), tried: false };
    }
    if halt.stop.load(Ordering::SeqCst) && !row.resend {
        let errmsg = "not sent: the run stopped before this message (see the run's result)".to_string();
        return Outcome::Unsent { errcode: None, errmsg, tried: false };
    }
    let (outcome, stop) = send(client, row).await;
    if stop
        && !halt.stop.swap(true, Ordering::SeqCst)
        && let (Ok(mut reason), Outcome::Unsent { errmsg, .. } | Outcome::Failed { errmsg, .. }) = (halt.reason.lock(), &outcome)
    {
        *reason = Some(errmsg.clone());
    }
    outcome
}

/// Service-account rows whose account no longer follows under that openid
/// (a sync or a 43004 cleared it after the message was queued): skipped.
async fn unlinked_rows(db: &impl ConnectionTrait, rows: &[Claimed]) -> Result<HashMap<i64, String>, DbErr> {
    // A repeat goes out whatever the link says now: WeChat may have the
    // first send, and only its answer tells.
    let oa: Vec<&Claimed> = rows.iter().filter(|r| r.channel == Some(Channel::OaTemplate) && r.account.is_some() && !r.resend).collect();
    if oa.is_empty() {
        return Ok(HashMap::new());
    }
    let mut sql = Sql::new("SELECT id, oaopenid FROM account WHERE id IN ");
    sql.list(oa.iter().filter_map(|r| r.account));
    let current: HashMap<i64, Option<String>> =
        sql.all(db).await?.iter().map(|r| Ok((r.try_get("", "id")?, r.try_get("", "oaopenid")?))).collect::<Result<_, DbErr>>()?;
    Ok(oa
        .into_iter()
        .filter(|r| r.account.and_then(|a| current.get(&a).cloned().flatten()).as_deref() != Some(r.touser.as_str()))
        .map(|r| (r.id, "skipped: the account no longer follows the service account under this openid".to_string()))
        .collect())
}

/// Sends one row; the flag says the whole run should stop.
async fn send(client: &WechatClient, row: &Claimed) -> (Outcome, bool) {
    let result = match row.channel {
        Some(Channel::OaTemplate) => match serde_json::from_str::<TemplateMessage>(&row.payload) {
            Ok(message) if row.resend && message.client_msg_id.is_none() => {
                return (Outcome::Failed { errcode: None, errmsg: UNKNOWN_NO_KEY.to_string(), unlink: None }, false);
            }
            Ok(message) => client.send_template(&message).await,
            Err(e) => return (unreadable(e), false),
        },
        Some(Channel::OaSubscribe) => match serde_json::from_str::<OaSubscribeMessage>(&row.payload) {
            Ok(message) => client.send_oa_subscribe(&message).await,
            Err(e) => return (unreadable(e), false),
        },
        Some(Channel::MpSubscribe) => match serde_json::from_str::<SubscribeMessage>(&row.payload) {
            Ok(message) => client.send_subscribe(&message).await,
            Err(e) => return (unreadable(e), false),
        },
        Some(Channel::MpForm) => match serde_json::from_str::<FormTemplateMessage>(&row.payload) {
            Ok(message) => client.send_form_template(&message).await,
            Err(e) => return (unreadable(e), false),
        },
        None => {
            let errmsg = "delivery.channel is not OA_TEMPLATE, OA_SUBSCRIBE, MP_SUBSCRIBE or MP_FORM".to_string();
            return (Outcome::Failed { errcode: None, errmsg, unlink: None }, false);
        }
    };
    match result {
        Ok(receipt) => {
            if receipt.repeat {
                tracing::info!(delivery = row.id, msgid = ?receipt.msgid, "WeChat already had this client_msg_id: settled SENT, not sent twice");
            }
            if receipt.in_review {
                tracing::info!(delivery = row.id, msgid = ?receipt.msgid, "WeChat took the message for review (40252)");
                return (Outcome::InReview(receipt.msgid), false);
            }
            (Outcome::Sent(receipt.msgid), false)
        }
        Err(error) => failure(&error, row.channel == Some(Channel::OaTemplate)),
    }
}

fn unreadable(e: serde_json::Error) -> Outcome {
    Outcome::Failed { errcode: None, errmsg: format!("delivery.payload does not fit its channel: {e}"), unlink: None }
}

/// The errcode table of `docs/wechat.md`, as outcomes.
fn failure(error: &WechatError, service_account: bool) -> (Outcome, bool) {
    let errcode = error.errcode();
    let errmsg = error.to_string();
    let failed = |unlink| Outcome::Failed { errcode, errmsg: errmsg.clone(), unlink };
    let unsent = || Outcome::Unsent { errcode, errmsg: errmsg.clone(), tried: true };
    match error.reaction() {
        Reaction::Unfollowed => (failed(service_account.then_some(Unlink::Unfollowed)), false),
        Reaction::InvalidOpenid => (failed(service_account.then_some(Unlink::WrongOpenid)), false),
        Reaction::Quota | Reaction::RateLimited => (unsent(), true),
        // A wrong template id fails this message; missing credentials or an
        // IP whitelist sent nothing, so the rows wait for the fix.
        Reaction::ConfigError if errcode == Some(40037) => (failed(None), true),
        Reaction::ConfigError => (unsent(), true),
        Reaction::Retry if surely_unsent(error) => (unsent(), true),
        // Template messages carry client_msg_id: WeChat drops a repeat.
        Reaction::Retry if service_account => {
            let errmsg = format!("outcome unknown: {errmsg}; re-sent with the same client_msg_id inside WXNOTIFY_RESEND_WINDOW");
            (Outcome::Unknown { errcode, errmsg, retry_in: UNKNOWN_RETRY }, false)
        }
        Reaction::Retry => {
            let errmsg = format!("outcome unknown: {errmsg}; not resent so it cannot arrive twice");
            (Outcome::Failed { errcode, errmsg, unlink: None }, false)
        }
        _ if service_account && errcode == Some(CLIENT_MSG_ID_TOO_FAST) => {
            let errmsg = format!("outcome unknown: {errmsg}");
            (Outcome::Unknown { errcode, errmsg, retry_in: TOO_FAST_RETRY }, false)
        }
        // For now a message in WeChat's review (40252) fails like a refusal;
        // it is not sent again, as WeChat delivers it after review.
        Reaction::RefreshToken
        | Reaction::Payload
        | Reaction::CreditGone
        | Reaction::InvalidCode
        | Reaction::InReview
        | Reaction::Unknown => (failed(None), false),
    }
}

/// -1 (WeChat busy through every retry), a refused connection and a
/// token-cache failure happen before WeChat takes the message.
fn surely_unsent(error: &WechatError) -> bool {
    match error {
        WechatError::Api { .. } | WechatError::Database(_) | WechatError::NotConfigured { .. } => true,
        WechatError::Transport { source, .. } => source.is_connect(),
        _ => false,
    }
}

/// Writes every outcome of a chunk in one statement, and lets go of the
/// rows' leases (a row left SENDING for a re-send gets a lease nobody holds,
/// ending when it is due).
async fn record(db: &impl ConnectionTrait, outcomes: &[(Claimed, Outcome)]) -> Result<(), DbErr> {
    if outcomes.is_empty() {
        return Ok(());
    }
    let now = Utc::now();
    let mut sql = Sql::new("UPDATE delivery SET lease_owner = NULL, updated_at = ");
    sql.bind(now);
    let keys: Vec<String> = outcomes.iter().map(|(row, _)| sql.param(row.id)).collect();
    let rows: Vec<Recorded> = outcomes.iter().map(|(_, outcome)| recorded(outcome, now)).collect();
    let arms = |pick: &dyn Fn(&Recorded) -> sea_orm::Value| keys.iter().cloned().zip(rows.iter().map(pick)).collect::<Vec<_>>();
    sql.push(", status = ").case("id", arms(&|r| r.status.into()));
    sql.push(", attempts = attempts + ").case("id", arms(&|r| r.tried.into()));
    sql.push(", errcode = ").case("id", arms(&|r| r.errcode.into()));
    sql.push(", errmsg = ").case("id", arms(&|r| r.errmsg.clone().into()));
    sql.push(", msgid = ").case("id", arms(&|r| r.msgid.into()));
    sql.push(", sent_at = ").case("id", arms(&|r| r.sent_at.into()));
    sql.push(", lease_until = ").case("id", arms(&|r| r.lease_until.into()));
    // A message WeChat surely did not take starts a new window when sent.
    sql.push(", claimed_at = CASE WHEN ").case("id", arms(&|r| r.unclaim.into())).push(" THEN NULL ELSE claimed_at END");
    sql.push(&format!(" WHERE status = {} AND id IN ({})", Status::Sending.sql(), keys.join(", ")));
    sql.execute(db).await.map(|_| ())
}

/// One row's columns as [`record`] writes them.
struct Recorded {
    status: &'static str,
    tried: i32,
    errcode: Option<i32>,
    errmsg: Option<String>,
    msgid: Option<i64>,
    sent_at: Option<DateTime<Utc>>,
    lease_until: Option<DateTime<Utc>>,
    unclaim: bool,
}

fn recorded(outcome: &Outcome, now: DateTime<Utc>) -> Recorded {
    let status = outcome.status();
    let base = Recorded { status, tried: 1, errcode: None, errmsg: None, msgid: None, sent_at: None, lease_until: None, unclaim: false };
    let code = |c: &Option<i64>| c.map(|c| c as i32);
    match outcome {
        Outcome::Sent(msgid) => Recorded { msgid: *msgid, sent_at: Some(now), ..base },
        Outcome::InReview(msgid) => Recorded {
            msgid: *msgid,
            sent_at: Some(now),
            errcode: Some(crate::wechat::send::IN_REVIEW as i32),
            errmsg: Some("WeChat is reviewing the message (40252); its report settles it".into()),
            ..base
        },
        Outcome::Unknown { errcode, errmsg, retry_in } => {
            let due = now + chrono::Duration::from_std(*retry_in).unwrap_or_else(|_| chrono::Duration::minutes(1));
            Recorded { errcode: code(errcode), errmsg: Some(errmsg.clone()), lease_until: Some(due), ..base }
        }
        Outcome::Failed { errcode, errmsg, .. } => Recorded { errcode: code(errcode), errmsg: Some(errmsg.clone()), ..base },
        Outcome::Unsent { errcode, errmsg, tried } => {
            Recorded { tried: *tried as i32, errcode: code(errcode), errmsg: Some(errmsg.clone()), unclaim: true, ..base }
        }
        Outcome::Skipped(reason) => Recorded { tried: 0, errmsg: Some(reason.clone()), ..base },
    }
}

/// A TEMPLATESENDJOBFINISH report from the callback for `openid`: the
/// delivery with that msgid, or else (WeChat's 40252 answer carries no
/// msgid, the report after the review brings a new one) the oldest
/// IN_REVIEW template message to that openid, which takes the msgid.
/// `success` makes it SENT (an IN_REVIEW one: the review passed); a
/// failure FAILED with WeChat's status as errmsg. Returns the deliveries
/// it settled.
pub async fn settle_report(db: &impl ConnectionTrait, openid: &str, msgid: i64, ok: bool, status: &str) -> Result<u64, DbErr> {
    let settle = |target: &mut Sql| {
        target.push("UPDATE delivery SET status = CASE WHEN ");
        target
            .bind(ok)
            .push(" THEN (CASE WHEN status = ")
            .push(Status::InReview.sql())
            .push(" THEN ")
            .push(Status::Sent.sql())
            .push(" ELSE status END) ELSE ")
            .push(Status::Failed.sql())
            .push(" END, errmsg = CASE WHEN ")
            .bind(ok)
            .push(" THEN (CASE WHEN status = ")
            .push(Status::InReview.sql())
            .push(" THEN NULL ELSE errmsg END) ELSE ");
        target.bind(status.to_string()).push(" END, msgid = ").bind(msgid).push(", updated_at = ").bind(Utc::now());
    };
    let mut by_msgid = Sql::default();
    settle(&mut by_msgid);
    by_msgid.push(" WHERE msgid = ").bind(msgid);
    let settled = by_msgid.execute(db).await?;
    if settled > 0 {
        return Ok(settled);
    }
    let mut reviewed = Sql::default();
    settle(&mut reviewed);
    reviewed.push(" WHERE id = (SELECT id FROM delivery WHERE status = ").push(Status::InReview.sql());
    reviewed.push(" AND channel = ").bind(Channel::OaTemplate.as_str()).push(" AND touser = ").bind(openid.to_string());
    reviewed.push(" ORDER BY id LIMIT 1)");
    reviewed.execute(db).await
}

/// Template messages WeChat took for review (IN_REVIEW) longer than
/// `older_than` ago and now lists as intercepted (`queryblocktmplmsg`,
/// "拦截": the review refused them) become FAILED, matched by openid and
/// template. An approved message is delivered by WeChat and reported by
/// TEMPLATESENDJOBFINISH; one neither listed nor reported stays IN_REVIEW.
/// Returns the deliveries it settled.
pub async fn settle_reviews(services: &Services, older_than: chrono::Duration) -> Result<u64, WechatError> {
    let db = &services.db;
    let mut sql = Sql::new("SELECT DISTINCT template_id FROM delivery WHERE status = ");
    sql.push(Status::InReview.sql()).push(" AND channel = ").bind(Channel::OaTemplate.as_str());
    sql.push(" AND updated_at <= ").bind(Utc::now() - older_than);
    let templates: Vec<String> = sql.all(db).await?.iter().map(|r| r.try_get::<String>("", "template_id")).collect::<Result<_, _>>()?;
    let mut settled = 0;
    for template_id in templates {
        let mut largest = 0;
        loop {
            let page = services.wechat.blocked_messages(&template_id, largest, crate::wechat::templates::BLOCKED_PAGE_LIMIT).await?;
            for blocked in &page {
                let mut fail = Sql::new("UPDATE delivery SET status = ");
                fail.push(Status::Failed.sql()).push(", errmsg = ");
                fail.bind(format!("intercepted by WeChat's content review (queryblocktmplmsg: {})", blocked.title));
                fail.push(", updated_at = ").bind(Utc::now());
                fail.push(" WHERE id = (SELECT id FROM delivery WHERE status = ").push(Status::InReview.sql());
                fail.push(" AND template_id = ").bind(template_id.clone()).push(" AND touser = ").bind(blocked.openid.clone());
                fail.push(" ORDER BY id LIMIT 1)");
                settled += fail.execute(db).await?;
            }
            match page.iter().map(|b| b.id).max() {
                Some(id) if page.len() as i64 == crate::wechat::templates::BLOCKED_PAGE_LIMIT => largest = id,
                _ => break,
            }
        }
    }
    Ok(settled)
}

/// A `subscribe_msg_sent_event` item: WeChat's final word on a
/// subscription message (`channel` OA_SUBSCRIBE or MP_SUBSCRIBE) to
/// `touser` from template `template_id`. The send's answer carried no
/// msgid (bizsend never does), so the event's MsgID settles the delivery
/// that has it, or else the oldest SENT delivery of that channel, openid
/// and template still without one: it gets the msgid, and a non-zero
/// ErrorCode makes it FAILED with WeChat's ErrorStatus. Returns the
/// deliveries it settled (0 or 1).
pub async fn settle_subscription_report(
    db: &impl ConnectionTrait,
    channel: Channel,
    touser: &str,
    template_id: &str,
    msgid: i64,
    errcode: i64,
    status: &str,
) -> Result<u64, DbErr> {
    let mut find = Sql::new("SELECT id FROM delivery WHERE channel = ");
    find.bind(channel.as_str()).push(" AND touser = ").bind(touser.to_string());
    find.push(" AND (msgid = ").bind(msgid).push(" OR (msgid IS NULL AND status = ").push(Status::Sent.sql());
    find.push(" AND template_id = ")
        .bind(template_id.to_string())
        .push(")) ORDER BY CASE WHEN msgid IS NULL THEN 1 ELSE 0 END, id LIMIT 1");
    let Some(row) = find.one(db).await? else { return Ok(0) };
    let id: i64 = row.try_get("", "id")?;
    let ok = errcode == 0;
    let mut sql = Sql::new("UPDATE delivery SET msgid = ");
    sql.bind(msgid).push(", updated_at = ").bind(Utc::now());
    if !ok {
        sql.push(", status = ").push(Status::Failed.sql()).push(", errcode = ").bind(errcode as i32);
        sql.push(", errmsg = ").bind(format!("WeChat could not deliver it: {status}"));
    }
    // Only a row still as found: a concurrent report for the same row loses.
    sql.push(" WHERE id = ").bind(id).push(" AND (msgid IS NULL OR msgid = ").bind(msgid).push(")");
    sql.execute(db).await
}

/// 43004 and 40003 on a service-account send: the openid no longer
/// reaches this user, so the account stops pointing at it (and for 43004
/// the follower is marked gone).
async fn apply_unlinks(db: &impl ConnectionTrait, outcomes: &[(Claimed, Outcome)]) -> Result<(), DbErr> {
    let mut openids: BTreeMap<String, Unlink> = BTreeMap::new();
    for (row, outcome) in outcomes {
        if let Outcome::Failed { unlink: Some(how), .. } = outcome {
            openids.insert(row.touser.clone(), *how);
        }
    }
    if openids.is_empty() {
        return Ok(());
    }
    let refused: Vec<String> = openids.keys().cloned().collect();
    let gone: Vec<String> = openids.iter().filter(|(_, how)| **how == Unlink::Unfollowed).map(|(o, _)| o.clone()).collect();
    // The links are linking's: it clears them.
    let accounts = crate::linking::store::unlink_refused(db, &refused, &gone).await?;
    tracing::info!(openids = openids.len(), accounts, "unlinked accounts whose openid WeChat refused (43004 / 40003)");
    Ok(())
}

fn count(tally: &mut Tally, outcomes: &[(Claimed, Outcome)]) {
    for (_, outcome) in outcomes {
        match outcome {
            Outcome::Sent(_) => tally.sent += 1,
            Outcome::InReview(_) => tally.in_review += 1,
            Outcome::Unknown { .. } => tally.pending += 1,
            Outcome::Failed { .. } => tally.failed += 1,
            Outcome::Unsent { .. } => tally.pending += 1,
            Outcome::Skipped(_) => tally.skipped += 1,
        }
    }
}

/// `wxnotify_deliveries_total{channel, status}`: what became of each
/// claimed row (PENDING: handed back for a later run).
fn observe(outcomes: &[(Claimed, Outcome)]) {
    for (row, outcome) in outcomes {
        let channel = row.channel.map_or("unknown", Channel::as_str);
        ::metrics::counter!("wxnotify_deliveries_total", "channel" => channel, "status" => outcome.status()).increment(1);
    }
}

/// A delivery's state, for single sends that answer with it.
#[derive(Clone, Debug)]
pub struct DeliveryState {
    pub id: i64,
    pub status: String,
    pub errcode: Option<i32>,
    pub errmsg: Option<String>,
    pub msgid: Option<i64>,
}

/// Reads one delivery's state.
pub async fn state(db: &impl ConnectionTrait, id: i64) -> Result<DeliveryState, DbErr> {
    let mut sql = Sql::new("SELECT id, status, errcode, errmsg, msgid FROM delivery WHERE id = ");
    sql.bind(id);
    let row = sql.one(db).await?.ok_or_else(|| DbErr::RecordNotFound(format!("delivery {id}")))?;
    Ok(DeliveryState {
        id,
        status: row.try_get("", "status")?,
        errcode: row.try_get("", "errcode")?,
        errmsg: row.try_get("", "errmsg")?,
        msgid: row.try_get("", "msgid")?,
    })
}

/// `sendTemplateMessage`: queues one raw service-account message under
/// `raw:<client_msg_id>` and sends it. A `client_msg_id` used before is
/// not sent again: the earlier delivery's state is the answer.
pub async fn send_now(services: &Services, mut message: TemplateMessage) -> Result<DeliveryState, DbErr> {
    let client_msg_id =
        message.client_msg_id.clone().unwrap_or_else(|| format!("{}-{:016x}", Utc::now().format("%Y%m%d%H%M%S"), rand::random::<u64>()));
    message.client_msg_id = Some(client_msg_id.clone());
    let mut sql = Sql::new("SELECT id FROM account WHERE oaopenid = ");
    sql.bind(message.touser.clone()).push(" ORDER BY id LIMIT 1");
    let account = sql.one(&services.db).await?.map(|r| r.try_get::<i64>("", "id")).transpose()?;
    let row = NewDelivery::template(account, &message, format!("raw:{client_msg_id}"));
    let queued = enqueue(&services.db, std::slice::from_ref(&row)).await?;
    let (id, pending) = queued.first().copied().ok_or_else(|| DbErr::Custom("the message was not queued".into()))?;
    if pending {
        deliver(services, &Scope::Ids(vec![id])).await?;
    }
    state(&services.db, id).await
}
