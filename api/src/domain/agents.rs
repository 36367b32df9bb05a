//! Agents: shared metadata, immutable commits of code bundles, and a per-environment pointer
//! to the commit each environment runs (a *deployment*).
//!
//! An agent exists in an environment exactly when it has a deployment there. Deploys always
//! go to staging; production gets a deployment only by publishing.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use entity::{Environment, agent_commit_files, agent_commits, agent_deployments, agents, blobs};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, Order, QueryFilter, QueryOrder, QuerySelect, QueryTrait, Select,
    Set,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::manifest::{MANIFEST_PATH, Manifest};
use super::pagination::{self, Page, PageRequest};
use super::quotas::{RecordQuota, ensure_room};
use super::{EnvironmentWrite, new_id, now, revision, validate};
use crate::db::{Db, lock_for_update};
use crate::error::{Error, Result};
use crate::scope::{Scope, StagingScope, Tenant, TenantWrite};

/// Size limits of a bundle.
#[derive(Clone, Copy, Debug)]
pub struct BundleLimits {
    pub max_bundle_bytes: usize,
    pub max_file_bytes: usize,
    pub max_files: usize,
}

/// One uploaded file.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BundleFile {
    pub path: String,
    pub content: String,
}

#[derive(Clone, Debug)]
pub struct DeployInput {
    pub slug: String,
    pub files: Vec<BundleFile>,
    pub message: String,
}

/// An agent as seen in one environment.
#[derive(Clone, Debug)]
pub struct AgentInEnv {
    pub agent: Agent,
    pub deployment: Deployment,
}

/// An agent's shared metadata (the same in both environments).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Agent {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    pub description: String,
    pub revision: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<agents::Model> for Agent {
    fn from(row: agents::Model) -> Self {
        Agent {
            id: row.id,
            slug: row.slug,
            name: row.name,
            description: row.description,
            revision: row.revision,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// Which commit an agent runs in one environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deployment {
    pub id: Uuid,
    pub environment: Environment,
    pub agent_id: Uuid,
    pub commit_id: Uuid,
    pub revision: i64,
    pub updated_by: String,
    pub updated_at: DateTime<Utc>,
    /// In production: the release that last set it.
    pub release_id: Option<Uuid>,
}

impl From<agent_deployments::Model> for Deployment {
    fn from(row: agent_deployments::Model) -> Self {
        Deployment {
            id: row.id,
            environment: row.environment,
            agent_id: row.agent_id,
            commit_id: row.commit_id,
            revision: row.revision,
            updated_by: row.updated_by,
            updated_at: row.updated_at,
            release_id: row.release_id,
        }
    }
}

impl AgentInEnv {
    fn of(agent: agents::Model, deployment: agent_deployments::Model) -> AgentInEnv {
        AgentInEnv {
            agent: agent.into(),
            deployment: deployment.into(),
        }
    }
}

/// An immutable commit of an agent's code bundle, as the domain hands it out.
#[derive(Clone, Debug, PartialEq)]
pub struct Commit {
    pub id: Uuid,
    pub agent_id: Uuid,
    /// 1 for the agent's first commit, then one more per deploy.
    pub seq: i64,
    pub hash: String,
    pub parent_id: Option<Uuid>,
    pub message: String,
    pub author: String,
    /// The parsed `runflow.toml`, as stored.
    pub manifest: Value,
    pub file_count: i64,
    pub total_size: i64,
    pub created_at: DateTime<Utc>,
}

impl From<agent_commits::Model> for Commit {
    fn from(row: agent_commits::Model) -> Self {
        Commit {
            id: row.id,
            agent_id: row.agent_id,
            seq: row.seq,
            hash: row.hash,
            parent_id: row.parent_id,
            message: row.message,
            author: row.author,
            manifest: row.manifest,
            file_count: row.file_count,
            total_size: row.total_size,
            created_at: row.created_at,
        }
    }
}

/// The public URL at which an agent runs in an environment.
pub fn endpoint_url(public_url: &str, tenant: &str, environment: Environment, slug: &str) -> String {
    format!("{public_url}/v1/{tenant}/{}/agents/{slug}", environment.as_str())
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn validate_path(path: &str) -> Result<()> {
    let bad = path.is_empty()
        || path.len() > 512
        || path.starts_with('/')
        || path.contains('\\')
        || path.contains('\0')
        || path
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..");
    if bad {
        return Err(Error::bad_input(format!(
            "file path {path:?} is invalid: use a relative path with '/' separators, \
             no empty, '.' or '..' segments, at most 512 bytes"
        )));
    }
    Ok(())
}

/// Validates a bundle and returns its manifest. Nothing is written.
pub fn validate_bundle(slug: &str, files: &[BundleFile], limits: &BundleLimits) -> Result<Manifest> {
    validate::slug("slug", slug)?;
    if files.is_empty() {
        return Err(Error::bad_input(format!(
            "files is empty: a bundle needs at least {MANIFEST_PATH}"
        )));
    }
    if files.len() > limits.max_files {
        return Err(Error::bad_input(format!(
            "the bundle has {} files; the limit is {}",
            files.len(),
            limits.max_files
        )));
    }
    let mut seen = HashSet::new();
    let mut total = 0usize;
    for file in files {
        validate_path(&file.path)?;
        if !seen.insert(file.path.as_str()) {
            return Err(Error::bad_input(format!(
                "file {:?} appears twice in the bundle",
                file.path
            )));
        }
        validate::no_nul(&format!("file {:?}", file.path), &file.content)?;
        if file.content.len() > limits.max_file_bytes {
            return Err(Error::bad_input(format!(
                "file {:?} is {} bytes; the limit per file is {} bytes",
                file.path,
                file.content.len(),
                limits.max_file_bytes
            )));
        }
        total += file.content.len();
    }
    if total > limits.max_bundle_bytes {
        return Err(Error::bad_input(format!(
            "the bundle is {total} bytes; the limit is {} bytes",
            limits.max_bundle_bytes
        )));
    }
    let manifest_file = files.iter().find(|f| f.path == MANIFEST_PATH).ok_or_else(|| {
        Error::bad_input(format!(
            "the bundle has no {MANIFEST_PATH} at its root: add one with at least `name` and `entrypoint`"
        ))
    })?;
    let manifest = Manifest::parse(&manifest_file.content)?;
    if manifest.name != slug {
        return Err(Error::bad_input(format!(
            "{MANIFEST_PATH}: name is {:?} but the deploy is for agent {slug:?}; they must match",
            manifest.name
        )));
    }
    Ok(manifest)
}

/// The content hash of a bundle: sha256 over its sorted (path, content hash) pairs.
fn content_hash(blob_hashes: &BTreeMap<&str, String>) -> String {
    let mut hasher = Sha256::new();
    for (path, hash) in blob_hashes {
        hasher.update(path.as_bytes());
        hasher.update([0]);
        hasher.update(hash.as_bytes());
        hasher.update([b'\n']);
    }
    hex::encode(hasher.finalize())
}

/// Deploys a bundle to staging: one new immutable commit, and staging points at it.
/// Creates the agent (with its shared metadata) on first deploy.
pub async fn deploy(
    db: &Db,
    scope: &StagingScope,
    author: &str,
    limits: &BundleLimits,
    quota: RecordQuota,
    input: DeployInput,
) -> Result<(AgentInEnv, Commit)> {
    validate::author(author)?;
    let manifest = validate_bundle(&input.slug, &input.files, limits)?;
    validate::text_size("message", &input.message, 4096)?;
    let tenant = scope.tenant().id().to_string();
    let blob_hashes: BTreeMap<&str, String> = input
        .files
        .iter()
        .map(|f| (f.path.as_str(), sha256_hex(f.content.as_bytes())))
        .collect();
    let hash = content_hash(&blob_hashes);
    let time = now();

    let tx = db.begin_write().await?;
    lock_for_update(&tx, &format!("agent:{tenant}:{}", input.slug)).await?;
    let agent = match scope
        .tenant()
        .select::<agents::Entity>()
        .filter(agents::Column::Slug.eq(&input.slug))
        .one(&tx)
        .await?
    {
        Some(agent) => agent,
        None => {
            ensure_room(
                &tx,
                scope.tenant(),
                "agents",
                scope.tenant().select::<agents::Entity>(),
                quota.max_per_kind,
                "RUNFLOW_MAX_RECORDS_PER_KIND",
            )
            .await?;
            agents::ActiveModel {
                id: Set(new_id()),
                tenant_id: Set(tenant.clone()),
                slug: Set(input.slug.clone()),
                name: Set(input.slug.clone()),
                description: Set(manifest.description.clone().unwrap_or_default()),
                revision: Set(1),
                created_at: Set(time),
                updated_at: Set(time),
            }
            .insert_into(scope.tenant(), &tx)
            .await?
        }
    };
    let parent = scope
        .tenant()
        .select::<agent_commits::Entity>()
        .filter(agent_commits::Column::AgentId.eq(agent.id))
        .order_by_desc(agent_commits::Column::Seq)
        .one(&tx)
        .await?;

    // Content-addressed storage: insert only the blobs this tenant does not have yet.
    let wanted: Vec<String> = blob_hashes
        .values()
        .cloned()
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let existing: HashSet<String> = scope
        .tenant()
        .select::<blobs::Entity>()
        .filter(blobs::Column::Hash.is_in(wanted.clone()))
        .select_only()
        .column(blobs::Column::Hash)
        .into_tuple::<String>()
        .all(&tx)
        .await?
        .into_iter()
        .collect();
    let mut new_blobs = HashMap::new();
    for file in &input.files {
        let file_hash = &blob_hashes[file.path.as_str()];
        if !existing.contains(file_hash) {
            new_blobs
                .entry(file_hash.clone())
                .or_insert_with(|| blobs::ActiveModel {
                    id: Set(new_id()),
                    tenant_id: Set(tenant.clone()),
                    hash: Set(file_hash.clone()),
                    content: Set(file.content.clone()),
                    size: Set(file.content.len() as i64),
                });
        }
    }
    // Another agent of the tenant may store the same content concurrently: skip, not fail.
    let new_blobs: Vec<blobs::ActiveModel> = new_blobs.into_values().collect();
    for chunk in new_blobs.chunks(200) {
        scope
            .tenant()
            .insert_many(chunk.to_vec())
            .on_conflict_do_nothing_on([blobs::Column::TenantId, blobs::Column::Hash])
            .exec(&tx)
            .await?;
    }

    let total_size: usize = input.files.iter().map(|f| f.content.len()).sum();
    let commit = agent_commits::ActiveModel {
        id: Set(new_id()),
        tenant_id: Set(tenant.clone()),
        agent_id: Set(agent.id),
        seq: Set(parent.as_ref().map_or(1, |p| p.seq + 1)),
        hash: Set(hash),
        parent_id: Set(parent.as_ref().map(|p| p.id)),
        message: Set(input.message.clone()),
        author: Set(author.to_string()),
        manifest: Set(serde_json::to_value(&manifest).map_err(Error::internal)?),
        file_count: Set(input.files.len() as i64),
        total_size: Set(total_size as i64),
        created_at: Set(time),
    }
    .insert_into(scope.tenant(), &tx)
    .await?;
    let files: Vec<agent_commit_files::ActiveModel> = input
        .files
        .iter()
        .map(|file| agent_commit_files::ActiveModel {
            id: Set(new_id()),
            tenant_id: Set(tenant.clone()),
            commit_id: Set(commit.id),
            path: Set(file.path.clone()),
            blob_hash: Set(blob_hashes[file.path.as_str()].clone()),
            size: Set(file.content.len() as i64),
        })
        .collect();
    insert_in_chunks(&tx, scope.tenant(), files).await?;

    let deployment = set_deployment(&tx, scope, agent.id, commit.id, author).await?;
    db.commit(tx).await?;
    Ok((AgentInEnv::of(agent, deployment), commit.into()))
}

/// Inserts rows in batches small enough for every backend's bind-parameter limit.
async fn insert_in_chunks<A, C>(db: &C, tenant: &Tenant, rows: Vec<A>) -> Result<()>
where
    A: ActiveModelTrait + Send,
    A::Entity: entity::TenantOwned,
    C: ConnectionTrait,
{
    let mut rows = rows;
    while !rows.is_empty() {
        let rest = rows.split_off(rows.len().min(200));
        let chunk = std::mem::replace(&mut rows, rest);
        tenant.insert_many(chunk).exec(db).await?;
    }
    Ok(())
}

/// Points the written environment at `commit_id`, creating the deployment if needed. Staging
/// by a deploy ([`crate::scope::StagingScope`]), production only by a publish
/// ([`super::releases::ProductionWrite`]).
pub async fn set_deployment<C: ConnectionTrait>(
    db: &C,
    write: &impl EnvironmentWrite,
    agent_id: Uuid,
    commit_id: Uuid,
    author: &str,
) -> Result<agent_deployments::Model> {
    let scope = write.target();
    let release_id = write.release_id();
    let existing = scope
        .select::<agent_deployments::Entity>()
        .filter(agent_deployments::Column::AgentId.eq(agent_id))
        .one(db)
        .await?;
    let time = now();
    Ok(match existing {
        Some(deployment) => {
            revision::update::<agent_deployments::Entity, _, _>(
                db,
                &scope.tenant,
                &format!("the deployment of agent {agent_id} in {}", scope.environment),
                deployment.id,
                None,
                |active| {
                    active.commit_id = Set(commit_id);
                    active.updated_by = Set(author.to_string());
                    active.updated_at = Set(time);
                    active.release_id = Set(release_id);
                },
            )
            .await?
        }
        None => {
            agent_deployments::ActiveModel {
                id: Set(new_id()),
                tenant_id: Set(scope.tenant.id().to_string()),
                environment: Set(scope.environment),
                agent_id: Set(agent_id),
                commit_id: Set(commit_id),
                revision: Set(1),
                updated_by: Set(author.to_string()),
                updated_at: Set(time),
                release_id: Set(release_id),
            }
            .insert_into(&scope.tenant, db)
            .await?
        }
    })
}

/// Removes the agent from the written environment (a published removal; a staging edit uses
/// [`delete`], which checks the revision).
pub async fn remove_deployment<C: ConnectionTrait>(db: &C, write: &impl EnvironmentWrite, slug: &str) -> Result<()> {
    if let Some(found) = find(db, write.target(), slug).await? {
        write
            .target()
            .tenant
            .delete_many::<agent_deployments::Entity>()
            .filter(agent_deployments::Column::Id.eq(found.deployment.id))
            .exec(db)
            .await?;
    }
    Ok(())
}

/// The agents that have a deployment in the scope's environment (a subquery).
fn deployed_in(scope: &Scope) -> Select<agents::Entity> {
    let deployed = scope
        .select::<agent_deployments::Entity>()
        .select_only()
        .column(agent_deployments::Column::AgentId)
        .into_query();
    scope
        .tenant
        .select::<agents::Entity>()
        .filter(agents::Column::Id.in_subquery(deployed))
}

/// The one agent-with-deployment join: pairs `agents` with the deployments that `deployments`
/// (a tenant- or scope-filtered select) finds for them, in the agents' order, one entry per
/// deployment. An agent without one (e.g. removed between two reads) is left out.
async fn join<C: ConnectionTrait>(
    db: &C,
    deployments: Select<agent_deployments::Entity>,
    agents: Vec<agents::Model>,
) -> Result<Vec<AgentInEnv>> {
    let ids: Vec<Uuid> = agents.iter().map(|a| a.id).collect();
    let mut by_agent: HashMap<Uuid, Vec<agent_deployments::Model>> = HashMap::new();
    for deployment in deployments
        .filter(agent_deployments::Column::AgentId.is_in(ids))
        .order_by_asc(agent_deployments::Column::Environment)
        .all(db)
        .await?
    {
        by_agent.entry(deployment.agent_id).or_default().push(deployment);
    }
    let mut result = Vec::with_capacity(agents.len());
    for agent in agents {
        for deployment in by_agent.remove(&agent.id).unwrap_or_default() {
            result.push(AgentInEnv::of(agent.clone(), deployment));
        }
    }
    Ok(result)
}

/// A page of the agents that exist in the scope's environment, by slug.
pub async fn list(db: &Db, scope: &Scope, page: &PageRequest) -> Result<Page<AgentInEnv>> {
    let agents = pagination::fetch_by_name(db, deployed_in(scope), agents::Column::Slug, page).await?;
    // Removed between the two reads: the page is one shorter, never wrong.
    let items = join(&db.conn, scope.select(), agents.items).await?;
    Ok(Page {
        items,
        has_next_page: agents.has_next_page,
        has_previous_page: agents.has_previous_page,
        total_count: agents.total_count,
    })
}

/// Every agent that exists in the scope's environment, with its deployment there.
pub async fn all_in<C: ConnectionTrait>(db: &C, scope: &Scope) -> Result<Vec<AgentInEnv>> {
    let agents = deployed_in(scope).all(db).await?;
    join(db, scope.select(), agents).await
}

/// Pairs agents with each of their deployments (one entry per environment they exist in).
pub async fn with_deployments(db: &Db, tenant: &Tenant, agents: Vec<agents::Model>) -> Result<Vec<AgentInEnv>> {
    join(&db.conn, tenant.select(), agents).await
}

/// The agents with these ids, once per environment they are deployed in.
pub async fn deployed_by_ids(db: &Db, tenant: &Tenant, ids: Vec<Uuid>) -> Result<Vec<AgentInEnv>> {
    let agents = tenant
        .select::<agents::Entity>()
        .filter(agents::Column::Id.is_in(ids))
        .all(&db.conn)
        .await?;
    with_deployments(db, tenant, agents).await
}

/// The agents with these slugs, once per environment they are deployed in.
pub async fn deployed_by_slugs(db: &Db, tenant: &Tenant, slugs: Vec<String>) -> Result<Vec<AgentInEnv>> {
    let agents = tenant
        .select::<agents::Entity>()
        .filter(agents::Column::Slug.is_in(slugs))
        .all(&db.conn)
        .await?;
    with_deployments(db, tenant, agents).await
}

/// The newest `limit` commits of an agent with `after < number <= up_to`, newest first.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CommitRange {
    pub agent_slug: String,
    pub after: i64,
    pub up_to: i64,
    pub limit: u64,
}

impl CommitRange {
    /// The lowest number the range returns: numbers are consecutive per agent, so the newest
    /// `limit` are above `up_to - limit` (the rows read are bounded by `limit`).
    fn floor(&self) -> i64 {
        self.after
            .max(self.up_to.saturating_sub(i64::try_from(self.limit).unwrap_or(i64::MAX)))
    }
}

/// The commits of each range, read in one statement (plus one for the agents' ids).
pub async fn commits_in_ranges(
    db: &Db,
    tenant: &Tenant,
    ranges: &[CommitRange],
) -> Result<Vec<(CommitRange, Vec<Commit>)>> {
    use sea_orm::Condition;
    let slugs: Vec<String> = ranges.iter().map(|k| k.agent_slug.clone()).collect();
    let agents: HashMap<String, Uuid> = tenant
        .select::<agents::Entity>()
        .filter(agents::Column::Slug.is_in(slugs))
        .all(&db.conn)
        .await?
        .into_iter()
        .map(|a| (a.slug, a.id))
        .collect();
    let mut wanted = Condition::any();
    for range in ranges {
        if let Some(agent) = agents.get(&range.agent_slug) {
            wanted = wanted.add(
                Condition::all()
                    .add(agent_commits::Column::AgentId.eq(*agent))
                    .add(agent_commits::Column::Seq.gt(range.floor()))
                    .add(agent_commits::Column::Seq.lte(range.up_to)),
            );
        }
    }
    let commits = if wanted.is_empty() {
        Vec::new()
    } else {
        tenant
            .select::<agent_commits::Entity>()
            .filter(wanted)
            .order_by_desc(agent_commits::Column::Seq)
            .all(&db.conn)
            .await?
    };
    Ok(ranges
        .iter()
        .map(|range| {
            let agent = agents.get(&range.agent_slug);
            let found = commits
                .iter()
                .filter(|c| Some(&c.agent_id) == agent && c.seq > range.floor() && c.seq <= range.up_to)
                .take(usize::try_from(range.limit).unwrap_or(usize::MAX))
                .cloned()
                .map(Commit::from)
                .collect();
            (range.clone(), found)
        })
        .collect())
}

/// One agent in the scope's environment; `None` when it does not exist there.
pub async fn find<C: ConnectionTrait>(db: &C, scope: &Scope, slug: &str) -> Result<Option<AgentInEnv>> {
    let agent = scope
        .tenant
        .select::<agents::Entity>()
        .filter(agents::Column::Slug.eq(slug))
        .one(db)
        .await?;
    Ok(match agent {
        Some(agent) => join(db, scope.select(), vec![agent]).await?.pop(),
        None => None,
    })
}

pub async fn get<C: ConnectionTrait>(db: &C, scope: &Scope, slug: &str) -> Result<AgentInEnv> {
    find(db, scope, slug)
        .await?
        .ok_or_else(|| Error::not_found(format!("agent {slug:?} in {}", scope.environment)))
}

#[derive(Clone, Debug, Default)]
pub struct UpdateAgentInput {
    pub slug: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub expected_revision: Option<i64>,
}

/// Updates the shared metadata (visible in both environments at once).
pub async fn update(db: &Db, scope: &StagingScope, input: UpdateAgentInput) -> Result<AgentInEnv> {
    if let Some(name) = &input.name {
        validate::short_text("name", name, 200)?;
    }
    if let Some(description) = &input.description {
        validate::text_size("description", description, 4096)?;
    }
    let tx = db.begin_write().await?;
    let current = get(&tx, scope, &input.slug).await?;
    let agent = revision::update::<agents::Entity, _, _>(
        &tx,
        &scope.tenant,
        &format!("agent {:?}", input.slug),
        current.agent.id,
        input.expected_revision,
        |active| {
            if let Some(name) = input.name {
                active.name = Set(name);
            }
            if let Some(description) = input.description {
                active.description = Set(description);
            }
            active.updated_at = Set(now());
        },
    )
    .await?;
    db.commit(tx).await?;
    Ok(AgentInEnv {
        agent: agent.into(),
        deployment: current.deployment,
    })
}

/// Removes the agent from staging. Production keeps it until the removal is published.
/// `expected_revision` is compared with the staging deployment's revision.
pub async fn delete(db: &Db, scope: &StagingScope, slug: &str, expected_revision: Option<i64>) -> Result<Uuid> {
    let tx = db.begin_write().await?;
    let current = get(&tx, scope, slug).await?;
    revision::delete::<agent_deployments::Entity, _>(
        &tx,
        &scope.tenant,
        &format!("agent {slug:?}"),
        current.deployment.id,
        expected_revision,
    )
    .await?;
    db.commit(tx).await?;
    Ok(current.agent.id)
}

/// Commits of an agent in an environment: the environment's commit and its ancestors,
/// newest first.
pub async fn history(db: &Db, scope: &Scope, agent: &AgentInEnv, page: &PageRequest) -> Result<Page<Commit>> {
    let Some(head) = scope
        .tenant
        .select::<agent_commits::Entity>()
        .filter(agent_commits::Column::Id.eq(agent.deployment.commit_id))
        .one(&db.conn)
        .await?
    else {
        return Ok(Page::empty());
    };
    let select = scope
        .tenant
        .select::<agent_commits::Entity>()
        .filter(agent_commits::Column::AgentId.eq(agent.agent.id))
        .filter(agent_commits::Column::Seq.lte(head.seq));
    let page = pagination::fetch(db, select, agent_commits::Column::Id, page, Order::Desc).await?;
    Ok(page.map(Commit::from))
}

/// A commit of the tenant by id (None: not there).
pub async fn commit_by_id(db: &Db, tenant: &Tenant, id: Uuid) -> Result<Option<Commit>> {
    let row = super::lookup::in_tenant::<agent_commits::Entity, _>(&db.conn, tenant, agent_commits::Column::Id, id);
    Ok(row.await?.map(Commit::from))
}

/// Commits of the tenant by id (in no particular order; missing ids are left out): what the
/// DataLoaders batch into.
pub async fn commits_by_ids(db: &Db, tenant: &Tenant, ids: Vec<Uuid>) -> Result<Vec<Commit>> {
    let rows =
        super::lookup::many_in_tenant::<agent_commits::Entity, _>(&db.conn, tenant, agent_commits::Column::Id, ids);
    Ok(rows.await?.into_iter().map(Commit::from).collect())
}

/// A file of a commit, with its content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitFile {
    pub path: String,
    pub size: i64,
    pub hash: String,
    pub content: String,
}

/// The files of several commits at once (one query for the file lists, one for contents).
pub async fn files_of_commits(db: &Db, tenant: &Tenant, commit_ids: &[Uuid]) -> Result<HashMap<Uuid, Vec<CommitFile>>> {
    let files = tenant
        .select::<agent_commit_files::Entity>()
        .filter(agent_commit_files::Column::CommitId.is_in(commit_ids.to_vec()))
        .order_by_asc(agent_commit_files::Column::Path)
        .all(&db.conn)
        .await?;
    let hashes: Vec<String> = files
        .iter()
        .map(|f| f.blob_hash.clone())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let mut contents: HashMap<String, String> = HashMap::new();
    for chunk in hashes.chunks(500) {
        let rows = tenant
            .select::<blobs::Entity>()
            .filter(blobs::Column::Hash.is_in(chunk.to_vec()))
            .all(&db.conn)
            .await?;
        contents.extend(rows.into_iter().map(|b| (b.hash, b.content)));
    }
    let mut result: HashMap<Uuid, Vec<CommitFile>> = HashMap::new();
    for file in files {
        let content = contents.get(&file.blob_hash).cloned().unwrap_or_default();
        result.entry(file.commit_id).or_default().push(CommitFile {
            path: file.path,
            size: file.size,
            hash: file.blob_hash,
            content,
        });
    }
    Ok(result)
}
