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

use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderName, Request, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::app::App;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub fn router(app: App) -> Router {
    let max_body = app.config.max_body_bytes;
    let cors = cors_layer(&app.config.cors_origins);
    let router = Router::new()
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
        // Inside the router, so each request is labelled with its matched route.
        .route_layer(axum::middleware::from_fn(metrics::track))
        .layer(axum::middleware::from_fn_with_state(app.clone(), limits::enforce))
        .with_state(app.clone())
        .layer(DefaultBodyLimit::max(max_body))
        .layer(RequestBodyLimitLayer::new(max_body))
        // Outside the body limit, so its 413 gets the JSON body too.
        .layer(axum::middleware::from_fn_with_state(app, errors::json_errors))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
            let request_id = request
                .headers()
                .get(REQUEST_ID)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-");
            // The path only: query strings are not logged.
            tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id)
        }))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid));
    match cors {
        Some(cors) => router.layer(cors),
        None => router,
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
    let server = axum::serve(listener, router(app)).with_graceful_shutdown(async move {
        shutdown_signal().await;
        // axum does not wait for upgraded connections: close the WebSockets ourselves.
        stopping.begin_shutdown();
    });
    server.await?;
    ws::drain(Duration::from_secs(5)).await;
    Ok(())
}
