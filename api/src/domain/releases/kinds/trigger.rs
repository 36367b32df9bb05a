//! Triggers: the state is `{"agent", "kind", "schedule", "config", "enabled", "secret"}`, where
//! `secret` is a fingerprint of the sealed webhook secret, never the secret.

use entity::{Environment, triggers};
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

use super::super::publish::ProductionWrite;
use super::super::{ItemKind, ItemRef};
use super::{Edge, Item, Publishable, Target, lock_by_slug};
use crate::domain::EnvironmentWrite;
use crate::domain::triggers::{self as domain, SealedSecret, TriggerState, secret_fingerprint};
use crate::error::Result;
use crate::scope::{Scope, Tenant};

pub(super) struct Trigger;

impl Publishable for Trigger {
    async fn snapshot<C: ConnectionTrait>(db: &C, scope: &Scope) -> Result<Vec<(String, Value)>> {
        Ok(scope
            .select::<triggers::Entity>()
            .all(db)
            .await?
            .into_iter()
            .map(|trigger| {
                let state = json!({
                    "agent": trigger.agent_slug,
                    "kind": trigger.kind,
                    "schedule": trigger.schedule,
                    "config": trigger.config,
                    "enabled": trigger.enabled,
                    "secret": secret_fingerprint(&trigger),
                });
                (trigger.name, state)
            })
            .collect())
    }

    /// A trigger needs the agent it starts.
    async fn requires<C: ConnectionTrait>(_db: &C, _tenant: &Tenant, items: &[Item<'_>]) -> Result<Vec<Edge>> {
        Ok(items
            .iter()
            .filter_map(|(name, state)| {
                let agent = state.get("agent").and_then(Value::as_str)?;
                Some((
                    ItemRef {
                        kind: ItemKind::Trigger,
                        slug: name.to_string(),
                    },
                    ItemRef {
                        kind: ItemKind::Agent,
                        slug: agent.to_string(),
                    },
                ))
            })
            .collect())
    }

    async fn lock_staging<C: ConnectionTrait>(db: &C, staging: &Scope, slugs: Vec<String>) -> Result<()> {
        lock_by_slug::<triggers::Entity, _>(db, staging, triggers::Column::Name, slugs).await
    }

    async fn remove<C: ConnectionTrait>(db: &C, write: &ProductionWrite, slug: &str) -> Result<()> {
        domain::remove(db, write, slug).await
    }

    async fn put<C: ConnectionTrait>(db: &C, Target { write, slug, state, .. }: Target<'_>) -> Result<Value> {
        // The webhook secret travels sealed from the staging trigger whose fingerprint the
        // state names (never through the state itself); otherwise production keeps its own.
        let wanted = state.get("secret").and_then(Value::as_str);
        let staging_row = domain::find(db, &write.tenant().in_env(Environment::Staging), slug)
            .await?
            .filter(|row| wanted.is_some() && secret_fingerprint(row).as_deref() == wanted);
        let production_row = domain::find(db, write.target(), slug).await?;
        let secret = match (&staging_row, &production_row) {
            (Some(row), _) | (None, Some(row)) => SealedSecret::of(row),
            (None, None) => SealedSecret::default(),
        };
        let text = |field: &str| state.get(field).and_then(Value::as_str).map(str::to_string);
        let fields = TriggerState {
            agent: text("agent").unwrap_or_default(),
            kind: text("kind").unwrap_or_default(),
            schedule: text("schedule"),
            config: state.get("config").cloned().unwrap_or(json!({})),
            enabled: state.get("enabled").and_then(Value::as_bool).unwrap_or(true),
        };
        domain::put(db, write, slug, fields, secret).await?;
        Ok(state.clone())
    }
}
