//! Reading a column of a result row that may be NULL.
//!
//! SeaORM's `QueryResult::try_get::<Option<T>>` reads a NULL by building an
//! error whose message names the column (`format!` of its `Debug` form) and
//! then turning that error into `None`: one formatted string per NULL
//! value. In a CPU profile of the digest's candidate query (100,000
//! accounts, most columns NULL), reading the account rows took 35 % of the
//! process's samples, the formatting alone 12 % (docs/performance.md,
//! "NULL columns and SQLite's rows"). [`nullable`] asks the driver's row directly, which
//! reads a NULL as `None` without an error.

use sea_orm::sqlx::{self, Postgres, Row, Sqlite};
use sea_orm::{DbErr, QueryResult, TryGetable};

/// The value of column `column` of `row`, `None` when it is NULL. A column
/// that is missing or does not decode as `T` is an error naming the column
/// and the driver's cause.
pub fn nullable<T>(row: &QueryResult, column: &str) -> Result<Option<T>, DbErr>
where
    T: TryGetable + sqlx::Type<Postgres> + sqlx::Type<Sqlite> + for<'r> sqlx::Decode<'r, Postgres> + for<'r> sqlx::Decode<'r, Sqlite>,
{
    let read = if let Some(row) = row.try_as_pg_row() {
        row.try_get::<Option<T>, _>(column)
    } else if let Some(row) = row.try_as_sqlite_row() {
        row.try_get::<Option<T>, _>(column)
    } else {
        // Another kind of row (a mock in a test): SeaORM's own way.
        return row.try_get::<Option<T>>("", column);
    };
    read.map_err(|e| DbErr::Type(format!("reading column {column}: {e}")))
}
