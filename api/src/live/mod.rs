//! The live feed's fan-out inside one process.
//!
//! One *pump* per process reads new events from the event log once and broadcasts them, per
//! tenant, to the subscriptions of this process that follow that tenant, which filter them
//! (environment, topic, arguments); the runner's workers follow every tenant's.
//! The pump wakes when this process commits events, when PostgreSQL notifies that another
//! replica did (LISTEN on [`events::CHANNEL`]), and once a second regardless, so a missed
//! wake-up only delays. Notifications carry a tenant id only; the event log is the truth.
//!
//! A subscriber that falls further behind than the broadcast buffer gets a `Lagged` error and
//! catches up from the event log, a page at a time (see `graphql::subscriptions`); memory stays
//! bounded by the buffer size.
//!
//! Above the feed, [`multiplex`] shares one execution of a subscription among subscribers of
//! one tenant and role that send the same operation, so an event costs one execution per
//! distinct operation, not one per subscriber.

pub mod multiplex;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::broadcast;

use crate::db::Db;
use crate::domain::events;

/// The broadcast side of the feed, shared by all subscriptions of the process.
#[derive(Clone)]
pub struct LiveFeed {
    /// Every event (the runner's workers wait on any tenant's).
    sender: broadcast::Sender<Arc<events::Event>>,
    /// Per tenant with a subscriber in this process, that tenant's events only: a
    /// subscription is woken by its own tenant's events, not by every tenant's.
    tenants: Arc<Mutex<HashMap<String, broadcast::Sender<Arc<events::Event>>>>>,
    buffer: usize,
    /// Per tenant, the seq of the last event the pump broadcast (what the lag is measured to).
    delivered: Arc<Mutex<HashMap<String, i64>>>,
}

/// How far this process's feed is behind the event log (see [`LiveFeed::lag`]).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Lag {
    /// Events committed to the log that the feed has not broadcast yet (all tenants).
    pub events: i64,
    /// Age in seconds of the oldest of them (0 when there are none).
    pub seconds: f64,
}

/// Lagging tenants whose oldest pending event is read to measure `Lag::seconds`.
const MAX_LAG_PROBES: usize = 100;

impl LiveFeed {
    /// Starts the pump (and, on PostgreSQL, the listener) and returns the feed.
    pub fn start(db: Db, database_url: &str, buffer: usize, retention: Duration) -> Self {
        let (sender, _) = broadcast::channel(buffer.max(16));
        let delivered = Arc::new(Mutex::new(HashMap::new()));
        let feed = LiveFeed {
            sender,
            tenants: Arc::new(Mutex::new(HashMap::new())),
            buffer: buffer.max(16),
            delivered: delivered.clone(),
        };
        tokio::spawn(pump(db.clone(), feed.clone(), delivered));
        if db.backend() == sea_orm::DatabaseBackend::Postgres {
            tokio::spawn(listen(db.clone(), database_url.to_string()));
        }
        tokio::spawn(prune(db, retention));
        feed
    }

    /// Every tenant's events.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<events::Event>> {
        self.sender.subscribe()
    }

    /// One tenant's events.
    pub fn subscribe_tenant(&self, tenant: &str) -> broadcast::Receiver<Arc<events::Event>> {
        let mut tenants = self.tenants.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match tenants.get(tenant) {
            Some(sender) => sender.subscribe(),
            None => {
                let (sender, receiver) = broadcast::channel(self.buffer);
                tenants.insert(tenant.to_string(), sender);
                receiver
            }
        }
    }

    /// Drops the channels of tenants nobody in this process follows any more.
    fn forget_unfollowed(&self) {
        let mut tenants = self.tenants.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        tenants.retain(|_, sender| sender.receiver_count() > 0);
    }

    /// The sender of `tenant`'s events, if anyone in this process follows them (a channel
    /// nobody listens to any more is dropped here).
    fn tenant_sender(&self, tenant: &str) -> Option<broadcast::Sender<Arc<events::Event>>> {
        let mut tenants = self.tenants.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match tenants.get(tenant) {
            Some(sender) if sender.receiver_count() > 0 => Some(sender.clone()),
            Some(_) => {
                tenants.remove(tenant);
                None
            }
            None => None,
        }
    }

    /// The feed's lag behind the event log now (see [`lag_behind`]).
    pub async fn lag(&self, db: &Db) -> crate::error::Result<Lag> {
        let delivered = self
            .delivered
            .lock()
            .map_err(|_| crate::error::Error::internal(anyhow::anyhow!("live feed progress lock poisoned")))?
            .clone();
        lag_behind(db, &delivered).await
    }
}

/// How far a feed that has delivered each tenant's events up to `delivered[tenant]` is behind
/// the event log: the events every tenant has committed (read from the database) past that,
/// and the age of the oldest of them. A tenant missing from `delivered` counts from the start
/// (the pump starts at the heads it finds, so events from before the process are never lag).
pub async fn lag_behind(db: &Db, delivered: &HashMap<String, i64>) -> crate::error::Result<Lag> {
    let behind: Vec<(String, i64, i64)> = events::heads(db)
        .await?
        .into_iter()
        .filter_map(|(tenant, head)| {
            let seen = delivered.get(&tenant).copied().unwrap_or(0);
            (head > seen).then_some((tenant, seen, head))
        })
        .collect();
    let mut lag = Lag {
        events: behind.iter().map(|(_, seen, head)| head - seen).sum(),
        seconds: 0.0,
    };
    let now = chrono::Utc::now();
    for (tenant, seen, _) in behind.iter().take(MAX_LAG_PROBES) {
        if let Some(oldest) = events::after(db, tenant, *seen, 1).await?.first() {
            let age = (now - oldest.created_at).num_milliseconds().max(0) as f64 / 1000.0;
            lag.seconds = lag.seconds.max(age);
        }
    }
    Ok(lag)
}

async fn pump(db: Db, feed: LiveFeed, delivered: Arc<Mutex<HashMap<String, i64>>>) {
    // Start from the current head of every tenant: subscriptions replay history themselves.
    let mut last: HashMap<String, i64> = events::heads(&db).await.unwrap_or_default().into_iter().collect();
    publish_progress(&delivered, &last);
    loop {
        tokio::select! {
            () = db.events_committed.notified() => {}
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        let heads = match events::heads(&db).await {
            Ok(heads) => heads,
            Err(error) => {
                tracing::warn!(%error, "live feed: cannot read event heads");
                continue;
            }
        };
        for (tenant, head) in heads {
            let mut seen = last.get(&tenant).copied().unwrap_or(0);
            while seen < head {
                match events::after(&db, &tenant, seen, 500).await {
                    Ok(batch) if !batch.is_empty() => {
                        let tenant_sender = feed.tenant_sender(&tenant);
                        for event in batch {
                            seen = event.seq;
                            crate::http::metrics::live_event_delivered(event.created_at);
                            let event = Arc::new(event);
                            // No receivers is fine: nobody is subscribed right now.
                            if let Some(sender) = &tenant_sender {
                                let _ = sender.send(event.clone());
                            }
                            let _ = feed.sender.send(event);
                        }
                    }
                    Ok(_) => break,
                    Err(error) => {
                        tracing::warn!(%error, "live feed: cannot read events");
                        break;
                    }
                }
            }
            last.insert(tenant, seen);
        }
        publish_progress(&delivered, &last);
        feed.forget_unfollowed();
    }
}

fn publish_progress(delivered: &Mutex<HashMap<String, i64>>, last: &HashMap<String, i64>) {
    if let Ok(mut delivered) = delivered.lock() {
        delivered.clone_from(last);
    }
}

/// PostgreSQL: wake the pump whenever any replica commits events.
async fn listen(db: Db, url: String) {
    use sea_orm::sqlx::postgres::PgListener;
    loop {
        match PgListener::connect(&url).await {
            Ok(mut listener) => {
                if let Err(error) = listener.listen(events::CHANNEL).await {
                    tracing::warn!(%error, "live feed: LISTEN failed");
                } else {
                    tracing::info!("live feed: listening for events of other replicas");
                    while listener.recv().await.is_ok() {
                        db.wake_live_feed();
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "live feed: cannot connect the listener"),
        }
        // The periodic poll covers the gap; reconnect shortly.
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// Deletes events older than the retention period, every ten minutes.
async fn prune(db: Db, retention: Duration) {
    let retention = chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::days(7));
    loop {
        match events::prune(&db, chrono::Utc::now() - retention).await {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, "live feed: pruned events past retention"),
            Err(error) => tracing::warn!(%error, "live feed: pruning failed"),
        }
        tokio::time::sleep(Duration::from_secs(600)).await;
    }
}
