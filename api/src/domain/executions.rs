//! Executions: runs of an agent, tagged with the environment they ran in.
//!
//! An execution records the commit its environment ran at start. How runtimes report them is
//! the runtime API's job; these functions are what it (and tests) call.

use chrono::{DateTime, Utc};
use entity::{Environment, executions};
use sea_orm::{ColumnTrait, Order, QueryFilter, Set, TryIntoModel};
use serde_json::Value;
use uuid::Uuid;

use super::events::{self, NewEvent, Topic};
use super::pagination::{self, Page, PageRequest};
use super::{agents, new_id, now, validate};
use crate::db::Db;
use crate::error::{Error, Result};
use crate::scope::{AcrossTenants, Scope, TenantWrite};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExecutionStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl ExecutionStatus {
    pub const ALL: [ExecutionStatus; 5] = [
        ExecutionStatus::Queued,
        ExecutionStatus::Running,
        ExecutionStatus::Succeeded,
        ExecutionStatus::Failed,
        ExecutionStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ExecutionStatus::Queued => "QUEUED",
            ExecutionStatus::Running => "RUNNING",
            ExecutionStatus::Succeeded => "SUCCEEDED",
            ExecutionStatus::Failed => "FAILED",
            ExecutionStatus::Cancelled => "CANCELLED",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == value)
    }

    pub fn is_final(self) -> bool {
        matches!(
            self,
            ExecutionStatus::Succeeded | ExecutionStatus::Failed | ExecutionStatus::Cancelled
        )
    }
}

/// An execution, as the domain hands it out (the runner's claim and lease stay internal).
#[derive(Clone, Debug, PartialEq)]
pub struct Execution {
    pub id: Uuid,
    pub environment: Environment,
    pub agent_id: Uuid,
    pub commit_id: Option<Uuid>,
    pub trigger_id: Option<Uuid>,
    pub session_id: Option<Uuid>,
    pub status: ExecutionStatus,
    /// JSON null when the read left it out (see [`list`]).
    pub input: Value,
    pub output: Option<Value>,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// The agent's stderr (capped).
    pub log: Option<String>,
    pub parent_id: Option<Uuid>,
    pub depth: i32,
    pub attempt: i32,
}

/// The status of a stored execution (INTERNAL when the storage holds an unknown one).
fn stored_status(status: &str) -> Result<ExecutionStatus> {
    ExecutionStatus::parse(status)
        .ok_or_else(|| Error::internal(anyhow::anyhow!("stored execution status {status:?} is unknown")))
}

impl TryFrom<executions::Model> for Execution {
    type Error = Error;

    fn try_from(row: executions::Model) -> Result<Self> {
        Ok(Execution {
            status: stored_status(&row.status)?,
            id: row.id,
            environment: row.environment,
            agent_id: row.agent_id,
            commit_id: row.commit_id,
            trigger_id: row.trigger_id,
            session_id: row.session_id,
            input: row.input,
            output: row.output,
            error: row.error,
            created_at: row.created_at,
            started_at: row.started_at,
            finished_at: row.finished_at,
            log: row.log,
            parent_id: row.parent_id,
            depth: row.depth,
            attempt: row.attempt,
        })
    }
}

impl Execution {
    /// The execution as an execution event of `environment` describes it: its status and times
    /// as of the event, without `input`, `output` and `log` (never part of an event).
    pub fn of_event(summary: events::ExecutionSummary, environment: Environment) -> Result<Execution> {
        Ok(Execution {
            status: stored_status(&summary.status)?,
            id: summary.id,
            environment,
            agent_id: summary.agent_id,
            commit_id: summary.commit_id,
            trigger_id: summary.trigger_id,
            session_id: summary.session_id,
            input: Value::Null,
            output: None,
            error: summary.error,
            created_at: summary.created_at,
            started_at: summary.started_at,
            finished_at: summary.finished_at,
            log: None,
            parent_id: summary.parent_id,
            depth: summary.depth,
            attempt: summary.attempt,
        })
    }
}

#[derive(Clone, Debug, Default)]
pub struct StartExecution {
    pub agent: String,
    pub input: Value,
    pub session_id: Option<Uuid>,
    pub trigger_id: Option<Uuid>,
    /// Set when a run starts this execution (agent calling agent): the child is linked to it
    /// and one level deeper.
    pub parent: Option<ParentRun>,
}

/// The run that starts a child execution.
#[derive(Clone, Copy, Debug)]
pub struct ParentRun {
    pub id: Uuid,
    pub depth: i32,
}

/// Bounds on starting executions (from configuration).
#[derive(Clone, Copy, Debug)]
pub struct ExecutionLimits {
    /// Deepest chain of agents calling agents (a root execution has depth 0).
    pub max_depth: i32,
    /// Queued plus running executions a tenant may have at once.
    pub max_active: u64,
}

impl Default for ExecutionLimits {
    fn default() -> Self {
        ExecutionLimits {
            max_depth: 4,
            max_active: 100,
        }
    }
}

/// Filters of the executions list; all optional.
#[derive(Clone, Debug, Default)]
pub struct ExecutionFilter {
    pub agent: Option<String>,
    pub status: Option<ExecutionStatus>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

/// Starts an execution of `agent` at the commit its environment currently runs (a runtime
/// reporting a run it performs itself: status RUNNING).
pub async fn start(db: &Db, scope: &Scope, limits: &ExecutionLimits, input: StartExecution) -> Result<Execution> {
    create(db, scope, limits, input, ExecutionStatus::Running).await
}

/// Queues an execution for the runner's workers (status QUEUED), at the commit the
/// environment runs now.
pub async fn enqueue(db: &Db, scope: &Scope, limits: &ExecutionLimits, input: StartExecution) -> Result<Execution> {
    create(db, scope, limits, input, ExecutionStatus::Queued).await
}

async fn create(
    db: &Db,
    scope: &Scope,
    limits: &ExecutionLimits,
    input: StartExecution,
    status: ExecutionStatus,
) -> Result<Execution> {
    let tx = db.begin_write().await?;
    let row = create_in(&tx, scope, limits, input, status).await?;
    db.commit(tx).await?;
    db.wake_live_feed();
    row.try_into()
}

/// Creates an execution (and its event) inside the caller's transaction; the caller commits
/// and then wakes the live feed.
///
/// Refused with LIMIT_EXCEEDED when the tenant already has `limits.max_active` queued or
/// running executions, or when a child would be deeper than `limits.max_depth` (an agent that
/// calls itself in a loop ends there).
pub async fn create_in<C: sea_orm::ConnectionTrait>(
    tx: &C,
    scope: &Scope,
    limits: &ExecutionLimits,
    input: StartExecution,
    status: ExecutionStatus,
) -> Result<executions::Model> {
    use sea_orm::PaginatorTrait;
    validate::json_size("input", &input.input, 1024 * 1024)?;
    let depth = input.parent.map_or(0, |p| p.depth + 1);
    if depth > limits.max_depth {
        return Err(Error::LimitExceeded(format!(
            "agent {:?} was not started: the chain of agents calling agents would be {depth} deep, and the limit is \
             {} (RUNFLOW_MAX_EXECUTION_DEPTH); does an agent call itself?",
            input.agent, limits.max_depth
        )));
    }
    // One creator per tenant at a time (PostgreSQL READ COMMITTED would let two concurrent
    // creators both see room under the cap; SQLite's write transaction already serialises).
    crate::db::lock_for_update(tx, &active_executions_lock(scope.tenant.id())).await?;
    let active = scope
        .tenant
        .select::<executions::Entity>()
        .filter(executions::Column::Status.is_in([ExecutionStatus::Queued.as_str(), ExecutionStatus::Running.as_str()]))
        .count(tx)
        .await?;
    if active >= limits.max_active {
        return Err(Error::LimitExceeded(format!(
            "the tenant already has {active} queued or running executions, the limit (RUNFLOW_MAX_ACTIVE_EXECUTIONS); \
             try again when some have finished"
        )));
    }
    let agent = agents::get(tx, scope, &input.agent).await?;
    if let Some(session_id) = input.session_id {
        scope
            .select::<entity::sessions::Entity>()
            .filter(entity::sessions::Column::Id.eq(session_id))
            .one(tx)
            .await?
            .ok_or_else(|| Error::not_found(format!("session {session_id} in {}", scope.environment)))?;
    }
    let time = now();
    let row = executions::ActiveModel {
        id: Set(new_id()),
        tenant_id: Set(scope.tenant.id().to_string()),
        environment: Set(scope.environment),
        agent_id: Set(agent.agent.id),
        commit_id: Set(Some(agent.deployment.commit_id)),
        trigger_id: Set(input.trigger_id),
        session_id: Set(input.session_id),
        status: Set(status.as_str().to_string()),
        input: Set(input.input),
        output: Set(None),
        error: Set(None),
        created_at: Set(time),
        started_at: Set((status == ExecutionStatus::Running).then_some(time)),
        finished_at: Set(None),
        log: Set(None),
        claimed_by: Set(None),
        lease_expires_at: Set(None),
        parent_id: Set(input.parent.map(|p| p.id)),
        depth: Set(depth),
        attempt: Set(1),
    }
    .insert_into(&scope.tenant, tx)
    .await?;
    append_event(tx, scope, &row, "started", &agent.agent.slug).await?;
    Ok(row)
}

/// The advisory lock that serialises counting and creating a tenant's executions.
pub(crate) fn active_executions_lock(tenant: &str) -> String {
    format!("executions-of:{tenant}")
}

/// Appends an execution event (its payload is the execution as it now is).
pub(crate) async fn append_event<C: sea_orm::ConnectionTrait>(
    tx: &C,
    scope: &Scope,
    row: &executions::Model,
    kind: &'static str,
    agent_slug: &str,
) -> Result<()> {
    let event = NewEvent {
        environment: scope.environment,
        topic: Topic::Execution,
        kind,
        agent_slug: Some(agent_slug.to_string()),
        execution_id: Some(row.id),
        session_id: row.session_id,
        payload: events::execution_payload(row),
    };
    events::append(tx, &scope.tenant, vec![event]).await?;
    Ok(())
}

/// Finishes a running execution with a final status.
pub async fn finish(
    db: &Db,
    scope: &Scope,
    id: Uuid,
    status: ExecutionStatus,
    output: Option<Value>,
    error: Option<String>,
) -> Result<Execution> {
    if let Some(output) = &output {
        validate::json_no_nul("output", output)?;
    }
    if let Some(error) = &error {
        validate::no_nul("error", error)?;
    }
    finish_with_log(
        db,
        scope,
        id,
        Outcome {
            status,
            output,
            error,
            log: None,
        },
    )
    .await
}

/// How a run ended.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub status: ExecutionStatus,
    pub output: Option<Value>,
    pub error: Option<String>,
    /// The agent's stderr, already capped.
    pub log: Option<String>,
}

/// Finishes an execution, keeping the agent's log.
pub async fn finish_with_log(db: &Db, scope: &Scope, id: Uuid, outcome: Outcome) -> Result<Execution> {
    let Outcome {
        status,
        output,
        error,
        log,
    } = outcome;
    if !status.is_final() {
        return Err(Error::bad_input("status must be SUCCEEDED, FAILED or CANCELLED"));
    }
    let tx = db.begin_write().await?;
    let row = scope
        .select::<executions::Entity>()
        .filter(executions::Column::Id.eq(id))
        .one(&tx)
        .await?
        .ok_or_else(|| Error::not_found(format!("execution {id}")))?;
    if ExecutionStatus::parse(&row.status).is_some_and(ExecutionStatus::is_final) {
        return Err(Error::Conflict(format!(
            "execution {id} has already finished ({})",
            row.status
        )));
    }
    let mut active: executions::ActiveModel = row.into();
    active.status = Set(status.as_str().to_string());
    // What a run printed is stored as text: a NUL becomes U+FFFD (the runtime API refuses
    // NUL up front, in `finish`).
    active.output = Set(output.map(storable_json));
    active.error = Set(error.map(|e| storable_text(&e)));
    active.finished_at = Set(Some(now()));
    if let Some(log) = log {
        active.log = Set(Some(storable_text(&log)));
    }
    // Conditional on the status, so that of two concurrent finishes (PostgreSQL runs READ
    // COMMITTED) exactly one writes and appends the `finished` event; the other is CONFLICT.
    let final_statuses = ExecutionStatus::ALL
        .into_iter()
        .filter(|s| s.is_final())
        .map(ExecutionStatus::as_str);
    let written = scope
        .tenant
        .update_many::<executions::Entity>()
        .set(active.clone())
        .filter(executions::Column::Id.eq(id))
        .filter(executions::Column::Status.is_not_in(final_statuses))
        .exec(&tx)
        .await?;
    if written.rows_affected != 1 {
        return Err(Error::Conflict(format!(
            "execution {id} has already finished (concurrently)"
        )));
    }
    let row = active.try_into_model()?;
    let agent = scope
        .tenant
        .select::<entity::agents::Entity>()
        .filter(entity::agents::Column::Id.eq(row.agent_id));
    let agent_slug = agent.one(&tx).await?.map(|a| a.slug).unwrap_or_default();
    append_event(&tx, scope, &row, "finished", &agent_slug).await?;
    db.commit(tx).await?;
    db.wake_live_feed();
    row.try_into()
}

fn storable_text(text: &str) -> String {
    text.replace('\0', "\u{FFFD}")
}

fn storable_json(value: Value) -> Value {
    match value {
        Value::String(text) => Value::String(storable_text(&text)),
        Value::Array(items) => Value::Array(items.into_iter().map(storable_json).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(key, item)| (storable_text(&key), storable_json(item)))
                .collect(),
        ),
        other => other,
    }
}

pub async fn get(db: &Db, scope: &Scope, id: Uuid) -> Result<Execution> {
    by_id(db, scope, id)
        .await?
        .ok_or_else(|| Error::not_found(format!("execution {id} in {}", scope.environment)))
}

/// An execution of the scope by id (None: not there).
pub async fn by_id(db: &Db, scope: &Scope, id: Uuid) -> Result<Option<Execution>> {
    let row = super::lookup::in_scope::<executions::Entity, _>(&db.conn, scope, executions::Column::Id, id);
    row.await?.map(Execution::try_from).transpose()
}

/// Executions of the tenant by id, in either environment (in no particular order; missing ids
/// are left out): what the DataLoaders batch into.
pub async fn by_ids(db: &Db, tenant: &crate::scope::Tenant, ids: Vec<Uuid>) -> Result<Vec<Execution>> {
    let rows = super::lookup::many_in_tenant::<executions::Entity, _>(&db.conn, tenant, executions::Column::Id, ids);
    rows.await?.into_iter().map(Execution::try_from).collect()
}

/// Executions of the environment, newest first.
///
/// Without `large`, the rows carry no `input`, `output` or `log` (JSON `null`, `NULL`,
/// `NULL` in their place): a list whose query selects none of them neither reads nor decodes
/// them.
pub async fn list(
    db: &Db,
    scope: &Scope,
    filter: &ExecutionFilter,
    page: &PageRequest,
    large: bool,
) -> Result<Page<Execution>> {
    let mut select = scope.select::<executions::Entity>();
    if !large {
        select = without_large_columns(select, db.conn.get_database_backend());
    }
    if let Some(slug) = &filter.agent {
        // An unknown agent matches nothing (not an error: the list is just empty).
        let agent_id = agents::find(&db.conn, scope, slug)
            .await?
            .map(|a| a.agent.id)
            .unwrap_or_else(Uuid::nil);
        select = select.filter(executions::Column::AgentId.eq(agent_id));
    }
    if let Some(status) = filter.status {
        select = select.filter(executions::Column::Status.eq(status.as_str()));
    }
    if let Some(since) = filter.since {
        select = select.filter(executions::Column::CreatedAt.gte(since));
    }
    if let Some(until) = filter.until {
        select = select.filter(executions::Column::CreatedAt.lt(until));
    }
    pagination::fetch(db, select, executions::Column::Id, page, Order::Desc)
        .await?
        .try_map(Execution::try_from)
}

/// `select` reading every column but `input`, `output` and `log`, which it replaces by
/// constants of their types (so the rows still decode as models).
fn without_large_columns(
    select: sea_orm::Select<executions::Entity>,
    backend: sea_orm::DbBackend,
) -> sea_orm::Select<executions::Entity> {
    use sea_orm::sea_query::Expr;
    use sea_orm::{Iterable, QuerySelect};
    let json_null = match backend {
        sea_orm::DbBackend::Postgres => "'null'::jsonb",
        _ => "'null'",
    };
    let mut select = select.select_only();
    for column in executions::Column::iter() {
        select = match column {
            executions::Column::Input => select.column_as(Expr::cust(json_null), "input"),
            executions::Column::Output => select.column_as(Expr::cust("NULL"), "output"),
            executions::Column::Log => select.column_as(Expr::cust("NULL"), "log"),
            other => select.column(other),
        };
    }
    select
}

/// Claims the oldest queued execution of any tenant for `worker` (status RUNNING), or None.
///
/// This is the runner's system-level operation, the one place that reads across tenants: the
/// claimed row then carries its own tenant and environment. On PostgreSQL the row is locked
/// with `FOR UPDATE SKIP LOCKED`, so workers of several processes never claim the same
/// execution; on SQLite the IMMEDIATE write transaction serialises claims.
///
/// Only executions of `depth` are claimed: each depth has its own workers, so a run waiting
/// for its child never holds the slot the child needs (no deadlock). The claim holds for
/// `lease`; the worker renews it (see `lifecycle::renew_lease`).
pub async fn claim_next(
    db: &Db,
    worker: &str,
    depth: i32,
    lease: std::time::Duration,
) -> Result<Option<executions::Model>> {
    use sea_orm::sea_query::LockBehavior;
    use sea_orm::{DatabaseBackend, QueryOrder, QuerySelect};
    let tx = db.begin_write().await?;
    // The workers serve every tenant.
    let mut select = AcrossTenants::select::<executions::Entity>()
        .filter(executions::Column::Status.eq(ExecutionStatus::Queued.as_str()))
        .filter(executions::Column::Depth.eq(depth))
        .order_by_asc(executions::Column::Id)
        .limit(1);
    if db.backend() == DatabaseBackend::Postgres {
        select = select.lock_with_behavior(sea_orm::sea_query::LockType::Update, LockBehavior::SkipLocked);
    }
    let Some(row) = select.one(&tx).await? else {
        return Ok(None);
    };
    let scope = Scope::of_execution(&row);
    let mut active: executions::ActiveModel = row.into();
    active.status = Set(ExecutionStatus::Running.as_str().to_string());
    active.started_at = Set(Some(now()));
    active.claimed_by = Set(Some(worker.to_string()));
    active.lease_expires_at = Set(Some(
        now() + chrono::Duration::from_std(lease).unwrap_or_else(|_| chrono::Duration::seconds(30)),
    ));
    let row = active.update_in(&scope.tenant, &tx).await?;
    let agent = scope
        .tenant
        .select::<entity::agents::Entity>()
        .filter(entity::agents::Column::Id.eq(row.agent_id));
    let agent_slug = agent.one(&tx).await?.map(|a| a.slug).unwrap_or_default();
    append_event(&tx, &scope, &row, "updated", &agent_slug).await?;
    db.commit(tx).await?;
    db.wake_live_feed();
    Ok(Some(row))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::storable_json;

    #[test]
    fn nul_characters_of_a_run_become_replacement_characters() {
        assert_eq!(
            storable_json(json!({ "k\u{0}": ["a\u{0}b", 1, { "x": "\u{0}" }] })),
            json!({ "k\u{FFFD}": ["a\u{FFFD}b", 1, { "x": "\u{FFFD}" }] })
        );
    }
}
