//! Prometheus metrics at `GET /metrics` (text exposition format).
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `runflow_http_requests_total` | counter | `method`, `route` (the matched route, not the raw path), `status` |
//! | `runflow_http_request_duration_seconds` | histogram | `method`, `route` |
//! | `runflow_graphql_operations_total` | counter | `operation` (the operation name; at most 200 distinct, then `other`), `code` (`OK` or the first error's code) |
//! | `runflow_websockets_open` | gauge | |
//! | `runflow_subscriptions_active` | gauge | `transport` (`ws` or `sse`) |
//! | `runflow_subscription_executions` | gauge | shared subscription executions running: subscribers of one tenant and role with the same operation share one (see `live::multiplex`); a replay (`after`) runs on its own and is not counted here |
//! | `runflow_executions` | gauge | `status`, read from the database at scrape time |
//! | `runflow_execution_queue_depth` | gauge | executions waiting for a worker (`QUEUED`) |
//! | `runflow_event_log_lag_events` | gauge | events committed to the event log that this process's live feed has not delivered yet (scrape time) |
//! | `runflow_event_log_lag_seconds` | gauge | age of the oldest of them (0 when caught up) |
//! | `runflow_live_events_delivered_total` | counter | events the live feed delivered to this process's subscriptions |
//! | `runflow_live_event_delay_seconds` | histogram | from an event's commit to its delivery by the live feed |
//! | `runflow_audit_entries_failed_total` | counter | mutations refused because their audit entry could not be written, their change rolled back (should stay 0) |

use std::collections::HashSet;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{LazyLock, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, header};
use axum::response::{IntoResponse, Response};
use prometheus::{
    Encoder, Gauge, Histogram, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};
use sea_orm::{ConnectionTrait, Statement};
use tower::{Layer, Service};

use crate::app::App;

/// Distinct operation names counted before the rest are counted as `other`.
const MAX_OPERATION_NAMES: usize = 200;

pub struct Metrics {
    registry: Registry,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    graphql_operations: IntCounterVec,
    websockets_open: IntGauge,
    pub subscriptions_active: IntGaugeVec,
    subscription_executions: IntGauge,
    executions: IntGaugeVec,
    queue_depth: IntGauge,
    event_lag_events: IntGauge,
    event_lag_seconds: Gauge,
    live_events_delivered: IntCounter,
    live_event_delay: Histogram,
    audit_entries_failed: IntCounter,
    operation_names: Mutex<HashSet<String>>,
}

fn build() -> Result<Metrics, prometheus::Error> {
    let registry = Registry::new();
    let http_requests = IntCounterVec::new(
        Opts::new(
            "runflow_http_requests_total",
            "HTTP requests by method, route and status.",
        ),
        &["method", "route", "status"],
    )?;
    let http_duration = HistogramVec::new(
        prometheus::HistogramOpts::new("runflow_http_request_duration_seconds", "HTTP request latency.")
            .buckets(vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
        &["method", "route"],
    )?;
    let graphql_operations = IntCounterVec::new(
        Opts::new(
            "runflow_graphql_operations_total",
            "GraphQL operations over HTTP by operation name and result code.",
        ),
        &["operation", "code"],
    )?;
    let websockets_open = IntGauge::new("runflow_websockets_open", "Open WebSockets.")?;
    let subscriptions_active = IntGaugeVec::new(
        Opts::new("runflow_subscriptions_active", "Active subscriptions by transport."),
        &["transport"],
    )?;
    // Both series exist from the start (0), so a scrape shows them before the first subscription.
    for transport in ["ws", "sse"] {
        subscriptions_active.with_label_values(&[transport]).set(0);
    }
    let subscription_executions = IntGauge::new(
        "runflow_subscription_executions",
        "Shared subscription executions running (subscribers with the same operation share one; replays are not counted).",
    )?;
    let executions = IntGaugeVec::new(
        Opts::new("runflow_executions", "Executions in the database by status."),
        &["status"],
    )?;
    let queue_depth = IntGauge::new("runflow_execution_queue_depth", "Executions waiting for a worker.")?;
    let event_lag_events = IntGauge::new(
        "runflow_event_log_lag_events",
        "Events committed to the event log that this process's live feed has not delivered yet.",
    )?;
    let event_lag_seconds = Gauge::new(
        "runflow_event_log_lag_seconds",
        "Age of the oldest event the live feed has not delivered yet (0 when caught up).",
    )?;
    let live_events_delivered = IntCounter::new(
        "runflow_live_events_delivered_total",
        "Events the live feed delivered to this process's subscriptions.",
    )?;
    let live_event_delay = Histogram::with_opts(
        prometheus::HistogramOpts::new(
            "runflow_live_event_delay_seconds",
            "Time from an event's commit to its delivery by the live feed.",
        )
        .buckets(vec![0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]),
    )?;
    let audit_entries_failed = IntCounter::new(
        "runflow_audit_entries_failed_total",
        "Mutations refused because their audit entry could not be written (their change was rolled back).",
    )?;
    registry.register(Box::new(http_requests.clone()))?;
    registry.register(Box::new(http_duration.clone()))?;
    registry.register(Box::new(graphql_operations.clone()))?;
    registry.register(Box::new(websockets_open.clone()))?;
    registry.register(Box::new(subscriptions_active.clone()))?;
    registry.register(Box::new(subscription_executions.clone()))?;
    registry.register(Box::new(executions.clone()))?;
    registry.register(Box::new(queue_depth.clone()))?;
    registry.register(Box::new(event_lag_events.clone()))?;
    registry.register(Box::new(event_lag_seconds.clone()))?;
    registry.register(Box::new(live_events_delivered.clone()))?;
    registry.register(Box::new(live_event_delay.clone()))?;
    registry.register(Box::new(audit_entries_failed.clone()))?;
    Ok(Metrics {
        registry,
        http_requests,
        http_duration,
        graphql_operations,
        websockets_open,
        subscriptions_active,
        subscription_executions,
        executions,
        queue_depth,
        event_lag_events,
        event_lag_seconds,
        live_events_delivered,
        live_event_delay,
        audit_entries_failed,
        operation_names: Mutex::new(HashSet::new()),
    })
}

/// The process's metrics (None only if the static definitions above were invalid).
pub static METRICS: LazyLock<Option<Metrics>> = LazyLock::new(|| build().ok());

/// Counts one GraphQL operation.
pub fn graphql_operation(operation: Option<&str>, code: &str) {
    let Some(metrics) = METRICS.as_ref() else {
        return;
    };
    let name = operation.unwrap_or("anonymous");
    let name = match metrics.operation_names.lock() {
        Ok(mut names) if names.contains(name) || names.len() < MAX_OPERATION_NAMES => {
            names.insert(name.to_string());
            name
        }
        _ => "other",
    };
    metrics.graphql_operations.with_label_values(&[name, code]).inc();
}

/// The live feed delivered an event committed at `created_at`.
pub fn live_event_delivered(created_at: chrono::DateTime<chrono::Utc>) {
    if let Some(metrics) = METRICS.as_ref() {
        metrics.live_events_delivered.inc();
        let delay = (chrono::Utc::now() - created_at).num_milliseconds().max(0) as f64 / 1000.0;
        metrics.live_event_delay.observe(delay);
    }
}

/// An audit entry could not be written: its transaction, and so the change, was rolled back
/// and the mutation refused (it is logged as an error too).
pub fn audit_entry_failed() {
    if let Some(metrics) = METRICS.as_ref() {
        metrics.audit_entries_failed.inc();
    }
}

/// Counts one active subscription of a transport (`ws` or `sse`) while it lives.
pub struct ActiveSubscription(&'static str);

impl ActiveSubscription {
    pub fn start(transport: &'static str) -> Self {
        if let Some(metrics) = METRICS.as_ref() {
            metrics.subscriptions_active.with_label_values(&[transport]).inc();
        }
        ActiveSubscription(transport)
    }
}

impl Drop for ActiveSubscription {
    fn drop(&mut self) {
        if let Some(metrics) = METRICS.as_ref() {
            metrics.subscriptions_active.with_label_values(&[self.0]).dec();
        }
    }
}

/// Counts one running subscription execution (shared by its group's subscribers) while it lives.
pub struct SharedExecution;

impl SharedExecution {
    pub fn start() -> Self {
        if let Some(metrics) = METRICS.as_ref() {
            metrics.subscription_executions.inc();
        }
        SharedExecution
    }
}

impl Drop for SharedExecution {
    fn drop(&mut self) {
        if let Some(metrics) = METRICS.as_ref() {
            metrics.subscription_executions.dec();
        }
    }
}

/// Counts and times every request by its matched route: a `route_layer`, so it sees the
/// [`MatchedPath`] and only requests that reached a route's handler (not the 404 fallback nor a
/// 405, which are not counted). Hand-written rather than `axum::middleware::from_fn`: no boxed
/// future, no boxed clone of the rest of the stack and no label strings allocated per request.
#[derive(Clone, Copy, Default)]
pub struct TrackLayer;

impl<S> Layer<S> for TrackLayer {
    type Service = Track<S>;

    fn layer(&self, inner: S) -> Track<S> {
        Track { inner }
    }
}

#[derive(Clone)]
pub struct Track<S> {
    inner: S,
}

impl<S> Service<Request> for Track<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
    S::Future: Unpin,
{
    type Response = Response;
    type Error = Infallible;
    type Future = TrackFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let method = request.method().clone();
        let route = request.extensions().get::<MatchedPath>().cloned();
        TrackFuture {
            inner: self.inner.call(request),
            method,
            route,
            started: Instant::now(),
        }
    }
}

pub struct TrackFuture<F> {
    inner: F,
    method: Method,
    route: Option<MatchedPath>,
    started: Instant,
}

impl<F> Future for TrackFuture<F>
where
    F: Future<Output = Result<Response, Infallible>> + Unpin,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let Ok(response) = ready!(Pin::new(&mut this.inner).poll(cx));
        if let Some(metrics) = METRICS.as_ref() {
            let method = this.method.as_str();
            let route = this.route.as_ref().map_or("unmatched", MatchedPath::as_str);
            let status = response.status();
            metrics
                .http_requests
                .with_label_values(&[method, route, status.as_str()])
                .inc();
            metrics
                .http_duration
                .with_label_values(&[method, route])
                .observe(this.started.elapsed().as_secs_f64());
        }
        Poll::Ready(Ok(response))
    }
}

/// `GET /metrics`.
#[expect(
    clippy::disallowed_methods,
    reason = "operator metrics: executions counted by status across all tenants, on purpose (no tenant's data leaves, only counts)"
)]
pub async fn scrape(State(app): State<App>) -> Response {
    let Some(metrics) = METRICS.as_ref() else {
        return super::errors::http_error(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            "metrics are unavailable",
        );
    };
    metrics
        .websockets_open
        .set(i64::try_from(super::ws::OPEN_SOCKETS.load(std::sync::atomic::Ordering::SeqCst)).unwrap_or(i64::MAX));
    let db = &app.services.db;
    let statement = Statement::from_string(
        db.backend(),
        "SELECT status, COUNT(*) AS n FROM executions GROUP BY status",
    );
    if let Ok(rows) = db.conn.query_all_raw(statement).await {
        metrics.executions.reset();
        let mut queued = 0;
        for row in rows {
            let status: String = row.try_get("", "status").unwrap_or_default();
            let count: i64 = row.try_get("", "n").unwrap_or(0);
            if status == "QUEUED" {
                queued = count;
            }
            metrics.executions.with_label_values(&[status.as_str()]).set(count);
        }
        metrics.queue_depth.set(queued);
    }
    match app.services.live.lag(db).await {
        Ok(lag) => {
            metrics.event_lag_events.set(lag.events);
            metrics.event_lag_seconds.set(lag.seconds);
        }
        Err(error) => tracing::warn!(%error, "metrics: cannot measure the live feed's lag"),
    }
    let mut buffer = Vec::new();
    if TextEncoder::new()
        .encode(&metrics.registry.gather(), &mut buffer)
        .is_err()
    {
        buffer.clear();
    }
    ([(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)], buffer).into_response()
}
