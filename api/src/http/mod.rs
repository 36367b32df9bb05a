//! The HTTP surface: `/graphql` (POST, GET for queries, GraphiQL), `/schema.graphql`,
//! `/healthz`, `/readyz`; request ids, tracing, body limits, graceful shutdown.

mod agents;
mod graphql;
pub mod limits;
mod runtime;
pub mod ws;

use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderName, Request, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::app::App;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub fn router(app: App) -> Router {
    let max_body = app.config.max_body_bytes;
    Router::new()
        .route("/graphql", get(graphql::get).post(graphql::post))
        .route("/graphql/ws", get(ws::upgrade))
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
        .route("/readyz", get(ready))
        .layer(axum::middleware::from_fn_with_state(app.clone(), limits::enforce))
        .with_state(app)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(RequestBodyLimitLayer::new(max_body))
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
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}

async fn schema_sdl(State(app): State<App>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        crate::graphql::sdl_of(&app.schema),
    )
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
    let server = axum::serve(listener, router(app)).with_graceful_shutdown(async move {
        shutdown_signal().await;
        // axum does not wait for upgraded connections: close the WebSockets ourselves.
        stopping.begin_shutdown();
    });
    server.await?;
    ws::drain(Duration::from_secs(5)).await;
    Ok(())
}
