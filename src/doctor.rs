//! `wxnotify doctor`: checks what a deployment needs and says what to fix —
//! the settings, the database (and on PostgreSQL whether its connection uses
//! TLS where it should) and its migrations, the JWT secret and auth mode, the
//! service account's and the mini-program's credentials (against WeChat, or
//! whatever `WXNOTIFY_WECHAT_API_BASE` names), the two push endpoints'
//! settings, and the subscription-message templates in `message_template`
//! against each app's template library (`/wxaapi/newtmpl/gettemplate`).
//! It spends no token quota when a valid token is already cached (and then
//! cannot tell a wrong secret until that token expires).

use migration::{Migrator, MigratorTrait};

use crate::db::DatabaseKind;
use crate::settings::Settings;
use crate::wechat::{App, Reaction, WechatClient};

/// One check's verdict.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Ok(String),
    Warn(String),
    Fail(String),
}

#[derive(Debug)]
pub struct Check {
    pub name: &'static str,
    pub verdict: Verdict,
}

/// Every check, in order; later checks that need the database are skipped
/// (failed) when it cannot be opened.
pub async fn run(settings: &Settings) -> Vec<Check> {
    let mut checks = Vec::new();
    let mut push = |name, verdict| checks.push(Check { name, verdict });
    let db = match crate::db::connect(settings).await {
        Ok(db) => {
            push("database", Verdict::Ok(format!("{} answers", crate::db::redact_url(&settings.database_url))));
            db
        }
        Err(e) => {
            push("database", Verdict::Fail(format!("{e:#}")));
            return checks;
        }
    };
    if settings.database_kind == DatabaseKind::Postgres {
        push("database tls", transport(&db).await);
    }
    push(
        "migrations",
        match Migrator::get_pending_migrations(&db).await {
            Ok(pending) if pending.is_empty() => Verdict::Ok("up to date".into()),
            Ok(pending) => Verdict::Warn(format!("{} pending: `wxnotify migrate` or `serve` applies them", pending.len())),
            Err(e) => Verdict::Fail(format!("cannot read the migration table: {e}")),
        },
    );
    push(
        "jwt secret",
        match (&settings.jwt_secret, settings.database_kind) {
            (Some(_), _) => Verdict::Ok("set".into()),
            (None, DatabaseKind::Sqlite) => {
                Verdict::Warn("not set: a development secret kept in the database is used; set WXNOTIFY_JWT_SECRET in production".into())
            }
            (None, DatabaseKind::Postgres) => Verdict::Fail("WXNOTIFY_JWT_SECRET is required with PostgreSQL".into()),
        },
    );
    push("auth", auth_mode(settings).await);
    match WechatClient::new(settings, db.clone()) {
        Ok(wechat) => {
            push("service account", service_account(&wechat).await);
            push("mini-program", mini_program(&wechat).await);
            push("subscription templates", subscription_templates(&db, &wechat).await);
            push("quota", quota(&wechat).await);
        }
        Err(e) => push("wechat client", Verdict::Fail(e.to_string())),
    }
    push("callback", callback(settings));
    push("mini-program push", mini_program_push(settings));
    db.close().await.ok();
    checks
}

/// Whether this process's PostgreSQL connections are encrypted, and
/// whether they leave the host (the server's address is a loopback one, or
/// a Unix socket).
async fn transport(db: &sea_orm::DatabaseConnection) -> Verdict {
    let sql = crate::db::sql::Sql::new(
        "SELECT s.ssl, COALESCE(inet_server_addr() <<= inet '127.0.0.0/8' OR inet_server_addr() = inet '::1', true) AS same_host \
         FROM pg_stat_ssl AS s WHERE s.pid = pg_backend_pid()",
    );
    let row = match sql.one(db).await {
        Ok(Some(row)) => row,
        Ok(None) => return Verdict::Warn("pg_stat_ssl has no row for this connection: cannot tell whether it uses TLS".into()),
        Err(e) => return Verdict::Warn(format!("cannot read pg_stat_ssl: {e}")),
    };
    match (row.try_get::<bool>("", "ssl"), row.try_get::<bool>("", "same_host")) {
        (Ok(ssl), Ok(same_host)) => transport_verdict(ssl, same_host),
        (Err(e), _) | (_, Err(e)) => Verdict::Warn(format!("cannot read pg_stat_ssl: {e}")),
    }
}

/// TLS belongs on a connection that crosses a network, and costs without
/// protecting anything on one that stays on the host.
fn transport_verdict(ssl: bool, same_host: bool) -> Verdict {
    match (ssl, same_host) {
        (true, true) => Verdict::Warn(
            "TLS to a PostgreSQL on this host (sslmode=prefer, the default, takes it whenever the server offers it): \
             on the loopback it protects nothing and cost 20-35 % of the real-time throughput; \
             add `?sslmode=disable` to WXNOTIFY_DATABASE_URL (docs/performance.md)"
                .into(),
        ),
        (true, false) => Verdict::Ok("TLS to a PostgreSQL on another host".into()),
        (false, true) => Verdict::Ok("no TLS, to a PostgreSQL on this host".into()),
        (false, false) => Verdict::Warn(
            "no TLS to a PostgreSQL on another host: add `?sslmode=require` (or `verify-full` with `sslrootcert=...`) \
             to WXNOTIFY_DATABASE_URL"
                .into(),
        ),
    }
}

async fn service_account(wechat: &WechatClient) -> Verdict {
    if let Err(e) = wechat.require(App::Oa) {
        return Verdict::Warn(format!("{e} (needed for sync and sending)"));
    }
    match wechat.access_token(App::Oa).await {
        Ok(_) => Verdict::Ok(format!("{} has a valid access token", wechat.appid(App::Oa).unwrap_or_default())),
        Err(e) => Verdict::Fail(e.to_string()),
    }
}

/// A deliberately invalid login code: WeChat answers 40029 only when the
/// appid and secret are right.
async fn mini_program(wechat: &WechatClient) -> Verdict {
    if let Err(e) = wechat.require(App::Mp) {
        return Verdict::Warn(format!("{e} (needed for login and subscribe messages)"));
    }
    match wechat.login("wxnotify-doctor-probe").await {
        Err(e) if e.reaction() == Reaction::InvalidCode => {
            Verdict::Ok(format!("{} accepted by jscode2session", wechat.appid(App::Mp).unwrap_or_default()))
        }
        Ok(_) => Verdict::Ok("jscode2session answered".into()),
        Err(e) => Verdict::Fail(e.to_string()),
    }
}

/// Which tokens and headers are accepted; a JWKS is fetched to prove it answers.
async fn auth_mode(settings: &Settings) -> Verdict {
    let mut modes = vec![format!("algorithms {}", names(&settings.jwt_algorithms))];
    if let Some(key) = &settings.jwt_public_key {
        modes.push(format!("{:?} public key (WXNOTIFY_JWT_PUBLIC_KEY)", key.family));
    }
    if let Some(url) = &settings.jwt_jwks_url {
        match crate::auth::jwks::Jwks::new(url.clone()).count().await {
            Ok(count) => modes.push(format!("JWKS at {url} with {count} signing key(s)")),
            Err(e) => return Verdict::Fail(format!("WXNOTIFY_JWT_JWKS_URL: {url} cannot be used: {e}")),
        }
    }
    modes.push(if settings.admin_secret.is_some() { "admin secret set".into() } else { "no admin secret (the header is refused)".into() });
    let summary = modes.join("; ");
    if !settings.jwt_algorithms.contains(&jsonwebtoken::Algorithm::HS256) {
        return Verdict::Warn(format!(
            "{summary}: HS256 is not allowed, so tokens from loginWithWechatMiniApp and `wxnotify token` are refused"
        ));
    }
    Verdict::Ok(summary)
}

fn names(algorithms: &[jsonwebtoken::Algorithm]) -> String {
    algorithms.iter().map(|a| format!("{a:?}")).collect::<Vec<_>>().join(",")
}

fn callback(settings: &Settings) -> Verdict {
    match (&settings.oa_token, &settings.oa_aes_key) {
        (Some(_), Some(_)) => Verdict::Ok("token and EncodingAESKey set (plain and safe mode)".into()),
        (Some(_), None) => Verdict::Ok("token set (plain mode; set WXNOTIFY_OA_AES_KEY for safe mode)".into()),
        (None, _) => Verdict::Warn("WXNOTIFY_OA_TOKEN is not set: /wechat/callback refuses every event".into()),
    }
}

/// What WeChat has left today of template sends and follower calls.
async fn quota(wechat: &WechatClient) -> Verdict {
    if wechat.require(App::Oa).is_err() {
        return Verdict::Warn("the service account is not configured: no quota to read".into());
    }
    let mut parts = Vec::new();
    let mut low = false;
    for (path, quota) in crate::templates::quotas(wechat).await {
        match quota {
            Ok(q) => {
                low |= q.remain * 10 < q.daily_limit;
                parts.push(format!("{path}: {} of {} left today", q.remain, q.daily_limit));
            }
            Err(e) => return Verdict::Fail(format!("cannot read the quota of {path}: {e}")),
        }
    }
    let text = parts.join("; ");
    if low { Verdict::Warn(format!("{text} (under 10% left)")) } else { Verdict::Ok(text) }
}

fn mini_program_push(settings: &Settings) -> Verdict {
    match (&settings.mp_token, &settings.mp_aes_key) {
        (Some(_), Some(_)) => Verdict::Ok("token and EncodingAESKey set (plain and safe mode)".into()),
        (Some(_), None) => Verdict::Ok("token set (plain mode; set WXNOTIFY_MP_AES_KEY for safe mode)".into()),
        (None, _) => Verdict::Warn(
            "WXNOTIFY_MP_TOKEN is not set: /wechat/mp-callback refuses every push, so subscription credits come only from grantSubscription"
                .into(),
        ),
    }
}

/// Every OA_SUBSCRIBE / MP_SUBSCRIBE message template names a template of
/// its app's library, and fills only keywords that template has.
async fn subscription_templates(db: &sea_orm::DatabaseConnection, wechat: &WechatClient) -> Verdict {
    use crate::notify::outbox::Channel;
    let templates = match crate::notify::render::load_by_channels(db, &[Channel::OaSubscribe, Channel::MpSubscribe]).await {
        Ok(templates) => templates,
        Err(e) => return Verdict::Fail(format!("cannot read message_template: {e}")),
    };
    if templates.is_empty() {
        return Verdict::Ok("no OA_SUBSCRIBE or MP_SUBSCRIBE message template to check".into());
    }
    let mut problems = Vec::new();
    for (channel, app) in [(Channel::OaSubscribe, App::Oa), (Channel::MpSubscribe, App::Mp)] {
        let mine: Vec<_> = templates.iter().filter(|t| t.channel == channel).collect();
        if mine.is_empty() {
            continue;
        }
        let library = match wechat.subscription_templates(app).await {
            Ok(library) => library,
            Err(e) => return Verdict::Fail(format!("cannot list the {app:?} subscription templates: {e}")),
        };
        for template in mine {
            let Some(known) = library.iter().find(|l| l.template_id == template.template_id) else {
                problems.push(format!(
                    "`{}` names {} {}, which the account's library does not have",
                    template.name,
                    channel.as_str(),
                    template.template_id
                ));
                continue;
            };
            if let Some(keys) = template.data.as_object() {
                for key in keys.keys().filter(|k| !known.content.contains(&format!("{{{{{k}.DATA}}}}"))) {
                    problems.push(format!(
                        "`{}` fills {key}, which template {} ({}) does not have",
                        template.name, known.template_id, known.title
                    ));
                }
            }
        }
    }
    if problems.is_empty() {
        Verdict::Ok(format!("{} subscription message template(s) match the accounts' libraries", templates.len()))
    } else {
        Verdict::Fail(problems.join("; "))
    }
}

/// The report as the command prints it; true when nothing failed.
pub fn print(checks: &[Check]) -> bool {
    let mut healthy = true;
    for check in checks {
        let (mark, text) = match &check.verdict {
            Verdict::Ok(t) => ("ok  ", t),
            Verdict::Warn(t) => ("warn", t),
            Verdict::Fail(t) => {
                healthy = false;
                ("FAIL", t)
            }
        };
        println!("{mark}  {:<16} {text}", check.name);
    }
    healthy
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_is_wanted_across_a_network_and_not_on_the_loopback() {
        assert!(matches!(transport_verdict(true, true), Verdict::Warn(t) if t.contains("sslmode=disable")));
        assert!(matches!(transport_verdict(false, false), Verdict::Warn(t) if t.contains("sslmode=require")));
        assert!(matches!(transport_verdict(true, false), Verdict::Ok(_)));
        assert!(matches!(transport_verdict(false, true), Verdict::Ok(_)));
    }
}
