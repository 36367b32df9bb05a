//! Connectors: the state is the instance with its resources,
//! `{"kind", "config", "credentials", "resources": {key: config}}`.

use std::collections::{BTreeMap, HashMap};

use entity::{connector_instances, connector_resources};
use sea_orm::{ColumnTrait, ConnectionTrait, QueryFilter};
use serde_json::{Value, json};
use uuid::Uuid;

use super::super::publish::ProductionWrite;
use super::{Publishable, Target, lock_by_slug};
use crate::domain::connectors::{self as domain, ConnectorState};
use crate::error::Result;
use crate::scope::Scope;

pub(super) struct Connector;

impl Publishable for Connector {
    async fn snapshot<C: ConnectionTrait>(db: &C, scope: &Scope) -> Result<Vec<(String, Value)>> {
        let instances = scope.select::<connector_instances::Entity>().all(db).await?;
        let instance_ids: Vec<Uuid> = instances.iter().map(|i| i.id).collect();
        let mut resources: HashMap<Uuid, BTreeMap<String, Value>> = HashMap::new();
        for resource in scope
            .select::<connector_resources::Entity>()
            .filter(connector_resources::Column::InstanceId.is_in(instance_ids))
            .all(db)
            .await?
        {
            resources
                .entry(resource.instance_id)
                .or_default()
                .insert(resource.key, resource.config);
        }
        Ok(instances
            .into_iter()
            .map(|instance| {
                let resources = resources.remove(&instance.id).unwrap_or_default();
                let state = json!({
                    "kind": instance.kind,
                    "config": instance.config,
                    "credentials": instance.credential_refs,
                    "resources": resources,
                });
                (instance.slug, state)
            })
            .collect())
    }

    async fn lock_staging<C: ConnectionTrait>(db: &C, staging: &Scope, slugs: Vec<String>) -> Result<()> {
        lock_by_slug::<connector_instances::Entity, _>(db, staging, connector_instances::Column::Slug, slugs).await
    }

    async fn remove<C: ConnectionTrait>(db: &C, write: &ProductionWrite, slug: &str) -> Result<()> {
        domain::remove(db, write, slug).await
    }

    async fn put<C: ConnectionTrait>(db: &C, Target { write, slug, state, .. }: Target<'_>) -> Result<Value> {
        let connector = ConnectorState {
            kind: state
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            config: state.get("config").cloned().unwrap_or(json!({})),
            credentials: state.get("credentials").cloned().unwrap_or(json!([])),
            resources: state
                .get("resources")
                .and_then(Value::as_object)
                .map(|map| map.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default(),
        };
        domain::put(db, write, slug, connector).await?;
        Ok(state.clone())
    }
}
