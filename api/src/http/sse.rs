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
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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
use crate::live::multiplex::{Delivered, Delivery, GroupKey, Member};
use tokio::sync::mpsc;

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
    // Parsed once into the document cache (which the execution then reads); parsed again only
    // to word the error of a document that does not parse.
    if crate::graphql::documents::parsed(&request.query).is_none()
        && let Err(error) = async_graphql::parser::parse_query(&request.query)
    {
        let error = crate::graphql::syntax::readable(async_graphql::ServerError::from(error));
        return http_error(StatusCode::BAD_REQUEST, "GRAPHQL_PARSE_FAILED", &error.message);
    }
    let shared_key = match &authentication {
        Authentication::Authenticated(actor) => GroupKey::of(actor, &request),
        _ => None,
    };

    let outcomes: std::pin::Pin<Box<dyn futures_util::Stream<Item = Outcome> + Send>> = match shared_key {
        // A subscription like others' of the tenant and role: one execution for all of them.
        Some(key) => {
            let (sender, receiver) = mpsc::channel(app.config.ws_buffer.max(2));
            let slow = Arc::new(AtomicBool::new(false));
            let member = Arc::new(SseMember {
                sender,
                slow: slow.clone(),
            });
            let (schema, services) = (app.schema.clone(), app.services.clone());
            // Prepared as the WebSocket prepares it (a subscription's DataLoaders keep no
            // cache across events): the two transports share executions.
            let membership = app.shared_subscriptions.join(key, member, move || {
                schema.execute_stream(crate::graphql::prepare_subscription_request(
                    &services,
                    authentication,
                    request,
                ))
            });
            Box::pin(async_stream::stream! {
                let _membership = membership;
                let mut receiver = receiver;
                while let Some(outcome) = receiver.recv().await {
                    yield outcome;
                }
                if slow.load(Ordering::SeqCst) {
                    yield Outcome::Slow;
                }
            })
        }
        // Alone (it replays, or is not a subscription), still prepared as every streamed
        // operation is: no DataLoader cache across events.
        None => Box::pin(
            app.schema
                .execute_stream(crate::graphql::prepare_subscription_request(
                    &app.services,
                    authentication,
                    request,
                ))
                .map(|response| Outcome::Payload(serde_json::to_string(&response).unwrap_or_default().into())),
        ),
    };
    let mut outcomes = outcomes;

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
                outcome = outcomes.next() => match outcome {
                    Some(Outcome::Payload(payload)) => yield Ok::<Event, Infallible>(Event::default().event("next").data(&*payload)),
                    Some(Outcome::Slow) => {
                        let slow = serde_json::json!({ "data": null, "errors": [{
                            "message": "this subscription's events were not read fast enough and it was ended; \
                                        subscribe again with `after` set to the last cursor you received",
                            "extensions": { "code": "SLOW_CONSUMER" } }] });
                        yield Ok(Event::default().event("next").data(slow.to_string()));
                        break;
                    }
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

/// What the stream sends: a serialised result (a `next` event), or the end of a subscription
/// whose client did not read fast enough.
enum Outcome {
    Payload(Arc<str>),
    Slow,
}

/// A stream's membership of a shared execution: results wait in a bounded queue
/// (`RUNFLOW_WS_BUFFER` results) until the client reads them; when it is full, the
/// subscription ends with `SLOW_CONSUMER`.
struct SseMember {
    sender: mpsc::Sender<Outcome>,
    slow: Arc<AtomicBool>,
}

impl Member for SseMember {
    fn deliver(&self, delivery: Delivery<'_>) -> Delivered {
        let outcome = match delivery {
            Delivery::Next(result) => Outcome::Payload(result.payload.clone()),
            // One `next` with the errors, then the stream completes (the member leaves).
            Delivery::Refused(errors) => Outcome::Payload(format!(r#"{{"data":null,"errors":{errors}}}"#).into()),
            Delivery::Complete => return Delivered::Taken,
        };
        match self.sender.try_send(outcome) {
            Ok(()) => Delivered::Taken,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.slow.store(true, Ordering::SeqCst);
                Delivered::Refused
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Delivered::Refused,
        }
    }
}
