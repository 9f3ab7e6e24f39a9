//! Who is calling: JWT bearer tokens (HS256, claims `sub`, `role`, `exp`) and
//! the three roles (anonymous, user, admin; see `docs/dialect.md`).
//!
//! The algorithm is pinned, so `alg: none` or an RS256 header with our secret
//! as its "public key" are refused before any claim is read.

use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::settings::Secret;

/// A caller's role. Anything the server does is allowed or refused by role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Anonymous,
    User,
    Admin,
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "anonymous" => Ok(Role::Anonymous),
            "user" => Ok(Role::User),
            "admin" => Ok(Role::Admin),
            _ => Err(format!("unknown role {s:?}: use admin, user or anonymous")),
        }
    }
}

/// The verified identity of one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub role: Role,
    /// The account id for users (`sub`), as the JWT carries it.
    pub sub: Option<String>,
}

impl Caller {
    pub const ANONYMOUS: Caller = Caller { role: Role::Anonymous, sub: None };
    pub const ADMIN: Caller = Caller { role: Role::Admin, sub: None };

    /// Who sent the GraphQL request being resolved (anonymous without a token).
    pub fn of(ctx: &async_graphql::Context<'_>) -> Caller {
        ctx.data_opt::<Caller>().cloned().unwrap_or(Caller::ANONYMOUS)
    }

    /// The caller's account id, when `sub` is one.
    pub fn account_id(&self) -> Option<i64> {
        self.sub.as_deref().and_then(|s| s.parse().ok())
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sub: Option<String>,
    role: Role,
    exp: u64,
    iat: u64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("the bearer token has expired: log in again or mint a new one")]
    Expired,
    #[error("the bearer token is invalid: {0}")]
    Invalid(String),
    #[error("the Authorization header must be `Bearer <token>`")]
    Malformed,
}

/// Signs and verifies tokens with one HS256 key.
#[derive(Clone)]
pub struct Jwt {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl Jwt {
    pub fn new(secret: &Secret) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp", "role"]);
        Jwt {
            encoding: EncodingKey::from_secret(secret.expose().as_bytes()),
            decoding: DecodingKey::from_secret(secret.expose().as_bytes()),
            validation,
        }
    }

    /// Mints a token for `role` (and `sub`) valid for `ttl`.
    pub fn mint(&self, role: Role, sub: Option<&str>, ttl: Duration) -> String {
        let now = now_secs();
        let claims = Claims { sub: sub.map(str::to_string), role, iat: now, exp: now + ttl.as_secs() };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing with an in-memory key cannot fail")
    }

    /// Verifies a token: signature, algorithm and expiry.
    pub fn verify(&self, token: &str) -> Result<Caller, AuthError> {
        use jsonwebtoken::errors::ErrorKind;
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).map_err(|e| match e.kind() {
            ErrorKind::ExpiredSignature => AuthError::Expired,
            ErrorKind::InvalidSignature => AuthError::Invalid("bad signature".into()),
            ErrorKind::InvalidAlgorithm => AuthError::Invalid("only HS256 is accepted".into()),
            _ => AuthError::Invalid(e.to_string()),
        })?;
        let claims = data.claims;
        if claims.role == Role::User && claims.sub.as_deref().and_then(|s| s.parse::<i64>().ok()).is_none() {
            return Err(AuthError::Invalid("a user token needs `sub`, the account id".into()));
        }
        Ok(Caller { role: claims.role, sub: claims.sub })
    }

    /// The caller named by an `Authorization` header value, or anonymous.
    pub fn caller(&self, authorization: Option<&str>) -> Result<Caller, AuthError> {
        let Some(value) = authorization else { return Ok(Caller::ANONYMOUS) };
        let token = value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")).ok_or(AuthError::Malformed)?;
        self.verify(token.trim())
    }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn jwt() -> Jwt {
        Jwt::new(&Secret::new("0123456789abcdef0123456789abcdef"))
    }

    #[test]
    fn a_minted_token_verifies() {
        let token = jwt().mint(Role::User, Some("42"), Duration::from_secs(60));
        let caller = jwt().verify(&token).unwrap();
        assert_eq!(caller, Caller { role: Role::User, sub: Some("42".into()) });
        assert_eq!(caller.account_id(), Some(42));
    }

    #[test]
    fn another_key_none_alg_and_expiry_are_refused() {
        let other = Jwt::new(&Secret::new("another-secret-another-secret-xx"));
        let token = other.mint(Role::Admin, None, Duration::from_secs(60));
        assert!(matches!(jwt().verify(&token), Err(AuthError::Invalid(_))));

        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header = b64.encode(r#"{"alg":"none","typ":"JWT"}"#);
        let claims = b64.encode(format!(r#"{{"role":"admin","exp":{}}}"#, now_secs() + 600));
        assert!(jwt().verify(&format!("{header}.{claims}.")).is_err());

        let expired = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &Claims { sub: None, role: Role::Admin, iat: 0, exp: now_secs() - 5 },
            &jwt().encoding,
        )
        .unwrap();
        assert_eq!(jwt().verify(&expired), Err(AuthError::Expired));
    }

    #[test]
    fn no_header_is_anonymous_and_a_bad_header_is_an_error() {
        assert_eq!(jwt().caller(None).unwrap(), Caller::ANONYMOUS);
        assert_eq!(jwt().caller(Some("Basic abc")), Err(AuthError::Malformed));
    }
}
