//! The GraphQL operations of sending: `sendTemplateMessage`,
//! `notifyDigest`, `notifyAccount`, `collectFormIds`, `grantSubscription`,
//! `pushBroadcast`. Each checks the caller's role, parses its arguments
//! into the types of the modules that do the work, and answers an object.

use async_graphql::Value;
use async_graphql::dynamic::{Enum, EnumItem, Field, FieldFuture, FieldValue, InputObject, InputValue, Object, ResolverContext, TypeRef};
use serde_json::json;

use super::credits::{self, FormIdInput};
use super::digest::{self, DigestRequest};
use super::error::{NotifyError, invalid};
use super::outbox;
use super::realtime;
use crate::auth::Role;
use crate::graphql::ops::{self, Operations};
use crate::hasura::resolve::scalar_field;
use crate::wechat::{MiniProgramLink, TemplateMessage, TemplateValue};

/// The types and mutations of sending.
pub fn operations() -> Operations {
    Operations {
        types: vec![
            send_input().into(),
            miniprogram_input().into(),
            form_id_input().into(),
            status_enum().into(),
            result_type(
                "SendTemplateMessageResult",
                "What WeChat answered to a raw template message, and its delivery row.",
                &[
                    (
                        "errcode",
                        TypeRef::named(TypeRef::INT),
                        "0 when sent; WeChat's errcode otherwise (null when WeChat gave none, e.g. a timeout)",
                    ),
                    ("errmsg", TypeRef::named_nn(TypeRef::STRING), "\"ok\", or what went wrong and what to do"),
                    ("msgid", TypeRef::named("bigint"), "WeChat's message id, when sent"),
                    ("delivery_id", TypeRef::named_nn("bigint"), "the `delivery` row that records the message"),
                    (
                        "status",
                        TypeRef::named_nn(TypeRef::STRING),
                        "the delivery's status: SENT, FAILED, PENDING (left for a later run) or SENDING",
                    ),
                ],
            )
            .into(),
            result_type(
                "NotifyDigestResult",
                "What a digest run did.",
                &[
                    ("run_id", TypeRef::named_nn(TypeRef::STRING), "the run; pass it again to finish a run that stopped or crashed"),
                    ("candidates", TypeRef::named_nn(TypeRef::INT), "following accounts with unread rows that match `where`"),
                    ("sent", TypeRef::named_nn(TypeRef::INT), "messages WeChat accepted in this call"),
                    (
                        "in_review",
                        TypeRef::named_nn(TypeRef::INT),
                        "messages WeChat took for review (40252): IN_REVIEW until its report says delivered or not",
                    ),
                    ("failed", TypeRef::named_nn(TypeRef::INT), "messages that failed in this call (see delivery.errmsg)"),
                    (
                        "skipped",
                        TypeRef::named_nn(TypeRef::INT),
                        "candidates not sent by this call: no longer following, or handled by an earlier call of this run",
                    ),
                    ("pending", TypeRef::named_nn(TypeRef::INT), "messages left PENDING after a stop; run the same run_id again later"),
                    (
                        "stopped",
                        TypeRef::named(TypeRef::STRING),
                        "why the run stopped early (daily quota, rate limit, WeChat busy, settings)",
                    ),
                    (
                        "cut",
                        TypeRef::named_nn(TypeRef::INT),
                        "recipients whose values are cut to fit their template (delivery.notes says how)",
                    ),
                    (
                        "refused",
                        TypeRef::named_nn(TypeRef::INT),
                        "recipients whose message breaks its template's rules: FAILED with the reason, never sent",
                    ),
                    ("problems", TypeRef::named_nn_list_nn(TypeRef::STRING), "what checking the digest's templates found, per template"),
                    (
                        "over_quota",
                        TypeRef::named_nn(TypeRef::INT),
                        "recipients left for another day (send_what_fits over today's quota): run the same run_id again",
                    ),
                ],
            )
            .into(),
            result_type(
                "NotifyAccountResult",
                "What a real-time notice did.",
                &[
                    ("status", TypeRef::named_nn("NotifyAccountStatus"), "the outcome"),
                    ("channel", TypeRef::named(TypeRef::STRING), "OA_TEMPLATE, OA_SUBSCRIBE, MP_SUBSCRIBE or MP_FORM: how the notice went"),
                    ("msgid", TypeRef::named("bigint"), "WeChat's message id, when it gave one"),
                    ("delivery_id", TypeRef::named("bigint"), "the `delivery` row of the notice"),
                    ("error", TypeRef::named(TypeRef::STRING), "why a FAILED notice failed"),
                ],
            )
            .into(),
            result_type(
                "CollectFormIdsResult",
                "What happened to collected form ids.",
                &[
                    ("stored", TypeRef::named_nn(TypeRef::INT), "form ids stored as send credits"),
                    ("duplicates", TypeRef::named_nn(TypeRef::INT), "form ids collected before, or twice in this call"),
                    (
                        "rejected",
                        TypeRef::named_nn(TypeRef::INT),
                        "empty or too long form ids, and the developer tools' \"the formId is a mock one\"",
                    ),
                    ("expired", TypeRef::named_nn(TypeRef::INT), "form ids whose expire had passed"),
                ],
            )
            .into(),
            result_type(
                "GrantSubscriptionResult",
                "Subscription credits stored.",
                &[("stored", TypeRef::named_nn(TypeRef::INT), "one credit per accepted template")],
            )
            .into(),
            result_type(
                "PushBroadcastResult",
                "What a broadcast did.",
                &[
                    ("sent", TypeRef::named_nn(TypeRef::INT), "messages WeChat accepted"),
                    ("no_credit", TypeRef::named_nn(TypeRef::INT), "mini-program users without a valid credit"),
                    ("failed", TypeRef::named_nn(TypeRef::INT), "messages that failed (see delivery.errmsg)"),
                    ("pending", TypeRef::named_nn(TypeRef::INT), "messages left PENDING after a stop; the next server start sends them"),
                ],
            )
            .into(),
            result_type(
                "PreviewMessageResult",
                "A message as it would be sent to one account; nothing is sent or queued.",
                &[
                    ("channel", TypeRef::named_nn(TypeRef::STRING), "the channel the configured order picks for this account"),
                    ("template_id", TypeRef::named_nn(TypeRef::STRING), "WeChat's template id"),
                    ("payload", TypeRef::named_nn("jsonb"), "the request body WeChat would get"),
                    ("content", TypeRef::named_nn(TypeRef::STRING), "the template's content filled in, as the user would read it"),
                    ("problems", TypeRef::named_nn_list_nn(TypeRef::STRING), "what checking found; empty when it would go as shown"),
                    ("cut", TypeRef::named_nn_list_nn(TypeRef::STRING), "the keys whose values are cut to fit"),
                    ("sendable", TypeRef::named_nn(TypeRef::BOOLEAN), "false when WeChat would refuse it or nothing reaches the account"),
                ],
            )
            .into(),
        ],
        queries: vec![preview_message()],
        mutations: vec![
            send_template_message(),
            notify_digest(),
            notify_account(),
            collect_form_ids(),
            grant_subscription(),
            push_broadcast(),
        ],
    }
}

fn preview_message() -> Field {
    Field::new("previewMessage", TypeRef::named_nn("PreviewMessageResult"), |ctx| {
        FieldFuture::new(async move {
            ops::require(&ctx, &[Role::Admin])?;
            let services = ops::services(&ctx)?.clone();
            let name = arg_string(&ctx, "template").unwrap_or_default();
            let account = ctx
                .args
                .get("account_id")
                .and_then(|v| crate::hasura::input::parse_bigint(v.as_value()))
                .ok_or_else(|| invalid("account_id must be a bigint").into_graphql())?;
            let preview = super::preview::preview(&services, &name, account).await.map_err(NotifyError::into_graphql)?;
            Ok(answer(serde_json::to_value(preview)?))
        })
    })
    .description("The message `template` would be for one account (channel, payload, the content as read, problems); nothing is sent or queued. Admin only.")
    .argument(InputValue::new("template", TypeRef::named_nn(TypeRef::STRING)).description("the message_template name, e.g. digest or realtime_single"))
    .argument(InputValue::new("account_id", TypeRef::named_nn("bigint")).description("the account to preview it for"))
}

fn send_input() -> InputObject {
    InputObject::new("SendTemplateMessageInput")
        .description("A service-account template message, as WeChat's message/template/send takes it.")
        .field(InputValue::new("touser", TypeRef::named_nn(TypeRef::STRING)).description("the follower's service-account openid"))
        .field(InputValue::new("template_id", TypeRef::named_nn(TypeRef::STRING)).description("WeChat's template id"))
        .field(
            InputValue::new("url", TypeRef::named(TypeRef::STRING))
                .description("a web page to open (the mini-program wins when both are set)"),
        )
        .field(InputValue::new("miniprogram", TypeRef::named("MiniProgramInput")).description("a mini-program page to open"))
        .field(
            InputValue::new("data", TypeRef::named_nn("jsonb"))
                .description("{\"keyword\": {\"value\": \"...\"}}; values are cut to WeChat's limits"),
        )
        .field(
            InputValue::new("client_msg_id", TypeRef::named(TypeRef::STRING))
                .description("de-duplication id: a second message with the same id is not sent"),
        )
}

fn miniprogram_input() -> InputObject {
    InputObject::new("MiniProgramInput")
        .description("The mini-program page a template message opens.")
        .field(InputValue::new("appid", TypeRef::named_nn(TypeRef::STRING)).description("the mini-program's appid"))
        .field(InputValue::new("pagepath", TypeRef::named_nn(TypeRef::STRING)).description("the page, with its query"))
}

fn form_id_input() -> InputObject {
    InputObject::new("FormIdInput")
        .description("A form id collected from a mini-program form submit.")
        .field(InputValue::new("form_id", TypeRef::named_nn(TypeRef::STRING)).description("e.detail.formId"))
        .field(
            InputValue::new("expire", TypeRef::named("bigint"))
                .description("when it expires, Unix milliseconds; at most 7 days ahead (the default)"),
        )
}

fn status_enum() -> Enum {
    Enum::new("NotifyAccountStatus")
        .description("The outcome of notifyAccount.")
        .items(super::realtime::NoticeStatus::ALL.map(|s| EnumItem::new(s.as_str()).description(s.meaning())))
}

fn result_type(name: &str, description: &str, fields: &[(&str, TypeRef, &str)]) -> Object {
    fields.iter().fold(Object::new(name).description(description), |object, (field, ty, text)| {
        object.field(scalar_field(*field, ty.clone()).description(*text))
    })
}

/// The answer object, from JSON.
fn answer(value: serde_json::Value) -> Option<FieldValue<'static>> {
    Some(FieldValue::value(Value::from_json(value).unwrap_or(Value::Null)))
}

fn arg_json(ctx: &ResolverContext<'_>, name: &str) -> Option<serde_json::Value> {
    ctx.args.get(name).and_then(|v| v.as_value().clone().into_json().ok())
}

fn arg_string(ctx: &ResolverContext<'_>, name: &str) -> Option<String> {
    ctx.args.get(name).and_then(|v| v.string().ok().map(str::to_string))
}

fn send_template_message() -> Field {
    Field::new("sendTemplateMessage", TypeRef::named_nn("SendTemplateMessageResult"), |ctx| {
        FieldFuture::new(async move {
            ops::require(&ctx, &[Role::Admin])?;
            let services = ops::services(&ctx)?.clone();
            let message = raw_message(arg_json(&ctx, "input")).map_err(NotifyError::into_graphql)?;
            let state = outbox::send_now(&services, message).await.map_err(|e| NotifyError::from(e).into_graphql())?;
            let sent = state.status == super::outbox::Status::Sent.as_str();
            Ok(answer(json!({
                "errcode": if sent { Some(0) } else { state.errcode },
                "errmsg": if sent { "ok".to_string() } else { state.errmsg.unwrap_or_else(|| format!("the message is {}", state.status)) },
                "msgid": state.msgid,
                "delivery_id": state.id,
                "status": state.status,
            })))
        })
    })
    .description(
        "Sends one service-account template message (logged as a delivery; a repeated client_msg_id is not sent twice). Admin only.",
    )
    .argument(InputValue::new("input", TypeRef::named_nn("SendTemplateMessageInput")).description("the message"))
}

#[derive(serde::Deserialize)]
struct RawInput {
    touser: String,
    template_id: String,
    url: Option<String>,
    miniprogram: Option<MiniProgramLink>,
    data: serde_json::Value,
    client_msg_id: Option<String>,
}

/// Checks a raw message before anything is written.
fn raw_message(input: Option<serde_json::Value>) -> Result<TemplateMessage, NotifyError> {
    let input: RawInput = serde_json::from_value(input.unwrap_or_default()).map_err(|e| invalid(format!("input: {e}")))?;
    let present = |s: &str| !s.trim().is_empty();
    if !present(&input.touser) || !present(&input.template_id) {
        return Err(invalid("input.touser and input.template_id must not be empty"));
    }
    if input.client_msg_id.as_deref().is_some_and(|id| !present(id) || id.len() > 64) {
        return Err(invalid("input.client_msg_id must be 1 to 64 characters"));
    }
    let serde_json::Value::Object(entries) = input.data else {
        return Err(invalid("input.data must be an object like {\"thing1\": {\"value\": \"...\"}}"));
    };
    if entries.is_empty() {
        return Err(invalid("input.data is empty: WeChat refuses a message without keywords"));
    }
    let data = entries
        .into_iter()
        .map(|(key, value)| match value {
            serde_json::Value::String(text) => Ok((key, TemplateValue::new(text))),
            other => serde_json::from_value::<TemplateValue>(other)
                .map(|v| (key.clone(), v))
                .map_err(|_| invalid(format!("input.data.{key} must be {{\"value\": \"...\"}}"))),
        })
        .collect::<Result<_, _>>()?;
    Ok(TemplateMessage {
        touser: input.touser.trim().to_string(),
        template_id: input.template_id.trim().to_string(),
        url: input.url.filter(|u| present(u)),
        miniprogram: input.miniprogram,
        data,
        client_msg_id: input.client_msg_id,
    })
}

fn notify_digest() -> Field {
    Field::new("notifyDigest", TypeRef::named_nn("NotifyDigestResult"), |ctx| {
        FieldFuture::new(async move {
            ops::require(&ctx, &[Role::Admin])?;
            let services = ops::services(&ctx)?.clone();
            let request = DigestRequest {
                filter: ctx.args.get("where").map(|v| v.as_value().clone().into_json()).transpose()?,
                template: arg_string(&ctx, "template"),
                dry_run: ctx.args.get("dry_run").and_then(|v| v.boolean().ok()).unwrap_or(false),
                run_id: arg_string(&ctx, "run_id"),
                send_what_fits: ctx.args.get("send_what_fits").and_then(|v| v.boolean().ok()).unwrap_or(false),
            };
            let report = digest::run(&services, &request).await.map_err(NotifyError::into_graphql)?;
            Ok(answer(serde_json::to_value(report)?))
        })
    })
    .description("Sends every following account with unread point_count rows one message counting them per type; resumable by run_id without sending twice. Admin only.")
    .argument(InputValue::new("where", TypeRef::named("account_bool_exp")).description("which accounts (besides following and having unread rows); all when absent"))
    .argument(InputValue::new("template", TypeRef::named(TypeRef::STRING)).description("the message_template to send; `digest` when absent"))
    .argument(InputValue::new("dry_run", TypeRef::named(TypeRef::BOOLEAN)).description("count the candidates and check the template, send nothing"))
    .argument(InputValue::new("run_id", TypeRef::named(TypeRef::STRING)).description("finish this earlier run instead of starting a new one"))
    .argument(InputValue::new("send_what_fits", TypeRef::named(TypeRef::BOOLEAN)).description(
        "when the template messages exceed the sends WeChat has left today, send the first that fit (the rest with the same run_id later) instead of refusing",
    ))
}

fn notify_account() -> Field {
    /// The throttle window when none is given, and the shortest a user may ask for.
    const DEFAULT_WINDOW_SECONDS: i64 = 600;
    Field::new("notifyAccount", TypeRef::named_nn("NotifyAccountResult"), |ctx| {
        FieldFuture::new(async move {
            let caller = ops::require(&ctx, &[Role::Admin, Role::User])?;
            let services = ops::services(&ctx)?.clone();
            let account = ctx
                .args
                .get("account_id")
                .and_then(|v| crate::hasura::input::parse_bigint(v.as_value()))
                .ok_or_else(|| invalid("account_id must be a bigint").into_graphql())?;
            let window = ctx.args.get("window_seconds").and_then(|v| v.i64().ok()).unwrap_or(DEFAULT_WINDOW_SECONDS);
            if caller.role == Role::User && window < DEFAULT_WINDOW_SECONDS {
                // Otherwise one user could notify another every second.
                return Err(invalid(format!(
                    "a user's window_seconds is at least {DEFAULT_WINDOW_SECONDS}; shorter windows are for admins"
                ))
                .into_graphql());
            }
            let result = realtime::notify_account(&services, account, window).await.map_err(NotifyError::into_graphql)?;
            Ok(answer(json!({
                "status": result.status.as_str(),
                "channel": result.channel.map(|c| c.as_str()),
                "msgid": result.msgid,
                "delivery_id": result.delivery_id,
                "error": result.error,
            })))
        })
    })
    .description(
        "Sends the account its real-time notice (realtime_single or realtime_multi), at most once per window, also across servers.",
    )
    .argument(InputValue::new("account_id", TypeRef::named_nn("bigint")).description("the account to notify"))
    .argument(
        InputValue::new("window_seconds", TypeRef::named(TypeRef::INT))
            .default_value(DEFAULT_WINDOW_SECONDS)
            .description("no second notice within this many seconds (at least 600 for users)"),
    )
}

/// The caller's own account, for the credit operations.
fn own_account(ctx: &ResolverContext<'_>) -> async_graphql::Result<i64> {
    let caller = ops::require(ctx, &[Role::User, Role::Admin])?;
    caller
        .account_id()
        .ok_or_else(|| invalid("credits are stored for the caller's account: use a user token whose sub is the account id").into_graphql())
}

fn collect_form_ids() -> Field {
    Field::new("collectFormIds", TypeRef::named_nn("CollectFormIdsResult"), |ctx| {
        FieldFuture::new(async move {
            let account = own_account(&ctx)?;
            let services = ops::services(&ctx)?.clone();
            let items = form_ids(arg_json(&ctx, "form_ids")).map_err(NotifyError::into_graphql)?;
            let report = credits::collect_form_ids(&services.db, account, &items).await.map_err(NotifyError::into_graphql)?;
            Ok(answer(json!({
                "stored": report.stored, "duplicates": report.duplicates, "rejected": report.rejected, "expired": report.expired,
            })))
        })
    })
    .description("Stores form ids as send credits of the caller's account (seed 001): mock ids and duplicates are refused, each lives at most 7 days.")
    .argument(InputValue::new("form_ids", TypeRef::named_nn_list_nn("FormIdInput")).description("the collected form ids"))
}

fn form_ids(value: Option<serde_json::Value>) -> Result<Vec<FormIdInput>, NotifyError> {
    let list = match value {
        Some(serde_json::Value::Array(list)) => list,
        Some(single @ serde_json::Value::Object(_)) => vec![single],
        _ => return Err(invalid("form_ids must be a list of {form_id, expire}")),
    };
    list.into_iter()
        .map(|item| {
            let form_id = item.get("form_id").and_then(|v| v.as_str()).ok_or_else(|| invalid("form_ids[].form_id must be a string"))?;
            let expire = match item.get("expire") {
                None | Some(serde_json::Value::Null) => None,
                Some(serde_json::Value::Number(n)) => Some(n.as_i64().ok_or_else(|| invalid("form_ids[].expire must be a whole number"))?),
                Some(serde_json::Value::String(s)) => {
                    Some(s.trim().parse().map_err(|_| invalid("form_ids[].expire must be a whole number"))?)
                }
                Some(_) => return Err(invalid("form_ids[].expire must be Unix milliseconds")),
            };
            Ok(FormIdInput { form_id: form_id.to_string(), expire })
        })
        .collect()
}

fn grant_subscription() -> Field {
    Field::new("grantSubscription", TypeRef::named_nn("GrantSubscriptionResult"), |ctx| {
        FieldFuture::new(async move {
            let account = own_account(&ctx)?;
            let services = ops::services(&ctx)?.clone();
            let ids: Vec<String> = match arg_json(&ctx, "template_ids") {
                Some(serde_json::Value::Array(list)) => list.into_iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
                Some(serde_json::Value::String(one)) => vec![one],
                _ => Vec::new(),
            };
            let stored = credits::grant_subscription(&services.db, account, &ids).await.map_err(NotifyError::into_graphql)?;
            Ok(answer(json!({ "stored": stored })))
        })
    })
    .description("Stores one subscribe-message credit of the caller's account per template the user accepted (wx.requestSubscribeMessage).")
    .argument(InputValue::new("template_ids", TypeRef::named_nn_list_nn(TypeRef::STRING)).description("the accepted template ids"))
}

fn push_broadcast() -> Field {
    Field::new("pushBroadcast", TypeRef::named_nn("PushBroadcastResult"), |ctx| {
        FieldFuture::new(async move {
            ops::require(&ctx, &[Role::Admin])?;
            let services = ops::services(&ctx)?.clone();
            let template = arg_string(&ctx, "template").unwrap_or_default();
            let page = arg_string(&ctx, "page");
            let key_words: Vec<String> = match arg_json(&ctx, "key_words") {
                Some(serde_json::Value::Array(list)) => list.into_iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
                Some(serde_json::Value::String(one)) => vec![one],
                _ => Vec::new(),
            };
            let report = credits::broadcast(&services, &template, page.as_deref(), &key_words).await.map_err(NotifyError::into_graphql)?;
            Ok(answer(json!({ "sent": report.sent, "no_credit": report.no_credit, "failed": report.failed, "pending": report.pending })))
        })
    })
    .description("Seed 001's broadcast: every mini-program user with a valid credit gets the template once (a subscription for it first, else a form id). Admin only.")
    .argument(InputValue::new("template", TypeRef::named_nn(TypeRef::STRING)).description("the WeChat template id"))
    .argument(InputValue::new("page", TypeRef::named(TypeRef::STRING)).description("the mini-program page the message opens"))
    .argument(InputValue::new("key_words", TypeRef::named_list_nn(TypeRef::STRING)).description("keyword1, keyword2, ... in order; {{placeholders}} of the account allowed"))
}
