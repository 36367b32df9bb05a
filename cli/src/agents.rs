//! `rf agents deploy | promote | list` and `rf test`.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context, bail};
use runflow_common::agent_env::AgentEnv;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use crate::client::Client;
use crate::operations::{self, Agent, Agents, Deploy, Pending, Plan, Publish, RuntimeToken};
use crate::{Env, Global, confirm, emit, lines, releases};

/// The parts of `runflow.toml` the CLI needs (the server validates the whole manifest).
#[derive(Deserialize)]
struct Manifest {
    name: String,
    entrypoint: Vec<String>,
}

/// The agent folder: the current directory, which must hold `runflow.toml`.
fn agent_dir() -> anyhow::Result<(PathBuf, Manifest)> {
    let dir = std::env::current_dir()?;
    let text = std::fs::read_to_string(dir.join("runflow.toml"))
        .context("no runflow.toml here: run rf from the agent's folder")?;
    let manifest: Manifest = toml::from_str(&text).context("runflow.toml is invalid")?;
    Ok((dir, manifest))
}

/// The bundle: every file of the folder except what .gitignore and .rfignore exclude.
fn bundle(dir: &Path) -> anyhow::Result<Vec<operations::deploy::BundleFileInput>> {
    let mut files = Vec::new();
    let walker = ignore::WalkBuilder::new(dir)
        .hidden(false)
        .git_ignore(true)
        .git_global(false)
        .git_exclude(false)
        .require_git(false)
        .add_custom_ignore_filename(".rfignore")
        .filter_entry(|entry| entry.file_name() != ".git")
        .build();
    for entry in walker {
        let entry = entry?;
        if !entry.file_type().is_some_and(|t| t.is_file()) {
            continue;
        }
        let relative = entry.path().strip_prefix(dir)?;
        let path = relative
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        let bytes = std::fs::read(entry.path())?;
        let content = String::from_utf8(bytes)
            .map_err(|_| anyhow::anyhow!("{path} is not a UTF-8 text file: add it to .rfignore"))?;
        files.push(operations::deploy::BundleFileInput { path, content });
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

pub async fn deploy(global: &Global, message: &str) -> anyhow::Result<()> {
    let client = Client::resolve(global.url.clone(), global.token.clone())?;
    let (dir, manifest) = agent_dir()?;
    let files = bundle(&dir)?;
    let count = files.len();
    let input = operations::deploy::DeployAgentInput {
        slug: manifest.name.clone(),
        files,
        message: message.to_string(),
    };
    let (data, raw) = client
        .run_raw::<Deploy>(operations::deploy::Variables { input })
        .await?;
    let commit = data.deploy_agent.commit;
    let endpoint = data.deploy_agent.agent.endpoint_url;
    emit(
        global,
        json!({ "agent": manifest.name, "commit": raw["deployAgent"]["commit"], "files": count, "stagingEndpoint": endpoint }),
        || {
            format!(
                "Deployed {} to staging: commit #{} {} ({count} files)\nStaging endpoint: {endpoint}",
                manifest.name,
                commit.number,
                &commit.hash[..12.min(commit.hash.len())]
            )
        },
    );
    Ok(())
}

pub async fn promote(global: &Global, yes: bool) -> anyhow::Result<()> {
    let client = Client::resolve(global.url.clone(), global.token.clone())?;
    let (_, manifest) = agent_dir()?;
    let id = format!("agent:{}", manifest.name);
    let pending = client
        .run::<Pending>(operations::pending::Variables {})
        .await?
        .pending_changes;
    let Some(change) = pending.into_iter().find(|c| c.key == id) else {
        emit(global, json!({ "agent": manifest.name, "promoted": false }), || {
            format!(
                "Nothing to promote: production already runs {}'s staging code.",
                manifest.name
            )
        });
        return Ok(());
    };
    if !global.json {
        eprintln!("Promote {} to production ({:?}):", manifest.name, change.change);
        if let Some(agent) = &change.agent {
            for commit in &agent.commits {
                eprintln!("  commit #{} {} ({})", commit.number, commit.message, commit.author);
            }
            for file in &agent.files {
                eprintln!("  {:?} {}", file.change, file.path);
            }
        }
    }
    if !confirm(&format!("Promote {} to production?", manifest.name), yes)? {
        bail!("cancelled: nothing was promoted");
    }
    let items = vec![operations::plan::PublishItemInput {
        key: change.key.clone(),
        fingerprint: Some(change.fingerprint.clone()),
    }];
    let plan = client
        .run::<Plan>(operations::plan::Variables {
            input: plan_input(items.clone(), None),
        })
        .await?
        .publish_plan;
    if !plan.can_publish {
        bail!("cannot promote: {}", plan.missing.join("; "));
    }
    let input = releases::publish_input(
        items.into_iter().map(|i| (i.key, i.fingerprint)).collect(),
        Some(format!("rf agents promote {}", manifest.name)),
    );
    let (data, raw) = client
        .run_raw::<Publish>(operations::publish::Variables { input })
        .await?;
    let Some(release) = data.publish.release else {
        bail!("the server did not publish (no release returned)");
    };
    let agent = client
        .run::<Agent>(operations::agent::Variables {
            slug: manifest.name.clone(),
            environment: operations::agent::Environment::PRODUCTION,
        })
        .await?
        .agent;
    let endpoint = agent.as_ref().map(|a| a.endpoint_url.clone()).unwrap_or_default();
    emit(
        global,
        json!({ "agent": manifest.name, "promoted": true, "release": raw["publish"]["release"], "productionEndpoint": endpoint }),
        || {
            format!(
                "Promoted {} to production in release #{}.\nProduction endpoint: {endpoint}",
                manifest.name, release.number
            )
        },
    );
    Ok(())
}

/// The `publishPlan` input for these items (and, with `all`, the fingerprint).
pub(crate) fn plan_input(
    items: Vec<operations::plan::PublishItemInput>,
    fingerprint: Option<String>,
) -> operations::plan::PublishInput {
    operations::plan::PublishInput {
        items: Some(items),
        all: false,
        fingerprint,
        note: None,
        idempotency_key: None,
        rollback_to: None,
        emergency_override: false,
        at: None,
    }
}

pub async fn list(global: &Global, environment: Env) -> anyhow::Result<()> {
    let client = Client::resolve(global.url.clone(), global.token.clone())?;
    let environment = match environment {
        Env::Staging => operations::agents::Environment::STAGING,
        Env::Production => operations::agents::Environment::PRODUCTION,
    };
    // Every page: the list is a connection of at most 100 agents a page.
    let mut agents = Vec::new();
    let mut json_rows: Vec<Value> = Vec::new();
    let mut after = None;
    loop {
        let (data, raw) = client
            .run_raw::<Agents>(operations::agents::Variables {
                environment: environment.clone(),
                after: after.clone(),
            })
            .await?;
        agents.extend(data.agents.nodes);
        json_rows.extend(raw["agents"]["nodes"].as_array().cloned().unwrap_or_default());
        match data.agents.page_info {
            page if page.has_next_page => after = page.end_cursor,
            _ => break,
        }
    }
    emit(global, Value::Array(json_rows), || {
        lines(&agents, "No agents.", |a| {
            format!(
                "{:<24} commit #{:<4} {}",
                a.slug, a.current_commit.number, a.endpoint_url
            )
        })
    });
    Ok(())
}

/// Runs the local folder's code on this machine, in staging mode: a staging runtime token
/// from the server (which refuses to mint one for production), an execution recorded in
/// staging, prompts and memory resolved through the staging runtime API.
pub async fn test(
    global: &Global,
    input: Option<String>,
    input_file: Option<PathBuf>,
    session: Option<String>,
) -> anyhow::Result<()> {
    let client = Client::resolve(global.url.clone(), global.token.clone())?;
    let (dir, manifest) = agent_dir()?;
    let input: Value = match (input, input_file) {
        (Some(text), _) => serde_json::from_str(&text).context("--input is not valid JSON")?,
        (None, Some(path)) => {
            serde_json::from_str(&std::fs::read_to_string(&path)?).context("--input-file is not valid JSON")?
        }
        (None, None) => json!({}),
    };
    let token = client
        .run::<RuntimeToken>(operations::runtime_token::Variables {})
        .await?
        .create_runtime_token
        .token;
    let mut body = json!({ "agent": manifest.name, "input": input });
    if let Some(session) = &session {
        body["sessionId"] = json!(session);
    }
    let execution = client.runtime(&token, "/executions", &body).await.map_err(|error| {
        anyhow::anyhow!("{error:#} (rf test records its run in staging: deploy the agent once with `rf agents deploy`)")
    })?;
    let execution_id = execution["id"].as_str().unwrap_or_default().to_string();
    let (program, arguments) = manifest
        .entrypoint
        .split_first()
        .context("runflow.toml: entrypoint is empty")?;
    let mut child = tokio::process::Command::new(program)
        .args(arguments)
        .current_dir(&dir)
        .envs(
            AgentEnv {
                // The server's runner also sets RUNFLOW_TENANT; rf test does not know the tenant.
                tenant: None,
                environment: "staging".into(),
                execution_id: execution_id.clone(),
                memory_namespace: format!("staging:{}", manifest.name),
                token: token.clone(),
            }
            .with_api_url(&client.url),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("cannot start {:?}", manifest.entrypoint))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(&serde_json::to_vec(&input)?).await?;
        stdin.shutdown().await?;
    }
    let output = child.wait_with_output().await?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let result: Result<Value, String> = if !output.status.success() {
        Err(format!("the agent exited with {}", output.status))
    } else {
        serde_json::from_str(stdout.trim()).map_err(|e| format!("the agent's stdout is not JSON ({e})"))
    };
    let finish = match &result {
        Ok(value) => json!({ "status": "SUCCEEDED", "output": value }),
        Err(error) => json!({ "status": "FAILED", "error": error }),
    };
    client
        .runtime(&token, &format!("/executions/{execution_id}/finish"), &finish)
        .await?;
    match result {
        Ok(value) => {
            emit(
                global,
                json!({ "execution": execution_id, "environment": "staging", "output": value }),
                || {
                    format!(
                        "{}\n(staging execution {execution_id})",
                        serde_json::to_string_pretty(&value).unwrap_or_default()
                    )
                },
            );
            Ok(())
        }
        Err(error) => bail!("{error} (staging execution {execution_id})"),
    }
}
