//! Fairness and load limits of the HTTP surface, as middleware in front of every route:
//!
//! - per-tenant rate limits (GCRA, `governor`) on GraphQL, the runtime API, agent endpoints,
//!   webhooks and WebSocket connections, keyed by the tenant of the *verified* token (webhooks:
//!   the tenant of the URL, before the signature is checked, so a flood never reaches the
//!   database). Over the limit: 429 with `Retry-After` and the code `RATE_LIMITED`;
//! - a global cap on requests in flight with a fast 503 `SERVICE_UNAVAILABLE` beyond it
//!   (load shedding: nothing queues);
//! - a request timeout (503 `TIMEOUT`); dropping the handler's future rolls back its
//!   transaction;
//! - the per-tenant cap on open WebSockets ([`Limits::open_socket`]).
//!
//! Error bodies follow the route: GraphQL's `{"errors": [...]}` on `/graphql`, the runtime
//! API's `{"error": {...}}` elsewhere.

use std::collections::HashMap;
use std::convert::Infallible;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio::sync::Semaphore;
use tower::{Layer, Service};

use super::bearer::Bearer;
use crate::app::App;
use crate::auth::Authentication;
use crate::config::Config;

/// A rate setting: `N/s`, `N/min` or `N/h`, optionally `,burst=B`; `off` disables it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateSpec {
    /// None: unlimited.
    pub quota: Option<(NonZeroU32, Duration, NonZeroU32)>,
    text: String,
}

impl RateSpec {
    pub fn parse(value: &str) -> Result<RateSpec, String> {
        let text = value.trim().to_string();
        if text.eq_ignore_ascii_case("off") {
            return Ok(RateSpec { quota: None, text });
        }
        let bad =
            || format!("{value:?} is not a rate: write N/s, N/min or N/h, optionally followed by ,burst=B (or off)");
        let (rate, burst) = match text.split_once(',') {
            Some((rate, burst)) => (rate.trim(), Some(burst.trim())),
            None => (text.as_str(), None),
        };
        let (count, unit) = rate.split_once('/').ok_or_else(bad)?;
        let count: NonZeroU32 = count.trim().parse().map_err(|_| bad())?;
        let period = match unit.trim() {
            "s" | "sec" | "second" => Duration::from_secs(1),
            "min" | "minute" => Duration::from_secs(60),
            "h" | "hour" => Duration::from_secs(3600),
            _ => return Err(bad()),
        };
        let burst = match burst {
            Some(burst) => burst
                .strip_prefix("burst=")
                .and_then(|b| b.trim().parse::<NonZeroU32>().ok())
                .ok_or_else(bad)?,
            None => count,
        };
        Ok(RateSpec {
            quota: Some((count, period, burst)),
            text,
        })
    }

    fn limiter(&self) -> Option<DefaultKeyedRateLimiter<String>> {
        let (count, period, burst) = self.quota?;
        let quota = Quota::with_period(period / count.get())?.allow_burst(burst);
        Some(RateLimiter::keyed(quota))
    }
}

impl std::fmt::Display for RateSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// What a rate limit applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    Graphql,
    Runtime,
    Agents,
    Webhooks,
    WsConnects,
}

impl Class {
    fn setting(self) -> &'static str {
        match self {
            Class::Graphql => "RUNFLOW_RATE_LIMIT_GRAPHQL",
            Class::Runtime => "RUNFLOW_RATE_LIMIT_RUNTIME",
            Class::Agents => "RUNFLOW_RATE_LIMIT_AGENTS",
            Class::Webhooks => "RUNFLOW_RATE_LIMIT_WEBHOOKS",
            Class::WsConnects => "RUNFLOW_RATE_LIMIT_WS_CONNECTS",
        }
    }
}

/// A refusal by a rate limit: how long to wait.
#[derive(Debug)]
pub struct RateLimited {
    pub retry_after: Duration,
    pub class: Class,
}

impl RateLimited {
    /// Whole seconds for `Retry-After` (at least 1).
    pub fn retry_after_secs(&self) -> u64 {
        let secs = self.retry_after.as_secs() + u64::from(self.retry_after.subsec_nanos() > 0);
        secs.max(1)
    }

    pub fn message(&self) -> String {
        format!(
            "rate limit exceeded for this tenant ({}); retry after {} s",
            self.class.setting(),
            self.retry_after_secs()
        )
    }
}

/// The limits of one process. Cheap to share.
pub struct Limits {
    graphql: Option<DefaultKeyedRateLimiter<String>>,
    runtime: Option<DefaultKeyedRateLimiter<String>>,
    agents: Option<DefaultKeyedRateLimiter<String>>,
    webhooks: Option<DefaultKeyedRateLimiter<String>>,
    ws_connects: Option<DefaultKeyedRateLimiter<String>>,
    in_flight: Arc<Semaphore>,
    max_in_flight: usize,
    request_timeout: Duration,
    agent_timeout: Duration,
    ws_per_tenant: usize,
    open_sockets: Arc<Mutex<HashMap<String, usize>>>,
}

impl Limits {
    pub fn new(config: &Config) -> Arc<Limits> {
        let limits = Arc::new(Limits {
            graphql: config.rate_limit_graphql.limiter(),
            runtime: config.rate_limit_runtime.limiter(),
            agents: config.rate_limit_agents.limiter(),
            webhooks: config.rate_limit_webhooks.limiter(),
            ws_connects: config.rate_limit_ws_connects.limiter(),
            in_flight: Arc::new(Semaphore::new(config.max_concurrent_requests.max(1))),
            max_in_flight: config.max_concurrent_requests.max(1),
            request_timeout: config.request_timeout,
            agent_timeout: config.run_timeout + Duration::from_secs(35),
            ws_per_tenant: config.ws_max_connections_per_tenant,
            open_sockets: Arc::new(Mutex::new(HashMap::new())),
        });
        // Forget the state of tenants that have been quiet for a while: memory stays bounded
        // by the tenants active recently.
        let weak = Arc::downgrade(&limits);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(60)).await;
                let Some(limits) = weak.upgrade() else { return };
                for limiter in [
                    &limits.graphql,
                    &limits.runtime,
                    &limits.agents,
                    &limits.webhooks,
                    &limits.ws_connects,
                ]
                .into_iter()
                .flatten()
                {
                    limiter.retain_recent();
                    limiter.shrink_to_fit();
                }
            }
        });
        limits
    }

    fn limiter(&self, class: Class) -> Option<&DefaultKeyedRateLimiter<String>> {
        match class {
            Class::Graphql => self.graphql.as_ref(),
            Class::Runtime => self.runtime.as_ref(),
            Class::Agents => self.agents.as_ref(),
            Class::Webhooks => self.webhooks.as_ref(),
            Class::WsConnects => self.ws_connects.as_ref(),
        }
    }

    /// Takes one request of `class` from `tenant`'s allowance.
    pub fn check(&self, class: Class, tenant: &str) -> Result<(), RateLimited> {
        let Some(limiter) = self.limiter(class) else {
            return Ok(());
        };
        limiter.check_key(&tenant.to_string()).map_err(|not_until| RateLimited {
            retry_after: not_until.wait_time_from(DefaultClock::default().now()),
            class,
        })
    }

    /// Counts an open WebSocket of `tenant`; None when the tenant is at its cap. The socket
    /// counts until the returned guard is dropped.
    pub fn open_socket(&self, tenant: &str) -> Option<SocketGuard> {
        let mut open = self
            .open_sockets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = open.entry(tenant.to_string()).or_insert(0);
        if self.ws_per_tenant > 0 && *count >= self.ws_per_tenant {
            return None;
        }
        *count += 1;
        Some(SocketGuard {
            tenant: tenant.to_string(),
            open_sockets: self.open_sockets.clone(),
        })
    }

    pub fn ws_per_tenant(&self) -> usize {
        self.ws_per_tenant
    }
}

/// An open WebSocket counted against its tenant's cap.
pub struct SocketGuard {
    tenant: String,
    open_sockets: Arc<Mutex<HashMap<String, usize>>>,
}

impl Drop for SocketGuard {
    fn drop(&mut self) {
        let mut open = self
            .open_sockets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.tenant) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.tenant);
            }
        }
    }
}

/// Which limits a path falls under.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Route {
    Graphql,
    WebSocket,
    Runtime,
    Agent,
    Webhook,
    /// Health checks and the schema: never limited.
    Free,
}

fn route(path: &str) -> (Route, Option<&str>) {
    if path == "/graphql/ws" {
        return (Route::WebSocket, None);
    }
    if path == "/graphql" {
        return (Route::Graphql, None);
    }
    if path.starts_with("/v1/runtime/") {
        return (Route::Runtime, None);
    }
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        ["v1", tenant, _, "agents", _] => (Route::Agent, Some(tenant)),
        ["v1", tenant, _, "triggers", _] => (Route::Webhook, Some(tenant)),
        _ => (Route::Free, None),
    }
}

/// An error response: the one error body ([`super::errors`]), with `Retry-After`.
fn refusal(graphql: bool, status: StatusCode, code: &str, message: &str, retry_after: Option<u64>) -> Response {
    let mut response = if graphql {
        super::errors::http_error(status, code, message)
    } else {
        super::errors::v1_error(status, code, message)
    };
    if let Some(secs) = retry_after
        && let Ok(value) = HeaderValue::from_str(&secs.to_string())
    {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// The 429 answer to a refusal by a rate limit (runtime API shape).
pub fn rate_limited(limited: &RateLimited) -> Response {
    refusal(
        false,
        StatusCode::TOO_MANY_REQUESTS,
        "RATE_LIMITED",
        &limited.message(),
        Some(limited.retry_after_secs()),
    )
}

/// The limits as a tower layer in front of the router: rate limit, then concurrency limit,
/// then timeout. Hand-written rather than `axum::middleware::from_fn`: a request to a path
/// that is never limited (health checks, the dashboard, WebSockets) passes straight through,
/// and a limited one costs one boxed future (the timeout and the permit).
#[derive(Clone)]
pub struct EnforceLayer {
    app: App,
}

impl EnforceLayer {
    pub fn new(app: App) -> Self {
        EnforceLayer { app }
    }
}

impl<S> Layer<S> for EnforceLayer {
    type Service = Enforce<S>;

    fn layer(&self, inner: S) -> Enforce<S> {
        Enforce {
            inner,
            app: self.app.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Enforce<S> {
    inner: S,
    app: App,
}

impl<S, B> Service<axum::http::Request<B>> for Enforce<S>
where
    S: Service<axum::http::Request<B>, Response = Response, Error = Infallible>,
    S::Future: Send + Unpin + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = EnforceFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: axum::http::Request<B>) -> Self::Future {
        let app = &self.app;
        let limits = &app.limits;
        let (route, path_tenant) = route(request.uri().path());
        if route == Route::Free || route == Route::WebSocket {
            // WebSockets are limited at `connection_init` (rate and per-tenant cap), where the
            // tenant is known; they are long-lived and do not count as requests in flight.
            return EnforceFuture::Inner(self.inner.call(request));
        }
        let graphql = route == Route::Graphql;
        let class = match route {
            Route::Graphql => Class::Graphql,
            Route::Runtime => Class::Runtime,
            Route::Agent => Class::Agents,
            _ => Class::Webhooks,
        };
        // The caller's token is verified here once; the handler's `Bearer` takes the result.
        let checked = match path_tenant.filter(|_| route == Route::Webhook) {
            Some(tenant) => limits.check(class, tenant).map(|()| None),
            None => {
                let authentication = Bearer::of(request.headers(), &app.services.tokens);
                let tenant = match &authentication {
                    Authentication::Authenticated(actor) => actor.tenant_id(),
                    // Unauthenticated callers share one allowance (they get 401 anyway).
                    _ => "\u{0}anonymous",
                };
                limits.check(class, tenant).map(|()| Some(authentication))
            }
        };
        let mut request = request;
        match checked {
            Ok(Some(authentication)) => Bearer::remember(&mut request, authentication),
            Ok(None) => {}
            Err(limited) => {
                return EnforceFuture::Refused(Some(refusal(
                    graphql,
                    StatusCode::TOO_MANY_REQUESTS,
                    "RATE_LIMITED",
                    &limited.message(),
                    Some(limited.retry_after_secs()),
                )));
            }
        }
        let Ok(permit) = limits.in_flight.clone().try_acquire_owned() else {
            return EnforceFuture::Refused(Some(refusal(
                graphql,
                StatusCode::SERVICE_UNAVAILABLE,
                "SERVICE_UNAVAILABLE",
                &format!(
                    "the server is at its limit of {} requests in flight (RUNFLOW_MAX_CONCURRENT_REQUESTS); retry shortly",
                    limits.max_in_flight
                ),
                Some(1),
            )));
        };
        let timeout = if route == Route::Agent {
            limits.agent_timeout
        } else {
            limits.request_timeout
        };
        let future = self.inner.call(request);
        EnforceFuture::Limited(Box::pin(async move {
            let _permit = permit;
            match tokio::time::timeout(timeout, future).await {
                Ok(Ok(response)) => response,
                Err(_) => refusal(
                    graphql,
                    StatusCode::SERVICE_UNAVAILABLE,
                    "TIMEOUT",
                    &format!(
                        "the request took longer than {} and was stopped (RUNFLOW_REQUEST_TIMEOUT); \
                         a change it had not committed yet was rolled back",
                        humantime::format_duration(timeout)
                    ),
                    Some(1),
                ),
            }
        }))
    }
}

pub enum EnforceFuture<F> {
    /// A path that is never limited.
    Inner(F),
    /// Refused before reaching the router.
    Refused(Option<Response>),
    /// Holding a permit, under the timeout.
    Limited(Pin<Box<dyn Future<Output = Response> + Send>>),
}

impl<F> Future for EnforceFuture<F>
where
    F: Future<Output = Result<Response, Infallible>> + Unpin,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            EnforceFuture::Inner(future) => Pin::new(future).poll(cx),
            EnforceFuture::Refused(response) => match response.take() {
                Some(response) => Poll::Ready(Ok(response)),
                None => Poll::Pending,
            },
            EnforceFuture::Limited(future) => future.as_mut().poll(cx).map(Ok),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_specs_parse() {
        assert_eq!(
            RateSpec::parse("5/min,burst=2").map(|r| r.quota),
            Ok(Some((
                NonZeroU32::new(5).unwrap_or(NonZeroU32::MIN),
                Duration::from_secs(60),
                NonZeroU32::new(2).unwrap_or(NonZeroU32::MIN)
            )))
        );
        assert_eq!(RateSpec::parse("off").map(|r| r.quota), Ok(None));
        assert!(RateSpec::parse("5").is_err());
        assert!(RateSpec::parse("0/s").is_err());
        assert!(RateSpec::parse("5/s,burst=x").is_err());
    }
}
