//! The outbox: every message is a `delivery` row before it is a WeChat call.
//!
//! A row's life: PENDING (written with a unique `dedupe_key`, so the same
//! message can never be queued twice) → SENDING (claimed by one sender in one
//! atomic UPDATE; PostgreSQL claimers skip each other's rows) → SENT (msgid,
//! sent_at), FAILED (errcode, errmsg) or SKIPPED (the reason in errmsg).
//! Outcomes are recorded per chunk in one statement, and the errcode
//! reactions of `docs/wechat.md` applied in bulk: 43004 unlinks the account
//! and marks the follower unsubscribed, 40003 unlinks, 45009 / 45011 / a
//! busy WeChat stop the run and put the row back to PENDING, so a later run
//! (or the next server start) finishes the rest.
//!
//! What a crash leaves behind:
//! - PENDING rows were never sent: [`recover`] sends them on the next start.
//! - A SENDING row may or may not have reached WeChat. The same holds for a
//!   send that timed out or lost its connection mid-request (the WeChat
//!   client does not repeat those either). Such a row is never sent again
//!   automatically: it becomes FAILED with an errmsg starting
//!   "outcome unknown", since a duplicate is worse than a gap for a
//!   notification. An operator who prefers a resend sets it back to
//!   PENDING; template messages carry `client_msg_id` = `dedupe_key`, so
//!   WeChat itself drops a resend of a message it already accepted.

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

use super::sql::{Sql, skip_locked};
use crate::services::Services;
use crate::wechat::{FormTemplateMessage, Reaction, SubscribeMessage, TemplateMessage, WechatClient, WechatError};

/// How a message travels; `delivery.channel` and `message_template.channel`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Channel {
    /// A service-account template message to a follower.
    OaTemplate,
    /// A mini-program subscribe message, paid with a subscription credit.
    MpSubscribe,
    /// A legacy mini-program template message, paid with a form id.
    MpForm,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::OaTemplate => "OA_TEMPLATE",
            Channel::MpSubscribe => "MP_SUBSCRIBE",
            Channel::MpForm => "MP_FORM",
        }
    }

    pub fn parse(text: &str) -> Option<Channel> {
        match text {
            "OA_TEMPLATE" => Some(Channel::OaTemplate),
            "MP_SUBSCRIBE" => Some(Channel::MpSubscribe),
            "MP_FORM" => Some(Channel::MpForm),
            _ => None,
        }
    }
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
}

impl NewDelivery {
    fn of(account: Option<i64>, channel: Channel, touser: &str, template_id: &str, payload: Value, key: String) -> Self {
        NewDelivery { account, channel, touser: touser.to_string(), template_id: template_id.to_string(), payload, dedupe_key: key }
    }

    pub fn template(account: Option<i64>, message: &TemplateMessage, key: String) -> Self {
        let payload = serde_json::to_value(message).unwrap_or(Value::Null);
        Self::of(account, Channel::OaTemplate, &message.touser, &message.template_id, payload, key)
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

/// Rows per INSERT (9 parameters each, far below either database's limit).
const INSERT_CHUNK: usize = 300;

/// Queues `rows`; a row whose `dedupe_key` exists already is left as it is.
/// Returns, for every row, the id of its delivery and whether it is still
/// PENDING (false: an earlier attempt already handled that key).
pub async fn enqueue(db: &impl ConnectionTrait, rows: &[NewDelivery]) -> Result<Vec<(i64, bool)>, DbErr> {
    let mut out = Vec::with_capacity(rows.len());
    for chunk in rows.chunks(INSERT_CHUNK) {
        insert(db, chunk).await?;
        let mut sql = Sql::new("SELECT id, status, dedupe_key FROM delivery WHERE dedupe_key IN ");
        sql.list(chunk.iter().map(|r| r.dedupe_key.clone()));
        let found: HashMap<String, (i64, bool)> = sql
            .all(db)
            .await?
            .iter()
            .map(|r| Ok((r.try_get("", "dedupe_key")?, (r.try_get("", "id")?, r.try_get::<String>("", "status")? == "PENDING"))))
            .collect::<Result<_, DbErr>>()?;
        for row in chunk {
            let entry = found.get(&row.dedupe_key).copied();
            out.push(entry.ok_or_else(|| DbErr::Custom(format!("delivery {} vanished right after it was queued", row.dedupe_key)))?);
        }
    }
    Ok(out)
}

async fn insert(db: &impl ConnectionTrait, rows: &[NewDelivery]) -> Result<(), DbErr> {
    let now = Utc::now();
    let mut sql = Sql::new(
        "INSERT INTO delivery (created_at, updated_at, account_account, channel, touser, template_id, payload, dedupe_key, status, attempts) VALUES ",
    );
    let now_p = sql.param(now);
    for (i, row) in rows.iter().enumerate() {
        sql.push(if i > 0 { ", (" } else { "(" });
        sql.push(&format!("{now_p}, {now_p}, "));
        sql.bind(row.account).push(", ").bind(row.channel.as_str()).push(", ").bind(row.touser.clone()).push(", ");
        sql.bind(row.template_id.clone()).push(", ").bind(row.payload.clone()).push(", ").bind(row.dedupe_key.clone());
        sql.push(", 'PENDING', 0)");
    }
    sql.push(" ON CONFLICT (dedupe_key) DO NOTHING");
    sql.execute(db).await.map(|_| ())
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
    pub failed: u64,
    pub skipped: u64,
    /// Rows left PENDING for a later run (after a stop).
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
/// at a time, until done or until WeChat says to stop.
pub async fn deliver(services: &Services, scope: &Scope) -> Result<Tally, DbErr> {
    let chunk = (services.settings.wechat_concurrency * 4).clamp(1, 256);
    let mut tally = Tally::default();
    let mut ids = match scope {
        Scope::Ids(ids) => Some(ids.chunks(chunk)),
        Scope::Pending => None,
    };
    loop {
        if services.stopping.is_cancelled() {
            tally.stopped = Some(SERVER_STOPPING.to_string());
        }
        if tally.stopped.is_some() {
            // What this run will not claim stays PENDING for a later one.
            tally.pending += ids.as_mut().map_or(0, |rest| rest.map(|c| c.len() as u64).sum::<u64>());
            break;
        }
        let claimed = match ids.as_mut() {
            Some(chunks) => match chunks.next() {
                Some(chunk) => claim(&services.db, Claim::Ids(chunk)).await?,
                None => break,
            },
            None => claim(&services.db, Claim::Oldest(chunk)).await?,
        };
        if claimed.is_empty() && ids.is_none() {
            break;
        }
        run_chunk(services, claimed, &mut tally).await?;
    }
    Ok(tally)
}

/// Settles rows a dead process left SENDING (see the module doc), then
/// sends the PENDING rows earlier processes left. Runs when a server starts.
pub async fn recover(services: &Services, started: DateTime<Utc>) -> Result<Tally, DbErr> {
    settle_abandoned(services).await?;
    // Only what earlier processes left: work queued since this process
    // started belongs to whoever queued it.
    let leftovers = pending_before(services, delivery::Column::CreatedAt, started, None).await?;
    deliver(services, &Scope::Ids(leftovers)).await
}

/// Most rows one sweep takes.
const SWEEP_BATCH: u64 = 1000;

/// What every server does every little while (see [`super::spawn_sweeper`]):
/// settles abandoned SENDING rows and sends PENDING rows nobody has touched
/// for `WXNOTIFY_PENDING_RETRY_AFTER`: those a server put back as it stopped
/// while another was already running (a rolling deploy), or that a run left
/// after a quota stop (then the first send says whether the quota is back).
pub async fn sweep(services: &Services) -> Result<Tally, DbErr> {
    settle_abandoned(services).await?;
    let idle = chrono::Duration::from_std(services.settings.pending_retry_after).unwrap_or_else(|_| chrono::Duration::hours(1));
    let stale = pending_before(services, delivery::Column::UpdatedAt, Utc::now() - idle, Some(SWEEP_BATCH)).await?;
    if stale.is_empty() {
        return Ok(Tally::default());
    }
    deliver(services, &Scope::Ids(stale)).await
}

/// Marks FAILED (outcome unknown) the rows SENDING for far longer than a
/// live sender takes: their process is gone.
async fn settle_abandoned(services: &Services) -> Result<(), DbErr> {
    let lease = services.settings.wechat_timeout * 12 + Duration::from_secs(60);
    let cutoff = Utc::now() - chrono::Duration::from_std(lease).unwrap_or_else(|_| chrono::Duration::hours(1));
    let settled = settle_stale(&services.db, cutoff).await?;
    if settled > 0 {
        tracing::warn!(rows = settled, "deliveries left SENDING by a stopped process were marked FAILED (outcome unknown; not resent)");
    }
    Ok(())
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
        .filter(delivery::Column::Status.eq("PENDING"))
        .filter(column.lt(cutoff))
        .order_by_asc(delivery::Column::Id)
        .limit(limit)
        .into_tuple()
        .all(&services.db)
        .await
}

/// Marks rows SENDING since before `cutoff` FAILED, outcome unknown.
pub async fn settle_stale(db: &impl ConnectionTrait, cutoff: DateTime<Utc>) -> Result<u64, DbErr> {
    let mut sql = Sql::new("UPDATE delivery SET status = 'FAILED', errcode = NULL, errmsg = ");
    sql.bind(UNKNOWN_AFTER_CRASH).push(", updated_at = ").bind(Utc::now());
    sql.push(" WHERE status = 'SENDING' AND updated_at < ").bind(cutoff);
    sql.execute(db).await
}

const SERVER_STOPPING: &str = "the server is stopping: messages not yet sent stay PENDING; a running server sends them after WXNOTIFY_PENDING_RETRY_AFTER, a starting one at once";

const UNKNOWN_AFTER_CRASH: &str = "outcome unknown: the sending process stopped while WeChat had the message; \
    not resent so it cannot arrive twice (set status to PENDING to resend; WeChat drops a repeat of the same client_msg_id)";

/// A row this run owns.
#[derive(Clone, Debug)]
struct Claimed {
    id: i64,
    account: Option<i64>,
    channel: Option<Channel>,
    touser: String,
    payload: String,
}

enum Claim<'a> {
    Ids(&'a [i64]),
    Oldest(usize),
}

async fn claim(db: &impl ConnectionTrait, which: Claim<'_>) -> Result<Vec<Claimed>, DbErr> {
    let mut sql = Sql::new("UPDATE delivery SET status = 'SENDING', updated_at = ");
    sql.bind(Utc::now());
    // The outer status test is what PostgreSQL re-checks after waiting for a
    // row another claimer just took, so a row is never claimed twice.
    sql.push(" WHERE status = 'PENDING' AND id IN ");
    match which {
        Claim::Ids(ids) => {
            sql.list(ids.iter().copied());
        }
        Claim::Oldest(limit) => {
            sql.push("(SELECT id FROM delivery WHERE status = 'PENDING' ORDER BY id LIMIT ");
            sql.bind(limit as i64).push(skip_locked(db)).push(")");
        }
    }
    sql.push(" RETURNING id, account_account, channel, touser, CAST(payload AS TEXT) AS payload");
    let mut rows = sql.all(db).await?.iter().map(claimed_of).collect::<Result<Vec<_>, _>>()?;
    rows.sort_by_key(|r| r.id);
    Ok(rows)
}

fn claimed_of(row: &QueryResult) -> Result<Claimed, DbErr> {
    Ok(Claimed {
        id: row.try_get("", "id")?,
        account: row.try_get("", "account_account")?,
        channel: Channel::parse(&row.try_get::<String>("", "channel")?),
        touser: row.try_get("", "touser")?,
        payload: row.try_get("", "payload")?,
    })
}

/// What became of one claimed row.
#[derive(Clone, Debug)]
enum Outcome {
    Sent(Option<i64>),
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
            Outcome::Sent(_) => "SENT",
            Outcome::Failed { .. } => "FAILED",
            Outcome::Unsent { .. } => "PENDING",
            Outcome::Skipped(_) => "SKIPPED",
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

async fn run_chunk(services: &Services, rows: Vec<Claimed>, tally: &mut Tally) -> Result<(), DbErr> {
    if rows.is_empty() {
        return Ok(());
    }
    let unlinked = Arc::new(unlinked_rows(&services.db, &rows).await?);
    let halt = Arc::new(Halt { stop: AtomicBool::new(false), reason: std::sync::Mutex::new(None), stopping: services.stopping.clone() });
    // Owned futures: a stream of closures over borrowed rows trips the
    // compiler's Send check for the resolvers that await this.
    let sends: Vec<_> = rows
        .iter()
        .cloned()
        .map(|row| {
            let (client, halt, unlinked) = (services.wechat.clone(), halt.clone(), unlinked.clone());
            async move { (row.id, send_unless_stopped(&client, &row, &halt, &unlinked).await) }
        })
        .collect();
    let outcomes: Vec<(i64, Outcome)> =
        futures::stream::iter(sends).buffer_unordered(services.settings.wechat_concurrency.max(1)).collect().await;
    let by_id: HashMap<i64, &Claimed> = rows.iter().map(|r| (r.id, r)).collect();
    record(&services.db, &outcomes).await?;
    apply_unlinks(&services.db, &outcomes, &by_id).await?;
    let before = tally.sent + tally.failed + tally.skipped;
    count(tally, &outcomes);
    observe(&outcomes, &by_id);
    if let Ok(mut reason) = halt.reason.lock()
        && let Some(reason) = reason.take()
    {
        tracing::warn!(%reason, "delivery run stopped; the rest stays PENDING for a later run");
        tally.stopped = Some(reason);
    }
    let done = tally.sent + tally.failed + tally.skipped;
    if done / 1000 != before / 1000 {
        tracing::info!(sent = tally.sent, failed = tally.failed, skipped = tally.skipped, "delivery progress");
    }
    Ok(())
}

/// Why the sends of a chunk that have not started yet should not start.
struct Halt {
    /// Set by the first send WeChat told to stop (quota, rate limit, busy).
    stop: AtomicBool,
    reason: std::sync::Mutex<Option<String>>,
    /// The server is stopping.
    stopping: CancellationToken,
}

async fn send_unless_stopped(client: &WechatClient, row: &Claimed, halt: &Halt, unlinked: &HashMap<i64, String>) -> Outcome {
    if let Some(reason) = unlinked.get(&row.id) {
        return Outcome::Skipped(reason.clone());
    }
    if halt.stopping.is_cancelled() {
        if let Ok(mut reason) = halt.reason.lock() {
            reason.get_or_insert_with(|| SERVER_STOPPING.to_string());
        }
        return Outcome::Unsent { errcode: None, errmsg: SERVER_STOPPING.to_string(), tried: false };
    }
    if halt.stop.load(Ordering::SeqCst) {
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
    let oa: Vec<&Claimed> = rows.iter().filter(|r| r.channel == Some(Channel::OaTemplate) && r.account.is_some()).collect();
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
            Ok(message) => client.send_template(&message).await,
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
            let errmsg = "delivery.channel is not OA_TEMPLATE, MP_SUBSCRIBE or MP_FORM".to_string();
            return (Outcome::Failed { errcode: None, errmsg, unlink: None }, false);
        }
    };
    match result {
        Ok(receipt) => (Outcome::Sent(receipt.msgid), false),
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
        Reaction::Retry => {
            let errmsg = format!("outcome unknown: {errmsg}; not resent so it cannot arrive twice");
            (Outcome::Failed { errcode, errmsg, unlink: None }, false)
        }
        Reaction::RefreshToken | Reaction::Payload | Reaction::CreditGone | Reaction::InvalidCode | Reaction::Unknown => {
            (failed(None), false)
        }
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

/// Writes every outcome of a chunk in one statement.
async fn record(db: &impl ConnectionTrait, outcomes: &[(i64, Outcome)]) -> Result<(), DbErr> {
    if outcomes.is_empty() {
        return Ok(());
    }
    let now = Utc::now();
    let mut sql = Sql::new("UPDATE delivery SET updated_at = ");
    sql.bind(now);
    let keys: Vec<String> = outcomes.iter().map(|(id, _)| sql.param(*id)).collect();
    type Row = (&'static str, i32, Option<i32>, Option<String>, Option<i64>, Option<DateTime<Utc>>);
    let rows: Vec<Row> = outcomes
        .iter()
        .map(|(_, outcome)| match outcome {
            Outcome::Sent(msgid) => (outcome.status(), 1, None, None, *msgid, Some(now)),
            Outcome::Failed { errcode, errmsg, .. } => (outcome.status(), 1, errcode.map(|c| c as i32), Some(errmsg.clone()), None, None),
            Outcome::Unsent { errcode, errmsg, tried } => {
                (outcome.status(), *tried as i32, errcode.map(|c| c as i32), Some(errmsg.clone()), None, None)
            }
            Outcome::Skipped(reason) => (outcome.status(), 0, None, Some(reason.clone()), None, None),
        })
        .collect();
    let arms = |pick: &dyn Fn(&Row) -> sea_orm::Value| keys.iter().cloned().zip(rows.iter().map(pick)).collect::<Vec<_>>();
    sql.push(", status = ").case("id", arms(&|r| r.0.into()));
    sql.push(", attempts = attempts + ").case("id", arms(&|r| r.1.into()));
    sql.push(", errcode = ").case("id", arms(&|r| r.2.into()));
    sql.push(", errmsg = ").case("id", arms(&|r| r.3.clone().into()));
    sql.push(", msgid = ").case("id", arms(&|r| r.4.into()));
    sql.push(", sent_at = ").case("id", arms(&|r| r.5.into()));
    sql.push(&format!(" WHERE status = 'SENDING' AND id IN ({})", keys.join(", ")));
    sql.execute(db).await.map(|_| ())
}

/// 43004 and 40003 on a service-account send: the openid no longer
/// reaches this user, so the account stops pointing at it (and for 43004
/// the follower is marked gone).
async fn apply_unlinks(db: &impl ConnectionTrait, outcomes: &[(i64, Outcome)], rows: &HashMap<i64, &Claimed>) -> Result<(), DbErr> {
    let mut openids: BTreeMap<String, Unlink> = BTreeMap::new();
    for (id, outcome) in outcomes {
        if let (Outcome::Failed { unlink: Some(how), .. }, Some(row)) = (outcome, rows.get(id)) {
            openids.insert(row.touser.clone(), *how);
        }
    }
    if openids.is_empty() {
        return Ok(());
    }
    let now = Utc::now();
    let mut sql = Sql::new("UPDATE account SET oaopenid = NULL, updated_at = ");
    sql.bind(now).push(" WHERE oaopenid IN ").list(openids.keys().cloned());
    let accounts = sql.execute(db).await?;
    let gone: Vec<String> = openids.iter().filter(|(_, how)| **how == Unlink::Unfollowed).map(|(o, _)| o.clone()).collect();
    if !gone.is_empty() {
        let mut sql = Sql::new("UPDATE oa_follower SET subscribed = false, updated_at = ");
        sql.bind(now).push(" WHERE openid IN ").list(gone);
        sql.execute(db).await?;
    }
    tracing::info!(openids = openids.len(), accounts, "unlinked accounts whose openid WeChat refused (43004 / 40003)");
    Ok(())
}

fn count(tally: &mut Tally, outcomes: &[(i64, Outcome)]) {
    for (_, outcome) in outcomes {
        match outcome {
            Outcome::Sent(_) => tally.sent += 1,
            Outcome::Failed { .. } => tally.failed += 1,
            Outcome::Unsent { .. } => tally.pending += 1,
            Outcome::Skipped(_) => tally.skipped += 1,
        }
    }
}

/// `wxnotify_deliveries_total{channel, status}`: what became of each
/// claimed row (PENDING: handed back for a later run).
fn observe(outcomes: &[(i64, Outcome)], rows: &HashMap<i64, &Claimed>) {
    for (id, outcome) in outcomes {
        let channel = rows.get(id).and_then(|r| r.channel).map_or("unknown", Channel::as_str);
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
