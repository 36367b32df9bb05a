//! The outbox: filling deliveries from the event log, claiming due ones, recording attempts
//! (see the module docs of [`super`] for the guarantees).

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use entity::{event_counters, webhook_cursors, webhook_deliveries, webhook_endpoints};
use rand::Rng;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, Condition, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use super::{DeliveryStatus, EventType, MAX_ERROR_BYTES, WebhookSettings, message_body, message_id_of_event};
use crate::db::Db;
use crate::domain::events::{self, clip};
use crate::domain::now;
use crate::error::Result;
use crate::scope::AcrossTenants;
use crate::scope::Tenant;

/// Events read per fill transaction of one tenant.
pub const FILL_BATCH: u64 = 200;
/// Longest single retry delay.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(3600);

/// Turns new events of every tenant with a webhook cursor into deliveries; returns how many
/// deliveries were queued.
pub async fn fill(db: &Db) -> Result<usize> {
    let cursors = AcrossTenants::select::<webhook_cursors::Entity>().all(&db.conn).await?;
    if cursors.is_empty() {
        return Ok(0);
    }
    let heads: HashMap<String, i64> = AcrossTenants::select::<event_counters::Entity>()
        .select_only()
        .column(event_counters::Column::TenantId)
        .column(event_counters::Column::Seq)
        .into_tuple::<(String, i64)>()
        .all(&db.conn)
        .await?
        .into_iter()
        .collect();
    let mut queued = 0;
    for cursor in cursors {
        let head = heads.get(&cursor.tenant_id).copied().unwrap_or(0);
        if head > cursor.seq {
            queued += fill_tenant(db, &Tenant::of_webhook_cursor(&cursor), cursor.seq).await?;
        }
    }
    Ok(queued)
}

/// One fill transaction of one tenant, from the cursor value `from` (as read).
async fn fill_tenant(db: &Db, tenant: &Tenant, from: i64) -> Result<usize> {
    let events = events::after(db, tenant.id(), from, FILL_BATCH).await?;
    let Some(last) = events.last().map(|e| e.seq) else {
        return Ok(0);
    };
    let endpoints = tenant
        .select::<webhook_endpoints::Entity>()
        .filter(webhook_endpoints::Column::Enabled.eq(true))
        .all(&db.conn)
        .await?;
    let subscriptions: Vec<(Uuid, Vec<EventType>)> = endpoints.iter().map(|e| (e.id, super::event_types(e))).collect();
    let time = now();
    let mut rows = Vec::new();
    for event in &events {
        let Some(event_type) = EventType::of_event(event) else {
            continue;
        };
        let body = message_body(event_type, event);
        for (endpoint, types) in &subscriptions {
            if types.contains(&event_type) {
                rows.push(super::pending(
                    tenant,
                    *endpoint,
                    message_id_of_event(event.id),
                    event_type.as_str(),
                    Some(event.seq),
                    body.clone(),
                    time,
                ));
            }
        }
    }
    let tx = db.begin_write().await?;
    // Conditional on the value read: of two replicas filling the same events, one moves the
    // cursor and inserts; the other changes no row and rolls back.
    let moved = AcrossTenants::update_many::<webhook_cursors::Entity>()
        .col_expr(webhook_cursors::Column::Seq, Expr::value(last))
        .filter(webhook_cursors::Column::TenantId.eq(tenant.id()))
        .filter(webhook_cursors::Column::Seq.eq(from))
        .exec(&tx)
        .await?
        .rows_affected;
    if moved != 1 {
        tx.rollback().await?;
        return Ok(0);
    }
    let queued = rows.len();
    for chunk in rows.chunks(100) {
        tenant.insert_many(chunk.to_vec()).exec_without_returning(&tx).await?;
    }
    db.commit(tx).await?;
    Ok(queued)
}

/// A delivery this process holds, with the token that proves it.
#[derive(Clone, Debug)]
pub struct Claimed {
    pub delivery: webhook_deliveries::Model,
    pub token: Uuid,
}

impl Claimed {
    /// An update of this delivery that gives the claim up; it changes nothing if the claim
    /// was lost (another process holds the delivery under a newer token).
    fn release(&self) -> sea_orm::UpdateMany<webhook_deliveries::Entity> {
        AcrossTenants::update_many::<webhook_deliveries::Entity>()
            .col_expr(
                webhook_deliveries::Column::ClaimedUntil,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(
                webhook_deliveries::Column::ClaimToken,
                Expr::value(Option::<Uuid>::None),
            )
            .filter(webhook_deliveries::Column::Id.eq(self.delivery.id))
            .filter(webhook_deliveries::Column::ClaimToken.eq(self.token))
    }
}

/// Claims up to `limit` due deliveries for this process, each for `lease`.
pub async fn claim_due(db: &Db, limit: u64, lease: Duration) -> Result<Vec<Claimed>> {
    let time = now();
    let unclaimed = || {
        Condition::any()
            .add(webhook_deliveries::Column::ClaimedUntil.is_null())
            .add(webhook_deliveries::Column::ClaimedUntil.lt(time))
    };
    let candidates = AcrossTenants::select::<webhook_deliveries::Entity>()
        .filter(webhook_deliveries::Column::Status.eq(DeliveryStatus::Pending.as_str()))
        .filter(webhook_deliveries::Column::NextAttemptAt.lte(time))
        .filter(unclaimed())
        .order_by_asc(webhook_deliveries::Column::NextAttemptAt)
        .limit(limit)
        .all(&db.conn)
        .await?;
    let until = time + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::seconds(60));
    let mut claimed = Vec::new();
    for delivery in candidates {
        let token = Uuid::new_v4();
        let taken = AcrossTenants::update_many::<webhook_deliveries::Entity>()
            .col_expr(webhook_deliveries::Column::ClaimedUntil, Expr::value(until))
            .col_expr(webhook_deliveries::Column::ClaimToken, Expr::value(token))
            .filter(webhook_deliveries::Column::Id.eq(delivery.id))
            .filter(webhook_deliveries::Column::Status.eq(DeliveryStatus::Pending.as_str()))
            .filter(unclaimed())
            .exec(&db.conn)
            .await?
            .rows_affected;
        if taken == 1 {
            claimed.push(Claimed { delivery, token });
        }
    }
    Ok(claimed)
}

/// What one call gave.
#[derive(Clone, Debug)]
pub struct Attempt {
    pub at: DateTime<Utc>,
    /// The HTTP status, when the receiver answered.
    pub response_status: Option<u16>,
    pub latency: Duration,
    /// Why it failed (None: a 2xx answer).
    pub error: Option<String>,
}

impl Attempt {
    pub fn succeeded(&self) -> bool {
        self.error.is_none()
    }
}

/// The delay before retry number `attempts` (1 = the first retry): `base * 2^(attempts-1)`,
/// at most [`MAX_RETRY_DELAY`], with "equal jitter" (between half and all of it).
pub fn retry_delay(base: Duration, attempts: i32) -> Duration {
    let exponent = attempts.clamp(1, 20) as u32 - 1;
    let full = base.saturating_mul(1u32 << exponent).min(MAX_RETRY_DELAY);
    let half = full / 2;
    let jitter = rand::rng().random_range(0.0..=1.0);
    half + half.mul_f64(jitter)
}

/// Records an attempt of a claimed delivery: succeeded, retry scheduled, or failed for good
/// (then its endpoint is marked failing). Nothing is written if the claim was lost.
pub async fn record(db: &Db, settings: &WebhookSettings, claimed: &Claimed, attempt: &Attempt) -> Result<()> {
    let delivery = &claimed.delivery;
    let attempts = delivery.attempts + 1;
    let deadline = chrono::Duration::from_std(settings.retry_for)
        .ok()
        .and_then(|d| delivery.created_at.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    let (status, next_attempt_at) = if attempt.succeeded() {
        (DeliveryStatus::Succeeded, attempt.at)
    } else if attempt.at >= deadline {
        (DeliveryStatus::Failed, attempt.at)
    } else {
        let delay = chrono::Duration::from_std(retry_delay(settings.retry_base, attempts))
            .unwrap_or(chrono::Duration::seconds(3600));
        // One last try at the deadline rather than none after it.
        (DeliveryStatus::Pending, (attempt.at + delay).min(deadline))
    };
    let latency_ms = i64::try_from(attempt.latency.as_millis()).unwrap_or(i64::MAX);
    let tx = db.begin_write().await?;
    let written = claimed
        .release()
        .col_expr(webhook_deliveries::Column::Status, Expr::value(status.as_str()))
        .col_expr(webhook_deliveries::Column::Attempts, Expr::value(attempts))
        .col_expr(webhook_deliveries::Column::NextAttemptAt, Expr::value(next_attempt_at))
        .col_expr(webhook_deliveries::Column::LastAttemptAt, Expr::value(attempt.at))
        .col_expr(
            webhook_deliveries::Column::DeliveredAt,
            Expr::value(attempt.succeeded().then_some(attempt.at)),
        )
        .col_expr(
            webhook_deliveries::Column::ResponseStatus,
            Expr::value(attempt.response_status.map(i32::from)),
        )
        .col_expr(webhook_deliveries::Column::LatencyMs, Expr::value(latency_ms))
        .col_expr(
            webhook_deliveries::Column::LastError,
            Expr::value(attempt.error.as_deref().map(|e| clip(e, MAX_ERROR_BYTES))),
        )
        .exec(&tx)
        .await?
        .rows_affected;
    if written == 1 {
        let endpoint = AcrossTenants::update_many::<webhook_endpoints::Entity>()
            .filter(webhook_endpoints::Column::Id.eq(delivery.endpoint_id))
            .filter(webhook_endpoints::Column::TenantId.eq(delivery.tenant_id.as_str()));
        match status {
            DeliveryStatus::Succeeded => {
                endpoint
                    .col_expr(
                        webhook_endpoints::Column::FailingSince,
                        Expr::value(Option::<DateTime<Utc>>::None),
                    )
                    .filter(webhook_endpoints::Column::FailingSince.is_not_null())
                    .exec(&tx)
                    .await?;
            }
            DeliveryStatus::Failed => {
                endpoint
                    .col_expr(webhook_endpoints::Column::FailingSince, Expr::value(attempt.at))
                    .filter(webhook_endpoints::Column::FailingSince.is_null())
                    .exec(&tx)
                    .await?;
            }
            DeliveryStatus::Pending => {}
        }
    }
    db.commit(tx).await?;
    Ok(())
}

/// Gives a claimed delivery up without an attempt (its endpoint is gone or disabled): failed,
/// with `reason`, and the endpoint is not marked failing.
pub async fn abandon(db: &Db, claimed: &Claimed, reason: &str) -> Result<()> {
    claimed
        .release()
        .col_expr(
            webhook_deliveries::Column::Status,
            Expr::value(DeliveryStatus::Failed.as_str()),
        )
        .col_expr(
            webhook_deliveries::Column::LastError,
            Expr::value(clip(reason, MAX_ERROR_BYTES)),
        )
        .exec(&db.conn)
        .await?;
    Ok(())
}

/// Deletes finished deliveries (succeeded or failed) queued before `before`, at most
/// `limit` per call; returns how many. Keeps the delivery log bounded.
pub async fn prune(db: &Db, before: DateTime<Utc>, limit: u64) -> Result<u64> {
    let ids: Vec<Uuid> = AcrossTenants::select::<webhook_deliveries::Entity>()
        .select_only()
        .column(webhook_deliveries::Column::Id)
        .filter(webhook_deliveries::Column::Status.ne(DeliveryStatus::Pending.as_str()))
        .filter(webhook_deliveries::Column::CreatedAt.lt(before))
        .limit(limit)
        .into_tuple()
        .all(&db.conn)
        .await?;
    if ids.is_empty() {
        return Ok(0);
    }
    Ok(AcrossTenants::delete_many::<webhook_deliveries::Entity>()
        .filter(webhook_deliveries::Column::Id.is_in(ids))
        .exec(&db.conn)
        .await?
        .rows_affected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_grow_exponentially_with_jitter_and_a_cap() {
        let base = Duration::from_secs(2);
        for attempts in 1..=30 {
            let full = base.saturating_mul(1u32 << (attempts.min(20) - 1)).min(MAX_RETRY_DELAY);
            let delay = retry_delay(base, attempts);
            assert!(
                delay >= full / 2 && delay <= full,
                "attempt {attempts}: {delay:?} vs {full:?}"
            );
        }
        assert!(retry_delay(base, 30) <= MAX_RETRY_DELAY);
    }
}
