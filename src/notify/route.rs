//! Which channel carries a message to an account, shared by `notifyAccount`
//! and digests: the templates a message name can use (`<name>` on its own
//! channel, and `<name>_oa_subscribe`, `<name>_subscribe`, `<name>_form`),
//! the ones that can reach an account in `WXNOTIFY_CHANNEL_ORDER`, and the
//! delivery for the first that works, spending its credit in the caller's
//! transaction.

use sea_orm::ConnectionTrait;

use super::credits::{self, CreditKind};
use super::error::NotifyError;
use super::outbox::{Channel, NewDelivery};
use super::render::{self, AccountRow, MessageTemplate};

/// The templates `name` can use, any channel; an error when there is none.
pub async fn templates(db: &impl ConnectionTrait, name: &str) -> Result<Vec<MessageTemplate>, NotifyError> {
    let names = [name.to_string(), format!("{name}_oa_subscribe"), format!("{name}_subscribe"), format!("{name}_form")];
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let templates = render::load_many(db, &names).await?;
    if templates.is_empty() {
        return Err(render::missing(name));
    }
    Ok(templates)
}

/// The templates in the configured channel order: one service-account
/// template (it always goes out), every credit-paid one (each template id
/// has credits of its own).
pub fn by_order(templates: &[MessageTemplate], order: &[Channel]) -> Vec<MessageTemplate> {
    let mut out = Vec::new();
    for &channel in order {
        let take = if channel == Channel::OaTemplate { 1 } else { usize::MAX };
        out.extend(templates.iter().filter(|t| t.channel == channel).take(take).cloned());
    }
    out
}

/// Those of `ordered` that may reach `account`: a follower link for
/// OA_TEMPLATE, a mini-program openid for MP channels; OA_SUBSCRIBE's
/// credit names its own openid, so only the claim can tell.
pub fn reachable(ordered: &[MessageTemplate], account: &AccountRow) -> Vec<MessageTemplate> {
    let has = |o: &Option<String>| o.as_deref().is_some_and(|s| !s.is_empty());
    ordered
        .iter()
        .filter(|t| match t.channel {
            Channel::OaTemplate => has(&account.oaopenid),
            Channel::OaSubscribe => true,
            Channel::MpSubscribe | Channel::MpForm => has(&account.mp_openid),
        })
        .cloned()
        .collect()
}

/// The delivery for the first rendered route that works: a follower's
/// template message, or a message paid with a credit spent now (in `db`,
/// the caller's transaction). A route whose message WeChat would refuse
/// (see [`crate::templates::Library::fit`]) spends nothing and is passed
/// over; when no other route works, the first such message is the answer,
/// recorded FAILED with the reason and never sent. `None`: no route at all.
pub async fn pick(
    db: &impl ConnectionTrait,
    account: &AccountRow,
    rendered: Vec<(MessageTemplate, render::Rendered)>,
    key: String,
    mp_appid: Option<&str>,
) -> Result<Option<NewDelivery>, NotifyError> {
    let mut refused: Option<NewDelivery> = None;
    for (template, message) in rendered {
        let fit = message.fitted.clone();
        if fit.refused.is_some() {
            if refused.is_none() {
                refused = Some(refused_delivery(account, &template, message, key.clone(), mp_appid).fitted(&fit));
            }
            continue;
        }
        let delivery = pick_one(db, account, &template, message, key.clone(), mp_appid).await?;
        if let Some(delivery) = delivery {
            return Ok(Some(delivery.fitted(&fit)));
        }
    }
    Ok(refused)
}

/// A refused message as the row that records it (the credit-paid ones
/// name the account's openid for that app; nothing is spent).
fn refused_delivery(
    account: &AccountRow,
    template: &MessageTemplate,
    message: render::Rendered,
    key: String,
    mp_appid: Option<&str>,
) -> NewDelivery {
    let touser = match template.channel {
        Channel::OaTemplate | Channel::OaSubscribe => account.oaopenid.clone(),
        Channel::MpSubscribe | Channel::MpForm => account.mp_openid.clone(),
    };
    delivery(Some(account.id), template.channel, message, &touser.unwrap_or_default(), key, mp_appid, "")
}

/// One route: the follower's template message, or a message paid with a
/// credit spent now; `None` when there is no credit.
async fn pick_one(
    db: &impl ConnectionTrait,
    account: &AccountRow,
    template: &MessageTemplate,
    message: render::Rendered,
    key: String,
    mp_appid: Option<&str>,
) -> Result<Option<NewDelivery>, NotifyError> {
    let id = Some(account.id);
    let mp = account.mp_openid.clone().unwrap_or_default();
    let Some(kind) = CreditKind::paying(template.channel) else {
        let touser = account.oaopenid.clone().unwrap_or_default();
        return Ok(Some(delivery(id, template.channel, message, &touser, key, mp_appid, "")));
    };
    let per_template = kind.per_template().then_some(template.template_id.as_str());
    let Some(credit) = credits::claim(db, account.id, kind, per_template).await? else { return Ok(None) };
    // A service-account subscription goes to the openid WeChat named on it.
    let touser = if kind == CreditKind::OaSubscribe { credit.openid.clone().unwrap_or_default() } else { mp };
    if touser.is_empty() {
        return Ok(None);
    }
    Ok(Some(delivery(id, template.channel, message, &touser, key, mp_appid, &credit.code.unwrap_or_default())))
}

/// The delivery of `message` on `channel` to `touser`: the request body
/// that channel's WeChat API takes (`form_id` only for MP_FORM).
pub fn delivery(
    account: Option<i64>,
    channel: Channel,
    message: render::Rendered,
    touser: &str,
    key: String,
    mp_appid: Option<&str>,
    form_id: &str,
) -> NewDelivery {
    match channel {
        Channel::OaTemplate => NewDelivery::template(account, &message.template_message(touser, mp_appid, &key), key),
        Channel::OaSubscribe => NewDelivery::oa_subscribe(account, &message.oa_subscribe_message(touser, mp_appid), key),
        Channel::MpSubscribe => NewDelivery::subscribe(account, &message.subscribe_message(touser), key),
        Channel::MpForm => NewDelivery::form(account, &message.form_message(touser, form_id), key),
    }
}
