//! Settings: one typed struct, loaded in one place.
//!
//! Sources, later wins: built-in defaults, an optional TOML file
//! (`wxnotify.toml`, or the file named by `--config` / `WXNOTIFY_CONFIG`), and
//! environment variables `WXNOTIFY_<NAME>`. Every setting is declared once in
//! [`SETTINGS`], which also feeds `wxnotify doctor`-style listings and the
//! README table. A bad value is a one-line [`SettingsError`] naming the
//! setting; secrets are [`Secret`]s, which never print.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::auth::config::{self as auth_config, ClaimPath, ClaimsFormat, PublicKey};

/// A value that must never reach a log line, an error message or a response.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for the one place that has to use it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(****)")
    }
}

/// Which database the URL names (the type lives with the database code).
pub use crate::db::kind::DatabaseKind;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Everything the server can be told. Field docs state each invariant.
#[derive(Clone, Debug)]
pub struct Settings {
    /// `sqlite://…` or `postgres://…`; SQLite files are created when missing.
    pub database_url: String,
    pub database_kind: DatabaseKind,
    pub listen: SocketAddr,
    /// HS256 key for bearer tokens. `None` only with SQLite, where a
    /// development secret is generated and kept in the database.
    pub jwt_secret: Option<Secret>,
    /// A PEM public key verifying RS/PS/ES/EdDSA tokens of its family.
    pub jwt_public_key: Option<PublicKey>,
    /// A JWKS URL whose keys verify RS/PS/ES/EdDSA tokens.
    pub jwt_jwks_url: Option<String>,
    /// The algorithms a token may be signed with; never `none`, and each
    /// asymmetric one has a key to verify it.
    pub jwt_algorithms: Vec<jsonwebtoken::Algorithm>,
    /// Where Hasura-style `x-hasura-*` claims live.
    pub jwt_claims_namespace: ClaimPath,
    pub jwt_claims_format: ClaimsFormat,
    /// When set, a token's `iss` must be this.
    pub jwt_issuer: Option<String>,
    /// When not empty, a token's `aud` must name one of these.
    pub jwt_audience: Vec<String>,
    /// Clock skew allowed on `exp`, `nbf` and `iat`.
    pub jwt_leeway: Duration,
    /// The claim holding a user's account id when `sub` is not it.
    pub jwt_user_id_claim: Option<ClaimPath>,
    /// Grants admin through `X-Hasura-Admin-Secret`; `None` refuses that header.
    pub admin_secret: Option<Secret>,
    pub oa_appid: Option<String>,
    pub oa_secret: Option<Secret>,
    /// The callback token configured on the service account's server page.
    pub oa_token: Option<Secret>,
    /// The 43-character EncodingAESKey for safe-mode callbacks.
    pub oa_aes_key: Option<Secret>,
    pub mp_appid: Option<String>,
    pub mp_secret: Option<Secret>,
    /// The Token of the mini-program's message push (`/wechat/mp-callback`).
    pub mp_token: Option<Secret>,
    /// The mini-program message push's EncodingAESKey, for safe mode.
    pub mp_aes_key: Option<Secret>,
    /// Base URL of the WeChat API, without a trailing slash.
    pub wechat_api_base: String,
    /// Use `/cgi-bin/stable_token` instead of `/cgi-bin/token`.
    pub wechat_stable_token: bool,
    /// Timeout of every single WeChat call.
    pub wechat_timeout: Duration,
    /// How many WeChat calls one batch runs at once.
    pub wechat_concurrency: usize,
    /// Time zone cron expressions and `{{now}}` are evaluated in.
    pub timezone: chrono_tz::Tz,
    pub log_format: LogFormat,
    /// Whether this process fires scheduled jobs (each occurrence fires
    /// once however many processes do).
    pub scheduler: bool,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// Largest `limit` a list query may ask for (and the default when absent).
    pub max_limit: u64,
    /// How the table surface plans aggregates over array relations.
    pub table_aggregates: crate::hasura::meta::AggregatePlan,
    /// Where the table surface puts a root list's JSON together.
    pub table_json: crate::hasura::meta::JsonRows,
    pub max_query_depth: usize,
    pub max_query_complexity: usize,
    /// Most aliased fields one document may select.
    pub max_query_aliases: usize,
    /// Most operations one batched request may carry.
    pub max_batch: usize,
    pub request_timeout: Duration,
    /// Logins one client address may make; `None` when switched off.
    pub login_rate_limit: Option<Rate>,
    /// The header a reverse proxy puts the client's address in; `None`
    /// means the peer address of the connection is the client's.
    pub client_ip_header: Option<axum::http::HeaderName>,
    /// How long a stopping server waits for in-flight requests and jobs.
    pub shutdown_grace: Duration,
    /// A PENDING delivery untouched this long is sent by the next sweep.
    pub pending_retry_after: Duration,
    /// How long after its first send a template message whose outcome is
    /// unknown may be sent again with the same `client_msg_id` (WeChat drops
    /// the repeat for 10 minutes); at most 10 minutes.
    pub resend_window: Duration,
    /// How long a sender's claim on a SENDING delivery lasts without a
    /// heartbeat; a dead process's rows are settled once it lapses.
    pub delivery_lease: Duration,
    /// Whether this process helps send the delivery runs (digests) other
    /// server processes on the same database announce.
    pub outbox_help: bool,
    /// Accounts a digest reads, renders and queues at a time.
    pub digest_page: usize,
    /// The channels `notifyAccount` tries, best first; each at most once.
    pub channel_order: Vec<crate::delivery::Channel>,
    /// What to do with a category template's overlong value.
    pub template_overflow: Overflow,
}

/// `count` events per `per`, e.g. `30/min`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    pub count: std::num::NonZeroU32,
    pub per: Duration,
}

/// One declared setting: its name (without prefix), default and meaning.
pub struct SettingInfo {
    pub name: &'static str,
    pub default: Option<&'static str>,
    pub secret: bool,
    pub help: &'static str,
}

const fn setting(name: &'static str, default: Option<&'static str>, help: &'static str) -> SettingInfo {
    SettingInfo { name, default, secret: false, help }
}

const fn secret(name: &'static str, help: &'static str) -> SettingInfo {
    SettingInfo { name, default: None, secret: true, help }
}

/// Every setting the server reads, in the order the README lists them.
pub const SETTINGS: &[SettingInfo] = &[
    setting("DATABASE_URL", Some("sqlite://wxnotify.db"), "sqlite://FILE (created and migrated on start) or postgres://USER@HOST/DB"),
    setting("LISTEN", Some("127.0.0.1:8080"), "address and port the HTTP server binds"),
    secret("JWT_SECRET", "HS256 key for bearer tokens (at least 32 characters); required with PostgreSQL"),
    setting("JWT_PUBLIC_KEY", None, "PEM public key (RSA, EC or Ed25519) that verifies tokens from an outside identity provider"),
    setting("JWT_JWKS_URL", None, "JWKS URL whose keys verify tokens from an outside identity provider"),
    setting("JWT_ALGORITHMS", None, "algorithms tokens may use, like HS256,RS256; default HS256 plus the key's (RS256/ES256)"),
    setting("JWT_CLAIMS_NAMESPACE", Some(auth_config::HASURA_NAMESPACE), "claim (or $.path) holding x-hasura-* claims"),
    setting("JWT_CLAIMS_FORMAT", Some("json"), "json or stringified_json: how the namespace's claims are written"),
    setting("JWT_ISSUER", None, "when set, a token's iss must be this"),
    setting("JWT_AUDIENCE", None, "when set, a token's aud must be one of these (comma-separated)"),
    setting("JWT_LEEWAY", Some("60s"), "clock skew allowed on exp, nbf and iat"),
    setting("JWT_USER_ID_CLAIM", None, "claim (or $.path) holding a user's account id when sub is not it"),
    secret("ADMIN_SECRET", "X-Hasura-Admin-Secret value that grants admin; unset: the header is refused"),
    setting("OA_APPID", None, "service account (服务号) appid"),
    secret("OA_SECRET", "service account AppSecret"),
    secret("OA_TOKEN", "callback Token from the service account's server configuration"),
    secret("OA_AES_KEY", "callback EncodingAESKey (43 characters) for safe mode"),
    setting("MP_APPID", None, "mini-program appid"),
    secret("MP_SECRET", "mini-program AppSecret"),
    secret("MP_TOKEN", "Token of the mini-program's message push (消息推送), served at /wechat/mp-callback"),
    secret("MP_AES_KEY", "EncodingAESKey (43 characters) of the mini-program's message push, for safe mode"),
    setting("WECHAT_API_BASE", Some("https://api.weixin.qq.com"), "WeChat API host; tests point it at the simulator"),
    setting(
        "WECHAT_STABLE_TOKEN",
        Some("true"),
        "fetch tokens from /cgi-bin/stable_token (cannot invalidate another system's token); false: /cgi-bin/token",
    ),
    setting("WECHAT_TIMEOUT", Some("10s"), "timeout of each WeChat call"),
    setting("WECHAT_CONCURRENCY", Some("16"), "WeChat calls one batch runs at once"),
    setting("TIMEZONE", Some("Asia/Shanghai"), "IANA time zone for cron schedules and {{now}}"),
    setting("LOG_FORMAT", Some("text"), "text or json"),
    setting("SCHEDULER", Some("true"), "fire scheduled jobs in this process (false for API-only processes)"),
    setting("MAX_BODY_BYTES", Some("1048576"), "largest accepted request body"),
    setting("MAX_LIMIT", Some("10000"), "largest `limit` of a list query"),
    setting(
        "TABLE_AGGREGATES",
        Some("auto"),
        "plan of `<relation>_aggregate` fields: auto (on PostgreSQL one grouped join for root lists without limit, on SQLite correlated), grouped, correlated",
    ),
    setting(
        "TABLE_JSON",
        Some("auto"),
        "where a root list's rows become JSON: auto (the database, which measured faster on both), database, server",
    ),
    setting("MAX_QUERY_DEPTH", Some("16"), "deepest GraphQL selection accepted"),
    setting("MAX_QUERY_COMPLEXITY", Some("5000"), "most GraphQL fields one request may select"),
    setting("MAX_QUERY_ALIASES", Some("64"), "most aliased fields one GraphQL document may select"),
    setting("MAX_BATCH", Some("20"), "most operations one batched request may carry"),
    setting("REQUEST_TIMEOUT", Some("30s"), "longest a client waits for an answer (then 504; the request's work still finishes)"),
    setting("LOGIN_RATE_LIMIT", Some("30/min"), "logins per client address, like 30/min, 5/s or 500/h; `off` switches it off"),
    setting(
        "CLIENT_IP_HEADER",
        None,
        "header your reverse proxy puts the client address in (X-Real-IP, X-Forwarded-For); unset: the connection's peer",
    ),
    setting("SHUTDOWN_GRACE", Some("30s"), "how long a stopping server lets in-flight requests, jobs and sends finish"),
    setting(
        "PENDING_RETRY_AFTER",
        Some("10m"),
        "a message left PENDING (by a stopped server or a quota stop) this long is sent by any running server",
    ),
    setting(
        "RESEND_WINDOW",
        Some("8m"),
        "a template message whose outcome is unknown (crash, timeout) is sent again with the same client_msg_id this long after its first send (WeChat drops repeats for 10 minutes; at most 10m)",
    ),
    setting(
        "DELIVERY_LEASE",
        Some("30s"),
        "how long a sender's claim on a message outlives its last heartbeat; another server settles a dead one's messages after it",
    ),
    setting(
        "OUTBOX_HELP",
        Some("true"),
        "help send the digests other server processes on the same database are sending, within this one's WECHAT_CONCURRENCY",
    ),
    setting(
        "DIGEST_PAGE",
        Some("5000"),
        "most accounts a digest reads, renders and queues at a time; the first pages are smaller and double up to it, so sending starts after one small page (what a run holds in memory grows with it, not with the recipients)",
    ),
    setting(
        "TEMPLATE_OVERFLOW",
        Some("cut"),
        "a value longer than its category-template keyword allows: `cut` shortens it with an ellipsis, `fail` does not send that message (FAILED, with the reason)",
    ),
    setting(
        "CHANNEL_ORDER",
        Some("OA_TEMPLATE,OA_SUBSCRIBE,MP_SUBSCRIBE,MP_FORM"),
        "the channels notifyAccount and digests try, best first, comma-separated: the first one that reaches the account (and has a credit) is used",
    ),
];

/// A setting that could not be used; `Display` is one line naming it.
#[derive(Debug, thiserror::Error)]
#[error("{setting}: {problem}")]
pub struct SettingsError {
    /// The name as the user writes it, e.g. `WXNOTIFY_LISTEN`.
    pub setting: String,
    pub problem: String,
}

impl SettingsError {
    fn new(name: &str, problem: impl Into<String>) -> Self {
        SettingsError { setting: format!("WXNOTIFY_{name}"), problem: problem.into() }
    }
}

/// Where a raw value came from, so errors can say which file to fix.
struct Raw {
    values: BTreeMap<String, String>,
}

impl Raw {
    fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str).filter(|v| !v.is_empty())
    }

    fn parse<T>(&self, name: &str, parse: impl Fn(&str) -> Result<T, String>) -> Result<T, SettingsError> {
        let info = SETTINGS.iter().find(|s| s.name == name).expect("every setting is declared in SETTINGS");
        let raw = self.get(name).or(info.default).ok_or_else(|| SettingsError::new(name, "is required"))?;
        parse(raw).map_err(|problem| {
            if info.secret { SettingsError::new(name, problem) } else { SettingsError::new(name, format!("{raw:?} {problem}")) }
        })
    }

    fn optional<T>(&self, name: &str, parse: impl Fn(&str) -> Result<T, String>) -> Result<Option<T>, SettingsError> {
        match self.get(name) {
            None => Ok(None),
            Some(_) => self.parse(name, parse).map(Some),
        }
    }
}

impl Settings {
    /// Loads settings from the process environment and the optional file.
    pub fn load(config_file: Option<&Path>) -> Result<Settings, SettingsError> {
        Settings::from_sources(config_file, std::env::vars())
    }

    /// Loads settings from an explicit environment, for tests and tools.
    pub fn from_sources(config_file: Option<&Path>, env: impl IntoIterator<Item = (String, String)>) -> Result<Settings, SettingsError> {
        let env: BTreeMap<String, String> = env.into_iter().collect();
        let file = config_file
            .map(Path::to_path_buf)
            .or_else(|| env.get("WXNOTIFY_CONFIG").map(PathBuf::from))
            .or_else(|| Some(PathBuf::from("wxnotify.toml")).filter(|p| p.exists()));
        let mut values = match file {
            Some(path) => read_file(&path)?,
            None => BTreeMap::new(),
        };
        for (key, value) in env {
            if let Some(name) = key.strip_prefix("WXNOTIFY_")
                && SETTINGS.iter().any(|s| s.name == name)
            {
                values.insert(name.to_string(), value);
            }
        }
        Settings::from_raw(&Raw { values })
    }

    fn from_raw(raw: &Raw) -> Result<Settings, SettingsError> {
        let database_url = raw.parse("DATABASE_URL", |v| Ok(v.to_string()))?;
        let database_kind = raw.parse("DATABASE_URL", parse_database_kind)?;
        let jwt_secret = raw.optional("JWT_SECRET", parse_jwt_secret)?;
        if jwt_secret.is_none() && database_kind == DatabaseKind::Postgres {
            return Err(SettingsError::new(
                "JWT_SECRET",
                "is required with PostgreSQL (it signs the tokens loginWithWechatMiniApp and `wxnotify token` mint): \
                 set it to a random string of at least 32 characters (e.g. `openssl rand -hex 32`)",
            ));
        }
        let jwt_public_key = raw.optional("JWT_PUBLIC_KEY", auth_config::parse_public_key)?;
        let jwt_jwks_url = raw.optional("JWT_JWKS_URL", parse_url)?;
        let jwt_algorithms = match raw.optional("JWT_ALGORITHMS", auth_config::parse_algorithms)? {
            Some(listed) => listed,
            None => auth_config::default_algorithms(jwt_public_key.as_ref(), jwt_jwks_url.is_some()),
        };
        auth_config::check_algorithms(&jwt_algorithms, jwt_public_key.as_ref(), jwt_jwks_url.is_some())
            .map_err(|problem| SettingsError::new("JWT_ALGORITHMS", problem))?;
        Ok(Settings {
            database_url,
            database_kind,
            listen: raw.parse("LISTEN", |v| v.parse().map_err(|_| "is not an address like 127.0.0.1:8080".into()))?,
            jwt_secret,
            jwt_public_key,
            jwt_jwks_url,
            jwt_algorithms,
            jwt_claims_namespace: raw.parse("JWT_CLAIMS_NAMESPACE", auth_config::parse_claim_path)?,
            jwt_claims_format: raw.parse("JWT_CLAIMS_FORMAT", auth_config::parse_claims_format)?,
            jwt_issuer: raw.optional("JWT_ISSUER", |v| Ok(v.trim().to_string()))?,
            jwt_audience: raw.optional("JWT_AUDIENCE", parse_list)?.unwrap_or_default(),
            jwt_leeway: raw.parse("JWT_LEEWAY", parse_duration)?,
            jwt_user_id_claim: raw.optional("JWT_USER_ID_CLAIM", auth_config::parse_claim_path)?,
            admin_secret: raw.optional("ADMIN_SECRET", parse_admin_secret)?,
            oa_appid: raw.optional("OA_APPID", parse_appid)?,
            oa_secret: raw.optional("OA_SECRET", parse_secret)?,
            oa_token: raw.optional("OA_TOKEN", parse_secret)?,
            oa_aes_key: raw.optional("OA_AES_KEY", parse_aes_key)?,
            mp_appid: raw.optional("MP_APPID", parse_appid)?,
            mp_secret: raw.optional("MP_SECRET", parse_secret)?,
            mp_token: raw.optional("MP_TOKEN", parse_secret)?,
            mp_aes_key: raw.optional("MP_AES_KEY", parse_aes_key)?,
            wechat_api_base: raw.parse("WECHAT_API_BASE", parse_base_url)?,
            wechat_stable_token: raw.parse("WECHAT_STABLE_TOKEN", parse_bool)?,
            wechat_timeout: raw.parse("WECHAT_TIMEOUT", parse_duration)?,
            wechat_concurrency: raw.parse("WECHAT_CONCURRENCY", parse_positive)?,
            timezone: raw.parse("TIMEZONE", |v| v.parse().map_err(|_| "is not an IANA time zone like Asia/Shanghai".into()))?,
            log_format: raw.parse("LOG_FORMAT", |v| match v {
                "text" => Ok(LogFormat::Text),
                "json" => Ok(LogFormat::Json),
                _ => Err("is not `text` or `json`".into()),
            })?,
            scheduler: raw.parse("SCHEDULER", parse_bool)?,
            max_body_bytes: raw.parse("MAX_BODY_BYTES", parse_positive)?,
            max_limit: raw.parse("MAX_LIMIT", parse_positive)?,
            table_aggregates: raw.parse("TABLE_AGGREGATES", |v| v.parse())?,
            table_json: raw.parse("TABLE_JSON", |v| v.parse())?,
            max_query_depth: raw.parse("MAX_QUERY_DEPTH", parse_positive)?,
            max_query_complexity: raw.parse("MAX_QUERY_COMPLEXITY", parse_positive)?,
            max_query_aliases: raw.parse("MAX_QUERY_ALIASES", parse_positive)?,
            max_batch: raw.parse("MAX_BATCH", parse_positive)?,
            request_timeout: raw.parse("REQUEST_TIMEOUT", parse_duration)?,
            login_rate_limit: raw.parse("LOGIN_RATE_LIMIT", parse_rate)?,
            client_ip_header: raw.optional("CLIENT_IP_HEADER", |v| {
                axum::http::HeaderName::try_from(v).map_err(|_| "is not an HTTP header name like X-Real-IP".into())
            })?,
            shutdown_grace: raw.parse("SHUTDOWN_GRACE", parse_duration)?,
            pending_retry_after: raw.parse("PENDING_RETRY_AFTER", parse_duration)?,
            resend_window: raw.parse("RESEND_WINDOW", parse_resend_window)?,
            delivery_lease: raw.parse("DELIVERY_LEASE", parse_lease)?,
            outbox_help: raw.parse("OUTBOX_HELP", parse_bool)?,
            digest_page: raw.parse("DIGEST_PAGE", parse_positive)?,
            channel_order: raw.parse("CHANNEL_ORDER", parse_channel_order)?,
            template_overflow: raw.parse("TEMPLATE_OVERFLOW", parse_overflow)?,
        })
    }

    /// Settings for tests and tools: defaults plus the given overrides.
    pub fn with_overrides<'a>(overrides: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Settings, SettingsError> {
        let values = overrides.into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Settings::from_raw(&Raw { values })
    }
}

fn read_file(path: &Path) -> Result<BTreeMap<String, String>, SettingsError> {
    let shown = path.display();
    let file_error = |problem: String| SettingsError { setting: format!("{shown}"), problem };
    let text = std::fs::read_to_string(path).map_err(|e| file_error(format!("cannot read the settings file: {e}")))?;
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| file_error(format!("is not valid TOML: {}", e.message())))?;
    let mut values = BTreeMap::new();
    for (key, value) in table {
        let name = key.to_ascii_uppercase();
        if !SETTINGS.iter().any(|s| s.name == name) {
            return Err(file_error(format!("unknown setting `{key}` (settings are named like `database_url`)")));
        }
        let value = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            other => return Err(file_error(format!("`{key}` must be a string, number or boolean, not {}", other.type_str()))),
        };
        values.insert(name, value);
    }
    Ok(values)
}

fn parse_database_kind(url: &str) -> Result<DatabaseKind, String> {
    if url.starts_with("sqlite:") {
        Ok(DatabaseKind::Sqlite)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(DatabaseKind::Postgres)
    } else {
        Err("is not a sqlite:// or postgres:// URL".into())
    }
}

fn parse_jwt_secret(v: &str) -> Result<Secret, String> {
    if v.len() < 32 {
        return Err("is too short: use at least 32 characters (e.g. `openssl rand -hex 32`)".into());
    }
    Ok(Secret::new(v))
}

fn parse_admin_secret(v: &str) -> Result<Secret, String> {
    if v.len() < 16 {
        return Err("is too short: use at least 16 characters (e.g. `openssl rand -hex 16`)".into());
    }
    Ok(Secret::new(v))
}

/// `a,b,c`, blanks dropped.
fn parse_list(v: &str) -> Result<Vec<String>, String> {
    let items: Vec<String> = v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect();
    if items.is_empty() { Err("lists nothing".into()) } else { Ok(items) }
}

fn parse_secret(v: &str) -> Result<Secret, String> {
    Ok(Secret::new(v.trim()))
}

fn parse_appid(v: &str) -> Result<String, String> {
    let ok = v.starts_with("wx") && v.len() >= 10 && v.chars().all(|c| c.is_ascii_alphanumeric());
    if ok { Ok(v.to_string()) } else { Err("is not a WeChat appid like wx1234567890abcdef".into()) }
}

fn parse_aes_key(v: &str) -> Result<Secret, String> {
    if v.len() == 43 && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '/') {
        Ok(Secret::new(v))
    } else {
        Err("is not a 43-character EncodingAESKey".into())
    }
}

fn parse_base_url(v: &str) -> Result<String, String> {
    if v.starts_with("http://") || v.starts_with("https://") {
        Ok(v.trim_end_matches('/').to_string())
    } else {
        Err("is not an http:// or https:// URL".into())
    }
}

/// An http:// or https:// URL, kept exactly as written.
fn parse_url(v: &str) -> Result<String, String> {
    let v = v.trim();
    if (v.starts_with("http://") || v.starts_with("https://")) && !v.contains(char::is_whitespace) {
        Ok(v.to_string())
    } else {
        Err("is not an http:// or https:// URL".into())
    }
}

fn parse_bool(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err("is not true or false".into()),
    }
}

fn parse_positive<T: std::str::FromStr + PartialOrd + Default>(v: &str) -> Result<T, String> {
    match v.parse::<T>() {
        Ok(n) if n > T::default() => Ok(n),
        _ => Err("is not a positive whole number".into()),
    }
}

/// `30/min`, `5/s`, `500/h`, or `off`.
fn parse_rate(v: &str) -> Result<Option<Rate>, String> {
    if v.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let err = || "is not a rate like 30/min, 5/s or 500/h (or off)".to_string();
    let (count, unit) = v.split_once('/').ok_or_else(err)?;
    let count = count.trim().parse().map_err(|_| err())?;
    let per = match unit.trim() {
        "s" | "sec" | "second" => Duration::from_secs(1),
        "m" | "min" | "minute" => Duration::from_secs(60),
        "h" | "hour" => Duration::from_secs(3600),
        _ => return Err(err()),
    };
    Ok(Some(Rate { count, per }))
}

/// `500ms`, `10s`, `5m`, `1h`, `7d`, or a bare number of seconds.
/// WeChat keeps a `client_msg_id` for 10 minutes; a longer window could
/// send a message twice.
fn parse_resend_window(v: &str) -> Result<Duration, String> {
    let window = parse_duration(v)?;
    if window > Duration::from_secs(600) {
        return Err("is longer than the 10 minutes WeChat remembers a client_msg_id: use 10m or less (8m leaves a margin)".into());
    }
    Ok(window)
}

/// `OA_TEMPLATE,OA_SUBSCRIBE,MP_SUBSCRIBE,MP_FORM`: known channels, each at most once.
fn parse_channel_order(v: &str) -> Result<Vec<crate::delivery::Channel>, String> {
    use crate::delivery::Channel;
    let mut order: Vec<Channel> = Vec::new();
    for name in v.split(',').map(str::trim) {
        let channel = Channel::parse(name).ok_or_else(|| {
            format!("names `{name}`, not a channel: list OA_TEMPLATE, OA_SUBSCRIBE, MP_SUBSCRIBE and MP_FORM, comma-separated, best first")
        })?;
        if order.contains(&channel) {
            return Err(format!("names `{name}` twice: list each channel at most once"));
        }
        order.push(channel);
    }
    Ok(order)
}

/// What to do with a value longer than its category-template keyword
/// allows (`WXNOTIFY_TEMPLATE_OVERFLOW`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Overflow {
    /// Cut on a character boundary, ending in "…".
    #[default]
    Cut,
    /// Refuse: that recipient's delivery is FAILED, WeChat is not called.
    Fail,
}

fn parse_overflow(v: &str) -> Result<Overflow, String> {
    match v {
        "cut" => Ok(Overflow::Cut),
        "fail" => Ok(Overflow::Fail),
        _ => Err(format!("is `{v}`: use `cut` (shorten with an ellipsis) or `fail` (do not send that message)")),
    }
}

/// A lease shorter than 100 ms would lapse between heartbeats.
fn parse_lease(v: &str) -> Result<Duration, String> {
    let lease = parse_duration(v)?;
    if lease < Duration::from_millis(100) {
        return Err("is shorter than 100ms: a live sender could not renew it in time".into());
    }
    Ok(lease)
}

pub fn parse_duration(v: &str) -> Result<Duration, String> {
    let err = || "is not a duration like 500ms, 10s, 5m, 1h or 7d".to_string();
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (number, unit) = v.split_at(split);
    let n: u64 = number.parse().map_err(|_| err())?;
    let seconds = match unit {
        "ms" => return Ok(Duration::from_millis(n)),
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86400,
        _ => return Err(err()),
    };
    Ok(Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(env: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        let env = env.iter().map(|(k, v)| (format!("WXNOTIFY_{k}"), v.to_string()));
        Settings::from_sources(None, env)
    }

    #[test]
    fn defaults_are_sqlite_on_localhost() {
        let s = load(&[]).unwrap();
        assert_eq!(s.database_kind, DatabaseKind::Sqlite);
        assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(s.timezone, chrono_tz::Asia::Shanghai);
    }

    #[test]
    fn tokens_come_from_stable_token_unless_switched_off() {
        assert!(load(&[]).unwrap().wechat_stable_token);
        assert!(!load(&[("WECHAT_STABLE_TOKEN", "false")]).unwrap().wechat_stable_token);
    }

    #[test]
    fn the_channel_order_lists_known_channels_once_each() {
        use crate::delivery::Channel;
        assert_eq!(load(&[]).unwrap().channel_order, Channel::ALL);
        assert_eq!(Channel::ALL.map(Channel::as_str), ["OA_TEMPLATE", "OA_SUBSCRIBE", "MP_SUBSCRIBE", "MP_FORM"]);
        assert_eq!(
            load(&[("CHANNEL_ORDER", "MP_SUBSCRIBE, OA_TEMPLATE")]).unwrap().channel_order,
            [Channel::MpSubscribe, Channel::OaTemplate]
        );
        let err = load(&[("CHANNEL_ORDER", "OA_TEMPLATE,SMS")]).unwrap_err().to_string();
        assert!(err.starts_with("WXNOTIFY_CHANNEL_ORDER:") && err.contains("`SMS`, not a channel"), "{err}");
        let err = load(&[("CHANNEL_ORDER", "MP_FORM,MP_FORM")]).unwrap_err().to_string();
        assert!(err.contains("twice"), "{err}");
    }

    #[test]
    fn the_resend_window_stays_inside_wechats_ten_minutes() {
        assert_eq!(load(&[]).unwrap().resend_window, Duration::from_secs(480));
        assert_eq!(load(&[("RESEND_WINDOW", "10m")]).unwrap().resend_window, Duration::from_secs(600));
        let err = load(&[("RESEND_WINDOW", "11m")]).unwrap_err().to_string();
        assert!(err.starts_with("WXNOTIFY_RESEND_WINDOW: \"11m\" is longer than the 10 minutes"), "{err}");
        let err = load(&[("DELIVERY_LEASE", "10ms")]).unwrap_err().to_string();
        assert!(err.starts_with("WXNOTIFY_DELIVERY_LEASE:"), "{err}");
    }

    #[test]
    fn a_bad_value_names_the_setting_in_one_line() {
        let err = load(&[("LISTEN", "everywhere")]).unwrap_err().to_string();
        assert_eq!(err, r#"WXNOTIFY_LISTEN: "everywhere" is not an address like 127.0.0.1:8080"#);
        let err = load(&[("TIMEZONE", "Mars/Olympus")]).unwrap_err().to_string();
        assert!(err.starts_with("WXNOTIFY_TIMEZONE:"), "{err}");
    }

    #[test]
    fn postgres_without_a_jwt_secret_is_refused() {
        let err = load(&[("DATABASE_URL", "postgres://x@localhost/db")]).unwrap_err();
        assert_eq!(err.setting, "WXNOTIFY_JWT_SECRET");
    }

    #[test]
    fn secrets_never_print() {
        let long = "s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t";
        let s = load(&[("JWT_SECRET", long), ("OA_SECRET", "appsecret")]).unwrap();
        let shown = format!("{s:?}");
        assert!(!shown.contains("s3cr3t") && !shown.contains("appsecret"), "{shown}");
        let err = load(&[("JWT_SECRET", "short-secret")]).unwrap_err().to_string();
        assert!(!err.contains("short-secret"), "{err}");
    }

    #[test]
    fn env_wins_over_the_file_and_unknown_file_keys_are_errors() {
        let dir = std::env::temp_dir().join(format!("wxnotify-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("wxnotify.toml");
        std::fs::write(&file, "listen = \"127.0.0.1:9000\"\ntimezone = \"UTC\"\n").unwrap();
        let env = vec![("WXNOTIFY_LISTEN".to_string(), "127.0.0.1:9001".to_string())];
        let s = Settings::from_sources(Some(&file), env).unwrap();
        assert_eq!(s.listen.port(), 9001);
        assert_eq!(s.timezone, chrono_tz::UTC);
        std::fs::write(&file, "listn = \"x\"\n").unwrap();
        let err = Settings::from_sources(Some(&file), Vec::new()).unwrap_err().to_string();
        assert!(err.contains("unknown setting `listn`"), "{err}");
    }

    #[test]
    fn the_readme_lists_every_setting() {
        let readme = include_str!("../README.md");
        for setting in SETTINGS {
            assert!(
                readme.contains(&format!("| `{}`", setting.name)) || readme.contains(&format!("/ `{}`", setting.name)),
                "README lacks {}",
                setting.name
            );
        }
    }

    #[test]
    fn auth_settings_are_checked_together() {
        let s = load(&[]).unwrap();
        assert_eq!(s.jwt_algorithms, [jsonwebtoken::Algorithm::HS256]);
        assert_eq!(s.jwt_leeway, Duration::from_secs(60));
        let err = load(&[("JWT_ALGORITHMS", "RS256")]).unwrap_err();
        assert_eq!(err.setting, "WXNOTIFY_JWT_ALGORITHMS");
        let err = load(&[("JWT_ALGORITHMS", "none")]).unwrap_err().to_string();
        assert!(err.contains("never accepted"), "{err}");
        let s = load(&[("JWT_JWKS_URL", "https://idp.example/jwks.json"), ("JWT_AUDIENCE", "a, b")]).unwrap();
        assert_eq!(s.jwt_algorithms.len(), 3);
        assert_eq!(s.jwt_audience, ["a", "b"]);
        assert_eq!(load(&[("JWT_PUBLIC_KEY", "not a key")]).unwrap_err().setting, "WXNOTIFY_JWT_PUBLIC_KEY");
        assert_eq!(load(&[("JWT_CLAIMS_FORMAT", "xml")]).unwrap_err().setting, "WXNOTIFY_JWT_CLAIMS_FORMAT");
        let err = load(&[("ADMIN_SECRET", "short")]).unwrap_err().to_string();
        assert!(err.starts_with("WXNOTIFY_ADMIN_SECRET") && !err.contains("short\""), "{err}");
    }

    #[test]
    fn rates_read_like_people_write_them() {
        let rate = parse_rate("30/min").unwrap().unwrap();
        assert_eq!((rate.count.get(), rate.per), (30, Duration::from_secs(60)));
        assert_eq!(parse_rate("off").unwrap(), None);
        for bad in ["30", "0/min", "x/min", "30/day", "-1/s"] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations_read_like_people_write_them() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert!(parse_duration("1 hour").is_err());
    }
}
