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
    /// A bound on work was reached (depth of agents calling agents, executions a tenant may
    /// have queued or running, triggers, firings per minute); the message names the setting.
    #[error("{0}")]
    LimitExceeded(String),
    /// A field of the request is larger than its limit; the message names the field and the
    /// limit (HTTP 413).
    #[error("{0}")]
    PayloadTooLarge(String),
    /// An idempotency key already used with a different request (HTTP 422).
    #[error("{0}")]
    IdempotencyKeyReused(String),
    /// The database is unreachable, locked or too slow (HTTP 503): retry later.
    #[error("{0}")]
    ServiceUnavailable(String),
    /// Anything unexpected (a bug). Never shown to callers beyond its id.
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
            Error::LimitExceeded(_) => "LIMIT_EXCEEDED",
            Error::PayloadTooLarge(_) => "PAYLOAD_TOO_LARGE",
            Error::IdempotencyKeyReused(_) => "IDEMPOTENCY_KEY_REUSED",
            Error::ServiceUnavailable(_) => "SERVICE_UNAVAILABLE",
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
        if let Some(SqlErr::UniqueConstraintViolation(_)) = error.sql_err() {
            return Error::Conflict(
                "a record with this name already exists (it was created concurrently); reload and retry".into(),
            );
        }
        match classify(&error) {
            DbFailure::Unavailable => {
                tracing::warn!(error = %error, "database unavailable");
                Error::ServiceUnavailable(
                    "the database is unavailable or busy right now; nothing was changed. Retry in a few seconds."
                        .into(),
                )
            }
            // Input validation (`domain::validate`) names the field; this is the backstop.
            DbFailure::Unstorable => Error::BadInput(
                "a value cannot be stored: it is longer than its field allows or contains a NUL character".into(),
            ),
            DbFailure::Collided => Error::Conflict(
                "this change collided with a concurrent one and was rolled back; nothing was changed. Retry.".into(),
            ),
            DbFailure::Other => Error::Internal(error.into()),
        }
    }
}

enum DbFailure {
    /// The database cannot be reached, is locked, shutting down, or timed out.
    Unavailable,
    /// The database refused a value (too long for its column, a NUL byte on PostgreSQL).
    Unstorable,
    /// PostgreSQL broke a deadlock or a serialisation conflict by rolling this transaction back.
    Collided,
    Other,
}

fn classify(error: &DbErr) -> DbFailure {
    use sea_orm::RuntimeErr;
    use sea_orm::sqlx::Error as Sqlx;
    let sqlx = match error {
        DbErr::ConnectionAcquire(_) => return DbFailure::Unavailable,
        DbErr::Conn(RuntimeErr::SqlxError(e))
        | DbErr::Exec(RuntimeErr::SqlxError(e))
        | DbErr::Query(RuntimeErr::SqlxError(e)) => e,
        _ => return DbFailure::Other,
    };
    match sqlx.as_ref() {
        Sqlx::Io(_)
        | Sqlx::Tls(_)
        | Sqlx::PoolTimedOut
        | Sqlx::PoolClosed
        | Sqlx::WorkerCrashed
        | Sqlx::Protocol(_) => DbFailure::Unavailable,
        Sqlx::Database(e) => {
            let code = e.code().unwrap_or_default();
            match code.as_ref() {
                // PostgreSQL: connection exceptions (08...), operator intervention (57...: admin
                // shutdown, terminated backend, statement timeout, cannot connect now), too many
                // connections, a database not accepting connections, a lock timeout.
                c if c.starts_with("08") || c.starts_with("57") => DbFailure::Unavailable,
                "53300" | "55000" | "55P03" => DbFailure::Unavailable,
                // SQLite: SQLITE_BUSY / SQLITE_LOCKED and their extended codes.
                "5" | "6" | "261" | "262" | "517" | "773" => DbFailure::Unavailable,
                // PostgreSQL: value too long, NUL in text, \u0000 in jsonb.
                "22001" | "22021" | "22P05" => DbFailure::Unstorable,
                "40001" | "40P01" => DbFailure::Collided,
                _ => DbFailure::Other,
            }
        }
        _ => DbFailure::Other,
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

/// `lookup.optional()`: NOT_FOUND as `Ok(None)`, for reads where absence is an answer (a
/// query of one record by id returns null); every other error stays an error.
pub trait Optional<T> {
    fn optional(self) -> Result<Option<T>>;
}

impl<T> Optional<T> for Result<T> {
    fn optional(self) -> Result<Option<T>> {
        match self {
            Ok(value) => Ok(Some(value)),
            Err(Error::NotFound(_)) => Ok(None),
            Err(other) => Err(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::{ConnAcquireErr, DbErr, RuntimeErr};

    use super::Error;

    #[test]
    fn database_failures_map_to_stable_codes() {
        let timeout = Error::from(DbErr::ConnectionAcquire(ConnAcquireErr::Timeout));
        assert_eq!(timeout.code(), "SERVICE_UNAVAILABLE");
        let io = sea_orm::sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        let refused = Error::from(DbErr::Conn(RuntimeErr::SqlxError(io.into())));
        assert_eq!(refused.code(), "SERVICE_UNAVAILABLE");
        let other = Error::from(DbErr::Custom("a bug".into()));
        assert_eq!(other.code(), "INTERNAL");
    }
}
