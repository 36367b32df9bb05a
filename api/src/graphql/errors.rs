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

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextRequest, NextSubscribe, NextValidation,
};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{Response, ServerError, ServerResult, ValidationResult, Value, Variables};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;

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

pub struct ErrorCodes;

impl ExtensionFactory for ErrorCodes {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ErrorCodesExtension)
    }
}

struct ErrorCodesExtension;

#[async_graphql::async_trait::async_trait]
impl Extension for ErrorCodesExtension {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let mut response = next.run(ctx).await;
        response.errors = std::mem::take(&mut response.errors)
            .into_iter()
            .map(map_error)
            .collect();
        response
    }

    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: BoxStream<'s, Response>,
        next: NextSubscribe<'_>,
    ) -> BoxStream<'s, Response> {
        Box::pin(next.run(ctx, stream).map(|mut response| {
            response.errors = std::mem::take(&mut response.errors)
                .into_iter()
                .map(map_error)
                .collect();
            response
        }))
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        next.run(ctx, query, variables)
            .await
            .map_err(|e| if has_code(&e) { e } else { with_code(e, PARSE_FAILED) })
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        next.run(ctx)
            .await
            .map_err(|errors| errors.into_iter().map(validation_error).collect())
    }
}
