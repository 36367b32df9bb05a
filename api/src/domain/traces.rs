//! Traces and their spans, per environment. A batch of spans is written whole or not at all.

use chrono::{DateTime, Utc};
use entity::{Environment, spans, traces};
use sea_orm::{ColumnTrait, Order, QueryFilter, QueryOrder, Set};
use serde_json::Value;
use uuid::Uuid;

use super::events::{self, NewEvent, Topic};
use super::pagination::{self, Page, PageRequest};
use super::{executions, new_id, validate};
use crate::db::Db;
use crate::error::{Error, Result};
use crate::scope::{Scope, TenantWrite};

pub const MAX_SPANS_PER_BATCH: usize = 1000;
pub const SPAN_KINDS: [&str; 5] = ["LLM", "TOOL", "PROMPT", "MEMORY", "CUSTOM"];
pub const STATUSES: [&str; 3] = ["OK", "ERROR", "UNSET"];

/// What a span measured (stored as its upper-case name).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpanKind {
    Llm,
    Tool,
    Prompt,
    Memory,
    Custom,
}

impl SpanKind {
    pub fn parse(kind: &str) -> Result<Self> {
        Ok(match kind {
            "LLM" => SpanKind::Llm,
            "TOOL" => SpanKind::Tool,
            "PROMPT" => SpanKind::Prompt,
            "MEMORY" => SpanKind::Memory,
            "CUSTOM" => SpanKind::Custom,
            other => {
                return Err(Error::bad_input(format!(
                    "span kind {other:?} is unknown; use one of {}",
                    SPAN_KINDS.join(", ")
                )));
            }
        })
    }
}

/// How a span or trace ended (OpenTelemetry's status codes, stored upper-case).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Ok,
    Error,
    Unset,
}

impl Status {
    pub fn parse(status: &str) -> Result<Self> {
        Ok(match status {
            "OK" => Status::Ok,
            "ERROR" => Status::Error,
            "UNSET" => Status::Unset,
            other => {
                return Err(Error::bad_input(format!(
                    "status {other:?} must be one of {}",
                    STATUSES.join(", ")
                )));
            }
        })
    }
}

/// A recorded trace, as the domain hands it out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trace {
    pub id: Uuid,
    pub environment: Environment,
    pub execution_id: Option<Uuid>,
    pub name: String,
    pub status: Status,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
}

impl TryFrom<traces::Model> for Trace {
    type Error = Error;

    fn try_from(row: traces::Model) -> Result<Self> {
        Ok(Trace {
            status: Status::parse(&row.status)?,
            id: row.id,
            environment: row.environment,
            execution_id: row.execution_id,
            name: row.name,
            started_at: row.started_at,
            ended_at: row.ended_at,
        })
    }
}

impl Trace {
    /// The trace as a trace event of `environment` describes it.
    pub fn of_event(summary: events::TraceSummary, environment: Environment) -> Result<Trace> {
        Ok(Trace {
            status: Status::parse(&summary.status)?,
            id: summary.id,
            environment,
            execution_id: summary.execution_id,
            name: summary.name,
            started_at: summary.started_at,
            ended_at: summary.ended_at,
        })
    }
}

/// A recorded span, as the domain hands it out.
#[derive(Clone, Debug, PartialEq)]
pub struct Span {
    pub id: Uuid,
    pub environment: Environment,
    pub trace_id: Uuid,
    pub execution_id: Option<Uuid>,
    pub parent_span_id: Option<Uuid>,
    pub name: String,
    pub kind: SpanKind,
    pub status: Status,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    /// A JSON object (an empty one when the read left them out).
    pub attributes: Value,
    pub input_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
}

impl TryFrom<spans::Model> for Span {
    type Error = Error;

    fn try_from(row: spans::Model) -> Result<Self> {
        Ok(Span {
            kind: SpanKind::parse(&row.kind)?,
            status: Status::parse(&row.status)?,
            id: row.id,
            environment: row.environment,
            trace_id: row.trace_id,
            execution_id: row.execution_id,
            parent_span_id: row.parent_span_id,
            name: row.name,
            started_at: row.started_at,
            ended_at: row.ended_at,
            attributes: row.attributes,
            input_tokens: row.input_tokens,
            output_tokens: row.output_tokens,
        })
    }
}

impl Span {
    /// The span as a trace event of version 1 of `environment` described it: without its
    /// attributes (JSON null stands in).
    pub fn of_event(summary: events::SpanSummary, environment: Environment) -> Result<Span> {
        Ok(Span {
            kind: SpanKind::parse(&summary.kind)?,
            status: Status::parse(&summary.status)?,
            id: summary.id,
            environment,
            trace_id: summary.trace_id,
            execution_id: summary.execution_id,
            parent_span_id: summary.parent_span_id,
            name: summary.name,
            started_at: summary.started_at,
            ended_at: summary.ended_at,
            attributes: Value::Null,
            input_tokens: summary.input_tokens,
            output_tokens: summary.output_tokens,
        })
    }
}

/// Converts rows read from storage.
fn records<M, T: TryFrom<M, Error = Error>>(rows: Vec<M>) -> Result<Vec<T>> {
    rows.into_iter().map(T::try_from).collect()
}

/// A span's attributes as the runtime sent them: the text of one JSON object, checked (valid
/// JSON, an object, its size) but never parsed into a tree. Ingestion stores the text as it
/// came (PostgreSQL's `jsonb` normalises it; SQLite keeps it); readers parse it when a query
/// selects `attributes`. Building, measuring and dropping a `serde_json::Value` per span was
/// most of what ingestion cost.
#[derive(Clone, Debug, Default)]
pub struct Attributes(Option<Box<serde_json::value::RawValue>>);

impl<'de> serde::Deserialize<'de> for Attributes {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        Box::<serde_json::value::RawValue>::deserialize(deserializer).map(|raw| Attributes(Some(raw)))
    }
}

impl Attributes {
    /// The attributes of a value built in the server (OpenTelemetry spans, tests).
    pub fn from_value(value: &Value) -> Result<Self> {
        serde_json::value::to_raw_value(value)
            .map(|raw| Attributes(Some(raw)))
            .map_err(|error| Error::internal(anyhow::anyhow!("span attributes: {error}")))
    }

    /// The JSON text (`{}` when none were sent).
    pub fn as_str(&self) -> &str {
        self.0.as_deref().map_or("{}", serde_json::value::RawValue::get)
    }

    /// The parsed value (for tests and the rare reader of a batch being recorded).
    pub fn to_value(&self) -> Value {
        serde_json::from_str(self.as_str()).unwrap_or(Value::Null)
    }

    /// Whether the text is a JSON object (it is valid JSON: it was parsed as one value).
    pub fn is_object(&self) -> bool {
        self.as_str().trim_start().starts_with('{')
    }
}

#[derive(Clone, Debug)]
pub struct SpanInput {
    pub id: Option<Uuid>,
    pub parent_span_id: Option<Uuid>,
    pub name: String,
    pub kind: String,
    pub status: String,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub attributes: Attributes,
    pub input_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
}

#[derive(Clone, Debug)]
pub struct TraceInput {
    /// Join (or create with) this trace id.
    pub id: Option<Uuid>,
    pub execution_id: Option<Uuid>,
    pub name: String,
    pub status: String,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub spans: Vec<SpanInput>,
}

fn validate_span(span: &SpanInput) -> Result<()> {
    validate::short_text("span name", &span.name, 255)?;
    SpanKind::parse(&span.kind)?;
    Status::parse(&span.status)
        .map_err(|_| Error::bad_input(format!("span status {:?} must be OK, ERROR or UNSET", span.status)))?;
    if let Some(ended) = span.ended_at
        && ended < span.started_at
    {
        return Err(Error::bad_input(format!("span {:?} ends before it starts", span.name)));
    }
    if span.input_tokens.is_some_and(|n| n < 0) || span.output_tokens.is_some_and(|n| n < 0) {
        return Err(Error::bad_input("token counts must not be negative"));
    }
    if !span.attributes.is_object() {
        return Err(Error::bad_input("span attributes must be a JSON object"));
    }
    validate::size_of_json("span attributes", span.attributes.as_str().len(), MAX_ATTRIBUTES_BYTES)?;
    validate::json_text_no_nul("span attributes", span.attributes.as_str())
}

/// The most a span's attributes may hold (under `RUNFLOW_MAX_SPAN_ATTRIBUTES_BYTES`, checked
/// at ingestion, whichever is lower).
const MAX_ATTRIBUTES_BYTES: usize = 256 * 1024;

/// A span as it is inserted: the columns the spans of one call do not share (the tenant,
/// environment, trace and execution are bound once).
struct NewSpan {
    id: Uuid,
    parent_span_id: Option<Uuid>,
    name: String,
    kind: String,
    status: String,
    started_at: DateTime<Utc>,
    ended_at: Option<DateTime<Utc>>,
    attributes: Attributes,
    input_tokens: Option<i64>,
    output_tokens: Option<i64>,
}

/// Records a trace with its spans in one transaction (spans are inserted in batches); returns
/// the trace and the ids of its spans.
pub async fn record(db: &Db, scope: &Scope, input: TraceInput) -> Result<(traces::Model, Vec<Uuid>)> {
    let mut recorded = record_many(db, scope, vec![input]).await?;
    recorded
        .pop()
        .ok_or_else(|| Error::internal(anyhow::anyhow!("no trace recorded")))
}

/// Records several batches in one transaction: all of them or none.
///
/// A batch joins an existing trace when it names one (`id`), or when its execution already
/// has a trace; otherwise it starts a trace. A span id that exists already is skipped, so a
/// retried batch does not fail or duplicate.
pub async fn record_many(db: &Db, scope: &Scope, inputs: Vec<TraceInput>) -> Result<Vec<(traces::Model, Vec<Uuid>)>> {
    let total: usize = inputs.iter().map(|i| i.spans.len()).sum();
    if total > MAX_SPANS_PER_BATCH {
        return Err(Error::bad_input(format!(
            "a batch holds at most {MAX_SPANS_PER_BATCH} spans; this one has {total}"
        )));
    }
    for input in &inputs {
        validate::short_text("trace name", &input.name, 255)?;
        Status::parse(&input.status)?;
        for span in &input.spans {
            validate_span(span)?;
        }
        if let Some(execution_id) = input.execution_id {
            executions::get(db, scope, execution_id).await?;
        }
    }
    let tx = db.begin_write().await?;
    let mut recorded = Vec::new();
    let mut new_events = Vec::new();
    for input in inputs {
        let mut existing = None;
        if let Some(id) = input.id {
            existing = scope
                .select::<traces::Entity>()
                .filter(traces::Column::Id.eq(id))
                .one(&tx)
                .await?;
        } else if let Some(execution_id) = input.execution_id {
            existing = scope
                .select::<traces::Entity>()
                .filter(traces::Column::ExecutionId.eq(execution_id))
                .one(&tx)
                .await?;
        }
        let trace = match existing {
            Some(trace) => trace,
            None => {
                traces::ActiveModel {
                    id: Set(input.id.unwrap_or_else(new_id)),
                    tenant_id: Set(scope.tenant.id().to_string()),
                    environment: Set(scope.environment),
                    execution_id: Set(input.execution_id),
                    name: Set(input.name),
                    status: Set(input.status),
                    started_at: Set(input.started_at),
                    ended_at: Set(input.ended_at),
                }
                .insert_into(&scope.tenant, &tx)
                .await?
            }
        };
        let rows: Vec<NewSpan> = input
            .spans
            .into_iter()
            .map(|span| NewSpan {
                id: span.id.unwrap_or_else(new_id),
                parent_span_id: span.parent_span_id,
                name: span.name,
                kind: span.kind,
                status: span.status,
                started_at: span.started_at,
                ended_at: span.ended_at,
                attributes: span.attributes,
                input_tokens: span.input_tokens,
                output_tokens: span.output_tokens,
            })
            .collect();
        insert_spans(&tx, scope, &trace, &rows).await?;
        let span_ids: Vec<Uuid> = rows.iter().map(|span| span.id).collect();
        new_events.push(NewEvent {
            environment: scope.environment,
            topic: Topic::Trace,
            kind: "spans_recorded",
            agent_slug: None,
            execution_id: trace.execution_id,
            session_id: None,
            payload: events::trace_payload(&trace, &span_ids),
        });
        recorded.push((trace, span_ids));
    }
    events::append(&tx, &scope.tenant, new_events).await?;
    db.commit(tx).await?;
    db.wake_live_feed();
    Ok(recorded)
}

/// Inserts spans, skipping ids that exist already. The spans of one call share their tenant,
/// environment, trace and execution (one trace of a batch).
///
/// PostgreSQL: one statement per batch, `INSERT ... SELECT FROM UNNEST(...)` of one typed array
/// per varying column (10 bind parameters whatever the batch size, no JSON to unpack per row),
/// the shared columns bound once.
///
/// SQLite: one prepared statement of [`SQLITE_ROWS_PER_STATEMENT`] rows, built once and reused
/// (sqlx keeps it prepared on the connection) for every full chunk of the batch, in the
/// caller's one transaction; values are bound straight from the rows.
#[expect(
    clippy::disallowed_methods,
    reason = "the batch insert of spans: the tenant and environment are bound from the Scope, not from the rows"
)]
async fn insert_spans(
    tx: &sea_orm::DatabaseTransaction,
    scope: &Scope,
    trace: &traces::Model,
    rows: &[NewSpan],
) -> Result<()> {
    use sea_orm::{ConnectionTrait, DbBackend};
    if rows.is_empty() {
        return Ok(());
    }
    if tx.get_database_backend() == DbBackend::Postgres {
        tx.execute_raw(postgres_span_insert(scope, trace, rows)).await?;
        return Ok(());
    }
    for chunk in rows.chunks(SQLITE_ROWS_PER_STATEMENT) {
        let mut values = Vec::with_capacity(chunk.len() * SPAN_COLUMNS.len());
        for row in chunk {
            values.extend(span_values(scope, trace, row));
        }
        let sql = if chunk.len() == SQLITE_ROWS_PER_STATEMENT {
            static FULL: std::sync::LazyLock<String> =
                std::sync::LazyLock::new(|| sqlite_span_insert_sql(SQLITE_ROWS_PER_STATEMENT));
            FULL.clone()
        } else {
            sqlite_span_insert_sql(chunk.len())
        };
        tx.execute_raw(sea_orm::Statement::from_sql_and_values(DbBackend::Sqlite, sql, values))
            .await?;
    }
    Ok(())
}

/// Rows per prepared SQLite insert: few enough that binding stays cheap, enough that a
/// 1,000-span batch is ten statements (each a round trip to the connection's thread).
const SQLITE_ROWS_PER_STATEMENT: usize = 100;

const SPAN_COLUMNS: [&str; 14] = [
    "id",
    "tenant_id",
    "environment",
    "trace_id",
    "execution_id",
    "parent_span_id",
    "name",
    "kind",
    "status",
    "started_at",
    "ended_at",
    "attributes",
    "input_tokens",
    "output_tokens",
];

fn sqlite_span_insert_sql(rows: usize) -> String {
    let row = format!("({})", vec!["?"; SPAN_COLUMNS.len()].join(", "));
    format!(
        "INSERT INTO spans ({}) VALUES {} ON CONFLICT (id) DO NOTHING",
        SPAN_COLUMNS.join(", "),
        vec![row; rows].join(", ")
    )
}

/// A span's values in [`SPAN_COLUMNS`] order, typed as sea-orm binds the entity's columns (the
/// tenant and environment from `scope`; the attributes as the JSON text they came as).
fn span_values(scope: &Scope, trace: &traces::Model, span: &NewSpan) -> [sea_orm::Value; 14] {
    use sea_orm::ActiveEnum;
    [
        span.id.into(),
        scope.tenant.id().to_string().into(),
        scope.environment.to_value().into(),
        trace.id.into(),
        trace.execution_id.into(),
        span.parent_span_id.into(),
        span.name.clone().into(),
        span.kind.clone().into(),
        span.status.clone().into(),
        span.started_at.into(),
        span.ended_at.into(),
        span.attributes.as_str().to_string().into(),
        span.input_tokens.into(),
        span.output_tokens.into(),
    ]
}

/// The PostgreSQL insert of one trace's spans: the varying columns as array literals (text
/// parameters cast to typed arrays, unpacked by `UNNEST`), the shared ones bound once.
#[expect(
    clippy::disallowed_methods,
    reason = "the batch insert of spans: the tenant and environment are bound from the Scope, not from the rows"
)]
fn postgres_span_insert(scope: &Scope, trace: &traces::Model, rows: &[NewSpan]) -> sea_orm::Statement {
    use sea_orm::{ActiveEnum, DbBackend};
    let mut ids = PgArray::new(rows.len() * 38);
    let mut parents = PgArray::new(rows.len() * 38);
    let mut names = PgArray::new(rows.len() * 16);
    let mut kinds = PgArray::new(rows.len() * 8);
    let mut statuses = PgArray::new(rows.len() * 6);
    let mut started = PgArray::new(rows.len() * 34);
    let mut ended = PgArray::new(rows.len() * 34);
    let mut attributes = PgArray::new(rows.len() * 32);
    let mut input_tokens = PgArray::new(rows.len() * 6);
    let mut output_tokens = PgArray::new(rows.len() * 6);
    let mut uuid = uuid::Uuid::encode_buffer();
    for row in rows {
        ids.push(Some(&*row.id.hyphenated().encode_lower(&mut uuid)));
        parents.push(row.parent_span_id.map(|id| id.hyphenated().to_string()).as_deref());
        names.push(Some(&row.name));
        kinds.push(Some(&row.kind));
        statuses.push(Some(&row.status));
        started.push(Some(&timestamp(row.started_at)));
        ended.push(row.ended_at.map(timestamp).as_deref());
        attributes.push(Some(row.attributes.as_str()));
        input_tokens.push(row.input_tokens.map(|n| n.to_string()).as_deref());
        output_tokens.push(row.output_tokens.map(|n| n.to_string()).as_deref());
    }
    sea_orm::Statement::from_sql_and_values(
        DbBackend::Postgres,
        "INSERT INTO spans (id, tenant_id, environment, trace_id, execution_id, parent_span_id, name, kind, \
         status, started_at, ended_at, attributes, input_tokens, output_tokens) \
         SELECT s.id, $1, $2, $3, $4, s.parent_span_id, s.name, s.kind, s.status, s.started_at, s.ended_at, \
         s.attributes, s.input_tokens, s.output_tokens \
         FROM UNNEST($5::uuid[], $6::uuid[], $7::text[], $8::text[], $9::text[], $10::timestamptz[], \
         $11::timestamptz[], $12::jsonb[], $13::int8[], $14::int8[]) \
         AS s(id, parent_span_id, name, kind, status, started_at, ended_at, attributes, input_tokens, output_tokens) \
         ON CONFLICT (id) DO NOTHING",
        [
            scope.tenant.id().to_string().into(),
            scope.environment.to_value().into(),
            trace.id.into(),
            trace.execution_id.into(),
            ids.finish().into(),
            parents.finish().into(),
            names.finish().into(),
            kinds.finish().into(),
            statuses.finish().into(),
            started.finish().into(),
            ended.finish().into(),
            attributes.finish().into(),
            input_tokens.finish().into(),
            output_tokens.finish().into(),
        ],
    )
}

fn timestamp(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// A PostgreSQL array literal (`{"a","b",NULL}`), for a text parameter cast to a typed array.
struct PgArray(String);

impl PgArray {
    fn new(capacity: usize) -> Self {
        let mut text = String::with_capacity(capacity + 2);
        text.push('{');
        PgArray(text)
    }

    /// Appends one element: quoted (`"` and `\` escaped), or NULL.
    fn push(&mut self, item: Option<&str>) {
        if self.0.len() > 1 {
            self.0.push(',');
        }
        match item {
            None => self.0.push_str("NULL"),
            Some(mut text) => {
                // Copied a run at a time (attributes are mostly plain text between quotes).
                self.0.push('"');
                while let Some(at) = text.find(['"', '\\']) {
                    self.0.push_str(&text[..at]);
                    self.0.push('\\');
                    self.0.push_str(&text[at..=at]);
                    text = &text[at + 1..];
                }
                self.0.push_str(text);
                self.0.push('"');
            }
        }
    }

    fn finish(mut self) -> String {
        self.0.push('}');
        self.0
    }
}

/// Spans of the scope by id, read in chunks of 500 ids (the live feed reloads the spans an
/// event names when a subscriber selects their large fields).
pub async fn spans_by_ids(db: &Db, scope: &Scope, ids: &[Uuid]) -> Result<Vec<Span>> {
    let mut rows = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        rows.extend(
            scope
                .select::<spans::Entity>()
                .filter(spans::Column::Id.is_in(chunk.iter().copied()))
                .all(&db.conn)
                .await?,
        );
    }
    records(rows)
}

pub async fn get(db: &Db, scope: &Scope, id: Uuid) -> Result<Trace> {
    by_id(db, scope, id)
        .await?
        .ok_or_else(|| Error::not_found(format!("trace {id} in {}", scope.environment)))
}

/// A trace of the scope by id (None: not there).
pub async fn by_id(db: &Db, scope: &Scope, id: Uuid) -> Result<Option<Trace>> {
    let row = super::lookup::in_scope::<traces::Entity, _>(&db.conn, scope, traces::Column::Id, id);
    row.await?.map(Trace::try_from).transpose()
}

/// A span of the scope by id (None: not there).
pub async fn span_by_id(db: &Db, scope: &Scope, id: Uuid) -> Result<Option<Span>> {
    let row = super::lookup::in_scope::<spans::Entity, _>(&db.conn, scope, spans::Column::Id, id);
    row.await?.map(Span::try_from).transpose()
}

/// Traces of the tenant by id, in either environment (in no particular order; missing ids are
/// left out): what the DataLoaders batch into.
pub async fn by_ids(db: &Db, tenant: &crate::scope::Tenant, ids: Vec<Uuid>) -> Result<Vec<Trace>> {
    let rows = super::lookup::many_in_tenant::<traces::Entity, _>(&db.conn, tenant, traces::Column::Id, ids);
    records(rows.await?)
}

/// Spans of the tenant by id, in either environment (in no particular order; missing ids are
/// left out): what the DataLoaders batch into.
pub async fn spans_in_tenant(db: &Db, tenant: &crate::scope::Tenant, ids: Vec<Uuid>) -> Result<Vec<Span>> {
    let rows = super::lookup::many_in_tenant::<spans::Entity, _>(&db.conn, tenant, spans::Column::Id, ids);
    records(rows.await?)
}

/// Traces of the environment, newest first, optionally of one execution.
pub async fn list(db: &Db, scope: &Scope, execution_id: Option<Uuid>, page: &PageRequest) -> Result<Page<Trace>> {
    let mut select = scope.select::<traces::Entity>();
    if let Some(execution_id) = execution_id {
        select = select.filter(traces::Column::ExecutionId.eq(execution_id));
    }
    pagination::fetch(db, select, traces::Column::Id, page, Order::Desc)
        .await?
        .try_map(Trace::try_from)
}

/// Spans of a trace, in the order they were recorded.
pub async fn spans(db: &Db, scope: &Scope, trace_id: Uuid, page: &PageRequest) -> Result<Page<Span>> {
    let select = scope
        .select::<spans::Entity>()
        .filter(spans::Column::TraceId.eq(trace_id));
    pagination::fetch(db, select, spans::Column::Id, page, Order::Asc)
        .await?
        .try_map(Span::try_from)
}

/// Spans of an execution (across its traces), in the order they were recorded.
pub async fn spans_of_execution(db: &Db, scope: &Scope, execution_id: Uuid, page: &PageRequest) -> Result<Page<Span>> {
    let select = scope
        .select::<spans::Entity>()
        .filter(spans::Column::ExecutionId.eq(execution_id));
    pagination::fetch(db, select, spans::Column::Id, page, Order::Asc)
        .await?
        .try_map(Span::try_from)
}

/// The first trace recorded for an execution, if any.
pub async fn first_of_execution(db: &Db, scope: &Scope, execution_id: Uuid) -> Result<Option<Trace>> {
    scope
        .select::<traces::Entity>()
        .filter(traces::Column::ExecutionId.eq(execution_id))
        .order_by_asc(traces::Column::Id)
        .one(&db.conn)
        .await?
        .map(Trace::try_from)
        .transpose()
}

/// The `n`th bind parameter of a raw statement.
fn placeholder(backend: sea_orm::DbBackend, n: usize) -> String {
    match backend {
        sea_orm::DbBackend::Postgres => format!("${n}"),
        _ => "?".to_string(),
    }
}

/// `tenant_id = $1 AND execution_id IN ($2, ...)` for a raw statement, with its bound values
/// (the tenant first).
fn tenant_and_executions(
    backend: sea_orm::DbBackend,
    tenant: &crate::scope::Tenant,
    execution_ids: &[Uuid],
) -> (Vec<sea_orm::Value>, String) {
    let mut values: Vec<sea_orm::Value> = Vec::with_capacity(execution_ids.len() + 2);
    values.push(tenant.id().to_string().into());
    let ids: Vec<String> = execution_ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            values.push((*id).into());
            placeholder(backend, i + 2)
        })
        .collect();
    let filter = format!(
        "tenant_id = {} AND execution_id IN ({})",
        placeholder(backend, 1),
        ids.join(", ")
    );
    (values, filter)
}

/// The first trace (in recorded order) of each of several executions, per environment, in one
/// query (a window function reads one row per execution, however many traces one has).
#[expect(
    clippy::disallowed_methods,
    reason = "a window function sea-query cannot build: the statement filters by the tenant, its first bound value"
)]
pub async fn first_traces_of_executions(
    db: &Db,
    tenant: &crate::scope::Tenant,
    execution_ids: &[Uuid],
) -> Result<Vec<Trace>> {
    use sea_orm::Statement;
    if execution_ids.is_empty() {
        return Ok(Vec::new());
    }
    let backend = db.conn.get_database_backend();
    let (values, filter) = tenant_and_executions(backend, tenant, execution_ids);
    let sql = format!(
        "SELECT * FROM (SELECT traces.*, ROW_NUMBER() OVER (PARTITION BY execution_id, environment ORDER BY id) \
         AS row_number FROM traces WHERE {filter}) numbered WHERE row_number = 1"
    );
    // The statement filters by the tenant (its first value).
    let rows = tenant
        .select::<traces::Entity>()
        .from_raw_sql(Statement::from_sql_and_values(backend, sql, values))
        .all(&db.conn)
        .await?;
    records(rows)
}

/// The columns of `spans` that [`SpanByPosition`] decodes, in the order of `spans::Model`'s
/// fields; `{attributes}` is `spans.attributes` or an empty JSON object.
const SPAN_READ_COLUMNS: &str = "spans.id, spans.tenant_id, spans.environment, spans.trace_id, spans.execution_id, \
     spans.parent_span_id, spans.name, spans.kind, spans.status, spans.started_at, spans.ended_at, {attributes}, \
     spans.input_tokens, spans.output_tokens";

/// A span row decoded by position (the columns of [`SPAN_READ_COLUMNS`], in order): the nested
/// span list reads hundreds of rows per request, and decoding by column name looks every name
/// up again for every value of every row.
struct SpanByPosition(spans::Model);

impl sea_orm::FromQueryResult for SpanByPosition {
    fn from_query_result(row: &sea_orm::QueryResult, _prefix: &str) -> std::result::Result<Self, sea_orm::DbErr> {
        Ok(SpanByPosition(spans::Model {
            id: row.try_get_by_index(0)?,
            tenant_id: row.try_get_by_index(1)?,
            environment: row.try_get_by_index(2)?,
            trace_id: row.try_get_by_index(3)?,
            execution_id: row.try_get_by_index(4)?,
            parent_span_id: row.try_get_by_index(5)?,
            name: row.try_get_by_index(6)?,
            kind: row.try_get_by_index(7)?,
            status: row.try_get_by_index(8)?,
            started_at: row.try_get_by_index(9)?,
            ended_at: row.try_get_by_index(10)?,
            attributes: row.try_get_by_index(11)?,
            input_tokens: row.try_get_by_index(12)?,
            output_tokens: row.try_get_by_index(13)?,
        }))
    }
}

/// The first `limit` spans (in recorded order) of each of several executions, in one query
/// (a window function bounds the rows read per execution, however many spans one has).
///
/// Without `attributes`, the JSON attributes are neither read nor decoded: each span carries
/// an empty object instead (for a query that does not select them).
#[expect(
    clippy::disallowed_methods,
    reason = "a window function sea-query cannot build: the statement filters by the tenant, its first bound value"
)]
pub async fn first_spans_of_executions(
    db: &Db,
    tenant: &crate::scope::Tenant,
    execution_ids: &[Uuid],
    limit: u64,
    attributes: bool,
) -> Result<std::collections::HashMap<Uuid, Vec<Span>>> {
    use sea_orm::{DbBackend, Statement};
    let mut by_execution: std::collections::HashMap<Uuid, Vec<Span>> =
        execution_ids.iter().map(|id| (*id, Vec::new())).collect();
    if execution_ids.is_empty() {
        return Ok(by_execution);
    }
    let backend = db.conn.get_database_backend();
    let (mut values, filter) = tenant_and_executions(backend, tenant, execution_ids);
    values.push(i64::try_from(limit).unwrap_or(i64::MAX).into());
    let attributes = match (attributes, backend) {
        (true, _) => "spans.attributes",
        (false, DbBackend::Postgres) => "'{}'::jsonb AS attributes",
        (false, _) => "'{}' AS attributes",
    };
    let columns = SPAN_READ_COLUMNS.replace("{attributes}", attributes);
    let sql = format!(
        "SELECT * FROM (SELECT {columns}, ROW_NUMBER() OVER (PARTITION BY execution_id ORDER BY id) AS row_number \
         FROM spans WHERE {filter}) numbered WHERE row_number <= {} ORDER BY id",
        placeholder(backend, execution_ids.len() + 2),
    );
    // The statement filters by the tenant (its first value).
    let rows = tenant
        .select::<spans::Entity>()
        .from_raw_sql(Statement::from_sql_and_values(backend, sql, values))
        .into_model::<SpanByPosition>()
        .all(&db.conn)
        .await?;
    for SpanByPosition(row) in rows {
        if let Some(execution_id) = row.execution_id {
            by_execution.entry(execution_id).or_default().push(row.try_into()?);
        }
    }
    Ok(by_execution)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_literals_escape_quotes_and_backslashes_only() {
        let mut array = PgArray::new(0);
        for item in [Some(r#"{"k": "a\"b\\c"}"#), None, Some(""), Some("é, {x} NULL")] {
            array.push(item);
        }
        assert_eq!(array.finish(), r#"{"{\"k\": \"a\\\"b\\\\c\"}",NULL,"","é, {x} NULL"}"#);
    }

    #[test]
    fn attributes_are_checked_as_text() {
        let object: Attributes = serde_json::from_str(r#" { "a" : [1, "\\u0000"] } "#).expect("JSON");
        assert!(object.is_object());
        assert_eq!(object.to_value(), serde_json::json!({ "a": [1, "\\u0000"] }));
        assert!(
            validate::json_text_no_nul("a", object.as_str()).is_ok(),
            "an escaped backslash"
        );
        let nul: Attributes = serde_json::from_str(r#"{"a":"x\u0000"}"#).expect("JSON");
        assert!(validate::json_text_no_nul("a", nul.as_str()).is_err());
        let list: Attributes = serde_json::from_str("[1]").expect("JSON");
        assert!(!list.is_object());
        assert_eq!(Attributes::default().as_str(), "{}");
    }
}
