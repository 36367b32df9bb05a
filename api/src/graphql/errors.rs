//! Every GraphQL error leaves with a stable `extensions.code`.
//!
//! - Errors raised by resolvers carry a domain [`Error`] as their source: its code is used, and
//!   internal errors are replaced by a message with a correlation id.
//! - Parse errors get `GRAPHQL_PARSE_FAILED`, validation errors (including depth and
//!   complexity limits) `GRAPHQL_VALIDATION_FAILED`, except those about the values sent (a
//!   missing input field, an unknown enum value), which are `BAD_USER_INPUT`.
//! - Anything else raised during execution is an argument the engine could not coerce:
//!   `BAD_USER_INPUT`.

use std::sync::Arc;

use async_graphql::{Response, ServerError, Value};

use crate::error::Error;

pub const PARSE_FAILED: &str = "GRAPHQL_PARSE_FAILED";
pub const VALIDATION_FAILED: &str = "GRAPHQL_VALIDATION_FAILED";

/// Sets `extensions.code` on an error.
pub fn with_code(mut error: ServerError, code: &str) -> ServerError {
    error
        .extensions
        .get_or_insert_with(Default::default)
        .set("code", Value::from(code));
    error
}

/// A server error from a domain error, with its code and public message.
pub fn from_domain(error: &Error) -> ServerError {
    with_code(ServerError::new(error.public_message(), None), error.code())
}

fn has_code(error: &ServerError) -> bool {
    error.extensions.as_ref().is_some_and(|e| e.get("code").is_some())
}

fn map_error(mut error: ServerError) -> ServerError {
    let domain = error
        .source::<Error>()
        .map(|e| (e.code(), e.public_message()))
        .or_else(|| error.source::<Arc<Error>>().map(|e| (e.code(), e.public_message())));
    if let Some((code, message)) = domain {
        error.message = message;
        return with_code(error, code);
    }
    if has_code(&error) {
        error
    } else {
        with_code(error, "BAD_USER_INPUT")
    }
}

/// Validation errors about the *values* sent (a missing input field, a wrong enum value, a
/// malformed variable) are bad input, not a malformed operation.
fn is_bad_value(message: &str) -> bool {
    message.starts_with("Invalid value for argument") || message.starts_with("Variable \"")
}

fn validation_error(error: ServerError) -> ServerError {
    let code = if is_bad_value(&error.message) {
        "BAD_USER_INPUT"
    } else {
        VALIDATION_FAILED
    };
    with_code(error, code)
}

/// A refusal before the engine ran (a syntax error, the recursion or directive limit, access
/// control, the cost limits): one readable sentence ([`super::syntax::readable`]), and
/// `GRAPHQL_PARSE_FAILED` unless the check gave it a code.
pub fn refusal(error: ServerError) -> ServerError {
    let error = super::syntax::readable(error);
    if has_code(&error) {
        error
    } else {
        with_code(error, PARSE_FAILED)
    }
}

/// Gives every error of an engine response its code. A response that failed before execution
/// (no data, errors without a path: resolver errors always have one) carries validation errors
/// (`GRAPHQL_VALIDATION_FAILED`, or `BAD_USER_INPUT` for the values sent), unless the engine
/// could not select the operation to run, which is bad input.
pub fn set_codes(response: &mut Response) {
    let before_execution = response.data == Value::Null && response.errors.iter().all(|e| e.path.is_empty());
    response.errors = std::mem::take(&mut response.errors)
        .into_iter()
        .map(|error| {
            if before_execution && !has_code(&error) && error.source.is_none() && !is_selection_error(&error.message) {
                validation_error(error)
            } else {
                map_error(error)
            }
        })
        .collect();
}

/// The engine's errors when it cannot pick the operation of a valid document (an unknown or
/// missing operation name), or is asked to run a subscription by `Schema::execute`: they are
/// raised after validation, so they are not validation errors (a test pins the wording).
fn is_selection_error(message: &str) -> bool {
    message.starts_with("Unknown operation named \"")
        || message == "Operation name required in request."
        || message == "Subscriptions are not supported on this transport."
}

#[cfg(test)]
mod tests {
    use async_graphql::{EmptyMutation, Object, Request, Schema, Subscription};
    use futures_util::Stream;

    struct Query;

    #[Object]
    impl Query {
        async fn a(&self) -> i32 {
            1
        }
    }

    struct Events;

    #[Subscription]
    impl Events {
        async fn n(&self) -> impl Stream<Item = i32> {
            futures_util::stream::iter([1])
        }
    }

    /// The engine's wording of the errors [`super::is_selection_error`] recognises.
    #[tokio::test]
    async fn selection_errors_are_recognised() {
        let schema = Schema::new(Query, EmptyMutation, Events);
        for (query, name) in [
            ("query A { a } query B { a }", None),
            ("query A { a }", Some("C")),
            ("{ a }", Some("C")),
        ] {
            let mut request = Request::new(query);
            if let Some(name) = name {
                request = request.operation_name(name);
            }
            let response = schema.execute(request).await;
            assert_eq!(response.errors.len(), 1, "{query}");
            assert!(
                super::is_selection_error(&response.errors[0].message),
                "{:?}",
                response.errors
            );
        }
        let response = schema.execute("subscription { n }").await;
        assert_eq!(response.errors.len(), 1);
        assert!(
            super::is_selection_error(&response.errors[0].message),
            "{:?}",
            response.errors
        );
        let response = schema.execute("{ b }").await;
        assert!(
            !super::is_selection_error(&response.errors[0].message),
            "a validation error"
        );
    }
}
