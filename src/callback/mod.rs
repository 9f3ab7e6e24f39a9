//! `/wechat/callback`: the service account's server URL. It owns
//! `callback_event` (the claims that de-duplicate WeChat's retries) and
//! hands each event to the capability it concerns: follows, unfollows and
//! scans to [`crate::linking`], send reports to [`crate::notify::outbox`].
//!
//! GET answers WeChat's signature check by echoing `echostr`. POST takes
//! event XML, plain or in AES safe mode (`encrypt_type=aes`), and:
//! - refuses a bad `signature` / `msg_signature` (401) or a message for
//!   another appid (403) before touching the database; a body over
//!   [`MAX_CALLBACK_BYTES`] is a 413, anything that is not a WeChat message
//!   a 400;
//! - claims the event in `callback_event` (FromUserName, CreateTime, Event,
//!   and MsgID for send reports), so WeChat's retries, to any server
//!   process, are answered `success` and do nothing; each new claim also
//!   forgets the claims older than [`DEDUPE_RETENTION`];
//! - applies it: subscribe (user/info for the unionid, follower upserted,
//!   accounts linked, a bind scene honoured), unsubscribe (unlinked), SCAN
//!   with a bind scene, TEMPLATESENDJOBFINISH (the delivery by msgid);
//! - answers `success` within [`ANSWER_WITHIN`] even if the work goes on.
//!
//! A failure while applying releases the claim and answers 503, so WeChat's
//! retry can do the work again (every step is idempotent).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, TimeDelta, Utc};
use serde::Deserialize;

use xml::parse_message;

use crate::AppState;
use crate::linking::LinkError;
use crate::linking::bind::consume_scene;
use crate::linking::store::{self, execute};
use crate::services::Services;
use crate::wechat::crypto::{self, AesKey, CryptoError};

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

fn plain(status: StatusCode, text: impl Into<String>) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text.into()).into_response()
}

fn success() -> Response {
    plain(StatusCode::OK, "success")
}

/// The callback Token, or the answer saying it is missing.
fn token(state: &AppState) -> Result<&str, Response> {
    state.settings.oa_token.as_ref().map(|t| t.expose()).ok_or_else(|| {
        tracing::error!("a WeChat callback arrived but WXNOTIFY_OA_TOKEN is not set");
        plain(StatusCode::SERVICE_UNAVAILABLE, "the callback is not configured (WXNOTIFY_OA_TOKEN)")
    })
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
pub async fn verify(State(state): State<Arc<AppState>>, Query(query): Query<CallbackQuery>) -> Response {
    let token = match token(&state) {
        Ok(token) => token,
        Err(answer) => return answer,
    };
    match (&query.echostr, signed(&query, token)) {
        (Some(echostr), true) => plain(StatusCode::OK, echostr.clone()),
        _ => plain(StatusCode::UNAUTHORIZED, "bad signature"),
    }
}

/// POST: one event from WeChat.
pub async fn receive(State(state): State<Arc<AppState>>, Query(query): Query<CallbackQuery>, body: Body) -> Response {
    let token = match token(&state) {
        Ok(token) => token,
        Err(answer) => return answer,
    };
    if !signed(&query, token) {
        return plain(StatusCode::UNAUTHORIZED, "bad signature");
    }
    let limit = MAX_CALLBACK_BYTES.min(state.settings.max_body_bytes);
    let Ok(bytes) = axum::body::to_bytes(body, limit).await else {
        return plain(StatusCode::PAYLOAD_TOO_LARGE, format!("a callback body is at most {limit} bytes"));
    };
    let fields = match read_message(&state, &query, token, &bytes) {
        Ok(fields) => fields,
        Err(answer) => return answer,
    };
    let event = match Event::from_fields(&fields) {
        Ok(Some(event)) => event,
        Ok(None) => return success(),
        Err(problem) => return plain(StatusCode::BAD_REQUEST, problem),
    };
    dispatch(state.services.clone(), event).await
}

/// The message's fields, decrypted and checked in safe mode.
fn read_message(state: &AppState, query: &CallbackQuery, token: &str, body: &[u8]) -> Result<BTreeMap<String, String>, Response> {
    let bad = |e: &dyn std::fmt::Display| plain(StatusCode::BAD_REQUEST, e.to_string());
    let text = std::str::from_utf8(body).map_err(|_| plain(StatusCode::BAD_REQUEST, "the body is not UTF-8"))?;
    let outer = parse_message(text).map_err(|e| bad(&e))?;
    if query.encrypt_type.as_deref() != Some("aes") {
        return Ok(outer);
    }
    let settings = &state.settings;
    let (Some(key), Some(appid)) = (settings.oa_aes_key.as_ref(), settings.oa_appid.as_deref()) else {
        tracing::error!("a safe-mode callback arrived but WXNOTIFY_OA_AES_KEY or WXNOTIFY_OA_APPID is not set");
        return Err(plain(StatusCode::SERVICE_UNAVAILABLE, "safe mode is not configured (WXNOTIFY_OA_AES_KEY, WXNOTIFY_OA_APPID)"));
    };
    let encrypted = outer.get("Encrypt").ok_or_else(|| plain(StatusCode::BAD_REQUEST, "a safe-mode message needs <Encrypt>"))?;
    let (Some(msg_signature), Some(timestamp), Some(nonce)) = (&query.msg_signature, &query.timestamp, &query.nonce) else {
        return Err(plain(StatusCode::UNAUTHORIZED, "bad msg_signature"));
    };
    if !crypto::signature_matches(msg_signature, &crypto::msg_signature(token, timestamp, nonce, encrypted)) {
        return Err(plain(StatusCode::UNAUTHORIZED, "bad msg_signature"));
    }
    let key = AesKey::parse(key.expose()).map_err(|e| {
        tracing::error!(error = %e, "WXNOTIFY_OA_AES_KEY is unusable");
        plain(StatusCode::SERVICE_UNAVAILABLE, "safe mode is misconfigured (WXNOTIFY_OA_AES_KEY)")
    })?;
    let xml = crypto::decrypt(&key, encrypted, appid).map_err(|e| match e {
        CryptoError::WrongAppid => plain(StatusCode::FORBIDDEN, "the message is for another appid"),
        other => bad(&other),
    })?;
    parse_message(&xml).map_err(|e| bad(&e))
}

/// An event this server acts on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// The follower's openid (FromUserName).
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
}

impl Event {
    /// The event in `fields`; `None` for messages and events this server
    /// does not act on; `Err` for a message missing what every one has.
    pub fn from_fields(fields: &BTreeMap<String, String>) -> Result<Option<Event>, String> {
        let get = |name: &str| fields.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
        let openid = get("FromUserName").filter(|o| o.len() <= 128).ok_or("FromUserName is missing or too long")?;
        let create_time = get("CreateTime").and_then(|t| t.parse::<i64>().ok()).ok_or("CreateTime is missing or not a number")?;
        if get("MsgType") != Some("event") {
            return Ok(None);
        }
        let key = get("EventKey").unwrap_or_default();
        let kind = match get("Event").unwrap_or_default() {
            "subscribe" => EventKind::Subscribe { scene: key.strip_prefix("qrscene_").map(str::to_string) },
            "unsubscribe" => EventKind::Unsubscribe,
            "SCAN" if !key.is_empty() => EventKind::Scan { scene: key.to_string() },
            "TEMPLATESENDJOBFINISH" => EventKind::SendFinished {
                msgid: get("MsgID").and_then(|m| m.parse().ok()).ok_or("TEMPLATESENDJOBFINISH needs a numeric MsgID")?,
                status: get("Status").unwrap_or_default().to_string(),
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
        }
    }

    /// Identifies one event across WeChat's retries.
    pub fn dedupe_key(&self) -> String {
        let base = format!("{}:{}:{}", self.openid, self.create_time, self.name());
        match &self.kind {
            EventKind::SendFinished { msgid, .. } => format!("{base}:{msgid}"),
            _ => base,
        }
    }
}

/// Claims, applies (in a task of its own, so a slow WeChat cannot hold the
/// answer past [`ANSWER_WITHIN`]) and answers.
async fn dispatch(services: Arc<Services>, event: Event) -> Response {
    let key = event.dedupe_key();
    match claim(&services, &key, event.name()).await {
        Ok(true) => {}
        Ok(false) => {
            tracing::debug!(key, "a repeated WeChat callback; already handled");
            return success();
        }
        Err(e) => {
            tracing::error!(error = %e, "could not record a WeChat callback; WeChat will retry");
            return plain(StatusCode::SERVICE_UNAVAILABLE, "try again");
        }
    }
    let work = services.clone().spawn(async move {
        let result = apply(&services, &event).await;
        forget_old_claims(&services, Utc::now() - DEDUPE_RETENTION).await;
        if let Err(e) = &result {
            tracing::error!(error = %e, key, "applying a WeChat callback failed; releasing it for WeChat's retry");
            if let Err(e) = execute(&services.db, "DELETE FROM callback_event WHERE dedupe_key = $1", vec![key.into()]).await {
                tracing::error!(error = %e, "could not release a failed callback; the next sync repairs its effect");
            }
        }
        result
    });
    match tokio::time::timeout(ANSWER_WITHIN, work).await {
        Ok(Ok(Ok(()))) => success(),
        Ok(Ok(Err(_))) | Ok(Err(_)) => plain(StatusCode::SERVICE_UNAVAILABLE, "try again"),
        Err(_) => {
            tracing::warn!("a WeChat callback is taking long; answered success, finishing in the background");
            success()
        }
    }
}

/// Records the event; false when it was recorded before (a retry).
async fn claim(services: &Services, key: &str, event: &str) -> Result<bool, sea_orm::DbErr> {
    let now = Utc::now();
    let sql = "INSERT INTO callback_event (dedupe_key, event, received_at) VALUES ($1, $2, $3) ON CONFLICT (dedupe_key) DO NOTHING";
    Ok(execute(&services.db, sql, vec![key.into(), event.into(), now.into()]).await? > 0)
}

/// Deletes the claims received before `cutoff`: one indexed range, nearly
/// always a few rows or none, so the table holds about a day of events.
/// A failure only leaves them for the next event to delete.
async fn forget_old_claims(services: &Services, cutoff: DateTime<Utc>) {
    match execute(&services.db, "DELETE FROM callback_event WHERE received_at < $1", vec![cutoff.into()]).await {
        Ok(0) => {}
        Ok(forgotten) => tracing::debug!(forgotten, "forgot WeChat callback events past their retention"),
        Err(e) => tracing::warn!(error = %e, "could not delete old WeChat callback records; the next event tries again"),
    }
}

/// Does what the event means. Every step is idempotent.
pub async fn apply(services: &Services, event: &Event) -> Result<(), LinkError> {
    let db = &services.db;
    let openid = event.openid.as_str();
    match &event.kind {
        EventKind::Subscribe { scene } => {
            // Events carry only the openid; WeChat's word on the unionid (and
            // on whether they still follow) comes from user/info.
            let info = services.wechat.user_info(openid).await?;
            if !info.subscribe {
                return unfollow(services, openid).await;
            }
            let unionid = info.unionid.as_deref();
            store::upsert_follower(db, openid, unionid, true, Some(info.subscribe_time.unwrap_or_else(Utc::now))).await?;
            if let Some(unionid) = unionid {
                store::link_by_unionid(db, services.settings.database_kind, openid, unionid).await?;
            }
            if let Some(scene) = scene {
                bind(services, scene, openid, unionid).await?;
            }
            tracing::info!(openid, linked_by_unionid = unionid.is_some(), "a user followed the service account");
        }
        EventKind::Unsubscribe => unfollow(services, openid).await?,
        EventKind::Scan { scene } => {
            store::upsert_follower(db, openid, None, true, None).await?;
            bind(services, scene, openid, None).await?;
        }
        EventKind::SendFinished { msgid, status } => send_finished(services, *msgid, status).await?,
    }
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

/// A send report: `success` leaves the delivery SENT; a failure marks it
/// FAILED with WeChat's status as errmsg.
async fn send_finished(services: &Services, msgid: i64, status: &str) -> Result<(), LinkError> {
    let ok = status == "success";
    let updated = crate::notify::outbox::settle_report(&services.db, msgid, ok, status).await?;
    if updated == 0 {
        tracing::info!(msgid, status, "a send report for a message this server has no delivery of");
    } else if !ok {
        tracing::warn!(msgid, status, "WeChat could not deliver a template message");
    }
    Ok(())
}
