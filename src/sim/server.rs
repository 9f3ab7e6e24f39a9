//! The simulator on HTTP: every WeChat path goes to one dispatcher (WeChat
//! answers HTTP 200 with JSON, errors included), and `/_sim/*` lets a
//! separately running `wxnotify sim` be steered the way tests steer the
//! in-process one.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::state::{SimState, error};
use super::{SimFollower, SimTemplate};

type Shared = Arc<Mutex<SimState>>;

pub(crate) async fn serve(listener: tokio::net::TcpListener, shared: Shared) {
    let router = Router::new()
        .route("/_sim/calls", get(calls))
        .route("/_sim/sent", get(sent))
        .route("/_sim/faults", post(fault))
        .route("/_sim/latency", post(latency))
        .route("/_sim/followers", post(followers))
        .route("/_sim/invalidate", post(invalidate))
        .route("/_sim/templates", post(templates))
        .route("/_sim/review-share", post(review_share))
        .route("/_sim/blocked", get(blocked))
        .fallback(dispatch)
        .with_state(shared);
    if let Err(e) = axum::serve(listener, router).await {
        tracing::error!(error = %e, "the WeChat simulator stopped");
    }
}

fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, SimState> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A call takes effect when it arrives and its answer leaves `latency`
/// after that: the simulated latency is the whole round trip, WeChat's own
/// work included, as a caller sees it. The work is done before the wait, so
/// the simulator's handling (building a batchget's hundred users, say) is
/// not added on top of the latency, and calls arriving together do not
/// queue for it after their waits. A caller that gives up during the wait
/// does not undo the call: once WeChat has a request, it acts on it.
async fn dispatch(State(shared): State<Shared>, uri: Uri, Query(query): Query<BTreeMap<String, String>>, body: Bytes) -> Response {
    let arrived = std::time::Instant::now();
    let body = if body.is_empty() { Ok(Value::Null) } else { serde_json::from_slice(&body) };
    let (answer, latency, delay) = {
        let mut state = lock(&shared);
        let answer = match body {
            Ok(body) => state.answer(uri.path(), &query, &body),
            Err(_) => {
                state.record(uri.path(), &query, &Value::Null, 47001);
                error(47001, "data format error")
            }
        };
        (answer, state.latency, state.answer_delay)
    };
    let answer = Json(answer).into_response();
    // To the microsecond, not to the next tick of tokio's timer (see `clock`).
    super::clock::wait(arrived, latency).await;
    // The call took effect; only the answer is late, as when WeChat's
    // reply is lost on the way and the caller times out.
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    answer
}

async fn calls(State(shared): State<Shared>) -> Json<Value> {
    Json(json!(lock(&shared).calls))
}

async fn sent(State(shared): State<Shared>) -> Json<Value> {
    Json(json!(lock(&shared).sent))
}

#[derive(Deserialize)]
struct Fault {
    path: String,
    errcode: i64,
    #[serde(default = "one")]
    times: usize,
}

fn one() -> usize {
    1
}

async fn fault(State(shared): State<Shared>, Json(fault): Json<Fault>) -> Json<Value> {
    lock(&shared).inject(&fault.path, fault.errcode, fault.times);
    Json(json!({ "ok": true }))
}

#[derive(Deserialize)]
struct Latency {
    ms: u64,
}

async fn latency(State(shared): State<Shared>, Json(latency): Json<Latency>) -> Json<Value> {
    lock(&shared).latency = Duration::from_millis(latency.ms);
    Json(json!({ "ok": true }))
}

async fn followers(State(shared): State<Shared>, Json(followers): Json<Vec<SimFollower>>) -> Json<Value> {
    let mut state = lock(&shared);
    state.add_followers(followers);
    Json(json!({ "followers": state.follower_count() }))
}

#[derive(Deserialize)]
struct Invalidate {
    appid: String,
}

async fn invalidate(State(shared): State<Shared>, Json(target): Json<Invalidate>) -> Json<Value> {
    lock(&shared).invalidate_tokens(&target.appid);
    Json(json!({ "ok": true }))
}

/// Adds templates to the service account's library (replacing those with
/// the same id).
async fn templates(State(shared): State<Shared>, Json(templates): Json<Vec<SimTemplate>>) -> Json<Value> {
    let mut state = lock(&shared);
    for template in templates {
        state.config.templates.retain(|t| t.template_id != template.template_id);
        state.config.templates.push(template);
    }
    Json(json!({ "templates": state.config.templates.len() }))
}

#[derive(Deserialize)]
struct ReviewShare {
    share: f64,
}

async fn review_share(State(shared): State<Shared>, Json(review): Json<ReviewShare>) -> Json<Value> {
    let mut state = lock(&shared);
    state.config.review_share = review.share;
    state.review_counter = 0;
    Json(json!({ "ok": true }))
}

async fn blocked(State(shared): State<Shared>) -> Json<Value> {
    Json(json!(lock(&shared).blocked))
}
