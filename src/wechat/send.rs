//! Sending: service-account template messages, mini-program subscribe
//! messages, and the legacy mini-program form-id template send.
//!
//! Sends are never repeated here after a timeout (the first attempt may have
//! been delivered); -1 and 45011 are, as WeChat did not take the message
//! then. The outbox repeats a template send whose outcome is unknown with
//! the same `client_msg_id`, inside WeChat's de-duplication window; the
//! answer to such a repeat is read here (see [`SendReceipt::repeat`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::transport::Call;
use super::{App, WechatClient, WechatError};
use crate::wechat::rules::{self, KeywordType};

/// One keyword of a template message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateValue {
    pub value: String,
    /// Ignored by WeChat since 2023-05; kept for old templates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
}

impl TemplateValue {
    pub fn new(value: impl Into<String>) -> TemplateValue {
        TemplateValue { value: value.into(), color: None }
    }
}

/// Opens a mini-program page when the message is tapped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MiniProgramLink {
    pub appid: String,
    pub pagepath: String,
}

/// A service-account template message (`message/template/send`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateMessage {
    /// The follower's service-account openid.
    pub touser: String,
    pub template_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Wins over `url` when both are set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub miniprogram: Option<MiniProgramLink>,
    pub data: BTreeMap<String, TemplateValue>,
    /// WeChat's de-duplication id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_msg_id: Option<String>,
}

/// A mini-program subscribe message (`message/subscribe/send`); each one
/// uses up one credit the user granted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscribeMessage {
    /// The user's mini-program openid.
    pub touser: String,
    pub template_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<String>,
    pub data: BTreeMap<String, TemplateValue>,
    /// `developer`, `trial` or `formal`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub miniprogram_state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
}

/// A service-account subscription notice (`message/subscribe/bizsend`),
/// paid with a credit the user gave in a subscription popup; it reaches
/// users who do not follow the account (they read it in 服务通知).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OaSubscribeMessage {
    /// The user's service-account openid.
    pub touser: String,
    pub template_id: String,
    /// A web page opened on tap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<String>,
    /// Wins over `page` when both are set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub miniprogram: Option<MiniProgramLink>,
    pub data: BTreeMap<String, TemplateValue>,
}

/// A legacy mini-program template message (`message/wxopen/template/send`),
/// paid for with a form_id or prepay_id the user produced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormTemplateMessage {
    pub touser: String,
    pub template_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<String>,
    pub form_id: String,
    pub data: BTreeMap<String, TemplateValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emphasis_keyword: Option<String>,
}

/// What WeChat answered to an accepted send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendReceipt {
    /// The id `TEMPLATESENDJOBFINISH` events refer to; template sends always
    /// have one, the mini-program sends only sometimes.
    pub msgid: Option<i64>,
    /// WeChat had this `client_msg_id` already (45065 "clientmsgid exist",
    /// naming the earlier message's id): nothing new reached the user.
    pub repeat: bool,
    /// WeChat took the message for review (40252): it is delivered or
    /// refused later, as its TEMPLATESENDJOBFINISH report says.
    pub in_review: bool,
}

/// The message went to WeChat's content review; a report follows.
pub const IN_REVIEW: i64 = 40252;

/// "clientmsgid exist": a repeated `client_msg_id`, answered with the id of
/// the message WeChat already has (documented for mass sends).
pub const CLIENT_MSG_ID_EXISTS: i64 = 45065;

/// "same clientmsgid retry too fast": try the repeat again in a minute.
pub const CLIENT_MSG_ID_TOO_FAST: i64 = 45066;

impl WechatClient {
    /// Sends a template message to a follower. Values are first cut to
    /// WeChat's limits (see [`fit_template_data`]), since WeChat would cut
    /// them silently and the record should show what was really sent.
    pub async fn send_template(&self, message: &TemplateMessage) -> Result<SendReceipt, WechatError> {
        let mut message = message.clone();
        fit_template_data(&mut message.data);
        let body = serde_json::to_value(&message).map_err(|e| WechatError::Invalid { api: TEMPLATE_SEND, problem: e.to_string() })?;
        let answer = self.call_with_token(Call::post(App::Oa, TEMPLATE_SEND, body).answering(&[CLIENT_MSG_ID_EXISTS, IN_REVIEW])).await?;
        Ok(receipt(&answer))
    }

    /// Sends a subscribe message. Too-long values are not cut: WeChat
    /// rejects them (47003), and that is reported.
    pub async fn send_subscribe(&self, message: &SubscribeMessage) -> Result<SendReceipt, WechatError> {
        self.send(App::Mp, "/cgi-bin/message/subscribe/send", message).await
    }

    /// Sends a service-account subscription notice. WeChat answers without
    /// a msgid; its `subscribe_msg_sent_event` names one later.
    pub async fn send_oa_subscribe(&self, message: &OaSubscribeMessage) -> Result<SendReceipt, WechatError> {
        self.send(App::Oa, OA_SUBSCRIBE_SEND, message).await
    }

    /// The account's subscription-notice templates (`/wxaapi/newtmpl/gettemplate`).
    pub async fn subscription_templates(&self, app: App) -> Result<Vec<SubscriptionTemplate>, WechatError> {
        let answer = self.call_with_token(Call::get(app, SUBSCRIPTION_TEMPLATES, Vec::new())).await?;
        let list = answer.get("data").cloned().unwrap_or(Value::Array(Vec::new()));
        serde_json::from_value(list).map_err(|e| WechatError::Invalid { api: SUBSCRIPTION_TEMPLATES, problem: e.to_string() })
    }

    /// Sends a legacy form-id template message (41028 / 41029: that form_id
    /// is spent, use the next).
    pub async fn send_form_template(&self, message: &FormTemplateMessage) -> Result<SendReceipt, WechatError> {
        self.send(App::Mp, "/cgi-bin/message/wxopen/template/send", message).await
    }

    async fn send(&self, app: App, api: &'static str, message: impl Serialize) -> Result<SendReceipt, WechatError> {
        let body = serde_json::to_value(message).map_err(|e| WechatError::Invalid { api, problem: e.to_string() })?;
        let answer = self.call_with_token(Call::post(app, api, body)).await?;
        Ok(receipt(&answer))
    }
}

const TEMPLATE_SEND: &str = "/cgi-bin/message/template/send";
/// Where service-account subscription notices go.
pub const OA_SUBSCRIBE_SEND: &str = "/cgi-bin/message/subscribe/bizsend";
const SUBSCRIPTION_TEMPLATES: &str = "/wxaapi/newtmpl/gettemplate";

/// One subscription-notice template of the account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionTemplate {
    #[serde(rename = "priTmplId")]
    pub template_id: String,
    pub title: String,
    /// `{{thing1.DATA}}` placeholders, one line each.
    pub content: String,
    #[serde(default)]
    pub example: String,
    /// 2: one-time; 3: long-term.
    #[serde(rename = "type")]
    pub kind: i64,
}

/// The msgid of an answer; WeChat spells it `msgid` on template sends and
/// `msg_id` on the mass-send repeat answer, so both are read.
fn receipt(answer: &Value) -> SendReceipt {
    let msgid = answer.get("msgid").or_else(|| answer.get("msg_id")).and_then(Value::as_i64);
    let errcode = answer.get("errcode").and_then(Value::as_i64);
    SendReceipt { msgid, repeat: errcode == Some(CLIENT_MSG_ID_EXISTS), in_review: errcode == Some(IN_REVIEW) }
}

/// Cuts each value to what its keyword type allows ([`KeywordType::max_chars`]:
/// thing 20, character_string 32, phone_number 17, car_number 8, ...,
/// counted in characters; legacy keys such as `keyword1` 20, WeChat's cut)
/// and replaces line breaks, which WeChat no longer shows. Types without a
/// length limit (time, date, amount, const) are left as they are.
pub fn fit_template_data(data: &mut BTreeMap<String, TemplateValue>) {
    for (key, field) in data.iter_mut() {
        let mut value = rules::without_line_breaks(&field.value);
        let limit = match KeywordType::of_key(key) {
            Some(kind) => kind.max_chars(),
            None => Some(rules::LEGACY_LIMIT),
        };
        if let Some((cut, _)) = limit.and_then(|limit| value.char_indices().nth(limit)) {
            value.truncate(cut);
        }
        field.value = value;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_cut_per_keyword_type_in_characters() {
        let mut data = BTreeMap::new();
        data.insert("thing1".to_string(), TemplateValue::new("一二三四五六七八九十一二三四五六七八九十多余"));
        data.insert("car_number2".to_string(), TemplateValue::new("粤B123456789"));
        data.insert("time3".to_string(), TemplateValue::new("2026-01-01 10:00\nnext"));
        fit_template_data(&mut data);
        assert_eq!(data["thing1"].value.chars().count(), 20);
        assert_eq!(data["car_number2"].value, "粤B123456");
        assert_eq!(data["time3"].value, "2026-01-01 10:00 next");
    }

    #[test]
    fn a_template_message_serializes_to_the_documented_shape() {
        let message = TemplateMessage {
            touser: "o1".into(),
            template_id: "t1".into(),
            url: None,
            miniprogram: Some(MiniProgramLink { appid: "wxmp".into(), pagepath: "pages/index".into() }),
            data: BTreeMap::from([("thing1".to_string(), TemplateValue::new("hi"))]),
            client_msg_id: None,
        };
        let json = serde_json::to_value(&message).unwrap();
        assert_eq!(
            json,
            serde_json::json!({ "touser": "o1", "template_id": "t1",
                "miniprogram": { "appid": "wxmp", "pagepath": "pages/index" },
                "data": { "thing1": { "value": "hi" } } })
        );
    }
}
