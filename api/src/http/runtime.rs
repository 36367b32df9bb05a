//! The runtime API under `/v1/runtime/`: how agent runtimes report what they do.
//!
//! The caller is a runtime, not a person: its token has `role: "runtime"` and an `environment`
//! claim, and everything it writes lands in that tenant and environment; nothing in a request
//! can choose another. Errors have the one error body of [`super::errors::v1_error`] with a 4xx
//! status (or 500 with a correlation id). Request bodies are strict JSON: unknown fields are refused.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use uuid::Uuid;

use super::bearer::Bearer;
use crate::app::App;
use crate::auth::capability::RuntimeCaller;
use crate::domain::executions::{ExecutionStatus, StartExecution};
use crate::domain::ingest::IngestLimits;
use crate::domain::traces::{Attributes, SpanInput, TraceInput};
use crate::domain::{connectors, executions, memory, prompts, sessions, traces};
use crate::error::Error;

mod otlp;

pub fn router() -> Router<App> {
    Router::new()
        .route("/executions", post(start_execution))
        .route("/executions/{id}/spans", post(record_spans))
        .route("/executions/{id}/finish", post(finish_execution))
        .route("/sessions", post(create_session))
        .route("/sessions/{id}/messages", post(add_message))
        .route(
            "/memory/{namespace}/{key}",
            get(get_memory).put(put_memory).delete(delete_memory),
        )
        .route("/prompts/{slug}", get(resolve_prompt))
        .route("/connectors/{slug}", get(resolve_connector))
        .route("/otlp/v1/traces", post(otlp::traces))
}

/// A domain error as an HTTP response.
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        ApiError(error)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self.0 {
            Error::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) | Error::ProductionReadOnly => StatusCode::FORBIDDEN,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::BadInput(_) => StatusCode::BAD_REQUEST,
            Error::Conflict(_) => StatusCode::CONFLICT,
            Error::CursorExpired(_) => StatusCode::GONE,
            Error::SlowConsumer(_) | Error::LimitExceeded(_) => StatusCode::TOO_MANY_REQUESTS,
            Error::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Error::IdempotencyKeyReused(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Error::ServiceUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let mut response = super::errors::v1_error(status, self.0.code(), &self.0.public_message());
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        }
        response
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// The calling runtime, checked by [`RuntimeCaller`] (the one place that decides what a
/// runtime or a run's token may do).
pub struct Runtime(pub RuntimeCaller);

impl FromRequestParts<App> for Runtime {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let Ok(Bearer(authentication)) = Bearer::from_request_parts(parts, app).await;
        let actor = authentication.require("send `Authorization: Bearer <runtime token>`")?;
        Ok(Runtime(RuntimeCaller::authenticate(&app.services.db, actor).await?))
    }
}

/// Parses a strict JSON body; the error names the problem and where.
pub fn body<T: DeserializeOwned>(bytes: &Bytes) -> ApiResult<T> {
    serde_json::from_slice(bytes).map_err(|e| Error::bad_input(format!("invalid JSON body: {e}")).into())
}

fn id(value: &str, what: &str) -> ApiResult<Uuid> {
    Uuid::parse_str(value).map_err(|_| Error::not_found(format!("{what} {value:?}")).into())
}

fn created(value: Value) -> Response {
    (StatusCode::CREATED, Json(value)).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct StartBody {
    agent: String,
    #[serde(default)]
    input: Value,
    session_id: Option<Uuid>,
    trigger_id: Option<Uuid>,
}

pub(crate) fn execution_json(row: &executions::Execution) -> Value {
    json!({
        "id": row.id, "environment": row.environment, "status": row.status.as_str(), "agentId": row.agent_id,
        "commitId": row.commit_id, "sessionId": row.session_id, "triggerId": row.trigger_id,
        "input": row.input, "output": row.output, "error": row.error,
        "startedAt": row.started_at, "finishedAt": row.finished_at,
    })
}

async fn start_execution(State(app): State<App>, Runtime(caller): Runtime, bytes: Bytes) -> ApiResult<Response> {
    let input: StartBody = body(&bytes)?;
    IngestLimits::from_config(&app.config).input(&input.input)?;
    let start = StartExecution {
        agent: input.agent,
        input: input.input,
        session_id: input.session_id,
        trigger_id: input.trigger_id,
        parent: caller.parent(),
    };
    let row = executions::start(&app.services.db, &caller.scope, &app.services.execution_limits, start).await?;
    Ok(created(execution_json(&row)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SpanBody {
    id: Option<Uuid>,
    parent_id: Option<Uuid>,
    name: String,
    kind: String,
    start_time: DateTime<Utc>,
    end_time: Option<DateTime<Utc>>,
    #[serde(default = "ok")]
    status: String,
    #[serde(default)]
    attributes: Attributes,
    input_tokens: Option<i64>,
    output_tokens: Option<i64>,
}

fn ok() -> String {
    "OK".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SpansBody {
    spans: Vec<SpanBody>,
}

async fn record_spans(
    State(app): State<App>,
    Runtime(caller): Runtime,
    Path(execution): Path<String>,
    bytes: Bytes,
) -> ApiResult<Response> {
    let execution = id(&execution, "execution")?;
    caller.may_report_on(execution)?;
    let scope = &caller.scope;
    let input: SpansBody = body(&bytes)?;
    if input.spans.is_empty() {
        return Err(Error::bad_input("spans is empty").into());
    }
    IngestLimits::from_config(&app.config).spans(input.spans.iter().map(|s| &s.attributes))?;
    let started_at = input.spans.iter().map(|s| s.start_time).min().unwrap_or_else(Utc::now);
    let spans = input
        .spans
        .into_iter()
        .map(|s| SpanInput {
            id: s.id,
            parent_span_id: s.parent_id,
            name: s.name,
            kind: s.kind,
            status: s.status,
            started_at: s.start_time,
            ended_at: s.end_time,
            attributes: s.attributes,
            input_tokens: s.input_tokens,
            output_tokens: s.output_tokens,
        })
        .collect();
    let trace = TraceInput {
        id: None,
        execution_id: Some(execution),
        name: "execution".into(),
        status: "OK".into(),
        started_at,
        ended_at: None,
        spans,
    };
    let (trace, spans) = traces::record(&app.services.db, scope, trace).await?;
    Ok(created(json!({ "traceId": trace.id, "spanIds": spans })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FinishBody {
    status: String,
    output: Option<Value>,
    error: Option<String>,
}

async fn finish_execution(
    State(app): State<App>,
    Runtime(caller): Runtime,
    Path(execution): Path<String>,
    bytes: Bytes,
) -> ApiResult<Json<Value>> {
    let execution = id(&execution, "execution")?;
    caller.may_report_on(execution)?;
    let scope = &caller.scope;
    let input: FinishBody = body(&bytes)?;
    let limits = IngestLimits::from_config(&app.config);
    limits.output(input.output.as_ref())?;
    limits.text("error", input.error.as_deref())?;
    let status = ExecutionStatus::parse(&input.status)
        .filter(|s| s.is_final())
        .ok_or_else(|| Error::bad_input("status must be SUCCEEDED, FAILED or CANCELLED"))?;
    let row = executions::finish(&app.services.db, scope, execution, status, input.output, input.error).await?;
    Ok(Json(execution_json(&row)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SessionBody {
    agent: Option<String>,
    #[serde(default)]
    title: String,
}

async fn create_session(State(app): State<App>, Runtime(caller): Runtime, bytes: Bytes) -> ApiResult<Response> {
    let scope = caller.scope;
    let input: SessionBody = body(&bytes)?;
    IngestLimits::from_config(&app.config).text("title", Some(&input.title))?;
    let session = sessions::create(&app.services.db, &scope, input.agent.as_deref(), &input.title).await?;
    Ok(created(
        json!({ "id": session.id, "environment": session.environment, "title": session.title }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MessageBody {
    role: String,
    content: String,
}

async fn add_message(
    State(app): State<App>,
    Runtime(RuntimeCaller { scope, .. }): Runtime,
    Path(session): Path<String>,
    bytes: Bytes,
) -> ApiResult<Response> {
    let session = id(&session, "session")?;
    let input: MessageBody = body(&bytes)?;
    IngestLimits::from_config(&app.config).text("content", Some(&input.content))?;
    let message = sessions::add_message(&app.services.db, &scope, session, &input.role, &input.content).await?;
    Ok(created(
        json!({ "id": message.id, "sessionId": message.session_id, "role": message.role.as_str() }),
    ))
}

fn memory_json(row: &memory::MemoryEntry) -> Value {
    json!({ "namespace": row.namespace, "key": row.key, "value": row.value, "revision": row.revision, "updatedAt": row.updated_at })
}

async fn get_memory(
    State(app): State<App>,
    Runtime(caller): Runtime,
    Path((namespace, key)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    caller.may_use_memory(&namespace)?;
    let scope = caller.scope;
    Ok(Json(memory_json(
        &memory::get(&app.services.db, &scope, &namespace, &key).await?,
    )))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MemoryBody {
    value: Value,
}

async fn put_memory(
    State(app): State<App>,
    Runtime(caller): Runtime,
    Path((namespace, key)): Path<(String, String)>,
    bytes: Bytes,
) -> ApiResult<Json<Value>> {
    caller.may_use_memory(&namespace)?;
    let scope = caller.scope;
    let input: MemoryBody = body(&bytes)?;
    Ok(Json(memory_json(
        &memory::put(&app.services.db, &scope, &namespace, &key, input.value).await?,
    )))
}

async fn delete_memory(
    State(app): State<App>,
    Runtime(caller): Runtime,
    Path((namespace, key)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    caller.may_use_memory(&namespace)?;
    let scope = caller.scope;
    memory::delete(&app.services.db, &scope, &namespace, &key).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn resolve_prompt(
    State(app): State<App>,
    Runtime(caller): Runtime,
    Path(slug): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.may_read_prompt(&slug)?;
    let scope = caller.scope;
    let resolved = prompts::resolve(&app.services.db, &scope, &slug).await?;
    Ok(Json(json!({
        "slug": slug,
        "environment": scope.environment,
        "source": if resolved.source == prompts::Source::Draft { "draft" } else { "published" },
        "version": resolved.version,
        "template": resolved.template,
        "variables": resolved.variables,
        "modelSettings": resolved.model_settings,
    })))
}

async fn resolve_connector(
    State(app): State<App>,
    Runtime(caller): Runtime,
    Path(slug): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.may_read_connector(&slug)?;
    let scope = caller.scope;
    let instance = connectors::get(&app.services.db.conn, &scope, &slug).await?;
    let mut resources = connectors::resources_of(&app.services.db, &scope.tenant, &[instance.id]).await?;
    let resources: serde_json::Map<String, Value> = resources
        .remove(&instance.id)
        .unwrap_or_default()
        .into_iter()
        .map(|r| (r.key, r.config))
        .collect();
    Ok(Json(json!({
        "slug": instance.slug,
        "environment": instance.environment,
        "kind": instance.kind,
        "config": instance.config,
        "credentials": instance.credential_refs,
        "resources": resources,
    })))
}
