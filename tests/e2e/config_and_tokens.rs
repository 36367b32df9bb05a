//! Starting up: the zero-configuration first start, `runflow token`, invalid configuration.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::json;

use crate::support::{binary, post_graphql};

fn runflow(dir: &std::path::Path) -> Command {
    let mut command = Command::new(binary());
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .current_dir(dir);
    command
}

#[test]
fn invalid_configuration_names_the_variable() {
    let dir = tempfile::tempdir().expect("dir");
    for (variable, value) in [
        ("RUNFLOW_LISTEN", "not-an-address"),
        ("RUNFLOW_DATABASE_URL", "mysql://x"),
        ("RUNFLOW_PUBLIC_URL", "ftp://x"),
        ("RUNFLOW_JWT_SECRET", "short"),
        ("RUNFLOW_MAX_QUERY_DEPTH", "many"),
        ("RUNFLOW_SECRET_KEY", "not base64!"),
        ("RUNFLOW_RATE_LIMIT_GRAPHQL", "fast"),
        ("RUNFLOW_OTLP_ENDPOINT", "collector:4318"),
    ] {
        let output = runflow(dir.path()).env(variable, value).output().expect("run");
        assert!(!output.status.success(), "{variable}={value} must stop the server");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(variable), "{variable}: {stderr}");
    }
}

/// Logs written to a pipe (not a terminal) are plain text: no colour codes.
#[test]
fn logs_are_plain_text_when_not_on_a_terminal() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().expect("dir");
    let mut child = runflow(dir.path())
        .env("RUNFLOW_LISTEN", "127.0.0.1:0")
        .env("RUNFLOW_LOG_FORMAT", "text")
        .env("RUNFLOW_WORKERS", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut log = String::new();
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            log.push_str(&line);
            log.push('\n');
            if line.contains("runflow is serving GraphQL") {
                let _ = tx.send(log.clone());
            }
        }
    });
    let log = rx.recv_timeout(Duration::from_secs(60));
    let _ = child.kill();
    let _ = child.wait();
    let log = log.expect("the server starts and logs");
    assert!(log.contains(" INFO "), "{log}");
    assert!(!log.contains('\u{1b}'), "colour codes in a piped log: {log:?}");
}

/// With nothing configured, the first start creates the secret and prints an admin token for
/// tenant `default`; `runflow token` mints more with the same secret.
#[tokio::test]
async fn first_start_prints_a_working_admin_token() {
    let dir = tempfile::tempdir().expect("dir");
    let mut child = runflow(dir.path())
        .env("RUNFLOW_LISTEN", "127.0.0.1:0")
        .env("RUNFLOW_LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    let tx2 = tx.clone();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.trim().starts_with("eyJ") {
                let _ = tx.send(("token", line.trim().to_string()));
            }
        }
    });
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Ok(entry) = serde_json::from_str::<serde_json::Value>(&line)
                && let Some(address) = entry.pointer("/fields/address").and_then(|a| a.as_str())
            {
                let _ = tx2.send(("address", address.to_string()));
            }
        }
    });
    let mut token = None;
    let mut address = None;
    while token.is_none() || address.is_none() {
        let (kind, value) = rx.recv_timeout(Duration::from_secs(60)).expect("token and address");
        if kind == "token" {
            token = Some(value)
        } else {
            address = Some(value)
        }
    }
    let (token, address) = (token.unwrap_or_default(), address.unwrap_or_default());
    assert!(dir.path().join("runflow-data/jwt-secret").exists());
    assert!(
        dir.path().join("runflow-data/runflow.db").exists(),
        "SQLite in the default data directory"
    );
    let client = reqwest::Client::new();
    let base_url = format!("http://{address}");
    let (_, viewer) = post_graphql(
        &client,
        &base_url,
        Some(&token),
        "{ viewer(environment: STAGING) { tenant role } }",
        json!({}),
    )
    .await;
    assert_eq!(
        viewer["data"]["viewer"],
        json!({ "tenant": "default", "role": "ADMIN" })
    );

    let minted = runflow(dir.path())
        .args(["token", "--tenant", "acme", "--role", "viewer", "--ttl", "10m"])
        .output()
        .expect("token");
    assert!(minted.status.success());
    let minted = String::from_utf8_lossy(&minted.stdout).trim().to_string();
    let (_, viewer) = post_graphql(
        &client,
        &base_url,
        Some(&minted),
        "{ viewer(environment: PRODUCTION) { tenant role environment } }",
        json!({}),
    )
    .await;
    assert_eq!(
        viewer["data"]["viewer"],
        json!({ "tenant": "acme", "role": "VIEWER", "environment": "PRODUCTION" })
    );
    let bad_role = runflow(dir.path())
        .args(["token", "--tenant", "acme", "--role", "root"])
        .output()
        .expect("token");
    assert!(!bad_role.status.success());
    let _ = child.kill();
    let _ = child.wait();
}
