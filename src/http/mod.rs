//! The HTTP surface (contract §6): GraphQL at `/api/graphql`, GraphiQL on
//! `GET /` and `GET /api/graphql`, `/healthz`, and `/wechat/callback`
//! (handled in [`crate::linking::callback`]).
//!
//! The transport is a thin shell: it works out who is calling and hands the
//! request to the schema, which owns everything else.

use std::sync::Arc;

use async_graphql::BatchRequest;
use async_graphql::http::GraphiQLSource;
use async_graphql_axum::{GraphQLBatchRequest, GraphQLResponse};
use axum::extract::{DefaultBodyLimit, State};
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
        .route("/wechat/callback", get(crate::linking::callback::verify).post(crate::linking::callback::receive))
        .layer(DefaultBodyLimit::max(state.settings.max_body_bytes))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

async fn graphiql() -> Html<String> {
    Html(GraphiQLSource::build().endpoint("/api/graphql").title("wxnotify").finish())
}

async fn graphql(State(state): State<Arc<AppState>>, headers: HeaderMap, request: GraphQLBatchRequest) -> Response {
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let caller = match state.services.jwt.caller(authorization) {
        Ok(caller) => caller,
        // As Hasura: a GraphQL error with code `invalid-jwt`, and nothing runs.
        Err(e) => {
            let body = json!({ "errors": [{ "message": e.to_string(), "extensions": { "code": "invalid-jwt" } }] });
            return Json(body).into_response();
        }
    };
    match request.into_inner() {
        BatchRequest::Single(request) => match execute(&state, request, caller).await {
            Answer::Spliced(body) => json_body(body),
            Answer::Plain(response) => GraphQLResponse::from(response).into_response(),
        },
        BatchRequest::Batch(requests) => {
            let mut bodies = Vec::with_capacity(requests.len());
            for request in requests {
                bodies.push(match execute(&state, request, caller.clone()).await {
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
async fn execute(state: &AppState, request: async_graphql::Request, caller: Caller) -> Answer {
    let directives = request.query.contains("@skip") || request.query.contains("@include");
    if directives {
        return Answer::Plain(state.schema.execute(request.data(caller)).await);
    }
    let splice = Arc::new(Splice::default());
    let mut retry = async_graphql::Request::new(request.query.clone()).variables(request.variables.clone());
    retry.operation_name = request.operation_name.clone();
    let response = state.schema.execute(request.data(caller.clone()).data(splice.clone())).await;
    let entries = splice.take();
    if entries.is_empty() {
        return Answer::Plain(response);
    }
    let mut keys: Vec<&str> = entries.iter().map(|(k, _)| k.as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    if keys.len() != entries.len() {
        // One response key resolved twice (a repeated root field): queries
        // have no side effects, so answer it the plain way.
        return Answer::Plain(state.schema.execute(retry.data(caller)).await);
    }
    Answer::Spliced(spliced_body(response, &entries))
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

async fn healthz(State(state): State<Arc<AppState>>) -> Response {
    match crate::db::ping(&state.db).await {
        Ok(()) => Json(json!({ "status": "ok", "database": "ok" })).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "health check: the database does not answer");
            (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "unavailable", "database": "unreachable" })))
                .into_response()
        }
    }
}
