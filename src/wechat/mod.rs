//! The WeChat client: a small typed API over the endpoints in
//! `docs/wechat.md`, for the service account (OA) and the mini-program (MP).
//!
//! [`WechatClient`] is cheap to clone and shared by the whole server. It owns
//! the access tokens (cached in `actok`, see [`token`]), the bounded retries
//! (see [`RetryPolicy`]) and a timeout on every call. Endpoints live one
//! family per file ([`login`], [`followers`], [`send`], [`templates`], [`qrcode`]) with their
//! public request/response types; the JSON WeChat speaks stays private.
//! [`crypto`] holds the callback signature and safe-mode AES code.
//!
//! Tests point `WXNOTIFY_WECHAT_API_BASE` at the simulator in [`crate::sim`].

pub mod crypto;
mod error;
pub mod followers;
pub mod login;
pub mod qrcode;
mod retry;
pub mod rules;
pub mod send;
pub mod templates;
pub mod token;
mod token_watch;
mod transport;

use std::sync::Arc;
use std::time::Duration;

use sea_orm::DatabaseConnection;

pub use error::{Reaction, WechatError, classify};
pub use followers::{FollowerPage, UserInfo};
pub use login::Session;
pub use qrcode::QrCode;
pub use retry::RetryPolicy;
pub use send::{
    FormTemplateMessage, MiniProgramLink, OaSubscribeMessage, SendReceipt, SubscribeMessage, SubscriptionTemplate, TemplateMessage,
    TemplateValue,
};
pub use templates::{BlockedMessage, PrivateTemplate, Quota};
pub use transport::{count_calls, count_calls_into};

use crate::settings::{Secret, Settings};

/// Which of the two WeChat apps a call speaks for; each has its own token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum App {
    /// The service account (服务号): followers, template messages, QR codes.
    Oa,
    /// The mini-program: login, subscribe messages, legacy form-id sends.
    Mp,
}

/// The knobs that are not settings: retry pacing and token refresh lead.
#[derive(Clone, Debug)]
pub struct ClientPolicy {
    pub retry: RetryPolicy,
    /// Refresh a cached token this long before WeChat says it expires, so
    /// no call carries a token that dies on the way.
    pub refresh_before: Duration,
}

impl Default for ClientPolicy {
    fn default() -> Self {
        ClientPolicy { retry: RetryPolicy::default(), refresh_before: Duration::from_secs(300) }
    }
}

/// The WeChat API, typed. Clones share one connection pool and token cache.
#[derive(Clone)]
pub struct WechatClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    /// `WXNOTIFY_WECHAT_API_BASE`, without a trailing slash.
    base: String,
    oa: Credentials,
    mp: Credentials,
    stable_token: bool,
    timeout: Duration,
    concurrency: usize,
    retry: RetryPolicy,
    tokens: token::TokenCache,
}

/// One app's appid and secret as configured; either may be missing until a
/// call needs it.
struct Credentials {
    appid: Option<String>,
    secret: Option<Secret>,
}

impl WechatClient {
    /// A client with the default [`ClientPolicy`].
    pub fn new(settings: &Settings, db: DatabaseConnection) -> Result<WechatClient, WechatError> {
        WechatClient::with_policy(settings, db, ClientPolicy::default())
    }

    /// A client with explicit retry pacing and refresh lead (tests use
    /// [`RetryPolicy::fast`]). Missing credentials are reported by the first
    /// call that needs them, so a server without WeChat settings still runs.
    pub fn with_policy(settings: &Settings, db: DatabaseConnection, policy: ClientPolicy) -> Result<WechatClient, WechatError> {
        let http = reqwest::Client::builder()
            .timeout(settings.wechat_timeout)
            .connect_timeout(settings.wechat_timeout)
            .build()
            .map_err(|source| WechatError::Transport { api: "client setup", source })?;
        let inner = Inner {
            http,
            base: settings.wechat_api_base.trim_end_matches('/').to_string(),
            oa: Credentials { appid: settings.oa_appid.clone(), secret: settings.oa_secret.clone() },
            mp: Credentials { appid: settings.mp_appid.clone(), secret: settings.mp_secret.clone() },
            stable_token: settings.wechat_stable_token,
            timeout: settings.wechat_timeout,
            concurrency: settings.wechat_concurrency.max(1),
            retry: policy.retry,
            tokens: token::TokenCache::new(
                db,
                settings.database_kind,
                &settings.database_url,
                policy.refresh_before,
                settings.wechat_timeout,
            ),
        };
        Ok(WechatClient { inner: Arc::new(inner) })
    }

    /// Fails with a message naming the missing setting unless `app` has both
    /// an appid and a secret; for start-up checks.
    pub fn require(&self, app: App) -> Result<(), WechatError> {
        self.credentials(app).map(|_| ())
    }

    /// The configured appid of `app`, if any.
    pub fn appid(&self, app: App) -> Option<&str> {
        self.creds(app).appid.as_deref()
    }

    fn creds(&self, app: App) -> &Credentials {
        match app {
            App::Oa => &self.inner.oa,
            App::Mp => &self.inner.mp,
        }
    }

    fn credentials(&self, app: App) -> Result<(&str, &Secret), WechatError> {
        let names = app.settings();
        let purpose = match app {
            App::Oa => "the service account's appid and AppSecret are needed for followers, template messages and QR codes",
            App::Mp => "the mini-program's appid and AppSecret are needed for login and mini-program messages",
        };
        let creds = self.creds(app);
        let appid = creds.appid.as_deref().ok_or(WechatError::NotConfigured { setting: names.appid, purpose })?;
        let secret = creds.secret.as_ref().ok_or(WechatError::NotConfigured { setting: names.secret, purpose })?;
        Ok((appid, secret))
    }
}
