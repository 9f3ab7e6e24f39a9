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
    let id = Some(account.id);
    let oa = account.oaopenid.clone().unwrap_or_default();
    let mp = account.mp_openid.clone().unwrap_or_default();
    match template.channel {
        Channel::OaTemplate => NewDelivery::template(id, &message.template_message(&oa, mp_appid, &key), key),
        Channel::OaSubscribe => NewDelivery::oa_subscribe(id, &message.oa_subscribe_message(&oa, mp_appid), key),
        Channel::MpSubscribe => NewDelivery::subscribe(id, &message.subscribe_message(&mp), key),
        Channel::MpForm => NewDelivery::form(id, &message.form_message(&mp, ""), key),
    }
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
    let mp = || account.mp_openid.clone().unwrap_or_default();
    Ok(match template.channel {
        Channel::OaTemplate => {
            let touser = account.oaopenid.clone().unwrap_or_default();
            Some(NewDelivery::template(id, &message.template_message(&touser, mp_appid, &key), key))
        }
        Channel::OaSubscribe => credits::claim(db, account.id, CreditKind::OaSubscribe, Some(&template.template_id))
            .await?
            .and_then(|credit| credit.openid.filter(|o| !o.is_empty()))
            .map(|touser| NewDelivery::oa_subscribe(id, &message.oa_subscribe_message(&touser, mp_appid), key)),
        Channel::MpSubscribe => credits::claim(db, account.id, CreditKind::Subscribe, Some(&template.template_id))
            .await?
            .map(|_| NewDelivery::subscribe(id, &message.subscribe_message(&mp()), key)),
        Channel::MpForm => credits::claim(db, account.id, CreditKind::FormId, None)
            .await?
            .map(|credit| NewDelivery::form(id, &message.form_message(&mp(), &credit.code.unwrap_or_default()), key)),
    })
}
