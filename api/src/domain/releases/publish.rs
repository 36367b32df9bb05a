//! Applying a publish or a rollback: one transaction, one release record, and the only
//! place a [`ProductionWrite`] is made.

use entity::{Environment, release_items, releases, scheduled_releases};
use sea_orm::{ColumnTrait, ConnectionTrait, QueryFilter, QueryOrder, Set};
use serde_json::json;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::plan::{PlannedItem, PublishRequest, plan_for, request_shape};
use super::{kinds, state};
use crate::auth::Role;
use crate::db::{Db, lock_for_update};
use crate::domain::approvals::{self, Authorization};
use crate::domain::events::{self, NewEvent, Topic};
use crate::domain::{EnvironmentWrite, new_id, now, sealed, validate};
use crate::error::{Error, Result};
use crate::scope::{Scope, Tenant, TenantWrite};

/// The capability to write production: made only here, by [`publish`], inside its transaction,
/// for the release being recorded. Every function that writes production's configuration
/// takes one (or, generically, an [`EnvironmentWrite`]), so production changes only by
/// publishing.
///
/// Nothing outside this module can make one:
///
/// ```compile_fail,E0451
/// fn forge(scope: runflow::scope::Scope) -> runflow::domain::releases::ProductionWrite {
///     runflow::domain::releases::ProductionWrite { scope, release_id: uuid::Uuid::nil() }
/// }
/// ```
///
/// ```compile_fail,E0624
/// fn forge(tenant: &runflow::scope::Tenant) -> runflow::domain::releases::ProductionWrite {
///     runflow::domain::releases::ProductionWrite::new(tenant, uuid::Uuid::nil())
/// }
/// ```
#[derive(Debug)]
pub struct ProductionWrite {
    scope: Scope,
    release_id: Uuid,
}

impl ProductionWrite {
    fn new(tenant: &Tenant, release_id: Uuid) -> Self {
        ProductionWrite {
            scope: tenant.in_env(Environment::Production),
            release_id,
        }
    }

    pub fn tenant(&self) -> &Tenant {
        &self.scope.tenant
    }
}

impl sealed::Sealed for ProductionWrite {}

impl EnvironmentWrite for ProductionWrite {
    fn target(&self) -> &Scope {
        &self.scope
    }

    fn release_id(&self) -> Option<Uuid> {
        Some(self.release_id)
    }
}

/// Publishes (or rolls back) atomically: one transaction, one release record. With approvals
/// required, only what an approved release request names (see [`approvals::authorize_publish`]).
pub async fn publish(
    db: &Db,
    tenant: &Tenant,
    actor: &str,
    role: Role,
    request: PublishRequest,
) -> Result<super::Release> {
    validate::author(actor)?;
    request_shape(&request)?;
    let tx = db.begin_write().await?;
    // Publishes of one tenant never interleave.
    lock_for_update(&tx, &format!("publish:{}", tenant.id())).await?;
    // A retry with the key returns the first result; the same key with another request is
    // refused. (Concurrent requests with one key wait on the lock above, then see the first's
    // release.) A request that fails is rolled back whole, so its key stays unused.
    let request_hash = request_hash(&request);
    if let Some(key) = &request.idempotency_key
        && let Some(existing) = tenant
            .select::<releases::Entity>()
            .filter(releases::Column::IdempotencyKey.eq(key.as_str()))
            .one(&tx)
            .await?
    {
        if existing.request_hash.as_ref().is_some_and(|hash| *hash != request_hash) {
            return Err(Error::IdempotencyKeyReused(format!(
                "idempotency key {key:?} was already used by release {} with a different request; \
                 use a new key for a new request",
                existing.number
            )));
        }
        return Ok(existing.into());
    }
    if let Some(key) = &request.idempotency_key
        && let Some(scheduled) = tenant
            .select::<scheduled_releases::Entity>()
            .filter(scheduled_releases::Column::IdempotencyKey.eq(key.as_str()))
            .one(&tx)
            .await?
    {
        return Err(Error::IdempotencyKeyReused(format!(
            "idempotency key {key:?} was already used to schedule a release for {}; use a new \
             key for a new request",
            scheduled.run_at.to_rfc3339()
        )));
    }
    let plan = plan_for(&tx, tenant, &request, true).await?;
    if !plan.missing.is_empty() {
        return Err(Error::bad_input(format!(
            "missing dependencies: {}",
            plan.missing.join("; ")
        )));
    }
    let authorization = approvals::authorize_publish(&tx, tenant, role, &request, &plan).await?;
    if plan.rollback_of.is_none() {
        lock_and_recheck(&tx, tenant, &plan.items).await?;
    }
    let number = tenant
        .select::<releases::Entity>()
        .order_by_desc(releases::Column::Number)
        .one(&tx)
        .await?
        .map_or(1, |r| r.number + 1);
    let release = releases::ActiveModel {
        id: Set(new_id()),
        tenant_id: Set(tenant.id().to_string()),
        number: Set(number),
        kind: Set(if plan.rollback_of.is_some() {
            "rollback"
        } else {
            "publish"
        }
        .to_string()),
        rolls_back_id: Set(plan.rollback_of.as_ref().map(|r| r.id)),
        note: Set(request.note.clone()),
        idempotency_key: Set(request.idempotency_key.clone()),
        request_hash: Set(Some(request_hash)),
        created_by: Set(actor.to_string()),
        created_at: Set(now()),
        approval_request_id: Set(match authorization {
            Authorization::Approved(request) => Some(request),
            _ => None,
        }),
        emergency_override: Set(authorization == Authorization::EmergencyOverride),
    }
    .insert_into(tenant, &tx)
    .await?;
    if let Authorization::Approved(request) = authorization {
        approvals::mark_published(&tx, tenant, request, &release).await?;
    }
    let production = ProductionWrite::new(tenant, release.id);
    let mut rows = Vec::new();
    for item in &plan.items {
        let after = kinds::apply(&tx, &production, actor, &item.item, item.after.as_ref()).await?;
        rows.push(release_items::ActiveModel {
            id: Set(new_id()),
            tenant_id: Set(tenant.id().to_string()),
            release_id: Set(release.id),
            item_id: Set(item.item.to_string()),
            kind: Set(item.item.kind.as_str().to_string()),
            change: Set(item.change.as_str().to_string()),
            before: Set(item.before.clone()),
            after: Set(after),
        });
    }
    tenant.insert_many(rows).exec(&tx).await?;
    // A release changes what both environments' Releases screens show: one event in each.
    let kind = if release.kind == "rollback" {
        "rolled_back"
    } else {
        "published"
    };
    let events = NewEvent::in_both_environments(Topic::Release, kind, events::release_payload(&release));
    events::append(&tx, tenant, events).await?;
    db.commit(tx).await?;
    db.wake_live_feed();
    Ok(release.into())
}

/// A fingerprint of what a publish request asks for (not its idempotency key), so that a
/// retry can be told from another request reusing the key.
pub(crate) fn request_hash(request: &PublishRequest) -> String {
    let mut items = request.items.clone();
    items.sort();
    let value = json!({
        "items": items,
        "all": request.all,
        "fingerprint": request.fingerprint,
        "note": request.note,
        "rollbackTo": request.rollback_to,
    });
    hex::encode(Sha256::digest(state::canonical(&value).as_bytes()))
}

/// Locks the staging rows of the items being published until commit, then checks that each
/// still has the state the plan read. Under READ COMMITTED an edit can commit between the
/// plan and the writes; publishing it half-seen (or clearing a prompt draft saved after the
/// plan, unpublished) is never right: the publish fails with CONFLICT naming the items. Edits
/// that come after the lock wait for the publish and then see the new revisions.
async fn lock_and_recheck<C: ConnectionTrait>(tx: &C, tenant: &Tenant, items: &[PlannedItem]) -> Result<()> {
    let staging = tenant.in_env(Environment::Staging);
    let refs: Vec<&super::ItemRef> = items.iter().map(|item| &item.item).collect();
    kinds::lock_staging(tx, &staging, &refs).await?;
    let now = state::load(tx, &staging).await?;
    let moved: Vec<String> = items
        .iter()
        .filter(|item| {
            now.get(item.item.kind, &item.item.slug).map(state::canonical) != item.after.as_ref().map(state::canonical)
        })
        .map(|item| item.item.to_string())
        .collect();
    if moved.is_empty() {
        Ok(())
    } else {
        Err(Error::Conflict(format!(
            "{} changed in staging while this publish was being applied. Nothing was published; \
             review the changes again and retry",
            moved.join(", ")
        )))
    }
}
