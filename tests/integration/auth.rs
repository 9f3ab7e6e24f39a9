//! Auth as users bring it: standard JWTs (no `iat`, clock skew), Hasura
//! claims in both formats with `X-Hasura-Role`, Zion's token shape, the
//! admin secret, RS256 through a PEM key and through a JWKS served on
//! loopback (with key rotation), and the refusals: `alg: none`, an HS256
//! token signed with the public key, roles a token does not allow.
//!
//! Tokens are signed here with aws-lc-rs directly (RSA, ECDSA) or with the
//! shared secret, independently of the server's verifier. The standard
//! claims' checks (`exp`, `nbf`, `iat`, `iss`, `aud`, leeway, signature,
//! `alg`) are compared with PyJWT's over a generated corpus.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _, RSA_PKCS1_SHA256};
use base64::Engine;
use serde_json::{Value, json};
use wxnotify::auth::Role;
use wxnotify::doctor::Verdict;

use crate::common::{JWT_SECRET, TestApp, spawn_app_with};
use wxnotify::db::DatabaseKind;

/// Each name runs twice, on SQLite and on PostgreSQL.
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(wxnotify::db::DatabaseKind::Sqlite).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name(wxnotify::db::DatabaseKind::Postgres).await
            }
        }
    )*};
}

on_both_databases!(
    standard_claims_work_and_time_claims_are_checked_with_leeway,
    hasura_claims_switch_roles_with_x_hasura_role,
    hasura_stringified_claims_under_a_configured_path,
    zion_tokens_work_as_they_are,
    the_admin_secret_grants_admin_and_poses_as_a_user,
    an_admin_secret_header_is_refused_when_none_is_configured,
    rs256_through_a_pem_key_and_confusion_refused,
    rs256_and_es256_through_a_rotating_jwks,
    time_and_audience_checks_agree_with_pyjwt,
    an_unreachable_jwks_is_a_clear_refusal,
);

const ACCOUNTS: &str = "{ account(order_by: {id: asc}) { id } }";
const SECRET_HEADER: &str = "X-Hasura-Admin-Secret";
const ADMIN_SECRET: &str = "admin-secret-for-tests-0123";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// `header.claims.signature` with `sign` over the first two parts.
fn token(header: Value, claims: &Value, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
    let input = format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
    let signature = sign(input.as_bytes());
    format!("{input}.{}", b64(&signature))
}

fn hmac(key: &[u8]) -> impl Fn(&[u8]) -> Vec<u8> {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key);
    move |input| aws_lc_rs::hmac::sign(&key, input).as_ref().to_vec()
}

/// HS256 with the server's secret, header `{"alg":"HS256","typ":"JWT"}`.
fn hs256(claims: Value) -> String {
    token(json!({"alg": "HS256", "typ": "JWT"}), &claims, hmac(JWT_SECRET.as_bytes()))
}

struct Rsa {
    pair: aws_lc_rs::rsa::KeyPair,
}

impl Rsa {
    fn new() -> Rsa {
        Rsa { pair: aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).expect("an RSA key") }
    }

    fn sign(&self, kid: Option<&str>, claims: &Value) -> String {
        let mut header = json!({"alg": "RS256", "typ": "JWT"});
        if let Some(kid) = kid {
            header["kid"] = json!(kid);
        }
        token(header, claims, |input| {
            let mut signature = vec![0; self.pair.public_modulus_len()];
            self.pair.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), input, &mut signature).expect("RSA signing");
            signature
        })
    }

    fn pem(&self) -> String {
        let der = self.pair.public_key().as_der().expect("public key DER");
        pem(der.as_ref())
    }

    fn jwk(&self, kid: &str) -> Value {
        let parts = aws_lc_rs::rsa::PublicKeyComponents::<Vec<u8>>::from(self.pair.public_key());
        json!({"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid, "n": b64(&parts.n), "e": b64(&parts.e)})
    }
}

fn pem(der: &[u8]) -> String {
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = body.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap_or_default()).collect();
    format!("-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n", lines.join("\n"))
}

struct Ec {
    pair: EcdsaKeyPair,
}

impl Ec {
    fn new() -> Ec {
        Ec { pair: EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).expect("an EC key") }
    }

    fn sign(&self, kid: &str, claims: &Value) -> String {
        token(json!({"alg": "ES256", "typ": "JWT", "kid": kid}), claims, |input| {
            self.pair.sign(&SystemRandom::new(), input).expect("ECDSA signing").as_ref().to_vec()
        })
    }

    fn jwk(&self, kid: &str) -> Value {
        let point = self.pair.public_key().as_ref(); // 0x04 || x || y
        json!({"kty": "EC", "crv": "P-256", "use": "sig", "kid": kid, "x": b64(&point[1..33]), "y": b64(&point[33..65])})
    }
}

/// POSTs `query` with the given headers.
async fn post(app: &TestApp, headers: &[(&str, &str)], query: &str) -> Value {
    let mut request = app.client.post(format!("{}/api/graphql", app.address));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.json(&json!({ "query": query })).send().await.expect("POST /api/graphql");
    response.json().await.expect("a JSON body")
}

async fn with_token(app: &TestApp, token: &str, extra: &[(&str, &str)], query: &str) -> Value {
    let bearer = format!("Bearer {token}");
    let mut headers = vec![("Authorization", bearer.as_str())];
    headers.extend_from_slice(extra);
    post(app, &headers, query).await
}

/// The account ids the caller sees, or the refusal's code and message.
async fn sees(app: &TestApp, token: &str, extra: &[(&str, &str)]) -> Result<Vec<i64>, (String, String)> {
    outcome(with_token(app, token, extra, ACCOUNTS).await)
}

fn outcome(body: Value) -> Result<Vec<i64>, (String, String)> {
    if let Some(error) = body["errors"].get(0) {
        assert!(body["data"].is_null(), "a refusal carries no data: {body}");
        let code = error["extensions"]["code"].as_str().unwrap_or_default().to_string();
        return Err((code, error["message"].as_str().unwrap_or_default().to_string()));
    }
    Ok(body["data"]["account"].as_array().map(|rows| rows.iter().filter_map(|r| r["id"].as_i64()).collect()).unwrap_or_default())
}

/// Refused with `code`, with a message containing `says`, not echoing the token.
fn refused(result: Result<Vec<i64>, (String, String)>, code: &str, says: &str, token: &str) {
    match result {
        Err((got, message)) => {
            assert_eq!(got, code, "{message}");
            assert!(message.contains(says), "{message:?} should mention {says:?}");
            let signature = token.rsplit('.').next().unwrap_or_default();
            assert!(signature.len() < 8 || !message.contains(signature), "the message echoes the token: {message}");
        }
        Ok(ids) => panic!("expected {code}, but the caller saw accounts {ids:?}"),
    }
}

/// Accounts 1, 2 and 3, inserted as admin with `token` (the server's own by default).
async fn three_accounts(app: &TestApp, token: Option<&str>) {
    let insert = r#"mutation { insert_account(objects: [{username: "a"}, {username: "b"}, {username: "c"}]) { returning { id } } }"#;
    let admin = app.state.services.jwt.mint(Role::Admin, None, Duration::from_secs(60));
    let body = app.graphql_with(Some(token.unwrap_or(&admin)), insert, json!({})).await;
    assert_eq!(body["data"]["insert_account"]["returning"], json!([{"id": 1}, {"id": 2}, {"id": 3}]), "{body}");
}

async fn start(backend: DatabaseKind, settings: &[(&str, &str)]) -> Option<TestApp> {
    start_seeded_by(backend, settings, None).await
}

async fn start_seeded_by(backend: DatabaseKind, settings: &[(&str, &str)], admin: Option<&str>) -> Option<TestApp> {
    let app = spawn_app_with(backend, settings).await?;
    three_accounts(&app, admin).await;
    Some(app)
}

async fn standard_claims_work_and_time_claims_are_checked_with_leeway(backend: DatabaseKind) {
    let Some(app) = start(backend, &[]).await else { return };
    let exp = now() + 600;
    // Exactly the README's claims, no `iat`.
    assert_eq!(sees(&app, &hs256(json!({"sub": "2", "role": "user", "exp": exp})), &[]).await, Ok(vec![2]));
    assert_eq!(sees(&app, &hs256(json!({"role": "admin", "exp": exp})), &[]).await, Ok(vec![1, 2, 3]));
    // Unknown claims are ignored; a numeric `sub` works too.
    assert_eq!(sees(&app, &hs256(json!({"sub": 3, "role": "user", "exp": exp, "scope": ["x"]})), &[]).await, Ok(vec![3]));

    let future_iat = hs256(json!({"role": "admin", "exp": exp, "iat": now() + 600}));
    refused(sees(&app, &future_iat, &[]).await, "invalid-jwt", "WXNOTIFY_JWT_LEEWAY", &future_iat);
    let skewed_iat = hs256(json!({"role": "admin", "exp": exp, "iat": now() + 30}));
    assert_eq!(sees(&app, &skewed_iat, &[]).await, Ok(vec![1, 2, 3]));
    let future_nbf = hs256(json!({"role": "admin", "exp": exp, "nbf": now() + 600}));
    refused(sees(&app, &future_nbf, &[]).await, "invalid-jwt", "nbf", &future_nbf);
    let past_nbf = hs256(json!({"role": "admin", "exp": exp, "nbf": now() - 10}));
    assert_eq!(sees(&app, &past_nbf, &[]).await, Ok(vec![1, 2, 3]));
    let just_expired = hs256(json!({"role": "admin", "exp": now() - 20}));
    assert_eq!(sees(&app, &just_expired, &[]).await, Ok(vec![1, 2, 3]), "within the 60 s leeway");
    let expired = hs256(json!({"role": "admin", "exp": now() - 600}));
    refused(sees(&app, &expired, &[]).await, "invalid-jwt", "expired", &expired);
    let forever = hs256(json!({"role": "admin"}));
    refused(sees(&app, &forever, &[]).await, "invalid-jwt", "`exp`", &forever);

    let no_role = hs256(json!({"sub": "2", "exp": exp}));
    refused(sees(&app, &no_role, &[]).await, "jwt-missing-role-claims", "WXNOTIFY_JWT_CLAIMS_NAMESPACE", &no_role);
    let odd_sub = hs256(json!({"sub": "auth0|abc", "role": "user", "exp": exp}));
    refused(sees(&app, &odd_sub, &[]).await, "jwt-invalid-claims", "WXNOTIFY_JWT_USER_ID_CLAIM", &odd_sub);
    let unknown_role = hs256(json!({"role": "editor", "exp": exp}));
    refused(sees(&app, &unknown_role, &[]).await, "jwt-invalid-claims", "not a wxnotify role", &unknown_role);
    // Malformed tokens: a clear refusal each, never a crash.
    let header = b64(br#"{"alg":"HS256"}"#);
    let malformed = [
        "abc".to_string(),
        "a.b".into(),
        "a.b.c.d".into(),
        format!("{}.{}.sig", b64(b"not json"), b64(b"{}")),
        format!("{header}.{}.sig", b64(b"not json")),
        format!("{header}.{}.sig", b64(b"[1,2]")),
        format!("{}.{}.sig", b64(br#"{"alg":"HS999"}"#), b64(b"{}")),
        format!("{}.{}.sig", b64(br#"{"typ":"JWT"}"#), b64(b"{}")),
        hs256(json!({"role": "admin", "exp": "tomorrow"})),
        format!("{}.{}.sig", b64(format!(r#"{{"alg":"RS256","kid":"{}"}}"#, "k".repeat(4000)).as_bytes()), b64(b"{}")),
    ];
    for token in &malformed {
        refused(sees(&app, token, &[]).await, "invalid-jwt", "", token);
    }
    refused(outcome(post(&app, &[("Authorization", "Basic YWxhZGRpbjpvcGVuc2VzYW1l")], ACCOUNTS).await), "invalid-jwt", "Bearer", "");
    refused(outcome(post(&app, &[("Authorization", "Bearer ")], ACCOUNTS).await), "invalid-jwt", "Bearer", "");
    // The server's own tokens keep working, and the server is still up.
    assert_eq!(sees(&app, &app.admin_token(), &[]).await, Ok(vec![1, 2, 3]));
}

fn hasura(default: &str, allowed: &[&str], user_id: Option<&str>) -> Value {
    let mut claims = json!({"x-hasura-default-role": default, "x-hasura-allowed-roles": allowed});
    if let Some(id) = user_id {
        claims["x-hasura-user-id"] = json!(id);
    }
    claims
}

async fn hasura_claims_switch_roles_with_x_hasura_role(backend: DatabaseKind) {
    let Some(app) = start(backend, &[]).await else { return };
    let exp = now() + 600;
    let ns = "https://hasura.io/jwt/claims";
    let both = hs256(json!({"sub": "auth0|u2", "exp": exp, ns: hasura("user", &["user", "admin"], Some("2"))}));
    assert_eq!(sees(&app, &both, &[]).await, Ok(vec![2]), "the default role, user 2");
    assert_eq!(sees(&app, &both, &[("X-Hasura-Role", "admin")]).await, Ok(vec![1, 2, 3]));
    assert_eq!(sees(&app, &both, &[("X-Hasura-Role", "user")]).await, Ok(vec![2]));
    refused(sees(&app, &both, &[("X-Hasura-Role", "anonymous")]).await, "access-denied", "not one of the roles", &both);

    let user_only = hs256(json!({"exp": exp, ns: hasura("user", &["user"], Some("3"))}));
    assert_eq!(sees(&app, &user_only, &[]).await, Ok(vec![3]));
    refused(sees(&app, &user_only, &[("X-Hasura-Role", "admin")]).await, "access-denied", "not one of the roles", &user_only);

    // Hasura's keys are case-insensitive, as its session variables are.
    let shouty = hs256(json!({"exp": exp, ns: {"X-Hasura-Default-Role": "admin", "X-Hasura-Allowed-Roles": ["admin"]}}));
    assert_eq!(sees(&app, &shouty, &[]).await, Ok(vec![1, 2, 3]));

    let no_allowed = hs256(json!({"exp": exp, ns: {"x-hasura-default-role": "user", "x-hasura-user-id": "2"}}));
    refused(sees(&app, &no_allowed, &[]).await, "jwt-missing-role-claims", "x-hasura-allowed-roles", &no_allowed);
    let no_default = hs256(json!({"exp": exp, ns: {"x-hasura-allowed-roles": ["user"]}}));
    refused(sees(&app, &no_default, &[]).await, "jwt-missing-role-claims", "x-hasura-default-role", &no_default);
    let bad_list = hs256(json!({"exp": exp, ns: {"x-hasura-default-role": "user", "x-hasura-allowed-roles": "user"}}));
    refused(sees(&app, &bad_list, &[]).await, "jwt-invalid-claims", "x-hasura-allowed-roles", &bad_list);
    let odd_id = hs256(json!({"exp": exp, ns: hasura("user", &["user"], Some("u-2"))}));
    refused(sees(&app, &odd_id, &[]).await, "jwt-invalid-claims", "x-hasura-user-id", &odd_id);
    // Stringified claims on a server that expects JSON say which setting to change.
    let stringified = hs256(json!({"exp": exp, ns: hasura("user", &["user"], Some("2")).to_string()}));
    refused(sees(&app, &stringified, &[]).await, "jwt-invalid-claims", "WXNOTIFY_JWT_CLAIMS_FORMAT", &stringified);
    // Asking for a role without any credentials is refused, not ignored.
    refused(outcome(post(&app, &[("X-Hasura-Role", "admin")], ACCOUNTS).await), "access-denied", "needs credentials", "");
}

async fn hasura_stringified_claims_under_a_configured_path(backend: DatabaseKind) {
    let settings = [("JWT_CLAIMS_FORMAT", "stringified_json"), ("JWT_CLAIMS_NAMESPACE", "$.app['hasura claims']")];
    let Some(app) = start(backend, &settings).await else { return };
    let exp = now() + 600;
    let claims = hasura("user", &["user", "admin"], Some("1")).to_string();
    let cognito_like = hs256(json!({"sub": "x", "exp": exp, "app": {"hasura claims": claims}}));
    assert_eq!(sees(&app, &cognito_like, &[]).await, Ok(vec![1]));
    assert_eq!(sees(&app, &cognito_like, &[("x-hasura-role", "admin")]).await, Ok(vec![1, 2, 3]));
    refused(sees(&app, &cognito_like, &[("x-hasura-role", "anonymous")]).await, "access-denied", "not one of the roles", &cognito_like);
    let as_object = hs256(json!({"exp": exp, "app": {"hasura claims": hasura("user", &["user"], Some("1"))}}));
    refused(sees(&app, &as_object, &[]).await, "jwt-invalid-claims", "WXNOTIFY_JWT_CLAIMS_FORMAT", &as_object);
    // The default namespace means nothing on this server: the flat claims count.
    let elsewhere = hs256(json!({"exp": exp, "https://hasura.io/jwt/claims": hasura("admin", &["admin"], None)}));
    refused(sees(&app, &elsewhere, &[]).await, "jwt-missing-role-claims", "$.app['hasura claims']", &elsewhere);
}

async fn zion_tokens_work_as_they_are(backend: DatabaseKind) {
    let Some(app) = start(backend, &[("JWT_ISSUER", "zionbackend"), ("JWT_USER_ID_CLAIM", "account_id")]).await else { return };
    let iat = now();
    let exp = iat + 86400;
    // The seed's token: `{"alg":"HS256"}` (no typ), a `roles` list, a non-numeric sub.
    let seed = json!({"iss": "zionbackend", "rf": "NnyKvkm", "roles": ["admin"], "sub": "K5zJrqEqkd0", "iat": iat, "exp": exp});
    let zion = token(json!({"alg": "HS256"}), &seed, hmac(JWT_SECRET.as_bytes()));
    assert_eq!(sees(&app, &zion, &[]).await, Ok(vec![1, 2, 3]));
    refused(sees(&app, &zion, &[("X-Hasura-Role", "user")]).await, "access-denied", "not one of the roles", &zion);

    let user = json!({"iss": "zionbackend", "roles": ["user"], "sub": "K5zJrqEqkd0", "account_id": "2", "iat": iat, "exp": exp});
    assert_eq!(sees(&app, &hs256(user), &[]).await, Ok(vec![2]));
    let no_account = hs256(json!({"iss": "zionbackend", "roles": ["user"], "sub": "2", "exp": exp}));
    refused(sees(&app, &no_account, &[]).await, "jwt-invalid-claims", "WXNOTIFY_JWT_USER_ID_CLAIM", &no_account);
    let several = hs256(json!({"iss": "zionbackend", "roles": ["editor", "user", "admin"], "account_id": 3, "exp": exp}));
    assert_eq!(sees(&app, &several, &[]).await, Ok(vec![3]), "the first role wxnotify knows");
    assert_eq!(sees(&app, &several, &[("X-Hasura-Role", "admin")]).await, Ok(vec![1, 2, 3]));

    let other_issuer = hs256(json!({"iss": "elsewhere", "roles": ["admin"], "exp": exp}));
    refused(sees(&app, &other_issuer, &[]).await, "invalid-jwt", "WXNOTIFY_JWT_ISSUER", &other_issuer);
    let no_issuer = hs256(json!({"roles": ["admin"], "exp": exp}));
    refused(sees(&app, &no_issuer, &[]).await, "invalid-jwt", "WXNOTIFY_JWT_ISSUER", &no_issuer);
    // The server's own tokens carry the configured issuer, so they pass its check.
    assert_eq!(sees(&app, &app.state.services.jwt.mint(Role::Admin, None, Duration::from_secs(60)), &[]).await, Ok(vec![1, 2, 3]));
}

async fn the_admin_secret_grants_admin_and_poses_as_a_user(backend: DatabaseKind) {
    let Some(app) = start(backend, &[("ADMIN_SECRET", ADMIN_SECRET)]).await else { return };
    assert_eq!(doctor_auth(&app).await, Verdict::Ok("algorithms HS256; admin secret set".into()));
    let as_admin = |name| vec![(name, ADMIN_SECRET)];
    assert_eq!(outcome(post(&app, &as_admin(SECRET_HEADER), ACCOUNTS).await), Ok(vec![1, 2, 3]));
    assert_eq!(outcome(post(&app, &as_admin("x-hasura-admin-secret"), ACCOUNTS).await), Ok(vec![1, 2, 3]));
    assert_eq!(outcome(post(&app, &as_admin("X-Wxnotify-Admin-Secret"), ACCOUNTS).await), Ok(vec![1, 2, 3]));

    let wrong = [(SECRET_HEADER, "admin-secret-for-tests-0124")];
    refused(outcome(post(&app, &wrong, ACCOUNTS).await), "access-denied", "does not match WXNOTIFY_ADMIN_SECRET", "");
    let body = post(&app, &wrong, "{ __typename }").await;
    assert!(body["data"].is_null() && body["errors"][0]["extensions"]["code"] == "access-denied", "{body}");
    let prefix = [(SECRET_HEADER, "admin-secret")];
    refused(outcome(post(&app, &prefix, ACCOUNTS).await), "access-denied", "does not match", "");
    // Missing: an anonymous request, which may not read accounts.
    let body = post(&app, &[], "{ __typename }").await;
    assert_eq!(body["data"]["__typename"], "query_root", "{body}");
    refused(outcome(post(&app, &[], ACCOUNTS).await), "access-denied", "", "");

    // As Hasura: the secret with X-Hasura-Role (and X-Hasura-User-Id) answers as that role.
    let pose = [(SECRET_HEADER, ADMIN_SECRET), ("X-Hasura-Role", "user"), ("X-Hasura-User-Id", "2")];
    assert_eq!(outcome(post(&app, &pose, ACCOUNTS).await), Ok(vec![2]));
    let no_id = [(SECRET_HEADER, ADMIN_SECRET), ("X-Hasura-Role", "user")];
    refused(outcome(post(&app, &no_id, ACCOUNTS).await), "access-denied", "X-Hasura-User-Id", "");
    let anonymous = [(SECRET_HEADER, ADMIN_SECRET), ("X-Hasura-Role", "anonymous")];
    refused(outcome(post(&app, &anonymous, ACCOUNTS).await), "access-denied", "", "");
    let unknown = [(SECRET_HEADER, ADMIN_SECRET), ("X-Hasura-Role", "editor")];
    refused(outcome(post(&app, &unknown, ACCOUNTS).await), "access-denied", "not a wxnotify role", "");
    // The secret wins over a bearer token, as in Hasura.
    let with_token = [(SECRET_HEADER, ADMIN_SECRET), ("Authorization", "Bearer not-a-token")];
    assert_eq!(outcome(post(&app, &with_token, ACCOUNTS).await), Ok(vec![1, 2, 3]));

    // The console's statistics take the same credentials as GraphQL.
    let stats = |headers: Vec<(&'static str, &'static str)>| {
        let request = reqwest::Client::new().get(format!("{}/api/console/stats", app.address));
        headers.into_iter().fold(request, |r, (k, v)| r.header(k, v)).send()
    };
    assert_eq!(stats(vec![(SECRET_HEADER, ADMIN_SECRET)]).await.unwrap().status(), 200);
    assert_eq!(stats(vec![(SECRET_HEADER, "admin-secret-for-tests-0124")]).await.unwrap().status(), 401);
    let posing = vec![(SECRET_HEADER, ADMIN_SECRET), ("X-Hasura-Role", "user"), ("X-Hasura-User-Id", "2")];
    assert_eq!(stats(posing).await.unwrap().status(), 403);
}

async fn an_admin_secret_header_is_refused_when_none_is_configured(backend: DatabaseKind) {
    let Some(app) = start(backend, &[]).await else { return };
    let body = post(&app, &[(SECRET_HEADER, ADMIN_SECRET)], "{ __typename }").await;
    assert!(body["data"].is_null(), "{body}");
    refused(outcome(body), "access-denied", "WXNOTIFY_ADMIN_SECRET is unset", "");
    let body = post(&app, &[("X-Wxnotify-Admin-Secret", "whatever")], ACCOUNTS).await;
    refused(outcome(body), "access-denied", "WXNOTIFY_ADMIN_SECRET is unset", "");
    // Bearer tokens still work.
    assert_eq!(sees(&app, &app.admin_token(), &[]).await, Ok(vec![1, 2, 3]));
    assert_eq!(doctor_auth(&app).await, Verdict::Ok("algorithms HS256; no admin secret (the header is refused)".into()));
}

async fn rs256_through_a_pem_key_and_confusion_refused(backend: DatabaseKind) {
    let key = Rsa::new();
    // As an environment variable would carry it: `\n` escapes.
    let escaped = key.pem().replace('\n', "\\n");
    let Some(app) = start(backend, &[("JWT_PUBLIC_KEY", &escaped)]).await else { return };
    let exp = now() + 600;
    assert_eq!(sees(&app, &key.sign(None, &json!({"sub": "2", "role": "user", "exp": exp})), &[]).await, Ok(vec![2]));
    let ns = "https://hasura.io/jwt/claims";
    let idp = key.sign(Some("any"), &json!({"sub": "x", "exp": exp, ns: hasura("admin", &["admin", "user"], Some("3"))}));
    assert_eq!(sees(&app, &idp, &[]).await, Ok(vec![1, 2, 3]));
    assert_eq!(sees(&app, &idp, &[("X-Hasura-Role", "user")]).await, Ok(vec![3]));

    let stranger = Rsa::new().sign(None, &json!({"role": "admin", "exp": exp}));
    refused(sees(&app, &stranger, &[]).await, "invalid-jwt", "signature", &stranger);

    // Algorithm confusion: HS256 "signed" with the public key as the secret.
    let claims = json!({"role": "admin", "exp": exp});
    for secret in [key.pem().into_bytes(), escaped.clone().into_bytes(), key.pair.public_key().as_der().unwrap().as_ref().to_vec()] {
        let confused = token(json!({"alg": "HS256", "typ": "JWT"}), &claims, hmac(&secret));
        refused(sees(&app, &confused, &[]).await, "invalid-jwt", "signature", &confused);
    }
    let unsigned = format!("{}.{}.", b64(br#"{"alg":"none","typ":"JWT"}"#), b64(claims.to_string().as_bytes()));
    refused(sees(&app, &unsigned, &[]).await, "invalid-jwt", "alg none", &unsigned);
    let unsigned = format!("{}.{}.", b64(br#"{"alg":"None"}"#), b64(claims.to_string().as_bytes()));
    refused(sees(&app, &unsigned, &[]).await, "invalid-jwt", "alg none", &unsigned);
    // An RS256 header on an HMAC signature made with the public key.
    let swapped = token(json!({"alg": "RS256"}), &claims, hmac(key.pem().as_bytes()));
    refused(sees(&app, &swapped, &[]).await, "invalid-jwt", "signature", &swapped);
    let es = Ec::new().sign("e", &claims);
    refused(sees(&app, &es, &[]).await, "invalid-jwt", "WXNOTIFY_JWT_ALGORITHMS", &es);
    assert_eq!(sees(&app, &app.admin_token(), &[]).await, Ok(vec![1, 2, 3]), "the server's own tokens still work");
}

/// A JWKS endpoint on loopback whose document the test replaces, counting fetches.
struct JwksServer {
    url: String,
    document: Arc<std::sync::Mutex<Value>>,
    fetches: Arc<AtomicUsize>,
}

async fn serve_jwks(document: Value) -> JwksServer {
    let document = Arc::new(std::sync::Mutex::new(document));
    let fetches = Arc::new(AtomicUsize::new(0));
    let (doc, count) = (document.clone(), fetches.clone());
    let app = axum::Router::new().route(
        "/.well-known/jwks.json",
        axum::routing::get(move || {
            let (doc, count) = (doc.clone(), count.clone());
            async move {
                count.fetch_add(1, Ordering::SeqCst);
                let body = doc.lock().map(|d| d.clone()).unwrap_or_default();
                axum::Json(body)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
    let url = format!("http://{}/.well-known/jwks.json", listener.local_addr().expect("an address"));
    tokio::spawn(async move { axum::serve(listener, app).await.ok() });
    JwksServer { url, document, fetches }
}

async fn rs256_and_es256_through_a_rotating_jwks(backend: DatabaseKind) {
    let (old, new, ec) = (Rsa::new(), Rsa::new(), Ec::new());
    // An `oct` key in the set must never verify anything.
    let oct = json!({"kty": "oct", "kid": "shared", "k": b64(b"a-shared-secret-a-shared-secret!")});
    let jwks = serve_jwks(json!({"keys": [old.jwk("k1"), ec.jwk("e1"), oct]})).await;
    let settings = [("JWT_JWKS_URL", jwks.url.as_str()), ("JWT_ALGORITHMS", "RS256,ES256")];
    let exp = now() + 600;
    let admin = ec.sign("e1", &json!({"role": "admin", "exp": exp}));
    let Some(app) = start_seeded_by(backend, &settings, Some(&admin)).await else { return };
    let user2 = json!({"sub": "2", "role": "user", "exp": exp});
    assert_eq!(sees(&app, &old.sign(Some("k1"), &user2), &[]).await, Ok(vec![2]));
    assert_eq!(sees(&app, &ec.sign("e1", &json!({"role": "admin", "exp": exp})), &[]).await, Ok(vec![1, 2, 3]));
    assert_eq!(sees(&app, &old.sign(None, &user2), &[]).await, Ok(vec![2]), "no kid: any RS256 key of the set");
    assert_eq!(jwks.fetches.load(Ordering::SeqCst), 1, "the set is cached");

    // Rotation: the provider publishes k2 and retires k1.
    *jwks.document.lock().unwrap() = json!({"keys": [new.jwk("k2"), ec.jwk("e1")]});
    assert_eq!(sees(&app, &new.sign(Some("k2"), &user2), &[]).await, Ok(vec![2]), "an unknown kid fetches the set again");
    assert_eq!(jwks.fetches.load(Ordering::SeqCst), 2);
    let retired = old.sign(Some("k1"), &user2);
    refused(sees(&app, &retired, &[]).await, "invalid-jwt", "WXNOTIFY_JWT_JWKS_URL", &retired);
    let made_up = new.sign(Some("k3"), &user2);
    refused(sees(&app, &made_up, &[]).await, "invalid-jwt", "at most once a minute", &made_up);
    assert_eq!(jwks.fetches.load(Ordering::SeqCst), 2, "unknown kids refetch at most once a minute");

    // HS256 is not in WXNOTIFY_JWT_ALGORITHMS here: not the server's secret, not the oct key.
    let hs =
        token(json!({"alg": "HS256", "kid": "shared"}), &json!({"role": "admin", "exp": exp}), hmac(b"a-shared-secret-a-shared-secret!"));
    refused(sees(&app, &hs, &[]).await, "invalid-jwt", "WXNOTIFY_JWT_ALGORITHMS", &hs);
    refused(sees(&app, &app.admin_token(), &[]).await, "invalid-jwt", "WXNOTIFY_JWT_ALGORITHMS", "");
    let swapped = token(json!({"alg": "RS256", "kid": "k2"}), &json!({"role": "admin", "exp": exp}), hmac(new.pem().as_bytes()));
    refused(sees(&app, &swapped, &[]).await, "invalid-jwt", "signature", &swapped);

    // `wxnotify doctor` reports the mode, fetching the set to prove it answers.
    let auth = doctor_auth(&app).await;
    let Verdict::Warn(text) = &auth else { panic!("{auth:?}") };
    assert!(text.contains("RS256,ES256") && text.contains("2 signing key(s)") && text.contains("HS256 is not allowed"), "{text}");
}

/// The `auth` line of `wxnotify doctor` for the app's settings.
async fn doctor_auth(app: &TestApp) -> Verdict {
    let checks = wxnotify::doctor::run(&app.state.settings).await;
    checks.into_iter().find(|c| c.name == "auth").map(|c| c.verdict).expect("doctor has an auth check")
}

/// A Python that can `import jwt` (PyJWT): `python3`, else the system one.
fn pyjwt_python() -> String {
    for candidate in ["python3", "/usr/bin/python3"] {
        let ok = std::process::Command::new(candidate).args(["-c", "import jwt"]).output().is_ok_and(|o| o.status.success());
        if ok {
            return candidate.to_string();
        }
    }
    panic!("the auth oracle needs PyJWT: `apt-get install python3-jwt` or `pip install PyJWT` (.ci/run installs it)");
}

/// PyJWT's verdict on each token.
fn pyjwt_verdicts(tokens: &[String], issuer: &str, audience: &str) -> Vec<bool> {
    use std::io::Write;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/oracle/pyjwt_verdicts.py");
    let spec = json!({"secret": JWT_SECRET, "issuer": issuer, "audience": audience, "leeway": 60, "tokens": tokens});
    let mut child = std::process::Command::new(pyjwt_python())
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("running the PyJWT oracle");
    child.stdin.take().expect("its stdin").write_all(spec.to_string().as_bytes()).expect("writing the corpus");
    let output = child.wait_with_output().expect("the oracle's answer");
    assert!(output.status.success(), "the PyJWT oracle failed");
    serde_json::from_slice(&output.stdout).expect("a JSON list of verdicts")
}

/// One generated token: time claims at least 30 s away from every leeway
/// boundary (so the seconds the test takes cannot flip a verdict), `iss`
/// and `aud` present, absent or wrong, and now and then a bad signature,
/// `alg: none` or a tampered payload.
fn generated_token(rng: &mut rand::rngs::StdRng, now: i64) -> String {
    use rand::Rng;
    use rand::seq::IndexedRandom;
    let mut claims = json!({"role": "admin"});
    let mut time = |name: &str, presence: f64, offsets: &[i64], rng: &mut rand::rngs::StdRng| {
        if rng.random_bool(presence) {
            let offset = *offsets.choose(rng).unwrap_or(&0);
            claims[name] = if rng.random_bool(0.03) { json!("soon") } else { json!(now + offset) };
        }
    };
    time("exp", 0.9, &[-3600, -90, -30, 30, 600, 600, 86400, 86400], rng);
    time("nbf", 0.5, &[-3600, -30, -30, 30, 90, 3600], rng);
    time("iat", 0.5, &[-86400, -30, -30, 30, 90, 3600], rng);
    let iss = [None, Some("zionbackend"), Some("zionbackend"), Some("zionbackend"), Some("zionbackend"), Some("elsewhere")];
    if let Some(iss) = iss.choose(rng).copied().flatten() {
        claims["iss"] = json!(iss);
    }
    let aud = [None, Some(json!("app")), Some(json!("app")), Some(json!("app")), Some(json!(["other", "app"]))];
    let aud = if rng.random_bool(0.15) {
        [Some(json!("other")), Some(json!(["x"]))].choose(rng).cloned().flatten()
    } else {
        aud.choose(rng).cloned().flatten()
    };
    if let Some(aud) = aud {
        claims["aud"] = aud;
    }
    match rng.random_range(0..20) {
        0 => token(json!({"alg": "HS256", "typ": "JWT"}), &claims, hmac(b"not-the-server-secret-not-the-server")),
        1 => format!("{}.{}.", b64(br#"{"alg":"none","typ":"JWT"}"#), b64(claims.to_string().as_bytes())),
        2 => {
            let signed = hs256(claims.clone());
            let parts: Vec<&str> = signed.split('.').collect();
            claims["role"] = json!("user");
            format!("{}.{}.{}", parts[0], b64(claims.to_string().as_bytes()), parts[2])
        }
        _ => hs256(claims),
    }
}

async fn time_and_audience_checks_agree_with_pyjwt(backend: DatabaseKind) {
    use rand::SeedableRng;
    let Some(app) = start(backend, &[("JWT_ISSUER", "zionbackend"), ("JWT_AUDIENCE", "app")]).await else { return };
    let mut rng = rand::rngs::StdRng::seed_from_u64(14);
    let now = now();
    let tokens: Vec<String> = (0..600).map(|_| generated_token(&mut rng, now)).collect();
    let expected = pyjwt_verdicts(&tokens, "zionbackend", "app");
    assert_eq!(expected.len(), tokens.len());
    let accepted = expected.iter().filter(|v| **v).count();
    println!("PyJWT accepts {accepted} of {} generated tokens", tokens.len());
    assert!(accepted >= 20 && accepted <= tokens.len() - 20, "the corpus needs both verdicts: {accepted}");
    for (token, expected) in tokens.iter().zip(expected) {
        let got = sees(&app, token, &[]).await;
        match (&got, expected) {
            (Ok(ids), true) => assert_eq!(ids, &vec![1, 2, 3]),
            (Err((code, _)), false) => assert_eq!(code, "invalid-jwt", "{got:?}"),
            _ => {
                let claims = token.split('.').nth(1).and_then(|c| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(c).ok());
                let claims = String::from_utf8_lossy(&claims.unwrap_or_default()).to_string();
                panic!("PyJWT says {expected}, wxnotify answers {got:?}, for claims {claims}");
            }
        }
    }
}

async fn an_unreachable_jwks_is_a_clear_refusal(backend: DatabaseKind) {
    // A port nothing listens on any more.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let url = format!("http://{}/jwks.json", listener.local_addr().expect("an address"));
    drop(listener);
    let Some(app) = start(backend, &[("JWT_JWKS_URL", &url)]).await else { return };
    let token = Rsa::new().sign(Some("k1"), &json!({"role": "admin", "exp": now() + 600}));
    for _ in 0..2 {
        refused(sees(&app, &token, &[]).await, "invalid-jwt", "could not be fetched", &token);
    }
    // HS256 tokens do not depend on the provider, and the server stays up.
    assert_eq!(sees(&app, &app.admin_token(), &[]).await, Ok(vec![1, 2, 3]));
    let auth = doctor_auth(&app).await;
    assert!(matches!(&auth, Verdict::Fail(text) if text.starts_with("WXNOTIFY_JWT_JWKS_URL")), "{auth:?}");
}
