//! How a [`TokenCache`](super::token::TokenCache) knows, without a query,
//! that the `actok` rows may have changed since it read them.
//!
//! - PostgreSQL: a trigger (migration `actok_notify`) announces every change
//!   of `actok` on the channel `wxnotify_actok`; one task per cache
//!   `LISTEN`s and moves the stamp on every notification and whenever its
//!   connection is lost or re-made (notifications may have been missed
//!   meanwhile). Until the listener is up, there is no stamp and every call
//!   reads the row, as before.
//! - SQLite: the stamp is what `stat(2)` says of the database and `-wal`
//!   files (inode, size, modification and change times): every committed
//!   transaction, by any process, writes to the `-wal` file. The files are
//!   never opened: closing any descriptor of a file drops every POSIX lock
//!   the process holds on it (close(2)), SQLite's own included. An earlier
//!   version read the `-shm` wal-index header through a descriptor of its
//!   own; each close let another process opening the database take the
//!   wal-index for unused and reset it under this process's mapping, which
//!   killed the server with SIGBUS (SQLite's "How To Corrupt An SQLite
//!   Database File", 2.2; `wechat::reading_the_token_cache_on_sqlite_leaves_sqlites_file_locks_in_place`).
//!   Two commits within one tick of the file system's clock that leave the
//!   `-wal` file's size alone (after SQLite restarted it from its
//!   beginning) can look alike; the cache's copies are read again after
//!   a second whatever the stamp says.
//! - An in-memory SQLite database has no file to watch: no stamp.
//!
//! A stamp moves on changes to other tables too; then the row is read once
//! more than needed, which is harmless.

use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use sea_orm::DatabaseConnection;
use tokio_util::sync::CancellationToken;

use crate::db::DatabaseKind;

/// The channel the `actok` trigger notifies.
const CHANNEL: &str = migration::m20261201_000006_actok_notify::CHANNEL;
/// How long a lost listener waits before connecting again.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);

pub(crate) enum Watch {
    Notified(Notified),
    File(Vec<PathBuf>),
    Nothing,
}

pub(crate) struct Notified {
    pool: sea_orm::sqlx::PgPool,
    state: Arc<ListenState>,
    started: AtomicBool,
    stop: CancellationToken,
}

#[derive(Default)]
struct ListenState {
    epoch: AtomicU64,
    listening: AtomicBool,
}

impl Watch {
    pub(crate) fn new(db: &DatabaseConnection, kind: DatabaseKind, database_url: &str) -> Watch {
        match kind {
            DatabaseKind::Postgres => Watch::Notified(Notified {
                pool: db.get_postgres_connection_pool().clone(),
                state: Arc::default(),
                started: AtomicBool::new(false),
                stop: CancellationToken::new(),
            }),
            DatabaseKind::Sqlite => match sqlite_file(database_url) {
                Some(file) => {
                    let wal = PathBuf::from(format!("{}-wal", file.display()));
                    Watch::File(vec![file, wal])
                }
                None => Watch::Nothing,
            },
        }
    }

    /// A value that differs from every earlier one once `actok` may have
    /// changed; `None` when changes cannot be told (read the row).
    pub(crate) fn stamp(&self) -> Option<u64> {
        match self {
            Watch::Notified(notified) => notified.stamp(),
            Watch::File(files) => Some(file_stamp(files)),
            Watch::Nothing => None,
        }
    }
}

impl Notified {
    fn stamp(&self) -> Option<u64> {
        if !self.started.swap(true, Ordering::AcqRel) {
            // Started by the first call, which runs inside the runtime.
            tokio::spawn(listen(self.pool.clone(), self.state.clone(), self.stop.clone()));
        }
        // The epoch is read after the flag: a loss between the two moves it.
        let listening = self.state.listening.load(Ordering::Acquire);
        let epoch = self.state.epoch.load(Ordering::Acquire);
        listening.then_some(epoch)
    }
}

impl Drop for Notified {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Listens until `stop`, re-connecting after a loss; every notification,
/// connection and loss moves the epoch.
async fn listen(pool: sea_orm::sqlx::PgPool, state: Arc<ListenState>, stop: CancellationToken) {
    use sea_orm::sqlx::postgres::PgListener;
    loop {
        if pool.is_closed() {
            // The server is shutting down; nothing will ask for a stamp.
            return;
        }
        let listener = async {
            let mut listener = PgListener::connect_with(&pool).await?;
            listener.listen(CHANNEL).await?;
            Ok::<_, sea_orm::sqlx::Error>(listener)
        };
        let outcome = tokio::select! {
            listener = listener => listener,
            _ = stop.cancelled() => return,
        };
        match outcome {
            Ok(mut listener) => {
                state.epoch.fetch_add(1, Ordering::AcqRel);
                state.listening.store(true, Ordering::Release);
                loop {
                    let next = tokio::select! {
                        next = listener.try_recv() => next,
                        _ = stop.cancelled() => return,
                    };
                    match next {
                        Ok(Some(_)) => {
                            state.epoch.fetch_add(1, Ordering::AcqRel);
                        }
                        Ok(None) => {
                            tracing::warn!(
                                "the access-token change listener lost its connection; reading tokens from the database until it is back"
                            );
                            break;
                        }
                        // The pool closed under the listener: the server is stopping.
                        Err(_) if pool.is_closed() => return,
                        Err(e) => {
                            tracing::warn!(error = %e, "the access-token change listener failed; reading tokens from the database until it is back");
                            break;
                        }
                    }
                }
            }
            Err(_) if pool.is_closed() => return,
            Err(e) => tracing::warn!(error = %e, "cannot listen for access-token changes; reading tokens from the database meanwhile"),
        }
        state.listening.store(false, Ordering::Release);
        state.epoch.fetch_add(1, Ordering::AcqRel);
        tokio::select! {
            _ = tokio::time::sleep(RECONNECT_AFTER) => {}
            _ = stop.cancelled() => return,
        }
    }
}

/// The SQLite file a URL names, unless it is an in-memory database.
fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path.is_empty() || path == ":memory:" || query.split('&').any(|p| p == "mode=memory") {
        return None;
    }
    Some(PathBuf::from(path))
}

/// Each file's inode, size and modification and change times, hashed,
/// from `stat(2)` alone: the files are never opened (see the module doc).
/// A file that is missing or unreadable adds its error kind.
fn file_stamp(files: &[PathBuf]) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    for file in files {
        match std::fs::metadata(file) {
            Ok(meta) => {
                meta.len().hash(&mut hasher);
                meta.modified().ok().hash(&mut hasher);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::MetadataExt;
                    (meta.ino(), meta.ctime(), meta.ctime_nsec()).hash(&mut hasher);
                }
            }
            Err(e) => e.kind().hash(&mut hasher),
        }
    }
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_urls_name_their_file_and_memory_urls_none() {
        assert_eq!(sqlite_file("sqlite:///tmp/a.db?mode=rwc"), Some(PathBuf::from("/tmp/a.db")));
        assert_eq!(sqlite_file("sqlite://wxnotify.db"), Some(PathBuf::from("wxnotify.db")));
        assert_eq!(sqlite_file("sqlite:data/x.db"), Some(PathBuf::from("data/x.db")));
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(sqlite_file("sqlite://shared?mode=memory&cache=shared"), None);
        assert_eq!(sqlite_file("postgres://localhost/x"), None);
    }

    #[test]
    fn a_write_to_the_file_moves_the_stamp() {
        let dir = std::env::temp_dir().join(format!("wxnotify-stamp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("db");
        std::fs::write(&file, b"one").unwrap();
        let files = vec![file.clone(), dir.join("db-wal")];
        let before = file_stamp(&files);
        assert_eq!(before, file_stamp(&files), "nothing changed");
        std::fs::write(&file, b"one more").unwrap();
        assert_ne!(before, file_stamp(&files));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
