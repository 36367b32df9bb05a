//! Agents: shared metadata, per-environment code (commits) and endpoint URLs.

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use entity::agent_commits;

use super::Environment;
use super::GqlResult;
use super::context::{actor, loader, scope, services, staging};
use super::loaders::{CommitFilesKey, CommitKey};
use super::pagination::{RelayConnection, connection, page_request};
use crate::domain::agents::{self, AgentInEnv, BundleFile, DeployInput, UpdateAgentInput};
use crate::domain::manifest::Manifest;
use crate::error::Error;

/// An agent as it exists in one environment. `name` and `description` are shared by both
/// environments; the code (`currentCommit`) and the endpoint are per environment.
pub struct Agent(pub AgentInEnv);

#[Object]
impl Agent {
    async fn id(&self) -> ID {
        ID(self.0.agent.id.to_string())
    }

    async fn slug(&self) -> &str {
        &self.0.agent.slug
    }

    /// Shared by both environments.
    async fn name(&self) -> &str {
        &self.0.agent.name
    }

    /// Shared by both environments.
    async fn description(&self) -> &str {
        &self.0.agent.description
    }

    /// The environment this view of the agent belongs to.
    async fn environment(&self) -> Environment {
        self.0.deployment.environment.into()
    }

    /// Revision of the shared metadata; pass it as `expectedRevision` to `updateAgent`.
    async fn revision(&self) -> i64 {
        self.0.agent.revision
    }

    /// Revision of this environment's deployment; pass it as `expectedRevision` to `deleteAgent`.
    async fn deployment_revision(&self) -> i64 {
        self.0.deployment.revision
    }

    /// Where this environment serves the agent.
    async fn endpoint_url(&self, ctx: &Context<'_>) -> String {
        agents::endpoint_url(
            &services(ctx).public_url,
            &self.0.agent.tenant_id,
            self.0.deployment.environment,
            &self.0.agent.slug,
        )
    }

    /// The commit this environment runs.
    async fn current_commit(&self, ctx: &Context<'_>) -> GqlResult<Commit> {
        loader(ctx)?
            .load_one(CommitKey(self.0.deployment.commit_id))
            .await?
            .map(Commit)
            .ok_or_else(|| Error::internal(anyhow::anyhow!("deployment points at a missing commit")).into())
    }

    /// This environment's commit and its ancestors, newest first.
    async fn commits(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> GqlResult<RelayConnection<Commit>> {
        let page = page_request(first, after)?;
        let scope = scope(ctx, self.0.deployment.environment.into())?;
        let commits = agents::history(&services(ctx).db, &scope, &self.0, &page).await?;
        Ok(connection(commits, |c| c.id, Commit))
    }

    /// When this environment last changed its commit.
    async fn deployed_at(&self) -> DateTime<Utc> {
        self.0.deployment.updated_at
    }

    /// In production: the release that set this state (its `kind` says when it is a rollback).
    async fn release(&self, ctx: &Context<'_>) -> GqlResult<Option<super::releases::Release>> {
        super::releases::release_of(ctx, self.0.deployment.release_id).await
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.agent.created_at
    }

    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.agent.updated_at
    }
}

/// An immutable commit of an agent's code bundle.
pub struct Commit(pub agent_commits::Model);

/// The parsed `runflow.toml` of a commit.
#[derive(SimpleObject)]
pub struct AgentManifest {
    name: String,
    description: Option<String>,
    entrypoint: Vec<String>,
    prompts: Vec<String>,
    connectors: Vec<String>,
}

/// A file of a commit.
#[derive(SimpleObject)]
pub struct CommitFile {
    path: String,
    /// Size in bytes.
    size: i64,
    /// sha256 of the content.
    hash: String,
    content: String,
}

#[Object]
impl Commit {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// Content hash of the bundle (sha256 over its files' paths and content hashes).
    async fn hash(&self) -> &str {
        &self.0.hash
    }

    /// 1 for the agent's first commit, then one more per deploy.
    async fn number(&self) -> i64 {
        self.0.seq
    }

    async fn message(&self) -> &str {
        &self.0.message
    }

    async fn author(&self) -> &str {
        &self.0.author
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    async fn file_count(&self) -> i64 {
        self.0.file_count
    }

    /// Total size of the files, in bytes.
    async fn total_size(&self) -> i64 {
        self.0.total_size
    }

    async fn parent(&self, ctx: &Context<'_>) -> GqlResult<Option<Commit>> {
        let Some(parent_id) = self.0.parent_id else {
            return Ok(None);
        };
        Ok(loader(ctx)?.load_one(CommitKey(parent_id)).await?.map(Commit))
    }

    async fn manifest(&self) -> GqlResult<AgentManifest> {
        let manifest: Manifest = serde_json::from_value(self.0.manifest.clone()).map_err(Error::internal)?;
        Ok(AgentManifest {
            name: manifest.name,
            description: manifest.description,
            entrypoint: manifest.entrypoint,
            prompts: manifest.prompts,
            connectors: manifest.connectors,
        })
    }

    /// The files, sorted by path.
    async fn files(&self, ctx: &Context<'_>) -> GqlResult<Vec<CommitFile>> {
        let files = loader(ctx)?
            .load_one(CommitFilesKey(self.0.id))
            .await?
            .unwrap_or_default();
        Ok(files
            .into_iter()
            .map(|f| CommitFile {
                path: f.path,
                size: f.size,
                hash: f.hash,
                content: f.content,
            })
            .collect())
    }
}

#[derive(InputObject)]
pub struct BundleFileInput {
    /// Relative path with '/' separators.
    path: String,
    /// The file's text.
    content: String,
}

#[derive(InputObject)]
pub struct DeployAgentInput {
    /// The agent's slug; must equal `name` in the bundle's `runflow.toml`.
    slug: String,
    /// The whole bundle, including `runflow.toml`.
    files: Vec<BundleFileInput>,
    #[graphql(default)]
    message: String,
}

#[derive(InputObject)]
pub struct UpdateAgentMetadataInput {
    slug: String,
    name: Option<String>,
    description: Option<String>,
    /// The `revision` you last read; a stale one fails with CONFLICT.
    expected_revision: Option<i64>,
}

#[derive(Default)]
pub struct AgentQuery;

#[Object]
impl AgentQuery {
    /// Agents that exist in the environment, by slug.
    async fn agents(&self, ctx: &Context<'_>, environment: Environment) -> GqlResult<Vec<Agent>> {
        let scope = scope(ctx, environment)?;
        Ok(agents::list(&services(ctx).db, &scope)
            .await?
            .into_iter()
            .map(Agent)
            .collect())
    }

    /// One agent; null when it does not exist in the environment.
    async fn agent(&self, ctx: &Context<'_>, environment: Environment, slug: String) -> GqlResult<Option<Agent>> {
        let scope = scope(ctx, environment)?;
        Ok(agents::find(&services(ctx).db.conn, &scope, &slug).await?.map(Agent))
    }
}

#[derive(Default)]
pub struct AgentMutation;

#[Object]
impl AgentMutation {
    /// Uploads a bundle as a new commit and points staging at it (creating the agent on its
    /// first deploy). Production changes only by publishing.
    async fn deploy_agent(
        &self,
        ctx: &Context<'_>,
        environment: Environment,
        input: DeployAgentInput,
    ) -> GqlResult<Commit> {
        let scope = staging(ctx, environment)?;
        let services = services(ctx);
        let input = DeployInput {
            slug: input.slug,
            files: input
                .files
                .into_iter()
                .map(|f| BundleFile {
                    path: f.path,
                    content: f.content,
                })
                .collect(),
            message: input.message,
        };
        let (_, commit) = agents::deploy(
            &services.db,
            &scope,
            &actor(ctx)?.subject,
            &services.bundle_limits,
            input,
        )
        .await?;
        Ok(Commit(commit))
    }

    /// Updates the shared metadata (name, description): visible in both environments.
    async fn update_agent(
        &self,
        ctx: &Context<'_>,
        environment: Environment,
        input: UpdateAgentMetadataInput,
    ) -> GqlResult<Agent> {
        let scope = staging(ctx, environment)?;
        let input = UpdateAgentInput {
            slug: input.slug,
            name: input.name,
            description: input.description,
            expected_revision: input.expected_revision,
        };
        Ok(Agent(agents::update(&services(ctx).db, &scope, input).await?))
    }

    /// Removes the agent from staging; production keeps it until the removal is published.
    /// Returns the agent's id.
    async fn delete_agent(
        &self,
        ctx: &Context<'_>,
        environment: Environment,
        slug: String,
        expected_revision: Option<i64>,
    ) -> GqlResult<ID> {
        let scope = staging(ctx, environment)?;
        Ok(ID(agents::delete(&services(ctx).db, &scope, &slug, expected_revision)
            .await?
            .to_string()))
    }
}
