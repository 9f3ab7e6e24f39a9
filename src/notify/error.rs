//! Errors of the sending operations, each with the `extensions.code` a
//! client can act on.

use sea_orm::DbErr;

use crate::error::CodedError;
use crate::hasura::EngineError;

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// The request is wrong (a bad argument, a bad `where`, a template that
    /// uses an unknown placeholder). Code `validation-failed`.
    #[error("{0}")]
    Invalid(String),
    /// Something the request names does not exist (a template, an account).
    /// Code `not-found`.
    #[error("{0}")]
    NotFound(String),
    /// Sending it would exceed what WeChat allows today. Code `wechat-quota`.
    #[error("{0}")]
    OverQuota(String),
    /// The database failed: logged, answered generically. Code `unexpected`.
    #[error("the database failed while sending; the server log has the details")]
    Database(#[from] DbErr),
}

impl CodedError for NotifyError {
    fn code(&self) -> &'static str {
        match self {
            NotifyError::Invalid(_) => "validation-failed",
            NotifyError::NotFound(_) => "not-found",
            NotifyError::OverQuota(_) => "wechat-quota",
            NotifyError::Database(_) => "unexpected",
        }
    }

    fn unexpected_cause(&self) -> Option<String> {
        match self {
            NotifyError::Database(e) => Some(e.to_string()),
            _ => None,
        }
    }
}

impl NotifyError {
    pub fn into_graphql(self) -> async_graphql::Error {
        crate::error::to_graphql(&self, "sending")
    }
}

impl From<EngineError> for NotifyError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Database(e) => NotifyError::Database(e),
            other => NotifyError::Invalid(other.to_string()),
        }
    }
}

pub fn invalid(message: impl Into<String>) -> NotifyError {
    NotifyError::Invalid(message.into())
}
