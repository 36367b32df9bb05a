//! The runner: agent endpoints run the environment's commit; crashes, hangs and floods fail
//! cleanly; workers of several processes never run one execution twice.

use reqwest::Method;
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{
    Backend, Fetch, Server, call_webhook, error_code, gid, now, publish_all, runtime_token, sign_webhook, tenant, token,
};

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/support-bot");

fn example_files() -> Value {
    let read = |name: &str| std::fs::read_to_string(format!("{EXAMPLE}/{name}")).expect("example file");
    json!([{ "path": "runflow.toml", "content": read("runflow.toml") }, { "path": "main.py", "content": read("main.py") }])
}

async fn deploy_files(server: &Server, developer: &str, slug: &str, files: Value) -> Value {
    server
        .data(
            developer,
            "mutation($input: DeployAgentInput!) { deployAgent(environment: STAGING, input: $input) { commit { id number } } }",
            json!({ "input": { "slug": slug, "files": files, "message": "deploy" } }),
        )
        .await["deployAgent"]["commit"]
        .clone()
}

/// Calls an agent endpoint; returns the status and the JSON body.
async fn invoke(
    server: &Server,
    token: &str,
    tenant: &str,
    environment: &str,
    slug: &str,
    query: &str,
    input: Value,
) -> (u16, Value) {
    let response = server
        .call_agent(token, tenant, environment, &format!("{slug}{query}"), &input)
        .await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn one_line_agent(slug: &str, script: &str) -> Value {
    json!([
        { "path": "runflow.toml", "content": format!("name = \"{slug}\"\nentrypoint = [\"python3\", \"agent.py\"]\n") },
        { "path": "agent.py", "content": script },
    ])
}

async fn staging_and_production_endpoints_run_their_commit(backend: Backend) {
    let server = Server::start(backend).await;
    let tenant = tenant();
    let (developer, publisher) = (token(&tenant, "developer"), token(&tenant, "publisher"));
    server
        .data(&developer, r#"mutation { savePromptDraft(environment: STAGING, input: {slug: "greeting", template: "Hi! You asked: {{question}}"}) { slug } }"#, json!({}))
        .await;
    let commit = deploy_files(&server, &developer, "support-bot", example_files()).await;

    let (status, run) = invoke(
        &server,
        &developer,
        &tenant,
        "staging",
        "support-bot",
        "",
        json!({ "question": "refunds?" }),
    )
    .await;
    assert_eq!(status, 200, "{run}");
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    assert_eq!(
        run["output"],
        json!({ "answer": "Hi! You asked: refunds?", "environment": "staging", "promptVersion": null })
    );
    assert_eq!(
        gid("Commit", "shared", run["commitId"].as_str().unwrap_or_default()),
        commit["id"]
    );
    let id = run["id"].as_str().expect("id").to_string();
    let recorded = server
        .data(
            &developer,
            r#"query($id: ID!) { execution(environment: STAGING, id: $id) { status spans { nodes { name kind } } }
                              memoryEntries(environment: STAGING) { edges { node { namespace key value } } } }"#,
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        recorded["execution"]["spans"]["nodes"],
        json!([{ "name": "answer", "kind": "PROMPT" }])
    );
    assert_eq!(
        recorded["memoryEntries"]["edges"],
        json!([{ "node": { "namespace": "staging:support-bot", "key": "last-question", "value": "refunds?" } }])
    );

    // Not in production until published; then production runs exactly that commit.
    let (status, _) = invoke(&server, &developer, &tenant, "production", "support-bot", "", json!({})).await;
    assert_eq!(status, 404);
    publish_all(&server, &publisher).await;
    let production = runtime_token(&tenant, "production");
    let (status, run) = invoke(
        &server,
        &production,
        &tenant,
        "production",
        "support-bot",
        "",
        json!({ "question": "prod?" }),
    )
    .await;
    assert_eq!(status, 200, "{run}");
    assert_eq!(
        run["output"],
        json!({ "answer": "Hi! You asked: prod?", "environment": "production", "promptVersion": 1 })
    );
    assert_eq!(
        gid("Commit", "shared", run["commitId"].as_str().unwrap_or_default()),
        commit["id"],
        "production runs the promoted commit"
    );
    let memory = server
        .data(
            &developer,
            "{ memoryEntries(environment: PRODUCTION) { edges { node { namespace } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        memory["memoryEntries"]["edges"],
        json!([{ "node": { "namespace": "support-bot" } }])
    );

    // Who may call: a runtime token of the other environment, a viewer, another tenant.
    for (caller, environment, expected) in [
        (runtime_token(&tenant, "staging"), "production", 403),
        (token(&tenant, "viewer"), "staging", 403),
        (token(&crate::support::tenant(), "admin"), "staging", 404),
    ] {
        let (status, _) = invoke(&server, &caller, &tenant, environment, "support-bot", "", json!({})).await;
        assert_eq!(status, expected, "a caller of {environment}");
    }

    // Asynchronously: 202 at once, then the execution finishes on its own.
    let (status, queued) = invoke(
        &server,
        &developer,
        &tenant,
        "staging",
        "support-bot",
        "?async=true",
        json!({ "question": "later" }),
    )
    .await;
    assert_eq!(status, 202);
    assert_eq!(queued["status"], "QUEUED");
    let query = "query($id: ID!) { execution(environment: STAGING, id: $id) { status output } }";
    let mut done = Value::Null;
    for _ in 0..100 {
        done = server.data(&developer, query, json!({ "id": queued["id"] })).await["execution"].clone();
        if done["status"] == "SUCCEEDED" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(done["output"]["answer"], "Hi! You asked: later");
}

async fn bad_agents_fail_cleanly(backend: Backend) {
    let server = Server::start_with(
        backend,
        &[("RUNFLOW_RUN_TIMEOUT", "2s"), ("RUNFLOW_RUN_MAX_OUTPUT_BYTES", "1000")],
    )
    .await;
    let tenant = tenant();
    let developer = token(&tenant, "developer");
    for (slug, script, expected) in [
        (
            "crash",
            "import sys\nprint('boom', file=sys.stderr)\nsys.exit(3)\n",
            "exited with exit status: 3: boom",
        ),
        ("hang", "import time\ntime.sleep(60)\n", "timed out after 2 s"),
        ("chatty", "print('x' * 100000)\n", "more than 1000 bytes"),
        ("not-json", "print('hello')\n", "not JSON"),
        ("silent", "pass\n", "printed nothing"),
    ] {
        deploy_files(&server, &developer, slug, one_line_agent(slug, script)).await;
        let started = std::time::Instant::now();
        let (status, run) = invoke(&server, &developer, &tenant, "staging", slug, "", json!({})).await;
        assert_eq!(status, 200, "{slug}: {run}");
        assert_eq!(run["status"], "FAILED", "{slug}: {run}");
        assert!(run["error"].as_str().unwrap_or("").contains(expected), "{slug}: {run}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(15),
            "{slug} answered in time"
        );
    }
    // A run's token reports on its own execution only.
    let snoop = [
        "import json, os, urllib.request, urllib.error",
        "request = urllib.request.Request(os.environ['RUNFLOW_API_URL'] + '/v1/runtime/executions/01a22851-0000-7000-8000-000000000000/finish', data=b'{\"status\": \"FAILED\"}', method='POST')",
        "request.add_header('authorization', 'Bearer ' + os.environ['RUNFLOW_TOKEN'])",
        "request.add_header('content-type', 'application/json')",
        "try:",
        "    code = urllib.request.urlopen(request).status",
        "except urllib.error.HTTPError as error:",
        "    code = error.code",
        "print(json.dumps({'other': code}))",
    ]
    .join("\n");
    deploy_files(&server, &developer, "snoop", one_line_agent("snoop", &snoop)).await;
    let (_, run) = invoke(&server, &developer, &tenant, "staging", "snoop", "", json!({})).await;
    assert_eq!(run["output"], json!({ "other": 403 }), "{run}");
    let log = server
        .data(
            &developer,
            "{ executions(environment: STAGING, agent: \"crash\") { edges { node { error log } } } }",
            json!({}),
        )
        .await;
    assert!(
        log["executions"]["edges"][0]["node"]["error"]
            .as_str()
            .unwrap_or("")
            .contains("boom")
    );
    assert_eq!(
        log["executions"]["edges"][0]["node"]["log"], "boom\n",
        "stderr is the execution's log"
    );
    let (status, _) = invoke(&server, &developer, &tenant, "staging", "ghost", "", json!({})).await;
    assert_eq!(status, 404);
    let response = server
        .http()
        .post(format!("{}/v1/{tenant}/staging/agents/crash", server.url))
        .bearer_auth(&developer)
        .body("{not json")
        .fetch()
        .await;
    assert_eq!(response.status(), 400);
}

async fn local_runs_get_staging_tokens_only(backend: Backend) {
    let server = Server::start(backend).await;
    let developer = token(&tenant(), "developer");
    let minted = server
        .data(
            &developer,
            "mutation { createRuntimeToken(environment: STAGING) { token environment expiresAt } }",
            json!({}),
        )
        .await;
    assert_eq!(minted["createRuntimeToken"]["environment"], "STAGING");
    let token = minted["createRuntimeToken"]["token"].as_str().expect("token");
    let (status, body) = server.runtime(token, Method::GET, "/prompts/nothing", None).await;
    assert_eq!(status, 404, "a working staging runtime token: {body}");
    let refused = server
        .gql(
            Some(&developer),
            "mutation { createRuntimeToken(environment: PRODUCTION) { token } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&refused), "PRODUCTION_READ_ONLY");
}

/// Two server processes with workers on one PostgreSQL database never run an execution twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: set RUNFLOW_TEST_POSTGRES_URL and pass --include-ignored"]
async fn two_workers_never_run_one_execution_twice() {
    let first = Server::start(Backend::Postgres).await;
    let second = first.replica().await;
    let tenant = tenant();
    let developer = token(&tenant, "developer");
    deploy_files(
        &first,
        &developer,
        "counter",
        one_line_agent("counter", "import json,sys\nprint(json.dumps(json.load(sys.stdin)))\n"),
    )
    .await;
    let runs = 24;
    for n in 0..runs {
        let server = if n % 2 == 0 { &first } else { &second };
        let (status, _) = invoke(
            server,
            &developer,
            &tenant,
            "staging",
            "counter",
            "?async=true",
            json!({ "n": n }),
        )
        .await;
        assert_eq!(status, 202);
    }
    let query = "{ executions(environment: STAGING, first: 100) { edges { node { id status output } } } }";
    let mut finished = Vec::new();
    for _ in 0..200 {
        let page = first.data(&developer, query, json!({})).await;
        finished = page["executions"]["edges"].as_array().cloned().unwrap_or_default();
        if finished.iter().all(|e| e["node"]["status"] == "SUCCEEDED") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(finished.len(), runs);
    assert!(
        finished.iter().all(|e| e["node"]["status"] == "SUCCEEDED"),
        "{finished:#?}"
    );
    // Each execution was claimed exactly once: one UPDATED (claim) event per execution.
    let mut ws = first
        .subscribed(
            &token(&tenant, "viewer"),
            "1",
            "subscription { executionEvents(environment: STAGING, after: \"0\") { kind execution { id } } }",
            json!({}),
        )
        .await;
    let mut claims = std::collections::HashMap::<String, usize>::new();
    for _ in 0..runs * 3 {
        let message = ws.json().await;
        let event = &message["payload"]["data"]["executionEvents"];
        if event["kind"] == "UPDATED" {
            *claims
                .entry(event["execution"]["id"].as_str().unwrap_or_default().to_string())
                .or_default() += 1;
        }
    }
    assert_eq!(claims.len(), runs);
    assert!(claims.values().all(|n| *n == 1), "{claims:?}");
}

const ECHO: &str = "import json,sys\nprint(json.dumps(json.load(sys.stdin)))\n";

async fn triggers_fire_in_their_own_environment(backend: Backend) {
    let server = Server::start_with(backend, &[("RUNFLOW_MIN_SCHEDULE_INTERVAL", "1s")]).await;
    let tenant = tenant();
    let developer = token(&tenant, "developer");
    deploy_files(&server, &developer, "echo", one_line_agent("echo", ECHO)).await;
    let create = "mutation($input: CreateTriggerInput!) { createTrigger(environment: STAGING, input: $input) { id webhookUrl hasSecret } }";
    let every_second = server
        .data(
            &developer,
            create,
            json!({ "input": { "name": "tick", "agent": "echo", "kind": "SCHEDULE", "schedule": "* * * * * *" } }),
        )
        .await["createTrigger"]
        .clone();
    assert_eq!(every_second["webhookUrl"], Value::Null);
    let secret = "a-webhook-secret-of-some-length";
    let hook = server
        .data(
            &developer,
            create,
            json!({ "input": { "name": "hook", "agent": "echo", "kind": "WEBHOOK", "secret": secret } }),
        )
        .await["createTrigger"]
        .clone();
    assert_eq!(hook["hasSecret"], true);
    assert_eq!(
        hook["webhookUrl"],
        format!("https://api.example.test/v1/{tenant}/staging/triggers/hook")
    );

    // The schedule fires in staging (and nowhere else: it is not published).
    let query = "query($env: Environment!) { executions(environment: $env, first: 100) { edges { node { trigger { id } status input } } } }";
    let mut fired = Vec::new();
    for _ in 0..100 {
        let page = server.data(&developer, query, json!({ "env": "STAGING" })).await;
        fired = page["executions"]["edges"].as_array().cloned().unwrap_or_default();
        if fired.iter().any(|e| e["node"]["status"] == "SUCCEEDED") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(!fired.is_empty(), "the schedule trigger fired");
    assert!(fired.iter().all(|e| e["node"]["trigger"]["id"] == every_second["id"]));
    assert_eq!(fired[0]["node"]["input"]["trigger"], "tick");
    let production = server.data(&developer, query, json!({ "env": "PRODUCTION" })).await;
    assert_eq!(
        production["executions"]["edges"],
        json!([]),
        "a staging trigger never fires in production"
    );
    server
        .data(
            &developer,
            r#"mutation { updateTrigger(environment: STAGING, input: {name: "tick", enabled: false}) { enabled } }"#,
            json!({}),
        )
        .await;

    // Webhook: a good signature over timestamp and body queues an execution of the trigger;
    // anything else is refused, with one answer for every reason.
    let url = format!("{}/v1/{tenant}/staging/triggers/hook", server.url);
    let body = br#"{"order": 42}"#;
    let at = now();
    let (status, queued) = call_webhook(&server, &url, at, sign_webhook(secret, at, body), body).await;
    assert_eq!(status, 202, "{queued}");
    assert_eq!(
        gid("Trigger", "STAGING", queued["triggerId"].as_str().unwrap_or_default()),
        hook["id"]
    );
    assert_eq!(queued["input"], json!({ "order": 42 }));
    let mut refusals = Vec::new();
    for (url, timestamp, signature, body) in [
        (
            url.clone(),
            at,
            sign_webhook("the-wrong-secret-entirely!!", at, body),
            &body[..],
        ),
        (url.clone(), at, "sha256=00".into(), &body[..]),
        (url.clone(), at, String::new(), &body[..]),
        // The signature covers the body...
        (
            url.clone(),
            at,
            sign_webhook(secret, at, body),
            &br#"{"order": 43}"#[..],
        ),
        // ...and the timestamp, which must be recent (replay protection).
        (url.clone(), at + 1, sign_webhook(secret, at, body), &body[..]),
        (url.clone(), at - 3600, sign_webhook(secret, at - 3600, body), &body[..]),
        // An unknown trigger, or one of another environment, answers exactly the same.
        (
            format!("{}/v1/{tenant}/staging/triggers/no-such-hook", server.url),
            at,
            sign_webhook(secret, at, body),
            &body[..],
        ),
        (
            format!("{}/v1/{tenant}/production/triggers/hook", server.url),
            at,
            sign_webhook(secret, at, body),
            &body[..],
        ),
    ] {
        refusals.push(call_webhook(&server, &url, timestamp, signature, body).await);
    }
    assert!(refusals.iter().all(|r| r == &refusals[0]), "{refusals:#?}");
    assert_eq!(refusals[0].0, 401);
    assert_eq!(refusals[0].1["error"]["code"], "UNAUTHENTICATED");
    let hooks = server
        .data(
            &developer,
            "{ executions(environment: STAGING, first: 100) { edges { node { trigger { id } } } } }",
            json!({}),
        )
        .await;
    let by_hook = hooks["executions"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .filter(|e| e["node"]["trigger"]["id"] == hook["id"])
        .count();
    assert_eq!(by_hook, 1, "only the signed call ran");
}

/// With two replicas on one PostgreSQL database, each schedule tick fires exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: set RUNFLOW_TEST_POSTGRES_URL and pass --include-ignored"]
async fn a_tick_fires_once_across_replicas() {
    let first = Server::start_with(Backend::Postgres, &[("RUNFLOW_MIN_SCHEDULE_INTERVAL", "1s")]).await;
    let second = first.replica().await;
    let tenant = tenant();
    let developer = token(&tenant, "developer");
    deploy_files(&first, &developer, "echo", one_line_agent("echo", ECHO)).await;
    first
        .data(&developer, r#"mutation { createTrigger(environment: STAGING, input: {name: "tick", agent: "echo", kind: SCHEDULE, schedule: "* * * * * *"}) { id } }"#, json!({}))
        .await;
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    first
        .data(
            &developer,
            r#"mutation { updateTrigger(environment: STAGING, input: {name: "tick", enabled: false}) { enabled } }"#,
            json!({}),
        )
        .await;
    let page = second
        .data(
            &developer,
            "{ executions(environment: STAGING, first: 100) { edges { node { input } } } }",
            json!({}),
        )
        .await;
    let ticks: Vec<String> = page["executions"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"]["input"]["tick"].to_string())
        .collect();
    assert!(ticks.len() >= 2, "it fired: {ticks:?}");
    let unique: std::collections::HashSet<&String> = ticks.iter().collect();
    assert_eq!(unique.len(), ticks.len(), "no tick fired twice: {ticks:?}");
}

on_both_backends!(
    staging_and_production_endpoints_run_their_commit,
    bad_agents_fail_cleanly,
    local_runs_get_staging_tokens_only,
    triggers_fire_in_their_own_environment,
);
