//! One way for every error to reach a GraphQL client.
//!
//! Each capability keeps its own error enum (what can go wrong there, with a
//! message that says what to do) and implements [`CodedError`]: the
//! Hasura-style `extensions.code` of each variant, and, for a database or
//! otherwise unexpected failure, the cause to log. [`to_graphql`] is the one
//! mapping: an expected error is answered with its own message and code; an
//! unexpected one is logged with the context and its cause, and answered
//! with [`UNEXPECTED_MESSAGE`] and code `unexpected`, so no SQL, driver or
//! internal text reaches a client.

use async_graphql::ErrorExtensions;
use sea_orm::DbErr;

/// What a client is told when the server failed in a way it cannot act on.
pub const UNEXPECTED_MESSAGE: &str = "an unexpected error occurred on the server; the server log has the details";

/// An error that knows how a client should see it.
pub trait CodedError: std::fmt::Display {
    /// The `extensions.code`, one of Hasura's (`validation-failed`,
    /// `access-denied`, `constraint-violation`, `not-found`, `unexpected`)
    /// or a capability's own (`sync-running`, `wechat-quota`, ...).
    fn code(&self) -> &'static str;

    /// For a database or unexpected failure: the cause, for the log only.
    /// Such an error is answered with [`UNEXPECTED_MESSAGE`].
    fn unexpected_cause(&self) -> Option<String> {
        None
    }
}

impl CodedError for DbErr {
    fn code(&self) -> &'static str {
        "unexpected"
    }

    fn unexpected_cause(&self) -> Option<String> {
        Some(self.to_string())
    }
}

/// The error as the client sees it; `context` says, in the log, what was
/// being done (`"saving a scheduled job"`).
pub fn to_graphql(error: &(impl CodedError + ?Sized), context: &str) -> async_graphql::Error {
    match error.unexpected_cause() {
        Some(cause) => {
            tracing::error!(%context, %cause, "request failed unexpectedly");
            coded("unexpected", UNEXPECTED_MESSAGE)
        }
        None => coded(error.code(), error.to_string()),
    }
}

/// A database failure while doing `context`, answered generically.
pub fn database(context: &'static str) -> impl FnOnce(DbErr) -> async_graphql::Error {
    move |e| to_graphql(&e, context)
}

/// An error with a Hasura-style `extensions.code` and a message for the
/// client (for expected errors; unexpected ones go through [`to_graphql`]).
pub fn coded(code: &'static str, message: impl Into<String>) -> async_graphql::Error {
    async_graphql::Error::new(message.into()).extend_with(|_, e| e.set("code", code))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_error_is_answered_without_its_text() {
        let e = DbErr::Custom("relation \"scheduled_job\" does not exist at character 13".into());
        let answered = to_graphql(&e, "testing");
        assert_eq!(answered.message, UNEXPECTED_MESSAGE);
        let code = answered.extensions.as_ref().and_then(|x| x.get("code")).cloned();
        assert_eq!(code, Some(async_graphql::Value::from("unexpected")));
    }
}
