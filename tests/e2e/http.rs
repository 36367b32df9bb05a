//! The HTTP surface: methods, content types, limits, health, the exported schema.

use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, Fetch, Server, binary, error_code, tenant, token};

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
        .fetch_json()
        .await;
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
            .fetch()
            .await;
        assert_eq!(refused.status(), 405, "{query}");
        assert!(refused.headers().get("allow").is_some());
    }
    let graphiql = server.http().get(&url).header("accept", "text/html").fetch().await;
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
        .post_raw_body("/graphql", None, "text/plain", r#"{"query":"{__typename}"}"#)
        .await;
    assert_eq!(text_plain.status(), 415);
    let form = server
        .post_raw_body("/graphql", None, "application/x-www-form-urlencoded", "query=x")
        .await;
    assert_eq!(form.status(), 415);
    let batch = server
        .http()
        .post(&url)
        .json(&json!([{ "query": "{__typename}" }, { "query": "{__typename}" }]))
        .fetch()
        .await;
    assert_eq!(batch.status(), 400);
    let garbage = server
        .post_raw_body("/graphql", None, "application/json", "{nope")
        .await;
    assert_eq!(garbage.status(), 400);
    let body: Value = garbage.json().await.expect("json");
    assert_eq!(error_code(&body), "BAD_REQUEST");
    let huge = server
        .http()
        .post(&url)
        .json(&json!({ "query": format!("{{ __typename }} #{}", "x".repeat(10_000)) }))
        .fetch()
        .await;
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
    let health = server.get("/healthz").await;
    assert_eq!(health.status(), 200);
    let ready = server.get("/readyz").await;
    assert_eq!(ready.status(), 200);
    assert!(
        ready.headers().get("x-request-id").is_some(),
        "every response carries a request id"
    );
    let ws = server.get("/graphql/ws").await;
    assert!(ws.status().is_client_error(), "a plain GET is not a WebSocket upgrade");
}

async fn the_exported_schema_is_the_served_schema(backend: Backend) {
    let server = Server::start(backend).await;
    let served = server.get("/schema.graphql").await.text().await.expect("sdl");
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

/// Every error that is not a GraphQL response has one body, whichever endpoint refused:
/// `{"errors": [{"message", "extensions": {"code"}}]}`; the `/v1/...` endpoints repeat it under
/// `error` (their original form).
async fn every_non_graphql_error_has_one_body(backend: Backend) {
    let server = Server::start(backend).await;
    let tenant = tenant();
    let one_body = |what: &str, body: &Value, code: &str, v1: bool| {
        assert_eq!(error_code(body), code, "{what}: {body:#}");
        let message = body
            .pointer("/errors/0/message")
            .and_then(Value::as_str)
            .unwrap_or_default();
        assert!(!message.is_empty(), "{what}: {body:#}");
        if v1 {
            assert_eq!(
                body["error"],
                json!({ "code": code, "message": message }),
                "{what}: {body:#}"
            );
        } else {
            assert!(body.get("error").is_none(), "{what}: {body:#}");
        }
    };
    // The runtime API without a token, and with a person's token.
    let response = server.get("/v1/runtime/prompts/greeting").await;
    assert_eq!(response.status(), 401);
    one_body(
        "runtime, no token",
        &response.json().await.expect("json"),
        "UNAUTHENTICATED",
        true,
    );
    let (status, body) = server
        .runtime(
            &token(&tenant, "admin"),
            reqwest::Method::GET,
            "/prompts/greeting",
            None,
        )
        .await;
    assert_eq!(status, 403);
    one_body("runtime, a person's token", &body, "FORBIDDEN", true);
    // An agent endpoint with a token whose role is too low, and with a malformed header.
    let invoke = format!("{}/v1/{tenant}/staging/agents/bot", server.url);
    let response = server
        .http()
        .post(&invoke)
        .bearer_auth(token(&tenant, "viewer"))
        .fetch()
        .await;
    assert_eq!(response.status(), 403);
    one_body(
        "agent endpoint, viewer",
        &response.json().await.expect("json"),
        "FORBIDDEN",
        true,
    );
    let response = server
        .http()
        .post(&invoke)
        .header("authorization", "Basic abc")
        .fetch()
        .await;
    assert_eq!(response.status(), 401);
    one_body(
        "agent endpoint, not a bearer",
        &response.json().await.expect("json"),
        "UNAUTHENTICATED",
        true,
    );
    // HTTP-level errors of the GraphQL endpoints and an unknown path: the GraphQL error shape.
    let response = server
        .http()
        .get(format!(
            "{}/graphql/stream?query=subscription%7B__typename%7D",
            server.url
        ))
        .fetch()
        .await;
    assert_eq!(response.status(), 401);
    one_body(
        "SSE, no token",
        &response.json().await.expect("json"),
        "UNAUTHENTICATED",
        false,
    );
    let response = server.get("/nowhere").await;
    assert_eq!(response.status(), 404);
    one_body(
        "unknown path",
        &response.json().await.expect("json"),
        "NOT_FOUND",
        false,
    );
}

on_both_backends!(
    every_non_graphql_error_has_one_body,
    get_runs_queries_only,
    posts_must_be_single_json_requests_within_limits,
    health_readiness_and_request_ids,
    the_exported_schema_is_the_served_schema,
);
