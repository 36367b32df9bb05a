//! The three access rules, for every field the schema has (enumerated by introspection, so a
//! field added later is covered without anyone remembering to):
//! production is read-only, each operation needs its role, and a token is required.

use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, Fetch, Server, error_code, error_message, now, sign, tenant, token};

const INTROSPECT_ROOTS: &str = r#"{
  __schema {
    queryType { fields(includeDeprecated: true) { name args { name type { kind name ofType { kind name } } } } }
    mutationType { fields(includeDeprecated: true) { name type { kind ofType { kind } } args { name type { kind name ofType { kind name } } } } }
  }
}"#;

/// Root fields of `Mutation` (name, whether its type is a scalar) and of `Query`.
async fn roots(server: &Server) -> (Vec<(String, bool)>, Vec<Value>) {
    let response = server.gql(None, INTROSPECT_ROOTS, json!({})).await;
    let mutations = response["data"]["__schema"]["mutationType"]["fields"]
        .as_array()
        .expect("mutation fields")
        .iter()
        .map(|field| {
            let kind = field["type"]["ofType"]["kind"]
                .as_str()
                .or(field["type"]["kind"].as_str())
                .unwrap_or_default();
            (field["name"].as_str().unwrap_or_default().to_string(), kind == "SCALAR")
        })
        .collect();
    let queries = response["data"]["__schema"]["queryType"]["fields"]
        .as_array()
        .expect("query fields")
        .clone();
    (mutations, queries)
}

/// A minimal operation calling `field` with only the `environment` argument (other required
/// arguments are missing on purpose: the access rules must fire before input validation).
fn bare_mutation(field: &str, scalar: bool, environment: &str) -> String {
    let selection = if scalar { "" } else { "{ __typename }" };
    format!("mutation {{ {field}(environment: {environment}) {selection} }}")
}

async fn every_mutation_is_refused_in_production(backend: Backend) {
    let server = Server::start(backend).await;
    let (mutations, _) = roots(&server).await;
    assert!(
        mutations.len() >= 25,
        "expected the whole mutation surface, got {mutations:?}"
    );
    let tenant = tenant();
    for role in ["admin", "viewer"] {
        let token = token(&tenant, role);
        for (field, scalar) in &mutations {
            if field == "publish" {
                continue;
            }
            let response = server
                .gql(Some(&token), &bare_mutation(field, *scalar, "PRODUCTION"), json!({}))
                .await;
            assert_eq!(
                error_code(&response),
                "PRODUCTION_READ_ONLY",
                "{field} as {role}: {response:#}"
            );
            assert!(
                error_message(&response).contains("publishing from staging"),
                "{response:#}"
            );
            // Through a variable, and inside a fragment, too.
            let via_variable = format!(
                "mutation($env: Environment!) {{ ...F }} fragment F on Mutation {{ {field}(environment: $env) {} }}",
                if *scalar { "" } else { "{ __typename }" }
            );
            let response = server
                .gql(Some(&token), &via_variable, json!({ "env": "PRODUCTION" }))
                .await;
            assert_eq!(
                error_code(&response),
                "PRODUCTION_READ_ONLY",
                "{field} via variable: {response:#}"
            );
        }
    }

    // A complete, valid deploy against production writes nothing in either environment.
    let admin = token(&tenant, "admin");
    let response = server
        .gql(
            Some(&admin),
            "mutation($input: DeployAgentInput!) { deployAgent(environment: PRODUCTION, input: $input) { commit { id } } }",
            json!({ "input": { "slug": "bot", "files": [
                { "path": "runflow.toml", "content": crate::support::manifest("bot") } ] } }),
        )
        .await;
    assert_eq!(error_code(&response), "PRODUCTION_READ_ONLY");
    let data = server
        .data(
            &admin,
            "{ s: agents(environment: STAGING) { nodes { slug } } p: agents(environment: PRODUCTION) { nodes { slug } } }",
            json!({}),
        )
        .await;
    assert_eq!(data, json!({ "s": { "nodes": [] }, "p": { "nodes": [] } }));
}

async fn every_mutation_requires_its_role(backend: Backend) {
    let server = Server::start(backend).await;
    let (mutations, _) = roots(&server).await;
    let tenant = tenant();
    for (field, scalar) in &mutations {
        let response = server
            .gql(
                Some(&token(&tenant, "viewer")),
                &bare_mutation(field, *scalar, "STAGING"),
                json!({}),
            )
            .await;
        assert_eq!(error_code(&response), "FORBIDDEN", "{field} as viewer: {response:#}");
        let admin_only = ["Credential", "KnowledgeBase", "LlmProvider", "DataSource"]
            .iter()
            .any(|s| field.ends_with(s))
            || field == "updateSettings"
            || field.ends_with("WebhookEndpoint")
            || field == "redeliverWebhook";
        let publisher_only = [
            "approveReleaseRequest",
            "rejectReleaseRequest",
            "scheduleRelease",
            "rescheduleRelease",
            "cancelScheduledRelease",
        ]
        .contains(&field.as_str());
        if field == "publish" {
            // Publishing needs the publisher role, and is the one mutation allowed on PRODUCTION.
            let developer = token(&tenant, "developer");
            let response = server
                .gql(
                    Some(&developer),
                    &bare_mutation(field, *scalar, "PRODUCTION"),
                    json!({}),
                )
                .await;
            assert_eq!(error_code(&response), "FORBIDDEN", "{response:#}");
            let publisher = token(&tenant, "publisher");
            let response = server
                .gql(
                    Some(&publisher),
                    &bare_mutation(field, *scalar, "PRODUCTION"),
                    json!({}),
                )
                .await;
            let code = error_code(&response);
            assert!(
                code != "FORBIDDEN" && code != "PRODUCTION_READ_ONLY",
                "past the access checks: {response:#}"
            );
            continue;
        }
        let response = server
            .gql(
                Some(&token(&tenant, "developer")),
                &bare_mutation(field, *scalar, "STAGING"),
                json!({}),
            )
            .await;
        if admin_only {
            assert_eq!(error_code(&response), "FORBIDDEN", "{field} as developer: {response:#}");
            assert!(error_message(&response).contains("admin"), "{response:#}");
        } else if publisher_only {
            assert_eq!(error_code(&response), "FORBIDDEN", "{field} as developer: {response:#}");
            assert!(error_message(&response).contains("publisher"), "{response:#}");
        } else {
            // Past the role check: the missing input is what fails now (or, for a mutation
            // that needs nothing more, it succeeds).
            if response.get("errors").is_some() {
                assert_ne!(error_code(&response), "FORBIDDEN", "{field} as developer: {response:#}");
            }
        }
    }
}

async fn every_query_takes_an_environment_and_a_token(backend: Backend) {
    let server = Server::start(backend).await;
    let (mutations, queries) = roots(&server).await;
    for field in &queries {
        let environment = field["args"]
            .as_array()
            .and_then(|args| args.iter().find(|a| a["name"] == "environment"));
        let environment = environment.unwrap_or_else(|| panic!("{} has no environment argument", field["name"]));
        assert_eq!(environment["type"]["kind"], "NON_NULL", "{}", field["name"]);
        assert_eq!(
            environment["type"]["ofType"]["name"], "Environment",
            "{}",
            field["name"]
        );
    }
    let response = server
        .gql(None, "{ agents(environment: STAGING) { slug } }", json!({}))
        .await;
    assert_eq!(error_code(&response), "UNAUTHENTICATED");
    assert!(response["data"].is_null());
    let (field, scalar) = mutations.iter().find(|(f, _)| f == "deployAgent").expect("deployAgent");
    let response = server
        .gql(None, &bare_mutation(field, *scalar, "STAGING"), json!({}))
        .await;
    assert_eq!(error_code(&response), "UNAUTHENTICATED");
    // Introspection alone needs no token.
    let response = server.gql(None, "{ __schema { queryType { name } } }", json!({})).await;
    assert_eq!(response["data"]["__schema"]["queryType"]["name"], "Query");
}

async fn bad_tokens_are_unauthenticated(backend: Backend) {
    let server = Server::start(backend).await;
    let tenant = tenant();
    let exp = now() + 3600;
    let wrong_key = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &json!({ "sub": "x", "tenant": tenant, "role": "admin", "exp": exp }),
        &jsonwebtoken::EncodingKey::from_secret(b"another-secret-another-secret-another"),
    )
    .expect("sign");
    let hs512 = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS512),
        &json!({ "sub": "x", "tenant": tenant, "role": "admin", "exp": exp }),
        &jsonwebtoken::EncodingKey::from_secret(crate::support::JWT_SECRET.as_bytes()),
    )
    .expect("sign");
    let unsigned = {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.",
            b64.encode(r#"{"alg":"none","typ":"JWT"}"#),
            b64.encode(json!({ "sub": "x", "tenant": tenant, "role": "admin", "exp": exp }).to_string())
        )
    };
    let cases = [
        (
            "expired",
            sign(json!({ "sub": "x", "tenant": tenant, "role": "admin", "exp": now() - 600 })),
        ),
        (
            "not yet valid",
            sign(json!({ "sub": "x", "tenant": tenant, "role": "admin", "exp": exp, "nbf": now() + 600 })),
        ),
        ("no exp", sign(json!({ "sub": "x", "tenant": tenant, "role": "admin" }))),
        (
            "string exp",
            sign(json!({ "sub": "x", "tenant": tenant, "role": "admin", "exp": exp.to_string() })),
        ),
        (
            "unknown role",
            sign(json!({ "sub": "x", "tenant": tenant, "role": "root", "exp": exp })),
        ),
        ("no tenant", sign(json!({ "sub": "x", "role": "admin", "exp": exp }))),
        (
            "bad tenant",
            sign(json!({ "sub": "x", "tenant": "a/b", "role": "admin", "exp": exp })),
        ),
        ("wrong key", wrong_key),
        ("other algorithm", hs512),
        ("alg none", unsigned),
        ("garbage", "not-a-token".to_string()),
    ];
    for (case, bad) in cases {
        let response = server
            .gql(Some(&bad), "{ agents(environment: STAGING) { slug } }", json!({}))
            .await;
        assert_eq!(error_code(&response), "UNAUTHENTICATED", "{case}: {response:#}");
        // A bad token is refused even for introspection.
        let response = server.gql(Some(&bad), "{ __typename }", json!({})).await;
        assert_eq!(error_code(&response), "UNAUTHENTICATED", "{case}: {response:#}");
    }
    let response = server
        .http()
        .post(format!("{}/graphql", server.url))
        .header("authorization", "Basic dXNlcjpwYXNz")
        .json(&json!({ "query": "{ __typename }" }))
        .fetch()
        .await
        .json::<Value>()
        .await
        .expect("json");
    assert_eq!(error_code(&response), "UNAUTHENTICATED");
    let response = server
        .gql(
            Some(&token(&tenant, "viewer")),
            "{ viewer(environment: STAGING) { tenant role subject } }",
            json!({}),
        )
        .await;
    assert_eq!(
        response["data"]["viewer"],
        json!({ "tenant": tenant, "role": "VIEWER", "subject": format!("viewer@{tenant}") })
    );
}

async fn tenants_never_see_each_other(backend: Backend) {
    let server = Server::start(backend).await;
    let (a, b) = (tenant(), tenant());
    let (admin_a, admin_b) = (token(&a, "admin"), token(&b, "admin"));
    let commit = crate::support::deploy(&server, &admin_a, "bot", "print('a')\n", "a's bot").await;
    server
        .data(
            &admin_a,
            r#"mutation { savePromptDraft(environment: STAGING, input: {slug: "greet", template: "Hi"}) { slug } }"#,
            json!({}),
        )
        .await;
    server
        .data(&admin_a, r#"mutation { createCredential(environment: STAGING, input: {name: "key", kind: "api-key", secret: "sekrit-value-123"}) { name } }"#, json!({}))
        .await;
    server
        .data(&admin_a, r#"mutation { createConnector(environment: STAGING, input: {slug: "crm", kind: "http", credentials: ["key"]}) { slug } }"#, json!({}))
        .await;

    let everything = r#"{
      agents(environment: STAGING) { nodes { slug } }
      agent(environment: STAGING, slug: "bot") { slug }
      prompts(environment: STAGING) { nodes { slug } }
      prompt(environment: STAGING, slug: "greet") { slug }
      connectors(environment: STAGING) { nodes { slug } }
      connector(environment: STAGING, slug: "crm") { slug }
      credentials(environment: STAGING) { nodes { name } }
    }"#;
    let seen_by_b = server.data(&admin_b, everything, json!({})).await;
    assert_eq!(
        seen_by_b,
        json!({ "agents": { "nodes": [] }, "agent": null, "prompts": { "nodes": [] }, "prompt": null, "connectors": { "nodes": [] }, "connector": null, "credentials": { "nodes": [] } })
    );
    // Writes to another tenant's records behave like writes to records that do not exist.
    for mutation in [
        r#"mutation { updateAgent(environment: STAGING, input: {slug: "bot", name: "x"}) { slug } }"#,
        r#"mutation { deleteAgent(environment: STAGING, slug: "bot") { deletedId } }"#,
        r#"mutation { deletePrompt(environment: STAGING, slug: "greet") { deletedId } }"#,
        r#"mutation { updateConnector(environment: STAGING, input: {slug: "crm", kind: "x"}) { slug } }"#,
        r#"mutation { rotateCredential(environment: STAGING, input: {name: "key", secret: "stolen"}) { name } }"#,
    ] {
        let response = server.gql(Some(&admin_b), mutation, json!({})).await;
        assert_eq!(error_code(&response), "NOT_FOUND", "{mutation}: {response:#}");
    }
    // B referencing A's credential by name is an unknown credential.
    let response = server
        .gql(Some(&admin_b), r#"mutation { createConnector(environment: STAGING, input: {slug: "crm", kind: "http", credentials: ["key"]}) { slug } }"#, json!({}))
        .await;
    assert_eq!(error_code(&response), "BAD_USER_INPUT");
    // B can use the same names independently, and A's data is unchanged.
    crate::support::deploy(&server, &admin_b, "bot", "print('b')\n", "b's bot").await;
    let a_view = server
        .data(
            &admin_a,
            r#"{ agent(environment: STAGING, slug: "bot") { currentCommit { hash message } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(a_view["agent"]["currentCommit"]["hash"], commit["hash"]);
    assert_eq!(a_view["agent"]["currentCommit"]["message"], "a's bot");
}

on_both_backends!(
    every_mutation_is_refused_in_production,
    every_mutation_requires_its_role,
    every_query_takes_an_environment_and_a_token,
    bad_tokens_are_unauthenticated,
    tenants_never_see_each_other,
);
