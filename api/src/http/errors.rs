//! One JSON body for every HTTP-level error (an unknown path, a wrong method, a body too large,
//! an unsupported media type, and any other error response that would not be JSON):
//!
//! ```json
//! {"errors": [{"message": "what went wrong and what to do", "extensions": {"code": "NOT_FOUND"}}]}
//! ```
//!
//! It is the GraphQL error shape, so one parser reads every error of `/graphql`. Codes:
//! `BAD_REQUEST` (400), `UNAUTHENTICATED` (401), `FORBIDDEN` (403), `NOT_FOUND` (404),
//! `METHOD_NOT_ALLOWED` (405), `NOT_ACCEPTABLE` (406), `REQUEST_TIMEOUT` (408),
//! `PAYLOAD_TOO_LARGE` (413), `UNSUPPORTED_MEDIA_TYPE` (415), `TOO_MANY_REQUESTS` (429),
//! `INTERNAL` (500), `SERVICE_UNAVAILABLE` (503), else `HTTP_<status>`.

use axum::Json;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::app::App;

/// The body of an HTTP-level error.
pub fn http_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({ "errors": [{ "message": message, "extensions": { "code": code } }] });
    (status, Json(body)).into_response()
}

pub fn code_for(status: StatusCode) -> String {
    match status.as_u16() {
        400 => "BAD_REQUEST".into(),
        401 => "UNAUTHENTICATED".into(),
        403 => "FORBIDDEN".into(),
        404 => "NOT_FOUND".into(),
        405 => "METHOD_NOT_ALLOWED".into(),
        406 => "NOT_ACCEPTABLE".into(),
        408 => "REQUEST_TIMEOUT".into(),
        413 => "PAYLOAD_TOO_LARGE".into(),
        415 => "UNSUPPORTED_MEDIA_TYPE".into(),
        429 => "TOO_MANY_REQUESTS".into(),
        500 => "INTERNAL".into(),
        503 => "SERVICE_UNAVAILABLE".into(),
        other => format!("HTTP_{other}"),
    }
}

/// Unknown paths.
pub async fn not_found(request: Request) -> Response {
    http_error(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        &format!(
            "there is nothing at {}: the API is POST /graphql (GraphQL), /graphql/ws and \
             /graphql/stream (subscriptions), /v1/... (agents, webhooks, runtime)",
            request.uri().path()
        ),
    )
}

fn is_json(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"))
}

/// Rewrites error responses that are not JSON (axum's rejections, tower-http's limits) into
/// the documented body, keeping their status and headers (`Allow` on a 405, ...).
pub async fn json_errors(State(app): State<App>, request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let response = next.run(request).await;
    let status = response.status();
    if status.as_u16() < 400 || is_json(&response) || method == axum::http::Method::HEAD {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let original = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
    let original = String::from_utf8_lossy(&original).trim().to_string();
    let message = match status {
        StatusCode::PAYLOAD_TOO_LARGE => format!(
            "the request body is larger than the limit of {} bytes (RUNFLOW_MAX_BODY_BYTES)",
            app.config.max_body_bytes
        ),
        StatusCode::METHOD_NOT_ALLOWED => {
            format!("this path does not accept {method} (the `Allow` header lists the methods it does)")
        }
        _ if !original.is_empty() => original,
        _ => status.canonical_reason().unwrap_or("error").to_string(),
    };
    let body = json!({ "errors": [{ "message": message, "extensions": { "code": code_for(status) } }] });
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(bytes))
}
