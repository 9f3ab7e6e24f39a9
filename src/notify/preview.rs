//! `previewMessage`: what a message would be for one account, sent or
//! queued nowhere. The channel is the one `WXNOTIFY_CHANNEL_ORDER` would
//! pick (a credit route only if the account holds a credit, none spent);
//! the placeholders are every one a digest or a real-time notice knows,
//! from the account's unread rows; the values are fitted to the synced
//! template as a send would fit them; the content is the template's text
//! as the user would read it; the problems are what checking found.

use std::collections::BTreeMap;

use chrono::Utc;
use serde_json::Value;

use super::credits::{self, CreditKind};
use super::digest::{self, Candidate};
use super::error::NotifyError;
use super::outbox::Channel;
use super::realtime;
use super::render::{self, MessageTemplate};
use super::route;
use crate::db::sql::Sql;
use crate::services::Services;
use crate::templates::{self, Library};

/// What `previewMessage` answers.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Preview {
    pub channel: String,
    pub template_id: String,
    /// The request body WeChat would get.
    pub payload: Value,
    /// The template's content filled in, as the user would read it.
    pub content: String,
    /// What checking found; empty when the message would go as shown.
    pub problems: Vec<String>,
    /// The keys whose values were cut to fit.
    pub cut: Vec<String>,
    /// False when WeChat would refuse it, or nothing reaches the account.
    pub sendable: bool,
}

pub async fn preview(services: &Services, name: &str, account_id: i64) -> Result<Preview, NotifyError> {
    let db = &services.db;
    let account = realtime::load_account(db, account_id).await?;
    let templates = route::templates(db, name).await?;
    let ordered = route::by_order(&templates, &services.settings.channel_order);
    let mut problems = Vec::new();
    let reachable = route::reachable(&ordered, &account);
    let mut chosen: Option<MessageTemplate> = None;
    for template in &reachable {
        if template.channel == Channel::OaTemplate || has_credit(services, account_id, template).await? {
            chosen = Some(template.clone());
            break;
        }
    }
    let sendable_route = chosen.is_some();
    let template = match chosen.or_else(|| ordered.first().cloned()).or_else(|| templates.first().cloned()) {
        Some(template) => template,
        None => return Err(render::missing(name)),
    };
    if !sendable_route {
        problems.push(format!(
            "nothing reaches account {account_id} now: it does not follow the service account and holds no credit for `{name}`'s other channels; shown as `{}` would be",
            template.name
        ));
    }
    let library = Library::load(db).await?;
    if let Err(problem) =
        templates::check_message_template(&library, &template.name, template.channel.as_str(), &template.template_id, &template.data)
    {
        problems.push(problem);
    }
    let now = Utc::now();
    let tz = services.settings.timezone;
    let mut values =
        digest::placeholders(&Candidate { account: account.clone(), counts: unread_counts(services, account_id).await? }, now, tz);
    if let Some(unread) = realtime::latest_unread(db, account_id).await? {
        values.set("count", Some(unread.count.to_string()));
        if unread.count == 1 {
            values.set("sender", unread.sender.clone());
            values.set("content", unread.content.clone());
            values.set("type", unread.kind.clone());
        }
    }
    let rendered = render::render_with(&template, &values, &library, services.settings.template_overflow)?;
    let fitted = rendered.fitted.clone();
    if let Some(reason) = &fitted.refused {
        problems.push(reason.clone());
    }
    if let Some(notes) = &fitted.notes {
        problems.push(format!("values cut to fit: {notes}"));
    }
    let content = match library.get(&template.template_id) {
        Some(synced) => synced.filled(&rendered.data),
        None => rendered.data.iter().map(|(k, v)| format!("{k}: {}", v.value)).collect::<Vec<_>>().join("\n"),
    };
    let touser = match template.channel {
        Channel::OaTemplate | Channel::OaSubscribe => account.oaopenid.clone(),
        Channel::MpSubscribe | Channel::MpForm => account.mp_openid.clone(),
    };
    let mp_appid = services.wechat.appid(crate::wechat::App::Mp);
    let key = format!("preview:{account_id}");
    let payload =
        route::delivery(Some(account_id), template.channel, rendered, &touser.unwrap_or_default(), key, mp_appid, "<form id>").payload;
    Ok(Preview {
        channel: template.channel.as_str().to_string(),
        template_id: template.template_id.clone(),
        payload,
        content,
        sendable: sendable_route && fitted.refused.is_none(),
        problems,
        cut: fitted.cut,
    })
}

async fn unread_counts(services: &Services, account: i64) -> Result<BTreeMap<String, i64>, NotifyError> {
    let mut sql = Sql::new("SELECT type AS kind, count(*) AS n FROM point_count WHERE account_account = ");
    sql.bind(account).push(" GROUP BY type");
    let mut counts = BTreeMap::new();
    for row in sql.all(&services.db).await? {
        let kind: Option<String> = row.try_get("", "kind")?;
        *counts.entry(kind.unwrap_or_else(|| digest::UNTYPED.to_string())).or_default() += row.try_get::<i64>("", "n")?;
    }
    Ok(counts)
}

/// The account holds a valid credit this template's channel can spend.
async fn has_credit(services: &Services, account: i64, template: &MessageTemplate) -> Result<bool, NotifyError> {
    Ok(match CreditKind::paying(template.channel) {
        None => true,
        Some(kind) => credits::holds(&services.db, account, kind, kind.per_template().then_some(template.template_id.as_str())).await?,
    })
}
