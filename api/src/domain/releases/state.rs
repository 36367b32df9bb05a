//! The publishable state of an environment: one canonical JSON value per item.
//!
//! Comparing staging's value with production's is the whole diff; applying a value to
//! production is the whole publish (and, with a release's `before` values, the whole rollback).
//!
//! | kind | state |
//! |---|---|
//! | agent | `{"commit", "number", "hash"}`: the commit the environment runs |
//! | prompt | `{"version", "number", "template", "variables", "modelSettings"}`, or in staging with a draft `{"draft": {...}}` |
//! | connector | `{"kind", "config", "credentials", "resources": {key: config}}` |
//! | trigger | `{"agent", "kind", "schedule", "config", "enabled"}` |

use std::collections::{BTreeMap, HashMap};

use entity::{
    Environment, agent_commits, agent_deployments, agents, connector_instances, connector_resources, prompt_versions,
    prompts, triggers,
};
use sea_orm::{ColumnTrait, ConnectionTrait, QueryFilter};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::ItemKind;
use crate::error::Result;
use crate::scope::Scope;

/// Every publishable item of one environment, keyed by (kind, slug).
#[derive(Clone, Debug, Default)]
pub struct EnvironmentState {
    pub items: BTreeMap<(ItemKind, String), Value>,
}

impl EnvironmentState {
    pub fn get(&self, kind: ItemKind, slug: &str) -> Option<&Value> {
        self.items.get(&(kind, slug.to_string()))
    }
}

/// Serialises with object keys sorted, whatever the JSON library's map order.
pub fn canonical(value: &Value) -> String {
    fn sorted(value: &Value) -> Value {
        match value {
            Value::Object(map) => {
                let ordered: BTreeMap<&String, Value> = map.iter().map(|(k, v)| (k, sorted(v))).collect();
                Value::Object(ordered.into_iter().map(|(k, v)| (k.clone(), v)).collect())
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    sorted(value).to_string()
}

/// A short fingerprint of some states.
pub fn fingerprint(parts: &[Option<&Value>]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.map(canonical).unwrap_or_else(|| "absent".into()).as_bytes());
        hasher.update(b"\x1f");
    }
    hex::encode(hasher.finalize())[..16].to_string()
}

fn version_state(version: &prompt_versions::Model) -> Value {
    json!({
        "version": version.id.to_string(),
        "number": version.version,
        "template": version.template,
        "variables": version.variables,
        "modelSettings": version.model_settings,
    })
}

/// Loads the state of every item of `scope`'s environment (a fixed number of queries).
pub async fn load<C: ConnectionTrait>(db: &C, scope: &Scope) -> Result<EnvironmentState> {
    let mut state = EnvironmentState::default();
    let tenant = &scope.tenant;

    // Agents.
    let deployments = scope.select::<agent_deployments::Entity>().all(db).await?;
    let agent_ids: Vec<Uuid> = deployments.iter().map(|d| d.agent_id).collect();
    let commit_ids: Vec<Uuid> = deployments.iter().map(|d| d.commit_id).collect();
    let slugs: HashMap<Uuid, String> = tenant
        .select::<agents::Entity>()
        .filter(agents::Column::Id.is_in(agent_ids))
        .all(db)
        .await?
        .into_iter()
        .map(|a| (a.id, a.slug))
        .collect();
    let commits: HashMap<Uuid, agent_commits::Model> = tenant
        .select::<agent_commits::Entity>()
        .filter(agent_commits::Column::Id.is_in(commit_ids))
        .all(db)
        .await?
        .into_iter()
        .map(|c| (c.id, c))
        .collect();
    for deployment in deployments {
        if let (Some(slug), Some(commit)) = (slugs.get(&deployment.agent_id), commits.get(&deployment.commit_id)) {
            state.items.insert(
                (ItemKind::Agent, slug.clone()),
                json!({ "commit": commit.id.to_string(), "number": commit.seq, "hash": commit.hash }),
            );
        }
    }

    // Prompts.
    let rows = scope.select::<prompts::Entity>().all(db).await?;
    let prompt_slugs: Vec<String> = rows.iter().map(|r| r.slug.clone()).collect();
    let versions = tenant
        .select::<prompt_versions::Entity>()
        .filter(prompt_versions::Column::Slug.is_in(prompt_slugs))
        .all(db)
        .await?;
    let by_id: HashMap<Uuid, &prompt_versions::Model> = versions.iter().map(|v| (v.id, v)).collect();
    let mut latest: HashMap<&str, &prompt_versions::Model> = HashMap::new();
    for version in &versions {
        let entry = latest.entry(version.slug.as_str()).or_insert(version);
        if version.version > entry.version {
            *entry = version;
        }
    }
    for row in rows {
        let value = match (scope.environment, &row.draft_template) {
            (Environment::Staging, Some(template)) => Some(json!({ "draft": {
                "template": template,
                "variables": row.draft_variables.clone().unwrap_or(json!([])),
                "modelSettings": row.draft_model_settings.clone().unwrap_or(json!({})),
            }})),
            (Environment::Staging, None) => latest.get(row.slug.as_str()).map(|v| version_state(v)),
            (Environment::Production, _) => row
                .published_version_id
                .and_then(|id| by_id.get(&id))
                .map(|v| version_state(v)),
        };
        if let Some(value) = value {
            state.items.insert((ItemKind::Prompt, row.slug), value);
        }
    }

    // Connectors.
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
    for instance in instances {
        let resources = resources.remove(&instance.id).unwrap_or_default();
        state.items.insert(
            (ItemKind::Connector, instance.slug),
            json!({
                "kind": instance.kind,
                "config": instance.config,
                "credentials": instance.credential_refs,
                "resources": resources,
            }),
        );
    }

    // Triggers.
    for trigger in scope.select::<triggers::Entity>().all(db).await? {
        state.items.insert(
            (ItemKind::Trigger, trigger.name.clone()),
            json!({
                "agent": trigger.agent_slug,
                "kind": trigger.kind,
                "schedule": trigger.schedule,
                "config": trigger.config,
                "enabled": trigger.enabled,
                // A fingerprint of the sealed webhook secret, never the secret.
                "secret": crate::domain::triggers::secret_fingerprint(&trigger),
            }),
        );
    }
    Ok(state)
}
