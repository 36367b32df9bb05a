//! Outgoing webhooks end to end, against a receiver written with the Standard Webhooks
//! reference verifier (`tests/webhook-receiver`, the npm `standardwebhooks` package): a
//! message verifies unchanged, is retried after 500s, survives a server restart in the middle
//! of its retries; private targets are refused without the setting; the secret is never
//! returned; endpoints are admin-only and tenant-private.
//!
//! Needs Node.js and `npm ci --prefix tests/webhook-receiver` (`.ci/run` installs them), so
//! the tests are `#[ignore]`d by default; run them with `--ignored webhooks`.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt;

use crate::support::{Backend, Fetch, Server, deploy, error_code, error_message, plan_fingerprint, tenant, token};

/// A fixed credential key, so a restarted server opens the secrets the first one sealed.
const SECRET_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

const CREATE: &str = r#"mutation($input: CreateWebhookEndpointInput!) {
  createWebhookEndpoint(environment: STAGING, input: $input) {
    signingSecret
    webhookEndpoint { id url eventTypes enabled status secretHint revision }
  } }"#;

const DELIVERIES: &str = r#"query($id: ID!) { node(environment: STAGING, id: $id) { ... on WebhookEndpoint {
  status failingSince
  deliveries(first: 50) { totalCount nodes { id messageId eventType status attempts responseStatus latencyMs lastError payload } }
} } }"#;

/// The Node.js receiver; killed on drop.
struct Receiver {
    child: tokio::process::Child,
    base: String,
    http: reqwest::Client,
}

impl Receiver {
    async fn start(fail_first: u32) -> Receiver {
        let directory = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/webhook-receiver");
        assert!(
            std::path::Path::new(directory)
                .join("node_modules/standardwebhooks")
                .exists(),
            "run `npm ci --prefix tests/webhook-receiver` first"
        );
        let mut child = tokio::process::Command::new("node")
            .arg("receiver.mjs")
            .current_dir(directory)
            .env("RECEIVER_FAIL_FIRST", fail_first.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start node");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("the receiver starts")
            .expect("read")
            .expect("a line");
        let port = serde_json::from_str::<Value>(&line).expect("JSON")["port"]
            .as_u64()
            .expect("port");
        Receiver {
            child,
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
        }
    }

    fn url(&self) -> String {
        format!("{}/hooks/runflow", self.base)
    }

    async fn set_secret(&self, secret: &str) {
        self.http
            .post(format!("{}/_control/secret", self.base))
            .body(secret.to_string())
            .send()
            .await
            .expect("set secret");
    }

    async fn log(&self) -> Vec<Value> {
        self.http
            .get(format!("{}/_control/log", self.base))
            .send()
            .await
            .expect("log")
            .json()
            .await
            .expect("JSON log")
    }

    /// Waits (bounded) until the receiver has `count` calls; returns them.
    async fn wait_for_calls(&self, count: usize) -> Vec<Value> {
        for _ in 0..600 {
            let log = self.log().await;
            if log.len() >= count {
                return log;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the receiver got fewer than {count} calls: {:#?}", self.log().await);
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// Waits (bounded) until `check` holds for the endpoint's node; returns it.
async fn wait_for_endpoint(server: &Server, admin: &str, id: &str, check: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    for _ in 0..600 {
        last = server.data(admin, DELIVERIES, json!({ "id": id })).await["node"].clone();
        if check(&last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the endpoint never reached the expected state: {last:#}");
}

fn server_env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("RUNFLOW_WEBHOOK_ALLOW_PRIVATE", "true"),
        ("RUNFLOW_WEBHOOK_RETRY_BASE", "200ms"),
        ("RUNFLOW_SECRET_KEY", SECRET_KEY),
    ]
}

/// Deploys an agent to staging and publishes everything pending (one `release.published`).
async fn publish_something(server: &Server, tenant: &str, code: &str) -> Value {
    let (developer, publisher) = (token(tenant, "developer"), token(tenant, "publisher"));
    deploy(server, &developer, "bot", code, "change").await;
    let fingerprint = plan_fingerprint(server, &publisher).await;
    server
        .data(
            &publisher,
            "mutation($f: String!) { publish(environment: PRODUCTION, input: { all: true, fingerprint: $f, note: \"ship\" }) { release { id number } } }",
            json!({ "f": fingerprint }),
        )
        .await["publish"]["release"]
        .clone()
}

/// Creates an endpoint for the release events; returns its id and signing secret.
async fn create_endpoint(server: &Server, admin: &str, url: &str) -> (String, String) {
    create_endpoint_for(server, admin, url, &["RELEASE_PUBLISHED", "RELEASE_ROLLED_BACK"]).await
}

/// Creates an endpoint for `event_types`; returns its id and signing secret.
async fn create_endpoint_for(server: &Server, admin: &str, url: &str, event_types: &[&str]) -> (String, String) {
    let created = server
        .data(
            admin,
            CREATE,
            json!({ "input": { "url": url, "eventTypes": event_types } }),
        )
        .await["createWebhookEndpoint"]
        .clone();
    let secret = created["signingSecret"]
        .as_str()
        .expect("a generated secret")
        .to_string();
    assert!(secret.starts_with("whsec_"), "{secret}");
    let id = created["webhookEndpoint"]["id"].as_str().expect("id").to_string();
    (id, secret)
}

/// A published release reaches the receiver, which verifies it with the reference library;
/// the secret is returned once and never again; only admins of the tenant see the endpoint.
async fn a_delivery_verifies_with_the_reference_library(backend: Backend) {
    let receiver = Receiver::start(0).await;
    let server = Server::start_with(backend, &server_env()).await;
    let tenant = tenant();
    let admin = token(&tenant, "admin");
    let (id, secret) = create_endpoint(&server, &admin, &receiver.url()).await;
    receiver.set_secret(&secret).await;

    let release = publish_something(&server, &tenant, "print('v1')\n").await;
    let calls = receiver.wait_for_calls(1).await;
    let call = &calls[0];
    assert_eq!(call["verified"], true, "{call:#}");
    assert_eq!(call["status"], 204);
    assert_eq!(call["type"], "release.published");
    assert_eq!(call["path"], "/hooks/runflow");
    assert_eq!(call["payload"]["data"]["environment"], "production");
    assert_eq!(call["payload"]["data"]["release"]["number"], release["number"]);
    assert_eq!(call["payload"]["data"]["release"]["note"], "ship");

    let endpoint = wait_for_endpoint(&server, &admin, &id, |e| {
        e["deliveries"]["nodes"][0]["status"] == "SUCCEEDED"
    })
    .await;
    let delivery = &endpoint["deliveries"]["nodes"][0];
    assert_eq!(endpoint["deliveries"]["totalCount"], 1);
    assert_eq!(delivery["attempts"], 1);
    assert_eq!(delivery["responseStatus"], 204);
    assert_eq!(delivery["eventType"], "RELEASE_PUBLISHED");
    assert_eq!(delivery["messageId"], call["id"]);
    assert!(delivery["latencyMs"].as_i64().is_some());
    assert_eq!(endpoint["status"], "HEALTHY");

    // A tampered body fails the reference verification (the receiver really checks).
    let tampered = receiver
        .http
        .post(receiver.url())
        .header("webhook-id", call["id"].as_str().unwrap_or_default())
        .header("webhook-timestamp", call["timestamp"].as_str().unwrap_or_default())
        .header("webhook-signature", "v1,AAAA")
        .body("{}")
        .fetch()
        .await;
    assert_eq!(tampered.status(), 400);

    // The secret is write-only: no field returns it, in any query of the endpoint.
    let everything = server
        .gql(
            Some(&admin),
            "{ webhookEndpoints(environment: PRODUCTION) { nodes { id url eventTypes enabled status secretHint revision createdBy createdAt updatedAt deliveries { nodes { payload } } } } }",
            json!({}),
        )
        .await;
    let text = everything.to_string();
    let key = secret.trim_start_matches("whsec_");
    assert!(!text.contains(key), "the secret leaked: {text}");
    assert!(everything["data"]["webhookEndpoints"]["nodes"][0]["secretHint"].is_string());
    assert!(!server.log().contains(key), "the secret is in the server log");

    // Admins only; another tenant's admin sees nothing and cannot touch it.
    for role in ["viewer", "developer", "publisher"] {
        let reader = token(&tenant, role);
        let listed = server
            .gql(
                Some(&reader),
                "{ webhookEndpoints(environment: STAGING) { totalCount } }",
                json!({}),
            )
            .await;
        assert_eq!(error_code(&listed), "FORBIDDEN", "{role}");
        let node = server.gql(Some(&reader), DELIVERIES, json!({ "id": id })).await;
        assert_eq!(node["data"]["node"], Value::Null, "{role}");
        let test = server
            .gql(
                Some(&reader),
                "mutation($id: ID!) { testWebhookEndpoint(environment: STAGING, id: $id) { id } }",
                json!({ "id": id }),
            )
            .await;
        assert_eq!(error_code(&test), "FORBIDDEN", "{role}");
    }
    let stranger = token(&crate::support::tenant(), "admin");
    let node = server.data(&stranger, DELIVERIES, json!({ "id": id })).await;
    assert_eq!(node["node"], Value::Null);
    let deleted = server
        .gql(
            Some(&stranger),
            "mutation($id: ID!) { deleteWebhookEndpoint(environment: STAGING, id: $id) { deletedId } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(error_code(&deleted), "NOT_FOUND");
    // Production is read-only for these edits too.
    let production = server
        .gql(
            Some(&admin),
            "mutation($id: ID!) { testWebhookEndpoint(environment: PRODUCTION, id: $id) { id } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(error_code(&production), "PRODUCTION_READ_ONLY");
}

/// The receiver answers 500 twice: the message is retried and delivered on the third
/// attempt; a redelivery on request keeps its `webhook-id`; a test ping verifies too.
async fn a_delivery_is_retried_after_two_500s(backend: Backend) {
    let receiver = Receiver::start(2).await;
    let server = Server::start_with(backend, &server_env()).await;
    let tenant = tenant();
    let admin = token(&tenant, "admin");
    let (id, secret) = create_endpoint(&server, &admin, &receiver.url()).await;
    receiver.set_secret(&secret).await;
    publish_something(&server, &tenant, "print('v1')\n").await;

    let endpoint = wait_for_endpoint(&server, &admin, &id, |e| {
        e["deliveries"]["nodes"][0]["status"] == "SUCCEEDED"
    })
    .await;
    let delivery = endpoint["deliveries"]["nodes"][0].clone();
    assert_eq!(delivery["attempts"], 3);
    assert_eq!(delivery["responseStatus"], 204);
    assert_eq!(delivery["lastError"], Value::Null);
    let calls = receiver.log().await;
    let statuses: Vec<i64> = calls.iter().filter_map(|c| c["status"].as_i64()).collect();
    assert_eq!(statuses, vec![500, 500, 204]);
    assert!(
        calls
            .iter()
            .all(|c| c["verified"] == true && c["id"] == delivery["messageId"])
    );

    // Redelivery on request: a new delivery of the same message.
    let redelivered = server
        .data(
            &admin,
            "mutation($id: ID!) { redeliverWebhook(environment: STAGING, id: $id) { id messageId status } }",
            json!({ "id": delivery["id"] }),
        )
        .await["redeliverWebhook"]
        .clone();
    assert_eq!(redelivered["messageId"], delivery["messageId"]);
    assert_ne!(redelivered["id"], delivery["id"]);
    let calls = receiver.wait_for_calls(4).await;
    assert_eq!(calls[3]["verified"], true);
    assert_eq!(calls[3]["id"], delivery["messageId"]);

    // The test action sends a verified ping.
    let ping = server
        .data(
            &admin,
            "mutation($id: ID!) { testWebhookEndpoint(environment: STAGING, id: $id) { id eventType status } }",
            json!({ "id": id }),
        )
        .await["testWebhookEndpoint"]
        .clone();
    assert_eq!(ping["eventType"], "PING");
    let calls = receiver.wait_for_calls(5).await;
    assert_eq!(calls[4]["type"], "webhook.ping");
    assert_eq!(calls[4]["verified"], true);
}

/// The server stops after the first failed attempt; a new process on the same database
/// delivers the message (the outbox and its retry state are in the database).
async fn a_delivery_survives_a_restart_in_the_middle_of_retries(backend: Backend) {
    let receiver = Receiver::start(2).await;
    let mut env = server_env();
    // Slow enough retries that the first process is stopped before its second attempt.
    env.retain(|(k, _)| *k != "RUNFLOW_WEBHOOK_RETRY_BASE");
    env.push(("RUNFLOW_WEBHOOK_RETRY_BASE", "4s"));
    let mut first = Server::start_with(backend, &env).await;
    let tenant = tenant();
    let admin = token(&tenant, "admin");
    let (id, secret) = create_endpoint(&first, &admin, &receiver.url()).await;
    receiver.set_secret(&secret).await;
    publish_something(&first, &tenant, "print('v1')\n").await;
    wait_for_endpoint(&first, &admin, &id, |e| e["deliveries"]["nodes"][0]["attempts"] == 1).await;
    assert!(first.terminate(Duration::from_secs(20)).is_some(), "the server stops");
    let after_stop = receiver.log().await.len();
    assert!(after_stop < 3, "not delivered before the restart: {after_stop} calls");

    let second = first.replica_with(&server_env()).await;
    let endpoint = wait_for_endpoint(&second, &admin, &id, |e| {
        e["deliveries"]["nodes"][0]["status"] == "SUCCEEDED"
    })
    .await;
    assert_eq!(endpoint["deliveries"]["totalCount"], 1, "one message, not a duplicate");
    assert_eq!(endpoint["deliveries"]["nodes"][0]["attempts"], 3);
    let calls = receiver.log().await;
    assert_eq!(calls.len(), 3, "{calls:#?}");
    assert!(calls.iter().all(|c| c["verified"] == true));
    assert_eq!(calls[2]["status"], 204);
}

/// Without RUNFLOW_WEBHOOK_ALLOW_PRIVATE, loopback, private and link-local targets are
/// refused when saved, and again when sent (an endpoint saved while they were allowed).
async fn private_targets_are_refused_without_the_setting(backend: Backend) {
    let receiver = Receiver::start(0).await;
    let allowed = Server::start_with(backend, &server_env()).await;
    let tenant = tenant();
    let admin = token(&tenant, "admin");
    let (id, secret) = create_endpoint(&allowed, &admin, &receiver.url()).await;
    receiver.set_secret(&secret).await;
    let mut allowed = allowed;
    assert!(allowed.terminate(Duration::from_secs(20)).is_some());

    let strict = allowed
        .replica_with(&[
            ("RUNFLOW_SECRET_KEY", SECRET_KEY),
            ("RUNFLOW_WEBHOOK_RETRY_BASE", "200ms"),
        ])
        .await;
    for url in [
        receiver.url(),
        "http://localhost:8080/hook".to_string(),
        "http://10.1.2.3/hook".to_string(),
        "http://169.254.169.254/latest/meta-data".to_string(),
        "http://[::1]:9/".to_string(),
    ] {
        let refused = strict
            .gql(
                Some(&admin),
                CREATE,
                json!({ "input": { "url": url, "eventTypes": ["RELEASE_PUBLISHED"] } }),
            )
            .await;
        assert_eq!(error_code(&refused), "BAD_USER_INPUT", "{url}: {refused:#}");
        assert!(
            error_message(&refused).contains("RUNFLOW_WEBHOOK_ALLOW_PRIVATE"),
            "{refused:#}"
        );
    }
    // The endpoint saved earlier is checked again at send time: the attempt is refused.
    strict
        .data(
            &admin,
            "mutation($id: ID!) { testWebhookEndpoint(environment: STAGING, id: $id) { id } }",
            json!({ "id": id }),
        )
        .await;
    let endpoint = wait_for_endpoint(&strict, &admin, &id, |e| {
        e["deliveries"]["nodes"][0]["attempts"].as_i64() >= Some(1)
    })
    .await;
    let delivery = &endpoint["deliveries"]["nodes"][0];
    assert_eq!(delivery["responseStatus"], Value::Null);
    assert!(
        delivery["lastError"].as_str().unwrap_or_default().contains("loopback"),
        "{delivery:#}"
    );
    assert!(receiver.log().await.is_empty(), "the receiver was called");

    // Malformed input is refused with BAD_USER_INPUT.
    for input in [
        json!({ "url": "ftp://example.com/", "eventTypes": ["RELEASE_PUBLISHED"] }),
        json!({ "url": "https://example.com/", "eventTypes": [] }),
        json!({ "url": "https://example.com/", "eventTypes": ["PING"] }),
        json!({ "url": "https://example.com/", "eventTypes": ["RELEASE_PUBLISHED"], "secret": "plain" }),
    ] {
        let refused = strict.gql(Some(&admin), CREATE, json!({ "input": input })).await;
        assert_eq!(error_code(&refused), "BAD_USER_INPUT", "{input}: {refused:#}");
        assert!(!refused.to_string().contains("plain\""), "{refused}");
    }
}

/// Every subscribable event type that issue 12 names, end to end: each message reaches the
/// receiver once and verifies with the reference library; a failed execution in staging
/// sends nothing (only production failures are `execution.failed`).
async fn every_event_type_is_delivered_and_verifies(backend: Backend) {
    let receiver = Receiver::start(0).await;
    let server = Server::start_with(backend, &server_env()).await;
    let tenant = tenant();
    let (admin, developer, publisher) = (
        token(&tenant, "admin"),
        token(&tenant, "developer"),
        token(&tenant, "publisher"),
    );
    let (endpoint, secret) = create_endpoint_for(
        &server,
        &admin,
        &receiver.url(),
        &[
            "RELEASE_PUBLISHED",
            "RELEASE_ROLLED_BACK",
            "EXECUTION_FAILED",
            "RELEASE_REQUEST_OPENED",
            "RELEASE_REQUEST_APPROVED",
            "SCHEDULED_RELEASE_FAILED",
        ],
    )
    .await;
    receiver.set_secret(&secret).await;

    // A crashing agent in staging; its staging failure must not be sent.
    deploy(&server, &developer, "bot", "import sys\nsys.exit(3)\n", "crash").await;
    let run = invoke(&server, &developer, &tenant, "staging", "bot").await;
    assert_eq!(run["status"], "FAILED", "{run:#}");

    // Request, approve, publish.
    let fingerprint = plan_fingerprint(&server, &publisher).await;
    let request = server
        .data(
            &developer,
            "mutation($f: String!) { requestRelease(environment: STAGING, input: { all: true, fingerprint: $f, note: \"please\" }) { id } }",
            json!({ "f": fingerprint }),
        )
        .await["requestRelease"]["id"]
        .clone();
    server
        .data(
            &publisher,
            "mutation($id: ID!) { approveReleaseRequest(environment: STAGING, id: $id, comment: \"ok\") { state } }",
            json!({ "id": request }),
        )
        .await;
    let release = server
        .data(
            &publisher,
            "mutation($f: String!) { publish(environment: PRODUCTION, input: { all: true, fingerprint: $f }) { release { id number } } }",
            json!({ "f": fingerprint }),
        )
        .await["publish"]["release"]
        .clone();

    // The same agent fails in production.
    let run = invoke(&server, &developer, &tenant, "production", "bot").await;
    assert_eq!(run["status"], "FAILED", "{run:#}");

    // A rollback of that release.
    server
        .data(
            &publisher,
            "mutation($id: ID!) { publish(environment: PRODUCTION, input: { rollbackTo: $id }) { release { id kind } } }",
            json!({ "id": release["id"] }),
        )
        .await;

    // A scheduled release, then staging moves: it fails when it runs.
    deploy(&server, &developer, "bot", "print('{}')\n", "v2").await;
    let fingerprint = plan_fingerprint(&server, &publisher).await;
    let at = (chrono::Utc::now() + chrono::Duration::seconds(2)).to_rfc3339();
    let scheduled = server
        .data(
            &publisher,
            "mutation($f: String!, $at: DateTime!) { publish(environment: PRODUCTION, input: { all: true, fingerprint: $f, at: $at }) { scheduledRelease { id } } }",
            json!({ "f": fingerprint, "at": at }),
        )
        .await["publish"]["scheduledRelease"]["id"]
        .clone();
    deploy(&server, &developer, "bot", "print('{\"v\": 3}')\n", "v3").await;

    let mut calls = receiver.wait_for_calls(6).await;
    // Sent concurrently, so they may arrive in any order: order them by their event.
    calls.sort_by_key(|c| c["payload"]["data"]["eventSeq"].as_i64());
    let types: Vec<&str> = calls.iter().filter_map(|c| c["type"].as_str()).collect();
    assert_eq!(
        types,
        [
            "release_request.opened",
            "release_request.approved",
            "release.published",
            "execution.failed",
            "release.rolled_back",
            "scheduled_release.failed",
        ],
        "in event order, each once, no staging failure: {calls:#?}"
    );
    assert!(
        calls.iter().all(|c| c["verified"] == true && c["status"] == 204),
        "{calls:#?}"
    );
    let by_type = |t: &str| calls.iter().find(|c| c["type"] == t).expect("call");
    assert_eq!(
        by_type("release_request.opened")["payload"]["data"]["request"]["note"],
        "please"
    );
    assert_eq!(
        by_type("release_request.approved")["payload"]["data"]["request"]["state"],
        "approved"
    );
    let failed = &by_type("execution.failed")["payload"]["data"];
    assert_eq!(failed["environment"], "production");
    assert_eq!(failed["agent"], "bot");
    assert_eq!(failed["execution"]["status"], "FAILED");
    let rollback = &by_type("release.rolled_back")["payload"]["data"]["release"];
    assert_eq!(
        rollback["kind"].as_str().map(str::to_lowercase).as_deref(),
        Some("rollback"),
        "{rollback:#}"
    );
    let schedule = &by_type("scheduled_release.failed")["payload"]["data"]["scheduledRelease"];
    assert_eq!(schedule["stale_items"], json!(["agent:bot"]), "{schedule:#}");
    assert_eq!(schedule["state"], "failed");
    assert!(scheduled.as_str().is_some_and(|id| !id.is_empty()), "{scheduled}");
    // Nothing more arrives: a later ping is the very next call.
    server
        .data(
            &admin,
            "mutation($id: ID!) { testWebhookEndpoint(environment: STAGING, id: $id) { id } }",
            json!({ "id": endpoint }),
        )
        .await;
    let calls = receiver.wait_for_calls(7).await;
    assert_eq!(calls.len(), 7, "{calls:#?}");
    assert_eq!(calls[6]["type"], "webhook.ping");
}

/// An execution that fails in a separate `runflow worker` process (no webhook sender of its
/// own) is still delivered: the serve process sends from the event log the worker wrote to.
async fn a_failure_in_a_worker_process_is_delivered(backend: Backend) {
    let receiver = Receiver::start(0).await;
    let mut env = server_env();
    env.push(("RUNFLOW_WORKERS", "0"));
    let server = Server::start_with(backend, &env).await;
    let _worker = KillOnDrop(server.worker(&[("RUNFLOW_WORKERS", "1")]));
    let tenant = tenant();
    let (admin, developer) = (token(&tenant, "admin"), token(&tenant, "developer"));
    let (_, secret) = create_endpoint_for(&server, &admin, &receiver.url(), &["EXECUTION_FAILED"]).await;
    receiver.set_secret(&secret).await;
    publish_something(&server, &tenant, "import sys\nsys.exit(3)\n").await;
    let response = server
        .call_agent(&developer, &tenant, "production", "bot?async=true", &json!({}))
        .await;
    assert_eq!(response.status(), 202);
    let queued: Value = response.json().await.expect("json");

    let calls = receiver.wait_for_calls(1).await;
    assert_eq!(calls[0]["verified"], true, "{calls:#?}");
    assert_eq!(calls[0]["type"], "execution.failed");
    let execution = &calls[0]["payload"]["data"]["execution"];
    assert_eq!(execution["status"], "FAILED");
    assert!(
        queued["id"].as_str().is_some_and(|id| execution["id"]
            .as_str()
            .is_some_and(|e| id.contains(e) || e.contains(id))),
        "the worker's run: {queued:#} vs {execution:#}"
    );
}

/// A scheduled release that fell due while no scheduler ran, past the grace window, is
/// MISSED: that is a `scheduled_release.failed` message too (state `missed`).
async fn a_missed_scheduled_release_is_delivered_as_failed(backend: Backend) {
    let receiver = Receiver::start(0).await;
    let mut env = server_env();
    // No workers, so no scheduler, while the release falls due.
    env.push(("RUNFLOW_WORKERS", "0"));
    let server = Server::start_with(backend, &env).await;
    let tenant = tenant();
    let (admin, developer, publisher) = (
        token(&tenant, "admin"),
        token(&tenant, "developer"),
        token(&tenant, "publisher"),
    );
    let (_, secret) = create_endpoint_for(&server, &admin, &receiver.url(), &["SCHEDULED_RELEASE_FAILED"]).await;
    receiver.set_secret(&secret).await;
    deploy(&server, &developer, "bot", "print('{}')\n", "v1").await;
    let fingerprint = plan_fingerprint(&server, &publisher).await;
    let at = (chrono::Utc::now() + chrono::Duration::seconds(1)).to_rfc3339();
    server
        .data(
            &publisher,
            "mutation($f: String!, $at: DateTime!) { publish(environment: PRODUCTION, input: { all: true, fingerprint: $f, at: $at }) { scheduledRelease { id } } }",
            json!({ "f": fingerprint, "at": at }),
        )
        .await;
    // Wait (not a timing assertion) until it is well past due, then start a scheduler with a
    // one-second grace window.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let _scheduler = server
        .replica_with(&[
            ("RUNFLOW_SCHEDULED_RELEASE_GRACE", "1s"),
            ("RUNFLOW_SECRET_KEY", SECRET_KEY),
            ("RUNFLOW_WEBHOOK_ALLOW_PRIVATE", "true"),
        ])
        .await;
    let calls = receiver.wait_for_calls(1).await;
    assert_eq!(calls[0]["verified"], true, "{calls:#?}");
    assert_eq!(calls[0]["type"], "scheduled_release.failed");
    let scheduled = &calls[0]["payload"]["data"]["scheduledRelease"];
    assert_eq!(scheduled["state"], "missed", "{scheduled:#}");
    assert!(
        scheduled["failure"].as_str().unwrap_or_default().contains("grace"),
        "{scheduled:#}"
    );
}

/// A child process killed (and reaped) when the test ends, even by a failed assertion.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `slug` synchronously in `environment` (`staging` or `production`); returns the run.
async fn invoke(server: &Server, token: &str, tenant: &str, environment: &str, slug: &str) -> Value {
    let response = server.call_agent(token, tenant, environment, slug, &json!({})).await;
    assert_eq!(response.status(), 200);
    response.json().await.expect("JSON")
}

/// Both back ends, ignored by default like the other Node.js-driven tests: `.ci/run` installs
/// the receiver and runs them (`--ignored`, with RUNFLOW_TEST_POSTGRES_URL for PostgreSQL).
macro_rules! with_the_node_receiver {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[ignore = "needs Node.js and `npm ci --prefix tests/webhook-receiver` (.ci/run installs them)"]
                async fn $name() {
                    super::$name(crate::support::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[ignore = "needs PostgreSQL (RUNFLOW_TEST_POSTGRES_URL) and `npm ci --prefix tests/webhook-receiver`"]
                async fn $name() {
                    super::$name(crate::support::Backend::Postgres).await
                }
            )*
        }
    };
}

with_the_node_receiver!(
    a_delivery_verifies_with_the_reference_library,
    a_delivery_is_retried_after_two_500s,
    a_delivery_survives_a_restart_in_the_middle_of_retries,
    private_targets_are_refused_without_the_setting,
    every_event_type_is_delivered_and_verifies,
    a_failure_in_a_worker_process_is_delivered,
    a_missed_scheduled_release_is_delivered_as_failed,
);
