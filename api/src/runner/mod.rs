//! The agent runner: workers that claim queued executions and run the agent's code.
//!
//! A run materialises the execution's commit in a fresh temporary directory, starts the
//! manifest's `entrypoint` there with the input as JSON on stdin, and reads the output as JSON
//! from stdout. The agent gets `RUNFLOW_ENVIRONMENT`, `RUNFLOW_API_URL`,
//! `RUNFLOW_EXECUTION_ID`, `RUNFLOW_MEMORY_NAMESPACE` and a short-lived runtime token
//! (`RUNFLOW_TOKEN`) for its tenant and environment, so it resolves prompts, connectors and
//! memory through the runtime API and its traces land in the right environment. stderr is
//! kept (capped) as the execution's log. A crash, a timeout, too much output or output that is
//! not JSON makes a FAILED execution with a clear error.
//!
//! Workers claim executions from the database (see `executions::claim_next`), so several
//! processes share the work and none runs an execution twice.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use entity::{agent_commits, executions as execution_rows};
use sea_orm::{ColumnTrait, QueryFilter};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::Semaphore;

use crate::app::App;
use crate::auth::Role;
use crate::domain::agents::files_of_commits;
use crate::domain::executions::{self, ExecutionStatus, Outcome};
use crate::domain::manifest::Manifest;
use crate::domain::memory;
use crate::error::{Error, Result};
use crate::scope::Scope;

mod schedule;
mod scheduled_releases;

/// Starts the workers of this process (up to `RUNFLOW_WORKERS` runs at once) and the
/// scheduler of schedule triggers.
pub fn start(app: App) -> tokio::task::JoinHandle<()> {
    tokio::spawn(schedule::run(app.clone()));
    tokio::spawn(scheduled_releases::run(app.clone()));
    tokio::spawn(work(app))
}

async fn work(app: App) {
    let worker = format!("{}:{}", hostname(), std::process::id());
    let slots = Arc::new(Semaphore::new(app.config.workers.max(1)));
    let mut feed = app.services.live.subscribe();
    let mut shutdown = app.shutdown.clone();
    tracing::info!(worker, slots = app.config.workers, "runner: workers started");
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        match executions::claim_next(&app.services.db, &worker).await {
            Ok(Some(execution)) => {
                let app = app.clone();
                tokio::spawn(async move {
                    run(&app, execution).await;
                    drop(slot);
                });
                continue;
            }
            Ok(None) => drop(slot),
            Err(error) => {
                drop(slot);
                tracing::warn!(%error, "runner: cannot claim executions");
            }
        }
        // Wait for a newly queued execution (from any replica, through the live feed), or poll.
        tokio::select! {
            () = async {
                while let Ok(event) = feed.recv().await {
                    if event.topic == "execution" && event.kind == "started" {
                        return;
                    }
                }
            } => {}
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = shutdown.changed() => return,
        }
    }
}

fn hostname() -> String {
    std::env::var("HOSTNAME").unwrap_or_else(|_| "runflow".into())
}

fn failed(error: impl Into<String>, log: Option<String>) -> Outcome {
    Outcome {
        status: ExecutionStatus::Failed,
        output: None,
        error: Some(error.into()),
        log,
    }
}

/// Runs one claimed execution to its end and records the outcome.
async fn run(app: &App, execution: execution_rows::Model) {
    let scope = Scope::new(execution.tenant_id.clone(), execution.environment);
    let outcome = match execute(app, &scope, &execution).await {
        Ok(outcome) => outcome,
        Err(error) => failed(error.public_message(), None),
    };
    match executions::finish_with_log(&app.services.db, &scope, execution.id, outcome).await {
        Ok(_) | Err(Error::Conflict(_)) => {}
        Err(error) => tracing::warn!(execution = %execution.id, %error, "runner: cannot record the outcome"),
    }
}

/// Reads at most `cap` bytes; the flag says whether more came (the rest is drained).
async fn read_capped<R: AsyncRead + Unpin>(mut reader: R, cap: usize) -> (Vec<u8>, bool) {
    let mut kept = Vec::new();
    let mut buffer = [0u8; 16 * 1024];
    let mut overflow = false;
    loop {
        match reader.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = cap.saturating_sub(kept.len());
                kept.extend_from_slice(&buffer[..n.min(room)]);
                overflow |= n > room;
            }
        }
    }
    (kept, overflow)
}

async fn execute(app: &App, scope: &Scope, execution: &execution_rows::Model) -> Result<Outcome> {
    let db = &app.services.db;
    let config = &app.config;
    let commit_id = execution
        .commit_id
        .ok_or_else(|| Error::bad_input("the execution has no commit to run"))?;
    let commit = scope
        .tenant
        .select::<agent_commits::Entity>()
        .filter(agent_commits::Column::Id.eq(commit_id))
        .one(&db.conn)
        .await?
        .ok_or_else(|| Error::not_found(format!("commit {commit_id}")))?;
    let manifest: Manifest = serde_json::from_value(commit.manifest.clone()).map_err(Error::internal)?;
    let mut files = files_of_commits(db, &scope.tenant, &[commit_id]).await?;
    let directory = tempfile::tempdir().map_err(Error::internal)?;
    for file in files.remove(&commit_id).unwrap_or_default() {
        let path = directory.path().join(&file.path);
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(Error::internal)?;
        }
        tokio::fs::write(&path, file.content.as_bytes())
            .await
            .map_err(Error::internal)?;
    }
    let token = app
        .services
        .tokens
        .mint(
            &format!("execution:{}", execution.id),
            scope.tenant.id(),
            Role::Runtime,
            config.run_timeout + Duration::from_secs(300),
            Some(scope.environment),
        )
        .map_err(Error::internal)?;
    let namespace = memory::stored_namespace(scope.environment, &manifest.name)?;
    let (program, arguments) = manifest
        .entrypoint
        .split_first()
        .ok_or_else(|| Error::bad_input("empty entrypoint"))?;
    let mut child = match tokio::process::Command::new(program)
        .args(arguments)
        .current_dir(directory.path())
        .env_clear()
        .env(
            "PATH",
            std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into()),
        )
        .env("HOME", directory.path())
        .env("RUNFLOW_ENVIRONMENT", scope.environment.as_str())
        .env("RUNFLOW_API_URL", config.api_url())
        .env("RUNFLOW_EXECUTION_ID", execution.id.to_string())
        .env("RUNFLOW_MEMORY_NAMESPACE", &namespace)
        .env("RUNFLOW_TOKEN", token)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
    {
        Ok(child) => child,
        Err(error) => {
            return Ok(failed(
                format!("cannot start the entrypoint {:?}: {error}", manifest.entrypoint),
                None,
            ));
        }
    };
    let input = serde_json::to_vec(&execution.input).map_err(Error::internal)?;
    let mut stdin = child.stdin.take();
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let (max_output, max_log) = (config.run_max_output_bytes, config.run_max_log_bytes);
    let run = async {
        let write = async {
            if let Some(mut stdin) = stdin.take() {
                let _ = stdin.write_all(&input).await;
                let _ = stdin.shutdown().await;
            }
        };
        let read_out = async {
            match stdout {
                Some(out) => read_capped(out, max_output).await,
                None => (Vec::new(), false),
            }
        };
        let read_err = async {
            match stderr {
                Some(err) => read_capped(err, max_log).await,
                None => (Vec::new(), false),
            }
        };
        let ((), out, err) = tokio::join!(write, read_out, read_err);
        (out, err)
    };
    let Ok(((stdout, too_much), (stderr, _))) = tokio::time::timeout(config.run_timeout, run).await else {
        let _ = child.kill().await;
        return Ok(failed(
            format!(
                "the agent timed out after {} s and was stopped",
                config.run_timeout.as_secs_f64()
            ),
            None,
        ));
    };
    let log = Some(String::from_utf8_lossy(&stderr).into_owned()).filter(|l| !l.is_empty());
    if too_much {
        let _ = child.kill().await;
        return Ok(failed(
            format!(
                "the agent printed more than {max_output} bytes on stdout; the limit is RUNFLOW_RUN_MAX_OUTPUT_BYTES"
            ),
            log,
        ));
    }
    let status = match tokio::time::timeout(Duration::from_secs(5), child.wait()).await {
        Ok(Ok(status)) => status,
        _ => {
            let _ = child.kill().await;
            return Ok(failed("the agent closed its output but did not exit", log));
        }
    };
    if !status.success() {
        let last = log
            .as_deref()
            .and_then(|l| l.lines().rev().find(|line| !line.trim().is_empty()))
            .unwrap_or("");
        return Ok(failed(
            format!(
                "the agent exited with {status}{}{last}",
                if last.is_empty() { "" } else { ": " }
            ),
            log,
        ));
    }
    let text = String::from_utf8_lossy(&stdout);
    if text.trim().is_empty() {
        return Ok(failed(
            "the agent printed nothing: it must print its output as JSON on stdout",
            log,
        ));
    }
    match serde_json::from_str::<Value>(text.trim()) {
        Ok(output) => Ok(Outcome {
            status: ExecutionStatus::Succeeded,
            output: Some(output),
            error: None,
            log,
        }),
        Err(error) => Ok(failed(format!("the agent's stdout is not JSON ({error})"), log)),
    }
}
