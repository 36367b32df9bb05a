//! Memory entries, namespaced per environment: staging memory lives under `staging:`.
//!
//! Callers name a *logical* namespace (usually the agent's slug); the stored namespace is
//! `staging:<logical>` in staging and `<logical>` in production, so the two never mix even
//! when both environments run the same agent.

use chrono::{DateTime, Utc};
use entity::{Environment, memory_entries};
use sea_orm::{ColumnTrait, Order, QueryFilter, Set};
use serde_json::Value;
use uuid::Uuid;

use super::pagination::{self, Page, PageRequest};
use super::{new_id, now, revision, validate};
use crate::db::{Db, lock_for_update};
use crate::error::{Error, Result};
use crate::scope::{Scope, TenantWrite};

pub const STAGING_PREFIX: &str = "staging:";
pub const MAX_VALUE_BYTES: usize = 256 * 1024;

/// A memory entry, as the domain hands it out.
#[derive(Clone, Debug, PartialEq)]
pub struct MemoryEntry {
    pub id: Uuid,
    pub environment: Environment,
    /// The stored namespace: `staging:<name>` in staging, `<name>` in production.
    pub namespace: String,
    pub key: String,
    pub value: Value,
    pub revision: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<memory_entries::Model> for MemoryEntry {
    fn from(row: memory_entries::Model) -> Self {
        MemoryEntry {
            id: row.id,
            environment: row.environment,
            namespace: row.namespace,
            key: row.key,
            value: row.value,
            revision: row.revision,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// The stored namespace for a logical one in `environment`.
pub fn stored_namespace(environment: Environment, logical: &str) -> Result<String> {
    validate::short_text("namespace", logical, 200)?;
    if let Some(rest) = logical.strip_prefix(STAGING_PREFIX) {
        // Staging accepts its own stored form (what RUNFLOW_MEMORY_NAMESPACE holds).
        return match environment {
            Environment::Staging if !rest.is_empty() => Ok(logical.to_string()),
            _ => Err(Error::bad_input(format!(
                "namespace must not start with {STAGING_PREFIX:?} outside staging: the environment adds it"
            ))),
        };
    }
    Ok(match environment {
        Environment::Staging => format!("{STAGING_PREFIX}{logical}"),
        Environment::Production => logical.to_string(),
    })
}

/// Writes (creates or replaces) an entry.
pub async fn put(db: &Db, scope: &Scope, namespace: &str, key: &str, value: Value) -> Result<MemoryEntry> {
    let namespace = stored_namespace(scope.environment, namespace)?;
    validate::short_text("key", key, 512)?;
    validate::json_size("value", &value, MAX_VALUE_BYTES)?;
    let tx = db.begin_write().await?;
    lock_for_update(
        &tx,
        &format!("memory:{}:{}:{namespace}:{key}", scope.tenant.id(), scope.environment),
    )
    .await?;
    let existing = scope
        .select::<memory_entries::Entity>()
        .filter(memory_entries::Column::Namespace.eq(&namespace))
        .filter(memory_entries::Column::Key.eq(key))
        .one(&tx)
        .await?;
    let time = now();
    let row = match existing {
        Some(row) => {
            revision::update::<memory_entries::Entity, _, _>(
                &tx,
                &scope.tenant,
                &format!("memory entry {key:?}"),
                row.id,
                None,
                |active| {
                    active.value = Set(value);
                    active.updated_at = Set(time);
                },
            )
            .await?
        }
        None => {
            memory_entries::ActiveModel {
                id: Set(new_id()),
                tenant_id: Set(scope.tenant.id().to_string()),
                environment: Set(scope.environment),
                namespace: Set(namespace),
                key: Set(key.to_string()),
                value: Set(value),
                revision: Set(1),
                created_at: Set(time),
                updated_at: Set(time),
            }
            .insert_into(&scope.tenant, &tx)
            .await?
        }
    };
    db.commit(tx).await?;
    Ok(row.into())
}

pub async fn get(db: &Db, scope: &Scope, namespace: &str, key: &str) -> Result<MemoryEntry> {
    let stored = stored_namespace(scope.environment, namespace)?;
    scope
        .select::<memory_entries::Entity>()
        .filter(memory_entries::Column::Namespace.eq(&stored))
        .filter(memory_entries::Column::Key.eq(key))
        .one(&db.conn)
        .await?
        .map(MemoryEntry::from)
        .ok_or_else(|| Error::not_found(format!("memory entry {key:?} in namespace {stored:?}")))
}

/// An entry of the scope by id (None: not there).
pub async fn by_id(db: &Db, scope: &Scope, id: Uuid) -> Result<Option<MemoryEntry>> {
    let row = super::lookup::in_scope::<memory_entries::Entity, _>(&db.conn, scope, memory_entries::Column::Id, id);
    Ok(row.await?.map(MemoryEntry::from))
}

pub async fn delete(db: &Db, scope: &Scope, namespace: &str, key: &str) -> Result<Uuid> {
    let row = get(db, scope, namespace, key).await?;
    scope
        .delete_many::<memory_entries::Entity>()
        .filter(memory_entries::Column::Id.eq(row.id))
        .exec(&db.conn)
        .await?;
    Ok(row.id)
}

/// Entries of the environment, newest first, optionally of one logical namespace.
pub async fn list(db: &Db, scope: &Scope, namespace: Option<&str>, page: &PageRequest) -> Result<Page<MemoryEntry>> {
    let mut select = scope.select::<memory_entries::Entity>();
    if let Some(namespace) = namespace {
        select = select.filter(memory_entries::Column::Namespace.eq(stored_namespace(scope.environment, namespace)?));
    }
    let page = pagination::fetch(db, select, memory_entries::Column::Id, page, Order::Desc).await?;
    Ok(page.map(MemoryEntry::from))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staging_memory_lives_under_the_staging_prefix() {
        assert_eq!(stored_namespace(Environment::Staging, "bot").unwrap(), "staging:bot");
        assert_eq!(stored_namespace(Environment::Production, "bot").unwrap(), "bot");
        assert!(stored_namespace(Environment::Production, "staging:bot").is_err());
        assert_eq!(
            stored_namespace(Environment::Staging, "staging:bot").unwrap(),
            "staging:bot"
        );
    }
}
