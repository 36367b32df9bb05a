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
//!
//! Every error that is not a GraphQL response is built here, in that one shape: the HTTP-level
//! errors ([`http_error`]), and the runtime API's, the agent endpoints' and the rate limiter's
//! ([`v1_error`]). The `/v1/...` endpoints documented `{"error": {"code", "message"}}` first, so
//! their body also repeats the same code and message under `error`, for runtimes that read it.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::Request;
use axum::http::{self, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{BoxError, Json};
use serde_json::{Value, json};
use tower::{Layer, Service};

/// The one error body: `{"errors": [{"message", "extensions": {"code"}}]}`.
pub fn error_body(code: &str, message: &str) -> Value {
    json!({ "errors": [{ "message": message, "extensions": { "code": code } }] })
}

/// The body of an HTTP-level error.
pub fn http_error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(error_body(code, message))).into_response()
}

/// An error of the runtime API, the agent endpoints or a limit: the one body, with the same
/// code and message repeated under `error` (`{"error": {"code", "message"}}`, the form those
/// endpoints documented first).
pub fn v1_error(status: StatusCode, code: &str, message: &str) -> Response {
    let mut body = error_body(code, message);
    if let Value::Object(fields) = &mut body {
        fields.insert("error".into(), json!({ "code": code, "message": message }));
    }
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
/// the documented body, keeping their status and headers (`Allow` on a 405, ...). A tower
/// layer around the router (see [`super::router`]); a response that needs no rewrite (every
/// success, every JSON error) passes through without an allocation.
#[derive(Clone)]
pub struct JsonErrorsLayer {
    max_body_bytes: usize,
}

impl JsonErrorsLayer {
    /// `max_body_bytes` is named in the 413 message (`RUNFLOW_MAX_BODY_BYTES`).
    pub fn new(max_body_bytes: usize) -> Self {
        JsonErrorsLayer { max_body_bytes }
    }
}

impl<S> Layer<S> for JsonErrorsLayer {
    type Service = JsonErrors<S>;

    fn layer(&self, inner: S) -> JsonErrors<S> {
        JsonErrors {
            inner,
            max_body_bytes: self.max_body_bytes,
        }
    }
}

#[derive(Clone)]
pub struct JsonErrors<S> {
    inner: S,
    max_body_bytes: usize,
}

impl<S, B> Service<Request> for JsonErrors<S>
where
    S: Service<Request, Response = http::Response<B>, Error = Infallible>,
    S::Future: Unpin,
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = JsonErrorsFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let method = request.method().clone();
        JsonErrorsFuture::Inner {
            future: self.inner.call(request),
            method,
            max_body_bytes: self.max_body_bytes,
        }
    }
}

pub enum JsonErrorsFuture<F> {
    Inner {
        future: F,
        method: Method,
        max_body_bytes: usize,
    },
    Rewriting(Pin<Box<dyn Future<Output = Response> + Send>>),
}

impl<F, B> Future for JsonErrorsFuture<F>
where
    F: Future<Output = Result<http::Response<B>, Infallible>> + Unpin,
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        loop {
            match this {
                JsonErrorsFuture::Inner {
                    future,
                    method,
                    max_body_bytes,
                } => {
                    let Ok(response) = ready!(Pin::new(future).poll(cx));
                    let response = response.map(Body::new);
                    if response.status().as_u16() < 400 || is_json(&response) || *method == Method::HEAD {
                        return Poll::Ready(Ok(response));
                    }
                    let method = std::mem::replace(method, Method::GET);
                    *this = JsonErrorsFuture::Rewriting(Box::pin(rewrite(response, method, *max_body_bytes)));
                }
                JsonErrorsFuture::Rewriting(future) => return future.as_mut().poll(cx).map(Ok),
            }
        }
    }
}

/// The documented body for an error response that is not JSON.
async fn rewrite(response: Response, method: Method, max_body_bytes: usize) -> Response {
    let status = response.status();
    let (mut parts, body) = response.into_parts();
    let original = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
    let original = String::from_utf8_lossy(&original).trim().to_string();
    let message = match status {
        StatusCode::PAYLOAD_TOO_LARGE => {
            format!("the request body is larger than the limit of {max_body_bytes} bytes (RUNFLOW_MAX_BODY_BYTES)")
        }
        StatusCode::METHOD_NOT_ALLOWED => {
            format!("this path does not accept {method} (the `Allow` header lists the methods it does)")
        }
        _ if !original.is_empty() => original,
        _ => status.canonical_reason().unwrap_or("error").to_string(),
    };
    let bytes = serde_json::to_vec(&error_body(&code_for(status), &message)).unwrap_or_default();
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    Response::from_parts(parts, Body::from(bytes))
}
