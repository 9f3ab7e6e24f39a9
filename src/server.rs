//! The server's life: [`Application::build`] connects and migrates the
//! database, builds the schema and binds the listener; [`Application::run_until`]
//! serves until told to stop and then drains in order (open requests, the
//! scheduler's tick, the outbox sweep, background work). `main` and the
//! integration tests both start the server through it.

use std::future::{Future, IntoFuture};
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::auth::Jwt;
use crate::http::AppState;
use crate::settings::Settings;
use crate::{db, graphql, http, metrics, notify, scheduler, services, wechat};

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
        let jwt = Jwt::from_settings(&secret, &settings);
        if !jwt.accepts_own_tokens() {
            tracing::warn!(
                "WXNOTIFY_JWT_ALGORITHMS leaves out HS256: the tokens loginWithWechatMiniApp and `wxnotify token` mint will be refused"
            );
        }
        let services = Arc::new(services::Services::new(db.clone(), settings.clone(), wechat, jwt));
        let (schema, engine) = graphql::build_schema(services.clone())?;
        let _ = services.schema.set(schema.clone());
        statistics(&db, &engine).await;
        notify::spawn_heartbeat(services.clone());
        notify::recover_in_background(services.clone());
        let listener = TcpListener::bind(settings.listen)
            .await
            .map_err(|e| anyhow::anyhow!("WXNOTIFY_LISTEN: cannot bind {}: {e}", settings.listen))?;
        let state = Arc::new(AppState { schema, sql_statements, services, engine });
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
        metrics::spawn_upkeep(services.stopping.clone());
        crate::templates::spawn_quota_watch(services.clone(), std::time::Duration::from_secs(600));
        spawn_statistics(services.clone(), self.state.engine.clone());
        tracing::info!(%addr, "wxnotify listening; console (GraphQL IDE and dashboard) at http://{addr}/");
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

/// Refreshes the database's statistics (`db::optimize`) and has the table
/// engine re-read them; a failure is logged and the old ones kept.
async fn statistics(db: &sea_orm::DatabaseConnection, engine: &crate::hasura::Engine) {
    let started = std::time::Instant::now();
    let refreshed = match db::optimize(db).await {
        Ok(()) => engine.refresh_statistics().await,
        Err(e) => Err(e),
    };
    match refreshed {
        Ok(()) => tracing::debug!(elapsed_ms = started.elapsed().as_millis() as u64, "database statistics refreshed"),
        Err(e) => tracing::warn!(error = %e, "refreshing the database statistics failed; the query plans keep the old ones"),
    }
}

/// Every [`crate::hasura::statistics::REFRESH`], [`statistics`], until the server stops.
fn spawn_statistics(services: Arc<services::Services>, engine: crate::hasura::Engine) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(crate::hasura::statistics::REFRESH);
        every.tick().await; // the first tick is now: start-up has just refreshed them
        loop {
            tokio::select! {
                _ = every.tick() => statistics(&services.db, &engine).await,
                _ = services.stopping.cancelled() => return,
            }
        }
    });
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
