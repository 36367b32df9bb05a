//! Planning and applying a publish or a rollback.

use std::collections::{BTreeMap, HashMap, HashSet};

use entity::{
    Environment, agent_commits, agent_deployments, agents, connector_instances, connector_resources, prompt_versions,
    prompts, release_items, releases, triggers,
};
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::state::{self, EnvironmentState};
use super::{Change, ItemKind, ItemRef, PendingChange, compare, plan_fingerprint};
use crate::auth::Role;
use crate::db::{Db, lock_for_update};
use crate::domain::approvals::{self, Authorization};
use crate::domain::events::{self, NewEvent, Topic};
use crate::domain::{agents as agents_domain, new_id, now, revision, validate};
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
    pub rollback_of: Option<releases::Model>,
}

fn request_shape(request: &PublishRequest) -> Result<()> {
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

async fn plan_for<C: ConnectionTrait>(
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
    let commit_ids: Vec<Uuid> = after
        .iter()
        .filter(|((kind, _), _)| *kind == ItemKind::Agent)
        .filter_map(|(_, value)| super::commit_of(Some(value)))
        .collect();
    let manifests: HashMap<Uuid, Value> = tenant
        .select::<agent_commits::Entity>()
        .filter(agent_commits::Column::Id.is_in(commit_ids))
        .all(db)
        .await?
        .into_iter()
        .map(|c| (c.id, c.manifest))
        .collect();
    let mut edges: Vec<(ItemRef, ItemRef)> = Vec::new();
    for ((kind, slug), value) in &after {
        let dependent = ItemRef {
            kind: *kind,
            slug: slug.clone(),
        };
        match kind {
            ItemKind::Agent => {
                let manifest = super::commit_of(Some(value)).and_then(|id| manifests.get(&id));
                for prompt in crate::domain::string_array(manifest.and_then(|m| m.get("prompts"))) {
                    edges.push((
                        dependent.clone(),
                        ItemRef {
                            kind: ItemKind::Prompt,
                            slug: prompt,
                        },
                    ));
                }
                for connector in crate::domain::string_array(manifest.and_then(|m| m.get("connectors"))) {
                    edges.push((
                        dependent.clone(),
                        ItemRef {
                            kind: ItemKind::Connector,
                            slug: connector,
                        },
                    ));
                }
            }
            ItemKind::Trigger => {
                if let Some(agent) = value.get("agent").and_then(Value::as_str) {
                    edges.push((
                        dependent.clone(),
                        ItemRef {
                            kind: ItemKind::Agent,
                            slug: agent.to_string(),
                        },
                    ));
                }
            }
            ItemKind::Prompt | ItemKind::Connector => {}
        }
    }
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

/// Publishes (or rolls back) atomically: one transaction, one release record. With approvals
/// required, only what an approved release request names (see [`approvals::authorize_publish`]).
pub async fn publish(
    db: &Db,
    tenant: &Tenant,
    actor: &str,
    role: Role,
    request: PublishRequest,
) -> Result<releases::Model> {
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
        return Ok(existing);
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
    .insert(&tx)
    .await?;
    if let Authorization::Approved(request) = authorization {
        approvals::mark_published(&tx, tenant, request, &release).await?;
    }
    let mut rows = Vec::new();
    for item in &plan.items {
        let after = apply(&tx, tenant, actor, &item.item, item.after.as_ref(), release.id).await?;
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
    release_items::Entity::insert_many(rows).exec(&tx).await?;
    // A release changes what both environments' Releases screens show: one event in each.
    let kind = if release.kind == "rollback" {
        "rolled_back"
    } else {
        "published"
    };
    let events: Vec<NewEvent> = [Environment::Staging, Environment::Production]
        .into_iter()
        .map(|environment| NewEvent {
            environment,
            topic: Topic::Release,
            kind,
            agent_slug: None,
            execution_id: None,
            session_id: None,
            payload: events::release_payload(&release),
        })
        .collect();
    events::append(&tx, tenant, events).await?;
    tx.commit().await?;
    db.wake_live_feed();
    Ok(release)
}

/// A fingerprint of what a publish request asks for (not its idempotency key), so that a
/// retry can be told from another request reusing the key.
fn request_hash(request: &PublishRequest) -> String {
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
    let slugs = |kind: ItemKind| -> Vec<String> {
        items
            .iter()
            .filter(|i| i.item.kind == kind)
            .map(|i| i.item.slug.clone())
            .collect()
    };
    let agent_slugs = slugs(ItemKind::Agent);
    if !agent_slugs.is_empty() {
        let agent_ids: Vec<Uuid> = tenant
            .select::<agents::Entity>()
            .filter(agents::Column::Slug.is_in(agent_slugs))
            .all(tx)
            .await?
            .into_iter()
            .map(|a| a.id)
            .collect();
        staging
            .select::<agent_deployments::Entity>()
            .filter(agent_deployments::Column::AgentId.is_in(agent_ids))
            .lock_exclusive()
            .all(tx)
            .await?;
    }
    staging
        .select::<prompts::Entity>()
        .filter(prompts::Column::Slug.is_in(slugs(ItemKind::Prompt)))
        .lock_exclusive()
        .all(tx)
        .await?;
    staging
        .select::<connector_instances::Entity>()
        .filter(connector_instances::Column::Slug.is_in(slugs(ItemKind::Connector)))
        .lock_exclusive()
        .all(tx)
        .await?;
    staging
        .select::<triggers::Entity>()
        .filter(triggers::Column::Name.is_in(slugs(ItemKind::Trigger)))
        .lock_exclusive()
        .all(tx)
        .await?;
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

fn uuid_field(value: &Value, field: &str) -> Result<Uuid> {
    value
        .get(field)
        .and_then(Value::as_str)
        .and_then(|id| Uuid::parse_str(id).ok())
        .ok_or_else(|| Error::internal(anyhow::anyhow!("state without a valid `{field}`: {value}")))
}

/// Makes production's `item` equal to `target` (None: absent). Returns the state written.
async fn apply<C: ConnectionTrait>(
    db: &C,
    tenant: &Tenant,
    actor: &str,
    item: &ItemRef,
    target: Option<&Value>,
    release_id: Uuid,
) -> Result<Option<Value>> {
    let production = tenant.in_env(Environment::Production);
    let slug = item.slug.as_str();
    match (item.kind, target) {
        (ItemKind::Agent, Some(state)) => {
            let agent = tenant
                .select::<agents::Entity>()
                .filter(agents::Column::Slug.eq(slug))
                .one(db)
                .await?
                .ok_or_else(|| Error::not_found(format!("agent {slug:?}")))?;
            let deployment =
                agents_domain::set_deployment(db, &production, agent.id, uuid_field(state, "commit")?, actor).await?;
            let mut active: agent_deployments::ActiveModel = deployment.into();
            active.release_id = Set(Some(release_id));
            active.update(db).await?;
            Ok(Some(state.clone()))
        }
        (ItemKind::Agent, None) => {
            if let Some(agent) = tenant
                .select::<agents::Entity>()
                .filter(agents::Column::Slug.eq(slug))
                .one(db)
                .await?
            {
                agent_deployments::Entity::delete_many()
                    .filter(agent_deployments::Column::AgentId.eq(agent.id))
                    .filter(agent_deployments::Column::Environment.eq(Environment::Production))
                    .exec(db)
                    .await?;
            }
            Ok(None)
        }
        (ItemKind::Prompt, Some(state)) => {
            let version = match state.get("draft") {
                Some(draft) => publish_draft(db, tenant, actor, slug, draft).await?,
                None => tenant
                    .select::<prompt_versions::Entity>()
                    .filter(prompt_versions::Column::Id.eq(uuid_field(state, "version")?))
                    .one(db)
                    .await?
                    .ok_or_else(|| Error::not_found(format!("version of prompt {slug:?}")))?,
            };
            let time = now();
            match production
                .select::<prompts::Entity>()
                .filter(prompts::Column::Slug.eq(slug))
                .one(db)
                .await?
            {
                Some(row) => {
                    revision::update::<prompts::Entity, _, _>(db, &item.to_string(), row.id, None, |active| {
                        active.published_version_id = Set(Some(version.id));
                        active.updated_by = Set(actor.to_string());
                        active.updated_at = Set(time);
                        active.release_id = Set(Some(release_id));
                    })
                    .await?;
                }
                None => {
                    prompts::ActiveModel {
                        id: Set(new_id()),
                        tenant_id: Set(tenant.id().to_string()),
                        environment: Set(Environment::Production),
                        slug: Set(slug.to_string()),
                        published_version_id: Set(Some(version.id)),
                        draft_template: Set(None),
                        draft_variables: Set(None),
                        draft_model_settings: Set(None),
                        revision: Set(1),
                        updated_by: Set(actor.to_string()),
                        created_at: Set(time),
                        updated_at: Set(time),
                        release_id: Set(Some(release_id)),
                    }
                    .insert(db)
                    .await?;
                }
            }
            Ok(Some(json!({
                "version": version.id.to_string(),
                "number": version.version,
                "template": version.template,
                "variables": version.variables,
                "modelSettings": version.model_settings,
            })))
        }
        (ItemKind::Prompt, None) => {
            prompts::Entity::delete_many()
                .filter(prompts::Column::TenantId.eq(tenant.id()))
                .filter(prompts::Column::Environment.eq(Environment::Production))
                .filter(prompts::Column::Slug.eq(slug))
                .exec(db)
                .await?;
            Ok(None)
        }
        (ItemKind::Connector, target) => {
            let existing = production
                .select::<connector_instances::Entity>()
                .filter(connector_instances::Column::Slug.eq(slug))
                .one(db)
                .await?;
            if let Some(row) = &existing {
                connector_resources::Entity::delete_many()
                    .filter(connector_resources::Column::InstanceId.eq(row.id))
                    .exec(db)
                    .await?;
            }
            let Some(state) = target else {
                if let Some(row) = existing {
                    connector_instances::Entity::delete_by_id(row.id).exec(db).await?;
                }
                return Ok(None);
            };
            let time = now();
            let (kind, config, credentials) = (
                state
                    .get("kind")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                state.get("config").cloned().unwrap_or(json!({})),
                state.get("credentials").cloned().unwrap_or(json!([])),
            );
            let instance = match existing {
                Some(row) => {
                    revision::update::<connector_instances::Entity, _, _>(
                        db,
                        &item.to_string(),
                        row.id,
                        None,
                        |active| {
                            active.kind = Set(kind);
                            active.config = Set(config);
                            active.credential_refs = Set(credentials);
                            active.updated_at = Set(time);
                            active.release_id = Set(Some(release_id));
                        },
                    )
                    .await?
                }
                None => {
                    connector_instances::ActiveModel {
                        id: Set(new_id()),
                        tenant_id: Set(tenant.id().to_string()),
                        environment: Set(Environment::Production),
                        slug: Set(slug.to_string()),
                        kind: Set(kind),
                        config: Set(config),
                        credential_refs: Set(credentials),
                        revision: Set(1),
                        created_at: Set(time),
                        updated_at: Set(time),
                        release_id: Set(Some(release_id)),
                    }
                    .insert(db)
                    .await?
                }
            };
            let resources: Vec<connector_resources::ActiveModel> = state
                .get("resources")
                .and_then(Value::as_object)
                .map(|map| {
                    map.iter()
                        .map(|(key, config)| connector_resources::ActiveModel {
                            id: Set(new_id()),
                            tenant_id: Set(tenant.id().to_string()),
                            environment: Set(Environment::Production),
                            instance_id: Set(instance.id),
                            key: Set(key.clone()),
                            config: Set(config.clone()),
                            revision: Set(1),
                            created_at: Set(time),
                            updated_at: Set(time),
                        })
                        .collect()
                })
                .unwrap_or_default();
            if !resources.is_empty() {
                connector_resources::Entity::insert_many(resources).exec(db).await?;
            }
            Ok(Some(state.clone()))
        }
        (ItemKind::Trigger, target) => {
            let existing = production
                .select::<triggers::Entity>()
                .filter(triggers::Column::Name.eq(slug))
                .one(db)
                .await?;
            let Some(state) = target else {
                if let Some(row) = existing {
                    triggers::Entity::delete_by_id(row.id).exec(db).await?;
                }
                return Ok(None);
            };
            // The webhook secret travels sealed from the staging trigger whose fingerprint the
            // state names (never through the state itself); otherwise production keeps its own.
            let wanted = state.get("secret").and_then(Value::as_str);
            let staging_row = tenant
                .in_env(Environment::Staging)
                .select::<triggers::Entity>()
                .filter(triggers::Column::Name.eq(slug))
                .one(db)
                .await?
                .filter(|row| {
                    wanted.is_some() && crate::domain::triggers::secret_fingerprint(row).as_deref() == wanted
                });
            let (ciphertext, nonce) = match (&staging_row, &existing) {
                (Some(row), _) => (row.secret_ciphertext.clone(), row.secret_nonce.clone()),
                (None, Some(row)) => (row.secret_ciphertext.clone(), row.secret_nonce.clone()),
                (None, None) => (None, None),
            };
            let time = now();
            let text = |field: &str| state.get(field).and_then(Value::as_str).map(str::to_string);
            let enabled = state.get("enabled").and_then(Value::as_bool).unwrap_or(true);
            match existing {
                Some(row) => {
                    revision::update::<triggers::Entity, _, _>(db, &item.to_string(), row.id, None, |active| {
                        active.agent_slug = Set(text("agent").unwrap_or_default());
                        active.kind = Set(text("kind").unwrap_or_default());
                        active.schedule = Set(text("schedule"));
                        active.config = Set(state.get("config").cloned().unwrap_or(json!({})));
                        active.enabled = Set(enabled);
                        active.updated_at = Set(time);
                        active.release_id = Set(Some(release_id));
                        active.secret_ciphertext = Set(ciphertext);
                        active.secret_nonce = Set(nonce);
                    })
                    .await?;
                }
                None => {
                    // A separate production trigger, bound to production.
                    triggers::ActiveModel {
                        id: Set(new_id()),
                        tenant_id: Set(tenant.id().to_string()),
                        environment: Set(Environment::Production),
                        name: Set(slug.to_string()),
                        agent_slug: Set(text("agent").unwrap_or_default()),
                        kind: Set(text("kind").unwrap_or_default()),
                        schedule: Set(text("schedule")),
                        config: Set(state.get("config").cloned().unwrap_or(json!({}))),
                        enabled: Set(enabled),
                        revision: Set(1),
                        created_at: Set(time),
                        updated_at: Set(time),
                        release_id: Set(Some(release_id)),
                        secret_ciphertext: Set(ciphertext),
                        secret_nonce: Set(nonce),
                    }
                    .insert(db)
                    .await?;
                }
            }
            Ok(Some(state.clone()))
        }
    }
}

/// Turns the staging draft into the next immutable version and clears the draft.
async fn publish_draft<C: ConnectionTrait>(
    db: &C,
    tenant: &Tenant,
    actor: &str,
    slug: &str,
    draft: &Value,
) -> Result<prompt_versions::Model> {
    let latest = crate::domain::prompts::latest_version(db, tenant, slug).await?;
    let version = prompt_versions::ActiveModel {
        id: Set(new_id()),
        tenant_id: Set(tenant.id().to_string()),
        slug: Set(slug.to_string()),
        version: Set(latest.map_or(1, |v| v.version + 1)),
        template: Set(draft
            .get("template")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()),
        variables: Set(draft.get("variables").cloned().unwrap_or(json!([]))),
        model_settings: Set(draft.get("modelSettings").cloned().unwrap_or(json!({}))),
        created_by: Set(actor.to_string()),
        created_at: Set(now()),
    }
    .insert(db)
    .await?;
    let staging = tenant.in_env(Environment::Staging);
    if let Some(row) = staging
        .select::<prompts::Entity>()
        .filter(prompts::Column::Slug.eq(slug))
        .one(db)
        .await?
    {
        revision::update::<prompts::Entity, _, _>(db, &format!("prompt {slug:?}"), row.id, None, |active| {
            active.draft_template = Set(None);
            active.draft_variables = Set(None);
            active.draft_model_settings = Set(None);
            active.updated_at = Set(now());
        })
        .await?;
    }
    Ok(version)
}
