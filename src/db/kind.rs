//! Which database the server runs on: the one name the crate uses for it.
//! SeaORM's own `DbBackend` is converted here, and only here.

use sea_orm::{ConnectionTrait, DbBackend};

/// Which database the URL names; the SQL the server writes differs per kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DatabaseKind {
    Sqlite,
    Postgres,
}

impl DatabaseKind {
    /// The kind of the database `db` is connected to.
    pub fn of(db: &impl ConnectionTrait) -> DatabaseKind {
        db.get_database_backend().into()
    }
}

impl From<DbBackend> for DatabaseKind {
    /// Panics on a database the server does not run on (MySQL): the settings
    /// refuse any URL but `sqlite:` and `postgres://`, so no connection to
    /// one exists.
    fn from(backend: DbBackend) -> DatabaseKind {
        match backend {
            DbBackend::Sqlite => DatabaseKind::Sqlite,
            DbBackend::Postgres => DatabaseKind::Postgres,
            other => panic!("wxnotify runs on SQLite and PostgreSQL, not {other:?}"),
        }
    }
}
