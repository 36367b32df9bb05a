//! Concurrency: every optimistic-concurrency rule holds with many writers at once, on SQLite
//! and on PostgreSQL (READ COMMITTED): one winner per revision, revisions that move by one per
//! write, executions that finish once, publishes that never clear a draft they did not see,
//! and idempotency keys that give one publish.

use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, Fetch, Server, deploy, error_code, error_message, tenant, token};

/// Writers per race.
const N: usize = 12;

/// Sends `N` requests at once; returns the successes (writer index, data) and the error codes.
async fn race(
    server: &Server,
    token: &str,
    query: &str,
    variables: impl Fn(usize) -> Value,
) -> (Vec<(usize, Value)>, Vec<String>) {
    let responses = futures_util::future::join_all((0..N).map(|i| server.gql(Some(token), query, variables(i)))).await;
    let mut wins = Vec::new();
    let mut codes = Vec::new();
    for (i, response) in responses.into_iter().enumerate() {
        if response.get("errors").is_some() {
            codes.push(error_code(&response));
        } else {
            wins.push((i, response["data"].clone()));
        }
    }
    (wins, codes)
}

fn int(value: &Value, pointer: &str) -> i64 {
    value
        .pointer(pointer)
        .and_then(Value::as_i64)
        .unwrap_or_else(|| panic!("no integer at {pointer} in {value:#}"))
}

/// One editable record kind: the mutation that edits it (with `$rev` and a per-writer
/// marker), and where a read finds its revision and the marker.
struct Kind {
    label: &'static str,
    mutation: &'static str,
    variables: fn(usize, i64) -> Value,
    read: &'static str,
    revision: &'static str,
    marker: &'static str,
    expected_marker: fn(usize) -> Value,
}

fn marker(i: usize) -> Value {
    json!(format!("writer-{i}"))
}

fn kinds() -> Vec<Kind> {
    vec![
        Kind {
            label: "agent metadata (updateAgent)",
            mutation: "mutation($i: UpdateAgentMetadataInput!) { updateAgent(environment: STAGING, input: $i) { revision } }",
            variables: |i, rev| json!({ "i": { "slug": "bot", "name": marker(i), "expectedRevision": rev } }),
            read: r#"{ agent(environment: STAGING, slug: "bot") { revision name } }"#,
            revision: "/agent/revision",
            marker: "/agent/name",
            expected_marker: marker,
        },
        Kind {
            label: "prompt draft (savePromptDraft)",
            mutation: "mutation($i: SavePromptDraftInput!) { savePromptDraft(environment: STAGING, input: $i) { revision } }",
            variables: |i, rev| json!({ "i": { "slug": "greet", "template": marker(i), "expectedRevision": rev } }),
            read: r#"{ prompt(environment: STAGING, slug: "greet") { revision draft { template } } }"#,
            revision: "/prompt/revision",
            marker: "/prompt/draft/template",
            expected_marker: marker,
        },
        Kind {
            label: "connector (updateConnector)",
            mutation: "mutation($i: UpdateConnectorInput!) { updateConnector(environment: STAGING, input: $i) { revision } }",
            variables: |i, rev| json!({ "i": { "slug": "crm", "config": { "m": marker(i) }, "expectedRevision": rev } }),
            read: r#"{ connector(environment: STAGING, slug: "crm") { revision config } }"#,
            revision: "/connector/revision",
            marker: "/connector/config/m",
            expected_marker: marker,
        },
        Kind {
            label: "connector resource (updateConnectorResource)",
            mutation: "mutation($i: ConnectorResourceInput!) { updateConnectorResource(environment: STAGING, input: $i) { revision } }",
            variables: |i, rev| json!({ "i": { "connector": "crm", "key": "accounts", "config": { "m": marker(i) }, "expectedRevision": rev } }),
            read: r#"{ connector(environment: STAGING, slug: "crm") { resources { revision config } } }"#,
            revision: "/connector/resources/0/revision",
            marker: "/connector/resources/0/config/m",
            expected_marker: marker,
        },
        Kind {
            label: "trigger (updateTrigger)",
            mutation: "mutation($i: UpdateTriggerInput!) { updateTrigger(environment: STAGING, input: $i) { revision } }",
            variables: |i, rev| json!({ "i": { "name": "nightly", "config": { "m": marker(i) }, "expectedRevision": rev } }),
            read: r#"{ trigger(environment: STAGING, name: "nightly") { revision config } }"#,
            revision: "/trigger/revision",
            marker: "/trigger/config/m",
            expected_marker: marker,
        },
        Kind {
            label: "credential (rotateCredential)",
            mutation: "mutation($i: RotateCredentialInput!) { rotateCredential(environment: STAGING, input: $i) { revision } }",
            variables: |i, rev| json!({ "i": { "name": "api-key", "secret": format!("secret-value-{i:04}"), "expectedRevision": rev } }),
            read: "{ credentials(environment: STAGING) { nodes { revision hint } } }",
            revision: "/credentials/nodes/0/revision",
            marker: "/credentials/nodes/0/hint",
            expected_marker: |i| json!(format!("••••{i:04}")),
        },
        Kind {
            label: "knowledge base (updateKnowledgeBase)",
            mutation: "mutation($i: UpdateSharedResourceInput!) { updateKnowledgeBase(environment: STAGING, input: $i) { revision } }",
            variables: |i, rev| json!({ "i": { "name": "kb", "config": { "m": marker(i) }, "expectedRevision": rev } }),
            read: "{ knowledgeBases(environment: STAGING) { nodes { revision config } } }",
            revision: "/knowledgeBases/nodes/0/revision",
            marker: "/knowledgeBases/nodes/0/config/m",
            expected_marker: marker,
        },
        Kind {
            label: "LLM provider (updateLlmProvider)",
            mutation: "mutation($i: UpdateSharedResourceInput!) { updateLlmProvider(environment: STAGING, input: $i) { revision } }",
            variables: |i, rev| json!({ "i": { "name": "llm", "config": { "m": marker(i) }, "expectedRevision": rev } }),
            read: "{ llmProviders(environment: STAGING) { nodes { revision config } } }",
            revision: "/llmProviders/nodes/0/revision",
            marker: "/llmProviders/nodes/0/config/m",
            expected_marker: marker,
        },
        Kind {
            label: "data source (updateDataSource)",
            mutation: "mutation($i: UpdateSharedResourceInput!) { updateDataSource(environment: STAGING, input: $i) { revision } }",
            variables: |i, rev| json!({ "i": { "name": "ds", "config": { "m": marker(i) }, "expectedRevision": rev } }),
            read: "{ dataSources(environment: STAGING) { nodes { revision config } } }",
            revision: "/dataSources/nodes/0/revision",
            marker: "/dataSources/nodes/0/config/m",
            expected_marker: marker,
        },
    ]
}

/// One of each editable record kind, in staging.
async fn seed(server: &Server, admin: &str) {
    deploy(server, admin, "bot", "print('hi')\n", "first").await;
    for (query, variables) in [
        (
            "mutation($i: SavePromptDraftInput!) { savePromptDraft(environment: STAGING, input: $i) { revision } }",
            json!({ "i": { "slug": "greet", "template": "Hello" } }),
        ),
        (
            "mutation($i: CreateConnectorInput!) { createConnector(environment: STAGING, input: $i) { revision } }",
            json!({ "i": { "slug": "crm", "kind": "http" } }),
        ),
        (
            "mutation($i: ConnectorResourceInput!) { createConnectorResource(environment: STAGING, input: $i) { revision } }",
            json!({ "i": { "connector": "crm", "key": "accounts", "config": {} } }),
        ),
        (
            "mutation($i: CreateTriggerInput!) { createTrigger(environment: STAGING, input: $i) { revision } }",
            json!({ "i": { "name": "nightly", "agent": "bot", "kind": "SCHEDULE", "schedule": "0 3 * * *" } }),
        ),
        (
            "mutation($i: CreateCredentialInput!) { createCredential(environment: STAGING, input: $i) { revision } }",
            json!({ "i": { "name": "api-key", "kind": "api-key", "secret": "secret-value-first" } }),
        ),
        (
            "mutation($i: CreateSharedResourceInput!) { createKnowledgeBase(environment: STAGING, input: $i) { revision } }",
            json!({ "i": { "name": "kb", "kind": "vector" } }),
        ),
        (
            "mutation($i: CreateSharedResourceInput!) { createLlmProvider(environment: STAGING, input: $i) { revision } }",
            json!({ "i": { "name": "llm", "kind": "openai" } }),
        ),
        (
            "mutation($i: CreateSharedResourceInput!) { createDataSource(environment: STAGING, input: $i) { revision } }",
            json!({ "i": { "name": "ds", "kind": "postgres" } }),
        ),
    ] {
        server.data(admin, query, variables).await;
    }
}

/// For every editable kind: N writers quoting one revision, exactly one wins, the others get
/// CONFLICT, the revision moves by exactly one and the winner's value is what is stored.
async fn one_writer_wins_per_revision_for_every_kind(backend: Backend) {
    let server = Server::start(backend).await;
    let admin = token(&tenant(), "admin");
    seed(&server, &admin).await;
    for kind in kinds() {
        let before = server.data(&admin, kind.read, json!({})).await;
        let revision = int(&before, kind.revision);
        let (wins, codes) = race(&server, &admin, kind.mutation, |i| (kind.variables)(i, revision)).await;
        assert_eq!(
            wins.len(),
            1,
            "{}: exactly one of {N} writers with revision {revision} wins; the others got {codes:?}",
            kind.label
        );
        assert!(
            codes.iter().all(|code| code == "CONFLICT"),
            "{}: the losers get CONFLICT, got {codes:?}",
            kind.label
        );
        let after = server.data(&admin, kind.read, json!({})).await;
        assert_eq!(int(&after, kind.revision), revision + 1, "{}: revision +1", kind.label);
        assert_eq!(
            after.pointer(kind.marker),
            Some(&(kind.expected_marker)(wins[0].0)),
            "{}: the winner's value is stored: {after:#}",
            kind.label
        );
    }
}

/// Writers that quote no revision are serialised: all succeed and none of their increments
/// is lost (a read-then-write without a lock would let two write the same revision).
async fn writers_without_a_revision_lose_no_increment(backend: Backend) {
    let server = Server::start(backend).await;
    let admin = token(&tenant(), "admin");
    seed(&server, &admin).await;
    for kind in kinds() {
        let before = server.data(&admin, kind.read, json!({})).await;
        let revision = int(&before, kind.revision);
        let (wins, codes) = race(&server, &admin, kind.mutation, |i| {
            let mut variables = (kind.variables)(i, revision);
            variables["i"]
                .as_object_mut()
                .expect("input")
                .remove("expectedRevision");
            variables
        })
        .await;
        assert_eq!(
            wins.len(),
            N,
            "{}: every writer succeeds, errors: {codes:?}",
            kind.label
        );
        let after = server.data(&admin, kind.read, json!({})).await;
        assert_eq!(
            int(&after, kind.revision),
            revision + N as i64,
            "{}: the revision moves once per write",
            kind.label
        );
    }
}

/// Memory entries (written by runtimes, no `expectedRevision`): N concurrent writes of one
/// key all succeed and move its revision N times.
async fn concurrent_memory_writes_lose_no_increment(backend: Backend) {
    let server = Server::start(backend).await;
    let runtime = crate::support::runtime_token(&tenant(), "staging");
    let (status, _) = server
        .runtime(
            &runtime,
            reqwest::Method::PUT,
            "/memory/bot/k",
            Some(json!({ "value": 0 })),
        )
        .await;
    assert_eq!(status, 200);
    let writes = futures_util::future::join_all((0..N).map(|i| {
        server.runtime(
            &runtime,
            reqwest::Method::PUT,
            "/memory/bot/k",
            Some(json!({ "value": i })),
        )
    }))
    .await;
    assert!(writes.iter().all(|(status, _)| *status == 200), "{writes:?}");
    let (_, entry) = server
        .runtime(&runtime, reqwest::Method::GET, "/memory/bot/k", None)
        .await;
    assert_eq!(entry["revision"], 1 + N as i64, "{entry:#}");
}

/// Deletes quoting one revision: exactly one deletes, the others see it gone or changed.
async fn one_delete_wins(backend: Backend) {
    let server = Server::start(backend).await;
    let admin = token(&tenant(), "admin");
    seed(&server, &admin).await;
    for (label, query, variables) in [
        (
            "trigger",
            "mutation($r: Int) { deleteTrigger(environment: STAGING, name: \"nightly\", expectedRevision: $r) { deletedId } }",
            json!({ "r": 1 }),
        ),
        (
            "connector resource",
            "mutation($r: Int) { deleteConnectorResource(environment: STAGING, connector: \"crm\", key: \"accounts\", expectedRevision: $r) { deletedId } }",
            json!({ "r": 1 }),
        ),
        (
            "prompt",
            "mutation($r: Int) { deletePrompt(environment: STAGING, slug: \"greet\", expectedRevision: $r) { deletedId } }",
            json!({ "r": 1 }),
        ),
    ] {
        let (wins, codes) = race(&server, &admin, query, |_| variables.clone()).await;
        assert_eq!(wins.len(), 1, "{label}: one delete wins, the others got {codes:?}");
        assert!(
            codes.iter().all(|code| code == "CONFLICT" || code == "NOT_FOUND"),
            "{label}: {codes:?}"
        );
    }
}

/// An execution finishes once: of N concurrent finishes one succeeds, the rest are CONFLICT,
/// and the log holds exactly one `finished` event for it.
async fn an_execution_finishes_once(backend: Backend) {
    use runflow::domain::executions::{self, ExecutionStatus};
    let app = crate::support::InProcess::start(backend).await;
    let tenant = tenant();
    let staging = crate::support::scope(&tenant, entity::Environment::Staging);
    let limits = runflow::domain::agents::BundleLimits {
        max_bundle_bytes: 1 << 20,
        max_file_bytes: 1 << 20,
        max_files: 10,
    };
    let input = runflow::domain::agents::DeployInput {
        slug: "bot".into(),
        files: vec![runflow::domain::agents::BundleFile {
            path: "runflow.toml".into(),
            content: crate::support::manifest("bot"),
        }],
        message: "m".into(),
    };
    runflow::domain::agents::deploy(
        app.db(),
        &staging.editable().expect("staging"),
        "t",
        &limits,
        Default::default(),
        input,
    )
    .await
    .expect("deploy");
    let execution = app.start_execution(&staging, crate::support::start_of("bot")).await;
    let tasks: Vec<_> = (0..N)
        .map(|i| {
            let db = app.db().clone();
            let scope = staging.clone();
            tokio::spawn(async move {
                executions::finish(
                    &db,
                    &scope,
                    execution.id,
                    ExecutionStatus::Succeeded,
                    Some(json!({ "writer": i })),
                    None,
                )
                .await
            })
        })
        .collect();
    let mut wins = 0;
    for task in tasks {
        match task.await.expect("task") {
            Ok(row) => {
                wins += 1;
                assert_eq!(row.status.as_str(), "SUCCEEDED");
            }
            Err(error) => assert_eq!(error.code(), "CONFLICT", "{error}"),
        }
    }
    assert_eq!(wins, 1, "exactly one finish wins");
    let events = runflow::domain::events::after(app.db(), &tenant, 0, 1000)
        .await
        .expect("events");
    let finished = events
        .iter()
        .filter(|e| e.execution_id == Some(execution.id) && e.kind == "finished")
        .count();
    assert_eq!(finished, 1, "one `finished` event: {events:#?}");
}

const PUBLISH: &str =
    "mutation($i: PublishInput!) { publish(environment: PRODUCTION, input: $i) { release { id number } } }";
const PLAN: &str = "query($i: PublishInput!) { publishPlan(environment: PRODUCTION, input: $i) { fingerprint } }";
const DRAFT: &str =
    "mutation($i: SavePromptDraftInput!) { savePromptDraft(environment: STAGING, input: $i) { revision } }";

/// A publish racing a draft edit never loses the draft: the edit saved while the publish runs
/// is either still the staging draft afterwards (the publish published the draft it planned,
/// or failed with CONFLICT naming the prompt), never cleared unpublished.
async fn a_publish_never_clears_a_draft_it_did_not_publish(backend: Backend) {
    let server = Server::start(backend).await;
    let admin = token(&tenant(), "admin");
    for round in 0..8 {
        let planned = format!("planned {round}");
        let edited = format!("edited while publishing {round}");
        server
            .data(&admin, DRAFT, json!({ "i": { "slug": "greet", "template": planned } }))
            .await;
        let plan = server.data(&admin, PLAN, json!({ "i": { "all": true } })).await;
        let fingerprint = plan["publishPlan"]["fingerprint"].clone();
        let (publish, edit) = tokio::join!(
            server.gql(
                Some(&admin),
                PUBLISH,
                json!({ "i": { "all": true, "fingerprint": fingerprint } })
            ),
            server.gql(
                Some(&admin),
                DRAFT,
                json!({ "i": { "slug": "greet", "template": edited } })
            ),
        );
        assert!(edit.get("errors").is_none(), "the edit quoted no revision: {edit:#}");
        if publish.get("errors").is_some() {
            assert_eq!(error_code(&publish), "CONFLICT", "{publish:#}");
        }
        let prompt = server
            .data(
                &admin,
                r#"{ prompt(environment: STAGING, slug: "greet") { draft { template } } }"#,
                json!({}),
            )
            .await;
        assert_eq!(
            prompt["prompt"]["draft"]["template"], edited,
            "round {round}: the draft saved during the publish is kept"
        );
        let production = server
            .data(
                &admin,
                r#"{ prompt(environment: PRODUCTION, slug: "greet") { resolved { template } } }"#,
                json!({}),
            )
            .await;
        if let Some(template) = production["prompt"]["resolved"]["template"].as_str() {
            assert!(
                template.starts_with("planned "),
                "only planned drafts are published: {template}"
            );
        }
    }
}

/// Idempotency keys: a retry returns the first release; the same key with another body is
/// refused with 422 / IDEMPOTENCY_KEY_REUSED naming the key; a request that failed is not
/// remembered; N concurrent requests with one key make one release.
async fn idempotency_keys_give_one_publish(backend: Backend) {
    let server = Server::start(backend).await;
    let admin = token(&tenant(), "admin");
    server
        .data(&admin, DRAFT, json!({ "i": { "slug": "greet", "template": "v1" } }))
        .await;
    let fingerprint =
        server.data(&admin, PLAN, json!({ "i": { "all": true } })).await["publishPlan"]["fingerprint"].clone();

    // A request that fails (stale fingerprint) does not use up its key.
    let failed = server
        .gql(
            Some(&admin),
            PUBLISH,
            json!({ "i": { "all": true, "fingerprint": "stale", "idempotencyKey": "key-1" } }),
        )
        .await;
    assert_eq!(error_code(&failed), "CONFLICT", "{failed:#}");

    // N concurrent requests with one key: one release, every caller gets it.
    let request = json!({ "i": { "all": true, "fingerprint": fingerprint, "idempotencyKey": "key-1", "note": "n" } });
    let (wins, codes) = race(&server, &admin, PUBLISH, |_| request.clone()).await;
    assert_eq!(
        wins.len(),
        N,
        "all succeed (the later ones replay the first): {codes:?}"
    );
    let ids: std::collections::HashSet<String> = wins
        .iter()
        .map(|(_, data)| data["publish"]["release"]["id"].as_str().expect("id").to_string())
        .collect();
    assert_eq!(ids.len(), 1, "one release for one key: {wins:?}");
    let releases = server
        .data(
            &admin,
            "{ releases(environment: PRODUCTION) { nodes { number } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        releases["releases"]["nodes"].as_array().map(Vec::len),
        Some(1),
        "{releases:#}"
    );

    // One `published` event for that one publish: replay production's release events up to
    // those of a later publish, and count.
    server
        .data(&admin, DRAFT, json!({ "i": { "slug": "greet", "template": "v2" } }))
        .await;
    let fingerprint_2 =
        server.data(&admin, PLAN, json!({ "i": { "all": true } })).await["publishPlan"]["fingerprint"].clone();
    let second = server
        .data(
            &admin,
            PUBLISH,
            json!({ "i": { "all": true, "fingerprint": fingerprint_2 } }),
        )
        .await;
    let mut ws = server
        .subscribed(
            &admin,
            "1",
            "subscription { releaseEvents(environment: PRODUCTION, after: \"0\") { release { number } } }",
            json!({}),
        )
        .await;
    let mut numbers = Vec::new();
    loop {
        let message = ws.json().await;
        let number = message["payload"]["data"]["releaseEvents"]["release"]["number"].clone();
        numbers.push(number.clone());
        if number == second["publish"]["release"]["number"] {
            break;
        }
    }
    assert_eq!(numbers, vec![json!(1), json!(2)], "one event per publish in production");

    // The same key with a different body: 422 over HTTP, IDEMPOTENCY_KEY_REUSED in GraphQL.
    let other = json!({ "query": PUBLISH, "variables": { "i": { "all": true, "fingerprint": fingerprint, "idempotencyKey": "key-1", "note": "another note" } } });
    let response = server
        .http()
        .post(format!("{}/graphql", server.url))
        .bearer_auth(&admin)
        .json(&other)
        .fetch()
        .await;
    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.expect("json");
    assert_eq!(error_code(&body), "IDEMPOTENCY_KEY_REUSED", "{body:#}");
    assert!(error_message(&body).contains("\"key-1\""), "names the key: {body:#}");

    // Publishing later with a key, raced the same way: one scheduled release, every caller
    // gets it (the tenant's publish lock and the unique key, checked atomically).
    server
        .data(&admin, DRAFT, json!({ "i": { "slug": "greet", "template": "v3" } }))
        .await;
    let fingerprint_3 =
        server.data(&admin, PLAN, json!({ "i": { "all": true } })).await["publishPlan"]["fingerprint"].clone();
    let at = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let later = json!({ "i": { "all": true, "fingerprint": fingerprint_3, "idempotencyKey": "key-2", "at": at } });
    let schedule =
        "mutation($i: PublishInput!) { publish(environment: PRODUCTION, input: $i) { scheduledRelease { id } } }";
    let (wins, codes) = race(&server, &admin, schedule, |_| later.clone()).await;
    assert_eq!(
        wins.len(),
        N,
        "all succeed (the later ones replay the first): {codes:?}"
    );
    let ids: std::collections::HashSet<String> = wins
        .iter()
        .map(|(_, data)| {
            data["publish"]["scheduledRelease"]["id"]
                .as_str()
                .expect("id")
                .to_string()
        })
        .collect();
    assert_eq!(ids.len(), 1, "one scheduled release for one key: {wins:?}");
    let scheduled = server
        .data(
            &admin,
            "{ scheduledReleases(environment: STAGING) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(scheduled["scheduledReleases"]["totalCount"], 1, "{scheduled:#}");
}

on_both_backends!(
    one_writer_wins_per_revision_for_every_kind,
    writers_without_a_revision_lose_no_increment,
    concurrent_memory_writes_lose_no_increment,
    one_delete_wins,
    an_execution_finishes_once,
    a_publish_never_clears_a_draft_it_did_not_publish,
    idempotency_keys_give_one_publish,
);
