//! The templates WeChat accepts: the account's template library, synced
//! into `wechat_template` (this module owns it), the rules of each keyword
//! type ([`rules`]), and the two checks made with them:
//!
//! - saving a `message_template` (through GraphQL) checks its `data` keys
//!   against the synced template: an unknown or missing key, a constant
//!   value that breaks its keyword's rule, `first`/`remark` on a category
//!   template are refused, naming the key ([`check_message_template`]);
//! - every rendered message is fitted before it is queued
//!   ([`Library::fit`]): a legacy template's values are cut the way WeChat
//!   would cut them, and the cut recorded; a category template's overlong
//!   values are cut on a character boundary with an ellipsis when
//!   `WXNOTIFY_TEMPLATE_OVERFLOW=cut` (the default), and any value WeChat
//!   would refuse (47003) makes that recipient's delivery FAILED with the
//!   reason, without a call.
//!
//! A template the library does not know (never synced) is sent as before,
//! with values cut by their key's prefix.
//!
//! [`rules`] (`crate::wechat::rules`, since they are WeChat's facts and the
//! client cuts by them too) holds WeChat's value rules per keyword type as
//! pure functions; the client calls for the template lists, quotas and
//! moderation are in [`crate::wechat::templates`]; `docs/wechat.md`
//! ("Template rules and the template library") says where each rule comes
//! from.

pub mod cli;
mod graphql;
pub use crate::wechat::rules;

pub use graphql::operations;

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::Utc;
use sea_orm::{ConnectionTrait, DbErr};
use serde_json::{Value, json};

use crate::db::sql::Sql;
use crate::delivery::Channel;
use crate::error::CodedError;
use crate::services::Services;
pub use crate::settings::Overflow;
use crate::wechat::{App, TemplateValue, WechatError};
use rules::KeywordType;

/// How WeChat treats a template's values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TemplateKind {
    /// `keyword1...`, `first`, `remark`: WeChat cuts overlong values.
    Legacy,
    /// Typed keywords (`thing1`, `time2`, ...): WeChat refuses a value that
    /// breaks its type's rule (47003).
    Category,
}

impl TemplateKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TemplateKind::Legacy => "LEGACY",
            TemplateKind::Category => "CATEGORY",
        }
    }
}

/// One placeholder of a template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keyword {
    pub key: String,
    /// `None` for a legacy key (`keyword1`, `first`, `remark`).
    pub kind: Option<KeywordType>,
}

/// A template as the library knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Synced {
    pub template_id: String,
    pub channel: Channel,
    pub kind: TemplateKind,
    pub title: String,
    pub content: String,
    pub example: String,
    pub keywords: Vec<Keyword>,
}

impl Synced {
    /// Reads a template's kind and keywords from its content. A template
    /// any of whose keys is untyped (`keyword1`, `first`) is legacy.
    pub fn from_content(template_id: &str, channel: Channel, title: &str, content: &str, example: &str) -> Synced {
        let keywords: Vec<Keyword> =
            rules::placeholders(content).into_iter().map(|key| Keyword { kind: KeywordType::of_key(&key), key }).collect();
        let legacy = channel == Channel::OaTemplate && (keywords.is_empty() || keywords.iter().any(|k| k.kind.is_none()));
        Synced {
            template_id: template_id.to_string(),
            channel,
            kind: if legacy { TemplateKind::Legacy } else { TemplateKind::Category },
            title: title.to_string(),
            content: content.to_string(),
            example: example.to_string(),
            keywords,
        }
    }

    fn keys(&self) -> Vec<&str> {
        self.keywords.iter().map(|k| k.key.as_str()).collect()
    }

    fn keyword(&self, key: &str) -> Option<&Keyword> {
        self.keywords.iter().find(|k| k.key == key)
    }

    /// The content as the user reads it, each placeholder filled.
    pub fn filled(&self, data: &BTreeMap<String, TemplateValue>) -> String {
        let mut text = self.content.clone();
        for keyword in &self.keywords {
            let value = data.get(&keyword.key).map(|v| v.value.as_str()).unwrap_or_default();
            text = text.replace(&format!("{{{{{}.DATA}}}}", keyword.key), value);
        }
        text
    }
}

/// What checking one message against its template found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fitted {
    /// Why it must not be sent (WeChat would refuse it).
    pub refused: Option<String>,
    /// What was cut, for the delivery's `notes`.
    pub notes: Option<String>,
    /// The keys whose values were cut.
    pub cut: Vec<String>,
}

/// The synced templates still in WeChat's lists, by id.
#[derive(Clone, Debug, Default)]
pub struct Library {
    templates: HashMap<String, Synced>,
    /// Channels a sync has seen templates of (so a template of that channel
    /// missing from the library is an error, not merely unsynced).
    channels: HashSet<Channel>,
}

impl Library {
    pub async fn load(db: &impl ConnectionTrait) -> Result<Library, DbErr> {
        let rows = Sql::new("SELECT template_id, channel, title, content, example, removed_at IS NULL AS live FROM wechat_template")
            .all(db)
            .await?;
        let mut library = Library::default();
        for row in rows {
            let Some(channel) = Channel::parse(&row.try_get::<String>("", "channel")?) else { continue };
            library.channels.insert(channel);
            if !row.try_get::<bool>("", "live")? {
                continue;
            }
            let template_id: String = row.try_get("", "template_id")?;
            let synced = Synced::from_content(
                &template_id,
                channel,
                &row.try_get::<String>("", "title")?,
                &row.try_get::<String>("", "content")?,
                &row.try_get::<String>("", "example")?,
            );
            library.templates.insert(template_id, synced);
        }
        Ok(library)
    }

    pub fn get(&self, template_id: &str) -> Option<&Synced> {
        self.templates.get(template_id)
    }

    /// The template a message of `channel` names, when the library knows
    /// that channel's templates; `Err` when it should know it and does not.
    pub fn lookup(&self, channel: Channel, template_id: &str) -> Result<Option<&Synced>, String> {
        match self.templates.get(template_id) {
            Some(t) => Ok(Some(t)),
            None if self.channels.contains(&channel) => Err(format!(
                "template_id {template_id} is not in the account's {} template library (removed, or never added): \
                 run syncTemplates after adding it in the WeChat admin, or use a template it lists",
                channel.as_str()
            )),
            None => Ok(None),
        }
    }

    /// Checks `data` (already filled) against its template and fits it:
    /// legacy values cut as WeChat would; category values checked by their
    /// type, overlong ones cut with an ellipsis or refused per `overflow`.
    /// A template the library does not know keeps today's prefix cutting.
    pub fn fit(&self, channel: Channel, template_id: &str, data: &mut BTreeMap<String, TemplateValue>, overflow: Overflow) -> Fitted {
        let template = match self.lookup(channel, template_id) {
            Ok(Some(template)) => template,
            Ok(None) => {
                crate::wechat::send::fit_template_data(data);
                return Fitted::default();
            }
            Err(problem) => return Fitted { refused: Some(problem), ..Fitted::default() },
        };
        let mut fitted = Fitted::default();
        let mut notes = Vec::new();
        for (key, field) in data.iter_mut() {
            let keyword = template.keyword(key);
            match (template.kind, keyword.and_then(|k| k.kind)) {
                (TemplateKind::Legacy, _) | (_, None) => {
                    let (value, changed) = rules::cut_like_wechat(&field.value);
                    if changed {
                        notes.push(format!("{key} cut to \"{value}\" as WeChat would"));
                        fitted.cut.push(key.clone());
                        field.value = value;
                    }
                }
                (TemplateKind::Category, Some(kind)) => match rules::check(key, kind, &field.value) {
                    Ok(()) => {}
                    Err(violation) if violation.rule == rules::Rule::TooLong && overflow == Overflow::Cut => {
                        match rules::cut(kind, &field.value) {
                            Some(value) => {
                                notes.push(format!("{key} cut to \"{value}\" ({violation})"));
                                fitted.cut.push(key.clone());
                                field.value = value;
                            }
                            None => {
                                fitted.refused.get_or_insert(format!("not sent, WeChat would refuse it (47003): {violation}"));
                            }
                        }
                    }
                    Err(violation) => {
                        fitted.refused.get_or_insert(format!("not sent, WeChat would refuse it (47003): {violation}"));
                    }
                },
            }
        }
        // WeChat refuses a category template's foreign keys (47003) and
        // ignores a legacy one's; a missing key it shows empty.
        if template.kind == TemplateKind::Category
            && let Some(problem) = template_problems(template, data.keys().map(String::as_str), false).into_iter().next()
        {
            fitted.refused.get_or_insert(format!("not sent, WeChat would refuse it (47003): {problem}"));
        }
        if !notes.is_empty() {
            fitted.notes = Some(notes.join("; "));
        }
        fitted
    }
}

/// Keys a message gives that its template does not take, and (with
/// `missing`) keys it lacks: `first`/`remark` are optional on legacy
/// templates and refused on category ones; a `const` keyword is the
/// template's own.
fn template_problems<'a>(template: &Synced, keys: impl Iterator<Item = &'a str>, missing: bool) -> Vec<String> {
    let given: Vec<&str> = keys.collect();
    let known = template.keys().join(", ");
    let mut problems = Vec::new();
    for key in &given {
        match template.keyword(key) {
            None if template.kind == TemplateKind::Category && matches!(*key, "first" | "remark") => problems.push(format!(
                "data.{key}: template {} ({}) is a category template, which has no {key} line (WeChat shows none since 2023): remove it",
                template.template_id, template.title
            )),
            None => problems.push(format!(
                "data.{key} is not a keyword of template {} ({}); its keywords are {known}",
                template.template_id, template.title
            )),
            Some(Keyword { kind: Some(KeywordType::Const), .. }) => {
                problems.push(format!("data.{key} is a const keyword of template {}: WeChat fills it, remove it", template.template_id))
            }
            Some(_) => {}
        }
    }
    for keyword in template.keywords.iter().filter(|_| missing) {
        let optional = matches!(keyword.key.as_str(), "first" | "remark") || keyword.kind == Some(KeywordType::Const);
        if !optional && !given.contains(&keyword.key.as_str()) {
            problems.push(format!(
                "data lacks {}, a keyword of template {} ({}); its keywords are {known}",
                keyword.key, template.template_id, template.title
            ));
        }
    }
    problems
}

/// Checks one saved `message_template` row (channel, template_id, data)
/// against the library: the keys, and each value with no placeholder in it
/// (a constant part) against its keyword's rule. `Err` names the key.
pub fn check_message_template(library: &Library, name: &str, channel: &str, template_id: &str, data: &Value) -> Result<(), String> {
    let Some(channel) = Channel::parse(channel) else {
        return Err(format!(
            "message_template `{name}`: channel {channel:?} is not one of OA_TEMPLATE, OA_SUBSCRIBE, MP_SUBSCRIBE, MP_FORM"
        ));
    };
    let template = match library.lookup(channel, template_id) {
        Ok(Some(template)) => template,
        Ok(None) => return Ok(()),
        Err(problem) => return Err(format!("message_template `{name}`: {problem}")),
    };
    let Some(entries) = data.as_object() else {
        return Err(format!("message_template `{name}`: data must be an object like {{\"thing1\":{{\"value\":\"{{{{summary}}}}\"}}}}"));
    };
    if let Some(problem) = template_problems(template, entries.keys().map(String::as_str), true).into_iter().next() {
        return Err(format!("message_template `{name}`: {problem}"));
    }
    for (key, entry) in entries {
        let value = entry.get("value").and_then(Value::as_str).or_else(|| entry.as_str()).unwrap_or_default();
        let kind = template.keyword(key).and_then(|k| k.kind);
        if let (TemplateKind::Category, Some(kind), false) = (template.kind, kind, value.contains("{{")) {
            rules::check(key, kind, value).map_err(|v| format!("message_template `{name}`: {v}"))?;
        }
    }
    Ok(())
}

/// The `message_template` rows written in the current transaction (`ids`
/// on SQLite; on PostgreSQL the rows this transaction wrote), checked
/// against the library. Called by the table engine before it commits.
pub async fn check_written(db: &sea_orm::DatabaseTransaction, ids: Option<&[i64]>) -> Result<(), String> {
    let fail = |e: DbErr| {
        tracing::error!(error = %e, "could not check message templates against the library");
        "the message template could not be checked against the template library; the server log has the details".to_string()
    };
    let library = Library::load(db).await.map_err(fail)?;
    if library.channels.is_empty() {
        return Ok(());
    }
    let mut sql = Sql::new("SELECT name, channel, template_id, CAST(data AS TEXT) AS data FROM message_template WHERE ");
    match ids {
        Some([]) => return Ok(()),
        Some(ids) => {
            sql.push("id IN ").list(ids.iter().copied());
        }
        // Rows this transaction inserted or updated carry its id as xmin.
        None => {
            sql.push("xmin::text = (txid_current() % 4294967296)::text");
        }
    }
    for row in sql.all(db).await.map_err(fail)? {
        let get = |c: &str| row.try_get::<String>("", c);
        let (name, channel, template_id, data) =
            (get("name").map_err(fail)?, get("channel").map_err(fail)?, get("template_id").map_err(fail)?, get("data").map_err(fail)?);
        let data: Value = serde_json::from_str(&data).unwrap_or(Value::Null);
        check_message_template(&library, &name, &channel, &template_id, &data)?;
    }
    Ok(())
}

/// What a template sync found.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SyncReport {
    /// Templates WeChat listed.
    pub listed: u64,
    pub added: u64,
    pub updated: u64,
    /// Gone from WeChat's list: marked, not deleted.
    pub removed: u64,
    /// Lists that could not be read (an app not configured, or without
    /// subscription messages), and why.
    pub skipped: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error(transparent)]
    Wechat(#[from] WechatError),
    #[error("the database failed while syncing templates; the server log has the details")]
    Database(#[from] DbErr),
}

impl CodedError for TemplateError {
    fn code(&self) -> &'static str {
        match self {
            TemplateError::Wechat(e) => e.code(),
            TemplateError::Database(_) => "unexpected",
        }
    }

    fn unexpected_cause(&self) -> Option<String> {
        match self {
            TemplateError::Database(e) => Some(e.to_string()),
            TemplateError::Wechat(_) => None,
        }
    }
}

/// Reads the account's template library from WeChat into `wechat_template`:
/// the service account's template messages (`get_all_private_template`)
/// and both apps' subscription templates (`/wxaapi/newtmpl/gettemplate`).
/// A list that cannot be read is skipped and said; a template gone from a
/// list that was read is marked removed.
pub async fn sync(services: &Services) -> Result<SyncReport, TemplateError> {
    let wechat = &services.wechat;
    let mut report = SyncReport::default();
    let mut lists: Vec<(Channel, Vec<Synced>)> = Vec::new();
    if wechat.require(App::Oa).is_ok() {
        let listed = wechat.private_templates().await?;
        lists.push((
            Channel::OaTemplate,
            listed.iter().map(|t| Synced::from_content(&t.template_id, Channel::OaTemplate, &t.title, &t.content, &t.example)).collect(),
        ));
    } else {
        report.skipped.push("OA_TEMPLATE: the service account is not configured (WXNOTIFY_OA_APPID, WXNOTIFY_OA_SECRET)".into());
    }
    for (channel, app) in [(Channel::OaSubscribe, App::Oa), (Channel::MpSubscribe, App::Mp)] {
        if wechat.require(app).is_err() {
            report.skipped.push(format!("{}: the {app:?} app is not configured", channel.as_str()));
            continue;
        }
        match wechat.subscription_templates(app).await {
            Ok(listed) => lists.push((
                channel,
                listed.iter().map(|t| Synced::from_content(&t.template_id, channel, &t.title, &t.content, &t.example)).collect(),
            )),
            // An account without subscription messages answers with an errcode, not a list.
            Err(e @ WechatError::Api { .. }) => report.skipped.push(format!("{}: {e}", channel.as_str())),
            Err(e) => return Err(e.into()),
        }
    }
    let now = Utc::now();
    let db = &services.db;
    for (channel, templates) in &lists {
        report.listed += templates.len() as u64;
        for t in templates {
            let keywords: Vec<Value> =
                t.keywords.iter().map(|k| json!({ "key": k.key, "type": k.kind.map(KeywordType::as_str) })).collect();
            let mut sql = Sql::new(
                "INSERT INTO wechat_template (created_at, updated_at, template_id, channel, kind, title, content, example, keywords, synced_at, removed_at) VALUES (",
            );
            let now_p = sql.param(now);
            sql.push(&format!("{now_p}, {now_p}, ")).bind(t.template_id.clone()).push(", ").bind(channel.as_str()).push(", ");
            sql.bind(t.kind.as_str()).push(", ").bind(t.title.clone()).push(", ").bind(t.content.clone()).push(", ");
            sql.bind(t.example.clone()).push(", ").bind(Value::Array(keywords)).push(&format!(", {now_p}, NULL)"));
            sql.push(" ON CONFLICT (template_id) DO UPDATE SET channel = excluded.channel, kind = excluded.kind, title = excluded.title, \
                      content = excluded.content, example = excluded.example, keywords = excluded.keywords, synced_at = excluded.synced_at, \
                      removed_at = NULL, updated_at = excluded.updated_at \
                      WHERE wechat_template.content <> excluded.content OR wechat_template.title <> excluded.title \
                      OR wechat_template.channel <> excluded.channel OR wechat_template.removed_at IS NOT NULL \
                      RETURNING (created_at = updated_at) AS added");
            match sql.one(db).await? {
                Some(row) if row.try_get::<bool>("", "added")? => report.added += 1,
                Some(_) => report.updated += 1,
                None => {}
            }
        }
        let mut gone = Sql::new("UPDATE wechat_template SET removed_at = ");
        gone.bind(now).push(", updated_at = ").bind(now).push(" WHERE channel = ").bind(channel.as_str()).push(" AND removed_at IS NULL");
        if !templates.is_empty() {
            gone.push(" AND template_id NOT IN ").list(templates.iter().map(|t| t.template_id.clone()));
        }
        report.removed += gone.execute(db).await?;
        let mut seen = Sql::new("UPDATE wechat_template SET synced_at = ");
        seen.bind(now).push(" WHERE channel = ").bind(channel.as_str()).push(" AND removed_at IS NULL");
        seen.execute(db).await?;
    }
    tracing::info!(?report, "template library synced");
    Ok(report)
}

/// The daily quotas `doctor` and `/metrics` show: template sends, and the
/// follower calls a sync makes.
pub const QUOTA_PATHS: [&str; 3] = ["/cgi-bin/message/template/send", "/cgi-bin/user/get", "/cgi-bin/user/info/batchget"];

/// What WeChat says is left today of each of [`QUOTA_PATHS`]
/// (`/cgi-bin/openapi/quota/get`), each recorded as the gauges
/// `wxnotify_wechat_quota_remaining{api}` and `wxnotify_wechat_quota_daily_limit{api}`.
pub async fn quotas(wechat: &crate::wechat::WechatClient) -> Vec<(&'static str, Result<crate::wechat::templates::Quota, WechatError>)> {
    let mut out = Vec::new();
    for path in QUOTA_PATHS {
        let quota = wechat.quota(App::Oa, path).await;
        if let Ok(q) = &quota {
            record_quota(path, q);
        }
        out.push((path, quota));
    }
    out
}

/// Reads the quotas every `every` while the server runs, for `/metrics`
/// (only when the service account is configured; `doctor` and each digest
/// read them too). The first reading waits one interval, so a starting
/// server makes no WeChat call of its own.
pub fn spawn_quota_watch(services: std::sync::Arc<Services>, every: std::time::Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if services.wechat.require(App::Oa).is_err() {
            return;
        }
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = services.stopping.cancelled() => break,
            }
            for (path, quota) in quotas(&services.wechat).await {
                if let Err(e) = quota {
                    tracing::debug!(error = %e, path, "could not read a WeChat quota for /metrics");
                }
            }
        }
    })
}

/// Records one quota reading as the `/metrics` gauges.
pub fn record_quota(path: &str, quota: &crate::wechat::templates::Quota) {
    ::metrics::gauge!("wxnotify_wechat_quota_remaining", "api" => path.to_string()).set(quota.remain as f64);
    ::metrics::gauge!("wxnotify_wechat_quota_daily_limit", "api" => path.to_string()).set(quota.daily_limit as f64);
}
