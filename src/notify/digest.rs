//! `notifyDigest`: the seed's scheduled notice done right.
//!
//! One aggregate query per page of `WXNOTIFY_DIGEST_PAGE` accounts finds every
//! account the digest can reach (the caller's `account_bool_exp`, compiled
//! by the table engine, and a way to reach it: following, or a credit for
//! one of the digest's credit-paid templates) with unread `point_count`
//! rows, and counts them per `type`. Each account gets one message on the
//! first channel of `WXNOTIFY_CHANNEL_ORDER` that reaches it (see
//! [`super::route`]), queued in the outbox under `digest:<run_id>:<account
//! id>`; a page is queued before the next is read, so a run holds one page
//! of messages (and the ids of what it queued) whatever its size. Sending
//! starts as soon as the first rows are queued and goes on while the later
//! pages are read and queued (the first pages are small and double up to
//! the setting, so the first sends wait for little); it is bounded by
//! `WXNOTIFY_WECHAT_CONCURRENCY`, and once every page is queued every
//! running server helps. Followers whose first channel is the template message are
//! queued in bulk; an account paid with a credit is queued in a transaction
//! of its own that spends the credit, so a credit is never spent without
//! its message or twice. Running the same `run_id` again (after a crash,
//! or after a quota stop) queues nothing new for accounts already handled
//! (and spends no credit for them) and sends only what is still pending.

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use async_graphql::Value as GqlValue;
use chrono::Utc;

use super::credits::CreditKind;
use super::error::{NotifyError, invalid};
use super::outbox::{self, Channel, NewDelivery};
use super::render::{self, AccountRow, MessageTemplate, Placeholders};
use super::route;
use crate::db::DatabaseKind;
use crate::db::row::nullable;
use crate::db::sql::Sql;
use crate::hasura::Catalog;
use crate::services::Services;
use sea_orm::TransactionTrait;

/// The template a digest uses when none is named.
pub const DEFAULT_TEMPLATE: &str = "digest";

/// What `notifyDigest` was asked.
#[derive(Clone, Debug, Default)]
pub struct DigestRequest {
    /// An `account_bool_exp` as JSON; `None` (or null) is every account.
    pub filter: Option<serde_json::Value>,
    pub template: Option<String>,
    pub dry_run: bool,
    /// Resume this run instead of starting a new one.
    pub run_id: Option<String>,
    /// When the recipients exceed the template sends left today, send the
    /// first ones that fit instead of refusing to start.
    pub send_what_fits: bool,
}

/// What a run did. `skipped` counts candidates this call did not send:
/// no longer following, or already handled by an earlier call of the run.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct DigestReport {
    pub run_id: String,
    pub candidates: u64,
    pub sent: u64,
    /// Taken by WeChat for review (40252): IN_REVIEW until its report.
    pub in_review: u64,
    pub failed: u64,
    pub skipped: u64,
    pub pending: u64,
    pub stopped: Option<String>,
    /// Recipients whose values were (or, in a dry run, would be) cut to fit
    /// their template.
    pub cut: u64,
    /// Recipients whose message WeChat would refuse: FAILED with the
    /// reason, never sent.
    pub refused: u64,
    /// What checking the digest's templates found, per template.
    pub problems: Vec<String>,
    /// Recipients left for another day: over the template sends left
    /// today (with `send_what_fits`); run the same run_id again to send them.
    pub over_quota: u64,
}

/// An account to notify and its unread rows per type.
#[derive(Clone, Debug)]
pub struct Candidate {
    pub account: AccountRow,
    pub counts: BTreeMap<String, i64>,
}

/// The label of rows whose `type` is NULL.
pub(super) const UNTYPED: &str = "其他";

/// Runs (or with `dry_run` only counts) a digest, a page of accounts at a
/// time: each page's candidates are read, rendered, fitted into the
/// template sends left today and queued before the next page is read;
/// then the queued messages are sent.
pub async fn run(services: &Services, request: &DigestRequest) -> Result<DigestReport, NotifyError> {
    let run_id = run_id(request.run_id.as_deref())?;
    let digest = Digest::prepare(services, request).await?;
    let resumed = run_started(services, &run_id).await?;
    let mut report = DigestReport { run_id, ..DigestReport::default() };
    let mut fits = Fits::default();
    if request.dry_run {
        let (needed, candidates) = digest.needed(&report.run_id, resumed, &mut fits).await?;
        report.candidates = candidates;
        report.problems = fits.finish(digest.problems.clone(), &mut report);
        if needed > 0
            && let Some(quota) = template_quota(services).await
            && needed > quota.remain
        {
            report.problems.push(over_quota(needed, &quota));
        }
        return Ok(report);
    }
    // The first pages are small and double, so that sending starts after
    // one small page is queued and the later pages keep ahead of the sends.
    let mut pages = digest.pages().starting_at(outbox::claim_size(services));
    // Nothing is asked of WeChat, nor queued, when nobody is a candidate.
    // The count the quota check may need is read meanwhile.
    let finding = async {
        while let Some(page) = pages.next().await? {
            if !page.is_empty() {
                let quota = template_quota(services).await;
                return Ok::<_, NotifyError>(Some((page, quota)));
            }
        }
        Ok(None)
    };
    let counting = async { if request.send_what_fits { Ok(None) } else { digest.count().await.map(Some) } };
    let (found, count) = tokio::try_join!(finding, counting)?;
    let Some((first, quota)) = found else {
        report.problems = fits.finish(digest.problems.clone(), &mut report);
        return Ok(report);
    };
    let mut gate = QuotaGate::open(&digest, &report.run_id, resumed, quota, count).await?;
    let (feeder, feed) = outbox::feed();
    let prefix = format!("digest:{}:", report.run_id);
    // Each page is queued while what is queued already is sent (by every
    // running server once the last page is queued); the tally covers every
    // message queued.
    let queueing = async {
        let mut feeder = feeder;
        let (mut already, mut no_credit) = (0u64, 0u64);
        let (mut page_no, started) = (0u64, std::time::Instant::now());
        let mut found = Some(first);
        let chunk = outbox::insert_chunk(&services.db);
        while let Some(candidates) = found {
            let mut page = digest.plan_page(&report.run_id, &candidates, &mut fits)?;
            report.candidates += candidates.len() as u64;
            let fresh = fresh(services, &page.bulk, resumed).await?;
            report.over_quota += gate.trim(&mut page.bulk, &fresh);
            for bulk in page.bulk.chunks(chunk) {
                let queued = outbox::enqueue(&services.db, bulk).await?;
                let mut pending = Vec::with_capacity(queued.len());
                // Refused messages are written FAILED and counted in `refused`.
                for ((id, is_pending), delivery) in queued.iter().zip(bulk) {
                    match (*is_pending, delivery.refused.is_some()) {
                        (true, _) => pending.push(*id),
                        (false, false) => already += 1,
                        (false, true) => {}
                    }
                }
                feeder.send(pending);
            }
            for one in &page.credited {
                match queue_with_credit(services, one).await? {
                    Queued::New(id) => feeder.send(vec![id]),
                    Queued::Before => already += 1,
                    Queued::NoCredit => no_credit += 1,
                }
            }
            page_no += 1;
            tracing::info!(
                run_id = %report.run_id,
                page = page_no,
                candidates = report.candidates,
                queued = feeder.len(),
                elapsed_ms = started.elapsed().as_millis() as u64,
                "digest queued a page of recipients"
            );
            found = pages.next().await?;
        }
        tracing::info!(run_id = %report.run_id, candidates = report.candidates, pending = feeder.len(), "digest queued every page; sending the rest");
        Ok::<_, NotifyError>((already + no_credit, feeder))
    };
    let (handled, tally) = outbox::deliver_shared(services, &prefix, feed, queueing).await?;
    report.problems = fits.finish(digest.problems.clone(), &mut report);
    report.sent = tally.sent;
    report.in_review = tally.in_review;
    report.failed = tally.failed;
    report.skipped = tally.skipped + handled;
    report.pending = tally.pending;
    report.stopped = tally.stopped;
    tracing::info!(?report, "digest finished");
    Ok(report)
}

/// Whether an earlier call of the run queued anything (then each page
/// looks which of its messages are queued already).
async fn run_started(services: &Services, run_id: &str) -> Result<bool, NotifyError> {
    let mut sql = Sql::new("SELECT id FROM delivery WHERE dedupe_key LIKE ");
    sql.bind(format!("digest:{run_id}:%")).push(" LIMIT 1");
    Ok(sql.one(&services.db).await?.is_some())
}

/// For each of `bulk`: whether it is a new template message, neither
/// refused nor queued by an earlier call of the run.
async fn fresh(services: &Services, bulk: &[NewDelivery], resumed: bool) -> Result<Vec<bool>, NotifyError> {
    let mut known = std::collections::HashSet::new();
    if resumed {
        for chunk in bulk.chunks(KNOWN_CHUNK) {
            let mut sql = Sql::new("SELECT dedupe_key FROM delivery WHERE dedupe_key IN ");
            sql.list(chunk.iter().map(|d| d.dedupe_key.clone()));
            for row in sql.all(&services.db).await? {
                known.insert(row.try_get::<String>("", "dedupe_key")?);
            }
        }
    }
    Ok(bulk.iter().map(|d| d.refused.is_none() && !known.contains(&d.dedupe_key)).collect())
}

/// Keys one look for already-queued messages lists.
const KNOWN_CHUNK: usize = 1000;

/// The template sends WeChat has left today (`/cgi-bin/openapi/quota/get`),
/// or `None` when it cannot say (no permission, an error): then the run
/// goes on and stops at the quota if it must.
async fn template_quota(services: &Services) -> Option<crate::wechat::templates::Quota> {
    match services.wechat.quota(crate::wechat::App::Oa, TEMPLATE_SEND).await {
        Ok(quota) => {
            crate::templates::record_quota(TEMPLATE_SEND, &quota);
            Some(quota)
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not read the template-send quota; the digest goes on and stops at the quota if it must");
            None
        }
    }
}

fn over_quota(needed: i64, quota: &crate::wechat::templates::Quota) -> String {
    format!(
        "the digest would send {needed} template messages but only {} are left today (daily limit {}, used {}): \
         send it to fewer accounts, wait for the quota to reset at midnight, or pass send_what_fits: true to send {} now \
         and the rest with the same run_id later",
        quota.remain.max(0),
        quota.daily_limit,
        quota.used,
        quota.remain.max(0)
    )
}

/// Keeps a run's template messages within the sends WeChat has left today:
/// messages queued by an earlier call of the run count as sent. Over the
/// quota the run is refused with the numbers before anything is queued,
/// or with `send_what_fits` the first that fit are kept and the rest left
/// for the same run_id another day.
struct QuotaGate {
    /// New template messages that may still be queued; `None`: no limit known.
    room: Option<i64>,
}

impl QuotaGate {
    /// `quota`: what WeChat said is left today; `count`: how many accounts
    /// the candidate query finds, when the run may not be cut to fit
    /// (`None` with `send_what_fits`).
    async fn open(
        digest: &Digest<'_>,
        run_id: &str,
        resumed: bool,
        quota: Option<crate::wechat::templates::Quota>,
        count: Option<i64>,
    ) -> Result<QuotaGate, NotifyError> {
        let Some(quota) = quota else { return Ok(QuotaGate { room: None }) };
        if count.is_some_and(|count| count > quota.remain) {
            // More candidates than sends left: count exactly what this run
            // would send, before queueing anything.
            let (needed, _) = digest.needed(run_id, resumed, &mut Fits::default()).await?;
            if needed > quota.remain {
                return Err(NotifyError::OverQuota(over_quota(needed, &quota)));
            }
        }
        Ok(QuotaGate { room: Some(quota.remain.max(0)) })
    }

    /// Drops the fresh messages of `bulk` beyond the room left; returns how
    /// many it dropped.
    fn trim(&mut self, bulk: &mut Vec<NewDelivery>, fresh: &[bool]) -> u64 {
        let Some(room) = self.room.as_mut() else { return 0 };
        let mut keep = fresh.iter().map(|fresh| {
            if !fresh {
                return true;
            }
            *room -= 1;
            *room >= 0
        });
        let before = bulk.len();
        bulk.retain(|_| keep.next().unwrap_or(false));
        *room = (*room).max(0);
        let left = (before - bulk.len()) as u64;
        if left > 0 {
            tracing::warn!(left, "the digest is over today's template-send quota: sending what fits");
        }
        left
    }
}

const TEMPLATE_SEND: &str = "/cgi-bin/message/template/send";

/// What a digest will queue: followers' template messages in bulk, and
/// the accounts whose message may be paid with a credit, each with its
/// routes rendered in order; and what checking the templates found.
#[derive(Debug, Default)]
pub struct Plan {
    pub candidates: usize,
    pub bulk: Vec<NewDelivery>,
    pub credited: Vec<Credited>,
    /// Recipients whose values are cut, and whose message is refused.
    pub cut: u64,
    pub refused: u64,
    /// Per template: its problems against the library, and what fitting
    /// its recipients found (counts and the first example).
    pub problems: Vec<String>,
}

/// What one page of candidates will queue.
#[derive(Debug, Default)]
struct Page {
    bulk: Vec<NewDelivery>,
    credited: Vec<Credited>,
}

/// An account whose first route is paid with a credit.
#[derive(Debug)]
pub struct Credited {
    pub account: AccountRow,
    pub key: String,
    pub routes: Vec<(MessageTemplate, render::Rendered)>,
}

enum Queued {
    New(i64),
    /// An earlier call of the run queued it.
    Before,
    /// The credit was spent elsewhere meanwhile and nothing else reaches it.
    NoCredit,
}

/// Queues one credit-paid message, spending its credit, in one
/// transaction; nothing when the run queued this account before.
async fn queue_with_credit(services: &Services, one: &Credited) -> Result<Queued, NotifyError> {
    // The first statement reads, and the run's own claims and records commit
    // meanwhile: on SQLite a deferred transaction could then not become a
    // writer (SQLITE_BUSY_SNAPSHOT, 517, which no busy timeout waits out),
    // so it takes the write lock at BEGIN. PostgreSQL ignores the mode.
    let immediate =
        sea_orm::TransactionOptions { sqlite_transaction_mode: Some(sea_orm::SqliteTransactionMode::Immediate), ..Default::default() };
    let txn = services.db.begin_with_options(immediate).await?;
    let mut seen = Sql::new("SELECT id FROM delivery WHERE dedupe_key = ");
    seen.bind(one.key.clone());
    if seen.one(&txn).await?.is_some() {
        txn.rollback().await?;
        return Ok(Queued::Before);
    }
    let mp_appid = services.wechat.appid(crate::wechat::App::Mp);
    let Some(delivery) = route::pick(&txn, &one.account, one.routes.clone(), one.key.clone(), mp_appid).await? else {
        txn.rollback().await?;
        return Ok(Queued::NoCredit);
    };
    let queued = outbox::enqueue(&txn, std::slice::from_ref(&delivery)).await?;
    txn.commit().await?;
    Ok(match queued.first() {
        Some((id, true)) => Queued::New(*id),
        _ => Queued::Before,
    })
}

/// Finds every candidate and renders its message, writing nothing: the
/// whole run in memory, for tools and tests (a run itself goes a page at
/// a time, see [`run`]).
pub async fn plan(services: &Services, request: &DigestRequest, run_id: &str) -> Result<Plan, NotifyError> {
    let digest = Digest::prepare(services, request).await?;
    let mut plan = Plan::default();
    let mut fits = Fits::default();
    let mut pages = digest.pages();
    while let Some(found) = pages.next().await? {
        let page = digest.plan_page(run_id, &found, &mut fits)?;
        plan.candidates += found.len();
        plan.bulk.extend(page.bulk);
        plan.credited.extend(page.credited);
    }
    let mut report = DigestReport::default();
    plan.problems = fits.finish(digest.problems.clone(), &mut report);
    (plan.cut, plan.refused) = (report.cut, report.refused);
    Ok(plan)
}

/// A digest ready to read its candidates: its templates in channel order,
/// checked, the template library, and the caller's filter compiled.
struct Digest<'a> {
    services: &'a Services,
    ordered: Vec<MessageTemplate>,
    library: crate::templates::Library,
    condition: Sql,
    now: chrono::DateTime<Utc>,
    /// What checking the templates against the library found.
    problems: Vec<String>,
}

impl<'a> Digest<'a> {
    async fn prepare(services: &'a Services, request: &DigestRequest) -> Result<Digest<'a>, NotifyError> {
        let name = request.template.as_deref().unwrap_or(DEFAULT_TEMPLATE);
        let templates = route::templates(&services.db, name).await?;
        let ordered = route::by_order(&templates, &services.settings.channel_order);
        if ordered.is_empty() {
            let channels: Vec<&str> = services.settings.channel_order.iter().map(|c| c.as_str()).collect();
            return Err(invalid(format!(
                "no template of digest `{name}` has a channel of WXNOTIFY_CHANNEL_ORDER ({}): give `{name}` (or `{name}_oa_subscribe`, `{name}_subscribe`, `{name}_form`) one of them",
                channels.join(",")
            )));
        }
        let now = Utc::now();
        // Checked once up front, so a typo fails before anything is queued
        // even when nobody is a candidate.
        let blank = Candidate { account: AccountRow::default(), counts: BTreeMap::new() };
        for template in &ordered {
            render::render(template, &placeholders(&blank, now, services.settings.timezone))?;
        }
        let library = crate::templates::Library::load(&services.db).await?;
        let problems = ordered
            .iter()
            .filter_map(|t| crate::templates::check_message_template(&library, &t.name, t.channel.as_str(), &t.template_id, &t.data).err())
            .collect();
        let condition = condition(services, request.filter.as_ref())?;
        Ok(Digest { services, ordered, library, condition, now, problems })
    }

    fn pages(&self) -> Pages<'_> {
        Pages::new(self.services, &self.condition, &self.ordered)
    }

    /// How many accounts the candidate query finds, at most (one count,
    /// for the quota check).
    async fn count(&self) -> Result<i64, NotifyError> {
        // One probe of the (account_account, type) index per account the
        // filter keeps, rather than a join with every unread row.
        let text = format!(
            "SELECT count(*) AS n FROM account AS a WHERE {} \
             AND EXISTS (SELECT 1 FROM point_count AS p WHERE p.account_account = a.id) AND (",
            self.condition.text
        );
        let mut sql = Sql::continuing(text, self.condition.params.clone());
        reachable_condition(&mut sql, &self.ordered);
        sql.push(")");
        let row = sql.one(&self.services.db).await?.ok_or_else(|| sea_orm::DbErr::Custom("a count without a row".into()))?;
        Ok(row.try_get::<i64>("", "n")?)
    }

    /// Over every page: the new template messages the run would queue
    /// (neither refused nor queued by an earlier call) and the candidates.
    async fn needed(&self, run_id: &str, resumed: bool, fits: &mut Fits) -> Result<(i64, u64), NotifyError> {
        let (mut needed, mut candidates) = (0i64, 0u64);
        let mut pages = self.pages();
        while let Some(found) = pages.next().await? {
            let page = self.plan_page(run_id, &found, fits)?;
            candidates += found.len() as u64;
            needed += fresh(self.services, &page.bulk, resumed).await?.iter().filter(|f| **f).count() as i64;
        }
        Ok((needed, candidates))
    }

    /// Renders one page's messages, tallying what fitting them found.
    fn plan_page(&self, run_id: &str, found: &[Candidate], fits: &mut Fits) -> Result<Page, NotifyError> {
        let services = self.services;
        let (tz, overflow) = (services.settings.timezone, services.settings.template_overflow);
        let mp_appid = services.wechat.appid(crate::wechat::App::Mp);
        let mut page = Page::default();
        for candidate in found {
            let key = format!("digest:{run_id}:{}", candidate.account.id);
            let routes = route::reachable(&self.ordered, &candidate.account);
            let values = placeholders(candidate, self.now, tz);
            match routes.first() {
                Some(first) if first.channel == Channel::OaTemplate => {
                    let touser = candidate.account.oaopenid.clone().unwrap_or_default();
                    let rendered = render::render_with(first, &values, &self.library, overflow)?;
                    fits.tally(&first.name, &rendered.fitted);
                    let fit = rendered.fitted.clone();
                    let message = rendered.template_message(&touser, mp_appid, &key);
                    page.bulk.push(NewDelivery::template(Some(candidate.account.id), &message, key).fitted(&fit));
                }
                Some(_) => {
                    let routes: Vec<(MessageTemplate, render::Rendered)> = routes
                        .into_iter()
                        .map(|t| render::render_with(&t, &values, &self.library, overflow).map(|r| (t, r)))
                        .collect::<Result<_, _>>()?;
                    if let Some((t, r)) = routes.first() {
                        fits.tally(&t.name, &r.fitted);
                    }
                    page.credited.push(Credited { account: candidate.account.clone(), key, routes });
                }
                None => {}
            }
        }
        Ok(page)
    }
}

/// What fitting the recipients' values into their templates found, per
/// template name: recipients cut, refused, and the first of each.
#[derive(Default)]
struct Fits {
    by_template: BTreeMap<String, (u64, u64, Option<String>, Option<String>)>,
}

impl Fits {
    fn tally(&mut self, name: &str, fitted: &crate::templates::Fitted) {
        let entry = self.by_template.entry(name.to_string()).or_default();
        if let Some(reason) = &fitted.refused {
            entry.1 += 1;
            entry.3.get_or_insert_with(|| reason.clone());
        } else if !fitted.cut.is_empty() {
            entry.0 += 1;
            entry.2 = entry.2.take().or_else(|| fitted.notes.clone());
        }
    }

    /// Sets the report's `cut` and `refused`; returns `problems` with what
    /// fitting found appended.
    fn finish(self, mut problems: Vec<String>, report: &mut DigestReport) -> Vec<String> {
        for (name, (cut, refused, cut_example, refused_example)) in self.by_template {
            report.cut += cut;
            report.refused += refused;
            if cut > 0 {
                problems.push(format!("`{name}`: {cut} recipient(s) get values cut to fit, e.g. {}", cut_example.unwrap_or_default()));
            }
            if refused > 0 {
                problems.push(format!(
                    "`{name}`: {refused} recipient(s) not sent, their message breaks the template's rules, e.g. {}",
                    refused_example.unwrap_or_default()
                ));
            }
        }
        problems
    }
}

pub(super) fn placeholders(candidate: &Candidate, now: chrono::DateTime<Utc>, tz: chrono_tz::Tz) -> Placeholders {
    let mut values = Placeholders::for_account(&candidate.account, now, tz);
    values.set("summary", Some(summary(&candidate.counts)));
    values.set("total", Some(candidate.counts.values().sum::<i64>().to_string()));
    values.set_counts(candidate.counts.clone());
    values
}

/// "聊天3条，投递邀约1条": the types by count, most first.
pub fn summary(counts: &BTreeMap<String, i64>) -> String {
    let mut parts: Vec<(&String, &i64)> = counts.iter().collect();
    parts.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    parts.iter().map(|(kind, n)| format!("{kind}{n}条")).collect::<Vec<_>>().join("，")
}

fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(crate::tables::catalog)
}

/// The caller's `account_bool_exp` (over the alias `a`), compiled by the
/// table engine; absent or null is every account, as in Hasura.
fn condition(services: &Services, filter: Option<&serde_json::Value>) -> Result<Sql, NotifyError> {
    match filter {
        Some(value) if !value.is_null() => {
            let value = GqlValue::from_json(value.clone()).map_err(|e| invalid(format!("`where` is not an account_bool_exp: {e}")))?;
            Ok(crate::hasura::condition::condition(catalog(), services.settings.database_kind, "account", "a", &value)?)
        }
        _ => Ok(Sql::new(EVERY_ACCOUNT)),
    }
}

/// The candidates a page of `WXNOTIFY_DIGEST_PAGE` accounts (those the filter
/// keeps, in id order) at a time.
struct Pages<'a> {
    services: &'a Services,
    condition: &'a Sql,
    ordered: &'a [MessageTemplate],
    /// The last account id of the page before.
    after: Option<i64>,
    done: bool,
    /// Accounts the next page holds: `WXNOTIFY_DIGEST_PAGE`, or less while
    /// the pages of a run start small (doubling up to it).
    size: usize,
}

impl<'a> Pages<'a> {
    /// Pages of `WXNOTIFY_DIGEST_PAGE` accounts from the first account on.
    fn new(services: &'a Services, condition: &'a Sql, ordered: &'a [MessageTemplate]) -> Self {
        Pages { services, condition, ordered, after: None, done: false, size: services.settings.digest_page }
    }

    /// Pages that start at `first` accounts and double up to `WXNOTIFY_DIGEST_PAGE`.
    fn starting_at(mut self, first: usize) -> Self {
        self.size = first.clamp(1, self.services.settings.digest_page);
        self
    }

    /// The next page's candidates (a page may have none: its accounts have
    /// no unread rows or no way to be reached); `None` after the last page.
    async fn next(&mut self) -> Result<Option<Vec<Candidate>>, NotifyError> {
        if self.done {
            return Ok(None);
        }
        // The page ends at the WXNOTIFY_DIGEST_PAGE-th account the filter keeps
        // after the last page: one walk of the primary key (and the filter).
        let mut end =
            Sql::continuing(format!("SELECT a.id FROM account AS a WHERE {}", self.condition.text), self.condition.params.clone());
        if let Some(after) = self.after {
            end.push(" AND a.id > ").bind(after);
        }
        end.push(" ORDER BY a.id LIMIT 1 OFFSET ").bind(self.size as i64 - 1);
        self.size = (self.size * 2).min(self.services.settings.digest_page);
        let upto: Option<i64> = match end.one(&self.services.db).await? {
            Some(row) => Some(row.try_get("", "id")?),
            None => None,
        };
        self.done = upto.is_none();
        let page = candidates_between(self.services, self.condition, self.ordered, self.after, upto).await?;
        self.after = upto;
        Ok(Some(page))
    }
}

/// SQLite: the rows of `rows` as one JSON text, an array of one array of
/// `columns` per row, in the single row's column `page` (`[]` for none).
fn json_page(rows: &Sql, columns: &str) -> Sql {
    Sql::continuing(format!("SELECT json_group_array(json_array({columns})) AS page FROM ({})", rows.text), rows.params.clone())
}

/// The candidates among the accounts with `after < id <= upto`: accounts
/// matching `condition` that one of the `ordered` templates may reach
/// (following, for the template message; a valid credit for a credit-paid
/// one), with unread rows, and their counts per type, in account order.
///
/// Two statements, run at once: the page's accounts (one range walk of the
/// primary key) and its counts per (account, type) (one range walk of the
/// `(account_account, type)` index, grouped as it comes; on SQLite folded
/// into one JSON text, so the page's counts cross the driver as one row). When the digest
/// has no `where`, the counts read `point_count` alone: the page's range
/// holds exactly the page's accounts, and the counts of those no template
/// reaches are dropped here. A `where` joins the accounts it keeps into the
/// counts, so a selective one still counts only their rows. The two read
/// a moment apart: an account is a candidate when both see it (as with one
/// statement, the counts are those of the moment the page is read). One statement
/// that joined the accounts, folded the counts into JSON and joined the
/// account columns again cost twice as much on PostgreSQL
/// (docs/performance.md, "Digest and real-time sends").
async fn candidates_between(
    services: &Services,
    condition: &Sql,
    ordered: &[MessageTemplate],
    after: Option<i64>,
    upto: Option<i64>,
) -> Result<Vec<Candidate>, NotifyError> {
    // Each range is given on both sides of a join: PostgreSQL's generic plan
    // of the statement otherwise scans every unread row for each page.
    let range = |sql: &mut Sql, columns: &[&str]| {
        if let Some(after) = after {
            let after = sql.param(after);
            for column in columns {
                sql.push(&format!(" AND {column} > {after}"));
            }
        }
        if let Some(upto) = upto {
            let upto = sql.param(upto);
            for column in columns {
                sql.push(&format!(" AND {column} <= {upto}"));
            }
        }
    };
    let kept = |sql: &mut Sql| {
        sql.push(" AND (");
        reachable_condition(sql, ordered);
        sql.push(")");
    };
    let mut accounts = Sql::continuing(
        format!("SELECT {} FROM account AS a WHERE {}", render::account_columns("a"), condition.text),
        condition.params.clone(),
    );
    range(&mut accounts, &["a.id"]);
    kept(&mut accounts);
    accounts.push(" ORDER BY a.id");
    let counts_of = "SELECT p.account_account, p.type AS kind, count(*) AS n FROM";
    let mut counts = if keeps_every_account(condition) {
        let mut sql = Sql::new(format!("{counts_of} point_count AS p WHERE (1=1)"));
        range(&mut sql, &["p.account_account"]);
        sql
    } else {
        let mut sql = Sql::continuing(
            format!("{counts_of} account AS a JOIN point_count AS p ON p.account_account = a.id WHERE {}", condition.text),
            condition.params.clone(),
        );
        range(&mut sql, &["a.id", "p.account_account"]);
        kept(&mut sql);
        sql
    };
    counts.push(" GROUP BY p.account_account, p.type");
    // SQLite's driver hands each row from its worker thread to this task
    // over a channel, waking one side per row: a page's 5,000 accounts and
    // 15,000 count rows come as one JSON text each instead (PostgreSQL's
    // rows come in buffers).
    let sqlite = services.settings.database_kind == DatabaseKind::Sqlite;
    if sqlite {
        counts = json_page(&counts, "account_account, kind, n");
    }
    let asked = if sqlite { json_page(&accounts, render::ACCOUNT_COLUMN_NAMES) } else { accounts.clone() };
    let (rows, counts) = futures::try_join!(asked.all(&services.db), counts.all(&services.db))?;
    let accounts = if sqlite {
        let page: String = match rows.first() {
            Some(row) => row.try_get("", "page")?,
            None => "[]".into(),
        };
        match AccountRow::from_json_page(&page) {
            Some(accounts) => accounts,
            None => accounts.all(&services.db).await?.iter().map(AccountRow::from_row).collect::<Result<_, _>>()?,
        }
    } else {
        rows.iter().map(AccountRow::from_row).collect::<Result<Vec<_>, _>>()?
    };
    let mut by_account: HashMap<i64, BTreeMap<String, i64>> = HashMap::with_capacity(accounts.len());
    let mut add = |account: i64, kind: Option<String>, n: i64| {
        *by_account.entry(account).or_default().entry(kind.unwrap_or_else(|| UNTYPED.to_string())).or_default() += n;
    };
    if sqlite {
        for row in &counts {
            let page: String = row.try_get("", "page")?;
            let tuples: Vec<(i64, Option<String>, i64)> =
                serde_json::from_str(&page).map_err(|e| NotifyError::Database(sea_orm::DbErr::Type(format!("a page of counts: {e}"))))?;
            for (account, kind, n) in tuples {
                add(account, kind, n);
            }
        }
    } else {
        for row in &counts {
            add(row.try_get("", "account_account")?, nullable(row, "kind")?, row.try_get::<i64>("", "n")?);
        }
    }
    let mut out: Vec<Candidate> = Vec::with_capacity(by_account.len());
    for account in accounts {
        if let Some(counts) = by_account.remove(&account.id) {
            out.push(Candidate { account, counts });
        }
    }
    Ok(out)
}

/// The condition of a digest without `where` (or with an empty one).
fn keeps_every_account(condition: &Sql) -> bool {
    condition.text == EVERY_ACCOUNT && condition.params.is_empty()
}

/// What [`condition`] and the table engine write for "every row".
const EVERY_ACCOUNT: &str = "(1=1)";

/// Every candidate of the digest template `name` under the configured
/// channel order, read a page at a time as a run reads them (the
/// candidate query alone, for benchmarks and tools).
pub async fn candidates_of(services: &Services, filter: Option<&serde_json::Value>, name: &str) -> Result<Vec<Candidate>, NotifyError> {
    let templates = route::templates(&services.db, name).await?;
    let ordered = route::by_order(&templates, &services.settings.channel_order);
    let condition = condition(services, filter)?;
    let mut pages = Pages::new(services, &condition, &ordered);
    let mut out = Vec::new();
    while let Some(page) = pages.next().await? {
        out.extend(page);
    }
    Ok(out)
}

/// `a` can be reached by one of `ordered`: following, or holding a valid
/// credit a credit-paid template can spend.
fn reachable_condition(sql: &mut Sql, ordered: &[MessageTemplate]) {
    let following = "(a.oaopenid IS NOT NULL AND a.oaopenid <> '')";
    let mp_user = "a.mp_openid IS NOT NULL AND a.mp_openid <> ''";
    let any_oa = ordered.iter().any(|t| t.channel == Channel::OaTemplate);
    let credit: Vec<(CreditKind, &MessageTemplate)> =
        ordered.iter().filter_map(|t| CreditKind::paying(t.channel).map(|kind| (kind, t))).collect();
    sql.push(if any_oa { following } else { "1=0" });
    if credit.is_empty() {
        return;
    }
    sql.push(" OR EXISTS (SELECT 1 FROM push_code AS c WHERE c.account_account = a.id AND (c.expire_at IS NULL OR c.expire_at > ");
    sql.bind(Utc::now()).push(") AND (1=0");
    for (kind, template) in credit {
        sql.push(" OR (c.kind = ").bind(kind.as_str());
        if kind.per_template() {
            sql.push(" AND c.template_id = ").bind(template.template_id.clone());
        }
        // Mini-program credits pay for a message to the account's mini-program openid.
        if template.channel != Channel::OaSubscribe {
            sql.push(" AND ").push(mp_user);
        }
        sql.push(")");
    }
    sql.push("))");
}

/// The given run id, checked, or a new one.
fn run_id(given: Option<&str>) -> Result<String, NotifyError> {
    match given {
        Some(id) if !id.is_empty() && id.len() <= 40 && id.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) => {
            Ok(id.to_string())
        }
        Some(id) => Err(invalid(format!("run_id {id:?} must be 1 to 40 letters, digits, '-', '_' or '.'"))),
        None => Ok(format!("{}-{:06x}", Utc::now().format("%Y%m%dT%H%M%S"), rand::random::<u32>() & 0xff_ffff)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_lists_types_by_count() {
        let counts = BTreeMap::from([("投递邀约".to_string(), 1), ("聊天".to_string(), 3)]);
        assert_eq!(summary(&counts), "聊天3条，投递邀约1条");
    }

    #[test]
    fn run_ids_are_checked_or_made() {
        assert_eq!(run_id(Some("nightly-2026.11.21")).unwrap(), "nightly-2026.11.21");
        assert!(run_id(Some("a:b")).is_err());
        assert!(run_id(Some("")).is_err());
        let made = run_id(None).unwrap();
        assert!(made.len() > 10 && run_id(Some(&made)).is_ok(), "{made}");
    }
}
