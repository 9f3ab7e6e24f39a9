//! wxnotify: reach WeChat mini-program users through a service account.
//!
//! A tour of the crate:
//! - [`settings`]: the typed settings, from `WXNOTIFY_*` and `wxnotify.toml`.
//! - [`db`]: connecting, migrating, the development JWT secret; the one SQL
//!   statement builder ([`db::sql::Sql`]) and the one name for which database
//!   ([`db::DatabaseKind`]).
//! - [`auth`]: JWT bearer tokens and roles.
//! - [`hasura`]: the Zion/Hasura table surface, one engine over entity metadata.
//! - [`tables`]: the project's tables and their permissions, as the engine serves them.
//! - [`graphql`]: the schema: the generated table fields plus the operations.
//! - [`services`]: what operations reach (database, settings, WeChat client).
//! - [`scheduler`]: durable Quartz-cron jobs; [`flows`] the action flows
//!   they (and `runActionFlow`) run.
//! - [`wechat`]: the typed WeChat client and its token cache; [`sim`] the
//!   WeChat simulator tests, benchmarks and `serve --demo` run against.
//! - [`http`]: the axum router, a thin shell over the schema; [`console`]
//!   the embedded web console (GraphQL IDE and dashboard) it serves.
//! - [`linking`]: login, follower sync and scan-to-bind: everything that
//!   keeps `account.oaopenid` true; [`callback`] the service account's
//!   event pushes, handed to linking and notify.
//! - [`notify`]: sending: the outbox, digests, throttled notices, credits;
//!   [`delivery`] the channel and status names every part shares.
//! - [`templates`]: the account's template library, the checks of saved
//!   templates and of each recipient's values against it;
//!   [`wechat::rules`] WeChat's rules for keyword values by type.
//! - [`ratelimit`]: limits per client address (logins).
//! - [`error`]: the one mapping from every capability's errors to GraphQL.
//! - [`metrics`], [`telemetry`], [`doctor`]: operating it.
//! - [`server`]: [`Application`] binds a listener and serves until told to
//!   stop; `main` and the integration tests both start the server through it.
//!
//! `docs/architecture.md` draws the layers, says which module owns which
//! table, and follows a request, a sync, a send and a job run through them.

pub mod auth;
pub mod callback;
pub mod console;
pub mod db;
pub mod delivery;
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
pub mod server;
pub mod services;
pub mod settings;
pub mod sim;
pub mod tables;
pub mod telemetry;
pub mod templates;
pub mod wechat;

pub use http::AppState;
pub use server::{Application, shutdown_signal};
