//! WeChat's pushes to this server: the service account's server URL
//! (`/wechat/callback`, XML) and the mini-program's message push
//! (`/wechat/mp-callback`, XML or JSON). It owns `callback_event` (the
//! claims that de-duplicate WeChat's retries) and hands each event to the
//! capability it concerns: follows, unfollows and scans to
//! [`crate::linking`]; send reports and subscription credits to
//! [`crate::notify`]. It answers with an [`Answer`]; `crate::http` turns
//! that into the HTTP response.
//!
//! GET answers WeChat's signature check by echoing `echostr`. POST takes a
//! message, plain or in AES safe mode (`encrypt_type=aes`), and:
//! - refuses a bad `signature` / `msg_signature` or a message for another
//!   appid before touching the database; anything that is not a WeChat
//!   message is refused as such;
//! - claims the event in `callback_event` (the app, FromUserName,
//!   CreateTime, Event, and the MsgIDs of send reports), so WeChat's
//!   retries, to any server process, are answered `success` and do nothing;
//!   each new claim also forgets the claims older than [`DEDUPE_RETENTION`];
//! - applies it: on the service account subscribe (user/info for the
//!   unionid, follower upserted, accounts linked, a bind scene honoured),
//!   unsubscribe (unlinked), SCAN with a bind scene, TEMPLATESENDJOBFINISH
//!   (the delivery by msgid); on both apps the subscription events:
//!   `subscribe_msg_popup_event` (each accepted template a credit, counted
//!   once with the client's own report), `subscribe_msg_change_event` (the
//!   rejected templates' credits removed) and `subscribe_msg_sent_event`
//!   (the delivery settled with WeChat's msgid and result);
//! - answers `success` within [`ANSWER_WITHIN`] even if the work goes on.
//!
//! A failure while applying releases the claim and asks WeChat to try again,
//! so its retry can do the work again (every step is idempotent).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Deserialize;

use crate::db::sql::Sql;
use crate::linking::LinkError;
use crate::linking::accounts;
use crate::linking::bind::consume_scene;
use crate::linking::store;
use crate::notify::credits::{self, CreditKind, Source};
use crate::notify::outbox::{self, Channel};
use crate::services::Services;
use crate::settings::Secret;
use crate::wechat::App;
use crate::wechat::crypto::{self, AesKey, CryptoError};

mod json;
mod xml;

/// Largest callback body accepted; WeChat's events are well under 2 KiB.
pub const MAX_CALLBACK_BYTES: usize = 64 * 1024;
/// WeChat gives up after 5 s; answer before that, finishing in the background.
pub const ANSWER_WITHIN: Duration = Duration::from_secs(3);
/// How long a claimed event is remembered. WeChat retries an event at most
/// three times within about 15 seconds, so a day is ample.
pub const DEDUPE_RETENTION: TimeDelta = TimeDelta::days(1);

/// The query WeChat signs its calls with.
#[derive(Debug, Default, Deserialize)]
pub struct CallbackQuery {
    signature: Option<String>,
    timestamp: Option<String>,
    nonce: Option<String>,
    echostr: Option<String>,
    encrypt_type: Option<String>,
    msg_signature: Option<String>,
}

/// What to answer WeChat.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// The server URL check: echo this.
    Echo(String),
    /// Taken (or a retry of one taken): `success`.
    Success,
    /// Refused, with what to tell the caller.
    Refused(Refusal, String),
}

/// Why a push was refused; `crate::http` picks the status code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The signature is not WeChat's for our Token.
    BadSignature,
    /// A safe-mode message encrypted for another appid.
    OtherApp,
    /// The body is over [`MAX_CALLBACK_BYTES`].
    TooLarge,
    /// Not a WeChat message.
    NotAMessage,
    /// A setting this push needs is missing or unusable.
    NotConfigured,
    /// Recording or applying failed; WeChat's retry may succeed.
    TryAgain,
}

fn refused(why: Refusal, text: impl Into<String>) -> Answer {
    Answer::Refused(why, text.into())
}

/// The body limit for a push under `max_body_bytes`.
pub fn body_limit(max_body_bytes: usize) -> usize {
    MAX_CALLBACK_BYTES.min(max_body_bytes)
}

/// A push endpoint's secrets and the names of their settings.
struct Endpoint<'a> {
    token: Option<&'a Secret>,
    aes_key: Option<&'a Secret>,
    appid: Option<&'a str>,
    names: [&'static str; 3],
}

fn endpoint(services: &Services, app: App) -> Endpoint<'_> {
    let s = &services.settings;
    match app {
        App::Oa => Endpoint {
            token: s.oa_token.as_ref(),
            aes_key: s.oa_aes_key.as_ref(),
            appid: s.oa_appid.as_deref(),
            names: ["WXNOTIFY_OA_TOKEN", "WXNOTIFY_OA_AES_KEY", "WXNOTIFY_OA_APPID"],
        },
        App::Mp => Endpoint {
            token: s.mp_token.as_ref(),
            aes_key: s.mp_aes_key.as_ref(),
            appid: s.mp_appid.as_deref(),
            names: ["WXNOTIFY_MP_TOKEN", "WXNOTIFY_MP_AES_KEY", "WXNOTIFY_MP_APPID"],
        },
    }
}

impl Endpoint<'_> {
    /// The Token, or the answer saying it is missing.
    fn token(&self) -> Result<&str, Answer> {
        self.token.map(|t| t.expose()).ok_or_else(|| {
            tracing::error!(setting = self.names[0], "a WeChat push arrived but its Token is not set");
            refused(Refusal::NotConfigured, format!("the callback is not configured ({})", self.names[0]))
        })
    }
}

/// True when the query's `signature` is WeChat's for our Token.
fn signed(query: &CallbackQuery, token: &str) -> bool {
    match (&query.signature, &query.timestamp, &query.nonce) {
        (Some(signature), Some(timestamp), Some(nonce)) => {
            crypto::signature_matches(signature, &crypto::signature(token, timestamp, nonce))
        }
        _ => false,
    }
}

/// GET: WeChat's check when the server URL is saved.
pub fn verify(services: &Services, app: App, query: &CallbackQuery) -> Answer {
    let endpoint = endpoint(services, app);
    let token = match endpoint.token() {
        Ok(token) => token,
        Err(answer) => return answer,
    };
    match (&query.echostr, signed(query, token)) {
        (Some(echostr), true) => Answer::Echo(echostr.clone()),
        _ => refused(Refusal::BadSignature, "bad signature"),
    }
}

/// POST: one push from WeChat.
pub async fn receive(services: Arc<Services>, app: App, query: &CallbackQuery, body: &[u8]) -> Answer {
    let endpoint = endpoint(&services, app);
    let token = match endpoint.token() {
        Ok(token) => token,
        Err(answer) => return answer,
    };
    if !signed(query, token) {
        return refused(Refusal::BadSignature, "bad signature");
    }
    let message = match read_message(&endpoint, query, token, body) {
        Ok(message) => message,
        Err(answer) => return answer,
    };
    let event = match Event::from_message(&message) {
        Ok(Some(event)) => event,
        Ok(None) => return Answer::Success,
        Err(problem) => return refused(Refusal::NotAMessage, problem),
    };
    dispatch(services, app, event).await
}

/// A push's fields and `List` items, whichever format it came in.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Message {
    pub fields: BTreeMap<String, String>,
    pub items: Vec<BTreeMap<String, String>>,
}

/// XML (`<xml>...`) or JSON (`{...}`), told apart by the first character.
fn parse(text: &str) -> Result<Message, String> {
    if text.trim_start().starts_with('{') { json::parse_message(text) } else { xml::parse_message(text).map_err(|e| e.to_string()) }
}

/// The message, decrypted and checked in safe mode.
fn read_message(endpoint: &Endpoint<'_>, query: &CallbackQuery, token: &str, body: &[u8]) -> Result<Message, Answer> {
    let bad = |e: String| refused(Refusal::NotAMessage, e);
    let text = std::str::from_utf8(body).map_err(|_| bad("the body is not UTF-8".into()))?;
    let outer = parse(text).map_err(bad)?;
    if query.encrypt_type.as_deref() != Some("aes") {
        return Ok(outer);
    }
    let (Some(key), Some(appid)) = (endpoint.aes_key, endpoint.appid) else {
        tracing::error!(key = endpoint.names[1], appid = endpoint.names[2], "a safe-mode push arrived but its key or appid is not set");
        return Err(refused(Refusal::NotConfigured, format!("safe mode is not configured ({}, {})", endpoint.names[1], endpoint.names[2])));
    };
    let encrypted = outer.fields.get("Encrypt").ok_or_else(|| bad("a safe-mode message needs Encrypt".into()))?;
    let (Some(msg_signature), Some(timestamp), Some(nonce)) = (&query.msg_signature, &query.timestamp, &query.nonce) else {
        return Err(refused(Refusal::BadSignature, "bad msg_signature"));
    };
    if !crypto::signature_matches(msg_signature, &crypto::msg_signature(token, timestamp, nonce, encrypted)) {
        return Err(refused(Refusal::BadSignature, "bad msg_signature"));
    }
    let key = AesKey::parse(key.expose()).map_err(|e| {
        tracing::error!(error = %e, setting = endpoint.names[1], "the EncodingAESKey is unusable");
        refused(Refusal::NotConfigured, format!("safe mode is misconfigured ({})", endpoint.names[1]))
    })?;
    let inner = crypto::decrypt(&key, encrypted, appid).map_err(|e| match e {
        CryptoError::WrongAppid => refused(Refusal::OtherApp, "the message is for another appid"),
        other => bad(other.to_string()),
    })?;
    parse(&inner).map_err(bad)
}

/// An event this server acts on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// The user's openid in the app that pushed (FromUserName).
    pub openid: String,
    pub create_time: i64,
    pub kind: EventKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// Followed; `scene` when through a parametric QR code.
    Subscribe {
        scene: Option<String>,
    },
    Unsubscribe,
    /// A follower scanned a parametric QR code.
    Scan {
        scene: String,
    },
    /// WeChat finished delivering a template message.
    SendFinished {
        msgid: i64,
        status: String,
    },
    /// The user answered a subscription popup, per template.
    SubscriptionPopup {
        accepted: Vec<String>,
        rejected: Vec<String>,
    },
    /// The user turned these templates off in their settings.
    SubscriptionChange {
        rejected: Vec<String>,
    },
    /// WeChat's final word on subscription messages it was given.
    SubscriptionSent {
        results: Vec<SentResult>,
    },
}

/// One item of `subscribe_msg_sent_event`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SentResult {
    pub template_id: String,
    pub msgid: i64,
    /// 0: delivered.
    pub errcode: i64,
    pub status: String,
}

impl Event {
    /// The event in `message`; `None` for messages and events this server
    /// does not act on; `Err` for a message missing what every one has.
    pub fn from_message(message: &Message) -> Result<Option<Event>, String> {
        let get = |name: &str| message.fields.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
        let openid = get("FromUserName").filter(|o| o.len() <= 128).ok_or("FromUserName is missing or too long")?;
        let create_time = get("CreateTime").and_then(|t| t.parse::<i64>().ok()).ok_or("CreateTime is missing or not a number")?;
        if get("MsgType") != Some("event") {
            return Ok(None);
        }
        let key = get("EventKey").unwrap_or_default();
        let item = |item: &BTreeMap<String, String>, name: &str| item.get(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let templates = |wanted: &str| -> Vec<String> {
            message
                .items
                .iter()
                .filter(|i| item(i, "SubscribeStatusString").as_deref() == Some(wanted))
                .filter_map(|i| item(i, "TemplateId"))
                .collect()
        };
        let kind = match get("Event").unwrap_or_default() {
            "subscribe" => EventKind::Subscribe { scene: key.strip_prefix("qrscene_").map(str::to_string) },
            "unsubscribe" => EventKind::Unsubscribe,
            "SCAN" if !key.is_empty() => EventKind::Scan { scene: key.to_string() },
            "TEMPLATESENDJOBFINISH" => EventKind::SendFinished {
                msgid: get("MsgID").and_then(|m| m.parse().ok()).ok_or("TEMPLATESENDJOBFINISH needs a numeric MsgID")?,
                status: get("Status").unwrap_or_default().to_string(),
            },
            "subscribe_msg_popup_event" => EventKind::SubscriptionPopup { accepted: templates("accept"), rejected: templates("reject") },
            "subscribe_msg_change_event" => EventKind::SubscriptionChange { rejected: templates("reject") },
            "subscribe_msg_sent_event" => EventKind::SubscriptionSent {
                results: message
                    .items
                    .iter()
                    .map(|i| {
                        Ok(SentResult {
                            template_id: item(i, "TemplateId").ok_or("subscribe_msg_sent_event needs a TemplateId")?,
                            msgid: item(i, "MsgID").and_then(|m| m.parse().ok()).ok_or("subscribe_msg_sent_event needs a numeric MsgID")?,
                            errcode: item(i, "ErrorCode").and_then(|c| c.parse().ok()).unwrap_or(0),
                            status: item(i, "ErrorStatus").unwrap_or_default(),
                        })
                    })
                    .collect::<Result<_, &str>>()?,
            },
            _ => return Ok(None),
        };
        Ok(Some(Event { openid: openid.to_string(), create_time, kind }))
    }

    fn name(&self) -> &'static str {
        match self.kind {
            EventKind::Subscribe { .. } => "subscribe",
            EventKind::Unsubscribe => "unsubscribe",
            EventKind::Scan { .. } => "SCAN",
            EventKind::SendFinished { .. } => "TEMPLATESENDJOBFINISH",
            EventKind::SubscriptionPopup { .. } => "subscribe_msg_popup_event",
            EventKind::SubscriptionChange { .. } => "subscribe_msg_change_event",
            EventKind::SubscriptionSent { .. } => "subscribe_msg_sent_event",
        }
    }

    /// Identifies one event of `app` across WeChat's retries; a key that
    /// would be long (many templates or msgids) ends in a digest instead.
    pub fn dedupe_key(&self, app: App) -> String {
        let key = self.full_key(app);
        if key.len() <= 160 {
            return key;
        }
        use sha2::Digest;
        let (head, _) = key.split_at(key.char_indices().nth(96).map_or(key.len(), |(i, _)| i));
        format!("{head}~{}", hex::encode(sha2::Sha256::digest(key.as_bytes())))
    }

    fn full_key(&self, app: App) -> String {
        let prefix = match app {
            App::Oa => "",
            App::Mp => "mp:",
        };
        let base = format!("{prefix}{}:{}:{}", self.openid, self.create_time, self.name());
        match &self.kind {
            EventKind::SendFinished { msgid, .. } => format!("{base}:{msgid}"),
            EventKind::SubscriptionSent { results } => {
                let ids: Vec<String> = results.iter().map(|r| r.msgid.to_string()).collect();
                format!("{base}:{}", ids.join(","))
            }
            // Two popups in one second are two events; a retry names the same templates.
            EventKind::SubscriptionPopup { accepted, rejected } => format!("{base}:{}:{}", accepted.join(","), rejected.join(",")),
            EventKind::SubscriptionChange { rejected } => format!("{base}:{}", rejected.join(",")),
            _ => base,
        }
    }
}

/// Claims, applies (in a task of its own, so a slow WeChat cannot hold the
/// answer past [`ANSWER_WITHIN`]) and answers.
async fn dispatch(services: Arc<Services>, app: App, event: Event) -> Answer {
    let key = event.dedupe_key(app);
    match claim(&services, &key, event.name()).await {
        Ok(true) => {}
        Ok(false) => {
            tracing::debug!(key, "a repeated WeChat callback; already handled");
            return Answer::Success;
        }
        Err(e) => {
            tracing::error!(error = %e, "could not record a WeChat callback; WeChat will retry");
            return refused(Refusal::TryAgain, "try again");
        }
    }
    let work = services.clone().spawn(async move {
        let result = apply(&services, app, &event).await;
        forget_old_claims(&services, Utc::now() - DEDUPE_RETENTION).await;
        if let Err(e) = &result {
            tracing::error!(error = %e, key, "applying a WeChat callback failed; releasing it for WeChat's retry");
            let mut release = Sql::new("DELETE FROM callback_event WHERE dedupe_key = ");
            release.bind(key.clone());
            if let Err(e) = release.execute(&services.db).await {
                tracing::error!(error = %e, "could not release a failed callback; the next sync repairs its effect");
            }
        }
        result
    });
    match tokio::time::timeout(ANSWER_WITHIN, work).await {
        Ok(Ok(Ok(()))) => Answer::Success,
        Ok(Ok(Err(_))) | Ok(Err(_)) => refused(Refusal::TryAgain, "try again"),
        Err(_) => {
            tracing::warn!("a WeChat callback is taking long; answered success, finishing in the background");
            Answer::Success
        }
    }
}

/// Records the event; false when it was recorded before (a retry).
async fn claim(services: &Services, key: &str, event: &str) -> Result<bool, sea_orm::DbErr> {
    let mut sql = Sql::new("INSERT INTO callback_event (dedupe_key, event, received_at) VALUES (");
    sql.bind(key.to_string()).push(", ").bind(event.to_string()).push(", ").bind(Utc::now());
    sql.push(") ON CONFLICT (dedupe_key) DO NOTHING");
    Ok(sql.execute(&services.db).await? > 0)
}

/// Deletes the claims received before `cutoff`: one indexed range, nearly
/// always a few rows or none, so the table holds about a day of events.
/// A failure only leaves them for the next event to delete.
async fn forget_old_claims(services: &Services, cutoff: DateTime<Utc>) {
    let mut sql = Sql::new("DELETE FROM callback_event WHERE received_at < ");
    sql.bind(cutoff);
    match sql.execute(&services.db).await {
        Ok(0) => {}
        Ok(forgotten) => tracing::debug!(forgotten, "forgot WeChat callback events past their retention"),
        Err(e) => tracing::warn!(error = %e, "could not delete old WeChat callback records; the next event tries again"),
    }
}

/// Does what the event means. Every step is idempotent (or, for credits,
/// guarded by the claim: a retry never reaches here).
pub async fn apply(services: &Services, app: App, event: &Event) -> Result<(), LinkError> {
    let db = &services.db;
    let openid = event.openid.as_str();
    match (&event.kind, app) {
        (EventKind::Subscribe { scene }, App::Oa) => {
            let info = accounts::learn(services, openid).await?;
            if !info.subscribe {
                return unfollow(services, openid).await;
            }
            let unionid = info.unionid.as_deref();
            if let Some(scene) = scene {
                bind(services, scene, openid, unionid).await?;
            }
            tracing::info!(openid, linked_by_unionid = unionid.is_some(), "a user followed the service account");
        }
        (EventKind::Unsubscribe, App::Oa) => unfollow(services, openid).await?,
        (EventKind::Scan { scene }, App::Oa) => {
            store::upsert_follower(db, openid, None, true, None).await?;
            bind(services, scene, openid, None).await?;
        }
        (EventKind::SendFinished { msgid, status }, App::Oa) => send_finished(services, openid, *msgid, status).await?,
        (EventKind::SubscriptionPopup { accepted, rejected }, app) => popup(services, app, openid, accepted, rejected.len()).await?,
        (EventKind::SubscriptionChange { rejected }, app) => {
            let removed = match app {
                App::Oa => credits::revoke_openid(db, CreditKind::OaSubscribe, openid, rejected).await?,
                App::Mp => match accounts::by_mp_openid(db, openid).await? {
                    Some(account) => credits::revoke(db, account, CreditKind::Subscribe, rejected).await?,
                    None => 0,
                },
            };
            tracing::info!(openid, ?app, templates = rejected.len(), removed, "a user turned subscription messages off");
        }
        (EventKind::SubscriptionSent { results }, app) => {
            let channel = match app {
                App::Oa => Channel::OaSubscribe,
                App::Mp => Channel::MpSubscribe,
            };
            for r in results {
                let settled =
                    outbox::settle_subscription_report(db, channel, openid, &r.template_id, r.msgid, r.errcode, &r.status).await?;
                if settled == 0 {
                    tracing::info!(openid, msgid = r.msgid, "a subscription send report for a message this server has no delivery of");
                } else if r.errcode != 0 {
                    tracing::warn!(openid, msgid = r.msgid, errcode = r.errcode, status = %r.status, "WeChat could not deliver a subscription message");
                }
            }
        }
        // The mini-program push also carries what only the service account acts on.
        (_, App::Mp) => {}
    }
    Ok(())
}

/// The templates the user accepted become credits of the app's kind,
/// counted once with the client's own report of the same acceptance.
async fn popup(services: &Services, app: App, openid: &str, accepted: &[String], declined: usize) -> Result<(), LinkError> {
    if accepted.is_empty() {
        tracing::info!(openid, ?app, declined, "a user declined a subscription popup");
        return Ok(());
    }
    let (account, kind) = match app {
        App::Oa => (accounts::by_oa_openid(services, openid).await?, CreditKind::OaSubscribe),
        App::Mp => (accounts::by_mp_openid(&services.db, openid).await?, CreditKind::Subscribe),
    };
    let Some(account) = account else {
        tracing::warn!(
            openid,
            ?app,
            "a user accepted subscription messages but no account is theirs yet (for the service account: no account has their unionid; \
             they need to log in to the mini-program once); nothing recorded"
        );
        return Ok(());
    };
    let recorded = credits::record_acceptances(&services.db, account, kind, Some(openid), accepted, Source::Wechat).await?;
    let paired = recorded.iter().filter(|r| **r == credits::Recorded::Paired).count();
    tracing::info!(openid, account, ?app, accepted = accepted.len(), paired, declined, "subscription credits reported by WeChat");
    Ok(())
}

async fn unfollow(services: &Services, openid: &str) -> Result<(), LinkError> {
    store::upsert_follower(&services.db, openid, None, false, None).await?;
    let unlinked = store::unlink_openid(&services.db, openid).await?;
    tracing::info!(openid, unlinked, "a user unfollowed the service account");
    Ok(())
}

async fn bind(services: &Services, scene: &str, openid: &str, unionid: Option<&str>) -> Result<(), LinkError> {
    match consume_scene(services, scene).await? {
        Some(account) => {
            store::link_account(&services.db, account, openid, unionid).await?;
            tracing::info!(account, openid, "bound a follower to an account by QR code");
        }
        None => tracing::info!(openid, "a scan with an unknown, expired or used scene; nothing bound"),
    }
    Ok(())
}

/// A send report: `success` leaves the delivery SENT (or makes an
/// IN_REVIEW one SENT); a failure marks it FAILED with WeChat's status as
/// errmsg.
async fn send_finished(services: &Services, openid: &str, msgid: i64, status: &str) -> Result<(), LinkError> {
    let ok = status == "success";
    let updated = outbox::settle_report(&services.db, openid, msgid, ok, status).await?;
    if updated == 0 {
        tracing::info!(msgid, status, "a send report for a message this server has no delivery of");
    } else if !ok {
        tracing::warn!(msgid, status, "WeChat could not deliver a template message");
    }
    Ok(())
}
