//! The simulated endpoints: what WeChat answers to each path, given the
//! simulator's state. Shapes and errcodes follow `docs/wechat.md`.

use std::collections::BTreeMap;

use base64::Engine;
use serde_json::{Value, json};

use super::state::{IssuedToken, SentMessage, SimState, Ticket, error};
use super::{SimBlocked, SimSubscriptionTemplate, SimTemplate};
use crate::wechat::rules::{self, KeywordType};

type Query = BTreeMap<String, String>;

use crate::wechat::App;

impl SimState {
    /// Answers one call: injected fault first, then the daily quota, then
    /// the endpoint itself. The answer is recorded.
    pub fn answer(&mut self, path: &str, query: &Query, body: &Value) -> Value {
        let answer = if let Some(errcode) = self.take_fault(path) {
            error(errcode, "injected by the simulator")
        } else if !is_known(path) {
            error(40066, "invalid url")
        } else if !self.within_quota(path) {
            error(45009, "reach max api daily quota limit")
        } else {
            self.endpoint(path, query, body).unwrap_or_else(|e| e)
        };
        let errcode = answer.get("errcode").and_then(Value::as_i64).unwrap_or(0);
        self.record(path, query, body, errcode);
        answer
    }

    fn endpoint(&mut self, path: &str, query: &Query, body: &Value) -> Result<Value, Value> {
        match path {
            "/cgi-bin/token" => self.token(query),
            "/cgi-bin/stable_token" => self.stable_token(body),
            "/sns/jscode2session" => self.jscode2session(query),
            "/cgi-bin/openapi/quota/get" => self.quota(query, body),
            _ if path.starts_with("/wxaapi/newtmpl/") => {
                // Both apps have a library of their own; the token says whose.
                let token = query.get("access_token").map(String::as_str).unwrap_or_default();
                let app = if self.check_token(App::Mp, token).is_ok() { App::Mp } else { App::Oa };
                self.check_token(app, token)?;
                self.newtmpl(app, path, body)
            }
            _ => {
                let app = if path.contains("subscribe/send") || path.contains("wxopen") { App::Mp } else { App::Oa };
                self.check_token(app, query.get("access_token").map(String::as_str).unwrap_or_default())?;
                match path {
                    "/cgi-bin/user/get" => self.user_get(query),
                    "/cgi-bin/user/info" => self.user_info(query),
                    "/cgi-bin/user/info/batchget" => self.batchget(body),
                    "/cgi-bin/qrcode/create" => self.qrcode(body),
                    "/cgi-bin/template/get_all_private_template" => Ok(self.private_templates()),
                    "/wxa/sec/queryblocktmplmsg" => self.blocked_page(body),
                    _ => self.send(path, body),
                }
            }
        }
    }

    fn appid(&self, app: App) -> &str {
        match app {
            App::Oa => &self.config.oa_appid,
            App::Mp => &self.config.mp_appid,
        }
    }

    fn check_credentials(&self, appid: &str, secret: &str) -> Result<(), Value> {
        let expected = if appid == self.config.oa_appid {
            &self.config.oa_secret
        } else if appid == self.config.mp_appid {
            &self.config.mp_secret
        } else {
            return Err(error(40013, "invalid appid"));
        };
        if secret != expected {
            return Err(error(40125, "invalid appsecret"));
        }
        Ok(())
    }

    fn issue(&mut self, appid: &str, stable: bool) -> (String, i64) {
        let now = self.now();
        let lifetime = chrono::Duration::from_std(self.config.token_lifetime).unwrap_or(chrono::Duration::hours(2));
        let overlap = chrono::Duration::from_std(self.config.token_overlap).unwrap_or(chrono::Duration::minutes(5));
        let token = random_text(96);
        let tokens = self.tokens.entry(appid.to_string()).or_default();
        // A new /cgi-bin/token fetch ends the older ones after the overlap;
        // stable tokens live apart and are not touched.
        if !stable {
            for old in tokens.iter_mut().filter(|t| !t.stable) {
                old.dies_at = Some(old.dies_at.map_or(now + overlap, |d| d.min(now + overlap)));
            }
        }
        tokens.push(IssuedToken { token: token.clone(), expires_at: now + lifetime, dies_at: None, stable });
        (token, lifetime.num_seconds())
    }

    fn token(&mut self, query: &Query) -> Result<Value, Value> {
        if query.get("grant_type").map(String::as_str) != Some("client_credential") {
            return Err(error(40002, "invalid grant_type"));
        }
        let appid = query.get("appid").cloned().unwrap_or_default();
        self.check_credentials(&appid, query.get("secret").map(String::as_str).unwrap_or_default())?;
        let (token, expires_in) = self.issue(&appid, false);
        Ok(json!({ "access_token": token, "expires_in": expires_in }))
    }

    /// Without force_refresh the current stable token comes back with its
    /// remaining life, until its last 5 minutes, when a new one is issued
    /// (the old one lives on to its expiry).
    fn stable_token(&mut self, body: &Value) -> Result<Value, Value> {
        let text = |key: &str| body.get(key).and_then(Value::as_str).unwrap_or_default().to_string();
        if text("grant_type") != "client_credential" {
            return Err(error(40002, "invalid grant_type"));
        }
        let appid = text("appid");
        self.check_credentials(&appid, &text("secret"))?;
        let now = self.now();
        if body.get("force_refresh").and_then(Value::as_bool) == Some(true) {
            for old in self.tokens.entry(appid.clone()).or_default().iter_mut().filter(|t| t.stable) {
                old.dies_at = Some(now);
            }
        } else {
            let overlap = chrono::Duration::from_std(self.config.token_overlap).unwrap_or_default();
            let current = self
                .tokens
                .get(&appid)
                .and_then(|tokens| tokens.iter().rev().find(|t| t.stable && t.dies_at.is_none() && t.expires_at - overlap > now));
            if let Some(t) = current {
                return Ok(json!({ "access_token": t.token, "expires_in": (t.expires_at - now).num_seconds() }));
            }
        }
        let (token, expires_in) = self.issue(&appid, true);
        Ok(json!({ "access_token": token, "expires_in": expires_in }))
    }

    fn check_token(&self, app: App, token: &str) -> Result<(), Value> {
        let now = self.now();
        let issued = self.tokens.get(self.appid(app)).and_then(|tokens| tokens.iter().find(|t| t.token == token));
        match issued {
            None => Err(error(40001, "invalid credential, access_token is invalid or not latest")),
            Some(t) if t.dies_at.is_some_and(|d| d <= now) => {
                Err(error(40001, "invalid credential, access_token is invalid or not latest"))
            }
            Some(t) if t.expires_at <= now => Err(error(42001, "access_token expired")),
            Some(_) => Ok(()),
        }
    }

    fn jscode2session(&mut self, query: &Query) -> Result<Value, Value> {
        let get = |key: &str| query.get(key).map(String::as_str).unwrap_or_default();
        if get("appid") != self.config.mp_appid {
            return Err(error(40013, "invalid appid"));
        }
        self.check_credentials(get("appid"), get("secret"))?;
        let code = get("js_code").to_string();
        if self.used_codes.contains(&code) {
            return Err(error(40163, "code been used"));
        }
        let openid = self.codes.remove(&code).or_else(|| self.code_naming_a_user(&code)).ok_or_else(|| error(40029, "invalid code"))?;
        self.used_codes.insert(code);
        let unionid = self.mp_users.get(&openid).and_then(|u| u.unionid.clone());
        let session_key = base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 16]>());
        let mut answer = json!({ "openid": openid, "session_key": session_key });
        if let Some(unionid) = unionid {
            answer["unionid"] = json!(unionid);
        }
        Ok(answer)
    }

    /// `sim-code:<openid>` or `sim-code:<openid>:<anything>` logs in a seeded
    /// mini-program user (once per distinct code, like any code).
    fn code_naming_a_user(&self, code: &str) -> Option<String> {
        let rest = code.strip_prefix("sim-code:")?;
        let openid = rest.split(':').next()?;
        self.mp_users.contains_key(openid).then(|| openid.to_string())
    }

    fn user_get(&mut self, query: &Query) -> Result<Value, Value> {
        let after = query.get("next_openid").map(String::as_str).filter(|after| !after.is_empty());
        let page_size = self.config.page_size;
        let (total, page) = self.listed_page(after, page_size).ok_or_else(|| error(40003, "invalid openid"))?;
        let Some(last) = page.last() else {
            // The page after the end has no `data` key at all.
            return Ok(json!({ "total": total, "count": 0, "next_openid": "" }));
        };
        Ok(json!({ "total": total, "count": page.len(), "data": { "openid": page }, "next_openid": last }))
    }

    fn user_json(&self, openid: &str) -> Result<Value, Value> {
        let follower = self.follower(openid).ok_or_else(|| error(40003, "invalid openid"))?;
        let mut user = if follower.subscribed {
            json!({
                "subscribe": 1, "openid": follower.openid, "language": "zh_CN",
                "subscribe_time": follower.subscribe_time, "remark": "", "groupid": 0, "tagid_list": [],
                "subscribe_scene": if follower.qr_scene_str.is_some() { "ADD_SCENE_QR_CODE" } else { "ADD_SCENE_SEARCH" },
                "qr_scene": 0, "qr_scene_str": follower.qr_scene_str.clone().unwrap_or_default(),
            })
        } else {
            json!({ "subscribe": 0, "openid": follower.openid })
        };
        if let Some(unionid) = &follower.unionid {
            user["unionid"] = json!(unionid);
        }
        Ok(user)
    }

    fn user_info(&self, query: &Query) -> Result<Value, Value> {
        self.user_json(query.get("openid").map(String::as_str).unwrap_or_default())
    }

    fn batchget(&self, body: &Value) -> Result<Value, Value> {
        let list = body.get("user_list").and_then(Value::as_array).ok_or_else(|| error(47001, "data format error"))?;
        if list.is_empty() {
            return Err(error(47001, "data format error"));
        }
        if list.len() > self.config.batch_limit {
            return Err(error(45035, "too many openids in one call"));
        }
        let users = list
            .iter()
            .map(|item| self.user_json(item.get("openid").and_then(Value::as_str).unwrap_or_default()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(json!({ "user_info_list": users }))
    }

    fn qrcode(&mut self, body: &Value) -> Result<Value, Value> {
        let action = body.get("action_name").and_then(Value::as_str).unwrap_or_default();
        if action != "QR_STR_SCENE" && action != "QR_LIMIT_STR_SCENE" {
            return Err(error(40053, "invalid action info"));
        }
        let scene = body.pointer("/action_info/scene/scene_str").and_then(Value::as_str).unwrap_or_default();
        if scene.is_empty() || scene.chars().count() > 64 {
            return Err(error(47003, "argument invalid! scene_str"));
        }
        let expire_seconds = body.get("expire_seconds").and_then(Value::as_i64).unwrap_or(60).clamp(60, 2_592_000);
        let ticket = format!("gQ{}", random_text(62));
        let expires_at = self.now() + chrono::Duration::seconds(expire_seconds);
        self.tickets.insert(ticket.clone(), Ticket { scene: scene.to_string(), expires_at });
        let url = format!("http://weixin.qq.com/q/{}", random_text(22));
        Ok(json!({ "ticket": ticket, "expire_seconds": expire_seconds, "url": url }))
    }

    /// The three send endpoints share their checks; each refuses what its
    /// WeChat counterpart refuses.
    fn send(&mut self, path: &str, body: &Value) -> Result<Value, Value> {
        let text = |key: &str| body.get(key).and_then(Value::as_str).unwrap_or_default().to_string();
        let (touser, template_id) = (text("touser"), text("template_id"));
        let known = match path {
            TEMPLATE_SEND => self.config.templates.iter().find(|t| t.template_id == template_id).cloned(),
            _ => None,
        };
        if known.is_none() && self.config.valid_templates.as_ref().is_some_and(|valid| !valid.contains(&template_id)) {
            return Err(error(40037, "invalid template_id"));
        }
        // A subscription message names a template of the app's library, once it has one.
        let library = match path {
            "/cgi-bin/message/subscribe/bizsend" => self.subscription_templates.get(&App::Oa),
            "/cgi-bin/message/subscribe/send" => self.subscription_templates.get(&App::Mp),
            _ => None,
        };
        if library.is_some_and(|l| !l.is_empty() && !l.iter().any(|t| t.template_id == template_id)) {
            return Err(error(40037, "invalid template_id"));
        }
        if !body.get("data").is_some_and(Value::is_object) {
            return Err(error(47003, "argument invalid! data is empty"));
        }
        // What the user will see: a legacy template's values cut, a
        // category template's checked.
        let shown = match &known {
            Some(template) => apply_template(template, body)?,
            None => body.clone(),
        };
        let client_msg_id = text("client_msg_id");
        if path == "/cgi-bin/message/template/send"
            && !client_msg_id.is_empty()
            && let Some(answer) = self.repeat_of(&touser, &client_msg_id)
        {
            return answer;
        }
        let answer = match path {
            "/cgi-bin/message/template/send" => self.check_template_send(&touser)?,
            "/cgi-bin/message/subscribe/send" => self.check_subscribe_send(&touser, &template_id, body)?,
            "/cgi-bin/message/subscribe/bizsend" => self.check_oa_subscribe_send(&touser, &template_id, body)?,
            "/cgi-bin/message/wxopen/template/send" => self.check_form_send(&touser, &text("form_id"))?,
            _ => return Err(error(40066, "invalid url")),
        };
        if path == TEMPLATE_SEND && self.review_due() {
            self.block(touser, template_id, known.as_ref(), shown);
            return Err(error(IN_REVIEW, IN_REVIEW_ERRMSG));
        }
        let msgid = self.next_msgid();
        let at = self.now();
        if path == TEMPLATE_SEND && !client_msg_id.is_empty() {
            self.client_msg_ids.insert((touser.clone(), client_msg_id), (msgid, at));
        }
        self.sent.push(SentMessage { msgid, path: path.to_string(), touser, template_id, payload: shown, at });
        let mut answer = answer;
        if answer.get("msgid").is_some() {
            answer["msgid"] = json!(msgid);
        }
        Ok(answer)
    }

    /// WeChat sends one message per openid + `client_msg_id` for 10 minutes:
    /// a repeat inside that window is dropped and answered with the earlier
    /// message's id; later, the id is forgotten and the send is new.
    fn repeat_of(&mut self, touser: &str, client_msg_id: &str) -> Option<Result<Value, Value>> {
        if client_msg_id.len() > 64 {
            return Some(Err(error(45067, "clientmsgid size out of limit")));
        }
        let window = chrono::Duration::from_std(super::CLIENT_MSG_ID_WINDOW).unwrap_or_default();
        let now = self.now();
        let &(msgid, at) = self.client_msg_ids.get(&(touser.to_string(), client_msg_id.to_string()))?;
        if now - at >= window {
            return None;
        }
        self.repeats_dropped += 1;
        Some(Ok(match self.config.repeat_answer {
            super::RepeatAnswer::Exists => json!({ "errcode": 45065, "errmsg": "clientmsgid exist", "msgid": msgid }),
            super::RepeatAnswer::Ok => json!({ "errcode": 0, "errmsg": "ok", "msgid": msgid }),
        }))
    }

    /// Whether this template send is one `review_share` sends to review:
    /// every ⌈1/share⌉-th since the share was set.
    fn review_due(&mut self) -> bool {
        let share = self.config.review_share;
        if share.is_nan() || share <= 0.0 {
            return false;
        }
        self.review_counter += 1;
        let every = (1.0 / share.min(1.0)).ceil().max(1.0) as u64;
        self.review_counter.is_multiple_of(every)
    }

    fn block(&mut self, touser: String, template_id: String, template: Option<&SimTemplate>, shown: Value) {
        self.next_blocked_id += 1;
        let content = rendered(template, &shown);
        let title = template.map(|t| t.title.clone()).unwrap_or_default();
        let at = self.now();
        self.blocked.push(SimBlocked { id: self.next_blocked_id, touser, template_id, title, content, payload: shown, at });
    }

    /// `get_all_private_template`: the library, with one industry for all.
    fn private_templates(&self) -> Value {
        let list: Vec<Value> = self
            .config
            .templates
            .iter()
            .map(|t| {
                json!({ "template_id": t.template_id, "title": t.title, "primary_industry": "IT科技",
                    "deputy_industry": "互联网|电子商务", "content": t.content, "example": t.example })
            })
            .collect();
        json!({ "template_list": list })
    }

    /// `queryblocktmplmsg`: the unsettled 40252 messages of one template,
    /// after record `largest_id`, at most `limit` (1 to 100; the simulator
    /// refuses others with 47003, its choice). `msginfo` is always a list.
    fn blocked_page(&self, body: &Value) -> Result<Value, Value> {
        let template_id = body.get("tmpl_msg_id").and_then(Value::as_str).filter(|t| !t.is_empty());
        let template_id = template_id.ok_or_else(|| error(47003, "argument invalid! tmpl_msg_id"))?;
        let largest_id = body.get("largest_id").and_then(Value::as_i64).unwrap_or(0);
        let limit = body.get("limit").and_then(Value::as_i64).filter(|l| (1..=100).contains(l));
        let limit = limit.ok_or_else(|| error(47003, "argument invalid! limit"))?;
        let items: Vec<Value> = self
            .blocked
            .iter()
            .filter(|b| b.template_id == template_id && b.id > largest_id)
            .take(limit as usize)
            .map(|b| {
                json!({ "id": b.id, "tmpl_msg_id": b.template_id, "title": b.title, "content": b.content,
                    "send_timestamp": b.at.timestamp(), "openid": b.touser })
            })
            .collect();
        Ok(json!({ "errcode": 0, "errmsg": "ok", "msginfo": items }))
    }

    /// `openapi/quota/get`: the path's daily limit and today's calls, asked
    /// with the token of the app the path belongs to. A path without a
    /// quota in the simulator answers [`UNLIMITED`] as its limit.
    fn quota(&self, query: &Query, body: &Value) -> Result<Value, Value> {
        let token = query.get("access_token").map(String::as_str).unwrap_or_default();
        let asker = if self.check_token(App::Mp, token).is_ok() { App::Mp } else { App::Oa };
        self.check_token(asker, token)?;
        let cgi_path = body.get("cgi_path").and_then(Value::as_str).unwrap_or_default();
        if !cgi_path.starts_with('/') || cgi_path.contains("://") {
            return Err(error(76003, "invalid cgi_path"));
        }
        if cgi_path.starts_with("/sns/") {
            return Err(error(76022, "could not use this cgi_path,no permission"));
        }
        if !is_known(cgi_path) || cgi_path.starts_with("/_sim") {
            return Err(error(76021, "cgi_path not found, please check"));
        }
        if app_of(cgi_path) != asker {
            return Err(error(76022, "could not use this cgi_path,no permission"));
        }
        let used = self.used_today(cgi_path) as i64;
        let limit = self.quotas.get(cgi_path).map_or(UNLIMITED, |&n| n as i64);
        Ok(json!({ "errcode": 0, "errmsg": "ok", "quota": { "daily_limit": limit, "used": used, "remain": (limit - used).max(0) } }))
    }

    fn check_template_send(&self, touser: &str) -> Result<Value, Value> {
        match self.follower(touser) {
            None => Err(error(40003, "invalid openid")),
            Some(f) if !f.subscribed => Err(error(43004, "require subscribe")),
            Some(_) => Ok(json!({ "errcode": 0, "errmsg": "ok", "msgid": 0 })),
        }
    }

    fn check_subscribe_send(&mut self, touser: &str, template_id: &str, body: &Value) -> Result<Value, Value> {
        if !self.mp_users.contains_key(touser) {
            return Err(error(40003, "invalid openid"));
        }
        check_typed_values(body)?;
        if self.config.enforce_subscribe_credits {
            let key = (touser.to_string(), template_id.to_string());
            match self.subscribe_credits.get_mut(&key) {
                Some(left) if *left > 0 => *left -= 1,
                _ => return Err(error(43101, "user refuse to accept the msg")),
            }
        }
        Ok(json!({ "errcode": 0, "errmsg": "ok", "msgid": 0 }))
    }

    /// A service-account subscription notice: the user must be known to the
    /// account (a follower, or someone who left or only met it in a popup)
    /// and have a credit from a popup; bizsend answers without a msgid.
    fn check_oa_subscribe_send(&mut self, touser: &str, template_id: &str, body: &Value) -> Result<Value, Value> {
        if self.follower(touser).is_none() {
            return Err(error(40003, "invalid openid"));
        }
        check_typed_values(body)?;
        let key = (touser.to_string(), template_id.to_string());
        match self.oa_subscribe_credits.get_mut(&key) {
            Some(left) if *left > 0 => *left -= 1,
            _ => return Err(error(43101, "user refuse to accept the msg")),
        }
        Ok(json!({ "errcode": 0, "errmsg": "ok" }))
    }

    /// The subscription-template library of `app`: gettemplate lists it,
    /// getcategory names one category, addtemplate adds a template with the
    /// chosen keywords, deltemplate removes one (40037 for an unknown id,
    /// the simulator's choice: WeChat does not document it).
    fn newtmpl(&mut self, app: App, path: &str, body: &Value) -> Result<Value, Value> {
        let library = self.subscription_templates.entry(app).or_default();
        match path {
            "/wxaapi/newtmpl/gettemplate" => {
                let data: Vec<Value> = library
                    .iter()
                    .map(|t| json!({ "priTmplId": t.template_id, "title": t.title, "content": t.content, "example": t.example, "type": t.kind }))
                    .collect();
                Ok(json!({ "errcode": 0, "errmsg": "ok", "data": data }))
            }
            "/wxaapi/newtmpl/getcategory" => Ok(json!({ "errcode": 0, "errmsg": "ok", "data": [{ "id": 616, "name": "公交" }] })),
            "/wxaapi/newtmpl/addtemplate" => {
                let tid = body.get("tid").map(|t| t.to_string().trim_matches('"').to_string()).unwrap_or_default();
                let keywords: Vec<String> = body
                    .get("kidList")
                    .and_then(Value::as_array)
                    .map(|l| l.iter().map(|k| format!("thing{}", k.to_string().trim_matches('"'))).collect())
                    .unwrap_or_default();
                if tid.is_empty() || !(2..=5).contains(&keywords.len()) {
                    return Err(error(200014, "kidList must list 2 to 5 keywords"));
                }
                let keywords: Vec<&str> = keywords.iter().map(String::as_str).collect();
                let template_id = random_text(43);
                library.push(SimSubscriptionTemplate::one_time(&template_id, &format!("模板{tid}"), &keywords));
                Ok(json!({ "errcode": 0, "errmsg": "ok", "priTmplId": template_id }))
            }
            "/wxaapi/newtmpl/deltemplate" => {
                let id = body.get("priTmplId").and_then(Value::as_str).unwrap_or_default();
                let before = library.len();
                library.retain(|t| t.template_id != id);
                if library.len() == before {
                    return Err(error(40037, "invalid template_id"));
                }
                Ok(json!({ "errcode": 0, "errmsg": "ok" }))
            }
            _ => Err(error(40066, "invalid url")),
        }
    }

    fn check_form_send(&mut self, touser: &str, form_id: &str) -> Result<Value, Value> {
        if !self.mp_users.contains_key(touser) {
            return Err(error(40003, "invalid openid"));
        }
        if form_id.is_empty() || form_id == "the formId is a mock one" {
            return Err(error(41028, "invalid form id"));
        }
        if !self.used_form_ids.insert(form_id.to_string()) {
            return Err(error(41029, "form id used count reach limit"));
        }
        Ok(json!({ "errcode": 0, "errmsg": "ok" }))
    }

    /// The scene of a live ticket.
    pub fn scene_of(&self, ticket: &str) -> Option<String> {
        let now = self.now();
        self.tickets.get(ticket).filter(|t| t.expires_at > now).map(|t| t.scene.clone())
    }
}

/// Unlike legacy template sends, subscription messages refuse a value
/// that breaks its keyword type's rule (too long, wrong characters or
/// format, a line break, a value for a `const`) instead of cutting it:
/// 47003 naming the field. Keys without a type are not checked.
fn check_typed_values(body: &Value) -> Result<(), Value> {
    if let Some(data) = body.get("data").and_then(Value::as_object) {
        for (key, field) in data {
            let Some(kind) = KeywordType::of_key(key) else { continue };
            let value = field.get("value").and_then(Value::as_str).unwrap_or_default();
            if rules::check(key, kind, value).is_err() {
                return Err(error(47003, &format!("argument invalid! data.{key}.value invalid")));
            }
        }
    }
    Ok(())
}

const TEMPLATE_SEND: &str = "/cgi-bin/message/template/send";

/// 40252 and its errmsg as WeChat answers it (no msgid comes with it).
const IN_REVIEW: i64 = 40252;
const IN_REVIEW_ERRMSG: &str = "你正在调用的模板下发的部分内容已进入平台审核流程，在审核完成前，相关内容暂时无法下发。";

/// The daily limit `openapi/quota/get` answers for a path the simulator
/// does not limit (its choice: WeChat documents none for that case).
pub(crate) const UNLIMITED: i64 = 10_000_000;

/// The app an API belongs to, whose token calls it.
fn app_of(path: &str) -> App {
    if path.contains("subscribe/send") || path.contains("wxopen") || path == "/sns/jscode2session" { App::Mp } else { App::Oa }
}

/// A send naming a template of the library, as WeChat treats it: a legacy
/// template's values are cut (line breaks to spaces, 20 characters) and
/// what the user does not see (`first`, `remark`, keys the template lacks,
/// colours) dropped; a category template refuses, with 47003 naming the
/// field, a key it lacks (`first` and `remark` included) and a value that
/// breaks its type's rule. Returns the body as the user sees it.
fn apply_template(template: &SimTemplate, body: &Value) -> Result<Value, Value> {
    let keys = rules::placeholders(&template.content);
    let data = body.get("data").and_then(Value::as_object).cloned().unwrap_or_default();
    let refuse = |key: &str| error(47003, &format!("argument invalid! data.{key}.value invalid"));
    let mut shown = serde_json::Map::new();
    for (key, field) in &data {
        let value = field.get("value").and_then(Value::as_str);
        if template.is_legacy() {
            if key == "first" || key == "remark" || !keys.contains(key) {
                continue;
            }
            let (cut, _) = rules::cut_like_wechat(value.unwrap_or_default());
            shown.insert(key.clone(), json!({ "value": cut }));
        } else {
            let kind = KeywordType::of_key(key).filter(|_| keys.contains(key)).ok_or_else(|| refuse(key))?;
            let value = value.ok_or_else(|| refuse(key))?;
            rules::check(key, kind, value).map_err(|_| refuse(key))?;
            shown.insert(key.clone(), field.clone());
        }
    }
    let mut body = body.clone();
    body["data"] = Value::Object(shown);
    Ok(body)
}

/// A message as the user reads it: the template's content with its
/// placeholders filled, or `key: value` lines for a template the simulator
/// does not know.
fn rendered(template: Option<&SimTemplate>, body: &Value) -> String {
    let value = |key: &str| body.pointer(&format!("/data/{key}/value")).and_then(Value::as_str).unwrap_or_default().to_string();
    match template {
        Some(t) => rules::placeholders(&t.content)
            .iter()
            .fold(t.content.clone(), |text, key| text.replace(&format!("{{{{{key}.DATA}}}}"), &value(key))),
        None => body
            .get("data")
            .and_then(Value::as_object)
            .map(|data| data.keys().map(|k| format!("{k}: {}", value(k))).collect::<Vec<_>>().join("\n"))
            .unwrap_or_default(),
    }
}

fn is_known(path: &str) -> bool {
    matches!(
        path,
        "/cgi-bin/token"
            | "/cgi-bin/stable_token"
            | "/sns/jscode2session"
            | "/cgi-bin/user/get"
            | "/cgi-bin/user/info"
            | "/cgi-bin/user/info/batchget"
            | "/cgi-bin/message/template/send"
            | "/cgi-bin/message/subscribe/send"
            | "/cgi-bin/message/wxopen/template/send"
            | "/cgi-bin/message/subscribe/bizsend"
            | "/wxaapi/newtmpl/gettemplate"
            | "/wxaapi/newtmpl/getcategory"
            | "/wxaapi/newtmpl/addtemplate"
            | "/wxaapi/newtmpl/deltemplate"
            | "/cgi-bin/qrcode/create"
            | "/cgi-bin/template/get_all_private_template"
            | "/cgi-bin/openapi/quota/get"
            | "/wxa/sec/queryblocktmplmsg"
    )
}

/// Random URL-safe text, the look of WeChat's tokens and tickets.
pub(crate) fn random_text(len: usize) -> String {
    let bytes: Vec<u8> = (0..len).map(|_| rand::random::<u8>()).collect();
    let text = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    text.chars().take(len).collect()
}
