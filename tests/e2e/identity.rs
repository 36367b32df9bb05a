//! The API contract for client caches: global ids that differ per environment, `node` and
//! `nodes` that resolve them only in their tenant and environment, occurrence ids for
//! release items and pending changes, and Relay connections that page both ways.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, Server, deploy, error_code, gid, publish_all, script_summary, tenant, token};

const NODE: &str = r#"query($env: Environment!, $id: ID!) {
  node(environment: $env, id: $id) { __typename id ... on Agent { environment currentCommit { number } } } }"#;

/// The parts of a global id (tests only look inside to build wrong ones).
fn parts(id: &Value) -> (String, String, String) {
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(id.as_str().expect("an id")).expect("base64")).expect("utf8");
    let mut it = text.splitn(3, ':').map(str::to_string);
    (it.next().unwrap(), it.next().unwrap(), it.next().unwrap())
}

async fn ids_differ_per_environment_and_node_resolves_them_only_there(backend: Backend) {
    let server = Server::start(backend).await;
    let tenant = tenant();
    let admin = token(&tenant, "admin");
    deploy(&server, &admin, "bot", "print(1)\n", "v1").await;
    publish_all(&server, &admin).await;
    deploy(&server, &admin, "bot", "print(2)\n", "v2").await;
    let both = server
        .data(
            &admin,
            r#"{ s: agent(environment: STAGING, slug: "bot") { id currentCommit { id } }
                 p: agent(environment: PRODUCTION, slug: "bot") { id currentCommit { id } } }"#,
            json!({}),
        )
        .await;
    let (staging, production) = (both["s"]["id"].clone(), both["p"]["id"].clone());
    assert_ne!(staging, production, "one agent, two environments, two ids");
    let (kind, env, agent_uuid) = parts(&staging);
    assert_eq!((kind.as_str(), env.as_str()), ("Agent", "STAGING"));
    assert_eq!(parts(&production).2, agent_uuid, "the same record underneath");

    // Each id resolves in its own environment, to that environment's state.
    let node = |env: &'static str, id: Value| {
        let server = &server;
        let admin = admin.clone();
        async move { server.data(&admin, NODE, json!({ "env": env, "id": id })).await["node"].clone() }
    };
    assert_eq!(
        node("STAGING", staging.clone()).await,
        json!({ "__typename": "Agent", "id": staging, "environment": "STAGING", "currentCommit": { "number": 2 } })
    );
    assert_eq!(
        node("PRODUCTION", production.clone()).await["currentCommit"]["number"],
        1
    );
    // Another environment's id, an id re-typed as another type, and foreign strings: null.
    assert_eq!(node("PRODUCTION", staging.clone()).await, Value::Null);
    assert_eq!(node("STAGING", production.clone()).await, Value::Null);
    assert_eq!(
        node("STAGING", json!(gid("Prompt", "STAGING", &agent_uuid))).await,
        Value::Null
    );
    assert_eq!(
        node("STAGING", json!(gid("Agent", "shared", &agent_uuid))).await,
        Value::Null
    );
    assert_eq!(node("STAGING", json!("not an id")).await, Value::Null);
    assert_eq!(
        node("STAGING", json!(agent_uuid.clone())).await,
        Value::Null,
        "bare UUIDs are not node ids"
    );
    // Another tenant: exactly like a missing id.
    let intruder = token(&crate::support::tenant(), "admin");
    let foreign = server
        .data(&intruder, NODE, json!({ "env": "STAGING", "id": staging }))
        .await;
    assert_eq!(foreign["node"], Value::Null);

    // Shared records: one id, resolvable from both environments. Commits are shared.
    let commit = both["p"]["currentCommit"]["id"].clone();
    assert_eq!(parts(&commit).1, "shared");
    for env in ["STAGING", "PRODUCTION"] {
        let found = server
            .data(
                &admin,
                "query($env: Environment!, $id: ID!) { node(environment: $env, id: $id) { __typename id } }",
                json!({ "env": env, "id": commit }),
            )
            .await;
        assert_eq!(found["node"], json!({ "__typename": "Commit", "id": commit }));
    }
    let credential = server
        .data(&admin, r#"mutation { createCredential(environment: STAGING, input: {name: "k", kind: "api-key", secret: "s3cret-s3cret"}) { id } }"#, json!({}))
        .await["createCredential"]["id"]
        .clone();
    let listed = server
        .data(&admin, "{ s: credentials(environment: STAGING) { nodes { id } } p: credentials(environment: PRODUCTION) { nodes { id } } }", json!({}))
        .await;
    assert_eq!(listed["s"]["nodes"][0]["id"], credential);
    assert_eq!(listed["p"]["nodes"][0]["id"], credential);

    // nodes: in order, null where missing, capped.
    let many = server
        .data(
            &admin,
            "query($ids: [ID!]!) { nodes(environment: STAGING, ids: $ids) { __typename id } }",
            json!({ "ids": [staging, "nope", production, credential] }),
        )
        .await;
    assert_eq!(
        many["nodes"],
        json!([{ "__typename": "Agent", "id": staging }, null, null, { "__typename": "Credential", "id": credential }])
    );
    let too_many: Vec<String> = (0..101).map(|i| format!("id-{i}")).collect();
    let refused = server
        .gql(
            Some(&admin),
            "query($ids: [ID!]!) { nodes(environment: STAGING, ids: $ids) { id } }",
            json!({ "ids": too_many }),
        )
        .await;
    assert_eq!(error_code(&refused), "BAD_USER_INPUT", "{refused:#}");
}

async fn release_items_and_pending_changes_have_occurrence_ids(backend: Backend) {
    let server = Server::start(backend).await;
    let admin = token(&tenant(), "admin");
    deploy(&server, &admin, "bot", "print(1)\n", "v1").await;
    let pending_query = "{ pendingChanges(environment: STAGING) { id key fingerprint } }";
    let first_pending = server.data(&admin, pending_query, json!({})).await["pendingChanges"][0].clone();
    deploy(&server, &admin, "bot", "print(2)\n", "v2").await;
    let second_pending = server.data(&admin, pending_query, json!({})).await["pendingChanges"][0].clone();
    assert_eq!(first_pending["key"], "agent:bot");
    assert_eq!(second_pending["key"], "agent:bot");
    assert_ne!(
        first_pending["id"], second_pending["id"],
        "a new state of the item is a new object"
    );
    // The current pending change resolves; the superseded one no longer exists.
    let refetch =
        "query($id: ID!) { node(environment: STAGING, id: $id) { ... on PendingChange { key fingerprint } } }";
    let current = server
        .data(&admin, refetch, json!({ "id": second_pending["id"] }))
        .await;
    assert_eq!(current["node"]["fingerprint"], second_pending["fingerprint"]);
    let old = server.data(&admin, refetch, json!({ "id": first_pending["id"] })).await;
    assert_eq!(old["node"], Value::Null);

    let r1 = publish_all(&server, &admin).await;
    deploy(&server, &admin, "bot", "print(3)\n", "v3").await;
    let r2 = publish_all(&server, &admin).await;
    let (item1, item2) = (&r1["items"][0], &r2["items"][0]);
    assert_eq!(
        (item1["key"].as_str(), item2["key"].as_str()),
        (Some("agent:bot"), Some("agent:bot"))
    );
    assert_ne!(
        item1["id"], item2["id"],
        "the same agent in two releases is two objects"
    );
    let item = server
        .data(
            &admin,
            "query($id: ID!) { node(environment: PRODUCTION, id: $id) { __typename ... on ReleaseItem { key after } } }",
            json!({ "id": item1["id"] }),
        )
        .await;
    assert_eq!(item["node"]["__typename"], "ReleaseItem");
    assert_eq!(
        item["node"]["after"]["number"], 2,
        "release 1 moved production to commit 2"
    );
}

async fn connections_page_forwards_and_backwards(backend: Backend) {
    let server = Server::start(backend).await;
    let developer = token(&tenant(), "developer");
    for slug in ["p1", "p2", "p3", "p4", "p5"] {
        server
            .data(
                &developer,
                "mutation($slug: String!) { savePromptDraft(environment: STAGING, input: {slug: $slug, template: \"x\"}) { id } }",
                json!({ "slug": slug }),
            )
            .await;
    }
    let query = r#"query($first: Int, $after: String, $last: Int, $before: String) {
      prompts(environment: STAGING, first: $first, after: $after, last: $last, before: $before) {
        edges { cursor node { slug } } nodes { slug } totalCount
        pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }"#;
    let page = |variables: Value| {
        let server = &server;
        let developer = developer.clone();
        async move { server.data(&developer, query, variables).await["prompts"].clone() }
    };
    let slugs = |page: &Value| -> Vec<String> {
        page["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .map(|n| n["slug"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    let one = page(json!({ "first": 2 })).await;
    assert_eq!(slugs(&one), ["p1", "p2"]);
    assert_eq!(one["totalCount"], 5);
    assert_eq!(one["pageInfo"]["hasNextPage"], true);
    assert_eq!(one["pageInfo"]["endCursor"], one["edges"][1]["cursor"]);
    let two = page(json!({ "first": 2, "after": one["pageInfo"]["endCursor"] })).await;
    assert_eq!(slugs(&two), ["p3", "p4"]);
    assert_eq!(two["pageInfo"]["hasPreviousPage"], true);
    let tail = page(json!({ "last": 2 })).await;
    assert_eq!(slugs(&tail), ["p4", "p5"], "last pages keep the list's order");
    assert_eq!(
        (
            tail["pageInfo"]["hasPreviousPage"].as_bool(),
            tail["pageInfo"]["hasNextPage"].as_bool()
        ),
        (Some(true), Some(false))
    );
    let before = page(json!({ "last": 2, "before": tail["pageInfo"]["startCursor"] })).await;
    assert_eq!(slugs(&before), ["p2", "p3"]);
    let start = page(json!({ "last": 5, "before": before["pageInfo"]["startCursor"] })).await;
    assert_eq!(slugs(&start), ["p1"]);
    assert_eq!(start["pageInfo"]["hasPreviousPage"], false);

    // A list sorted newest first by id pages backwards too: the last commits are the oldest.
    for n in 1..=3 {
        deploy(&server, &developer, "bot", &format!("print({n})\n"), &format!("v{n}")).await;
    }
    let commits = r#"query($last: Int, $before: String) { agent(environment: STAGING, slug: "bot") {
        commits(last: $last, before: $before) { nodes { number } totalCount pageInfo { hasPreviousPage hasNextPage startCursor } } } }"#;
    let oldest = server.data(&developer, commits, json!({ "last": 1 })).await["agent"]["commits"].clone();
    assert_eq!(oldest["nodes"], json!([{ "number": 1 }]));
    assert_eq!(oldest["totalCount"], 3);
    assert_eq!(
        (
            oldest["pageInfo"]["hasPreviousPage"].as_bool(),
            oldest["pageInfo"]["hasNextPage"].as_bool()
        ),
        (Some(true), Some(false))
    );
    let newer = server
        .data(
            &developer,
            commits,
            json!({ "last": 5, "before": oldest["pageInfo"]["startCursor"] }),
        )
        .await["agent"]["commits"]
        .clone();
    assert_eq!(newer["nodes"], json!([{ "number": 3 }, { "number": 2 }]));

    for (variables, what) in [
        (json!({ "first": 1, "last": 1 }), "first and last"),
        (json!({ "first": 101 }), "over the cap"),
        (json!({ "last": -1 }), "negative"),
        (json!({ "after": "!!not-a-cursor" }), "a foreign cursor"),
    ] {
        let response = server.gql(Some(&developer), query, variables).await;
        assert_eq!(error_code(&response), "BAD_USER_INPUT", "{what}: {response:#}");
    }
}

on_both_backends!(
    ids_differ_per_environment_and_node_resolves_them_only_there,
    release_items_and_pending_changes_have_occurrence_ids,
    connections_page_forwards_and_backwards,
);

const CLIENT_CACHE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/client-cache");

fn client_cache_installed() {
    assert!(
        std::path::Path::new(CLIENT_CACHE)
            .join("node_modules/@apollo/client")
            .exists(),
        "run `npm ci --prefix tests/client-cache` first"
    );
}

/// Apollo Client's normalised cache (`tests/client-cache/check.mjs`) against the server: each
/// environment's agent and each release's items stay apart, and introspection equals
/// schema.graphql.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Node.js and `npm ci --prefix tests/client-cache` (.ci/run installs them)"]
async fn apollo_client_cache_keeps_environments_and_releases_apart() {
    client_cache_installed();
    let server = Server::start(Backend::Sqlite).await;
    let admin = token(&tenant(), "admin");
    deploy(&server, &admin, "bot", "print(1)\n", "v1").await;
    let r1 = publish_all(&server, &admin).await;
    deploy(&server, &admin, "bot", "print(2)\n", "v2").await;
    let r2 = publish_all(&server, &admin).await;
    deploy(&server, &admin, "bot", "print(3)\n", "v3").await;
    let result = script_summary(
        tokio::process::Command::new("node")
            .arg("check.mjs")
            .current_dir(CLIENT_CACHE)
            .env("RUNFLOW_URL", &server.url)
            .env("TOKEN", &admin)
            .env("RELEASE_1", r1["id"].as_str().expect("id"))
            .env("RELEASE_2", r2["id"].as_str().expect("id")),
    )
    .await;
    assert_eq!(result["ok"], true);
    assert_eq!(result["commits"], json!({ "PRODUCTION": 2, "STAGING": 3 }));
    assert_eq!(result["releases"], json!({ "1": 1, "2": 2 }));
}

/// The breaking-change check passes on the committed schema and fails on a removed field.
#[tokio::test]
#[ignore = "needs Node.js and `npm ci --prefix tests/client-cache` (.ci/run installs them)"]
async fn the_schema_check_refuses_unaccepted_breaking_changes() {
    client_cache_installed();
    let run = |args: &[&str]| {
        std::process::Command::new("node")
            .arg("schema-diff.mjs")
            .args(args)
            .current_dir(CLIENT_CACHE)
            .output()
            .expect("run node")
    };
    let committed = run(&[]);
    assert!(
        committed.status.success(),
        "schema.graphql breaks schema.baseline.graphql:\n{}{}",
        String::from_utf8_lossy(&committed.stdout),
        String::from_utf8_lossy(&committed.stderr)
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let schema = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../schema.graphql")).expect("schema");
    let baseline = dir.path().join("baseline.graphql");
    std::fs::write(&baseline, &schema).expect("write");
    let field = "\t\"\"\"\n\tThe URL at which this environment serves the agent.\n\t\"\"\"\n\tendpointUrl: String!\n";
    assert!(schema.contains(field), "the fixture removes Agent.endpointUrl");
    let without_endpoint = schema.replacen(field, "", 1);
    let broken = dir.path().join("broken.graphql");
    std::fs::write(&broken, without_endpoint).expect("write");
    let refused = run(&[baseline.to_str().expect("path"), broken.to_str().expect("path")]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&refused.stdout).contains("Field 'endpointUrl' was removed from object type 'Agent'"),
        "{}",
        String::from_utf8_lossy(&refused.stdout)
    );
    let added = dir.path().join("added.graphql");
    std::fs::write(
        &added,
        schema.replacen("type Viewer {", "type Viewer {\n\tnickname: String", 1),
    )
    .expect("write");
    let additive = run(&[baseline.to_str().expect("path"), added.to_str().expect("path")]);
    assert!(additive.status.success(), "adding a field is not breaking");
}
