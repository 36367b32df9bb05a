//! `rf webhooks list|create|delete|deliveries`: outgoing webhook endpoints (admin).

use crate::client::Client;
use crate::operations::{self, CreateWebhookEndpoint, DeleteWebhookEndpoint, WebhookDeliveries, WebhookEndpoints};
use crate::{Global, emit, lines};

/// The event types `--events` takes, as the API names them.
pub const EVENT_TYPES: &[&str] = &[
    "release.published",
    "release.rolled_back",
    "execution.failed",
    "release_request.opened",
    "release_request.approved",
    "scheduled_release.failed",
];

fn event_type(name: &str) -> anyhow::Result<operations::create_webhook_endpoint::WebhookEventType> {
    use operations::create_webhook_endpoint::WebhookEventType as T;
    Ok(match name.trim().to_lowercase().replace('-', "_").as_str() {
        "release.published" | "release_published" => T::RELEASE_PUBLISHED,
        "release.rolled_back" | "release_rolled_back" => T::RELEASE_ROLLED_BACK,
        "execution.failed" | "execution_failed" => T::EXECUTION_FAILED,
        "release_request.opened" | "release_request_opened" => T::RELEASE_REQUEST_OPENED,
        "release_request.approved" | "release_request_approved" => T::RELEASE_REQUEST_APPROVED,
        "scheduled_release.failed" | "scheduled_release_failed" => T::SCHEDULED_RELEASE_FAILED,
        other => anyhow::bail!("unknown event type {other:?}; one of: {}", EVENT_TYPES.join(", ")),
    })
}

pub async fn list(global: &Global) -> anyhow::Result<()> {
    let client = Client::resolve(global.url.clone(), global.token.clone())?;
    let (data, raw) = client
        .run_raw::<WebhookEndpoints>(operations::webhook_endpoints::Variables {})
        .await?;
    let endpoints = data.webhook_endpoints.nodes;
    emit(global, raw["webhookEndpoints"]["nodes"].clone(), || {
        lines(&endpoints, "No webhook endpoints.", |e| {
            format!(
                "{}  {}  {:?}{}  {:?}  secret {}",
                e.id,
                e.url,
                e.status,
                if e.enabled { "" } else { " (disabled)" },
                e.event_types,
                e.secret_hint
            )
        })
    });
    Ok(())
}

pub async fn create(global: &Global, url: String, events: Vec<String>, secret: Option<String>) -> anyhow::Result<()> {
    let client = Client::resolve(global.url.clone(), global.token.clone())?;
    let event_types = events
        .iter()
        .map(|e| event_type(e))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let input = operations::create_webhook_endpoint::CreateWebhookEndpointInput {
        url,
        event_types,
        enabled: true,
        secret,
    };
    let (data, raw) = client
        .run_raw::<CreateWebhookEndpoint>(operations::create_webhook_endpoint::Variables { input })
        .await?;
    let created = data.create_webhook_endpoint;
    emit(global, raw["createWebhookEndpoint"].clone(), || {
        let mut text = format!(
            "Created webhook endpoint {} for {}",
            created.webhook_endpoint.id, created.webhook_endpoint.url
        );
        if let Some(secret) = &created.signing_secret {
            text.push_str(&format!(
                "\nSigning secret (shown once; give it to the receiver's verifier):\n  {secret}"
            ));
        }
        text
    });
    Ok(())
}

pub async fn delete(global: &Global, id: String) -> anyhow::Result<()> {
    let client = Client::resolve(global.url.clone(), global.token.clone())?;
    let (_, raw) = client
        .run_raw::<DeleteWebhookEndpoint>(operations::delete_webhook_endpoint::Variables { id: id.clone() })
        .await?;
    emit(global, raw["deleteWebhookEndpoint"].clone(), || {
        format!("Deleted webhook endpoint {id}")
    });
    Ok(())
}

pub async fn deliveries(global: &Global, id: String, first: i64) -> anyhow::Result<()> {
    use operations::webhook_deliveries::WebhookDeliveriesNode as Node;
    let client = Client::resolve(global.url.clone(), global.token.clone())?;
    let (data, raw) = client
        .run_raw::<WebhookDeliveries>(operations::webhook_deliveries::Variables {
            id: id.clone(),
            first: Some(first),
        })
        .await?;
    let Some(Node::WebhookEndpoint(endpoint)) = data.node else {
        anyhow::bail!("no webhook endpoint {id} (list them with `rf webhooks list`)");
    };
    emit(global, raw["node"]["deliveries"]["nodes"].clone(), || {
        let rows = &endpoint.deliveries.nodes;
        lines(rows, &format!("No deliveries to {} yet.", endpoint.url), |d| {
            format!(
                "{}  {:?}  {:?}  attempts {}  response {}  {}  {}{}",
                d.created_at,
                d.event_type,
                d.status,
                d.attempts,
                d.response_status.map_or("-".to_string(), |s| s.to_string()),
                d.latency_ms.map_or("-".to_string(), |ms| format!("{ms} ms")),
                d.message_id,
                d.last_error.as_deref().map_or(String::new(), |e| format!("  {e}"))
            )
        })
    });
    Ok(())
}
