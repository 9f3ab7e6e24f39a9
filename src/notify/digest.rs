//! `notifyDigest`: the seed's scheduled notice done right.
//!
//! ONE aggregate query finds every following account (`oaopenid` set, plus
//! the caller's `account_bool_exp`, compiled by the table engine) with
//! unread `point_count` rows, and counts them per `type`. Each account gets
//! one message, queued in the outbox under `digest:<run_id>:<account id>`
//! and sent with bounded concurrency. Running the same `run_id` again (after
//! a crash, or after a quota stop) queues nothing new for accounts already
//! handled and sends only what is still pending.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use async_graphql::Value as GqlValue;
use chrono::Utc;

use super::error::{NotifyError, invalid};
use super::outbox::{self, Channel, NewDelivery, Scope};
use super::render::{self, AccountRow, MessageTemplate, Placeholders};
use crate::db::sql::Sql;
use crate::hasura::Catalog;
use crate::services::Services;

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
}

/// What a run did. `skipped` counts candidates this call did not send:
/// no longer following, or already handled by an earlier call of the run.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct DigestReport {
    pub run_id: String,
    pub candidates: u64,
    pub sent: u64,
    pub failed: u64,
    pub skipped: u64,
    pub pending: u64,
    pub stopped: Option<String>,
}

/// An account to notify and its unread rows per type.
#[derive(Clone, Debug)]
pub struct Candidate {
    pub account: AccountRow,
    pub counts: BTreeMap<String, i64>,
}

/// The label of rows whose `type` is NULL.
const UNTYPED: &str = "其他";

/// Runs (or with `dry_run` only counts) a digest.
pub async fn run(services: &Services, request: &DigestRequest) -> Result<DigestReport, NotifyError> {
    let run_id = run_id(request.run_id.as_deref())?;
    let (candidates, deliveries) = plan(services, request, &run_id).await?;
    let mut report = DigestReport { run_id, candidates: candidates as u64, ..DigestReport::default() };
    if request.dry_run || deliveries.is_empty() {
        return Ok(report);
    }
    let queued = outbox::enqueue(&services.db, &deliveries).await?;
    let pending: Vec<i64> = queued.iter().filter(|(_, pending)| *pending).map(|(id, _)| *id).collect();
    let already = (queued.len() - pending.len()) as u64;
    tracing::info!(run_id = %report.run_id, candidates, pending = pending.len(), "digest queued; sending");
    let tally = outbox::deliver(services, &Scope::Ids(pending)).await?;
    report.sent = tally.sent;
    report.failed = tally.failed;
    report.skipped = tally.skipped + already;
    report.pending = tally.pending;
    report.stopped = tally.stopped;
    tracing::info!(?report, "digest finished");
    Ok(report)
}

/// Finds the candidates and renders one message each, writing nothing.
/// Returns the number of candidates and the messages to queue.
pub async fn plan(services: &Services, request: &DigestRequest, run_id: &str) -> Result<(usize, Vec<NewDelivery>), NotifyError> {
    let name = request.template.as_deref().unwrap_or(DEFAULT_TEMPLATE);
    let template = render::load(&services.db, name).await?;
    if template.channel != Channel::OaTemplate {
        return Err(invalid(format!(
            "a digest goes to followers as a service-account template message, but template `{name}` has channel {}: use an OA_TEMPLATE template",
            template.channel.as_str()
        )));
    }
    let found = candidates(services, request.filter.as_ref()).await?;
    let now = Utc::now();
    let tz = services.settings.timezone;
    // Checked once up front, so a typo fails before anything is queued
    // even when nobody is a candidate.
    render::render(&template, &placeholders(&Candidate { account: AccountRow::default(), counts: BTreeMap::new() }, now, tz))?;
    let mp_appid = services.wechat.appid(crate::wechat::App::Mp);
    let deliveries = found.iter().map(|c| message(&template, c, run_id, now, tz, mp_appid)).collect::<Result<Vec<_>, _>>()?;
    Ok((found.len(), deliveries))
}

fn message(
    template: &MessageTemplate,
    candidate: &Candidate,
    run_id: &str,
    now: chrono::DateTime<Utc>,
    tz: chrono_tz::Tz,
    mp_appid: Option<&str>,
) -> Result<NewDelivery, NotifyError> {
    let key = format!("digest:{run_id}:{}", candidate.account.id);
    let touser = candidate.account.oaopenid.clone().unwrap_or_default();
    let rendered = render::render(template, &placeholders(candidate, now, tz))?;
    Ok(NewDelivery::template(Some(candidate.account.id), &rendered.template_message(&touser, mp_appid, &key), key))
}

fn placeholders(candidate: &Candidate, now: chrono::DateTime<Utc>, tz: chrono_tz::Tz) -> Placeholders {
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

/// The one aggregate query: following accounts matching `filter` with
/// unread rows, and their counts per type, in account order.
pub async fn candidates(services: &Services, filter: Option<&serde_json::Value>) -> Result<Vec<Candidate>, NotifyError> {
    let condition = match filter {
        // An absent or null `where` is every account, as in Hasura.
        Some(value) if !value.is_null() => {
            let value = GqlValue::from_json(value.clone()).map_err(|e| invalid(format!("`where` is not an account_bool_exp: {e}")))?;
            crate::hasura::condition::condition(catalog(), services.settings.database_kind, "account", "a", &value)?
        }
        _ => Sql::new("(1=1)"),
    };
    let text = format!(
        "SELECT {}, p.type AS kind, count(*) AS n FROM account AS a JOIN point_count AS p ON p.account_account = a.id \
         WHERE a.oaopenid IS NOT NULL AND a.oaopenid <> '' AND {} GROUP BY a.id, p.type ORDER BY a.id",
        render::account_columns("a"),
        condition.text
    );
    let rows = Sql::continuing(text, condition.params).all(&services.db).await?;
    let mut out: Vec<Candidate> = Vec::new();
    for row in &rows {
        let id: i64 = row.try_get("", "id")?;
        let kind: Option<String> = row.try_get("", "kind")?;
        let n: i64 = row.try_get("", "n")?;
        if out.last().is_none_or(|c| c.account.id != id) {
            out.push(Candidate { account: AccountRow::from_row(row)?, counts: BTreeMap::new() });
        }
        if let Some(candidate) = out.last_mut() {
            *candidate.counts.entry(kind.unwrap_or_else(|| UNTYPED.to_string())).or_default() += n;
        }
    }
    Ok(out)
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
