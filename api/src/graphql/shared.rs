//! Records shared by both environments: credentials, knowledge bases, LLM providers and data
//! sources. The `environment` argument is still required (the schema is uniform) and, for
//! mutations, must be STAGING like every edit; the records themselves are the same in both.

use async_graphql::{Context, ID, InputObject, Json, Object};
use chrono::{DateTime, Utc};
use entity::shared_resources;
use serde_json::Value;

use super::context::{actor, services, tenant};
use super::{Environment, GqlResult};
use crate::domain::credentials::{self, Secret};
use crate::domain::shared_resources::{self as domain, Category, SharedResourceInput};
use crate::scope::Tenant;

/// A credential's metadata. The secret itself is write-only: no query returns it.
pub struct Credential(credentials::Credential);

#[Object]
impl Credential {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn kind(&self) -> &str {
        &self.0.kind
    }
    /// A masked hint, such as `••••7890`.
    async fn hint(&self) -> &str {
        &self.0.hint
    }
    async fn revision(&self) -> i64 {
        self.0.revision
    }
    async fn created_by(&self) -> &str {
        &self.0.created_by
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn rotated_by(&self) -> Option<&str> {
        self.0.rotated_by.as_deref()
    }
    async fn rotated_at(&self) -> Option<DateTime<Utc>> {
        self.0.rotated_at
    }
}

/// One GraphQL type per category of shared resource, all of the same shape.
macro_rules! shared_resource_type {
    ($name:ident, $doc:literal) => {
        #[doc = $doc]
        pub struct $name(shared_resources::Model);

        #[Object]
        impl $name {
            async fn id(&self) -> ID {
                ID(self.0.id.to_string())
            }
            async fn name(&self) -> &str {
                &self.0.name
            }
            async fn kind(&self) -> &str {
                &self.0.kind
            }
            async fn config(&self) -> Json<Value> {
                Json(self.0.config.clone())
            }
            /// Names of the shared credentials it uses.
            async fn credentials(&self) -> Vec<String> {
                crate::domain::string_array(Some(&self.0.credential_refs))
            }
            async fn revision(&self) -> i64 {
                self.0.revision
            }
            async fn created_at(&self) -> DateTime<Utc> {
                self.0.created_at
            }
            async fn updated_at(&self) -> DateTime<Utc> {
                self.0.updated_at
            }
        }
    };
}

shared_resource_type!(
    KnowledgeBase,
    "A knowledge base (vector store), shared by both environments."
);
shared_resource_type!(LlmProvider, "An LLM provider, shared by both environments.");
shared_resource_type!(DataSource, "A data source, shared by both environments.");

#[derive(InputObject)]
pub struct CreateCredentialInput {
    name: String,
    kind: String,
    /// Write-only: stored encrypted, never returned.
    #[graphql(secret)]
    secret: String,
}

#[derive(InputObject)]
pub struct RotateCredentialInput {
    name: String,
    /// Write-only: stored encrypted, never returned.
    #[graphql(secret)]
    secret: String,
    expected_revision: Option<i64>,
}

#[derive(InputObject)]
pub struct CreateSharedResourceInput {
    name: String,
    kind: String,
    config: Option<Json<Value>>,
    /// Names of shared credentials.
    credentials: Option<Vec<String>>,
}

#[derive(InputObject)]
pub struct UpdateSharedResourceInput {
    name: String,
    kind: Option<String>,
    config: Option<Json<Value>>,
    credentials: Option<Vec<String>>,
    expected_revision: Option<i64>,
}

impl From<CreateSharedResourceInput> for SharedResourceInput {
    fn from(input: CreateSharedResourceInput) -> Self {
        SharedResourceInput {
            name: input.name,
            kind: Some(input.kind),
            config: input.config.map(|j| j.0),
            credentials: input.credentials,
            expected_revision: None,
        }
    }
}

impl From<UpdateSharedResourceInput> for SharedResourceInput {
    fn from(input: UpdateSharedResourceInput) -> Self {
        SharedResourceInput {
            name: input.name,
            kind: input.kind,
            config: input.config.map(|j| j.0),
            credentials: input.credentials,
            expected_revision: input.expected_revision,
        }
    }
}

/// The tenant, for an edit of shared records: like every edit, only with STAGING.
fn editing_tenant(ctx: &Context<'_>, environment: Environment) -> crate::error::Result<Tenant> {
    super::context::staging(ctx, environment)?;
    tenant(ctx)
}

async fn list<T>(ctx: &Context<'_>, category: Category, wrap: fn(shared_resources::Model) -> T) -> GqlResult<Vec<T>> {
    Ok(domain::list(&services(ctx).db, &tenant(ctx)?, category)
        .await?
        .into_iter()
        .map(wrap)
        .collect())
}

#[derive(Default)]
pub struct SharedQuery;

#[Object]
impl SharedQuery {
    /// Credentials (metadata only), shared by both environments.
    async fn credentials(&self, ctx: &Context<'_>, environment: Environment) -> GqlResult<Vec<Credential>> {
        let _ = environment;
        Ok(credentials::list(&services(ctx).db, &tenant(ctx)?)
            .await?
            .into_iter()
            .map(Credential)
            .collect())
    }

    /// Knowledge bases, shared by both environments.
    async fn knowledge_bases(&self, ctx: &Context<'_>, environment: Environment) -> GqlResult<Vec<KnowledgeBase>> {
        let _ = environment;
        list(ctx, Category::KnowledgeBase, KnowledgeBase).await
    }

    /// LLM providers, shared by both environments.
    async fn llm_providers(&self, ctx: &Context<'_>, environment: Environment) -> GqlResult<Vec<LlmProvider>> {
        let _ = environment;
        list(ctx, Category::LlmProvider, LlmProvider).await
    }

    /// Data sources, shared by both environments.
    async fn data_sources(&self, ctx: &Context<'_>, environment: Environment) -> GqlResult<Vec<DataSource>> {
        let _ = environment;
        list(ctx, Category::DataSource, DataSource).await
    }
}

#[derive(Default)]
pub struct SharedMutation;

#[Object]
impl SharedMutation {
    /// Creates a credential. Shared: both environments use it at once.
    async fn create_credential(
        &self,
        ctx: &Context<'_>,
        environment: Environment,
        input: CreateCredentialInput,
    ) -> GqlResult<Credential> {
        let tenant = editing_tenant(ctx, environment)?;
        let services = services(ctx);
        let credential = credentials::create(
            &services.db,
            &tenant,
            &services.secret_box,
            &actor(ctx)?.subject,
            &input.name,
            &input.kind,
            Secret(input.secret),
        )
        .await?;
        Ok(Credential(credential))
    }

    /// Replaces a credential's secret. Production uses the new secret immediately.
    async fn rotate_credential(
        &self,
        ctx: &Context<'_>,
        environment: Environment,
        input: RotateCredentialInput,
    ) -> GqlResult<Credential> {
        let tenant = editing_tenant(ctx, environment)?;
        let services = services(ctx);
        let credential = credentials::rotate(
            &services.db,
            &tenant,
            &services.secret_box,
            &actor(ctx)?.subject,
            &input.name,
            Secret(input.secret),
            input.expected_revision,
        )
        .await?;
        Ok(Credential(credential))
    }

    /// Deletes a credential; returns its id.
    async fn delete_credential(
        &self,
        ctx: &Context<'_>,
        environment: Environment,
        name: String,
        expected_revision: Option<i64>,
    ) -> GqlResult<ID> {
        let tenant = editing_tenant(ctx, environment)?;
        Ok(ID(credentials::delete(
            &services(ctx).db,
            &tenant,
            &name,
            expected_revision,
        )
        .await?
        .to_string()))
    }
}

/// The create, update and delete mutations of one category of shared resource.
macro_rules! shared_resource_mutations {
    ($mutation:ident, $type:ident, $category:expr, $create:ident, $update:ident, $delete:ident) => {
        #[derive(Default)]
        pub struct $mutation;

        #[Object]
        impl $mutation {
            async fn $create(
                &self,
                ctx: &Context<'_>,
                environment: Environment,
                input: CreateSharedResourceInput,
            ) -> GqlResult<$type> {
                let tenant = editing_tenant(ctx, environment)?;
                Ok($type(
                    domain::create(&services(ctx).db, &tenant, $category, input.into()).await?,
                ))
            }

            async fn $update(
                &self,
                ctx: &Context<'_>,
                environment: Environment,
                input: UpdateSharedResourceInput,
            ) -> GqlResult<$type> {
                let tenant = editing_tenant(ctx, environment)?;
                Ok($type(
                    domain::update(&services(ctx).db, &tenant, $category, input.into()).await?,
                ))
            }

            /// Returns the deleted record's id.
            async fn $delete(
                &self,
                ctx: &Context<'_>,
                environment: Environment,
                name: String,
                expected_revision: Option<i64>,
            ) -> GqlResult<ID> {
                let tenant = editing_tenant(ctx, environment)?;
                let id = domain::delete(&services(ctx).db, &tenant, $category, &name, expected_revision).await?;
                Ok(ID(id.to_string()))
            }
        }
    };
}

shared_resource_mutations!(
    KnowledgeBaseMutation,
    KnowledgeBase,
    Category::KnowledgeBase,
    create_knowledge_base,
    update_knowledge_base,
    delete_knowledge_base
);
shared_resource_mutations!(
    LlmProviderMutation,
    LlmProvider,
    Category::LlmProvider,
    create_llm_provider,
    update_llm_provider,
    delete_llm_provider
);
shared_resource_mutations!(
    DataSourceMutation,
    DataSource,
    Category::DataSource,
    create_data_source,
    update_data_source,
    delete_data_source
);
