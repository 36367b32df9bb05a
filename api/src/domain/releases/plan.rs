//! Planning a publish or a rollback: what it would change in production, and what those
//! changes need there. Nothing here writes (applying a plan is `publish.rs`).

use std::collections::{BTreeMap, HashMap, HashSet};

use entity::{Environment, release_items};
use sea_orm::{ColumnTrait, ConnectionTrait, QueryFilter, QueryOrder};
use serde_json::Value;
use uuid::Uuid;

use super::state::{self, EnvironmentState};
use super::{Change, ItemKind, ItemRef, PendingChange, compare, kinds, plan_fingerprint};
use crate::domain::validate;
use crate::error::{Error, Result};
use crate::scope::Tenant;

/// What to publish: some reviewed items, everything, or a rollback.
#[derive(Clone, Debug, Default)]
pub struct PublishRequest {
    /// Item ids with the revision the caller reviewed (revisions are ignored for rollbacks,
    /// where the ids select which items of the release to restore).
    pub items: Vec<(String, Option<String>)>,
    pub all: bool,
    /// With `all`: the plan's fingerprint the caller reviewed.
    pub fingerprint: Option<String>,
    pub note: String,
    pub idempotency_key: Option<String>,
    pub rollback_to: Option<Uuid>,
    /// An admin's rollback without an approved request, when approvals are required
    /// (recorded in the release; see [`crate::domain::approvals`]).
    pub emergency_override: bool,
}

/// One item a publish would change in production.
#[derive(Clone, Debug)]
pub struct PlannedItem {
    pub item: ItemRef,
    pub change: Change,
    /// The revision it was planned at (None for rollbacks).
    pub revision: Option<String>,
    /// Production's state now.
    pub before: Option<Value>,
    /// Production's state after the publish (for a prompt draft: the draft, which becomes the
    /// next published version).
    pub after: Option<Value>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DependencyStatus {
    /// Already in production (and staying).
    InProduction,
    /// Part of this publish.
    InThisPublish,
    /// Neither: the publish would fail.
    Missing,
}

/// `item` needs `requires` in production.
#[derive(Clone, Debug)]
pub struct Dependency {
    pub item: ItemRef,
    pub requires: ItemRef,
    pub status: DependencyStatus,
}

/// Exactly what a publish would do.
#[derive(Clone, Debug)]
pub struct Plan {
    pub items: Vec<PlannedItem>,
    pub dependencies: Vec<Dependency>,
    /// Broken dependencies, as sentences; a publish with any fails with BAD_USER_INPUT.
    pub missing: Vec<String>,
    pub warnings: Vec<String>,
    /// Fingerprint of all pending changes (what `all: true` quotes).
    pub fingerprint: String,
    pub rollback_of: Option<super::Release>,
}

pub(super) fn request_shape(request: &PublishRequest) -> Result<()> {
    let modes = [
        !request.items.is_empty() && request.rollback_to.is_none(),
        request.all,
        request.rollback_to.is_some(),
    ];
    if modes.iter().filter(|m| **m).count() != 1 {
        return Err(Error::bad_input(
            "say what to publish: `items` (each with the revision you reviewed), or `all: true` with the plan's \
             fingerprint, or `rollbackTo` a release id",
        ));
    }
    validate::text_size("note", &request.note, 2000)?;
    if let Some(key) = &request.idempotency_key {
        validate::short_text("idempotencyKey", key, 255)?;
    }
    Ok(())
}

/// The dry run: what `publish` would do with `request`; CONFLICT when reviewed revisions are
/// stale. `all: true` may omit the fingerprint here (the plan returns it).
pub async fn plan<C: ConnectionTrait>(db: &C, tenant: &Tenant, request: &PublishRequest) -> Result<Plan> {
    plan_for(db, tenant, request, false).await
}

pub(super) async fn plan_for<C: ConnectionTrait>(
    db: &C,
    tenant: &Tenant,
    request: &PublishRequest,
    publishing: bool,
) -> Result<Plan> {
    request_shape(request)?;
    let staging = state::load(db, &tenant.in_env(Environment::Staging)).await?;
    let production = state::load(db, &tenant.in_env(Environment::Production)).await?;
    let pending = compare(&staging, &production);
    let fingerprint = plan_fingerprint(&pending);
    let mut warnings = Vec::new();
    let mut rollback_of = None;

    let items: Vec<PlannedItem> = if let Some(release_id) = request.rollback_to {
        let release = super::get(db, tenant, release_id).await?;
        let mut release_items = tenant
            .select::<release_items::Entity>()
            .filter(release_items::Column::ReleaseId.eq(release.id))
            .order_by_asc(release_items::Column::ItemId)
            .all(db)
            .await?;
        if !request.items.is_empty() {
            let wanted: Vec<&str> = request.items.iter().map(|(id, _)| id.as_str()).collect();
            for id in &wanted {
                if !release_items.iter().any(|item| item.item_id == *id) {
                    return Err(Error::bad_input(format!(
                        "release {} has no item {id:?}",
                        release.number
                    )));
                }
            }
            release_items.retain(|item| wanted.contains(&item.item_id.as_str()));
        }
        let mut planned = Vec::new();
        for item in release_items {
            let item_ref: ItemRef = item.item_id.parse()?;
            let current = production.get(item_ref.kind, &item_ref.slug).cloned();
            match Change::between(current.as_ref(), item.before.as_ref()) {
                Some(change) => planned.push(PlannedItem {
                    item: item_ref,
                    change,
                    revision: None,
                    before: current,
                    after: item.before,
                }),
                None => warnings.push(format!(
                    "{item_ref} is already as it was before release {}",
                    release.number
                )),
            }
        }
        if planned.is_empty() {
            return Err(Error::bad_input(format!(
                "nothing to roll back: production already matches the state before release {}",
                release.number
            )));
        }
        rollback_of = Some(release);
        planned
    } else {
        let selected: Vec<&PendingChange> = if request.all {
            match &request.fingerprint {
                None if publishing => {
                    return Err(Error::bad_input(
                        "`all: true` needs `fingerprint`: the one publishPlan returned",
                    ));
                }
                None => pending.iter().collect(),
                Some(reviewed) if *reviewed != fingerprint => {
                    return Err(Error::Conflict(format!(
                        "the pending changes moved since you reviewed them (fingerprint {reviewed}, now {fingerprint}); \
                         review them again and retry"
                    )));
                }
                Some(_) => pending.iter().collect(),
            }
        } else {
            let mut seen = HashSet::new();
            let mut stale = Vec::new();
            let mut selected = Vec::new();
            for (id, revision) in &request.items {
                let item: ItemRef = id.parse()?;
                if !seen.insert(item.clone()) {
                    return Err(Error::bad_input(format!("{id} is listed twice")));
                }
                let revision = revision
                    .as_ref()
                    .ok_or_else(|| Error::bad_input(format!("{id} needs the `revision` you reviewed")))?;
                match pending.iter().find(|p| p.item == item) {
                    Some(change) if change.revision == *revision => selected.push(change),
                    Some(change) => {
                        stale.push(format!("{id} (you reviewed {revision}, it is now {})", change.revision))
                    }
                    None if staging.get(item.kind, &item.slug).is_none()
                        && production.get(item.kind, &item.slug).is_none() =>
                    {
                        return Err(Error::not_found(format!("{id} in staging or production")));
                    }
                    None => stale.push(format!("{id} (it no longer differs from production)")),
                }
            }
            if !stale.is_empty() {
                return Err(Error::Conflict(format!(
                    "these items changed since you reviewed them: {}. Nothing was published; review them again and retry",
                    stale.join(", ")
                )));
            }
            selected
        };
        if selected.is_empty() {
            return Err(Error::bad_input(
                "nothing to publish: staging and production are the same",
            ));
        }
        selected
            .into_iter()
            .map(|change| PlannedItem {
                item: change.item.clone(),
                change: change.change,
                revision: Some(change.revision.clone()),
                before: change.production.clone(),
                after: change.staging.clone(),
            })
            .collect()
    };

    let (dependencies, missing) = check_dependencies(db, tenant, &production, &items).await?;
    // Dependencies that are in production but have staging changes left out of this publish.
    let planned: HashSet<&ItemRef> = items.iter().map(|i| &i.item).collect();
    for dependency in &dependencies {
        if dependency.status == DependencyStatus::InProduction
            && !planned.contains(&dependency.requires)
            && pending.iter().any(|p| p.item == dependency.requires)
        {
            warnings.push(format!(
                "{} uses {}, which has staging changes not in this publish",
                dependency.item, dependency.requires
            ));
        }
    }
    Ok(Plan {
        items,
        dependencies,
        missing,
        warnings,
        fingerprint,
        rollback_of,
    })
}

/// Checks that, after the plan, every agent's prompts and connectors and every trigger's agent
/// exist in production. Only dependencies touching a planned item are reported.
async fn check_dependencies<C: ConnectionTrait>(
    db: &C,
    tenant: &Tenant,
    production: &EnvironmentState,
    items: &[PlannedItem],
) -> Result<(Vec<Dependency>, Vec<String>)> {
    let mut after: BTreeMap<(ItemKind, String), Value> = production.items.clone();
    for item in items {
        let key = (item.item.kind, item.item.slug.clone());
        match &item.after {
            Some(value) => after.insert(key, value.clone()),
            None => after.remove(&key),
        };
    }
    let planned: HashMap<&ItemRef, &PlannedItem> = items.iter().map(|i| (&i.item, i)).collect();
    let edges = kinds::requires(db, tenant, &after).await?;
    let mut dependencies = Vec::new();
    let mut missing = Vec::new();
    for (dependent, requires) in edges {
        let dependent_planned = planned.contains_key(&dependent);
        let requires_planned = planned.get(&requires);
        if !dependent_planned && requires_planned.is_none() {
            continue;
        }
        let exists_after = after.contains_key(&(requires.kind, requires.slug.clone()));
        let status = match (exists_after, requires_planned) {
            (false, _) => DependencyStatus::Missing,
            (true, Some(_)) => DependencyStatus::InThisPublish,
            (true, None) => DependencyStatus::InProduction,
        };
        if status == DependencyStatus::Missing {
            missing.push(if requires_planned.is_some_and(|p| p.after.is_none()) {
                format!("{dependent} needs {requires}, which this publish removes from production")
            } else {
                format!("{dependent} needs {requires}, which is neither in production nor in this publish")
            });
        }
        if dependent_planned {
            dependencies.push(Dependency {
                item: dependent,
                requires,
                status,
            });
        }
    }
    Ok((dependencies, missing))
}
