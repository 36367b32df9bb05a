//! The one error type of the domain layer, and its stable codes.
//!
//! Every layer (GraphQL, HTTP, CLI) maps [`Error`] through [`Error::code`], so a given failure
//! carries the same `extensions.code` everywhere. Internal errors are logged with a
//! correlation id and reach the caller only as that id: no internals leak.

use sea_orm::{DbErr, SqlErr};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is missing a valid identity.
    #[error("{0}")]
    Unauthenticated(String),
    /// The identity is valid but its role is too low.
    #[error("{0}")]
    Forbidden(String),
    /// The record does not exist *for this tenant in this environment*.
    #[error("{0} not found")]
    NotFound(String),
    /// The input is invalid; the message says which field and why.
    #[error("{0}")]
    BadInput(String),
    /// Production only changes by publishing from staging.
    #[error(
        "production is read-only: it changes only by publishing from staging. \
         Run this mutation with `environment: STAGING`, then publish the change."
    )]
    ProductionReadOnly,
    /// A stale `expectedRevision`, a duplicate name, or a concurrent change.
    #[error("{0}")]
    Conflict(String),
    /// A live-feed cursor older than the event log's retention.
    #[error("{0}")]
    CursorExpired(String),
    /// A live subscription fell behind its buffer and was ended; resume from the last cursor.
    #[error("{0}")]
    SlowConsumer(String),
    /// A field of the request is larger than its limit; the message names the field and the
    /// limit (HTTP 413).
    #[error("{0}")]
    PayloadTooLarge(String),
    /// Anything unexpected (database down, bug). Never shown to callers beyond its id.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl Error {
    /// The stable machine-readable code (`extensions.code` in GraphQL).
    pub fn code(&self) -> &'static str {
        match self {
            Error::Unauthenticated(_) => "UNAUTHENTICATED",
            Error::Forbidden(_) => "FORBIDDEN",
            Error::NotFound(_) => "NOT_FOUND",
            Error::BadInput(_) => "BAD_USER_INPUT",
            Error::ProductionReadOnly => "PRODUCTION_READ_ONLY",
            Error::Conflict(_) => "CONFLICT",
            Error::CursorExpired(_) => "CURSOR_EXPIRED",
            Error::SlowConsumer(_) => "SLOW_CONSUMER",
            Error::PayloadTooLarge(_) => "PAYLOAD_TOO_LARGE",
            Error::Internal(_) => "INTERNAL",
        }
    }

    pub fn not_found(what: impl std::fmt::Display) -> Self {
        Error::NotFound(what.to_string())
    }

    pub fn bad_input(message: impl Into<String>) -> Self {
        Error::BadInput(message.into())
    }

    pub fn internal(error: impl Into<anyhow::Error>) -> Self {
        Error::Internal(error.into())
    }

    /// The message a caller sees. For internal errors: a correlation id, logged with the cause.
    pub fn public_message(&self) -> String {
        match self {
            Error::Internal(cause) => {
                let correlation_id = uuid::Uuid::new_v4();
                tracing::error!(%correlation_id, error = ?cause, "internal error");
                format!("internal error (correlation id {correlation_id}); the server log has the details")
            }
            other => other.to_string(),
        }
    }
}

impl From<DbErr> for Error {
    fn from(error: DbErr) -> Self {
        match error.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(_)) => Error::Conflict(
                "a record with this name already exists (it was created concurrently); reload and retry".into(),
            ),
            _ => Error::Internal(error.into()),
        }
    }
}

/// Fails with CONFLICT when the caller's `expectedRevision` is stale.
pub fn check_revision(what: &str, current: i64, expected: Option<i64>) -> Result<()> {
    match expected {
        Some(expected) if expected != current => Err(Error::Conflict(format!(
            "{what} was changed by someone else: you expected revision {expected}, it is now at \
             revision {current}. Reload it, reapply your change and retry."
        ))),
        _ => Ok(()),
    }
}
