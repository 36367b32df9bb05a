//! The `rf` CLI end to end, against the real server: deploy, test, publish, promote (with
//! `--yes` and through a pseudo-terminal), rollback, follow.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, Server, binary, token};

/// `rf` is built next to `runflow` by `cargo test --workspace` (the CLI crate has tests too).
fn rf_binary() -> PathBuf {
    let path = Path::new(binary()).with_file_name("rf");
    assert!(
        path.exists(),
        "{} is missing: run the tests with `cargo test --workspace`",
        path.display()
    );
    path
}

struct Rf {
    config: tempfile::TempDir,
    folder: tempfile::TempDir,
}

impl Rf {
    fn command(&self) -> Command {
        let mut command = Command::new(rf_binary());
        command
            .current_dir(self.folder.path())
            .env("RUNFLOW_CONFIG_DIR", self.config.path())
            .env_remove("RUNFLOW_URL")
            .env_remove("RUNFLOW_TOKEN")
            .stdin(Stdio::null());
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().expect("run rf")
    }

    fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "rf {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        serde_json::from_str(&self.ok(&all)).expect("JSON output")
    }
}

fn agent_folder() -> tempfile::TempDir {
    let folder = tempfile::tempdir().expect("dir");
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/support-bot");
    for file in ["runflow.toml", "main.py"] {
        std::fs::copy(format!("{example}/{file}"), folder.path().join(file)).expect("copy");
    }
    std::fs::write(folder.path().join(".gitignore"), "secret.txt\n").expect("write");
    std::fs::write(folder.path().join(".rfignore"), "notes.md\n").expect("write");
    std::fs::write(folder.path().join("secret.txt"), "do not upload").expect("write");
    std::fs::write(folder.path().join("notes.md"), "local notes").expect("write");
    folder
}

async fn the_cli_workflow_from_deploy_to_promotion(backend: Backend) {
    let server = Server::start(backend).await;
    let tenant = crate::support::tenant();
    let admin = token(&tenant, "admin");
    let rf = Rf {
        config: tempfile::tempdir().expect("dir"),
        folder: agent_folder(),
    };

    let login = rf.ok(&["login", "--url", &server.url, "--token", &admin]);
    assert!(login.contains(&format!("tenant {tenant}")), "{login}");
    server
        .data(&admin, r#"mutation { savePromptDraft(environment: STAGING, input: {slug: "greeting", template: "Hello: {{question}}"}) { slug } }"#, json!({}))
        .await;

    // Deploy: staging only, ignored files stay home.
    let deployed = rf.ok(&["agents", "deploy", "-m", "first version"]);
    assert!(deployed.contains("commit #1"), "{deployed}");
    assert!(
        deployed.contains(&format!("/v1/{tenant}/staging/agents/support-bot")),
        "{deployed}"
    );
    let files = server
        .data(
            &admin,
            r#"{ agent(environment: STAGING, slug: "support-bot") { currentCommit { files { path } } } }"#,
            json!({}),
        )
        .await;
    let paths: Vec<&str> = files["agent"]["currentCommit"]["files"]
        .as_array()
        .expect("files")
        .iter()
        .filter_map(|f| f["path"].as_str())
        .collect();
    assert_eq!(paths, [".gitignore", ".rfignore", "main.py", "runflow.toml"]);

    // rf test: the local code, in staging, recorded in staging only.
    let tested = rf.json(&["test", "--input", r#"{"question": "local?"}"#]);
    assert_eq!(tested["environment"], "staging");
    assert_eq!(
        tested["output"],
        json!({ "answer": "Hello: local?", "environment": "staging", "promptVersion": null })
    );
    let recorded = server
        .data(
            &admin,
            r#"query($id: ID!) { s: execution(environment: STAGING, id: $id) { status spans { nodes { name } } }
                           p: execution(environment: PRODUCTION, id: $id) { id }
                           memoryEntries(environment: STAGING) { edges { node { namespace value } } } }"#,
            json!({ "id": tested["execution"] }),
        )
        .await;
    assert_eq!(
        recorded["s"],
        json!({ "status": "SUCCEEDED", "spans": { "nodes": [{ "name": "answer" }] } })
    );
    assert_eq!(recorded["p"], Value::Null);
    assert_eq!(
        recorded["memoryEntries"]["edges"],
        json!([{ "node": { "namespace": "staging:support-bot", "value": "local?" } }])
    );

    // Releases, and publishing the prompt the agent needs.
    let pending = rf.json(&["releases"]);
    let ids: Vec<&str> = pending
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|c| c["key"].as_str())
        .collect();
    assert_eq!(ids, ["agent:support-bot", "prompt:greeting"]);
    let failed = rf.run(&["publish", "agent:ghost", "--yes"]);
    assert_eq!(failed.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&failed.stderr).starts_with("error:"));
    rf.ok(&["publish", "prompt:greeting", "--yes", "--note", "prompt first"]);

    // Promote: refused without a terminal unless --yes; through a terminal, after "y".
    let refused = rf.run(&["agents", "promote"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("--yes"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let mut interactive = Command::new("python3");
    interactive
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/e2e/pty_run.py"))
        .args(["[y/N]", "y", "--"])
        .arg(rf_binary())
        .args(["agents", "promote"])
        .current_dir(rf.folder.path())
        .env("RUNFLOW_CONFIG_DIR", rf.config.path());
    let promoted = interactive.output().expect("run through a pty");
    let transcript = String::from_utf8_lossy(&promoted.stdout);
    assert!(
        promoted.status.success(),
        "{transcript}{}",
        String::from_utf8_lossy(&promoted.stderr)
    );
    assert!(
        transcript.contains("commit #1 first version"),
        "it showed what would change: {transcript}"
    );
    assert!(
        transcript.contains(&format!("/v1/{tenant}/production/agents/support-bot")),
        "{transcript}"
    );

    // Production now runs the same commit.
    let response = server
        .call_agent(
            &admin,
            &tenant,
            "production",
            "support-bot",
            &json!({ "question": "prod?" }),
        )
        .await;
    let run: Value = response.json().await.expect("json");
    assert_eq!(
        run["output"],
        json!({ "answer": "Hello: prod?", "environment": "production", "promptVersion": 1 }),
        "{run:#}"
    );
    let agents = rf.json(&["agents", "list", "--environment", "production"]);
    assert_eq!(agents[0]["currentCommit"]["number"], 1);

    // A second version, promoted with --yes, then rolled back.
    std::fs::write(
        rf.folder.path().join("main.py"),
        std::fs::read_to_string(rf.folder.path().join("main.py")).expect("read") + "\n# v2\n",
    )
    .expect("write");
    rf.ok(&["agents", "deploy", "-m", "second"]);
    let promoted = rf.json(&["agents", "promote", "--yes"]);
    assert_eq!(promoted["promoted"], true);
    let release = promoted["release"]["number"].as_i64().expect("number").to_string();
    let rolled = rf.json(&["rollback", &release, "--yes"]);
    assert_eq!(rolled["kind"], "ROLLBACK");
    let agents = rf.json(&["agents", "list", "--environment", "production"]);
    assert_eq!(
        agents[0]["currentCommit"]["number"], 1,
        "production is back on the first commit"
    );
    assert_eq!(
        rf.json(&["releases"]).as_array().map(Vec::len),
        Some(1),
        "the second version is pending again"
    );
    // `rf publish --at`: publishing later is a scheduled release (`publish` with `at`), printed;
    // nothing reaches production now.
    let at = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let scheduled = rf.json(&["publish", "--all", "--at", &at, "--note", "later"]);
    assert_eq!(scheduled["state"], "SCHEDULED", "{scheduled:#}");
    assert_eq!(scheduled["items"][0]["key"], "agent:support-bot", "{scheduled:#}");
    let id = scheduled["id"].as_str().expect("id");
    let text = rf.ok(&["releases", "scheduled"]);
    assert!(text.contains(id), "{text}");
    assert_eq!(
        rf.json(&["releases"]).as_array().map(Vec::len),
        Some(1),
        "still pending"
    );
    let cancelled = rf.json(&["releases", "cancel", id]);
    assert_eq!(cancelled["state"], "CANCELLED");
    // `rf audit`: the entries carry before and after (the cancel: SCHEDULED -> cancelled).
    let audit = rf.json(&["audit", "--action", "cancelScheduledRelease"]);
    assert_eq!(audit[0]["before"]["state"], "scheduled", "{audit:#}");
    assert_eq!(audit[0]["after"]["state"], "cancelled", "{audit:#}");
    let text = rf.ok(&["audit", "--action", "cancelScheduledRelease"]);
    assert!(text.contains("state scheduled -> cancelled"), "{text}");
    let text = rf.ok(&["audit", "--action", "deployAgent"]);
    assert!(text.contains("deployment.revision 1 -> 2"), "the second deploy: {text}");
    assert!(text.contains("created"), "the first deploy: {text}");
    // The history, newest first, with the numbers `rf rollback` takes.
    let history = rf.json(&["releases", "--history"]);
    let numbers: Vec<i64> = history
        .as_array()
        .expect("releases")
        .iter()
        .filter_map(|r| r["number"].as_i64())
        .collect();
    assert!(
        numbers.len() >= 3 && numbers.windows(2).all(|w| w[0] > w[1]),
        "{history:#}"
    );
    assert_eq!(history[0]["kind"], "ROLLBACK");
    let text = rf.ok(&["releases", "--history"]);
    assert!(text.contains(&format!("#{}", numbers[0])), "{text}");

    // Follow executions live.
    let mut follow = rf
        .command()
        .args(["executions", "--follow", "--environment", "staging", "--json"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("follow");
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let (status, _) = server
        .runtime(
            &crate::support::runtime_token(&tenant, "staging"),
            reqwest::Method::POST,
            "/executions",
            Some(json!({ "agent": "support-bot" })),
        )
        .await;
    assert_eq!(status, 201);
    let stdout = follow.stdout.take().expect("stdout");
    let line = tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let mut buffer = Vec::new();
        let mut byte = [0u8; 1];
        let mut reader = stdout;
        let mut depth = 0i32;
        while reader.read(&mut byte).map(|n| n > 0).unwrap_or(false) {
            buffer.push(byte[0]);
            match byte[0] {
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                _ => {}
            }
        }
        String::from_utf8_lossy(&buffer).into_owned()
    })
    .await
    .expect("read");
    let _ = follow.kill();
    let _ = follow.wait();
    let event: Value = serde_json::from_str(line.trim()).expect("an event as JSON");
    assert_eq!(event["kind"], "STARTED");
    assert_eq!(event["execution"]["agent"]["slug"], "support-bot");
}

on_both_backends!(the_cli_workflow_from_deploy_to_promotion);
