//! Fairness and bounds under load: per-tenant rate limits, the global in-flight cap, ingestion
//! size caps, WebSocket bounds (large events, clients that do not read, pong timeout,
//! per-tenant caps) and paged replay from an old cursor.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, Fetch, Frame, Server, Ws, deploy, gid, runtime_token, tenant, token};

const VIEWER: &str = "{ viewer(environment: STAGING) { tenant } }";

/// POSTs a GraphQL request; returns the status, the `Retry-After` header and the body.
async fn post(server: &Server, token: &str, query: &str) -> (u16, Option<String>, Value) {
    let response = server
        .http()
        .post(format!("{}/graphql", server.url))
        .bearer_auth(token)
        .json(&json!({ "query": query }))
        .fetch()
        .await;
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (status, retry_after, response.json().await.unwrap_or(Value::Null))
}

async fn start_execution(server: &Server, runtime: &str) -> String {
    let (status, started) = server
        .runtime(
            runtime,
            Method::POST,
            "/executions",
            Some(json!({ "agent": "bot", "input": {} })),
        )
        .await;
    assert_eq!(status, 201, "{started}");
    started["id"].as_str().expect("id").to_string()
}

async fn finish(server: &Server, runtime: &str, id: &str, output: Value) -> (u16, Value) {
    server
        .runtime(
            runtime,
            Method::POST,
            &format!("/executions/{id}/finish"),
            Some(json!({ "status": "SUCCEEDED", "output": output })),
        )
        .await
}

/// Tenant A floods GraphQL and the runtime API past its allowance and gets 429s with
/// `Retry-After` (GraphQL: RATE_LIMITED); tenant B's requests meanwhile all succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_are_per_tenant() {
    // A burst of 5, refilled one per 12 minutes: the test cannot outlast it.
    let server = Server::start_with(
        Backend::Sqlite,
        &[
            ("RUNFLOW_RATE_LIMIT_GRAPHQL", "5/h"),
            ("RUNFLOW_RATE_LIMIT_RUNTIME", "3/h"),
        ],
    )
    .await;
    let (a, b) = (tenant(), tenant());
    let (token_a, token_b) = (token(&a, "viewer"), token(&b, "viewer"));
    let mut statuses_a = Vec::new();
    let mut statuses_b = Vec::new();
    for _ in 0..8 {
        let (status, retry_after, body) = post(&server, &token_a, VIEWER).await;
        statuses_a.push(status);
        if status == 429 {
            assert_eq!(body["errors"][0]["extensions"]["code"], "RATE_LIMITED", "{body}");
            let seconds: u64 = retry_after.expect("Retry-After").parse().expect("seconds");
            assert!(seconds >= 1);
        }
        // B interleaves with A's flood and is never refused.
        let (status, _, body) = post(&server, &token_b, VIEWER).await;
        statuses_b.push(status);
        if statuses_b.len() <= 5 {
            assert_eq!(body["data"]["viewer"]["tenant"], json!(b));
        }
    }
    assert_eq!(statuses_a, [200, 200, 200, 200, 200, 429, 429, 429]);
    // B made 8 requests too: its own allowance (5) is the only thing that limits it.
    assert_eq!(&statuses_b[..5], [200; 5]);

    // The runtime API: the same, in its own error shape.
    let runtime_a = runtime_token(&a, "staging");
    let runtime_b = runtime_token(&b, "staging");
    let mut last = (0, Value::Null);
    for _ in 0..4 {
        last = server.runtime(&runtime_a, Method::GET, "/memory/ns/key", None).await;
    }
    assert_eq!(last.0, 429, "{}", last.1);
    assert_eq!(last.1["error"]["code"], "RATE_LIMITED");
    let (status, _) = server.runtime(&runtime_b, Method::GET, "/memory/ns/key", None).await;
    assert_eq!(status, 404, "B's runtime is not limited by A's flood");
    // Health checks are never limited.
    let health = server.get("/healthz").await;
    assert_eq!(health.status(), 200);
}

/// With one request allowed in flight, a second one is refused at once with 503
/// SERVICE_UNAVAILABLE and `Retry-After` (nothing queues).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_the_concurrency_limit_requests_get_a_fast_503() {
    let server = Server::start_with(
        Backend::Sqlite,
        &[
            ("RUNFLOW_MAX_CONCURRENT_REQUESTS", "1"),
            // No worker: a synchronous agent call waits (holding its slot) until we drop it.
            ("RUNFLOW_WORKERS", "0"),
        ],
    )
    .await;
    let tenant = tenant();
    let developer = token(&tenant, "developer");
    deploy(&server, &developer, "bot", "print(1)\n", "m").await;
    let client = server.http().clone();
    let url = format!("{}/v1/{tenant}/staging/agents/bot", server.url);
    // The agent call takes the only slot and keeps it (no worker runs it). Started again if it
    // was itself refused because it arrived while something else held the slot.
    let held = loop {
        let (client, url, hold) = (client.clone(), url.clone(), developer.clone());
        let held = tokio::spawn(async move { client.post(url).bearer_auth(hold).body("{}").send().await });
        tokio::time::sleep(Duration::from_millis(200)).await;
        if !held.is_finished() {
            break held;
        }
    };
    // Until the agent call holds the only slot, queries pass; from then on they get 503.
    let mut refused = None;
    for _ in 0..400 {
        let (status, retry_after, body) = post(&server, &developer, VIEWER).await;
        if status == 503 {
            refused = Some((retry_after, body));
            break;
        }
        assert_eq!(status, 200, "{body}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let (retry_after, body) = refused.expect("a 503 while the slot is held");
    assert_eq!(body["errors"][0]["extensions"]["code"], "SERVICE_UNAVAILABLE", "{body}");
    assert_eq!(retry_after.as_deref(), Some("1"));
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("RUNFLOW_MAX_CONCURRENT_REQUESTS"))
    );
    held.abort();
}

/// Oversized output, input, error, message content, span attributes and span counts are
/// refused with 413 PAYLOAD_TOO_LARGE naming the field and the limit; nothing is written.
async fn ingestion_size_caps(backend: Backend) {
    let server = Server::start_with(
        backend,
        &[
            ("RUNFLOW_MAX_OUTPUT_BYTES", "1000"),
            ("RUNFLOW_MAX_TEXT_BYTES", "500"),
            ("RUNFLOW_MAX_SPAN_ATTRIBUTES_BYTES", "200"),
            ("RUNFLOW_MAX_SPANS_PER_REQUEST", "3"),
        ],
    )
    .await;
    let tenant = tenant();
    deploy(&server, &token(&tenant, "developer"), "bot", "print(1)\n", "m").await;
    let runtime = runtime_token(&tenant, "staging");
    let refused = |(status, body): (u16, Value), field: &str, limit: &str| {
        assert_eq!(status, 413, "{body}");
        assert_eq!(body["error"]["code"], "PAYLOAD_TOO_LARGE");
        let message = body["error"]["message"].as_str().unwrap_or_default().to_string();
        assert!(message.contains(field) && message.contains(limit), "{message}");
    };
    refused(
        server
            .runtime(
                &runtime,
                Method::POST,
                "/executions",
                Some(json!({ "agent": "bot", "input": { "q": "x".repeat(600) } })),
            )
            .await,
        "`input`",
        "RUNFLOW_MAX_TEXT_BYTES",
    );
    let id = start_execution(&server, &runtime).await;
    refused(
        finish(&server, &runtime, &id, json!("y".repeat(1200))).await,
        "`output`",
        "1000 bytes",
    );
    refused(
        server
            .runtime(
                &runtime,
                Method::POST,
                &format!("/executions/{id}/finish"),
                Some(json!({ "status": "FAILED", "error": "e".repeat(600) })),
            )
            .await,
        "`error`",
        "500 bytes",
    );
    let span = |attributes: Value| json!({ "name": "s", "kind": "CUSTOM", "startTime": "2026-11-29T10:00:00Z", "attributes": attributes });
    refused(
        server
            .runtime(
                &runtime,
                Method::POST,
                &format!("/executions/{id}/spans"),
                Some(json!({ "spans": [span(json!({})), span(json!({ "pad": "z".repeat(300) }))] })),
            )
            .await,
        "spans[1].attributes",
        "RUNFLOW_MAX_SPAN_ATTRIBUTES_BYTES",
    );
    refused(
        server
            .runtime(
                &runtime,
                Method::POST,
                &format!("/executions/{id}/spans"),
                Some(json!({ "spans": [span(json!({})), span(json!({})), span(json!({})), span(json!({}))] })),
            )
            .await,
        "`spans`",
        "RUNFLOW_MAX_SPANS_PER_REQUEST",
    );
    let (status, session) = server
        .runtime(&runtime, Method::POST, "/sessions", Some(json!({ "title": "t" })))
        .await;
    assert_eq!(status, 201);
    refused(
        server
            .runtime(
                &runtime,
                Method::POST,
                &format!("/sessions/{}/messages", session["id"].as_str().unwrap_or_default()),
                Some(json!({ "role": "user", "content": "c".repeat(600) })),
            )
            .await,
        "`content`",
        "500 bytes",
    );
    // Nothing was written by the refused requests: the execution is still running, spanless.
    let data = server
        .data(
            &token(&tenant, "viewer"),
            "query($id: ID!) { execution(environment: STAGING, id: $id) { status output spans { nodes { id } } } }",
            json!({ "id": gid("Execution", "STAGING", &id) }),
        )
        .await;
    assert_eq!(data["execution"]["status"], "RUNNING");
    assert_eq!(data["execution"]["spans"]["nodes"], json!([]));
    // Within the caps, all is accepted.
    let (status, body) = finish(&server, &runtime, &id, json!("y".repeat(900))).await;
    assert_eq!(status, 200, "{body}");
}

const WITH_OUTPUT: &str =
    "subscription { executionEvents(environment: STAGING) { cursor kind execution { id status output } } }";

/// An event whose result is over 1 MiB reaches its subscriber whole (the socket's write buffer
/// always holds the largest allowed message); one over `RUNFLOW_WS_MAX_OUTGOING_BYTES` is
/// replaced by MESSAGE_TOO_LARGE with its cursor. Either way the socket stays up and later
/// events arrive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_event_does_not_drop_the_socket() {
    let server = Server::start_with(
        Backend::Sqlite,
        &[
            ("RUNFLOW_MAX_OUTPUT_BYTES", "4000000"),
            ("RUNFLOW_MAX_BODY_BYTES", "8000000"),
            ("RUNFLOW_WS_MAX_OUTGOING_BYTES", "2500000"),
        ],
    )
    .await;
    let tenant = tenant();
    deploy(&server, &token(&tenant, "developer"), "bot", "print(1)\n", "m").await;
    let runtime = runtime_token(&tenant, "staging");
    let mut ws = server
        .subscribed(&token(&tenant, "viewer"), "big", WITH_OUTPUT, json!({}))
        .await;
    // Let the subscription start: a first, small execution's events arrive.
    let warmup = start_execution(&server, &runtime).await;
    let next_event = async |ws: &mut crate::support::Ws| {
        let message = ws.json().await;
        assert_eq!(message["type"], "next", "{message}");
        message["payload"].clone()
    };
    assert_eq!(
        next_event(&mut ws).await["data"]["executionEvents"]["execution"]["id"],
        json!(gid("Execution", "STAGING", &warmup))
    );

    // 1.5 MB of output: more than the old 1 MiB write buffer; delivered whole.
    let id = start_execution(&server, &runtime).await;
    assert_eq!(next_event(&mut ws).await["data"]["executionEvents"]["kind"], "STARTED");
    let big = "o".repeat(1_500_000);
    assert_eq!(finish(&server, &runtime, &id, json!(big)).await.0, 200);
    let payload = next_event(&mut ws).await;
    assert_eq!(payload["data"]["executionEvents"]["kind"], "FINISHED");
    assert_eq!(payload["data"]["executionEvents"]["execution"]["output"], json!(big));

    // 3 MB: over the outgoing limit, replaced by an error carrying the cursor.
    let id = start_execution(&server, &runtime).await;
    let started = next_event(&mut ws).await;
    let started_cursor: i64 = started["data"]["executionEvents"]["cursor"]
        .as_str()
        .and_then(|c| c.parse().ok())
        .expect("cursor");
    assert_eq!(
        finish(&server, &runtime, &id, json!("p".repeat(3_000_000))).await.0,
        200
    );
    let payload = next_event(&mut ws).await;
    assert_eq!(
        payload["errors"][0]["extensions"]["code"], "MESSAGE_TOO_LARGE",
        "{payload}"
    );
    assert_eq!(
        payload["errors"][0]["extensions"]["cursor"],
        json!((started_cursor + 1).to_string())
    );

    // The socket is still up: the next execution's events arrive.
    let after = start_execution(&server, &runtime).await;
    assert_eq!(
        next_event(&mut ws).await["data"]["executionEvents"]["execution"]["id"],
        json!(gid("Execution", "STAGING", &after))
    );
}

/// Deploys `bot` for `tenant` and subscribes a socket to every trace event, which the test
/// then never reads.
async fn stalled_trace_subscriber(server: &Server, tenant: &str) -> Ws {
    deploy(server, &token(tenant, "developer"), "bot", "print(1)\n", "m").await;
    server
        .subscribed(
            &token(tenant, "viewer"),
            "all",
            "subscription { traceEvents(environment: STAGING, after: \"0\") { cursor spans { name attributes } } }",
            json!({}),
        )
        .await
}

/// Records several MB of trace events for `tenant` (12 batches of 200 spans of 1.5 KB each),
/// in a new staging execution.
async fn flood_with_spans(server: &Server, tenant: &str) {
    let runtime = runtime_token(tenant, "staging");
    let id = start_execution(server, &runtime).await;
    let pad = "x".repeat(1500);
    for batch in 0..12 {
        let spans: Vec<Value> = (0..200)
            .map(|i| json!({ "name": format!("s{batch}-{i}"), "kind": "CUSTOM", "startTime": "2026-11-29T10:00:00Z", "attributes": { "pad": pad } }))
            .collect();
        let (status, body) = server
            .runtime(
                &runtime,
                Method::POST,
                &format!("/executions/{id}/spans"),
                Some(json!({ "spans": spans })),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
}

/// A client that subscribes and then stops reading does not block the server: its
/// connection still ends on shutdown and the process exits promptly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_read_does_not_block_shutdown() {
    let mut server = Server::start_with(
        Backend::Sqlite,
        &[
            ("RUNFLOW_WS_KEEPALIVE", "1s"),
            ("RUNFLOW_WS_BUFFER_BYTES", "64000000"),
            ("RUNFLOW_RATE_LIMIT_RUNTIME", "off"),
        ],
    )
    .await;
    let tenant = tenant();
    let stalled = stalled_trace_subscriber(&server, &tenant).await;
    let mut reader = server.websocket(None).await;
    reader.init(&token(&tenant, "viewer")).await;
    // Several MB of events towards a client that reads nothing: its TCP window fills up.
    flood_with_spans(&server, &tenant).await;
    // The other client is served meanwhile (keep-alive pings reach it).
    reader.send(json!({ "type": "ping" })).await;
    assert_eq!(reader.json().await, json!({ "type": "pong" }));
    let status = server.terminate(Duration::from_secs(20));
    assert!(
        status.is_some_and(|s| s.success()),
        "the server exits despite the stalled client"
    );
    assert_eq!(reader.closed().await.0, 1001);
    drop(stalled);
}

/// A client that stops reading while the server has megabytes for it (and even sends a `ping`
/// it will never read the answer to) is still closed by the pong timeout, and its slot under
/// the per-tenant cap is freed: nothing in the connection waits on the client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_read_is_closed_and_frees_its_slot() {
    let server = Server::start_with(
        Backend::Sqlite,
        &[
            ("RUNFLOW_WS_KEEPALIVE", "1s"),
            ("RUNFLOW_WS_PONG_TIMEOUT", "1s"),
            ("RUNFLOW_WS_MAX_CONNECTIONS_PER_TENANT", "1"),
            ("RUNFLOW_WS_BUFFER", "4"),
        ],
    )
    .await;
    let tenant = tenant();
    let mut stalled = stalled_trace_subscriber(&server, &tenant).await;
    flood_with_spans(&server, &tenant).await;
    // A ping whose pong cannot be queued: the server must not wait for room.
    stalled.send(json!({ "type": "ping" })).await;
    // The tenant's only slot comes free once the server has given up on the stalled client.
    let mut reopened = false;
    for _ in 0..300 {
        let mut again = server.websocket(None).await;
        again
            .send(json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {}", token(&tenant, "viewer")) } }))
            .await;
        match again.next().await {
            Frame::Json(message) if message["type"] == "connection_ack" => {
                reopened = true;
                break;
            }
            Frame::Closed(1013, _) => tokio::time::sleep(Duration::from_millis(100)).await,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(reopened, "the stalled client's slot was freed");
    drop(stalled);
}

/// A socket that sends nothing back (no pong) is closed with 4504 after keep-alive + pong
/// timeout; one that answers pings stays open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_sockets_hit_the_pong_timeout() {
    let server = Server::start_with(
        Backend::Sqlite,
        &[("RUNFLOW_WS_KEEPALIVE", "1s"), ("RUNFLOW_WS_PONG_TIMEOUT", "1s")],
    )
    .await;
    let tenant = tenant();
    let viewer = token(&tenant, "viewer");
    let mut silent = server.websocket(None).await;
    silent.init(&viewer).await;
    let mut lively = server.websocket(None).await;
    lively.init(&viewer).await;
    // The lively one answers every ping, five times (the silent one stays silent meanwhile).
    let mut pongs = 0;
    while pongs < 5 {
        match lively_next(&mut lively).await {
            Some(kind) if kind == "ping" => {
                lively.send(json!({ "type": "pong" })).await;
                pongs += 1;
            }
            Some(_) => {}
            None => panic!("the answering socket was closed"),
        }
    }
    // `next` skips pings without answering them: the silent socket was closed.
    let (code, reason) = silent.closed().await;
    assert_eq!(code, 4504, "{reason}");
}

/// The raw next message's type (pings included); None when closed.
async fn lively_next(ws: &mut crate::support::Ws) -> Option<String> {
    match ws.next_raw().await {
        Frame::Json(value) => value["type"].as_str().map(str::to_string),
        Frame::Closed(..) => None,
    }
}

/// A tenant holds at most RUNFLOW_WS_MAX_CONNECTIONS_PER_TENANT sockets and opens at most
/// RUNFLOW_RATE_LIMIT_WS_CONNECTS; beyond either: 1013 (try again later). Other tenants are
/// unaffected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_caps_are_per_tenant() {
    let init = |tenant: &str| json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {}", token(tenant, "viewer")) } });
    // The cap.
    let server = Server::start_with(Backend::Sqlite, &[("RUNFLOW_WS_MAX_CONNECTIONS_PER_TENANT", "2")]).await;
    let (a, b) = (tenant(), tenant());
    let mut first = server.websocket(None).await;
    first.init(&token(&a, "viewer")).await;
    let mut second = server.websocket(None).await;
    second.init(&token(&a, "viewer")).await;
    let mut third = server.websocket(None).await;
    third.send(init(&a)).await;
    let (code, reason) = third.closed().await;
    assert_eq!(code, 1013);
    assert!(reason.contains("too many connections"), "{reason}");
    // Another tenant connects fine meanwhile.
    let mut other = server.websocket(None).await;
    other.init(&token(&b, "viewer")).await;
    // Closing one of A's sockets frees a slot (as soon as the server has seen the close).
    drop(first);
    let mut reopened = false;
    for _ in 0..200 {
        let mut again = server.websocket(None).await;
        again.send(init(&a)).await;
        match again.next().await {
            Frame::Json(message) if message["type"] == "connection_ack" => {
                reopened = true;
                break;
            }
            Frame::Closed(1013, reason) if reason.contains("too many connections") => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(reopened, "a slot is freed when a socket closes");
    drop(second);

    // The connection rate.
    let server = Server::start_with(Backend::Sqlite, &[("RUNFLOW_RATE_LIMIT_WS_CONNECTS", "2/h")]).await;
    let mut open = Vec::new();
    for _ in 0..2 {
        let mut ws = server.websocket(None).await;
        ws.init(&token(&a, "viewer")).await;
        open.push(ws);
    }
    let mut limited = server.websocket(None).await;
    limited.send(init(&a)).await;
    let (code, reason) = limited.closed().await;
    assert_eq!(code, 1013);
    assert!(reason.contains("rate limit"), "{reason}");
    let mut other = server.websocket(None).await;
    other.init(&token(&b, "viewer")).await;
    // With the token in the upgrade request, the refusal is an HTTP 429 with `Retry-After`.
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = format!("{}/graphql/ws", server.url.replace("http://", "ws://"))
        .into_client_request()
        .expect("request");
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().expect("header"),
    );
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {}", token(&a, "viewer")).parse().expect("header"),
    );
    match tokio_tungstenite::connect_async(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 429);
            assert!(response.headers().get("retry-after").is_some());
        }
        other => panic!("expected a 429, got {:?}", other.map(|(_, response)| response.status())),
    }
}

/// Subscribing with an old cursor replays more than a page of history in order, with no gap
/// and no duplicate, then goes on live.
async fn paged_replay_from_an_old_cursor(backend: Backend) {
    let server = Server::start_with(backend, &[("RUNFLOW_RATE_LIMIT_RUNTIME", "off")]).await;
    let tenant = tenant();
    deploy(&server, &token(&tenant, "developer"), "bot", "print(1)\n", "m").await;
    let runtime = runtime_token(&tenant, "staging");
    let (status, session) = server
        .runtime(&runtime, Method::POST, "/sessions", Some(json!({ "title": "t" })))
        .await;
    assert_eq!(status, 201);
    let session = session["id"].as_str().expect("id").to_string();
    // 1 + 1,100 events: more than two replay pages (500).
    let messages = 1100;
    for i in 0..messages {
        let (status, body) = server
            .runtime(
                &runtime,
                Method::POST,
                &format!("/sessions/{session}/messages"),
                Some(json!({ "role": "user", "content": format!("m{i}") })),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let mut ws = server
        .subscribed(
            &token(&tenant, "viewer"),
            "replay",
            "subscription { sessionEvents(environment: STAGING, after: \"0\") { cursor kind message { content } } }",
            json!({}),
        )
        .await;
    let mut cursors = Vec::new();
    let mut contents = Vec::new();
    while cursors.len() < messages + 1 {
        let message = ws.json().await;
        assert_eq!(message["type"], "next", "{message}");
        let event = &message["payload"]["data"]["sessionEvents"];
        cursors.push(
            event["cursor"]
                .as_str()
                .and_then(|c| c.parse::<i64>().ok())
                .expect("cursor"),
        );
        if event["kind"] == "MESSAGE_ADDED" {
            contents.push(event["message"]["content"].as_str().unwrap_or_default().to_string());
        }
    }
    let expected: Vec<i64> = (1..=(messages as i64 + 1)).collect();
    assert_eq!(cursors, expected, "every event once, in order");
    // Message contents are not in the events: they are read fresh, and right.
    assert_eq!(contents.first().map(String::as_str), Some("m0"));
    assert_eq!(contents.last().cloned(), Some(format!("m{}", messages - 1)));
    // Then live.
    let (status, _) = server
        .runtime(
            &runtime,
            Method::POST,
            &format!("/sessions/{session}/messages"),
            Some(json!({ "role": "user", "content": "live" })),
        )
        .await;
    assert_eq!(status, 201);
    let message = ws.json().await;
    assert_eq!(
        message["payload"]["data"]["sessionEvents"]["message"]["content"],
        "live"
    );
    assert_eq!(
        message["payload"]["data"]["sessionEvents"]["cursor"],
        json!((messages + 2).to_string())
    );
}

/// The per-tenant record caps bound the lists that are not paged (`pendingChanges`, plans and
/// release items), and the plain lists of names and resources have their documented limits.
async fn record_caps_and_plain_list_limits(backend: Backend) {
    let server = Server::start_with(backend, &[("RUNFLOW_MAX_RECORDS_PER_KIND", "2")]).await;
    let developer = token(&tenant(), "developer");
    let refused = |response: &Value, code: &str, naming: &str| {
        assert_eq!(crate::support::error_code(response), code, "{response}");
        let message = crate::support::error_message(response);
        assert!(message.contains(naming), "{message}");
    };

    // Agents: a third new slug is refused; redeploying an existing one is not.
    for slug in ["first", "second"] {
        deploy(&server, &developer, slug, "print('{}')\n", "v1").await;
    }
    let deploy_third = server
        .gql(
            Some(&developer),
            "mutation($input: DeployAgentInput!) { deployAgent(environment: STAGING, input: $input) { commit { id } } }",
            json!({ "input": { "slug": "third", "message": "v1", "files": [
                { "path": "runflow.toml", "content": crate::support::manifest("third") },
                { "path": "main.py", "content": "print('{}')\n" },
            ]}}),
        )
        .await;
    refused(&deploy_third, "LIMIT_EXCEEDED", "RUNFLOW_MAX_RECORDS_PER_KIND");
    deploy(&server, &developer, "first", "print('{\"v\": 2}')\n", "v2").await;

    // Prompts.
    let draft =
        "mutation($input: SavePromptDraftInput!) { savePromptDraft(environment: STAGING, input: $input) { slug } }";
    for slug in ["hello", "bye"] {
        server
            .data(
                &developer,
                draft,
                json!({ "input": { "slug": slug, "template": "Hi" } }),
            )
            .await;
    }
    let third_prompt = server
        .gql(
            Some(&developer),
            draft,
            json!({ "input": { "slug": "third", "template": "Hi" } }),
        )
        .await;
    refused(&third_prompt, "LIMIT_EXCEEDED", "RUNFLOW_MAX_RECORDS_PER_KIND");
    server
        .data(
            &developer,
            draft,
            json!({ "input": { "slug": "hello", "template": "Hello" } }),
        )
        .await;
    // A prompt declares at most 100 variables.
    let variables: Vec<String> = (0..101).map(|i| format!("v{i}")).collect();
    let too_many_variables = server
        .gql(
            Some(&developer),
            draft,
            json!({ "input": { "slug": "bye", "template": "Hi", "variables": variables } }),
        )
        .await;
    refused(&too_many_variables, "BAD_USER_INPUT", "variables");

    // Connectors, and a connector's list of credential names (at most 100).
    let create =
        "mutation($input: CreateConnectorInput!) { createConnector(environment: STAGING, input: $input) { slug } }";
    let names: Vec<String> = (0..101).map(|i| format!("key-{i}")).collect();
    let too_many_names = server
        .gql(
            Some(&developer),
            create,
            json!({ "input": { "slug": "crm", "kind": "http", "credentials": names } }),
        )
        .await;
    refused(&too_many_names, "BAD_USER_INPUT", "credentials");
    for slug in ["crm", "erp"] {
        server
            .data(&developer, create, json!({ "input": { "slug": slug, "kind": "http" } }))
            .await;
    }
    let third_connector = server
        .gql(
            Some(&developer),
            create,
            json!({ "input": { "slug": "wms", "kind": "http" } }),
        )
        .await;
    refused(&third_connector, "LIMIT_EXCEEDED", "RUNFLOW_MAX_RECORDS_PER_KIND");

    // A connector holds at most 200 resources.
    let resource = "mutation($input: ConnectorResourceInput!) { createConnectorResource(environment: STAGING, input: $input) { key } }";
    for i in 0..200 {
        server
            .data(
                &developer,
                resource,
                json!({ "input": { "connector": "crm", "key": format!("r{i}"), "config": {} } }),
            )
            .await;
    }
    let resource_201 = server
        .gql(
            Some(&developer),
            resource,
            json!({ "input": { "connector": "crm", "key": "r200", "config": {} } }),
        )
        .await;
    refused(&resource_201, "LIMIT_EXCEEDED", "200");

    // So the unpaged list of pending changes holds one entry per record: 2 + 2 + 2.
    let pending = server
        .data(
            &developer,
            "{ pendingChanges(environment: STAGING) { key } }",
            json!({}),
        )
        .await;
    let mut keys: Vec<&str> = pending["pendingChanges"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|item| item["key"].as_str())
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "agent:first",
            "agent:second",
            "connector:crm",
            "connector:erp",
            "prompt:bye",
            "prompt:hello"
        ]
    );
}

/// Concurrent creates cannot overshoot a record cap: the count and the insert happen under one
/// per-tenant lock (on PostgreSQL, READ COMMITTED would otherwise let every writer count the
/// same number).
async fn concurrent_creates_respect_the_record_cap(backend: Backend) {
    let server = Server::start_with(backend, &[("RUNFLOW_MAX_RECORDS_PER_KIND", "3")]).await;
    let developer = token(&tenant(), "developer");
    let create =
        "mutation($input: CreateConnectorInput!) { createConnector(environment: STAGING, input: $input) { slug } }";
    let responses = futures_util::future::join_all((0..40).map(|i| {
        server.gql(
            Some(&developer),
            create,
            json!({ "input": { "slug": format!("c{i}"), "kind": "http" } }),
        )
    }))
    .await;
    let created = responses.iter().filter(|r| r["errors"].is_null()).count();
    let refused: Vec<String> = responses
        .iter()
        .filter(|r| !r["errors"].is_null())
        .map(crate::support::error_code)
        .collect();
    assert_eq!(created, 3, "{responses:#?}");
    assert!(refused.iter().all(|code| code == "LIMIT_EXCEEDED"), "{refused:?}");
    let listed = server
        .data(
            &developer,
            "{ connectors(environment: STAGING) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(listed["connectors"]["totalCount"], 3);
}

on_both_backends!(
    ingestion_size_caps,
    paged_replay_from_an_old_cursor,
    record_caps_and_plain_list_limits,
    concurrent_creates_respect_the_record_cap
);
