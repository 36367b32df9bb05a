//! Outbound network of sandboxed runs (`RUNFLOW_RUNNER_EGRESS`): with `public` a run gets a
//! CONNECT proxy that refuses local and private targets (the database port, the server, the
//! host's loopback by name or IPv6) before connecting anywhere, and refuses plain HTTP and
//! oversized heads; with `none` (the default) there is no proxy and no proxy variables.
//! Only 127.0.0.1 is ever contacted: every target here must be refused.

use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, Server, run_agent, tenant, token};

const AGENT: &str = include_str!("egress_agent.py");

async fn probe(server: &Server) -> Value {
    let tenant = tenant();
    let developer = token(&tenant, "developer");
    let files = json!([
        { "path": "runflow.toml", "content": "name = \"egress\"\nentrypoint = [\"python3\", \"agent.py\"]\n" },
        { "path": "agent.py", "content": AGENT },
    ]);
    server
        .data(
            &developer,
            "mutation($input: DeployAgentInput!) { deployAgent(environment: STAGING, input: $input) { commit { id } } }",
            json!({ "input": { "slug": "egress", "files": files, "message": "deploy" } }),
        )
        .await;
    let port = server.url.rsplit(':').next().expect("port");
    let targets = json!({ "connect": [
            "127.0.0.1:5432",
            format!("127.0.0.1:{port}"),
            "localhost:5432",
            "[::1]:5432",
            "[::ffff:127.0.0.1]:5432",
            "10.0.0.1:443",
            "169.254.169.254:80",
        ] });
    let body = run_agent(server, &developer, &tenant, "egress", targets).await;
    assert_eq!(body["status"], "SUCCEEDED", "{body:#}");
    body["output"].clone()
}

async fn public_egress_refuses_local_and_private_targets(backend: Backend) {
    let server = Server::start_with(backend, &[("RUNFLOW_RUNNER_EGRESS", "public")]).await;
    let output = probe(&server).await;
    for key in ["HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"] {
        assert_eq!(output["env"][key], "http://127.0.0.1:3128", "{output:#}");
    }
    assert!(
        output["env"]["NO_PROXY"]
            .as_str()
            .unwrap_or_default()
            .contains("127.0.0.1"),
        "{output:#}"
    );
    let results = output["results"].as_object().expect("results");
    assert_eq!(results.len(), 9, "{results:#?}");
    for (target, result) in results {
        assert_eq!(result["proxy"], true, "{target}: {result:#}");
        let expected = match target.as_str() {
            "plain_http" => 501,
            "huge_head" => 431,
            _ => 403,
        };
        assert_eq!(result["status"], expected, "{target}: {result:#}");
    }
    let postgres = results["127.0.0.1:5432"]["response"].as_str().expect("response");
    assert!(postgres.contains("public internet addresses only"), "{postgres}");
    assert!(postgres.contains("loopback"), "{postgres}");
    let metadata = results["169.254.169.254:80"]["response"].as_str().expect("response");
    assert!(metadata.contains("link-local"), "{metadata}");
    let health = server
        .http()
        .get(format!("{}/healthz", server.url))
        .send()
        .await
        .expect("healthz");
    assert_eq!(health.status(), 200);
}

async fn no_egress_means_no_proxy(backend: Backend) {
    let server = Server::start(backend).await;
    let output = probe(&server).await;
    for key in ["HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy", "NO_PROXY"] {
        assert!(output["env"][key].is_null(), "{key}: {output:#}");
    }
    let results = output["results"].as_object().expect("results");
    assert_eq!(results.len(), 9, "{results:#?}");
    for (target, result) in results {
        assert_eq!(result["proxy"], false, "{target}: {result:#}");
    }
}

#[tokio::test]
async fn public_egress_needs_the_sandbox() {
    let output = std::process::Command::new(crate::support::binary())
        .env_clear()
        .env("RUNFLOW_RUNNER_EGRESS", "public")
        .env("RUNFLOW_RUNNER_SANDBOX", "none")
        .args(["token", "--tenant", "t", "--role", "viewer"])
        .output()
        .expect("run");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("RUNFLOW_RUNNER_EGRESS=public needs RUNFLOW_RUNNER_SANDBOX=bwrap"),
        "{stderr}"
    );
    let output = std::process::Command::new(crate::support::binary())
        .env_clear()
        .env("RUNFLOW_RUNNER_EGRESS", "everything")
        .args(["schema"])
        .output()
        .expect("run");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("RUNFLOW_RUNNER_EGRESS"));
}

on_both_backends!(
    public_egress_refuses_local_and_private_targets,
    no_egress_means_no_proxy
);
