//! Prometheus metrics at `/metrics`. One recorder per process (metrics are
//! process-wide); the names, all prefixed `wxnotify_`:
//! - `graphql_requests_total{operation, outcome}` and
//!   `graphql_request_duration_seconds{operation}`;
//! - `sql_statements_total`;
//! - `wechat_calls_total{api, errcode}` (errcode `0` for success, `transport`
//!   for timeouts and lost connections) and `wechat_token_fetches_total{app}`;
//! - `job_runs_total{job_type, status}` and `job_duration_seconds{job_type}`;
//! - `deliveries_total{channel, status}`: sends by outcome (SENT, FAILED,
//!   SKIPPED, PENDING when handed back for a later run);
//! - `follower_syncs_total{outcome}`, `follower_sync_duration_seconds` and
//!   `followers` (the count the last complete sync listed).

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the recorder on first use; `None` if another recorder owns the
/// process (the metrics then go there).
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| match PrometheusBuilder::new().install_recorder() {
            Ok(handle) => Some(handle),
            Err(e) => {
                tracing::warn!(error = %e, "another metrics recorder is installed; /metrics stays empty");
                None
            }
        })
        .as_ref()
}

/// Drains the histograms' recorded samples into their summaries every
/// [`UPKEEP_EVERY`] until `stopping`: a recorder installed without the
/// exporter's own HTTP listener keeps every sample until the next render
/// otherwise, so an unscraped server's memory would grow with its requests.
pub fn spawn_upkeep(stopping: tokio_util::sync::CancellationToken) {
    let Some(handle) = handle() else { return };
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(UPKEEP_EVERY) => handle.run_upkeep(),
                _ = stopping.cancelled() => return,
            }
        }
    });
}

const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// The text exposition format.
pub fn render() -> String {
    handle().map(PrometheusHandle::render).unwrap_or_default()
}

/// A label value bounded in length, so user-chosen names cannot blow up.
pub fn label(value: &str) -> String {
    value.chars().take(64).collect()
}
