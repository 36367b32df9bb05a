//! The event log behind the live feed.
//!
//! Every change a subscriber can see appends an event **in the same transaction** as the
//! change: an event exists exactly when its change committed. Per tenant, events are numbered
//! by `seq` in commit order (the tenant's counter row is locked until commit), and that number
//! is the subscription cursor: resuming after a cursor replays exactly what followed it.

use chrono::{DateTime, Utc};
use entity::{Environment, event_counters, events};
use sea_orm::sea_query::{ExprTrait, OnConflict};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set, Statement,
};
use serde_json::Value;
use uuid::Uuid;

use super::{new_id, now};
use crate::db::Db;
use crate::error::{Error, Result};
use crate::scope::Tenant;

/// The PostgreSQL channel replicas LISTEN on. Notifications carry only the tenant id.
pub const CHANNEL: &str = "runflow_events";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Topic {
    Execution,
    Session,
    Trace,
    Release,
    /// Release requests opened, reviewed and published (approvals).
    ReleaseRequest,
    /// Scheduled releases scheduled, changed, published, failed or missed.
    Schedule,
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

/// Appends events inside the caller's transaction and returns them with their `seq`.
pub async fn append<C: ConnectionTrait>(tx: &C, tenant: &Tenant, new: Vec<NewEvent>) -> Result<Vec<events::Model>> {
    if new.is_empty() {
        return Ok(vec![]);
    }
    let count = new.len() as i64;
    event_counters::Entity::insert(event_counters::ActiveModel {
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
    event_counters::Entity::update_many()
        .col_expr(
            event_counters::Column::Seq,
            sea_orm::sea_query::Expr::col(event_counters::Column::Seq).add(count),
        )
        .filter(event_counters::Column::TenantId.eq(tenant.id()))
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
        events::Entity::insert_many(active).exec_without_returning(tx).await?;
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
    Ok(rows)
}

/// A tenant's events after `seq`, in order, at most `limit`.
pub async fn after<C: ConnectionTrait>(db: &C, tenant: &str, seq: i64, limit: u64) -> Result<Vec<events::Model>> {
    Ok(events::Entity::find()
        .filter(events::Column::TenantId.eq(tenant))
        .filter(events::Column::Seq.gt(seq))
        .order_by_asc(events::Column::Seq)
        .limit(limit)
        .all(db)
        .await?)
}

/// Every tenant's latest seq (what the live-feed pump polls).
pub async fn heads(db: &Db) -> Result<Vec<(String, i64)>> {
    Ok(event_counters::Entity::find()
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

/// Deletes events older than `before`; remembers the highest deleted seq per tenant so that
/// resuming from an older cursor fails clearly instead of skipping events.
pub async fn prune(db: &Db, before: DateTime<Utc>) -> Result<u64> {
    let tx = db.begin_write().await?;
    let pruned: Vec<(String, Option<i64>)> = events::Entity::find()
        .select_only()
        .column(events::Column::TenantId)
        .column_as(events::Column::Seq.max(), "max_seq")
        .filter(events::Column::CreatedAt.lt(before))
        .group_by(events::Column::TenantId)
        .into_tuple()
        .all(&tx)
        .await?;
    for (tenant, max_seq) in &pruned {
        if let Some(max_seq) = max_seq {
            event_counters::Entity::update_many()
                .col_expr(
                    event_counters::Column::PrunedThrough,
                    sea_orm::sea_query::Expr::value(*max_seq),
                )
                .filter(event_counters::Column::TenantId.eq(tenant.as_str()))
                .filter(event_counters::Column::PrunedThrough.lt(*max_seq))
                .exec(&tx)
                .await?;
        }
    }
    let deleted = events::Entity::delete_many()
        .filter(events::Column::CreatedAt.lt(before))
        .exec(&tx)
        .await?;
    tx.commit().await?;
    Ok(deleted.rows_affected)
}
