//! Releases end to end: the diff, atomic publishing, conflicts, dependencies, idempotency,
//! history and rollback.

use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, Fetch, Server, deploy, error_code, error_message, tenant, token};

const PENDING: &str = r#"{ pendingChanges(environment: STAGING) {
  id key kind slug change fingerprint
  agent { stagingCommit { number } productionCommit { number } commits { number message }
          files { path change unifiedDiff hunks { oldStart oldLines newStart newLines lines { tag oldNumber newNumber text } } } }
  prompt { before { source version template } after { source template } rows { tag left { number text highlights { start end } } right { number text highlights { start end } } }
           variablesAdded variablesRemoved modelSettings { key change before after } }
  connector { kindBefore kindAfter config { key change } credentialsAdded resources { key change before after } }
  trigger { before after fields { key change } }
} }"#;

const PUBLISH: &str = r#"mutation($input: PublishInput!) { publish(environment: PRODUCTION, input: $input) { release {
  id number kind note createdBy rollsBack { number } items { id key kind change before after } } } }"#;

const PLAN: &str = r#"query($input: PublishInput!) { publishPlan(environment: PRODUCTION, input: $input) {
  fingerprint canPublish missing warnings items { id key change fingerprint } dependencies { item requires status } } }"#;

async fn pending(server: &Server, token: &str) -> Vec<Value> {
    server.data(token, PENDING, json!({})).await["pendingChanges"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn find<'a>(items: &'a [Value], id: &str) -> &'a Value {
    items
        .iter()
        .find(|i| i["key"] == id)
        .unwrap_or_else(|| panic!("{id} not pending in {items:#?}"))
}

fn item(change: &Value) -> Value {
    json!({ "key": change["key"], "fingerprint": change["fingerprint"] })
}

async fn deploy_files(server: &Server, token: &str, slug: &str, files: Value, message: &str) {
    server
        .data(
            token,
            "mutation($input: DeployAgentInput!) { deployAgent(environment: STAGING, input: $input) { commit { id } } }",
            json!({ "input": { "slug": slug, "message": message, "files": files } }),
        )
        .await;
}

fn manifest_with_prompt(slug: &str, prompt: &str) -> String {
    format!("name = \"{slug}\"\nentrypoint = [\"python3\", \"main.py\"]\nprompts = [\"{prompt}\"]\n")
}

async fn publishing_agent_code_moves_production(backend: Backend) {
    let server = Server::start(backend).await;
    let tenant = tenant();
    let (developer, publisher) = (token(&tenant, "developer"), token(&tenant, "publisher"));
    deploy(&server, &developer, "bot", "print('one')\nprint('two')\n", "first").await;
    deploy(
        &server,
        &developer,
        "bot",
        "print('one')\nprint('TWO')\nprint('three')\n",
        "second",
    )
    .await;

    let items = pending(&server, &developer).await;
    assert_eq!(items.len(), 1);
    let change = find(&items, "agent:bot");
    assert_eq!(
        (change["kind"].as_str(), change["change"].as_str()),
        (Some("AGENT"), Some("ADDED"))
    );
    let agent = &change["agent"];
    assert_eq!(agent["stagingCommit"]["number"], 2);
    assert_eq!(agent["productionCommit"], Value::Null);
    assert_eq!(
        agent["commits"],
        json!([{ "number": 2, "message": "second" }, { "number": 1, "message": "first" }])
    );
    let files = agent["files"].as_array().expect("files");
    assert_eq!(files.len(), 2, "both files are new to production");
    assert!(files.iter().all(|f| f["change"] == "ADDED"));

    // Developers cannot publish; publishers can.
    let forbidden = server
        .gql(
            Some(&developer),
            PUBLISH,
            json!({ "input": { "items": [item(change)] } }),
        )
        .await;
    assert_eq!(error_code(&forbidden), "FORBIDDEN");
    let staging_target = server
        .gql(
            Some(&publisher),
            &PUBLISH.replace("PRODUCTION", "STAGING"),
            json!({ "input": { "items": [item(change)] } }),
        )
        .await;
    assert_eq!(error_code(&staging_target), "BAD_USER_INPUT");
    let release = server
        .data(
            &publisher,
            PUBLISH,
            json!({ "input": { "items": [item(change)], "note": "launch" } }),
        )
        .await["publish"]["release"]
        .clone();
    assert_eq!(release["number"], 1);
    assert_eq!(release["kind"], "PUBLISH");
    assert_eq!(release["note"], "launch");
    assert_eq!(release["createdBy"], format!("publisher@{tenant}"));
    assert_eq!(release["items"][0]["key"], "agent:bot");
    assert_eq!(release["items"][0]["before"], Value::Null);
    assert_eq!(release["items"][0]["after"]["number"], 2);

    let production = server
        .data(&developer, r#"{ agent(environment: PRODUCTION, slug: "bot") { endpointUrl currentCommit { number } release { number kind } } }"#, json!({}))
        .await;
    assert_eq!(production["agent"]["currentCommit"]["number"], 2);
    assert_eq!(
        production["agent"]["endpointUrl"],
        format!("https://api.example.test/v1/{tenant}/production/agents/bot")
    );
    assert_eq!(
        production["agent"]["release"],
        json!({ "number": 1, "kind": "PUBLISH" })
    );
    assert!(pending(&server, &developer).await.is_empty(), "nothing left to publish");

    // A third deploy: MODIFIED, one commit ahead, a file diff with hunks.
    deploy(
        &server,
        &developer,
        "bot",
        "print('one')\nprint('TWO')\nprint('3')\n",
        "third",
    )
    .await;
    let items = pending(&server, &developer).await;
    let change = find(&items, "agent:bot");
    assert_eq!(change["change"], "MODIFIED");
    assert_eq!(change["agent"]["commits"], json!([{ "number": 3, "message": "third" }]));
    let files = change["agent"]["files"].as_array().expect("files");
    assert_eq!(files.len(), 1, "only main.py changed: {files:#?}");
    assert_eq!(files[0]["path"], "main.py");
    assert_eq!(files[0]["change"], "MODIFIED");
    assert!(
        files[0]["unifiedDiff"]
            .as_str()
            .unwrap_or("")
            .contains("-print('three')\n+print('3')"),
        "{:#}",
        files[0]
    );
    let lines = &files[0]["hunks"][0]["lines"];
    assert!(
        lines
            .as_array()
            .expect("lines")
            .iter()
            .any(|l| l["tag"] == "DELETE" && l["oldNumber"] == 3 && l["text"] == "print('three')")
    );

    // Removing it from staging shows REMOVED; publishing that deletes it from production.
    server
        .data(
            &developer,
            r#"mutation { deleteAgent(environment: STAGING, slug: "bot") { deletedId } }"#,
            json!({}),
        )
        .await;
    let items = pending(&server, &developer).await;
    let change = find(&items, "agent:bot");
    assert_eq!(change["change"], "REMOVED");
    server
        .data(&publisher, PUBLISH, json!({ "input": { "items": [item(change)] } }))
        .await;
    let gone = server
        .data(
            &developer,
            r#"{ agent(environment: PRODUCTION, slug: "bot") { slug } }"#,
            json!({}),
        )
        .await;
    assert_eq!(gone["agent"], Value::Null);
}

async fn prompts_connectors_and_triggers_publish(backend: Backend) {
    let server = Server::start(backend).await;
    let tenant = tenant();
    let (admin, developer, publisher) = (
        token(&tenant, "admin"),
        token(&tenant, "developer"),
        token(&tenant, "publisher"),
    );
    let save =
        "mutation($input: SavePromptDraftInput!) { savePromptDraft(environment: STAGING, input: $input) { revision } }";
    server.data(&developer, save, json!({ "input": { "slug": "greet", "template": "Hello {{name}}\nBye", "modelSettings": { "model": "a" } } })).await;
    server.data(&admin, r#"mutation { createCredential(environment: STAGING, input: {name: "crm-key", kind: "api-key", secret: "s3cr3t-s3cr3t"}) { name } }"#, json!({})).await;
    server.data(&developer, r#"mutation { createConnector(environment: STAGING, input: {slug: "crm", kind: "http", config: {url: "https://crm"}, credentials: ["crm-key"]}) { slug } }"#, json!({})).await;
    server.data(&developer, r#"mutation { createConnectorResource(environment: STAGING, input: {connector: "crm", key: "contacts", config: {path: "/c"}}) { key } }"#, json!({})).await;
    deploy_files(
        &server,
        &developer,
        "bot",
        json!([{ "path": "runflow.toml", "content": manifest_with_prompt("bot", "greet") }]),
        "m",
    )
    .await;
    server.data(&developer, r#"mutation { createTrigger(environment: STAGING, input: {name: "nightly", agent: "bot", kind: SCHEDULE, schedule: "0 3 * * *"}) { name } }"#, json!({})).await;

    let items = pending(&server, &developer).await;
    let ids: Vec<&str> = items.iter().filter_map(|i| i["key"].as_str()).collect();
    assert_eq!(ids, ["agent:bot", "prompt:greet", "connector:crm", "trigger:nightly"]);
    let prompt = &find(&items, "prompt:greet")["prompt"];
    assert_eq!(prompt["before"], Value::Null);
    assert_eq!(
        prompt["after"],
        json!({ "source": "DRAFT", "template": "Hello {{name}}\nBye" })
    );
    assert_eq!(prompt["variablesAdded"], json!(["name"]));
    let connector = &find(&items, "connector:crm")["connector"];
    assert_eq!(
        connector["resources"],
        json!([{ "key": "contacts", "change": "ADDED", "before": null, "after": { "path": "/c" } }])
    );
    assert_eq!(connector["credentialsAdded"], json!(["crm-key"]));

    // Everything at once, with the plan's fingerprint.
    assert_eq!(
        error_code(&server.gql(Some(&publisher), PLAN, json!({ "input": {} })).await),
        "BAD_USER_INPUT"
    );
    let without_fingerprint = server
        .gql(Some(&publisher), PUBLISH, json!({ "input": { "all": true } }))
        .await;
    assert_eq!(error_code(&without_fingerprint), "BAD_USER_INPUT");
    let plan = server
        .gql(
            Some(&publisher),
            PLAN,
            json!({ "input": { "all": true, "fingerprint": "x" } }),
        )
        .await;
    assert_eq!(error_code(&plan), "CONFLICT", "a stale fingerprint: {plan:#}");
    let all = server.data(&publisher, PLAN, json!({ "input": { "all": true } })).await;
    let by_items = server
        .data(
            &publisher,
            PLAN,
            json!({ "input": { "items": items.iter().map(item).collect::<Vec<_>>() } }),
        )
        .await;
    assert_eq!(all["publishPlan"]["items"], by_items["publishPlan"]["items"]);
    let fingerprint = all["publishPlan"]["fingerprint"]
        .as_str()
        .expect("fingerprint")
        .to_string();
    assert_eq!(all["publishPlan"]["canPublish"], true);
    assert!(
        all["publishPlan"]["dependencies"]
            .as_array()
            .expect("deps")
            .iter()
            .any(|d| d == &json!({ "item": "agent:bot", "requires": "prompt:greet", "status": "IN_THIS_PUBLISH" }))
    );
    let release = server
        .data(
            &publisher,
            PUBLISH,
            json!({ "input": { "all": true, "fingerprint": fingerprint } }),
        )
        .await;
    assert_eq!(release["publish"]["release"]["items"].as_array().map(Vec::len), Some(4));

    let production = server
        .data(
            &developer,
            r#"{
          prompt(environment: PRODUCTION, slug: "greet") { resolved { source version template } }
          staging: prompt(environment: STAGING, slug: "greet") { draft { template } resolved { source version } }
          connector(environment: PRODUCTION, slug: "crm") { environment config credentials resources { key config } }
          prod: triggers(environment: PRODUCTION) { nodes { id name environment agent { environment } } }
          stag: triggers(environment: STAGING) { nodes { id name environment } }
        }"#,
            json!({}),
        )
        .await;
    assert_eq!(
        production["prompt"]["resolved"],
        json!({ "source": "PUBLISHED", "version": 1, "template": "Hello {{name}}\nBye" })
    );
    assert_eq!(
        production["staging"],
        json!({ "draft": null, "resolved": { "source": "PUBLISHED", "version": 1 } }),
        "the draft was cleared"
    );
    assert_eq!(
        production["connector"]["resources"],
        json!([{ "key": "contacts", "config": { "path": "/c" } }])
    );
    assert_eq!(production["connector"]["credentials"], json!(["crm-key"]));
    assert_eq!(production["prod"]["nodes"][0]["environment"], "PRODUCTION");
    assert_eq!(production["prod"]["nodes"][0]["agent"]["environment"], "PRODUCTION");
    assert_eq!(production["stag"]["nodes"][0]["environment"], "STAGING");
    assert_ne!(
        production["prod"]["nodes"][0]["id"], production["stag"]["nodes"][0]["id"],
        "a separate production trigger"
    );
    assert!(pending(&server, &developer).await.is_empty());

    // A new draft shows a side-by-side diff with word highlights, and settings changes.
    server.data(&developer, save, json!({ "input": { "slug": "greet", "template": "Hello dear {{name}}\nBye", "modelSettings": { "model": "b" } } })).await;
    let items = pending(&server, &developer).await;
    let prompt = &find(&items, "prompt:greet")["prompt"];
    assert_eq!(prompt["before"]["version"], 1);
    assert_eq!(prompt["rows"][0]["tag"], "REPLACE");
    assert_eq!(prompt["rows"][0]["left"]["text"], "Hello {{name}}");
    assert_eq!(
        prompt["rows"][0]["right"]["highlights"],
        json!([{ "start": 6, "end": 11 }])
    );
    assert_eq!(prompt["rows"][1]["tag"], "EQUAL");
    assert_eq!(
        prompt["modelSettings"],
        json!([{ "key": "model", "change": "MODIFIED", "before": "a", "after": "b" }])
    );
    server
        .data(
            &publisher,
            PUBLISH,
            json!({ "input": { "items": [item(find(&items, "prompt:greet"))] } }),
        )
        .await;
    let resolved = server.data(&developer, r#"{ prompt(environment: PRODUCTION, slug: "greet") { resolved { version template } versions { nodes { version } } } }"#, json!({})).await;
    assert_eq!(
        resolved["prompt"]["resolved"],
        json!({ "version": 2, "template": "Hello dear {{name}}\nBye" })
    );
    assert_eq!(
        resolved["prompt"]["versions"]["nodes"],
        json!([{ "version": 2 }, { "version": 1 }])
    );
}

async fn stale_revisions_and_missing_dependencies_change_nothing(backend: Backend) {
    let server = Server::start(backend).await;
    let tenant = tenant();
    let (developer, publisher) = (token(&tenant, "developer"), token(&tenant, "publisher"));
    deploy_files(
        &server,
        &developer,
        "bot",
        json!([{ "path": "runflow.toml", "content": manifest_with_prompt("bot", "greet") }]),
        "m",
    )
    .await;
    server
        .data(
            &developer,
            r#"mutation { savePromptDraft(environment: STAGING, input: {slug: "greet", template: "Hi"}) { slug } }"#,
            json!({}),
        )
        .await;
    let items = pending(&server, &developer).await;
    let agent = find(&items, "agent:bot").clone();
    let prompt = find(&items, "prompt:greet").clone();

    // The agent alone: its prompt is neither in production nor in the publish.
    let plan = server
        .data(&publisher, PLAN, json!({ "input": { "items": [item(&agent)] } }))
        .await["publishPlan"]
        .clone();
    assert_eq!(plan["canPublish"], false);
    assert_eq!(
        plan["missing"],
        json!(["agent:bot needs prompt:greet, which is neither in production nor in this publish"])
    );
    let failed = server
        .gql(
            Some(&publisher),
            PUBLISH,
            json!({ "input": { "items": [item(&agent)] } }),
        )
        .await;
    assert_eq!(error_code(&failed), "BAD_USER_INPUT");
    assert!(error_message(&failed).contains("prompt:greet"), "{failed:#}");

    // Someone edits the draft after review: the whole publish is refused, naming the item.
    server
        .data(
            &developer,
            r#"mutation { savePromptDraft(environment: STAGING, input: {slug: "greet", template: "Hi!"}) { slug } }"#,
            json!({}),
        )
        .await;
    let stale = server
        .gql(
            Some(&publisher),
            PUBLISH,
            json!({ "input": { "items": [item(&agent), item(&prompt)] } }),
        )
        .await;
    assert_eq!(error_code(&stale), "CONFLICT");
    assert!(
        error_message(&stale).contains("prompt:greet") && !error_message(&stale).contains("agent:bot"),
        "{stale:#}"
    );
    let nothing = server.data(&developer, r#"{ agents(environment: PRODUCTION) { nodes { slug } } prompts(environment: PRODUCTION) { nodes { slug } } releases(environment: PRODUCTION) { edges { cursor } } }"#, json!({})).await;
    assert_eq!(
        nothing,
        json!({ "agents": { "nodes": [] }, "prompts": { "nodes": [] }, "releases": { "edges": [] } }),
        "nothing was published"
    );

    // Bad ids and shapes.
    for (input, code) in [
        (
            json!({ "items": [{ "key": "robot:x", "fingerprint": "1" }] }),
            "BAD_USER_INPUT",
        ),
        (json!({ "items": [{ "key": "agent:bot" }] }), "BAD_USER_INPUT"),
        (
            json!({ "items": [{ "key": "agent:ghost", "fingerprint": "1" }] }),
            "NOT_FOUND",
        ),
        (json!({ "items": [item(&agent)], "all": true }), "BAD_USER_INPUT"),
        (json!({ "all": true }), "BAD_USER_INPUT"),
    ] {
        let response = server.gql(Some(&publisher), PUBLISH, json!({ "input": input })).await;
        assert_eq!(error_code(&response), code, "{input}: {response:#}");
    }
}

async fn concurrent_and_retried_publishes(backend: Backend) {
    let server = std::sync::Arc::new(Server::start(backend).await);
    let tenant = tenant();
    let (developer, publisher) = (token(&tenant, "developer"), token(&tenant, "publisher"));
    deploy(&server, &developer, "bot", "print(1)\n", "m").await;
    let items = pending(&server, &developer).await;
    let input = json!({ "input": { "items": [item(find(&items, "agent:bot"))] } });
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let (server, publisher, input) = (server.clone(), publisher.clone(), input.clone());
        tasks.push(tokio::spawn(async move {
            server.gql(Some(&publisher), PUBLISH, input).await
        }));
    }
    let mut codes = Vec::new();
    for task in tasks {
        let response = task.await.expect("task");
        codes.push(if response.get("errors").is_some() {
            error_code(&response)
        } else {
            "OK".to_string()
        });
    }
    assert_eq!(
        codes.iter().filter(|c| *c == "OK").count(),
        1,
        "exactly one publish wins: {codes:?}"
    );
    assert!(codes.iter().all(|c| c == "OK" || c == "CONFLICT"), "{codes:?}");
    let releases = server
        .data(
            &developer,
            "{ releases(environment: PRODUCTION) { edges { node { number } } } }",
            json!({}),
        )
        .await;
    assert_eq!(releases["releases"]["edges"], json!([{ "node": { "number": 1 } }]));

    // Idempotent retries: by input field and by header.
    deploy(&server, &developer, "bot", "print(2)\n", "m2").await;
    let items = pending(&server, &developer).await;
    let retry = json!({ "input": { "items": [item(find(&items, "agent:bot"))], "idempotencyKey": "deploy-42" } });
    let first = server.data(&publisher, PUBLISH, retry.clone()).await;
    let second = server.data(&publisher, PUBLISH, retry).await;
    assert_eq!(
        first["publish"]["release"]["id"], second["publish"]["release"]["id"],
        "a retry returns the first result"
    );
    deploy(&server, &developer, "bot", "print(3)\n", "m3").await;
    let items = pending(&server, &developer).await;
    let body = json!({ "query": PUBLISH, "variables": { "input": { "items": [item(find(&items, "agent:bot"))] } } });
    let mut ids = Vec::new();
    for _ in 0..2 {
        let response: Value = server
            .http()
            .post(format!("{}/graphql", server.url))
            .bearer_auth(&publisher)
            .header("idempotency-key", "header-key-1")
            .json(&body)
            .fetch_json()
            .await;
        ids.push(response["data"]["publish"]["release"]["id"].clone());
    }
    assert_eq!(ids[0], ids[1]);
    let count = server
        .data(
            &developer,
            "{ releases(environment: PRODUCTION) { edges { node { number } } } }",
            json!({}),
        )
        .await;
    assert_eq!(count["releases"]["edges"].as_array().map(Vec::len), Some(3));
}

async fn rollbacks_restore_the_state_before_a_release(backend: Backend) {
    let server = Server::start(backend).await;
    let tenant = tenant();
    let (developer, publisher) = (token(&tenant, "developer"), token(&tenant, "publisher"));
    let save = "mutation($t: String!) { savePromptDraft(environment: STAGING, input: {slug: \"greet\", template: $t}) { slug } }";
    // Version `n` of the agent and the prompt, published item by item.
    let release_version = |n: u32| {
        let (server, developer, publisher) = (&server, &developer, &publisher);
        async move {
            deploy(server, developer, "bot", &format!("print({n})\n"), &format!("v{n}")).await;
            server.data(developer, save, json!({ "t": format!("v{n}") })).await;
            let items = pending(server, developer).await;
            server
                .data(
                    publisher,
                    PUBLISH,
                    json!({ "input": { "items": items.iter().map(item).collect::<Vec<_>>() } }),
                )
                .await["publish"]["release"]
                .clone()
        }
    };
    let r1 = release_version(1).await;
    let r2 = release_version(2).await;
    let state = r#"{ agent(environment: PRODUCTION, slug: "bot") { currentCommit { number } release { number kind rollsBack { number } } }
                     prompt(environment: PRODUCTION, slug: "greet") { resolved { version template } } }"#;
    let before = server.data(&developer, state, json!({})).await;
    assert_eq!(before["agent"]["currentCommit"]["number"], 2);
    assert_eq!(before["prompt"]["resolved"]["version"], 2);

    // Partial rollback of release 2: only the prompt.
    let partial = server
        .data(
            &publisher,
            PUBLISH,
            json!({ "input": { "rollbackTo": r2["id"], "items": [{ "key": "prompt:greet" }], "note": "bad prompt" } }),
        )
        .await["publish"]["release"]
        .clone();
    assert_eq!(partial["kind"], "ROLLBACK");
    assert_eq!(partial["rollsBack"]["number"], 2);
    assert_eq!(partial["items"].as_array().map(Vec::len), Some(1));
    let after = server.data(&developer, state, json!({})).await;
    assert_eq!(after["prompt"]["resolved"], json!({ "version": 1, "template": "v1" }));
    assert_eq!(
        after["agent"]["currentCommit"]["number"], 2,
        "the agent was not part of the partial rollback"
    );

    // Full rollback of release 2: the agent goes back too, without a new commit.
    let full = server
        .data(&publisher, PUBLISH, json!({ "input": { "rollbackTo": r2["id"] } }))
        .await["publish"]["release"]
        .clone();
    assert_eq!(full["kind"], "ROLLBACK");
    let after = server.data(&developer, state, json!({})).await;
    assert_eq!(after["agent"]["currentCommit"]["number"], 1);
    assert_eq!(
        after["agent"]["release"]["kind"], "ROLLBACK",
        "the live state says it is a rollback"
    );
    assert_eq!(after["agent"]["release"]["rollsBack"]["number"], 2);
    let nothing_left = server
        .gql(
            Some(&publisher),
            PUBLISH,
            json!({ "input": { "rollbackTo": r2["id"] } }),
        )
        .await;
    assert_eq!(error_code(&nothing_left), "BAD_USER_INPUT");
    // Rolling back the first release empties production.
    server
        .data(&publisher, PUBLISH, json!({ "input": { "rollbackTo": r1["id"] } }))
        .await;
    let empty = server
        .data(
            &developer,
            "{ agents(environment: PRODUCTION) { nodes { slug } } prompts(environment: PRODUCTION) { nodes { slug } } }",
            json!({}),
        )
        .await;
    assert_eq!(empty, json!({ "agents": { "nodes": [] }, "prompts": { "nodes": [] } }));
    // History: newest first, each with its items.
    let history = server
        .data(
            &developer,
            "{ releases(environment: PRODUCTION) { edges { node { number kind items { id key change } } } } }",
            json!({}),
        )
        .await;
    let numbers: Vec<i64> = history["releases"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"]["number"].as_i64().unwrap_or(0))
        .collect();
    assert_eq!(numbers, [5, 4, 3, 2, 1]);
    let one = server
        .data(
            &developer,
            "query($id: ID!) { release(environment: PRODUCTION, id: $id) { number items { id } } }",
            json!({ "id": r1["id"] }),
        )
        .await;
    assert_eq!(one["release"]["number"], 1);
}

async fn other_tenants_see_no_releases(backend: Backend) {
    let server = Server::start(backend).await;
    let (a, b) = (tenant(), tenant());
    deploy(&server, &token(&a, "developer"), "bot", "print(1)\n", "m").await;
    let items = pending(&server, &token(&a, "developer")).await;
    let release = server
        .data(
            &token(&a, "publisher"),
            PUBLISH,
            json!({ "input": { "items": [item(&items[0])] } }),
        )
        .await["publish"]["release"]
        .clone();
    assert!(pending(&server, &token(&b, "admin")).await.is_empty());
    let seen = server
        .data(&token(&b, "admin"), "query($id: ID!) { release(environment: PRODUCTION, id: $id) { id } releases(environment: PRODUCTION) { edges { cursor } } }", json!({ "id": release["id"] }))
        .await;
    assert_eq!(seen, json!({ "release": null, "releases": { "edges": [] } }));
    let rollback = server
        .gql(
            Some(&token(&b, "admin")),
            PUBLISH,
            json!({ "input": { "rollbackTo": release["id"] } }),
        )
        .await;
    assert_eq!(error_code(&rollback), "NOT_FOUND");
    let steal = server
        .gql(
            Some(&token(&b, "admin")),
            PUBLISH,
            json!({ "input": { "items": [item(&items[0])] } }),
        )
        .await;
    assert_eq!(error_code(&steal), "NOT_FOUND");
}

on_both_backends!(
    publishing_agent_code_moves_production,
    prompts_connectors_and_triggers_publish,
    stale_revisions_and_missing_dependencies_change_nothing,
    concurrent_and_retried_publishes,
    rollbacks_restore_the_state_before_a_release,
    other_tenants_see_no_releases,
);
