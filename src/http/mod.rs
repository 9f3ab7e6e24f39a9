//! The HTTP surface: GraphQL at `/api/graphql`, the console (see
//! [`crate::console`]) on `GET /` and `GET /api/graphql`, `/healthz`,
//! `/metrics`, and WeChat's pushes, `/wechat/callback` (the service
//! account) and `/wechat/mp-callback` (the mini-program), handled in
//! [`crate::callback`], which answers with outcomes rendered here.
//!
//! The transport is a thin shell: it works out who is calling (token and
//! client address), applies the transport's limits (body size, batch size,
//! request time) and hands each request to [`crate::graphql::execute`],
//! which owns how it is run and answered.

use std::net::SocketAddr;
use std::sync::Arc;

use async_graphql::BatchRequest;
use async_graphql_axum::{GraphQLBatchRequest, GraphQLResponse};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::auth::Caller;
use crate::callback;
use crate::error::CodedError;
use crate::graphql::execute::{Answer, to_json};
use crate::services::Services;
use crate::wechat::App;

/// What every request handler can reach: the server's [`Services`] (whose
/// `db` and `settings` it derefs to), the schema, and the statement counter.
pub struct AppState {
    pub services: Arc<Services>,
    /// The schema requests run against; `services.schema` holds the same
    /// one for work that runs outside a request (action flows, jobs).
    pub schema: async_graphql::dynamic::Schema,
    /// Every SQL statement run through the database connection.
    pub sql_statements: crate::db::StatementCounter,
    /// The table engine the schema runs.
    pub engine: crate::hasura::Engine,
}

impl std::ops::Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.services
    }
}

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(crate::console::page))
        .route("/api/graphql", get(crate::console::page).post(graphql))
        .merge(crate::console::router())
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/wechat/callback", get(oa_verify).post(oa_receive))
        .route("/wechat/mp-callback", get(mp_verify).post(mp_receive))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(state.settings.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(state.clone(), explain_too_large))
        .layer(axum::middleware::from_fn_with_state(state.clone(), time_limit))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

type PushQuery = axum::extract::Query<callback::CallbackQuery>;

async fn oa_verify(State(state): State<Arc<AppState>>, axum::extract::Query(query): PushQuery) -> Response {
    render(callback::verify(&state.services, App::Oa, &query))
}

async fn mp_verify(State(state): State<Arc<AppState>>, axum::extract::Query(query): PushQuery) -> Response {
    render(callback::verify(&state.services, App::Mp, &query))
}

async fn oa_receive(State(state): State<Arc<AppState>>, axum::extract::Query(query): PushQuery, body: axum::body::Body) -> Response {
    receive_push(state, App::Oa, query, body).await
}

async fn mp_receive(State(state): State<Arc<AppState>>, axum::extract::Query(query): PushQuery, body: axum::body::Body) -> Response {
    receive_push(state, App::Mp, query, body).await
}

async fn receive_push(state: Arc<AppState>, app: App, query: callback::CallbackQuery, body: axum::body::Body) -> Response {
    let limit = callback::body_limit(state.settings.max_body_bytes);
    let Ok(bytes) = axum::body::to_bytes(body, limit).await else {
        return render(callback::Answer::Refused(callback::Refusal::TooLarge, format!("a callback body is at most {limit} bytes")));
    };
    render(callback::receive(state.services.clone(), app, &query, &bytes).await)
}

/// A push's answer as WeChat expects it: plain text.
fn render(answer: callback::Answer) -> Response {
    use callback::Refusal;
    let (status, text) = match answer {
        callback::Answer::Echo(echostr) => (StatusCode::OK, echostr),
        callback::Answer::Success => (StatusCode::OK, "success".to_string()),
        callback::Answer::Refused(why, text) => (
            match why {
                Refusal::BadSignature => StatusCode::UNAUTHORIZED,
                Refusal::OtherApp => StatusCode::FORBIDDEN,
                Refusal::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
                Refusal::NotAMessage => StatusCode::BAD_REQUEST,
                Refusal::NotConfigured | Refusal::TryAgain => StatusCode::SERVICE_UNAVAILABLE,
            },
            text,
        ),
    };
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response()
}

/// Stops waiting for a request after `WXNOTIFY_REQUEST_TIMEOUT` and answers
/// 504 with an error saying so. The request's work is not cut off: it runs
/// on as background work (a stopping server waits for it), because a send
/// dropped half-way would leave messages claimed but never recorded. 504,
/// not 408, since clients repeat a 408 on their own and a repeated digest
/// would reach its users twice.
async fn time_limit(State(state): State<Arc<AppState>>, request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let limit = state.settings.request_timeout;
    let work = state.services.spawn(next.run(request));
    let (status, code, message) = match tokio::time::timeout(limit, work).await {
        Ok(Ok(response)) => return response,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "a request handler failed unexpectedly");
            (StatusCode::INTERNAL_SERVER_ERROR, "unexpected", "the request failed unexpectedly; see the server log".to_string())
        }
        Err(_) => (
            StatusCode::GATEWAY_TIMEOUT,
            "timeout",
            format!(
                "no answer within {} ms (WXNOTIFY_REQUEST_TIMEOUT): the request goes on in the background and its effects will show; \
                 do not repeat it, look for its effects instead",
                limit.as_millis()
            ),
        ),
    };
    (status, Json(json!({ "errors": [{ "message": message, "extensions": { "code": code } }] }))).into_response()
}

/// A 413 from the body limit says which setting refused it (other routes'
/// own refusals, such as the callback's 64 KiB cap, pass unchanged).
async fn explain_too_large(State(state): State<Arc<AppState>>, request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let graphql = request.uri().path() == "/api/graphql";
    let response = next.run(request).await;
    if !graphql || response.status() != StatusCode::PAYLOAD_TOO_LARGE {
        return response;
    }
    let message = format!(
        "the request body is larger than the {} bytes allowed (WXNOTIFY_MAX_BODY_BYTES): send less at once",
        state.settings.max_body_bytes
    );
    let body = json!({ "errors": [{ "message": message, "extensions": { "code": "body-too-large" } }] });
    (StatusCode::PAYLOAD_TOO_LARGE, Json(body)).into_response()
}

pub use crate::graphql::ops::ClientAddress;

/// The client's address: from `WXNOTIFY_CLIENT_IP_HEADER` when a reverse
/// proxy sets it (the last entry of a list, the one the proxy added), else
/// the connection's peer.
fn client_address(state: &AppState, headers: &HeaderMap, peer: SocketAddr) -> ClientAddress {
    let Some(name) = &state.settings.client_ip_header else { return ClientAddress(Some(peer.ip())) };
    // The last line and its last entry: what the proxy itself wrote (a client
    // may send its own header lines and entries before it).
    let forwarded = headers.get_all(name).iter().next_back().and_then(|v| v.to_str().ok()).and_then(|v| v.rsplit(',').next());
    ClientAddress(forwarded.and_then(|v| v.trim().parse().ok()))
}

async fn graphql(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    request: GraphQLBatchRequest,
) -> Response {
    let address = client_address(&state, &headers, peer);
    let caller = match state.services.jwt.authenticate(&headers).await {
        Ok(caller) => caller,
        // As Hasura: a GraphQL error with its code (`invalid-jwt`,
        // `access-denied`, ...), and nothing runs.
        Err(e) => {
            tracing::debug!(code = e.code(), reason = %e, "request credentials refused");
            let body = json!({ "errors": [{ "message": e.to_string(), "extensions": { "code": e.code() } }] });
            return Json(body).into_response();
        }
    };
    match request.into_inner() {
        BatchRequest::Single(request) => match execute(&state, request, caller, address).await {
            Answer::Spliced(body) => json_body(body),
            Answer::Plain(response) => GraphQLResponse::from(response).into_response(),
        },
        BatchRequest::Batch(requests) if requests.len() > state.settings.max_batch => {
            let message = format!(
                "a batch of {} operations is more than the {} allowed (WXNOTIFY_MAX_BATCH): send fewer at once",
                requests.len(),
                state.settings.max_batch
            );
            Json(json!({ "errors": [{ "message": message, "extensions": { "code": "batch-too-large" } }] })).into_response()
        }
        BatchRequest::Batch(requests) => {
            let mut bodies = Vec::with_capacity(requests.len());
            for request in requests {
                bodies.push(match execute(&state, request, caller.clone(), address).await {
                    Answer::Spliced(body) => body,
                    Answer::Plain(response) => to_json(&response),
                });
            }
            json_body(format!("[{}]", bodies.join(",")))
        }
    }
}

/// Runs one request through the schema (see [`crate::graphql::execute`]).
async fn execute(state: &AppState, request: async_graphql::Request, caller: Caller, address: ClientAddress) -> Answer {
    crate::graphql::execute::run(&state.schema, request, caller, address).await
}

fn json_body(body: String) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn metrics() -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], crate::metrics::render()).into_response()
}

async fn healthz(State(state): State<Arc<AppState>>) -> Response {
    match crate::db::ping(&state.db).await {
        Ok(()) => Json(json!({ "status": "ok", "database": "ok" })).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "health check: the database does not answer");
            (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "unavailable", "database": "unreachable" }))).into_response()
        }
    }
}
