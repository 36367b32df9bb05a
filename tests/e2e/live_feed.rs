//! The live feed: runtime ingestion, subscriptions over graphql-transport-ws, filtering,
//! lossless resume, the protocol's close codes, slow consumers and replicas.

use reqwest::Method;
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{
    Backend, Frame, Server, deploy, error_code, gid, now, publish_all, runtime_token, script_summary, sign, tenant,
    token,
};

const EXECUTIONS: &str = "subscription($env: Environment!, $after: String, $agent: String) {
  executionEvents(environment: $env, after: $after, agent: $agent) { cursor kind environment execution { id status environment output } } }";

/// Deploys `bot` and points production at it too (by publishing).
async fn agent_in_both(server: &Server, tenant: &str) {
    deploy(server, &token(tenant, "developer"), "bot", "print(1)\n", "m").await;
    publish_all(server, &token(tenant, "publisher")).await;
}

async fn run_execution(server: &Server, runtime: &str, output: Value) -> String {
    let (status, started) = server
        .runtime(
            runtime,
            Method::POST,
            "/executions",
            Some(json!({ "agent": "bot", "input": { "q": 1 } })),
        )
        .await;
    assert_eq!(status, 201, "{started}");
    let id = started["id"].as_str().expect("id").to_string();
    let (status, finished) = server
        .runtime(
            runtime,
            Method::POST,
            &format!("/executions/{id}/finish"),
            Some(json!({ "status": "SUCCEEDED", "output": output })),
        )
        .await;
    assert_eq!(status, 200, "{finished}");
    id
}

/// Records batch number `batch` of 500 spans with 500 bytes of attributes each (about 265 KB
/// of events a batch: enough to fill a socket that is not read).
async fn post_padded_spans(server: &Server, runtime: &str, execution: &str, batch: usize) {
    let filler = "x".repeat(500);
    let spans: Vec<Value> = (0..500)
        .map(|i| json!({ "name": format!("s{batch}-{i}"), "kind": "CUSTOM", "startTime": "2026-11-29T10:00:00Z", "attributes": { "pad": filler } }))
        .collect();
    let (status, _) = server
        .runtime(
            runtime,
            Method::POST,
            &format!("/executions/{execution}/spans"),
            Some(json!({ "spans": spans })),
        )
        .await;
    assert_eq!(status, 201);
}

async fn next_event(ws: &mut crate::support::Ws) -> Value {
    let message = ws.json().await;
    assert_eq!(message["type"], "next", "{message}");
    message["payload"]["data"]["executionEvents"].clone()
}

async fn events_are_filtered_by_tenant_and_environment_and_resume_without_gaps(backend: Backend) {
    let server = Server::start(backend).await;
    let (a, b) = (tenant(), tenant());
    agent_in_both(&server, &a).await;
    agent_in_both(&server, &b).await;
    let mut ws = server.websocket(None).await;
    ws.init(&token(&a, "viewer")).await;
    // From the start of this tenant's log: deterministic, whatever the timing.
    ws.subscribe("1", EXECUTIONS, json!({ "env": "STAGING", "after": "0" }))
        .await;

    run_execution(&server, &runtime_token(&b, "staging"), json!("other tenant")).await;
    run_execution(&server, &runtime_token(&a, "production"), json!("production")).await;
    let first = run_execution(&server, &runtime_token(&a, "staging"), json!("mine")).await;

    let started = next_event(&mut ws).await;
    assert_eq!(started["kind"], "STARTED");
    assert_eq!(started["environment"], "STAGING");
    assert_eq!(started["execution"]["id"], gid("Execution", "STAGING", &first));
    let finished = next_event(&mut ws).await;
    assert_eq!(finished["kind"], "FINISHED");
    assert_eq!(finished["execution"]["output"], "mine");
    assert_eq!(finished["execution"]["status"], "SUCCEEDED");

    // Resume from the first cursor on a new connection: the replay has exactly what followed it,
    // then the feed continues live, with no duplicate.
    let mut resumed = server.websocket(Some(&format!("Bearer {}", token(&a, "viewer")))).await;
    resumed.send(json!({ "type": "connection_init" })).await;
    assert_eq!(
        resumed.json().await["type"],
        "connection_ack",
        "the upgrade header authenticates too"
    );
    resumed
        .subscribe("r", EXECUTIONS, json!({ "env": "STAGING", "after": started["cursor"] }))
        .await;
    let replayed = next_event(&mut resumed).await;
    assert_eq!(replayed["cursor"], finished["cursor"]);
    let second = run_execution(&server, &runtime_token(&a, "staging"), json!("again")).await;
    for ws in [&mut ws, &mut resumed] {
        let live = next_event(ws).await;
        assert_eq!(
            (live["kind"].as_str(), live["execution"]["id"].as_str()),
            (Some("STARTED"), Some(gid("Execution", "STAGING", &second).as_str()))
        );
        assert_eq!(next_event(ws).await["kind"], "FINISHED");
    }
    // The agent filter, and completion.
    ws.subscribe(
        "2",
        EXECUTIONS,
        json!({ "env": "STAGING", "agent": "someone-else", "after": "0" }),
    )
    .await;
    ws.send(json!({ "type": "complete", "id": "2" })).await;
    ws.send(json!({ "type": "ping" })).await;
    assert_eq!(
        ws.json().await["type"],
        "pong",
        "an agent filter that matches nothing sends nothing"
    );

    // Cursors that cannot be honoured.
    ws.subscribe("3", EXECUTIONS, json!({ "env": "STAGING", "after": "999999" }))
        .await;
    let refused = ws.json().await;
    assert_eq!(
        (refused["type"].as_str(), refused["id"].as_str()),
        (Some("error"), Some("3"))
    );
    assert_eq!(refused["payload"][0]["extensions"]["code"], "BAD_USER_INPUT");
}

async fn session_and_trace_subscriptions_check_ids_at_subscribe_time(backend: Backend) {
    let server = Server::start(backend).await;
    let (a, b) = (tenant(), tenant());
    agent_in_both(&server, &a).await;
    let runtime = runtime_token(&a, "staging");
    let (status, session) = server
        .runtime(
            &runtime,
            Method::POST,
            "/sessions",
            Some(json!({ "agent": "bot", "title": "chat" })),
        )
        .await;
    assert_eq!(status, 201, "{session}");
    let session_id = session["id"].as_str().expect("id").to_string();
    let execution = run_execution(&server, &runtime, json!(null)).await;

    // Another tenant may not subscribe to them: NOT_FOUND, as for ids that do not exist.
    let mut intruder = server
        .subscribed(
            &token(&b, "admin"),
            "s",
            "subscription($id: ID!) { sessionEvents(environment: STAGING, sessionId: $id) { cursor } }",
            json!({ "id": session_id }),
        )
        .await;
    let refused = intruder.json().await;
    assert_eq!(refused["type"], "error");
    assert_eq!(refused["payload"][0]["extensions"]["code"], "NOT_FOUND");
    intruder
        .subscribe(
            "t",
            "subscription($id: ID!) { traceEvents(environment: STAGING, executionId: $id) { cursor } }",
            json!({ "id": execution }),
        )
        .await;
    assert_eq!(intruder.json().await["payload"][0]["extensions"]["code"], "NOT_FOUND");

    let mut ws = server
        .subscribed(
            &token(&a, "viewer"),
            "s",
            "subscription($id: ID!) { sessionEvents(environment: STAGING, sessionId: $id) { kind session { id } message { role content } } }",
            json!({ "id": session_id }),
        )
        .await;
    ws.subscribe(
        "t",
        "subscription($id: ID!) { traceEvents(environment: STAGING, executionId: $id) { kind trace { id } spans { name kind inputTokens } } }",
        json!({ "id": execution }),
    )
    .await;
    // Earlier events match these filters, so no `after`: give the subscriptions time to start.
    tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
    let (status, _) = server
        .runtime(
            &runtime,
            Method::POST,
            &format!("/sessions/{session_id}/messages"),
            Some(json!({ "role": "user", "content": "hi" })),
        )
        .await;
    assert_eq!(status, 201);
    let spans = json!({ "spans": [
        { "name": "llm call", "kind": "LLM", "startTime": "2026-11-29T10:00:00Z", "endTime": "2026-11-29T10:00:01Z", "inputTokens": 12, "outputTokens": 3 },
        { "name": "tool", "kind": "TOOL", "startTime": "2026-11-29T10:00:01Z" } ] });
    let (status, recorded) = server
        .runtime(
            &runtime,
            Method::POST,
            &format!("/executions/{execution}/spans"),
            Some(spans),
        )
        .await;
    assert_eq!(status, 201, "{recorded}");
    let mut seen = Vec::new();
    for _ in 0..2 {
        let message = ws.json().await;
        seen.push((
            message["id"].as_str().unwrap_or_default().to_string(),
            message["payload"]["data"].clone(),
        ));
    }
    seen.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(seen[0].1["sessionEvents"]["kind"], "MESSAGE_ADDED");
    assert_eq!(
        seen[0].1["sessionEvents"]["message"],
        json!({ "role": "USER", "content": "hi" })
    );
    assert_eq!(
        seen[1].1["traceEvents"]["spans"],
        json!([{ "name": "llm call", "kind": "LLM", "inputTokens": 12 }, { "name": "tool", "kind": "TOOL", "inputTokens": null }])
    );
}

async fn release_events_reach_every_releases_screen(backend: Backend) {
    let server = Server::start(backend).await;
    let tenant = tenant();
    let mut staging = server
        .subscribed(
            &token(&tenant, "viewer"),
            "r",
            "subscription { releaseEvents(environment: STAGING, after: \"0\") { kind environment release { number kind } } }",
            json!({}),
        )
        .await;
    agent_in_both(&server, &tenant).await;
    let message = staging.json().await;
    assert_eq!(
        message["payload"]["data"]["releaseEvents"],
        json!({ "kind": "PUBLISHED", "environment": "STAGING", "release": { "number": 1, "kind": "PUBLISH" } })
    );
}

async fn runtime_api_writes_only_its_own_environment(backend: Backend) {
    let server = Server::start(backend).await;
    let tenant = tenant();
    agent_in_both(&server, &tenant).await;
    let (staging, production) = (runtime_token(&tenant, "staging"), runtime_token(&tenant, "production"));
    let developer = token(&tenant, "developer");

    // Memory: staging keys live under `staging:`.
    let (status, written) = server
        .runtime(
            &staging,
            Method::PUT,
            "/memory/bot/topic",
            Some(json!({ "value": { "last": "refunds" } })),
        )
        .await;
    assert_eq!(status, 200, "{written}");
    assert_eq!(written["namespace"], "staging:bot");
    let (status, _) = server
        .runtime(&production, Method::GET, "/memory/bot/topic", None)
        .await;
    assert_eq!(status, 404, "production does not see staging memory");
    let (status, read) = server.runtime(&staging, Method::GET, "/memory/bot/topic", None).await;
    assert_eq!((status, read["value"].clone()), (200, json!({ "last": "refunds" })));
    let (status, _) = server
        .runtime(&staging, Method::DELETE, "/memory/bot/topic", None)
        .await;
    assert_eq!(status, 204);

    // Prompts: staging resolves the draft, production the published version, 404 if absent.
    server
        .data(
            &developer,
            r#"mutation { savePromptDraft(environment: STAGING, input: {slug: "greet", template: "draft"}) { slug } }"#,
            json!({}),
        )
        .await;
    let (status, prompt) = server.runtime(&staging, Method::GET, "/prompts/greet", None).await;
    assert_eq!(
        (status, prompt["source"].clone(), prompt["template"].clone()),
        (200, json!("draft"), json!("draft"))
    );
    let (status, missing) = server.runtime(&production, Method::GET, "/prompts/greet", None).await;
    assert_eq!(status, 404, "{missing}");
    assert_eq!(missing["error"]["code"], "NOT_FOUND");
    server.data(&developer, r#"mutation { createConnector(environment: STAGING, input: {slug: "crm", kind: "http", config: {url: "s"}}) { slug } }"#, json!({})).await;
    let (status, connector) = server.runtime(&staging, Method::GET, "/connectors/crm", None).await;
    assert_eq!((status, connector["config"].clone()), (200, json!({ "url": "s" })));
    assert_eq!(
        server
            .runtime(&production, Method::GET, "/connectors/crm", None)
            .await
            .0,
        404
    );

    // Validation: clear 4xx, nothing written.
    for (path, body, expected) in [
        ("/executions", json!({ "agent": "bot", "unexpected": 1 }), 400),
        ("/executions", json!({ "agent": "ghost" }), 404),
        ("/executions", json!({ "input": {} }), 400),
        ("/sessions", json!({ "title": 5 }), 400),
    ] {
        let (status, response) = server.runtime(&staging, Method::POST, path, Some(body.clone())).await;
        assert_eq!(status, expected, "{path} {body}: {response}");
        assert!(
            response["error"]["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{response}"
        );
    }
    let execution = run_execution(&server, &staging, json!(1)).await;
    let bad_batch = json!({ "spans": [
        { "name": "ok", "kind": "LLM", "startTime": "2026-11-29T10:00:00Z" },
        { "name": "bad", "kind": "SORCERY", "startTime": "2026-11-29T10:00:00Z" } ] });
    let (status, _) = server
        .runtime(
            &staging,
            Method::POST,
            &format!("/executions/{execution}/spans"),
            Some(bad_batch),
        )
        .await;
    assert_eq!(status, 400);
    let traces = server
        .data(
            &developer,
            "{ traces(environment: STAGING) { edges { node { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        traces["traces"]["edges"],
        json!([]),
        "a batch is written whole or not at all"
    );
    let (status, _) = server
        .runtime(
            &production,
            Method::POST,
            &format!("/executions/{execution}/finish"),
            Some(json!({ "status": "FAILED" })),
        )
        .await;
    assert_eq!(
        status, 404,
        "a staging execution does not exist for a production runtime"
    );

    // Tokens: people's tokens, bad tokens and other tenants are refused.
    assert_eq!(
        server.runtime(&developer, Method::GET, "/prompts/greet", None).await.0,
        403
    );
    assert_eq!(server.runtime("nope", Method::GET, "/prompts/greet", None).await.0, 401);
    let no_environment = sign(json!({ "sub": "r", "tenant": tenant, "role": "runtime", "exp": now() + 60 }));
    assert_eq!(
        server
            .runtime(&no_environment, Method::GET, "/prompts/greet", None)
            .await
            .0,
        401
    );
    let response = server
        .gql(
            Some(&staging),
            "{ agents(environment: STAGING) { nodes { slug } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        error_code(&response),
        "FORBIDDEN",
        "runtime tokens have no GraphQL access"
    );

    // OpenTelemetry.
    let otlp = |environment: &str| {
        json!({ "resourceSpans": [{
        "resource": { "attributes": [
            { "key": "deployment.environment", "value": { "stringValue": environment } },
            { "key": "runflow.execution_id", "value": { "stringValue": execution } } ] },
        "scopeSpans": [{ "spans": [
            { "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174", "name": "chat",
              "kind": 3, "startTimeUnixNano": "1764410000000000000", "endTimeUnixNano": "1764410001000000000",
              "attributes": [ { "key": "gen_ai.usage.input_tokens", "value": { "intValue": "42" } } ], "status": { "code": 1 } },
            { "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b175", "parentSpanId": "eee19b7ec3c1b174",
              "name": "lookup", "startTimeUnixNano": "1764410000500000000" } ] }] }] })
    };
    let (status, refused) = server
        .runtime(&staging, Method::POST, "/otlp/v1/traces", Some(otlp("production")))
        .await;
    assert_eq!(status, 403, "{refused}");
    for _ in 0..2 {
        let (status, accepted) = server
            .runtime(&staging, Method::POST, "/otlp/v1/traces", Some(otlp("staging")))
            .await;
        assert_eq!(status, 200, "{accepted}");
    }
    let spans = server
        .data(&developer, "query($id: ID!) { execution(environment: STAGING, id: $id) { spans { nodes { name kind status inputTokens parent { id } } } } }", json!({ "id": execution }))
        .await;
    let spans = spans["execution"]["spans"]["nodes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(spans.len(), 2, "a retried export does not duplicate: {spans:#?}");
    let chat = spans.iter().find(|s| s["name"] == "chat").expect("chat");
    assert_eq!(
        (
            chat["kind"].as_str(),
            chat["status"].as_str(),
            chat["inputTokens"].as_i64()
        ),
        (Some("LLM"), Some("OK"), Some(42))
    );
    assert!(
        spans
            .iter()
            .any(|s| s["name"] == "lookup" && s["kind"] == "CUSTOM" && s["parent"]["id"].is_string())
    );
}

async fn protocol_close_codes(backend: Backend) {
    let server = Server::start_with(backend, &[("RUNFLOW_WS_INIT_TIMEOUT", "300ms")]).await;
    let tenant = tenant();
    let viewer = token(&tenant, "viewer");

    let mut ws = server.websocket(None).await;
    assert_eq!(ws.closed().await.0, 4408, "no connection_init in time");

    let mut ws = server.websocket(None).await;
    ws.subscribe(
        "1",
        "subscription { releaseEvents(environment: STAGING) { cursor } }",
        json!({}),
    )
    .await;
    assert_eq!(ws.closed().await.0, 4401, "subscribe before acknowledgement");

    let mut ws = server.websocket(None).await;
    ws.send(json!({ "type": "connection_init", "payload": { "Authorization": "Bearer forged" } }))
        .await;
    assert_eq!(ws.closed().await.0, 4403, "bad token");

    let mut ws = server.websocket(None).await;
    ws.send(json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {}", runtime_token(&tenant, "staging")) } })).await;
    assert_eq!(ws.closed().await.0, 4403, "runtime tokens are not for subscriptions");

    let mut ws = server.websocket(None).await;
    ws.init(&viewer).await;
    ws.send(json!({ "type": "connection_init" })).await;
    assert_eq!(ws.closed().await.0, 4429, "second connection_init");

    let mut ws = server.websocket(None).await;
    ws.init(&viewer).await;
    ws.send_raw("{not json").await;
    assert_eq!(ws.closed().await.0, 4400);

    let mut ws = server
        .subscribed(
            &viewer,
            "dup",
            "subscription { releaseEvents(environment: STAGING) { cursor } }",
            json!({}),
        )
        .await;
    ws.subscribe(
        "dup",
        "subscription { releaseEvents(environment: STAGING) { cursor } }",
        json!({}),
    )
    .await;
    assert_eq!(ws.closed().await.0, 4409, "duplicate subscription id");

    // Subscriptions go through the same access rules and limits as HTTP.
    let mut ws = server
        .subscribed(
            &viewer,
            "m",
            "mutation { deleteAgent(environment: STAGING, slug: \"x\") { deletedId } }",
            json!({}),
        )
        .await;
    let refused = ws.json().await;
    assert_eq!(refused["type"], "error");
    assert_eq!(refused["payload"][0]["extensions"]["code"], "FORBIDDEN");

    // A token that expires closes the socket with 4403, and nothing is sent after `exp`.
    let short = sign(json!({ "sub": "v", "tenant": tenant, "role": "viewer", "exp": now() + 2 }));
    let mut ws = server
        .subscribed(
            &short,
            "1",
            "subscription { releaseEvents(environment: STAGING) { cursor } }",
            json!({}),
        )
        .await;
    let started = std::time::Instant::now();
    match ws.next().await {
        Frame::Closed(code, _) => assert_eq!(code, 4403),
        other => panic!("expected 4403 at expiry, got {other:?}"),
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

async fn slow_consumers_are_cut_off_without_hurting_others(backend: Backend) {
    let server = Server::start_with(backend, &[("RUNFLOW_WS_BUFFER", "2")]).await;
    let tenant = tenant();
    agent_in_both(&server, &tenant).await;
    let runtime = runtime_token(&tenant, "staging");
    let execution = run_execution(&server, &runtime, json!(null)).await;
    let query = "subscription { traceEvents(environment: STAGING, after: \"0\") { cursor spans { name attributes } } }";
    let mut slow = server
        .subscribed(&token(&tenant, "viewer"), "slow", query, json!({}))
        .await;
    let mut fast = server
        .subscribed(&token(&tenant, "viewer"), "fast", query, json!({}))
        .await;
    let batches = 30;
    for batch in 0..batches {
        post_padded_spans(&server, &runtime, &execution, batch).await;
        // The fast subscriber reads as events come.
        let message = fast.json().await;
        assert_eq!(message["type"], "next");
    }
    // The slow one stopped reading: once its queue filled, it got SLOW_CONSUMER and completion.
    let mut received = 0;
    let ended_with = loop {
        let message = slow.json().await;
        match message["type"].as_str() {
            Some("next") if message["payload"]["errors"].is_array() => break message,
            Some("next") => received += 1,
            other => panic!("unexpected {other:?}: {message}"),
        }
    };
    assert!(
        received < batches,
        "it was cut off before receiving everything ({received})"
    );
    assert_eq!(
        ended_with["payload"]["errors"][0]["extensions"]["code"],
        "SLOW_CONSUMER"
    );
    assert_eq!(slow.json().await, json!({ "type": "complete", "id": "slow" }));
}

/// Reads the next message within `limit`, or None.
async fn within(ws: &mut crate::support::Ws, limit: std::time::Duration) -> Option<Value> {
    tokio::time::timeout(limit, ws.json()).await.ok()
}

/// Starts and finishes executions until every one of `watchers` has received an event: a
/// subscription without `after` starts at the log's head once its execution runs, which the
/// test cannot observe otherwise. Returns nothing; the events received are left to the
/// caller's reads (each watcher has consumed its first one).
async fn until_following(server: &Server, runtime: &str, watchers: &mut [&mut crate::support::Ws]) {
    let mut following = vec![false; watchers.len()];
    for _ in 0..40 {
        run_execution(server, runtime, json!("warm-up")).await;
        for (ws, done) in watchers.iter_mut().zip(following.iter_mut()) {
            if !*done && within(ws, std::time::Duration::from_millis(500)).await.is_some() {
                *done = true;
            }
        }
        if following.iter().all(|done| *done) {
            return;
        }
    }
    panic!("the subscriptions never started following the feed");
}

/// Posts padded span batches until `fast` (a member of the trace subscriptions' shared
/// execution) receives them, then 30 more that it reads as they come: enough to fill the queue
/// of a member that does not read. Returns the next batch number.
async fn fill_a_slow_reader(server: &Server, runtime: &str, execution: &str, fast: &mut crate::support::Ws) -> usize {
    let mut batch = 0;
    // Until the group follows the feed.
    loop {
        post_padded_spans(server, runtime, execution, batch).await;
        batch += 1;
        if within(fast, std::time::Duration::from_millis(500)).await.is_some() {
            break;
        }
        assert!(batch < 40, "the trace subscriptions never started following the feed");
    }
    for _ in 0..30 {
        post_padded_spans(server, runtime, execution, batch).await;
        batch += 1;
        let message = fast.json().await;
        assert_eq!(message["type"], "next");
        assert!(message["payload"]["errors"].is_null(), "{message}");
    }
    batch
}

/// Reads execution events until the FINISHED one of `execution`, returning every message.
async fn until_finished(ws: &mut crate::support::Ws, execution: &str) -> Vec<Value> {
    let id = gid("Execution", "STAGING", execution);
    let mut messages = Vec::new();
    loop {
        let message = ws.json().await;
        assert_eq!(message["type"], "next", "{message}");
        let event = &message["payload"]["data"]["executionEvents"];
        let done = event["kind"] == "FINISHED" && event["execution"]["id"] == id.as_str();
        messages.push(message);
        if done {
            return messages;
        }
    }
}

/// Waits until `transport` has `active` subscriptions, then checks how many shared executions
/// serve them all.
async fn subscriptions_settle(server: &Server, transport: &str, active: f64, executions: f64) {
    use crate::contract::{metric, scrape_until};
    let line = format!("runflow_subscriptions_active{{transport=\"{transport}\"}} ");
    let text = scrape_until(server, |text| metric(text, &line) == Some(active)).await;
    assert_eq!(
        metric(&text, "runflow_subscription_executions "),
        Some(executions),
        "{text}"
    );
}

/// Subscribers of one tenant and role sending the same operation share one execution (the
/// `runflow_subscription_executions` gauge counts executions, not subscribers) and receive the
/// same messages; another role, another tenant or a replay (`after`) is another execution; the
/// last member out stops it; and a member that stops reading is cut off with SLOW_CONSUMER
/// while the others of its group go on.
async fn subscribers_of_one_operation_share_one_execution(backend: Backend) {
    use crate::contract::{metric, scrape_until};
    let server = Server::start_with(backend, &[("RUNFLOW_WS_BUFFER", "2")]).await;
    let (a, b) = (tenant(), tenant());
    agent_in_both(&server, &a).await;
    agent_in_both(&server, &b).await;
    let runtime = runtime_token(&a, "staging");
    let shared = "subscription { executionEvents(environment: STAGING) { cursor kind execution { id } } }";
    let mut viewers = Vec::new();
    for _ in 0..3 {
        viewers.push(server.subscribed(&token(&a, "viewer"), "s", shared, json!({})).await);
    }
    let mut developer = server.subscribed(&token(&a, "developer"), "s", shared, json!({})).await;
    let mut other_tenant = server.subscribed(&token(&b, "viewer"), "s", shared, json!({})).await;
    let mut replaying = server
        .subscribed(
            &token(&a, "viewer"),
            "s",
            EXECUTIONS,
            json!({ "env": "STAGING", "after": "0" }),
        )
        .await;
    // Six subscriptions, three shared executions: the viewers of `a`, the developer, tenant
    // `b`; the replay runs on its own (not counted as a shared execution).
    scrape_until(&server, |text| {
        metric(text, "runflow_subscription_executions ") == Some(3.0)
            && metric(text, "runflow_subscriptions_active{transport=\"ws\"} ") == Some(6.0)
    })
    .await;

    // A server-sent-events stream of the same operation joins the same execution.
    let mut sse =
        crate::contract::EventStream::started(&server, Some(&token(&a, "viewer")), json!({ "query": shared })).await;
    subscriptions_settle(&server, "sse", 1.0, 3.0).await;

    {
        let (first, _) = viewers.split_at_mut(1);
        until_following(&server, &runtime, &mut [&mut first[0], &mut developer]).await;
    }
    let execution = run_execution(&server, &runtime, json!("shared")).await;
    let seen = until_finished(&mut viewers[0], &execution).await;
    for ws in &mut viewers[1..] {
        // The same messages, byte for byte (the ids are the same too), warm-up included.
        let first_seen = ws.json().await;
        let mut same = vec![first_seen];
        same.extend(until_finished(ws, &execution).await);
        assert_eq!(
            same[same.len() - seen.len()..],
            seen[..],
            "members of a group get the same results"
        );
    }
    let finished_payload = &seen.last().expect("seen")["payload"];
    loop {
        let payload = sse.next_data().await;
        if &payload == finished_payload {
            break;
        }
    }
    drop(sse);
    let developer_seen = until_finished(&mut developer, &execution).await;
    assert_eq!(developer_seen.last(), seen.last());
    // The replay (its own execution, its own selection) reaches the live events too.
    until_finished(&mut replaying, &execution).await;
    // Tenant `b` got nothing of `a`'s.
    other_tenant.send(json!({ "type": "ping" })).await;
    assert_eq!(other_tenant.json().await["type"], "pong");

    // Leaving: one viewer completes, the others close their sockets: the last one out stops it.
    viewers[0].send(json!({ "type": "complete", "id": "s" })).await;
    subscriptions_settle(&server, "ws", 5.0, 3.0).await;
    viewers.truncate(1);
    scrape_until(&server, |text| {
        metric(text, "runflow_subscription_executions ") == Some(2.0)
    })
    .await;

    // A member that stops reading is cut off; the other member of its group goes on.
    let traces = "subscription { traceEvents(environment: STAGING) { cursor spans { name attributes } } }";
    let mut fast = server.subscribed(&token(&a, "viewer"), "fast", traces, json!({})).await;
    let mut slow = server.subscribed(&token(&a, "viewer"), "slow", traces, json!({})).await;
    scrape_until(&server, |text| {
        metric(text, "runflow_subscription_executions ") == Some(3.0)
    })
    .await;
    let traced = run_execution(&server, &runtime, json!(null)).await;
    let batch = fill_a_slow_reader(&server, &runtime, &traced, &mut fast).await;
    let ended_with = loop {
        let message = slow.json().await;
        match message["type"].as_str() {
            Some("next") if message["payload"]["errors"].is_array() => break message,
            Some("next") => {}
            other => panic!("unexpected {other:?}: {message}"),
        }
    };
    assert_eq!(
        ended_with["payload"]["errors"][0]["extensions"]["code"],
        "SLOW_CONSUMER"
    );
    assert_eq!(slow.json().await, json!({ "type": "complete", "id": "slow" }));
    post_padded_spans(&server, &runtime, &traced, batch).await;
    assert!(
        fast.json().await["payload"]["errors"].is_null(),
        "the group goes on without it"
    );
}

/// A server-sent-events reader of a shared execution that stops reading is cut off with
/// SLOW_CONSUMER once its queue (`RUNFLOW_WS_BUFFER` results) is full; a WebSocket member of
/// the same execution goes on.
async fn a_server_sent_events_reader_that_stops_reading_is_cut_off(backend: Backend) {
    let server = Server::start_with(backend, &[("RUNFLOW_WS_BUFFER", "2")]).await;
    let tenant = tenant();
    agent_in_both(&server, &tenant).await;
    let runtime = runtime_token(&tenant, "staging");
    let execution = run_execution(&server, &runtime, json!(null)).await;
    let traces = "subscription { traceEvents(environment: STAGING) { cursor spans { name attributes } } }";
    let mut fast = server
        .subscribed(&token(&tenant, "viewer"), "fast", traces, json!({}))
        .await;
    let mut slow =
        crate::contract::EventStream::started(&server, Some(&token(&tenant, "viewer")), json!({ "query": traces }))
            .await;
    subscriptions_settle(&server, "sse", 1.0, 1.0).await;
    let batch = fill_a_slow_reader(&server, &runtime, &execution, &mut fast).await;
    let ended_with = loop {
        let payload = slow.next_data().await;
        if payload["errors"].is_array() {
            break payload;
        }
    };
    assert_eq!(
        ended_with["errors"][0]["extensions"]["code"], "SLOW_CONSUMER",
        "{ended_with}"
    );
    assert_eq!(slow.next().await.0, "complete");
    post_padded_spans(&server, &runtime, &execution, batch).await;
    assert!(
        fast.json().await["payload"]["errors"].is_null(),
        "the WebSocket member goes on"
    );
}

/// With PostgreSQL, an event committed through one replica reaches subscribers of another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: set RUNFLOW_TEST_POSTGRES_URL and pass --include-ignored"]
async fn replicas_share_the_live_feed() {
    let first = Server::start(Backend::Postgres).await;
    let second = first.replica().await;
    let tenant = tenant();
    agent_in_both(&first, &tenant).await;
    let mut ws = first
        .subscribed(
            &token(&tenant, "viewer"),
            "1",
            EXECUTIONS,
            json!({ "env": "PRODUCTION", "after": "0" }),
        )
        .await;
    let started = std::time::Instant::now();
    let id = run_execution(&second, &runtime_token(&tenant, "production"), json!("via replica")).await;
    let event = next_event(&mut ws).await;
    assert_eq!(
        (event["kind"].as_str(), event["execution"]["id"].as_str()),
        (Some("STARTED"), Some(gid("Execution", "PRODUCTION", &id).as_str()))
    );
    assert_eq!(next_event(&mut ws).await["execution"]["output"], "via replica");
    // Woken by NOTIFY, not by the one-second poll (a loose bound: this is not a benchmark).
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

on_both_backends!(
    events_are_filtered_by_tenant_and_environment_and_resume_without_gaps,
    session_and_trace_subscriptions_check_ids_at_subscribe_time,
    release_events_reach_every_releases_screen,
    runtime_api_writes_only_its_own_environment,
    protocol_close_codes,
    slow_consumers_are_cut_off_without_hurting_others,
    subscribers_of_one_operation_share_one_execution,
    a_server_sent_events_reader_that_stops_reading_is_cut_off,
    cursors_past_retention_fail_with_cursor_expired,
    event_log_lag_counts_undelivered_events,
    subscriptions_are_costed_on_every_streaming_transport,
    a_replaying_server_sent_events_subscription_reads_nested_fields_fresh,
);

/// A subscription that runs on its own over server-sent events (it replays from a cursor, so
/// it shares no execution) reads each event's nested fields fresh, like every other
/// subscription: its DataLoaders keep nothing from one event to the next. With a request's
/// cache, the agent's name would stay what the first event read for as long as the stream
/// lives.
async fn a_replaying_server_sent_events_subscription_reads_nested_fields_fresh(backend: Backend) {
    let server = Server::start(backend).await;
    let tenant = tenant();
    let developer = token(&tenant, "developer");
    deploy(&server, &developer, "bot", "print(1)\n", "m").await;
    let runtime = runtime_token(&tenant, "staging");
    let rename = |name: &'static str| {
        server.data(
            &developer,
            "mutation($n: String!) { updateAgent(environment: STAGING, input: {slug: \"bot\", name: $n}) { name } }",
            json!({ "n": name }),
        )
    };
    rename("First").await;
    let subscription =
        "subscription { executionEvents(environment: STAGING, after: \"0\") { kind execution { agent { name } } } }";
    let mut stream = crate::contract::EventStream::open(&server, Some(&developer), json!({ "query": subscription }))
        .await
        .expect("stream");
    let agent_name = |event: &Value| event["data"]["executionEvents"]["execution"]["agent"]["name"].clone();
    run_execution(&server, &runtime, json!(1)).await;
    for _ in 0..2 {
        let event = stream.next_data().await;
        assert_eq!(agent_name(&event), "First", "{event:#}");
    }
    rename("Second").await;
    run_execution(&server, &runtime, json!(2)).await;
    for _ in 0..2 {
        let event = stream.next_data().await;
        assert_eq!(agent_name(&event), "Second", "read fresh for each event: {event:#}");
    }
}

/// A subscription passes the cost limits like a query, over the WebSocket and server-sent
/// events, whether it shares an execution with others (no `after`) or runs on its own
/// (`graphql/operation.rs` runs every operation, whichever transport sends it).
async fn subscriptions_are_costed_on_every_streaming_transport(backend: Backend) {
    let server = Server::start(backend).await;
    let viewer = token(&tenant(), "viewer");
    let aliases: String = (0..31).map(|i| format!("c{i}: cursor ")).collect();
    let shared = format!("subscription {{ executionEvents(environment: STAGING) {{ {aliases} }} }}");
    let alone = format!("subscription {{ executionEvents(environment: STAGING, after: \"0\") {{ {aliases} }} }}");
    for query in [&shared, &alone] {
        let mut ws = server.subscribed(&viewer, "s", query, json!({})).await;
        let refused = ws.json().await;
        assert_eq!(refused["type"], "error", "{query}: {refused}");
        assert_eq!(
            refused["payload"][0]["extensions"]["code"], "ALIAS_LIMIT_EXCEEDED",
            "{query}: {refused}"
        );
        let mut stream = crate::contract::EventStream::started(&server, Some(&viewer), json!({ "query": query })).await;
        let refused = stream.next_data().await;
        assert_eq!(error_code(&refused), "ALIAS_LIMIT_EXCEEDED", "{query}: {refused}");
        assert_eq!(stream.next().await.0, "complete");
    }
}

/// Runs `script` of `tests/ws-client` (which needs the npm `package`) against a server on
/// `backend` where `bot` runs in both environments; returns the script's JSON summary.
async fn run_ws_client_check(backend: Backend, package: &str, script: &str) -> Value {
    let directory = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/ws-client");
    assert!(
        std::path::Path::new(directory)
            .join("node_modules")
            .join(package)
            .exists(),
        "run `npm ci --prefix tests/ws-client` first"
    );
    let server = Server::start(backend).await;
    let (tenant, other) = (tenant(), crate::support::tenant());
    agent_in_both(&server, &tenant).await;
    script_summary(
        tokio::process::Command::new("node")
            .arg(script)
            .current_dir(directory)
            .env("RUNFLOW_URL", &server.url)
            .env("VIEWER_TOKEN", token(&tenant, "viewer"))
            .env("RUNTIME_TOKEN", runtime_token(&tenant, "staging"))
            .env("OTHER_TOKEN", token(&other, "viewer")),
    )
    .await
}

/// The real `graphql-ws` npm client against the server (`tests/ws-client/check.mjs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Node.js and `npm ci --prefix tests/ws-client` (.ci/run installs them)"]
async fn the_graphql_ws_npm_client_works_unchanged() {
    let result = run_ws_client_check(Backend::Sqlite, "graphql-ws", "check.mjs").await;
    assert_eq!(
        result,
        json!({ "ok": true, "events": ["STARTED", "FINISHED"], "closeCode": 4403, "refusal": "NOT_FOUND" })
    );
}

/// The real `graphql-sse` npm client (distinct connections mode) against `/graphql/stream`
/// (`tests/ws-client/sse-check.mjs`): live events with cursors, resume, a refused token and
/// tenant isolation. On both back ends (the PostgreSQL one also needs the database).
async fn the_graphql_sse_npm_client_works_unchanged(backend: Backend) {
    let result = run_ws_client_check(backend, "graphql-sse", "sse-check.mjs").await;
    assert_eq!(
        result,
        json!({ "ok": true, "events": ["STARTED", "FINISHED"], "resumed": true, "refusedStatus": 401, "refusal": "NOT_FOUND" })
    );
}

mod graphql_sse_npm_client {
    use crate::support::Backend;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs Node.js and `npm ci --prefix tests/ws-client` (.ci/run installs them)"]
    async fn sqlite() {
        super::the_graphql_sse_npm_client_works_unchanged(Backend::Sqlite).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs Node.js, `npm ci --prefix tests/ws-client` and PostgreSQL (RUNFLOW_TEST_POSTGRES_URL)"]
    async fn postgres() {
        super::the_graphql_sse_npm_client_works_unchanged(Backend::Postgres).await
    }
}

/// Deploys agent `bot` to `tenant`'s staging through the domain layer and starts three
/// executions of it there (each appends events to the log).
async fn deploy_and_start_three(app: &crate::support::InProcess, tenant: &str) {
    let staging = crate::support::scope(tenant, entity::Environment::Staging);
    let editable = staging.editable().expect("staging");
    let limits = runflow::domain::agents::BundleLimits {
        max_bundle_bytes: 1 << 20,
        max_file_bytes: 1 << 20,
        max_files: 10,
    };
    let files = vec![runflow::domain::agents::BundleFile {
        path: "runflow.toml".into(),
        content: crate::support::manifest("bot"),
    }];
    let input = runflow::domain::agents::DeployInput {
        slug: "bot".into(),
        files,
        message: "m".into(),
    };
    runflow::domain::agents::deploy(app.db(), &editable, "t", &limits, Default::default(), input)
        .await
        .expect("deploy");
    for _ in 0..3 {
        app.start_execution(&staging, crate::support::start_of("bot")).await;
    }
}

/// The live feed's lag (`runflow_event_log_lag_*`): events committed past what a feed has
/// delivered are counted per tenant, with the age of the oldest; none once delivered.
async fn event_log_lag_counts_undelivered_events(backend: Backend) {
    let app = crate::support::InProcess::start(backend).await;
    let tenant = tenant();
    deploy_and_start_three(&app, &tenant).await;
    let head = runflow::domain::events::heads(app.db())
        .await
        .expect("heads")
        .into_iter()
        .find(|(t, _)| *t == tenant)
        .map(|(_, seq)| seq)
        .expect("the tenant's head");
    let behind = |seen: i64| std::collections::HashMap::from([(tenant.clone(), seen)]);
    let lag = runflow::live::lag_behind(app.db(), &behind(head - 3))
        .await
        .expect("lag");
    assert_eq!(lag.events, 3);
    assert!((0.0..3600.0).contains(&lag.seconds), "{lag:?}");
    let lag = runflow::live::lag_behind(app.db(), &behind(head - 1))
        .await
        .expect("lag");
    assert_eq!(lag.events, 1);
    let caught_up = runflow::live::lag_behind(app.db(), &behind(head)).await.expect("lag");
    assert_eq!(caught_up, runflow::live::Lag::default());
    // The process's own feed catches up by itself (it polls the log at least once a second).
    let mut feed_lag = None;
    for _ in 0..600 {
        let lag = app.app.services.live.lag(app.db()).await.expect("lag");
        if lag.events == 0 {
            feed_lag = Some(lag);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(feed_lag, Some(runflow::live::Lag::default()));
}

/// Events past retention are deleted; resuming from a cursor among them fails clearly.
async fn cursors_past_retention_fail_with_cursor_expired(backend: Backend) {
    use futures_util::StreamExt;
    let app = crate::support::InProcess::start(backend).await;
    let tenant = tenant();
    deploy_and_start_three(&app, &tenant).await;
    let subscribe = |after: &str| {
        let actor = crate::support::actor(&tenant, "viewer");
        let request = async_graphql::Request::new(
            "subscription($a: String) { executionEvents(environment: STAGING, after: $a) { cursor } }",
        )
        .variables(async_graphql::Variables::from_json(json!({ "a": after })));
        let request = runflow::graphql::prepare_request(
            &app.app.services,
            runflow::auth::Authentication::Authenticated(actor),
            request,
        );
        app.app.schema.execute_stream(request)
    };
    // Before pruning, the log replays from the start.
    let first = subscribe("0").next().await.expect("an event");
    assert_eq!(first.data.into_json().expect("json")["executionEvents"]["cursor"], "1");
    let deleted = runflow::domain::events::prune(app.db(), chrono::Utc::now() + chrono::Duration::seconds(1))
        .await
        .expect("prune");
    assert_eq!(deleted, 3);
    let expired = subscribe("1").next().await.expect("a response");
    let error = serde_json::to_value(&expired.errors).expect("errors");
    assert_eq!(error[0]["extensions"]["code"], "CURSOR_EXPIRED", "{error}");
    // The current cursor still works.
    let mut current = subscribe("3");
    let none = tokio::time::timeout(std::time::Duration::from_millis(300), current.next()).await;
    assert!(none.is_err(), "nothing after the latest cursor yet");
}

/// SIGTERM: open WebSockets get a 1001 close frame and the process exits cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_websockets_and_exits() {
    let mut server = Server::start(Backend::Sqlite).await;
    let mut ws = server
        .subscribed(
            &token(&tenant(), "viewer"),
            "1",
            "subscription { releaseEvents(environment: STAGING) { cursor } }",
            json!({}),
        )
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let status = tokio::task::block_in_place(|| server.terminate(std::time::Duration::from_secs(15)));
    assert_eq!(
        ws.closed().await.0,
        1001,
        "the socket was told the server is going away"
    );
    assert!(
        status.is_some_and(|s| s.success()),
        "the process exited cleanly: {status:?}"
    );
}
