//! wxnotify: reach WeChat mini-program users through a service account.
//!
//! A tour of the crate:
//! - [`settings`]: the typed settings, from `WXNOTIFY_*` and `wxnotify.toml`.
//! - [`db`]: connecting, migrating, the development JWT secret.
//! - [`auth`]: JWT bearer tokens and roles.
//! - [`hasura`]: the Zion/Hasura table surface, one engine over entity metadata.
//! - [`tables`]: the project's tables and their permissions, as the engine serves them.
//! - [`graphql`]: the schema: the generated table fields plus the operations.
//! - [`services`]: what operations reach (database, settings, WeChat client).
//! - [`scheduler`]: durable Quartz-cron jobs; [`flows`] the action flows
//!   they (and `runActionFlow`) run.
//! - [`wechat`]: the typed WeChat client and its token cache; [`sim`] the
//!   WeChat simulator tests, benchmarks and `serve --demo` run against.
//! - [`http`]: the axum router, a thin shell over the schema.
//! - [`linking`]: login, follower sync, callback events and scan-to-bind:
//!   everything that keeps `account.oaopenid` true.
//! - [`notify`]: sending: the outbox, digests, throttled notices, credits.
//! - [`ratelimit`]: limits per client address (logins).
//! - [`error`]: the one mapping from every capability's errors to GraphQL.
//! - [`metrics`], [`telemetry`], [`doctor`]: operating it.
//! - [`Application`]: binds a listener and serves until told to stop; `main`
//!   and the integration tests both start the server through it.

pub mod auth;
pub mod db;
pub mod doctor;
pub mod error;
pub mod flows;
pub mod graphql;
pub mod hasura;
pub mod http;
pub mod linking;
pub mod metrics;
pub mod notify;
pub mod ratelimit;
pub mod scheduler;
pub mod services;
pub mod settings;
pub mod sim;
pub mod tables;
pub mod telemetry;
pub mod wechat;

use std::future::{Future, IntoFuture};
use std::sync::Arc;

use sea_orm::DatabaseConnection;
use tokio::net::TcpListener;

use crate::auth::Jwt;
use crate::settings::Settings;

/// What every request handler can reach.
pub struct AppState {
    pub settings: Arc<Settings>,
    pub db: DatabaseConnection,
    pub schema: async_graphql::dynamic::Schema,
    /// Every SQL statement run through `db`.
    pub sql_statements: db::StatementCounter,
    pub services: Arc<services::Services>,
}

/// A server bound to its port, ready to run.
pub struct Application {
    listener: TcpListener,
    state: Arc<AppState>,
}

impl Application {
    /// Connects and migrates the database, builds the schema and binds the
    /// listener (port 0 picks a free port, as tests do).
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        metrics::handle();
        let (db, sql_statements) = db::connect_counted(&settings).await?;
        db::migrate(&db).await?;
        let (secret, generated) = db::jwt_secret(&db, &settings).await?;
        if generated {
            tracing::warn!(
                "WXNOTIFY_JWT_SECRET is not set: using a development secret kept in the SQLite database. \
                 Mint an admin token with `cargo run -- token --role admin`; set WXNOTIFY_JWT_SECRET in production"
            );
        }
        let settings = Arc::new(settings);
        let wechat =
            wechat::WechatClient::new(&settings, db.clone()).map_err(|e| anyhow::anyhow!("setting up the WeChat client failed: {e}"))?;
        let services = Arc::new(services::Services::new(db.clone(), settings.clone(), wechat, Jwt::new(&secret)));
        let schema = graphql::build_schema(services.clone())?;
        let _ = services.schema.set(schema.clone());
        notify::spawn_heartbeat(services.clone());
        notify::recover_in_background(services.clone());
        let listener = TcpListener::bind(settings.listen)
            .await
            .map_err(|e| anyhow::anyhow!("WXNOTIFY_LISTEN: cannot bind {}: {e}", settings.listen))?;
        let state = Arc::new(AppState { settings, db, schema, sql_statements, services });
        Ok(Application { listener, state })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or_default()
    }

    pub fn state(&self) -> Arc<AppState> {
        self.state.clone()
    }

    /// Serves until `shutdown` completes, then stops gracefully: no new
    /// connections, occurrences or sends are taken, and in-flight requests,
    /// job runs and sends get `WXNOTIFY_SHUTDOWN_GRACE` to finish. Messages
    /// not yet sent stay PENDING for the next start (see [`notify::outbox`]).
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let addr = self.listener.local_addr()?;
        let services = self.state.services.clone();
        let mut scheduler = self.state.settings.scheduler.then(|| scheduler::spawn(services.clone()));
        let mut sweeper = Some(notify::spawn_sweeper(services.clone()));
        tracing::info!(%addr, "wxnotify listening; GraphiQL at http://{addr}/");
        let app = http::router(self.state.clone()).into_make_service_with_connect_info::<std::net::SocketAddr>();
        let server = axum::serve(self.listener, app).with_graceful_shutdown(services.stopping.clone().cancelled_owned()).into_future();
        tokio::pin!(server);
        // The server ends on its own only when it fails.
        let failed = tokio::select! {
            served = &mut server => Some(served),
            _ = shutdown => None,
        };
        services.stopping.cancel();
        // In order: open requests, the scheduler's current tick (it may still
        // start a run) and the outbox sweep, then every run, callback and
        // send in the background.
        let grace = self.state.settings.shutdown_grace;
        let drained = tokio::time::timeout(grace, async {
            let served = match failed {
                Some(served) => served,
                None => (&mut server).await,
            };
            for loop_task in [scheduler.take(), sweeper.take()].into_iter().flatten() {
                let _ = loop_task.await;
            }
            services.background.close();
            services.background.wait().await;
            served
        });
        let served = match drained.await {
            Ok(served) => served,
            Err(_) => {
                // The pool stays open for work still running until the
                // process exits: whatever it cannot record is settled on the
                // next start (PENDING rows sent, SENDING ones "outcome unknown").
                tracing::warn!(
                    grace_s = grace.as_secs(),
                    running = services.background.len(),
                    "requests, jobs or sends still running after WXNOTIFY_SHUTDOWN_GRACE; stopping without them"
                );
                return Ok(());
            }
        };
        served?;
        self.state.db.clone().close().await.ok();
        tracing::info!("wxnotify stopped");
        Ok(())
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutdown requested; finishing in-flight requests");
}
