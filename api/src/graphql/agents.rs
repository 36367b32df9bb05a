//! Agents: shared metadata, per-environment code (commits) and endpoint URLs.

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};

use super::Environment;
use super::GqlResult;
use super::context::{actor, loader, scope, services, staging, tenant};
use super::ids::{self, NodeType};
use super::loaders::{CommitFilesKey, CommitKey};
use super::pagination::{PageArgs, connection_type, parts};
use super::payloads::DeletePayload;
use super::scalars::DateTime;
use crate::domain::agents::{self, AgentInEnv, BundleFile, DeployInput, UpdateAgentInput};
use crate::domain::manifest::Manifest;
use crate::error::Error;

/// An agent as it exists in one environment. `name` and `description` are shared by both
/// environments; the code (`currentCommit`) and the endpoint are per environment, so the
/// staging and production views of one agent are two objects with two ids.
pub struct Agent(pub AgentInEnv);

connection_type!(AgentConnection, AgentEdge, Agent, "agents");
connection_type!(CommitConnection, CommitEdge, Commit, "commits");

/// An agent as it exists in one environment. `name` and `description` are shared by both
/// environments; the code (`currentCommit`) and the endpoint are per environment, so the
/// staging and production views of one agent are two objects with two ids.
#[Object]
impl Agent {
    /// Global id of the agent in this environment (differs between STAGING and PRODUCTION).
    pub(crate) async fn id(&self) -> ID {
        ids::encode(NodeType::Agent, self.0.deployment.environment, self.0.agent.id)
    }

    /// The agent's unique name in its tenant (also the `name` in its `runflow.toml`).
    async fn slug(&self) -> &str {
        &self.0.agent.slug
    }

    /// Display name, shared by both environments.
    async fn name(&self) -> &str {
        &self.0.agent.name
    }

    /// Free-text description, shared by both environments.
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

    /// The URL at which this environment serves the agent.
    async fn endpoint_url(&self, ctx: &Context<'_>) -> GqlResult<String> {
        Ok(agents::endpoint_url(
            &services(ctx).public_url,
            tenant(ctx)?.id(),
            self.0.deployment.environment,
            &self.0.agent.slug,
        ))
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
        #[graphql(desc = "Page size from the start (default 20, at most 100).")] first: Option<i32>,
        #[graphql(desc = "Return the commits after this cursor.")] after: Option<String>,
        #[graphql(desc = "Page size from the end (at most 100).")] last: Option<i32>,
        #[graphql(desc = "Return the commits before this cursor.")] before: Option<String>,
    ) -> GqlResult<CommitConnection> {
        let page = PageArgs::new(first, after, last, before).request(ctx)?;
        let scope = scope(ctx, self.0.deployment.environment.into())?;
        let commits = agents::history(&services(ctx).db, &scope, &self.0, &page).await?;
        Ok(CommitConnection(parts(commits, |c| c.id.to_string(), Commit)))
    }

    /// When this environment last changed its commit.
    async fn deployed_at(&self) -> DateTime {
        self.0.deployment.updated_at.into()
    }

    /// In production: the release that set this state (its `kind` says when it is a
    /// rollback). Null in staging.
    async fn release(&self, ctx: &Context<'_>) -> GqlResult<Option<super::releases::Release>> {
        super::releases::release_of(ctx, self.0.deployment.release_id).await
    }

    /// When the agent was first deployed (shared by both environments).
    async fn created_at(&self) -> DateTime {
        self.0.agent.created_at.into()
    }

    /// When the shared metadata last changed.
    async fn updated_at(&self) -> DateTime {
        self.0.agent.updated_at.into()
    }
}

/// An immutable commit of an agent's code bundle. Commits are shared: the same commit has
/// the same id whichever environment runs it.
pub struct Commit(pub agents::Commit);

/// The parsed `runflow.toml` of a commit.
#[derive(SimpleObject)]
pub struct AgentManifest {
    /// The agent's slug, as declared.
    name: String,
    /// The declared description, if any.
    description: Option<String>,
    /// The command that starts the agent, as program and arguments (at most 100).
    entrypoint: Vec<String>,
    /// Slugs of the prompts the agent uses (they must exist in production to publish it; at
    /// most 100).
    prompts: Vec<String>,
    /// Slugs of the connectors the agent uses (they must exist in production to publish it; at
    /// most 100).
    connectors: Vec<String>,
}

/// A file of a commit.
#[derive(SimpleObject)]
pub struct CommitFile {
    /// Relative path with `/` separators.
    path: String,
    /// Size in bytes.
    size: i64,
    /// sha256 of the content, hex.
    hash: String,
    /// The file's text.
    content: String,
}

/// An immutable commit of an agent's code bundle. Commits are shared: the same commit has
/// the same id whichever environment runs it.
#[Object]
impl Commit {
    /// Global id of the commit (the same in both environments).
    pub(crate) async fn id(&self) -> ID {
        ids::encode_shared(NodeType::Commit, self.0.id)
    }

    /// Content hash of the bundle (sha256 over its files' paths and content hashes).
    async fn hash(&self) -> &str {
        &self.0.hash
    }

    /// 1 for the agent's first commit, then one more per deploy.
    async fn number(&self) -> i64 {
        self.0.seq
    }

    /// The message given at deploy time (may be empty).
    async fn message(&self) -> &str {
        &self.0.message
    }

    /// Subject of the token that deployed it.
    async fn author(&self) -> &str {
        &self.0.author
    }

    /// When it was deployed.
    async fn created_at(&self) -> DateTime {
        self.0.created_at.into()
    }

    /// Number of files in the bundle.
    async fn file_count(&self) -> i64 {
        self.0.file_count
    }

    /// Total size of the files, in bytes.
    async fn total_size(&self) -> i64 {
        self.0.total_size
    }

    /// The previous commit of the agent (null for its first).
    async fn parent(&self, ctx: &Context<'_>) -> GqlResult<Option<Commit>> {
        let Some(parent_id) = self.0.parent_id else {
            return Ok(None);
        };
        Ok(loader(ctx)?.load_one(CommitKey(parent_id)).await?.map(Commit))
    }

    /// The bundle's parsed `runflow.toml`.
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

    /// The files, sorted by path (a bundle is capped in files and bytes at deploy time).
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

/// One file of a bundle to deploy.
#[derive(InputObject)]
pub struct BundleFileInput {
    /// Relative path with '/' separators.
    path: String,
    /// The file's text.
    content: String,
}

/// A bundle to deploy to staging.
#[derive(InputObject)]
pub struct DeployAgentInput {
    /// The agent's slug; must equal `name` in the bundle's `runflow.toml`.
    slug: String,
    /// The whole bundle, including `runflow.toml`.
    files: Vec<BundleFileInput>,
    /// A message stored with the commit.
    #[graphql(default)]
    message: String,
}

/// New shared metadata for an agent; omitted fields keep their value.
#[derive(InputObject)]
pub struct UpdateAgentMetadataInput {
    /// The agent to update.
    slug: String,
    /// The new display name (at most 200 characters).
    name: Option<String>,
    /// The new description (at most 4 KiB).
    description: Option<String>,
    /// The `revision` you last read; a stale one fails with CONFLICT.
    expected_revision: Option<i64>,
}

/// What `deployAgent` changed: the staging agent and its new commit.
#[derive(SimpleObject)]
pub struct DeployAgentPayload {
    /// The agent as staging now has it (its `currentCommit` is `commit`).
    agent: Agent,
    /// The commit the bundle became.
    commit: Commit,
}

#[derive(Default)]
pub struct AgentQuery;

#[Object]
impl AgentQuery {
    /// Agents that exist in the environment, by slug.
    async fn agents(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The environment to list.")] environment: Environment,
        #[graphql(desc = "Page size from the start (default 20, at most 100).")] first: Option<i32>,
        #[graphql(desc = "Return the agents after this cursor.")] after: Option<String>,
        #[graphql(desc = "Page size from the end (at most 100).")] last: Option<i32>,
        #[graphql(desc = "Return the agents before this cursor.")] before: Option<String>,
    ) -> GqlResult<AgentConnection> {
        let scope = scope(ctx, environment)?;
        let page = PageArgs::new(first, after, last, before).request(ctx)?;
        let agents = agents::list(&services(ctx).db, &scope, &page).await?;
        Ok(AgentConnection(parts(agents, |a| a.agent.slug.clone(), Agent)))
    }

    /// One agent; null when it does not exist in the environment.
    async fn agent(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The environment to look in.")] environment: Environment,
        #[graphql(desc = "The agent's slug.")] slug: String,
    ) -> GqlResult<Option<Agent>> {
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
        #[graphql(desc = "Must be STAGING.")] environment: Environment,
        #[graphql(desc = "The bundle.")] input: DeployAgentInput,
    ) -> GqlResult<DeployAgentPayload> {
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
        let (agent, commit) = agents::deploy(
            &services.db,
            &scope,
            actor(ctx)?.subject(),
            &services.bundle_limits,
            services.record_quota,
            input,
        )
        .await?;
        Ok(DeployAgentPayload {
            agent: Agent(agent),
            commit: Commit(commit),
        })
    }

    /// Updates the shared metadata (name, description): visible in both environments.
    /// Returns the staging view of the agent.
    async fn update_agent(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Must be STAGING.")] environment: Environment,
        #[graphql(desc = "The new metadata.")] input: UpdateAgentMetadataInput,
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
    async fn delete_agent(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Must be STAGING.")] environment: Environment,
        #[graphql(desc = "The agent to remove.")] slug: String,
        #[graphql(desc = "The `deploymentRevision` you last read; a stale one fails with CONFLICT.")]
        expected_revision: Option<i64>,
    ) -> GqlResult<DeletePayload> {
        let scope = staging(ctx, environment)?;
        let id = agents::delete(&services(ctx).db, &scope, &slug, expected_revision).await?;
        Ok(DeletePayload::new(NodeType::Agent, environment.into(), id))
    }
}
