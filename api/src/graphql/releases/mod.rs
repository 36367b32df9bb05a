//! Releases in GraphQL, by responsibility: the staging-to-production diff types
//! ([`diff`]), the publish plan and its input ([`plan`]), and here the release records with
//! the queries and the `publish` mutation.

mod diff;
mod plan;

use async_graphql::{Context, Enum, ID, Object, SimpleObject};

pub use self::diff::PendingChange;
use self::plan::{PublishInput, PublishPlan, request};
use super::context::{actor, loader, services, tenant};
use super::governance::ScheduledRelease;
use super::ids::{self, NodeType};
use super::loaders::{ReleaseItemsKey, ReleaseKey};
use super::pagination::{PageArgs, connection_type, parts};
use super::scalars::{DateTime, Json};
use super::{Environment, GqlResult};
use crate::domain::releases as domain;
use crate::domain::scheduled_releases as schedules;
use crate::error::Optional;

/// The `Idempotency-Key` HTTP header of a request, if any.
#[derive(Clone, Debug)]
pub struct IdempotencyKey(pub String);

/// What kind of record a release item is.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "crate::domain::releases::ItemKind")]
pub enum ItemKind {
    /// An agent's deployment (its commit).
    Agent,
    /// A prompt's published text and settings.
    Prompt,
    /// A connector instance with its resources.
    Connector,
    /// A trigger.
    Trigger,
}

/// How an item or a file differs between production and staging.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "crate::domain::releases::Change")]
pub enum ChangeType {
    /// In staging, not in production.
    Added,
    /// In both, different.
    Modified,
    /// In production, removed from staging.
    Removed,
}

/// What a release did.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseKind {
    /// Published staging changes.
    Publish,
    /// Restored production to the state before an earlier release.
    Rollback,
}

/// A publish or a rollback.
pub struct Release(pub domain::Release);

connection_type!(ReleaseConnection, ReleaseEdge, Release, "releases");

/// A publish or a rollback of production: an immutable record of what changed.
#[Object]
impl Release {
    /// Global id of the release (releases belong to the tenant: one id).
    pub(crate) async fn id(&self) -> ID {
        ids::encode_shared(NodeType::Release, self.0.id)
    }
    /// The approved release request this release carried out (when approvals are required).
    async fn approval_request(&self, ctx: &Context<'_>) -> GqlResult<Option<super::governance::ReleaseRequest>> {
        match self.0.approval_request_id {
            Some(id) => super::governance::load_request(ctx, id).await,
            None => Ok(None),
        }
    }
    /// Whether an admin rolled back without an approved request (an emergency override).
    async fn emergency_override(&self) -> bool {
        self.0.emergency_override
    }
    /// 1, 2, 3... per tenant.
    async fn number(&self) -> i64 {
        self.0.number
    }
    /// A publish or a rollback.
    async fn kind(&self) -> ReleaseKind {
        if self.0.kind == "rollback" {
            ReleaseKind::Rollback
        } else {
            ReleaseKind::Publish
        }
    }
    /// The note given to `publish` (may be empty).
    async fn note(&self) -> &str {
        &self.0.note
    }
    /// Subject of the token that published it.
    async fn created_by(&self) -> &str {
        &self.0.created_by
    }
    /// When it was published.
    async fn created_at(&self) -> DateTime {
        self.0.created_at.into()
    }
    /// The idempotency key it was published with, if any.
    async fn idempotency_key(&self) -> Option<&str> {
        self.0.idempotency_key.as_deref()
    }
    /// For a rollback: the release it rolled back.
    async fn rolls_back(&self, ctx: &Context<'_>) -> GqlResult<Option<Release>> {
        let Some(id) = self.0.rolls_back_id else {
            return Ok(None);
        };
        Ok(loader(ctx)?.load_one(ReleaseKey(id)).await?.map(Release))
    }
    /// Each item with production's state before and after. Not paged (a release is one
    /// whole); at most one item per record, bounded by the per-tenant record caps
    /// (`RUNFLOW_MAX_RECORDS_PER_KIND`, `RUNFLOW_MAX_TRIGGERS`).
    async fn items(&self, ctx: &Context<'_>) -> GqlResult<Vec<ReleaseItem>> {
        let items = loader(ctx)?
            .load_one(ReleaseItemsKey(self.0.id))
            .await?
            .unwrap_or_default();
        Ok(items.into_iter().map(ReleaseItem).collect())
    }
}

/// One item of a release.
pub struct ReleaseItem(pub domain::ReleaseItem);

/// One item of a release, with production's state before and after it. Its id is unique to
/// the release: the same agent in two releases is two objects.
#[Object]
impl ReleaseItem {
    /// Global id of this item of this release.
    pub(crate) async fn id(&self) -> ID {
        ids::encode_shared(NodeType::ReleaseItem, self.0.id)
    }
    /// The stable item key (`agent:<slug>`, ...); the same in every release.
    async fn key(&self) -> &str {
        &self.0.key
    }
    /// What kind of record the item is.
    async fn kind(&self) -> ItemKind {
        self.0.kind.into()
    }
    /// Added, modified or removed in production.
    async fn change(&self) -> ChangeType {
        self.0.change.into()
    }
    /// Production's state before (null: absent).
    async fn before(&self) -> Option<Json> {
        self.0.before.clone().map(Json)
    }
    /// Production's state after (null: absent).
    async fn after(&self) -> Option<Json> {
        self.0.after.clone().map(Json)
    }
}

#[derive(Default)]
pub struct ReleaseQuery;

#[Object]
impl ReleaseQuery {
    /// Everything that differs between staging and production (the same answer whichever
    /// environment is passed), by kind then slug. Not paged (its fingerprint covers the whole
    /// list); at most one entry per record, bounded by the per-tenant record caps
    /// (`RUNFLOW_MAX_RECORDS_PER_KIND`, `RUNFLOW_MAX_TRIGGERS`).
    async fn pending_changes(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Either environment; the answer is the same.")] environment: Environment,
    ) -> GqlResult<Vec<PendingChange>> {
        let _ = environment;
        let changes = domain::pending_changes(&services(ctx).db.conn, &tenant(ctx)?).await?;
        Ok(changes.into_iter().map(PendingChange).collect())
    }

    /// The dry run of `publish`: what it would do, and what it would need. Changes nothing.
    async fn publish_plan(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Must be PRODUCTION, like `publish`.")] environment: Environment,
        #[graphql(desc = "The same input `publish` would get.")] input: PublishInput,
    ) -> GqlResult<PublishPlan> {
        let request = request(ctx, environment, input)?;
        Ok(PublishPlan(
            domain::plan(&services(ctx).db.conn, &tenant(ctx)?, &request).await?,
        ))
    }

    /// Releases (publishes and rollbacks), newest first.
    async fn releases(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Either environment; the answer is the same.")] environment: Environment,
        #[graphql(desc = "Page size from the start (default 20, at most 100).")] first: Option<i32>,
        #[graphql(desc = "Return the releases after this cursor.")] after: Option<String>,
        #[graphql(desc = "Page size from the end (at most 100).")] last: Option<i32>,
        #[graphql(desc = "Return the releases before this cursor.")] before: Option<String>,
    ) -> GqlResult<ReleaseConnection> {
        let _ = environment;
        let page = PageArgs::new(first, after, last, before).request(ctx)?;
        let releases = domain::list(&services(ctx).db, &tenant(ctx)?, &page).await?;
        Ok(ReleaseConnection(parts(releases, |r| r.id.to_string(), Release)))
    }

    /// One release; null when it does not exist.
    async fn release(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Either environment; releases are the tenant's.")] environment: Environment,
        #[graphql(desc = "The release's global id.")] id: ID,
    ) -> GqlResult<Option<Release>> {
        let Some(id) = ids::uuid_of(&id, NodeType::Release, environment.into()) else {
            return Ok(None);
        };
        Ok(domain::get(&services(ctx).db.conn, &tenant(ctx)?, id)
            .await
            .optional()?
            .map(Release))
    }
}

#[derive(Default)]
pub struct ReleaseMutation;

#[Object]
impl ReleaseMutation {
    /// Publishes staging changes to production, atomically: every item or none. The only
    /// mutation that accepts PRODUCTION (and the only way production changes). Also rolls back
    /// (`rollbackTo`). Needs the publisher role. Without `input.at` it publishes now and
    /// returns `release`; with `at` it schedules exactly these items and fingerprints for
    /// that time and returns `scheduledRelease` (list, reschedule or cancel it with
    /// `scheduledReleases`, `rescheduleRelease`, `cancelScheduledRelease`).
    async fn publish(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Must be PRODUCTION.")] environment: Environment,
        #[graphql(desc = "What to publish or roll back, and when.")] input: PublishInput,
    ) -> GqlResult<PublishPayload> {
        let at = input.at;
        let request = request(ctx, environment, input)?;
        let actor = actor(ctx)?;
        let (db, tenant) = (&services(ctx).db, tenant(ctx)?);
        Ok(match at {
            None => PublishPayload {
                release: Some(Release(
                    domain::publish(db, &tenant, actor.subject(), actor.role(), request).await?,
                )),
                scheduled_release: None,
            },
            Some(at) => PublishPayload {
                release: None,
                scheduled_release: Some(ScheduledRelease(
                    schedules::schedule(db, &tenant, actor.subject(), actor.role(), request, at).await?,
                )),
            },
        })
    }
}

/// What `publish` did: published now (`release`) or scheduled for `input.at`
/// (`scheduledRelease`); exactly one of the two is set.
#[derive(SimpleObject)]
pub struct PublishPayload {
    /// The release made now (null when `at` scheduled it).
    release: Option<Release>,
    /// The scheduled release (with `at`; null when it published now). Its `release` is set
    /// once it has run.
    scheduled_release: Option<ScheduledRelease>,
}

/// The release that set a production record (null in staging).
pub async fn release_of(ctx: &Context<'_>, release_id: Option<uuid::Uuid>) -> GqlResult<Option<Release>> {
    let Some(id) = release_id else { return Ok(None) };
    Ok(loader(ctx)?.load_one(ReleaseKey(id)).await?.map(Release))
}
