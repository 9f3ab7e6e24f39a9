//! Callback pushes: the simulator plays WeChat calling the service
//! account's server URL with signed event XML, and the mini-program's
//! message push with XML or JSON, in plain or safe (AES) mode.
//!
//! Pushing an event also changes the simulated world the way the user's
//! action would (a subscribe makes them a follower), so a later `user/info`
//! agrees with the event.

use std::time::Duration;

use serde_json::{Value, json};

use crate::wechat::App;
use crate::wechat::crypto::{self, AesKey};

use super::SimHandle;

/// Where and how to push: the server's callback URL and its secrets.
#[derive(Clone, Debug, Default)]
pub struct CallbackTarget {
    /// e.g. `http://127.0.0.1:8080/wechat/callback`.
    pub url: String,
    /// The callback Token (`WXNOTIFY_OA_TOKEN`, `WXNOTIFY_MP_TOKEN`).
    pub token: String,
    /// The EncodingAESKey (`WXNOTIFY_OA_AES_KEY`, `WXNOTIFY_MP_AES_KEY`);
    /// `Some` pushes in safe mode.
    pub aes_key: Option<String>,
    /// Whose push this is: the service account's server URL (the default)
    /// or the mini-program's message push.
    pub app: PushApp,
    /// XML, or JSON (the mini-program's push only: service accounts push XML).
    pub format: PushFormat,
}

/// Whose push endpoint a [`CallbackTarget`] is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PushApp {
    #[default]
    ServiceAccount,
    MiniProgram,
}

/// The data format configured for a push.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PushFormat {
    #[default]
    Xml,
    Json,
}

/// An event a user causes on the service account.
#[derive(Clone, Debug)]
pub enum SimEvent {
    /// Followed; with `ticket`, by scanning that parametric QR code.
    Subscribe {
        openid: String,
        ticket: Option<String>,
    },
    Unsubscribe {
        openid: String,
    },
    /// A follower scanned the parametric QR code `ticket`.
    Scan {
        openid: String,
        ticket: String,
    },
    /// WeChat finished delivering template message `msgid`; status is
    /// `success`, `failed:user block` or `failed: system failed`.
    TemplateSendJobFinish {
        openid: String,
        msgid: i64,
        status: String,
    },
    /// The user answered a subscription popup of the target's app: each
    /// accepted template is one more message they may be sent.
    SubscriptionPopup {
        openid: String,
        accepted: Vec<String>,
        rejected: Vec<String>,
    },
    /// The user turned the templates off (they get none until accepting again).
    SubscriptionChange {
        openid: String,
        rejected: Vec<String>,
    },
    /// WeChat's result for subscription message `msgid` (one the simulator
    /// was sent; `errcode` 0 with status `success`, else e.g. 10005
    /// `failed:user block`).
    SubscriptionSent {
        openid: String,
        msgid: i64,
        errcode: i64,
        status: String,
    },
}

/// An event before it is written as XML or JSON: the common fields, the
/// event's own scalar fields, and its `List` items under their XML parent.
struct Pushed {
    openid: String,
    event: &'static str,
    fields: Vec<(&'static str, Value)>,
    list: Option<(&'static str, Vec<Item>)>,
}

/// One `List` item: its fields in order.
type Item = Vec<(&'static str, Value)>;

/// A signed push, ready to send (again, as WeChat retries with the very
/// same request when the server is slow).
#[derive(Clone, Debug)]
pub struct Delivery {
    pub url: String,
    /// The query pairs: signature, timestamp, nonce, openid, and in safe
    /// mode encrypt_type and msg_signature.
    pub query: Vec<(String, String)>,
    pub body: String,
    /// The event before encryption (XML or JSON).
    pub xml: String,
    /// `text/xml` or `application/json`.
    pub content_type: &'static str,
}

/// What the server answered.
#[derive(Clone, Debug)]
pub struct PushOutcome {
    pub status: u16,
    pub body: String,
}

impl Delivery {
    /// POSTs the push; WeChat waits 5 seconds for an answer.
    pub async fn send(&self) -> anyhow::Result<PushOutcome> {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build()?;
        let url = reqwest::Url::parse_with_params(&self.url, &self.query)?;
        let response = client.post(url).header("content-type", self.content_type).body(self.body.clone()).send().await?;
        let status = response.status().as_u16();
        Ok(PushOutcome { status, body: response.text().await? })
    }
}

impl SimHandle {
    /// Applies `event` to the simulated world and pushes it to `target`.
    pub async fn push(&self, target: &CallbackTarget, event: SimEvent) -> anyhow::Result<PushOutcome> {
        self.prepare(target, event)?.send().await
    }

    /// Applies `event` to the simulated world and returns the signed push
    /// without sending it.
    pub fn prepare(&self, target: &CallbackTarget, event: SimEvent) -> anyhow::Result<Delivery> {
        let app = match target.app {
            PushApp::ServiceAccount => App::Oa,
            PushApp::MiniProgram => App::Mp,
        };
        if app == App::Oa && target.format == PushFormat::Json {
            anyhow::bail!("a service account pushes XML only; JSON is a mini-program push format");
        }
        let pushed = self.apply(app, &event)?;
        let (to_user, appid) = self.with_state(|s| match app {
            App::Oa => (s.config.oa_original_id.clone(), s.config.oa_appid.clone()),
            App::Mp => (s.config.mp_original_id.clone(), s.config.mp_appid.clone()),
        });
        let now = self.with_state(|s| s.now().timestamp());
        let text = match target.format {
            PushFormat::Xml => xml_of(&to_user, now, &pushed),
            PushFormat::Json => json_of(&to_user, now, &pushed).to_string(),
        };
        let timestamp = now.to_string();
        let nonce = rand::random::<u32>().to_string();
        let mut query = vec![
            ("signature".to_string(), crypto::signature(&target.token, &timestamp, &nonce)),
            ("timestamp".to_string(), timestamp.clone()),
            ("nonce".to_string(), nonce.clone()),
            ("openid".to_string(), pushed.openid.clone()),
        ];
        let body = match &target.aes_key {
            None => text.clone(),
            Some(key) => {
                let key = AesKey::parse(key)?;
                let encrypted = crypto::encrypt(&key, &text, &appid);
                let msg_signature = crypto::msg_signature(&target.token, &timestamp, &nonce, &encrypted);
                query.push(("encrypt_type".to_string(), "aes".to_string()));
                query.push(("msg_signature".to_string(), msg_signature));
                match target.format {
                    PushFormat::Xml => {
                        format!("<xml><ToUserName>{}</ToUserName><Encrypt>{}</Encrypt></xml>", cdata(&to_user), cdata(&encrypted))
                    }
                    PushFormat::Json => json!({ "ToUserName": to_user, "Encrypt": encrypted }).to_string(),
                }
            }
        };
        let content_type = match target.format {
            PushFormat::Xml => "text/xml",
            PushFormat::Json => "application/json",
        };
        Ok(Delivery { url: target.url.clone(), query, body, xml: text, content_type })
    }

    /// Changes the world as the event says and returns what to push.
    fn apply(&self, app: App, event: &SimEvent) -> anyhow::Result<Pushed> {
        self.with_state(|state| {
            let now = state.now().timestamp();
            let simple = |openid: &String, event: &'static str, fields: Vec<(&'static str, Value)>| Pushed {
                openid: openid.clone(),
                event,
                fields,
                list: None,
            };
            let only_oa = |what: &str| -> anyhow::Result<()> {
                if app != App::Oa {
                    anyhow::bail!("{what} is a service-account event; push it to the service account's callback");
                }
                Ok(())
            };
            Ok(match event {
                SimEvent::Subscribe { openid, ticket } => {
                    only_oa("subscribe")?;
                    let scene = ticket.as_deref().map(|t| state.scene_of(t).ok_or_else(|| unknown_ticket(t))).transpose()?;
                    state.follow(openid, scene.clone(), now);
                    let mut fields = Vec::new();
                    if let (Some(scene), Some(ticket)) = (scene, ticket) {
                        fields.push(("EventKey", json!(format!("qrscene_{scene}"))));
                        fields.push(("Ticket", json!(ticket)));
                    }
                    simple(openid, "subscribe", fields)
                }
                SimEvent::Unsubscribe { openid } => {
                    only_oa("unsubscribe")?;
                    if let Some(follower) = state.follower_mut(openid) {
                        follower.subscribed = false;
                    }
                    simple(openid, "unsubscribe", vec![("EventKey", json!(""))])
                }
                SimEvent::Scan { openid, ticket } => {
                    only_oa("SCAN")?;
                    let scene = state.scene_of(ticket).ok_or_else(|| unknown_ticket(ticket))?;
                    simple(openid, "SCAN", vec![("EventKey", json!(scene)), ("Ticket", json!(ticket))])
                }
                SimEvent::TemplateSendJobFinish { openid, msgid, status } => {
                    only_oa("TEMPLATESENDJOBFINISH")?;
                    simple(openid, "TEMPLATESENDJOBFINISH", vec![("MsgID", json!(msgid)), ("Status", json!(status))])
                }
                SimEvent::SubscriptionPopup { openid, accepted, rejected } => {
                    known_user(state, app, openid)?;
                    let credits = credits_of(state, app);
                    for template in accepted {
                        *credits.entry((openid.clone(), template.clone())).or_default() += 1;
                    }
                    let scene = if app == App::Oa { "2" } else { "0" };
                    let items = accepted
                        .iter()
                        .map(|t| (t, "accept"))
                        .chain(rejected.iter().map(|t| (t, "reject")))
                        .map(|(t, answer)| {
                            vec![("TemplateId", json!(t)), ("SubscribeStatusString", json!(answer)), ("PopupScene", json!(scene))]
                        })
                        .collect();
                    Pushed {
                        openid: openid.clone(),
                        event: "subscribe_msg_popup_event",
                        fields: Vec::new(),
                        list: Some(("SubscribeMsgPopupEvent", items)),
                    }
                }
                SimEvent::SubscriptionChange { openid, rejected } => {
                    known_user(state, app, openid)?;
                    let credits = credits_of(state, app);
                    for template in rejected {
                        credits.remove(&(openid.clone(), template.clone()));
                    }
                    let items =
                        rejected.iter().map(|t| vec![("TemplateId", json!(t)), ("SubscribeStatusString", json!("reject"))]).collect();
                    Pushed {
                        openid: openid.clone(),
                        event: "subscribe_msg_change_event",
                        fields: Vec::new(),
                        list: Some(("SubscribeMsgChangeEvent", items)),
                    }
                }
                SimEvent::SubscriptionSent { openid, msgid, errcode, status } => {
                    let path = match app {
                        App::Oa => "/cgi-bin/message/subscribe/bizsend",
                        App::Mp => "/cgi-bin/message/subscribe/send",
                    };
                    let sent =
                        state.sent.iter().find(|m| m.msgid == *msgid && m.path == path && &m.touser == openid).ok_or_else(|| {
                            anyhow::anyhow!("the simulator was sent no subscription message {msgid} to {openid} on {path}")
                        })?;
                    let item = vec![
                        ("TemplateId", json!(sent.template_id)),
                        ("MsgID", json!(msgid.to_string())),
                        ("ErrorCode", json!(errcode.to_string())),
                        ("ErrorStatus", json!(status)),
                    ];
                    Pushed {
                        openid: openid.clone(),
                        event: "subscribe_msg_sent_event",
                        fields: Vec::new(),
                        list: Some(("SubscribeMsgSentEvent", vec![item])),
                    }
                }
            })
        })
    }
}

/// A popup or change comes from someone the app knows: for the service
/// account anyone in its user world (following or not), for the
/// mini-program one of its users.
fn known_user(state: &super::state::SimState, app: App, openid: &str) -> anyhow::Result<()> {
    let known = match app {
        App::Oa => state.follower(openid).is_some(),
        App::Mp => state.mp_users.contains_key(openid),
    };
    if !known {
        anyhow::bail!(
            "{openid} is not a user of the simulated {app:?}: add them first (add_followers, with .unsubscribed() for a non-follower, or add_mp_users)"
        );
    }
    Ok(())
}

fn credits_of(state: &mut super::state::SimState, app: App) -> &mut std::collections::HashMap<(String, String), u32> {
    match app {
        App::Oa => &mut state.oa_subscribe_credits,
        App::Mp => &mut state.subscribe_credits,
    }
}

fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The push as WeChat's XML: numbers bare, text as CDATA.
fn xml_of(to_user: &str, now: i64, pushed: &Pushed) -> String {
    let element = |name: &str, value: &Value| match value {
        Value::Number(n) => format!("<{name}>{n}</{name}>"),
        other => format!("<{name}>{}</{name}>", cdata(&text_of(other))),
    };
    let mut xml = format!(
        "<xml><ToUserName>{}</ToUserName><FromUserName>{}</FromUserName><CreateTime>{now}</CreateTime>{}",
        cdata(to_user),
        cdata(&pushed.openid),
        event_fields(pushed.event)
    );
    for (name, value) in &pushed.fields {
        xml += &element(name, value);
    }
    if let Some((parent, items)) = &pushed.list {
        xml += &format!("<{parent}>");
        for item in items {
            xml += "<List>";
            for (name, value) in item {
                let numeric = matches!(*name, "PopupScene" | "MsgID" | "ErrorCode");
                xml += &if numeric { format!("<{name}>{}</{name}>", text_of(value)) } else { element(name, value) };
            }
            xml += "</List>";
        }
        xml += &format!("</{parent}>");
    }
    xml + "</xml>"
}

/// The push as the mini-program's JSON: a one-item `List` is an object,
/// several an array, as WeChat sends them.
fn json_of(to_user: &str, now: i64, pushed: &Pushed) -> Value {
    let mut object = serde_json::Map::new();
    object.insert("ToUserName".into(), json!(to_user));
    object.insert("FromUserName".into(), json!(pushed.openid));
    object.insert("CreateTime".into(), json!(now));
    object.insert("MsgType".into(), json!("event"));
    object.insert("Event".into(), json!(pushed.event));
    for (name, value) in &pushed.fields {
        object.insert((*name).into(), value.clone());
    }
    if let Some((_, items)) = &pushed.list {
        let mut list: Vec<Value> =
            items.iter().map(|item| Value::Object(item.iter().map(|(k, v)| ((*k).to_string(), v.clone())).collect())).collect();
        object.insert("List".into(), if list.len() == 1 { list.remove(0) } else { Value::Array(list) });
    }
    Value::Object(object)
}

fn event_fields(event: &str) -> String {
    format!("<MsgType><![CDATA[event]]></MsgType><Event>{}</Event>", cdata(event))
}

fn unknown_ticket(ticket: &str) -> anyhow::Error {
    anyhow::anyhow!("the simulator issued no live QR code with ticket {ticket}")
}

/// Text as CDATA; a `]]>` inside is split across two sections.
fn cdata(text: &str) -> String {
    format!("<![CDATA[{}]]>", text.replace("]]>", "]]]]><![CDATA[>"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn cdata_survives_its_own_terminator() {
        assert_eq!(super::cdata("a]]>b"), "<![CDATA[a]]]]><![CDATA[>b]]>");
    }
}
