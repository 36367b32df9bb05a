//! Executions: runs of an agent, per environment.

use async_graphql::{Context, Enum, ID, Json, Object};
use chrono::{DateTime, Utc};
use entity::executions;
use serde_json::Value;

use super::agents::{Agent, Commit};
use super::context::{actor, loader, scope, services, staging};
use super::loaders::{AgentInEnvKey, CommitKey, SpansOfExecution, prime};
use super::pagination::{RelayConnection, connection, page_request, parse_id};
use super::traces::Span;
use super::{Environment, GqlResult};
use crate::domain::executions::{self as domain, ExecutionFilter};
use crate::error::Error;

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "crate::domain::executions::ExecutionStatus")]
pub enum ExecutionStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

pub struct Execution(pub executions::Model);

#[Object]
impl Execution {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// The environment it ran in.
    async fn environment(&self) -> Environment {
        self.0.environment.into()
    }
    async fn status(&self) -> GqlResult<ExecutionStatus> {
        let status = domain::ExecutionStatus::parse(&self.0.status).ok_or_else(|| {
            Error::internal(anyhow::anyhow!(
                "stored execution status {:?} is unknown",
                self.0.status
            ))
        })?;
        Ok(status.into())
    }
    async fn input(&self) -> Json<Value> {
        Json(self.0.input.clone())
    }
    async fn output(&self) -> Option<Json<Value>> {
        self.0.output.clone().map(Json)
    }
    async fn error(&self) -> Option<&str> {
        self.0.error.as_deref()
    }
    /// What the agent wrote on stderr during a run by the runner (capped).
    async fn log(&self) -> Option<&str> {
        self.0.log.as_deref()
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn started_at(&self) -> Option<DateTime<Utc>> {
        self.0.started_at
    }
    async fn finished_at(&self) -> Option<DateTime<Utc>> {
        self.0.finished_at
    }
    async fn session_id(&self) -> Option<ID> {
        self.0.session_id.map(|id| ID(id.to_string()))
    }
    /// The execution whose run started this one (agent calling agent), if any.
    async fn parent_id(&self) -> Option<ID> {
        self.0.parent_id.map(|id| ID(id.to_string()))
    }

    /// 0 for an execution started from outside; parent's depth + 1 for a child.
    async fn depth(&self) -> i32 {
        self.0.depth
    }

    /// 1 for the first run; an idempotent agent's run lost with its worker is retried.
    async fn attempt(&self) -> i32 {
        self.0.attempt
    }

    async fn trigger_id(&self) -> Option<ID> {
        self.0.trigger_id.map(|id| ID(id.to_string()))
    }
    /// The agent as it exists in the execution's environment (null if since removed there).
    async fn agent(&self, ctx: &Context<'_>) -> GqlResult<Option<Agent>> {
        let key = AgentInEnvKey(self.0.agent_id, self.0.environment);
        Ok(loader(ctx)?.load_one(key).await?.map(Agent))
    }
    /// The commit the execution ran.
    async fn commit(&self, ctx: &Context<'_>) -> GqlResult<Option<Commit>> {
        let Some(commit_id) = self.0.commit_id else {
            return Ok(None);
        };
        Ok(loader(ctx)?.load_one(CommitKey(commit_id)).await?.map(Commit))
    }
    /// Every span recorded for the execution, in order.
    async fn spans(&self, ctx: &Context<'_>) -> GqlResult<Vec<Span>> {
        let spans = loader(ctx)?
            .load_one(SpansOfExecution(self.0.id))
            .await?
            .unwrap_or_default();
        Ok(spans.into_iter().map(Span).collect())
    }
}

/// Batch-loads the nested fields the query selects on a page of executions.
async fn prime_nested(ctx: &Context<'_>, rows: &[executions::Model]) -> GqlResult<()> {
    let node = ctx.look_ahead().field("edges").field("node");
    let loader = loader(ctx)?;
    if node.field("spans").exists() {
        prime(loader, rows.iter().map(|e| SpansOfExecution(e.id)).collect()).await?;
    }
    let mut commits: Vec<CommitKey> = Vec::new();
    if node.field("agent").exists() {
        let keys: Vec<AgentInEnvKey> = rows.iter().map(|e| AgentInEnvKey(e.agent_id, e.environment)).collect();
        prime(loader, keys.clone()).await?;
        if node.field("agent").field("currentCommit").exists() {
            let agents = loader.load_many(keys).await?;
            commits.extend(agents.values().map(|a| CommitKey(a.deployment.commit_id)));
        }
    }
    if node.field("commit").exists() {
        commits.extend(rows.iter().filter_map(|e| e.commit_id.map(CommitKey)));
    }
    prime(loader, commits).await?;
    Ok(())
}

#[derive(Default)]
pub struct ExecutionQuery;

#[Object]
impl ExecutionQuery {
    /// Executions of the environment, newest first.
    #[allow(clippy::too_many_arguments)]
    async fn executions(
        &self,
        ctx: &Context<'_>,
        environment: Environment,
        #[graphql(desc = "Only executions of this agent (slug).")] agent: Option<String>,
        status: Option<ExecutionStatus>,
        #[graphql(desc = "Only executions created at or after this time.")] since: Option<DateTime<Utc>>,
        #[graphql(desc = "Only executions created before this time.")] until: Option<DateTime<Utc>>,
        #[graphql(desc = "Page size (default 20, at most 100).")] first: Option<i32>,
        after: Option<String>,
    ) -> GqlResult<RelayConnection<Execution>> {
        let scope = scope(ctx, environment)?;
        let page = page_request(first, after)?;
        let filter = ExecutionFilter {
            agent,
            status: status.map(Into::into),
            since,
            until,
        };
        let executions = domain::list(&services(ctx).db, &scope, &filter, &page).await?;
        prime_nested(ctx, &executions.items).await?;
        Ok(connection(executions, |e| e.id, Execution))
    }

    /// One execution; null when it does not exist in the environment.
    async fn execution(&self, ctx: &Context<'_>, environment: Environment, id: ID) -> GqlResult<Option<Execution>> {
        let scope = scope(ctx, environment)?;
        let Ok(id) = parse_id("execution", &id) else {
            return Ok(None);
        };
        match domain::get(&services(ctx).db, &scope, id).await {
            Ok(row) => Ok(Some(Execution(row))),
            Err(Error::NotFound(_)) => Ok(None),
            Err(other) => Err(other.into()),
        }
    }
}

#[derive(Default)]
pub struct ExecutionMutation;

#[Object]
impl ExecutionMutation {
    /// Cancels a queued or running execution: it ends CANCELLED and the run's whole process
    /// tree is killed. Staging only: production is read-only, and a production run ends by
    /// itself within RUNFLOW_RUN_TIMEOUT (see the README's security model). CONFLICT when the
    /// execution has already finished.
    async fn cancel_execution(&self, ctx: &Context<'_>, environment: Environment, id: ID) -> GqlResult<Execution> {
        let scope = staging(ctx, environment)?;
        let id = parse_id("execution", &id)?;
        let by = actor(ctx)?.subject.clone();
        Ok(Execution(
            crate::domain::lifecycle::cancel(&services(ctx).db, &scope, id, &by).await?,
        ))
    }
}
