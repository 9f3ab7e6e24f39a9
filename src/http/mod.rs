//! The HTTP surface (contract §6): GraphQL at `/api/graphql`, GraphiQL on
//! `GET /` and `GET /api/graphql`, and `/healthz`.
//!
//! The transport is a thin shell: it works out who is calling and hands the
//! request to the schema, which owns everything else.

use std::sync::Arc;

use async_graphql::Executor;
use async_graphql::http::GraphiQLSource;
use async_graphql_axum::{GraphQLBatchRequest, GraphQLResponse};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::AppState;

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(graphiql))
        .route("/api/graphql", get(graphiql).post(graphql))
        .route("/healthz", get(healthz))
        .layer(DefaultBodyLimit::max(state.settings.max_body_bytes))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

async fn graphiql() -> Html<String> {
    Html(GraphiQLSource::build().endpoint("/api/graphql").title("wxnotify").finish())
}

async fn graphql(State(state): State<Arc<AppState>>, headers: HeaderMap, request: GraphQLBatchRequest) -> Response {
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let caller = match state.jwt.caller(authorization) {
        Ok(caller) => caller,
        // As Hasura: a GraphQL error with code `invalid-jwt`, and nothing runs.
        Err(e) => {
            let body = json!({ "errors": [{ "message": e.to_string(), "extensions": { "code": "invalid-jwt" } }] });
            return Json(body).into_response();
        }
    };
    let request = request.into_inner().data(caller);
    GraphQLResponse::from(state.schema.execute_batch(request).await).into_response()
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
