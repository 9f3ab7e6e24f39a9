//! The WeChat simulator: an axum app that answers the endpoints wxnotify
//! uses the way WeChat does (paging, batch limits, errcodes, token expiry
//! and overlap, quotas, sends, QR tickets) and pushes signed callback events.
//!
//! Tests start it in-process with [`Simulator::start`] and steer it through
//! the [`SimHandle`] (seed users, inject faults, advance the clock, count
//! calls); `wxnotify sim` serves it on its own ([`cli`]); `wxnotify serve
//! --demo` runs the server against it ([`demo`]). Files: [`state`] (the
//! world), `api` (the endpoints), `server` (HTTP and the `/_sim` control
//! API), [`events`] (callback pushes).

mod api;
pub mod cli;
mod clock;
pub mod demo;
pub mod events;
mod server;
pub mod state;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

pub use events::{CallbackTarget, Delivery, PushApp, PushFormat, PushOutcome, SimEvent};
pub use state::{CallRecord, SentMessage};

use state::SimState;

/// Paths of the token endpoints, for counting fetches.
pub const TOKEN_PATHS: [&str; 2] = ["/cgi-bin/token", "/cgi-bin/stable_token"];

/// A follower of the simulated service account.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SimFollower {
    pub openid: String,
    /// `None` when the apps are not bound under one Open Platform account.
    #[serde(default)]
    pub unionid: Option<String>,
    /// False for someone who followed once and left: `user/get` skips them,
    /// `user/info` shows `subscribe: 0`, sends answer 43004.
    #[serde(default = "yes")]
    pub subscribed: bool,
    /// Unix seconds.
    #[serde(default)]
    pub subscribe_time: i64,
    #[serde(default)]
    pub qr_scene_str: Option<String>,
}

fn yes() -> bool {
    true
}

impl SimFollower {
    pub fn new(openid: impl Into<String>) -> SimFollower {
        SimFollower { openid: openid.into(), unionid: None, subscribed: true, subscribe_time: 1_700_000_000, qr_scene_str: None }
    }

    pub fn with_unionid(mut self, unionid: impl Into<String>) -> SimFollower {
        self.unionid = Some(unionid.into());
        self
    }

    pub fn unsubscribed(mut self) -> SimFollower {
        self.subscribed = false;
        self
    }

    /// Follower number `n` of a generated crowd: 28-character openids in
    /// list order; every even one has a unionid.
    pub fn generated(n: usize) -> SimFollower {
        let follower = SimFollower::new(format!("oSimFollower{n:016}"));
        if n.is_multiple_of(2) { follower.with_unionid(format!("uSimUnion{n:019}")) } else { follower }
    }
}

/// A mini-program user, who can log in with any of `codes` (once each) or
/// with `sim-code:<openid>[:<anything>]`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SimMpUser {
    pub openid: String,
    #[serde(default)]
    pub unionid: Option<String>,
    #[serde(default)]
    pub codes: Vec<String>,
}

impl SimMpUser {
    pub fn new(openid: impl Into<String>, unionid: Option<&str>, codes: &[&str]) -> SimMpUser {
        SimMpUser { openid: openid.into(), unionid: unionid.map(str::to_string), codes: codes.iter().map(|c| c.to_string()).collect() }
    }
}

/// A subscription-message template of one app, as `/wxaapi/newtmpl/gettemplate`
/// lists it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SimSubscriptionTemplate {
    pub template_id: String,
    pub title: String,
    /// `时间:{{time1.DATA}}\n事项:{{thing2.DATA}}\n`.
    pub content: String,
    pub example: String,
    /// 2: one-time; 3: long-term.
    pub kind: i64,
}

impl SimSubscriptionTemplate {
    /// A one-time template whose content lists `keywords` (`thing1`, ...).
    pub fn one_time(template_id: &str, title: &str, keywords: &[&str]) -> SimSubscriptionTemplate {
        let content: String = keywords.iter().map(|k| format!("{k}:{{{{{k}.DATA}}}}\n")).collect();
        SimSubscriptionTemplate { template_id: template_id.into(), title: title.into(), content, example: String::new(), kind: 2 }
    }
}

/// A template of the service account's library, as
/// `get_all_private_template` lists it. Its content decides how
/// `template/send` treats it: a legacy template (`{{keyword1.DATA}}`,
/// `{{first.DATA}}`) has its values cut the way WeChat cuts them; a
/// category template (`{{thing1.DATA}}`) refuses values that break their
/// type's rule with 47003 (see [`crate::wechat::rules`]).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SimTemplate {
    pub template_id: String,
    pub title: String,
    pub content: String,
    pub example: String,
}

impl SimTemplate {
    /// A legacy template: `{{first.DATA}}`, one line per keyword
    /// (`keyword1`, ...), `{{remark.DATA}}`.
    pub fn legacy(template_id: &str, title: &str, keywords: &[&str]) -> SimTemplate {
        let lines: String = keywords.iter().enumerate().map(|(i, k)| format!("项目{}:{{{{{k}.DATA}}}}\n", i + 1)).collect();
        let content = format!("{{{{first.DATA}}}}\n{lines}{{{{remark.DATA}}}}");
        SimTemplate { template_id: template_id.into(), title: title.into(), content, example: String::new() }
    }

    /// A category template whose lines name typed keywords (`thing1`, `time2`, ...).
    pub fn category(template_id: &str, title: &str, keywords: &[&str]) -> SimTemplate {
        let content = keywords.iter().map(|k| format!("{k}:{{{{{k}.DATA}}}}")).collect::<Vec<_>>().join("\n");
        SimTemplate { template_id: template_id.into(), title: title.into(), content, example: String::new() }
    }

    /// True for a legacy template (some placeholder has no keyword type).
    pub fn is_legacy(&self) -> bool {
        crate::wechat::rules::is_legacy(&self.content)
    }
}

/// A template message the simulator answered 40252 (in review) instead of
/// sending, until [`SimHandle::review`] settles it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SimBlocked {
    /// The record id `queryblocktmplmsg` pages on (1, 2, ...).
    pub id: i64,
    pub touser: String,
    pub template_id: String,
    /// The template's title, when the simulator knows the template.
    pub title: String,
    /// The message as the user would read it: `key: value` lines.
    pub content: String,
    /// The request body as sent.
    pub payload: serde_json::Value,
    pub at: chrono::DateTime<chrono::Utc>,
}

/// How a simulator starts. `Default` is WeChat's own numbers.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Where to listen; port 0 picks a free one.
    pub listen: SocketAddr,
    pub oa_appid: String,
    pub oa_secret: String,
    /// The service account's original id (`gh_...`), the `ToUserName` of events.
    pub oa_original_id: String,
    /// The mini-program's original id, the `ToUserName` of its pushes.
    pub mp_original_id: String,
    pub mp_appid: String,
    pub mp_secret: String,
    /// Life of a token (7200 s).
    pub token_lifetime: Duration,
    /// How long a `/cgi-bin/token` token keeps working after a newer fetch (5 min).
    pub token_overlap: Duration,
    /// Openids per `user/get` page (10,000).
    pub page_size: usize,
    /// Openids per `batchget` call (100; more is 45035).
    pub batch_limit: usize,
    /// Every call's round trip: its answer leaves this long after it
    /// arrived (it takes effect on arrival).
    pub latency: Duration,
    /// Calls per day per path; a path not listed is unlimited.
    pub daily_quotas: BTreeMap<String, u64>,
    /// `None` accepts any template id; `Some` answers 40037 to the rest.
    pub valid_templates: Option<Vec<String>>,
    /// Subscribe sends need a credit granted with
    /// [`SimHandle::grant_subscribe_credits`] (43101 without).
    pub enforce_subscribe_credits: bool,
    pub followers: Vec<SimFollower>,
    pub mp_users: Vec<SimMpUser>,
    /// What a template send repeating a `client_msg_id` (same openid,
    /// within [`CLIENT_MSG_ID_WINDOW`]) answers; nothing is sent again.
    pub repeat_answer: RepeatAnswer,
    /// The service account's template library (`get_all_private_template`);
    /// sends naming one of these follow its rules.
    pub templates: Vec<SimTemplate>,
    /// The share of template sends answered 40252 (in review) instead of
    /// sent: every ⌈1/share⌉-th one, counted from the first, so tests can
    /// rely on counts. 0 (the default) sends all, 1 reviews all.
    pub review_share: f64,
}

/// How long WeChat drops repeats of one openid + `client_msg_id`.
pub const CLIENT_MSG_ID_WINDOW: Duration = Duration::from_secs(600);

/// WeChat documents that a repeated `client_msg_id` sends nothing new, but
/// not what the template send answers then; both plausible answers exist so
/// tests can hold the server to either.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RepeatAnswer {
    /// `{errcode: 45065, errmsg: "clientmsgid exist", msgid}` with the
    /// earlier message's id, as mass sends document.
    #[default]
    Exists,
    /// `{errcode: 0, errmsg: "ok", msgid}` with the earlier message's id.
    Ok,
}

impl Default for SimConfig {
    fn default() -> Self {
        let quotas = [
            ("/cgi-bin/token", 2_000),
            ("/cgi-bin/stable_token", 500_000),
            ("/cgi-bin/user/get", 500),
            ("/cgi-bin/user/info", 5_000_000),
            ("/cgi-bin/user/info/batchget", 5_000_000),
            ("/cgi-bin/message/template/send", 100_000),
            ("/cgi-bin/qrcode/create", 100_000),
        ];
        SimConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            oa_appid: "wxsimoa000000001".into(),
            oa_secret: "sim-oa-secret".into(),
            oa_original_id: "gh_sim000000001".into(),
            mp_original_id: "gh_simmp0000001".into(),
            mp_appid: "wxsimmp000000001".into(),
            mp_secret: "sim-mp-secret".into(),
            token_lifetime: Duration::from_secs(7200),
            token_overlap: Duration::from_secs(300),
            page_size: 10_000,
            batch_limit: 100,
            latency: Duration::ZERO,
            daily_quotas: quotas.into_iter().map(|(path, n)| (path.to_string(), n)).collect(),
            valid_templates: None,
            enforce_subscribe_credits: false,
            followers: Vec::new(),
            mp_users: Vec::new(),
            repeat_answer: RepeatAnswer::default(),
            templates: Vec::new(),
            review_share: 0.0,
        }
    }
}

/// Starts simulators.
pub struct Simulator;

impl Simulator {
    /// Binds `config.listen` and serves in the background until the last
    /// [`SimHandle`] clone is dropped.
    pub async fn start(config: SimConfig) -> std::io::Result<SimHandle> {
        let listener = tokio::net::TcpListener::bind(config.listen).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Mutex::new(SimState::new(config)));
        let task = tokio::spawn(server::serve(listener, shared.clone()));
        Ok(SimHandle { shared, addr, _server: Arc::new(ServerTask(task)) })
    }
}

/// Aborts the server when the last handle goes.
struct ServerTask(tokio::task::JoinHandle<()>);

impl Drop for ServerTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Steers a running simulator. Cheap to clone.
#[derive(Clone)]
pub struct SimHandle {
    shared: Arc<Mutex<SimState>>,
    addr: SocketAddr,
    _server: Arc<ServerTask>,
}

impl SimHandle {
    /// The base URL to use as `WXNOTIFY_WECHAT_API_BASE`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub(crate) fn with_state<T>(&self, f: impl FnOnce(&mut SimState) -> T) -> T {
        // A panic inside the simulator must not hide later answers in tests.
        let mut state = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut state)
    }

    pub fn oa_appid(&self) -> String {
        self.with_state(|s| s.config.oa_appid.clone())
    }

    pub fn mp_appid(&self) -> String {
        self.with_state(|s| s.config.mp_appid.clone())
    }

    pub fn original_id(&self) -> String {
        self.with_state(|s| s.config.oa_original_id.clone())
    }

    /// Adds followers (or replaces those with the same openid).
    pub fn add_followers(&self, followers: impl IntoIterator<Item = SimFollower>) {
        self.with_state(|s| s.add_followers(followers));
    }

    pub fn follower(&self, openid: &str) -> Option<SimFollower> {
        self.with_state(|s| s.follower(openid).cloned())
    }

    pub fn add_mp_users(&self, users: impl IntoIterator<Item = SimMpUser>) {
        self.with_state(|s| s.add_mp_users(users));
    }

    /// A one-time login code for a seeded mini-program user.
    pub fn add_code(&self, code: &str, openid: &str) {
        self.with_state(|s| s.codes.insert(code.to_string(), openid.to_string()));
    }

    /// Every call's round trip from now on (see [`SimConfig::latency`]).
    pub fn set_latency(&self, latency: Duration) {
        self.with_state(|s| s.latency = latency);
    }

    /// The next `times` calls to `path` answer `errcode` (queued after any
    /// faults already injected there).
    pub fn inject_fault(&self, path: &str, errcode: i64, times: usize) {
        self.with_state(|s| s.inject(path, errcode, times));
    }

    /// Every token issued to `appid` stops working now (40001).
    pub fn invalidate_tokens(&self, appid: &str) {
        self.with_state(|s| s.invalidate_tokens(appid));
    }

    /// Moves the simulated clock forward (token expiry, overlaps, quota days).
    pub fn advance_clock(&self, by: Duration) {
        self.with_state(|s| s.advance(by));
    }

    /// Sets (or with `None` lifts) the daily quota of `path`.
    pub fn set_daily_quota(&self, path: &str, calls: Option<u64>) {
        self.with_state(|s| match calls {
            Some(n) => s.quotas.insert(path.to_string(), n),
            None => s.quotas.remove(path),
        });
    }

    /// Lets `openid` receive `n` more subscribe messages of `template_id`.
    /// Adds a subscription-message template to `app`'s library.
    pub fn add_subscription_template(&self, app: crate::wechat::App, template: SimSubscriptionTemplate) {
        self.with_state(|s| s.subscription_templates.entry(app).or_default().push(template));
    }

    /// Service-account subscription notices `openid` can still get from `template_id`.
    pub fn oa_subscribe_credits(&self, openid: &str, template_id: &str) -> u32 {
        self.with_state(|s| s.oa_subscribe_credits.get(&(openid.to_string(), template_id.to_string())).copied().unwrap_or(0))
    }

    pub fn grant_subscribe_credits(&self, openid: &str, template_id: &str, n: u32) {
        self.with_state(|s| *s.subscribe_credits.entry((openid.to_string(), template_id.to_string())).or_default() += n);
    }

    /// Every call answered so far, in order.
    pub fn calls(&self) -> Vec<CallRecord> {
        self.with_state(|s| s.calls.clone())
    }

    /// How many calls `path` received, whatever the answer.
    pub fn count_calls(&self, path: &str) -> usize {
        self.with_state(|s| s.calls.iter().filter(|c| c.path == path).count())
    }

    /// Calls to `/cgi-bin/token` and `/cgi-bin/stable_token`, whatever the answer.
    pub fn token_fetches(&self) -> usize {
        TOKEN_PATHS.iter().map(|p| self.count_calls(p)).sum()
    }

    /// Delay added after each call has taken effect, before its answer
    /// (a caller that times out meanwhile does not learn what happened).
    pub fn set_answer_delay(&self, delay: Duration) {
        self.with_state(|s| s.answer_delay = delay);
    }

    /// How a repeated `client_msg_id` is answered from now on.
    pub fn set_repeat_answer(&self, answer: RepeatAnswer) {
        self.with_state(|s| s.config.repeat_answer = answer);
    }

    /// Template sends that repeated a `client_msg_id` and were dropped.
    pub fn repeats_dropped(&self) -> usize {
        self.with_state(|s| s.repeats_dropped)
    }

    /// Every message accepted so far, in order.
    pub fn sent_messages(&self) -> Vec<SentMessage> {
        self.with_state(|s| s.sent.clone())
    }

    /// Adds a template to the service account's library (or replaces the
    /// one with its id).
    pub fn add_template(&self, template: SimTemplate) {
        self.with_state(|s| {
            s.config.templates.retain(|t| t.template_id != template.template_id);
            s.config.templates.push(template);
        });
    }

    /// Removes a template from the library; later sends naming it are
    /// treated like any unknown template id.
    pub fn remove_template(&self, template_id: &str) {
        self.with_state(|s| s.config.templates.retain(|t| t.template_id != template_id));
    }

    /// The share of template sends answered 40252 from now on (see
    /// [`SimConfig::review_share`]); the count starts again.
    pub fn set_review_share(&self, share: f64) {
        self.with_state(|s| {
            s.config.review_share = share;
            s.review_counter = 0;
        });
    }

    /// Template messages answered 40252 and not settled yet, oldest first.
    pub fn blocked(&self) -> Vec<SimBlocked> {
        self.with_state(|s| s.blocked.clone())
    }

    /// Settles blocked message `id` (a [`SimBlocked::id`]): approved, it is
    /// sent (recorded in [`sent_messages`](SimHandle::sent_messages) with a
    /// new msgid); refused, it is dropped. Either way it leaves the
    /// `queryblocktmplmsg` listing, and the returned
    /// [`SimEvent::TemplateSendJobFinish`] (`success`, or `failed: system
    /// failed`) is ready for [`push`](SimHandle::push). WeChat's 40252
    /// answer carries no msgid, so the event's msgid is one the server has
    /// not seen: it must match by openid and template.
    pub fn review(&self, id: i64, approve: bool) -> anyhow::Result<SimEvent> {
        self.with_state(|s| {
            let at = s
                .blocked
                .iter()
                .position(|b| b.id == id)
                .ok_or_else(|| anyhow::anyhow!("no blocked template message {id} in the simulator"))?;
            let blocked = s.blocked.remove(at);
            let msgid = s.next_msgid();
            if approve {
                let now = s.now();
                s.sent.push(SentMessage {
                    msgid,
                    path: "/cgi-bin/message/template/send".into(),
                    touser: blocked.touser.clone(),
                    template_id: blocked.template_id.clone(),
                    payload: blocked.payload.clone(),
                    at: now,
                });
            }
            let status = if approve { "success" } else { "failed: system failed" };
            Ok(SimEvent::TemplateSendJobFinish { openid: blocked.touser, msgid, status: status.into() })
        })
    }

    /// The scene of a live QR ticket.
    pub fn qr_scene(&self, ticket: &str) -> Option<String> {
        self.with_state(|s| s.scene_of(ticket))
    }
}
