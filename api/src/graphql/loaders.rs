//! Per-request DataLoaders: nested fields load in batches (one query per field per level,
//! whatever the number of parents), always within the caller's tenant.
//!
//! Created for each request with the caller's tenant, never shared between requests (a loader
//! in the schema data would share its cache between users).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, HashMapCache, Loader};
use entity::Environment;
use uuid::Uuid;

use crate::db::Db;
use crate::domain::agents::{AgentInEnv, CommitFile, files_of_commits};
use crate::domain::{agents, connectors, executions, prompts, releases, sessions, traces, triggers};
use crate::error::Error;
use crate::scope::Tenant;

pub struct Loaders {
    db: Db,
    tenant: Tenant,
}

impl Loaders {
    pub fn new(db: Db, tenant: Tenant) -> Self {
        Loaders { db, tenant }
    }
}

/// The loader a request carries. Its cache lives as long as the request.
pub type RequestLoader = DataLoader<Loaders, HashMapCache>;

pub fn request_loader(db: Db, tenant: Tenant) -> RequestLoader {
    DataLoader::with_cache(Loaders::new(db, tenant), tokio::spawn, HashMapCache::default())
}

/// Loads `keys` in one batch now and caches the values, so the fields resolved next find
/// them. A list resolver calls this for the nested fields its query selects: batching then
/// does not depend on how the resolution of many rows happens to interleave in time.
pub async fn prime<K>(loader: &RequestLoader, keys: Vec<K>) -> Result<(), Arc<Error>>
where
    K: Send + Sync + std::hash::Hash + Eq + Clone + 'static,
    Loaders: Loader<K, Error = Arc<Error>>,
{
    if keys.is_empty() {
        return Ok(());
    }
    let values = loader.loader().load(&keys).await?;
    loader.feed_many(values).await;
    Ok(())
}

type LoadResult<K, V> = Result<HashMap<K, V>, Arc<Error>>;

/// An agent as it exists in one environment (None when it does not exist there).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AgentInEnvKey(pub Uuid, pub Environment);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CommitKey(pub Uuid);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CommitFilesKey(pub Uuid);

/// The first `n` spans of an execution (a page asks for one more than it shows, to know
/// whether more follow); with their `attributes` only when the third field is true (else an
/// empty object stands in, see [`crate::domain::traces::first_spans_of_executions`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FirstSpansOfExecution(pub Uuid, pub u64, pub bool);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ResourcesOfConnector(pub Uuid);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PromptVersionKey(pub Uuid);

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LatestPromptVersion(pub String);

impl Loader<AgentInEnvKey> for Loaders {
    type Value = AgentInEnv;
    type Error = Arc<Error>;

    async fn load(&self, keys: &[AgentInEnvKey]) -> LoadResult<AgentInEnvKey, AgentInEnv> {
        let ids: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
        let found = crate::domain::agents::deployed_by_ids(&self.db, &self.tenant, ids)
            .await
            .map_err(Arc::new)?;
        Ok(found
            .into_iter()
            .map(|a| (AgentInEnvKey(a.agent.id, a.deployment.environment), a))
            .filter(|(key, _)| keys.contains(key))
            .collect())
    }
}

impl Loader<CommitKey> for Loaders {
    type Value = agents::Commit;
    type Error = Arc<Error>;

    async fn load(&self, keys: &[CommitKey]) -> LoadResult<CommitKey, agents::Commit> {
        let ids: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
        Ok(agents::commits_by_ids(&self.db, &self.tenant, ids)
            .await
            .map_err(Arc::new)?
            .into_iter()
            .map(|c| (CommitKey(c.id), c))
            .collect())
    }
}

impl Loader<CommitFilesKey> for Loaders {
    type Value = Vec<CommitFile>;
    type Error = Arc<Error>;

    async fn load(&self, keys: &[CommitFilesKey]) -> LoadResult<CommitFilesKey, Vec<CommitFile>> {
        let ids: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
        let mut files = files_of_commits(&self.db, &self.tenant, &ids).await.map_err(Arc::new)?;
        Ok(ids
            .into_iter()
            .map(|id| (CommitFilesKey(id), files.remove(&id).unwrap_or_default()))
            .collect())
    }
}

impl Loader<FirstSpansOfExecution> for Loaders {
    type Value = Vec<traces::Span>;
    type Error = Arc<Error>;

    async fn load(&self, keys: &[FirstSpansOfExecution]) -> LoadResult<FirstSpansOfExecution, Vec<traces::Span>> {
        let mut by_limit: HashMap<(u64, bool), Vec<Uuid>> = HashMap::new();
        for key in keys {
            by_limit.entry((key.1, key.2)).or_default().push(key.0);
        }
        let mut result = HashMap::new();
        for ((limit, attributes), ids) in by_limit {
            let rows = traces::first_spans_of_executions(&self.db, &self.tenant, &ids, limit, attributes)
                .await
                .map_err(Arc::new)?;
            result.extend(
                rows.into_iter()
                    .map(|(id, spans)| (FirstSpansOfExecution(id, limit, attributes), spans)),
            );
        }
        Ok(result)
    }
}

impl Loader<ResourcesOfConnector> for Loaders {
    type Value = Vec<connectors::ConnectorResource>;
    type Error = Arc<Error>;

    async fn load(
        &self,
        keys: &[ResourcesOfConnector],
    ) -> LoadResult<ResourcesOfConnector, Vec<connectors::ConnectorResource>> {
        let ids: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
        let mut map = connectors::resources_of(&self.db, &self.tenant, &ids)
            .await
            .map_err(Arc::new)?;
        Ok(ids
            .into_iter()
            .map(|id| (ResourcesOfConnector(id), map.remove(&id).unwrap_or_default()))
            .collect())
    }
}

impl Loader<PromptVersionKey> for Loaders {
    type Value = prompts::PromptVersion;
    type Error = Arc<Error>;

    async fn load(&self, keys: &[PromptVersionKey]) -> LoadResult<PromptVersionKey, prompts::PromptVersion> {
        let ids: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
        Ok(prompts::versions_by_ids(&self.db, &self.tenant, ids)
            .await
            .map_err(Arc::new)?
            .into_iter()
            .map(|v| (PromptVersionKey(v.id), v))
            .collect())
    }
}

impl Loader<LatestPromptVersion> for Loaders {
    type Value = prompts::PromptVersion;
    type Error = Arc<Error>;

    async fn load(&self, keys: &[LatestPromptVersion]) -> LoadResult<LatestPromptVersion, prompts::PromptVersion> {
        let slugs: Vec<String> = keys.iter().map(|k| k.0.clone()).collect();
        let rows = prompts::latest_versions(&self.db, &self.tenant, slugs)
            .await
            .map_err(Arc::new)?;
        Ok(rows
            .into_iter()
            .map(|v| (LatestPromptVersion(v.slug.clone()), v))
            .collect())
    }
}

/// An agent by slug as it exists in one environment.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AgentBySlug(pub String, pub Environment);

impl Loader<AgentBySlug> for Loaders {
    type Value = AgentInEnv;
    type Error = Arc<Error>;

    async fn load(&self, keys: &[AgentBySlug]) -> LoadResult<AgentBySlug, AgentInEnv> {
        let slugs: Vec<String> = keys.iter().map(|k| k.0.clone()).collect();
        let found = crate::domain::agents::deployed_by_slugs(&self.db, &self.tenant, slugs)
            .await
            .map_err(Arc::new)?;
        Ok(found
            .into_iter()
            .map(|a| (AgentBySlug(a.agent.slug.clone(), a.deployment.environment), a))
            .filter(|(key, _)| keys.contains(key))
            .collect())
    }
}

/// File diffs between a production commit and a staging commit (either may be absent).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FileDiffsKey(pub Option<Uuid>, pub Option<Uuid>);

impl Loader<FileDiffsKey> for Loaders {
    type Value = Vec<crate::domain::releases::diff::FileDiff>;
    type Error = Arc<Error>;

    async fn load(&self, keys: &[FileDiffsKey]) -> LoadResult<FileDiffsKey, Self::Value> {
        let pairs: Vec<(Option<Uuid>, Option<Uuid>)> = keys.iter().map(|k| (k.0, k.1)).collect();
        let mut diffs = crate::domain::releases::file_diffs(&self.db, &self.tenant, &pairs)
            .await
            .map_err(Arc::new)?;
        Ok(keys
            .iter()
            .map(|k| (*k, diffs.remove(&(k.0, k.1)).unwrap_or_default()))
            .collect())
    }
}

pub use crate::domain::agents::CommitRange;

impl Loader<CommitRange> for Loaders {
    type Value = Vec<agents::Commit>;
    type Error = Arc<Error>;

    async fn load(&self, keys: &[CommitRange]) -> LoadResult<CommitRange, Vec<agents::Commit>> {
        Ok(crate::domain::agents::commits_in_ranges(&self.db, &self.tenant, keys)
            .await
            .map_err(Arc::new)?
            .into_iter()
            .collect())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ReleaseKey(pub Uuid);

impl Loader<ReleaseKey> for Loaders {
    type Value = releases::Release;
    type Error = Arc<Error>;

    async fn load(&self, keys: &[ReleaseKey]) -> LoadResult<ReleaseKey, releases::Release> {
        let ids: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
        Ok(releases::by_ids(&self.db, &self.tenant, ids)
            .await
            .map_err(Arc::new)?
            .into_iter()
            .map(|r| (ReleaseKey(r.id), r))
            .collect())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ReleaseItemsKey(pub Uuid);

impl Loader<ReleaseItemsKey> for Loaders {
    type Value = Vec<releases::ReleaseItem>;
    type Error = Arc<Error>;

    async fn load(&self, keys: &[ReleaseItemsKey]) -> LoadResult<ReleaseItemsKey, Self::Value> {
        let ids: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
        let mut items = releases::items_of(&self.db, &self.tenant, &ids)
            .await
            .map_err(Arc::new)?;
        Ok(ids
            .into_iter()
            .map(|id| (ReleaseItemsKey(id), items.remove(&id).unwrap_or_default()))
            .collect())
    }
}

/// Declares a key that loads one per-environment record by its id, within the request's tenant
/// and only in the key's environment (a record of another environment is a missing one), through
/// the domain function `$by_ids` (the tenant's records by id).
macro_rules! row_in_environment {
    ($(#[$doc:meta])* $key:ident => $value:ty, $by_ids:path) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub struct $key(pub Uuid, pub Environment);

        impl Loader<$key> for Loaders {
            type Value = $value;
            type Error = Arc<Error>;

            async fn load(&self, keys: &[$key]) -> LoadResult<$key, Self::Value> {
                let wanted: HashSet<$key> = keys.iter().copied().collect();
                let ids: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
                Ok($by_ids(&self.db, &self.tenant, ids)
                    .await
                    .map_err(Arc::new)?
                    .into_iter()
                    .map(|record| ($key(record.id, record.environment), record))
                    .filter(|(key, _)| wanted.contains(key))
                    .collect())
            }
        }
    };
}

row_in_environment!(
    /// An execution by id (`Execution.parent`, `Trace.execution`).
    ExecutionKey => executions::Execution, executions::by_ids
);
row_in_environment!(
    /// A session by id (`Execution.session`).
    SessionKey => sessions::Session, sessions::by_ids
);
row_in_environment!(
    /// A trigger by id (`Execution.trigger`).
    TriggerKey => triggers::Trigger, triggers::by_ids
);
row_in_environment!(
    /// A trace by id (`Span.trace`).
    TraceKey => traces::Trace, traces::by_ids
);
row_in_environment!(
    /// A span by id (`Span.parent`).
    SpanKey => traces::Span, traces::spans_in_tenant
);

/// The first trace recorded for an execution (`Execution.trace`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FirstTraceOfExecution(pub Uuid, pub Environment);

impl Loader<FirstTraceOfExecution> for Loaders {
    type Value = traces::Trace;
    type Error = Arc<Error>;

    async fn load(&self, keys: &[FirstTraceOfExecution]) -> LoadResult<FirstTraceOfExecution, Self::Value> {
        let wanted: HashSet<FirstTraceOfExecution> = keys.iter().copied().collect();
        let ids: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
        Ok(traces::first_traces_of_executions(&self.db, &self.tenant, &ids)
            .await
            .map_err(Arc::new)?
            .into_iter()
            .filter_map(|trace| {
                let key = FirstTraceOfExecution(trace.execution_id?, trace.environment);
                wanted.contains(&key).then_some((key, trace))
            })
            .collect())
    }
}
