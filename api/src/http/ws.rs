//! `GET /graphql/ws`: GraphQL subscriptions over the graphql-transport-ws protocol (the one the
//! `graphql-ws` npm client speaks), with the protocol's close codes:
//!
//! | code | when |
//! |---|---|
//! | 4400 | a message that is not valid protocol JSON (or is binary) |
//! | 4401 | `subscribe` before the connection was acknowledged |
//! | 4403 | `connection_init` without a valid token, or the token expired (no event is sent after `exp`) |
//! | 4408 | no `connection_init` within `RUNFLOW_WS_INIT_TIMEOUT` |
//! | 4409 | a `subscribe` reusing the id of an active subscription |
//! | 4429 | a second `connection_init` |
//! | 1001 | the server is shutting down |
//!
//! The token comes from the `connection_init` payload (`{"Authorization": "Bearer ..."}`) or,
//! failing that, from the upgrade request's `Authorization` header. The server pings every
//! `RUNFLOW_WS_KEEPALIVE`. Each connection has a bounded outgoing queue: a subscription whose
//! messages cannot be queued is ended with a `SLOW_CONSUMER` error (resume with `after`), so a
//! client that stops reading holds bounded memory.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use crate::app::App;
use crate::auth::{Actor, Authentication, Role};

pub const PROTOCOL: &str = "graphql-transport-ws";

/// Open WebSockets of this process (graceful shutdown waits for their close frames).
pub static OPEN_SOCKETS: AtomicUsize = AtomicUsize::new(0);

enum Outgoing {
    Text(String),
    Close(u16, &'static str),
}

pub async fn upgrade(State(app): State<App>, headers: HeaderMap, ws: WebSocketUpgrade) -> Response {
    if let Some(refusal) = refuse_other_subprotocols(&headers) {
        return refusal;
    }
    let header_auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    ws.protocols([PROTOCOL])
        .max_message_size(app.config.ws_max_message_bytes)
        // Small buffers keep an idle subscriber cheap; the write buffer is capped so a client
        // that stops reading cannot grow it (our own queue then ends its subscriptions).
        .read_buffer_size(4 * 1024)
        .write_buffer_size(4 * 1024)
        .max_write_buffer_size(1024 * 1024)
        .on_upgrade(move |socket| async move {
            OPEN_SOCKETS.fetch_add(1, Ordering::SeqCst);
            Connection::new(app, header_auth).run(socket).await;
            OPEN_SOCKETS.fetch_sub(1, Ordering::SeqCst);
        })
}

/// A client that offers subprotocols, none of them graphql-transport-ws (typically the legacy
/// `graphql-ws` of subscriptions-transport-ws), is refused with 400 and a reason, instead of
/// being upgraded without a subprotocol it would misread.
fn refuse_other_subprotocols(headers: &HeaderMap) -> Option<Response> {
    let offered: Vec<&str> = headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    if offered.is_empty() || offered.contains(&PROTOCOL) {
        return None;
    }
    let message = if offered.contains(&"graphql-ws") {
        "the legacy `graphql-ws` subprotocol (subscriptions-transport-ws) is not supported: use \
         `graphql-transport-ws` (the `graphql-ws` npm client, version 5 or later), or server-sent \
         events at /graphql/stream"
            .to_string()
    } else {
        format!(
            "unsupported WebSocket subprotocol {}: /graphql/ws speaks `graphql-transport-ws`",
            offered.join(", ")
        )
    };
    Some(super::errors::http_error(
        axum::http::StatusCode::BAD_REQUEST,
        "UNSUPPORTED_SUBPROTOCOL",
        &message,
    ))
}

struct Connection {
    app: App,
    header_auth: Option<String>,
    init_received: bool,
    actor: Option<Actor>,
    subscriptions: HashMap<String, AbortHandle>,
}

/// What handling one client message decided.
enum Step {
    Continue,
    Close(u16, &'static str),
}

fn text(value: Value) -> Outgoing {
    Outgoing::Text(value.to_string())
}

impl Connection {
    fn new(app: App, header_auth: Option<String>) -> Self {
        Connection {
            app,
            header_auth,
            init_received: false,
            actor: None,
            subscriptions: HashMap::new(),
        }
    }

    async fn run(mut self, socket: WebSocket) {
        let (mut sink, mut incoming) = socket.split();
        let (out, mut queue) = mpsc::channel::<Outgoing>(self.app.config.ws_buffer.max(2));
        let writer = tokio::spawn(async move {
            while let Some(message) = queue.recv().await {
                match message {
                    Outgoing::Text(text) => {
                        if sink.send(Message::Text(Utf8Bytes::from(text))).await.is_err() {
                            break;
                        }
                    }
                    Outgoing::Close(code, reason) => {
                        let frame = CloseFrame {
                            code,
                            reason: Utf8Bytes::from_static(reason),
                        };
                        let _ = sink.send(Message::Close(Some(frame))).await;
                        break;
                    }
                }
            }
            let _ = sink.close().await;
        });
        let (finished_tx, mut finished) = mpsc::unbounded_channel::<String>();
        let mut shutdown = self.app.shutdown.clone();
        let init_deadline = tokio::time::sleep(self.app.config.ws_init_timeout);
        tokio::pin!(init_deadline);
        let mut keepalive = tokio::time::interval(self.app.config.ws_keepalive);
        keepalive.tick().await;
        let far_future = Duration::from_secs(100 * 365 * 24 * 3600);
        let expiry = tokio::time::sleep(far_future);
        tokio::pin!(expiry);
        let mut expiry_armed = false;

        let close: Option<(u16, &'static str)> = loop {
            tokio::select! {
                message = incoming.next() => {
                    let step = match message {
                        None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break None,
                        Some(Ok(Message::Text(body))) => self.handle(body.as_str(), &out, &finished_tx).await,
                        Some(Ok(Message::Binary(_))) => Step::Close(4400, "Binary messages are not supported"),
                        Some(Ok(Message::Ping(_) | Message::Pong(_))) => Step::Continue,
                    };
                    match step {
                        Step::Continue => {
                            if let (Some(actor), false) = (&self.actor, expiry_armed) {
                                expiry.as_mut().reset(tokio::time::Instant::now() + actor_remaining(actor));
                                expiry_armed = true;
                            }
                        }
                        Step::Close(code, reason) => break Some((code, reason)),
                    }
                }
                () = &mut init_deadline, if !self.init_received => break Some((4408, "Connection initialisation timeout")),
                () = &mut expiry, if self.actor.is_some() => break Some((4403, "Forbidden: the token expired")),
                _ = keepalive.tick(), if self.actor.is_some() => {
                    if out.try_send(text(json!({ "type": "ping" }))).is_err() {
                        // The queue is full: the client has stopped reading; the subscriptions
                        // will notice and end themselves.
                    }
                }
                Some(id) = finished.recv() => {
                    self.subscriptions.remove(&id);
                }
                _ = shutdown.changed() => break Some((1001, "The server is shutting down")),
            }
        };
        for (_, handle) in self.subscriptions.drain() {
            handle.abort();
        }
        if let Some((code, reason)) = close {
            // The close frame goes out even when the queue is full.
            let _ = tokio::time::timeout(Duration::from_secs(2), out.send(Outgoing::Close(code, reason))).await;
        }
        drop(out);
        let _ = tokio::time::timeout(Duration::from_secs(5), writer).await;
    }

    async fn handle(
        &mut self,
        body: &str,
        out: &mpsc::Sender<Outgoing>,
        finished: &mpsc::UnboundedSender<String>,
    ) -> Step {
        let Ok(message) = serde_json::from_str::<Value>(body) else {
            return Step::Close(4400, "Invalid message received");
        };
        let Some(kind) = message.get("type").and_then(Value::as_str) else {
            return Step::Close(4400, "Invalid message received");
        };
        match kind {
            "connection_init" => {
                if self.init_received {
                    return Step::Close(4429, "Too many initialisation requests");
                }
                self.init_received = true;
                let payload_auth = message
                    .get("payload")
                    .and_then(|p| p.get("Authorization").or_else(|| p.get("authorization")))
                    .and_then(Value::as_str)
                    .map(str::to_string);
                let header = payload_auth.or_else(|| self.header_auth.clone());
                match Authentication::from_header(header.as_deref(), &self.app.services.tokens) {
                    Authentication::Authenticated(actor) if actor.role >= Role::Viewer => {
                        self.actor = Some(actor);
                        let _ = out.send(text(json!({ "type": "connection_ack" }))).await;
                        Step::Continue
                    }
                    _ => Step::Close(4403, "Forbidden"),
                }
            }
            "ping" => {
                let _ = out.send(text(json!({ "type": "pong" }))).await;
                Step::Continue
            }
            "pong" => Step::Continue,
            "subscribe" => {
                let Some(actor) = self.actor.clone() else {
                    return Step::Close(4401, "Unauthorized");
                };
                let Some(id) = message.get("id").and_then(Value::as_str).map(str::to_string) else {
                    return Step::Close(4400, "Invalid message received");
                };
                let Some(request) = message
                    .get("payload")
                    .cloned()
                    .and_then(|payload| serde_json::from_value::<async_graphql::Request>(payload).ok())
                else {
                    return Step::Close(4400, "Invalid message received");
                };
                if self.subscriptions.contains_key(&id) {
                    return Step::Close(4409, "Subscriber for this id already exists");
                }
                if self.subscriptions.len() >= self.app.config.ws_max_subscriptions {
                    let error = json!({ "type": "error", "id": id, "payload": [{
                        "message": format!("at most {} subscriptions per connection", self.app.config.ws_max_subscriptions),
                        "extensions": { "code": "LIMIT_EXCEEDED" } }] });
                    let _ = out.send(text(error)).await;
                    return Step::Continue;
                }
                let handle = tokio::spawn(run_subscription(
                    self.app.clone(),
                    actor,
                    id.clone(),
                    request,
                    out.clone(),
                    finished.clone(),
                ));
                self.subscriptions.insert(id, handle.abort_handle());
                Step::Continue
            }
            "complete" => {
                if let Some(id) = message.get("id").and_then(Value::as_str)
                    && let Some(handle) = self.subscriptions.remove(id)
                {
                    handle.abort();
                }
                Step::Continue
            }
            _ => Step::Close(4400, "Invalid message received"),
        }
    }
}

/// Time left before the actor's token expires.
fn actor_remaining(actor: &Actor) -> Duration {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    Duration::from_secs(actor.expires_at.saturating_sub(now))
}

/// Runs one operation and forwards its results: `next` per result, then `complete`; `error`
/// when it is refused before producing anything.
async fn run_subscription(
    app: App,
    actor: Actor,
    id: String,
    request: async_graphql::Request,
    out: mpsc::Sender<Outgoing>,
    finished: mpsc::UnboundedSender<String>,
) {
    let request = crate::graphql::prepare_request(&app.services, Authentication::Authenticated(actor), request);
    let mut stream = app.schema.execute_stream(request);
    let mut first = true;
    while let Some(response) = stream.next().await {
        if first && response.is_err() && response.data == async_graphql::Value::Null {
            let _ = out
                .send(text(json!({ "type": "error", "id": id, "payload": response.errors })))
                .await;
            let _ = finished.send(id);
            return;
        }
        first = false;
        let message = text(json!({ "type": "next", "id": id, "payload": response }));
        match out.try_send(message) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                let error = json!({ "type": "next", "id": id, "payload": { "data": null, "errors": [{
                    "message": "this subscription's messages were not read fast enough and it was ended; \
                                subscribe again with `after` set to the last cursor you received",
                    "extensions": { "code": "SLOW_CONSUMER" } }] } });
                let sent = tokio::time::timeout(Duration::from_secs(5), out.send(text(error))).await;
                if matches!(sent, Ok(Ok(()))) {
                    let _ = tokio::time::timeout(
                        Duration::from_secs(5),
                        out.send(text(json!({ "type": "complete", "id": id }))),
                    )
                    .await;
                }
                let _ = finished.send(id);
                return;
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return,
        }
    }
    let _ = out.send(text(json!({ "type": "complete", "id": id }))).await;
    let _ = finished.send(id);
}

/// Waits (at most `limit`) for every WebSocket to send its close frame.
pub async fn drain(limit: Duration) {
    let deadline = tokio::time::Instant::now() + limit;
    while OPEN_SOCKETS.load(Ordering::SeqCst) > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
