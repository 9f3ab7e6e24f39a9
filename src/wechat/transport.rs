//! One WeChat call on the wire: the URL, the timeout, the errcode, the bounded
//! retries, and the single refresh-and-retry when the token is refused.
//!
//! Layers, innermost first: [`WechatClient::call_once`] sends and reads the
//! errcode; [`WechatClient::call_with_retries`] repeats busy (-1) and
//! rate-limited (45011) answers within [`RetryPolicy`](super::RetryPolicy)
//! bounds; [`WechatClient::call_with_token`] adds the access token and, when
//! WeChat refuses it, discards it (only if it is still the cached one),
//! fetches a fresh one and retries exactly once.

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::token::Fetched;
use super::{App, WechatClient, WechatError};

tokio::task_local! {
    /// The calls made inside a [`count_calls`] scope.
    static CALLS: Arc<AtomicU64>;
}

/// Runs `work` and counts the HTTP requests it sends to WeChat (retries and
/// token fetches included; calls other tasks make meanwhile are not), for
/// reports such as a sync's `api_calls`. Work spawned onto other tasks is
/// counted only if it is wrapped in the returned counter's scope too, so
/// pass `counter` to [`count_calls_into`] there.
pub async fn count_calls<F: Future>(work: F) -> (F::Output, u64) {
    let counter = Arc::new(AtomicU64::new(0));
    let output = count_calls_into(counter.clone(), work).await;
    (output, counter.load(Ordering::Relaxed))
}

/// Runs `work`, adding the WeChat requests it sends to `counter`.
pub async fn count_calls_into<F: Future>(counter: Arc<AtomicU64>, work: F) -> F::Output {
    CALLS.scope(counter, work).await
}

/// What one call sends.
pub(crate) struct Call {
    pub app: App,
    /// The path, also the name errors and logs use (`/cgi-bin/user/get`).
    pub api: &'static str,
    pub query: Vec<(&'static str, String)>,
    /// A JSON body makes it a POST; none makes it a GET.
    pub body: Option<Value>,
    /// Safe to repeat after a timeout or a broken connection (reads are;
    /// sends are not, as the first attempt may have been delivered).
    pub idempotent: bool,
    /// Non-zero errcodes that are answers, not failures, for this call
    /// (45065 on a template send: the message is already there).
    pub answers: &'static [i64],
}

impl Call {
    pub fn get(app: App, api: &'static str, query: Vec<(&'static str, String)>) -> Call {
        Call { app, api, query, body: None, idempotent: true, answers: &[] }
    }

    pub fn post(app: App, api: &'static str, body: Value) -> Call {
        Call { app, api, query: Vec::new(), body: Some(body), idempotent: false, answers: &[] }
    }

    /// Lets the caller read these errcodes' answers instead of failing.
    pub fn answering(mut self, errcodes: &'static [i64]) -> Call {
        self.answers = errcodes;
        self
    }

    /// Marks a POST that only reads (batchget, stable_token) as repeatable.
    pub fn idempotent(mut self) -> Call {
        self.idempotent = true;
        self
    }
}

#[derive(Deserialize)]
struct TokenWire {
    access_token: String,
    expires_in: i64,
}

impl WechatClient {
    /// Sends `call` with the app's access token; refreshes and retries once
    /// when WeChat refuses the token, never more.
    pub(crate) async fn call_with_token(&self, call: Call) -> Result<Value, WechatError> {
        let (appid, _) = self.credentials(call.app)?;
        let token = self.access_token(call.app).await?;
        match self.call_with_retries(&call, Some(&token)).await {
            Err(e) if e.is_token_refused() => {
                tracing::warn!(app = %call.app, api = call.api, errcode = ?e.errcode(),
                    "WeChat refused the access token; discarding it and retrying once with a fresh one");
                let fresh = self.inner.tokens.replace(appid, &token, || self.fetch_token(call.app)).await?;
                self.call_with_retries(&call, Some(&fresh)).await
            }
            other => other,
        }
    }

    /// Sends `call`, repeating busy and rate-limited answers within bounds.
    pub(crate) async fn call_with_retries(&self, call: &Call, token: Option<&str>) -> Result<Value, WechatError> {
        let policy = &self.inner.retry;
        let (mut busy_retries, mut rate_waits) = (0, 0);
        loop {
            let result = self.call_once(call, token).await;
            let Err(error) = &result else { return result };
            if is_busy(error, call.idempotent) && busy_retries + 1 < policy.busy_attempts {
                let delay = policy.busy_delay(busy_retries);
                tracing::info!(api = call.api, %error, ?delay, "WeChat is busy; backing off");
                tokio::time::sleep(delay).await;
                busy_retries += 1;
            } else if error.errcode() == Some(45011) && rate_waits < policy.rate_limit_waits {
                let delay = policy.rate_limit_delay();
                tracing::info!(api = call.api, ?delay, "WeChat's per-minute limit reached (45011); waiting");
                tokio::time::sleep(delay).await;
                rate_waits += 1;
            } else {
                return result;
            }
        }
    }

    async fn call_once(&self, call: &Call, token: Option<&str>) -> Result<Value, WechatError> {
        let api = call.api;
        let _ = CALLS.try_with(|calls| calls.fetch_add(1, Ordering::Relaxed));
        let mut params: Vec<(&str, &str)> = call.query.iter().map(|(k, v)| (*k, v.as_str())).collect();
        if let Some(token) = token {
            params.push(("access_token", token));
        }
        let url = reqwest::Url::parse_with_params(&format!("{}{api}", self.inner.base), &params)
            .map_err(|e| WechatError::Invalid { api, problem: format!("WXNOTIFY_WECHAT_API_BASE does not make a URL: {e}") })?;
        let request = match &call.body {
            Some(body) => self.inner.http.post(url).json(body),
            None => self.inner.http.get(url),
        };
        let answer = async {
            let response = request.send().await.map_err(|e| self.transport_error(api, e))?;
            let status = response.status();
            let bytes = response.bytes().await.map_err(|e| self.transport_error(api, e))?;
            parse_answer(call.app, api, status, &bytes, call.answers)
        }
        .await;
        let errcode = match &answer {
            Ok(_) => "0".to_string(),
            Err(e) => e.errcode().map(|c| c.to_string()).unwrap_or_else(|| "transport".into()),
        };
        ::metrics::counter!("wxnotify_wechat_calls_total", "api" => api, "errcode" => errcode).increment(1);
        answer
    }

    fn transport_error(&self, api: &'static str, error: reqwest::Error) -> WechatError {
        if error.is_timeout() {
            WechatError::Timeout { api, timeout: self.inner.timeout }
        } else {
            // The URL carries the access token or the secret: never show it.
            WechatError::Transport { api, source: error.without_url() }
        }
    }

    /// The cached access token of `app`, fetched when missing or stale.
    pub async fn access_token(&self, app: App) -> Result<String, WechatError> {
        let (appid, _) = self.credentials(app)?;
        self.inner.tokens.get(appid, || self.fetch_token(app)).await
    }

    /// Asks WeChat for a token: `/cgi-bin/token`, or `/cgi-bin/stable_token`
    /// when `WXNOTIFY_WECHAT_STABLE_TOKEN` is set (never with force_refresh,
    /// which would invalidate the token every other process holds).
    async fn fetch_token(&self, app: App) -> Result<Fetched, WechatError> {
        let (appid, secret) = self.credentials(app)?;
        let call = if self.inner.stable_token {
            let body = json!({ "grant_type": "client_credential", "appid": appid, "secret": secret.expose(), "force_refresh": false });
            Call::post(app, "/cgi-bin/stable_token", body).idempotent()
        } else {
            let query = vec![
                ("grant_type", "client_credential".to_string()),
                ("appid", appid.to_string()),
                ("secret", secret.expose().to_string()),
            ];
            Call::get(app, "/cgi-bin/token", query)
        };
        let wire: TokenWire = decode(call.api, self.call_with_retries(&call, None).await?)?;
        if wire.access_token.is_empty() || wire.expires_in <= 0 {
            return Err(WechatError::Malformed { api: call.api, detail: "an empty token or a non-positive expires_in".into() });
        }
        tracing::info!(%app, api = call.api, expires_in = wire.expires_in, "fetched a new WeChat access token");
        ::metrics::counter!("wxnotify_wechat_token_fetches_total", "app" => app.to_string()).increment(1);
        Ok(Fetched { token: wire.access_token, expires_in: wire.expires_in })
    }
}

/// -1, and for repeatable calls a lost connection or a timeout, are worth
/// another try after a pause.
fn is_busy(error: &WechatError, idempotent: bool) -> bool {
    match error {
        WechatError::Api { errcode, .. } => *errcode == -1,
        WechatError::Timeout { .. } | WechatError::Transport { .. } | WechatError::Malformed { .. } => idempotent,
        _ => false,
    }
}

/// WeChat answers HTTP 200 with JSON; a non-zero `errcode` is an error
/// unless the call reads it as an answer.
fn parse_answer(app: App, api: &'static str, status: reqwest::StatusCode, bytes: &[u8], answers: &[i64]) -> Result<Value, WechatError> {
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| WechatError::Malformed { api, detail: format!("HTTP {status}, not JSON: {e}") })?;
    let errcode = value.get("errcode").and_then(Value::as_i64).unwrap_or(0);
    if errcode != 0 && !answers.contains(&errcode) {
        let errmsg = value.get("errmsg").and_then(Value::as_str).unwrap_or_default().to_string();
        return Err(WechatError::Api { app, api, errcode, errmsg });
    }
    Ok(value)
}

/// Reads a successful answer into its wire type.
pub(crate) fn decode<T: DeserializeOwned>(api: &'static str, value: Value) -> Result<T, WechatError> {
    serde_json::from_value(value).map_err(|e| WechatError::Malformed { api, detail: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zero_or_missing_errcode_is_success_and_anything_else_an_error() {
        let ok = parse_answer(App::Oa, "/x", reqwest::StatusCode::OK, br#"{"errcode":0,"msgid":5}"#, &[]).unwrap();
        assert_eq!(ok["msgid"], 5);
        parse_answer(App::Oa, "/x", reqwest::StatusCode::OK, br#"{"total":1}"#, &[]).unwrap();
        let err = parse_answer(App::Oa, "/x", reqwest::StatusCode::OK, br#"{"errcode":45009,"errmsg":"quota"}"#, &[45065]).unwrap_err();
        assert_eq!((err.errcode(), err.errmsg()), (Some(45009), Some("quota")));
        let err = parse_answer(App::Oa, "/x", reqwest::StatusCode::BAD_GATEWAY, b"<html>", &[]).unwrap_err();
        assert!(matches!(err, WechatError::Malformed { .. }), "{err}");
    }

    #[test]
    fn only_repeatable_calls_retry_lost_connections() {
        let timeout = WechatError::Timeout { api: "/x", timeout: std::time::Duration::from_secs(1) };
        assert!(is_busy(&timeout, true));
        assert!(!is_busy(&timeout, false));
        let busy = WechatError::Api { app: App::Oa, api: "/x", errcode: -1, errmsg: "system error".into() };
        assert!(is_busy(&busy, false));
    }
}
