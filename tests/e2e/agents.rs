//! Agents: deploys create immutable commits in staging; production has nothing until published;
//! bad bundles are refused precisely and write nothing; metadata edits respect revisions.

use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, Server, deploy, error_code, error_message, manifest, tenant, token};

const AGENT: &str = r#"query($env: Environment!) {
  agent(environment: $env, slug: "bot") {
    slug name description environment revision deploymentRevision endpointUrl
    currentCommit { hash number message author parent { number } manifest { name entrypoint prompts connectors }
                    files { path size hash content } }
    commits(first: 10) { edges { cursor node { number message } } pageInfo { hasNextPage hasPreviousPage } }
  }
}"#;

async fn deploys_create_commits_in_staging_only(backend: Backend) {
    let server = Server::start(backend).await;
    let tenant = tenant();
    let developer = token(&tenant, "developer");
    let first = deploy(&server, &developer, "bot", "print('v1')\n", "first").await;
    let second = deploy(&server, &developer, "bot", "print('v2')\n", "second").await;
    assert_eq!(first["number"], 1);
    assert_eq!(second["number"], 2);
    assert_ne!(
        first["hash"], second["hash"],
        "a different bundle has a different content hash"
    );

    let staging = server.data(&developer, AGENT, json!({ "env": "STAGING" })).await["agent"].clone();
    assert_eq!(staging["environment"], "STAGING");
    assert_eq!(
        staging["endpointUrl"],
        format!("https://api.example.test/v1/{tenant}/staging/agents/bot")
    );
    let commit = &staging["currentCommit"];
    assert_eq!(commit["hash"], second["hash"]);
    assert_eq!(commit["message"], "second");
    assert_eq!(commit["author"], format!("developer@{tenant}"));
    assert_eq!(commit["parent"]["number"], 1);
    assert_eq!(
        commit["manifest"],
        json!({ "name": "bot", "entrypoint": ["python3", "main.py"], "prompts": [], "connectors": [] })
    );
    let files = commit["files"].as_array().expect("files");
    assert_eq!(
        files
            .iter()
            .map(|f| f["path"].as_str().unwrap_or(""))
            .collect::<Vec<_>>(),
        ["main.py", "runflow.toml"]
    );
    assert_eq!(files[0]["content"], "print('v2')\n");
    let numbers: Vec<&Value> = staging["commits"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| &e["node"]["number"])
        .collect();
    assert_eq!(numbers, [&json!(2), &json!(1)], "newest first");

    // Production: nothing until published.
    let production = server.data(&developer, AGENT, json!({ "env": "PRODUCTION" })).await;
    assert_eq!(production["agent"], Value::Null);
    let lists = server
        .data(
            &developer,
            "{ agents(environment: PRODUCTION) { nodes { slug } totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(lists["agents"], json!({ "nodes": [], "totalCount": 0 }));

    // Commit history paginates with cursors.
    for n in 3..=5 {
        deploy(
            &server,
            &developer,
            "bot",
            &format!("print({n})\n"),
            &format!("deploy {n}"),
        )
        .await;
    }
    let page = |after: Option<String>| {
        let server = &server;
        let developer = developer.clone();
        async move {
            server
                .data(
                    &developer,
                    r#"query($after: String) { agent(environment: STAGING, slug: "bot") {
                        commits(first: 2, after: $after) { edges { cursor node { number } } pageInfo { hasNextPage } } } }"#,
                    json!({ "after": after }),
                )
                .await["agent"]["commits"]
                .clone()
        }
    };
    let one = page(None).await;
    let two = page(one["edges"][1]["cursor"].as_str().map(str::to_string)).await;
    let three = page(two["edges"][1]["cursor"].as_str().map(str::to_string)).await;
    let numbers: Vec<i64> = [&one, &two, &three]
        .iter()
        .flat_map(|p| p["edges"].as_array().cloned().unwrap_or_default())
        .map(|e| e["node"]["number"].as_i64().unwrap_or(0))
        .collect();
    assert_eq!(numbers, [5, 4, 3, 2, 1]);
    assert_eq!(one["pageInfo"]["hasNextPage"], true);
    assert_eq!(three["pageInfo"]["hasNextPage"], false);
    let bad_cursor = server
        .gql(
            Some(&developer),
            r#"{ agent(environment: STAGING, slug: "bot") { commits(after: "nope") { edges { cursor } } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(error_code(&bad_cursor), "BAD_USER_INPUT");
    let too_many = server
        .gql(
            Some(&developer),
            r#"{ agent(environment: STAGING, slug: "bot") { commits(first: 1000) { edges { cursor } } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(error_code(&too_many), "BAD_USER_INPUT");
}

async fn bad_bundles_are_refused_precisely_and_write_nothing(backend: Backend) {
    let server = Server::start_with(
        backend,
        &[("RUNFLOW_MAX_FILE_BYTES", "1000"), ("RUNFLOW_MAX_BUNDLE_BYTES", "1500")],
    )
    .await;
    let developer = token(&tenant(), "developer");
    let deploy_files = |files: Value| {
        let server = &server;
        let developer = developer.clone();
        async move {
            server
                .gql(
                    Some(&developer),
                    "mutation($input: DeployAgentInput!) { deployAgent(environment: STAGING, input: $input) { commit { id } } }",
                    json!({ "input": { "slug": "bot", "files": files } }),
                )
                .await
        }
    };
    let ok_manifest = json!({ "path": "runflow.toml", "content": manifest("bot") });
    let cases = [
        (json!([{ "path": "main.py", "content": "x" }]), "no runflow.toml"),
        (
            json!([{ "path": "runflow.toml", "content": "name = \"bot\"\n" }]),
            "entrypoint",
        ),
        (
            json!([{ "path": "runflow.toml", "content": "name = [1" }]),
            "runflow.toml is invalid",
        ),
        (
            json!([{ "path": "runflow.toml", "content": manifest("other") }]),
            "must match",
        ),
        (
            json!([{ "path": "runflow.toml", "content": "name = \"bot\"\nentrypoint = [\"x\"]\nprompts = [\"Bad Slug\"]\n" }]),
            "prompts",
        ),
        (
            json!([ok_manifest, { "path": "../etc/passwd", "content": "x" }]),
            "is invalid",
        ),
        (json!([ok_manifest, { "path": "/abs", "content": "x" }]), "is invalid"),
        (json!([ok_manifest, ok_manifest]), "appears twice"),
        (
            json!([ok_manifest, { "path": "big.txt", "content": "x".repeat(1001) }]),
            "limit per file",
        ),
        (
            json!([ok_manifest, { "path": "a.txt", "content": "x".repeat(900) }, { "path": "b.txt", "content": "x".repeat(900) }]),
            "the limit is 1500",
        ),
        (json!([]), "files is empty"),
    ];
    for (files, expected) in cases {
        let response = deploy_files(files.clone()).await;
        assert_eq!(error_code(&response), "BAD_USER_INPUT", "{files}: {response:#}");
        assert!(
            error_message(&response).contains(expected),
            "{expected:?} not in {response:#}"
        );
    }
    let response = server
        .gql(
            Some(&developer),
            r#"mutation { deployAgent(environment: STAGING, input: {slug: "Not A Slug", files: []}) { commit { id } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(error_code(&response), "BAD_USER_INPUT");
    let data = server
        .data(
            &developer,
            "{ agents(environment: STAGING) { nodes { slug } } }",
            json!({}),
        )
        .await;
    assert_eq!(data["agents"]["nodes"], json!([]), "nothing was written");
}

async fn metadata_is_shared_and_revisions_guard_edits(backend: Backend) {
    let server = Server::start(backend).await;
    let developer = token(&tenant(), "developer");
    deploy(&server, &developer, "bot", "print(1)\n", "first").await;
    let update = r#"mutation($input: UpdateAgentMetadataInput!) { updateAgent(environment: STAGING, input: $input) { name description revision } }"#;
    let updated = server
        .data(&developer, update, json!({ "input": { "slug": "bot", "name": "Support bot", "description": "Answers", "expectedRevision": 1 } }))
        .await;
    assert_eq!(
        updated["updateAgent"],
        json!({ "name": "Support bot", "description": "Answers", "revision": 2 })
    );
    let stale = server
        .gql(
            Some(&developer),
            update,
            json!({ "input": { "slug": "bot", "name": "Mine", "expectedRevision": 1 } }),
        )
        .await;
    assert_eq!(error_code(&stale), "CONFLICT");
    assert!(error_message(&stale).contains("revision 2"), "{stale:#}");
    let unchanged = server
        .data(
            &developer,
            r#"{ agent(environment: STAGING, slug: "bot") { name revision deploymentRevision } }"#,
            json!({}),
        )
        .await;
    assert_eq!(
        unchanged["agent"],
        json!({ "name": "Support bot", "revision": 2, "deploymentRevision": 1 })
    );

    let unknown = server
        .gql(
            Some(&developer),
            update,
            json!({ "input": { "slug": "ghost", "name": "x" } }),
        )
        .await;
    assert_eq!(error_code(&unknown), "NOT_FOUND");

    let stale_delete = server
        .gql(
            Some(&developer),
            r#"mutation { deleteAgent(environment: STAGING, slug: "bot", expectedRevision: 7) { deletedId } }"#,
            json!({}),
        )
        .await;
    assert_eq!(error_code(&stale_delete), "CONFLICT");
    let staging_id = server
        .data(
            &developer,
            r#"{ agent(environment: STAGING, slug: "bot") { id } }"#,
            json!({}),
        )
        .await["agent"]["id"]
        .clone();
    let deleted = server
        .data(
            &developer,
            r#"mutation { deleteAgent(environment: STAGING, slug: "bot", expectedRevision: 1) { deletedId deletedType } }"#,
            json!({}),
        )
        .await;
    // A client cache can evict exactly the object it holds.
    assert_eq!(
        deleted["deleteAgent"],
        json!({ "deletedId": staging_id, "deletedType": "Agent" })
    );
    let gone = server
        .data(
            &developer,
            r#"{ agent(environment: STAGING, slug: "bot") { slug } }"#,
            json!({}),
        )
        .await;
    assert_eq!(gone["agent"], Value::Null);
}

async fn concurrent_writes_do_not_fail(backend: Backend) {
    let server = std::sync::Arc::new(Server::start(backend).await);
    let developer = token(&tenant(), "developer");
    let mut tasks = Vec::new();
    for n in 0..24 {
        let server = server.clone();
        let developer = developer.clone();
        tasks.push(tokio::spawn(async move {
            if n % 2 == 0 {
                deploy(&server, &developer, &format!("bot-{}", n % 4), &format!("print({n})\n"), "concurrent").await;
            } else {
                server
                    .data(
                        &developer,
                        "mutation($input: SavePromptDraftInput!) { savePromptDraft(environment: STAGING, input: $input) { slug } }",
                        json!({ "input": { "slug": format!("p{}", n % 3), "template": format!("v{n}") } }),
                    )
                    .await;
            }
        }));
    }
    for task in tasks {
        task.await.expect("every concurrent write succeeds");
    }
    let data = server
        .data(
            &developer,
            "{ agents(environment: STAGING) { nodes { slug commits { edges { cursor } } } } }",
            json!({}),
        )
        .await;
    let total: usize = data["agents"]["nodes"]
        .as_array()
        .expect("agents")
        .iter()
        .map(|a| a["commits"]["edges"].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(total, 12, "every deploy made exactly one commit: {data:#}");
}

on_both_backends!(
    deploys_create_commits_in_staging_only,
    bad_bundles_are_refused_precisely_and_write_nothing,
    metadata_is_shared_and_revisions_guard_edits,
    concurrent_writes_do_not_fail,
);
