//! The auth settings' types and their parsers: which algorithms are
//! accepted, the public key, where Hasura-style claims live and how they are
//! written. [`crate::settings`] reads the raw values and calls these, so a
//! bad value stops the server with one line naming its setting.

use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};

/// The default of `WXNOTIFY_JWT_CLAIMS_NAMESPACE`, Hasura's.
pub const HASURA_NAMESPACE: &str = "https://hasura.io/jwt/claims";

/// Where a claim lives in the token: a top-level name, or a `$.a.b` /
/// `$['a.b']` path as in Hasura's `claims_namespace_path` (`$` is the root).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimPath {
    /// As the user wrote it, for messages.
    pub text: String,
    pub segments: Vec<String>,
}

impl ClaimPath {
    /// The value at this path, if every segment is there.
    pub fn lookup<'a>(&self, claims: &'a serde_json::Value) -> Option<&'a serde_json::Value> {
        self.segments.iter().try_fold(claims, |value, segment| value.get(segment))
    }
}

/// `https://hasura.io/jwt/claims` (one name), or `$.hasura.claims` (a path).
pub fn parse_claim_path(v: &str) -> Result<ClaimPath, String> {
    let Some(mut rest) = v.strip_prefix('$') else {
        return Ok(ClaimPath { text: v.to_string(), segments: vec![v.to_string()] });
    };
    let err = || "is not a claim name or a path like $.hasura.claims or $['https://hasura.io/jwt/claims']".to_string();
    let mut segments = Vec::new();
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("['") {
            let end = after.find("']").ok_or_else(err)?;
            segments.push(after[..end].to_string());
            rest = &after[end + 2..];
        } else if let Some(after) = rest.strip_prefix('.') {
            let end = after.find(['.', '[']).unwrap_or(after.len());
            let name = &after[..end];
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
                return Err(err());
            }
            segments.push(name.to_string());
            rest = &after[end..];
        } else {
            return Err(err());
        }
    }
    Ok(ClaimPath { text: v.to_string(), segments })
}

/// How the namespace's claims are written (Hasura's `claims_format`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClaimsFormat {
    /// A JSON object.
    Json,
    /// A string holding a JSON object (as AWS Cognito writes them).
    StringifiedJson,
}

pub fn parse_claims_format(v: &str) -> Result<ClaimsFormat, String> {
    match v {
        "json" => Ok(ClaimsFormat::Json),
        "stringified_json" => Ok(ClaimsFormat::StringifiedJson),
        _ => Err("is not `json` or `stringified_json`".into()),
    }
}

/// A PEM public key that parsed, with its family (RSA, EC or Ed25519).
#[derive(Clone)]
pub struct PublicKey {
    pub family: AlgorithmFamily,
    pub key: DecodingKey,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({:?})", self.family)
    }
}

/// A PEM `PUBLIC KEY` (RSA, EC or Ed25519); `\n` escapes count as line
/// breaks, since environment variables rarely carry real ones.
pub fn parse_public_key(v: &str) -> Result<PublicKey, String> {
    let pem = v.trim().replace("\\n", "\n");
    if !pem.starts_with("-----BEGIN") {
        return Err("is not a PEM public key (-----BEGIN PUBLIC KEY----- ...)".into());
    }
    let bytes = pem.as_bytes();
    let parsed = [
        (AlgorithmFamily::Rsa, DecodingKey::from_rsa_pem(bytes)),
        (AlgorithmFamily::Ec, DecodingKey::from_ec_pem(bytes)),
        (AlgorithmFamily::Ed, DecodingKey::from_ed_pem(bytes)),
    ];
    parsed
        .into_iter()
        .find_map(|(family, key)| key.ok().map(|key| PublicKey { family, key }))
        .ok_or_else(|| "is not an RSA, EC or Ed25519 public key in PEM form (a private key or certificate does not work here)".into())
}

/// A comma-separated list like `RS256,ES256`; `none` is refused.
pub fn parse_algorithms(v: &str) -> Result<Vec<Algorithm>, String> {
    let mut algorithms = Vec::new();
    for name in v.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        if name.eq_ignore_ascii_case("none") {
            return Err("lists `none`: unsigned tokens are never accepted; list signing algorithms like HS256,RS256,ES256".into());
        }
        let algorithm: Algorithm = name.parse().map_err(|_| {
            format!(
                "lists {name:?}, which is not one of HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA"
            )
        })?;
        if !algorithms.contains(&algorithm) {
            algorithms.push(algorithm);
        }
    }
    if algorithms.is_empty() {
        return Err("lists no algorithm: use e.g. HS256 or RS256,ES256".into());
    }
    Ok(algorithms)
}

/// The algorithms accepted when `JWT_ALGORITHMS` is unset: HS256 (the
/// server's own tokens), plus RS256 or ES256 for the configured public key,
/// plus both for a JWKS.
pub fn default_algorithms(public_key: Option<&PublicKey>, jwks: bool) -> Vec<Algorithm> {
    let mut algorithms = vec![Algorithm::HS256];
    let mut add = |a| {
        if !algorithms.contains(&a) {
            algorithms.push(a);
        }
    };
    match public_key.map(|k| k.family) {
        Some(AlgorithmFamily::Rsa) => add(Algorithm::RS256),
        Some(AlgorithmFamily::Ec) => add(Algorithm::ES256),
        Some(AlgorithmFamily::Ed) => add(Algorithm::EdDSA),
        _ => {}
    }
    if jwks {
        add(Algorithm::RS256);
        add(Algorithm::ES256);
    }
    algorithms
}

/// Why the algorithms cannot work with the keys, if they cannot: an
/// asymmetric algorithm needs a public key of its family or a JWKS.
pub fn check_algorithms(algorithms: &[Algorithm], public_key: Option<&PublicKey>, jwks: bool) -> Result<(), String> {
    for algorithm in algorithms {
        let family = algorithm.family();
        let key_fits = public_key.is_some_and(|k| k.family == family);
        if family != AlgorithmFamily::Hmac && !key_fits && !jwks {
            return Err(format!(
                "lists {algorithm:?}, but neither WXNOTIFY_JWT_PUBLIC_KEY (a {family:?} key) nor WXNOTIFY_JWT_JWKS_URL is set to verify it"
            ));
        }
    }
    if let Some(key) = public_key
        && !algorithms.iter().any(|a| a.family() == key.family)
    {
        return Err(format!("lists no algorithm for WXNOTIFY_JWT_PUBLIC_KEY, a {:?} key: add e.g. RS256 or ES256", key.family));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claim_paths_read_like_hasuras() {
        let path = parse_claim_path("$.hasura.claims").unwrap();
        assert_eq!(path.segments, ["hasura", "claims"]);
        let path = parse_claim_path("$['https://hasura.io/jwt/claims'].inner").unwrap();
        assert_eq!(path.segments, ["https://hasura.io/jwt/claims", "inner"]);
        assert!(parse_claim_path("$").unwrap().segments.is_empty());
        assert_eq!(parse_claim_path("https://hasura.io/jwt/claims").unwrap().segments, ["https://hasura.io/jwt/claims"]);
        for bad in ["$.", "$hasura", "$['open", "$.a b"] {
            assert!(parse_claim_path(bad).is_err(), "{bad}");
        }
        let claims = serde_json::json!({ "hasura": { "claims": { "x": 1 } } });
        assert_eq!(parse_claim_path("$.hasura.claims").unwrap().lookup(&claims), Some(&serde_json::json!({ "x": 1 })));
        assert_eq!(parse_claim_path("$.hasura.nope").unwrap().lookup(&claims), None);
    }

    #[test]
    fn algorithms_refuse_none_and_unknown_names() {
        assert_eq!(parse_algorithms("RS256, ES256").unwrap(), [Algorithm::RS256, Algorithm::ES256]);
        assert!(parse_algorithms("none").unwrap_err().contains("never"));
        assert!(parse_algorithms("RS256,NONE").is_err());
        assert!(parse_algorithms("RS257").is_err());
        assert!(parse_algorithms(" , ").is_err());
    }

    #[test]
    fn an_asymmetric_algorithm_needs_a_key() {
        assert!(check_algorithms(&[Algorithm::HS256], None, false).is_ok());
        assert!(check_algorithms(&[Algorithm::RS256], None, false).is_err());
        assert!(check_algorithms(&[Algorithm::RS256], None, true).is_ok());
        assert_eq!(default_algorithms(None, true), [Algorithm::HS256, Algorithm::RS256, Algorithm::ES256]);
    }
}
