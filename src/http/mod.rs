//! The HTTP surface (contract §6): GraphQL at `/api/graphql`, GraphiQL on
//! `GET /` and `GET /api/graphql`, `/healthz`, and `/wechat/callback`
//! (handled in [`crate::linking::callback`]).
//!
//! The transport is a thin shell: it works out who is calling and hands the
//! request to the schema, which owns everything else.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use async_graphql::BatchRequest;
use async_graphql::http::GraphiQLSource;
use async_graphql_axum::{GraphQLBatchRequest, GraphQLResponse};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::AppState;
use crate::auth::Caller;
use crate::hasura::Splice;

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(graphiql))
        .route("/api/graphql", get(graphiql).post(graphql))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/wechat/callback", get(crate::linking::callback::verify).post(crate::linking::callback::receive))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(state.settings.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(state.clone(), explain_too_large))
        .layer(axum::middleware::from_fn_with_state(state.clone(), time_limit))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
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

async fn graphiql() -> Html<String> {
    Html(GraphiQLSource::build().endpoint("/api/graphql").title("wxnotify").finish())
}

/// The address the request came from, as the schema's resolvers see it.
#[derive(Clone, Copy, Debug)]
pub struct ClientAddress(pub Option<IpAddr>);

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

enum Answer {
    /// The response body, with the database's JSON spliced in.
    Spliced(String),
    Plain(async_graphql::Response),
}

/// Runs one request. Query root fields over tables are spliced (see
/// [`Splice`]) unless the document uses `@skip`/`@include`, whose effect on
/// nested fields only async-graphql's own walk applies.
async fn execute(state: &AppState, request: async_graphql::Request, caller: Caller, address: ClientAddress) -> Answer {
    let operation =
        crate::metrics::label(request.operation_name.as_deref().or_else(|| named_operation(&request.query)).unwrap_or("anonymous"));
    let started = std::time::Instant::now();
    let answer = execute_once(state, request, caller, address).await;
    let outcome = match &answer {
        Answer::Plain(response) if response.is_err() => "error",
        _ => "ok",
    };
    ::metrics::counter!("wxnotify_graphql_requests_total", "operation" => operation.clone(), "outcome" => outcome).increment(1);
    ::metrics::histogram!("wxnotify_graphql_request_duration_seconds", "operation" => operation).record(started.elapsed().as_secs_f64());
    answer
}

/// Deeper bracket nesting than any real document has; the GraphQL parser
/// recurses on nesting, so deeper input is refused before it is parsed.
const MAX_NESTING: usize = 128;

async fn execute_once(state: &AppState, request: async_graphql::Request, caller: Caller, address: ClientAddress) -> Answer {
    if nesting(&request.query) > MAX_NESTING {
        let error = async_graphql::ServerError::new(format!("the document nests deeper than {MAX_NESTING} levels of brackets"), None);
        return Answer::Plain(async_graphql::Response::from_errors(vec![error]));
    }
    let directives = request.query.contains("@skip") || request.query.contains("@include");
    if directives {
        return Answer::Plain(without_data_if_refused(state.schema.execute(request.data(caller).data(address)).await));
    }
    let splice = Arc::new(Splice::default());
    let mut retry = async_graphql::Request::new(request.query.clone()).variables(request.variables.clone());
    retry.operation_name = request.operation_name.clone();
    let response = state.schema.execute(request.data(caller.clone()).data(address).data(splice.clone())).await;
    let entries = splice.take();
    if entries.is_empty() || refused(&response) {
        return Answer::Plain(without_data_if_refused(response));
    }
    let mut keys: Vec<&str> = entries.iter().map(|(k, _)| k.as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    if keys.len() != entries.len() {
        // One response key resolved twice (a repeated root field): queries
        // have no side effects, so answer it the plain way.
        return Answer::Plain(without_data_if_refused(state.schema.execute(retry.data(caller).data(address)).await));
    }
    Answer::Spliced(spliced_body(response, &entries))
}

/// The deepest bracket nesting of a document, ignoring strings and comments.
fn nesting(document: &str) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let mut chars = document.chars();
    while let Some(c) = chars.next() {
        match c {
            '{' | '[' | '(' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            '}' | ']' | ')' => depth = depth.saturating_sub(1),
            '"' => {
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            chars.next();
                        }
                        '"' => break,
                        _ => {}
                    }
                }
            }
            '#' => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            _ => {}
        }
    }
    deepest
}

/// The name of the document's first operation (`query notice { ... }`), for
/// metrics when the request does not say which operation it runs.
fn named_operation(document: &str) -> Option<&str> {
    let start = document.lines().find(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))?;
    let code = &document[document.find(start)?..];
    let rest = code.trim_start();
    let after = ["query", "mutation", "subscription"].iter().find_map(|k| rest.strip_prefix(k))?;
    if after.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_') {
        return None; // `queryX { ... }` is not the keyword
    }
    let after = after.trim_start();
    let end = after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(after.len());
    let name = &after[..end];
    (!name.is_empty() && !name.starts_with(|c: char| c.is_ascii_digit())).then_some(name)
}

/// Whether any field was refused for the caller's role.
fn refused(response: &async_graphql::Response) -> bool {
    response
        .errors
        .iter()
        .any(|e| e.extensions.as_ref().and_then(|x| x.get("code")) == Some(&async_graphql::Value::String("access-denied".into())))
}

/// A refused request answers with the refusal only: no partial data.
fn without_data_if_refused(mut response: async_graphql::Response) -> async_graphql::Response {
    if refused(&response) {
        response.data = async_graphql::Value::Null;
    }
    response
}

/// `{"data":{...},"errors":[...],"extensions":{...}}` with spliced fields'
/// JSON written as the database produced it.
fn spliced_body(response: async_graphql::Response, entries: &[(String, String)]) -> String {
    let mut body = String::from("{\"data\":");
    match &response.data {
        async_graphql::Value::Object(fields) => {
            body.push('{');
            for (i, (key, value)) in fields.iter().enumerate() {
                if i > 0 {
                    body.push(',');
                }
                body.push_str(&to_json(&key.as_str()));
                body.push(':');
                match entries.iter().find(|(k, _)| k == key.as_str()) {
                    Some((_, raw)) => body.push_str(raw),
                    None => body.push_str(&to_json(value)),
                }
            }
            body.push('}');
        }
        other => body.push_str(&to_json(other)),
    }
    if !response.errors.is_empty() {
        body.push_str(",\"errors\":");
        body.push_str(&to_json(&response.errors));
    }
    if !response.extensions.is_empty() {
        body.push_str(",\"extensions\":");
        body.push_str(&to_json(&response.extensions));
    }
    body.push('}');
    body
}

fn to_json<T: serde::Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".into())
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

#[cfg(test)]
mod tests {
    use super::named_operation;

    #[test]
    fn nesting_ignores_strings_and_comments() {
        assert_eq!(super::nesting("{ a(where: {b: {_eq: \"{{{{\"}}) { c } }"), 4);
        assert_eq!(super::nesting("# {{{{{\n{ a }"), 1);
    }

    #[test]
    fn operations_are_named_from_the_document() {
        assert_eq!(named_operation("query notice{ account { id } }"), Some("notice"));
        assert_eq!(named_operation("# a comment\n  mutation jj { addScheduledJob }"), Some("jj"));
        assert_eq!(named_operation("{ account { id } }"), None);
        assert_eq!(named_operation("query { account { id } }"), None);
        assert_eq!(named_operation("mutation($a: Int) { x }"), None);
    }
}
