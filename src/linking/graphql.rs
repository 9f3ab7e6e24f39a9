//! The linking operations in the schema: `loginWithWechatMiniApp`,
//! `syncFollowers`, `createBindQrCode` (mutations) and `oaOpenidByUnionid`
//! (query), with their result types.

use async_graphql::Value;
use async_graphql::dynamic::{Field, FieldFuture, FieldValue, InputValue, Object, ResolverContext, TypeRef};
use chrono::SecondsFormat;
use serde_json::json;

use super::LinkError;
use crate::auth::{Caller, Role};
use crate::graphql::ops::{self, Operations};
use crate::hasura::{Engine, EngineError};

const LOGIN_RESULT: &str = "LoginWithWechatMiniAppResult";
const JWT: &str = "JwtToken";
const SYNC_RESULT: &str = "SyncFollowersResult";
const QR_CODE: &str = "BindQrCode";
/// Where the login result carries its account's id for [`account_field`].
const LOGIN_ACCOUNT_ID: &str = "account_id";

/// The linking capability's types and root fields.
pub fn operations() -> Operations {
    Operations {
        types: vec![login_result().into(), jwt_type().into(), sync_result().into(), qr_code().into()],
        queries: vec![oa_openid_by_unionid()],
        mutations: vec![login(), sync_followers(), create_bind_qr_code()],
    }
}

/// A field reading its value from the parent object by field name.
fn value_field(name: &str, ty: TypeRef, description: &str) -> Field {
    Field::new(name, ty, |ctx| {
        let name = ctx.field().name().to_string();
        FieldFuture::Value(ops::parent_field(&ctx, &name).cloned().map(FieldValue::value))
    })
    .description(description)
}

fn to_value(json: serde_json::Value) -> async_graphql::Result<Value> {
    Value::from_json(json).map_err(|e| async_graphql::Error::new(format!("building the answer failed: {e}")))
}

fn login_result() -> Object {
    Object::new(LOGIN_RESULT)
        .description("A logged-in mini-program user: the account and a bearer token for it.")
        .field(account_field())
        .field(value_field("jwt", TypeRef::named_nn(JWT), "The bearer token (role user, sub = the account id)."))
}

/// The account, read like `account_by_pk` with the selection the caller
/// wrote (aliases, relations, aggregates), as the account itself: the login
/// request is anonymous, but what it returns is the new user's own to see.
fn account_field() -> Field {
    Field::new("account", TypeRef::named_nn("account"), |ctx| {
        FieldFuture::new(async move {
            let id = login_account_id(&ctx).ok_or_else(|| ops::error("unexpected", "the login result lost its account id"))?;
            let engine = ctx.ctx.data::<Engine>()?;
            let as_account = Caller { role: Role::User, sub: Some(id.to_string()) };
            let row = engine.select_by_pk_as(&ctx, "account", id, as_account).await.map_err(EngineError::into_graphql)?;
            let row = row.ok_or_else(|| LinkError::NoAccount(id).to_graphql())?;
            Ok(Some(FieldValue::value(row)))
        })
    })
    .description("The account, created on first login and linked to its service-account follower when known; relations and aggregates are read with the account's own (role user) permissions.")
}

fn login_account_id(ctx: &ResolverContext<'_>) -> Option<i64> {
    match ops::parent_field(ctx, LOGIN_ACCOUNT_ID)? {
        Value::Number(id) => id.as_i64(),
        _ => None,
    }
}

fn jwt_type() -> Object {
    Object::new(JWT)
        .description("A bearer token for `Authorization: Bearer <token>`.")
        .field(value_field("token", TypeRef::named_nn(TypeRef::STRING), "The JWT (HS256)."))
        .field(value_field("expires_at", TypeRef::named_nn("timestamptz"), "When the token stops working."))
}

fn sync_result() -> Object {
    let int = || TypeRef::named_nn(TypeRef::INT);
    Object::new(SYNC_RESULT)
        .description("What one follower sync did.")
        .field(value_field("followers", int(), "Followers listed (who follow the service account now)."))
        .field(value_field("matched", int(), "Accounts linked to a listed follower after the sync."))
        .field(value_field("updated", int(), "Accounts whose link the sync set or changed."))
        .field(value_field("cleared", int(), "Accounts whose link the sync cleared because their follower left."))
        .field(value_field("unmatched", int(), "Listed followers no account is linked to."))
        .field(value_field("api_calls", int(), "HTTP requests sent to WeChat, token fetches and retries included."))
        .field(value_field("duration_ms", int(), "Wall time of the sync in milliseconds."))
}

fn qr_code() -> Object {
    Object::new(QR_CODE)
        .description("A temporary parametric QR code; scanning it binds the scanner to the account.")
        .field(value_field("ticket", TypeRef::named_nn(TypeRef::STRING), "WeChat's ticket naming the code."))
        .field(value_field("url", TypeRef::named_nn(TypeRef::STRING), "The code's content, to render it yourself."))
        .field(value_field("expire_seconds", TypeRef::named_nn(TypeRef::INT), "Seconds the code stays valid."))
        .field(value_field("image_url", TypeRef::named_nn(TypeRef::STRING), "WeChat's rendering of the code."))
}

fn login() -> Field {
    Field::new("loginWithWechatMiniApp", TypeRef::named_nn(LOGIN_RESULT), |ctx| {
        FieldFuture::new(async move {
            let services = ops::services(&ctx)?;
            let code = ctx.args.try_get("code")?.string()?;
            if let Err(refused) = services.login_limit.check(ops::client_address(&ctx)) {
                return Err(ops::error("rate-limited", refused.message("logins", "WXNOTIFY_LOGIN_RATE_LIMIT")));
            }
            let outcome = super::login::login(services, code).await.map_err(|e| e.to_graphql())?;
            let answer = json!({
                LOGIN_ACCOUNT_ID: outcome.account_id,
                "jwt": { "token": outcome.token, "expires_at": outcome.expires_at.to_rfc3339_opts(SecondsFormat::Secs, true) },
            });
            Ok(Some(FieldValue::value(to_value(answer)?)))
        })
    })
    .description("Logs a mini-program user in with the code from wx.login: creates or updates the account, links it to the service account when its unionid already follows, and returns a user token. Anyone may call it.")
    .argument(InputValue::new("code", TypeRef::named_nn(TypeRef::STRING)).description("The code from wx.login (valid once, for 5 minutes)."))
}

fn sync_followers() -> Field {
    Field::new("syncFollowers", TypeRef::named_nn(SYNC_RESULT), |ctx| {
        FieldFuture::new(async move {
            ops::require(&ctx, &[Role::Admin])?;
            let services = ops::services(&ctx)?;
            let report = super::sync::sync_followers(services, None).await.map_err(|e| e.to_graphql())?;
            let answer = json!({
                "followers": report.followers, "matched": report.matched, "updated": report.updated,
                "cleared": report.cleared, "unmatched": report.unmatched, "api_calls": report.api_calls,
                "duration_ms": report.duration_ms,
            });
            Ok(Some(FieldValue::value(to_value(answer)?)))
        })
    })
    .description("Lists every follower of the service account and links accounts to them by unionid (column or oauth2_user_info_map); clears links of followers who left, only after a complete listing. One sync runs at a time (a second is refused with code sync-running). Admin only.")
}

fn oa_openid_by_unionid() -> Field {
    Field::new("oaOpenidByUnionid", TypeRef::named(TypeRef::STRING), |ctx| {
        FieldFuture::new(async move {
            let caller = ops::require(&ctx, &[Role::Admin, Role::User])?;
            let services = ops::services(&ctx)?;
            let unionid = ctx.args.try_get("unionid")?.string()?;
            let openid = super::login::oa_openid_by_unionid(services, &caller, unionid).await.map_err(|e| e.to_graphql())?;
            Ok(openid.map(|o| FieldValue::value(Value::String(o))))
        })
    })
    .description("The service-account openid of the current follower with this unionid, or null (the seed's interface machine). Admin, or a user for its own unionid.")
    .argument(InputValue::new("unionid", TypeRef::named_nn(TypeRef::STRING)).description("The user's unionid."))
}

fn create_bind_qr_code() -> Field {
    Field::new("createBindQrCode", TypeRef::named_nn(QR_CODE), |ctx| {
        FieldFuture::new(async move {
            let caller = ops::require(&ctx, &[Role::Admin, Role::User])?;
            let services = ops::services(&ctx)?;
            let account_id = bigint(&ctx, "account_id")?;
            if caller.role == Role::User && caller.account_id() != Some(account_id) {
                return Err(ops::error("access-denied", "a user may create a bind code only for its own account"));
            }
            let expire = match ctx.args.get("expire_seconds") {
                Some(v) if !v.is_null() => Some(v.i64()?),
                _ => None,
            };
            let code = super::bind::create_bind_qr_code(services, account_id, expire).await.map_err(|e| e.to_graphql())?;
            let answer = json!({ "ticket": code.ticket, "url": code.url, "expire_seconds": code.expire_seconds, "image_url": code.image_url });
            Ok(Some(FieldValue::value(to_value(answer)?)))
        })
    })
    .description("Creates a temporary QR code that binds whoever scans it (following or already a follower) to this account, no unionid needed. Admin, or a user for its own account.")
    .argument(InputValue::new("account_id", TypeRef::named_nn("bigint")).description("The account to bind."))
    .argument(InputValue::new("expire_seconds", TypeRef::named(TypeRef::INT)).description("Seconds the code lives, 60 to 2592000 (30 days); 1800 when absent."))
}

/// A `bigint` argument, given as a number or a numeric string.
fn bigint(ctx: &ResolverContext<'_>, name: &str) -> async_graphql::Result<i64> {
    let value = ctx.args.try_get(name)?;
    if let Ok(n) = value.i64() {
        return Ok(n);
    }
    value.string()?.parse().map_err(|_| LinkError::Invalid(format!("{name} must be an integer")).to_graphql())
}
