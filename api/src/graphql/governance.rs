//! Release governance over GraphQL: tenant settings (required approvals) and release requests
//! (request, approve, reject, list). The rules are in [`crate::domain::approvals`].
//!
//! Settings and requests are shared by both environments: mutations take `environment:
//! STAGING` like every edit, queries answer the same in either environment.

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use entity::{release_request_reviews, release_requests, scheduled_releases};

use super::context::{actor, services, tenant};
use super::pagination::{RelayConnection, connection, page_request, parse_id};
use super::{Environment, GqlResult};
use crate::domain::approvals::{self as domain, RequestState, RequestView};
use crate::domain::releases::PublishRequest;
use crate::domain::scheduled_releases as schedules;
use crate::error::Error;

/// The global id of a release request (one function, so the contract's id scheme is a
/// one-line change).
fn release_request_id(request: &release_requests::Model) -> ID {
    ID(request.id.to_string())
}

fn parse_release_request_id(id: &ID) -> GqlResult<uuid::Uuid> {
    Ok(parse_id("release request", id)?)
}

/// A tenant's settings, shared by both environments.
pub struct Settings(domain::Settings);

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
    /// Who last changed the settings.
    async fn updated_by(&self) -> Option<&str> {
        self.0.updated_by.as_deref()
    }
    /// When the settings last changed.
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
    /// Approved: a publisher may publish exactly its items and revisions.
    Approved,
    /// A publisher rejected it.
    Rejected,
    /// Staging changed since it was requested: it must be requested again.
    Stale,
    /// A release carried it out.
    Published,
}

/// One requested item and the revision reviewed.
#[derive(SimpleObject)]
pub struct ReleaseRequestItem {
    /// The item id (`agent:<slug>`, ...).
    item: String,
    /// The revision reviewed (none for rollbacks).
    revision: Option<String>,
}

/// A publisher's decision on a release request.
pub struct ReleaseRequestReview(release_request_reviews::Model);

#[Object]
impl ReleaseRequestReview {
    /// The reviewer (token subject).
    async fn reviewer(&self) -> &str {
        &self.0.reviewer
    }
    /// Whether they approved (false: rejected).
    async fn approved(&self) -> bool {
        self.0.decision == "approved"
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

/// A proposal of exactly what to publish, for publishers to approve.
pub struct ReleaseRequest(pub RequestView);

#[Object]
impl ReleaseRequest {
    /// The request's id.
    async fn id(&self) -> ID {
        release_request_id(&self.0.request)
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
    /// Why.
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
    /// A requested rollback: the id of the release to roll back.
    async fn rollback_to(&self) -> Option<ID> {
        self.0.request.rollback_to.map(|id| ID(id.to_string()))
    }
    /// Exactly the items and revisions to publish.
    async fn items(&self) -> Vec<ReleaseRequestItem> {
        domain::items_of(&self.0.request)
            .into_iter()
            .map(|i| ReleaseRequestItem {
                item: i.item,
                revision: i.revision,
            })
            .collect()
    }
    /// The reviews so far, oldest first.
    async fn reviews(&self, ctx: &Context<'_>) -> GqlResult<Vec<ReleaseRequestReview>> {
        let reviews = domain::reviews_of(&services(ctx).db.conn, &tenant(ctx)?, self.0.request.id).await?;
        Ok(reviews.into_iter().map(ReleaseRequestReview).collect())
    }
    /// Once published: the release's id.
    async fn release_id(&self) -> Option<ID> {
        self.0.request.release_id.map(|id| ID(id.to_string()))
    }
    /// When it was requested.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.request.created_at
    }
    /// When its state last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.request.updated_at
    }
}

/// One requested item with the revision you reviewed.
#[derive(InputObject)]
pub struct RequestReleaseItemInput {
    /// The item id from `pendingChanges` (`agent:<slug>`, ...).
    id: ID,
    /// The `revision` you reviewed (not needed to select items of a rollback).
    revision: Option<String>,
}

/// What to propose: like `PublishInput`, items with revisions, everything with the plan's
/// fingerprint, or a rollback.
#[derive(InputObject)]
pub struct RequestReleaseInput {
    /// The items to publish, each with the revision you reviewed.
    items: Option<Vec<RequestReleaseItemInput>>,
    /// Everything pending; requires `fingerprint`.
    #[graphql(default)]
    all: bool,
    /// With `all`: the fingerprint from `publishPlan`.
    fingerprint: Option<String>,
    /// Why: shown to reviewers.
    note: Option<String>,
    /// Propose rolling back this release.
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

/// The result of `updateSettings`.
#[derive(SimpleObject)]
pub struct UpdateSettingsPayload {
    /// The settings now.
    settings: Settings,
}

/// The result of `requestRelease`, `approveReleaseRequest` and `rejectReleaseRequest`.
#[derive(SimpleObject)]
pub struct ReleaseRequestPayload {
    /// The request now.
    request: ReleaseRequest,
}

fn staging_only(environment: Environment) -> GqlResult<()> {
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
    async fn settings(&self, ctx: &Context<'_>, environment: Environment) -> GqlResult<Settings> {
        let _ = environment;
        Ok(Settings(domain::settings(&services(ctx).db.conn, &tenant(ctx)?).await?))
    }

    /// Release requests, newest first (shared: the same in both environments).
    async fn release_requests(
        &self,
        ctx: &Context<'_>,
        environment: Environment,
        #[graphql(desc = "Only requests in this state.")] state: Option<ReleaseRequestState>,
        #[graphql(desc = "At most this many (default 20, at most 100).")] first: Option<i32>,
        #[graphql(desc = "The cursor of the last request of the previous page.")] after: Option<String>,
    ) -> GqlResult<RelayConnection<ReleaseRequest>> {
        let _ = environment;
        let page = page_request(first, after)?;
        let state: Option<RequestState> = state.map(Into::into);
        let page = domain::list(&services(ctx).db, &tenant(ctx)?, state, &page).await?;
        Ok(connection(page, |view| view.request.id, ReleaseRequest))
    }

    /// One release request.
    async fn release_request(
        &self,
        ctx: &Context<'_>,
        environment: Environment,
        id: ID,
    ) -> GqlResult<Option<ReleaseRequest>> {
        let _ = environment;
        let tenant = tenant(ctx)?;
        let db = &services(ctx).db;
        match domain::get(&db.conn, &tenant, parse_release_request_id(&id)?).await {
            Ok(request) => Ok(domain::views(&db.conn, &tenant, vec![request])
                .await?
                .pop()
                .map(ReleaseRequest)),
            Err(Error::NotFound(_)) => Ok(None),
            Err(error) => Err(error.into()),
        }
    }
}

#[derive(Default)]
pub struct GovernanceMutation;

#[Object]
impl GovernanceMutation {
    /// Changes the tenant's settings (admins; shared, so with `environment: STAGING`).
    async fn update_settings(
        &self,
        ctx: &Context<'_>,
        environment: Environment,
        input: UpdateSettingsInput,
    ) -> GqlResult<UpdateSettingsPayload> {
        staging_only(environment)?;
        let settings = domain::set_required_approvals(
            &services(ctx).db,
            &tenant(ctx)?,
            &actor(ctx)?.subject,
            input.required_approvals,
            input.expected_revision,
        )
        .await?;
        Ok(UpdateSettingsPayload {
            settings: Settings(settings),
        })
    }

    /// Proposes exactly what to publish (checked like a publish: reviewed revisions must be
    /// current). With approvals required, publishing needs such a request, approved.
    async fn request_release(
        &self,
        ctx: &Context<'_>,
        environment: Environment,
        input: RequestReleaseInput,
    ) -> GqlResult<ReleaseRequestPayload> {
        staging_only(environment)?;
        let rollback_to = input
            .rollback_to
            .as_ref()
            .map(|id| parse_id("release", id))
            .transpose()?;
        let request = PublishRequest {
            items: input
                .items
                .unwrap_or_default()
                .into_iter()
                .map(|i| (i.id.0, i.revision))
                .collect(),
            all: input.all,
            fingerprint: input.fingerprint,
            note: input.note.unwrap_or_default(),
            rollback_to,
            ..PublishRequest::default()
        };
        let db = &services(ctx).db;
        let tenant = tenant(ctx)?;
        let model = domain::request_release(db, &tenant, &actor(ctx)?.subject, request).await?;
        let view = domain::views(&db.conn, &tenant, vec![model]).await?.remove(0);
        Ok(ReleaseRequestPayload {
            request: ReleaseRequest(view),
        })
    }

    /// Approves a release request (publishers; never your own request).
    async fn approve_release_request(
        &self,
        ctx: &Context<'_>,
        environment: Environment,
        id: ID,
        #[graphql(desc = "Why you approve (shown with the request).")] comment: Option<String>,
    ) -> GqlResult<ReleaseRequestPayload> {
        review(ctx, environment, id, true, comment).await
    }

    /// Rejects a release request (publishers; never your own request).
    async fn reject_release_request(
        &self,
        ctx: &Context<'_>,
        environment: Environment,
        id: ID,
        #[graphql(desc = "Why you reject (shown with the request).")] comment: Option<String>,
    ) -> GqlResult<ReleaseRequestPayload> {
        review(ctx, environment, id, false, comment).await
    }
}

async fn review(
    ctx: &Context<'_>,
    environment: Environment,
    id: ID,
    approve: bool,
    comment: Option<String>,
) -> GqlResult<ReleaseRequestPayload> {
    staging_only(environment)?;
    let view = domain::review(
        &services(ctx).db,
        &tenant(ctx)?,
        &actor(ctx)?.subject,
        parse_release_request_id(&id)?,
        approve,
        comment.as_deref().unwrap_or_default(),
    )
    .await?;
    Ok(ReleaseRequestPayload {
        request: ReleaseRequest(view),
    })
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

/// A change of a release request, for the Releases screen.
#[derive(SimpleObject)]
pub struct ReleaseRequestEvent {
    /// Resume after this cursor (`after`).
    cursor: String,
    /// What happened.
    kind: ReleaseRequestEventKind,
    /// The environment subscribed to (requests are shared: events go to both).
    environment: Environment,
    /// The request as of the event (its stored state; read it again to see whether it has
    /// gone stale since).
    request: ReleaseRequest,
}

/// The subscription item of a `release_request` event.
pub fn release_request_event(event: &entity::events::Model) -> crate::error::Result<ReleaseRequestEvent> {
    let request: release_requests::Model = serde_json::from_value(event.payload["request"].clone())
        .map_err(|e| Error::internal(anyhow::anyhow!("release request event {}: {e}", event.seq)))?;
    Ok(ReleaseRequestEvent {
        cursor: event.seq.to_string(),
        kind: match event.kind.as_str() {
            "opened" => ReleaseRequestEventKind::Opened,
            "reviewed" => ReleaseRequestEventKind::Reviewed,
            "approved" => ReleaseRequestEventKind::Approved,
            "rejected" => ReleaseRequestEventKind::Rejected,
            _ => ReleaseRequestEventKind::Published,
        },
        environment: event.environment.into(),
        request: ReleaseRequest(RequestView::as_stored(request)),
    })
}

// ----------------------------------------------------------------------------------------
// Scheduled releases
// ----------------------------------------------------------------------------------------

/// The global id of a scheduled release (one function, so the contract's id scheme is a
/// one-line change).
fn scheduled_release_id(model: &scheduled_releases::Model) -> ID {
    ID(model.id.to_string())
}

/// The state of a scheduled release.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum ScheduledReleaseState {
    /// Waiting for its time.
    Scheduled,
    /// Being published now.
    Running,
    /// Published: see `releaseId`.
    Published,
    /// Not published: staging changed since it was scheduled (or another check failed); see
    /// `failure`.
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

/// A release scheduled for a time: exactly the reviewed items and revisions, published once.
pub struct ScheduledRelease(scheduled_releases::Model);

#[Object]
impl ScheduledRelease {
    /// The scheduled release's id.
    async fn id(&self) -> ID {
        scheduled_release_id(&self.0)
    }
    /// When it is (or was) to be published.
    async fn at(&self) -> DateTime<Utc> {
        self.0.run_at
    }
    /// Its state.
    async fn state(&self) -> ScheduledReleaseState {
        ScheduledReleaseState::parse(&self.0.state)
    }
    /// Exactly the items and revisions it publishes.
    async fn items(&self) -> Vec<ReleaseRequestItem> {
        schedules::items_of(&self.0)
            .into_iter()
            .map(|i| ReleaseRequestItem {
                item: i.item,
                revision: i.revision,
            })
            .collect()
    }
    /// The release note.
    async fn note(&self) -> &str {
        &self.0.note
    }
    /// Why it FAILED (naming the items that changed) or was MISSED.
    async fn failure(&self) -> Option<&str> {
        self.0.failure.as_deref()
    }
    /// Once PUBLISHED: the release's id.
    async fn release_id(&self) -> Option<ID> {
        self.0.release_id.map(|id| ID(id.to_string()))
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

/// What to schedule: items with the revisions you reviewed, or everything at the plan's
/// fingerprint, and when.
#[derive(InputObject)]
pub struct ScheduleReleaseInput {
    /// The items to publish, each with the revision you reviewed.
    items: Option<Vec<RequestReleaseItemInput>>,
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

/// The result of `scheduleRelease`, `rescheduleRelease` and `cancelScheduledRelease`.
#[derive(SimpleObject)]
pub struct ScheduledReleasePayload {
    /// The scheduled release now.
    scheduled_release: ScheduledRelease,
}

#[derive(Default)]
pub struct ScheduleQuery;

#[Object]
impl ScheduleQuery {
    /// Scheduled releases, newest first (shared: the same in both environments).
    async fn scheduled_releases(
        &self,
        ctx: &Context<'_>,
        environment: Environment,
        #[graphql(desc = "Only scheduled releases in this state.")] state: Option<ScheduledReleaseState>,
        #[graphql(desc = "At most this many (default 20, at most 100).")] first: Option<i32>,
        #[graphql(desc = "The cursor of the last item of the previous page.")] after: Option<String>,
    ) -> GqlResult<RelayConnection<ScheduledRelease>> {
        let _ = environment;
        let page = page_request(first, after)?;
        let page = schedules::list(&services(ctx).db, &tenant(ctx)?, state.map(|s| s.as_str()), &page).await?;
        Ok(connection(page, |m| m.id, ScheduledRelease))
    }
}

#[derive(Default)]
pub struct ScheduleMutation;

#[Object]
impl ScheduleMutation {
    /// Schedules a publish of exactly these items and revisions at `at` (publishers; with
    /// STAGING, like every edit). It runs once across replicas; if staging changed since, it
    /// does not publish and is marked FAILED naming the items.
    async fn schedule_release(
        &self,
        ctx: &Context<'_>,
        environment: Environment,
        input: ScheduleReleaseInput,
    ) -> GqlResult<ScheduledReleasePayload> {
        staging_only(environment)?;
        let request = PublishRequest {
            items: input
                .items
                .unwrap_or_default()
                .into_iter()
                .map(|i| (i.id.0, i.revision))
                .collect(),
            all: input.all,
            fingerprint: input.fingerprint,
            note: input.note.unwrap_or_default(),
            ..PublishRequest::default()
        };
        let actor = actor(ctx)?;
        let model = schedules::schedule(
            &services(ctx).db,
            &tenant(ctx)?,
            &actor.subject,
            actor.role,
            request,
            input.at,
        )
        .await?;
        Ok(ScheduledReleasePayload {
            scheduled_release: ScheduledRelease(model),
        })
    }

    /// Moves a scheduled release to another time (only while SCHEDULED).
    async fn reschedule_release(
        &self,
        ctx: &Context<'_>,
        environment: Environment,
        id: ID,
        #[graphql(desc = "The new time (in the future).")] at: DateTime<Utc>,
        #[graphql(desc = "The `revision` you read.")] expected_revision: Option<i64>,
    ) -> GqlResult<ScheduledReleasePayload> {
        staging_only(environment)?;
        let id = parse_id("scheduled release", &id)?;
        let model = schedules::reschedule(&services(ctx).db, &tenant(ctx)?, id, at, expected_revision).await?;
        Ok(ScheduledReleasePayload {
            scheduled_release: ScheduledRelease(model),
        })
    }

    /// Cancels a scheduled release (only while SCHEDULED).
    async fn cancel_scheduled_release(
        &self,
        ctx: &Context<'_>,
        environment: Environment,
        id: ID,
        #[graphql(desc = "The `revision` you read.")] expected_revision: Option<i64>,
    ) -> GqlResult<ScheduledReleasePayload> {
        staging_only(environment)?;
        let id = parse_id("scheduled release", &id)?;
        let model = schedules::cancel(&services(ctx).db, &tenant(ctx)?, id, expected_revision).await?;
        Ok(ScheduledReleasePayload {
            scheduled_release: ScheduledRelease(model),
        })
    }
}
