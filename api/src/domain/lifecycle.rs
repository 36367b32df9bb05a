//! The lifecycle of a running execution beyond "claim" and "finish": leases, reclaiming the
//! executions of dead workers, failing runtime-API executions never finished, cancelling.
//!
//! Every transition here is a conditional UPDATE (`WHERE id = .. AND status = ..`, plus the
//! lease or the worker where it matters), so on PostgreSQL (READ COMMITTED) two replicas, or a
//! reaper and a finishing worker, never both win: the loser changes nothing and moves on.

use chrono::{DateTime, Utc};
use entity::executions;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, QueryFilter, QuerySelect};
use uuid::Uuid;

use super::executions::{ExecutionStatus, append_event};
use super::manifest::Manifest;
use super::now;
use crate::db::Db;
use crate::error::{Error, Result};
use crate::scope::{AcrossTenants, Scope, StagingScope};

/// How many times a run of an idempotent agent lost with its worker is started in all.
pub const MAX_ATTEMPTS: i32 = 3;

fn after(lease: std::time::Duration) -> DateTime<Utc> {
    now() + chrono::Duration::from_std(lease).unwrap_or_else(|_| chrono::Duration::seconds(30))
}

/// Renews `worker`'s lease on a running execution. `false` when the execution is no longer
/// RUNNING on this worker (cancelled, or reclaimed after the lease expired): the run must stop.
pub async fn renew_lease(db: &Db, id: Uuid, worker: &str, lease: std::time::Duration) -> Result<bool> {
    // By the worker's claim: workers serve every tenant.
    let result = AcrossTenants::update_many::<executions::Entity>()
        .col_expr(executions::Column::LeaseExpiresAt, Expr::value(after(lease)))
        .filter(executions::Column::Id.eq(id))
        .filter(executions::Column::Status.eq(ExecutionStatus::Running.as_str()))
        .filter(executions::Column::ClaimedBy.eq(worker))
        .exec(&db.conn)
        .await?;
    Ok(result.rows_affected == 1)
}

/// What the conditional transition should match besides the id.
enum Guard {
    /// RUNNING with a lease that expired before this instant.
    LeaseExpiredBefore(DateTime<Utc>),
    /// RUNNING, never claimed by a worker (started through the runtime API), started before.
    RuntimeStartedBefore(DateTime<Utc>),
    /// QUEUED or RUNNING.
    NotFinal,
}

/// Moves one execution to `status` if `guard` still holds; appends the event. `Ok(None)` when
/// someone else changed it first.
async fn transition(
    db: &Db,
    row: &executions::Model,
    guard: Guard,
    status: ExecutionStatus,
    error: Option<String>,
) -> Result<Option<executions::Model>> {
    let scope = Scope::of_execution(row);
    let tx = db.begin_write().await?;
    let mut update = scope
        .tenant
        .update_many::<executions::Entity>()
        .col_expr(executions::Column::Status, Expr::value(status.as_str()))
        .col_expr(
            executions::Column::LeaseExpiresAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .filter(executions::Column::Id.eq(row.id));
    update = match guard {
        Guard::LeaseExpiredBefore(instant) => update
            .filter(executions::Column::Status.eq(ExecutionStatus::Running.as_str()))
            .filter(executions::Column::LeaseExpiresAt.lt(instant)),
        Guard::RuntimeStartedBefore(instant) => update
            .filter(executions::Column::Status.eq(ExecutionStatus::Running.as_str()))
            .filter(executions::Column::ClaimedBy.is_null())
            .filter(executions::Column::StartedAt.lt(instant)),
        Guard::NotFinal => update.filter(
            executions::Column::Status.is_in([ExecutionStatus::Queued.as_str(), ExecutionStatus::Running.as_str()]),
        ),
    };
    if status == ExecutionStatus::Queued {
        // A retry: a fresh claim, one more attempt.
        update = update
            .col_expr(executions::Column::ClaimedBy, Expr::value(Option::<String>::None))
            .col_expr(
                executions::Column::StartedAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(
                executions::Column::Attempt,
                Expr::col(executions::Column::Attempt).add(1),
            );
    } else {
        update = update
            .col_expr(executions::Column::Error, Expr::value(error))
            .col_expr(executions::Column::FinishedAt, Expr::value(Some(now())));
    }
    if update.exec(&tx).await?.rows_affected != 1 {
        return Ok(None);
    }
    let row = scope
        .select::<executions::Entity>()
        .filter(executions::Column::Id.eq(row.id))
        .one(&tx)
        .await?
        .ok_or_else(|| Error::not_found(format!("execution {}", row.id)))?;
    let agent_slug = scope
        .tenant
        .select::<entity::agents::Entity>()
        .filter(entity::agents::Column::Id.eq(row.agent_id))
        .one(&tx)
        .await?
        .map(|a| a.slug)
        .unwrap_or_default();
    let kind = if status.is_final() { "finished" } else { "updated" };
    append_event(&tx, &scope, &row, kind, &agent_slug).await?;
    db.commit(tx).await?;
    db.wake_live_feed();
    Ok(Some(row))
}

async fn is_idempotent(db: &Db, row: &executions::Model) -> Result<bool> {
    let Some(commit_id) = row.commit_id else {
        return Ok(false);
    };
    let commit = Scope::of_execution(row)
        .tenant
        .select::<entity::agent_commits::Entity>()
        .filter(entity::agent_commits::Column::Id.eq(commit_id))
        .one(&db.conn)
        .await?;
    Ok(commit
        .and_then(|c| serde_json::from_value::<Manifest>(c.manifest).ok())
        .is_some_and(|m| m.idempotent))
}

/// Reclaims the executions of workers whose lease expired (the worker died: kill -9, OOM, host
/// lost): FAILED with the reason, or queued again when the agent's manifest says
/// `idempotent = true` and attempts remain. Any process may call this (system-level, across
/// tenants); returns how many executions it changed.
pub async fn reclaim_expired(db: &Db) -> Result<usize> {
    let instant = now();
    let expired = AcrossTenants::select::<executions::Entity>()
        .filter(executions::Column::Status.eq(ExecutionStatus::Running.as_str()))
        .filter(executions::Column::LeaseExpiresAt.lt(instant))
        .limit(100)
        .all(&db.conn)
        .await?;
    let mut changed = 0;
    for row in expired {
        let worker = row.claimed_by.clone().unwrap_or_else(|| "unknown".into());
        let expired_at = row.lease_expires_at.map(|t| t.to_rfc3339()).unwrap_or_default();
        let retry = row.attempt < MAX_ATTEMPTS && is_idempotent(db, &row).await?;
        let result = if retry {
            transition(
                db,
                &row,
                Guard::LeaseExpiredBefore(instant),
                ExecutionStatus::Queued,
                None,
            )
            .await?
        } else {
            let error = format!(
                "the worker running this execution ({worker}) stopped responding: its lease expired at {expired_at}{}",
                if row.attempt >= MAX_ATTEMPTS {
                    format!(" (attempt {} of {MAX_ATTEMPTS})", row.attempt)
                } else {
                    String::new()
                }
            );
            transition(
                db,
                &row,
                Guard::LeaseExpiredBefore(instant),
                ExecutionStatus::Failed,
                Some(error),
            )
            .await?
        };
        if result.is_some() {
            tracing::warn!(execution = %row.id, worker, retry, "lifecycle: reclaimed an execution of a lost worker");
            changed += 1;
        }
    }
    Ok(changed)
}

/// Fails executions started through the runtime API (never claimed by a worker) that have been
/// RUNNING for longer than `limit` without being finished.
pub async fn fail_abandoned(db: &Db, limit: std::time::Duration) -> Result<usize> {
    let cutoff = now() - chrono::Duration::from_std(limit).unwrap_or_else(|_| chrono::Duration::hours(1));
    let abandoned = AcrossTenants::select::<executions::Entity>()
        .filter(executions::Column::Status.eq(ExecutionStatus::Running.as_str()))
        .filter(executions::Column::ClaimedBy.is_null())
        .filter(executions::Column::StartedAt.lt(cutoff))
        .limit(100)
        .all(&db.conn)
        .await?;
    let mut changed = 0;
    for row in abandoned {
        let error = format!(
            "the runtime that started this execution never finished it within {} (RUNFLOW_RUNTIME_EXECUTION_TIMEOUT)",
            humantime::format_duration(limit)
        );
        if transition(
            db,
            &row,
            Guard::RuntimeStartedBefore(cutoff),
            ExecutionStatus::Failed,
            Some(error),
        )
        .await?
        .is_some()
        {
            changed += 1;
        }
    }
    Ok(changed)
}

/// Cancels a queued or running staging execution (CANCELLED). The worker running it notices
/// at its next lease renewal, or at once through the live feed, and kills the run's whole
/// process tree. Cancelling a finished execution is CONFLICT.
pub async fn cancel(db: &Db, scope: &StagingScope, id: Uuid, by: &str) -> Result<super::executions::Execution> {
    let row = scope
        .select::<executions::Entity>()
        .filter(executions::Column::Id.eq(id))
        .one(&db.conn)
        .await?
        .ok_or_else(|| Error::not_found(format!("execution {id} in {}", scope.environment)))?;
    let error = format!("cancelled by {by}");
    match transition(db, &row, Guard::NotFinal, ExecutionStatus::Cancelled, Some(error)).await? {
        Some(row) => row.try_into(),
        None => Err(Error::Conflict(format!("execution {id} has already finished"))),
    }
}
