//! The HTTP surface: methods, content types, limits, health, the exported schema.

use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, Server, binary, error_code, tenant, token};

/// The introspection query GraphiQL sends (with its deep `TypeRef` nesting).
const GRAPHIQL_INTROSPECTION: &str = r#"query IntrospectionQuery { __schema { queryType { name } mutationType { name }
  subscriptionType { name } types { ...FullType } directives { name description locations args { ...InputValue } } } }
fragment FullType on __Type { kind name description fields(includeDeprecated: true) { name description args { ...InputValue }
  type { ...TypeRef } isDeprecated deprecationReason } inputFields { ...InputValue } interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason } possibleTypes { ...TypeRef } }
fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
fragment TypeRef on __Type { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name
  ofType { kind name ofType { kind name ofType { kind name } } } } } } } }"#;

async fn get_runs_queries_only(backend: Backend) {
    let server = Server::start(backend).await;
    let viewer = token(&tenant(), "viewer");
    let url = format!("{}/graphql", server.url);
    let ok: Value = server
        .http()
        .get(&url)
        .bearer_auth(&viewer)
        .query(&[
            (
                "query",
                "query($e: Environment!) { agents(environment: $e) { nodes { slug } } }",
            ),
            ("variables", r#"{"e":"STAGING"}"#),
        ])
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(ok["data"]["agents"]["nodes"], json!([]));
    for query in [
        "mutation { deleteAgent(environment: STAGING, slug: \"x\") { deletedId } }",
        "query A { __typename } mutation B { deleteAgent(environment: STAGING, slug: \"x\") { deletedId } }",
    ] {
        let refused = server
            .http()
            .get(&url)
            .bearer_auth(&viewer)
            .query(&[("query", query)])
            .send()
            .await
            .expect("send");
        assert_eq!(refused.status(), 405, "{query}");
        assert!(refused.headers().get("allow").is_some());
    }
    let graphiql = server
        .http()
        .get(&url)
        .header("accept", "text/html")
        .send()
        .await
        .expect("send");
    assert_eq!(graphiql.status(), 200);
    assert!(graphiql.text().await.expect("html").to_lowercase().contains("graphiql"));
}

async fn posts_must_be_single_json_requests_within_limits(backend: Backend) {
    let server = Server::start_with(
        backend,
        &[("RUNFLOW_MAX_BODY_BYTES", "4096"), ("RUNFLOW_MAX_QUERY_DEPTH", "16")],
    )
    .await;
    let admin = token(&tenant(), "admin");
    let url = format!("{}/graphql", server.url);
    let text_plain = server
        .http()
        .post(&url)
        .header("content-type", "text/plain")
        .body(r#"{"query":"{__typename}"}"#)
        .send()
        .await
        .expect("send");
    assert_eq!(text_plain.status(), 415);
    let form = server
        .http()
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("query=x")
        .send()
        .await
        .expect("send");
    assert_eq!(form.status(), 415);
    let batch = server
        .http()
        .post(&url)
        .json(&json!([{ "query": "{__typename}" }, { "query": "{__typename}" }]))
        .send()
        .await
        .expect("send");
    assert_eq!(batch.status(), 400);
    let garbage = server
        .http()
        .post(&url)
        .header("content-type", "application/json")
        .body("{nope")
        .send()
        .await
        .expect("send");
    assert_eq!(garbage.status(), 400);
    let body: Value = garbage.json().await.expect("json");
    assert_eq!(error_code(&body), "BAD_REQUEST");
    let huge = server
        .http()
        .post(&url)
        .json(&json!({ "query": format!("{{ __typename }} #{}", "x".repeat(10_000)) }))
        .send()
        .await
        .expect("send");
    assert_eq!(huge.status(), 413);

    // Depth limit, with a stable code; GraphiQL's own introspection still passes.
    let deep = format!(
        "{{ agents(environment: STAGING) {{ nodes {} }} }}",
        "{ currentCommit { parent ".repeat(10) + "{ hash }" + &"} }".repeat(10)
    );
    let response = server.gql(Some(&admin), &deep, json!({})).await;
    assert_eq!(error_code(&response), "GRAPHQL_VALIDATION_FAILED", "{response:#}");
    let introspection = server.gql(None, GRAPHIQL_INTROSPECTION, json!({})).await;
    assert!(introspection.get("errors").is_none(), "{introspection:#}");
    let parse_error = server.gql(Some(&admin), "{ agents(", json!({})).await;
    assert_eq!(error_code(&parse_error), "GRAPHQL_PARSE_FAILED");
    // Suggestions are off: an unknown field does not reveal its neighbours.
    let unknown = server
        .gql(Some(&admin), "{ agnts(environment: STAGING) { slug } }", json!({}))
        .await;
    assert!(!unknown.to_string().contains("Did you mean"), "{unknown:#}");
}

async fn health_readiness_and_request_ids(backend: Backend) {
    let server = Server::start(backend).await;
    let health = server
        .http()
        .get(format!("{}/healthz", server.url))
        .send()
        .await
        .expect("send");
    assert_eq!(health.status(), 200);
    let ready = server
        .http()
        .get(format!("{}/readyz", server.url))
        .send()
        .await
        .expect("send");
    assert_eq!(ready.status(), 200);
    assert!(
        ready.headers().get("x-request-id").is_some(),
        "every response carries a request id"
    );
    let ws = server
        .http()
        .get(format!("{}/graphql/ws", server.url))
        .send()
        .await
        .expect("send");
    assert!(ws.status().is_client_error(), "a plain GET is not a WebSocket upgrade");
}

async fn the_exported_schema_is_the_served_schema(backend: Backend) {
    let server = Server::start(backend).await;
    let served = server
        .http()
        .get(format!("{}/schema.graphql", server.url))
        .send()
        .await
        .expect("send")
        .text()
        .await
        .expect("sdl");
    let exported =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../schema.graphql")).expect("schema.graphql");
    assert!(
        served == exported,
        "schema.graphql is stale: regenerate it with `cargo run -- schema > schema.graphql`"
    );
    let printed = std::process::Command::new(binary())
        .arg("schema")
        .output()
        .expect("runflow schema");
    assert_eq!(String::from_utf8_lossy(&printed.stdout), exported);
}

on_both_backends!(
    get_runs_queries_only,
    posts_must_be_single_json_requests_within_limits,
    health_readiness_and_request_ids,
    the_exported_schema_is_the_served_schema,
);
