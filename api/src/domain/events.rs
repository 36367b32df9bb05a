//! The event log behind the live feed.
//!
//! Every change a subscriber can see appends an event **in the same transaction** as the
//! change: an event exists exactly when its change committed. Per tenant, events are numbered
//! by `seq` in commit order (the tenant's counter row is locked until commit), and that number
//! is the subscription cursor: resuming after a cursor replays exactly what followed it.

use chrono::{DateTime, Utc};
use entity::{Environment, event_counters, events};
use sea_orm::sea_query::{ExprTrait, OnConflict};
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseBackend, QueryFilter, QueryOrder, QuerySelect, Set, Statement};
use serde_json::Value;
use uuid::Uuid;

use super::{new_id, now};
use crate::db::Db;
use crate::error::{Error, Result};
use crate::scope::{AcrossTenants, Tenant};

/// The PostgreSQL channel replicas LISTEN on. Notifications carry only the tenant id.
pub const CHANNEL: &str = "runflow_events";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Topic {
    Execution,
    Session,
    Trace,
    Release,
    /// Release requests (approvals): kinds in [`kinds`] `RELEASE_REQUEST_*`. Requests are
    /// shared, so each event is appended once per environment (consumers that act once per
    /// change, such as outgoing webhooks, read the PRODUCTION copy).
    ReleaseRequest,
    /// Scheduled releases: kinds in [`kinds`] `SCHEDULED_RELEASE_*`; appended once per
    /// environment like [`Topic::ReleaseRequest`]. The payload is
    /// `{"scheduledRelease": <row>}`; a failed one names the stale items in `failure`.
    Schedule,
}

/// The event kinds of the governance topics, by name (what outgoing webhooks map to their
/// event types). The payload of a `release_request` event is `{"request": <row>}`.
pub mod kinds {
    /// `release_request`: a developer opened a release request.
    pub const RELEASE_REQUEST_OPENED: &str = "opened";
    /// `release_request`: a publisher approved, short of the approvals required.
    pub const RELEASE_REQUEST_REVIEWED: &str = "reviewed";
    /// `release_request`: the request has the approvals required.
    pub const RELEASE_REQUEST_APPROVED: &str = "approved";
    /// `release_request`: a publisher rejected it.
    pub const RELEASE_REQUEST_REJECTED: &str = "rejected";
    /// `release_request`: a release carried it out.
    pub const RELEASE_REQUEST_PUBLISHED: &str = "published";
    /// `schedule`: a release was scheduled.
    pub const SCHEDULED_RELEASE_SCHEDULED: &str = "scheduled";
    /// `schedule`: its time was changed.
    pub const SCHEDULED_RELEASE_RESCHEDULED: &str = "rescheduled";
    /// `schedule`: it was cancelled.
    pub const SCHEDULED_RELEASE_CANCELLED: &str = "cancelled";
    /// `schedule`: it was published (`releaseId`).
    pub const SCHEDULED_RELEASE_PUBLISHED: &str = "published";
    /// `schedule`: it did not publish (staging changed since: `failure` names the items).
    pub const SCHEDULED_RELEASE_FAILED: &str = "failed";
    /// `schedule`: its time passed while no process ran, beyond the grace window.
    pub const SCHEDULED_RELEASE_MISSED: &str = "missed";
}

impl Topic {
    pub fn as_str(self) -> &'static str {
        match self {
            Topic::Execution => "execution",
            Topic::Session => "session",
            Topic::Trace => "trace",
            Topic::Release => "release",
            Topic::ReleaseRequest => "release_request",
            Topic::Schedule => "schedule",
        }
    }
}

/// A committed event, as the live feed, subscriptions and outgoing webhooks carry it.
///
/// `topic` stays text: a replica may read an event that a newer replica wrote under a topic
/// it does not know, and it skips such an event rather than failing (see [`Event::is`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// Stable across replicas: outgoing webhook message ids derive from it.
    pub id: Uuid,
    pub tenant_id: String,
    pub environment: Environment,
    /// 1, 2, 3... per tenant, in commit order: the subscription cursor.
    pub seq: i64,
    pub topic: String,
    /// For example `started`, `finished`, `message_added` (see [`kinds`] for governance).
    pub kind: String,
    pub agent_slug: Option<String>,
    pub execution_id: Option<Uuid>,
    pub session_id: Option<Uuid>,
    /// The versioned summary (`v` and the topic's parts); read parts with [`payload_part`].
    pub payload: Value,
    pub created_at: DateTime<Utc>,
}

impl Event {
    /// Whether the event is of `topic`.
    pub fn is(&self, topic: Topic) -> bool {
        self.topic == topic.as_str()
    }
}

impl From<events::Model> for Event {
    fn from(row: events::Model) -> Self {
        Event {
            id: row.id,
            tenant_id: row.tenant_id,
            environment: row.environment,
            seq: row.seq,
            topic: row.topic,
            kind: row.kind,
            agent_slug: row.agent_slug,
            execution_id: row.execution_id,
            session_id: row.session_id,
            payload: row.payload,
            created_at: row.created_at,
        }
    }
}

/// An event to append.
#[derive(Clone, Debug)]
pub struct NewEvent {
    pub environment: Environment,
    pub topic: Topic,
    pub kind: &'static str,
    pub agent_slug: Option<String>,
    pub execution_id: Option<Uuid>,
    pub session_id: Option<Uuid>,
    pub payload: Value,
}

impl NewEvent {
    /// The same tenant-wide event (a release, a release request, a scheduled release) in both
    /// environments, so both environments' screens and subscriptions see it.
    pub fn in_both_environments(topic: Topic, kind: &'static str, payload: Value) -> Vec<NewEvent> {
        [Environment::Staging, Environment::Production]
            .into_iter()
            .map(|environment| NewEvent {
                environment,
                topic,
                kind,
                agent_slug: None,
                execution_id: None,
                session_id: None,
                payload: payload.clone(),
            })
            .collect()
    }
}

/// Appends events inside the caller's transaction; each gets the tenant's next `seq`.
#[expect(
    clippy::disallowed_methods,
    reason = "pg_notify of the tenant's id after its events are inserted: no table is read"
)]
pub async fn append<C: ConnectionTrait>(tx: &C, tenant: &Tenant, new: Vec<NewEvent>) -> Result<()> {
    if new.is_empty() {
        return Ok(());
    }
    let count = new.len() as i64;
    tenant
        .insert_one(event_counters::ActiveModel {
            tenant_id: Set(tenant.id().to_string()),
            seq: Set(0),
            pruned_through: Set(0),
        })
        .on_conflict(
            OnConflict::column(event_counters::Column::TenantId)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(tx)
        .await?;
    // The row lock taken here orders this tenant's event-writing transactions.
    tenant
        .update_many::<event_counters::Entity>()
        .col_expr(
            event_counters::Column::Seq,
            sea_orm::sea_query::Expr::col(event_counters::Column::Seq).add(count),
        )
        .exec(tx)
        .await?;
    let last = tenant
        .select::<event_counters::Entity>()
        .one(tx)
        .await?
        .map(|c| c.seq)
        .ok_or_else(|| Error::internal(anyhow::anyhow!("event counter vanished")))?;
    let time = now();
    let rows: Vec<events::Model> = new
        .into_iter()
        .enumerate()
        .map(|(i, event)| events::Model {
            id: new_id(),
            tenant_id: tenant.id().to_string(),
            environment: event.environment,
            seq: last - count + 1 + i as i64,
            topic: event.topic.as_str().to_string(),
            kind: event.kind.to_string(),
            agent_slug: event.agent_slug,
            execution_id: event.execution_id,
            session_id: event.session_id,
            payload: event.payload,
            created_at: time,
        })
        .collect();
    for chunk in rows.chunks(200) {
        let active: Vec<events::ActiveModel> = chunk.iter().cloned().map(Into::into).collect();
        tenant.insert_many(active).exec_without_returning(tx).await?;
    }
    if tx.get_database_backend() == DatabaseBackend::Postgres {
        // Delivered to every replica's listener when (and only if) the transaction commits.
        tx.execute_raw(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            "SELECT pg_notify($1, $2)",
            [CHANNEL.into(), tenant.id().into()],
        ))
        .await?;
    }
    Ok(())
}

/// A tenant's events after `seq`, in order, at most `limit`.
pub async fn after(db: &Db, tenant: &str, seq: i64, limit: u64) -> Result<Vec<Event>> {
    // By tenant id: the live feed's pump reads every tenant's new events (see `heads`).
    let rows = AcrossTenants::select::<events::Entity>()
        .filter(events::Column::TenantId.eq(tenant))
        .filter(events::Column::Seq.gt(seq))
        .order_by_asc(events::Column::Seq)
        .limit(limit)
        .all(&db.conn)
        .await?;
    Ok(rows.into_iter().map(Event::from).collect())
}

/// Every tenant's latest seq (what the live-feed pump polls).
pub async fn heads(db: &Db) -> Result<Vec<(String, i64)>> {
    Ok(AcrossTenants::select::<event_counters::Entity>()
        .select_only()
        .column(event_counters::Column::TenantId)
        .column(event_counters::Column::Seq)
        .into_tuple()
        .all(&db.conn)
        .await?)
}

/// The cursor a new subscription starts from: `after` if given (checked against retention),
/// else the tenant's latest event.
pub async fn start_cursor(db: &Db, tenant: &Tenant, after: Option<&str>) -> Result<i64> {
    let counter = tenant.select::<event_counters::Entity>().one(&db.conn).await?;
    let (head, pruned) = counter.map_or((0, 0), |c| (c.seq, c.pruned_through));
    let Some(cursor) = after else { return Ok(head) };
    let seq: i64 = cursor
        .parse()
        .ok()
        .filter(|n: &i64| *n >= 0)
        .ok_or_else(|| Error::bad_input(format!("`after` {cursor:?} is not a cursor of this feed")))?;
    if seq > head {
        return Err(Error::bad_input(format!(
            "`after` {cursor:?} is ahead of the feed (latest is {head})"
        )));
    }
    if seq < pruned {
        return Err(Error::CursorExpired(format!(
            "events after cursor {cursor} are past the retention period and were deleted; \
             reload the current state and subscribe without `after`"
        )));
    }
    Ok(seq)
}

/// Events deleted per pruning transaction: each write transaction stays short, so pruning a
/// large backlog never holds the tenant's event counter (or SQLite's write lock) for long.
pub const PRUNE_BATCH: u64 = 1000;

/// Deletes events older than `before`, oldest first, in transactions of at most
/// [`PRUNE_BATCH`] events; remembers the highest deleted seq per tenant so that resuming from
/// an older cursor fails clearly instead of skipping events. Returns how many were deleted.
pub async fn prune(db: &Db, before: DateTime<Utc>) -> Result<u64> {
    let mut deleted = 0;
    loop {
        let batch = prune_batch(db, before, PRUNE_BATCH).await?;
        deleted += batch;
        if batch < PRUNE_BATCH {
            return Ok(deleted);
        }
        // Let other writers in between batches.
        tokio::task::yield_now().await;
    }
}

/// One pruning transaction: at most `limit` of the oldest expired events.
pub async fn prune_batch(db: &Db, before: DateTime<Utc>, limit: u64) -> Result<u64> {
    let tx = db.begin_write().await?;
    // Pruning is housekeeping across tenants.
    let victims: Vec<(Uuid, String, i64)> = AcrossTenants::select::<events::Entity>()
        .select_only()
        .column(events::Column::Id)
        .column(events::Column::TenantId)
        .column(events::Column::Seq)
        .filter(events::Column::CreatedAt.lt(before))
        .order_by_asc(events::Column::CreatedAt)
        .limit(limit)
        .into_tuple()
        .all(&tx)
        .await?;
    if victims.is_empty() {
        db.commit(tx).await?;
        return Ok(0);
    }
    let mut highest: std::collections::HashMap<&str, i64> = std::collections::HashMap::new();
    for (_, tenant, seq) in &victims {
        let entry = highest.entry(tenant.as_str()).or_insert(*seq);
        *entry = std::cmp::Ord::max(*entry, *seq);
    }
    for (tenant, max_seq) in highest {
        AcrossTenants::update_many::<event_counters::Entity>()
            .col_expr(
                event_counters::Column::PrunedThrough,
                sea_orm::sea_query::Expr::value(max_seq),
            )
            .filter(event_counters::Column::TenantId.eq(tenant))
            .filter(event_counters::Column::PrunedThrough.lt(max_seq))
            .exec(&tx)
            .await?;
    }
    let ids: Vec<Uuid> = victims.iter().map(|(id, _, _)| *id).collect();
    let mut deleted = 0;
    for chunk in ids.chunks(500) {
        deleted += AcrossTenants::delete_many::<events::Entity>()
            .filter(events::Column::Id.is_in(chunk.iter().copied()))
            .exec(&tx)
            .await?
            .rows_affected;
    }
    db.commit(tx).await?;
    Ok(deleted)
}

// ---------------------------------------------------------------------------------------------
// Event payloads: a versioned shape of their own.
//
// A stored event's `payload` is *not* the storage entity's serialisation: it is the small,
// bounded summary below, written with `"v": 2`. A schema migration of the entities therefore
// does not change what stored events mean, and the live feed's buffers stay small whatever an
// execution's input, output or log, a message's content or a span's attributes weigh: those are
// never in an event (subscribers that select them get them read fresh from the database).
//
// Version 2 (documented in the README, "Event payloads"):
//   execution: {"v":2, "execution": ExecutionSummary}
//   session:   {"v":2, "session": SessionSummary, "message": MessageSummary | null}
//   trace:     {"v":2, "trace": TraceSummary, "span_ids": [uuid]}
//   release:   {"v":2, "release": ReleaseSummary}
// Version 1 differed in trace events only: they held every span's summary (`"spans":
// [SpanSummary]`), which made the event as large as the batch (built, stored and read back
// for every ingestion); version 2 names the spans, and a subscription reads them (once per
// shared execution, see `live::multiplex`). Both are read.
// Events written before version 1 (no "v") held the entities themselves; their field names are
// a superset of the summaries', so the same types read them.
// ---------------------------------------------------------------------------------------------

use serde::{Deserialize, Serialize};

/// The version written now.
pub const PAYLOAD_VERSION: u32 = 2;

/// Longest text kept in a summary (error messages, titles, names, notes), in bytes.
pub const SUMMARY_TEXT_BYTES: usize = 1024;

/// `text` cut to at most `max` bytes on a character boundary (marked with an ellipsis).
pub fn clip(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max.saturating_sub(3);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ExecutionSummary {
    pub id: Uuid,
    pub agent_id: Uuid,
    #[serde(default)]
    pub commit_id: Option<Uuid>,
    #[serde(default)]
    pub trigger_id: Option<Uuid>,
    #[serde(default)]
    pub session_id: Option<Uuid>,
    pub status: String,
    /// Clipped to [`SUMMARY_TEXT_BYTES`].
    #[serde(default)]
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    #[serde(default)]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub finished_at: Option<DateTime<Utc>>,
    /// The execution that started this one (agent calling agent), if any.
    #[serde(default)]
    pub parent_id: Option<Uuid>,
    /// Depth in a chain of agents calling agents (0 for a top-level execution).
    #[serde(default)]
    pub depth: i32,
    /// Attempt number (1 unless a lease expired and an idempotent agent was retried).
    #[serde(default = "first_attempt")]
    pub attempt: i32,
}

fn first_attempt() -> i32 {
    1
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SessionSummary {
    pub id: Uuid,
    #[serde(default)]
    pub agent_id: Option<Uuid>,
    pub title: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MessageSummary {
    pub id: Uuid,
    pub session_id: Uuid,
    pub role: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TraceSummary {
    pub id: Uuid,
    #[serde(default)]
    pub execution_id: Option<Uuid>,
    pub name: String,
    pub status: String,
    pub started_at: DateTime<Utc>,
    #[serde(default)]
    pub ended_at: Option<DateTime<Utc>>,
}

/// A span as trace events of version 1 held it (read for events written before version 2).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SpanSummary {
    pub id: Uuid,
    pub trace_id: Uuid,
    #[serde(default)]
    pub execution_id: Option<Uuid>,
    #[serde(default)]
    pub parent_span_id: Option<Uuid>,
    pub name: String,
    pub kind: String,
    pub status: String,
    pub started_at: DateTime<Utc>,
    #[serde(default)]
    pub ended_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub input_tokens: Option<i64>,
    #[serde(default)]
    pub output_tokens: Option<i64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReleaseSummary {
    pub id: Uuid,
    pub number: i64,
    pub kind: String,
    #[serde(default)]
    pub rolls_back_id: Option<Uuid>,
    pub note: String,
    #[serde(default)]
    pub idempotency_key: Option<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

/// The payload of an execution event.
pub fn execution_payload(row: &entity::executions::Model) -> Value {
    let summary = ExecutionSummary {
        id: row.id,
        agent_id: row.agent_id,
        commit_id: row.commit_id,
        trigger_id: row.trigger_id,
        session_id: row.session_id,
        status: row.status.clone(),
        error: row.error.as_deref().map(|e| clip(e, SUMMARY_TEXT_BYTES)),
        created_at: row.created_at,
        started_at: row.started_at,
        finished_at: row.finished_at,
        parent_id: row.parent_id,
        depth: row.depth,
        attempt: row.attempt,
    };
    serde_json::json!({ "v": PAYLOAD_VERSION, "execution": summary })
}

/// The payload of a session event (a message's content is not in it).
pub fn session_payload(session: &entity::sessions::Model, message: Option<&entity::session_messages::Model>) -> Value {
    let session = SessionSummary {
        id: session.id,
        agent_id: session.agent_id,
        title: clip(&session.title, SUMMARY_TEXT_BYTES),
        created_at: session.created_at,
        updated_at: session.updated_at,
    };
    let message = message.map(|m| MessageSummary {
        id: m.id,
        session_id: m.session_id,
        role: clip(&m.role, 64),
        created_at: m.created_at,
    });
    serde_json::json!({ "v": PAYLOAD_VERSION, "session": session, "message": message })
}

/// The payload of a trace event: the trace's summary and the ids of the spans recorded, in
/// their order (subscribers read the spans).
pub fn trace_payload(trace: &entity::traces::Model, span_ids: &[Uuid]) -> Value {
    let trace = TraceSummary {
        id: trace.id,
        execution_id: trace.execution_id,
        name: clip(&trace.name, SUMMARY_TEXT_BYTES),
        status: trace.status.clone(),
        started_at: trace.started_at,
        ended_at: trace.ended_at,
    };
    serde_json::json!({ "v": PAYLOAD_VERSION, "trace": trace, "span_ids": span_ids })
}

/// The payload of a release event.
pub fn release_payload(release: &entity::releases::Model) -> Value {
    let summary = ReleaseSummary {
        id: release.id,
        number: release.number,
        kind: release.kind.clone(),
        rolls_back_id: release.rolls_back_id,
        note: clip(&release.note, SUMMARY_TEXT_BYTES),
        idempotency_key: release.idempotency_key.clone(),
        created_by: release.created_by.clone(),
        created_at: release.created_at,
    };
    serde_json::json!({ "v": PAYLOAD_VERSION, "release": summary })
}

/// What a `release_request` event carries (`{"v":2, "request": ReleaseRequestSummary}`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReleaseRequestSummary {
    pub id: Uuid,
    /// `open`, `approved`, `rejected` or `published` (as stored when the event was written).
    pub state: String,
    pub requested_by: String,
    pub note: String,
    /// The requested item keys (`agent:<slug>`...), at most 50.
    pub items: Vec<String>,
    /// A requested rollback: the release rolled back.
    #[serde(default)]
    pub rollback_to: Option<Uuid>,
    /// Once published: the release.
    #[serde(default)]
    pub release_id: Option<Uuid>,
    /// The reviewer and comment of a `reviewed`/`approved`/`rejected` event.
    #[serde(default)]
    pub reviewer: Option<String>,
    #[serde(default)]
    pub comment: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// What a `schedule` event carries (`{"v":2, "scheduledRelease": ScheduledReleaseSummary}`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ScheduledReleaseSummary {
    pub id: Uuid,
    /// `scheduled`, `running`, `published`, `failed`, `missed` or `cancelled`.
    pub state: String,
    /// When it is (was) to run.
    pub at: DateTime<Utc>,
    pub note: String,
    /// The item keys it publishes, at most 50.
    pub items: Vec<String>,
    /// For `failed`: the item keys that changed in staging since it was scheduled.
    #[serde(default)]
    pub stale_items: Vec<String>,
    /// For `failed` and `missed`: why.
    #[serde(default)]
    pub failure: Option<String>,
    /// For `published`: the release made.
    #[serde(default)]
    pub release_id: Option<Uuid>,
    pub created_by: String,
}

/// Most item keys kept in a governance event.
pub const SUMMARY_ITEMS: usize = 50;

/// Reads one part of a stored payload (any version).
pub fn payload_part<T: serde::de::DeserializeOwned>(event: &Event, field: &str) -> Result<T> {
    let version = event.payload.get("v").and_then(Value::as_u64).unwrap_or(0);
    if version > u64::from(PAYLOAD_VERSION) {
        return Err(Error::internal(anyhow::anyhow!(
            "event {} has payload version {version}, newer than this server ({PAYLOAD_VERSION})",
            event.seq
        )));
    }
    serde_json::from_value(event.payload.get(field).cloned().unwrap_or(Value::Null))
        .map_err(|e| Error::internal(anyhow::anyhow!("event {} has a malformed {field}: {e}", event.seq)))
}

/// A stored event for unit tests (tenant `t`, seq 7).
#[cfg(test)]
pub(crate) fn stored_event(environment: Environment, topic: &str, kind: &str, payload: Value) -> Event {
    Event {
        id: Uuid::nil(),
        tenant_id: "t".into(),
        environment,
        seq: 7,
        topic: topic.into(),
        kind: kind.into(),
        agent_slug: None,
        execution_id: None,
        session_id: None,
        payload,
        created_at: Utc::now(),
    }
}

#[cfg(test)]
mod payload_tests {
    use super::*;

    #[test]
    fn clip_keeps_char_boundaries() {
        assert_eq!(clip("short", 10), "short");
        let long = "é".repeat(100);
        let clipped = clip(&long, 11);
        assert!(clipped.len() <= 11 && clipped.ends_with("..."));
    }

    #[test]
    fn trace_events_name_their_spans_and_version_1_still_reads() {
        let trace = entity::traces::Model {
            id: Uuid::nil(),
            tenant_id: "t".into(),
            environment: Environment::Staging,
            execution_id: None,
            name: "run".into(),
            status: "OK".into(),
            started_at: Utc::now(),
            ended_at: None,
        };
        let payload = trace_payload(&trace, &[Uuid::from_u128(2), Uuid::from_u128(1)]);
        assert_eq!(payload["v"], 2);
        assert!(payload.to_string().len() < 400, "ids, not the spans: {payload}");
        let event = stored_event(Environment::Staging, "trace", "spans_recorded", payload);
        let ids: Option<Vec<Uuid>> = payload_part(&event, "span_ids").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            ids,
            Some(vec![Uuid::from_u128(2), Uuid::from_u128(1)]),
            "in the batch's order"
        );
        // Version 1 held the summaries; it has no ids list.
        let v1 = stored_event(
            Environment::Staging,
            "trace",
            "spans_recorded",
            serde_json::json!({ "v": 1, "trace": payload_part::<Value>(&event, "trace").unwrap_or_default(),
            "spans": [{ "id": Uuid::nil(), "trace_id": Uuid::nil(), "name": "s", "kind": "LLM", "status": "OK",
                        "started_at": "2026-01-01T00:00:00Z" }] }),
        );
        let none: Option<Vec<Uuid>> = payload_part(&v1, "span_ids").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(none, None);
        let spans: Vec<SpanSummary> = payload_part(&v1, "spans").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(spans[0].name, "s");
    }

    #[test]
    fn legacy_payloads_still_read() {
        // What events held before version 1: the storage entity itself, with large fields.
        let legacy = serde_json::json!({ "execution": {
            "id": Uuid::nil(), "tenant_id": "t", "environment": "staging", "agent_id": Uuid::nil(),
            "commit_id": null, "trigger_id": null, "session_id": null, "status": "SUCCEEDED",
            "input": {"big": "x"}, "output": {"big": "y"}, "error": null, "log": "lots",
            "created_at": "2026-01-01T00:00:00Z", "started_at": null, "finished_at": null, "claimed_by": null
        }});
        let event = stored_event(Environment::Staging, "execution", "finished", legacy);
        let summary: ExecutionSummary = payload_part(&event, "execution").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(summary.status, "SUCCEEDED");
    }
}
