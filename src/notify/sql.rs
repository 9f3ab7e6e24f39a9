//! The few SQL helpers the sending code shares: a statement built with
//! numbered parameters (`$1`, which PostgreSQL and SQLite both accept) and
//! the dialect questions its statements ask.

use std::fmt::Write as _;

use sea_orm::{ConnectionTrait, DbBackend, DbErr, QueryResult, Statement, Value};

/// SQL text and its parameters, appended in one pass.
#[derive(Debug, Default)]
pub struct Sql {
    pub text: String,
    pub params: Vec<Value>,
}

impl Sql {
    pub fn new(text: &str) -> Sql {
        Sql { text: text.to_string(), params: Vec::new() }
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

    fn statement(self, backend: DbBackend) -> Statement {
        Statement::from_sql_and_values(backend, self.text, self.params)
    }

    pub async fn execute(self, db: &impl ConnectionTrait) -> Result<u64, DbErr> {
        let backend = db.get_database_backend();
        Ok(db.execute_raw(self.statement(backend)).await?.rows_affected())
    }

    pub async fn all(self, db: &impl ConnectionTrait) -> Result<Vec<QueryResult>, DbErr> {
        let backend = db.get_database_backend();
        db.query_all_raw(self.statement(backend)).await
    }

    pub async fn one(self, db: &impl ConnectionTrait) -> Result<Option<QueryResult>, DbErr> {
        let backend = db.get_database_backend();
        db.query_one_raw(self.statement(backend)).await
    }
}

pub fn is_postgres(db: &impl ConnectionTrait) -> bool {
    db.get_database_backend() == DbBackend::Postgres
}

/// `FOR UPDATE SKIP LOCKED` on PostgreSQL, so concurrent claimers take
/// different rows instead of queueing for the same one; SQLite has one
/// writer at a time and needs nothing.
pub fn skip_locked(db: &impl ConnectionTrait) -> &'static str {
    if is_postgres(db) { " FOR UPDATE SKIP LOCKED" } else { "" }
}
