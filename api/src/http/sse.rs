//! `/graphql/stream`: GraphQL subscriptions over server-sent events, in the graphql-sse
//! protocol's "distinct connections" mode, for clients and proxies without WebSockets.
//!
//! - One operation per request: `POST` with a JSON GraphQL request (`Content-Type:
//!   application/json`) or `GET` with `query`/`variables`/`operationName` parameters, and
//!   `Accept: text/event-stream`.
//! - The token comes from the `Authorization` header; the same access checks, filters, limits
//!   and cursors (`after`) as the WebSocket apply, since both run the schema's subscription.
//! - A missing or invalid token answers 401 and a document that does not parse 400, with the
//!   JSON error body. Otherwise the stream sends `event: next` with each result (a refusal,
//!   e.g. a validation error or the cost limit, is one `next` with `errors`) and
//!   `event: complete` at the end; a comment line every
//!   `RUNFLOW_WS_KEEPALIVE` keeps proxies from closing it. The stream ends when the token
//!   expires and when the server shuts down. A client that stops reading ends its own
//!   subscription with `SLOW_CONSUMER` (resume with `after`).

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde_json::Value;

use super::bearer::Bearer;
use super::errors::http_error;
use crate::app::App;
use crate::auth::Authentication;

fn request_from_json(body: &[u8]) -> Result<async_graphql::Request, String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| format!("the body is not valid JSON: {e}"))?;
    if !value.get("query").is_some_and(Value::is_string) {
        return Err("the body needs a string `query`".into());
    }
    serde_json::from_value(value).map_err(|e| format!("the body is not a GraphQL request: {e}"))
}

fn request_from_params(params: &HashMap<String, String>) -> Result<async_graphql::Request, String> {
    let query = params
        .get("query")
        .ok_or("GET /graphql/stream needs a `query` parameter")?;
    let mut request = async_graphql::Request::new(query.clone());
    if let Some(name) = params.get("operationName") {
        request = request.operation_name(name.clone());
    }
    if let Some(variables) = params.get("variables") {
        let value: Value = serde_json::from_str(variables).map_err(|e| format!("`variables` is not JSON: {e}"))?;
        request = request.variables(async_graphql::Variables::from_json(value));
    }
    Ok(request)
}

pub async fn stream(
    State(app): State<App>,
    method: Method,
    Bearer(authentication): Bearer,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let request = if method == Method::POST {
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        if !content_type.starts_with("application/json") {
            return http_error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UNSUPPORTED_MEDIA_TYPE",
                "send the subscription as JSON with `Content-Type: application/json`",
            );
        }
        request_from_json(&body)
    } else {
        request_from_params(&params)
    };
    let request = match request {
        Ok(request) => request,
        Err(message) => return http_error(StatusCode::BAD_REQUEST, "BAD_REQUEST", &message),
    };
    // Refusals that need no database answer before the stream starts (the rest, e.g. a
    // validation error, arrive as a `next` event with `errors`, then `complete`).
    let expires_at = match &authentication {
        Authentication::Authenticated(actor) => actor.expires_at(),
        Authentication::Rejected(reason) => {
            return http_error(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", reason);
        }
        Authentication::Anonymous => {
            return http_error(
                StatusCode::UNAUTHORIZED,
                "UNAUTHENTICATED",
                "subscriptions need a token: send `Authorization: Bearer <token>`",
            );
        }
    };
    if let Err(error) = async_graphql::parser::parse_query(&request.query) {
        let error = crate::graphql::syntax::readable(async_graphql::ServerError::from(error));
        return http_error(StatusCode::BAD_REQUEST, "GRAPHQL_PARSE_FAILED", &error.message);
    }
    let request = crate::graphql::documents::attach_parsed(request);
    let request = crate::graphql::prepare_request(&app.services, authentication, request);
    let mut responses = app.schema.execute_stream(request);

    let mut shutdown = app.shutdown.clone();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let expiry = tokio::time::sleep(Duration::from_secs(expires_at.saturating_sub(now)));
    let events = async_stream::stream! {
        // Counted while the stream lives (dropped when the client goes away).
        let _active = super::metrics::ActiveSubscription::start("sse");
        tokio::pin!(expiry);
        loop {
            tokio::select! {
                response = responses.next() => match response {
                    Some(response) => yield Ok::<Event, Infallible>(next_event(&response)),
                    None => break,
                },
                () = &mut expiry => {
                    let expired = serde_json::json!({ "errors": [{
                        "message": "the token expired: subscribe again with a new token and `after` set to the last cursor",
                        "extensions": { "code": "UNAUTHENTICATED" } }] });
                    yield Ok(Event::default().event("next").data(expired.to_string()));
                    break;
                }
                _ = shutdown.changed() => break,
            }
        }
        yield Ok(Event::default().event("complete").data(""));
    };
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(app.config.ws_keepalive))
        .into_response()
}

fn next_event(response: &async_graphql::Response) -> Event {
    // Serialised straight from the response: the query's field order is kept.
    Event::default()
        .event("next")
        .data(serde_json::to_string(response).unwrap_or_default())
}
