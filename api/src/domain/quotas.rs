//! Per-tenant caps on how many records of one kind a tenant may have, checked when a write
//! would add one. They bound every list that is not paged because it is fingerprinted or
//! published as a whole (`pendingChanges`, `PublishPlan.items`, `Release.items`: at most one
//! entry per agent, prompt, connector and trigger of the tenant).

use sea_orm::{ConnectionTrait, EntityTrait, PaginatorTrait, Select};

use crate::db::lock_for_update;
use crate::error::{Error, Result};
use crate::scope::Tenant;

/// Agents, prompts and connectors a tenant may have (each kind counted on its own;
/// `RUNFLOW_MAX_RECORDS_PER_KIND`). Triggers have their own cap (`RUNFLOW_MAX_TRIGGERS`).
#[derive(Clone, Copy, Debug)]
pub struct RecordQuota {
    pub max_per_kind: u64,
}

impl Default for RecordQuota {
    fn default() -> Self {
        RecordQuota { max_per_kind: 1000 }
    }
}

/// Refuses to add one more `kind` record (LIMIT_EXCEEDED naming `setting`) when `existing`
/// already counts `limit` rows. Call it inside the write transaction that inserts the record:
/// it takes a per-tenant, per-kind lock first, so concurrent creates on PostgreSQL count one
/// at a time and cannot overshoot together (SQLite writers are serialised anyway).
pub async fn ensure_room<C, E>(
    tx: &C,
    tenant: &Tenant,
    kind: &str,
    existing: Select<E>,
    limit: u64,
    setting: &str,
) -> Result<()>
where
    C: ConnectionTrait,
    E: EntityTrait,
    E::Model: Sync,
{
    lock_for_update(tx, &format!("quota:{}:{kind}", tenant.id())).await?;
    let count = existing.count(tx).await?;
    if count >= limit {
        return Err(Error::LimitExceeded(format!(
            "the tenant already has {count} {kind}, the limit ({setting}={limit}); delete some first"
        )));
    }
    Ok(())
}
