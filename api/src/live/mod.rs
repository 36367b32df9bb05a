//! The live feed's fan-out inside one process.
//!
//! One *pump* per process reads new events from the event log once and broadcasts them to every
//! subscription of this process, which filters them (tenant, environment, topic, arguments).
//! The pump wakes when this process commits events, when PostgreSQL notifies that another
//! replica did (LISTEN on [`events::CHANNEL`]), and once a second regardless, so a missed
//! wake-up only delays. Notifications carry a tenant id only; the event log is the truth.
//!
//! A subscriber that falls further behind than the broadcast buffer gets a `Lagged` error and
//! catches up from the event log, a page at a time (see `graphql::subscriptions`); memory stays
//! bounded by the buffer size.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use entity::events as event_rows;
use tokio::sync::broadcast;

use crate::db::Db;
use crate::domain::events;

/// The broadcast side of the feed, shared by all subscriptions of the process.
#[derive(Clone)]
pub struct LiveFeed {
    sender: broadcast::Sender<Arc<event_rows::Model>>,
}

impl LiveFeed {
    /// Starts the pump (and, on PostgreSQL, the listener) and returns the feed.
    pub fn start(db: Db, database_url: &str, buffer: usize, retention: Duration) -> Self {
        let (sender, _) = broadcast::channel(buffer.max(16));
        let feed = LiveFeed { sender: sender.clone() };
        tokio::spawn(pump(db.clone(), sender));
        if db.backend() == sea_orm::DatabaseBackend::Postgres {
            tokio::spawn(listen(db.clone(), database_url.to_string()));
        }
        tokio::spawn(prune(db, retention));
        feed
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<event_rows::Model>> {
        self.sender.subscribe()
    }
}

async fn pump(db: Db, sender: broadcast::Sender<Arc<event_rows::Model>>) {
    // Start from the current head of every tenant: subscriptions replay history themselves.
    let mut last: HashMap<String, i64> = events::heads(&db).await.unwrap_or_default().into_iter().collect();
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
                match events::after(&db.conn, &tenant, seen, 500).await {
                    Ok(batch) if !batch.is_empty() => {
                        for event in batch {
                            seen = event.seq;
                            // No receivers is fine: nobody is subscribed right now.
                            let _ = sender.send(Arc::new(event));
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
