//! The webhook sender: fills the outbox from the event log, claims due deliveries and calls
//! their endpoints (see [`crate::domain::webhooks`] for the guarantees).
//!
//! Every call: the target's addresses are resolved and checked now ([`target::resolve`]) and
//! the connection goes to exactly those addresses; redirects are not followed (a 3xx is a
//! failed attempt); connecting and the whole call are time-limited; at most
//! [`MAX_RESPONSE_BYTES`] of the answer are read. No proxy from the environment is used.

use std::time::{Duration, Instant};

use futures_util::StreamExt;

use crate::app::App;
use crate::domain::webhooks::outbox::{self, Attempt, Claimed};
use crate::domain::webhooks::{self, MAX_RESPONSE_BYTES, WebhookSettings, signature, target};
use crate::domain::{lookup, now};
use crate::scope::Tenant;

/// How often the sender looks for work when idle.
const POLL: Duration = Duration::from_millis(250);
/// Deliveries claimed (and sent concurrently) per round.
const BATCH: u64 = 16;
const CONCURRENCY: usize = 8;

/// How often finished deliveries older than the event retention are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(600);

/// Runs until shutdown.
pub async fn run(app: App) {
    let mut shutdown = app.shutdown.clone();
    let settings = app.services.webhooks;
    let mut pruned_at: Option<Instant> = None;
    loop {
        if pruned_at.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
            pruned_at = Some(Instant::now());
            let retention = chrono::Duration::from_std(app.config.event_retention).unwrap_or(chrono::Duration::days(7));
            if let Some(before) = now().checked_sub_signed(retention)
                && let Err(error) = outbox::prune(&app.services.db, before, 10_000).await
            {
                tracing::warn!(%error, "webhooks: cannot prune the delivery log");
            }
        }
        let busy = match round(&app, &settings).await {
            Ok(sent) => sent > 0,
            Err(error) => {
                tracing::warn!(%error, "webhooks: round failed");
                false
            }
        };
        if busy {
            if *shutdown.borrow() {
                return;
            }
            continue;
        }
        tokio::select! {
            () = tokio::time::sleep(POLL) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// One round: fill, claim, send, record. Returns how many deliveries were attempted.
async fn round(app: &App, settings: &WebhookSettings) -> crate::error::Result<usize> {
    let db = &app.services.db;
    outbox::fill(db).await?;
    let claimed = outbox::claim_due(db, BATCH, settings.claim_lease()).await?;
    let count = claimed.len();
    futures_util::stream::iter(claimed)
        .for_each_concurrent(CONCURRENCY, |claimed| async move {
            if let Err(error) = deliver(app, settings, &claimed).await {
                tracing::warn!(delivery = %claimed.delivery.id, %error, "webhooks: cannot record a delivery");
            }
        })
        .await;
    Ok(count)
}

async fn deliver(app: &App, settings: &WebhookSettings, claimed: &Claimed) -> crate::error::Result<()> {
    let db = &app.services.db;
    let delivery = &claimed.delivery;
    let tenant = Tenant::of_webhook_delivery(delivery);
    let endpoint = lookup::in_tenant::<entity::webhook_endpoints::Entity, _>(
        &db.conn,
        &tenant,
        entity::webhook_endpoints::Column::Id,
        delivery.endpoint_id,
    )
    .await?;
    let Some(endpoint) = endpoint else {
        return outbox::abandon(db, claimed, "the endpoint was deleted").await;
    };
    // Pings are sent to disabled endpoints too (that is how one tests before enabling).
    if !endpoint.enabled && delivery.event_type != webhooks::EventType::Ping.as_str() {
        return outbox::abandon(db, claimed, "the endpoint is disabled").await;
    }
    let key = webhooks::signing_key(&app.services.secret_box, &endpoint)?;
    let attempt = call(settings, &endpoint.url, &key, delivery).await;
    match &attempt.error {
        None => tracing::info!(delivery = %delivery.id, status = ?attempt.response_status, "webhooks: delivered"),
        Some(error) => tracing::info!(delivery = %delivery.id, %error, "webhooks: attempt failed"),
    }
    outbox::record(db, settings, claimed, &attempt).await
}

/// One signed call; never fails (a failure is an [`Attempt`] with an error).
async fn call(
    settings: &WebhookSettings,
    url: &str,
    key: &[u8],
    delivery: &entity::webhook_deliveries::Model,
) -> Attempt {
    let at = now();
    let started = Instant::now();
    let failed = |error: String, status: Option<u16>, started: Instant| Attempt {
        at,
        response_status: status,
        latency: started.elapsed(),
        error: Some(error),
    };
    let target = match target::parse(url) {
        Ok(target) => target,
        Err(error) => return failed(error.to_string(), None, started),
    };
    let addresses = match target::resolve(&target, settings.allow_private).await {
        Ok(addresses) => addresses,
        Err(error) => return failed(error.to_string(), None, started),
    };
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .connect_timeout(settings.connect_timeout())
        .timeout(settings.timeout)
        .user_agent(concat!("Runflow-Webhooks/", env!("CARGO_PKG_VERSION")))
        .resolve_to_addrs(&target.host, &addresses)
        .build();
    let client = match client {
        Ok(client) => client,
        Err(error) => return failed(format!("cannot build the HTTP client: {error}"), None, started),
    };
    let timestamp = chrono::Utc::now().timestamp();
    let signature = signature::sign(key, &delivery.message_id, timestamp, &delivery.body);
    let started = Instant::now();
    let response = client
        .post(target.url.clone())
        .header("content-type", "application/json")
        .header("webhook-id", &delivery.message_id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(delivery.body.clone())
        .send()
        .await;
    let mut response = match response {
        Ok(response) => response,
        Err(error) => return failed(describe(&error), None, started),
    };
    let status = response.status();
    // Read (and drop) a bounded part of the answer, so the connection ends cleanly.
    let mut read = 0usize;
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                read += chunk.len();
                if read >= MAX_RESPONSE_BYTES {
                    break;
                }
            }
            Ok(None) => break,
            Err(error) => return failed(describe(&error), Some(status.as_u16()), started),
        }
    }
    let latency = started.elapsed();
    let error = if status.is_success() {
        None
    } else if status.is_redirection() {
        Some(format!("answered {status}; redirects are not followed"))
    } else {
        Some(format!("answered {status}"))
    };
    Attempt {
        at,
        response_status: Some(status.as_u16()),
        latency,
        error,
    }
}

fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "timed out".to_string()
    } else if error.is_connect() {
        format!(
            "cannot connect: {}",
            std::error::Error::source(error).map_or(error.to_string(), |s| s.to_string())
        )
    } else {
        error.to_string()
    }
}
