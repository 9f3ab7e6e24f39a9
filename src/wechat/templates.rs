//! The service account's template library, API quotas, and template
//! messages held by WeChat's moderation.
//!
//! - `GET /cgi-bin/template/get_all_private_template`: the templates the
//!   account has added, legacy (`{{keyword1.DATA}}`) and category
//!   (`{{thing1.DATA}}`) alike; [`crate::wechat::rules`] reads them.
//! - `POST /cgi-bin/openapi/quota/get`: one API's daily limit and use.
//! - `POST /wxa/sec/queryblocktmplmsg`: template messages WeChat's review
//!   intercepted (a send answered 40252 went to review first).
//!
//! Shapes and errcodes: `docs/wechat.md`, "Template rules and the template
//! library".

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Value, json};

use super::transport::Call;
use super::{App, WechatClient, WechatError};

/// One template of the account's library (模板消息 → 我的模板).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrivateTemplate {
    pub template_id: String,
    pub title: String,
    #[serde(default)]
    pub primary_industry: String,
    #[serde(default)]
    pub deputy_industry: String,
    /// `{{first.DATA}}\n会员卡号:{{keyword1.DATA}}\n{{remark.DATA}}` (legacy) or
    /// `项目名称:{{thing1.DATA}}\n时间:{{time2.DATA}}` (category template).
    pub content: String,
    #[serde(default)]
    pub example: String,
}

/// One API's calls today: WeChat's `quota` object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quota {
    /// Calls this account may make today.
    pub daily_limit: i64,
    /// Calls made today.
    pub used: i64,
    pub remain: i64,
}

/// A template message WeChat's review intercepted, as `queryblocktmplmsg`
/// lists it (its `msginfo` items).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockedMessage {
    /// WeChat's record id, the `largest_id` to page on from.
    pub id: i64,
    /// WeChat's `tmpl_msg_id`, documented as "被拦截的模板消息id"; its example
    /// values have the shape of template ids.
    pub tmpl_msg_id: String,
    /// The template id the list was asked for (the request's `tmpl_msg_id`).
    pub template_id: String,
    pub title: String,
    /// The message as WeChat rendered it.
    pub content: String,
    /// When it was sent, Unix seconds.
    pub send_timestamp: i64,
    /// The follower it was for.
    pub openid: String,
}

/// Most blocked messages one `queryblocktmplmsg` page holds.
pub const BLOCKED_PAGE_LIMIT: i64 = 100;

/// "你正在调用的模板下发的部分内容已进入平台审核流程": the message went to
/// WeChat's review; it is delivered or intercepted later.
pub const IN_REVIEW: i64 = 40252;

const PRIVATE_TEMPLATES: &str = "/cgi-bin/template/get_all_private_template";
const QUOTA: &str = "/cgi-bin/openapi/quota/get";
const BLOCKED: &str = "/wxa/sec/queryblocktmplmsg";

impl WechatClient {
    /// The service account's template library (`get_all_private_template`).
    pub async fn private_templates(&self) -> Result<Vec<PrivateTemplate>, WechatError> {
        let answer = self.call_with_token(Call::get(App::Oa, PRIVATE_TEMPLATES, Vec::new())).await?;
        let list = answer.get("template_list").cloned().unwrap_or(Value::Array(Vec::new()));
        serde_json::from_value(list).map_err(|e| WechatError::Malformed { api: PRIVATE_TEMPLATES, detail: e.to_string() })
    }

    /// Today's limit and use of the API at `cgi_path` (`/cgi-bin/message/template/send`),
    /// asked with `app`'s token, the app the API belongs to (76022 otherwise).
    pub async fn quota(&self, app: App, cgi_path: &str) -> Result<Quota, WechatError> {
        let call = Call::post(app, QUOTA, json!({ "cgi_path": cgi_path })).idempotent();
        let answer = self.call_with_token(call).await?;
        let quota =
            answer.get("quota").cloned().ok_or_else(|| WechatError::Malformed { api: QUOTA, detail: "no quota in the answer".into() })?;
        serde_json::from_value(quota).map_err(|e| WechatError::Malformed { api: QUOTA, detail: e.to_string() })
    }

    /// The messages of `template_id` WeChat's review intercepted, after
    /// record `largest_id` (0 for the first page), at most `limit` (≤ 100).
    pub async fn blocked_messages(&self, template_id: &str, largest_id: i64, limit: i64) -> Result<Vec<BlockedMessage>, WechatError> {
        if !(1..=BLOCKED_PAGE_LIMIT).contains(&limit) {
            return Err(WechatError::Invalid { api: BLOCKED, problem: format!("limit must be 1 to {BLOCKED_PAGE_LIMIT}, not {limit}") });
        }
        let body = json!({ "tmpl_msg_id": template_id, "largest_id": largest_id, "limit": limit });
        let answer = self.call_with_token(Call::post(App::Oa, BLOCKED, body).idempotent()).await?;
        // Documented as one object, meant as a page of them: both are read.
        let items = match answer.get("msginfo") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items.clone(),
            Some(item) => vec![item.clone()],
        };
        items
            .into_iter()
            .map(|item| {
                let wire: BlockedWire =
                    serde_json::from_value(item).map_err(|e| WechatError::Malformed { api: BLOCKED, detail: e.to_string() })?;
                Ok(BlockedMessage {
                    id: wire.id,
                    tmpl_msg_id: wire.tmpl_msg_id,
                    template_id: template_id.to_string(),
                    title: wire.title,
                    content: wire.content,
                    send_timestamp: wire.send_timestamp,
                    openid: wire.openid,
                })
            })
            .collect()
    }
}

#[derive(Deserialize)]
struct BlockedWire {
    /// A number in one version of the page, a string in the other.
    #[serde(deserialize_with = "number_or_text")]
    id: i64,
    #[serde(default)]
    tmpl_msg_id: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    content: String,
    #[serde(default, deserialize_with = "number_or_text")]
    send_timestamp: i64,
    #[serde(default)]
    openid: String,
}

fn number_or_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    match Value::deserialize(deserializer)? {
        Value::Number(n) => n.as_i64().ok_or_else(|| serde::de::Error::custom("not an integer")),
        Value::String(s) => s.parse().map_err(serde::de::Error::custom),
        other => Err(serde::de::Error::custom(format!("expected a number, got {other}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocked_items_read_numbers_and_numeric_text() {
        let wire: BlockedWire = serde_json::from_value(
            json!({ "id": "2", "tmpl_msg_id": "t", "title": "测试标题", "content": "c", "send_timestamp": 1788796187, "openid": "o" }),
        )
        .unwrap();
        assert_eq!((wire.id, wire.send_timestamp), (2, 1788796187));
        let wire: BlockedWire = serde_json::from_value(json!({ "id": 3 })).unwrap();
        assert_eq!(wire.id, 3);
    }

    #[test]
    fn a_template_list_item_reads_without_the_optional_fields() {
        let t: PrivateTemplate =
            serde_json::from_value(json!({ "template_id": "t1", "title": "x", "content": "{{thing1.DATA}}" })).unwrap();
        assert_eq!(t.example, "");
    }
}
