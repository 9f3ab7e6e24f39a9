//! The crate's one SQL statement builder: text and its parameters, appended
//! in one pass, the parameters numbered `$1`, `$2`, ... (which PostgreSQL and
//! SQLite both accept) in the one place that numbers them, [`Sql::param`].
//! Every statement the server writes by hand is built here, and the table
//! surface's `hasura::sql::Writer` writes into one.
//!
//! A leaf: it depends on nothing in the crate but [`DatabaseKind`].

use std::fmt::{self, Write as _};

use sea_orm::{ConnectionTrait, DbErr, QueryResult, Statement, Value};

use super::kind::DatabaseKind;

/// SQL text and its parameters, appended in one pass.
#[derive(Clone, Debug, Default)]
pub struct Sql {
    pub text: String,
    pub params: Vec<Value>,
}

impl Sql {
    pub fn new(text: impl Into<String>) -> Sql {
        Sql { text: text.into(), params: Vec::new() }
    }

    /// Continues a statement whose text already binds `params` as `$1..$n`.
    pub fn continuing(text: String, params: Vec<Value>) -> Sql {
        Sql { text, params }
    }

    pub fn push(&mut self, text: &str) -> &mut Sql {
        self.text.push_str(text);
        self
    }

    /// Binds `value` and returns its placeholder, for use more than once.
    pub fn param(&mut self, value: impl Into<Value>) -> String {
        self.params.push(value.into());
        format!("${}", self.params.len())
    }

    /// Binds `value` where the text stands.
    pub fn bind(&mut self, value: impl Into<Value>) -> &mut Sql {
        let placeholder = self.param(value);
        self.text.push_str(&placeholder);
        self
    }

    /// `(v1, v2, ...)`, each bound. Callers never pass an empty list.
    pub fn list<V: Into<Value>>(&mut self, values: impl IntoIterator<Item = V>) -> &mut Sql {
        self.text.push('(');
        for (i, value) in values.into_iter().enumerate() {
            if i > 0 {
                self.text.push_str(", ");
            }
            self.bind(value);
        }
        self.text.push(')');
        self
    }

    /// `CASE <key> WHEN k1 THEN v1 ... END`, where each `k` is an already
    /// bound placeholder.
    pub fn case<V: Into<Value>>(&mut self, key: &str, arms: impl IntoIterator<Item = (String, V)>) -> &mut Sql {
        let _ = write!(self.text, "CASE {key}");
        for (when, then) in arms {
            let then = self.param(then);
            let _ = write!(self.text, " WHEN {when} THEN {then}");
        }
        self.text.push_str(" END");
        self
    }

    /// The statement SeaORM runs, for the database `db` is connected to.
    fn statement(self, db: &impl ConnectionTrait) -> Statement {
        Statement::from_sql_and_values(db.get_database_backend(), self.text, self.params)
    }

    /// Runs the statement; returns the rows it changed.
    pub async fn execute(self, db: &impl ConnectionTrait) -> Result<u64, DbErr> {
        let statement = self.statement(db);
        Ok(db.execute_raw(statement).await?.rows_affected())
    }

    pub async fn all(self, db: &impl ConnectionTrait) -> Result<Vec<QueryResult>, DbErr> {
        let statement = self.statement(db);
        db.query_all_raw(statement).await
    }

    /// Runs a query expected to return at most one row.
    pub async fn one(self, db: &impl ConnectionTrait) -> Result<Option<QueryResult>, DbErr> {
        let statement = self.statement(db);
        db.query_one_raw(statement).await
    }
}

/// `write!` appends to the text (never binds).
impl fmt::Write for Sql {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        self.text.push_str(text);
        Ok(())
    }
}

/// `FOR UPDATE SKIP LOCKED` on PostgreSQL, so concurrent claimers take
/// different rows instead of queueing for the same one; SQLite has one
/// writer at a time and needs nothing.
pub fn skip_locked(db: &impl ConnectionTrait) -> &'static str {
    match DatabaseKind::of(db) {
        DatabaseKind::Postgres => " FOR UPDATE SKIP LOCKED",
        DatabaseKind::Sqlite => "",
    }
}
