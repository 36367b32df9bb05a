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
//! | 4504 | nothing heard from the client for `RUNFLOW_WS_KEEPALIVE` + `RUNFLOW_WS_PONG_TIMEOUT` (a half-open or non-reading socket) |
//! | 1013 | try again later: the tenant is over `RUNFLOW_RATE_LIMIT_WS_CONNECTS` or holds `RUNFLOW_WS_MAX_CONNECTIONS_PER_TENANT` sockets |
//! | 1001 | the server is shutting down |
//!
//! The token comes from the `connection_init` payload (`{"Authorization": "Bearer ..."}`) or,
//! failing that, from the upgrade request's `Authorization` header. The server pings every
//! `RUNFLOW_WS_KEEPALIVE`. Each connection has a bounded outgoing queue: a subscription whose
//! messages cannot be queued is ended with a `SLOW_CONSUMER` error (resume with `after`), so a
//! client that stops reading holds bounded memory.
//!
//! Subscribers of one tenant and role that send the same operation (document, operation name,
//! variables) share one execution: each event is executed and serialised once, and queued to
//! every subscriber as the same bytes (see [`crate::live::multiplex`]). A subscription that
//! replays history (`after:` set), and a query or mutation sent here, runs on its own.
//!
//! Bounds: incoming frames and messages are capped at `RUNFLOW_WS_MAX_MESSAGE_BYTES` from the
//! first byte (before authentication); the outgoing queue is bounded in messages
//! (`RUNFLOW_WS_BUFFER`) and bytes (`RUNFLOW_WS_BUFFER_BYTES`); a result larger than
//! `RUNFLOW_WS_MAX_OUTGOING_BYTES` is replaced by a `MESSAGE_TOO_LARGE` error (with the event's
//! cursor) and the subscription goes on, and the socket's write buffer always holds the largest
//! allowed message, so no frame can overflow it. The connection loop never waits on the client:
//! control messages are dropped when the queue is full, and a writer stuck on a client that does
//! not read is abandoned when the connection ends (shutdown, token expiry, pong timeout).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::AbortHandle;

use crate::app::App;
use crate::auth::policy;
use crate::auth::{Actor, Authentication};
use crate::http::bearer::Bearer;
use crate::http::limits::Class;
use crate::live::multiplex::{Delivered, Delivery, GroupKey, Member, Membership};

pub const PROTOCOL: &str = "graphql-transport-ws";

/// Open WebSockets of this process (graceful shutdown waits for their close frames).
pub static OPEN_SOCKETS: AtomicUsize = AtomicUsize::new(0);

enum Outgoing {
    /// A message and its share of the byte budget (returned when it is written).
    Text(String, Option<tokio::sync::OwnedSemaphorePermit>),
    /// A `next` of a shared execution: the subscription's id (as JSON) and the result
    /// serialised once for all its subscribers; the frame is assembled by the writer.
    Next(Arc<str>, Arc<str>, tokio::sync::OwnedSemaphorePermit),
    Close(u16, &'static str),
}

/// The `next` message of subscription `id_json` (a JSON string) carrying `payload` (a
/// serialised GraphQL response), as `json!({"type": "next", "id": .., "payload": ..})` would.
fn next_frame(id_json: &str, payload: &str) -> String {
    let mut frame = String::with_capacity(NEXT_FRAME_OVERHEAD + id_json.len() + payload.len());
    frame.push_str(r#"{"type":"next","id":"#);
    frame.push_str(id_json);
    frame.push_str(r#","payload":"#);
    frame.push_str(payload);
    frame.push('}');
    frame
}

/// The bytes a `next` frame adds around its id and payload.
const NEXT_FRAME_OVERHEAD: usize = r#"{"type":"next","id":,"payload":}"#.len();

/// The outgoing queue of one connection: bounded in messages and in bytes.
#[derive(Clone)]
struct Queue {
    sender: mpsc::Sender<Outgoing>,
    bytes: Arc<Semaphore>,
    max_message: usize,
}

enum QueueError {
    Full,
    Closed,
}

impl Queue {
    /// Queues `text` if there is room now.
    fn try_push(&self, text: String) -> Result<(), QueueError> {
        self.try_queue(text.len(), |permit| Outgoing::Text(text, Some(permit)))
    }

    /// Queues a shared result for subscription `id_json` if there is room now.
    fn try_push_next(&self, id_json: &Arc<str>, payload: &Arc<str>) -> Result<(), QueueError> {
        let size = NEXT_FRAME_OVERHEAD + id_json.len() + payload.len();
        self.try_queue(size, |permit| Outgoing::Next(id_json.clone(), payload.clone(), permit))
    }

    /// Queues the message `make` builds, charged `size` bytes of the budget, if there is room.
    fn try_queue(
        &self,
        size: usize,
        make: impl FnOnce(tokio::sync::OwnedSemaphorePermit) -> Outgoing,
    ) -> Result<(), QueueError> {
        let size = u32::try_from(size.max(1)).unwrap_or(u32::MAX);
        let permit = match self.bytes.clone().try_acquire_many_owned(size) {
            Ok(permit) => permit,
            Err(tokio::sync::TryAcquireError::NoPermits) => return Err(QueueError::Full),
            Err(tokio::sync::TryAcquireError::Closed) => return Err(QueueError::Closed),
        };
        match self.sender.try_send(make(permit)) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => Err(QueueError::Full),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(QueueError::Closed),
        }
    }

    /// Queues `text`, waiting at most `limit` for room.
    async fn push_within(&self, text: String, limit: Duration) -> bool {
        let size = u32::try_from(text.len().max(1)).unwrap_or(u32::MAX);
        let queued = tokio::time::timeout(limit, async {
            let permit = self.bytes.clone().acquire_many_owned(size).await.ok()?;
            self.sender.send(Outgoing::Text(text, Some(permit))).await.ok()
        })
        .await;
        matches!(queued, Ok(Some(())))
    }
}

pub async fn upgrade(
    State(app): State<App>,
    Bearer(header_auth): Bearer,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    if let Some(refusal) = refuse_other_subprotocols(&headers) {
        return refusal;
    }
    // With the token in the upgrade request, the connection rate is charged (and refused with
    // 429 and `Retry-After`) here; otherwise at `connection_init` (close 1013).
    let mut rate_charged = None;
    if let Authentication::Authenticated(actor) = &header_auth {
        if let Err(limited) = app.limits.check(Class::WsConnects, actor.tenant_id()) {
            return crate::http::limits::rate_limited(&limited);
        }
        rate_charged = Some(actor.tenant_id().to_string());
    }
    // A message is written only once the previous ones fit in the socket (a batch of queued
    // messages is flushed together), so the write buffer never holds more than the largest
    // message we send (see `RUNFLOW_WS_MAX_OUTGOING_BYTES`) plus a control frame.
    let max_write_buffer = app.config.ws_max_outgoing_bytes + 64 * 1024;
    ws.protocols([PROTOCOL])
        // Applies from the first frame, before authentication.
        .max_message_size(app.config.ws_max_message_bytes)
        .max_frame_size(app.config.ws_max_message_bytes)
        // Small buffers keep an idle subscriber cheap.
        .read_buffer_size(4 * 1024)
        .write_buffer_size(4 * 1024)
        .max_write_buffer_size(max_write_buffer)
        .on_upgrade(move |socket| async move {
            OPEN_SOCKETS.fetch_add(1, Ordering::SeqCst);
            let mut connection = Connection::new(app, header_auth);
            connection.rate_charged = rate_charged;
            connection.run(socket).await;
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
    /// The caller named by the upgrade request's `Authorization` header, if any.
    header_auth: Authentication,
    init_received: bool,
    actor: Option<Actor>,
    /// The running subscriptions by id, each with its generation (an id can be reused after
    /// `complete`; a late end report of the old one must not end the new one).
    subscriptions: HashMap<String, (u64, Running)>,
    next_generation: u64,
    /// Counts this socket against its tenant's cap while it lives.
    _slot: Option<crate::http::limits::SocketGuard>,
    /// The tenant whose connection rate the upgrade request already used.
    rate_charged: Option<String>,
}

/// Reports that a subscription ended by itself: its id and generation.
type Finished = mpsc::UnboundedSender<(String, u64)>;

/// A subscription of a connection while it runs; dropping it ends it (or leaves its group).
enum Running {
    /// Its own task: a subscription that replays history (see [`crate::live::multiplex::shareable`]).
    Alone(AbortHandle),
    /// A member of the shared execution of its operation (see [`crate::live::multiplex`]);
    /// counted in `runflow_subscriptions_active` while it lives.
    Shared(
        #[allow(dead_code)] Membership,
        #[allow(dead_code)] super::metrics::ActiveSubscription,
        Arc<WsMember>,
    ),
}

impl Drop for Running {
    fn drop(&mut self) {
        match self {
            Running::Alone(task) => task.abort(),
            // Its last messages (SLOW_CONSUMER, complete) are not sent once it is gone.
            Running::Shared(_, _, member) => member.stop_ending(),
        }
    }
}

/// What handling one client message decided.
enum Step {
    Continue,
    Close(u16, &'static str),
}

fn text(value: Value) -> String {
    value.to_string()
}

impl Connection {
    fn new(app: App, header_auth: Authentication) -> Self {
        Connection {
            app,
            header_auth,
            init_received: false,
            actor: None,
            subscriptions: HashMap::new(),
            next_generation: 0,
            _slot: None,
            rate_charged: None,
        }
    }

    async fn run(mut self, socket: WebSocket) {
        let (mut sink, mut incoming) = socket.split();
        let (sender, mut receiver) = mpsc::channel::<Outgoing>(self.app.config.ws_buffer.max(2));
        let max_message = self.app.config.ws_max_outgoing_bytes.max(1024);
        let budget = self.app.config.ws_buffer_bytes.max(max_message);
        let out = Queue {
            sender,
            bytes: Arc::new(Semaphore::new(budget.min(Semaphore::MAX_PERMITS))),
            max_message,
        };
        let writer = tokio::spawn(async move {
            // Writes what is queued, flushing once per batch: the messages queued together
            // (one event for several subscriptions of this socket) leave in one write.
            'write: while let Some(mut message) = receiver.recv().await {
                loop {
                    match message {
                        Outgoing::Text(text, permit) => {
                            let fed = sink.feed(Message::Text(Utf8Bytes::from(text))).await;
                            drop(permit);
                            if fed.is_err() {
                                break 'write;
                            }
                        }
                        Outgoing::Next(id_json, payload, permit) => {
                            let frame = next_frame(&id_json, &payload);
                            let fed = sink.feed(Message::Text(Utf8Bytes::from(frame))).await;
                            drop(permit);
                            if fed.is_err() {
                                break 'write;
                            }
                        }
                        Outgoing::Close(code, reason) => {
                            let frame = CloseFrame {
                                code,
                                reason: Utf8Bytes::from_static(reason),
                            };
                            let _ = sink.send(Message::Close(Some(frame))).await;
                            break 'write;
                        }
                    }
                    match receiver.try_recv() {
                        Ok(next) => message = next,
                        Err(_) => break,
                    }
                }
                if sink.flush().await.is_err() {
                    break;
                }
            }
            let _ = sink.close().await;
        });
        let (finished_tx, mut finished) = mpsc::unbounded_channel::<(String, u64)>();
        let mut shutdown = self.app.shutdown.clone();
        let init_deadline = tokio::time::sleep(self.app.config.ws_init_timeout);
        tokio::pin!(init_deadline);
        let keepalive_every = self.app.config.ws_keepalive;
        let silence_limit = keepalive_every + self.app.config.ws_pong_timeout;
        let mut keepalive = tokio::time::interval(keepalive_every);
        keepalive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        keepalive.tick().await;
        let mut last_heard = tokio::time::Instant::now();
        let far_future = Duration::from_secs(100 * 365 * 24 * 3600);
        let expiry = tokio::time::sleep(far_future);
        tokio::pin!(expiry);
        let mut expiry_armed = false;

        let close: Option<(u16, &'static str)> = loop {
            tokio::select! {
                message = incoming.next() => {
                    last_heard = tokio::time::Instant::now();
                    let step = match message {
                        None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break None,
                        Some(Ok(Message::Text(body))) => self.handle(body.as_str(), &out, &finished_tx),
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
                    if last_heard.elapsed() > silence_limit {
                        break Some((4504, "Keep-alive timeout: no message or pong from the client"));
                    }
                    // Dropped when the queue is full: the client has stopped reading, and the
                    // pong timeout or its subscriptions' SLOW_CONSUMER will end it.
                    let _ = out.try_push(text(json!({ "type": "ping" })));
                }
                Some((id, generation)) = finished.recv() => {
                    if self.subscriptions.get(&id).is_some_and(|(current, _)| *current == generation) {
                        self.subscriptions.remove(&id);
                    }
                }
                _ = shutdown.changed() => break Some((1001, "The server is shutting down")),
            }
        };
        // Ends every subscription (aborts its task, or leaves its group).
        self.subscriptions.clear();
        if let Some((code, reason)) = close {
            // The close frame goes out when the queue has room within 2 s.
            let _ = tokio::time::timeout(Duration::from_secs(2), out.sender.send(Outgoing::Close(code, reason))).await;
        }
        drop(out);
        // A writer stuck on a client that does not read is abandoned (the socket is dropped).
        let abort = writer.abort_handle();
        if tokio::time::timeout(Duration::from_secs(5), writer).await.is_err() {
            abort.abort();
        }
    }

    /// Handles one client message. Never waits: the loop must keep serving keep-alive,
    /// expiry and shutdown whatever the client does.
    fn handle(&mut self, body: &str, out: &Queue, finished: &Finished) -> Step {
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
                // The payload's `Authorization` goes through the same parsing and verification
                // as a header's (`Authentication::from_header`); without one, the upgrade
                // request's header decides.
                let payload_auth = message
                    .get("payload")
                    .and_then(|p| p.get("Authorization").or_else(|| p.get("authorization")))
                    .and_then(Value::as_str);
                let authentication = match payload_auth {
                    Some(value) => Authentication::from_header(Some(value), &self.app.services.tokens),
                    None => self.header_auth.clone(),
                };
                match authentication {
                    Authentication::Authenticated(actor) if policy::may_use_graphql(&actor) => {
                        // The cap first: a connection refused by it does not use up the rate.
                        let limits = &self.app.limits;
                        let Some(slot) = limits.open_socket(actor.tenant_id()) else {
                            return Step::Close(1013, "Try again later: too many connections for this tenant");
                        };
                        if self.rate_charged.as_deref() != Some(actor.tenant_id())
                            && limits.check(Class::WsConnects, actor.tenant_id()).is_err()
                        {
                            return Step::Close(
                                1013,
                                "Try again later: connection rate limit (RUNFLOW_RATE_LIMIT_WS_CONNECTS)",
                            );
                        }
                        self._slot = Some(slot);
                        self.actor = Some(actor);
                        let _ = out.try_push(text(json!({ "type": "connection_ack" })));
                        Step::Continue
                    }
                    _ => Step::Close(4403, "Forbidden"),
                }
            }
            "ping" => {
                let _ = out.try_push(text(json!({ "type": "pong" })));
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
                    let _ = out.try_push(text(error));
                    return Step::Continue;
                }
                let generation = self.next_generation;
                self.next_generation += 1;
                let running = match GroupKey::of(&actor, &request) {
                    Some(key) => {
                        let member = Arc::new(WsMember {
                            id_json: serde_json::to_string(&id).unwrap_or_default().into(),
                            id: id.clone(),
                            generation,
                            out: out.clone(),
                            finished: finished.clone(),
                            ending: std::sync::Mutex::new(None),
                        });
                        let app = self.app.clone();
                        let joined = member.clone();
                        let membership = self.app.shared_subscriptions.join(key, joined, move || {
                            let request = crate::graphql::prepare_subscription_request(
                                &app.services,
                                Authentication::Authenticated(actor),
                                request,
                            );
                            app.schema.execute_stream(request)
                        });
                        Running::Shared(membership, super::metrics::ActiveSubscription::start("ws"), member)
                    }
                    None => Running::Alone(
                        tokio::spawn(run_subscription(
                            self.app.clone(),
                            actor,
                            (id.clone(), generation),
                            request,
                            out.clone(),
                            finished.clone(),
                        ))
                        .abort_handle(),
                    ),
                };
                self.subscriptions.insert(id, (generation, running));
                Step::Continue
            }
            "complete" => {
                if let Some(id) = message.get("id").and_then(Value::as_str) {
                    // Dropping it ends it.
                    self.subscriptions.remove(id);
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
    Duration::from_secs(actor.expires_at().saturating_sub(now))
}

/// A subscription of this connection as a member of a shared execution: results are queued
/// without waiting; one that finds the queue full ends the subscription with `SLOW_CONSUMER`.
struct WsMember {
    id: String,
    id_json: Arc<str>,
    generation: u64,
    out: Queue,
    finished: Finished,
    /// The task sending its last messages when the queue had no room for them.
    ending: std::sync::Mutex<Option<AbortHandle>>,
}

impl Member for WsMember {
    fn deliver(&self, delivery: Delivery<'_>) -> Delivered {
        match delivery {
            Delivery::Next(result) => {
                let payload = &result.payload;
                let size = NEXT_FRAME_OVERHEAD + self.id_json.len() + payload.len();
                if size > self.out.max_message {
                    let message = too_large(&self.id, result.cursor(), size, self.out.max_message);
                    return match self.out.try_push(text(message)) {
                        Ok(()) => Delivered::Taken,
                        Err(QueueError::Full) => self.slow_consumer(),
                        Err(QueueError::Closed) => Delivered::Refused,
                    };
                }
                match self.out.try_push_next(&self.id_json, payload) {
                    Ok(()) => Delivered::Taken,
                    Err(QueueError::Full) => self.slow_consumer(),
                    Err(QueueError::Closed) => Delivered::Refused,
                }
            }
            Delivery::Refused(errors) => {
                let errors: Value = serde_json::from_str(errors).unwrap_or(Value::Null);
                self.finish(json!({ "type": "error", "id": self.id, "payload": errors }));
                Delivered::Taken
            }
            Delivery::Complete => {
                self.finish(json!({ "type": "complete", "id": self.id }));
                Delivered::Taken
            }
        }
    }
}

impl WsMember {
    /// Ends this subscription with `SLOW_CONSUMER` (once the queue has room), and leaves.
    fn slow_consumer(&self) -> Delivered {
        let out = self.out.clone();
        let (id, finished, generation) = (self.id.clone(), self.finished.clone(), self.generation);
        self.ending(tokio::spawn(async move {
            let patience = Duration::from_secs(5);
            if out.push_within(text(slow_consumer(&id)), patience).await {
                let _ = out
                    .push_within(text(json!({ "type": "complete", "id": id })), patience)
                    .await;
            }
            let _ = finished.send((id, generation));
        }));
        Delivered::Refused
    }

    /// Sends a last message (now, or once the queue has room) and reports the end.
    fn finish(&self, last: Value) {
        let message = text(last);
        if self.out.try_push(message.clone()).is_ok() {
            let _ = self.finished.send((self.id.clone(), self.generation));
            return;
        }
        let (out, id, finished, generation) = (
            self.out.clone(),
            self.id.clone(),
            self.finished.clone(),
            self.generation,
        );
        self.ending(tokio::spawn(async move {
            let _ = out.push_within(message, Duration::from_secs(5)).await;
            let _ = finished.send((id, generation));
        }));
    }

    fn ending(&self, task: tokio::task::JoinHandle<()>) {
        if let Ok(mut ending) = self.ending.lock() {
            *ending = Some(task.abort_handle());
        }
    }

    /// The subscription was completed or its socket closed: its last messages are not sent.
    fn stop_ending(&self) {
        if let Ok(mut ending) = self.ending.lock()
            && let Some(task) = ending.take()
        {
            task.abort();
        }
    }
}

/// The `next` that ends a subscription whose client does not read fast enough.
fn slow_consumer(id: &str) -> Value {
    json!({ "type": "next", "id": id, "payload": { "data": null, "errors": [{
        "message": "this subscription's messages were not read fast enough and it was ended; \
                    subscribe again with `after` set to the last cursor you received",
        "extensions": { "code": "SLOW_CONSUMER" } }] } })
}

/// Runs one operation on its own and forwards its results: `next` per result, then
/// `complete`; `error` when it is refused before producing anything.
async fn run_subscription(
    app: App,
    actor: Actor,
    (id, generation): (String, u64),
    request: async_graphql::Request,
    out: Queue,
    finished: Finished,
) {
    // Counted while the subscription runs (the task ends, or is aborted, with it).
    let _active = super::metrics::ActiveSubscription::start("ws");
    let request =
        crate::graphql::prepare_subscription_request(&app.services, Authentication::Authenticated(actor), request);
    let mut stream = app.schema.execute_stream(request);
    let mut first = true;
    let patience = Duration::from_secs(5);
    while let Some(response) = stream.next().await {
        if first && response.is_err() && response.data == async_graphql::Value::Null {
            let message = text(json!({ "type": "error", "id": id, "payload": response.errors }));
            let _ = out.push_within(message, patience).await;
            let _ = finished.send((id, generation));
            return;
        }
        first = false;
        let mut message = text(json!({ "type": "next", "id": id, "payload": response }));
        if message.len() > out.max_message {
            let response = serde_json::to_value(&response).unwrap_or(Value::Null);
            let cursor = crate::live::multiplex::cursor_of(&response);
            message = text(too_large(&id, cursor, message.len(), out.max_message));
        }
        match out.try_push(message) {
            Ok(()) => {}
            Err(QueueError::Full) => {
                if out.push_within(text(slow_consumer(&id)), patience).await {
                    let _ = out
                        .push_within(text(json!({ "type": "complete", "id": id })), patience)
                        .await;
                }
                let _ = finished.send((id, generation));
                return;
            }
            Err(QueueError::Closed) => return,
        }
    }
    let _ = out
        .push_within(text(json!({ "type": "complete", "id": id })), patience)
        .await;
    let _ = finished.send((id, generation));
}

/// The `next` sent instead of a result too large to send: it names the limit and carries the
/// event's cursor (when the result has one), so the client can fetch what it needs by query.
fn too_large(id: &str, cursor: Option<&str>, size: usize, limit: usize) -> Value {
    json!({ "type": "next", "id": id, "payload": { "data": null, "errors": [{
        "message": format!(
            "this event's result is {size} bytes, over the limit of {limit} bytes per message \
             (RUNFLOW_WS_MAX_OUTGOING_BYTES); select fewer fields and fetch large ones (output, log, \
             attributes) with a query"
        ),
        "extensions": { "code": "MESSAGE_TOO_LARGE", "cursor": cursor } }] } })
}

/// Waits (at most `limit`) for every WebSocket to send its close frame.
pub async fn drain(limit: Duration) {
    let deadline = tokio::time::Instant::now() + limit;
    while OPEN_SOCKETS.load(Ordering::SeqCst) > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
