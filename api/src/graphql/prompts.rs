//! Prompts: drafts in staging, immutable published versions, per-environment resolution.

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};

use super::context::{actor, loader, scope, services, staging, tenant};
use super::ids::{self, NodeType};
use super::loaders::{LatestPromptVersion, PromptVersionKey};
use super::pagination::{PageArgs, connection_type, parts};
use super::payloads::DeletePayload;
use super::scalars::{DateTime, Json};
use super::{Environment, GqlResult};
use crate::domain::prompts::{self as domain, Resolved, SaveDraftInput, Serves, Source, VersionRef};

/// Where the text a prompt resolves to comes from.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum PromptSource {
    /// The staging draft.
    Draft,
    /// A published version.
    Published,
}

/// The text an environment serves for a prompt.
#[derive(SimpleObject)]
pub struct ResolvedPrompt {
    /// Whether the text is the staging draft or a published version.
    source: PromptSource,
    /// The published version number; null for a draft.
    version: Option<i32>,
    /// The template, with `{{name}}` placeholders.
    template: String,
    /// The declared variables (the placeholders a caller fills; at most 100).
    variables: Vec<String>,
    /// Model settings (model, temperature, ...) as a JSON object.
    model_settings: Json,
}

impl From<Resolved> for ResolvedPrompt {
    fn from(r: Resolved) -> Self {
        ResolvedPrompt {
            source: match r.source {
                Source::Draft => PromptSource::Draft,
                Source::Published => PromptSource::Published,
            },
            version: r.version,
            template: r.template,
            variables: r.variables,
            model_settings: Json(r.model_settings),
        }
    }
}

/// The published version a prompt row is based on (see `Prompt.publishedVersion`).
async fn base_version(ctx: &Context<'_>, row: &domain::Prompt) -> GqlResult<Option<domain::PromptVersion>> {
    match domain::base_version(row) {
        Some(reference) => load_version(ctx, reference).await,
        None => Ok(None),
    }
}

/// A version through the request's DataLoaders (batched across the prompts of a page).
async fn load_version(ctx: &Context<'_>, reference: VersionRef) -> GqlResult<Option<domain::PromptVersion>> {
    let loader = loader(ctx)?;
    Ok(match reference {
        VersionRef::Id(id) => loader.load_one(PromptVersionKey(id)).await?,
        VersionRef::LatestOf(slug) => loader.load_one(LatestPromptVersion(slug)).await?,
    })
}

/// An immutable published version of a prompt (shared: one id in both environments).
pub struct PromptVersion(pub domain::PromptVersion);

connection_type!(PromptConnection, PromptEdge, Prompt, "prompts");
connection_type!(
    PromptVersionConnection,
    PromptVersionEdge,
    PromptVersion,
    "prompt versions"
);

/// An immutable published version of a prompt (shared: one id in both environments).
#[Object]
impl PromptVersion {
    /// Global id of the version (the same in both environments).
    pub(crate) async fn id(&self) -> ID {
        ids::encode_shared(NodeType::PromptVersion, self.0.id)
    }
    /// 1 for the first publish of the prompt, then one more per publish.
    async fn version(&self) -> i32 {
        self.0.version
    }
    /// The template, with `{{name}}` placeholders.
    async fn template(&self) -> &str {
        &self.0.template
    }
    /// The declared variables (at most 100).
    async fn variables(&self) -> Vec<String> {
        crate::domain::string_array(Some(&self.0.variables))
    }
    /// Model settings (model, temperature, ...) as a JSON object.
    async fn model_settings(&self) -> Json {
        Json(self.0.model_settings.clone())
    }
    /// Subject of the token that published it.
    async fn created_by(&self) -> &str {
        &self.0.created_by
    }
    /// When it was published.
    async fn created_at(&self) -> DateTime {
        self.0.created_at.into()
    }
}

/// A prompt in one environment.
pub struct Prompt(pub domain::Prompt);

/// A prompt as it exists in one environment (one id per environment).
#[Object]
impl Prompt {
    /// Global id of the prompt in this environment.
    pub(crate) async fn id(&self) -> ID {
        ids::encode(NodeType::Prompt, self.0.environment, self.0.id)
    }
    /// The prompt's unique name in its tenant.
    async fn slug(&self) -> &str {
        &self.0.slug
    }
    /// The environment this view of the prompt belongs to.
    async fn environment(&self) -> Environment {
        self.0.environment.into()
    }
    /// Changes on every write; pass it as `expectedRevision`.
    async fn revision(&self) -> i64 {
        self.0.revision
    }
    /// In production: the release that set this state (its `kind` says when it is a
    /// rollback). Null in staging.
    async fn release(&self, ctx: &Context<'_>) -> GqlResult<Option<super::releases::Release>> {
        super::releases::release_of(ctx, self.0.release_id).await
    }
    /// Subject of the token that last changed it in this environment.
    async fn updated_by(&self) -> &str {
        &self.0.updated_by
    }
    /// When it last changed in this environment.
    async fn updated_at(&self) -> DateTime {
        self.0.updated_at.into()
    }

    /// What this environment serves: in staging the draft if there is one, else the latest
    /// published version; in production the published version.
    async fn resolved(&self, ctx: &Context<'_>) -> GqlResult<Option<ResolvedPrompt>> {
        Ok(match domain::serves(&self.0) {
            Some(Serves::Draft) => domain::draft_of(&self.0).map(Into::into),
            Some(Serves::Version(reference)) => load_version(ctx, reference)
                .await?
                .map(|version| Resolved::published(version).into()),
            None => None,
        })
    }

    /// The staging draft, if any (always null in production).
    async fn draft(&self) -> Option<ResolvedPrompt> {
        domain::draft_of(&self.0).map(Into::into)
    }

    /// The published version this environment is based on: production's published version,
    /// or in staging the latest published version.
    async fn published_version(&self, ctx: &Context<'_>) -> GqlResult<Option<PromptVersion>> {
        Ok(base_version(ctx, &self.0).await?.map(PromptVersion))
    }

    /// Every published version, newest first.
    async fn versions(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size from the start (default 20, at most 100).")] first: Option<i32>,
        #[graphql(desc = "Return the versions after this cursor.")] after: Option<String>,
        #[graphql(desc = "Page size from the end (at most 100).")] last: Option<i32>,
        #[graphql(desc = "Return the versions before this cursor.")] before: Option<String>,
    ) -> GqlResult<PromptVersionConnection> {
        let page = PageArgs::new(first, after, last, before).request(ctx)?;
        let versions = domain::versions(&services(ctx).db, &tenant(ctx)?, &self.0.slug, &page).await?;
        Ok(PromptVersionConnection(parts(
            versions,
            |v| v.version.to_string(),
            PromptVersion,
        )))
    }
}

/// The staging draft of a prompt.
#[derive(InputObject)]
pub struct SavePromptDraftInput {
    /// The prompt's slug (created in staging on first save).
    slug: String,
    /// The template; `{{name}}` placeholders must be declared in `variables`.
    template: String,
    /// Declared variables; omitted, they are taken from the template's placeholders.
    variables: Option<Vec<String>>,
    /// Model settings as a JSON object (model, temperature, ...).
    model_settings: Option<Json>,
    /// The `revision` you last read; a stale one fails with CONFLICT.
    expected_revision: Option<i64>,
}

#[derive(Default)]
pub struct PromptQuery;

#[Object]
impl PromptQuery {
    /// Prompts that exist in the environment, by slug.
    async fn prompts(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The environment to list.")] environment: Environment,
        #[graphql(desc = "Page size from the start (default 20, at most 100).")] first: Option<i32>,
        #[graphql(desc = "Return the prompts after this cursor.")] after: Option<String>,
        #[graphql(desc = "Page size from the end (at most 100).")] last: Option<i32>,
        #[graphql(desc = "Return the prompts before this cursor.")] before: Option<String>,
    ) -> GqlResult<PromptConnection> {
        let scope = scope(ctx, environment)?;
        let page = PageArgs::new(first, after, last, before).request(ctx)?;
        let prompts = domain::list(&services(ctx).db, &scope, &page).await?;
        Ok(PromptConnection(parts(prompts, |p| p.slug.clone(), Prompt)))
    }

    /// One prompt; null when it does not exist in the environment (a never-published prompt
    /// does not exist in production).
    async fn prompt(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The environment to look in.")] environment: Environment,
        #[graphql(desc = "The prompt's slug.")] slug: String,
    ) -> GqlResult<Option<Prompt>> {
        let scope = scope(ctx, environment)?;
        let row = match domain::get(&services(ctx).db.conn, &scope, &slug).await {
            Ok(row) => Some(row),
            Err(crate::error::Error::NotFound(_)) => None,
            Err(other) => return Err(other.into()),
        };
        Ok(row.map(Prompt))
    }
}

#[derive(Default)]
pub struct PromptMutation;

#[Object]
impl PromptMutation {
    /// Writes the staging draft (creating the prompt in staging on first save).
    async fn save_prompt_draft(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Must be STAGING.")] environment: Environment,
        #[graphql(desc = "The draft.")] input: SavePromptDraftInput,
    ) -> GqlResult<Prompt> {
        let scope = staging(ctx, environment)?;
        let input = SaveDraftInput {
            slug: input.slug,
            template: input.template,
            variables: input.variables,
            model_settings: input.model_settings.map(|j| j.0),
            expected_revision: input.expected_revision,
        };
        Ok(Prompt(
            domain::save_draft(
                &services(ctx).db,
                &scope,
                actor(ctx)?.subject(),
                services(ctx).record_quota,
                input,
            )
            .await?,
        ))
    }

    /// Removes the prompt from staging (production keeps it until the removal is published).
    async fn delete_prompt(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Must be STAGING.")] environment: Environment,
        #[graphql(desc = "The prompt to remove.")] slug: String,
        #[graphql(desc = "The `revision` you last read; a stale one fails with CONFLICT.")] expected_revision: Option<
            i64,
        >,
    ) -> GqlResult<DeletePayload> {
        let scope = staging(ctx, environment)?;
        let id = domain::delete(&services(ctx).db, &scope, &slug, expected_revision).await?;
        Ok(DeletePayload::new(NodeType::Prompt, environment.into(), id))
    }
}
