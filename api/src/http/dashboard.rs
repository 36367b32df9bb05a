//! The dashboard (`/`, `/assets/...`) and GraphiQL's assets, embedded in the binary.
//!
//! Every file under `dashboard/` at the repository root is served from `/assets/<path>` with
//! its content type, `Cache-Control: no-cache` plus a content-hash ETag (a browser revalidates
//! and gets `304 Not Modified` while nothing changed), and a Content-Security-Policy that
//! allows only this origin and no inline script. The dashboard talks to the public API only.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rust_embed::Embed;

use crate::app::App;

#[derive(Embed)]
#[folder = "../dashboard/"]
struct Assets;

/// The dashboard's policy: this origin only, no inline script or style, no framing.
const DASHBOARD_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

/// GraphiQL's policy: the same, except that its editor (CodeMirror) sets inline styles.
const GRAPHIQL_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; connect-src 'self'; font-src 'self' data:; object-src 'none'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// `GET /` and `GET /assets/{*path}`.
pub fn routes() -> Router<App> {
    Router::new()
        .route("/", get(index))
        .route("/assets/{*path}", get(asset))
}

/// `GET /`: the dashboard's page.
async fn index(headers: HeaderMap) -> Response {
    serve("index.html", &headers, DASHBOARD_CSP)
}

/// `GET /assets/{*path}`.
async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    let csp = if path.starts_with("graphiql/") {
        GRAPHIQL_CSP
    } else {
        DASHBOARD_CSP
    };
    serve(&path, &headers, csp)
}

/// GraphiQL's page (served by `GET /graphql` to a browser), loading only embedded assets.
pub fn graphiql(headers: &HeaderMap) -> Response {
    serve("graphiql/index.html", headers, GRAPHIQL_CSP)
}

fn serve(path: &str, headers: &HeaderMap, csp: &'static str) -> Response {
    let Some(file) = Assets::get(path) else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    let etag = format!("\"{}\"", hex::encode(&file.metadata.sha256_hash()[..16]));
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|tag| tag.trim() == etag || tag.trim() == "*"));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut response = file.data.into_owned().into_response();
        let mime = if path.ends_with(".graphql") {
            "text/plain"
        } else {
            file.metadata.mimetype()
        };
        let content_type = if mime.starts_with("text/") || mime.ends_with("javascript") {
            format!("{mime}; charset=utf-8")
        } else {
            mime.to_string()
        };
        if let Ok(value) = HeaderValue::from_str(&content_type) {
            response.headers_mut().insert(header::CONTENT_TYPE, value);
        }
        response
    };
    let out = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&etag) {
        out.insert(header::ETAG, value);
    }
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    out.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(csp));
    out.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    out.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}
