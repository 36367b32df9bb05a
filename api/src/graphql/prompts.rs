//! Prompts: drafts in staging, immutable published versions, per-environment resolution.

use async_graphql::{Context, Enum, ID, InputObject, Json, Object, SimpleObject};
use chrono::{DateTime, Utc};
use entity::{prompt_versions, prompts};
use serde_json::Value;

use super::context::{actor, loader, scope, services, staging, tenant};
use super::loaders::{LatestPromptVersion, PromptVersionKey};
use super::{Environment, GqlResult};
use crate::domain::prompts::{self as domain, Resolved, SaveDraftInput, Source};

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
    source: PromptSource,
    /// The published version number; null for a draft.
    version: Option<i32>,
    template: String,
    variables: Vec<String>,
    model_settings: Json<Value>,
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

fn published(version: prompt_versions::Model) -> ResolvedPrompt {
    ResolvedPrompt {
        source: PromptSource::Published,
        version: Some(version.version),
        variables: crate::domain::string_array(Some(&version.variables)),
        template: version.template,
        model_settings: Json(version.model_settings),
    }
}

/// The published version a prompt row is based on (see `Prompt.publishedVersion`).
async fn base_version(ctx: &Context<'_>, row: &prompts::Model) -> GqlResult<Option<prompt_versions::Model>> {
    let loader = loader(ctx)?;
    Ok(match (row.environment, row.published_version_id) {
        (entity::Environment::Production, Some(id)) => loader.load_one(PromptVersionKey(id)).await?,
        (entity::Environment::Production, None) => None,
        (entity::Environment::Staging, _) => loader.load_one(LatestPromptVersion(row.slug.clone())).await?,
    })
}

/// An immutable published version.
pub struct PromptVersion(prompt_versions::Model);

#[Object]
impl PromptVersion {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn version(&self) -> i32 {
        self.0.version
    }
    async fn template(&self) -> &str {
        &self.0.template
    }
    async fn variables(&self) -> Vec<String> {
        crate::domain::string_array(Some(&self.0.variables))
    }
    async fn model_settings(&self) -> Json<Value> {
        Json(self.0.model_settings.clone())
    }
    async fn created_by(&self) -> &str {
        &self.0.created_by
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// A prompt in one environment.
pub struct Prompt(pub prompts::Model);

#[Object]
impl Prompt {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn slug(&self) -> &str {
        &self.0.slug
    }
    async fn environment(&self) -> Environment {
        self.0.environment.into()
    }
    /// Changes on every write; pass it as `expectedRevision`.
    async fn revision(&self) -> i64 {
        self.0.revision
    }
    /// In production: the release that set this state (its `kind` says when it is a rollback).
    async fn release(&self, ctx: &Context<'_>) -> GqlResult<Option<super::releases::Release>> {
        super::releases::release_of(ctx, self.0.release_id).await
    }

    async fn updated_by(&self) -> &str {
        &self.0.updated_by
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }

    /// What this environment serves: in staging the draft if there is one, else the latest
    /// published version; in production the published version.
    async fn resolved(&self, ctx: &Context<'_>) -> GqlResult<Option<ResolvedPrompt>> {
        if let Some(draft) = domain::draft_of(&self.0).filter(|_| self.0.environment == entity::Environment::Staging) {
            return Ok(Some(draft.into()));
        }
        Ok(base_version(ctx, &self.0).await?.map(published))
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
    async fn versions(&self, ctx: &Context<'_>) -> GqlResult<Vec<PromptVersion>> {
        let versions = domain::versions(&services(ctx).db, &tenant(ctx)?, &self.0.slug).await?;
        Ok(versions.into_iter().map(PromptVersion).collect())
    }
}

#[derive(InputObject)]
pub struct SavePromptDraftInput {
    slug: String,
    /// The template; `{{name}}` placeholders must be declared in `variables`.
    template: String,
    /// Declared variables; omitted, they are taken from the template's placeholders.
    variables: Option<Vec<String>>,
    /// Model settings as a JSON object (model, temperature, ...).
    model_settings: Option<Json<Value>>,
    /// The `revision` you last read; a stale one fails with CONFLICT.
    expected_revision: Option<i64>,
}

#[derive(Default)]
pub struct PromptQuery;

#[Object]
impl PromptQuery {
    /// Prompts that exist in the environment, by slug.
    async fn prompts(&self, ctx: &Context<'_>, environment: Environment) -> GqlResult<Vec<Prompt>> {
        let scope = scope(ctx, environment)?;
        Ok(domain::list(&services(ctx).db, &scope)
            .await?
            .into_iter()
            .map(Prompt)
            .collect())
    }

    /// One prompt; null when it does not exist in the environment (a never-published prompt
    /// does not exist in production).
    async fn prompt(&self, ctx: &Context<'_>, environment: Environment, slug: String) -> GqlResult<Option<Prompt>> {
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
        environment: Environment,
        input: SavePromptDraftInput,
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
            domain::save_draft(&services(ctx).db, &scope, &actor(ctx)?.subject, input).await?,
        ))
    }

    /// Removes the prompt from staging; returns its id.
    async fn delete_prompt(
        &self,
        ctx: &Context<'_>,
        environment: Environment,
        slug: String,
        expected_revision: Option<i64>,
    ) -> GqlResult<ID> {
        let scope = staging(ctx, environment)?;
        Ok(ID(domain::delete(&services(ctx).db, &scope, &slug, expected_revision)
            .await?
            .to_string()))
    }
}
