//! The admin secret (`WXNOTIFY_ADMIN_SECRET`), sent as Hasura's
//! `X-Hasura-Admin-Secret` header or `X-Wxnotify-Admin-Secret`. As in
//! Hasura, the secret alone is admin, and with `X-Hasura-Role` (and
//! `X-Hasura-User-Id`) it answers as that role would, for testing
//! permissions. Compared in constant time over SHA-256 digests, so neither
//! the secret's content nor its length leaks through timing.

use axum::http::HeaderMap;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{AuthError, Caller, Role};
use crate::settings::Secret;

pub const HEADERS: [&str; 2] = ["x-hasura-admin-secret", "x-wxnotify-admin-secret"];

/// `None` when the request carries no admin-secret header; otherwise the
/// caller it makes, or why it is refused.
pub fn caller(headers: &HeaderMap, secret: Option<&Secret>) -> Option<Result<Caller, AuthError>> {
    let sent: Vec<&[u8]> = HEADERS.iter().flat_map(|name| headers.get_all(*name)).map(|v| v.as_bytes()).collect();
    if sent.is_empty() {
        return None;
    }
    let Some(secret) = secret else {
        return Some(Err(AuthError::AccessDenied(
            "this server has no admin secret (WXNOTIFY_ADMIN_SECRET is unset), so X-Hasura-Admin-Secret is refused: \
             send a bearer token instead, or set WXNOTIFY_ADMIN_SECRET"
                .into(),
        )));
    };
    if !sent.iter().all(|value| matches(value, secret)) {
        return Some(Err(AuthError::AccessDenied("invalid X-Hasura-Admin-Secret: it does not match WXNOTIFY_ADMIN_SECRET".into())));
    }
    Some(pose(headers))
}

fn matches(sent: &[u8], secret: &Secret) -> bool {
    let sent = Sha256::digest(sent);
    let expected = Sha256::digest(secret.expose().as_bytes());
    sent.ct_eq(&expected).into()
}

/// The role an admin asks to be answered as (`X-Hasura-Role`), admin by default.
fn pose(headers: &HeaderMap) -> Result<Caller, AuthError> {
    let Some(role) = header(headers, "x-hasura-role") else { return Ok(Caller::ADMIN) };
    match role.parse::<Role>() {
        Ok(Role::Admin) => Ok(Caller::ADMIN),
        Ok(Role::Anonymous) => Ok(Caller::ANONYMOUS),
        Ok(Role::User) => match header(headers, "x-hasura-user-id").and_then(|id| id.trim().parse::<i64>().ok()) {
            Some(id) => Ok(Caller { role: Role::User, sub: Some(id.to_string()) }),
            None => Err(AuthError::AccessDenied(
                "X-Hasura-Role: user needs X-Hasura-User-Id, the account id (a whole number), to answer as that user".into(),
            )),
        },
        Err(_) => Err(AuthError::AccessDenied(format!("X-Hasura-Role {role:?} is not a wxnotify role: use admin, user or anonymous"))),
    }
}

pub fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn the_secret_grants_admin_and_poses_as_a_user() {
        let secret = Secret::new("the-admin-secret");
        assert!(caller(&headers(&[]), Some(&secret)).is_none());
        assert_eq!(caller(&headers(&[("x-hasura-admin-secret", "the-admin-secret")]), Some(&secret)).unwrap().unwrap(), Caller::ADMIN);
        assert_eq!(caller(&headers(&[("x-wxnotify-admin-secret", "the-admin-secret")]), Some(&secret)).unwrap().unwrap(), Caller::ADMIN);
        let user = headers(&[("x-hasura-admin-secret", "the-admin-secret"), ("x-hasura-role", "user"), ("x-hasura-user-id", "3")]);
        assert_eq!(caller(&user, Some(&secret)).unwrap().unwrap().account_id(), Some(3));
        let no_id = headers(&[("x-hasura-admin-secret", "the-admin-secret"), ("x-hasura-role", "user")]);
        assert!(caller(&no_id, Some(&secret)).unwrap().is_err());
    }

    #[test]
    fn a_wrong_or_unconfigured_secret_is_refused() {
        let secret = Secret::new("the-admin-secret");
        for wrong in ["the-admin-secreT", "the-admin-secret ", "x", ""] {
            let result = caller(&headers(&[("x-hasura-admin-secret", wrong)]), Some(&secret)).unwrap();
            assert!(matches!(result, Err(AuthError::AccessDenied(_))), "{wrong:?}");
        }
        let both = headers(&[("x-hasura-admin-secret", "the-admin-secret"), ("x-wxnotify-admin-secret", "nope")]);
        assert!(caller(&both, Some(&secret)).unwrap().is_err());
        let unset = caller(&headers(&[("x-hasura-admin-secret", "anything")]), None).unwrap().unwrap_err();
        assert!(unset.to_string().contains("WXNOTIFY_ADMIN_SECRET is unset"), "{unset}");
    }
}
