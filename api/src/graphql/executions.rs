//! Executions: runs of an agent, per environment.

use std::collections::HashSet;

use async_graphql::{Context, Enum, ID, Object};

use super::agents::{Agent, Commit};
use super::context::{actor, loader, scope, scope_in, scoped_id, services, staging};
use super::ids::{self, NodeType};
use super::loaders::{
    AgentInEnvKey, CommitKey, ExecutionKey, FirstSpansOfExecution, FirstTraceOfExecution, SessionKey, SpanKey,
    TraceKey, TriggerKey, prime,
};
use super::pagination::{PageArgs, connection_type, parts};
use super::scalars::{DateTime, Json};
use super::sessions::Session;
use super::traces::{Span, SpanConnection, Trace};
use super::triggers::Trigger;
use super::{Environment, GqlResult};
use crate::domain::executions::{self as domain, ExecutionFilter};
use crate::domain::pagination::{Direction, Page, PageRequest};
use crate::domain::traces;
use crate::error::{Error, Optional};
use crate::scope::Scope;

/// Where an execution is in its life.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "crate::domain::executions::ExecutionStatus")]
pub enum ExecutionStatus {
    /// Waiting for a runner.
    Queued,
    /// A runner is running it.
    Running,
    /// Finished with an output.
    Succeeded,
    /// Finished with an error (see `error`).
    Failed,
    /// Stopped before it finished.
    Cancelled,
}

/// One run of an agent.
pub struct Execution(pub domain::Execution);

connection_type!(ExecutionConnection, ExecutionEdge, Execution, "executions");

impl Execution {
    /// The caller's scope in this execution's environment.
    fn scope(&self, ctx: &Context<'_>) -> crate::error::Result<Scope> {
        scope_in(ctx, self.0.environment)
    }
}

/// One run of an agent in one environment, with its input, output, log and spans.
#[Object]
impl Execution {
    /// Global id of the execution.
    pub(crate) async fn id(&self) -> ID {
        ids::encode(NodeType::Execution, self.0.environment, self.0.id)
    }
    /// The environment it ran in.
    async fn environment(&self) -> Environment {
        self.0.environment.into()
    }
    /// Where it is in its life.
    async fn status(&self) -> ExecutionStatus {
        self.0.status.into()
    }
    /// The input the agent was given.
    async fn input(&self) -> Json {
        Json(self.0.input.clone())
    }
    /// What the agent returned (null until it succeeds).
    async fn output(&self) -> Option<Json> {
        self.0.output.clone().map(Json)
    }
    /// Why it failed (null unless FAILED or CANCELLED).
    async fn error(&self) -> Option<&str> {
        self.0.error.as_deref()
    }
    /// What the agent wrote on stderr during a run by the runner (capped).
    async fn log(&self) -> Option<&str> {
        self.0.log.as_deref()
    }
    /// When it was queued.
    async fn created_at(&self) -> DateTime {
        self.0.created_at.into()
    }
    /// When a runner started it (null while queued).
    async fn started_at(&self) -> Option<DateTime> {
        self.0.started_at.map(Into::into)
    }
    /// When it finished (null until then).
    async fn finished_at(&self) -> Option<DateTime> {
        self.0.finished_at.map(Into::into)
    }
    /// The session (conversation) it ran in, if any.
    async fn session(&self, ctx: &Context<'_>) -> GqlResult<Option<Session>> {
        let Some(id) = self.0.session_id else { return Ok(None) };
        let key = SessionKey(id, self.0.environment);
        Ok(loader(ctx)?.load_one(key).await?.map(Session))
    }
    /// The execution whose run started this one (agent calling agent), if any.
    async fn parent(&self, ctx: &Context<'_>) -> GqlResult<Option<Execution>> {
        let Some(id) = self.0.parent_id else { return Ok(None) };
        let key = ExecutionKey(id, self.0.environment);
        Ok(loader(ctx)?.load_one(key).await?.map(Execution))
    }
    /// The global id of `parent`, without loading it.
    #[graphql(deprecation = "Use `parent { id }`: references are object links.")]
    async fn parent_id(&self) -> Option<ID> {
        self.0
            .parent_id
            .map(|id| ids::encode(NodeType::Execution, self.0.environment, id))
    }
    /// 0 for an execution started from outside; the parent's depth + 1 for a child.
    async fn depth(&self) -> i32 {
        self.0.depth
    }
    /// 1 for the first run; an idempotent agent's run lost with its worker is retried.
    async fn attempt(&self) -> i32 {
        self.0.attempt
    }
    /// The trigger that started it, if any (null when started otherwise or since deleted).
    async fn trigger(&self, ctx: &Context<'_>) -> GqlResult<Option<Trigger>> {
        let Some(id) = self.0.trigger_id else { return Ok(None) };
        let key = TriggerKey(id, self.0.environment);
        Ok(loader(ctx)?.load_one(key).await?.map(Trigger))
    }
    /// The first trace recorded for it, if any (see `spans` for every span of the execution).
    async fn trace(&self, ctx: &Context<'_>) -> GqlResult<Option<Trace>> {
        let key = FirstTraceOfExecution(self.0.id, self.0.environment);
        Ok(loader(ctx)?.load_one(key).await?.map(Trace))
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
    /// The spans recorded for the execution, in the order they were recorded.
    async fn spans(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size from the start (default 20, at most 100).")] first: Option<i32>,
        #[graphql(desc = "Return the spans after this cursor.")] after: Option<String>,
        #[graphql(desc = "Page size from the end (at most 100).")] last: Option<i32>,
        #[graphql(desc = "Return the spans before this cursor.")] before: Option<String>,
    ) -> GqlResult<SpanConnection> {
        let page = PageArgs::new(first, after, last, before).request(ctx)?;
        let spans = if first_page(&page) {
            // The common case, batched over a list of executions (see `prime_nested`).
            let mut rows = loader(ctx)?
                .load_one(FirstSpansOfExecution(
                    self.0.id,
                    page.size + 1,
                    selects_attributes(&ctx.look_ahead()),
                ))
                .await?
                .unwrap_or_default();
            let has_next_page = rows.len() as u64 > page.size;
            rows.truncate(page.size as usize);
            Page {
                items: rows,
                has_next_page,
                has_previous_page: false,
                total_count: None,
            }
        } else {
            traces::spans_of_execution(&services(ctx).db, &self.scope(ctx)?, self.0.id, &page).await?
        };
        Ok(SpanConnection(parts(spans, |s| s.id.to_string(), Span)))
    }
}

/// Whether a selected `spans` connection asks for the spans' `attributes` (read only then).
fn selects_attributes(spans: &async_graphql::Lookahead<'_>) -> bool {
    spans.field("nodes").field("attributes").exists() || spans.field("edges").field("node").field("attributes").exists()
}

/// A first page without cursors or a total: what the span loader batches.
fn first_page(page: &PageRequest) -> bool {
    page.direction == Direction::Forward && page.after.is_none() && page.before.is_none() && !page.count_total
}

/// The page size the selected `spans` field asks for, when it is a batchable first page.
fn selected_span_page_size(node: &async_graphql::Lookahead<'_>) -> Option<u64> {
    let fields = node.field("spans").selection_fields();
    let field = fields.first()?;
    let mut first = None;
    for (name, value) in field.arguments().ok()? {
        match (name.as_str(), value) {
            ("first", async_graphql::Value::Number(n)) => first = n.as_i64(),
            _ => return None,
        }
    }
    let first = first.and_then(|n| i32::try_from(n).ok());
    let page = PageRequest::new(first, None, None, None).ok()?;
    Some(page.size)
}

/// Batch-loads the nested fields the query selects on a page of executions.
async fn prime_nested(ctx: &Context<'_>, rows: &[domain::Execution]) -> GqlResult<()> {
    let edges = ctx.look_ahead().field("edges").field("node");
    let nodes = ctx.look_ahead().field("nodes");
    let loader = loader(ctx)?;
    for node in [&edges, &nodes] {
        if node.field("spans").exists()
            && let Some(size) = selected_span_page_size(node)
        {
            let attributes = selects_attributes(&node.field("spans"));
            let keys: Vec<FirstSpansOfExecution> = rows
                .iter()
                .map(|e| FirstSpansOfExecution(e.id, size + 1, attributes))
                .collect();
            prime(loader, keys.clone()).await?;
            // The spans' own links, for all of them at once.
            let spans = node.field("spans");
            let (parent, trace) = (
                spans.field("nodes").field("parent"),
                spans.field("nodes").field("trace"),
            );
            let (edge_parent, edge_trace) = (
                spans.field("edges").field("node").field("parent"),
                spans.field("edges").field("node").field("trace"),
            );
            if parent.exists() || trace.exists() || edge_parent.exists() || edge_trace.exists() {
                let loaded = loader.load_many(keys).await?;
                let spans = loaded.values().flatten();
                let parents = spans
                    .clone()
                    .filter_map(|s| Some(SpanKey(s.parent_span_id?, s.environment)));
                prime(loader, parents.collect()).await?;
                let traces = spans.map(|s| TraceKey(s.trace_id, s.environment));
                prime(loader, traces.collect::<HashSet<_>>().into_iter().collect()).await?;
            }
        }
    }
    let node = if nodes.exists() { nodes } else { edges };
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
    if node.field("session").exists() {
        let keys = rows
            .iter()
            .filter_map(|e| Some(SessionKey(e.session_id?, e.environment)));
        prime(loader, keys.collect()).await?;
    }
    if node.field("trigger").exists() {
        let keys = rows
            .iter()
            .filter_map(|e| Some(TriggerKey(e.trigger_id?, e.environment)));
        prime(loader, keys.collect()).await?;
    }
    if node.field("trace").exists() {
        let keys = rows.iter().map(|e| FirstTraceOfExecution(e.id, e.environment));
        prime(loader, keys.collect()).await?;
    }
    if node.field("parent").exists() {
        let keys = rows
            .iter()
            .filter_map(|e| Some(ExecutionKey(e.parent_id?, e.environment)));
        prime(loader, keys.collect()).await?;
    }
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
        #[graphql(desc = "The environment to list.")] environment: Environment,
        #[graphql(desc = "Only executions of this agent (slug).")] agent: Option<String>,
        #[graphql(desc = "Only executions with this status.")] status: Option<ExecutionStatus>,
        #[graphql(desc = "Only executions created at or after this time.")] since: Option<DateTime>,
        #[graphql(desc = "Only executions created before this time.")] until: Option<DateTime>,
        #[graphql(desc = "Page size from the start (default 20, at most 100).")] first: Option<i32>,
        #[graphql(desc = "Return the executions after this cursor.")] after: Option<String>,
        #[graphql(desc = "Page size from the end (at most 100).")] last: Option<i32>,
        #[graphql(desc = "Return the executions before this cursor.")] before: Option<String>,
    ) -> GqlResult<ExecutionConnection> {
        let scope = scope(ctx, environment)?;
        let page = PageArgs::new(first, after, last, before).request(ctx)?;
        let filter = ExecutionFilter {
            agent,
            status: status.map(Into::into),
            since: since.map(|t| t.0),
            until: until.map(|t| t.0),
        };
        // `input`, `output` and `log` are read only when the query selects one of them.
        let large = [
            ctx.look_ahead().field("nodes"),
            ctx.look_ahead().field("edges").field("node"),
        ]
        .iter()
        .any(|node| ["input", "output", "log"].iter().any(|name| node.field(name).exists()));
        let executions = domain::list(&services(ctx).db, &scope, &filter, &page, large).await?;
        prime_nested(ctx, &executions.items).await?;
        Ok(ExecutionConnection(parts(executions, |e| e.id.to_string(), Execution)))
    }

    /// One execution; null when it does not exist in the environment.
    async fn execution(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The environment to look in.")] environment: Environment,
        #[graphql(desc = "The execution's global id (the bare UUID the runtime API returns works too).")] id: ID,
    ) -> GqlResult<Option<Execution>> {
        let Some((scope, id)) = scoped_id(ctx, environment, &id, NodeType::Execution)? else {
            return Ok(None);
        };
        Ok(domain::get(&services(ctx).db, &scope, id)
            .await
            .optional()?
            .map(Execution))
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
    async fn cancel_execution(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "STAGING (production is read-only).")] environment: Environment,
        #[graphql(desc = "The execution's global id (the bare UUID the HTTP APIs return works too).")] id: ID,
    ) -> GqlResult<Execution> {
        let scope = staging(ctx, environment)?;
        let id = ids::uuid_of(&id, NodeType::Execution, environment.into())
            .ok_or_else(|| Error::not_found(format!("execution {:?}", id.as_str())))?;
        let by = actor(ctx)?.subject().to_string();
        Ok(Execution(
            crate::domain::lifecycle::cancel(&services(ctx).db, &scope, id, &by).await?,
        ))
    }
}
