//! `/graphql` over HTTP.
//!
//! - `POST` with `Content-Type: application/json` only (other types are refused with 415, so a
//!   browser form cannot post a mutation); one operation per request (batches are refused).
//! - `GET` runs queries only: a mutation or subscription over GET is refused with 405. A
//!   browser asking for HTML gets GraphiQL.

use std::collections::HashMap;

use async_graphql::http::GraphiQLSource;
use async_graphql::parser::types::{DocumentOperations, OperationType};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde_json::json;

use crate::app::App;
use crate::auth::Authentication;

/// A JSON error response in the GraphQL shape, for failures before GraphQL runs.
fn http_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({ "errors": [{ "message": message, "extensions": { "code": code } }] });
    (status, Json(body)).into_response()
}

/// Runs one GraphQL request for the caller named by the `Authorization` header.
async fn execute(app: &App, headers: &HeaderMap, request: async_graphql::Request) -> Response {
    let header = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let authentication = Authentication::from_header(header, &app.services.tokens);
    let mut request = crate::graphql::prepare_request(&app.services, authentication, request);
    if let Some(key) = headers.get("idempotency-key").and_then(|v| v.to_str().ok()) {
        request = request.data(crate::graphql::IdempotencyKey(key.to_string()));
    }
    let response = app.schema.execute(request).await;
    let status = status_of(&response);
    let mut http = (status, Json(response)).into_response();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        http.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    }
    http
}

/// 200, except when an error says that retrying the same request cannot succeed now: 503
/// when the database is unavailable (`SERVICE_UNAVAILABLE`, with `Retry-After`), 422 when an
/// idempotency key was reused with another request (`IDEMPOTENCY_KEY_REUSED`).
fn status_of(response: &async_graphql::Response) -> StatusCode {
    let has = |wanted: &str| {
        response.errors.iter().any(|error| {
            error
                .extensions
                .as_ref()
                .and_then(|e| e.get("code"))
                .is_some_and(|code| *code == async_graphql::Value::from(wanted))
        })
    };
    if has("SERVICE_UNAVAILABLE") {
        StatusCode::SERVICE_UNAVAILABLE
    } else if has("IDEMPOTENCY_KEY_REUSED") {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    }
}

pub async fn post(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.to_ascii_lowercase().starts_with("application/json") {
        return http_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            "send GraphQL requests as JSON with `Content-Type: application/json`",
        );
    }
    let value: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(value) => value,
        Err(error) => {
            return http_error(
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
                &format!("the body is not valid JSON: {error}"),
            );
        }
    };
    if value.is_array() {
        return http_error(
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            "batched requests are not supported: send one operation per request",
        );
    }
    let request: async_graphql::Request = match serde_json::from_value(value) {
        Ok(request) => request,
        Err(error) => {
            return http_error(
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
                &format!("the body is not a GraphQL request ({{\"query\": ..., \"variables\": ...}}): {error}"),
            );
        }
    };
    execute(&app, &headers, request).await
}

pub async fn get(
    State(app): State<App>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    let Some(query) = params.get("query") else {
        if wants_html {
            return Html(
                GraphiQLSource::build()
                    .endpoint("/graphql")
                    .subscription_endpoint("/graphql/ws")
                    .finish(),
            )
            .into_response();
        }
        return http_error(
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            "GET /graphql needs a `query` parameter",
        );
    };
    let operation_name = params.get("operationName").cloned();
    if let Some(kind) = operation_kind(query, operation_name.as_deref())
        && kind != OperationType::Query
    {
        let mut response = http_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
            "only queries may be sent with GET; send mutations and subscriptions with POST",
        );
        response
            .headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static("GET, POST"));
        return response;
    }
    let mut request = async_graphql::Request::new(query.clone());
    if let Some(name) = operation_name {
        request = request.operation_name(name);
    }
    if let Some(variables) = params.get("variables") {
        match serde_json::from_str(variables) {
            Ok(value) => request = request.variables(async_graphql::Variables::from_json(value)),
            Err(error) => {
                return http_error(
                    StatusCode::BAD_REQUEST,
                    "BAD_REQUEST",
                    &format!("`variables` is not valid JSON: {error}"),
                );
            }
        }
    }
    execute(&app, &headers, request).await
}

/// The type of the operation a GET would run; None when it cannot be told (the engine then
/// reports the parse or selection error).
fn operation_kind(query: &str, operation_name: Option<&str>) -> Option<OperationType> {
    let document = async_graphql::parser::parse_query(query).ok()?;
    match (&document.operations, operation_name) {
        (DocumentOperations::Single(operation), _) => Some(operation.node.ty),
        (DocumentOperations::Multiple(operations), Some(name)) => operations
            .get(&async_graphql::Name::new(name))
            .map(|operation| operation.node.ty),
        // Several operations and no name: refuse GET if any of them is not a query.
        (DocumentOperations::Multiple(operations), None) => operations
            .values()
            .map(|operation| operation.node.ty)
            .find(|ty| *ty != OperationType::Query)
            .or(Some(OperationType::Query)),
    }
}
