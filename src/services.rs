//! What the operations beyond tables reach: the database, the settings, the
//! WeChat client and the token signer. One instance per server, shared by
//! every request (the GraphQL schema carries it as data).

use std::sync::{Arc, OnceLock};

use sea_orm::DatabaseConnection;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::Jwt;
use crate::ratelimit::RateLimit;
use crate::settings::Settings;
use crate::wechat::WechatClient;

pub struct Services {
    pub db: DatabaseConnection,
    pub settings: Arc<Settings>,
    pub wechat: WechatClient,
    pub jwt: Jwt,
    /// The server's own schema, set once it is built: action flows run
    /// their stored documents against it.
    pub schema: OnceLock<async_graphql::dynamic::Schema>,
    /// Logins per client address.
    pub login_limit: RateLimit,
    /// Cancelled when the server is asked to stop: long work (sending,
    /// syncing) stops taking new items and leaves the rest for the next run.
    pub stopping: CancellationToken,
    /// Work a stopping server waits for: request handlers (which go on past
    /// `WXNOTIFY_REQUEST_TIMEOUT`), job runs, outbox recovery, callback events.
    pub background: TaskTracker,
    /// This process's leases on deliveries it is sending (see
    /// [`crate::notify::outbox`]).
    pub leases: crate::delivery::Leases,
}

impl Services {
    /// The services of a one-off command (`wxnotify sync`, `wxnotify
    /// templates sync`): connected, migrated, with a WeChat client. Such a
    /// command mints no token, so a throwaway signing key spares PostgreSQL
    /// setups a `WXNOTIFY_JWT_SECRET` just for it.
    pub async fn for_command(settings: Settings) -> anyhow::Result<Services> {
        let db = crate::db::connect(&settings).await?;
        crate::db::migrate(&db).await?;
        let settings = Arc::new(settings);
        let wechat = WechatClient::new(&settings, db.clone()).map_err(|e| anyhow::anyhow!("setting up the WeChat client failed: {e}"))?;
        let jwt = Jwt::new(&crate::settings::Secret::new(hex::encode(rand::random::<[u8; 32]>())));
        Ok(Services::new(db, settings, wechat, jwt))
    }

    pub fn new(db: DatabaseConnection, settings: Arc<Settings>, wechat: WechatClient, jwt: Jwt) -> Services {
        let login_limit = RateLimit::new(settings.login_rate_limit);
        Services {
            db,
            settings,
            wechat,
            jwt,
            schema: OnceLock::new(),
            login_limit,
            stopping: CancellationToken::new(),
            background: TaskTracker::new(),
            leases: Default::default(),
        }
    }

    /// Runs `task` in the background; a stopping server waits for it (up to
    /// `WXNOTIFY_SHUTDOWN_GRACE`).
    pub fn spawn<F>(&self, task: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.background.spawn(task)
    }
}
