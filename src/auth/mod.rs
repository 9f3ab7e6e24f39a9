//! Who is calling, and the three roles (anonymous, user, admin; see
//! `docs/dialect.md`). A request is one of:
//! the admin secret ([`admin`]), a bearer JWT, or anonymous. A JWT is
//! verified here (signature with the HS256 secret, a PEM public key or a
//! JWKS ([`jwks`]); `exp`, and `iat`, `nbf`, `iss`, `aud` when present or
//! configured) and read by [`claims`] (flat, Hasura or Zion claims). The
//! server mints its own tokens with the HS256 secret.
//!
//! Algorithms are pinned by `WXNOTIFY_JWT_ALGORITHMS`, and each family
//! verifies only with its own key: HS tokens only with the secret, never a
//! public key, so `alg: none` and algorithm confusion are refused before any
//! claim is read.

pub mod admin;
pub mod claims;
pub mod config;
pub mod jwks;

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, header};
use base64::Engine;
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::error::CodedError;
use crate::settings::{Secret, Settings};

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
    /// For users the account id (from `WXNOTIFY_JWT_USER_ID_CLAIM`,
    /// `x-hasura-user-id` or `sub`); for admins the token's `sub`, if any.
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

/// The server's own tokens; `iss` and `aud` are the configured ones, so
/// they pass the server's own checks.
#[derive(Debug, Serialize)]
struct MintedClaims<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    sub: Option<&'a str>,
    role: Role,
    exp: u64,
    iat: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<&'a str>,
}

/// Why a request's credentials were refused; its [`CodedError::code`] is
/// the `extensions.code` Hasura uses for the same refusal. Messages say what
/// was wrong and which setting governs it, never the token itself.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("{0}")]
    InvalidJwt(String),
    #[error("{0}")]
    InvalidClaims(String),
    #[error("{0}")]
    MissingRoleClaims(String),
    #[error("{0}")]
    AccessDenied(String),
}

/// Auth refusals are all expected: each is answered with its own message.
impl CodedError for AuthError {
    fn code(&self) -> &'static str {
        match self {
            AuthError::InvalidJwt(_) => "invalid-jwt",
            AuthError::InvalidClaims(_) => "jwt-invalid-claims",
            AuthError::MissingRoleClaims(_) => "jwt-missing-role-claims",
            AuthError::AccessDenied(_) => "access-denied",
        }
    }
}

/// What verifies tokens, built once from the settings.
struct Verifier {
    algorithms: Vec<Algorithm>,
    public_key: Option<config::PublicKey>,
    jwks: Option<jwks::Jwks>,
    issuer: Option<String>,
    audience: Vec<String>,
    leeway: u64,
    claims: claims::ClaimsConfig,
    admin_secret: Option<Secret>,
}

/// Signs the server's own tokens (HS256) and works out who sends a request.
#[derive(Clone)]
pub struct Jwt {
    encoding: EncodingKey,
    secret: DecodingKey,
    verifier: Arc<Verifier>,
}

impl Jwt {
    /// HS256 with `secret` and every other auth setting at its default.
    pub fn new(secret: &Secret) -> Self {
        let defaults = Settings::with_overrides([]).ok();
        let verifier = match &defaults {
            Some(settings) => Verifier::from_settings(settings),
            None => Verifier::hs256_only(),
        };
        Jwt::with_verifier(secret, verifier)
    }

    /// The server's verifier: `secret` for HS tokens, and the settings'
    /// algorithms, keys, claims layout and admin secret.
    pub fn from_settings(secret: &Secret, settings: &Settings) -> Self {
        Jwt::with_verifier(secret, Verifier::from_settings(settings))
    }

    fn with_verifier(secret: &Secret, verifier: Verifier) -> Self {
        Jwt {
            encoding: EncodingKey::from_secret(secret.expose().as_bytes()),
            secret: DecodingKey::from_secret(secret.expose().as_bytes()),
            verifier: Arc::new(verifier),
        }
    }

    /// Mints a token for `role` (and `sub`) valid for `ttl`.
    pub fn mint(&self, role: Role, sub: Option<&str>, ttl: Duration) -> String {
        let now = now_secs();
        let v = &self.verifier;
        let (iss, aud) = (v.issuer.as_deref(), v.audience.first().map(String::as_str));
        let claims = MintedClaims { sub, role, iat: now, exp: now + ttl.as_secs(), iss, aud };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing with an in-memory key cannot fail")
    }

    /// Whether the server's own (HS256) tokens are accepted.
    pub fn accepts_own_tokens(&self) -> bool {
        self.verifier.algorithms.contains(&Algorithm::HS256)
    }

    /// The caller a request's headers make: the admin secret, else a bearer
    /// token, else anonymous; `X-Hasura-Role` picks among allowed roles.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Caller, AuthError> {
        if let Some(result) = admin::caller(headers, self.verifier.admin_secret.as_ref()) {
            return result;
        }
        let requested = admin::header(headers, "x-hasura-role");
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return match requested {
                None | Some("anonymous") => Ok(Caller::ANONYMOUS),
                Some(role) => Err(AuthError::AccessDenied(format!(
                    "X-Hasura-Role {role:?} needs credentials: a bearer token that allows that role, or X-Hasura-Admin-Secret"
                ))),
            };
        };
        let token = bearer(value.to_str().ok())?;
        self.verify_as(token, requested).await
    }

    /// Verifies a token and reads its default role.
    pub async fn verify(&self, token: &str) -> Result<Caller, AuthError> {
        self.verify_as(token, None).await
    }

    async fn verify_as(&self, token: &str, requested: Option<&str>) -> Result<Caller, AuthError> {
        let claims = self.verified_claims(token).await?;
        claims::caller(&claims, requested, &self.verifier.claims)
    }

    /// The claims of a token whose algorithm, signature and time claims hold.
    async fn verified_claims(&self, token: &str) -> Result<serde_json::Value, AuthError> {
        let (alg, kid) = peek_header(token)?;
        let v = &self.verifier;
        if !v.algorithms.contains(&alg) {
            return Err(AuthError::InvalidJwt(format!(
                "the token is signed with {alg:?}, which WXNOTIFY_JWT_ALGORITHMS does not allow (allowed: {})",
                names(&v.algorithms)
            )));
        }
        let keys = self.keys_for(alg, kid.as_deref()).await?;
        let validation = v.validation(alg);
        let mut first_error = None;
        for key in &keys {
            match jsonwebtoken::decode::<serde_json::Value>(token, key, &validation) {
                Ok(data) => return v.check_iat(data.claims),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        Err(first_error.map(|e| v.explain(e)).unwrap_or_else(|| AuthError::InvalidJwt("no configured key fits the token".into())))
    }

    /// The keys that may verify `alg`: the secret for HS, never a public
    /// key; the PEM key or the JWKS for the rest.
    async fn keys_for(&self, alg: Algorithm, kid: Option<&str>) -> Result<Vec<DecodingKey>, AuthError> {
        let v = &self.verifier;
        let family = alg.family();
        if family == AlgorithmFamily::Hmac {
            return Ok(vec![self.secret.clone()]);
        }
        let mut keys: Vec<DecodingKey> = v.public_key.iter().filter(|k| k.family == family).map(|k| k.key.clone()).collect();
        if let Some(jwks) = &v.jwks
            && (keys.is_empty() || kid.is_some())
        {
            match jwks.keys_for(kid, alg).await {
                Ok(found) => keys.extend(found),
                Err(e) if keys.is_empty() => return Err(e),
                Err(_) => {}
            }
        }
        if keys.is_empty() {
            return Err(AuthError::InvalidJwt(format!(
                "no configured key verifies {alg:?}: set WXNOTIFY_JWT_PUBLIC_KEY or WXNOTIFY_JWT_JWKS_URL"
            )));
        }
        Ok(keys)
    }
}

impl Verifier {
    fn from_settings(settings: &Settings) -> Verifier {
        Verifier {
            algorithms: settings.jwt_algorithms.clone(),
            public_key: settings.jwt_public_key.clone(),
            jwks: settings.jwt_jwks_url.clone().map(jwks::Jwks::new),
            issuer: settings.jwt_issuer.clone(),
            audience: settings.jwt_audience.clone(),
            leeway: settings.jwt_leeway.as_secs(),
            claims: claims::ClaimsConfig {
                namespace: settings.jwt_claims_namespace.clone(),
                format: settings.jwt_claims_format,
                user_id_claim: settings.jwt_user_id_claim.clone(),
            },
            admin_secret: settings.admin_secret.clone(),
        }
    }

    /// Only reached if the built-in defaults failed to load, which a unit
    /// test rules out; kept so [`Jwt::new`] cannot panic.
    fn hs256_only() -> Verifier {
        Verifier {
            algorithms: vec![Algorithm::HS256],
            public_key: None,
            jwks: None,
            issuer: None,
            audience: Vec::new(),
            leeway: 60,
            claims: claims::ClaimsConfig {
                namespace: config::ClaimPath { text: HASURA_NAMESPACE.into(), segments: vec![HASURA_NAMESPACE.into()] },
                format: config::ClaimsFormat::Json,
                user_id_claim: None,
            },
            admin_secret: None,
        }
    }

    fn validation(&self, alg: Algorithm) -> Validation {
        let mut validation = Validation::new(alg);
        validation.leeway = self.leeway;
        validation.validate_nbf = true;
        let mut required = vec!["exp"];
        match &self.issuer {
            Some(issuer) => {
                validation.set_issuer(&[issuer]);
                required.push("iss");
            }
            None => validation.iss = None,
        }
        if self.audience.is_empty() {
            validation.validate_aud = false;
        } else {
            validation.set_audience(&self.audience);
            required.push("aud");
        }
        validation.set_required_spec_claims(&required);
        validation
    }

    /// `iat`, optional in RFC 7519, must not lie in the future beyond the leeway.
    fn check_iat(&self, claims: serde_json::Value) -> Result<serde_json::Value, AuthError> {
        match claims.get("iat") {
            None => Ok(claims),
            Some(iat) => match iat.as_f64() {
                Some(iat) if iat <= (now_secs() + self.leeway) as f64 => Ok(claims),
                Some(_) => Err(AuthError::InvalidJwt(format!(
                    "the token's `iat` (issued at) is in the future, beyond the {} s of clock skew WXNOTIFY_JWT_LEEWAY allows: \
                     check the issuer's clock",
                    self.leeway
                ))),
                None => Err(AuthError::InvalidJwt("the token's `iat` claim is not a number of seconds".into())),
            },
        }
    }

    fn explain(&self, e: jsonwebtoken::errors::Error) -> AuthError {
        use jsonwebtoken::errors::ErrorKind;
        let leeway = self.leeway;
        AuthError::InvalidJwt(match e.kind() {
            ErrorKind::ExpiredSignature => {
                format!("the bearer token has expired (beyond the {leeway} s WXNOTIFY_JWT_LEEWAY allows): log in again or mint a new one")
            }
            ErrorKind::ImmatureSignature => {
                format!("the token is not valid yet: its `nbf` is more than {leeway} s (WXNOTIFY_JWT_LEEWAY) in the future")
            }
            ErrorKind::InvalidSignature => {
                "the token's signature does not verify with the configured key (WXNOTIFY_JWT_SECRET, WXNOTIFY_JWT_PUBLIC_KEY or \
                 WXNOTIFY_JWT_JWKS_URL)"
                    .into()
            }
            ErrorKind::InvalidIssuer => "the token's `iss` is not the issuer WXNOTIFY_JWT_ISSUER names".into(),
            ErrorKind::InvalidAudience => "the token's `aud` is not an audience WXNOTIFY_JWT_AUDIENCE lists".into(),
            ErrorKind::MissingRequiredClaim(claim) => match claim.as_str() {
                "exp" => "the token has no `exp` claim: wxnotify accepts only tokens that expire".into(),
                "iss" => "the token has no `iss` claim, and WXNOTIFY_JWT_ISSUER requires one".into(),
                "aud" => "the token has no `aud` claim, and WXNOTIFY_JWT_AUDIENCE requires one".into(),
                other => format!("the token has no `{other}` claim"),
            },
            ErrorKind::InvalidClaimFormat(claim) => {
                format!("the token's `{claim}` claim is not in the standard form (a number of seconds)")
            }
            ErrorKind::InvalidAlgorithm => "the token's algorithm does not match its key".into(),
            ErrorKind::Json(_) | ErrorKind::Utf8(_) | ErrorKind::Base64(_) | ErrorKind::InvalidToken => {
                "the bearer token is not a well-formed JWT (three base64url parts, the middle one a JSON object)".into()
            }
            _ => "the bearer token cannot be verified".into(),
        })
    }
}

pub use config::HASURA_NAMESPACE;

/// The token in `Authorization: Bearer <token>`.
fn bearer(value: Option<&str>) -> Result<&str, AuthError> {
    let malformed = || AuthError::InvalidJwt("the Authorization header must be `Bearer <token>`".into());
    let value = value.ok_or_else(malformed)?.trim();
    let (scheme, token) = value.split_once(' ').ok_or_else(malformed)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(malformed());
    }
    Ok(token.trim())
}

/// The header's `alg` and `kid`, read before any key is chosen, so `none`
/// and unknown algorithms get their own clear refusal.
fn peek_header(token: &str) -> Result<(Algorithm, Option<String>), AuthError> {
    let malformed = || AuthError::InvalidJwt("the bearer token is not a well-formed JWT (three base64url parts)".into());
    let mut parts = token.split('.');
    let (Some(encoded), Some(_), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(malformed());
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(encoded.trim_end_matches('=')).map_err(|_| malformed())?;
    let header: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| malformed())?;
    let alg = header.get("alg").and_then(|a| a.as_str()).ok_or_else(malformed)?;
    if alg.eq_ignore_ascii_case("none") {
        return Err(AuthError::InvalidJwt("unsigned tokens (alg none) are never accepted".into()));
    }
    let alg = alg.parse().map_err(|_| AuthError::InvalidJwt(format!("the token's algorithm {alg:?} is not one wxnotify knows")))?;
    Ok((alg, header.get("kid").and_then(|k| k.as_str()).map(str::to_string)))
}

fn names(algorithms: &[Algorithm]) -> String {
    algorithms.iter().map(|a| format!("{a:?}")).collect::<Vec<_>>().join(", ")
}

fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt() -> Jwt {
        Jwt::new(&Secret::new("0123456789abcdef0123456789abcdef"))
    }

    fn sign(claims: serde_json::Value, key: &str) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(key.as_bytes())).unwrap()
    }

    #[tokio::test]
    async fn a_minted_token_verifies() {
        let token = jwt().mint(Role::User, Some("42"), Duration::from_secs(60));
        let caller = jwt().verify(&token).await.unwrap();
        assert_eq!(caller, Caller { role: Role::User, sub: Some("42".into()) });
        assert_eq!(caller.account_id(), Some(42));
    }

    #[test]
    fn the_defaults_load() {
        assert!(Settings::with_overrides([]).is_ok());
    }

    #[tokio::test]
    async fn another_key_none_alg_and_expiry_are_refused() {
        let other = Jwt::new(&Secret::new("another-secret-another-secret-xx"));
        let token = other.mint(Role::Admin, None, Duration::from_secs(60));
        assert!(matches!(jwt().verify(&token).await, Err(AuthError::InvalidJwt(m)) if m.contains("signature")));

        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header = b64.encode(r#"{"alg":"none","typ":"JWT"}"#);
        let claims = b64.encode(format!(r#"{{"role":"admin","exp":{}}}"#, now_secs() + 600));
        assert!(matches!(jwt().verify(&format!("{header}.{claims}.")).await, Err(AuthError::InvalidJwt(m)) if m.contains("alg none")));

        let secret = "0123456789abcdef0123456789abcdef";
        let expired = sign(serde_json::json!({"role": "admin", "exp": now_secs() - 61}), secret);
        assert!(matches!(jwt().verify(&expired).await, Err(AuthError::InvalidJwt(m)) if m.contains("expired")));
        let within_leeway = sign(serde_json::json!({"role": "admin", "exp": now_secs() - 30}), secret);
        assert!(jwt().verify(&within_leeway).await.is_ok());
        let no_exp = sign(serde_json::json!({"role": "admin"}), secret);
        assert!(matches!(jwt().verify(&no_exp).await, Err(AuthError::InvalidJwt(m)) if m.contains("`exp`")));
    }

    #[tokio::test]
    async fn no_header_is_anonymous_and_a_bad_header_is_an_error() {
        let mut headers = HeaderMap::new();
        assert_eq!(jwt().authenticate(&headers).await.unwrap(), Caller::ANONYMOUS);
        headers.insert(header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert_eq!(jwt().authenticate(&headers).await.unwrap_err().code(), "invalid-jwt");
        let mut asks = HeaderMap::new();
        asks.insert("x-hasura-role", "admin".parse().unwrap());
        assert_eq!(jwt().authenticate(&asks).await.unwrap_err().code(), "access-denied");
    }
}
