//! `/graphql` over HTTP, following the GraphQL over HTTP specification.
//!
//! - `POST` with `Content-Type: application/json` only (other types are refused with 415, so a
//!   browser form cannot post a mutation); one operation per request (batches are refused).
//! - `GET` runs queries only: a mutation or subscription over GET is refused with 405. A
//!   browser asking for HTML gets GraphiQL (embedded assets, no CDN; unless `RUNFLOW_GRAPHIQL=false`).
//! - Subscriptions are not run over POST/GET: the error names `/graphql/ws` and
//!   `/graphql/stream`.
//! - Media types: a client that accepts `application/graphql-response+json` (and prefers it
//!   to `application/json`) gets it, with the spec's status codes: a request that fails before
//!   execution (unparsable or invalid document, bad variables, refused by access control or
//!   the cost limits) answers 4xx (401 unauthenticated, 403 forbidden, else 400) and has no
//!   `data` key. Any other client gets `application/json` and 200 for every GraphQL response.
//! - Malformed requests (bad JSON, a non-string `query`, a missing `query`) answer 400.
//! - Persisted operations: see [`super::persisted`].

use std::collections::HashMap;

use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, OperationType};
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;

use super::bearer::Bearer;
use super::errors::http_error;
use crate::app::App;
use crate::auth::Authentication;

pub const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";

/// The response media type a client asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaType {
    GraphQLResponseJson,
    Json,
}

impl MediaType {
    /// From the `Accept` header: `application/graphql-response+json` when it is accepted with
    /// at least the quality of `application/json`; `application/json` otherwise (also for a
    /// missing header or `*/*`).
    pub fn negotiate(headers: &HeaderMap) -> MediaType {
        let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
            return MediaType::Json;
        };
        let mut graphql_response: Option<f32> = None;
        let mut json: Option<f32> = None;
        for range in accept.split(',') {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let quality = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            match media.as_str() {
                GRAPHQL_RESPONSE_JSON => graphql_response = Some(graphql_response.unwrap_or(0.0).max(quality)),
                "application/json" => json = Some(json.unwrap_or(0.0).max(quality)),
                _ => {}
            }
        }
        match (graphql_response, json) {
            (Some(g), Some(j)) if g >= j && g > 0.0 => MediaType::GraphQLResponseJson,
            (Some(g), None) if g > 0.0 => MediaType::GraphQLResponseJson,
            _ => MediaType::Json,
        }
    }
}

/// A GraphQL response in the negotiated media type and status.
pub fn respond(media: MediaType, response: async_graphql::Response) -> Response {
    // Serialised straight from the response (its maps keep the query's field order).
    let (status, content_type, bytes) = match media {
        MediaType::Json => (StatusCode::OK, "application/json", serde_json::to_vec(&response)),
        MediaType::GraphQLResponseJson if is_request_error(&response) => {
            let status = match response.errors.first().and_then(error_code).as_deref() {
                Some("UNAUTHENTICATED") => StatusCode::UNAUTHORIZED,
                Some("FORBIDDEN" | "PRODUCTION_READ_ONLY") => StatusCode::FORBIDDEN,
                _ => StatusCode::BAD_REQUEST,
            };
            // No `data` entry: the request failed before execution.
            let body = RequestErrors {
                errors: &response.errors,
            };
            (status, GRAPHQL_RESPONSE_JSON, serde_json::to_vec(&body))
        }
        MediaType::GraphQLResponseJson => (StatusCode::OK, GRAPHQL_RESPONSE_JSON, serde_json::to_vec(&response)),
    };
    let Ok(bytes) = bytes else {
        return http_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            "cannot encode the response",
        );
    };
    let status = retry_status(&response).unwrap_or(status);
    let mut http = (status, bytes).into_response();
    http.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if status == StatusCode::SERVICE_UNAVAILABLE {
        http.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    http
}

/// For every media type, an error saying that retrying the same request cannot succeed now
/// sets the status: 503 when the database is unavailable (`SERVICE_UNAVAILABLE`, with
/// `Retry-After`), 422 when an idempotency key was reused with another request
/// (`IDEMPOTENCY_KEY_REUSED`).
fn retry_status(response: &async_graphql::Response) -> Option<StatusCode> {
    let has = |wanted: &str| response.errors.iter().any(|e| error_code(e).as_deref() == Some(wanted));
    if has("SERVICE_UNAVAILABLE") {
        Some(StatusCode::SERVICE_UNAVAILABLE)
    } else if has("IDEMPOTENCY_KEY_REUSED") {
        Some(StatusCode::UNPROCESSABLE_ENTITY)
    } else {
        None
    }
}

#[derive(serde::Serialize)]
struct RequestErrors<'a> {
    errors: &'a [async_graphql::ServerError],
}

/// The response of a request that failed before execution: no data, and only errors without
/// a path (errors raised by resolvers always have one).
fn is_request_error(response: &async_graphql::Response) -> bool {
    response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|error| error.path.is_empty())
}

fn error_code(error: &async_graphql::ServerError) -> Option<String> {
    match error.extensions.as_ref()?.get("code")? {
        async_graphql::Value::String(code) => Some(code.clone()),
        _ => None,
    }
}

/// A request error (no execution) in the GraphQL response shape.
fn request_error(media: MediaType, code: &str, message: String) -> Response {
    let error = crate::graphql::errors::with_code(async_graphql::ServerError::new(message, None), code);
    respond(media, async_graphql::Response::from_errors(vec![error]))
}

/// The body of a GraphQL request. Unknown keys are ignored; known keys must have their types.
#[derive(Deserialize)]
#[cfg_attr(test, derive(Debug, PartialEq))]
struct Body {
    #[serde(default)]
    query: Option<String>,
    #[serde(default, rename = "operationName")]
    operation_name: Option<String>,
    #[serde(default)]
    variables: Option<serde_json::Map<String, Value>>,
    #[serde(default)]
    extensions: Option<serde_json::Map<String, Value>>,
}

/// Runs one GraphQL request for the caller named by the `Authorization` header.
async fn execute(
    app: &App,
    authentication: Authentication,
    headers: &HeaderMap,
    media: MediaType,
    body: Body,
) -> Response {
    let extensions = body.extensions.map(Value::Object);
    let query = match app.persisted.resolve(body.query.as_deref(), extensions.as_ref()) {
        Ok(query) => query,
        Err(error) => return request_error(media, error.code(), error.message()),
    };
    // The document is parsed once (or found parsed in the cache); `execute` below finds that
    // parsed form again and works on it.
    let (kind, single_name) = match crate::graphql::documents::parsed(&query) {
        Some(document) => (
            operation_kind(&document, body.operation_name.as_deref()),
            single_operation_name(&document),
        ),
        None => (None, None),
    };
    let mut request = async_graphql::Request::new(query);
    if kind == Some(OperationType::Subscription) {
        return request_error(
            media,
            "BAD_REQUEST",
            "subscriptions are not served over POST or GET: subscribe over WebSocket at /graphql/ws \
             (graphql-transport-ws) or over server-sent events at /graphql/stream"
                .into(),
        );
    }
    // For metrics: the name sent, else the name of the document's single operation.
    let operation_name = body.operation_name.clone().or(single_name);
    if let Some(name) = body.operation_name {
        request = request.operation_name(name);
    }
    if let Some(variables) = body.variables {
        request = request.variables(async_graphql::Variables::from_json(Value::Object(variables)));
    }
    let mut request = crate::graphql::prepare_request(&app.services, authentication, request);
    if let Some(key) = headers.get("idempotency-key").and_then(|v| v.to_str().ok()) {
        request = request.data(crate::graphql::IdempotencyKey(key.to_string()));
    }
    let response = app.schema.execute(request).await;
    let code = response.errors.first().and_then(error_code);
    super::metrics::graphql_operation(operation_name.as_deref(), code.as_deref().unwrap_or("OK"));
    respond(media, response)
}

pub async fn post(State(app): State<App>, request: Request) -> Response {
    // The extractors `Bearer`, `HeaderMap` and `Bytes`, in that order, without copying the
    // header map.
    let (mut parts, body) = request.into_parts();
    let Ok(Bearer(authentication)) = Bearer::from_request_parts(&mut parts, &app).await;
    let headers = std::mem::take(&mut parts.headers);
    let body = match Bytes::from_request(Request::from_parts(parts, body), &app).await {
        Ok(body) => body,
        Err(rejection) => return rejection.into_response(),
    };
    let media = MediaType::negotiate(&headers);
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
    let body = match parse_body(&body) {
        Ok(body) => body,
        Err(response) => return *response,
    };
    if body.query.is_none() && body.extensions.is_none() {
        return http_error(
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            "the body has no `query`: send {\"query\": \"{ ... }\"}",
        );
    }
    execute(&app, authentication, &headers, media, body).await
}

/// The body of a POST: one JSON object with the keys of [`Body`]. An object is read straight
/// into [`Body`]; anything else (an error, an array, an object with a repeated key) goes the
/// long way, through a JSON value, which says what is wrong and reads a repeated key as its
/// last value.
fn parse_body(bytes: &[u8]) -> Result<Body, Box<Response>> {
    let is_object = bytes.iter().find(|byte| !byte.is_ascii_whitespace()) == Some(&b'{');
    if is_object && let Ok(body) = serde_json::from_slice::<Body>(bytes) {
        return Ok(body);
    }
    parse_body_as_value(bytes)
}

/// [`parse_body`] through a JSON value: the errors it answers.
fn parse_body_as_value(bytes: &[u8]) -> Result<Body, Box<Response>> {
    let value: Value = match serde_json::from_slice(bytes) {
        Ok(value) => value,
        Err(error) => {
            return Err(Box::new(http_error(
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
                &format!("the body is not valid JSON: {error}"),
            )));
        }
    };
    if value.is_array() {
        return Err(Box::new(http_error(
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            "batched requests are not supported: send one operation per request",
        )));
    }
    let body: Body = match serde_json::from_value(value) {
        Ok(body) => body,
        Err(error) => {
            return Err(Box::new(http_error(
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
                &format!(
                    "the body is not a GraphQL request ({{\"query\": string, \"operationName\": string, \
                     \"variables\": object, \"extensions\": object}}): {error}"
                ),
            )));
        }
    };
    Ok(body)
}

pub async fn get(
    State(app): State<App>,
    Bearer(authentication): Bearer,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let media = MediaType::negotiate(&headers);
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    if !params.contains_key("query") && !params.contains_key("extensions") {
        if wants_html && app.config.graphiql {
            return super::dashboard::graphiql(&headers);
        }
        let message = if app.config.graphiql {
            "GET /graphql needs a `query` parameter (open it in a browser for GraphiQL)"
        } else {
            "GET /graphql needs a `query` parameter"
        };
        return http_error(StatusCode::BAD_REQUEST, "BAD_REQUEST", message);
    }
    let parse_object = |name: &str| -> Result<Option<serde_json::Map<String, Value>>, String> {
        match params.get(name) {
            None => Ok(None),
            Some(text) => match serde_json::from_str::<Value>(text) {
                Ok(Value::Object(map)) => Ok(Some(map)),
                Ok(Value::Null) => Ok(None),
                _ => Err(format!("`{name}` must be a JSON object")),
            },
        }
    };
    let (variables, extensions) = match (parse_object("variables"), parse_object("extensions")) {
        (Ok(variables), Ok(extensions)) => (variables, extensions),
        (Err(message), _) | (_, Err(message)) => {
            return http_error(StatusCode::BAD_REQUEST, "BAD_REQUEST", &message);
        }
    };
    let body = Body {
        query: params.get("query").cloned(),
        operation_name: params.get("operationName").cloned(),
        variables,
        extensions,
    };
    // The document may come from the persisted-operation store: check its kind after lookup.
    let document = match &body.query {
        Some(query) => Some(query.clone()),
        None => app
            .persisted
            .resolve(None, body.extensions.clone().map(Value::Object).as_ref())
            .ok(),
    };
    if let Some(document) = document.as_deref().and_then(crate::graphql::documents::parsed)
        && let Some(kind) = operation_kind(&document, body.operation_name.as_deref())
        && kind == OperationType::Mutation
    {
        let mut response = http_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
            "only queries may be sent with GET; send mutations with POST",
        );
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, POST"));
        return response;
    }
    execute(&app, authentication, &headers, media, body).await
}

fn single_operation_name(document: &ExecutableDocument) -> Option<String> {
    match &document.operations {
        DocumentOperations::Single(_) => None,
        DocumentOperations::Multiple(operations) if operations.len() == 1 => {
            operations.keys().next().map(ToString::to_string)
        }
        DocumentOperations::Multiple(_) => None,
    }
}

/// The type of the operation a request would run; None when it cannot be told (the engine then
/// reports the parse or selection error).
fn operation_kind(document: &ExecutableDocument, operation_name: Option<&str>) -> Option<OperationType> {
    match (&document.operations, operation_name) {
        (DocumentOperations::Single(operation), _) => Some(operation.node.ty),
        (DocumentOperations::Multiple(operations), Some(name)) => operations
            .get(&async_graphql::Name::new(name))
            .map(|operation| operation.node.ty),
        // Several operations and no name: the first that is not a query decides.
        (DocumentOperations::Multiple(operations), None) => operations
            .values()
            .map(|operation| operation.node.ty)
            .find(|ty| *ty != OperationType::Query)
            .or(Some(OperationType::Query)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The direct read of a POST body answers what the read through a JSON value answers.
    #[tokio::test]
    async fn a_body_read_directly_is_read_as_through_a_value() {
        let corpus: &[&str] = &[
            r#"{"query": "{__typename}"}"#,
            r#"  {"query":"{ a }","operationName":"A","variables":{"x":[1,2.5,"s",null,{"y":true}]},"extensions":{}}"#,
            r#"{"query": null, "extensions": {"persistedQuery": {"version": 1, "sha256Hash": "ab"}}}"#,
            r#"{"query": "{ a }", "unknown": [1, {"b": 2}], "unknown": 3}"#,
            r#"{"query": "{ a }", "query": "{ b }"}"#,
            r#"{"query": "{ a }", "variables": null, "operationName": null}"#,
            r#"{"query": 1}"#,
            r#"{"query": "{ a }", "variables": []}"#,
            r#"{"variables": {"a": 1e400}}"#,
            r#"{"query": "\u00e9\n\"quoted\""}"#,
            r#"{}"#,
            r#"["{ a }", null, null, null]"#,
            r#"[{"query": "{ a }"}]"#,
            r#""{ a }""#,
            r#"null"#,
            r#"{"query": "{ a }"} trailing"#,
            r#"{"query": "{ a }""#,
            "",
            "\u{c}{\"query\": \"{ a }\"}",
            r#"{"query": "{ a }", "variables": {"a": {"b": {"c": {}}}}}"#,
        ];
        for text in corpus {
            let direct = parse_body(text.as_bytes());
            let through_value = parse_body_as_value(text.as_bytes());
            match (direct, through_value) {
                (Ok(direct), Ok(through_value)) => assert_eq!(direct, through_value, "{text}"),
                (Err(direct), Err(through_value)) => {
                    assert_eq!(direct.status(), through_value.status(), "{text}");
                    let direct = axum::body::to_bytes((*direct).into_body(), usize::MAX).await.ok();
                    let through_value = axum::body::to_bytes((*through_value).into_body(), usize::MAX)
                        .await
                        .ok();
                    assert_eq!(direct, through_value, "{text}");
                }
                (direct, through_value) => panic!(
                    "{text}: {:?} against {:?}",
                    direct.map_err(|r| r.status()),
                    through_value.map_err(|r| r.status())
                ),
            }
        }
    }
}
