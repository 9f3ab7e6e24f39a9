//! `notifyAccount`: the real-time notice, at most one per account per window.
//!
//! The window is claimed with one upsert on `notice` that only succeeds when
//! the previous window has ended (`ON CONFLICT (account_account) DO UPDATE
//! ... WHERE notice.expire_time <= now RETURNING`), inside the transaction
//! that also spends a credit (when needed) and queues the delivery. Only one
//! of any number of concurrent callers, on any number of servers, gets the
//! row back; the rest answer THROTTLED. Nothing is claimed when there is
//! nothing to send or no way to reach the user.
//!
//! One unread row uses the template `realtime_single` (`{{sender}}`,
//! `{{content}}`, `{{type}}`), several `realtime_multi` (`{{count}}`). The
//! channels are tried in `WXNOTIFY_CHANNEL_ORDER` (by default: OA_TEMPLATE
//! for a follower, then OA_SUBSCRIBE, MP_SUBSCRIBE, MP_FORM): OA_TEMPLATE
//! uses the `<name>` template with that channel and reaches followers;
//! OA_SUBSCRIBE uses `<name>` or `<name>_oa_subscribe` and is paid with a
//! service-account subscription credit WeChat reported (it reaches
//! non-followers, at the openid on the credit); MP_SUBSCRIBE uses `<name>`
//! or `<name>_subscribe` and is paid with a subscription credit for its
//! template id; MP_FORM uses `<name>` or `<name>_form` and is paid with a
//! form id. The first channel that reaches the account wins.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, TransactionTrait};

use super::error::{NotifyError, invalid};
use super::outbox::{self, Channel, Scope};
use super::render::{self, AccountRow, MessageTemplate, Placeholders};
use super::route;
use crate::db::sql::Sql;
use crate::services::Services;

/// The answer of `notifyAccount`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoticeStatus {
    Sent,
    InReview,
    Throttled,
    NotFollowing,
    NothingToSend,
    Failed,
}

impl NoticeStatus {
    pub const ALL: [NoticeStatus; 6] = [
        NoticeStatus::Sent,
        NoticeStatus::InReview,
        NoticeStatus::Throttled,
        NoticeStatus::NotFollowing,
        NoticeStatus::NothingToSend,
        NoticeStatus::Failed,
    ];

    /// What each answer means, for the schema.
    pub fn meaning(self) -> &'static str {
        match self {
            NoticeStatus::Sent => "the notice went out",
            NoticeStatus::InReview => "WeChat took the notice for review (40252); its report settles the delivery",
            NoticeStatus::Throttled => "a notice went out within the window; nothing sent",
            NoticeStatus::NotFollowing => "the user does not follow the service account and has no mini-program credit",
            NoticeStatus::NothingToSend => "the account has no unread point_count rows",
            NoticeStatus::Failed => "sending failed; `error` says why",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            NoticeStatus::Sent => "SENT",
            NoticeStatus::InReview => "IN_REVIEW",
            NoticeStatus::Throttled => "THROTTLED",
            NoticeStatus::NotFollowing => "NOT_FOLLOWING",
            NoticeStatus::NothingToSend => "NOTHING_TO_SEND",
            NoticeStatus::Failed => "FAILED",
        }
    }
}

/// What one call did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoticeResult {
    pub status: NoticeStatus,
    pub channel: Option<Channel>,
    pub msgid: Option<i64>,
    pub delivery_id: Option<i64>,
    /// Why a FAILED notice failed.
    pub error: Option<String>,
}

impl NoticeResult {
    fn bare(status: NoticeStatus) -> NoticeResult {
        NoticeResult { status, channel: None, msgid: None, delivery_id: None, error: None }
    }
}

/// The longest window accepted (30 days).
pub const MAX_WINDOW_SECONDS: i64 = 30 * 86_400;

/// Sends the account its real-time notice unless one went out within the
/// last `window_seconds`.
pub async fn notify_account(services: &Services, account_id: i64, window_seconds: i64) -> Result<NoticeResult, NotifyError> {
    if !(1..=MAX_WINDOW_SECONDS).contains(&window_seconds) {
        return Err(invalid(format!("window_seconds must be between 1 and {MAX_WINDOW_SECONDS}, not {window_seconds}")));
    }
    let db = &services.db;
    let now = Utc::now();
    // A cheap read first, one row by a unique key: most calls in a burst
    // end here. The claim below is what decides.
    if window_end(db, account_id).await?.is_some_and(|end| end > now) {
        return Ok(NoticeResult::bare(NoticeStatus::Throttled));
    }
    let account = load_account(db, account_id).await?;
    let Some(unread) = latest_unread(db, account_id).await? else {
        return Ok(NoticeResult::bare(NoticeStatus::NothingToSend));
    };
    let name = if unread.count == 1 { "realtime_single" } else { "realtime_multi" };
    let templates = route::templates(db, name).await?;
    let routes = route::reachable(&route::by_order(&templates, &services.settings.channel_order), &account);
    if routes.is_empty() {
        return Ok(NoticeResult::bare(NoticeStatus::NotFollowing));
    }
    let values = placeholders(&account, &unread, now, services.settings.timezone);
    let library = crate::templates::Library::load(db).await?;
    let overflow = services.settings.template_overflow;
    let rendered: Vec<(MessageTemplate, render::Rendered)> =
        routes.into_iter().map(|t| render::render_with(&t, &values, &library, overflow).map(|r| (t, r))).collect::<Result<_, _>>()?;
    let until = now + chrono::Duration::seconds(window_seconds);
    let txn = db.begin().await?;
    if !claim_window(&txn, account_id, now, until).await? {
        txn.rollback().await?;
        return Ok(NoticeResult::bare(NoticeStatus::Throttled));
    }
    let key = format!("realtime:{account_id}:{}", now.timestamp_micros());
    let mp_appid = services.wechat.appid(crate::wechat::App::Mp);
    let Some(delivery) = route::pick(&txn, &account, rendered, key, mp_appid).await? else {
        // No credit after all: give the window back untouched.
        txn.rollback().await?;
        return Ok(NoticeResult::bare(NoticeStatus::NotFollowing));
    };
    let queued = outbox::enqueue(&txn, std::slice::from_ref(&delivery)).await?;
    txn.commit().await?;
    let id = queued.first().map(|(id, _)| *id).ok_or_else(|| invalid("the notice was not queued"))?;
    outbox::deliver(services, &Scope::Ids(vec![id])).await?;
    let state = outbox::state(db, id).await?;
    let status = match state.status.as_str() {
        s if s == super::outbox::Status::Sent.as_str() => NoticeStatus::Sent,
        s if s == super::outbox::Status::InReview.as_str() => NoticeStatus::InReview,
        _ => NoticeStatus::Failed,
    };
    Ok(NoticeResult {
        status,
        channel: Some(delivery.channel),
        msgid: state.msgid,
        delivery_id: Some(id),
        error: if status == NoticeStatus::Failed { state.errmsg } else { None },
    })
}

/// When the account's current window ends (none: never notified).
async fn window_end(db: &impl ConnectionTrait, account: i64) -> Result<Option<DateTime<Utc>>, NotifyError> {
    let mut sql = Sql::new("SELECT expire_time FROM notice WHERE account_account = ");
    sql.bind(account);
    Ok(match sql.one(db).await? {
        Some(row) => row.try_get("", "expire_time")?,
        None => None,
    })
}

pub(super) async fn load_account(db: &impl ConnectionTrait, id: i64) -> Result<AccountRow, NotifyError> {
    let mut sql = Sql::new(format!("SELECT {} FROM account AS a WHERE a.id = ", render::account_columns("a")));
    sql.bind(id);
    let row = sql.one(db).await?.ok_or_else(|| NotifyError::NotFound(format!("account {id} does not exist")))?;
    Ok(AccountRow::from_row(&row)?)
}

/// The unread count and the newest unread row.
pub(super) struct Unread {
    pub(super) count: i64,
    pub(super) kind: Option<String>,
    pub(super) sender: Option<String>,
    pub(super) content: Option<String>,
}

pub(super) async fn latest_unread(db: &impl ConnectionTrait, account: i64) -> Result<Option<Unread>, NotifyError> {
    let mut sql = Sql::new("SELECT count(*) OVER () AS n, type, sender, content FROM point_count WHERE account_account = ");
    sql.bind(account).push(" ORDER BY id DESC LIMIT 1");
    let Some(row) = sql.one(db).await? else { return Ok(None) };
    Ok(Some(Unread {
        count: row.try_get("", "n")?,
        kind: row.try_get("", "type")?,
        sender: row.try_get("", "sender")?,
        content: row.try_get("", "content")?,
    }))
}

pub(super) fn placeholders(account: &AccountRow, unread: &Unread, now: DateTime<Utc>, tz: chrono_tz::Tz) -> Placeholders {
    let mut values = Placeholders::for_account(account, now, tz);
    values.set("count", Some(unread.count.to_string()));
    if unread.count == 1 {
        values.set("sender", unread.sender.clone());
        values.set("content", unread.content.clone());
        values.set("type", unread.kind.clone());
    }
    values
}

/// The atomic window claim: true when this caller owns the new window.
pub async fn claim_window(
    db: &impl ConnectionTrait,
    account: i64,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<bool, sea_orm::DbErr> {
    let mut sql = Sql::new("INSERT INTO notice (created_at, updated_at, account_account, expire_time) VALUES (");
    let now_p = sql.param(now);
    sql.push(&format!("{now_p}, {now_p}, ")).bind(account).push(", ").bind(until);
    sql.push(") ON CONFLICT (account_account) DO UPDATE SET expire_time = excluded.expire_time, updated_at = excluded.updated_at ");
    sql.push(&format!("WHERE notice.expire_time <= {now_p} RETURNING id"));
    Ok(sql.one(db).await?.is_some())
}
