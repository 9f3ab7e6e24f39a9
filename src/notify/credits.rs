//! Send credits (`push_code`, seed 001): form ids collected from form
//! submits (`collectFormIds`, valid 7 days), one-time mini-program
//! subscriptions (reported by the client through `grantSubscription`, and
//! by WeChat through the mini-program's `subscribe_msg_popup_event`),
//! service-account subscription-notice credits (WeChat's popup event on the
//! service account), and `pushBroadcast`, which spends one credit per
//! account.
//!
//! One acceptance is one credit however many report it: the client's
//! report and WeChat's event for the same account and template within
//! [`PAIRING_WINDOW`] of each other are paired into one row (`source`
//! BOTH), under a lock on the account row so two reports arriving at once
//! on two servers still pair. WeChat's retries of an event never get this
//! far: the callback de-duplicates them.
//!
//! A credit is spent by deleting it in one atomic statement that returns it
//! (`DELETE ... RETURNING`), so it is used at most once even when several
//! senders on several servers want it at once (PostgreSQL claimers skip a
//! row another holds instead of waiting for it). The oldest valid credit
//! goes first; expired ones are deleted before any claim.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Duration, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, TransactionTrait};

use super::error::{NotifyError, invalid};
use super::outbox::{self, NewDelivery, Scope};
use super::render::{self, AccountRow, MessageTemplate, Placeholders};
use crate::db::sql::{Sql, skip_locked};
use crate::services::Services;

/// What WeChat's developer tools hand out instead of a real form id.
pub const MOCK_FORM_ID: &str = "the formId is a mock one";

/// How long WeChat honours a form id.
pub fn form_id_life() -> Duration {
    Duration::days(7)
}

/// The kinds of `push_code` rows this module spends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CreditKind {
    FormId,
    /// A mini-program subscribe message (MP_SUBSCRIBE).
    Subscribe,
    /// A service-account subscription notice (OA_SUBSCRIBE).
    OaSubscribe,
}

impl CreditKind {
    /// The credit a message on `channel` is paid with (none for a
    /// follower's template message).
    pub fn paying(channel: super::outbox::Channel) -> Option<CreditKind> {
        use super::outbox::Channel;
        match channel {
            Channel::OaTemplate => None,
            Channel::OaSubscribe => Some(CreditKind::OaSubscribe),
            Channel::MpSubscribe => Some(CreditKind::Subscribe),
            Channel::MpForm => Some(CreditKind::FormId),
        }
    }

    /// Subscriptions are accepted per template; a form id pays for any.
    pub fn per_template(self) -> bool {
        self != CreditKind::FormId
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CreditKind::FormId => "FORM_ID",
            CreditKind::Subscribe => "SUBSCRIBE",
            CreditKind::OaSubscribe => "OA_SUBSCRIBE",
        }
    }
}

/// Who reported a subscription credit (`push_code.source`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The mini-program, through `grantSubscription`.
    Client,
    /// WeChat's `subscribe_msg_popup_event`.
    Wechat,
    /// Both reports of one acceptance.
    Both,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Client => "CLIENT",
            Source::Wechat => "WECHAT",
            Source::Both => "BOTH",
        }
    }
}

/// How far apart the client's and WeChat's reports of one acceptance may
/// be and still be paired. Both follow the user's tap within seconds.
pub const PAIRING_WINDOW: Duration = Duration::minutes(10);

/// A spent credit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credit {
    pub id: i64,
    pub code: Option<String>,
    /// The openid WeChat reported the credit for, if it did.
    pub openid: Option<String>,
}

/// One collected form id: `expire` in Unix milliseconds, as the seed's
/// `new Date().getTime() + 7 days` (a value that can only be seconds is
/// taken as seconds).
#[derive(Clone, Debug)]
pub struct FormIdInput {
    pub form_id: String,
    pub expire: Option<i64>,
}

/// What `collectFormIds` kept and why it refused the rest.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CollectReport {
    pub stored: u64,
    /// Collected before (by anyone), or twice in this call.
    pub duplicates: u64,
    /// Empty, too long, or the developer tools' mock id.
    pub rejected: u64,
    /// Already expired when collected.
    pub expired: u64,
}

async fn require_account(db: &impl ConnectionTrait, account: i64) -> Result<(), NotifyError> {
    let mut sql = Sql::new("SELECT id FROM account WHERE id = ");
    sql.bind(account);
    match sql.one(db).await? {
        Some(_) => Ok(()),
        None => Err(NotifyError::NotFound(format!("account {account} does not exist: log in again to get a token for a current account"))),
    }
}

/// Stores the form ids of `account`.
pub async fn collect_form_ids(db: &impl ConnectionTrait, account: i64, items: &[FormIdInput]) -> Result<CollectReport, NotifyError> {
    require_account(db, account).await?;
    let now = Utc::now();
    let latest = now + form_id_life();
    let mut report = CollectReport::default();
    let mut seen = BTreeSet::new();
    let mut keep: Vec<(String, DateTime<Utc>)> = Vec::new();
    for item in items {
        let code = item.form_id.trim();
        if code.is_empty() || code == MOCK_FORM_ID || code.chars().count() > 128 {
            report.rejected += 1;
            continue;
        }
        let expire = item.expire.map(expire_at).unwrap_or(Some(latest)).map(|t| t.min(latest));
        match expire {
            Some(t) if t > now => {}
            _ => {
                report.expired += 1;
                continue;
            }
        }
        if !seen.insert(code.to_string()) {
            report.duplicates += 1;
            continue;
        }
        keep.push((code.to_string(), expire.unwrap_or(latest)));
    }
    if keep.is_empty() {
        return Ok(report);
    }
    let mut sql = Sql::new("INSERT INTO push_code (created_at, updated_at, account_account, kind, code, expire_at) VALUES ");
    let (now_p, account_p) = (sql.param(now), sql.param(account));
    for (i, (code, expire)) in keep.iter().enumerate() {
        sql.push(&format!("{}({now_p}, {now_p}, {account_p}, 'FORM_ID', ", if i > 0 { ", " } else { "" }));
        sql.bind(code.clone()).push(", ").bind(*expire).push(")");
    }
    sql.push(" ON CONFLICT (kind, code) DO NOTHING");
    report.stored = sql.execute(db).await?;
    report.duplicates += keep.len() as u64 - report.stored;
    Ok(report)
}

/// Milliseconds (or, when too small to be milliseconds, seconds) since 1970.
fn expire_at(value: i64) -> Option<DateTime<Utc>> {
    if value.abs() < 100_000_000_000 { DateTime::from_timestamp(value, 0) } else { DateTime::from_timestamp_millis(value) }
}

/// Records the templates the user accepted, as the mini-program reports
/// them: one credit each, unless WeChat reported the same acceptance
/// already (then that credit is the one). Returns the acceptances recorded.
pub async fn grant_subscription(db: &DatabaseConnection, account: i64, template_ids: &[String]) -> Result<u64, NotifyError> {
    let ids: BTreeSet<&str> = template_ids.iter().map(|t| t.trim()).collect();
    if ids.is_empty() || ids.len() > 20 {
        return Err(invalid("template_ids must name 1 to 20 templates the user accepted"));
    }
    if let Some(bad) = ids.iter().find(|t| t.is_empty() || t.len() > 128) {
        return Err(invalid(format!("template id {bad:?} is not a WeChat template id")));
    }
    require_account(db, account).await?;
    let ids: Vec<String> = ids.into_iter().map(str::to_string).collect();
    let recorded = record_acceptances(db, account, CreditKind::Subscribe, None, &ids, Source::Client).await?;
    Ok(recorded.len() as u64)
}

/// What one report of acceptances did to each template's credit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recorded {
    /// A new credit.
    New,
    /// The other reporter's credit for the same acceptance: now BOTH.
    Paired,
}

/// Records `template_ids` accepted by `account`, reported by `source`
/// (`openid`: the openid WeChat named, kept on the credit). Each pairs
/// with an unpaired credit the other reporter left within
/// [`PAIRING_WINDOW`], or becomes a new credit. One transaction, holding
/// the account row, so concurrent reports pair instead of both inserting.
pub async fn record_acceptances(
    db: &DatabaseConnection,
    account: i64,
    kind: CreditKind,
    openid: Option<&str>,
    template_ids: &[String],
    source: Source,
) -> Result<Vec<Recorded>, DbErr> {
    let now = Utc::now();
    let other = match source {
        Source::Client => Source::Wechat,
        _ => Source::Client,
    };
    let txn = db.begin().await?;
    // PostgreSQL: the account's row lock, so concurrent reports of one
    // account take turns. SQLite needs none: the first statement below
    // writes, and writers take turns for the whole transaction.
    if crate::db::DatabaseKind::of(&txn) == crate::db::DatabaseKind::Postgres {
        let mut lock = Sql::new("SELECT id FROM account WHERE id = ");
        lock.bind(account).push(" FOR UPDATE");
        lock.one(&txn).await?;
    }
    let mut out = Vec::with_capacity(template_ids.len());
    for template_id in template_ids {
        let mut pair = Sql::new("UPDATE push_code SET source = ");
        pair.bind(Source::Both.as_str()).push(", updated_at = ").bind(now);
        if let Some(openid) = openid {
            pair.push(", openid = ").bind(openid.to_string());
        }
        pair.push(" WHERE id = (SELECT id FROM push_code WHERE account_account = ").bind(account);
        pair.push(" AND kind = ").bind(kind.as_str()).push(" AND template_id = ").bind(template_id.clone());
        pair.push(" AND source = ").bind(other.as_str()).push(" AND created_at >= ").bind(now - PAIRING_WINDOW);
        pair.push(" ORDER BY id LIMIT 1)");
        if pair.execute(&txn).await? > 0 {
            out.push(Recorded::Paired);
            continue;
        }
        let mut insert =
            Sql::new("INSERT INTO push_code (created_at, updated_at, account_account, kind, template_id, openid, source) VALUES (");
        let now_p = insert.param(now);
        insert.push(&format!("{now_p}, {now_p}, ")).bind(account).push(", ").bind(kind.as_str()).push(", ");
        insert.bind(template_id.clone()).push(", ").bind(openid.map(str::to_string)).push(", ").bind(source.as_str()).push(")");
        insert.execute(&txn).await?;
        out.push(Recorded::New);
    }
    txn.commit().await?;
    Ok(out)
}

/// The user turned `template_ids` off (`subscribe_msg_change_event`):
/// their credits of `kind` for those templates go. (A popup answered
/// `reject` only declines that one offer; earlier credits stay.) Returns
/// the credits removed.
pub async fn revoke(db: &impl ConnectionTrait, account: i64, kind: CreditKind, template_ids: &[String]) -> Result<u64, DbErr> {
    if template_ids.is_empty() {
        return Ok(0);
    }
    let mut sql = Sql::new("DELETE FROM push_code WHERE account_account = ");
    sql.bind(account).push(" AND kind = ").bind(kind.as_str()).push(" AND template_id IN ").list(template_ids.iter().cloned());
    sql.execute(db).await
}

/// Spends the oldest valid credit of `kind` (for `template_id`, when
/// given) of `account`, first dropping the account's expired ones.
pub async fn claim(db: &impl ConnectionTrait, account: i64, kind: CreditKind, template_id: Option<&str>) -> Result<Option<Credit>, DbErr> {
    let now = Utc::now();
    let mut drop = Sql::new("DELETE FROM push_code WHERE account_account = ");
    drop.bind(account).push(" AND expire_at <= ").bind(now);
    drop.execute(db).await?;
    let mut sql = Sql::new("DELETE FROM push_code WHERE id = (SELECT id FROM push_code WHERE ");
    valid(&mut sql, account, kind, template_id);
    sql.push(" ORDER BY id LIMIT 1").push(skip_locked(db)).push(") RETURNING id, code, openid");
    match sql.one(db).await? {
        Some(row) => Ok(Some(Credit { id: row.try_get("", "id")?, code: row.try_get("", "code")?, openid: row.try_get("", "openid")? })),
        None => Ok(None),
    }
}

/// Whether `account` holds a valid credit [`claim`] could spend; spends nothing.
pub async fn holds(db: &impl ConnectionTrait, account: i64, kind: CreditKind, template_id: Option<&str>) -> Result<bool, DbErr> {
    let mut sql = Sql::new("SELECT id FROM push_code WHERE ");
    valid(&mut sql, account, kind, template_id);
    sql.push(" LIMIT 1");
    Ok(sql.one(db).await?.is_some())
}

/// The condition on `push_code` of a valid credit of `kind` (for
/// `template_id`, when given) of `account`.
fn valid(sql: &mut Sql, account: i64, kind: CreditKind, template_id: Option<&str>) {
    sql.push("account_account = ").bind(account).push(" AND kind = ").bind(kind.as_str());
    if let Some(template_id) = template_id {
        sql.push(" AND template_id = ").bind(template_id.to_string());
    }
    sql.push(" AND (expire_at IS NULL OR expire_at > ").bind(Utc::now()).push(")");
}

/// Deletes every expired credit.
pub async fn drop_expired(db: &impl ConnectionTrait) -> Result<u64, DbErr> {
    let mut sql = Sql::new("DELETE FROM push_code WHERE expire_at <= ");
    sql.bind(Utc::now());
    sql.execute(db).await
}

/// As [`revoke`], for credits WeChat reported for `openid` (a
/// service-account openid, which may belong to no account's link).
pub async fn revoke_openid(db: &impl ConnectionTrait, kind: CreditKind, openid: &str, template_ids: &[String]) -> Result<u64, DbErr> {
    if template_ids.is_empty() {
        return Ok(0);
    }
    let mut sql = Sql::new("DELETE FROM push_code WHERE openid = ");
    sql.bind(openid.to_string()).push(" AND kind = ").bind(kind.as_str()).push(" AND template_id IN ").list(template_ids.iter().cloned());
    sql.execute(db).await
}

/// What `pushBroadcast` did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BroadcastReport {
    pub sent: u64,
    /// Mini-program users without a valid credit for this template.
    pub no_credit: u64,
    pub failed: u64,
    /// Left PENDING after a stop (quota); the next start sends them.
    pub pending: u64,
}

/// Seed 001's broadcast: every mini-program user with a valid credit gets
/// `template_id` (a subscription for it first, else a form id), with
/// `key_words` as keyword1..n (placeholders allowed) and `page`.
pub async fn broadcast(
    services: &Services,
    template_id: &str,
    page: Option<&str>,
    key_words: &[String],
) -> Result<BroadcastReport, NotifyError> {
    let template = broadcast_template(template_id, page, key_words)?;
    let now = Utc::now();
    let tz = services.settings.timezone;
    render::render(&template, &Placeholders::for_account(&AccountRow::default(), now, tz))?;
    let db = &services.db;
    drop_expired(db).await?;
    let audience = Sql::new("SELECT count(*) AS n FROM account WHERE mp_openid IS NOT NULL AND mp_openid <> ''")
        .one(db)
        .await?
        .map(|r| r.try_get::<i64>("", "n"))
        .transpose()?
        .unwrap_or(0) as u64;
    let run = format!("{}-{:06x}", now.format("%Y%m%dT%H%M%S"), rand::random::<u32>() & 0xff_ffff);
    let txn = db.begin().await?;
    let credits = claim_one_each(&txn, template_id).await?;
    let accounts = accounts_by_id(&txn, credits.iter().map(|c| c.0)).await?;
    let mut deliveries = Vec::with_capacity(credits.len());
    for (account_id, kind, code) in &credits {
        let Some(account) = accounts.get(account_id) else { continue };
        let touser = account.mp_openid.clone().unwrap_or_default();
        let rendered = render::render(&template, &Placeholders::for_account(account, now, tz))?;
        let key = format!("broadcast:{run}:{account_id}");
        deliveries.push(match (kind, code) {
            (CreditKind::FormId, Some(code)) => NewDelivery::form(Some(*account_id), &rendered.form_message(&touser, code), key),
            _ => NewDelivery::subscribe(Some(*account_id), &rendered.subscribe_message(&touser), key),
        });
    }
    let queued = outbox::enqueue(&txn, &deliveries).await?;
    txn.commit().await?;
    tracing::info!(%run, audience, credits = credits.len(), "broadcast queued; sending");
    let tally = outbox::deliver(services, &Scope::Ids(queued.iter().map(|(id, _)| *id).collect())).await?;
    Ok(BroadcastReport {
        sent: tally.sent,
        no_credit: audience.saturating_sub(deliveries.len() as u64),
        failed: tally.failed + tally.skipped,
        pending: tally.pending,
    })
}

fn broadcast_template(template_id: &str, page: Option<&str>, key_words: &[String]) -> Result<MessageTemplate, NotifyError> {
    if template_id.trim().is_empty() {
        return Err(invalid("template must be the WeChat template id to send"));
    }
    let data = key_words
        .iter()
        .enumerate()
        .map(|(i, word)| (format!("keyword{}", i + 1), serde_json::json!({ "value": word })))
        .collect::<serde_json::Map<_, _>>();
    Ok(MessageTemplate {
        name: "pushBroadcast".into(),
        channel: super::outbox::Channel::MpForm,
        template_id: template_id.trim().to_string(),
        page: page.map(str::to_string),
        url: None,
        data: serde_json::Value::Object(data),
    })
}

/// Spends, in one statement, the best credit of every mini-program user:
/// their oldest subscription for `template_id`, else their oldest form id.
async fn claim_one_each(db: &impl ConnectionTrait, template_id: &str) -> Result<Vec<(i64, CreditKind, Option<String>)>, DbErr> {
    let mut sql = Sql::new(
        "DELETE FROM push_code WHERE id IN (SELECT id FROM (SELECT c.id, row_number() OVER (PARTITION BY c.account_account \
         ORDER BY CASE WHEN c.kind = 'SUBSCRIBE' THEN 0 ELSE 1 END, c.id) AS rn \
         FROM push_code AS c JOIN account AS a ON a.id = c.account_account \
         WHERE a.mp_openid IS NOT NULL AND a.mp_openid <> '' AND ((c.kind = 'SUBSCRIBE' AND c.template_id = ",
    );
    sql.bind(template_id.to_string()).push(") OR c.kind = 'FORM_ID') AND (c.expire_at IS NULL OR c.expire_at > ");
    sql.bind(Utc::now()).push(")) AS ranked WHERE rn = 1) RETURNING account_account, kind, code");
    sql.all(db)
        .await?
        .iter()
        .map(|r| {
            let kind = if r.try_get::<String>("", "kind")? == "SUBSCRIBE" { CreditKind::Subscribe } else { CreditKind::FormId };
            Ok((r.try_get("", "account_account")?, kind, r.try_get("", "code")?))
        })
        .collect()
}

async fn accounts_by_id(db: &impl ConnectionTrait, ids: impl Iterator<Item = i64>) -> Result<HashMap<i64, AccountRow>, DbErr> {
    let ids: Vec<i64> = ids.collect();
    let mut out = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        let mut sql = Sql::new(format!("SELECT {} FROM account AS a WHERE a.id IN ", render::account_columns("a")));
        sql.list(chunk.iter().copied());
        for row in sql.all(db).await? {
            let account = AccountRow::from_row(&row)?;
            out.insert(account.id, account);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_reads_milliseconds_or_seconds() {
        let ms = 1_800_000_000_000;
        assert_eq!(expire_at(ms), DateTime::from_timestamp(1_800_000_000, 0));
        assert_eq!(expire_at(1_800_000_000), DateTime::from_timestamp(1_800_000_000, 0));
    }
}
