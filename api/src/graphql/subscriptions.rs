//! Live subscriptions: execution, session, trace and release events of one tenant and one
//! environment, each with a `cursor` to resume from (`after`) with no gap and no duplicate.

use std::sync::Arc;

use async_graphql::{Context, Enum, ID, SimpleObject, Subscription};
use entity::events as event_rows;
use futures_util::{Stream, StreamExt};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::broadcast::error::RecvError;
use uuid::Uuid;

use super::context::{scope, services};
use super::executions::Execution;
use super::pagination::parse_id;
use super::releases::Release;
use super::sessions::{Message, Session};
use super::traces::{Span, Trace};
use super::{Environment, GqlResult};
use crate::app::Services;
use crate::domain::{events, executions, sessions};
use crate::error::{Error, Result};
use crate::scope::Scope;

/// Which events a subscription wants, besides its tenant and environment.
#[derive(Clone, Debug)]
struct Filter {
    topic: events::Topic,
    agent: Option<String>,
    execution_id: Option<Uuid>,
    session_id: Option<Uuid>,
}

impl Filter {
    fn matches(&self, scope: &Scope, event: &event_rows::Model) -> bool {
        event.tenant_id == scope.tenant.id()
            && event.environment == scope.environment
            && event.topic == self.topic.as_str()
            && self.agent.as_ref().is_none_or(|a| event.agent_slug.as_ref() == Some(a))
            && self.execution_id.is_none_or(|id| event.execution_id == Some(id))
            && self.session_id.is_none_or(|id| event.session_id == Some(id))
    }
}

/// Replays the log after the start cursor, then follows the live feed, in seq order.
async fn feed(
    services: &Services,
    scope: Scope,
    filter: Filter,
    after: Option<String>,
) -> Result<impl Stream<Item = Result<Arc<event_rows::Model>>> + use<>> {
    // Subscribe before reading the log: whatever commits meanwhile is in one or the other.
    let mut live = services.live.subscribe();
    let mut last = events::start_cursor(&services.db, &scope.tenant, after.as_deref()).await?;
    let db = services.db.clone();
    Ok(async_stream::try_stream! {
        loop {
            let batch = events::after(&db.conn, scope.tenant.id(), last, 500).await?;
            let full = batch.len() == 500;
            for event in batch {
                last = event.seq;
                if filter.matches(&scope, &event) {
                    yield Arc::new(event);
                }
            }
            if !full {
                break;
            }
        }
        loop {
            match live.recv().await {
                Ok(event) => {
                    if event.tenant_id != scope.tenant.id() || event.seq <= last {
                        continue;
                    }
                    last = event.seq;
                    if filter.matches(&scope, &event) {
                        yield event;
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    Err(Error::SlowConsumer(format!(
                        "this subscription fell {missed} events behind and was ended; \
                         subscribe again with `after` set to the last cursor you received"
                    )))?;
                }
                Err(RecvError::Closed) => break,
            }
        }
    })
}

fn part<T: DeserializeOwned>(event: &event_rows::Model, field: &str) -> Result<T> {
    serde_json::from_value(event.payload.get(field).cloned().unwrap_or(Value::Null))
        .map_err(|e| Error::internal(anyhow::anyhow!("event {} has a malformed {field}: {e}", event.seq)))
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum ExecutionEventKind {
    Started,
    /// Status changed without finishing (for example QUEUED to RUNNING).
    Updated,
    Finished,
}

#[derive(SimpleObject)]
pub struct ExecutionEvent {
    /// Resume after this event with `after: <cursor>`.
    cursor: String,
    kind: ExecutionEventKind,
    environment: Environment,
    /// The execution as it was when the event happened.
    execution: Execution,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum SessionEventKind {
    Created,
    MessageAdded,
}

#[derive(SimpleObject)]
pub struct SessionEvent {
    cursor: String,
    kind: SessionEventKind,
    environment: Environment,
    session: Session,
    /// For MESSAGE_ADDED: the message.
    message: Option<Message>,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum TraceEventKind {
    SpansRecorded,
}

#[derive(SimpleObject)]
pub struct TraceEvent {
    cursor: String,
    kind: TraceEventKind,
    environment: Environment,
    trace: Trace,
    /// The spans recorded by this batch.
    spans: Vec<Span>,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseEventKind {
    Published,
    RolledBack,
}

#[derive(SimpleObject)]
pub struct ReleaseEvent {
    cursor: String,
    kind: ReleaseEventKind,
    environment: Environment,
    release: Release,
}

fn execution_event(event: &event_rows::Model) -> Result<ExecutionEvent> {
    Ok(ExecutionEvent {
        cursor: event.seq.to_string(),
        kind: match event.kind.as_str() {
            "started" => ExecutionEventKind::Started,
            "finished" => ExecutionEventKind::Finished,
            _ => ExecutionEventKind::Updated,
        },
        environment: event.environment.into(),
        execution: Execution(part(event, "execution")?),
    })
}

fn session_event(event: &event_rows::Model) -> Result<SessionEvent> {
    Ok(SessionEvent {
        cursor: event.seq.to_string(),
        kind: if event.kind == "created" {
            SessionEventKind::Created
        } else {
            SessionEventKind::MessageAdded
        },
        environment: event.environment.into(),
        session: Session(part(event, "session")?),
        message: part::<Option<entity::session_messages::Model>>(event, "message")?.map(Message),
    })
}

fn trace_event(event: &event_rows::Model) -> Result<TraceEvent> {
    Ok(TraceEvent {
        cursor: event.seq.to_string(),
        kind: TraceEventKind::SpansRecorded,
        environment: event.environment.into(),
        trace: Trace(part(event, "trace")?),
        spans: part::<Vec<entity::spans::Model>>(event, "spans")?
            .into_iter()
            .map(Span)
            .collect(),
    })
}

fn release_event(event: &event_rows::Model) -> Result<ReleaseEvent> {
    Ok(ReleaseEvent {
        cursor: event.seq.to_string(),
        kind: if event.kind == "rolled_back" {
            ReleaseEventKind::RolledBack
        } else {
            ReleaseEventKind::Published
        },
        environment: event.environment.into(),
        release: Release(part(event, "release")?),
    })
}

type EventStream<T> = std::pin::Pin<Box<dyn Stream<Item = GqlResult<T>> + Send>>;

/// The stream of a subscription; a refusal (unknown id, bad cursor) is its only item.
async fn subscribe<T: Send + 'static>(
    ctx: &Context<'_>,
    environment: Environment,
    filter: Filter,
    after: Option<String>,
    convert: fn(&event_rows::Model) -> Result<T>,
) -> EventStream<T> {
    let stream = match scope(ctx, environment) {
        Ok(scope) => feed(services(ctx), scope, filter, after).await,
        Err(error) => Err(error),
    };
    match stream {
        Ok(stream) => Box::pin(stream.map(move |event| Ok(convert(&*event?)?))),
        Err(error) => Box::pin(futures_util::stream::once(async move { Err(error.into()) })),
    }
}

/// A stream that fails at once (a refused subscription).
fn refuse<T: Send + 'static>(error: Error) -> EventStream<T> {
    Box::pin(futures_util::stream::once(async move { Err(error.into()) }))
}

/// The id of a session of the caller's tenant and environment: NOT_FOUND otherwise.
async fn session_exists(ctx: &Context<'_>, environment: Environment, id: &ID) -> Result<Uuid> {
    let scope = scope(ctx, environment)?;
    Ok(sessions::get(&services(ctx).db, &scope, parse_id("session", id)?)
        .await?
        .id)
}

async fn execution_exists(ctx: &Context<'_>, environment: Environment, id: &ID) -> Result<Uuid> {
    let scope = scope(ctx, environment)?;
    Ok(executions::get(&services(ctx).db, &scope, parse_id("execution", id)?)
        .await?
        .id)
}

#[derive(Default)]
pub struct Subscription;

#[Subscription]
impl Subscription {
    /// Executions of the environment starting, changing and finishing.
    async fn execution_events(
        &self,
        ctx: &Context<'_>,
        environment: Environment,
        #[graphql(desc = "Only executions of this agent (slug).")] agent: Option<String>,
        #[graphql(desc = "Replay the events after this cursor first.")] after: Option<String>,
    ) -> EventStream<ExecutionEvent> {
        let filter = Filter {
            topic: events::Topic::Execution,
            agent,
            execution_id: None,
            session_id: None,
        };
        subscribe(ctx, environment, filter, after, execution_event).await
    }

    /// Sessions created and messages added (of one session when `sessionId` is given).
    async fn session_events(
        &self,
        ctx: &Context<'_>,
        environment: Environment,
        session_id: Option<ID>,
        after: Option<String>,
    ) -> EventStream<SessionEvent> {
        let session_id = match session_id {
            Some(id) => match session_exists(ctx, environment, &id).await {
                Ok(id) => Some(id),
                Err(error) => return refuse(error),
            },
            None => None,
        };
        let filter = Filter {
            topic: events::Topic::Session,
            agent: None,
            execution_id: None,
            session_id,
        };
        subscribe(ctx, environment, filter, after, session_event).await
    }

    /// Spans as they are recorded (of one execution when `executionId` is given).
    async fn trace_events(
        &self,
        ctx: &Context<'_>,
        environment: Environment,
        execution_id: Option<ID>,
        after: Option<String>,
    ) -> EventStream<TraceEvent> {
        let execution_id = match execution_id {
            Some(id) => match execution_exists(ctx, environment, &id).await {
                Ok(id) => Some(id),
                Err(error) => return refuse(error),
            },
            None => None,
        };
        let filter = Filter {
            topic: events::Topic::Trace,
            agent: None,
            execution_id,
            session_id: None,
        };
        subscribe(ctx, environment, filter, after, trace_event).await
    }

    /// Publishes and rollbacks, so every open Releases screen can refresh.
    async fn release_events(
        &self,
        ctx: &Context<'_>,
        environment: Environment,
        after: Option<String>,
    ) -> EventStream<ReleaseEvent> {
        let filter = Filter {
            topic: events::Topic::Release,
            agent: None,
            execution_id: None,
            session_id: None,
        };
        subscribe(ctx, environment, filter, after, release_event).await
    }

    /// Release requests opened, reviewed, approved, rejected and published (approvals), so
    /// every open Releases screen can refresh.
    async fn release_request_events(
        &self,
        ctx: &Context<'_>,
        environment: Environment,
        #[graphql(desc = "Replay the events after this cursor first.")] after: Option<String>,
    ) -> EventStream<super::governance::ReleaseRequestEvent> {
        let filter = Filter {
            topic: events::Topic::ReleaseRequest,
            agent: None,
            execution_id: None,
            session_id: None,
        };
        subscribe(
            ctx,
            environment,
            filter,
            after,
            super::governance::release_request_event,
        )
        .await
    }
}
