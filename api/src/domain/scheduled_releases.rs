//! Scheduled releases: exactly the reviewed items and revisions, published once at a time.
//!
//! - [`schedule`] checks the request like a publish (revisions current, dependencies present,
//!   approvals when required) and stores the resolved items and revisions.
//! - [`run_due`] (called every second by every replica's scheduler) claims each due release in
//!   the database with a conditional update, so one replica runs it, and publishes it through
//!   the one publish function with the idempotency key `scheduled:<id>`: a replica that dies
//!   after publishing and before recording it leaves a claim that expires, and the retry finds
//!   the release already made instead of publishing twice.
//! - If anything changed in staging since, the publish is refused (CONFLICT naming the items)
//!   and the scheduled release is marked `failed` with that reason, with an event.
//! - A release due while no process ran is published at the next start if its time is within
//!   the grace window (`RUNFLOW_SCHEDULED_RELEASE_GRACE`), else marked `missed`.

use chrono::{DateTime, Duration, Utc};
use entity::{Environment, scheduled_releases};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, Condition, ConnectionTrait, Order, QueryFilter, QueryOrder, QuerySelect, Set};
use serde_json::json;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::approvals::{self, RequestedItem};
use super::events::{self, NewEvent, Topic, kinds};
use super::pagination::{self, Page, PageRequest};
use super::releases::{self, PublishRequest};
use super::{new_id, now, validate};
use crate::auth::Role;
use crate::db::{Db, lock_for_update};
use crate::error::{Error, Result};
use crate::scope::Tenant;
use crate::scope::{AcrossTenants, TenantWrite};

/// How long a claim lasts before another replica may retry a release left `running`.
const CLAIM_LEASE_SECONDS: i64 = 300;
/// The furthest ahead a release can be scheduled.
const MAX_DAYS_AHEAD: i64 = 366;

/// Schedules `request` (items with revisions, or everything at a fingerprint) for `at`.
pub async fn schedule(
    db: &Db,
    tenant: &Tenant,
    actor: &str,
    role: Role,
    request: PublishRequest,
    at: DateTime<Utc>,
) -> Result<ScheduledRelease> {
    validate::author(actor)?;
    check_time(at)?;
    if request.rollback_to.is_some() || request.emergency_override {
        return Err(Error::bad_input("only publishes can be scheduled, not rollbacks"));
    }
    // A retry with the key returns the first scheduled release, even once staging has moved
    // on (checked again under the tenant's publish lock below, for concurrent retries).
    let request_hash = schedule_hash(&request, at);
    if let Some(key) = &request.idempotency_key {
        validate::short_text("idempotencyKey", key, 255)?;
        if let Some(existing) = scheduled_with_key(&db.conn, tenant, key, &request_hash).await? {
            return Ok(existing.into());
        }
    }
    if request.all && request.fingerprint.is_none() {
        return Err(Error::bad_input(
            "`all: true` needs `fingerprint`: the one publishPlan returned",
        ));
    }
    let plan = releases::plan(&db.conn, tenant, &request).await?;
    if !plan.missing.is_empty() {
        return Err(Error::bad_input(format!(
            "missing dependencies: {}",
            plan.missing.join("; ")
        )));
    }
    // With approvals required, refuse now what the publish would refuse then.
    approvals::authorize_publish(&db.conn, tenant, role, &request, &plan).await?;
    let items: Vec<RequestedItem> = plan
        .items
        .iter()
        .map(|i| RequestedItem {
            item: i.item.to_string(),
            revision: i.revision.clone(),
        })
        .collect();
    let time = now();
    let tx = db.begin_write().await?;
    if let Some(key) = &request.idempotency_key {
        lock_for_update(&tx, &format!("publish:{}", tenant.id())).await?;
        if let Some(existing) = scheduled_with_key(&tx, tenant, key, &request_hash).await? {
            return Ok(existing.into());
        }
    }
    let model = scheduled_releases::ActiveModel {
        id: Set(new_id()),
        tenant_id: Set(tenant.id().to_string()),
        run_at: Set(at),
        items: Set(json!(items)),
        note: Set(request.note.clone()),
        state: Set("scheduled".into()),
        revision: Set(1),
        claimed_until: Set(None),
        release_id: Set(None),
        failure: Set(None),
        stale_items: Set(None),
        created_by: Set(actor.to_string()),
        created_by_role: Set(role.as_str().to_string()),
        created_at: Set(time),
        updated_at: Set(time),
        request_hash: Set(request.idempotency_key.as_ref().map(|_| request_hash)),
        idempotency_key: Set(request.idempotency_key.clone()),
    }
    .insert_into(tenant, &tx)
    .await?;
    events::append(&tx, tenant, schedule_events(kinds::SCHEDULED_RELEASE_SCHEDULED, &model)).await?;
    db.commit(tx).await?;
    db.wake_live_feed();
    Ok(model.into())
}

/// A fingerprint of a scheduling request: what it publishes and when.
fn schedule_hash(request: &PublishRequest, at: DateTime<Utc>) -> String {
    let text = format!("{} at {}", releases::request_hash(request), at.to_rfc3339());
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// The scheduled release an idempotency key already made, if the request is the same (a
/// retry); the key used by another request, or by a publish that ran at once, is refused.
async fn scheduled_with_key<C: ConnectionTrait>(
    db: &C,
    tenant: &Tenant,
    key: &str,
    request_hash: &str,
) -> Result<Option<scheduled_releases::Model>> {
    let existing = tenant
        .select::<scheduled_releases::Entity>()
        .filter(scheduled_releases::Column::IdempotencyKey.eq(key))
        .one(db)
        .await?;
    if let Some(existing) = existing {
        if existing.request_hash.as_deref() != Some(request_hash) {
            return Err(Error::IdempotencyKeyReused(format!(
                "idempotency key {key:?} was already used to schedule another release (for {}); \
                 use a new key for a new request",
                existing.run_at.to_rfc3339()
            )));
        }
        return Ok(Some(existing));
    }
    let published = tenant
        .select::<entity::releases::Entity>()
        .filter(entity::releases::Column::IdempotencyKey.eq(key))
        .one(db)
        .await?;
    if let Some(release) = published {
        return Err(Error::IdempotencyKeyReused(format!(
            "idempotency key {key:?} was already used by release {}, published at once; use a \
             new key for a new request",
            release.number
        )));
    }
    Ok(None)
}

fn check_time(at: DateTime<Utc>) -> Result<()> {
    let now = Utc::now();
    if at <= now {
        return Err(Error::bad_input("`at` must be in the future"));
    }
    if at > now + Duration::days(MAX_DAYS_AHEAD) {
        return Err(Error::bad_input(format!("`at` must be within {MAX_DAYS_AHEAD} days")));
    }
    Ok(())
}

/// Scheduled-release events go to both environments; the payload is a bounded
/// [`events::ScheduledReleaseSummary`].
fn schedule_events(kind: &'static str, model: &scheduled_releases::Model) -> Vec<NewEvent> {
    schedule_events_with(kind, model, vec![])
}

fn schedule_events_with(
    kind: &'static str,
    model: &scheduled_releases::Model,
    stale_items: Vec<String>,
) -> Vec<NewEvent> {
    let summary = events::ScheduledReleaseSummary {
        id: model.id,
        state: model.state.clone(),
        at: model.run_at,
        note: events::clip(&model.note, events::SUMMARY_TEXT_BYTES),
        items: items_of(model)
            .into_iter()
            .take(events::SUMMARY_ITEMS)
            .map(|i| i.item)
            .collect(),
        stale_items: stale_items.into_iter().take(events::SUMMARY_ITEMS).collect(),
        failure: model
            .failure
            .as_deref()
            .map(|f| events::clip(f, events::SUMMARY_TEXT_BYTES)),
        release_id: model.release_id,
        created_by: model.created_by.clone(),
    };
    let payload = json!({ "v": events::PAYLOAD_VERSION, "scheduledRelease": summary });
    NewEvent::in_both_environments(Topic::Schedule, kind, payload)
}

/// A scheduled release, as the domain hands it out (its claim, the scheduler's role and the
/// idempotency fingerprint stay internal).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduledRelease {
    pub id: Uuid,
    /// When it is (or was) to be published.
    pub run_at: DateTime<Utc>,
    /// Exactly the items and fingerprints it publishes.
    pub items: Vec<RequestedItem>,
    pub note: String,
    /// `scheduled`, `running`, `published`, `failed`, `missed` or `cancelled`.
    pub state: String,
    pub revision: i64,
    /// Once published: the release it made.
    pub release_id: Option<Uuid>,
    /// Why it failed, or was missed.
    pub failure: Option<String>,
    /// For a failed one: the keys of the items that changed in staging since it was scheduled.
    pub stale_items: Vec<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<scheduled_releases::Model> for ScheduledRelease {
    fn from(row: scheduled_releases::Model) -> Self {
        ScheduledRelease {
            items: serde_json::from_value(row.items).unwrap_or_default(),
            stale_items: row
                .stale_items
                .and_then(|v| serde_json::from_value(v).ok())
                .unwrap_or_default(),
            id: row.id,
            run_at: row.run_at,
            note: row.note,
            state: row.state,
            revision: row.revision,
            release_id: row.release_id,
            failure: row.failure,
            created_by: row.created_by,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// A scheduled release of the tenant by id (None: not there).
pub async fn by_id(db: &Db, tenant: &Tenant, id: Uuid) -> Result<Option<ScheduledRelease>> {
    let row =
        super::lookup::in_tenant::<scheduled_releases::Entity, _>(&db.conn, tenant, scheduled_releases::Column::Id, id);
    Ok(row.await?.map(ScheduledRelease::from))
}

pub fn items_of(model: &scheduled_releases::Model) -> Vec<RequestedItem> {
    serde_json::from_value(model.items.clone()).unwrap_or_default()
}

pub async fn get<C: sea_orm::ConnectionTrait>(db: &C, tenant: &Tenant, id: Uuid) -> Result<scheduled_releases::Model> {
    tenant
        .select::<scheduled_releases::Entity>()
        .filter(scheduled_releases::Column::Id.eq(id))
        .one(db)
        .await?
        .ok_or_else(|| Error::not_found(format!("scheduled release {id}")))
}

/// A page of scheduled releases, newest first; with `state`, only those.
pub async fn list(db: &Db, tenant: &Tenant, state: Option<&str>, page: &PageRequest) -> Result<Page<ScheduledRelease>> {
    let mut select = tenant.select::<scheduled_releases::Entity>();
    if let Some(state) = state {
        select = select.filter(scheduled_releases::Column::State.eq(state));
    }
    let page = pagination::fetch(db, select, scheduled_releases::Column::Id, page, Order::Desc).await?;
    Ok(page.map(ScheduledRelease::from))
}

/// Moves a scheduled release still `scheduled` (at `expected`'s revision if given).
async fn change_scheduled(
    db: &Db,
    tenant: &Tenant,
    id: Uuid,
    expected_revision: Option<i64>,
    kind: &'static str,
    update: impl FnOnce(sea_orm::UpdateMany<scheduled_releases::Entity>) -> sea_orm::UpdateMany<scheduled_releases::Entity>,
) -> Result<scheduled_releases::Model> {
    let tx = db.begin_write().await?;
    let current = get(&tx, tenant, id).await?;
    if current.state != "scheduled" {
        return Err(Error::Conflict(format!(
            "the scheduled release is already {}; only a scheduled one can be changed",
            current.state
        )));
    }
    crate::error::check_revision("the scheduled release", current.revision, expected_revision)?;
    let updated = update(tenant.update_many::<scheduled_releases::Entity>())
        .col_expr(scheduled_releases::Column::Revision, Expr::value(current.revision + 1))
        .col_expr(scheduled_releases::Column::UpdatedAt, Expr::value(now()))
        .filter(scheduled_releases::Column::Id.eq(id))
        .filter(scheduled_releases::Column::State.eq("scheduled"))
        .filter(scheduled_releases::Column::Revision.eq(current.revision))
        .exec(&tx)
        .await?;
    if updated.rows_affected != 1 {
        return Err(Error::Conflict(
            "the scheduled release changed concurrently (or started); reload and retry".into(),
        ));
    }
    let model = get(&tx, tenant, id).await?;
    events::append(&tx, tenant, schedule_events(kind, &model)).await?;
    db.commit(tx).await?;
    db.wake_live_feed();
    Ok(model)
}

pub async fn cancel(db: &Db, tenant: &Tenant, id: Uuid, expected_revision: Option<i64>) -> Result<ScheduledRelease> {
    change_scheduled(
        db,
        tenant,
        id,
        expected_revision,
        kinds::SCHEDULED_RELEASE_CANCELLED,
        |u| u.col_expr(scheduled_releases::Column::State, Expr::value("cancelled")),
    )
    .await
    .map(ScheduledRelease::from)
}

pub async fn reschedule(
    db: &Db,
    tenant: &Tenant,
    id: Uuid,
    at: DateTime<Utc>,
    expected_revision: Option<i64>,
) -> Result<ScheduledRelease> {
    check_time(at)?;
    change_scheduled(
        db,
        tenant,
        id,
        expected_revision,
        kinds::SCHEDULED_RELEASE_RESCHEDULED,
        |u| u.col_expr(scheduled_releases::Column::RunAt, Expr::value(at)),
    )
    .await
    .map(ScheduledRelease::from)
}

/// Runs what is due (every tenant): claims each in the database, so across replicas each runs
/// once. Returns how many this call finished (published, failed or missed).
pub async fn run_due(db: &Db, grace: std::time::Duration) -> Result<usize> {
    let time = now();
    let due = AcrossTenants::select::<scheduled_releases::Entity>()
        .filter(
            Condition::any()
                .add(
                    Condition::all()
                        .add(scheduled_releases::Column::State.eq("scheduled"))
                        .add(scheduled_releases::Column::RunAt.lte(time)),
                )
                .add(
                    Condition::all()
                        .add(scheduled_releases::Column::State.eq("running"))
                        .add(scheduled_releases::Column::ClaimedUntil.lt(time)),
                ),
        )
        .order_by_asc(scheduled_releases::Column::RunAt)
        .limit(50)
        .all(&db.conn)
        .await?;
    let grace = Duration::from_std(grace).unwrap_or(Duration::MAX);
    let mut finished = 0;
    for release in due {
        let tenant = Tenant::of_scheduled_release(&release);
        if release.state == "scheduled" && release.run_at + grace < time {
            if finish(
                db,
                &tenant,
                &release,
                release.revision,
                Outcome {
                    from: "scheduled",
                    to: kinds::SCHEDULED_RELEASE_MISSED,
                    made: None,
                    failure: Some(format!(
                        "no Runflow process ran between its time ({}) and the end of the grace window",
                        release.run_at.to_rfc3339()
                    )),
                    stale_items: vec![],
                },
            )
            .await?
            {
                finished += 1;
            }
            continue;
        }
        // Claim it: only one replica's conditional update matches this revision.
        let claimed = AcrossTenants::update_many::<scheduled_releases::Entity>()
            .col_expr(scheduled_releases::Column::State, Expr::value("running"))
            .col_expr(
                scheduled_releases::Column::ClaimedUntil,
                Expr::value(time + Duration::seconds(CLAIM_LEASE_SECONDS)),
            )
            .col_expr(scheduled_releases::Column::Revision, Expr::value(release.revision + 1))
            .filter(scheduled_releases::Column::Id.eq(release.id))
            .filter(scheduled_releases::Column::Revision.eq(release.revision))
            .exec(&db.conn)
            .await?;
        if claimed.rows_affected != 1 {
            continue; // another replica has it
        }
        let revision = release.revision + 1;
        let role: Role = release.created_by_role.parse().unwrap_or(Role::Publisher);
        let request = PublishRequest {
            items: items_of(&release).into_iter().map(|i| (i.item, i.revision)).collect(),
            note: release.note.clone(),
            idempotency_key: Some(format!("scheduled:{}", release.id)),
            ..PublishRequest::default()
        };
        let latest = super::audit::state::RecordRef {
            kind: "Release".into(),
            ..Default::default()
        };
        let before = super::audit::state::state_of(&db.conn, &tenant, Environment::Production, &latest)
            .await
            .unwrap_or_default();
        // The publish is a change like any other: audited, in the scheduler's name, in the
        // publish's own transaction.
        let actor = crate::auth::Actor::on_behalf_of(&release.created_by, tenant.id(), role);
        let entry = super::audit::NewAuditEntry {
            environment: Environment::Production,
            action: "scheduledPublish".into(),
            record_kind: "Release".into(),
            record_key: None,
            summary: json!({ "input": { "scheduledRelease": release.id }, "resultId": null }),
            before,
            after: None,
        };
        let pending = super::audit::Pending::new(actor, entry, latest);
        let outcome = match pending
            .run(releases::publish(db, &tenant, &release.created_by, role, request))
            .await
        {
            Ok(made) => {
                if let Err(error) = super::audit::finish(db, &pending, Some(json!(made.id))).await {
                    // Only when the publish committed nothing (a replay of one already made).
                    tracing::error!(scheduled_release = %release.id, %error, "audit entry not recorded");
                }
                Outcome {
                    from: "running",
                    to: kinds::SCHEDULED_RELEASE_PUBLISHED,
                    made: Some(made.id),
                    failure: None,
                    stale_items: vec![],
                }
            }
            Err(error @ (Error::ServiceUnavailable(_) | Error::Internal(_))) => {
                // Left running: retried when the claim expires.
                tracing::warn!(scheduled_release = %release.id, %error, "scheduled release: cannot publish now");
                continue;
            }
            Err(error) => Outcome {
                from: "running",
                to: kinds::SCHEDULED_RELEASE_FAILED,
                made: None,
                failure: Some(error.to_string()),
                stale_items: stale_items(db, &tenant, &release).await.unwrap_or_default(),
            },
        };
        if finish(db, &tenant, &release, revision, outcome).await? {
            finished += 1;
        }
    }
    Ok(finished)
}

/// How a scheduled release ended.
struct Outcome {
    from: &'static str,
    to: &'static str,
    made: Option<Uuid>,
    failure: Option<String>,
    stale_items: Vec<String>,
}

/// The item keys of `release` whose staging state changed since it was scheduled (or that no
/// longer differ from production).
async fn stale_items(db: &Db, tenant: &Tenant, release: &scheduled_releases::Model) -> Result<Vec<String>> {
    let pending = releases::pending_changes(&db.conn, tenant).await?;
    Ok(items_of(release)
        .into_iter()
        .filter(|wanted| {
            !pending
                .iter()
                .any(|p| p.item.to_string() == wanted.item && Some(&p.revision) == wanted.revision.as_ref())
        })
        .map(|wanted| wanted.item)
        .collect())
}

/// Records the outcome (conditional on the state and revision), with its event.
async fn finish(
    db: &Db,
    tenant: &Tenant,
    release: &scheduled_releases::Model,
    revision: i64,
    outcome: Outcome,
) -> Result<bool> {
    let Outcome {
        from,
        to,
        made,
        failure,
        stale_items,
    } = outcome;
    let tx = db.begin_write().await?;
    let updated = tenant
        .update_many::<scheduled_releases::Entity>()
        .col_expr(scheduled_releases::Column::State, Expr::value(to))
        .col_expr(scheduled_releases::Column::Revision, Expr::value(revision + 1))
        .col_expr(scheduled_releases::Column::ReleaseId, Expr::value(made))
        .col_expr(scheduled_releases::Column::Failure, Expr::value(failure))
        .col_expr(
            scheduled_releases::Column::StaleItems,
            Expr::value((!stale_items.is_empty()).then(|| json!(stale_items))),
        )
        .col_expr(scheduled_releases::Column::UpdatedAt, Expr::value(now()))
        .filter(scheduled_releases::Column::Id.eq(release.id))
        .filter(scheduled_releases::Column::State.eq(from))
        .filter(scheduled_releases::Column::Revision.eq(revision))
        .exec(&tx)
        .await?;
    if updated.rows_affected != 1 {
        return Ok(false);
    }
    let model = get(&tx, tenant, release.id).await?;
    events::append(&tx, tenant, schedule_events_with(to, &model, stale_items)).await?;
    db.commit(tx).await?;
    db.wake_live_feed();
    tracing::info!(scheduled_release = %release.id, tenant = %tenant.id(), state = to, "scheduled release finished");
    Ok(true)
}
