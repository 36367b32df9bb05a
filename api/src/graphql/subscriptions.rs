//! Live subscriptions: execution, session, trace and release events of one tenant and one
//! environment, each with a `cursor` to resume from (`after`) with no gap and no duplicate.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::{Context, Enum, ID, SimpleObject, Subscription};
use futures_util::{Stream, StreamExt};
use tokio::sync::broadcast::error::RecvError;
use uuid::Uuid;

use super::context::{scope, services};
use super::executions::Execution;
use super::ids::{self, NodeType};
use super::releases::Release;
use super::sessions::{Message, Session};
use super::traces::{Span, Trace};
use super::{Environment, GqlResult};
use crate::domain::{events, executions, releases, sessions, traces};
use crate::error::{Error, Result};
use crate::scope::Scope;
use crate::services::Services;

/// Which events a subscription wants, besides its tenant and environment.
#[derive(Clone, Debug)]
struct Filter {
    topic: events::Topic,
    agent: Option<String>,
    execution_id: Option<Uuid>,
    session_id: Option<Uuid>,
}

impl Filter {
    fn matches(&self, scope: &Scope, event: &events::Event) -> bool {
        event.tenant_id == scope.tenant.id()
            && event.environment == scope.environment
            && event.is(self.topic)
            && self.agent.as_ref().is_none_or(|a| event.agent_slug.as_ref() == Some(a))
            && self.execution_id.is_none_or(|id| event.execution_id == Some(id))
            && self.session_id.is_none_or(|id| event.session_id == Some(id))
    }
}

/// Events read from the log per query when replaying or catching up.
const REPLAY_PAGE: u64 = 500;

/// Replays the log after the start cursor, then follows the live feed, in seq order.
async fn feed(
    services: &Services,
    scope: Scope,
    filter: Filter,
    after: Option<String>,
) -> Result<impl Stream<Item = Result<Arc<events::Event>>> + use<>> {
    // Subscribe before reading the log: whatever commits meanwhile is in one or the other.
    let mut live = services.live.subscribe_tenant(scope.tenant.id());
    let mut last = events::start_cursor(&services.db, &scope.tenant, after.as_deref()).await?;
    let db = services.db.clone();
    Ok(async_stream::try_stream! {
        'feed: loop {
            // Replay (and catch up) from the log, a page at a time: an old cursor never loads
            // the whole history at once.
            loop {
                let batch = events::after(&db, scope.tenant.id(), last, REPLAY_PAGE).await?;
                let full = batch.len() as u64 == REPLAY_PAGE;
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
                        if event.seq > last + 1 {
                            // A gap (an event of this tenant not seen here yet): the log has it.
                            continue 'feed;
                        }
                        last = event.seq;
                        if filter.matches(&scope, &event) {
                            yield event;
                        }
                    }
                    // This process's feed moved on faster than we read it: the log still has
                    // everything after our cursor, so catch up from there.
                    Err(RecvError::Lagged(_)) => continue 'feed,
                    Err(RecvError::Closed) => break 'feed,
                }
            }
        }
    })
}

/// What happened to an execution.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum ExecutionEventKind {
    /// It was created (queued or started).
    Started,
    /// Status changed without finishing (for example QUEUED to RUNNING).
    Updated,
    /// It reached SUCCEEDED, FAILED or CANCELLED.
    Finished,
}

/// An execution started, changed or finished.
#[derive(SimpleObject)]
pub struct ExecutionEvent {
    /// Resume after this event with `after: <cursor>`.
    cursor: String,
    /// What happened.
    kind: ExecutionEventKind,
    /// The environment it happened in.
    environment: Environment,
    /// The execution: its status and times as of the event; `input`, `output` and `log` (never
    /// part of an event) are read from the database when selected.
    execution: Execution,
}

/// What happened to a session.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum SessionEventKind {
    /// A session was created.
    Created,
    /// A message was added to a session.
    MessageAdded,
}

/// A session was created or got a message.
#[derive(SimpleObject)]
pub struct SessionEvent {
    /// Resume after this event with `after: <cursor>`.
    cursor: String,
    /// What happened.
    kind: SessionEventKind,
    /// The environment it happened in.
    environment: Environment,
    /// The session as it was when the event happened.
    session: Session,
    /// For MESSAGE_ADDED: the message.
    message: Option<Message>,
}

/// What happened to a trace.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum TraceEventKind {
    /// A batch of spans was recorded.
    SpansRecorded,
}

/// Spans were recorded.
#[derive(SimpleObject)]
pub struct TraceEvent {
    /// Resume after this event with `after: <cursor>`.
    cursor: String,
    /// What happened.
    kind: TraceEventKind,
    /// The environment it happened in.
    environment: Environment,
    /// The trace the spans belong to.
    trace: Trace,
    /// The spans recorded by this batch (at most RUNFLOW_MAX_SPANS_PER_REQUEST).
    spans: Vec<Span>,
}

/// What a release did.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseEventKind {
    /// Staging changes were published.
    Published,
    /// Production was rolled back.
    RolledBack,
}

/// Production changed by a publish or a rollback.
#[derive(SimpleObject)]
pub struct ReleaseEvent {
    /// Resume after this event with `after: <cursor>`.
    cursor: String,
    /// What happened.
    kind: ReleaseEventKind,
    /// The environment asked for (releases change production).
    environment: Environment,
    /// The release.
    release: Release,
}

/// What an event's conversion needs: the database, and which large fields the subscription
/// selects (those are not in the event: they are read fresh, per event).
struct Convert {
    services: Services,
    scope: Scope,
    large: bool,
}

/// An event's objects are built from its bounded payload (see [`events`]); when the
/// subscription selects a large field, the current row is read instead.
type Converter<T> = fn(Arc<Convert>, Arc<events::Event>) -> BoxFuture<'static, Result<T>>;

type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

fn execution_kind(kind: &str) -> ExecutionEventKind {
    match kind {
        "started" => ExecutionEventKind::Started,
        "finished" => ExecutionEventKind::Finished,
        _ => ExecutionEventKind::Updated,
    }
}

fn execution_event(convert: Arc<Convert>, event: Arc<events::Event>) -> BoxFuture<'static, Result<ExecutionEvent>> {
    Box::pin(async move {
        let summary: events::ExecutionSummary = events::payload_part(&event, "execution")?;
        let clipped_error = summary
            .error
            .as_ref()
            .is_some_and(|e| e.len() + 4 > events::SUMMARY_TEXT_BYTES);
        let fresh = if convert.large || clipped_error {
            match executions::get(&convert.services.db, &convert.scope, summary.id).await {
                Ok(row) => Some(row),
                Err(Error::NotFound(_)) => None,
                Err(other) => return Err(other),
            }
        } else {
            None
        };
        let as_of_event = executions::Execution::of_event(summary, event.environment)?;
        // The status and times are the event's (the row may have moved on since).
        let execution = match fresh {
            Some(row) => executions::Execution {
                status: as_of_event.status,
                started_at: as_of_event.started_at,
                finished_at: as_of_event.finished_at,
                ..row
            },
            None => as_of_event,
        };
        Ok(ExecutionEvent {
            cursor: event.seq.to_string(),
            kind: execution_kind(&event.kind),
            environment: event.environment.into(),
            execution: Execution(execution),
        })
    })
}

fn session_event(convert: Arc<Convert>, event: Arc<events::Event>) -> BoxFuture<'static, Result<SessionEvent>> {
    Box::pin(async move {
        let summary: events::SessionSummary = events::payload_part(&event, "session")?;
        let message: Option<events::MessageSummary> = events::payload_part(&event, "message")?;
        let session = sessions::Session::of_event(summary, event.environment);
        let message = match message {
            None => None,
            Some(message) => {
                let stored = if convert.large {
                    sessions::message_by_id(&convert.services.db, &convert.scope, message.id).await?
                } else {
                    None
                };
                Some(Message(match stored {
                    Some(stored) => stored,
                    None => sessions::Message::of_event(message, event.environment)?,
                }))
            }
        };
        Ok(SessionEvent {
            cursor: event.seq.to_string(),
            kind: if event.kind == "created" {
                SessionEventKind::Created
            } else {
                SessionEventKind::MessageAdded
            },
            environment: event.environment.into(),
            session: Session(session),
            message,
        })
    })
}

fn trace_event(convert: Arc<Convert>, event: Arc<events::Event>) -> BoxFuture<'static, Result<TraceEvent>> {
    Box::pin(async move {
        let trace: events::TraceSummary = events::payload_part(&event, "trace")?;
        // Version 2 names the spans: they are read (in the batch's order; a span pruned since
        // is left out).
        let span_ids: Option<Vec<Uuid>> = events::payload_part(&event, "span_ids")?;
        if let Some(ids) = span_ids {
            let rows = traces::spans_by_ids(&convert.services.db, &convert.scope, &ids).await?;
            let mut stored: HashMap<Uuid, traces::Span> = rows.into_iter().map(|row| (row.id, row)).collect();
            let spans = ids.iter().filter_map(|id| stored.remove(id)).map(Span).collect();
            return trace_event_of(&event, trace, spans);
        }
        // Version 1 held the spans' summaries.
        let summaries: Vec<events::SpanSummary> = events::payload_part(&event, "spans")?;
        let mut stored: HashMap<Uuid, traces::Span> = HashMap::new();
        if convert.large && !summaries.is_empty() {
            let ids: Vec<Uuid> = summaries.iter().map(|s| s.id).collect();
            let rows = traces::spans_by_ids(&convert.services.db, &convert.scope, &ids).await?;
            stored.extend(rows.into_iter().map(|row| (row.id, row)));
        }
        let spans = summaries
            .into_iter()
            .map(|s| match stored.remove(&s.id) {
                Some(span) => Ok(Span(span)),
                None => Ok(Span(traces::Span::of_event(s, event.environment)?)),
            })
            .collect::<Result<_>>()?;
        trace_event_of(&event, trace, spans)
    })
}

fn trace_event_of(event: &events::Event, trace: events::TraceSummary, spans: Vec<Span>) -> Result<TraceEvent> {
    Ok(TraceEvent {
        cursor: event.seq.to_string(),
        kind: TraceEventKind::SpansRecorded,
        environment: event.environment.into(),
        trace: Trace(traces::Trace::of_event(trace, event.environment)?),
        spans,
    })
}

fn release_event(convert: Arc<Convert>, event: Arc<events::Event>) -> BoxFuture<'static, Result<ReleaseEvent>> {
    Box::pin(async move {
        let summary: events::ReleaseSummary = events::payload_part(&event, "release")?;
        // Releases are rare and their note may be clipped in the event: read the row.
        let release = match releases::get(&convert.services.db.conn, &convert.scope.tenant, summary.id).await {
            Ok(row) => row,
            Err(Error::NotFound(_)) => releases::Release::of_event(summary),
            Err(other) => return Err(other),
        };
        Ok(ReleaseEvent {
            cursor: event.seq.to_string(),
            kind: if event.kind == "rolled_back" {
                ReleaseEventKind::RolledBack
            } else {
                ReleaseEventKind::Published
            },
            environment: event.environment.into(),
            release: Release(release),
        })
    })
}

type EventStream<T> = std::pin::Pin<Box<dyn Stream<Item = GqlResult<T>> + Send>>;

/// The stream of a subscription; a refusal (unknown id, bad cursor) is its only item.
/// `large` names the event's object and its large fields: when the subscription selects one of
/// them, each event reads the current row.
async fn subscribe<T: Send + 'static>(
    ctx: &Context<'_>,
    environment: Environment,
    filter: Filter,
    after: Option<String>,
    large: (&str, &[&str]),
    convert: Converter<T>,
) -> EventStream<T> {
    let scope = match scope(ctx, environment) {
        Ok(scope) => scope,
        Err(error) => return refuse(error),
    };
    let object = ctx.look_ahead().field(large.0);
    let wants_large = large.1.iter().any(|field| object.field(field).exists());
    let state = Arc::new(Convert {
        services: services(ctx).clone(),
        scope: scope.clone(),
        large: wants_large,
    });
    match feed(services(ctx), scope, filter, after).await {
        Ok(stream) => Box::pin(stream.then(move |event| {
            let state = state.clone();
            async move { Ok(convert(state, event?).await?) }
        })),
        Err(error) => refuse(error),
    }
}

/// A stream that fails at once (a refused subscription).
fn refuse<T: Send + 'static>(error: Error) -> EventStream<T> {
    Box::pin(futures_util::stream::once(async move { Err(error.into()) }))
}

/// The id of a session of the caller's tenant and environment: NOT_FOUND otherwise.
async fn session_exists(ctx: &Context<'_>, environment: Environment, id: &ID) -> Result<Uuid> {
    let scope = scope(ctx, environment)?;
    let uuid = ids::uuid_of(id, NodeType::Session, environment.into())
        .ok_or_else(|| Error::not_found(format!("session {:?} in {}", id.as_str(), scope.environment)))?;
    Ok(sessions::get(&services(ctx).db, &scope, uuid).await?.id)
}

async fn execution_exists(ctx: &Context<'_>, environment: Environment, id: &ID) -> Result<Uuid> {
    let scope = scope(ctx, environment)?;
    let uuid = ids::uuid_of(id, NodeType::Execution, environment.into())
        .ok_or_else(|| Error::not_found(format!("execution {:?} in {}", id.as_str(), scope.environment)))?;
    Ok(executions::get(&services(ctx).db, &scope, uuid).await?.id)
}

#[derive(Default)]
pub struct Subscription;

#[Subscription]
impl Subscription {
    /// Executions of the environment starting, changing and finishing.
    async fn execution_events(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The environment to follow.")] environment: Environment,
        #[graphql(desc = "Only executions of this agent (slug).")] agent: Option<String>,
        #[graphql(desc = "Replay the events after this cursor first.")] after: Option<String>,
    ) -> EventStream<ExecutionEvent> {
        let filter = Filter {
            topic: events::Topic::Execution,
            agent,
            execution_id: None,
            session_id: None,
        };
        subscribe(
            ctx,
            environment,
            filter,
            after,
            ("execution", &["input", "output", "log"]),
            execution_event,
        )
        .await
    }

    /// Sessions created and messages added (of one session when `sessionId` is given).
    async fn session_events(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The environment to follow.")] environment: Environment,
        #[graphql(desc = "Only events of this session (its global id).")] session_id: Option<ID>,
        #[graphql(desc = "Replay the events after this cursor first.")] after: Option<String>,
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
        subscribe(
            ctx,
            environment,
            filter,
            after,
            ("message", &["content"]),
            session_event,
        )
        .await
    }

    /// Spans as they are recorded (of one execution when `executionId` is given).
    async fn trace_events(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The environment to follow.")] environment: Environment,
        #[graphql(desc = "Only spans of this execution (its global id).")] execution_id: Option<ID>,
        #[graphql(desc = "Replay the events after this cursor first.")] after: Option<String>,
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
        subscribe(ctx, environment, filter, after, ("spans", &["attributes"]), trace_event).await
    }

    /// Publishes and rollbacks, so every open Releases screen can refresh.
    async fn release_events(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Either environment; releases are the tenant's.")] environment: Environment,
        #[graphql(desc = "Replay the events after this cursor first.")] after: Option<String>,
    ) -> EventStream<ReleaseEvent> {
        let filter = Filter {
            topic: events::Topic::Release,
            agent: None,
            execution_id: None,
            session_id: None,
        };
        subscribe(ctx, environment, filter, after, ("release", &[]), release_event).await
    }

    /// Release requests opened, reviewed, approved, rejected and published (approvals), so
    /// every open Releases screen can refresh.
    async fn release_request_events(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Either environment; requests are the tenant's.")] environment: Environment,
        #[graphql(desc = "Replay the events after this cursor first.")] after: Option<String>,
    ) -> EventStream<super::governance::ReleaseRequestEvent> {
        let filter = Filter {
            topic: events::Topic::ReleaseRequest,
            agent: None,
            execution_id: None,
            session_id: None,
        };
        subscribe(ctx, environment, filter, after, ("request", &[]), release_request_event).await
    }
}

/// A release-request event with the request read fresh (its state may have gone stale since).
fn release_request_event(
    convert: Arc<Convert>,
    event: Arc<events::Event>,
) -> BoxFuture<'static, Result<super::governance::ReleaseRequestEvent>> {
    Box::pin(async move {
        let summary: events::ReleaseRequestSummary = events::payload_part(&event, "request")?;
        let db = &convert.services.db.conn;
        let tenant = &convert.scope.tenant;
        let request = match crate::domain::approvals::get(db, tenant, summary.id).await {
            Ok(row) => crate::domain::approvals::views(db, tenant, vec![row]).await?.pop(),
            Err(Error::NotFound(_)) => None,
            Err(other) => return Err(other),
        };
        Ok(super::governance::ReleaseRequestEvent {
            cursor: event.seq.to_string(),
            kind: super::governance::ReleaseRequestEventKind::parse(&event.kind),
            environment: event.environment.into(),
            state: super::governance::ReleaseRequestState::stored(&summary.state),
            request: request.map(super::governance::ReleaseRequest),
        })
    })
}
