//! What can go wrong talking to WeChat, and what the caller should do about it.
//!
//! Every failure is a [`WechatError`]; its [`reaction`](WechatError::reaction)
//! sorts it into the classes of the errcode table in `docs/wechat.md`, so batch
//! code decides with one `match` (retry later, stop the batch, unlink the
//! user, drop a credit, ...). `Display` says what failed and what to do.

use std::fmt;
use std::time::Duration;

use super::App;

/// What a caller should do after a failed WeChat call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reaction {
    /// WeChat was busy or unreachable (-1, timeouts, transport errors), and the
    /// client's bounded retries are spent: leave the work pending, try later.
    Retry,
    /// The per-minute limit (45011) outlasted the client's bounded wait:
    /// leave the rest pending, continue in a minute.
    RateLimited,
    /// The access token was refused (40001, 40014, 42001) even after the one
    /// refresh-and-retry the client does: something else is fetching tokens
    /// for this appid.
    RefreshToken,
    /// The user no longer follows the service account (43004): clear
    /// `oaopenid`, mark the follower unsubscribed, no retry.
    Unfollowed,
    /// The openid is unknown to this app (40003): the mapping is wrong, unlink.
    InvalidOpenid,
    /// A setting is missing or wrong (appid, secret, IP whitelist, template
    /// id): stop the batch and tell the operator.
    ConfigError,
    /// The daily quota is spent (45009): stop the batch, leave the rest
    /// pending until tomorrow.
    Quota,
    /// The request itself was refused (47003, 45035, ...): no retry, report.
    Payload,
    /// A mini-program send credit is gone (43101 no subscription, 41028/41029
    /// form_id invalid or used): drop that credit, try the next one.
    CreditGone,
    /// A `jscode2session` code is invalid or already used (40029, 40163):
    /// the mini-program must call `wx.login` again.
    InvalidCode,
    /// The template message went to WeChat's content review (40252): it was
    /// not sent now; WeChat delivers it after review (how long is not
    /// documented; about 30 minutes is assumed, unconfirmed) or
    /// intercepts it (`/wxa/sec/queryblocktmplmsg` lists those). Do not
    /// send it again.
    InReview,
    /// An errcode this client does not know: no retry, report it.
    Unknown,
}

/// A failed WeChat call.
#[derive(Debug, thiserror::Error)]
pub enum WechatError {
    /// A credential the call needs is not configured.
    #[error("{setting} is not set: {purpose}")]
    NotConfigured { setting: &'static str, purpose: &'static str },
    /// The client refused to send something WeChat would reject.
    #[error("{api}: {problem}")]
    Invalid { api: &'static str, problem: String },
    /// WeChat answered with a non-zero errcode.
    #[error("WeChat {api} for the {app} answered errcode {errcode} ({errmsg}): {}", advice(*.app, .api, *.errcode))]
    Api { app: App, api: &'static str, errcode: i64, errmsg: String },
    /// No answer within `WXNOTIFY_WECHAT_TIMEOUT`.
    #[error("WeChat {api} did not answer within {timeout:?} (WXNOTIFY_WECHAT_TIMEOUT); try again later")]
    Timeout { api: &'static str, timeout: Duration },
    /// The connection failed or the answer could not be read.
    #[error("cannot reach WeChat {api} (is WXNOTIFY_WECHAT_API_BASE right and the network up?): {source}")]
    Transport {
        api: &'static str,
        #[source]
        source: reqwest::Error,
    },
    /// WeChat answered something that is not the documented shape.
    #[error("WeChat {api} answered something unexpected ({detail}); try again later, report it if it persists")]
    Malformed { api: &'static str, detail: String },
    /// The token cache in the `actok` table could not be read or written.
    #[error("the access-token cache (table actok) failed: {0}")]
    Database(#[from] sea_orm::DbErr),
}

impl WechatError {
    /// The errcode WeChat gave, when it gave one.
    pub fn errcode(&self) -> Option<i64> {
        match self {
            WechatError::Api { errcode, .. } => Some(*errcode),
            _ => None,
        }
    }

    /// The errmsg WeChat gave, when it gave one.
    pub fn errmsg(&self) -> Option<&str> {
        match self {
            WechatError::Api { errmsg, .. } => Some(errmsg),
            _ => None,
        }
    }

    /// The GraphQL `extensions.code` of this failure, for every capability
    /// that answers with one.
    pub fn code(&self) -> &'static str {
        match self.reaction() {
            Reaction::InvalidCode => "invalid-code",
            Reaction::ConfigError => "wechat-config",
            Reaction::Quota | Reaction::RateLimited => "wechat-quota",
            _ => "wechat-error",
        }
    }

    /// What the caller should do, per the errcode table.
    pub fn reaction(&self) -> Reaction {
        match self {
            WechatError::NotConfigured { .. } => Reaction::ConfigError,
            WechatError::Invalid { .. } => Reaction::Payload,
            WechatError::Api { api, errcode, .. } => classify(api, *errcode),
            WechatError::Timeout { .. } | WechatError::Transport { .. } | WechatError::Malformed { .. } => Reaction::Retry,
            WechatError::Database(_) => Reaction::Retry,
        }
    }

    /// True when the token used for the call was refused.
    pub(crate) fn is_token_refused(&self) -> bool {
        matches!(self, WechatError::Api { api, errcode, .. } if !is_token_api(api) && is_token_errcode(*errcode))
    }
}

fn is_token_api(api: &str) -> bool {
    api == "/cgi-bin/token" || api == "/cgi-bin/stable_token"
}

fn is_token_errcode(errcode: i64) -> bool {
    matches!(errcode, 40001 | 40014 | 42001)
}

/// The errcode → reaction table of `docs/wechat.md`.
pub fn classify(api: &str, errcode: i64) -> Reaction {
    match errcode {
        // On the token endpoints themselves these mean a wrong secret.
        40001 | 40125 if is_token_api(api) => Reaction::ConfigError,
        -1 => Reaction::Retry,
        45011 => Reaction::RateLimited,
        40001 | 40014 | 42001 => Reaction::RefreshToken,
        43004 => Reaction::Unfollowed,
        40003 => Reaction::InvalidOpenid,
        40013 | 40125 | 40164 | 40037 | 41001 | 48001 | 40243 | 76003 | 76021 | 76022 => Reaction::ConfigError,
        45009 => Reaction::Quota,
        47003 | 47001 | 45035 | 44002 | 40165 | 41030 | 45067 => Reaction::Payload,
        43101 | 41028 | 41029 => Reaction::CreditGone,
        40029 | 40163 => Reaction::InvalidCode,
        40252 => Reaction::InReview,
        _ => Reaction::Unknown,
    }
}

/// What to do, in the operator's words.
fn advice(app: App, api: &str, errcode: i64) -> String {
    let s = app.settings();
    match errcode {
        40001 | 40125 if is_token_api(api) => {
            format!("the AppSecret is wrong: set {} to the {}'s AppSecret", s.secret, app)
        }
        40013 => format!("the appid is wrong: check {}", s.appid),
        40164 => format!("the server's IP is not whitelisted on the {app}: add the IP WeChat names in the errmsg under {}", s.whitelist),
        -1 => "WeChat stayed busy through every retry; the work stays pending, try again later".into(),
        45011 => "the per-minute limit lasted through every wait; the rest stays pending, continue in a minute".into(),
        40001 | 40014 | 42001 => "the access token was refused again right after a fresh one was fetched; \
             another program probably fetches tokens for this appid with /cgi-bin/token (each fetch invalidates \
             the previous one): let wxnotify own the token, or have every system use /cgi-bin/stable_token (wxnotify's default, WXNOTIFY_WECHAT_STABLE_TOKEN=true)"
            .into(),
        43004 => "the user no longer follows the service account: clear the link, do not retry".into(),
        40003 => "the openid is unknown to this app: the link is wrong, unlink it".into(),
        40037 => "the template_id does not exist on this account: fix the message template".into(),
        45009 => "daily quota reached: the rest stays pending until tomorrow".into(),
        47003 => "a field is invalid (the errmsg names it): fix the payload, do not retry".into(),
        45035 => "too many items in one call (batchget takes at most 100)".into(),
        43101 => "the user has no subscription credit for this template (refused or used up): drop the credit".into(),
        41028 => "the form_id is invalid or expired: drop it and use the next one".into(),
        41029 => "the form_id was already used: drop it and use the next one".into(),
        41030 => "the page does not exist in the published mini-program: fix the template's page".into(),
        45065 => "WeChat already has a message with this client_msg_id: it was sent once, not again".into(),
        45066 => "the same client_msg_id was repeated too fast: the repeat is tried again in a minute".into(),
        45067 => "the client_msg_id is longer than WeChat's 64 bytes: use a shorter one".into(),
        40029 => "the login code is invalid or expired: call wx.login again".into(),
        40163 => "the login code was already used (a code works once): call wx.login again".into(),
        48001 => format!("the {app} lacks the permission for this API (verified accounts only)"),
        40252 => "the message went to WeChat's content review: WeChat delivers it after review or intercepts it; do not send it again".into(),
        76003 | 76021 => "the cgi_path is not an API WeChat knows: give the path without the host, starting with /".into(),
        76022 => "the cgi_path belongs to the other app, or to an API quota/get does not cover (/sns/...): ask with that app's token".into(),
        _ => "not a known errcode: see WeChat's global return codes; no retry".into(),
    }
}

/// The setting names that configure one app, for messages.
pub(crate) struct AppSettings {
    pub appid: &'static str,
    pub secret: &'static str,
    pub whitelist: &'static str,
}

impl App {
    pub(crate) fn settings(self) -> AppSettings {
        match self {
            App::Oa => AppSettings {
                appid: "WXNOTIFY_OA_APPID",
                secret: "WXNOTIFY_OA_SECRET",
                whitelist: "mp.weixin.qq.com → 设置与开发 → 基本配置 → IP白名单",
            },
            App::Mp => AppSettings {
                appid: "WXNOTIFY_MP_APPID",
                secret: "WXNOTIFY_MP_SECRET",
                whitelist: "mp.weixin.qq.com → 开发管理 → 开发设置 → IP白名单",
            },
        }
    }
}

impl fmt::Display for App {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            App::Oa => "service account",
            App::Mp => "mini-program",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api_error(api: &'static str, errcode: i64) -> WechatError {
        WechatError::Api { app: App::Oa, api, errcode, errmsg: "msg".into() }
    }

    #[test]
    fn token_errcodes_mean_refresh_on_calls_but_a_wrong_secret_on_the_token_endpoint() {
        assert_eq!(classify("/cgi-bin/message/template/send", 40001), Reaction::RefreshToken);
        assert_eq!(classify("/cgi-bin/user/get", 42001), Reaction::RefreshToken);
        assert_eq!(classify("/cgi-bin/token", 40001), Reaction::ConfigError);
        assert_eq!(classify("/cgi-bin/stable_token", 40125), Reaction::ConfigError);
        assert!(api_error("/cgi-bin/user/info", 40014).is_token_refused());
        assert!(!api_error("/cgi-bin/token", 40001).is_token_refused());
    }

    #[test]
    fn every_row_of_the_errcode_table_has_its_reaction() {
        let table = [
            (-1, Reaction::Retry),
            (40003, Reaction::InvalidOpenid),
            (43004, Reaction::Unfollowed),
            (40037, Reaction::ConfigError),
            (47003, Reaction::Payload),
            (45009, Reaction::Quota),
            (45011, Reaction::RateLimited),
            (40164, Reaction::ConfigError),
            (43101, Reaction::CreditGone),
            (41028, Reaction::CreditGone),
            (41029, Reaction::CreditGone),
            (40029, Reaction::InvalidCode),
            (40163, Reaction::InvalidCode),
            (40252, Reaction::InReview),
            (76021, Reaction::ConfigError),
            (99999, Reaction::Unknown),
        ];
        for (errcode, reaction) in table {
            assert_eq!(classify("/cgi-bin/message/template/send", errcode), reaction, "{errcode}");
        }
    }

    #[test]
    fn messages_say_what_to_do() {
        let whitelist = api_error("/cgi-bin/token", 40164).to_string();
        assert!(whitelist.contains("IP白名单") && whitelist.contains("not whitelisted"), "{whitelist}");
        let quota = api_error("/cgi-bin/message/template/send", 45009).to_string();
        assert!(quota.contains("daily quota reached: the rest stays pending until tomorrow"), "{quota}");
        let secret = api_error("/cgi-bin/token", 40125).to_string();
        assert!(secret.contains("WXNOTIFY_OA_SECRET"), "{secret}");
        let missing = WechatError::NotConfigured { setting: "WXNOTIFY_MP_SECRET", purpose: "x" };
        assert_eq!(missing.reaction(), Reaction::ConfigError);
        assert!(missing.to_string().starts_with("WXNOTIFY_MP_SECRET is not set"));
    }
}
