//! Memory entries, per environment (staging under `staging:`).

use async_graphql::{Context, ID, Object};

use super::context::{scope, services};
use super::ids::{self, NodeType};
use super::pagination::{PageArgs, connection_type, parts};
use super::scalars::{DateTime, Json};
use super::{Environment, GqlResult};
use crate::domain::memory as domain;

/// A key-value entry agents store between runs.
pub struct MemoryEntry(pub domain::MemoryEntry);

connection_type!(MemoryEntryConnection, MemoryEntryEdge, MemoryEntry, "memory entries");

/// A key-value entry that agents store between runs, in one environment.
#[Object]
impl MemoryEntry {
    /// Global id of the entry.
    pub(crate) async fn id(&self) -> ID {
        ids::encode(NodeType::MemoryEntry, self.0.environment, self.0.id)
    }
    /// The environment it belongs to.
    async fn environment(&self) -> Environment {
        self.0.environment.into()
    }
    /// The stored namespace: `staging:<name>` in staging, `<name>` in production.
    async fn namespace(&self) -> &str {
        &self.0.namespace
    }
    /// The key, unique within the namespace.
    async fn key(&self) -> &str {
        &self.0.key
    }
    /// The stored value.
    async fn value(&self) -> Json {
        Json(self.0.value.clone())
    }
    /// Changes on every write.
    async fn revision(&self) -> i64 {
        self.0.revision
    }
    /// When it was last written.
    async fn updated_at(&self) -> DateTime {
        self.0.updated_at.into()
    }
}

#[derive(Default)]
pub struct MemoryQuery;

#[Object]
impl MemoryQuery {
    /// Memory entries of the environment, newest first.
    #[allow(clippy::too_many_arguments)]
    async fn memory_entries(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The environment to list.")] environment: Environment,
        #[graphql(desc = "Only this logical namespace (without the `staging:` prefix).")] namespace: Option<String>,
        #[graphql(desc = "Page size from the start (default 20, at most 100).")] first: Option<i32>,
        #[graphql(desc = "Return the entries after this cursor.")] after: Option<String>,
        #[graphql(desc = "Page size from the end (at most 100).")] last: Option<i32>,
        #[graphql(desc = "Return the entries before this cursor.")] before: Option<String>,
    ) -> GqlResult<MemoryEntryConnection> {
        let scope = scope(ctx, environment)?;
        let page = PageArgs::new(first, after, last, before).request(ctx)?;
        let entries = domain::list(&services(ctx).db, &scope, namespace.as_deref(), &page).await?;
        Ok(MemoryEntryConnection(parts(entries, |m| m.id.to_string(), MemoryEntry)))
    }
}
