//! Release governance over GraphQL: tenant settings (required approvals), release requests
//! (request, approve, reject, list, subscribe) and scheduled releases (schedule, list,
//! reschedule, cancel). The rules are in [`crate::domain::approvals`] and
//! [`crate::domain::scheduled_releases`].
//!
//! Settings, requests and schedules are shared by both environments: mutations take
//! `environment: STAGING` like every shared edit, queries answer the same in either
//! environment, and ids are shared (the same in both).

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::context::{actor, services, tenant};
use super::ids::{self, NodeType};
use super::pagination::{PageArgs, connection_type, parts};
use super::releases::{Release, release_of};
use super::{Environment, GqlResult};
use crate::domain::approvals::{self as domain, RequestState, RequestView};
use crate::domain::releases::PublishRequest;
use crate::domain::scheduled_releases as schedules;
use crate::error::{Error, Optional};

fn release_request_uuid(id: &ID) -> Option<uuid::Uuid> {
    ids::uuid_of(id, NodeType::ReleaseRequest, entity::Environment::Staging)
}

fn scheduled_release_uuid(id: &ID) -> GqlResult<uuid::Uuid> {
    ids::uuid_of(id, NodeType::ScheduledRelease, entity::Environment::Staging)
        .ok_or_else(|| Error::not_found(format!("scheduled release {:?}", id.as_str())).into())
}

fn release_uuid(id: &ID) -> GqlResult<uuid::Uuid> {
    ids::uuid_of(id, NodeType::Release, entity::Environment::Staging)
        .ok_or_else(|| Error::not_found(format!("release {:?}", id.as_str())).into())
}

/// A tenant's settings, shared by both environments.
pub struct Settings(domain::Settings);

/// A tenant's settings, shared by both environments.
#[Object]
impl Settings {
    /// Approvals a release request needs before it can be published; 0 (the default) turns
    /// approvals off.
    async fn required_approvals(&self) -> i32 {
        self.0.required_approvals
    }
    /// Increases with every change (0: never set); pass it as `expectedRevision`.
    async fn revision(&self) -> i64 {
        self.0.revision
    }
    /// Who last changed the settings (null: never changed).
    async fn updated_by(&self) -> Option<&str> {
        self.0.updated_by.as_deref()
    }
    /// When the settings last changed (null: never changed).
    async fn updated_at(&self) -> Option<DateTime<Utc>> {
        self.0.updated_at
    }
}

/// The state of a release request.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "crate::domain::approvals::RequestState")]
pub enum ReleaseRequestState {
    /// Waiting for approvals.
    Open,
    /// Approved: a publisher may publish exactly its items and fingerprints.
    Approved,
    /// A publisher rejected it.
    Rejected,
    /// Staging changed since it was requested (see `staleItems`): request it again.
    Stale,
    /// A release carried it out (see `release`).
    Published,
}

/// One item of a release request or scheduled release, with the fingerprint reviewed.
#[derive(SimpleObject)]
pub struct ReleaseRequestItem {
    /// The item key (`agent:<slug>`, ...), as in `PendingChange.key`.
    key: String,
    /// The `PendingChange.fingerprint` reviewed (null for the items of a rollback).
    fingerprint: Option<String>,
}

fn request_items(items: Vec<domain::RequestedItem>) -> Vec<ReleaseRequestItem> {
    items
        .into_iter()
        .map(|i| ReleaseRequestItem {
            key: i.item,
            fingerprint: i.revision,
        })
        .collect()
}

/// A publisher's decision on a release request.
pub struct ReleaseRequestReview(domain::Review);

/// A publisher's decision on a release request.
#[Object]
impl ReleaseRequestReview {
    /// The reviewer (token subject).
    async fn reviewer(&self) -> &str {
        &self.0.reviewer
    }
    /// Whether they approved (false: rejected).
    async fn approved(&self) -> bool {
        self.0.approved
    }
    /// Their comment.
    async fn comment(&self) -> &str {
        &self.0.comment
    }
    /// When they reviewed.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// A proposal of exactly what to publish, for publishers to approve (the two-person rule).
pub struct ReleaseRequest(pub RequestView);

/// A proposal of exactly what to publish, for publishers to approve (the two-person rule).
#[Object]
impl ReleaseRequest {
    /// Globally unique, opaque id (shared: the same in both environments).
    pub(crate) async fn id(&self) -> ID {
        ids::encode_shared(NodeType::ReleaseRequest, self.0.request.id)
    }
    /// Its state now (a request whose items changed in staging is STALE).
    async fn state(&self) -> ReleaseRequestState {
        self.0.state.into()
    }
    /// For a STALE request: the items that changed, and how.
    async fn stale_items(&self) -> &[String] {
        &self.0.stale_items
    }
    /// Who requested it (token subject).
    async fn requested_by(&self) -> &str {
        &self.0.request.requested_by
    }
    /// Why: shown to reviewers.
    async fn note(&self) -> &str {
        &self.0.request.note
    }
    /// Requested as everything pending (at `fingerprint`).
    async fn all(&self) -> bool {
        self.0.request.all_items
    }
    /// With `all`: the plan fingerprint reviewed.
    async fn fingerprint(&self) -> Option<&str> {
        self.0.request.fingerprint.as_deref()
    }
    /// A requested rollback: the release to roll back.
    async fn rollback_to(&self, ctx: &Context<'_>) -> GqlResult<Option<Release>> {
        release_of(ctx, self.0.request.rollback_to).await
    }
    /// Exactly the items and fingerprints to publish.
    async fn items(&self) -> Vec<ReleaseRequestItem> {
        request_items(self.0.request.items.clone())
    }
    /// The reviews so far, oldest first.
    async fn reviews(&self, ctx: &Context<'_>) -> GqlResult<Vec<ReleaseRequestReview>> {
        let reviews = domain::reviews(&services(ctx).db, &tenant(ctx)?, self.0.request.id).await?;
        Ok(reviews.into_iter().map(ReleaseRequestReview).collect())
    }
    /// Once PUBLISHED: the release that carried it out.
    async fn release(&self, ctx: &Context<'_>) -> GqlResult<Option<Release>> {
        release_of(ctx, self.0.request.release_id).await
    }
    /// When it was requested.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.request.created_at
    }
    /// When its stored state last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.request.updated_at
    }
}

connection_type!(
    ReleaseRequestConnection,
    ReleaseRequestEdge,
    ReleaseRequest,
    "release requests"
);

/// One item to request or schedule, with the fingerprint you reviewed.
#[derive(InputObject)]
pub struct ReleaseItemInput {
    /// The item key from `pendingChanges` (`agent:<slug>`, ...).
    key: String,
    /// The `fingerprint` you reviewed (not needed to select items of a rollback).
    fingerprint: Option<String>,
}

fn item_pairs(items: Option<Vec<ReleaseItemInput>>) -> Vec<(String, Option<String>)> {
    items
        .unwrap_or_default()
        .into_iter()
        .map(|i| (i.key, i.fingerprint))
        .collect()
}

/// What to propose: like `PublishInput`, items with fingerprints, everything with the plan's
/// fingerprint, or a rollback.
#[derive(InputObject)]
pub struct RequestReleaseInput {
    /// The items to publish, each with the fingerprint you reviewed.
    items: Option<Vec<ReleaseItemInput>>,
    /// Everything pending; requires `fingerprint`.
    #[graphql(default)]
    all: bool,
    /// With `all`: the fingerprint from `publishPlan`.
    fingerprint: Option<String>,
    /// Why: shown to reviewers.
    note: Option<String>,
    /// Propose rolling back this release (its global id).
    rollback_to: Option<ID>,
}

/// Settings to change.
#[derive(InputObject)]
pub struct UpdateSettingsInput {
    /// Approvals a release request needs (0 to 5; 0 turns approvals off).
    required_approvals: i32,
    /// The `revision` you read; CONFLICT if the settings changed since.
    expected_revision: Option<i64>,
}

fn shared_edit(environment: Environment) -> GqlResult<()> {
    if environment != Environment::Staging {
        return Err(Error::ProductionReadOnly.into());
    }
    Ok(())
}

#[derive(Default)]
pub struct GovernanceQuery;

#[Object]
impl GovernanceQuery {
    /// The tenant's settings (shared: the same in both environments).
    async fn settings(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Either environment; settings are the tenant's.")] environment: Environment,
    ) -> GqlResult<Settings> {
        let _ = environment;
        Ok(Settings(domain::settings(&services(ctx).db.conn, &tenant(ctx)?).await?))
    }

    /// Release requests, newest first (shared: the same in both environments).
    #[allow(clippy::too_many_arguments)]
    async fn release_requests(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Either environment; requests are the tenant's.")] environment: Environment,
        #[graphql(desc = "Only requests in this state (as of now).")] state: Option<ReleaseRequestState>,
        #[graphql(desc = "Page size from the start (default 20, at most 100).")] first: Option<i32>,
        #[graphql(desc = "Return the requests after this cursor.")] after: Option<String>,
        #[graphql(desc = "Page size from the end (at most 100).")] last: Option<i32>,
        #[graphql(desc = "Return the requests before this cursor.")] before: Option<String>,
    ) -> GqlResult<ReleaseRequestConnection> {
        let _ = environment;
        let page = PageArgs::new(first, after, last, before).request(ctx)?;
        let state: Option<RequestState> = state.map(Into::into);
        let page = domain::list(&services(ctx).db, &tenant(ctx)?, state, &page).await?;
        Ok(ReleaseRequestConnection(parts(
            page,
            |view| view.request.id.to_string(),
            ReleaseRequest,
        )))
    }

    /// One release request; null when it does not exist.
    async fn release_request(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Either environment; requests are the tenant's.")] environment: Environment,
        #[graphql(desc = "The request's global id.")] id: ID,
    ) -> GqlResult<Option<ReleaseRequest>> {
        let _ = environment;
        let Some(id) = release_request_uuid(&id) else {
            return Ok(None);
        };
        load_request(ctx, id).await
    }
}

/// A release request with its current state, or None.
pub(crate) async fn load_request(ctx: &Context<'_>, id: uuid::Uuid) -> GqlResult<Option<ReleaseRequest>> {
    let tenant = tenant(ctx)?;
    let db = &services(ctx).db;
    let Some(request) = domain::get(&db.conn, &tenant, id).await.optional()? else {
        return Ok(None);
    };
    Ok(domain::views(&db.conn, &tenant, vec![request])
        .await?
        .pop()
        .map(ReleaseRequest))
}

#[derive(Default)]
pub struct GovernanceMutation;

#[Object]
impl GovernanceMutation {
    /// Changes the tenant's settings (admins; shared, so with `environment: STAGING`).
    async fn update_settings(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Must be STAGING: settings are shared, edited like other shared records.")]
        environment: Environment,
        #[graphql(desc = "The settings to change.")] input: UpdateSettingsInput,
    ) -> GqlResult<Settings> {
        shared_edit(environment)?;
        let settings = domain::set_required_approvals(
            &services(ctx).db,
            &tenant(ctx)?,
            actor(ctx)?.subject(),
            input.required_approvals,
            input.expected_revision,
        )
        .await?;
        Ok(Settings(settings))
    }

    /// Proposes exactly what to publish (checked like a publish: reviewed fingerprints must be
    /// current). With approvals required, publishing needs such a request, approved.
    async fn request_release(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Must be STAGING: requests are shared.")] environment: Environment,
        #[graphql(desc = "What to propose, and why.")] input: RequestReleaseInput,
    ) -> GqlResult<ReleaseRequest> {
        shared_edit(environment)?;
        let rollback_to = input.rollback_to.as_ref().map(release_uuid).transpose()?;
        let request = PublishRequest {
            items: item_pairs(input.items),
            all: input.all,
            fingerprint: input.fingerprint,
            note: input.note.unwrap_or_default(),
            rollback_to,
            ..PublishRequest::default()
        };
        let db = &services(ctx).db;
        let tenant = tenant(ctx)?;
        let model = domain::request_release(db, &tenant, actor(ctx)?.subject(), request).await?;
        let view = domain::views(&db.conn, &tenant, vec![model]).await?.remove(0);
        Ok(ReleaseRequest(view))
    }

    /// Approves a release request (publishers; never your own request).
    async fn approve_release_request(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Must be STAGING: requests are shared.")] environment: Environment,
        #[graphql(desc = "The request's global id.")] id: ID,
        #[graphql(desc = "Why you approve (shown with the request).")] comment: Option<String>,
    ) -> GqlResult<ReleaseRequest> {
        review(ctx, environment, id, true, comment).await
    }

    /// Rejects a release request (publishers; never your own request).
    async fn reject_release_request(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Must be STAGING: requests are shared.")] environment: Environment,
        #[graphql(desc = "The request's global id.")] id: ID,
        #[graphql(desc = "Why you reject (shown with the request).")] comment: Option<String>,
    ) -> GqlResult<ReleaseRequest> {
        review(ctx, environment, id, false, comment).await
    }
}

async fn review(
    ctx: &Context<'_>,
    environment: Environment,
    id: ID,
    approve: bool,
    comment: Option<String>,
) -> GqlResult<ReleaseRequest> {
    shared_edit(environment)?;
    let id = release_request_uuid(&id).ok_or_else(|| Error::not_found(format!("release request {:?}", id.as_str())))?;
    let view = domain::review(
        &services(ctx).db,
        &tenant(ctx)?,
        actor(ctx)?.subject(),
        id,
        approve,
        comment.as_deref().unwrap_or_default(),
    )
    .await?;
    Ok(ReleaseRequest(view))
}

/// What happened to a release request.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseRequestEventKind {
    /// A developer requested a release.
    Opened,
    /// A publisher approved it, short of the approvals required.
    Reviewed,
    /// It has the approvals required.
    Approved,
    /// A publisher rejected it.
    Rejected,
    /// A release carried it out.
    Published,
}

impl ReleaseRequestState {
    /// A stored state (`open`, `approved`, ...).
    pub fn stored(state: &str) -> ReleaseRequestState {
        match state {
            "approved" => ReleaseRequestState::Approved,
            "rejected" => ReleaseRequestState::Rejected,
            "published" => ReleaseRequestState::Published,
            _ => ReleaseRequestState::Open,
        }
    }
}

impl ReleaseRequestEventKind {
    pub fn parse(kind: &str) -> ReleaseRequestEventKind {
        use crate::domain::events::kinds;
        match kind {
            kinds::RELEASE_REQUEST_OPENED => ReleaseRequestEventKind::Opened,
            kinds::RELEASE_REQUEST_REVIEWED => ReleaseRequestEventKind::Reviewed,
            kinds::RELEASE_REQUEST_APPROVED => ReleaseRequestEventKind::Approved,
            kinds::RELEASE_REQUEST_REJECTED => ReleaseRequestEventKind::Rejected,
            _ => ReleaseRequestEventKind::Published,
        }
    }
}

/// A change of a release request, for the Releases screen.
#[derive(SimpleObject)]
pub struct ReleaseRequestEvent {
    /// Resume after this cursor (`after`).
    pub cursor: String,
    /// What happened.
    pub kind: ReleaseRequestEventKind,
    /// The environment subscribed to (requests are shared: events go to both).
    pub environment: Environment,
    /// The request's state right after this event (`request.state` is its state now).
    pub state: ReleaseRequestState,
    /// The request as of now (null if it can no longer be read).
    pub request: Option<ReleaseRequest>,
}

// ----------------------------------------------------------------------------------------
// Scheduled releases
// ----------------------------------------------------------------------------------------

/// The state of a scheduled release.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum ScheduledReleaseState {
    /// Waiting for its time.
    Scheduled,
    /// Being published now.
    Running,
    /// Published: see `release`.
    Published,
    /// Not published: staging changed since it was scheduled (see `staleItems`), or another
    /// check failed (see `failure`).
    Failed,
    /// Its time passed while no Runflow process ran, beyond the grace window.
    Missed,
    /// Cancelled before its time.
    Cancelled,
}

impl ScheduledReleaseState {
    fn as_str(self) -> &'static str {
        match self {
            ScheduledReleaseState::Scheduled => "scheduled",
            ScheduledReleaseState::Running => "running",
            ScheduledReleaseState::Published => "published",
            ScheduledReleaseState::Failed => "failed",
            ScheduledReleaseState::Missed => "missed",
            ScheduledReleaseState::Cancelled => "cancelled",
        }
    }

    fn parse(value: &str) -> ScheduledReleaseState {
        match value {
            "running" => ScheduledReleaseState::Running,
            "published" => ScheduledReleaseState::Published,
            "failed" => ScheduledReleaseState::Failed,
            "missed" => ScheduledReleaseState::Missed,
            "cancelled" => ScheduledReleaseState::Cancelled,
            _ => ScheduledReleaseState::Scheduled,
        }
    }
}

/// A release scheduled for a time: exactly the reviewed items and fingerprints, published once.
pub struct ScheduledRelease(pub schedules::ScheduledRelease);

/// A release scheduled for a time: exactly the reviewed items and fingerprints, published once.
#[Object]
impl ScheduledRelease {
    /// Globally unique, opaque id (shared: the same in both environments).
    pub(crate) async fn id(&self) -> ID {
        ids::encode_shared(NodeType::ScheduledRelease, self.0.id)
    }
    /// When it is (or was) to be published.
    async fn at(&self) -> DateTime<Utc> {
        self.0.run_at
    }
    /// Its state.
    async fn state(&self) -> ScheduledReleaseState {
        ScheduledReleaseState::parse(&self.0.state)
    }
    /// Exactly the items and fingerprints it publishes.
    async fn items(&self) -> Vec<ReleaseRequestItem> {
        request_items(self.0.items.clone())
    }
    /// The release note.
    async fn note(&self) -> &str {
        &self.0.note
    }
    /// Why it FAILED or was MISSED.
    async fn failure(&self) -> Option<&str> {
        self.0.failure.as_deref()
    }
    /// For a FAILED one: the keys of the items that changed in staging since it was scheduled.
    async fn stale_items(&self) -> &[String] {
        &self.0.stale_items
    }
    /// Once PUBLISHED: the release it made.
    async fn release(&self, ctx: &Context<'_>) -> GqlResult<Option<Release>> {
        release_of(ctx, self.0.release_id).await
    }
    /// Increases with every change; pass it as `expectedRevision`.
    async fn revision(&self) -> i64 {
        self.0.revision
    }
    /// Who scheduled it (the release is published in their name).
    async fn created_by(&self) -> &str {
        &self.0.created_by
    }
    /// When it was scheduled.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

connection_type!(
    ScheduledReleaseConnection,
    ScheduledReleaseEdge,
    ScheduledRelease,
    "scheduled releases"
);

/// What to schedule: items with the fingerprints you reviewed, or everything at the plan's
/// fingerprint, and when.
#[derive(InputObject)]
pub struct ScheduleReleaseInput {
    /// The items to publish, each with the fingerprint you reviewed.
    items: Option<Vec<ReleaseItemInput>>,
    /// Everything pending; requires `fingerprint`.
    #[graphql(default)]
    all: bool,
    /// With `all`: the fingerprint from `publishPlan`.
    fingerprint: Option<String>,
    /// Why: stored with the release.
    note: Option<String>,
    /// When to publish (in the future, within a year).
    at: DateTime<Utc>,
}

#[derive(Default)]
pub struct ScheduleQuery;

#[Object]
impl ScheduleQuery {
    /// Scheduled releases, newest first (shared: the same in both environments).
    #[allow(clippy::too_many_arguments)]
    async fn scheduled_releases(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Either environment; scheduled releases are the tenant's.")] environment: Environment,
        #[graphql(desc = "Only scheduled releases in this state.")] state: Option<ScheduledReleaseState>,
        #[graphql(desc = "Page size from the start (default 20, at most 100).")] first: Option<i32>,
        #[graphql(desc = "Return the scheduled releases after this cursor.")] after: Option<String>,
        #[graphql(desc = "Page size from the end (at most 100).")] last: Option<i32>,
        #[graphql(desc = "Return the scheduled releases before this cursor.")] before: Option<String>,
    ) -> GqlResult<ScheduledReleaseConnection> {
        let _ = environment;
        let page = PageArgs::new(first, after, last, before).request(ctx)?;
        let page = schedules::list(&services(ctx).db, &tenant(ctx)?, state.map(|s| s.as_str()), &page).await?;
        Ok(ScheduledReleaseConnection(parts(
            page,
            |m| m.id.to_string(),
            ScheduledRelease,
        )))
    }
}

#[derive(Default)]
pub struct ScheduleMutation;

#[Object]
impl ScheduleMutation {
    /// Schedules a publish of exactly these items and fingerprints at `at` (publishers; with
    /// STAGING, like every shared edit). It runs once across replicas; if staging changed
    /// since, it does not publish and is marked FAILED naming the items. The same as
    /// `publish(environment: PRODUCTION, input: {..., at})`, which is the one to use.
    #[graphql(deprecation = "Use `publish` with `input.at`: the same scheduled release, with idempotency keys.")]
    async fn schedule_release(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Must be STAGING: scheduled releases are shared.")] environment: Environment,
        #[graphql(desc = "What to publish, and when.")] input: ScheduleReleaseInput,
    ) -> GqlResult<ScheduledRelease> {
        shared_edit(environment)?;
        let request = PublishRequest {
            items: item_pairs(input.items),
            all: input.all,
            fingerprint: input.fingerprint,
            note: input.note.unwrap_or_default(),
            ..PublishRequest::default()
        };
        let actor = actor(ctx)?;
        let model = schedules::schedule(
            &services(ctx).db,
            &tenant(ctx)?,
            actor.subject(),
            actor.role(),
            request,
            input.at,
        )
        .await?;
        Ok(ScheduledRelease(model))
    }

    /// Moves a scheduled release to another time (only while SCHEDULED).
    async fn reschedule_release(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Must be STAGING: scheduled releases are shared.")] environment: Environment,
        #[graphql(desc = "The scheduled release's global id.")] id: ID,
        #[graphql(desc = "The new time (in the future).")] at: DateTime<Utc>,
        #[graphql(desc = "The `revision` you read; CONFLICT if it changed since.")] expected_revision: Option<i64>,
    ) -> GqlResult<ScheduledRelease> {
        shared_edit(environment)?;
        let id = scheduled_release_uuid(&id)?;
        let model = schedules::reschedule(&services(ctx).db, &tenant(ctx)?, id, at, expected_revision).await?;
        Ok(ScheduledRelease(model))
    }

    /// Cancels a scheduled release (only while SCHEDULED); returns it, CANCELLED.
    async fn cancel_scheduled_release(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Must be STAGING: scheduled releases are shared.")] environment: Environment,
        #[graphql(desc = "The scheduled release's global id.")] id: ID,
        #[graphql(desc = "The `revision` you read; CONFLICT if it changed since.")] expected_revision: Option<i64>,
    ) -> GqlResult<ScheduledRelease> {
        shared_edit(environment)?;
        let id = scheduled_release_uuid(&id)?;
        let model = schedules::cancel(&services(ctx).db, &tenant(ctx)?, id, expected_revision).await?;
        Ok(ScheduledRelease(model))
    }
}
