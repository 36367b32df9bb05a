//! The sandbox and the run lifecycle: a hostile agent's every attempt fails (and the server
//! stays healthy, and no process of the run survives); a run's token can touch only its own
//! execution, agent and memory, and dies with the run; an agent calling itself stops at the
//! depth limit without deadlocking the workers; a worker killed with -9 leaves its executions
//! to be failed (or retried) after its lease; cancelling kills the whole run.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{
    Backend, JWT_SECRET, Server, call_webhook, error_code, gid, run_agent, runtime_token, sign_webhook, tenant, token,
};

const HOSTILE: &str = include_str!("hostile_agent.py");

fn agent_files(slug: &str, extra_manifest: &str, script: &str) -> Value {
    json!([
        { "path": "runflow.toml", "content": format!("name = \"{slug}\"\nentrypoint = [\"python3\", \"agent.py\"]\n{extra_manifest}") },
        { "path": "agent.py", "content": script },
    ])
}

async fn deploy(server: &Server, developer: &str, slug: &str, files: Value) {
    server
        .data(
            developer,
            "mutation($input: DeployAgentInput!) { deployAgent(environment: STAGING, input: $input) { commit { id } } }",
            json!({ "input": { "slug": slug, "files": files, "message": "deploy" } }),
        )
        .await;
}

/// Queues a run without waiting: the execution id.
async fn run_async(server: &Server, token: &str, tenant: &str, slug: &str, input: Value) -> String {
    let response = server
        .call_agent(token, tenant, "staging", &format!("{slug}?async=true"), &input)
        .await;
    assert_eq!(response.status(), 202);
    let body: Value = response.json().await.expect("json");
    body["id"].as_str().expect("id").to_string()
}

async fn execution(server: &Server, developer: &str, id: &str) -> Value {
    server
        .data(
            developer,
            "query($id: ID!) { execution(environment: STAGING, id: $id) { id status error depth parentId attempt } }",
            json!({ "id": id }),
        )
        .await["execution"]
        .clone()
}

/// Polls until the execution's status is one of `statuses` (bounded; no timing assertion).
async fn wait_for(server: &Server, developer: &str, id: &str, statuses: &[&str]) -> Value {
    for _ in 0..600 {
        let row = execution(server, developer, id).await;
        if statuses.iter().any(|s| row["status"] == *s) {
            return row;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "execution {id} never reached {statuses:?}: {}",
        execution(server, developer, id).await
    );
}

/// Processes of this machine whose command line contains `marker`.
fn processes_with(marker: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if !name.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(marker) {
                found.push(format!("{name}: {cmdline}"));
            }
        }
    }
    found
}

/// Waits until no process carries `marker` (bounded), and fails if one does.
async fn assert_no_survivor(marker: &str) {
    for _ in 0..100 {
        if processes_with(marker).is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("processes of the run survived it: {:?}", processes_with(marker));
}

fn marker() -> String {
    format!("hostile-marker-{}", uuid::Uuid::new_v4().simple())
}

const SANDBOX_ENV: &[(&str, &str)] = &[
    ("RUNFLOW_RUN_TIMEOUT", "8s"),
    ("RUNFLOW_RUN_MAX_PROCESSES", "32"),
    ("RUNFLOW_RUN_MAX_TMP_BYTES", "8388608"),
    ("RUNFLOW_RUN_MAX_OUTPUT_BYTES", "65536"),
];

async fn a_hostile_agent_fails_at_every_attempt(backend: Backend) {
    let server = Server::start_with(backend, SANDBOX_ENV).await;
    let tenant = tenant();
    let developer = token(&tenant, "developer");
    let deployment = runtime_token(&tenant, "staging");
    deploy(
        &server,
        &developer,
        "hostile",
        agent_files("hostile", "prompts = [\"allowed\"]\n", HOSTILE),
    )
    .await;
    deploy(
        &server,
        &developer,
        "victim",
        agent_files("victim", "", "print('{}')\n"),
    )
    .await;
    // Another agent's memory and another execution (through a deployment's runtime token).
    let (status, _) = server
        .runtime(
            &deployment,
            Method::PUT,
            "/memory/victim/secret",
            Some(json!({ "value": "victim's secret" })),
        )
        .await;
    assert_eq!(status, 200);
    let (status, other) = server
        .runtime(
            &deployment,
            Method::POST,
            "/executions",
            Some(json!({ "agent": "victim" })),
        )
        .await;
    assert_eq!(status, 201, "{other}");
    // Another run's temporary directory on the host.
    let other_run = tempfile::Builder::new()
        .prefix("runflow-bundle-")
        .tempdir()
        .expect("dir");
    std::fs::write(other_run.path().join("secret.txt"), "another run's file").expect("write");
    let port: u16 = server
        .url
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");

    let probe = run_agent(
        &server,
        &developer,
        &tenant,
        "hostile",
        json!({
            "attempt": "probe",
            "dataDir": server.data_dir(),
            "otherRunFile": other_run.path().join("secret.txt"),
            "serverPid": server.pid(),
            "serverPort": port,
            "otherExecution": other["id"],
        }),
    )
    .await;
    assert_eq!(probe["status"], "SUCCEEDED", "{probe:#}");
    let results = probe["output"]["results"].as_object().expect("results");
    assert!(results.len() >= 20, "{results:#?}");
    for (attempt, result) in results {
        assert_eq!(result["blocked"], true, "{attempt} was not blocked: {result:#}");
    }
    assert_eq!(probe["output"]["ownMemory"], 200, "the run's own namespace works");
    // No secret of the server reached the run, whatever it printed.
    let everything = probe.to_string();
    let secret_key = std::fs::read_to_string(server.data_dir().join("secret-key")).expect("secret key");
    for secret in [JWT_SECRET, secret_key.trim(), server.database_url()] {
        assert!(!everything.contains(secret), "a server secret reached the run");
    }
    // The run's token died with the run.
    let run_token = probe["output"]["token"].as_str().expect("token");
    let (status, body) = server
        .runtime(run_token, Method::GET, "/memory/hostile/note", None)
        .await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap_or_default().contains("ended"),
        "{body}"
    );

    // Fork bomb: stopped by the process cap; nothing survives.
    let mark = marker();
    let bomb = run_agent(
        &server,
        &developer,
        &tenant,
        "hostile",
        json!({ "attempt": "fork_bomb", "marker": mark }),
    )
    .await;
    assert_eq!(bomb["status"], "SUCCEEDED", "{bomb:#}");
    let started = bomb["output"]["started"].as_u64().expect("started");
    assert!(started < 32, "the fork bomb started {started} processes");
    assert!(bomb["output"]["error"].is_string(), "{bomb:#}");
    assert_no_survivor(&mark).await;

    // Filling the disk stops at the private tmpfs' size.
    let fill = run_agent(
        &server,
        &developer,
        &tenant,
        "hostile",
        json!({ "attempt": "fill_disk" }),
    )
    .await;
    assert_eq!(fill["status"], "SUCCEEDED", "{fill:#}");
    assert!(
        fill["output"]["written"].as_u64().expect("written") <= 8 * 1024 * 1024,
        "{fill:#}"
    );
    assert!(fill["output"]["error"].is_string(), "{fill:#}");

    // 100 MB on stdout: stopped at the output cap.
    let flood = run_agent(
        &server,
        &developer,
        &tenant,
        "hostile",
        json!({ "attempt": "flood_stdout" }),
    )
    .await;
    assert_eq!(flood["status"], "FAILED", "{flood:#}");
    assert!(
        flood["error"]
            .as_str()
            .unwrap_or_default()
            .contains("RUNFLOW_RUN_MAX_OUTPUT_BYTES"),
        "{flood:#}"
    );

    // A grandchild that outlives the timeout (own session, holding stdout) dies with the run.
    let mark = marker();
    let hang = run_agent(
        &server,
        &developer,
        &tenant,
        "hostile",
        json!({ "attempt": "grandchild", "marker": mark }),
    )
    .await;
    assert_eq!(hang["status"], "FAILED", "{hang:#}");
    assert!(
        hang["error"].as_str().unwrap_or_default().contains("timed out"),
        "{hang:#}"
    );
    assert_no_survivor(&mark).await;

    // The server is healthy after all of it.
    let health = server
        .http()
        .get(format!("{}/healthz", server.url))
        .send()
        .await
        .expect("health");
    assert_eq!(health.status(), 200);
    assert!(
        server.log().contains("sandboxed with bubblewrap"),
        "the start-up log names the sandbox"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_bubblewrap_agents_are_refused_unless_none_is_set() {
    let server = Server::start_with(Backend::Sqlite, &[("RUNFLOW_RUNNER_BWRAP", "/nonexistent/bwrap")]).await;
    let tenant = tenant();
    let developer = token(&tenant, "developer");
    deploy(&server, &developer, "echo", agent_files("echo", "", "print('{}')\n")).await;
    let refused = run_agent(&server, &developer, &tenant, "echo", json!({})).await;
    assert_eq!(refused["status"], "FAILED");
    let error = refused["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("refuses to run agents") && error.contains("RUNFLOW_RUNNER_SANDBOX=none"),
        "{error}"
    );
    assert!(server.log().contains("refuses to run agents"), "{}", server.log());

    let unsandboxed = Server::start_with(
        Backend::Sqlite,
        &[
            ("RUNFLOW_RUNNER_BWRAP", "/nonexistent/bwrap"),
            ("RUNFLOW_RUNNER_SANDBOX", "none"),
        ],
    )
    .await;
    deploy(
        &unsandboxed,
        &developer,
        "echo",
        agent_files("echo", "", "print('{}')\n"),
    )
    .await;
    let ran = run_agent(&unsandboxed, &developer, &tenant, "echo", json!({})).await;
    assert_eq!(ran["status"], "SUCCEEDED", "{ran:#}");
    assert!(unsandboxed.log().contains("WITHOUT isolation"));
}

const SELF_CALLING: &str = r#"
import json, os, sys, urllib.error, urllib.request
n = json.load(sys.stdin).get("n", 0)
url = "{}/v1/{}/{}/agents/loop".format(os.environ["RUNFLOW_API_URL"], os.environ["RUNFLOW_TENANT"], os.environ["RUNFLOW_ENVIRONMENT"])
request = urllib.request.Request(url, data=json.dumps({"n": n + 1}).encode(), method="POST")
request.add_header("authorization", "Bearer " + os.environ["RUNFLOW_TOKEN"])
request.add_header("content-type", "application/json")
try:
    with urllib.request.urlopen(request, timeout=120) as response:
        child = json.loads(response.read())
except urllib.error.HTTPError as error:
    child = {"status": error.code, "body": json.loads(error.read())}
print(json.dumps({"n": n, "child": child}))
"#;

async fn a_self_calling_agent_stops_at_the_depth_limit(backend: Backend) {
    // One worker per depth: the waiting parents never hold the slot their child needs.
    let server = Server::start_with(
        backend,
        &[("RUNFLOW_MAX_EXECUTION_DEPTH", "2"), ("RUNFLOW_WORKERS", "1")],
    )
    .await;
    let tenant = tenant();
    let developer = token(&tenant, "developer");
    deploy(&server, &developer, "loop", agent_files("loop", "", SELF_CALLING)).await;
    let root = run_agent(&server, &developer, &tenant, "loop", json!({})).await;
    assert_eq!(root["status"], "SUCCEEDED", "{root:#}");
    let child = &root["output"]["child"];
    let grandchild = &child["output"]["child"];
    assert_eq!(child["status"], "SUCCEEDED", "{root:#}");
    assert_eq!(grandchild["status"], "SUCCEEDED", "{root:#}");
    let refusal = &grandchild["output"]["child"];
    assert_eq!(refusal["status"], 429, "{root:#}");
    assert_eq!(refusal["body"]["error"]["code"], "LIMIT_EXCEEDED");
    assert!(
        refusal["body"]["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("RUNFLOW_MAX_EXECUTION_DEPTH"),
        "{refusal}"
    );
    // The chain is recorded: each child links to its parent, one level deeper.
    let (root_id, child_id, grandchild_id) = (
        root["id"].as_str().expect("id"),
        child["id"].as_str().expect("id"),
        grandchild["id"].as_str().expect("id"),
    );
    let child_row = execution(&server, &developer, child_id).await;
    let grandchild_row = execution(&server, &developer, grandchild_id).await;
    assert_eq!(execution(&server, &developer, root_id).await["depth"], 0);
    assert_eq!(
        (child_row["depth"].clone(), child_row["parentId"].clone()),
        (json!(1), json!(gid("Execution", "STAGING", root_id)))
    );
    assert_eq!(
        (grandchild_row["depth"].clone(), grandchild_row["parentId"].clone()),
        (json!(2), json!(gid("Execution", "STAGING", child_id)))
    );
}

const SLEEPER: &str = r#"
import json, subprocess, sys, time
marker = json.load(sys.stdin)["marker"]
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1000)", marker])
print("sleeping", file=sys.stderr, flush=True)
time.sleep(1000)
"#;

async fn a_killed_worker_leaves_its_executions_to_be_reclaimed(backend: Backend) {
    // The API process runs no workers; a separate `runflow worker` process runs the agents.
    let server = Server::start_with(backend, &[("RUNFLOW_WORKERS", "0"), ("RUNFLOW_RUN_LEASE", "2s")]).await;
    let tenant = tenant();
    let developer = token(&tenant, "developer");
    deploy(&server, &developer, "sleeper", agent_files("sleeper", "", SLEEPER)).await;
    deploy(
        &server,
        &developer,
        "retried",
        agent_files("retried", "idempotent = true\n", SLEEPER),
    )
    .await;
    let mut worker = server.worker(&[
        ("RUNFLOW_WORKERS", "2"),
        ("RUNFLOW_RUN_LEASE", "2s"),
        ("RUNFLOW_RUN_TIMEOUT", "10m"),
    ]);
    let (mark, retried_mark) = (marker(), marker());
    let lost = run_async(&server, &developer, &tenant, "sleeper", json!({ "marker": mark })).await;
    let retried = run_async(
        &server,
        &developer,
        &tenant,
        "retried",
        json!({ "marker": retried_mark }),
    )
    .await;
    wait_for(&server, &developer, &lost, &["RUNNING"]).await;
    wait_for(&server, &developer, &retried, &["RUNNING"]).await;
    // Wait until the runs are really going (their processes exist), then kill the worker.
    for _ in 0..300 {
        if !processes_with(&mark).is_empty() && !processes_with(&retried_mark).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!processes_with(&mark).is_empty(), "the run started");
    worker.kill().expect("kill -9 the worker");
    worker.wait().expect("reap the worker");

    let failed = wait_for(&server, &developer, &lost, &["FAILED", "SUCCEEDED", "CANCELLED"]).await;
    assert_eq!(failed["status"], "FAILED", "{failed:#}");
    assert!(
        failed["error"].as_str().unwrap_or_default().contains("lease expired"),
        "{failed:#}"
    );
    // An idempotent agent's run is queued again (attempt 2) for the next worker.
    let requeued = wait_for(&server, &developer, &retried, &["QUEUED", "FAILED"]).await;
    assert_eq!(
        (requeued["status"].clone(), requeued["attempt"].clone()),
        (json!("QUEUED"), json!(2))
    );
    // The sandbox died with its worker: nothing of either run survives.
    assert_no_survivor(&mark).await;
    assert_no_survivor(&retried_mark).await;
    let cleanup = server
        .data(
            &developer,
            "mutation($id: ID!) { cancelExecution(environment: STAGING, id: $id) { status } }",
            json!({ "id": retried }),
        )
        .await;
    assert_eq!(cleanup["cancelExecution"]["status"], "CANCELLED");
}

async fn cancelling_kills_the_whole_run(backend: Backend) {
    let server = Server::start_with(backend, &[("RUNFLOW_RUN_TIMEOUT", "10m")]).await;
    let tenant = tenant();
    let developer = token(&tenant, "developer");
    deploy(&server, &developer, "sleeper", agent_files("sleeper", "", SLEEPER)).await;
    let mark = marker();
    let id = run_async(&server, &developer, &tenant, "sleeper", json!({ "marker": mark })).await;
    wait_for(&server, &developer, &id, &["RUNNING"]).await;
    for _ in 0..300 {
        if !processes_with(&mark).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let cancel =
        "mutation($env: Environment!, $id: ID!) { cancelExecution(environment: $env, id: $id) { status error } }";
    // Production is read-only: no cancel there (not even of a staging id).
    let production = server
        .gql(Some(&developer), cancel, json!({ "env": "PRODUCTION", "id": id }))
        .await;
    assert_eq!(error_code(&production), "PRODUCTION_READ_ONLY");
    let cancelled = server
        .data(&developer, cancel, json!({ "env": "STAGING", "id": id }))
        .await;
    assert_eq!(cancelled["cancelExecution"]["status"], "CANCELLED");
    assert_no_survivor(&mark).await;
    let again = server
        .gql(Some(&developer), cancel, json!({ "env": "STAGING", "id": id }))
        .await;
    assert_eq!(error_code(&again), "CONFLICT");
    let other_tenant = server
        .gql(
            Some(&token(&tenant_of_other(), "developer")),
            cancel,
            json!({ "env": "STAGING", "id": id }),
        )
        .await;
    assert_eq!(error_code(&other_tenant), "NOT_FOUND");
    let viewer = server
        .gql(
            Some(&token(&tenant, "viewer")),
            cancel,
            json!({ "env": "STAGING", "id": id }),
        )
        .await;
    assert_eq!(error_code(&viewer), "FORBIDDEN");
}

async fn limits_on_executions_and_triggers(backend: Backend) {
    let server = Server::start_with(
        backend,
        &[
            ("RUNFLOW_WORKERS", "0"),
            ("RUNFLOW_MAX_ACTIVE_EXECUTIONS", "2"),
            ("RUNFLOW_MAX_TRIGGERS", "2"),
            ("RUNFLOW_MAX_FIRINGS_PER_MINUTE", "1"),
        ],
    )
    .await;
    let tenant = tenant();
    let developer = token(&tenant, "developer");
    deploy(&server, &developer, "echo", agent_files("echo", "", "print('{}')\n")).await;
    let create = "mutation($input: CreateTriggerInput!) { createTrigger(environment: STAGING, input: $input) { id } }";
    // Schedules tick at most once a minute by default.
    let too_often = server
        .gql(
            Some(&developer),
            create,
            json!({ "input": { "name": "fast", "agent": "echo", "kind": "SCHEDULE", "schedule": "*/10 * * * * *" } }),
        )
        .await;
    assert_eq!(error_code(&too_often), "BAD_USER_INPUT");
    assert!(crate::support::error_message(&too_often).contains("RUNFLOW_MIN_SCHEDULE_INTERVAL"));
    // Triggers per tenant.
    let secret = "a-webhook-secret-of-some-length";
    for name in ["hook", "nightly"] {
        let input = if name == "hook" {
            json!({ "name": name, "agent": "echo", "kind": "WEBHOOK", "secret": secret })
        } else {
            json!({ "name": name, "agent": "echo", "kind": "SCHEDULE", "schedule": "0 3 * * *" })
        };
        server.data(&developer, create, json!({ "input": input })).await;
    }
    let third = server
        .gql(
            Some(&developer),
            create,
            json!({ "input": { "name": "third", "agent": "echo", "kind": "SCHEDULE", "schedule": "0 4 * * *" } }),
        )
        .await;
    assert_eq!(error_code(&third), "LIMIT_EXCEEDED");
    // Firings per minute: the second webhook call within the minute is refused.
    let url = format!("{}/v1/{tenant}/staging/triggers/hook", server.url);
    let body = b"{}";
    let at = crate::support::now();
    let (status, _) = call_webhook(&server, &url, at, sign_webhook(secret, at, body), body).await;
    assert_eq!(status, 202);
    let (status, refused) = call_webhook(&server, &url, at, sign_webhook(secret, at, body), body).await;
    assert_eq!(
        (status, refused["error"]["code"].clone()),
        (429, json!("LIMIT_EXCEEDED")),
        "{refused}"
    );
    // Queued plus running executions per tenant (no workers here: they stay queued).
    run_async(&server, &developer, &tenant, "echo", json!({})).await;
    let response = server
        .call_agent(&developer, &tenant, "staging", "echo?async=true", &json!({}))
        .await;
    assert_eq!(response.status(), 429);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"]["code"], "LIMIT_EXCEEDED");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("RUNFLOW_MAX_ACTIVE_EXECUTIONS")
    );
}

/// Secrets can come from files instead of the process environment.
#[test]
fn secrets_are_read_from_files() {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("jwt");
    std::fs::write(&file, format!("{JWT_SECRET}\n")).expect("write");
    let runflow = |env: &[(&str, &str)]| {
        let mut command = std::process::Command::new(crate::support::binary());
        command
            .args(["token", "--tenant", "acme", "--role", "viewer"])
            .env_clear()
            .env("RUNFLOW_DATA_DIR", dir.path().join("data"));
        for (key, value) in env {
            command.env(key, value);
        }
        command.output().expect("run")
    };
    let minted = runflow(&[("RUNFLOW_JWT_SECRET_FILE", file.to_str().expect("path"))]);
    assert!(minted.status.success(), "{}", String::from_utf8_lossy(&minted.stderr));
    let token = String::from_utf8_lossy(&minted.stdout).trim().to_string();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.validate_aud = false;
    jsonwebtoken::decode::<Value>(
        &token,
        &jsonwebtoken::DecodingKey::from_secret(JWT_SECRET.as_bytes()),
        &validation,
    )
    .expect("signed with the file's secret");
    let both = runflow(&[
        ("RUNFLOW_JWT_SECRET_FILE", file.to_str().expect("path")),
        ("RUNFLOW_JWT_SECRET", JWT_SECRET),
    ]);
    assert!(!both.status.success());
    assert!(String::from_utf8_lossy(&both.stderr).contains("RUNFLOW_JWT_SECRET_FILE"));
    let missing = runflow(&[("RUNFLOW_JWT_SECRET_FILE", "/nonexistent/secret")]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("RUNFLOW_JWT_SECRET_FILE"));
}

/// An output or a log with NUL characters (which PostgreSQL cannot store) still ends the
/// execution (stored with U+FFFD), instead of leaving it RUNNING.
async fn nul_characters_do_not_leave_a_run_unrecorded(backend: Backend) {
    let server = Server::start(backend).await;
    let tenant = tenant();
    let developer = token(&tenant, "developer");
    let script = "import sys\nsys.stderr.write('log\\0with nul')\nprint('{\"x\": \"\\\\u0000\"}')\n";
    deploy(&server, &developer, "nul", agent_files("nul", "", script)).await;
    let ran = run_agent(&server, &developer, &tenant, "nul", json!({})).await;
    assert_eq!(ran["status"], "SUCCEEDED", "{ran:#}");
    assert_eq!(ran["output"], json!({ "x": "\u{FFFD}" }));
}

fn tenant_of_other() -> String {
    tenant()
}

async fn runtime_executions_never_finished_are_failed(backend: Backend) {
    let server = Server::start_with(
        backend,
        &[("RUNFLOW_RUNTIME_EXECUTION_TIMEOUT", "1s"), ("RUNFLOW_RUN_LEASE", "1s")],
    )
    .await;
    let tenant = tenant();
    let developer = token(&tenant, "developer");
    deploy(
        &server,
        &developer,
        "external",
        agent_files("external", "", "print('{}')\n"),
    )
    .await;
    let (status, started) = server
        .runtime(
            &runtime_token(&tenant, "staging"),
            Method::POST,
            "/executions",
            Some(json!({ "agent": "external" })),
        )
        .await;
    assert_eq!(status, 201);
    let id = started["id"].as_str().expect("id");
    let failed = wait_for(&server, &developer, id, &["FAILED", "SUCCEEDED"]).await;
    assert_eq!(failed["status"], "FAILED");
    assert!(
        failed["error"]
            .as_str()
            .unwrap_or_default()
            .contains("RUNFLOW_RUNTIME_EXECUTION_TIMEOUT"),
        "{failed:#}"
    );
}

on_both_backends!(
    a_hostile_agent_fails_at_every_attempt,
    a_self_calling_agent_stops_at_the_depth_limit,
    limits_on_executions_and_triggers,
    nul_characters_do_not_leave_a_run_unrecorded,
    a_killed_worker_leaves_its_executions_to_be_reclaimed,
    cancelling_kills_the_whole_run,
    runtime_executions_never_finished_are_failed,
);

/// Measures the sandbox's overhead per run (not a check: prints p50/p90 of the wall time of a
/// trivial agent's run, end to end through the agent endpoint, with bwrap and without).
/// `cargo test -p runflow-api --test e2e measure_sandbox_overhead -- --ignored --nocapture`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a test: run it with --ignored --nocapture"]
async fn measure_sandbox_overhead() {
    for mode in ["bwrap", "none"] {
        let server = Server::start_with(Backend::Sqlite, &[("RUNFLOW_RUNNER_SANDBOX", mode)]).await;
        let tenant = tenant();
        let developer = token(&tenant, "developer");
        // The same interpreter in both modes (without the sandbox, `python3` may resolve to a
        // slower shim of the host's PATH).
        let files = json!([
            { "path": "runflow.toml", "content": "name = \"noop\"\nentrypoint = [\"/usr/bin/python3\", \"agent.py\"]\n" },
            { "path": "agent.py", "content": "print('{}')\n" },
        ]);
        deploy(&server, &developer, "noop", files).await;
        let mut times = Vec::new();
        for round in 0..43 {
            let started = std::time::Instant::now();
            let ran = run_agent(&server, &developer, &tenant, "noop", json!({})).await;
            assert_eq!(ran["status"], "SUCCEEDED", "{ran:#}");
            if round >= 3 {
                times.push(started.elapsed());
            }
        }
        times.sort();
        let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize].as_secs_f64() * 1000.0;
        println!(
            "sandbox={mode}: runs={} p50={:.1} ms p90={:.1} ms",
            times.len(),
            at(0.5),
            at(0.9)
        );
    }
}
