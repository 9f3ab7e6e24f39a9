//! The signing keys an outside identity provider publishes at
//! `WXNOTIFY_JWT_JWKS_URL`: fetched on first use, cached, and fetched again
//! when a token names a key id the cache lacks (a rotated key), at most once
//! a minute so a stream of made-up key ids cannot turn into a stream of
//! fetches.

use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};
use tokio::sync::{Mutex, RwLock};

use super::AuthError;

/// Least time between fetches once a key set has been loaded.
const REFETCH_INTERVAL: Duration = Duration::from_secs(60);
/// Least time between attempts while no key set has loaded yet.
const RETRY_INTERVAL: Duration = Duration::from_secs(5);
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// One usable verification key of the set.
struct Key {
    kid: Option<String>,
    /// The `alg` the set pins for this key, when it does.
    alg: Option<String>,
    key: DecodingKey,
}

#[derive(Default)]
struct Cache {
    keys: Vec<Key>,
    loaded: bool,
    /// The last attempt to load the set while none had loaded.
    last_attempt: Option<Instant>,
    /// The last fetch after the set had loaded (a key id it lacked).
    last_refetch: Option<Instant>,
}

pub struct Jwks {
    url: String,
    client: reqwest::Client,
    cache: RwLock<Cache>,
    /// Held while fetching, so concurrent misses share one fetch.
    fetching: Mutex<()>,
}

impl Jwks {
    pub fn new(url: String) -> Jwks {
        let client = reqwest::Client::builder().timeout(FETCH_TIMEOUT).build().unwrap_or_default();
        Jwks { url, client, cache: RwLock::new(Cache::default()), fetching: Mutex::new(()) }
    }

    /// The keys that may have signed a token with this `kid` and `alg`.
    pub async fn keys_for(&self, kid: Option<&str>, alg: Algorithm) -> Result<Vec<DecodingKey>, AuthError> {
        let found = self.matching(kid, alg).await;
        if !found.is_empty() {
            return Ok(found);
        }
        self.refresh().await;
        let found = self.matching(kid, alg).await;
        if !found.is_empty() {
            return Ok(found);
        }
        if !self.cache.read().await.loaded {
            return Err(AuthError::InvalidJwt(
                "the signing keys at WXNOTIFY_JWT_JWKS_URL could not be fetched, so the token cannot be verified; \
                 try again shortly (the server log has the cause)"
                    .into(),
            ));
        }
        Err(AuthError::InvalidJwt(match kid {
            Some(kid) => format!(
                "no key with kid {:?} for {alg:?} in the key set at WXNOTIFY_JWT_JWKS_URL (it is fetched again at most once a minute)",
                kid.chars().take(64).collect::<String>()
            ),
            None => format!("the token has no kid and no {alg:?} key in the key set at WXNOTIFY_JWT_JWKS_URL fits it"),
        }))
    }

    async fn matching(&self, kid: Option<&str>, alg: Algorithm) -> Vec<DecodingKey> {
        let alg_name = format!("{alg:?}");
        let cache = self.cache.read().await;
        cache
            .keys
            .iter()
            .filter(|k| k.key.family() == alg.family())
            .filter(|k| k.alg.as_deref().is_none_or(|a| a == alg_name))
            .filter(|k| kid.is_none() || k.kid.as_deref() == kid)
            .map(|k| k.key.clone())
            .collect()
    }

    /// Fetches the set again unless that happened too recently.
    async fn refresh(&self) {
        let _one_at_a_time = self.fetching.lock().await;
        {
            let cache = self.cache.read().await;
            let (last, wait) = if cache.loaded { (cache.last_refetch, REFETCH_INTERVAL) } else { (cache.last_attempt, RETRY_INTERVAL) };
            if last.is_some_and(|at| at.elapsed() < wait) {
                return;
            }
        }
        let fetched = self.fetch().await;
        let mut cache = self.cache.write().await;
        if cache.loaded {
            cache.last_refetch = Some(Instant::now());
        } else {
            cache.last_attempt = Some(Instant::now());
        }
        match fetched {
            Ok(keys) => {
                tracing::info!(url = %self.url, keys = keys.len(), "fetched the JWKS");
                cache.keys = keys;
                cache.loaded = true;
            }
            // The old keys stay: a provider's blip should not log everyone out.
            Err(e) => tracing::warn!(url = %self.url, error = %e, "fetching the JWKS (WXNOTIFY_JWT_JWKS_URL) failed"),
        }
    }

    /// How many signing keys the set holds now, for `wxnotify doctor`.
    pub async fn count(&self) -> Result<usize, String> {
        self.fetch().await.map(|keys| keys.len())
    }

    async fn fetch(&self) -> Result<Vec<Key>, String> {
        let response = self.client.get(&self.url).send().await.map_err(|e| e.to_string())?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("HTTP {status}"));
        }
        let body: serde_json::Value = response.json().await.map_err(|e| format!("not JSON: {e}"))?;
        let Some(entries) = body.get("keys").and_then(|k| k.as_array()) else {
            return Err("the document has no `keys` array".into());
        };
        Ok(entries.iter().filter_map(usable_key).collect())
    }
}

/// A signing key of the set; shared-secret (`oct`) and encryption keys are
/// skipped: only our own secret ever verifies HS tokens.
fn usable_key(entry: &serde_json::Value) -> Option<Key> {
    let jwk: Jwk = serde_json::from_value(entry.clone())
        .map_err(|e| tracing::warn!(error = %e, "skipping a JWKS entry that is not a key this server understands"))
        .ok()?;
    if jwk.common.public_key_use == Some(PublicKeyUse::Encryption) {
        return None;
    }
    let key = DecodingKey::from_jwk(&jwk).map_err(|e| tracing::warn!(error = %e, "skipping a JWKS key that does not parse")).ok()?;
    if key.family() == AlgorithmFamily::Hmac {
        return None;
    }
    Some(Key { kid: jwk.common.key_id.clone(), alg: jwk.common.key_algorithm.map(|a| format!("{a:?}")), key })
}
