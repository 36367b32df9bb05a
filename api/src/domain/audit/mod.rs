//! The audit log: who changed what, when and where.
//!
//! One entry per successful change, written by the one mechanism that sees every change: the
//! GraphQL audit extension ([`crate::graphql::audit`]) records each root mutation field that
//! succeeded, with the caller's token subject and role, the environment argument, the
//! operation (`action`), the record kind and key, a summary of the input with every
//! argument the schema marks secret replaced by [`REDACTED`], and a non-secret summary of
//! the record before and after the change ([`state`]). Nothing in the API updates or
//! deletes an entry (append-only); `runflow audit export` writes them as JSON lines.
//!
//! The entry is written after the change commits, not in its transaction: the changes are
//! made by some forty transactions across the domain modules, and the extension is the one
//! place that sees all of them. A failure to write it is logged as an error and counted in
//! `runflow_audit_entries_failed_total`.

pub mod state;

use chrono::{DateTime, Utc};
use entity::{Environment, audit_entries};
use sea_orm::{ColumnTrait, Order, QueryFilter, QueryOrder, QuerySelect};
use serde_json::Value;

use super::pagination::{self, Page, PageRequest};
use super::{new_id, now};
use crate::auth::Actor;
use crate::db::Db;
use crate::error::Result;
use crate::scope::AcrossTenants;
use crate::scope::{Scope, Tenant};

/// What replaces a secret value in a summary.
pub const REDACTED: &str = "[redacted]";

/// An entry to append.
#[derive(Clone, Debug)]
pub struct NewAuditEntry {
    pub environment: Environment,
    pub action: String,
    pub record_kind: String,
    pub record_key: Option<String>,
    pub summary: Value,
    /// The record before the change ([`state::state_of`]); None for a create.
    pub before: Option<Value>,
    /// The record after the change; None for a delete.
    pub after: Option<Value>,
}

/// Appends one entry for `actor`.
pub async fn record(db: &Db, actor: &Actor, entry: NewAuditEntry) -> Result<audit_entries::Model> {
    let model = audit_entries::Model {
        id: new_id(),
        tenant_id: actor.tenant_id().to_string(),
        environment: entry.environment,
        actor_subject: actor.subject().to_string(),
        actor_role: actor.role().as_str().to_string(),
        action: entry.action,
        record_kind: entry.record_kind,
        record_key: entry.record_key,
        summary: entry.summary,
        before_state: entry.before,
        after_state: entry.after,
        created_at: now(),
    };
    let active: audit_entries::ActiveModel = model.clone().into();
    crate::scope::Tenant::of(actor)
        .insert_one(active)
        .exec_without_returning(&db.conn)
        .await?;
    Ok(model)
}

/// Filters of [`list`]; every one given must match.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub record_kind: Option<String>,
    pub record_key: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

/// A page of the scope's entries, newest first.
pub async fn list(
    db: &Db,
    scope: &Scope,
    filter: &AuditFilter,
    request: &PageRequest,
) -> Result<Page<audit_entries::Model>> {
    let mut select = scope.select::<audit_entries::Entity>();
    if let Some(actor) = &filter.actor {
        select = select.filter(audit_entries::Column::ActorSubject.eq(actor.as_str()));
    }
    if let Some(action) = &filter.action {
        select = select.filter(audit_entries::Column::Action.eq(action.as_str()));
    }
    if let Some(kind) = &filter.record_kind {
        select = select.filter(audit_entries::Column::RecordKind.eq(kind.as_str()));
    }
    if let Some(key) = &filter.record_key {
        select = select.filter(audit_entries::Column::RecordKey.eq(key.as_str()));
    }
    if let Some(since) = filter.since {
        select = select.filter(audit_entries::Column::CreatedAt.gte(since));
    }
    if let Some(until) = filter.until {
        select = select.filter(audit_entries::Column::CreatedAt.lt(until));
    }
    pagination::fetch(&db.conn, select, audit_entries::Column::Id, request, Order::Desc).await
}

/// Every entry (of one tenant, or of all), oldest first, in batches: what `runflow audit
/// export` writes as JSON lines. `write` receives each entry in order.
pub async fn export(
    db: &Db,
    tenant: Option<&Tenant>,
    mut write: impl FnMut(&audit_entries::Model) -> std::io::Result<()>,
) -> anyhow::Result<u64> {
    let mut after = None;
    let mut count = 0;
    loop {
        let mut select = match tenant {
            Some(tenant) => tenant.select::<audit_entries::Entity>(),
            None => AcrossTenants::select::<audit_entries::Entity>(),
        };
        if let Some(after) = after {
            select = select.filter(audit_entries::Column::Id.gt(after));
        }
        let batch = select
            .order_by(audit_entries::Column::Id, Order::Asc)
            .limit(500)
            .all(&db.conn)
            .await?;
        let Some(last) = batch.last() else { return Ok(count) };
        after = Some(last.id);
        for entry in &batch {
            write(entry)?;
            count += 1;
        }
    }
}
