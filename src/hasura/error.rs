//! Errors of the table surface, each with the `extensions.code` Hasura uses.

use sea_orm::{DbErr, SqlErr};

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

impl EngineError {
    pub fn code(&self) -> &'static str {
        match self {
            EngineError::Validation(_) => "validation-failed",
            EngineError::AccessDenied(_) => "access-denied",
            EngineError::Constraint(_) => "constraint-violation",
            EngineError::Database(_) => "unexpected",
        }
    }

    pub fn into_graphql(self) -> async_graphql::Error {
        use async_graphql::ErrorExtensions;
        if let EngineError::Database(e) = &self {
            tracing::error!(error = %e, "database error in a GraphQL request");
        }
        let code = self.code();
        async_graphql::Error::new(self.to_string()).extend_with(|_, ext| ext.set("code", code))
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
