//! Test support: a fresh database per test (a SQLite file or a PostgreSQL
//! database that is dropped afterwards) and the real server on port 0.
//!
//! Every integration test runs on both databases through [`both_databases!`].
//! PostgreSQL comes from `WXNOTIFY_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test?sslmode=disable`, the
//! same-host setup docs/performance.md recommends); when it is unreachable the
//! PostgreSQL half is skipped with a note, except under `CI=true`, where it
//! fails loudly.

#![allow(dead_code)]

pub mod seed_docs;

use std::sync::Arc;

use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use serde_json::{Value, json};
use wxnotify::auth::{Jwt, Role};
use wxnotify::db::DatabaseKind;
use wxnotify::db::sql::Sql;
use wxnotify::settings::{Secret, Settings};
use wxnotify::{AppState, Application};

pub const JWT_SECRET: &str = "test-secret-test-secret-test-secret-0123";

/// A database that exists for one test.
pub struct TestDb {
    pub url: String,
    pub backend: DatabaseKind,
    _dir: Option<tempfile::TempDir>,
    pg_name: Option<String>,
}

/// Without TLS, as a PostgreSQL on the same host should be reached: on the
/// loopback TLS protects nothing, and sslmode's default (`prefer`) took a
/// quarter of the PostgreSQL real-time burst (docs/performance.md).
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable";

fn postgres_admin_url() -> String {
    std::env::var("WXNOTIFY_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.into())
}

impl TestDb {
    /// A fresh, empty database; `None` when PostgreSQL is unreachable outside CI.
    pub async fn new(backend: DatabaseKind) -> Option<TestDb> {
        match backend {
            DatabaseKind::Sqlite => {
                let dir = tempfile::tempdir().expect("a temporary directory");
                let url = format!("sqlite://{}", dir.path().join("wxnotify.db").display());
                Some(TestDb { url, backend, _dir: Some(dir), pg_name: None })
            }
            DatabaseKind::Postgres => {
                let admin_url = postgres_admin_url();
                let admin = match Database::connect(&admin_url).await {
                    Ok(admin) => admin,
                    Err(e) if std::env::var("CI").as_deref() != Ok("true") => {
                        eprintln!("note: PostgreSQL at {admin_url} is unreachable ({e}); skipping the PostgreSQL half");
                        return None;
                    }
                    Err(e) => panic!("PostgreSQL at {admin_url} is unreachable under CI=true: {e}"),
                };
                let name = format!("wxnotify_test_{}", hex::encode(rand::random::<[u8; 6]>()));
                admin
                    .execute_unprepared(&format!("CREATE DATABASE {name}"))
                    .await
                    .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
                admin.close().await.ok();
                // Keep the URL's options (e.g. `?sslmode=disable`) for the new database.
                let (path, options) = admin_url.split_once('?').unwrap_or((&admin_url, ""));
                let (base, _) = path.rsplit_once('/').expect("a database URL ends in /DBNAME");
                let options = if options.is_empty() { String::new() } else { format!("?{options}") };
                Some(TestDb { url: format!("{base}/{name}{options}"), backend, _dir: None, pg_name: Some(name) })
            }
        }
    }

    /// The same database, without dropping it when this handle goes.
    pub fn borrowed(&self) -> TestDb {
        TestDb { url: self.url.clone(), backend: self.backend, _dir: None, pg_name: None }
    }

    pub async fn connect(&self) -> DatabaseConnection {
        Database::connect(&self.url).await.expect("connecting to the test database")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(name) = self.pg_name.take() else { return };
        // Drop runs outside any runtime guarantee, so use a thread of its own.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            runtime.block_on(async {
                let admin = Database::connect(&postgres_admin_url()).await.ok()?;
                admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await.ok()?;
                admin.close().await.ok()
            })
        })
        .join();
    }
}

/// A running server on its own database.
pub struct TestApp {
    pub address: String,
    pub state: Arc<AppState>,
    pub db: DatabaseConnection,
    pub client: reqwest::Client,
    pub backend: DatabaseKind,
    jwt: Jwt,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
    pub test_db: TestDb,
}

/// A [`TestApp`] handle on a server started with [`start_server`] on
/// `test_db`; the caller keeps the database and stops the server.
pub fn attach(state: Arc<AppState>, address: String, test_db: &TestDb) -> TestApp {
    TestApp {
        address,
        db: state.db.clone(),
        state,
        client: reqwest::Client::new(),
        backend: test_db.backend,
        jwt: Jwt::new(&Secret::new(JWT_SECRET)),
        shutdown: None,
        server: None,
        test_db: test_db.borrowed(),
    }
}

pub async fn spawn_app(backend: DatabaseKind) -> Option<TestApp> {
    spawn_app_with(backend, &[]).await
}

/// Boots the server on a fresh database with extra `WXNOTIFY_*` settings
/// (names without the prefix).
pub async fn spawn_app_with(backend: DatabaseKind, overrides: &[(&str, &str)]) -> Option<TestApp> {
    let test_db = TestDb::new(backend).await?;
    let app = start_server(test_db.url.clone(), overrides).await;
    let (state, address, shutdown, server) = app;
    let db = state.db.clone();
    Some(TestApp {
        address,
        state,
        db,
        client: reqwest::Client::new(),
        backend,
        jwt: Jwt::new(&Secret::new(JWT_SECRET)),
        shutdown: Some(shutdown),
        server: Some(server),
        test_db,
    })
}

type Started = (Arc<AppState>, String, tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<()>);

/// Starts one more server process-equivalent on an existing database.
pub async fn start_server(database_url: String, overrides: &[(&str, &str)]) -> Started {
    init_logs();
    let mut settings: Vec<(&str, &str)> =
        vec![("DATABASE_URL", database_url.as_str()), ("LISTEN", "127.0.0.1:0"), ("JWT_SECRET", JWT_SECRET)];
    settings.extend_from_slice(overrides);
    let settings = Settings::with_overrides(settings).expect("test settings are valid");
    let app = Application::build(settings).await.expect("the server starts");
    let address = format!("http://127.0.0.1:{}", app.port());
    let state = app.state();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        app.run_until(async {
            let _ = rx.await;
        })
        .await
        .expect("the server runs");
    });
    (state, address, tx, server)
}

/// Server logs go to the test's captured output (shown when it fails);
/// `RUST_LOG` picks the level, `warn` by default.
fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
}

impl TestApp {
    pub fn token(&self, role: Role, sub: Option<&str>) -> String {
        self.jwt.mint(role, sub, std::time::Duration::from_secs(600))
    }

    pub fn admin_token(&self) -> String {
        self.token(Role::Admin, None)
    }

    /// POSTs a GraphQL document as admin and returns the whole response body.
    pub async fn graphql(&self, query: &str, variables: Value) -> Value {
        self.graphql_with(Some(&self.admin_token()), query, variables).await
    }

    /// POSTs a GraphQL document with the given bearer token (or none).
    pub async fn graphql_with(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let mut request = self.client.post(format!("{}/api/graphql", self.address));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.json(&json!({ "query": query, "variables": variables })).send().await.expect("POST /api/graphql");
        response.json().await.expect("a JSON response")
    }

    /// Like [`graphql`](Self::graphql), but panics on errors and returns `data`.
    pub async fn data(&self, query: &str, variables: Value) -> Value {
        let body = self.graphql(query, variables).await;
        assert!(body.get("errors").is_none(), "unexpected errors: {body:#}");
        body["data"].clone()
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(format!("{}{}", self.address, path)).send().await.expect("GET")
    }

    /// Runs raw SQL on the test database (fixtures and checks).
    pub async fn sql(&self, sql: &str) {
        self.db.execute_unprepared(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    pub async fn count(&self, table: &str) -> i64 {
        let row = Sql::new(format!("SELECT count(*) AS n FROM {table}")).one(&self.db).await.unwrap().unwrap();
        row.try_get::<i64>("", "n").unwrap()
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Overrides pointing a server at the simulator, both apps configured.
pub fn sim_settings(sim: &wxnotify::sim::SimHandle) -> Vec<(String, String)> {
    vec![
        ("WECHAT_API_BASE".into(), sim.base_url()),
        ("OA_APPID".into(), sim.oa_appid()),
        ("OA_SECRET".into(), "sim-oa-secret".into()),
        ("MP_APPID".into(), sim.mp_appid()),
        ("MP_SECRET".into(), "sim-mp-secret".into()),
    ]
}

/// Owned settings as the `(name, value)` pairs the server helpers take.
pub fn borrowed(settings: &[(String, String)]) -> Vec<(&str, &str)> {
    settings.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// The newest `job_run`, once it has left RUNNING (or after 10 s).
pub async fn finished_job_run(app: &TestApp) -> Value {
    let mut run = Value::Null;
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        run = app.data("{ job_run(order_by: {id: desc}, limit: 1) { status result error } }", json!({})).await["job_run"][0].clone();
        if run["status"] != "RUNNING" {
            break;
        }
    }
    run
}

/// The median of benchmark samples.
pub fn median(samples: &mut [std::time::Duration]) -> std::time::Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// Milliseconds, for printing.
pub fn ms(duration: std::time::Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// Declares each test twice, `name::sqlite` and `name::postgres`, each with a
/// fresh server: `both_databases! { async fn name(app) { ... } }`.
#[macro_export]
macro_rules! both_databases {
    ($(async fn $name:ident($app:ident) $body:block)*) => {$(
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                if let Some($app) = $crate::common::spawn_app(::wxnotify::db::DatabaseKind::Sqlite).await $body
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some($app) = $crate::common::spawn_app(::wxnotify::db::DatabaseKind::Postgres).await $body
            }
        }
    )*};
}

/// Declares each test once, running its body on SQLite and then on
/// PostgreSQL with a fixture of several servers: `$fixture::start(backend)`
/// returns `Option<$fixture>` (`None` when that database is not there),
/// `$body(&fixture)` is the test. `on_both_databases! { Fixture; name => body; }`
#[macro_export]
macro_rules! on_both_databases {
    ($fixture:ident; $($name:ident => $body:ident;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            for backend in [::wxnotify::db::DatabaseKind::Sqlite, ::wxnotify::db::DatabaseKind::Postgres] {
                if let Some(fixture) = $fixture::start(backend).await {
                    $body(&fixture).await;
                }
            }
        }
    )*};
}

/// A server on `backend` that talks to `sim`.
pub async fn spawn_with_simulator(backend: DatabaseKind, sim: &wxnotify::sim::SimHandle) -> Option<TestApp> {
    let settings = sim_settings(sim);
    spawn_app_with(backend, &borrowed(&settings)).await
}

/// Like [`both_databases!`], with a fresh simulator (default world) the
/// server talks to: `with_simulator! { async fn name(app, sim) { ... } }`.
#[macro_export]
macro_rules! with_simulator {
    ($(async fn $name:ident($app:ident, $sim:ident) $body:block)*) => {$(
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let $sim = wxnotify::sim::Simulator::start(Default::default()).await.expect("the simulator starts");
                if let Some($app) = $crate::common::spawn_with_simulator(::wxnotify::db::DatabaseKind::Sqlite, &$sim).await $body
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let $sim = wxnotify::sim::Simulator::start(Default::default()).await.expect("the simulator starts");
                if let Some($app) = $crate::common::spawn_with_simulator(::wxnotify::db::DatabaseKind::Postgres, &$sim).await $body
            }
        }
    )*};
}
