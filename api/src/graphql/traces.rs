//! Traces and spans, per environment.

use async_graphql::{Context, ID, Json, Object};
use chrono::{DateTime, Utc};
use entity::{spans, traces};
use serde_json::Value;

use super::context::{scope, services};
use super::pagination::{RelayConnection, connection, page_request, parse_id};
use super::{Environment, GqlResult};
use crate::domain::traces as domain;
use crate::error::Error;
use crate::scope::Scope;

pub struct Trace(pub traces::Model);

#[Object]
impl Trace {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// The environment it was recorded in.
    async fn environment(&self) -> Environment {
        self.0.environment.into()
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn status(&self) -> &str {
        &self.0.status
    }
    async fn execution_id(&self) -> Option<ID> {
        self.0.execution_id.map(|id| ID(id.to_string()))
    }
    async fn started_at(&self) -> DateTime<Utc> {
        self.0.started_at
    }
    async fn ended_at(&self) -> Option<DateTime<Utc>> {
        self.0.ended_at
    }
    /// Spans, in the order they were recorded.
    async fn spans(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> GqlResult<RelayConnection<Span>> {
        let scope = Scope::new(self.0.tenant_id.clone(), self.0.environment);
        let page = page_request(first, after)?;
        let spans = domain::spans(&services(ctx).db, &scope, self.0.id, &page).await?;
        Ok(connection(spans, |s| s.id, Span))
    }
}

pub struct Span(pub spans::Model);

#[Object]
impl Span {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn trace_id(&self) -> ID {
        ID(self.0.trace_id.to_string())
    }
    async fn parent_id(&self) -> Option<ID> {
        self.0.parent_span_id.map(|id| ID(id.to_string()))
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// LLM, TOOL, PROMPT, MEMORY or CUSTOM.
    async fn kind(&self) -> &str {
        &self.0.kind
    }
    /// OK, ERROR or UNSET.
    async fn status(&self) -> &str {
        &self.0.status
    }
    async fn started_at(&self) -> DateTime<Utc> {
        self.0.started_at
    }
    async fn ended_at(&self) -> Option<DateTime<Utc>> {
        self.0.ended_at
    }
    async fn attributes(&self) -> Json<Value> {
        Json(self.0.attributes.clone())
    }
    async fn input_tokens(&self) -> Option<i64> {
        self.0.input_tokens
    }
    async fn output_tokens(&self) -> Option<i64> {
        self.0.output_tokens
    }
}

#[derive(Default)]
pub struct TraceQuery;

#[Object]
impl TraceQuery {
    /// Traces of the environment, newest first.
    async fn traces(
        &self,
        ctx: &Context<'_>,
        environment: Environment,
        #[graphql(desc = "Only traces of this execution.")] execution_id: Option<ID>,
        first: Option<i32>,
        after: Option<String>,
    ) -> GqlResult<RelayConnection<Trace>> {
        let scope = scope(ctx, environment)?;
        let page = page_request(first, after)?;
        // An unknown id matches nothing.
        let execution_id = execution_id.map(|id| parse_id("execution", &id).unwrap_or_else(|_| uuid::Uuid::nil()));
        let traces = domain::list(&services(ctx).db, &scope, execution_id, &page).await?;
        Ok(connection(traces, |t| t.id, Trace))
    }

    /// One trace; null when it does not exist in the environment.
    async fn trace(&self, ctx: &Context<'_>, environment: Environment, id: ID) -> GqlResult<Option<Trace>> {
        let scope = scope(ctx, environment)?;
        let Ok(id) = parse_id("trace", &id) else {
            return Ok(None);
        };
        match domain::get(&services(ctx).db, &scope, id).await {
            Ok(row) => Ok(Some(Trace(row))),
            Err(Error::NotFound(_)) => Ok(None),
            Err(other) => Err(other.into()),
        }
    }
}
