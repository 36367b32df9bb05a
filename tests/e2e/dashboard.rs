//! The dashboard's serving (embedded assets, content types, ETags, CSP), GraphiQL without a
//! CDN, and the first start's sign-in link. The dashboard itself is tested in Chromium by
//! tests/browser (run by .ci/run).

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};

use crate::support::{Backend, Fetch, Server, binary, post_graphql};

#[tokio::test]
async fn dashboard_assets_are_embedded_with_types_etags_and_csp() {
    let server = Server::start(Backend::Sqlite).await;
    let http = server.http();

    let index = server.get("/").await;
    assert_eq!(index.status(), 200);
    let headers = index.headers().clone();
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert_eq!(headers["cache-control"], "no-cache");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    let csp = headers["content-security-policy"].to_str().expect("csp");
    assert!(csp.contains("script-src 'self';"), "{csp}");
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("http"),
        "no inline script, no other origin: {csp}"
    );
    let html = index.text().await.expect("html");
    assert!(html.contains(r#"<script type="module" src="/assets/app.js">"#));
    assert!(!html.contains("<script>"), "no inline script");

    for (path, content_type) in [
        ("/assets/app.js", "text/javascript; charset=utf-8"),
        ("/assets/app.css", "text/css; charset=utf-8"),
        ("/assets/operations/viewer.graphql", "text/plain; charset=utf-8"),
        (
            "/assets/vendor/htm-preact-standalone.module.js",
            "text/javascript; charset=utf-8",
        ),
        (
            "/assets/graphiql/vendor/graphiql.min.js",
            "text/javascript; charset=utf-8",
        ),
    ] {
        let response = server.get(path).await;
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(response.headers()["content-type"], content_type, "{path}");
        let etag = response.headers()["etag"].clone();
        let again = http
            .get(format!("{}{path}", server.url))
            .header("if-none-match", etag.clone())
            .fetch()
            .await;
        assert_eq!(again.status(), 304, "{path} revalidates");
        assert_eq!(again.headers()["etag"], etag);
    }
    for missing in ["/assets/nope.js", "/assets/../Cargo.toml", "/assets/%2e%2e/Cargo.toml"] {
        let response = server.get(missing).await;
        assert_eq!(response.status(), 404, "{missing}");
    }

    // GraphiQL: a page of embedded assets only (no CDN), under a CSP without inline script.
    let graphiql = http
        .get(format!("{}/graphql", server.url))
        .header("accept", "text/html")
        .fetch()
        .await;
    assert_eq!(graphiql.status(), 200);
    let csp = graphiql.headers()["content-security-policy"]
        .to_str()
        .expect("csp")
        .to_string();
    assert!(csp.contains("script-src 'self';"), "{csp}");
    let page = graphiql.text().await.expect("html");
    assert!(page.contains("/assets/graphiql/vendor/graphiql.min.js"));
    assert!(
        !page.contains("https://") && !page.contains("http://") && !page.contains("<script>"),
        "{page}"
    );
}

/// The first start prints a sign-in link with a short-lived admin token in the URL fragment,
/// for the port actually bound.
#[tokio::test]
async fn first_start_prints_a_short_lived_signin_link() {
    let dir = tempfile::tempdir().expect("dir");
    let mut child = Command::new(binary())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUNFLOW_LISTEN", "127.0.0.1:0")
        .env("RUNFLOW_WORKERS", "0")
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some((base, token)) = line.trim().split_once("/#signin=") {
                let _ = tx.send((base.to_string(), token.to_string()));
            }
        }
    });
    let (base, token) = rx.recv_timeout(Duration::from_secs(60)).expect("a sign-in link");
    let port: u16 = base.rsplit(':').next().and_then(|p| p.parse().ok()).expect("a port");
    assert!(base.starts_with("http://127.0.0.1:") && port != 0, "{base}");

    let payload = token.split('.').nth(1).expect("a JWT");
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("base64"),
    )
    .expect("claims");
    let lifetime = claims["exp"].as_u64().expect("exp") - claims["iat"].as_u64().expect("iat");
    assert!(lifetime <= 15 * 60, "short-lived: {lifetime} s");

    let (_, viewer) = post_graphql(
        &reqwest::Client::new(),
        &base,
        Some(&token),
        "{ viewer(environment: STAGING) { tenant role } }",
        json!({}),
    )
    .await;
    assert_eq!(viewer["data"]["viewer"]["tenant"], "default", "{viewer}");
    let role = viewer["data"]["viewer"]["role"].as_str().unwrap_or_default();
    assert!(role.eq_ignore_ascii_case("admin"), "{viewer}");
    let dashboard = reqwest::get(format!("{base}/")).await.expect("send");
    assert_eq!(dashboard.status(), 200);
    let _ = child.kill();
    let _ = child.wait();
}
