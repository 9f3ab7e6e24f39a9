//! Errors of the table surface, each with the `extensions.code` Hasura uses.

use sea_orm::{DbErr, SqlErr};

use crate::error::CodedError;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The request is malformed for this schema (a null operand, an unknown
    /// column in a JSON argument, a bad value). Code `validation-failed`.
    #[error("{0}")]
    Validation(String),
    /// The caller's role may not do this. Code `access-denied`.
    #[error("{0}")]
    AccessDenied(String),
    /// The database refused the change (unique, foreign key, not null).
    /// Code `constraint-violation`.
    #[error("{0}")]
    Constraint(String),
    /// Anything else from the database: logged, answered generically.
    #[error("the database could not run this request; the server log has the details")]
    Database(DbErr),
}

impl CodedError for EngineError {
    fn code(&self) -> &'static str {
        match self {
            EngineError::Validation(_) => "validation-failed",
            EngineError::AccessDenied(_) => "access-denied",
            EngineError::Constraint(_) => "constraint-violation",
            EngineError::Database(_) => "unexpected",
        }
    }

    fn unexpected_cause(&self) -> Option<String> {
        match self {
            EngineError::Database(e) => Some(e.to_string()),
            _ => None,
        }
    }
}

impl EngineError {
    pub fn into_graphql(self) -> async_graphql::Error {
        crate::error::to_graphql(&self, "a table operation")
    }
}

impl From<DbErr> for EngineError {
    fn from(e: DbErr) -> Self {
        match e.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(m)) => EngineError::Constraint(format!("Uniqueness violation: {m}")),
            Some(SqlErr::ForeignKeyConstraintViolation(m)) => {
                EngineError::Constraint(format!("Foreign key violation (the related row must exist): {m}"))
            }
            _ => {
                let text = e.to_string();
                if text.contains("violates not-null constraint") || text.contains("NOT NULL constraint failed") {
                    EngineError::Constraint(format!("Not-null violation: a required column is missing: {}", last_line(&text)))
                } else {
                    EngineError::Database(e)
                }
            }
        }
    }
}

fn last_line(text: &str) -> &str {
    text.rsplit(": ").next().unwrap_or(text)
}

pub fn invalid(message: impl Into<String>) -> EngineError {
    EngineError::Validation(message.into())
}
