//! Approvals (the two-person rule): tenant settings, release requests and their reviews, and
//! the one check `publish` makes before it changes production ([`authorize_publish`]).
//!
//! - With `requiredApprovals` = 0 (the default) approvals are off and publishing works as
//!   before.
//! - A developer proposes exactly what to publish: items with the revisions they reviewed, or
//!   everything pending with the plan's fingerprint, or a rollback ([`request_release`]). The
//!   request stores the resolved items and revisions.
//! - Publishers approve or reject it; the requester can not review their own request. With
//!   enough approvals it is `approved`.
//! - `publish` then needs an approved request with exactly its items and revisions. A request
//!   whose items changed in staging since it was made is `stale` (computed on every read, from
//!   the current pending changes): publishing it fails with CONFLICT naming the items, and it
//!   needs a new request. An admin may roll back without a request (`emergencyOverride`); the
//!   release records it.

use std::collections::BTreeSet;

use entity::{release_request_reviews, release_requests, releases, tenant_settings};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, Order, QueryFilter, QueryOrder, Set};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::events::{self, NewEvent, Topic, kinds};
use super::pagination::{self, Page, PageRequest};
use super::releases::{self as release_domain, Plan, PublishRequest};
use super::{new_id, now, validate};
use crate::auth::Role;
use crate::db::{Db, lock_for_update};
use crate::error::{Error, Result, check_revision};
use crate::scope::{Tenant, TenantWrite};

/// The most approvals a tenant may require.
pub const MAX_REQUIRED_APPROVALS: i32 = 5;

// ----------------------------------------------------------------------------------------
// Settings
// ----------------------------------------------------------------------------------------

/// A tenant's settings, with defaults when never set (revision 0).
#[derive(Clone, Debug)]
pub struct Settings {
    pub required_approvals: i32,
    pub revision: i64,
    pub updated_by: Option<String>,
    pub updated_at: Option<chrono::DateTime<chrono::Utc>>,
}

pub async fn settings<C: ConnectionTrait>(db: &C, tenant: &Tenant) -> Result<Settings> {
    let row = tenant.select::<tenant_settings::Entity>().one(db).await?;
    Ok(match row {
        Some(row) => Settings {
            required_approvals: row.required_approvals,
            revision: row.revision,
            updated_by: Some(row.updated_by),
            updated_at: Some(row.updated_at),
        },
        None => Settings {
            required_approvals: 0,
            revision: 0,
            updated_by: None,
            updated_at: None,
        },
    })
}

/// Sets how many approvals a release request needs (0 turns approvals off).
pub async fn set_required_approvals(
    db: &Db,
    tenant: &Tenant,
    actor: &str,
    required: i32,
    expected_revision: Option<i64>,
) -> Result<Settings> {
    validate::author(actor)?;
    if !(0..=MAX_REQUIRED_APPROVALS).contains(&required) {
        return Err(Error::bad_input(format!(
            "requiredApprovals must be between 0 and {MAX_REQUIRED_APPROVALS}"
        )));
    }
    let tx = db.begin_write().await?;
    lock_for_update(&tx, &format!("settings:{}", tenant.id())).await?;
    let current = settings(&tx, tenant).await?;
    check_revision("the settings", current.revision, expected_revision)?;
    let time = now();
    if current.revision == 0 {
        tenant_settings::ActiveModel {
            tenant_id: Set(tenant.id().to_string()),
            required_approvals: Set(required),
            revision: Set(1),
            updated_by: Set(actor.to_string()),
            updated_at: Set(time),
        }
        .insert_into(tenant, &tx)
        .await?;
    } else {
        let updated = tenant
            .update_many::<tenant_settings::Entity>()
            .col_expr(tenant_settings::Column::RequiredApprovals, Expr::value(required))
            .col_expr(tenant_settings::Column::Revision, Expr::value(current.revision + 1))
            .col_expr(tenant_settings::Column::UpdatedBy, Expr::value(actor))
            .col_expr(tenant_settings::Column::UpdatedAt, Expr::value(time))
            .filter(tenant_settings::Column::TenantId.eq(tenant.id()))
            .filter(tenant_settings::Column::Revision.eq(current.revision))
            .exec(&tx)
            .await?;
        if updated.rows_affected != 1 {
            return Err(Error::Conflict(
                "the settings changed concurrently; reload and retry".into(),
            ));
        }
    }
    db.commit(tx).await?;
    settings(&db.conn, tenant).await
}

// ----------------------------------------------------------------------------------------
// Requests
// ----------------------------------------------------------------------------------------

/// One requested item and the revision reviewed (None for rollbacks).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RequestedItem {
    pub item: String,
    pub revision: Option<String>,
}

/// A request's state as shown: the stored one, or `Stale` for an open or approved request
/// whose items changed since.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestState {
    Open,
    Approved,
    Rejected,
    Stale,
    Published,
}

impl RequestState {
    fn stored(value: &str) -> RequestState {
        match value {
            "approved" => RequestState::Approved,
            "rejected" => RequestState::Rejected,
            "published" => RequestState::Published,
            _ => RequestState::Open,
        }
    }
}

/// A release request, as the domain hands it out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub id: Uuid,
    pub requested_by: String,
    pub note: String,
    /// Requested as "everything pending" (with `fingerprint`).
    pub all_items: bool,
    pub fingerprint: Option<String>,
    /// A requested rollback: the release whose changes are undone.
    pub rollback_to: Option<Uuid>,
    /// The items and the revisions reviewed.
    pub items: Vec<RequestedItem>,
    /// The release that carried it out, once published.
    pub release_id: Option<Uuid>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

impl From<release_requests::Model> for Request {
    fn from(row: release_requests::Model) -> Self {
        Request {
            items: serde_json::from_value(row.items).unwrap_or_default(),
            id: row.id,
            requested_by: row.requested_by,
            note: row.note,
            all_items: row.all_items,
            fingerprint: row.fingerprint,
            rollback_to: row.rollback_to,
            release_id: row.release_id,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// A request with its state as of now.
#[derive(Clone, Debug)]
pub struct RequestView {
    pub request: Request,
    pub state: RequestState,
    /// For a stale request: which items changed, and how.
    pub stale_items: Vec<String>,
}

impl RequestView {
    /// The request with its stored state (what an event carries: staleness needs a read).
    pub fn as_stored(request: release_requests::Model) -> RequestView {
        RequestView {
            state: RequestState::stored(&request.state),
            request: request.into(),
            stale_items: vec![],
        }
    }
}

pub fn items_of(request: &release_requests::Model) -> Vec<RequestedItem> {
    serde_json::from_value(request.items.clone()).unwrap_or_default()
}

/// What a publish plan would carry out, in the form requests store.
fn planned_items(plan: &Plan) -> BTreeSet<RequestedItem> {
    plan.items
        .iter()
        .map(|item| RequestedItem {
            item: item.item.to_string(),
            revision: item.revision.clone(),
        })
        .collect()
}

/// Proposes exactly what to publish. The request is checked like a publish (reviewed revisions
/// current, the fingerprint of `all` current, dependencies satisfied).
pub async fn request_release(
    db: &Db,
    tenant: &Tenant,
    actor: &str,
    request: PublishRequest,
) -> Result<release_requests::Model> {
    validate::author(actor)?;
    if request.all && request.fingerprint.is_none() {
        return Err(Error::bad_input(
            "`all: true` needs `fingerprint`: the one publishPlan returned",
        ));
    }
    let tx = db.begin_write().await?;
    let plan = release_domain::plan(&tx, tenant, &request).await?;
    if !plan.missing.is_empty() {
        return Err(Error::bad_input(format!(
            "missing dependencies: {}",
            plan.missing.join("; ")
        )));
    }
    let items: Vec<RequestedItem> = planned_items(&plan).into_iter().collect();
    let time = now();
    let model = release_requests::ActiveModel {
        id: Set(new_id()),
        tenant_id: Set(tenant.id().to_string()),
        requested_by: Set(actor.to_string()),
        note: Set(request.note.clone()),
        all_items: Set(request.all),
        fingerprint: Set(request.fingerprint.clone()),
        rollback_to: Set(request.rollback_to),
        items: Set(json!(items)),
        state: Set("open".into()),
        release_id: Set(None),
        created_at: Set(time),
        updated_at: Set(time),
    }
    .insert_into(tenant, &tx)
    .await?;
    events::append(&tx, tenant, request_events(kinds::RELEASE_REQUEST_OPENED, &model)).await?;
    db.commit(tx).await?;
    db.wake_live_feed();
    Ok(model)
}

/// Release-request events go to both environments' Releases screens. The payload is a
/// bounded [`events::ReleaseRequestSummary`].
fn request_events(kind: &'static str, request: &release_requests::Model) -> Vec<NewEvent> {
    request_events_with(kind, request, None)
}

fn request_events_with(
    kind: &'static str,
    request: &release_requests::Model,
    review: Option<(&str, &str)>,
) -> Vec<NewEvent> {
    let summary = events::ReleaseRequestSummary {
        id: request.id,
        state: request.state.clone(),
        requested_by: request.requested_by.clone(),
        note: events::clip(&request.note, events::SUMMARY_TEXT_BYTES),
        items: items_of(request)
            .into_iter()
            .take(events::SUMMARY_ITEMS)
            .map(|i| i.item)
            .collect(),
        rollback_to: request.rollback_to,
        release_id: request.release_id,
        reviewer: review.map(|r| r.0.to_string()),
        comment: review.map(|r| events::clip(r.1, events::SUMMARY_TEXT_BYTES)),
        created_at: request.created_at,
    };
    let payload = json!({ "v": events::PAYLOAD_VERSION, "request": summary });
    NewEvent::in_both_environments(Topic::ReleaseRequest, kind, payload)
}

pub async fn get<C: ConnectionTrait>(db: &C, tenant: &Tenant, id: Uuid) -> Result<release_requests::Model> {
    tenant
        .select::<release_requests::Entity>()
        .filter(release_requests::Column::Id.eq(id))
        .one(db)
        .await?
        .ok_or_else(|| Error::not_found(format!("release request {id}")))
}

/// Adds the current state (stale or not) to requests, with one look at the pending changes.
pub async fn views<C: ConnectionTrait>(
    db: &C,
    tenant: &Tenant,
    requests: Vec<release_requests::Model>,
) -> Result<Vec<RequestView>> {
    let needs_check = requests.iter().any(|r| {
        matches!(
            RequestState::stored(&r.state),
            RequestState::Open | RequestState::Approved
        ) && r.rollback_to.is_none()
    });
    let pending = if needs_check {
        release_domain::pending_changes(db, tenant).await?
    } else {
        vec![]
    };
    Ok(requests
        .into_iter()
        .map(|request| {
            let stored = RequestState::stored(&request.state);
            let mut stale_items = Vec::new();
            if matches!(stored, RequestState::Open | RequestState::Approved) && request.rollback_to.is_none() {
                for wanted in items_of(&request) {
                    match pending.iter().find(|p| p.item.to_string() == wanted.item) {
                        Some(change) if Some(&change.revision) == wanted.revision.as_ref() => {}
                        Some(_) => stale_items.push(format!("{} (changed in staging since the request)", wanted.item)),
                        None => stale_items.push(format!("{} (no longer differs from production)", wanted.item)),
                    }
                }
            }
            let state = if stale_items.is_empty() {
                stored
            } else {
                RequestState::Stale
            };
            RequestView {
                request: request.into(),
                state,
                stale_items,
            }
        })
        .collect())
}

/// A page of requests, newest first; with `state`, only those in that state (as of now).
pub async fn list(
    db: &Db,
    tenant: &Tenant,
    state: Option<RequestState>,
    page: &PageRequest,
) -> Result<Page<RequestView>> {
    let mut select = tenant.select::<release_requests::Entity>();
    select = match state {
        Some(RequestState::Rejected) => select.filter(release_requests::Column::State.eq("rejected")),
        Some(RequestState::Published) => select.filter(release_requests::Column::State.eq("published")),
        Some(_) => select.filter(release_requests::Column::State.is_in(["open", "approved"])),
        None => select,
    };
    let fetched = pagination::fetch(db, select, release_requests::Column::Id, page, Order::Desc).await?;
    let mut items = views(&db.conn, tenant, fetched.items).await?;
    if let Some(state) = state {
        // Open/approved/stale are told apart only now: filter after computing.
        items.retain(|view| view.state == state);
    }
    Ok(Page {
        items,
        has_next_page: fetched.has_next_page,
        has_previous_page: fetched.has_previous_page,
        total_count: fetched.total_count,
    })
}

/// A publisher's decision on a release request, as the domain hands it out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Review {
    pub reviewer: String,
    /// Approved (false: rejected).
    pub approved: bool,
    pub comment: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl From<release_request_reviews::Model> for Review {
    fn from(row: release_request_reviews::Model) -> Self {
        Review {
            approved: row.decision == "approved",
            reviewer: row.reviewer,
            comment: row.comment,
            created_at: row.created_at,
        }
    }
}

/// The reviews of a request, oldest first.
pub async fn reviews(db: &Db, tenant: &Tenant, request: Uuid) -> Result<Vec<Review>> {
    Ok(reviews_of(&db.conn, tenant, request)
        .await?
        .into_iter()
        .map(Review::from)
        .collect())
}

async fn reviews_of<C: ConnectionTrait>(
    db: &C,
    tenant: &Tenant,
    request: Uuid,
) -> Result<Vec<release_request_reviews::Model>> {
    Ok(tenant
        .select::<release_request_reviews::Entity>()
        .filter(release_request_reviews::Column::RequestId.eq(request))
        .order_by_asc(release_request_reviews::Column::Id)
        .all(db)
        .await?)
}

/// A publisher approves (`approve`) or rejects a request, with a comment.
pub async fn review(
    db: &Db,
    tenant: &Tenant,
    reviewer: &str,
    id: Uuid,
    approve: bool,
    comment: &str,
) -> Result<RequestView> {
    validate::author(reviewer)?;
    validate::text_size("comment", comment, 2000)?;
    let tx = db.begin_write().await?;
    lock_for_update(&tx, &format!("release-request:{id}")).await?;
    let request = get(&tx, tenant, id).await?;
    if request.requested_by == reviewer {
        return Err(Error::Forbidden(
            "you requested this release: another publisher must review it (two-person rule)".into(),
        ));
    }
    let view = views(&tx, tenant, vec![request.clone()]).await?.remove(0);
    match view.state {
        RequestState::Open => {}
        RequestState::Stale => {
            return Err(Error::Conflict(format!(
                "the request is stale: {}. Request the release again",
                view.stale_items.join(", ")
            )));
        }
        other => {
            return Err(Error::Conflict(format!(
                "the request is already {}; only open requests can be reviewed",
                state_name(other)
            )));
        }
    }
    if reviews_of(&tx, tenant, id)
        .await?
        .iter()
        .any(|r| r.reviewer == reviewer)
    {
        return Err(Error::Conflict("you already reviewed this request".into()));
    }
    release_request_reviews::ActiveModel {
        id: Set(new_id()),
        tenant_id: Set(tenant.id().to_string()),
        request_id: Set(id),
        reviewer: Set(reviewer.to_string()),
        decision: Set(if approve { "approved" } else { "rejected" }.to_string()),
        comment: Set(comment.to_string()),
        created_at: Set(now()),
    }
    .insert_into(tenant, &tx)
    .await?;
    let approvals = reviews_of(&tx, tenant, id)
        .await?
        .iter()
        .filter(|r| r.decision == "approved")
        .count() as i32;
    let required = settings(&tx, tenant).await?.required_approvals.max(1);
    let (state, kind) = if !approve {
        ("rejected", kinds::RELEASE_REQUEST_REJECTED)
    } else if approvals >= required {
        ("approved", kinds::RELEASE_REQUEST_APPROVED)
    } else {
        ("open", kinds::RELEASE_REQUEST_REVIEWED)
    };
    set_state(&tx, tenant, id, "open", state, None).await?;
    let request = get(&tx, tenant, id).await?;
    events::append(
        &tx,
        tenant,
        request_events_with(kind, &request, Some((reviewer, comment))),
    )
    .await?;
    db.commit(tx).await?;
    db.wake_live_feed();
    Ok(RequestView {
        request: request.into(),
        state: RequestState::stored(state),
        stale_items: vec![],
    })
}

fn state_name(state: RequestState) -> &'static str {
    match state {
        RequestState::Open => "open",
        RequestState::Approved => "approved",
        RequestState::Rejected => "rejected",
        RequestState::Stale => "stale",
        RequestState::Published => "published",
    }
}

/// Moves a request from `from` to `to` (CONFLICT if it was moved meanwhile).
async fn set_state<C: ConnectionTrait>(
    db: &C,
    tenant: &Tenant,
    id: Uuid,
    from: &str,
    to: &str,
    release: Option<Uuid>,
) -> Result<()> {
    let mut update = tenant
        .update_many::<release_requests::Entity>()
        .col_expr(release_requests::Column::State, Expr::value(to))
        .col_expr(release_requests::Column::UpdatedAt, Expr::value(now()));
    if let Some(release) = release {
        update = update.col_expr(release_requests::Column::ReleaseId, Expr::value(release));
    }
    let updated = update
        .filter(release_requests::Column::TenantId.eq(tenant.id()))
        .filter(release_requests::Column::Id.eq(id))
        .filter(release_requests::Column::State.eq(from))
        .exec(db)
        .await?;
    if updated.rows_affected != 1 {
        return Err(Error::Conflict(
            "the release request changed concurrently; reload and retry".into(),
        ));
    }
    Ok(())
}

// ----------------------------------------------------------------------------------------
// The publish check
// ----------------------------------------------------------------------------------------

/// How a publish was authorised.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Authorization {
    /// Approvals are off.
    NotRequired,
    /// This approved request, carried out by the publish.
    Approved(Uuid),
    /// An admin's emergency rollback without a request.
    EmergencyOverride,
}

/// The approval check of a publish, inside its transaction (after the plan, before any write).
pub async fn authorize_publish<C: ConnectionTrait>(
    tx: &C,
    tenant: &Tenant,
    role: Role,
    request: &PublishRequest,
    plan: &Plan,
) -> Result<Authorization> {
    let required = settings(tx, tenant).await?.required_approvals;
    if request.emergency_override {
        if plan.rollback_of.is_none() {
            return Err(Error::bad_input(
                "`emergencyOverride` is only for rollbacks; a publish needs an approved release request",
            ));
        }
        if role < Role::Admin {
            return Err(Error::Forbidden(format!(
                "an emergency rollback without approval needs the admin role; your token has the {role} role"
            )));
        }
        return Ok(if required == 0 {
            Authorization::NotRequired
        } else {
            Authorization::EmergencyOverride
        });
    }
    if required == 0 {
        return Ok(Authorization::NotRequired);
    }
    let wanted = planned_items(plan);
    let rollback_to = plan.rollback_of.as_ref().map(|r| r.id);
    let candidates = tenant
        .select::<release_requests::Entity>()
        .filter(release_requests::Column::State.is_in(["open", "approved"]))
        .order_by_desc(release_requests::Column::Id)
        .all(tx)
        .await?;
    let mut stale = Vec::new();
    for candidate in &candidates {
        if candidate.rollback_to != rollback_to {
            continue;
        }
        let items: BTreeSet<RequestedItem> = items_of(candidate).into_iter().collect();
        if items == wanted {
            if candidate.state == "approved" {
                return Ok(Authorization::Approved(candidate.id));
            }
            continue;
        }
        // Same items at other revisions: the request went stale.
        let same_keys = items.iter().map(|i| &i.item).collect::<BTreeSet<_>>()
            == wanted.iter().map(|i| &i.item).collect::<BTreeSet<_>>();
        if same_keys && candidate.state == "approved" {
            let changed: Vec<String> = items
                .iter()
                .filter(|i| !wanted.contains(i))
                .map(|i| i.item.clone())
                .collect();
            stale.push(format!("request {} ({})", candidate.id, changed.join(", ")));
        }
    }
    if !stale.is_empty() {
        return Err(Error::Conflict(format!(
            "the approved release request is stale: these items changed in staging since it was approved: {}. \
             Request the release again and get it approved",
            stale.join("; ")
        )));
    }
    Err(Error::Forbidden(format!(
        "this tenant requires {required} approval(s) before publishing: request the release \
         (`requestRelease` with these items and revisions) and have another publisher approve it"
    )))
}

/// Marks the request a publish carried out as published (inside the publish's transaction).
pub async fn mark_published<C: ConnectionTrait>(
    tx: &C,
    tenant: &Tenant,
    request: Uuid,
    release: &releases::Model,
) -> Result<()> {
    set_state(tx, tenant, request, "approved", "published", Some(release.id)).await?;
    let request = get(tx, tenant, request).await?;
    events::append(tx, tenant, request_events(kinds::RELEASE_REQUEST_PUBLISHED, &request)).await?;
    Ok(())
}
