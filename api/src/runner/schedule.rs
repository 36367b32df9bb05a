//! The scheduler: fires schedule triggers on their cron expression, in their own environment,
//! exactly once per tick across replicas (each tick is claimed in the database, see
//! `triggers::fire`). Ticks missed while no process ran are not replayed, except the latest one
//! within the last minute.

use std::collections::HashMap;
use std::time::Duration;

use chrono::Utc;
use serde_json::json;
use uuid::Uuid;

use crate::app::App;
use crate::domain::triggers;

pub async fn run(app: App) {
    let mut checked: HashMap<Uuid, chrono::DateTime<Utc>> = HashMap::new();
    let mut shutdown = app.shutdown.clone();
    loop {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = shutdown.changed() => return,
        }
        let schedules = match triggers::enabled_schedules(&app.services.db).await {
            Ok(schedules) => schedules,
            Err(error) => {
                tracing::warn!(%error, "scheduler: cannot read triggers");
                continue;
            }
        };
        let now = Utc::now();
        for trigger in schedules {
            let Some(expression) = trigger.schedule.as_deref() else {
                continue;
            };
            let floor = trigger.updated_at.max(now - chrono::Duration::seconds(60));
            let after = checked.get(&trigger.id).copied().unwrap_or(floor).max(floor);
            let Some(tick) = triggers::latest_tick(expression, after, now) else {
                continue;
            };
            checked.insert(trigger.id, tick);
            let input = json!({ "trigger": trigger.name, "tick": tick });
            match triggers::fire(
                &app.services.db,
                &app.services.execution_limits,
                &app.services.trigger_limits,
                &trigger,
                Some(tick),
                input,
            )
            .await
            {
                Ok(Some(execution)) => {
                    tracing::info!(trigger = %trigger.name, environment = %trigger.environment, execution = %execution.id, "scheduler: fired");
                }
                Ok(None) => {} // another replica fired this tick
                Err(error) => tracing::warn!(trigger = %trigger.name, %error, "scheduler: cannot fire"),
            }
        }
    }
}
