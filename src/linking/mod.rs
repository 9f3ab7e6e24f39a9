//! Linking users: everything that makes `account.oaopenid` true, so a
//! mini-program user can be reached through the service account.
//!
//! - [`login`]: `loginWithWechatMiniApp` upserts the account by mp_openid and
//!   links it at once when its unionid already follows.
//! - [`sync`]: `syncFollowers` / `wxnotify sync`: the whole follower list,
//!   staged while WeChat pages through it and applied in one transaction of
//!   set-based statements only once the listing is complete; [`lease`] keeps
//!   two syncs from interleaving, across processes too.
//! - [`callback`]: `/wechat/callback`, the live follow, unfollow, scan and
//!   send-finished events (signatures, safe mode, retries deduplicated in the
//!   database), parsed by the DTD-free reader in [`xml`].
//! - [`bind`]: scan-to-bind QR codes whose scene is a random, single-use
//!   token naming the account.
//! - [`store`]: the link SQL shared by all of the above, for both databases.
//! - [`graphql`]: the operations' fields; [`cli`]: `wxnotify sync`.

pub mod accounts;
pub mod bind;
pub mod cli;
mod graphql;
pub mod lease;
pub mod login;
pub(crate) mod store;
pub mod sync;

pub use graphql::operations;

use crate::wechat::WechatError;

/// What can go wrong while linking; each variant says what to do and maps
/// to a GraphQL `extensions.code`.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// WeChat refused or failed; the message says what to do.
    #[error(transparent)]
    Wechat(#[from] WechatError),
    /// The database failed; details go to the log, not to the caller.
    #[error("the database failed: {0}")]
    Database(#[from] sea_orm::DbErr),
    /// Another sync holds the lease (in this process or another).
    #[error("a follower sync is already running; wait for it to finish and look at its report, or try again later")]
    SyncRunning,
    /// This sync lost its lease (it stalled past its renewal); it changed no link.
    #[error("the follower sync lost its lock while listing (it stalled for over a minute); no link was changed, run it again")]
    LeaseLost,
    /// The server began stopping while the sync was listing; it changed no link.
    #[error("the server is stopping: the follower sync stopped while listing and changed no link; run it again once a server is up")]
    Stopping,
    /// No account has that id.
    #[error("no account has id {0}")]
    NoAccount(i64),
    /// The request itself is wrong.
    #[error("{0}")]
    Invalid(String),
    /// The caller may not touch what it named.
    #[error("{0}")]
    NotYours(String),
}

impl crate::error::CodedError for LinkError {
    fn code(&self) -> &'static str {
        match self {
            LinkError::Wechat(e) => e.code(),
            LinkError::Database(_) => "unexpected",
            LinkError::SyncRunning => "sync-running",
            LinkError::LeaseLost | LinkError::Stopping => "sync-interrupted",
            LinkError::NoAccount(_) => "not-found",
            LinkError::Invalid(_) => "validation-failed",
            LinkError::NotYours(_) => "access-denied",
        }
    }

    fn unexpected_cause(&self) -> Option<String> {
        match self {
            LinkError::Database(e) => Some(e.to_string()),
            _ => None,
        }
    }
}

impl LinkError {
    /// The error as GraphQL shows it. Database details stay in the log.
    pub fn to_graphql(&self) -> async_graphql::Error {
        crate::error::to_graphql(self, "linking")
    }
}
