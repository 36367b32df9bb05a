//! The publish plan (`publishPlan`) and the input that `publish` and `publishPlan` share.

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};

use super::super::ids::{self, NodeType};
use super::super::scalars::Json;
use super::super::{Environment, GqlResult};
use super::{ChangeType, IdempotencyKey, ItemKind, Release};
use crate::domain::releases as domain;
use crate::error::Error;

/// Where a dependency of a planned item comes from.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "crate::domain::releases::DependencyStatus")]
pub enum DependencyStatus {
    /// Production already has it.
    InProduction,
    /// This publish brings it.
    InThisPublish,
    /// Neither: the publish would fail. Add the item to the publish or publish it first.
    Missing,
}

/// An item a publish would change, with the plan it belongs to (`occurrence`).
pub struct PlannedItem(domain::PlannedItem, String);

/// An item a publish would change. Its id is unique to the plan (it includes the plan's
/// fingerprint, or the release a rollback restores).
#[Object]
impl PlannedItem {
    /// Id of this item in this plan (not refetchable with `node`: plans are not stored).
    pub(crate) async fn id(&self) -> ID {
        ids::encode_shared(NodeType::PlannedItem, format!("{}@{}", self.0.item, self.1))
    }
    /// The stable item key (`agent:<slug>`, ...).
    async fn key(&self) -> String {
        self.0.item.to_string()
    }
    /// What kind of record the item is.
    async fn kind(&self) -> ItemKind {
        self.0.item.kind.into()
    }
    /// Added, modified or removed in production.
    async fn change(&self) -> ChangeType {
        self.0.change.into()
    }
    /// The item fingerprint planned (null for rollbacks).
    async fn fingerprint(&self) -> Option<&str> {
        self.0.revision.as_deref()
    }
    /// Production's state now.
    async fn before(&self) -> Option<Json> {
        self.0.before.clone().map(Json)
    }
    /// Production's state after publishing.
    async fn after(&self) -> Option<Json> {
        self.0.after.clone().map(Json)
    }
}

/// `item` needs `requires` in production.
#[derive(SimpleObject)]
pub struct PlanDependency {
    /// Key of the planned item (`agent:<slug>`, ...).
    item: String,
    /// Key of what it needs (`prompt:<slug>` or `connector:<slug>`).
    requires: String,
    /// Whether production has it, this publish brings it, or it is missing.
    status: DependencyStatus,
}

/// Exactly what `publish` would do with the same input; nothing is changed.
pub struct PublishPlan(pub(super) domain::Plan);

/// Exactly what `publish` would do with the same input; nothing is changed.
#[Object]
impl PublishPlan {
    /// Fingerprint of all pending changes: pass it with `all: true`.
    async fn fingerprint(&self) -> &str {
        &self.0.fingerprint
    }
    /// The items the publish would change (not paged: the plan is published whole; bounded by
    /// the per-tenant record caps, like `pendingChanges`).
    async fn items(&self) -> Vec<PlannedItem> {
        let occurrence = match &self.0.rollback_of {
            Some(release) => format!("rollback:{}", release.id),
            None => self.0.fingerprint.clone(),
        };
        self.0
            .items
            .iter()
            .cloned()
            .map(|item| PlannedItem(item, occurrence.clone()))
            .collect()
    }
    /// What the planned items need in production, and where it comes from.
    async fn dependencies(&self) -> Vec<PlanDependency> {
        self.0
            .dependencies
            .iter()
            .map(|d| PlanDependency {
                item: d.item.to_string(),
                requires: d.requires.to_string(),
                status: d.status.into(),
            })
            .collect()
    }
    /// Missing dependencies; `publish` fails with BAD_USER_INPUT while any remain.
    async fn missing(&self) -> &[String] {
        &self.0.missing
    }
    /// Things to review that do not block the publish.
    async fn warnings(&self) -> &[String] {
        &self.0.warnings
    }
    /// True when `missing` is empty.
    async fn can_publish(&self) -> bool {
        self.0.missing.is_empty()
    }
    /// For a rollback plan: the release being rolled back.
    async fn rollback_of(&self) -> Option<Release> {
        self.0.rollback_of.clone().map(Release)
    }
}

/// One item to publish.
#[derive(InputObject)]
pub struct PublishItemInput {
    /// The item key from `pendingChanges` (`agent:<slug>`, ...).
    key: String,
    /// The `fingerprint` you reviewed. Required, except to select items of a rollback.
    fingerprint: Option<String>,
}

/// What to publish (or roll back) and why.
#[derive(InputObject)]
pub struct PublishInput {
    /// The items to publish, each with the revision you reviewed.
    items: Option<Vec<PublishItemInput>>,
    /// Publish everything pending; requires `fingerprint`.
    #[graphql(default)]
    all: bool,
    /// With `all`: the fingerprint from `publishPlan`.
    fingerprint: Option<String>,
    /// Why: stored with the release.
    note: Option<String>,
    /// A retried publish with the same key returns the first result (the `Idempotency-Key`
    /// header works too).
    idempotency_key: Option<String>,
    /// Restore production to the state before this release (all of its items, or those listed
    /// in `items`).
    rollback_to: Option<ID>,
    /// Admins only, rollbacks only: roll back without an approved release request when the
    /// tenant requires approvals (an emergency). Recorded in the release.
    #[graphql(default)]
    emergency_override: bool,
    /// Publish at this time instead of now (in the future, within a year): `publish` then
    /// returns `scheduledRelease`, a release of exactly these items and fingerprints that
    /// runs once at `at`, and fails (publishing nothing) if any of them changed in staging
    /// since. Not with `rollbackTo`.
    pub(super) at: Option<chrono::DateTime<chrono::Utc>>,
}

pub(super) fn request(
    ctx: &Context<'_>,
    environment: Environment,
    input: PublishInput,
) -> GqlResult<domain::PublishRequest> {
    if environment != Environment::Production {
        return Err(Error::bad_input("publishing targets PRODUCTION: call it with `environment: PRODUCTION`").into());
    }
    let rollback_to = match &input.rollback_to {
        Some(id) => Some(
            ids::uuid_of(id, NodeType::Release, environment.into())
                .ok_or_else(|| Error::not_found(format!("release {:?}", id.as_str())))?,
        ),
        None => None,
    };
    let header = ctx.data_opt::<IdempotencyKey>().map(|k| k.0.clone());
    Ok(domain::PublishRequest {
        items: input
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|i| (i.key, i.fingerprint))
            .collect(),
        all: input.all,
        fingerprint: input.fingerprint,
        note: input.note.unwrap_or_default(),
        idempotency_key: input.idempotency_key.or(header),
        rollback_to,
        emergency_override: input.emergency_override,
    })
}
