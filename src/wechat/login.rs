//! Mini-program login: `jscode2session` turns the code from `wx.login` into
//! the user's openid (and unionid when the apps are bound).

use serde::Deserialize;

use super::transport::{Call, decode};
use super::{App, WechatClient, WechatError};

/// Who logged in. WeChat's `session_key` is deliberately absent: it must
/// never reach a client, and nothing in wxnotify needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    /// The user's openid in the mini-program.
    pub openid: String,
    /// Present only when the mini-program and the service account are bound
    /// under one Open Platform account.
    pub unionid: Option<String>,
}

#[derive(Deserialize)]
struct SessionWire {
    openid: String,
    #[serde(default)]
    unionid: Option<String>,
}

impl WechatClient {
    /// Exchanges a `wx.login` code (valid once, for 5 minutes) for the
    /// user's identity. 40029 / 40163 come back as [`Reaction::InvalidCode`](super::Reaction::InvalidCode).
    pub async fn login(&self, code: &str) -> Result<Session, WechatError> {
        const API: &str = "/sns/jscode2session";
        if code.is_empty() || code.len() > 256 {
            return Err(WechatError::Invalid { api: API, problem: "the login code must be 1 to 256 characters".into() });
        }
        let (appid, secret) = self.credentials(App::Mp)?;
        let query = vec![
            ("appid", appid.to_string()),
            ("secret", secret.expose().to_string()),
            ("js_code", code.to_string()),
            ("grant_type", "authorization_code".to_string()),
        ];
        // A code works once: only retry when WeChat surely did not take it.
        let mut call = Call::get(App::Mp, API, query);
        call.idempotent = false;
        let wire: SessionWire = decode(API, self.call_with_retries(&call, None).await?)?;
        Ok(Session { openid: wire.openid, unionid: wire.unionid.filter(|u| !u.is_empty()) })
    }
}
