//! Agent endpoints: `POST /v1/{tenant}/{environment}/agents/{slug}` runs the agent's code at
//! that environment's current commit. Webhook triggers: `POST
//! /v1/{tenant}/{environment}/triggers/{name}` (see [`webhook`]; signed with a timestamp).
//!
//! - The body is the input (JSON; empty means `{}`); `?session=<id>` continues a thread.
//! - By default the call waits and answers 200 with the finished execution (id, status,
//!   output, error); `?async=true` answers 202 at once with the queued execution's id.
//! - Callers: a runtime token of that environment, or a person's token of role developer or
//!   above. A runtime token of the other environment is FORBIDDEN; another tenant's URL is
//!   NOT_FOUND. A run's own token (`RUNFLOW_TOKEN`) starts a *child* of its execution, one
//!   level deeper (LIMIT_EXCEEDED beyond `RUNFLOW_MAX_EXECUTION_DEPTH`), and is refused once
//!   its run has ended.

use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;
use uuid::Uuid;

use super::bearer::Bearer;
use super::runtime::{ApiError, execution_json};
use crate::app::App;
use crate::auth::capability::RuntimeCaller;
use crate::auth::{ActorKind, policy};
use crate::domain::executions::{self, StartExecution};
use crate::error::Error;
use crate::scope::Scope;

#[derive(Deserialize)]
pub struct InvokeParams {
    #[serde(rename = "async", default)]
    run_async: bool,
    session: Option<Uuid>,
}

pub async fn invoke(
    State(app): State<App>,
    Path((tenant, environment, slug)): Path<(String, String, String)>,
    Query(params): Query<InvokeParams>,
    Bearer(authentication): Bearer,
    body: Bytes,
) -> Result<Response, ApiError> {
    let not_found = || Error::not_found(format!("agent {slug:?}"));
    let environment = entity::Environment::parse(&environment).ok_or_else(not_found)?;
    let actor = authentication.require("send `Authorization: Bearer <token>`")?;
    if actor.tenant_id() != tenant {
        return Err(not_found().into());
    }
    policy::may_run_agent(&actor, environment)?;
    // A run calling an agent starts a child of its own execution (depth-limited).
    let parent = match actor.kind() {
        ActorKind::Runtime(_) => RuntimeCaller::authenticate(&app.services.db, actor.clone())
            .await?
            .parent(),
        ActorKind::Person(_) => None,
    };
    let input: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        serde_json::from_slice(&body).map_err(|e| Error::bad_input(format!("the input is not valid JSON: {e}")))?
    };
    let scope = Scope::of(&actor, environment);
    // Listen before queueing, so the finish event cannot be missed.
    let mut feed = app.services.live.subscribe_tenant(actor.tenant_id());
    let start = StartExecution {
        agent: slug,
        input,
        session_id: params.session,
        trigger_id: None,
        parent,
    };
    let execution = executions::enqueue(&app.services.db, &scope, &app.services.execution_limits, start).await?;
    if params.run_async {
        return Ok((StatusCode::ACCEPTED, Json(execution_json(&execution))).into_response());
    }
    let deadline = app.config.run_timeout + Duration::from_secs(30);
    let finished = tokio::time::timeout(deadline, async {
        loop {
            match feed.recv().await {
                Ok(event) if event.execution_id == Some(execution.id) && event.kind == "finished" => return,
                Ok(_) => {}
                // Fell behind the feed: the database says whether it is done.
                Err(RecvError::Lagged(_)) => {
                    if let Ok(row) = executions::get(&app.services.db, &scope, execution.id).await
                        && row.finished_at.is_some()
                    {
                        return;
                    }
                }
                Err(RecvError::Closed) => return,
            }
        }
    })
    .await;
    let row = executions::get(&app.services.db, &scope, execution.id).await?;
    let status = if finished.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::GATEWAY_TIMEOUT
    };
    Ok((status, Json(execution_json(&row))).into_response())
}

/// A webhook trigger's URL. The caller proves it knows the trigger's secret with
/// `X-Runflow-Timestamp: <unix seconds>` and `X-Runflow-Signature: sha256=<hex HMAC-SHA256 of
/// "<timestamp>.<raw body>">`; a timestamp outside `RUNFLOW_WEBHOOK_TOLERANCE` is refused
/// (replay protection). An unknown trigger, a bad signature and a stale timestamp get the same
/// answer (401 UNAUTHENTICATED, same message), so names cannot be probed. The body (JSON, or
/// empty) becomes the input of an execution in the trigger's own environment. Answers 202 with
/// the queued execution.
pub async fn webhook(
    State(app): State<App>,
    Path((tenant, environment, name)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    use crate::domain::triggers::{self, TriggerKind, WebhookCall};
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let call = WebhookCall {
        timestamp: header("x-runflow-timestamp"),
        signature: header("x-runflow-signature"),
        body: &body,
    };
    let trigger = match entity::Environment::parse(&environment) {
        Some(environment) => triggers::find(
            &app.services.db.conn,
            &Scope::of_webhook_url(&tenant, environment),
            &name,
        )
        .await?
        .filter(|t| t.kind == TriggerKind::Webhook.as_str()),
        None => None,
    };
    let limits = &app.services.trigger_limits;
    let trigger = triggers::verify_webhook(&app.services.secret_box, limits, trigger.as_ref(), &call)?;
    if !trigger.enabled {
        return Err(Error::Conflict(format!("trigger {name:?} is disabled")).into());
    }
    let input: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        serde_json::from_slice(&body).map_err(|e| Error::bad_input(format!("the body is not valid JSON: {e}")))?
    };
    let execution = triggers::fire(
        &app.services.db,
        &app.services.execution_limits,
        limits,
        trigger,
        None,
        input,
    )
    .await?
    .ok_or_else(|| Error::internal(anyhow::anyhow!("a webhook firing was not recorded")))?;
    Ok((StatusCode::ACCEPTED, Json(execution_json(&execution))).into_response())
}
