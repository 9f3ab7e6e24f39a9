//! The WeChat client against the simulator, with the token cache in a real
//! database (SQLite and PostgreSQL): single-flight refresh in one process and
//! across processes, refresh-once on a refused token, bounded retries, and
//! the typed endpoints.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::Utc;
use futures::StreamExt;
use futures::future::join_all;
use sea_orm::sea_query::Expr;
use sea_orm::{ConnectOptions, Database, DatabaseConnection, EntityTrait};
use wxnotify::db::DatabaseKind;
use wxnotify::settings::Settings;
use wxnotify::sim::{SimConfig, SimFollower, SimHandle, SimMpUser, SimTemplate, Simulator};
use wxnotify::wechat::{
    App, ClientPolicy, FormTemplateMessage, Quota, Reaction, RetryPolicy, SubscribeMessage, TemplateMessage, TemplateValue, WechatClient,
    WechatError,
};

use crate::both_databases;
use crate::common::{JWT_SECRET, TestApp};

const SEND: &str = "/cgi-bin/message/template/send";

/// A simulator with 300 generated followers (even ones with a unionid), one
/// who unfollowed, and two mini-program users.
async fn simulator() -> SimHandle {
    let mut followers: Vec<SimFollower> = (0..300).map(SimFollower::generated).collect();
    followers.push(SimFollower::new("oGoneFollower").with_unionid("uGone").unsubscribed());
    let mp_users =
        vec![SimMpUser::new("oMpUserA", Some("uSimUnion0000000000000000002"), &["code-a"]), SimMpUser::new("oMpUserB", None, &["code-b"])];
    Simulator::start(SimConfig { followers, mp_users, ..SimConfig::default() }).await.expect("the simulator starts")
}

/// Settings naming the test database and the simulator's apps.
fn settings(app: &TestApp, sim: &SimHandle, extra: &[(&str, &str)]) -> Settings {
    let (base, oa, mp) = (sim.base_url(), sim.oa_appid(), sim.mp_appid());
    let mut values = vec![
        ("DATABASE_URL", app.test_db.url.as_str()),
        ("JWT_SECRET", JWT_SECRET),
        ("WECHAT_API_BASE", base.as_str()),
        ("OA_APPID", oa.as_str()),
        ("OA_SECRET", "sim-oa-secret"),
        ("MP_APPID", mp.as_str()),
        ("MP_SECRET", "sim-mp-secret"),
        // These tests are about /cgi-bin/token's overlap and refresh rules;
        // the stable_token default is tested on its own.
        ("WECHAT_STABLE_TOKEN", "false"),
    ];
    values.extend_from_slice(extra);
    Settings::with_overrides(values).expect("valid test settings")
}

/// One "server process": its own client and its own database pool. The
/// pools are small because PostgreSQL's 100 connections are shared by every
/// test running at once.
async fn process(app: &TestApp, sim: &SimHandle, extra: &[(&str, &str)]) -> WechatClient {
    let settings = settings(app, sim, extra);
    let mut options = ConnectOptions::new(settings.database_url.clone());
    options.max_connections(6).sqlx_logging(false);
    if settings.database_kind == DatabaseKind::Sqlite {
        options.map_sqlx_sqlite_opts(|o| o.busy_timeout(Duration::from_secs(30)));
    }
    let db = Database::connect(options).await.expect("a pool of its own");
    WechatClient::with_policy(&settings, db, ClientPolicy { retry: RetryPolicy::fast(), ..ClientPolicy::default() }).expect("a client")
}

/// Like [`process`], counting the statements its pool runs on `actok`.
async fn counted_process(app: &TestApp, sim: &SimHandle) -> (WechatClient, Arc<AtomicU64>) {
    let settings = settings(app, sim, &[]);
    let mut options = ConnectOptions::new(settings.database_url.clone());
    options.max_connections(6).sqlx_logging(false);
    if settings.database_kind == DatabaseKind::Sqlite {
        options.map_sqlx_sqlite_opts(|o| o.busy_timeout(Duration::from_secs(30)));
    }
    let mut db = Database::connect(options).await.expect("a pool of its own");
    let reads = Arc::new(AtomicU64::new(0));
    let counter = reads.clone();
    db.set_metric_callback(move |info| {
        if info.statement.sql.contains("actok") {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    });
    let policy = ClientPolicy { retry: RetryPolicy::fast(), ..ClientPolicy::default() };
    (WechatClient::with_policy(&settings, db, policy).expect("a client"), reads)
}

/// Asks `client` for its token until it is `expected`, for at most
/// `within` (a PostgreSQL notification arrives a moment after the commit).
async fn token_becomes(client: &WechatClient, expected: &str, within: Duration) -> String {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let token = client.access_token(App::Oa).await.expect("a token");
        if token == expected || tokio::time::Instant::now() > deadline {
            return token;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn message(touser: &str) -> TemplateMessage {
    TemplateMessage {
        touser: touser.to_string(),
        template_id: "tmpl-digest".into(),
        url: None,
        miniprogram: None,
        data: BTreeMap::from([("thing1".to_string(), TemplateValue::new("3 new messages"))]),
        client_msg_id: None,
    }
}

fn follower(n: usize) -> String {
    SimFollower::generated(n).openid
}

fn all_ok<T: std::fmt::Debug>(results: Vec<Result<T, WechatError>>) {
    if let Some(Err(error)) = results.iter().find(|r| r.is_err()) {
        panic!("{} of {} calls failed, e.g.: {error}", results.iter().filter(|r| r.is_err()).count(), results.len());
    }
}

/// Makes every cached token due for refresh, as the clock would.
async fn expire_cached_tokens(db: &DatabaseConnection) {
    entity::actok::Entity::update_many()
        .col_expr(entity::actok::Column::Expiredtime, Expr::value(Utc::now()))
        .exec(db)
        .await
        .expect("expiring the cached tokens");
}

/// Reading the token cache never takes SQLite's locks away from it. Closing
/// any descriptor of a file drops every POSIX lock the process holds on that
/// file (close(2)), SQLite's own included, so a process that opens one of
/// SQLite's files itself loses them: another process could then take the
/// wal-index for unused and reset it under this one's mapping, which killed
/// a server with SIGBUS. Checked here: after many token reads, another
/// process (Python's `fcntl`) is still refused the wal-index's "in use"
/// byte (offset 128 of `-shm`), which every open connection holds shared.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reading_the_token_cache_on_sqlite_leaves_sqlites_file_locks_in_place() {
    let Some(app) = crate::common::spawn_app(DatabaseKind::Sqlite).await else { return };
    let sim = simulator().await;
    let client = process(&app, &sim, &[]).await;
    for _ in 0..20 {
        client.access_token(App::Oa).await.expect("a token");
    }
    let file = app.test_db.url.strip_prefix("sqlite://").expect("a SQLite file URL");
    let probe = "import fcntl, os, sys\n\
fd = os.open(sys.argv[1], os.O_RDWR)\n\
try:\n    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 128, os.SEEK_SET)\n\
except OSError:\n    print('held')\n    sys.exit(0)\n\
print('free')\n";
    let output = std::process::Command::new("python3")
        .args(["-c", probe, &format!("{file}-shm")])
        .output()
        .expect("python3 runs (it checks the locks from another process)");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "held",
        "another process could take the wal-index of a database this process has open: its locks were dropped"
    );
    client.access_token(App::Oa).await.expect("the token still reads");
}

both_databases! {
    async fn a_thousand_concurrent_sends_when_the_token_expires_fetch_exactly_one_token(app) {
        let sim = simulator().await;
        let client = process(&app, &sim, &[]).await;
        client.send_template(&message(&follower(0))).await.unwrap();
        assert_eq!(sim.token_fetches(), 1);
        expire_cached_tokens(&app.db).await;

        let sends = (0..1000).map(|n| {
            let client = client.clone();
            async move { client.send_template(&message(&follower(n % 300))).await }
        });
        all_ok(join_all(sends).await);
        assert_eq!(sim.token_fetches(), 2, "one fetch for the warm-up, exactly one for the crowd");
        assert_eq!(sim.sent_messages().len(), 1001);
    }

    async fn three_processes_sharing_one_database_fetch_one_token_in_total(app) {
        let sim = simulator().await;
        let processes = [process(&app, &sim, &[]).await, process(&app, &sim, &[]).await, process(&app, &sim, &[]).await];
        let crowd = |processes: &[WechatClient; 3]| {
            join_all((0..150).map(|n| {
                let client = processes[n % 3].clone();
                async move { client.send_template(&message(&follower(n))).await }
            }))
        };
        all_ok(crowd(&processes).await);
        assert_eq!(sim.token_fetches(), 1, "no cached token yet: one fetch for all three");

        expire_cached_tokens(&app.db).await;
        all_ok(crowd(&processes).await);
        assert_eq!(sim.token_fetches(), 2, "the token was due: one refresh for all three");
        assert_eq!(app.count("actok").await, 1);
    }

    async fn with_stable_token_three_processes_share_one_stable_token(app) {
        let sim = simulator().await;
        let stable = [("WECHAT_STABLE_TOKEN", "true")];
        let processes = [process(&app, &sim, &stable).await, process(&app, &sim, &stable).await, process(&app, &sim, &stable).await];
        let sends = (0..60).map(|n| {
            let client = processes[n % 3].clone();
            async move { client.send_template(&message(&follower(n))).await }
        });
        all_ok(join_all(sends).await);
        assert_eq!(sim.count_calls("/cgi-bin/stable_token"), 1);
        assert_eq!(sim.count_calls("/cgi-bin/token"), 0);
        let body = &sim.calls()[0].body;
        assert!(!body.contains("sim-oa-secret"), "the call log masks the secret: {body}");
    }

    async fn a_thousand_calls_read_the_token_row_only_a_few_times(app) {
        let sim = simulator().await;
        let (client, actok_statements) = counted_process(&app, &sim).await;
        // The first call starts the PostgreSQL listener; until it has
        // connected, which may take a while on a loaded machine, every call
        // reads the row (changes cannot be told), and once it has, the next
        // call reads it once more. Measure from the first call that reads
        // nothing (at once on SQLite).
        let mut warm = actok_statements.load(Ordering::Relaxed);
        for _ in 0..200 {
            client.send_template(&message(&follower(0))).await.unwrap();
            let now = actok_statements.load(Ordering::Relaxed);
            if now == warm {
                break;
            }
            warm = now;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let sends = (0..1000).map(|n| {
            let client = client.clone();
            async move { client.send_template(&message(&follower(n % 300))).await }
        });
        let started = std::time::Instant::now();
        all_ok(futures::stream::iter(sends).buffer_unordered(16).collect::<Vec<_>>().await);
        let seconds = started.elapsed().as_secs() + 1;
        let during = actok_statements.load(Ordering::Relaxed) - warm;
        // The in-memory copy is read again once it is a second old and when
        // the change signal moves (not at all here): each time by the 16
        // calls in flight at most. On a loaded machine the calls take
        // longer, so the bound follows the seconds they took, and stays far
        // below a read per call.
        assert!(during <= (16 * (seconds + 2)).min(250), "{during} statements on actok for 1,000 calls in {seconds} s");
        assert_eq!(sim.token_fetches(), 1);
    }

    async fn a_token_another_process_fetched_is_seen_by_the_next_call(app) {
        let sim = simulator().await;
        let (a, b) = (process(&app, &sim, &[]).await, process(&app, &sim, &[]).await);
        let first = a.access_token(App::Oa).await.unwrap();
        assert_eq!(first, a.access_token(App::Oa).await.unwrap(), "A keeps its copy");
        // B is told the token is bad (as by a 40001) and fetches another.
        sim.invalidate_tokens(&sim.oa_appid());
        b.send_template(&message(&follower(1))).await.unwrap();
        let second = b.access_token(App::Oa).await.unwrap();
        assert_ne!(first, second);
        // Well under the copy's one-second lifetime: the change itself is seen.
        assert_eq!(token_becomes(&a, &second, Duration::from_millis(300)).await, second);
        assert_eq!(sim.token_fetches(), 2);
    }

    async fn a_40001_drops_the_in_memory_copy(app) {
        let sim = simulator().await;
        let client = process(&app, &sim, &[]).await;
        let first = client.access_token(App::Oa).await.unwrap();
        client.send_template(&message(&follower(1))).await.unwrap();
        sim.invalidate_tokens(&sim.oa_appid());
        // Refused, discarded, refetched: the retry carries the new token at
        // once, without waiting for the copy to age or a notification.
        client.send_template(&message(&follower(2))).await.unwrap();
        let second = client.access_token(App::Oa).await.unwrap();
        assert_ne!(first, second, "the refused copy is gone");
        assert_eq!(sim.token_fetches(), 2);
    }

    async fn one_injected_40001_causes_one_refresh_and_a_successful_retry(app) {
        let sim = simulator().await;
        let client = process(&app, &sim, &[]).await;
        client.send_template(&message(&follower(1))).await.unwrap();
        sim.inject_fault(SEND, 40001, 1);

        let receipt = client.send_template(&message(&follower(2))).await.unwrap();
        assert!(receipt.msgid.is_some());
        assert_eq!(sim.token_fetches(), 2, "one refresh");
        assert_eq!(sim.count_calls(SEND), 3, "warm-up, refused, retried");
    }

    async fn a_token_invalidated_under_a_crowd_is_discarded_and_refetched_once(app) {
        let sim = simulator().await;
        let client = process(&app, &sim, &[]).await;
        client.send_template(&message(&follower(1))).await.unwrap();
        sim.invalidate_tokens(&sim.oa_appid());

        let sends = (0..200).map(|n| {
            let client = client.clone();
            async move { client.send_template(&message(&follower(n))).await }
        });
        all_ok(join_all(sends).await);
        assert_eq!(sim.token_fetches(), 2, "every refused call compares before it discards");
    }

    async fn a_persistent_40001_stops_after_one_retry_with_a_clear_error(app) {
        let sim = simulator().await;
        let client = process(&app, &sim, &[]).await;
        client.send_template(&message(&follower(1))).await.unwrap();
        sim.inject_fault(SEND, 40001, 10);

        let error = client.send_template(&message(&follower(2))).await.unwrap_err();
        assert_eq!(error.errcode(), Some(40001));
        assert_eq!(error.reaction(), Reaction::RefreshToken);
        assert!(error.to_string().contains("refused again right after a fresh one was fetched"), "{error}");
        assert_eq!(sim.count_calls(SEND), 3, "warm-up, refused, retried once, then stopped");
        assert_eq!(sim.token_fetches(), 2);
    }

    async fn busy_answers_are_retried_with_backoff_and_the_retries_are_bounded(app) {
        let sim = simulator().await;
        let client = process(&app, &sim, &[]).await;
        sim.inject_fault("/cgi-bin/token", -1, 2);
        sim.inject_fault(SEND, -1, 3);
        client.send_template(&message(&follower(1))).await.unwrap();
        assert_eq!(sim.count_calls("/cgi-bin/token"), 3);
        assert_eq!(sim.count_calls(SEND), 4);

        sim.inject_fault(SEND, -1, 50);
        let error = client.send_template(&message(&follower(1))).await.unwrap_err();
        assert_eq!((error.errcode(), error.reaction()), (Some(-1), Reaction::Retry));
        assert_eq!(sim.count_calls(SEND), 4 + 5, "five attempts in all, then a clear error");
        assert!(error.to_string().contains("stayed busy"), "{error}");
    }

    async fn a_daily_quota_stops_a_sequence_of_sends_without_retrying(app) {
        let sim = simulator().await;
        let client = process(&app, &sim, &[]).await;
        sim.set_daily_quota(SEND, Some(3));
        let mut stopped = None;
        for n in 0..10 {
            if let Err(error) = client.send_template(&message(&follower(n))).await {
                assert_eq!(error.reaction(), Reaction::Quota);
                stopped = Some((n, error));
                break;
            }
        }
        let (at, error) = stopped.expect("the quota stops the batch");
        assert_eq!(at, 3);
        assert!(error.to_string().contains("daily quota reached: the rest stays pending until tomorrow"), "{error}");
        assert_eq!(sim.count_calls(SEND), 4, "45009 is not retried");
    }

    async fn a_daily_quota_stops_a_batchget_batch_before_its_remaining_chunks(app) {
        let sim = simulator().await;
        let client = process(&app, &sim, &[("WECHAT_CONCURRENCY", "2")]).await;
        sim.add_followers((300..1000).map(SimFollower::generated));
        sim.set_daily_quota("/cgi-bin/user/info/batchget", Some(2));
        let openids: Vec<String> = (0..1000).map(follower).collect();

        let error = client.user_info_batch(&openids).await.unwrap_err();
        assert_eq!(error.reaction(), Reaction::Quota);
        let calls = sim.count_calls("/cgi-bin/user/info/batchget");
        assert!(calls <= 4, "at most the in-flight chunks run after the quota error, not all 10: {calls}");
    }

    async fn a_rate_limit_is_waited_out_and_a_lasting_one_is_reported(app) {
        let sim = simulator().await;
        let client = process(&app, &sim, &[]).await;
        sim.inject_fault("/cgi-bin/user/get", 45011, 1);
        assert_eq!(client.follower_page(None).await.unwrap().openids.len(), 300);
        assert_eq!(sim.count_calls("/cgi-bin/user/get"), 2);

        sim.inject_fault("/cgi-bin/user/get", 45011, 10);
        let error = client.follower_page(None).await.unwrap_err();
        assert_eq!(error.reaction(), Reaction::RateLimited);
        assert_eq!(sim.count_calls("/cgi-bin/user/get"), 2 + 3, "one call and two waits");
    }

    async fn configuration_errors_stop_at_once_and_name_what_to_fix(app) {
        let sim = simulator().await;
        let wrong = process(&app, &sim, &[("OA_SECRET", "not-the-secret")]).await;
        let error = wrong.follower_page(None).await.unwrap_err();
        assert_eq!((error.errcode(), error.reaction()), (Some(40125), Reaction::ConfigError));
        assert!(error.to_string().contains("WXNOTIFY_OA_SECRET"), "{error}");
        assert_eq!(sim.token_fetches(), 1, "a wrong secret is not retried");

        let client = process(&app, &sim, &[]).await;
        sim.inject_fault("/cgi-bin/token", 40164, 1);
        let error = client.follower_page(None).await.unwrap_err();
        assert_eq!(error.reaction(), Reaction::ConfigError);
        assert!(error.to_string().contains("not whitelisted") && error.to_string().contains("IP白名单"), "{error}");
        assert_eq!(sim.token_fetches(), 2);

        let settings = Settings::with_overrides([("DATABASE_URL", app.test_db.url.as_str()), ("JWT_SECRET", JWT_SECRET)]).unwrap();
        let unconfigured = WechatClient::new(&settings, app.db.clone()).unwrap();
        let error = unconfigured.login("code-a").await.unwrap_err();
        assert!(matches!(error, WechatError::NotConfigured { setting: "WXNOTIFY_MP_APPID", .. }), "{error}");
        assert!(error.to_string().starts_with("WXNOTIFY_MP_APPID is not set"), "{error}");
        assert!(unconfigured.require(App::Oa).is_err());
        assert_eq!(sim.token_fetches(), 2, "nothing was called without credentials");
    }

    async fn the_follower_list_is_read_page_by_page_to_the_empty_page(app) {
        let sim = simulator().await;
        sim.add_followers((300..25_001).map(SimFollower::generated));
        let client = process(&app, &sim, &[]).await;
        let (mut openids, mut cursor) = (Vec::new(), None::<String>);
        loop {
            let page = client.follower_page(cursor.as_deref()).await.unwrap();
            assert_eq!(page.total, 25_001);
            openids.extend(page.openids.iter().cloned());
            match page.next() {
                Some(next) => cursor = Some(next.to_string()),
                None => break,
            }
        }
        assert_eq!(openids.len(), 25_001);
        assert!(!openids.contains(&"oGoneFollower".to_string()), "unfollowed users are not listed");
        assert_eq!(sim.count_calls("/cgi-bin/user/get"), 4, "three pages and the empty one");
    }

    async fn user_info_comes_in_order_in_chunks_of_a_hundred(app) {
        let sim = simulator().await;
        let client = process(&app, &sim, &[]).await;
        let mut openids: Vec<String> = (0..250).map(follower).collect();
        openids.push("oGoneFollower".into());
        let users = client.user_info_batch(&openids).await.unwrap();
        assert_eq!(users.iter().map(|u| u.openid.clone()).collect::<Vec<_>>(), openids);
        assert_eq!(sim.count_calls("/cgi-bin/user/info/batchget"), 3);
        assert!(users[0].subscribe && users[0].unionid.is_some() && users[0].subscribe_time.is_some());
        assert_eq!(users[1].unionid, None);
        let gone = &users[250];
        assert!(!gone.subscribe && gone.unionid.as_deref() == Some("uGone"));

        let one = client.user_info(&follower(4)).await.unwrap();
        assert_eq!(one, users[4]);
        let error = client.user_info("oNobody").await.unwrap_err();
        assert_eq!((error.errcode(), error.reaction()), (Some(40003), Reaction::InvalidOpenid));
    }

    async fn login_gives_the_identity_and_a_code_works_once(app) {
        let sim = simulator().await;
        let client = process(&app, &sim, &[]).await;
        let session = client.login("code-a").await.unwrap();
        assert_eq!(session.openid, "oMpUserA");
        assert_eq!(session.unionid.as_deref(), Some("uSimUnion0000000000000000002"));
        assert_eq!(client.login("code-b").await.unwrap().unionid, None);

        let reused = client.login("code-a").await.unwrap_err();
        assert_eq!((reused.errcode(), reused.reaction()), (Some(40163), Reaction::InvalidCode));
        let invalid = client.login("made-up").await.unwrap_err();
        assert_eq!((invalid.errcode(), invalid.reaction()), (Some(40029), Reaction::InvalidCode));
        assert_eq!(client.login("sim-code:oMpUserB:2").await.unwrap().openid, "oMpUserB");
    }

    async fn sends_are_recorded_with_their_msgids_and_refusals_are_classified(app) {
        let sim = simulator().await;
        let client = process(&app, &sim, &[]).await;
        let receipt = client.send_template(&message(&follower(7))).await.unwrap();
        let recorded = sim.sent_messages();
        assert_eq!(receipt.msgid, Some(recorded[0].msgid));
        assert_eq!(recorded[0].touser, follower(7));

        let unfollowed = client.send_template(&message("oGoneFollower")).await.unwrap_err();
        assert_eq!((unfollowed.errcode(), unfollowed.reaction()), (Some(43004), Reaction::Unfollowed));
        let unknown = client.send_template(&message("oNobody")).await.unwrap_err();
        assert_eq!(unknown.reaction(), Reaction::InvalidOpenid);

        let data = BTreeMap::from([("thing1".to_string(), TemplateValue::new("you got a message"))]);
        let subscribe = SubscribeMessage {
            touser: "oMpUserA".into(), template_id: "tmpl-sub".into(), page: Some("pages/inbox".into()),
            data: data.clone(), miniprogram_state: None, lang: None,
        };
        assert!(client.send_subscribe(&subscribe).await.unwrap().msgid.is_some());
        let too_long = SubscribeMessage {
            data: BTreeMap::from([("thing1".to_string(), TemplateValue::new("x".repeat(21)))]),
            ..subscribe.clone()
        };
        let error = client.send_subscribe(&too_long).await.unwrap_err();
        assert_eq!((error.errcode(), error.reaction()), (Some(47003), Reaction::Payload));

        let form = FormTemplateMessage {
            touser: "oMpUserB".into(), template_id: "tmpl-form".into(), page: None,
            form_id: "form-1".into(), data, emphasis_keyword: None,
        };
        client.send_form_template(&form).await.unwrap();
        let used = client.send_form_template(&form).await.unwrap_err();
        assert_eq!((used.errcode(), used.reaction()), (Some(41029), Reaction::CreditGone));
        assert_eq!(sim.sent_messages().len(), 3);
        assert_eq!(sim.token_fetches(), 2, "one token per app");
    }

    async fn the_template_library_quotas_and_reviewed_messages_come_typed(app) {
        let sim = simulator().await;
        sim.add_template(SimTemplate::category("tmpl-cat", "预约提醒", &["thing1", "time2"]));
        sim.add_template(SimTemplate::legacy("tmpl-old", "旧模板", &["keyword1"]));
        let client = process(&app, &sim, &[]).await;
        let library = client.private_templates().await.unwrap();
        assert_eq!(library.iter().map(|t| t.template_id.as_str()).collect::<Vec<_>>(), ["tmpl-cat", "tmpl-old"]);
        assert_eq!(library[0].content, "thing1:{{thing1.DATA}}\ntime2:{{time2.DATA}}");

        let category = |value: &str| TemplateMessage {
            template_id: "tmpl-cat".into(),
            data: BTreeMap::from([("thing1".to_string(), TemplateValue::new(value))]),
            ..message(&follower(1))
        };
        client.send_template(&category("体检")).await.unwrap();
        sim.set_review_share(1.0);
        // A template send reads 40252 as an answer: held for review, no msgid.
        let reviewed = client.send_template(&category("复查")).await.unwrap();
        assert!(reviewed.in_review && reviewed.msgid.is_none(), "{reviewed:?}");
        let blocked = client.blocked_messages("tmpl-cat", 0, 100).await.unwrap();
        assert_eq!(blocked.len(), 1);
        assert_eq!((blocked[0].id, blocked[0].openid.as_str(), blocked[0].template_id.as_str()), (1, follower(1).as_str(), "tmpl-cat"));
        assert!(blocked[0].content.contains("复查"), "{:?}", blocked[0]);
        assert!(client.blocked_messages("tmpl-cat", 1, 100).await.unwrap().is_empty());
        assert_eq!(client.blocked_messages("tmpl-cat", 0, 101).await.unwrap_err().reaction(), Reaction::Payload);

        let quota = client.quota(App::Oa, SEND).await.unwrap();
        assert_eq!(quota, Quota { daily_limit: 100_000, used: 2, remain: 99_998 });
        let wrong_app = client.quota(App::Oa, "/cgi-bin/message/subscribe/send").await.unwrap_err();
        assert_eq!(wrong_app.errcode(), Some(76022));
        assert!(client.quota(App::Mp, "/cgi-bin/message/subscribe/send").await.is_ok());
    }

    async fn a_qr_code_carries_its_scene(app) {
        let sim = simulator().await;
        let client = process(&app, &sim, &[]).await;
        let code = client.create_qrcode("bind:42", 600).await.unwrap();
        assert_eq!(code.expire_seconds, 600);
        assert_eq!(sim.qr_scene(&code.ticket).as_deref(), Some("bind:42"));
        assert!(code.image_url.starts_with("https://mp.weixin.qq.com/cgi-bin/showqrcode?ticket="));
        let error = client.create_qrcode(&"x".repeat(65), 600).await.unwrap_err();
        assert_eq!(error.reaction(), Reaction::Payload);
    }

    async fn the_demo_points_the_server_at_a_seeded_simulator(app) {
        let base = Settings::with_overrides([
            ("DATABASE_URL", app.test_db.url.as_str()), ("JWT_SECRET", JWT_SECRET), ("LISTEN", "127.0.0.1:0"),
        ]).unwrap();
        let (settings, sim) = wxnotify::sim::demo::start(base).await.unwrap();
        assert_eq!(settings.wechat_api_base, sim.base_url());
        assert!(settings.oa_token.is_some() && settings.oa_aes_key.is_some());
        let client = WechatClient::new(&settings, app.db.clone()).unwrap();
        assert_eq!(client.login("demo-code-1").await.unwrap().unionid.as_deref(), Some("uDemoUnion01"));
        let page = client.follower_page(None).await.unwrap();
        assert_eq!(page.openids.len(), 5, "the demo follower who left is not listed");
        let demo = wxnotify::Application::build(settings).await.expect("the demo server builds");
        assert!(demo.port() > 0);
    }
}
