//! The agent runner: workers that claim queued executions and run the agent's code.
//!
//! A run materialises the execution's commit in a fresh temporary directory, starts the
//! manifest's `entrypoint` there in a sandbox (see [`sandbox`]) with the input as JSON on
//! stdin, and reads the output as JSON from stdout. The agent gets `RUNFLOW_TENANT`,
//! `RUNFLOW_ENVIRONMENT`, `RUNFLOW_API_URL`, `RUNFLOW_EXECUTION_ID`,
//! `RUNFLOW_MEMORY_NAMESPACE` and a token for this run only (`RUNFLOW_TOKEN`, see
//! `auth::capability`), so it resolves prompts, connectors and memory through the runtime API
//! and its traces land in the right environment. stderr is kept (capped) as the execution's
//! log. A crash, a timeout, too much output or output that is not JSON makes a FAILED
//! execution with a clear error; whatever the end, the run's whole process tree is killed.
//!
//! Workers claim executions from the database (see `executions::claim_next`), so several
//! processes share the work and none runs an execution twice. A claim is a lease the worker
//! renews while the run lives; the reaper of every process fails (or requeues) executions whose
//! lease expired (see `domain::lifecycle`). Each depth of agents calling agents has its own
//! workers, so parents waiting for their children cannot starve them.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use entity::{agent_commits, executions as execution_rows};
use runflow_common::agent_env::AgentEnv;
use sea_orm::{ColumnTrait, QueryFilter};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::Semaphore;

use crate::app::App;
use crate::auth::{ActorKind, capability};
use crate::domain::agents::files_of_commits;
use crate::domain::executions::{self, ExecutionStatus, Outcome};
use crate::domain::lifecycle;
use crate::domain::manifest::Manifest;
use crate::domain::memory;
use crate::error::{Error, Result};
use crate::scope::Scope;

pub(crate) mod egress;
mod sandbox;
mod schedule;
mod scheduled_releases;

pub use sandbox::init as sandbox_init;
use sandbox::{Prepared, RunSpec, Sandbox};

/// How long a run's token outlives the run's timeout.
pub const RUN_TOKEN_GRACE: Duration = Duration::from_secs(30);

/// Starts the workers of this process (up to `RUNFLOW_WORKERS` runs at once per depth of agents
/// calling agents), the scheduler of schedule triggers and the reaper of lost executions.
pub fn start(app: App) -> tokio::task::JoinHandle<()> {
    let sandbox = Sandbox::from_config(&app.config);
    tokio::spawn(schedule::run(app.clone()));
    tokio::spawn(reap(app.clone()));
    tokio::spawn(scheduled_releases::run(app.clone()));
    let worker = format!(
        "{}:{}:{}",
        hostname(),
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    );
    let depths: Vec<_> = (0..=app.config.max_execution_depth as i32)
        .map(|depth| tokio::spawn(work(app.clone(), sandbox.clone(), worker.clone(), depth)))
        .collect();
    tokio::spawn(async move {
        for depth in depths {
            let _ = depth.await;
        }
    })
}

/// The reaper: fails (or requeues) executions whose worker's lease expired, and runtime-API
/// executions never finished. Runs in every process that has workers or serves the API.
pub async fn reap(app: App) {
    let mut shutdown = app.shutdown.clone();
    let period = (app.config.run_lease / 3).max(Duration::from_millis(500));
    loop {
        tokio::select! {
            () = tokio::time::sleep(period) => {}
            _ = shutdown.changed() => return,
        }
        let db = &app.services.db;
        if let Err(error) = lifecycle::reclaim_expired(db).await {
            tracing::warn!(%error, "runner: cannot reclaim expired leases");
        }
        if let Err(error) = lifecycle::fail_abandoned(db, app.config.runtime_execution_timeout).await {
            tracing::warn!(%error, "runner: cannot fail abandoned executions");
        }
    }
}

/// The workers of one depth: they claim only executions of that depth, so a run waiting for
/// its child (one level deeper) never holds the slot the child needs.
async fn work(app: App, sandbox: Sandbox, worker: String, depth: i32) {
    let slots = Arc::new(Semaphore::new(app.config.workers.max(1)));
    let mut feed = app.services.live.subscribe();
    let mut shutdown = app.shutdown.clone();
    if depth == 0 {
        tracing::info!(worker, slots = app.config.workers, "runner: workers started");
    }
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        match executions::claim_next(&app.services.db, &worker, depth, app.config.run_lease).await {
            Ok(Some(execution)) => {
                let app = app.clone();
                let sandbox = sandbox.clone();
                let worker = worker.clone();
                tokio::spawn(async move {
                    run(&app, &sandbox, &worker, execution).await;
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
                    if event.topic == "execution" && matches!(event.kind.as_str(), "started" | "updated") {
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
async fn run(app: &App, sandbox: &Sandbox, worker: &str, execution: execution_rows::Model) {
    let scope = Scope::of_execution(&execution);
    let outcome = match execute(app, sandbox, worker, &scope, &execution).await {
        Ok(Some(outcome)) => outcome,
        // Cancelled or reclaimed meanwhile: its final state is already recorded.
        Ok(None) => return,
        Err(error) => failed(error.public_message(), None),
    };
    let db = &app.services.db;
    match executions::finish_with_log(db, &scope, execution.id, outcome).await {
        Ok(_) | Err(Error::Conflict(_)) => {}
        Err(error) => {
            tracing::warn!(execution = %execution.id, %error, "runner: cannot record the outcome");
            // Never leave it RUNNING: record a plain failure instead.
            let fallback = failed(
                format!("the run's outcome could not be stored: {}", error.public_message()),
                None,
            );
            if let Err(error) = executions::finish_with_log(db, &scope, execution.id, fallback).await {
                tracing::warn!(execution = %execution.id, %error, "runner: cannot record the failure either");
            }
        }
    }
}

/// Reads at most `cap` bytes; the flag says whether more came. On overflow it stops reading
/// at once (the caller kills the run) instead of draining an endless stream.
async fn read_capped<R: AsyncRead + Unpin>(mut reader: R, cap: usize) -> (Vec<u8>, bool) {
    let mut kept = Vec::new();
    let mut buffer = [0u8; 16 * 1024];
    loop {
        match reader.read(&mut buffer).await {
            Ok(0) | Err(_) => return (kept, false),
            Ok(n) => {
                let room = cap.saturating_sub(kept.len());
                kept.extend_from_slice(&buffer[..n.min(room)]);
                if n > room {
                    return (kept, true);
                }
            }
        }
    }
}

/// Reads at most `cap` bytes and drains (discards) the rest until EOF.
async fn read_log<R: AsyncRead + Unpin>(mut reader: R, cap: usize) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut buffer = [0u8; 16 * 1024];
    loop {
        match reader.read(&mut buffer).await {
            Ok(0) | Err(_) => return kept,
            Ok(n) => {
                let room = cap.saturating_sub(kept.len());
                kept.extend_from_slice(&buffer[..n.min(room)]);
            }
        }
    }
}

/// Why a run stopped before its entrypoint ended by itself.
enum Stop {
    Timeout,
    /// Cancelled, or the lease was lost (the execution was reclaimed).
    Released,
}

/// Resolves when the execution is no longer RUNNING on this worker (cancelled or reclaimed):
/// renews the lease every third of its length and watches the live feed meanwhile.
async fn released(app: &App, worker: &str, id: uuid::Uuid) {
    let mut feed = app.services.live.subscribe();
    let period = app.config.run_lease / 3;
    loop {
        let tick = tokio::time::sleep(period);
        tokio::pin!(tick);
        loop {
            tokio::select! {
                () = &mut tick => break,
                event = feed.recv() => match event {
                    Ok(event) if event.execution_id == Some(id) && event.kind == "finished" => return,
                    Ok(_) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => break,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                        feed = app.services.live.subscribe();
                    }
                },
            }
        }
        match lifecycle::renew_lease(&app.services.db, id, worker, app.config.run_lease).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(error) => tracing::warn!(execution = %id, %error, "runner: cannot renew the lease"),
        }
    }
}

async fn execute(
    app: &App,
    sandbox: &Sandbox,
    worker: &str,
    scope: &Scope,
    execution: &execution_rows::Model,
) -> Result<Option<Outcome>> {
    let db = &app.services.db;
    let config = &app.config;
    if let Some(refusal) = sandbox.refusal() {
        return Ok(Some(failed(refusal, None)));
    }
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
    let directory = tempfile::Builder::new()
        .prefix("runflow-bundle-")
        .tempdir()
        .map_err(Error::internal)?;
    for file in files.remove(&commit_id).unwrap_or_default() {
        let path = directory.path().join(&file.path);
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(Error::internal)?;
        }
        tokio::fs::write(&path, file.content.as_bytes())
            .await
            .map_err(Error::internal)?;
    }
    if sandbox.is_isolated() {
        sandbox::open_bundle(directory.path()).map_err(Error::internal)?;
    }
    // The run's token expires with the run (timeout plus a short grace) and is refused by the
    // runtime API as soon as the execution has finished (see `auth::capability`).
    let token = app
        .services
        .tokens
        .mint(
            &capability::run_subject(execution.id),
            scope.tenant.id(),
            ActorKind::Runtime(scope.environment),
            config.run_timeout + RUN_TOKEN_GRACE,
        )
        .map_err(Error::internal)?;
    let namespace = memory::stored_namespace(scope.environment, &manifest.name)?;
    let spec = RunSpec {
        bundle: directory.path(),
        entrypoint: &manifest.entrypoint,
        env: AgentEnv {
            tenant: Some(scope.tenant.id().to_string()),
            environment: scope.environment.as_str().to_string(),
            execution_id: execution.id.to_string(),
            memory_namespace: namespace,
            token,
        },
    };
    let Prepared {
        mut command,
        guard: _guard,
    } = match sandbox.prepare(&spec, &config.api_url()) {
        Ok(prepared) => prepared,
        Err(reason) => return Ok(Some(failed(reason, None))),
    };
    let mut child = match command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
    {
        Ok(child) => child,
        Err(error) => {
            return Ok(Some(failed(
                format!("cannot start the entrypoint {:?}: {error}", manifest.entrypoint),
                None,
            )));
        }
    };
    let input = serde_json::to_vec(&execution.input).map_err(Error::internal)?;
    let stdin = child.stdin.take();
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let (max_output, max_log) = (config.run_max_output_bytes, config.run_max_log_bytes);
    if let Some(mut stdin) = stdin {
        tokio::spawn(async move {
            let _ = stdin.write_all(&input).await;
            let _ = stdin.shutdown().await;
        });
    }
    let log_task = tokio::spawn(async move {
        match stderr {
            Some(err) => read_log(err, max_log).await,
            None => Vec::new(),
        }
    });
    // The entrypoint's stdout until EOF (or the cap), then its exit status.
    let body = async {
        let (out, too_much) = match stdout {
            Some(out) => read_capped(out, max_output).await,
            None => (Vec::new(), false),
        };
        if too_much {
            return (out, true, None);
        }
        let status = child.wait().await.ok();
        (out, false, status)
    };
    let ended = tokio::select! {
        ended = body => Ok(ended),
        () = tokio::time::sleep(config.run_timeout) => Err(Stop::Timeout),
        () = released(app, worker, execution.id) => Err(Stop::Released),
    };
    // Whatever happened, nothing of the run survives it: kill the whole tree.
    sandbox::kill_tree(&mut child).await;
    let stderr = tokio::time::timeout(Duration::from_secs(5), log_task)
        .await
        .ok()
        .and_then(|r| r.ok())
        .unwrap_or_default();
    let log = Some(String::from_utf8_lossy(&stderr).into_owned()).filter(|l| !l.is_empty());
    let (stdout, too_much, status) = match ended {
        Ok(ended) => ended,
        Err(Stop::Timeout) => {
            return Ok(Some(failed(
                format!(
                    "the agent timed out after {} s and was stopped (RUNFLOW_RUN_TIMEOUT); all its processes were killed",
                    config.run_timeout.as_secs_f64()
                ),
                log,
            )));
        }
        Err(Stop::Released) => return Ok(None),
    };
    if too_much {
        return Ok(Some(failed(
            format!(
                "the agent printed more than {max_output} bytes on stdout; the limit is RUNFLOW_RUN_MAX_OUTPUT_BYTES"
            ),
            log,
        )));
    }
    let Some(status) = status else {
        return Ok(Some(failed("the agent's exit status could not be read", log)));
    };
    if !status.success() {
        let last = log
            .as_deref()
            .and_then(|l| l.lines().rev().find(|line| !line.trim().is_empty()))
            .unwrap_or("");
        return Ok(Some(failed(
            format!(
                "the agent exited with {status}{}{last}",
                if last.is_empty() { "" } else { ": " }
            ),
            log,
        )));
    }
    let text = String::from_utf8_lossy(&stdout);
    if text.trim().is_empty() {
        return Ok(Some(failed(
            "the agent printed nothing: it must print its output as JSON on stdout",
            log,
        )));
    }
    Ok(Some(match serde_json::from_str::<Value>(text.trim()) {
        Ok(output) => Outcome {
            status: ExecutionStatus::Succeeded,
            output: Some(output),
            error: None,
            log,
        },
        Err(error) => failed(format!("the agent's stdout is not JSON ({error})"), log),
    }))
}
