//! Executions, sessions, traces and memory are per environment and never mix. They are seeded
//! here through the domain layer (what the runtime API calls), then read over GraphQL.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use entity::Environment;
use runflow::auth::Role;
use runflow::domain::agents::{BundleFile, BundleLimits, DeployInput};
use runflow::domain::executions::{ExecutionStatus, StartExecution};
use runflow::domain::traces::{Attributes, SpanInput, TraceInput};
use runflow::domain::{agents, executions, memory, releases, sessions, traces};
use runflow::scope::Scope;
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, InProcess, error_code, gid, manifest, tenant};

const LIMITS: BundleLimits = BundleLimits {
    max_bundle_bytes: 1 << 20,
    max_file_bytes: 1 << 20,
    max_files: 100,
};

/// Deploys `slug` to staging and publishes it, so production runs the same commit.
async fn seed_agent(app: &InProcess, tenant: &str, slug: &str) {
    let staging = crate::support::scope(tenant, Environment::Staging)
        .editable()
        .expect("staging");
    let files = vec![BundleFile {
        path: "runflow.toml".into(),
        content: manifest(slug),
    }];
    agents::deploy(
        app.db(),
        &staging,
        "seed",
        &LIMITS,
        Default::default(),
        DeployInput {
            slug: slug.into(),
            files,
            message: "m".into(),
        },
    )
    .await
    .expect("deploy");
    // Production is written only by publishing.
    let item = format!("agent:{slug}");
    let pending = releases::pending_changes(&app.db().conn, staging.tenant())
        .await
        .expect("pending");
    let revision = pending
        .iter()
        .find(|change| change.item.to_string() == item)
        .map(|change| change.revision.clone());
    let request = releases::PublishRequest {
        items: vec![(item, revision)],
        ..Default::default()
    };
    releases::publish(
        app.db(),
        staging.tenant(),
        "seed",
        runflow::auth::Role::Publisher,
        request,
    )
    .await
    .expect("publish");
}

fn span(name: &str, kind: &str) -> SpanInput {
    let now = chrono::Utc::now();
    SpanInput {
        id: None,
        parent_span_id: None,
        name: name.into(),
        kind: kind.into(),
        status: "OK".into(),
        started_at: now,
        ended_at: Some(now),
        attributes: Attributes::from_value(&json!({ "model": "x" })).expect("attributes"),
        input_tokens: Some(10),
        output_tokens: Some(5),
    }
}

/// Records the trace `name` of an execution with `spans`: status OK, started now, still open.
async fn record_trace(app: &InProcess, scope: &Scope, execution_id: uuid::Uuid, name: String, spans: Vec<SpanInput>) {
    let input = TraceInput {
        id: None,
        execution_id: Some(execution_id),
        name,
        status: "OK".into(),
        started_at: chrono::Utc::now(),
        ended_at: None,
        spans,
    };
    traces::record(app.db(), scope, input).await.expect("trace");
}

async fn seed_run(app: &InProcess, scope: &Scope, agent: &str, spans: usize) -> Value {
    let execution = app
        .start_execution(
            scope,
            StartExecution {
                input: json!({ "q": 1 }),
                ..crate::support::start_of(agent)
            },
        )
        .await;
    let spans = (0..spans).map(|i| span(&format!("step-{i}"), "LLM")).collect();
    record_trace(app, scope, execution.id, "run".into(), spans).await;
    executions::finish(
        app.db(),
        scope,
        execution.id,
        ExecutionStatus::Succeeded,
        Some(json!({ "a": 2 })),
        None,
    )
    .await
    .expect("finish");
    json!(execution.id.to_string())
}

async fn runtime_records_never_mix_environments(backend: Backend) {
    let app = InProcess::start(backend).await;
    let tenant = tenant();
    seed_agent(&app, &tenant, "bot").await;
    let staging = crate::support::scope(&tenant, Environment::Staging);
    let production = crate::support::scope(&tenant, Environment::Production);
    let staging_run = seed_run(&app, &staging, "bot", 2).await;
    let production_run = seed_run(&app, &production, "bot", 3).await;
    let session = sessions::create(app.db(), &staging, Some("bot"), "support chat")
        .await
        .expect("session");
    sessions::add_message(app.db(), &staging, session.id, "user", "hello")
        .await
        .expect("message");
    sessions::add_message(app.db(), &staging, session.id, "assistant", "hi!")
        .await
        .expect("message");
    memory::put(app.db(), &staging, "bot", "last-topic", json!("refunds"))
        .await
        .expect("memory");
    memory::put(app.db(), &production, "bot", "last-topic", json!("billing"))
        .await
        .expect("memory");

    let query = r#"query($env: Environment!) {
      executions(environment: $env) { edges { node { id environment status output agent { slug environment } spans { nodes { name kind inputTokens } } } } }
      sessions(environment: $env) { edges { node { title agent { slug } messages { edges { node { role content } } } } } }
      traces(environment: $env) { edges { node { name spans(first: 10) { edges { node { name } } } } } }
      memoryEntries(environment: $env) { edges { node { namespace key value } } }
    }"#;
    let s = app
        .data(&tenant, Role::Viewer, query, json!({ "env": "STAGING" }))
        .await;
    let p = app
        .data(&tenant, Role::Viewer, query, json!({ "env": "PRODUCTION" }))
        .await;
    assert_eq!(s["executions"]["edges"].as_array().map(Vec::len), Some(1));
    let staging_gid = gid("Execution", "STAGING", staging_run.as_str().unwrap_or_default());
    assert_eq!(s["executions"]["edges"][0]["node"]["id"], staging_gid);
    assert_eq!(s["executions"]["edges"][0]["node"]["environment"], "STAGING");
    assert_eq!(s["executions"]["edges"][0]["node"]["status"], "SUCCEEDED");
    assert_eq!(
        s["executions"]["edges"][0]["node"]["agent"],
        json!({ "slug": "bot", "environment": "STAGING" })
    );
    assert_eq!(
        s["executions"]["edges"][0]["node"]["spans"]["nodes"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    assert_eq!(
        p["executions"]["edges"][0]["node"]["id"],
        gid("Execution", "PRODUCTION", production_run.as_str().unwrap_or_default())
    );
    assert_eq!(
        p["executions"]["edges"][0]["node"]["spans"]["nodes"]
            .as_array()
            .map(Vec::len),
        Some(3)
    );
    assert_eq!(
        s["sessions"]["edges"][0]["node"]["messages"]["edges"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    assert_eq!(
        s["sessions"]["edges"][0]["node"]["messages"]["edges"][0]["node"],
        json!({ "role": "USER", "content": "hello" })
    );
    assert_eq!(p["sessions"]["edges"], json!([]));
    assert_eq!(
        s["traces"]["edges"][0]["node"]["spans"]["edges"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    assert_eq!(
        s["memoryEntries"]["edges"],
        json!([{ "node": { "namespace": "staging:bot", "key": "last-topic", "value": "refunds" } }])
    );
    assert_eq!(
        p["memoryEntries"]["edges"],
        json!([{ "node": { "namespace": "bot", "key": "last-topic", "value": "billing" } }])
    );

    // By id: an execution of the other environment or of another tenant does not exist here.
    let by_id = r#"query($env: Environment!, $id: ID!) { execution(environment: $env, id: $id) { id } }"#;
    let cross = app
        .data(
            &tenant,
            Role::Viewer,
            by_id,
            json!({ "env": "PRODUCTION", "id": staging_run }),
        )
        .await;
    assert_eq!(cross["execution"], Value::Null);
    // The staging global id in production, and re-typed as another type, are missing too.
    for (env, id) in [
        ("PRODUCTION", staging_gid.clone()),
        (
            "STAGING",
            gid("Session", "STAGING", staging_run.as_str().unwrap_or_default()),
        ),
        (
            "STAGING",
            gid("Execution", "shared", staging_run.as_str().unwrap_or_default()),
        ),
    ] {
        let response = app
            .data(&tenant, Role::Viewer, by_id, json!({ "env": env, "id": id }))
            .await;
        assert_eq!(response["execution"], Value::Null, "{env} {id}");
    }
    let own = app
        .data(
            &tenant,
            Role::Viewer,
            by_id,
            json!({ "env": "STAGING", "id": staging_gid }),
        )
        .await;
    assert_eq!(own["execution"]["id"], staging_gid);
    let other = app
        .data(
            &crate::support::tenant(),
            Role::Admin,
            by_id,
            json!({ "env": "STAGING", "id": staging_run }),
        )
        .await;
    assert_eq!(other["execution"], Value::Null);
    let malformed = app
        .data(
            &tenant,
            Role::Viewer,
            by_id,
            json!({ "env": "STAGING", "id": "not-a-uuid" }),
        )
        .await;
    assert_eq!(malformed["execution"], Value::Null);
    // Writing through another tenant's id is NOT_FOUND in the domain layer too.
    let foreign = crate::support::scope("intruder", Environment::Staging);
    let error = sessions::add_message(app.db(), &foreign, session.id, "user", "x")
        .await
        .expect_err("foreign session");
    assert_eq!(error.code(), "NOT_FOUND");
}

async fn execution_lists_paginate_and_filter(backend: Backend) {
    let app = InProcess::start(backend).await;
    let tenant = tenant();
    seed_agent(&app, &tenant, "alpha").await;
    seed_agent(&app, &tenant, "beta").await;
    let staging = crate::support::scope(&tenant, Environment::Staging);
    for n in 0..25 {
        let agent = if n % 5 == 0 { "beta" } else { "alpha" };
        let execution = app
            .start_execution(
                &staging,
                StartExecution {
                    input: json!(n),
                    ..crate::support::start_of(agent)
                },
            )
            .await;
        if n % 2 == 0 {
            executions::finish(
                app.db(),
                &staging,
                execution.id,
                ExecutionStatus::Failed,
                None,
                Some("boom".into()),
            )
            .await
            .expect("finish");
        }
    }
    let query = r#"query($after: String, $agent: String, $status: ExecutionStatus, $since: DateTime) {
      executions(environment: STAGING, first: 10, after: $after, agent: $agent, status: $status, since: $since) {
        edges { cursor node { input } } pageInfo { hasNextPage endCursor } } }"#;
    let mut seen = Vec::new();
    let mut after = Value::Null;
    loop {
        let page = app.data(&tenant, Role::Viewer, query, json!({ "after": after })).await["executions"].clone();
        seen.extend(
            page["edges"]
                .as_array()
                .expect("edges")
                .iter()
                .map(|e| e["node"]["input"].as_i64().unwrap_or(-1)),
        );
        if page["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(
        seen,
        (0..25).rev().collect::<Vec<i64>>(),
        "every execution once, newest first"
    );
    let beta = app.data(&tenant, Role::Viewer, query, json!({ "agent": "beta" })).await;
    assert_eq!(beta["executions"]["edges"].as_array().map(Vec::len), Some(5));
    let failed = app
        .data(&tenant, Role::Viewer, query, json!({ "status": "FAILED" }))
        .await;
    assert_eq!(
        failed["executions"]["edges"].as_array().map(Vec::len),
        Some(10),
        "first page of 13 failed"
    );
    let future = app
        .data(&tenant, Role::Viewer, query, json!({ "since": "2999-01-01T00:00:00Z" }))
        .await;
    assert_eq!(future["executions"]["edges"], json!([]));
    let unknown_agent = app
        .data(&tenant, Role::Viewer, query, json!({ "agent": "ghost" }))
        .await;
    assert_eq!(unknown_agent["executions"]["edges"], json!([]));
    let bad = app
        .gql(&tenant, Role::Viewer, query, json!({ "status": "EXPLODED" }))
        .await;
    assert_eq!(error_code(&bad), "BAD_USER_INPUT");
}

/// An in-process app that counts the SQL statements it runs (the live feed's own reads
/// excepted); `SHOW_SQL=1` prints their beginnings.
async fn counting_statements(backend: Backend) -> (InProcess, Arc<AtomicUsize>) {
    let counter = Arc::new(AtomicUsize::new(0));
    let counting = counter.clone();
    let app = InProcess::start_with(backend, move |conn| {
        conn.set_metric_callback(move |info| {
            let sql = info.statement.to_string();
            // The live feed's background pump shares the pool: its reads are not the request's.
            if sql.contains("\"event_counters\"") || sql.contains("\"events\"") {
                return;
            }
            if std::env::var("SHOW_SQL").is_ok() {
                eprintln!("SQL: {}", &sql[..160.min(sql.len())]);
            }
            counting.fetch_add(1, Ordering::SeqCst);
        })
    })
    .await;
    (app, counter)
}

/// Nested fields load through DataLoaders: the number of SQL statements of a nested list does
/// not grow with its rows.
async fn nested_lists_do_not_multiply_queries(backend: Backend) {
    let (app, counter) = counting_statements(backend).await;
    let query = r#"{ executions(environment: STAGING, first: 100) { edges { node {
        id status agent { slug name currentCommit { hash } } commit { number } spans { nodes { name kind } } } } } }"#;
    let mut counts = Vec::new();
    for rows in [10usize, 100] {
        let tenant = tenant();
        seed_agent(&app, &tenant, "bot").await;
        let staging = crate::support::scope(&tenant, Environment::Staging);
        for _ in 0..rows {
            seed_run(&app, &staging, "bot", 3).await;
        }
        counter.store(0, Ordering::SeqCst);
        let data = app.data(&tenant, Role::Viewer, query, json!({})).await;
        counts.push(counter.load(Ordering::SeqCst));
        let edges = data["executions"]["edges"].as_array().expect("edges");
        assert_eq!(edges.len(), rows);
        assert!(
            edges
                .iter()
                .all(|e| e["node"]["spans"]["nodes"].as_array().map(Vec::len) == Some(3))
        );
    }
    assert_eq!(counts[0], counts[1], "statements for 10 rows vs 100 rows: {counts:?}");
    assert!(
        counts[1] <= 8,
        "a handful of statements, whatever the row count: {counts:?}"
    );
}

/// Links between records (`Execution.session`/`trigger`/`trace`/`parent`, `Span.parent`/`trace`,
/// `Trace.execution`) are objects that load through DataLoaders: the statements a page needs do
/// not grow with its rows.
async fn object_links_load_in_batches(backend: Backend) {
    use runflow::domain::triggers::{CreateTriggerInput, TriggerKind};
    let (app, counter) = counting_statements(backend).await;
    let query = r#"{
      executions(environment: STAGING, first: 50) { nodes {
        id session { id title } trigger { name } parent { id status } parentId
        trace { name execution { id } }
        spans(first: 5) { nodes { name parent { name } trace { name } } } } }
      traces(environment: STAGING, first: 50) { nodes { name execution { id } } } }"#;
    let mut counts = Vec::new();
    for rows in [5usize, 50] {
        let tenant = tenant();
        seed_agent(&app, &tenant, "bot").await;
        let staging = crate::support::scope(&tenant, Environment::Staging);
        let services = &app.app.services;
        let trigger = runflow::domain::triggers::create(
            app.db(),
            &staging.editable().expect("staging"),
            &services.secret_box,
            &services.trigger_limits,
            CreateTriggerInput {
                name: "hourly".into(),
                agent: "bot".into(),
                kind: TriggerKind::Schedule,
                schedule: Some("0 * * * *".into()),
                config: None,
                enabled: false,
                secret: None,
            },
        )
        .await
        .expect("trigger");
        let mut parent = None;
        for n in 0..rows {
            let session = sessions::create(app.db(), &staging, Some("bot"), &format!("s{n}"))
                .await
                .expect("session");
            let execution = app
                .start_execution(
                    &staging,
                    StartExecution {
                        session_id: Some(session.id),
                        trigger_id: Some(trigger.id),
                        parent,
                        ..crate::support::start_of("bot")
                    },
                )
                .await;
            parent = Some(executions::ParentRun {
                id: execution.id,
                depth: 0,
            })
            .filter(|_| n % 2 == 0);
            let root = uuid::Uuid::now_v7();
            let mut spans = vec![SpanInput {
                id: Some(root),
                ..span("root", "CUSTOM")
            }];
            spans.extend((0..2).map(|i| SpanInput {
                parent_span_id: Some(root),
                ..span(&format!("child-{i}"), "LLM")
            }));
            record_trace(&app, &staging, execution.id, format!("run-{n}"), spans).await;
        }
        counter.store(0, Ordering::SeqCst);
        let data = app.data(&tenant, Role::Viewer, query, json!({})).await;
        counts.push(counter.load(Ordering::SeqCst));
        let nodes = data["executions"]["nodes"].as_array().expect("nodes");
        assert_eq!(nodes.len(), rows);
        for node in nodes {
            assert!(
                node["session"]["title"].as_str().is_some_and(|t| t.starts_with('s')),
                "{node:#}"
            );
            assert_eq!(node["trigger"]["name"], "hourly");
            assert_eq!(node["trace"]["execution"]["id"], node["id"], "{node:#}");
            assert_eq!(node["parent"]["id"], node["parentId"], "{node:#}");
            let spans = node["spans"]["nodes"].as_array().expect("spans");
            assert_eq!(spans.len(), 3, "{node:#}");
            assert_eq!(spans[0]["parent"], Value::Null);
            assert!(spans[1..].iter().all(|s| s["parent"]["name"] == "root"), "{node:#}");
            assert!(
                spans.iter().all(|s| s["trace"]["name"] == node["trace"]["name"]),
                "{node:#}"
            );
        }
        let with_parent = nodes.iter().filter(|n| !n["parent"].is_null()).count();
        assert_eq!(with_parent, rows / 2, "every other execution has a parent");
        let traces = data["traces"]["nodes"].as_array().expect("traces");
        assert_eq!(traces.len(), rows);
        assert!(traces.iter().all(|t| t["execution"]["id"].is_string()));
    }
    // A DataLoader batches the keys requested within 1 ms; on a loaded machine one batch can
    // split in two, so either run may take a statement or two more. One query per row of any
    // link would add 45 statements to the 50-row run.
    assert!(
        counts[0].abs_diff(counts[1]) <= 3,
        "statements for 5 rows vs 50 rows: {counts:?}"
    );
    assert!(
        counts.iter().all(|&count| count <= 16),
        "a handful of statements, whatever the row count: {counts:?}"
    );
}

/// A list reads `input`, `output`, `log` and the spans' `attributes` only when the query
/// selects them: selected (directly or through a fragment) they hold the stored values, and a
/// query that leaves them out still gets every other field right.
async fn large_columns_are_read_when_selected(backend: Backend) {
    let app = InProcess::start(backend).await;
    let tenant = tenant();
    seed_agent(&app, &tenant, "bot").await;
    let staging = crate::support::scope(&tenant, Environment::Staging);
    let run = seed_run(&app, &staging, "bot", 2).await;

    let light = r#"{ executions(environment: STAGING) { nodes { id status createdAt agent { slug }
        spans(first: 10) { nodes { name kind inputTokens } } } } }"#;
    let data = app.data(&tenant, Role::Viewer, light, json!({})).await;
    let node = &data["executions"]["nodes"][0];
    assert_eq!(node["status"], json!("SUCCEEDED"));
    assert_eq!(node["agent"]["slug"], json!("bot"));
    assert_eq!(
        node["spans"]["nodes"][1],
        json!({ "name": "step-1", "kind": "LLM", "inputTokens": 10 })
    );

    let full = r#"{ executions(environment: STAGING) { nodes { id input output log
        spans(first: 10) { nodes { name attributes } } } } }"#;
    let data = app.data(&tenant, Role::Viewer, full, json!({})).await;
    let node = &data["executions"]["nodes"][0];
    assert_eq!(node["input"], json!({ "q": 1 }));
    assert_eq!(node["output"], json!({ "a": 2 }));
    assert_eq!(node["spans"]["nodes"][0]["attributes"], json!({ "model": "x" }));

    // Through fragments and edges, as clients write them.
    let fragments = r#"query { executions(environment: STAGING) { edges { node { ...Large } } } }
        fragment Large on Execution { ... on Execution { input output }
        spans(first: 10) { edges { node { ...Attrs } } } }
        fragment Attrs on Span { attributes }"#;
    let data = app.data(&tenant, Role::Viewer, fragments, json!({})).await;
    let node = &data["executions"]["edges"][0]["node"];
    assert_eq!(node["input"], json!({ "q": 1 }));
    assert_eq!(node["output"], json!({ "a": 2 }));
    assert_eq!(node["spans"]["edges"][1]["node"]["attributes"], json!({ "model": "x" }));

    // The single-execution read is unchanged (every column).
    let one = r#"query($id: ID!) { execution(environment: STAGING, id: $id) { input output } }"#;
    let data = app.data(&tenant, Role::Viewer, one, json!({ "id": run })).await;
    assert_eq!(data["execution"]["input"], json!({ "q": 1 }));
}

/// A batch of spans is stored exactly as sent, whatever its text holds (quotes, backslashes,
/// commas, braces, the word NULL, newlines, non-ASCII), with absent values stored as null,
/// and a batch sent again is skipped span by span (PostgreSQL inserts a batch as typed
/// arrays, SQLite with one prepared statement reused per chunk).
async fn span_batches_store_every_value_as_sent(backend: Backend) {
    let app = InProcess::start(backend).await;
    let tenant = tenant();
    seed_agent(&app, &tenant, "bot").await;
    let staging = crate::support::scope(&tenant, Environment::Staging);
    let execution = app.start_execution(&staging, crate::support::start_of("bot")).await;
    let awkward = [
        "say \"hi\"",
        "back\\slash",
        "a,b",
        "{x}",
        "NULL",
        "line\nbreak",
        "é 🦀",
        "",
        " padded ",
    ];
    let started = chrono::DateTime::parse_from_rfc3339("2026-11-29T10:00:00.123456Z")
        .expect("time")
        .with_timezone(&chrono::Utc);
    let root = uuid::Uuid::now_v7();
    // 250 spans: more than one SQLite statement's worth, with a partial last chunk.
    let spans: Vec<SpanInput> = (0..250)
        .map(|i| SpanInput {
            id: Some(if i == 0 { root } else { uuid::Uuid::now_v7() }),
            parent_span_id: (i > 0).then_some(root),
            name: format!("{}-{i}", awkward[i % awkward.len()]),
            kind: "TOOL".into(),
            status: if i % 2 == 0 { "OK" } else { "ERROR" }.into(),
            started_at: started,
            ended_at: (i % 3 != 0).then_some(started + chrono::Duration::milliseconds(i as i64)),
            attributes: Attributes::from_value(
                &json!({ "text": awkward[i % awkward.len()], "n": i, "nested": { "list": [1, "\"", null] } }),
            )
            .expect("attributes"),
            input_tokens: (i % 4 != 0).then_some(i as i64),
            output_tokens: None,
        })
        .collect();
    let input = TraceInput {
        id: None,
        execution_id: Some(execution.id),
        name: "awkward".into(),
        status: "OK".into(),
        started_at: started,
        ended_at: None,
        spans: spans.clone(),
    };
    traces::record(app.db(), &staging, input.clone()).await.expect("record");
    // The same batch again: nothing is duplicated and nothing fails.
    traces::record(app.db(), &staging, input).await.expect("record again");

    let query = r#"query($id: ID!) { execution(environment: STAGING, id: $id) {
        spans(first: 100) { nodes { name kind status startedAt finishedAt attributes inputTokens outputTokens
        parent { name } } } } }"#;
    let mut stored = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let query = query.replace(
            "spans(first: 100)",
            &match &after {
                Some(cursor) => format!("spans(first: 100, after: \"{cursor}\")"),
                None => "spans(first: 100)".into(),
            },
        );
        let query = query.replace("nodes {", "pageInfo { hasNextPage endCursor } nodes {");
        let data = app
            .data(&tenant, Role::Viewer, &query, json!({ "id": execution.id.to_string() }))
            .await;
        let page = &data["execution"]["spans"];
        stored.extend(page["nodes"].as_array().expect("nodes").iter().cloned());
        if page["pageInfo"]["hasNextPage"] != json!(true) {
            break;
        }
        after = page["pageInfo"]["endCursor"].as_str().map(str::to_string);
    }
    assert_eq!(stored.len(), spans.len(), "each span once");
    for (sent, got) in spans.iter().zip(&stored) {
        assert_eq!(got["name"], json!(sent.name));
        assert_eq!(got["kind"], json!("TOOL"));
        assert_eq!(got["status"], json!(sent.status));
        assert_eq!(got["attributes"], sent.attributes.to_value(), "{got:#}");
        assert_eq!(got["inputTokens"], json!(sent.input_tokens));
        assert_eq!(got["outputTokens"], Value::Null);
        let time = |v: &Value| v.as_str().and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
        assert_eq!(time(&got["startedAt"]).expect("startedAt"), started, "{got:#}");
        match sent.ended_at {
            Some(ended) => assert_eq!(time(&got["finishedAt"]).expect("finishedAt"), ended),
            None => assert_eq!(got["finishedAt"], Value::Null),
        }
        let parent = if sent.parent_span_id.is_some() {
            json!({ "name": spans[0].name })
        } else {
            Value::Null
        };
        assert_eq!(got["parent"], parent);
    }
}

on_both_backends!(
    runtime_records_never_mix_environments,
    execution_lists_paginate_and_filter,
    nested_lists_do_not_multiply_queries,
    object_links_load_in_batches,
    large_columns_are_read_when_selected,
    span_batches_store_every_value_as_sent,
);
