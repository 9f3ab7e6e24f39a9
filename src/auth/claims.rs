//! From a verified token's claims to a [`Caller`]: the role (Hasura's
//! `x-hasura-default-role` / `x-hasura-allowed-roles` under the claims
//! namespace, a Zion-style `roles` array, or a flat `role`), switched by the
//! `X-Hasura-Role` header among the allowed ones, and for users the account
//! id (`WXNOTIFY_JWT_USER_ID_CLAIM`, else `x-hasura-user-id`, else `sub`).

use serde_json::{Map, Value};

use super::config::{ClaimPath, ClaimsFormat};
use super::{AuthError, Caller, Role};

/// How to read the claims; built from the settings once.
#[derive(Clone, Debug)]
pub struct ClaimsConfig {
    pub namespace: ClaimPath,
    pub format: ClaimsFormat,
    pub user_id_claim: Option<ClaimPath>,
}

/// The roles a token allows and the one it uses unless asked for another.
struct Roles {
    allowed: Vec<String>,
    default: String,
    /// Where the roles came from, for messages.
    source: &'static str,
}

/// The caller a verified token makes, as `requested` (X-Hasura-Role) asks.
pub fn caller(claims: &Value, requested: Option<&str>, config: &ClaimsConfig) -> Result<Caller, AuthError> {
    let hasura = hasura_claims(claims, config)?;
    let roles = match &hasura {
        Some(h) => hasura_roles(h, config)?,
        None => plain_roles(claims, config)?,
    };
    let role = choose(&roles, requested)?;
    let sub = match role {
        Role::User => Some(account_id(claims, hasura.as_ref(), config)?.to_string()),
        Role::Admin => claims.get("sub").and_then(scalar),
        Role::Anonymous => None,
    };
    Ok(Caller { role, sub })
}

/// The object under the namespace, keys lowercased (Hasura's session
/// variables are case-insensitive); `None` when the token has none.
fn hasura_claims(claims: &Value, config: &ClaimsConfig) -> Result<Option<Map<String, Value>>, AuthError> {
    let Some(found) = config.namespace.lookup(claims) else { return Ok(None) };
    let ns = &config.namespace.text;
    let object = match (config.format, found) {
        (ClaimsFormat::Json, Value::Object(o)) => o.clone(),
        (ClaimsFormat::Json, Value::String(_)) => {
            return Err(AuthError::InvalidClaims(format!(
                "the claims at {ns} are a string, not a JSON object: set WXNOTIFY_JWT_CLAIMS_FORMAT=stringified_json if your provider writes them so"
            )));
        }
        (ClaimsFormat::StringifiedJson, Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(o)) => o,
            _ => {
                return Err(AuthError::InvalidClaims(format!(
                    "the claims at {ns} are not a string holding a JSON object, as WXNOTIFY_JWT_CLAIMS_FORMAT=stringified_json expects"
                )));
            }
        },
        (ClaimsFormat::StringifiedJson, Value::Object(_)) => {
            return Err(AuthError::InvalidClaims(format!(
                "the claims at {ns} are a JSON object, but WXNOTIFY_JWT_CLAIMS_FORMAT=stringified_json expects a string: set it to json"
            )));
        }
        _ => {
            return Err(AuthError::InvalidClaims(format!(
                "the claims at {ns} (WXNOTIFY_JWT_CLAIMS_NAMESPACE) are not a JSON object of x-hasura-* claims"
            )));
        }
    };
    Ok(Some(object.into_iter().map(|(k, v)| (k.to_ascii_lowercase(), v)).collect()))
}

fn hasura_roles(claims: &Map<String, Value>, config: &ClaimsConfig) -> Result<Roles, AuthError> {
    let ns = &config.namespace.text;
    let missing = |name: &str| AuthError::MissingRoleClaims(format!("the claims at {ns} have no {name} (Hasura requires it)"));
    let allowed = match claims.get("x-hasura-allowed-roles").ok_or_else(|| missing("x-hasura-allowed-roles"))? {
        Value::Array(items) => {
            strings(items).ok_or_else(|| AuthError::InvalidClaims(format!("x-hasura-allowed-roles at {ns} is not a list of role names")))?
        }
        _ => return Err(AuthError::InvalidClaims(format!("x-hasura-allowed-roles at {ns} is not a list of role names"))),
    };
    let default = match claims.get("x-hasura-default-role").ok_or_else(|| missing("x-hasura-default-role"))? {
        Value::String(s) => s.clone(),
        _ => return Err(AuthError::InvalidClaims(format!("x-hasura-default-role at {ns} is not a role name"))),
    };
    if !allowed.contains(&default) {
        return Err(AuthError::InvalidClaims(format!(
            "x-hasura-default-role {default:?} is not one of x-hasura-allowed-roles {allowed:?}"
        )));
    }
    Ok(Roles { allowed, default, source: "x-hasura-default-role" })
}

/// A flat `role` and/or a `roles` array (Zion's shape); the default is
/// `role`, else the first of `roles` that wxnotify knows.
fn plain_roles(claims: &Value, config: &ClaimsConfig) -> Result<Roles, AuthError> {
    let role = match claims.get("role") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(AuthError::InvalidClaims("the `role` claim is not a role name".into())),
    };
    let roles = match claims.get("roles") {
        None => Vec::new(),
        Some(Value::Array(items)) => {
            strings(items).ok_or_else(|| AuthError::InvalidClaims("the `roles` claim is not a list of role names".into()))?
        }
        Some(_) => return Err(AuthError::InvalidClaims("the `roles` claim is not a list of role names".into())),
    };
    let allowed: Vec<String> = role.iter().cloned().chain(roles.iter().cloned()).collect();
    let default = match &role {
        Some(role) => role.clone(),
        None => match roles.iter().find(|r| r.parse::<Role>().is_ok()) {
            Some(known) => known.clone(),
            None if roles.is_empty() => {
                return Err(AuthError::MissingRoleClaims(format!(
                    "the token names no role: give it `role`, a `roles` list, or x-hasura-default-role and x-hasura-allowed-roles \
                     under {} (WXNOTIFY_JWT_CLAIMS_NAMESPACE)",
                    config.namespace.text
                )));
            }
            None => {
                return Err(AuthError::InvalidClaims(format!(
                    "none of the token's roles {roles:?} is a wxnotify role (admin, user or anonymous)"
                )));
            }
        },
    };
    Ok(Roles { allowed, default, source: if role.is_some() { "role" } else { "roles" } })
}

/// The requested role when the token allows it, else the default.
fn choose(roles: &Roles, requested: Option<&str>) -> Result<Role, AuthError> {
    match requested {
        Some(name) => {
            if !roles.allowed.iter().any(|r| r == name) {
                return Err(AuthError::AccessDenied(format!(
                    "X-Hasura-Role {name:?} is not one of the roles the token allows ({:?}): ask for one of them or drop the header",
                    roles.allowed
                )));
            }
            name.parse().map_err(|_| {
                AuthError::AccessDenied(format!("X-Hasura-Role {name:?} is not a wxnotify role: use admin, user or anonymous"))
            })
        }
        None => roles.default.parse().map_err(|_| {
            AuthError::InvalidClaims(format!(
                "the token's {} {:?} is not a wxnotify role (admin, user or anonymous): send X-Hasura-Role with one of {:?}",
                roles.source, roles.default, roles.allowed
            ))
        }),
    }
}

/// A user's account id: the configured claim, else `x-hasura-user-id`, else `sub`.
fn account_id(claims: &Value, hasura: Option<&Map<String, Value>>, config: &ClaimsConfig) -> Result<i64, AuthError> {
    if let Some(path) = &config.user_id_claim {
        return path.lookup(claims).and_then(whole_number).ok_or_else(|| {
            AuthError::InvalidClaims(format!(
                "a user token needs the account id in the claim {} (WXNOTIFY_JWT_USER_ID_CLAIM), and it is missing or not a whole number",
                path.text
            ))
        });
    }
    if let Some(id) = hasura.and_then(|h| h.get("x-hasura-user-id")) {
        return whole_number(id).ok_or_else(|| {
            AuthError::InvalidClaims(
                "x-hasura-user-id is not an account id (a whole number): set WXNOTIFY_JWT_USER_ID_CLAIM to the claim that holds it".into(),
            )
        });
    }
    claims.get("sub").and_then(whole_number).ok_or_else(|| {
        AuthError::InvalidClaims(
            "a user token needs the account id: `sub` is missing or not a whole number; set WXNOTIFY_JWT_USER_ID_CLAIM to the claim that holds it"
                .into(),
        )
    })
}

fn strings(items: &[Value]) -> Option<Vec<String>> {
    items.iter().map(|v| v.as_str().map(str::to_string)).collect()
}

/// A number, or a string holding one (JWTs carry ids as strings).
fn whole_number(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::config::parse_claim_path;
    use serde_json::json;

    fn config(format: ClaimsFormat) -> ClaimsConfig {
        ClaimsConfig { namespace: parse_claim_path("https://hasura.io/jwt/claims").unwrap(), format, user_id_claim: None }
    }

    fn run(claims: Value, requested: Option<&str>) -> Result<Caller, AuthError> {
        caller(&claims, requested, &config(ClaimsFormat::Json))
    }

    #[test]
    fn flat_claims_keep_working() {
        assert_eq!(run(json!({"sub": "7", "role": "user"}), None).unwrap(), Caller { role: Role::User, sub: Some("7".into()) });
        assert_eq!(run(json!({"role": "admin"}), None).unwrap(), Caller::ADMIN);
        assert!(matches!(run(json!({"role": "user", "sub": "abc"}), None), Err(AuthError::InvalidClaims(_))));
        assert!(matches!(run(json!({"sub": "7"}), None), Err(AuthError::MissingRoleClaims(_))));
        assert!(matches!(run(json!({"role": "admin"}), Some("user")), Err(AuthError::AccessDenied(_))));
    }

    #[test]
    fn zion_roles_pick_the_first_known_role() {
        let zion = json!({"iss": "zionbackend", "rf": "x", "roles": ["editor", "admin"], "sub": "K5zJrqEqkd0"});
        assert_eq!(run(zion.clone(), None).unwrap(), Caller { role: Role::Admin, sub: Some("K5zJrqEqkd0".into()) });
        assert!(matches!(run(zion.clone(), Some("editor")), Err(AuthError::AccessDenied(_))));
        assert!(matches!(run(json!({"roles": ["editor"]}), None), Err(AuthError::InvalidClaims(_))));
        assert!(matches!(run(json!({"roles": "admin"}), None), Err(AuthError::InvalidClaims(_))));
    }

    #[test]
    fn hasura_claims_switch_roles_and_carry_the_user_id() {
        let ns = json!({"x-hasura-default-role": "user", "x-hasura-allowed-roles": ["user", "admin"], "X-Hasura-User-Id": "12"});
        let claims = json!({"sub": "auth0|abc", "https://hasura.io/jwt/claims": ns});
        assert_eq!(run(claims.clone(), None).unwrap(), Caller { role: Role::User, sub: Some("12".into()) });
        assert_eq!(run(claims.clone(), Some("admin")).unwrap().role, Role::Admin);
        assert!(matches!(run(claims, Some("anonymous")), Err(AuthError::AccessDenied(_))));
        let missing = json!({"https://hasura.io/jwt/claims": {"x-hasura-allowed-roles": ["user"]}});
        assert!(matches!(run(missing, None), Err(AuthError::MissingRoleClaims(_))));
        let stringified = json!({"https://hasura.io/jwt/claims": ns.to_string()});
        assert!(matches!(run(stringified.clone(), None), Err(AuthError::InvalidClaims(_))));
        let read = caller(&stringified, None, &config(ClaimsFormat::StringifiedJson)).unwrap();
        assert_eq!(read, Caller { role: Role::User, sub: Some("12".into()) });
    }

    #[test]
    fn the_configured_user_id_claim_wins() {
        let mut config = config(ClaimsFormat::Json);
        config.user_id_claim = Some(parse_claim_path("$.app.account").unwrap());
        let claims = json!({"sub": "5", "role": "user", "app": {"account": 99}});
        assert_eq!(caller(&claims, None, &config).unwrap().account_id(), Some(99));
        assert!(matches!(caller(&json!({"sub": "5", "role": "user"}), None, &config), Err(AuthError::InvalidClaims(_))));
    }
}
