//! The floor of `bench/typename.py`: a bare axum handler answering `POST /graphql` with the
//! response `{__typename}` gets, after parsing the JSON body, on the same runtime and allocator
//! settings as `runflow` (multi-threaded tokio). No GraphQL, no auth, no database.
//!
//! Built as an example of `runflow-api` (`cargo build --release --example bare_axum`) so it uses
//! the workspace's pinned axum/tokio; listens on `$BARE_LISTEN` (default 127.0.0.1:8099).

use axum::Json;
use axum::Router;
use axum::routing::post;
use serde_json::{Value, json};

async fn graphql(Json(body): Json<Value>) -> Json<Value> {
    // Touch the document like a server must, so the floor is not a constant write.
    let typename = if body.get("query").and_then(Value::as_str).is_some() {
        "Query"
    } else {
        "Error"
    };
    Json(json!({ "data": { "__typename": typename } }))
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let address = std::env::var("BARE_LISTEN").unwrap_or_else(|_| "127.0.0.1:8099".into());
    let listener = tokio::net::TcpListener::bind(&address).await?;
    axum::serve(listener, Router::new().route("/graphql", post(graphql))).await
}
