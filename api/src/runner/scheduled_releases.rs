//! Runs scheduled releases when they are due (see `domain::scheduled_releases`): every
//! replica checks every second; the database claim makes each run once.

use std::time::Duration;

use crate::app::App;
use crate::domain::scheduled_releases;

pub async fn run(app: App) {
    let mut shutdown = app.shutdown.clone();
    loop {
        if let Err(error) = scheduled_releases::run_due(&app.services.db, app.config.scheduled_release_grace).await {
            tracing::warn!(%error, "scheduled releases: cannot run due releases");
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = shutdown.changed() => return,
        }
    }
}
