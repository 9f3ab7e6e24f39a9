//! `message_template` rows and their `{{placeholders}}` (see the README's
//! "Sending" section for the list users see).
//!
//! A template's `data` is WeChat's data object with placeholders in the
//! values (`{"thing1":{"value":"{{summary}}"}}`); `page` and `url` may hold
//! placeholders too. Values come from the account (every column), `{{now}}`
//! (in `WXNOTIFY_TIMEZONE`) and what the sender adds: digests `{{summary}}`,
//! `{{total}}` and `{{counts.<type>}}`, real-time notices `{{count}}` and, for
//! one unread row, `{{sender}}`, `{{content}}`, `{{type}}`. A placeholder
//! the sender does not know is an error (a typo must not send a blank), a
//! known one without a value (a NULL column) renders empty. Rendered values
//! are cut to WeChat's keyword limits with line breaks removed.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, QueryResult};
use serde_json::Value;

use super::error::{NotifyError, invalid};
use super::outbox::Channel;
use crate::db::row::nullable;
use crate::db::sql::Sql;
use crate::templates::{Fitted, Library, Overflow};
use crate::wechat::{FormTemplateMessage, MiniProgramLink, OaSubscribeMessage, SubscribeMessage, TemplateMessage, TemplateValue};

/// A `message_template` row.
#[derive(Clone, Debug)]
pub struct MessageTemplate {
    pub name: String,
    pub channel: Channel,
    /// WeChat's template id.
    pub template_id: String,
    pub page: Option<String>,
    pub url: Option<String>,
    pub data: Value,
}

/// Loads the templates named `names` that exist (in no particular order).
pub async fn load_many(db: &impl ConnectionTrait, names: &[&str]) -> Result<Vec<MessageTemplate>, NotifyError> {
    let mut sql = Sql::new("SELECT name, channel, template_id, page, url, CAST(data AS TEXT) AS data FROM message_template WHERE name IN ");
    sql.list(names.iter().map(|n| n.to_string()));
    sql.all(db).await?.iter().map(template_of).collect()
}

/// Every template of `channels`, by name.
pub async fn load_by_channels(db: &impl ConnectionTrait, channels: &[Channel]) -> Result<Vec<MessageTemplate>, NotifyError> {
    let mut sql =
        Sql::new("SELECT name, channel, template_id, page, url, CAST(data AS TEXT) AS data FROM message_template WHERE channel IN ");
    sql.list(channels.iter().map(|c| c.as_str()));
    sql.push(" ORDER BY name");
    sql.all(db).await?.iter().map(template_of).collect()
}

/// Loads the template `name`, or says how to create it.
pub async fn load(db: &impl ConnectionTrait, name: &str) -> Result<MessageTemplate, NotifyError> {
    load_many(db, &[name]).await?.pop().ok_or_else(|| missing(name))
}

pub fn missing(name: &str) -> NotifyError {
    NotifyError::NotFound(format!(
        "message template `{name}` does not exist: insert it into message_template \
         (name, channel OA_TEMPLATE|OA_SUBSCRIBE|MP_SUBSCRIBE|MP_FORM, template_id, data with {{{{placeholders}}}})"
    ))
}

fn template_of(row: &QueryResult) -> Result<MessageTemplate, NotifyError> {
    let name: String = row.try_get("", "name")?;
    let channel: String = row.try_get("", "channel")?;
    let channel = Channel::parse(&channel).ok_or_else(|| {
        invalid(format!("message template `{name}` has channel {channel:?}: use OA_TEMPLATE, OA_SUBSCRIBE, MP_SUBSCRIBE or MP_FORM"))
    })?;
    let data: String = row.try_get("", "data")?;
    let data = serde_json::from_str(&data).map_err(|e| invalid(format!("message template `{name}`: data is not JSON: {e}")))?;
    Ok(MessageTemplate {
        channel,
        template_id: row.try_get("", "template_id")?,
        page: row.try_get("", "page")?,
        url: row.try_get("", "url")?,
        data,
        name,
    })
}

/// The account columns every message can name, in the order
/// [`account_columns`] selects them: the columns of a JSON page of accounts
/// ([`AccountRow::from_json_page`]).
pub const ACCOUNT_COLUMN_NAMES: &str =
    "id, created_at, updated_at, username, nickname, user_status, mp_openid, unionid, oaopenid, oauth2_user_info_map";

/// [`ACCOUNT_COLUMN_NAMES`] selected from `alias` (the login map as text).
pub fn account_columns(alias: &str) -> String {
    let column = |name: &str| match name {
        "oauth2_user_info_map" => format!("CAST({alias}.{name} AS TEXT) AS {name}"),
        _ => format!("{alias}.{name}"),
    };
    ACCOUNT_COLUMN_NAMES.split(", ").map(column).collect::<Vec<_>>().join(", ")
}

/// One account as placeholders see it.
#[derive(Clone, Debug, Default)]
pub struct AccountRow {
    pub id: i64,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    pub username: Option<String>,
    pub nickname: Option<String>,
    pub user_status: Option<String>,
    pub mp_openid: Option<String>,
    pub unionid: Option<String>,
    pub oaopenid: Option<String>,
    pub oauth2_user_info_map: Option<String>,
}

impl AccountRow {
    /// Reads the columns of [`account_columns`].
    pub fn from_row(row: &QueryResult) -> Result<AccountRow, sea_orm::DbErr> {
        // Most of these are NULL for many accounts: read without SeaORM's
        // error per NULL (see `db::row`).
        Ok(AccountRow {
            id: row.try_get("", "id")?,
            created_at: nullable(row, "created_at")?,
            updated_at: nullable(row, "updated_at")?,
            username: nullable(row, "username")?,
            nickname: nullable(row, "nickname")?,
            user_status: nullable(row, "user_status")?,
            mp_openid: nullable(row, "mp_openid")?,
            unionid: nullable(row, "unionid")?,
            oaopenid: nullable(row, "oaopenid")?,
            oauth2_user_info_map: nullable(row, "oauth2_user_info_map")?,
        })
    }

    /// The accounts of one JSON page of [`ACCOUNT_COLUMN_NAMES`] arrays, by id. `None` when a
    /// value is not what [`AccountRow::from_row`] would read the same way
    /// (a column holding a number, a time in another form than the two read
    /// here): the caller then reads the rows.
    pub fn from_json_page(page: &str) -> Option<Vec<AccountRow>> {
        type Text = Option<String>;
        type Columns = (i64, Text, Text, Text, Text, Text, Text, Text, Text, Text);
        let rows: Vec<Columns> = serde_json::from_str(page).ok()?;
        let mut accounts = rows
            .into_iter()
            .map(|(id, created_at, updated_at, username, nickname, user_status, mp_openid, unionid, oaopenid, map)| {
                Some(AccountRow {
                    id,
                    created_at: sqlite_time(created_at)?,
                    updated_at: sqlite_time(updated_at)?,
                    username,
                    nickname,
                    user_status,
                    mp_openid,
                    unionid,
                    oaopenid,
                    oauth2_user_info_map: map,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        accounts.sort_unstable_by_key(|a| a.id);
        Some(accounts)
    }
}

/// A time stored as SQLite text, read as its driver reads the two forms
/// written here: RFC 3339 (what the driver writes) and SQLite's own
/// `YYYY-MM-DD HH:MM:SS[.fff]` in UTC (`CURRENT_TIMESTAMP`). `None` for any
/// other form, which only the driver reads.
fn sqlite_time(text: Option<String>) -> Option<Option<DateTime<Utc>>> {
    let Some(text) = text else {
        return Some(None);
    };
    if let Ok(time) = DateTime::parse_from_rfc3339(&text) {
        return Some(Some(time.with_timezone(&Utc)));
    }
    chrono::NaiveDateTime::parse_from_str(&text, "%F %T%.f").ok().map(|time| Some(time.and_utc()))
}

/// The values one message's placeholders take. `None` is a known
/// placeholder without a value.
#[derive(Clone, Debug, Default)]
pub struct Placeholders {
    values: BTreeMap<String, Option<String>>,
    /// Digest counts per type; `{{counts.<type>}}` of a type not present is 0.
    counts: Option<BTreeMap<String, i64>>,
}

impl Placeholders {
    /// The account's columns and `{{now}}`.
    pub fn for_account(account: &AccountRow, now: DateTime<Utc>, tz: chrono_tz::Tz) -> Placeholders {
        let time = |t: Option<DateTime<Utc>>| t.map(|t| format_time(t, tz));
        let mut p = Placeholders::default();
        p.set("id", Some(account.id.to_string()));
        p.set("created_at", time(account.created_at));
        p.set("updated_at", time(account.updated_at));
        p.set("username", account.username.clone());
        p.set("nickname", account.nickname.clone());
        p.set("user_status", account.user_status.clone());
        p.set("mp_openid", account.mp_openid.clone());
        p.set("unionid", account.unionid.clone());
        p.set("oaopenid", account.oaopenid.clone());
        p.set("oauth2_user_info_map", account.oauth2_user_info_map.clone());
        p.set("now", Some(format_time(now, tz)));
        p
    }

    pub fn set(&mut self, name: &str, value: Option<String>) {
        self.values.insert(name.to_string(), value);
    }

    /// Makes `{{counts.<type>}}` known, with these counts.
    pub fn set_counts(&mut self, counts: BTreeMap<String, i64>) {
        self.counts = Some(counts);
    }

    fn value(&self, name: &str) -> Option<String> {
        if let (Some(kind), Some(counts)) = (name.strip_prefix("counts."), &self.counts) {
            return Some(counts.get(kind).copied().unwrap_or(0).to_string());
        }
        self.values.get(name).map(|v| v.clone().unwrap_or_default())
    }

    fn known(&self) -> String {
        let mut names: Vec<String> = self.values.keys().map(|k| format!("{{{{{k}}}}}")).collect();
        if self.counts.is_some() {
            names.push("{{counts.<type>}}".into());
        }
        names.join(", ")
    }
}

/// `2026-11-21 09:30` in the configured zone.
pub fn format_time(t: DateTime<Utc>, tz: chrono_tz::Tz) -> String {
    t.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string()
}

/// Replaces every `{{name}}` in `text`.
pub fn fill(text: &str, values: &Placeholders) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err(format!("`{{{{` without `}}}}` in {text:?}"));
        };
        let name = after[..end].trim();
        let value = values.value(name).ok_or_else(|| format!("{{{{{name}}}}} is not a placeholder here (known: {})", values.known()))?;
        out.push_str(&value);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// A template filled for one recipient, values already cut to WeChat's limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    pub template_id: String,
    pub data: BTreeMap<String, TemplateValue>,
    pub page: Option<String>,
    pub url: Option<String>,
    /// What checking the values against the template found (cuts, or why
    /// WeChat would refuse the message).
    pub fitted: Fitted,
}

/// Fills `template` with `values`, its values fitted by their key's
/// prefix (for a template the library does not know).
pub fn render(template: &MessageTemplate, values: &Placeholders) -> Result<Rendered, NotifyError> {
    render_with(template, values, &Library::default(), Overflow::Cut)
}

/// Fills `template` with `values` and fits them to the synced template of
/// `library` (see [`crate::templates::Library::fit`]).
pub fn render_with(
    template: &MessageTemplate,
    values: &Placeholders,
    library: &Library,
    overflow: Overflow,
) -> Result<Rendered, NotifyError> {
    let wrong = |problem: String| invalid(format!("message template `{}`: {problem}", template.name));
    let Value::Object(entries) = &template.data else {
        return Err(wrong("data must be an object like {\"thing1\":{\"value\":\"{{summary}}\"}}".into()));
    };
    let mut data = BTreeMap::new();
    for (key, entry) in entries {
        let (text, color) = match entry {
            Value::String(text) => (text.as_str(), None),
            Value::Object(field) => match field.get("value") {
                Some(Value::String(text)) => (text.as_str(), field.get("color").and_then(Value::as_str).map(str::to_string)),
                _ => return Err(wrong(format!("data.{key}.value must be a string"))),
            },
            _ => return Err(wrong(format!("data.{key} must be {{\"value\": \"...\"}}"))),
        };
        let value = fill(text, values).map_err(|e| wrong(format!("data.{key}: {e}")))?;
        data.insert(key.clone(), TemplateValue { value, color });
    }
    let fitted = library.fit(template.channel, &template.template_id, &mut data, overflow);
    let optional =
        |text: &Option<String>, what: &str| text.as_deref().map(|t| fill(t, values).map_err(|e| wrong(format!("{what}: {e}")))).transpose();
    Ok(Rendered {
        template_id: template.template_id.clone(),
        data,
        page: optional(&template.page, "page")?.filter(|p| !p.is_empty()),
        url: optional(&template.url, "url")?.filter(|u| !u.is_empty()),
        fitted,
    })
}

impl Rendered {
    /// A service-account template message; the page opens in the
    /// mini-program when its appid is configured, else `url` opens.
    /// `client_msg_id` lets WeChat drop a resend of the same message.
    pub fn template_message(self, touser: &str, mp_appid: Option<&str>, client_msg_id: &str) -> TemplateMessage {
        let miniprogram = match (mp_appid, self.page) {
            (Some(appid), Some(pagepath)) => Some(MiniProgramLink { appid: appid.to_string(), pagepath }),
            _ => None,
        };
        TemplateMessage {
            touser: touser.to_string(),
            template_id: self.template_id,
            url: self.url,
            miniprogram,
            data: self.data,
            client_msg_id: Some(client_msg_id.to_string()),
        }
    }

    /// A service-account subscription notice: the page opens in the
    /// mini-program when one is configured, else `url` as a web page.
    pub fn oa_subscribe_message(self, touser: &str, mp_appid: Option<&str>) -> OaSubscribeMessage {
        let (miniprogram, page) = match (mp_appid, self.page) {
            (Some(appid), Some(pagepath)) => (Some(MiniProgramLink { appid: appid.to_string(), pagepath }), None),
            (_, _) => (None, self.url),
        };
        OaSubscribeMessage { touser: touser.to_string(), template_id: self.template_id, page, miniprogram, data: self.data }
    }

    pub fn subscribe_message(self, touser: &str) -> SubscribeMessage {
        SubscribeMessage {
            touser: touser.to_string(),
            template_id: self.template_id,
            page: self.page,
            data: self.data,
            miniprogram_state: None,
            lang: None,
        }
    }

    pub fn form_message(self, touser: &str, form_id: &str) -> FormTemplateMessage {
        FormTemplateMessage {
            touser: touser.to_string(),
            template_id: self.template_id,
            page: self.page,
            form_id: form_id.to_string(),
            data: self.data,
            emphasis_keyword: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(data: Value) -> MessageTemplate {
        MessageTemplate {
            name: "t".into(),
            channel: Channel::OaTemplate,
            template_id: "tid".into(),
            page: Some("pages/chat?id={{id}}".into()),
            url: None,
            data,
        }
    }

    fn values() -> Placeholders {
        let account = AccountRow { id: 7, nickname: Some("小明".into()), ..AccountRow::default() };
        let now = DateTime::parse_from_rfc3339("2026-11-21T01:30:00Z").unwrap().with_timezone(&Utc);
        let mut p = Placeholders::for_account(&account, now, chrono_tz::Asia::Shanghai);
        p.set_counts(BTreeMap::from([("聊天".to_string(), 3)]));
        p.set("summary", Some("聊天3条".into()));
        p
    }

    #[test]
    fn placeholders_fill_from_the_account_counts_and_the_time_zone() {
        let data = serde_json::json!({
            "thing1": {"value": "{{ nickname }}：{{summary}}"},
            "time2": {"value": "{{now}}"},
            "number3": "{{counts.聊天}}/{{counts.投递邀约}}",
            "thing4": {"value": "{{user_status}}"}
        });
        let rendered = render(&template(data), &values()).unwrap();
        assert_eq!(rendered.data["thing1"].value, "小明：聊天3条");
        assert_eq!(rendered.data["time2"].value, "2026-11-21 09:30");
        assert_eq!(rendered.data["number3"].value, "3/0");
        assert_eq!(rendered.data["thing4"].value, "", "a NULL column renders empty");
        assert_eq!(rendered.page.as_deref(), Some("pages/chat?id=7"));
    }

    #[test]
    fn values_are_cut_to_wechat_limits_without_line_breaks() {
        let mut p = values();
        p.set("content", Some("第一行\n第二行很长很长很长很长很长很长很长很长很长很长".into()));
        let data = serde_json::json!({"thing1": {"value": "{{content}}"}, "character_string2": {"value": "{{content}}{{content}}"}});
        let rendered = render(&template(data), &p).unwrap();
        assert_eq!(rendered.data["thing1"].value.chars().count(), 20);
        assert!(!rendered.data["thing1"].value.contains('\n'));
        assert!(rendered.data["thing1"].value.starts_with("第一行 第二行"));
        assert_eq!(rendered.data["character_string2"].value.chars().count(), 32);
    }

    #[test]
    fn an_unknown_placeholder_is_an_error_naming_it() {
        let err = render(&template(serde_json::json!({"thing1": {"value": "{{nick_name}}"}})), &values()).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("{{nick_name}} is not a placeholder") && text.contains("{{nickname}}"), "{text}");
        let err = render(&template(serde_json::json!({"thing1": {"value": "{{oops"}})), &values()).unwrap_err();
        assert!(err.to_string().contains("without"), "{err}");
        let err = render(&template(serde_json::json!(["x"])), &values()).unwrap_err();
        assert!(err.to_string().contains("must be an object"), "{err}");
    }
}
