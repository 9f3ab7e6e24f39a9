//! The simulator's world: its clock, the tokens it issued, followers,
//! mini-program users, quotas, injected faults, and the record of every call.
//!
//! Everything sits behind one mutex that is never held across an await, so
//! each simulated call is atomic, as WeChat's answers are.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use serde_json::{Value, json};

use super::{SimConfig, SimFollower, SimMpUser};

/// One call the simulator answered.
#[derive(Clone, Debug, Serialize)]
pub struct CallRecord {
    /// The path, e.g. `/cgi-bin/token`.
    pub path: String,
    /// The query string, with `secret` and `access_token` masked.
    pub query: String,
    /// The start of the JSON body, if any.
    pub body: String,
    /// The errcode answered (0 for success).
    pub errcode: i64,
    /// Simulated time of the call.
    pub at: DateTime<Utc>,
}

/// A message the simulator accepted.
#[derive(Clone, Debug, Serialize)]
pub struct SentMessage {
    pub msgid: i64,
    /// The send path, telling template, subscribe and form-id sends apart.
    pub path: String,
    pub touser: String,
    pub template_id: String,
    /// The request body as sent.
    pub payload: Value,
    pub at: DateTime<Utc>,
}

/// A token the simulator handed out.
pub(crate) struct IssuedToken {
    pub token: String,
    pub expires_at: DateTime<Utc>,
    /// When it stops working before `expires_at`: the end of the overlap
    /// after a newer `/cgi-bin/token` fetch, or an injected invalidation.
    pub dies_at: Option<DateTime<Utc>>,
    pub stable: bool,
}

/// A temporary QR code.
pub(crate) struct Ticket {
    pub scene: String,
    pub expires_at: DateTime<Utc>,
}

pub(crate) struct SimState {
    pub config: SimConfig,
    clock_offset: chrono::Duration,
    pub latency: Duration,
    /// Added after a call took effect, before its answer goes out.
    pub answer_delay: Duration,
    /// appid → tokens in the order they were issued.
    pub tokens: HashMap<String, Vec<IssuedToken>>,
    /// Followers in list order; `follower_index` maps openid → position.
    /// Changed only through [`SimState::add_followers`] and
    /// [`SimState::follower_mut`], which forget `listed_total`.
    followers: Vec<SimFollower>,
    follower_index: HashMap<String, usize>,
    /// How many followers are subscribed (what `user/get` calls `total`),
    /// once counted; `None` after any change to the followers.
    listed_total: Option<usize>,
    pub mp_users: HashMap<String, SimMpUser>,
    /// code → mini-program openid; a code is removed when used.
    pub codes: HashMap<String, String>,
    pub used_codes: HashSet<String>,
    pub quotas: BTreeMap<String, u64>,
    usage: HashMap<(String, NaiveDate), u64>,
    /// path → errcodes to answer next, one per call.
    faults: HashMap<String, VecDeque<i64>>,
    pub calls: Vec<CallRecord>,
    pub sent: Vec<SentMessage>,
    next_msgid: i64,
    pub tickets: HashMap<String, Ticket>,
    pub used_form_ids: HashSet<String>,
    /// (mini-program openid, template_id) → sends left, when credits are enforced.
    pub subscribe_credits: HashMap<(String, String), u32>,
    /// (openid, client_msg_id) → the msgid it was sent as, and when.
    pub client_msg_ids: HashMap<(String, String), (i64, DateTime<Utc>)>,
    /// Template sends dropped as repeats of a `client_msg_id`.
    pub repeats_dropped: usize,
    /// (service-account openid, template_id) → subscription notices left:
    /// one per accept in a subscription popup, none after a change event.
    pub oa_subscribe_credits: HashMap<(String, String), u32>,
    /// Each app's subscription-message templates (`/wxaapi/newtmpl/*`).
    pub subscription_templates: HashMap<crate::wechat::App, Vec<super::SimSubscriptionTemplate>>,
    /// Template sends counted for `review_share` since it was last set.
    pub review_counter: u64,
    /// Template messages answered 40252, not settled yet.
    pub blocked: Vec<super::SimBlocked>,
    pub next_blocked_id: i64,
}

impl SimState {
    pub fn new(config: SimConfig) -> SimState {
        let mut state = SimState {
            latency: config.latency,
            answer_delay: Duration::ZERO,
            quotas: config.daily_quotas.clone(),
            clock_offset: chrono::Duration::zero(),
            tokens: HashMap::new(),
            followers: Vec::new(),
            follower_index: HashMap::new(),
            listed_total: None,
            mp_users: HashMap::new(),
            codes: HashMap::new(),
            used_codes: HashSet::new(),
            usage: HashMap::new(),
            faults: HashMap::new(),
            calls: Vec::new(),
            sent: Vec::new(),
            next_msgid: 3_000_000_001,
            tickets: HashMap::new(),
            used_form_ids: HashSet::new(),
            subscribe_credits: HashMap::new(),
            client_msg_ids: HashMap::new(),
            repeats_dropped: 0,
            oa_subscribe_credits: HashMap::new(),
            subscription_templates: HashMap::new(),
            review_counter: 0,
            blocked: Vec::new(),
            next_blocked_id: 0,
            config,
        };
        let followers = std::mem::take(&mut state.config.followers);
        state.add_followers(followers);
        let users = std::mem::take(&mut state.config.mp_users);
        state.add_mp_users(users);
        state
    }

    /// Simulated time: the real clock plus whatever tests advanced it by.
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.clock_offset
    }

    pub fn advance(&mut self, by: Duration) {
        self.clock_offset += chrono::Duration::from_std(by).unwrap_or_default();
    }

    pub fn add_followers(&mut self, followers: impl IntoIterator<Item = SimFollower>) {
        self.listed_total = None;
        for follower in followers {
            match self.follower_index.get(&follower.openid) {
                Some(&at) => self.followers[at] = follower,
                None => {
                    self.follower_index.insert(follower.openid.clone(), self.followers.len());
                    self.followers.push(follower);
                }
            }
        }
    }

    pub fn follower(&self, openid: &str) -> Option<&SimFollower> {
        self.follower_index.get(openid).map(|&at| &self.followers[at])
    }

    pub fn follower_mut(&mut self, openid: &str) -> Option<&mut SimFollower> {
        self.listed_total = None;
        self.follower_index.get(openid).map(|&at| &mut self.followers[at])
    }

    /// Every follower ever added, subscribed or not.
    pub fn follower_count(&self) -> usize {
        self.followers.len()
    }

    /// Up to `n` subscribed followers in list order, from the one after
    /// `after` (from the first when `None`), and how many are subscribed in
    /// all; `None` when `after` is not a subscribed follower. One lookup,
    /// then a walk from there to the page's last follower; the total is
    /// counted once until the followers change.
    pub fn listed_page(&mut self, after: Option<&str>, n: usize) -> Option<(usize, Vec<&str>)> {
        let start = match after {
            None => 0,
            Some(openid) => match self.follower_index.get(openid) {
                Some(&at) if self.followers[at].subscribed => at + 1,
                _ => return None,
            },
        };
        let followers = &self.followers;
        let total = *self.listed_total.get_or_insert_with(|| followers.iter().filter(|f| f.subscribed).count());
        let page = followers[start..].iter().filter(|f| f.subscribed).take(n).map(|f| f.openid.as_str()).collect();
        Some((total, page))
    }

    /// The user follows (again), through the QR code of `scene` if given.
    pub fn follow(&mut self, openid: &str, scene: Option<String>, now: i64) {
        match self.follower_mut(openid) {
            Some(follower) => {
                follower.subscribed = true;
                follower.subscribe_time = now;
                follower.qr_scene_str = scene;
            }
            None => {
                let mut follower = SimFollower::new(openid);
                follower.subscribe_time = now;
                follower.qr_scene_str = scene;
                self.add_followers([follower]);
            }
        }
    }

    pub fn add_mp_users(&mut self, users: impl IntoIterator<Item = SimMpUser>) {
        for user in users {
            for code in &user.codes {
                self.codes.insert(code.clone(), user.openid.clone());
            }
            self.mp_users.insert(user.openid.clone(), user);
        }
    }

    pub fn inject(&mut self, path: &str, errcode: i64, times: usize) {
        self.faults.entry(path.to_string()).or_default().extend(std::iter::repeat_n(errcode, times));
    }

    pub fn take_fault(&mut self, path: &str) -> Option<i64> {
        self.faults.get_mut(path).and_then(VecDeque::pop_front)
    }

    /// Counts a call against the path's daily quota; false when spent.
    /// Days turn at midnight Beijing time, as WeChat's do.
    /// Every call is counted, limited or not, for `openapi/quota/get`.
    pub fn within_quota(&mut self, path: &str) -> bool {
        let limit = self.quotas.get(path).copied();
        let day = self.quota_day();
        let used = self.usage.entry((path.to_string(), day)).or_default();
        if limit.is_some_and(|limit| *used >= limit) {
            return false;
        }
        *used += 1;
        true
    }

    /// Today's calls to `path` that counted against its quota.
    pub fn used_today(&self, path: &str) -> u64 {
        self.usage.get(&(path.to_string(), self.quota_day())).copied().unwrap_or(0)
    }

    /// The quota day: it turns at midnight Beijing time.
    fn quota_day(&self) -> NaiveDate {
        (self.now() + chrono::Duration::hours(8)).date_naive()
    }

    pub fn next_msgid(&mut self) -> i64 {
        self.next_msgid += 1;
        self.next_msgid
    }

    /// Every token of `appid` stops working now (as after a password reset
    /// or another party's force_refresh).
    pub fn invalidate_tokens(&mut self, appid: &str) {
        let now = self.now();
        for token in self.tokens.get_mut(appid).into_iter().flatten() {
            token.dies_at = Some(now);
        }
    }

    pub fn record(&mut self, path: &str, query: &BTreeMap<String, String>, body: &Value, errcode: i64) {
        let query = query
            .iter()
            .map(|(k, v)| match k.as_str() {
                "secret" | "access_token" => format!("{k}=***"),
                _ => format!("{k}={v}"),
            })
            .collect::<Vec<_>>()
            .join("&");
        let body = match body {
            Value::Null => String::new(),
            Value::Object(map) if map.contains_key("secret") => "{\"secret\":\"***\",...}".to_string(),
            other => other.to_string().chars().take(300).collect(),
        };
        let at = self.now();
        self.calls.push(CallRecord { path: path.to_string(), query, body, errcode, at });
    }
}

/// A WeChat error answer; errmsg carries a request id like WeChat's.
pub(crate) fn error(errcode: i64, errmsg: &str) -> Value {
    json!({ "errcode": errcode, "errmsg": format!("{errmsg} rid: sim-{:08x}", rand::random::<u32>()) })
}
