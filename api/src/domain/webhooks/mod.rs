//! Outgoing webhooks: tenant-level endpoints (shared by both environments, admin only) that
//! receive signed messages (Standard Webhooks, see [`signature`]) about what happened.
//!
//! Messages come from the event log ([`crate::domain::events`]), through an outbox:
//! 1. **Fill** ([`outbox::fill`]): per tenant, a cursor stored in the database says how far the
//!    log has been read; the events after it become one delivery row per subscribed endpoint,
//!    and the cursor moves, in one transaction whose cursor update is conditional on the value
//!    read. Two replicas filling at once: exactly one commits. An event is therefore turned
//!    into deliveries exactly once, and never lost across restarts.
//! 2. **Claim** ([`outbox::claim_due`]): a due delivery is taken by one process with
//!    `UPDATE ... WHERE id = ? AND status = 'pending' AND (claimed_until IS NULL OR
//!    claimed_until < now)` (atomic on both databases); the claim expires, so a process that
//!    dies mid-call leaves the delivery to another after the lease.
//! 3. **Record** ([`outbox::record`]): a 2xx answer marks it succeeded; anything else schedules
//!    a retry with exponential backoff and jitter until `RUNFLOW_WEBHOOK_RETRY_FOR` after its
//!    creation, then it is failed and its endpoint is marked failing (until a delivery to it
//!    succeeds again).
//!
//! Delivery is at least once: a process that dies after the receiver answered but before the
//! answer was recorded sends the message again. Receivers deduplicate on `webhook-id`.

pub mod outbox;
pub mod signature;
pub mod target;

use std::time::Duration;

use chrono::{DateTime, Utc};
use entity::{event_counters, webhook_cursors, webhook_deliveries, webhook_endpoints};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, ConnectionTrait, Order, PaginatorTrait, QueryFilter, Set};
use serde_json::{Value, json};
use uuid::Uuid;

use super::credentials::Secret;
use super::pagination::{self, Page, PageRequest};
use super::revision::{self, Revisioned};
use super::{new_id, now, validate};
use crate::crypto::{Sealed, SecretBox};
use crate::db::Db;
use crate::error::{Error, Result};
use crate::scope::{Tenant, TenantWrite};

/// Endpoints a tenant may have.
pub const MAX_ENDPOINTS: u64 = 20;
/// The most of a response body read (and then discarded), in bytes.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// Longest error message kept in the delivery log, in bytes.
pub const MAX_ERROR_BYTES: usize = 1000;

/// How outgoing webhooks behave (from `RUNFLOW_WEBHOOK_*`).
#[derive(Clone, Copy, Debug)]
pub struct WebhookSettings {
    /// Allow loopback, private and link-local targets (`RUNFLOW_WEBHOOK_ALLOW_PRIVATE`).
    pub allow_private: bool,
    /// How long after its creation a delivery is retried (`RUNFLOW_WEBHOOK_RETRY_FOR`).
    pub retry_for: Duration,
    /// The first retry's delay; each next one doubles, up to an hour (`RUNFLOW_WEBHOOK_RETRY_BASE`).
    pub retry_base: Duration,
    /// Time limit of one call, response included (`RUNFLOW_WEBHOOK_TIMEOUT`).
    pub timeout: Duration,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            allow_private: false,
            retry_for: Duration::from_secs(24 * 3600),
            retry_base: Duration::from_secs(5),
            timeout: Duration::from_secs(10),
        }
    }
}

impl WebhookSettings {
    /// Time limit of connecting (part of [`Self::timeout`]).
    pub fn connect_timeout(&self) -> Duration {
        self.timeout.min(Duration::from_secs(5))
    }

    /// How long a claim on a delivery lasts: longer than any call.
    pub fn claim_lease(&self) -> Duration {
        self.timeout + Duration::from_secs(30)
    }
}

/// What an endpoint can subscribe to (and the `type` of each message).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventType {
    /// A publish reached production.
    ReleasePublished,
    /// A rollback reached production.
    ReleaseRolledBack,
    /// An execution in production finished FAILED.
    ExecutionFailed,
    /// A release request was opened (approvals, issue 12).
    ReleaseRequestOpened,
    /// A release request got its last required approval.
    ReleaseRequestApproved,
    /// A scheduled release did not publish: staging moved (failed) or it was missed.
    ScheduledReleaseFailed,
    /// A test message (`testWebhookEndpoint`); not subscribable.
    Ping,
}

impl EventType {
    pub const SUBSCRIBABLE: [EventType; 6] = [
        EventType::ReleasePublished,
        EventType::ReleaseRolledBack,
        EventType::ExecutionFailed,
        EventType::ReleaseRequestOpened,
        EventType::ReleaseRequestApproved,
        EventType::ScheduledReleaseFailed,
    ];

    /// The message `type`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::ReleasePublished => "release.published",
            EventType::ReleaseRolledBack => "release.rolled_back",
            EventType::ExecutionFailed => "execution.failed",
            EventType::ReleaseRequestOpened => "release_request.opened",
            EventType::ReleaseRequestApproved => "release_request.approved",
            EventType::ScheduledReleaseFailed => "scheduled_release.failed",
            EventType::Ping => "webhook.ping",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::SUBSCRIBABLE
            .into_iter()
            .chain([EventType::Ping])
            .find(|t| t.as_str() == value)
    }

    /// The message type of an event-log event, if endpoints can receive it. Release, request
    /// and schedule events are written once per environment; the production one is sent.
    /// (The `release_request` and `schedule` topics are written by approvals and scheduled
    /// releases, issue 12; matched by name, they need no code from those modules.)
    pub fn of_event(event: &crate::domain::events::Event) -> Option<Self> {
        use crate::domain::events::kinds;
        if event.environment != entity::Environment::Production {
            return None;
        }
        match (event.topic.as_str(), event.kind.as_str()) {
            ("release", "published") => Some(EventType::ReleasePublished),
            ("release", "rolled_back") => Some(EventType::ReleaseRolledBack),
            ("release_request", kinds::RELEASE_REQUEST_OPENED) => Some(EventType::ReleaseRequestOpened),
            ("release_request", kinds::RELEASE_REQUEST_APPROVED) => Some(EventType::ReleaseRequestApproved),
            ("schedule", kinds::SCHEDULED_RELEASE_FAILED | kinds::SCHEDULED_RELEASE_MISSED) => {
                Some(EventType::ScheduledReleaseFailed)
            }
            ("execution", "finished")
                if event.payload.pointer("/execution/status").and_then(Value::as_str) == Some("FAILED") =>
            {
                Some(EventType::ExecutionFailed)
            }
            _ => None,
        }
    }
}

/// The JSON body of the message for an event (the event's versioned summary, see the
/// README's "Event payloads", plus where it happened).
pub fn message_body(event_type: EventType, event: &crate::domain::events::Event) -> String {
    let mut data = serde_json::Map::new();
    data.insert("tenant".into(), json!(event.tenant_id));
    data.insert("environment".into(), json!(event.environment.as_str()));
    data.insert("eventSeq".into(), json!(event.seq));
    if let Some(agent) = &event.agent_slug {
        data.insert("agent".into(), json!(agent));
    }
    if let Value::Object(payload) = &event.payload {
        for (key, value) in payload {
            if key != "v" {
                data.insert(key.clone(), value.clone());
            }
        }
    }
    json!({
        "type": event_type.as_str(),
        "timestamp": event.created_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "data": data,
    })
    .to_string()
}

/// The `webhook-id` of the message made from an event (the same for every endpoint).
pub fn message_id_of_event(event_id: Uuid) -> String {
    format!("msg_{}", event_id.simple())
}

/// The state of a delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryStatus {
    Pending,
    Succeeded,
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Succeeded => "succeeded",
            DeliveryStatus::Failed => "failed",
        }
    }

    pub fn parse(value: &str) -> Self {
        match value {
            "succeeded" => DeliveryStatus::Succeeded,
            "failed" => DeliveryStatus::Failed,
            _ => DeliveryStatus::Pending,
        }
    }
}

impl Revisioned for webhook_endpoints::Entity {
    fn id_column() -> Self::Column {
        webhook_endpoints::Column::Id
    }
    fn revision_column() -> Self::Column {
        webhook_endpoints::Column::Revision
    }
    fn revision_of(model: &Self::Model) -> i64 {
        model.revision
    }
}

/// A webhook endpoint, as the domain hands it out: without its signing secret (only a hint).
#[derive(Clone, Debug, PartialEq)]
pub struct Endpoint {
    pub id: Uuid,
    pub url: String,
    /// The event types it receives (stored ones this server does not know are left out).
    pub event_types: Vec<EventType>,
    pub enabled: bool,
    /// A masked hint of the signing secret.
    pub secret_hint: String,
    pub revision: i64,
    /// Since when a delivery ran out of retries (None: healthy).
    pub failing_since: Option<DateTime<Utc>>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<webhook_endpoints::Model> for Endpoint {
    fn from(row: webhook_endpoints::Model) -> Self {
        Endpoint {
            event_types: event_types(&row),
            id: row.id,
            url: row.url,
            enabled: row.enabled,
            secret_hint: row.secret_hint,
            revision: row.revision,
            failing_since: row.failing_since,
            created_by: row.created_by,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// One message queued for one endpoint, and how its delivery went.
#[derive(Clone, Debug, PartialEq)]
pub struct Delivery {
    pub id: Uuid,
    pub endpoint_id: Uuid,
    /// The `webhook-id` header (`msg_...`).
    pub message_id: String,
    pub event_type: EventType,
    /// The exact JSON body sent.
    pub body: String,
    pub status: DeliveryStatus,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub response_status: Option<i32>,
    pub latency_ms: Option<i64>,
    pub last_error: Option<String>,
}

impl TryFrom<webhook_deliveries::Model> for Delivery {
    type Error = Error;

    fn try_from(row: webhook_deliveries::Model) -> Result<Self> {
        Ok(Delivery {
            event_type: EventType::parse(&row.event_type)
                .ok_or_else(|| Error::internal(anyhow::anyhow!("unknown webhook event type")))?,
            status: DeliveryStatus::parse(&row.status),
            id: row.id,
            endpoint_id: row.endpoint_id,
            message_id: row.message_id,
            body: row.body,
            attempts: row.attempts,
            next_attempt_at: row.next_attempt_at,
            created_at: row.created_at,
            last_attempt_at: row.last_attempt_at,
            delivered_at: row.delivered_at,
            response_status: row.response_status,
            latency_ms: row.latency_ms,
            last_error: row.last_error,
        })
    }
}

/// The subscribed event types of an endpoint row.
pub fn event_types(row: &webhook_endpoints::Model) -> Vec<EventType> {
    super::string_array(Some(&row.event_types))
        .iter()
        .filter_map(|t| EventType::parse(t))
        .collect()
}

fn event_types_value(types: &[EventType]) -> Result<Value> {
    if types.is_empty() {
        return Err(Error::bad_input("`eventTypes` must name at least one event type"));
    }
    if types.contains(&EventType::Ping) {
        return Err(Error::bad_input(
            "`eventTypes` cannot hold PING: pings are sent only by testWebhookEndpoint",
        ));
    }
    let mut names: Vec<&str> = types.iter().map(|t| t.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    Ok(json!(names))
}

fn seal(secret_box: &SecretBox, secret: &Secret) -> Result<(Sealed, String)> {
    signature::key(secret)?;
    let sealed = secret_box.seal(&secret.0).map_err(Error::internal)?;
    Ok((sealed, crate::crypto::hint(&secret.0)))
}

/// The signing key of an endpoint (for the sender only; never returned by a read).
pub fn signing_key(secret_box: &SecretBox, row: &webhook_endpoints::Model) -> Result<Vec<u8>> {
    let secret = secret_box
        .open(&Sealed {
            ciphertext: row.secret_ciphertext.clone(),
            nonce: row.secret_nonce.clone(),
        })
        .map_err(Error::internal)?;
    signature::key(&Secret(secret.to_string()))
}

/// A new endpoint.
#[derive(Debug)]
pub struct NewEndpoint {
    pub url: String,
    pub event_types: Vec<EventType>,
    pub enabled: bool,
    /// None: one is generated (and returned once).
    pub secret: Option<Secret>,
}

/// Changes to an endpoint; `None` keeps a value.
#[derive(Debug, Default)]
pub struct EndpointChanges {
    pub url: Option<String>,
    pub event_types: Option<Vec<EventType>>,
    pub enabled: Option<bool>,
    pub secret: Option<Secret>,
    pub expected_revision: Option<i64>,
}

/// Creates an endpoint; returns it and, when the secret was generated, that secret (the only
/// time it is ever returned).
pub async fn create(
    db: &Db,
    tenant: &Tenant,
    secret_box: &SecretBox,
    settings: &WebhookSettings,
    actor: &str,
    new: NewEndpoint,
) -> Result<(Endpoint, Option<Secret>)> {
    validate::author(actor)?;
    validate::no_nul("url", &new.url)?;
    let event_types = event_types_value(&new.event_types)?;
    let (secret, generated) = match new.secret {
        Some(secret) => (secret, false),
        None => (signature::generate(), true),
    };
    let (sealed, hint) = seal(secret_box, &secret)?;
    target::check_on_save(&new.url, settings.allow_private).await?;
    let tx = db.begin_write().await?;
    crate::db::lock_for_update(&tx, &format!("webhook-endpoints-of:{}", tenant.id())).await?;
    let count = tenant.select::<webhook_endpoints::Entity>().count(&tx).await?;
    if count >= MAX_ENDPOINTS {
        return Err(Error::LimitExceeded(format!(
            "a tenant may have at most {MAX_ENDPOINTS} webhook endpoints; delete one first"
        )));
    }
    start_cursor(&tx, tenant).await?;
    let time = now();
    let row = webhook_endpoints::ActiveModel {
        id: Set(new_id()),
        tenant_id: Set(tenant.id().to_string()),
        url: Set(new.url),
        event_types: Set(event_types),
        enabled: Set(new.enabled),
        secret_ciphertext: Set(sealed.ciphertext),
        secret_nonce: Set(sealed.nonce),
        secret_hint: Set(hint),
        revision: Set(1),
        failing_since: Set(None),
        created_by: Set(actor.to_string()),
        created_at: Set(time),
        updated_at: Set(time),
    }
    .insert_into(tenant, &tx)
    .await?;
    db.commit(tx).await?;
    Ok((row.into(), generated.then_some(secret)))
}

/// Makes sure the tenant's outbox cursor exists; a new one starts at the latest event, so
/// an endpoint receives what happens after it was created, not the history.
async fn start_cursor<C: ConnectionTrait>(tx: &C, tenant: &Tenant) -> Result<()> {
    let head = tenant
        .select::<event_counters::Entity>()
        .one(tx)
        .await?
        .map_or(0, |c| c.seq);
    tenant
        .insert_one(webhook_cursors::ActiveModel {
            tenant_id: Set(tenant.id().to_string()),
            seq: Set(head),
        })
        .on_conflict(
            OnConflict::column(webhook_cursors::Column::TenantId)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(tx)
        .await?;
    Ok(())
}

async fn find<C: ConnectionTrait>(db: &C, tenant: &Tenant, id: Uuid) -> Result<webhook_endpoints::Model> {
    super::lookup::in_tenant::<webhook_endpoints::Entity, _>(db, tenant, webhook_endpoints::Column::Id, id)
        .await?
        .ok_or_else(|| Error::not_found("webhook endpoint"))
}

/// Changes an endpoint. Any change clears its failing mark (the next delivery tells again).
pub async fn update(
    db: &Db,
    tenant: &Tenant,
    secret_box: &SecretBox,
    settings: &WebhookSettings,
    id: Uuid,
    changes: EndpointChanges,
) -> Result<Endpoint> {
    let event_types = changes.event_types.as_deref().map(event_types_value).transpose()?;
    let secret = changes.secret.as_ref().map(|s| seal(secret_box, s)).transpose()?;
    if let Some(url) = &changes.url {
        validate::no_nul("url", url)?;
        target::check_on_save(url, settings.allow_private).await?;
    }
    let tx = db.begin_write().await?;
    find(&tx, tenant, id).await?;
    let row = revision::update::<webhook_endpoints::Entity, _, _>(
        &tx,
        tenant,
        "webhook endpoint",
        id,
        changes.expected_revision,
        |active| {
            if let Some(url) = changes.url {
                active.url = Set(url);
            }
            if let Some(types) = event_types {
                active.event_types = Set(types);
            }
            if let Some(enabled) = changes.enabled {
                active.enabled = Set(enabled);
            }
            if let Some((sealed, hint)) = secret {
                active.secret_ciphertext = Set(sealed.ciphertext);
                active.secret_nonce = Set(sealed.nonce);
                active.secret_hint = Set(hint);
            }
            active.failing_since = Set(None);
            active.updated_at = Set(now());
        },
    )
    .await?;
    db.commit(tx).await?;
    Ok(row.into())
}

/// Deletes an endpoint and its delivery log (pending deliveries are not sent).
pub async fn delete(db: &Db, tenant: &Tenant, id: Uuid, expected_revision: Option<i64>) -> Result<Uuid> {
    let tx = db.begin_write().await?;
    find(&tx, tenant, id).await?;
    revision::delete::<webhook_endpoints::Entity, _>(&tx, tenant, "webhook endpoint", id, expected_revision).await?;
    tenant
        .delete_many::<webhook_deliveries::Entity>()
        .filter(webhook_deliveries::Column::EndpointId.eq(id))
        .exec(&tx)
        .await?;
    db.commit(tx).await?;
    Ok(id)
}

/// A page of the tenant's endpoints, oldest first.
pub async fn list(db: &Db, tenant: &Tenant, page: &PageRequest) -> Result<Page<Endpoint>> {
    let select = tenant.select::<webhook_endpoints::Entity>();
    let page = pagination::fetch(db, select, webhook_endpoints::Column::Id, page, Order::Asc).await?;
    Ok(page.map(Endpoint::from))
}

/// An endpoint of the tenant (NOT_FOUND for another tenant's).
pub async fn get(db: &Db, tenant: &Tenant, id: Uuid) -> Result<Endpoint> {
    Ok(find(&db.conn, tenant, id).await?.into())
}

/// An endpoint of the tenant by id (None: not there).
pub async fn endpoint_by_id(db: &Db, tenant: &Tenant, id: Uuid) -> Result<Option<Endpoint>> {
    let row =
        super::lookup::in_tenant::<webhook_endpoints::Entity, _>(&db.conn, tenant, webhook_endpoints::Column::Id, id);
    Ok(row.await?.map(Endpoint::from))
}

/// A delivery of the tenant by id (None: not there).
pub async fn delivery_by_id(db: &Db, tenant: &Tenant, id: Uuid) -> Result<Option<Delivery>> {
    let row =
        super::lookup::in_tenant::<webhook_deliveries::Entity, _>(&db.conn, tenant, webhook_deliveries::Column::Id, id);
    row.await?.map(Delivery::try_from).transpose()
}

/// A page of an endpoint's delivery log, newest first.
pub async fn deliveries(db: &Db, tenant: &Tenant, endpoint: Uuid, page: &PageRequest) -> Result<Page<Delivery>> {
    let select = tenant
        .select::<webhook_deliveries::Entity>()
        .filter(webhook_deliveries::Column::EndpointId.eq(endpoint));
    pagination::fetch(db, select, webhook_deliveries::Column::Id, page, Order::Desc)
        .await?
        .try_map(Delivery::try_from)
}

/// A delivery of the tenant, as stored (NOT_FOUND for another tenant's).
async fn delivery(db: &Db, tenant: &Tenant, id: Uuid) -> Result<webhook_deliveries::Model> {
    super::lookup::in_tenant::<webhook_deliveries::Entity, _>(&db.conn, tenant, webhook_deliveries::Column::Id, id)
        .await?
        .ok_or_else(|| Error::not_found("webhook delivery"))
}

fn pending(
    tenant: &Tenant,
    endpoint: Uuid,
    message_id: String,
    event_type: &str,
    event_seq: Option<i64>,
    body: String,
    time: DateTime<Utc>,
) -> webhook_deliveries::ActiveModel {
    webhook_deliveries::ActiveModel {
        id: Set(new_id()),
        tenant_id: Set(tenant.id().to_string()),
        endpoint_id: Set(endpoint),
        message_id: Set(message_id),
        event_type: Set(event_type.to_string()),
        event_seq: Set(event_seq),
        body: Set(body),
        status: Set(DeliveryStatus::Pending.as_str().to_string()),
        attempts: Set(0),
        next_attempt_at: Set(time),
        claimed_until: Set(None),
        claim_token: Set(None),
        created_at: Set(time),
        last_attempt_at: Set(None),
        delivered_at: Set(None),
        response_status: Set(None),
        latency_ms: Set(None),
        last_error: Set(None),
    }
}

/// Queues a `webhook.ping` message to an endpoint (enabled or not) and returns its delivery.
pub async fn queue_ping(db: &Db, tenant: &Tenant, id: Uuid) -> Result<Delivery> {
    let endpoint = get(db, tenant, id).await?;
    let time = now();
    let delivery_id = new_id();
    let body = json!({
        "type": EventType::Ping.as_str(),
        "timestamp": time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "data": { "tenant": tenant.id(), "endpoint": endpoint.url },
    })
    .to_string();
    let mut row = pending(
        tenant,
        endpoint.id,
        format!("msg_{}", delivery_id.simple()),
        EventType::Ping.as_str(),
        None,
        body,
        time,
    );
    row.id = Set(delivery_id);
    // In a transaction, like every write a mutation makes: its audit entry commits with it.
    let tx = db.begin_write().await?;
    let row = row.insert_into(tenant, &tx).await?;
    db.commit(tx).await?;
    row.try_into()
}

/// Sends a delivery's message again, as a new delivery with the same `webhook-id` and body
/// (so a receiver that already processed it can tell).
pub async fn redeliver(db: &Db, tenant: &Tenant, id: Uuid) -> Result<Delivery> {
    let original = delivery(db, tenant, id).await?;
    get(db, tenant, original.endpoint_id).await?;
    let row = pending(
        tenant,
        original.endpoint_id,
        original.message_id,
        &original.event_type,
        original.event_seq,
        original.body,
        now(),
    );
    // In a transaction, like every write a mutation makes: its audit entry commits with it.
    let tx = db.begin_write().await?;
    let row = row.insert_into(tenant, &tx).await?;
    db.commit(tx).await?;
    row.try_into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(
        environment: entity::Environment,
        topic: &str,
        kind: &str,
        payload: Value,
    ) -> crate::domain::events::Event {
        crate::domain::events::stored_event(environment, topic, kind, payload)
    }

    #[test]
    fn events_map_to_message_types_in_production_only() {
        use entity::Environment::{Production, Staging};
        let cases = [
            ("release", "published", json!({}), Some(EventType::ReleasePublished)),
            ("release", "rolled_back", json!({}), Some(EventType::ReleaseRolledBack)),
            (
                "execution",
                "finished",
                json!({"execution": {"status": "FAILED"}}),
                Some(EventType::ExecutionFailed),
            ),
            (
                "execution",
                "finished",
                json!({"execution": {"status": "SUCCEEDED"}}),
                None,
            ),
            (
                "execution",
                "started",
                json!({"execution": {"status": "RUNNING"}}),
                None,
            ),
            (
                "release_request",
                "opened",
                json!({}),
                Some(EventType::ReleaseRequestOpened),
            ),
            (
                "release_request",
                "approved",
                json!({}),
                Some(EventType::ReleaseRequestApproved),
            ),
            ("release_request", "reviewed", json!({}), None),
            ("schedule", "failed", json!({}), Some(EventType::ScheduledReleaseFailed)),
            ("schedule", "missed", json!({}), Some(EventType::ScheduledReleaseFailed)),
            ("schedule", "published", json!({}), None),
            ("session", "message_added", json!({}), None),
        ];
        for (topic, kind, payload, expected) in cases {
            let production = event(Production, topic, kind, payload.clone());
            assert_eq!(EventType::of_event(&production), expected, "{topic}/{kind}");
            assert_eq!(
                EventType::of_event(&event(Staging, topic, kind, payload)),
                None,
                "{topic}/{kind} in staging"
            );
        }
    }

    #[test]
    fn every_type_round_trips_and_the_body_is_the_summary() {
        for t in EventType::SUBSCRIBABLE.into_iter().chain([EventType::Ping]) {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
        }
        let e = event(
            entity::Environment::Production,
            "release",
            "published",
            json!({"v": 1, "release": {"number": 3}}),
        );
        let body: Value = serde_json::from_str(&message_body(EventType::ReleasePublished, &e)).unwrap_or_default();
        assert_eq!(body["type"], "release.published");
        assert_eq!(body["data"]["release"]["number"], 3);
        assert_eq!(body["data"]["eventSeq"], 7);
        assert_eq!(body["data"]["environment"], "production");
        assert!(body["data"].get("v").is_none());
    }

    #[test]
    fn ping_is_not_subscribable() {
        assert!(event_types_value(&[EventType::Ping]).is_err());
        assert!(event_types_value(&[]).is_err());
        assert_eq!(
            event_types_value(&[
                EventType::ExecutionFailed,
                EventType::ReleasePublished,
                EventType::ExecutionFailed
            ])
            .ok(),
            Some(json!(["execution.failed", "release.published"]))
        );
    }
}
