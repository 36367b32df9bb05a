//! Memory entries, per environment (staging under `staging:`).

use async_graphql::{Context, ID, Json, Object};
use chrono::{DateTime, Utc};
use entity::memory_entries;
use serde_json::Value;

use super::context::{scope, services};
use super::pagination::{RelayConnection, connection, page_request};
use super::{Environment, GqlResult};
use crate::domain::memory as domain;

pub struct MemoryEntry(memory_entries::Model);

#[Object]
impl MemoryEntry {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn environment(&self) -> Environment {
        self.0.environment.into()
    }
    /// The stored namespace: `staging:<name>` in staging, `<name>` in production.
    async fn namespace(&self) -> &str {
        &self.0.namespace
    }
    async fn key(&self) -> &str {
        &self.0.key
    }
    async fn value(&self) -> Json<Value> {
        Json(self.0.value.clone())
    }
    async fn revision(&self) -> i64 {
        self.0.revision
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

#[derive(Default)]
pub struct MemoryQuery;

#[Object]
impl MemoryQuery {
    /// Memory entries of the environment, newest first.
    async fn memory_entries(
        &self,
        ctx: &Context<'_>,
        environment: Environment,
        #[graphql(desc = "Only this logical namespace (without the `staging:` prefix).")] namespace: Option<String>,
        first: Option<i32>,
        after: Option<String>,
    ) -> GqlResult<RelayConnection<MemoryEntry>> {
        let scope = scope(ctx, environment)?;
        let page = page_request(first, after)?;
        let entries = domain::list(&services(ctx).db, &scope, namespace.as_deref(), &page).await?;
        Ok(connection(entries, |m| m.id, MemoryEntry))
    }
}
