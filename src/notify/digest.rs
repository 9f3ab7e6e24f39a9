//! `notifyDigest`: the seed's scheduled notice done right.
//!
//! ONE aggregate query finds every account the digest can reach (the
//! caller's `account_bool_exp`, compiled by the table engine, and a way to
//! reach it: following, or a credit for one of the digest's credit-paid
//! templates) with unread `point_count` rows, and counts them per `type`.
//! Each account gets one message on the first channel of
//! `WXNOTIFY_CHANNEL_ORDER` that reaches it (see [`super::route`]), queued
//! in the outbox under `digest:<run_id>:<account id>` and sent with bounded
//! concurrency. Followers whose first channel is the template message are
//! queued in bulk; an account paid with a credit is queued in a transaction
//! of its own that spends the credit, so a credit is never spent without
//! its message or twice. Running the same `run_id` again (after a crash,
//! or after a quota stop) queues nothing new for accounts already handled
//! (and spends no credit for them) and sends only what is still pending.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use async_graphql::Value as GqlValue;
use chrono::Utc;

use super::credits::CreditKind;
use super::error::{NotifyError, invalid};
use super::outbox::{self, Channel, NewDelivery};
use super::render::{self, AccountRow, MessageTemplate, Placeholders};
use super::route;
use crate::db::DatabaseKind;
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

/// Runs (or with `dry_run` only counts) a digest.
pub async fn run(services: &Services, request: &DigestRequest) -> Result<DigestReport, NotifyError> {
    let run_id = run_id(request.run_id.as_deref())?;
    let mut plan = plan(services, request, &run_id).await?;
    let mut report = DigestReport {
        run_id,
        candidates: plan.candidates as u64,
        cut: plan.cut,
        refused: plan.refused,
        problems: plan.problems.clone(),
        ..DigestReport::default()
    };
    if request.dry_run {
        match fit_quota(services, &report.run_id, &mut plan.bulk.clone(), false).await {
            Ok(_) => {}
            Err(NotifyError::OverQuota(over_quota)) => report.problems.push(over_quota),
            Err(e) => return Err(e),
        }
        return Ok(report);
    }
    if plan.candidates == 0 {
        return Ok(report);
    }
    report.over_quota = fit_quota(services, &report.run_id, &mut plan.bulk, request.send_what_fits).await?;
    let queued = outbox::enqueue(&services.db, &plan.bulk).await?;
    let mut pending: Vec<i64> = queued.iter().filter(|(_, pending)| *pending).map(|(id, _)| *id).collect();
    // Refused messages are written FAILED and counted in `refused`.
    let refused_here = queued.iter().zip(&plan.bulk).filter(|((_, pending), d)| !pending && d.refused.is_some()).count();
    let mut already = (queued.len() - pending.len() - refused_here) as u64;
    let mut no_credit = 0u64;
    for one in &plan.credited {
        match queue_with_credit(services, one).await? {
            Queued::New(id) => pending.push(id),
            Queued::Before => already += 1,
            Queued::NoCredit => no_credit += 1,
        }
    }
    tracing::info!(run_id = %report.run_id, candidates = plan.candidates, pending = pending.len(), "digest queued; sending");
    // Every running server helps send it; the tally covers all of `pending`.
    let tally = outbox::deliver_shared(services, &format!("digest:{}:", report.run_id), pending).await?;
    report.sent = tally.sent;
    report.in_review = tally.in_review;
    report.failed = tally.failed;
    report.skipped = tally.skipped + already + no_credit;
    report.pending = tally.pending;
    report.stopped = tally.stopped;
    tracing::info!(?report, "digest finished");
    Ok(report)
}

/// Keeps the run's template messages within the sends WeChat has left
/// today (`/cgi-bin/openapi/quota/get`): messages queued by an earlier call
/// of the run count as sent. Over the quota the run is refused with the
/// numbers, or with `send_what_fits` the first that fit are kept and the
/// rest left for the same run_id another day. Returns how many were left.
/// When WeChat cannot say (no permission, an error), the run goes on and
/// stops at the quota as before.
async fn fit_quota(services: &Services, run_id: &str, bulk: &mut Vec<NewDelivery>, send_what_fits: bool) -> Result<u64, NotifyError> {
    let fresh: Vec<bool> = {
        let mut sql = Sql::new("SELECT dedupe_key FROM delivery WHERE dedupe_key LIKE ");
        sql.bind(format!("digest:{run_id}:%"));
        let known: std::collections::HashSet<String> =
            sql.all(&services.db).await?.iter().map(|r| r.try_get::<String>("", "dedupe_key")).collect::<Result<_, _>>()?;
        bulk.iter().map(|d| d.refused.is_none() && !known.contains(&d.dedupe_key)).collect()
    };
    let needed = fresh.iter().filter(|f| **f).count() as i64;
    if needed == 0 {
        return Ok(0);
    }
    let quota = match services.wechat.quota(crate::wechat::App::Oa, TEMPLATE_SEND).await {
        Ok(quota) => {
            crate::templates::record_quota(TEMPLATE_SEND, &quota);
            quota
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not read the template-send quota; the digest goes on and stops at the quota if it must");
            return Ok(0);
        }
    };
    if needed <= quota.remain {
        return Ok(0);
    }
    if !send_what_fits {
        return Err(NotifyError::OverQuota(format!(
            "the digest would send {needed} template messages but only {} are left today (daily limit {}, used {}):              send it to fewer accounts, wait for the quota to reset at midnight, or pass send_what_fits: true to send {} now              and the rest with the same run_id later",
            quota.remain.max(0),
            quota.daily_limit,
            quota.used,
            quota.remain.max(0)
        )));
    }
    let mut room = quota.remain.max(0);
    let mut keep = fresh.iter().map(|fresh| {
        if !fresh {
            return true;
        }
        room -= 1;
        room >= 0
    });
    let before = bulk.len();
    bulk.retain(|_| keep.next().unwrap_or(false));
    let left = (before - bulk.len()) as u64;
    tracing::warn!(left, remain = quota.remain, "the digest is over today's template-send quota: sending what fits");
    Ok(left)
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
    let txn = services.db.begin().await?;
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

/// Finds the candidates and renders their messages, writing nothing.
pub async fn plan(services: &Services, request: &DigestRequest, run_id: &str) -> Result<Plan, NotifyError> {
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
    let tz = services.settings.timezone;
    // Checked once up front, so a typo fails before anything is queued
    // even when nobody is a candidate.
    let blank = Candidate { account: AccountRow::default(), counts: BTreeMap::new() };
    for template in &ordered {
        render::render(template, &placeholders(&blank, now, tz))?;
    }
    let library = crate::templates::Library::load(&services.db).await?;
    let overflow = services.settings.template_overflow;
    let mut problems: Vec<String> = ordered
        .iter()
        .filter_map(|t| crate::templates::check_message_template(&library, &t.name, t.channel.as_str(), &t.template_id, &t.data).err())
        .collect();
    let found = candidates(services, request.filter.as_ref(), &ordered).await?;
    let mp_appid = services.wechat.appid(crate::wechat::App::Mp);
    let mut plan = Plan { candidates: found.len(), ..Plan::default() };
    // Per template name: recipients cut, refused, and the first of each.
    let mut fits: BTreeMap<String, (u64, u64, Option<String>, Option<String>)> = BTreeMap::new();
    let mut tally = |name: &str, fitted: &crate::templates::Fitted, plan: &mut Plan| {
        let entry = fits.entry(name.to_string()).or_default();
        if let Some(reason) = &fitted.refused {
            plan.refused += 1;
            entry.1 += 1;
            entry.3.get_or_insert_with(|| reason.clone());
        } else if !fitted.cut.is_empty() {
            plan.cut += 1;
            entry.0 += 1;
            entry.2 = entry.2.take().or_else(|| fitted.notes.clone());
        }
    };
    for candidate in &found {
        let key = format!("digest:{run_id}:{}", candidate.account.id);
        let routes = route::reachable(&ordered, &candidate.account);
        let values = placeholders(candidate, now, tz);
        match routes.first() {
            Some(first) if first.channel == Channel::OaTemplate => {
                let touser = candidate.account.oaopenid.clone().unwrap_or_default();
                let rendered = render::render_with(first, &values, &library, overflow)?;
                tally(&first.name, &rendered.fitted, &mut plan);
                let fit = rendered.fitted.clone();
                let message = rendered.template_message(&touser, mp_appid, &key);
                plan.bulk.push(NewDelivery::template(Some(candidate.account.id), &message, key).fitted(&fit));
            }
            Some(_) => {
                let routes: Vec<(MessageTemplate, render::Rendered)> = routes
                    .into_iter()
                    .map(|t| render::render_with(&t, &values, &library, overflow).map(|r| (t, r)))
                    .collect::<Result<_, _>>()?;
                if let Some((t, r)) = routes.first() {
                    tally(&t.name, &r.fitted, &mut plan);
                }
                plan.credited.push(Credited { account: candidate.account.clone(), key, routes });
            }
            None => {}
        }
    }
    for (name, (cut, refused, cut_example, refused_example)) in fits {
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
    plan.problems = problems;
    Ok(plan)
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

/// The one aggregate query: accounts matching `filter` that one of the
/// `ordered` templates may reach (following, for the template message; a
/// valid credit for a credit-paid one), with unread rows, and their counts
/// per type, in account order.
pub async fn candidates(
    services: &Services,
    filter: Option<&serde_json::Value>,
    ordered: &[MessageTemplate],
) -> Result<Vec<Candidate>, NotifyError> {
    let condition = match filter {
        // An absent or null `where` is every account, as in Hasura.
        Some(value) if !value.is_null() => {
            let value = GqlValue::from_json(value.clone()).map_err(|e| invalid(format!("`where` is not an account_bool_exp: {e}")))?;
            crate::hasura::condition::condition(catalog(), services.settings.database_kind, "account", "a", &value)?
        }
        _ => Sql::new("(1=1)"),
    };
    // The counts per (account, type) come from one pass over the
    // (account_account, type) index, joined with the accounts the filter
    // keeps (a selective filter stays an index lookup); the account columns
    // are then read once per account, next to its counts as a JSON array of
    // [type, count] pairs, rather than repeated on a row per type.
    let (pairs, text_cast) = match services.settings.database_kind {
        DatabaseKind::Postgres => ("json_agg(json_build_array(t.kind, t.n))", "CAST(g.counts AS TEXT)"),
        DatabaseKind::Sqlite => ("json_group_array(json_array(t.kind, t.n))", "g.counts"),
    };
    let text = format!(
        "SELECT {}, {text_cast} AS counts FROM (SELECT t.account_account, {pairs} AS counts FROM (\
         SELECT p.account_account, p.type AS kind, count(*) AS n FROM account AS a JOIN point_count AS p ON p.account_account = a.id \
         WHERE {} AND (",
        render::account_columns("o"),
        condition.text
    );
    let mut sql = Sql::continuing(text, condition.params);
    reachable_condition(&mut sql, ordered);
    sql.push(
        ") GROUP BY p.account_account, p.type) AS t GROUP BY t.account_account) AS g \
         JOIN account AS o ON o.id = g.account_account ORDER BY o.id",
    );
    let rows = sql.all(&services.db).await?;
    let mut out: Vec<Candidate> = Vec::with_capacity(rows.len());
    for row in &rows {
        let text: String = row.try_get("", "counts")?;
        let pairs: Vec<(Option<String>, i64)> = serde_json::from_str(&text)
            .map_err(|e| sea_orm::DbErr::Custom(format!("the candidate query's counts are not [type, count] pairs: {e}")))?;
        let mut counts = BTreeMap::new();
        for (kind, n) in pairs {
            *counts.entry(kind.unwrap_or_else(|| UNTYPED.to_string())).or_default() += n;
        }
        out.push(Candidate { account: AccountRow::from_row(row)?, counts });
    }
    Ok(out)
}

/// The candidates of the digest template `name` under the configured
/// channel order (the candidate query alone, for benchmarks and tools).
pub async fn candidates_of(services: &Services, filter: Option<&serde_json::Value>, name: &str) -> Result<Vec<Candidate>, NotifyError> {
    let templates = route::templates(&services.db, name).await?;
    candidates(services, filter, &route::by_order(&templates, &services.settings.channel_order)).await
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
