//! Outgoing webhook endpoints and their delivery log: shared by both environments (the
//! `environment` argument is required like everywhere, and must be STAGING for mutations),
//! admin only. The signing secret is write-only: it is returned once, by
//! `createWebhookEndpoint`, when the server generated it, and never again.

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use uuid::Uuid;

use super::context::{actor, services, tenant};
use super::ids::{self, NodeType};
use super::pagination::{PageArgs, connection_type, parts};
use super::payloads::DeletePayload;
use super::scalars::{DateTime, Json};
use super::{Environment, GqlResult};
use crate::domain::credentials::Secret;
use crate::domain::webhooks::{self as domain, DeliveryStatus, EndpointChanges, EventType, NewEndpoint};
use crate::error::Error;
use crate::scope::Tenant;

/// What a webhook endpoint can subscribe to. Each message's JSON body has `type` (the value
/// in parentheses), `timestamp` and `data`.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum WebhookEventType {
    /// A publish reached production (`release.published`); `data.release` is the release.
    ReleasePublished,
    /// A rollback reached production (`release.rolled_back`); `data.release` is the release.
    ReleaseRolledBack,
    /// An execution in production finished FAILED (`execution.failed`); `data.execution` is
    /// the execution (with its error), `data.agent` the agent.
    ExecutionFailed,
    /// A release request was opened (`release_request.opened`); `data.request` is the request.
    ReleaseRequestOpened,
    /// A release request got its last required approval (`release_request.approved`).
    ReleaseRequestApproved,
    /// A scheduled release did not publish (`scheduled_release.failed`): staging moved since it
    /// was scheduled, or it was missed; `data.scheduledRelease` says which.
    ScheduledReleaseFailed,
    /// A test message sent by `testWebhookEndpoint` (`webhook.ping`); cannot be subscribed to.
    Ping,
}

impl From<WebhookEventType> for EventType {
    fn from(value: WebhookEventType) -> Self {
        match value {
            WebhookEventType::ReleasePublished => EventType::ReleasePublished,
            WebhookEventType::ReleaseRolledBack => EventType::ReleaseRolledBack,
            WebhookEventType::ExecutionFailed => EventType::ExecutionFailed,
            WebhookEventType::ReleaseRequestOpened => EventType::ReleaseRequestOpened,
            WebhookEventType::ReleaseRequestApproved => EventType::ReleaseRequestApproved,
            WebhookEventType::ScheduledReleaseFailed => EventType::ScheduledReleaseFailed,
            WebhookEventType::Ping => EventType::Ping,
        }
    }
}

impl From<EventType> for WebhookEventType {
    fn from(value: EventType) -> Self {
        match value {
            EventType::ReleasePublished => WebhookEventType::ReleasePublished,
            EventType::ReleaseRolledBack => WebhookEventType::ReleaseRolledBack,
            EventType::ExecutionFailed => WebhookEventType::ExecutionFailed,
            EventType::ReleaseRequestOpened => WebhookEventType::ReleaseRequestOpened,
            EventType::ReleaseRequestApproved => WebhookEventType::ReleaseRequestApproved,
            EventType::ScheduledReleaseFailed => WebhookEventType::ScheduledReleaseFailed,
            EventType::Ping => WebhookEventType::Ping,
        }
    }
}

/// Whether an endpoint's deliveries get through.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum WebhookEndpointStatus {
    /// No delivery has run out of retries since the last success or change.
    Healthy,
    /// A delivery ran out of retries (`RUNFLOW_WEBHOOK_RETRY_FOR`); the next success, or any
    /// change to the endpoint, makes it healthy again. Deliveries continue meanwhile.
    Failing,
}

/// Where a delivery stands.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum WebhookDeliveryStatus {
    /// Not delivered yet: waiting for its first attempt or for a retry.
    Pending,
    /// The endpoint answered with a 2xx status.
    Succeeded,
    /// Out of retries, or the endpoint was disabled before it was sent (see `lastError`).
    Failed,
}

/// A URL that receives signed messages (Standard Webhooks) about the tenant's releases and
/// production executions. Shared by both environments; admins only.
pub struct WebhookEndpoint(pub domain::Endpoint);

connection_type!(
    WebhookEndpointConnection,
    WebhookEndpointEdge,
    WebhookEndpoint,
    "webhook endpoints"
);

/// A URL that receives signed messages (Standard Webhooks) about the tenant's releases and
/// production executions. Shared by both environments; admins only.
#[Object]
impl WebhookEndpoint {
    /// Global id of the endpoint (the same in both environments).
    pub(crate) async fn id(&self) -> ID {
        ids::encode_shared(NodeType::WebhookEndpoint, self.0.id)
    }
    /// Where messages are POSTed.
    async fn url(&self) -> &str {
        &self.0.url
    }
    /// The event types it receives.
    async fn event_types(&self) -> Vec<WebhookEventType> {
        self.0.event_types.iter().copied().map(Into::into).collect()
    }
    /// Whether new events are delivered to it (a disabled endpoint still gets test pings).
    async fn enabled(&self) -> bool {
        self.0.enabled
    }
    /// HEALTHY, or FAILING once a delivery ran out of retries.
    async fn status(&self) -> WebhookEndpointStatus {
        if self.0.failing_since.is_some() {
            WebhookEndpointStatus::Failing
        } else {
            WebhookEndpointStatus::Healthy
        }
    }
    /// Since when it is failing (null when healthy).
    async fn failing_since(&self) -> Option<DateTime> {
        self.0.failing_since.map(Into::into)
    }
    /// A masked hint of the signing secret, such as `••••Zx8=` (the secret is write-only).
    async fn secret_hint(&self) -> &str {
        &self.0.secret_hint
    }
    /// Changes on every write; pass it as `expectedRevision`.
    async fn revision(&self) -> i64 {
        self.0.revision
    }
    /// Subject of the token that created it.
    async fn created_by(&self) -> &str {
        &self.0.created_by
    }
    /// When it was created.
    async fn created_at(&self) -> DateTime {
        self.0.created_at.into()
    }
    /// When it last changed.
    async fn updated_at(&self) -> DateTime {
        self.0.updated_at.into()
    }
    /// Its delivery log, newest first: every message queued for it, with its attempts.
    async fn deliveries(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size from the start (default 20, at most 100).")] first: Option<i32>,
        #[graphql(desc = "Return the deliveries after this cursor.")] after: Option<String>,
        #[graphql(desc = "Page size from the end (at most 100).")] last: Option<i32>,
        #[graphql(desc = "Return the deliveries before this cursor.")] before: Option<String>,
    ) -> GqlResult<WebhookDeliveryConnection> {
        let page = PageArgs::new(first, after, last, before).request(ctx)?;
        let tenant = tenant(ctx)?;
        let rows = domain::deliveries(&services(ctx).db, &tenant, self.0.id, &page).await?;
        Ok(WebhookDeliveryConnection(parts(
            rows,
            |d| d.id.to_string(),
            WebhookDelivery,
        )))
    }
}

/// One message queued for one webhook endpoint, and how its delivery went.
pub struct WebhookDelivery(pub domain::Delivery);

connection_type!(
    WebhookDeliveryConnection,
    WebhookDeliveryEdge,
    WebhookDelivery,
    "webhook deliveries"
);

/// One message queued for one webhook endpoint, and how its delivery went.
#[Object]
impl WebhookDelivery {
    /// Global id of the delivery; pass it to `redeliverWebhook`.
    pub(crate) async fn id(&self) -> ID {
        ids::encode_shared(NodeType::WebhookDelivery, self.0.id)
    }
    /// The `webhook-id` header: the same for every endpoint and redelivery of one message, so
    /// receivers can deduplicate on it.
    async fn message_id(&self) -> &str {
        &self.0.message_id
    }
    /// The message's `type`.
    async fn event_type(&self) -> WebhookEventType {
        self.0.event_type.into()
    }
    /// PENDING, SUCCEEDED or FAILED.
    async fn status(&self) -> WebhookDeliveryStatus {
        match self.0.status {
            DeliveryStatus::Pending => WebhookDeliveryStatus::Pending,
            DeliveryStatus::Succeeded => WebhookDeliveryStatus::Succeeded,
            DeliveryStatus::Failed => WebhookDeliveryStatus::Failed,
        }
    }
    /// Calls made so far.
    async fn attempts(&self) -> i32 {
        self.0.attempts
    }
    /// The HTTP status of the last answer (null if the last attempt got none).
    async fn response_status(&self) -> Option<i32> {
        self.0.response_status
    }
    /// How long the last call took, in milliseconds.
    async fn latency_ms(&self) -> Option<i64> {
        self.0.latency_ms
    }
    /// Why the last attempt failed (null after a success).
    async fn last_error(&self) -> Option<&str> {
        self.0.last_error.as_deref()
    }
    /// The exact JSON body sent.
    async fn payload(&self) -> Json {
        Json(serde_json::from_str(&self.0.body).unwrap_or(serde_json::Value::Null))
    }
    /// When it was queued.
    async fn created_at(&self) -> DateTime {
        self.0.created_at.into()
    }
    /// When the last attempt was made (null before the first).
    async fn last_attempt_at(&self) -> Option<DateTime> {
        self.0.last_attempt_at.map(Into::into)
    }
    /// When the next attempt is due (null unless PENDING).
    async fn next_attempt_at(&self) -> Option<DateTime> {
        (self.0.status == DeliveryStatus::Pending).then(|| self.0.next_attempt_at.into())
    }
    /// When the endpoint accepted it (null unless SUCCEEDED).
    async fn delivered_at(&self) -> Option<DateTime> {
        self.0.delivered_at.map(Into::into)
    }
}

/// A new webhook endpoint.
#[derive(InputObject)]
pub struct CreateWebhookEndpointInput {
    /// An http:// or https:// URL. Loopback, private and link-local addresses are refused
    /// unless the server sets RUNFLOW_WEBHOOK_ALLOW_PRIVATE=true.
    url: String,
    /// The event types to receive (at least one; not PING).
    event_types: Vec<WebhookEventType>,
    /// Whether to deliver events (default true).
    #[graphql(default = true)]
    enabled: bool,
    /// Write-only signing secret, `whsec_` + base64 of 24 to 64 bytes. Omit it to have one
    /// generated: it is then returned once, in `signingSecret`.
    #[graphql(secret)]
    secret: Option<String>,
}

/// Changes to a webhook endpoint; omitted fields keep their value.
#[derive(InputObject)]
pub struct UpdateWebhookEndpointInput {
    /// The endpoint to change.
    id: ID,
    /// A new URL.
    url: Option<String>,
    /// New event types (replaces the list).
    event_types: Option<Vec<WebhookEventType>>,
    /// Enable or disable delivery.
    enabled: Option<bool>,
    /// Write-only: a new signing secret (`whsec_...`), never returned.
    #[graphql(secret)]
    secret: Option<String>,
    /// The `revision` you last read; a stale one fails with CONFLICT.
    expected_revision: Option<i64>,
}

/// The endpoint created, and its signing secret when the server generated it.
#[derive(SimpleObject)]
pub struct CreateWebhookEndpointPayload {
    /// The new endpoint.
    webhook_endpoint: WebhookEndpoint,
    /// The generated signing secret (`whsec_...`), returned this once and never again; null
    /// when you supplied the secret. Give it to the receiver's verifier.
    signing_secret: Option<String>,
}

fn endpoint_id(id: &ID) -> crate::error::Result<Uuid> {
    ids::uuid_of(id, NodeType::WebhookEndpoint, entity::Environment::Staging)
        .ok_or_else(|| Error::not_found("webhook endpoint"))
}

/// The tenant, for an edit of shared records: like every edit, only with STAGING.
fn editing_tenant(ctx: &Context<'_>, environment: Environment) -> crate::error::Result<Tenant> {
    super::context::staging(ctx, environment)?;
    tenant(ctx)
}

#[derive(Default)]
pub struct WebhookQuery;

#[Object]
impl WebhookQuery {
    /// Outgoing webhook endpoints, shared by both environments, oldest first. Admins only.
    async fn webhook_endpoints(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Either environment; the records are shared.")] environment: Environment,
        #[graphql(desc = "Page size from the start (default 20, at most 100).")] first: Option<i32>,
        #[graphql(desc = "Return the endpoints after this cursor.")] after: Option<String>,
        #[graphql(desc = "Page size from the end (at most 100).")] last: Option<i32>,
        #[graphql(desc = "Return the endpoints before this cursor.")] before: Option<String>,
    ) -> GqlResult<WebhookEndpointConnection> {
        let _ = environment;
        let page = PageArgs::new(first, after, last, before).request(ctx)?;
        let rows = domain::list(&services(ctx).db, &tenant(ctx)?, &page).await?;
        Ok(WebhookEndpointConnection(parts(
            rows,
            |e| e.id.to_string(),
            WebhookEndpoint,
        )))
    }
}

#[derive(Default)]
pub struct WebhookMutation;

#[Object]
impl WebhookMutation {
    /// Creates an outgoing webhook endpoint (admin). It receives the events that happen from
    /// now on.
    async fn create_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Must be STAGING, like every edit.")] environment: Environment,
        #[graphql(desc = "The new endpoint.")] input: CreateWebhookEndpointInput,
    ) -> GqlResult<CreateWebhookEndpointPayload> {
        let tenant = editing_tenant(ctx, environment)?;
        let services = services(ctx);
        let (row, generated) = domain::create(
            &services.db,
            &tenant,
            &services.secret_box,
            &services.webhooks,
            actor(ctx)?.subject(),
            NewEndpoint {
                url: input.url,
                event_types: input.event_types.into_iter().map(Into::into).collect(),
                enabled: input.enabled,
                secret: input.secret.map(Secret),
            },
        )
        .await?;
        Ok(CreateWebhookEndpointPayload {
            webhook_endpoint: WebhookEndpoint(row),
            signing_secret: generated.map(|s| s.0.clone()),
        })
    }

    /// Changes a webhook endpoint (admin); clears its FAILING status.
    async fn update_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Must be STAGING, like every edit.")] environment: Environment,
        #[graphql(desc = "The changes.")] input: UpdateWebhookEndpointInput,
    ) -> GqlResult<WebhookEndpoint> {
        let tenant = editing_tenant(ctx, environment)?;
        let services = services(ctx);
        let row = domain::update(
            &services.db,
            &tenant,
            &services.secret_box,
            &services.webhooks,
            endpoint_id(&input.id)?,
            EndpointChanges {
                url: input.url,
                event_types: input.event_types.map(|t| t.into_iter().map(Into::into).collect()),
                enabled: input.enabled,
                secret: input.secret.map(Secret),
                expected_revision: input.expected_revision,
            },
        )
        .await?;
        Ok(WebhookEndpoint(row))
    }

    /// Deletes a webhook endpoint and its delivery log (admin); pending messages are dropped.
    async fn delete_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Must be STAGING, like every edit.")] environment: Environment,
        #[graphql(desc = "The endpoint to delete.")] id: ID,
        #[graphql(desc = "The `revision` you last read; a stale one fails with CONFLICT.")] expected_revision: Option<
            i64,
        >,
    ) -> GqlResult<DeletePayload> {
        let tenant = editing_tenant(ctx, environment)?;
        let id = domain::delete(&services(ctx).db, &tenant, endpoint_id(&id)?, expected_revision).await?;
        Ok(DeletePayload::new(NodeType::WebhookEndpoint, environment.into(), id))
    }

    /// Queues a `webhook.ping` message to an endpoint, enabled or not (admin); returns its
    /// delivery, which shows the result in a moment (refetch it with `node`).
    async fn test_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Must be STAGING, like every edit.")] environment: Environment,
        #[graphql(desc = "The endpoint to test.")] id: ID,
    ) -> GqlResult<WebhookDelivery> {
        let tenant = editing_tenant(ctx, environment)?;
        let row = domain::queue_ping(&services(ctx).db, &tenant, endpoint_id(&id)?).await?;
        Ok(WebhookDelivery(row))
    }

    /// Sends a delivery's message again (admin): a new delivery with the same `webhook-id`
    /// and body, retried like any other.
    async fn redeliver_webhook(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Must be STAGING, like every edit.")] environment: Environment,
        #[graphql(desc = "The delivery to send again.")] id: ID,
    ) -> GqlResult<WebhookDelivery> {
        let tenant = editing_tenant(ctx, environment)?;
        let id = ids::uuid_of(&id, NodeType::WebhookDelivery, entity::Environment::Staging)
            .ok_or_else(|| Error::not_found("webhook delivery"))?;
        let row = domain::redeliver(&services(ctx).db, &tenant, id).await?;
        Ok(WebhookDelivery(row))
    }
}
