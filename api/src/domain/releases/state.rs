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
//! | trigger | `{"agent", "kind", "schedule", "config", "enabled", "secret"}` (a fingerprint) |
//!
//! Each kind's module in `kinds/` builds and applies its own.

use std::collections::BTreeMap;

use entity::prompt_versions;
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

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

/// A published version's state.
pub(super) fn version_state(version: &prompt_versions::Model) -> Value {
    json!({
        "version": version.id.to_string(),
        "number": version.version,
        "template": version.template,
        "variables": version.variables,
        "modelSettings": version.model_settings,
    })
}

/// Loads the state of every item of `scope`'s environment (a fixed number of queries): each
/// kind's module in `kinds/` snapshots its own items.
pub async fn load<C: ConnectionTrait>(db: &C, scope: &Scope) -> Result<EnvironmentState> {
    super::kinds::snapshot(db, scope).await
}
