//! Traces and spans, per environment.

use async_graphql::{Context, Enum, ID, Object};

use super::context::{loader, scope, scope_in, scoped_id, services};
use super::executions::Execution;
use super::ids::{self, NodeType};
use super::loaders::{ExecutionKey, SpanKey, TraceKey};
use super::pagination::{PageArgs, connection_type, parts};
use super::scalars::{DateTime, Json};
use super::{Environment, GqlResult};
use crate::domain::traces as domain;
use crate::error::Optional;

/// What a span measured.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "crate::domain::traces::SpanKind")]
pub enum SpanKind {
    /// A call to a language model.
    Llm,
    /// A tool call.
    Tool,
    /// Rendering a prompt.
    Prompt,
    /// A memory read or write.
    Memory,
    /// Anything else the agent recorded.
    Custom,
}

/// How a span or a trace ended (OpenTelemetry's status codes).
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "crate::domain::traces::Status")]
pub enum SpanStatus {
    /// Completed successfully.
    Ok,
    /// Failed.
    Error,
    /// Not set by the recorder.
    Unset,
}

/// A recorded trace: a tree of spans.
pub struct Trace(pub domain::Trace);

connection_type!(TraceConnection, TraceEdge, Trace, "traces");
connection_type!(SpanConnection, SpanEdge, Span, "spans");

/// A recorded trace (a tree of spans) in one environment, usually of one execution.
#[Object]
impl Trace {
    /// Global id of the trace.
    pub(crate) async fn id(&self) -> ID {
        ids::encode(NodeType::Trace, self.0.environment, self.0.id)
    }
    /// The environment it was recorded in.
    async fn environment(&self) -> Environment {
        self.0.environment.into()
    }
    /// The name its recorder gave it.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// How it ended.
    async fn status(&self) -> SpanStatus {
        self.0.status.into()
    }
    /// The execution it belongs to (null for a trace recorded outside an execution).
    async fn execution(&self, ctx: &Context<'_>) -> GqlResult<Option<Execution>> {
        let Some(id) = self.0.execution_id else { return Ok(None) };
        let key = ExecutionKey(id, self.0.environment);
        Ok(loader(ctx)?.load_one(key).await?.map(Execution))
    }
    /// When it started.
    async fn started_at(&self) -> DateTime {
        self.0.started_at.into()
    }
    /// When it finished (null while open).
    async fn finished_at(&self) -> Option<DateTime> {
        self.0.ended_at.map(Into::into)
    }
    /// Spans, in the order they were recorded.
    async fn spans(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size from the start (default 20, at most 100).")] first: Option<i32>,
        #[graphql(desc = "Return the spans after this cursor.")] after: Option<String>,
        #[graphql(desc = "Page size from the end (at most 100).")] last: Option<i32>,
        #[graphql(desc = "Return the spans before this cursor.")] before: Option<String>,
    ) -> GqlResult<SpanConnection> {
        let scope = scope_in(ctx, self.0.environment)?;
        let page = PageArgs::new(first, after, last, before).request(ctx)?;
        let spans = domain::spans(&services(ctx).db, &scope, self.0.id, &page).await?;
        Ok(SpanConnection(parts(spans, |s| s.id.to_string(), Span)))
    }
}

/// One timed operation of a trace.
pub struct Span(pub domain::Span);

/// One timed operation of a trace (a model call, a tool call, ...).
#[Object]
impl Span {
    /// Global id of the span.
    pub(crate) async fn id(&self) -> ID {
        ids::encode(NodeType::Span, self.0.environment, self.0.id)
    }
    /// The trace it belongs to.
    async fn trace(&self, ctx: &Context<'_>) -> GqlResult<Option<Trace>> {
        let key = TraceKey(self.0.trace_id, self.0.environment);
        Ok(loader(ctx)?.load_one(key).await?.map(Trace))
    }
    /// The enclosing span (null for a root span).
    async fn parent(&self, ctx: &Context<'_>) -> GqlResult<Option<Span>> {
        let Some(id) = self.0.parent_span_id else {
            return Ok(None);
        };
        let key = SpanKey(id, self.0.environment);
        Ok(loader(ctx)?.load_one(key).await?.map(Span))
    }
    /// The name its recorder gave it.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// What it measured.
    async fn kind(&self) -> SpanKind {
        self.0.kind.into()
    }
    /// How it ended.
    async fn status(&self) -> SpanStatus {
        self.0.status.into()
    }
    /// When it started.
    async fn started_at(&self) -> DateTime {
        self.0.started_at.into()
    }
    /// When it finished (null while open).
    async fn finished_at(&self) -> Option<DateTime> {
        self.0.ended_at.map(Into::into)
    }
    /// Free-form attributes its recorder attached, a JSON object.
    async fn attributes(&self) -> Json {
        Json(self.0.attributes.clone())
    }
    /// Prompt tokens of an LLM span, when reported.
    async fn input_tokens(&self) -> Option<i64> {
        self.0.input_tokens
    }
    /// Completion tokens of an LLM span, when reported.
    async fn output_tokens(&self) -> Option<i64> {
        self.0.output_tokens
    }
}

#[derive(Default)]
pub struct TraceQuery;

#[Object]
impl TraceQuery {
    /// Traces of the environment, newest first.
    #[allow(clippy::too_many_arguments)]
    async fn traces(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The environment to list.")] environment: Environment,
        #[graphql(desc = "Only traces of this execution (its global id).")] execution_id: Option<ID>,
        #[graphql(desc = "Page size from the start (default 20, at most 100).")] first: Option<i32>,
        #[graphql(desc = "Return the traces after this cursor.")] after: Option<String>,
        #[graphql(desc = "Page size from the end (at most 100).")] last: Option<i32>,
        #[graphql(desc = "Return the traces before this cursor.")] before: Option<String>,
    ) -> GqlResult<TraceConnection> {
        let scope = scope(ctx, environment)?;
        let page = PageArgs::new(first, after, last, before).request(ctx)?;
        // An unknown id matches nothing.
        let execution_id = execution_id
            .map(|id| ids::uuid_of(&id, NodeType::Execution, environment.into()).unwrap_or_else(uuid::Uuid::nil));
        let traces = domain::list(&services(ctx).db, &scope, execution_id, &page).await?;
        let look = ctx.look_ahead();
        if look.field("nodes").field("execution").exists()
            || look.field("edges").field("node").field("execution").exists()
        {
            let keys = traces
                .items
                .iter()
                .filter_map(|t| Some(ExecutionKey(t.execution_id?, t.environment)));
            super::loaders::prime(loader(ctx)?, keys.collect()).await?;
        }
        Ok(TraceConnection(parts(traces, |t| t.id.to_string(), Trace)))
    }

    /// One trace; null when it does not exist in the environment.
    async fn trace(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The environment to look in.")] environment: Environment,
        #[graphql(desc = "The trace's global id (the bare UUID the runtime API returns works too).")] id: ID,
    ) -> GqlResult<Option<Trace>> {
        let Some((scope, id)) = scoped_id(ctx, environment, &id, NodeType::Trace)? else {
            return Ok(None);
        };
        Ok(domain::get(&services(ctx).db, &scope, id).await.optional()?.map(Trace))
    }
}
