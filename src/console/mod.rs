//! The web console: a GraphQL IDE and an operations dashboard, written as
//! plain HTML, CSS and JavaScript and embedded in the binary, so it works on
//! an intranet and wherever public CDNs are blocked or slow. This module
//! serves those files (`/`, `/api/graphql` for browsers, `/console/*`) with
//! their content types, cache headers and a Content-Security-Policy that
//! keeps every request on the server's own origin; [`stats`] answers the
//! dashboard's admin-only `GET /api/console/stats`.

pub mod stats;

use std::sync::{Arc, LazyLock};

use axum::Router;
use axum::extract::Query;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::AppState;

const INDEX: &str = include_str!("index.html");
const SCRIPT: &str = include_str!("console.js");
const STYLE: &str = include_str!("console.css");

/// The browser may fetch from this origin only: no CDN, font or analytics
/// host can be reached even if a later edit of the page tried to.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; \
                   base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// A fingerprint of the script and style, put in their URLs by the page so
/// that a new build is fetched at once while an unchanged one stays cached.
static VERSION: LazyLock<String> = LazyLock::new(|| {
    // FNV-1a: stable across builds and platforms, unlike the std hasher.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in SCRIPT.bytes().chain(STYLE.bytes()) {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
});

static PAGE: LazyLock<String> = LazyLock::new(|| INDEX.replace("{{version}}", &VERSION));

/// The console's asset routes and its statistics endpoint.
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/console/console.js", get(script))
        .route("/console/console.css", get(style))
        .route("/api/console/stats", get(stats::handler))
}

/// The page itself, for `GET /` and a browser's `GET /api/graphql`. Always
/// revalidated, so it names the current assets.
pub async fn page() -> Response {
    asset("text/html; charset=utf-8", PAGE.as_str(), "no-cache")
}

#[derive(serde::Deserialize)]
struct Versioned {
    v: Option<String>,
}

async fn script(Query(query): Query<Versioned>) -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT, cache_for(&query))
}

async fn style(Query(query): Query<Versioned>) -> Response {
    asset("text/css; charset=utf-8", STYLE, cache_for(&query))
}

/// A URL carrying the current fingerprint never changes, so it may be kept
/// for a year; any other is revalidated.
fn cache_for(query: &Versioned) -> &'static str {
    if query.v.as_deref() == Some(VERSION.as_str()) { "public, max-age=31536000, immutable" } else { "no-cache" }
}

fn asset(content_type: &'static str, body: &'static str, cache: &'static str) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

/// Bytes the browser downloads to show the console (page, script, style).
pub fn page_bytes() -> usize {
    PAGE.len() + SCRIPT.len() + STYLE.len()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_page_names_its_versioned_assets_and_stays_small() {
        assert!(super::PAGE.contains(&format!("/console/console.js?v={}", *super::VERSION)));
        assert!(super::PAGE.contains(&format!("/console/console.css?v={}", *super::VERSION)));
        assert!(super::page_bytes() < 300 * 1024, "{} bytes", super::page_bytes());
    }

    #[test]
    fn nothing_names_another_host() {
        for (name, text) in [("index.html", super::INDEX), ("console.js", super::SCRIPT), ("console.css", super::STYLE)] {
            // The SVG namespace is a name, never fetched.
            let text = text.replace("\"http://www.w3.org/2000/svg\"", "");
            for needle in ["http://", "https://", "//cdn", "@import", "url(http"] {
                assert!(!text.contains(needle), "{name} contains {needle}");
            }
        }
    }
}
