//! The API contract as clients see it: field order, the cost model and its limits, GraphQL
//! over HTTP (media types, status codes, error bodies), CORS and the public-deployment switches.

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, Fetch, Server, error_code, publish_all, refused_start, script_summary, tenant, token};

/// A JSON value that keeps the order of object keys as sent (serde_json's `Value` may not).
#[derive(Debug, PartialEq)]
enum Ordered {
    Object(Vec<(String, Ordered)>),
    List(Vec<Ordered>),
    Scalar(Value),
}

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OrderedVisitor;
        impl<'de> Visitor<'de> for OrderedVisitor {
            type Value = Ordered;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("JSON")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered, A::Error> {
                let mut entries = Vec::new();
                while let Some((key, value)) = map.next_entry::<String, Ordered>()? {
                    entries.push((key, value));
                }
                Ok(Ordered::Object(entries))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Ordered, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Ordered>()? {
                    items.push(item);
                }
                Ok(Ordered::List(items))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Ordered, E> {
                Ok(Ordered::Scalar(json!(v)))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Ordered, E> {
                Ok(Ordered::Scalar(json!(v)))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Ordered, E> {
                Ok(Ordered::Scalar(json!(v)))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Ordered, E> {
                Ok(Ordered::Scalar(json!(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Ordered, E> {
                Ok(Ordered::Scalar(json!(v)))
            }
            fn visit_unit<E>(self) -> Result<Ordered, E> {
                Ok(Ordered::Scalar(Value::Null))
            }
        }
        deserializer.deserialize_any(OrderedVisitor)
    }
}

impl Ordered {
    fn keys(&self) -> Vec<&str> {
        match self {
            Ordered::Object(entries) => entries.iter().map(|(key, _)| key.as_str()).collect(),
            _ => Vec::new(),
        }
    }

    fn get(&self, key: &str) -> &Ordered {
        match self {
            Ordered::Object(entries) => entries
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v)
                .unwrap_or_else(|| panic!("no key {key}")),
            _ => panic!("not an object"),
        }
    }
}

async fn post_raw(server: &Server, token: Option<&str>, body: Value) -> reqwest::Response {
    let mut request = server.http().post(format!("{}/graphql", server.url)).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.fetch().await
}

/// Root fields that each wait on the database, selected in an order that is neither
/// alphabetical nor the schema's; every response must list them (and nested fields) in it.
async fn fields_come_back_in_query_order(backend: Backend) {
    let server = Server::start(backend).await;
    let viewer = token(&tenant(), "viewer");
    let query = "query Order {
        zeta: executions(environment: STAGING, first: 5) { pageInfo { hasPreviousPage hasNextPage } nodes { id } }
        viewer(environment: STAGING) { tenant role subject }
        memoryEntries(environment: STAGING, first: 5) { nodes { id } pageInfo { hasNextPage } }
        alpha: releases(environment: STAGING, first: 5) { pageInfo { hasNextPage hasPreviousPage } nodes { number } }
        traces(environment: STAGING, first: 5) { nodes { id } }
        ...More
        __typename
      }
      fragment More on Query { sessions(environment: STAGING, first: 5) { nodes { id } } zeta: executions(environment: STAGING, first: 5) { edges { cursor } } }";
    for _ in 0..40 {
        let response = post_raw(&server, Some(&viewer), json!({ "query": query })).await;
        let text = response.text().await.expect("body");
        let body: Ordered = serde_json::from_str(&text).expect("json");
        assert_eq!(body.keys(), ["data"], "{text}");
        let data = body.get("data");
        assert_eq!(
            data.keys(),
            [
                "zeta",
                "viewer",
                "memoryEntries",
                "alpha",
                "traces",
                "sessions",
                "__typename"
            ],
            "{text}"
        );
        assert_eq!(data.get("zeta").keys(), ["pageInfo", "nodes", "edges"], "{text}");
        assert_eq!(
            data.get("zeta").get("pageInfo").keys(),
            ["hasPreviousPage", "hasNextPage"]
        );
        assert_eq!(data.get("viewer").keys(), ["tenant", "role", "subject"]);
        assert_eq!(data.get("memoryEntries").keys(), ["nodes", "pageInfo"]);
        assert_eq!(data.get("alpha").keys(), ["pageInfo", "nodes"]);
        assert_eq!(
            data.get("alpha").get("pageInfo").keys(),
            ["hasNextPage", "hasPreviousPage"]
        );
    }
}

/// The issue's examples: nested lists multiply, aliases and root fields are limited, and the
/// refusal carries the computed value and the limit.
async fn costly_operations_are_refused_with_their_cost(backend: Backend) {
    let server = Server::start(backend).await;
    let viewer = token(&tenant(), "viewer");

    let nested = "{ executions(environment: STAGING, first: 100) { nodes { agent { \
                  commits(first: 100) { nodes { files { content } } } } } } }";
    let refused = server.gql(Some(&viewer), nested, json!({})).await;
    assert_eq!(error_code(&refused), "COST_LIMIT_EXCEEDED", "{refused:#}");
    assert!(
        refused.get("data").is_none() || refused["data"].is_null(),
        "{refused:#}"
    );
    let extensions = &refused["errors"][0]["extensions"];
    assert_eq!(extensions["limit"], 10_000);
    // executions 1, nodes 100, agent 100, commits 100, their nodes 100*100, files 100*100,
    // content 100*100*20 (a commit's files count as a page of 20).
    assert_eq!(extensions["cost"], 220_301, "{refused:#}");

    // The same shape with a variable page size, under the limit, runs.
    let small = "query($n: Int = 2) { executions(environment: STAGING, first: $n) { nodes { agent { \
                 commits(first: $n) { nodes { files { path } } } } } } }";
    let ok = server.gql(Some(&viewer), small, json!({})).await;
    assert!(ok.get("errors").is_none(), "{ok:#}");
    let large = server.gql(Some(&viewer), small, json!({ "n": 100 })).await;
    assert_eq!(error_code(&large), "COST_LIMIT_EXCEEDED", "{large:#}");

    // 5,000 aliases of a root list.
    let aliases: String = (0..5000)
        .map(|i| format!("a{i}: releases(environment: STAGING, first: 1) {{ nodes {{ number }} }} "))
        .collect();
    let refused = server.gql(Some(&viewer), &format!("{{ {aliases} }}"), json!({})).await;
    assert_eq!(error_code(&refused), "ALIAS_LIMIT_EXCEEDED", "{refused:#}");
    assert_eq!(refused["errors"][0]["extensions"]["aliases"], 5000);
    assert_eq!(refused["errors"][0]["extensions"]["limit"], 30);

    // Root fields, even identical ones, are limited.
    let roots = "viewer(environment: STAGING) { tenant } ".repeat(40);
    let refused = server.gql(Some(&viewer), &format!("{{ {roots} }}"), json!({})).await;
    assert_eq!(error_code(&refused), "ROOT_FIELD_LIMIT_EXCEEDED", "{refused:#}");
    assert_eq!(refused["errors"][0]["extensions"]["rootFields"], 40);
    assert_eq!(refused["errors"][0]["extensions"]["limit"], 20);

    // Aliases hidden in a fragment count at every spread.
    let spreads: String = (0..11)
        .map(|i| format!("s{i}: viewer(environment: STAGING) {{ ...V }} "))
        .collect();
    let fragment = "fragment V on Viewer { t1: tenant t2: tenant }";
    let refused = server
        .gql(Some(&viewer), &format!("{{ {spreads} }} {fragment}"), json!({}))
        .await;
    assert_eq!(error_code(&refused), "ALIAS_LIMIT_EXCEEDED", "{refused:#}");
    assert_eq!(refused["errors"][0]["extensions"]["aliases"], 33);

    // An anonymous caller is told to authenticate before anything is costed.
    let anonymous = server.gql(None, nested, json!({})).await;
    assert_eq!(error_code(&anonymous), "UNAUTHENTICATED", "{anonymous:#}");

    // Fragments spread exponentially do not make the server count forever.
    let mut fragments = String::from("fragment F0 on Viewer { tenant }");
    for i in 1..25 {
        fragments.push_str(&format!(" fragment F{i} on Viewer {{ ...F{p} ...F{p} }}", p = i - 1));
    }
    let refused = server
        .gql(
            Some(&viewer),
            &format!("{{ viewer(environment: STAGING) {{ ...F24 }} }} {fragments}"),
            json!({}),
        )
        .await;
    assert_eq!(error_code(&refused), "COST_LIMIT_EXCEEDED", "{refused:#}");

    // The limits are configuration.
    let generous = Server::start_with(
        backend,
        &[
            ("RUNFLOW_MAX_QUERY_COMPLEXITY", "1000000"),
            ("RUNFLOW_MAX_ALIASES", "6000"),
        ],
    )
    .await;
    let ok = generous.gql(Some(&viewer), nested, json!({})).await;
    assert!(ok.get("errors").is_none(), "{ok:#}");
}

fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

async fn post_with(server: &Server, accept: Option<&str>, token: Option<&str>, body: &str) -> (u16, String, Value) {
    let mut request = server
        .http()
        .post(format!("{}/graphql", server.url))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.fetch().await;
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let text = response.text().await.expect("body");
    (status, content_type, serde_json::from_str(&text).unwrap_or(Value::Null))
}

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";

/// GraphQL over HTTP: media types, status codes, no `data` on request errors, readable parse
/// errors, the JSON body of HTTP-level errors, subscriptions pointed to their transports.
async fn graphql_over_http_follows_the_spec(backend: Backend) {
    let server = Server::start_with(backend, &[("RUNFLOW_MAX_BODY_BYTES", "20000")]).await;
    let viewer = token(&tenant(), "viewer");
    let ok = r#"{"query":"{ viewer(environment: STAGING) { role } }"}"#;

    // Preferred graphql-response+json; application/json when asked, when absent, for */*.
    for (accept, expected) in [
        (Some(GRAPHQL_RESPONSE), GRAPHQL_RESPONSE),
        (
            Some("application/graphql-response+json, application/json;q=0.9"),
            GRAPHQL_RESPONSE,
        ),
        (
            Some("application/json, application/graphql-response+json;q=0.5"),
            "application/json",
        ),
        (Some("application/json"), "application/json"),
        (Some("*/*"), "application/json"),
        (None, "application/json"),
    ] {
        let (status, content_type, body) = post_with(&server, accept, Some(&viewer), ok).await;
        assert_eq!(status, 200, "{accept:?}");
        assert!(content_type.starts_with(expected), "{accept:?}: {content_type}");
        assert_eq!(body["data"]["viewer"]["role"], "VIEWER");
    }

    // Request errors: 4xx and no data with graphql-response+json; 200 and data null with JSON.
    let cases = [
        (
            r#"{"query":"{ viewer(environment: STAGING) { role "}"#,
            400,
            "GRAPHQL_PARSE_FAILED",
            Some(&viewer),
        ),
        (
            r#"{"query":"{ noSuchField }"}"#,
            400,
            "GRAPHQL_VALIDATION_FAILED",
            Some(&viewer),
        ),
        (
            r#"{"query":"query($e: Environment!) { viewer(environment: $e) { role } }","variables":{"e":"NOPE"}}"#,
            400,
            "BAD_USER_INPUT",
            Some(&viewer),
        ),
        (ok, 401, "UNAUTHENTICATED", None),
    ];
    for (body, status, code, token) in cases {
        let (got, content_type, response) =
            post_with(&server, Some(GRAPHQL_RESPONSE), token.map(String::as_str), body).await;
        assert_eq!(
            (got, error_code(&response).as_str()),
            (status, code),
            "{body}: {response:#}"
        );
        assert!(content_type.starts_with(GRAPHQL_RESPONSE));
        assert!(response.get("data").is_none(), "{response:#}");
        let (got, _, response) = post_with(&server, Some("application/json"), token.map(String::as_str), body).await;
        assert_eq!((got, error_code(&response).as_str()), (200, code), "{body}");
        assert!(response["data"].is_null());
    }
    // A resolver error keeps its data entry and 200.
    let (status, _, response) = post_with(
        &server,
        Some(GRAPHQL_RESPONSE),
        Some(&viewer),
        r#"{"query":"{ viewer(environment: STAGING) { role } execution(environment: STAGING, id: \"nope\") { id } }"}"#,
    )
    .await;
    assert_eq!(status, 200, "{response:#}");
    assert_eq!(response["data"]["viewer"]["role"], "VIEWER");

    // The parse error is one sentence, not the parser's ASCII art.
    let (_, _, response) = post_with(&server, None, Some(&viewer), r#"{"query":"{ agents(environment: "}"#).await;
    let message = crate::support::error_message(&response);
    assert!(message.starts_with("syntax error at line 1, column"), "{message}");
    assert!(!message.contains('\n') && !message.contains("-->"), "{message}");

    // Malformed requests: 400 with the documented body.
    for body in [
        "{ \"not a JSON",
        r#"{"notquery":"{ __typename }"}"#,
        r#"{"query":{"obj":"ect"}}"#,
        r#"{"query":"{ __typename }","variables":"string"}"#,
        r#"[{"query":"{ __typename }"}]"#,
    ] {
        let (status, content_type, response) = post_with(&server, Some(GRAPHQL_RESPONSE), None, body).await;
        assert_eq!((status, error_code(&response).as_str()), (400, "BAD_REQUEST"), "{body}");
        assert!(content_type.starts_with("application/json"));
    }

    // A subscription over POST names its transports.
    let (status, _, response) = post_with(
        &server,
        None,
        Some(&viewer),
        r#"{"query":"subscription { executionEvents(environment: STAGING) { cursor } }"}"#,
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        crate::support::error_message(&response).contains("/graphql/ws"),
        "{response:#}"
    );

    // HTTP-level errors: one JSON body, a stable code.
    let http = server.http();
    let checks = [
        (http.get(format!("{}/graphql/nothing", server.url)), 404, "NOT_FOUND"),
        (http.get(format!("{}/v1/nothing", server.url)), 404, "NOT_FOUND"),
        (
            http.delete(format!("{}/graphql", server.url)),
            405,
            "METHOD_NOT_ALLOWED",
        ),
        (
            http.post(format!("{}/graphql", server.url))
                .header("content-type", "text/plain")
                .body(ok),
            415,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        (
            http.post(format!("{}/graphql", server.url))
                .header("content-type", "application/json")
                .body(format!(
                    r#"{{"query":"{{ __typename }}","x":"{}"}}"#,
                    "x".repeat(30_000)
                )),
            413,
            "PAYLOAD_TOO_LARGE",
        ),
    ];
    for (request, status, code) in checks {
        let response = request.fetch().await;
        assert_eq!(response.status().as_u16(), status, "{code}");
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json"),
            "{code}"
        );
        let body: Value = response.json().await.expect("JSON body");
        assert_eq!(error_code(&body), code);
        assert!(!crate::support::error_message(&body).is_empty());
    }
}

/// The legacy `graphql-ws` subprotocol is refused with a reason instead of being upgraded.
async fn the_legacy_websocket_subprotocol_is_refused(backend: Backend) {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let server = Server::start(backend).await;
    let url = format!("{}/graphql/ws", server.url.replace("http://", "ws://"));
    let mut request = url.into_client_request().expect("request");
    request
        .headers_mut()
        .insert("sec-websocket-protocol", "graphql-ws".parse().expect("header"));
    match tokio_tungstenite::connect_async(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 400);
            let body: Value = serde_json::from_slice(response.body().as_deref().unwrap_or_default()).expect("JSON");
            assert_eq!(error_code(&body), "UNSUPPORTED_SUBPROTOCOL");
            assert!(crate::support::error_message(&body).contains("graphql-transport-ws"));
        }
        Err(other) => panic!("expected an HTTP refusal, got {other}"),
        Ok(_) => panic!("the legacy subprotocol was upgraded"),
    }
    // The current protocol still connects.
    let _ws = server.websocket(None).await;
}

/// CORS: allowed origins get their preflight and headers; others get nothing; by default no
/// origin is allowed. Introspection and GraphiQL switches.
async fn cors_and_public_deployment_switches(backend: Backend) {
    let allowed = "https://app.example.test";
    let server = Server::start_with(
        backend,
        &[
            (
                "RUNFLOW_CORS_ORIGINS",
                "https://app.example.test,https://admin.example.test",
            ),
            ("RUNFLOW_INTROSPECTION", "false"),
            ("RUNFLOW_GRAPHIQL", "false"),
        ],
    )
    .await;
    let url = format!("{}/graphql", server.url);
    let preflight = |origin: &str| {
        server
            .http()
            .request(reqwest::Method::OPTIONS, &url)
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization, content-type")
            .send()
    };
    let response = preflight(allowed).await.expect("send");
    assert!(response.status().is_success(), "{}", response.status());
    assert_eq!(response.headers()["access-control-allow-origin"], allowed);
    let methods = response.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(methods.contains("POST"), "{methods}");
    let headers = response.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(
        headers.contains("authorization") && headers.contains("content-type"),
        "{headers}"
    );
    let response = preflight("https://evil.example.test").await.expect("send");
    assert!(response.headers().get("access-control-allow-origin").is_none());
    let simple = server
        .http()
        .post(&url)
        .header("origin", "https://evil.example.test")
        .json(&json!({ "query": "{ __typename }" }))
        .fetch()
        .await;
    assert!(simple.headers().get("access-control-allow-origin").is_none());

    // Introspection off: __schema and __type answer null, /schema.graphql is gone; __typename
    // still works.
    let viewer = token(&tenant(), "viewer");
    let refused = server
        .gql(
            Some(&viewer),
            "{ __schema { types { name } } __type(name: \"Agent\") { name } }",
            json!({}),
        )
        .await;
    assert_eq!(
        refused["data"],
        json!({ "__schema": null, "__type": null }),
        "{refused:#}"
    );
    let typename = server.gql(Some(&viewer), "{ __typename }", json!({})).await;
    assert_eq!(typename["data"]["__typename"], "Query");
    let sdl = server.get("/schema.graphql").await;
    assert_eq!(sdl.status(), 404);
    // GraphiQL off: a browser gets the JSON error, not the IDE.
    let page = server.http().get(&url).header("accept", "text/html").fetch().await;
    assert_eq!(page.status(), 400);
    assert!(!page.text().await.expect("body").to_lowercase().contains("graphiql"));

    // Defaults: no CORS headers for any origin, introspection and the SDL served.
    let default = Server::start(backend).await;
    let response = default
        .http()
        .request(reqwest::Method::OPTIONS, format!("{}/graphql", default.url))
        .header("origin", allowed)
        .header("access-control-request-method", "POST")
        .fetch()
        .await;
    assert!(response.headers().get("access-control-allow-origin").is_none());
    let sdl = default.get("/schema.graphql").await;
    assert_eq!(sdl.status(), 200);

    // A malformed origin stops the server at start with a message naming the variable.
    let dir = tempfile::tempdir().expect("dir");
    let stderr = refused_start(dir.path(), &[("RUNFLOW_CORS_ORIGINS", "app.example.test/path")]);
    assert!(stderr.contains("RUNFLOW_CORS_ORIGINS"), "{stderr}");
}

/// Automatic persisted queries (Apollo's protocol) and the trusted-documents mode.
async fn persisted_operations(backend: Backend) {
    let server = Server::start(backend).await;
    let viewer = token(&tenant(), "viewer");
    let query = "{ viewer(environment: STAGING) { role } }";
    let hash = sha256_hex(query);
    let by_hash = json!({ "extensions": { "persistedQuery": { "version": 1, "sha256Hash": hash } } });

    let miss = post_raw(&server, Some(&viewer), by_hash.clone())
        .await
        .json::<Value>()
        .await
        .expect("json");
    assert_eq!(error_code(&miss), "PERSISTED_QUERY_NOT_FOUND");
    assert_eq!(crate::support::error_message(&miss), "PersistedQueryNotFound");
    let wrong = json!({ "query": "{ __typename }", "extensions": by_hash["extensions"] });
    let wrong = post_raw(&server, Some(&viewer), wrong)
        .await
        .json::<Value>()
        .await
        .expect("json");
    assert_eq!(error_code(&wrong), "PERSISTED_QUERY_HASH_MISMATCH");
    let register = json!({ "query": query, "extensions": by_hash["extensions"] });
    let registered = post_raw(&server, Some(&viewer), register)
        .await
        .json::<Value>()
        .await
        .expect("json");
    assert_eq!(registered["data"]["viewer"]["role"], "VIEWER", "{registered:#}");
    let hit = post_raw(&server, Some(&viewer), by_hash.clone())
        .await
        .json::<Value>()
        .await
        .expect("json");
    assert_eq!(hit["data"]["viewer"]["role"], "VIEWER", "{hit:#}");
    // By GET too (a CDN can cache it).
    let got: Value = server
        .http()
        .get(format!("{}/graphql", server.url))
        .bearer_auth(&viewer)
        .query(&[("extensions", by_hash["extensions"].to_string())])
        .fetch_json()
        .await;
    assert_eq!(got["data"]["viewer"]["role"], "VIEWER", "{got:#}");

    // Trusted documents: only the manifest's operations run, by hash or in full.
    let dir = tempfile::tempdir().expect("dir");
    let manifest = dir.path().join("manifest.json");
    std::fs::write(&manifest, json!({ hash.clone(): query }).to_string()).expect("write");
    let trusted = Server::start_with(backend, &[("RUNFLOW_TRUSTED_DOCUMENTS", manifest.to_str().unwrap())]).await;
    let hit = post_raw(&trusted, Some(&viewer), by_hash.clone())
        .await
        .json::<Value>()
        .await
        .expect("json");
    assert_eq!(hit["data"]["viewer"]["role"], "VIEWER", "{hit:#}");
    let full = trusted.gql(Some(&viewer), query, json!({})).await;
    assert_eq!(full["data"]["viewer"]["role"], "VIEWER", "{full:#}");
    let other = trusted
        .gql(Some(&viewer), "{ viewer(environment: STAGING) { tenant } }", json!({}))
        .await;
    assert_eq!(error_code(&other), "PERSISTED_QUERY_NOT_IN_LIST", "{other:#}");
    let other_query = "{ __typename }";
    let apq = json!({ "query": other_query, "extensions": { "persistedQuery": { "version": 1, "sha256Hash": sha256_hex(other_query) } } });
    let refused = post_raw(&trusted, Some(&viewer), apq)
        .await
        .json::<Value>()
        .await
        .expect("json");
    assert_eq!(error_code(&refused), "PERSISTED_QUERY_NOT_IN_LIST", "{refused:#}");

    // A manifest whose key is not its document's hash stops the server at start.
    std::fs::write(&manifest, json!({ "00".repeat(32): query }).to_string()).expect("write");
    let stderr = refused_start(
        dir.path(),
        &[("RUNFLOW_TRUSTED_DOCUMENTS", manifest.to_str().expect("path"))],
    );
    assert!(stderr.contains("RUNFLOW_TRUSTED_DOCUMENTS"), "{stderr}");
}

on_both_backends!(
    fields_come_back_in_query_order,
    costly_operations_are_refused_with_their_cost,
    graphql_over_http_follows_the_spec,
    the_legacy_websocket_subprotocol_is_refused,
    cors_and_public_deployment_switches,
    persisted_operations,
    cli_operations_run_in_trusted_documents_mode,
    cli_contract,
    subscriptions_over_server_sent_events,
    configuration_file,
    prometheus_metrics,
);

/// The graphql-http audit (`tests/http-audit/audit.mjs`): no error, no warning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Node.js and `npm ci --prefix tests/http-audit` (.ci/run installs them)"]
async fn the_graphql_http_audit_passes() {
    let directory = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/http-audit");
    assert!(
        std::path::Path::new(directory)
            .join("node_modules/graphql-http")
            .exists(),
        "run `npm ci --prefix tests/http-audit` first"
    );
    let server = Server::start(Backend::Sqlite).await;
    let summary = script_summary(
        tokio::process::Command::new("node")
            .arg("audit.mjs")
            .current_dir(directory)
            .env("RUNFLOW_URL", &server.url),
    )
    .await;
    assert_eq!(summary["warn"], json!([]), "{summary:#}");
    assert_eq!(summary["error"], json!([]), "{summary:#}");
    assert!(summary["ok"].as_u64().unwrap_or(0) >= 50, "{summary:#}");
}

fn rf() -> std::process::Command {
    let path = std::path::Path::new(crate::support::binary()).with_file_name("rf");
    assert!(
        path.exists(),
        "{} is missing: run the tests with `cargo test --workspace`",
        path.display()
    );
    let mut command = std::process::Command::new(path);
    command
        .env_remove("RUNFLOW_URL")
        .env_remove("RUNFLOW_TOKEN")
        .stdin(std::process::Stdio::null());
    command
}

/// The CLI's operations are the registered set: generated into a manifest by
/// `runflow trusted-documents`, they run on a server in trusted-documents mode.
async fn cli_operations_run_in_trusted_documents_mode(backend: Backend) {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let mut sources = vec![format!("{root}/cli/src/queries")];
    let dashboard = format!("{root}/dashboard/operations");
    if std::path::Path::new(&dashboard).exists() {
        sources.push(dashboard);
    }
    let output = std::process::Command::new(crate::support::binary())
        .arg("trusted-documents")
        .args(&sources)
        .output()
        .expect("run");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let manifest: serde_json::Map<String, Value> = serde_json::from_slice(&output.stdout).expect("manifest");
    assert!(manifest.len() >= 10, "{manifest:#?}");
    for (hash, document) in &manifest {
        assert_eq!(hash, &sha256_hex(document.as_str().expect("document")));
    }
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("manifest.json");
    std::fs::write(&path, &output.stdout).expect("write");
    let server = Server::start_with(backend, &[("RUNFLOW_TRUSTED_DOCUMENTS", path.to_str().unwrap())]).await;
    let admin = token(&tenant(), "admin");
    for args in [
        vec!["agents", "list"],
        vec!["releases"],
        vec!["releases", "--history"],
        vec!["executions"],
    ] {
        let output = rf()
            .args(&args)
            .args(["--json", "--url", &server.url, "--token", &admin])
            .output()
            .expect("rf");
        assert!(
            output.status.success(),
            "rf {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let other = server
        .gql(Some(&admin), "{ viewer(environment: STAGING) { tenant } }", json!({}))
        .await;
    assert_eq!(error_code(&other), "PERSISTED_QUERY_NOT_IN_LIST");
}

/// `rf` errors are JSON under --json; shell completions for both binaries; `runflow token`
/// never invents a secret.
async fn cli_contract(backend: Backend) {
    let server = Server::start(backend).await;
    let config = tempfile::tempdir().expect("dir");
    let output = rf()
        .env("RUNFLOW_CONFIG_DIR", config.path())
        .args(["releases", "--json", "--url", &server.url, "--token", "not-a-token"])
        .output()
        .expect("rf");
    assert!(!output.status.success());
    let error: Value = serde_json::from_slice(&output.stderr).expect("JSON error on stderr");
    assert_eq!(error["error"]["code"], "UNAUTHENTICATED", "{error:#}");
    assert!(error["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
    let output = rf()
        .env("RUNFLOW_CONFIG_DIR", config.path())
        .args(["releases", "--json"])
        .output()
        .expect("rf");
    let error: Value = serde_json::from_slice(&output.stderr).expect("JSON error on stderr");
    assert_eq!(error["error"]["code"], "CLI_ERROR", "{error:#}");

    for shell in ["bash", "zsh", "fish"] {
        let runflow = std::process::Command::new(crate::support::binary())
            .args(["completions", shell])
            .output()
            .expect("run");
        assert!(runflow.status.success());
        assert!(
            String::from_utf8_lossy(&runflow.stdout).contains("trusted-documents"),
            "{shell}"
        );
        let rf = rf().args(["completions", shell]).output().expect("rf");
        assert!(rf.status.success());
        assert!(String::from_utf8_lossy(&rf.stdout).contains("rollback"), "{shell}");
    }

    // `runflow token` in a folder without the data directory.
    let empty = tempfile::tempdir().expect("dir");
    let output = std::process::Command::new(crate::support::binary())
        .current_dir(empty.path())
        .env_clear()
        .args(["token", "--tenant", "acme", "--role", "viewer"])
        .output()
        .expect("run");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("runflow-data/jwt-secret") && stderr.contains("--data-dir"),
        "{stderr}"
    );
    assert!(
        !empty.path().join("runflow-data").exists(),
        "no data directory was created"
    );
}

/// The real OpenTelemetry Python exporter (OTLP/HTTP protobuf) against the runtime endpoint;
/// JSON still works; other content types get 415.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Python exporter: python3 -m venv tests/otlp-exporter/.venv && \
            tests/otlp-exporter/.venv/bin/pip install -r tests/otlp-exporter/requirements.txt (.ci/run does)"]
async fn the_opentelemetry_protobuf_exporter_is_accepted() {
    let directory = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/otlp-exporter");
    let python = std::path::Path::new(directory).join(".venv/bin/python");
    assert!(
        python.exists(),
        "create the exporter's venv first (see the ignore reason)"
    );
    let server = Server::start(Backend::Sqlite).await;
    let tenant = tenant();
    let runtime = crate::support::runtime_token(&tenant, "staging");
    let exported = script_summary(
        tokio::process::Command::new(&python)
            .arg("export.py")
            .current_dir(directory)
            .env("RUNFLOW_URL", &server.url)
            .env("RUNTIME_TOKEN", &runtime),
    )
    .await;
    assert_eq!(exported["result"], "SUCCESS");

    let viewer = token(&tenant, "viewer");
    let data = server
        .data(
            &viewer,
            "{ traces(environment: STAGING, first: 5) { nodes { name spans(first: 10) { nodes { name kind parent { id } inputTokens outputTokens attributes } } } } }",
            json!({}),
        )
        .await;
    let traces = data["traces"]["nodes"].as_array().expect("traces");
    assert_eq!(traces.len(), 1, "{data:#}");
    let spans = traces[0]["spans"]["nodes"].as_array().expect("spans");
    assert_eq!(spans.len(), 2, "{data:#}");
    let llm = spans.iter().find(|s| s["name"] == "chat gpt").expect("the child span");
    assert_eq!(llm["kind"], "LLM");
    assert_eq!(
        (llm["inputTokens"].as_i64(), llm["outputTokens"].as_i64()),
        (Some(12), Some(34))
    );
    assert!(!llm["parent"]["id"].is_null(), "{data:#}");
    assert_eq!(llm["attributes"]["otel.trace_id"], exported["traceId"]);
    assert_eq!(llm["attributes"]["resource.service.name"], "support-bot");
    assert_eq!(llm["attributes"]["gen_ai.request.model"], "test-model");

    // Other content types: 415 with the documented body.
    let otlp = "/v1/runtime/otlp/v1/traces";
    let refused = server.post_raw_body(otlp, Some(&runtime), "text/plain", "spans").await;
    assert_eq!(refused.status(), 415);
    let body: Value = refused.json().await.expect("json");
    assert_eq!(error_code(&body), "UNSUPPORTED_MEDIA_TYPE");
    // A body that is not protobuf: 400, nothing recorded.
    let garbage = server
        .post_raw_body(otlp, Some(&runtime), "application/x-protobuf", vec![0xff_u8; 32])
        .await;
    assert_eq!(garbage.status(), 400);
}

/// The server's own traces over OTLP/HTTP protobuf (`RUNFLOW_OTLP_ENDPOINT`): a receiver in
/// the test gets the spans of the server's requests, with the configured headers and the
/// service name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_servers_own_traces_are_exported_over_otlp() {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
    use prost::Message;

    // The receiver: every export's content type, API key and decoded body.
    let (sender, mut exports) = tokio::sync::mpsc::unbounded_channel::<(String, String, ExportTraceServiceRequest)>();
    let receiver = axum::Router::new().route(
        "/collector/v1/traces",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
            let sender = sender.clone();
            async move {
                let header = |name: &str| {
                    headers
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string()
                };
                match ExportTraceServiceRequest::decode(body) {
                    Ok(request) => {
                        let _ = sender.send((header("content-type"), header("x-api-key"), request));
                        axum::http::StatusCode::OK
                    }
                    Err(_) => axum::http::StatusCode::BAD_REQUEST,
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, receiver).await });

    let endpoint = format!("http://{address}/collector");
    let server = Server::start_with(
        Backend::Sqlite,
        &[
            ("RUNFLOW_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=collector-key"),
            // Export within 100 ms instead of 5 s.
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ],
    )
    .await;
    let viewer = token(&tenant(), "viewer");
    server
        .data(
            &viewer,
            "query Traced { viewer(environment: STAGING) { role } }",
            json!({}),
        )
        .await;

    let attribute = |attributes: &[opentelemetry_proto::tonic::common::v1::KeyValue], key: &str| {
        attributes
            .iter()
            .find(|a| a.key == key)
            .and_then(|a| match a.value.as_ref()?.value.as_ref()? {
                AnyValue::StringValue(text) => Some(text.clone()),
                _ => None,
            })
    };
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (content_type, key, request) = tokio::time::timeout_at(deadline, exports.recv())
            .await
            .expect("the server's request span within 30 s")
            .expect("the receiver runs");
        assert_eq!(content_type, "application/x-protobuf");
        assert_eq!(key, "collector-key");
        let traced = request.resource_spans.iter().find_map(|resource_spans| {
            let span = resource_spans
                .scope_spans
                .iter()
                .flat_map(|scope| &scope.spans)
                .find(|span| {
                    span.name == "request" && attribute(&span.attributes, "path").as_deref() == Some("/graphql")
                })?;
            let service = resource_spans
                .resource
                .as_ref()
                .and_then(|r| attribute(&r.attributes, "service.name"));
            Some((span.clone(), service))
        });
        if let Some((span, service)) = traced {
            assert_eq!(service.as_deref(), Some("runflow"));
            assert_eq!(attribute(&span.attributes, "method").as_deref(), Some("POST"));
            assert_eq!(span.trace_id.len(), 16);
            assert!(span.end_time_unix_nano >= span.start_time_unix_nano);
            break;
        }
    }
}

/// A server-sent-events reader over a streaming response.
pub(crate) struct EventStream {
    response: reqwest::Response,
    buffer: String,
}

impl EventStream {
    /// Opens a stream the server must accept.
    pub(crate) async fn started(server: &Server, token: Option<&str>, body: Value) -> EventStream {
        Self::open(server, token, body).await.expect("stream")
    }

    pub(crate) async fn open(server: &Server, token: Option<&str>, body: Value) -> Result<EventStream, (u16, Value)> {
        let mut request = server
            .http()
            .post(format!("{}/graphql/stream", server.url))
            .header("accept", "text/event-stream")
            .json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.fetch().await;
        if response.status() != 200 {
            let status = response.status().as_u16();
            return Err((status, response.json().await.unwrap_or(Value::Null)));
        }
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        Ok(EventStream {
            response,
            buffer: String::new(),
        })
    }

    /// The next event (name, data), skipping keep-alive comments.
    pub(crate) async fn next(&mut self) -> (String, String) {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut name = String::new();
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(value) = line.strip_prefix("event:") {
                        name = value.trim().to_string();
                    } else if let Some(value) = line.strip_prefix("data:") {
                        data.push_str(value.strip_prefix(' ').unwrap_or(value));
                    }
                }
                if name.is_empty() && data.is_empty() {
                    continue;
                }
                return (name, data);
            }
            let chunk = tokio::time::timeout(std::time::Duration::from_secs(30), self.response.chunk())
                .await
                .expect("an event within 30 s")
                .expect("read");
            let chunk = chunk.expect("the stream ended");
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    pub(crate) async fn next_data(&mut self) -> Value {
        let (name, data) = self.next().await;
        assert_eq!(name, "next", "{data}");
        serde_json::from_str(&data).expect("JSON")
    }
}

/// Subscriptions over server-sent events (graphql-sse, distinct connections): the log replays
/// from a cursor, live events follow, resuming continues without a gap; the same auth,
/// validation and tenant filtering as the WebSocket.
async fn subscriptions_over_server_sent_events(backend: Backend) {
    let server = Server::start(backend).await;
    let tenant = tenant();
    let (developer, publisher, viewer) = (
        token(&tenant, "developer"),
        token(&tenant, "publisher"),
        token(&tenant, "viewer"),
    );
    let subscription = "subscription($a: String) { releaseEvents(environment: PRODUCTION, after: $a) { release { number } kind cursor } }";
    crate::support::deploy(&server, &developer, "bot", "print(1)\n", "one").await;
    assert_eq!(publish_all(&server, &publisher).await["number"], 1);
    crate::support::deploy(&server, &developer, "bot", "print(2)\n", "two").await;
    assert_eq!(publish_all(&server, &publisher).await["number"], 2);

    let mut stream = EventStream::started(
        &server,
        Some(&viewer),
        json!({ "query": subscription, "variables": { "a": "0" } }),
    )
    .await;
    let first = stream.next_data().await;
    let second = stream.next_data().await;
    assert_eq!(first["data"]["releaseEvents"]["release"]["number"], 1, "{first:#}");
    assert_eq!(second["data"]["releaseEvents"]["release"]["number"], 2);
    // Fields in query order.
    let text = serde_json::to_string(&second).unwrap();
    assert!(
        text.find("\"release\"").unwrap() < text.find("\"kind\"").unwrap()
            && text.find("\"kind\"").unwrap() < text.find("\"cursor\"").unwrap(),
        "{text}"
    );
    // Live.
    crate::support::deploy(&server, &developer, "bot", "print(3)\n", "three").await;
    assert_eq!(publish_all(&server, &publisher).await["number"], 3);
    let third = stream.next_data().await;
    assert_eq!(third["data"]["releaseEvents"]["release"]["number"], 3);
    drop(stream);

    // Resume after the second: the third comes first.
    let cursor = second["data"]["releaseEvents"]["cursor"].as_str().expect("cursor");
    let mut resumed = EventStream::started(
        &server,
        Some(&viewer),
        json!({ "query": subscription, "variables": { "a": cursor } }),
    )
    .await;
    let next = resumed.next_data().await;
    assert_eq!(next["data"]["releaseEvents"]["release"]["number"], 3);
    drop(resumed);

    // Another tenant replaying from the start gets its own (no) events: a query completes.
    let other = token(&crate::support::tenant(), "viewer");
    let mut query = EventStream::started(
        &server,
        Some(&other),
        json!({ "query": "{ releases(environment: PRODUCTION, first: 5) { nodes { number } } }" }),
    )
    .await;
    let result = query.next_data().await;
    assert_eq!(result["data"]["releases"]["nodes"], json!([]));
    assert_eq!(query.next().await.0, "complete");

    // Refusals.
    let (status, body) = EventStream::open(&server, None, json!({ "query": subscription }))
        .await
        .err()
        .expect("refused");
    assert_eq!((status, error_code(&body).as_str()), (401, "UNAUTHENTICATED"));
    let (status, body) = EventStream::open(&server, Some(&viewer), json!({ "query": "subscription {" }))
        .await
        .err()
        .expect("refused");
    assert_eq!((status, error_code(&body).as_str()), (400, "GRAPHQL_PARSE_FAILED"));
    let mut invalid = EventStream::started(
        &server,
        Some(&viewer),
        json!({ "query": "subscription { noSuchField }" }),
    )
    .await;
    let refused = invalid.next_data().await;
    assert_eq!(error_code(&refused), "GRAPHQL_VALIDATION_FAILED");
    assert_eq!(invalid.next().await.0, "complete");
}

/// A TOML configuration file: the variables' names and validation; environment variables win.
async fn configuration_file(backend: Backend) {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("runflow.toml");
    std::fs::write(
        &path,
        "max_aliases = 2\nRUNFLOW_MAX_ROOT_FIELDS = 3\ncors_origins = [\"https://a.example.test\"]\n",
    )
    .expect("write");
    let config = path.to_str().unwrap();
    let server = Server::start_with(backend, &[("RUNFLOW_CONFIG", config)]).await;
    let viewer = token(&tenant(), "viewer");
    let three_aliases = "{ a: viewer(environment: STAGING) { t: tenant r: role } }";
    let refused = server.gql(Some(&viewer), three_aliases, json!({})).await;
    assert_eq!(error_code(&refused), "ALIAS_LIMIT_EXCEEDED", "{refused:#}");
    assert_eq!(refused["errors"][0]["extensions"]["limit"], 2);
    let roots = format!(
        "{{ __typename {} }}",
        "viewer(environment: STAGING) { role } ".repeat(4)
    );
    let refused = server.gql(Some(&viewer), &roots, json!({})).await;
    assert_eq!(error_code(&refused), "ROOT_FIELD_LIMIT_EXCEEDED", "{refused:#}");
    assert_eq!(refused["errors"][0]["extensions"]["limit"], 3);
    let preflight = server
        .http()
        .request(reqwest::Method::OPTIONS, format!("{}/graphql", server.url))
        .header("origin", "https://a.example.test")
        .header("access-control-request-method", "POST")
        .fetch()
        .await;
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "https://a.example.test"
    );

    // The environment takes precedence over the file.
    let server = Server::start_with(backend, &[("RUNFLOW_CONFIG", config), ("RUNFLOW_MAX_ALIASES", "5")]).await;
    let ok = server.gql(Some(&viewer), three_aliases, json!({})).await;
    assert!(ok.get("errors").is_none(), "{ok:#}");

    // Same validation as the variables; unknown settings are refused.
    for (contents, expected) in [
        ("max_query_depth = 2\n", "RUNFLOW_MAX_QUERY_DEPTH must be at least 4"),
        ("max_aliases = \"many\"\n", "RUNFLOW_MAX_ALIASES"),
        ("max_alias = 3\n", "unknown setting `max_alias`"),
        ("listen = [\n", "not valid TOML"),
    ] {
        std::fs::write(&path, contents).expect("write");
        let stderr = refused_start(dir.path(), &[("RUNFLOW_CONFIG", config)]);
        assert!(stderr.contains(expected), "{contents}: {stderr}");
    }
}

pub(crate) fn metric(text: &str, line_prefix: &str) -> Option<f64> {
    text.lines()
        .find(|line| line.starts_with(line_prefix))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

pub(crate) async fn scrape(server: &Server) -> String {
    let response = server.get("/metrics").await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    response.text().await.expect("body")
}

/// Scrapes until `done` holds (what a background task does next is not instant), for at most
/// 30 s.
pub(crate) async fn scrape_until(server: &Server, done: impl Fn(&str) -> bool) -> String {
    for _ in 0..600 {
        let text = scrape(server).await;
        if done(&text) {
            return text;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!(
        "the metrics never reached the expected state:\n{}",
        scrape(server).await
    );
}

/// The sum of a metric's samples whose line starts with `line_prefix` (0 when there are none).
fn metric_sum(text: &str, line_prefix: &str) -> f64 {
    text.lines()
        .filter(|line| line.starts_with(line_prefix))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Prometheus metrics, scraped before and after doing things, each of which must move its
/// metric: requests by route and status and their latency histogram, GraphQL operations by
/// name and code, open WebSockets, active subscriptions per transport, the live feed's
/// deliveries and its lag behind the event log, executions by status and the queue depth.
async fn prometheus_metrics(backend: Backend) {
    // No workers: a queued execution stays queued.
    let server = Server::start_with(backend, &[("RUNFLOW_WORKERS", "0")]).await;
    let tenant = tenant();
    let viewer = token(&tenant, "viewer");
    let developer = token(&tenant, "developer");
    crate::support::deploy(&server, &developer, "bot", "print(1)\n", "m").await;
    let before = scrape(&server).await;
    for name in [
        "runflow_event_log_lag_events ",
        "runflow_event_log_lag_seconds ",
        r#"runflow_subscriptions_active{transport="ws"} "#,
        r#"runflow_subscriptions_active{transport="sse"} "#,
        "runflow_websockets_open ",
        "runflow_execution_queue_depth ",
        // The deploy above was audited: no mutation refused for want of its audit entry.
        "runflow_audit_entries_failed_total ",
    ] {
        assert_eq!(metric(&before, name), Some(0.0), "{name}\n{before}");
    }
    assert_eq!(metric_sum(&before, "runflow_executions{"), 0.0, "{before}");

    let dashboard = "query Dashboard { viewer(environment: STAGING) { role } }";
    for _ in 0..3 {
        server.data(&viewer, dashboard, json!({})).await;
    }
    server.gql(None, dashboard, json!({})).await;
    // A subscription on each transport, each seen live (so it is running, and counted).
    let subscription = "subscription { executionEvents(environment: STAGING) { kind } }";
    let mut ws = server.subscribed(&viewer, "1", subscription, json!({})).await;
    let mut sse = EventStream::started(&server, Some(&viewer), json!({ "query": subscription })).await;
    // Both subscriptions start at the log's head: wait until both run before an event exists.
    let runtime = crate::support::runtime_token(&tenant, "staging");
    let started = scrape_until(&server, |text| metric_sum(text, "runflow_subscriptions_active{") >= 2.0).await;
    assert_eq!(metric(&started, "runflow_websockets_open "), Some(1.0), "{started}");
    let (status, _) = server
        .runtime(
            &runtime,
            reqwest::Method::POST,
            "/executions",
            Some(json!({ "agent": "bot" })),
        )
        .await;
    assert_eq!(status, 201);
    let over_ws = ws.json().await;
    assert_eq!(
        over_ws["payload"]["data"]["executionEvents"]["kind"], "STARTED",
        "{over_ws}"
    );
    let over_sse = sse.next_data().await;
    assert_eq!(over_sse["data"]["executionEvents"]["kind"], "STARTED", "{over_sse}");
    // One more execution, queued for a worker (there is none).
    let queued = server
        .call_agent(&developer, &tenant, "staging", "bot?async=true", &json!({}))
        .await;
    assert_eq!(queued.status(), 202);

    let after = scrape(&server).await;
    let moved = |name: &str| metric_sum(&after, name) - metric_sum(&before, name);
    assert_eq!(
        moved(r#"runflow_graphql_operations_total{code="OK",operation="Dashboard"}"#),
        3.0,
        "{after}"
    );
    assert_eq!(
        moved(r#"runflow_graphql_operations_total{code="UNAUTHENTICATED",operation="Dashboard"}"#),
        1.0,
        "{after}"
    );
    assert!(
        moved(r#"runflow_http_requests_total{method="POST",route="/graphql",status="200"}"#) >= 4.0,
        "{after}"
    );
    assert!(
        moved(r#"runflow_http_request_duration_seconds_count{method="POST",route="/graphql"}"#) >= 4.0,
        "{after}"
    );
    assert!(
        after.contains(r#"runflow_http_request_duration_seconds_bucket{method="POST",route="/graphql",le="0.005"}"#),
        "{after}"
    );
    // One of each now: the socket, a subscription per transport, the running and the queued
    // execution.
    for gauge in [
        "runflow_websockets_open ",
        r#"runflow_subscriptions_active{transport="ws"} "#,
        r#"runflow_subscriptions_active{transport="sse"} "#,
        r#"runflow_executions{status="RUNNING"} "#,
        r#"runflow_executions{status="QUEUED"} "#,
        "runflow_execution_queue_depth ",
    ] {
        assert_eq!(metric(&after, gauge), Some(1.0), "{gauge}: {after}");
    }
    // The STARTED event reached both subscribers, so the feed delivered it and is not behind
    // on it (the queued execution's event may still be on its way).
    assert!(moved("runflow_live_events_delivered_total ") >= 1.0, "{after}");
    assert!(moved("runflow_live_event_delay_seconds_count ") >= 1.0, "{after}");
    assert!(
        metric(&after, "runflow_event_log_lag_events ").is_some_and(|lag| lag <= 1.0),
        "{after}"
    );

    // Closing both: the gauges go back down.
    drop(sse);
    drop(ws);
    let closed = scrape_until(&server, |text| {
        metric_sum(text, "runflow_subscriptions_active{") == 0.0
            && metric(text, "runflow_websockets_open ") == Some(0.0)
            && metric(text, "runflow_event_log_lag_events ") == Some(0.0)
    })
    .await;
    // Caught up: no pending event, so no age either.
    assert_eq!(metric(&closed, "runflow_event_log_lag_seconds "), Some(0.0), "{closed}");
}
