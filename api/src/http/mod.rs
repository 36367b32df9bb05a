//! The HTTP surface: the dashboard (`/`, `/assets/...`), `/graphql` (POST, GET for queries,
//! GraphiQL), `/graphql/ws` and `/graphql/stream` (subscriptions over WebSocket and server-sent
//! events), `/schema.graphql`, `/metrics`, `/healthz`, `/readyz`; request ids, tracing, body
//! limits, CORS, JSON error bodies ([`errors`]), graceful shutdown.

mod agents;
pub mod bearer;
mod dashboard;
pub mod errors;
pub mod graphql;
pub mod limits;
pub mod metrics;
pub mod persisted;
mod runtime;
mod sse;
pub mod ws;

use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderName, HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::future::RouteFuture;
use axum::routing::get;
use tower::util::Either;
use tower::{Layer, Service, ServiceBuilder};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::app::App;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The HTTP service: the router and its layers. The layers wrap the router once, as one
/// statically composed service (outermost first): CORS (when configured; its preflight answers
/// see [`CorsPreflight`]), request id, trace span, the request id echoed on the response, JSON
/// error bodies, the body limit, the rate, concurrency and time limits ([`limits`]); inside the
/// router, metrics by matched route ([`metrics::TrackLayer`]).
///
/// `Router::layer` would wrap every route's handler instead, boxing the route again for every
/// layer: each request then cloned every box of the stack (the clone of a boxed route clones
/// what it wraps), and each `from_fn` middleware boxed a future and another clone. Wrapping
/// the router keeps the same order of the same layers, and every layer still sees every
/// request, fallbacks (404, 405) included.
pub fn service(
    app: App,
) -> impl Service<Request<Body>, Response = Response, Error = Infallible, Future: Send + 'static>
+ Clone
+ Send
+ Sync
+ 'static {
    let max_body = app.config.max_body_bytes;
    let cors = cors_layer(&app.config.cors_origins);
    let router = routes().route_layer(metrics::TrackLayer).with_state(app.clone());
    let layers = ServiceBuilder::new()
        // axum's body type (the trace layer wraps it): CORS needs one it can make empty.
        .map_response(IntoResponse::into_response)
        .layer(SetRequestIdLayer::new(REQUEST_ID, RequestIds))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
            let request_id = request
                .headers()
                .get(REQUEST_ID)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-");
            // The path only: query strings are not logged.
            tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id)
        }))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        // Outside the body limit, so its 413 gets the JSON body too.
        .layer(errors::JsonErrorsLayer::new(max_body))
        .layer(RequestBodyLimitLayer::new(max_body))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(limits::EnforceLayer::new(app.clone()));
    let service = layers.service(router);
    match cors {
        Some(cors) => Either::Left(CorsPreflight {
            preflight: routes().layer(cors.clone()).with_state(app),
            main: cors.layer(service),
        }),
        None => Either::Right(service),
    }
}

/// Every route, and the fallback (unknown paths).
fn routes() -> Router<App> {
    Router::new()
        .route("/graphql", get(graphql::get).post(graphql::post))
        .route("/graphql/ws", get(ws::upgrade))
        .route("/graphql/stream", get(sse::stream).post(sse::stream))
        .nest("/v1/runtime", runtime::router())
        .route(
            "/v1/{tenant}/{environment}/agents/{slug}",
            axum::routing::post(agents::invoke),
        )
        .route(
            "/v1/{tenant}/{environment}/triggers/{name}",
            axum::routing::post(agents::webhook),
        )
        .route("/schema.graphql", get(schema_sdl))
        .route("/healthz", get(|| async { "ok" }))
        .merge(dashboard::routes())
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics::scrape))
        .fallback(errors::not_found)
}

/// With CORS configured, CORS answers every `OPTIONS` request itself (preflights), before the
/// other layers. Those go to `preflight`: the routes with CORS around each one, where axum
/// adds the path's `Allow` header to the answer (as it did when every layer wrapped each
/// route); no handler runs there. Every other request goes to `main`.
#[derive(Clone)]
struct CorsPreflight<S> {
    preflight: Router,
    main: S,
}

impl<S> Service<Request<Body>> for CorsPreflight<S>
where
    S: Service<Request<Body>, Response = Response, Error = Infallible>,
    S::Future: Unpin,
{
    type Response = Response;
    type Error = Infallible;
    type Future = CorsPreflightFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Infallible>> {
        self.main.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        if request.method() == axum::http::Method::OPTIONS {
            CorsPreflightFuture::Preflight(Box::new(self.preflight.call(request)))
        } else {
            CorsPreflightFuture::Main(self.main.call(request))
        }
    }
}

enum CorsPreflightFuture<F> {
    /// Boxed: preflights are rare, and the main future stays small.
    Preflight(Box<RouteFuture<Infallible>>),
    Main(F),
}

impl<F> std::future::Future for CorsPreflightFuture<F>
where
    F: std::future::Future<Output = Result<Response, Infallible>> + Unpin,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Self::Output> {
        match self.get_mut() {
            CorsPreflightFuture::Preflight(future) => std::pin::Pin::new(&mut **future).poll(cx),
            CorsPreflightFuture::Main(future) => std::pin::Pin::new(future).poll(cx),
        }
    }
}

/// Request ids (`x-request-id`) for requests that come without one: random (version 4) UUIDs,
/// like tower-http's `MakeRequestUuid`, drawn from the thread's CSPRNG (no system call per
/// request) and formatted without an intermediate `String`.
#[derive(Clone, Copy)]
struct RequestIds;

impl MakeRequestId for RequestIds {
    fn make_request_id<B>(&mut self, _request: &Request<B>) -> Option<RequestId> {
        let bytes: [u8; 16] = rand::random();
        let uuid = uuid::Builder::from_random_bytes(bytes).into_uuid();
        let mut buffer = uuid::Uuid::encode_buffer();
        let text = uuid.hyphenated().encode_lower(&mut buffer);
        HeaderValue::from_str(text).ok().map(RequestId::new)
    }
}

/// CORS for the origins of `RUNFLOW_CORS_ORIGINS` only (none: no CORS headers at all, so
/// browsers allow same-origin pages only). Preflights are answered for the allowed origins;
/// another origin gets no `Access-Control-Allow-Origin`, nothing is reflected.
fn cors_layer(origins: &[String]) -> Option<CorsLayer> {
    let origins: Vec<header::HeaderValue> = origins
        .iter()
        .map(|origin| origin.trim().trim_end_matches('/'))
        .filter(|origin| !origin.is_empty())
        .filter_map(|origin| header::HeaderValue::from_str(origin).ok())
        .collect();
    if origins.is_empty() {
        return None;
    }
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([axum::http::Method::GET, axum::http::Method::POST])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::ACCEPT,
                HeaderName::from_static("idempotency-key"),
                REQUEST_ID,
            ])
            .expose_headers([REQUEST_ID])
            .max_age(Duration::from_secs(600)),
    )
}

/// The SDL, served only while introspection is on (`RUNFLOW_INTROSPECTION`).
async fn schema_sdl(State(app): State<App>) -> axum::response::Response {
    if !app.config.introspection {
        return errors::http_error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "introspection is turned off on this server (RUNFLOW_INTROSPECTION=false); \
             use the published schema.graphql",
        );
    }
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        crate::graphql::sdl_of(&app.schema),
    )
        .into_response()
}

async fn ready(State(app): State<App>) -> impl IntoResponse {
    if app.services.db.ping().await {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "database unavailable")
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}

/// Binds `RUNFLOW_LISTEN`.
pub async fn bind(app: &App) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(app.config.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on RUNFLOW_LISTEN={}: {e}", app.config.listen))
}

/// Serves until a shutdown signal; then closes WebSockets and waits (up to 5 s) for them.
pub async fn serve(app: App, listener: tokio::net::TcpListener) -> anyhow::Result<()> {
    let address = listener.local_addr()?;
    tracing::info!(%address, database = %app.services.db.backend_name(), "runflow is serving GraphQL at http://{address}/graphql");
    let stopping = app.clone();
    // No Nagle delay: a WebSocket frame (a live event) goes out when it is written, not when
    // the previous one is acknowledged.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp: &mut tokio::net::TcpStream| {
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
    });
    let service = axum::ServiceExt::<Request<Body>>::into_make_service(service(app));
    let server = axum::serve(listener, service).with_graceful_shutdown(async move {
        shutdown_signal().await;
        // axum does not wait for upgraded connections: close the WebSockets ourselves.
        stopping.begin_shutdown();
    });
    server.await?;
    ws::drain(Duration::from_secs(5)).await;
    Ok(())
}
