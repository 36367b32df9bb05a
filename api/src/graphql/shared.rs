//! Records shared by both environments: credentials, knowledge bases, LLM providers and data
//! sources. The `environment` argument is still required (the schema is uniform) and, for
//! mutations, must be STAGING like every edit; the records themselves are the same in both.

use async_graphql::{Context, ID, InputObject, Object};

use super::context::{actor, services, tenant};
use super::ids::{self, NodeType};
use super::pagination::{PageArgs, connection_type, parts};
use super::payloads::DeletePayload;
use super::scalars::{DateTime, Json};
use super::{Environment, GqlResult};
use crate::domain::credentials::{self, Secret};
use crate::domain::shared_resources::{self as domain, Category, SharedResourceInput};

/// A credential's metadata. The secret itself is write-only: no query returns it.
pub struct Credential(pub credentials::Credential);

connection_type!(CredentialConnection, CredentialEdge, Credential, "credentials");

/// A credential (API key, token, password) shared by both environments. Only its metadata
/// is readable: the secret is write-only.
#[Object]
impl Credential {
    /// Global id of the credential (the same in both environments).
    pub(crate) async fn id(&self) -> ID {
        ids::encode_shared(NodeType::Credential, self.0.id)
    }
    /// The credential's unique name; connectors and shared resources refer to it by name.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// What the secret is for, for example `api_key` (free text).
    async fn kind(&self) -> &str {
        &self.0.kind
    }
    /// A masked hint, such as `••••7890`.
    async fn hint(&self) -> &str {
        &self.0.hint
    }
    /// Changes on every rotation; pass it as `expectedRevision`.
    async fn revision(&self) -> i64 {
        self.0.revision
    }
    /// Subject of the token that created it.
    async fn created_by(&self) -> &str {
        &self.0.created_by
    }
    /// When it was created.
    async fn created_at(&self) -> DateTime {
        self.0.created_at.into()
    }
    /// Subject of the token that last rotated it (null if never rotated).
    async fn rotated_by(&self) -> Option<&str> {
        self.0.rotated_by.as_deref()
    }
    /// When it was last rotated (null if never rotated).
    async fn rotated_at(&self) -> Option<DateTime> {
        self.0.rotated_at.map(Into::into)
    }
}

/// One GraphQL type per category of shared resource, all of the same shape.
macro_rules! shared_resource_type {
    ($name:ident, $connection:ident, $edge:ident, $what:literal, $doc:literal) => {
        #[doc = $doc]
        pub struct $name(pub domain::SharedResource);

        connection_type!($connection, $edge, $name, $what);

        #[doc = $doc]
        #[Object]
        impl $name {
            /// Global id of the record (the same in both environments).
            pub(crate) async fn id(&self) -> ID {
                ids::encode_shared(NodeType::$name, self.0.id)
            }
            /// Unique name within its category.
            async fn name(&self) -> &str {
                &self.0.name
            }
            /// The provider or engine, for example `openai` or `pgvector` (free text).
            async fn kind(&self) -> &str {
                &self.0.kind
            }
            /// Configuration as a JSON object (no secrets: see `credentials`).
            async fn config(&self) -> Json {
                Json(self.0.config.clone())
            }
            /// Names of the shared credentials it uses (at most 100).
            async fn credentials(&self) -> Vec<String> {
                crate::domain::string_array(Some(&self.0.credential_refs))
            }
            /// Changes on every write; pass it as `expectedRevision`.
            async fn revision(&self) -> i64 {
                self.0.revision
            }
            /// When it was created.
            async fn created_at(&self) -> DateTime {
                self.0.created_at.into()
            }
            /// When it last changed.
            async fn updated_at(&self) -> DateTime {
                self.0.updated_at.into()
            }
        }
    };
}

shared_resource_type!(
    KnowledgeBase,
    KnowledgeBaseConnection,
    KnowledgeBaseEdge,
    "knowledge bases",
    "A knowledge base (vector store), shared by both environments."
);
shared_resource_type!(
    LlmProvider,
    LlmProviderConnection,
    LlmProviderEdge,
    "LLM providers",
    "An LLM provider, shared by both environments."
);
shared_resource_type!(
    DataSource,
    DataSourceConnection,
    DataSourceEdge,
    "data sources",
    "A data source, shared by both environments."
);

/// A new credential.
#[derive(InputObject)]
pub struct CreateCredentialInput {
    /// Unique name.
    name: String,
    /// What the secret is for, for example `api_key`.
    kind: String,
    /// Write-only: stored encrypted, never returned.
    #[graphql(secret)]
    secret: String,
}

/// A new secret for a credential.
#[derive(InputObject)]
pub struct RotateCredentialInput {
    /// The credential to rotate.
    name: String,
    /// Write-only: stored encrypted, never returned.
    #[graphql(secret)]
    secret: String,
    /// The `revision` you last read; a stale one fails with CONFLICT.
    expected_revision: Option<i64>,
}

/// A new knowledge base, LLM provider or data source.
#[derive(InputObject)]
pub struct CreateSharedResourceInput {
    /// Unique name within the category.
    name: String,
    /// The provider or engine, for example `openai`.
    kind: String,
    /// Configuration as a JSON object (no secrets: reference credentials).
    config: Option<Json>,
    /// Names of shared credentials.
    credentials: Option<Vec<String>>,
}

/// Changes to a knowledge base, LLM provider or data source; omitted fields keep their value.
#[derive(InputObject)]
pub struct UpdateSharedResourceInput {
    /// The record to change.
    name: String,
    /// A new provider or engine.
    kind: Option<String>,
    /// A new configuration (replaces the whole object).
    config: Option<Json>,
    /// New credential names (replaces the list).
    credentials: Option<Vec<String>>,
    /// The `revision` you last read; a stale one fails with CONFLICT.
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

/// The list query of one kind of shared record: `$list` reads a page of the caller's tenant.
macro_rules! shared_list_query {
    ($query:ident, $field:ident, $connection:ident, $type:ident, $list:expr, $doc:literal) => {
        #[derive(Default)]
        pub struct $query;

        #[Object]
        impl $query {
            #[doc = $doc]
            async fn $field(
                &self,
                ctx: &Context<'_>,
                #[graphql(desc = "Either environment; the records are shared.")] environment: Environment,
                #[graphql(desc = "Page size from the start (default 20, at most 100).")] first: Option<i32>,
                #[graphql(desc = "Return the records after this cursor.")] after: Option<String>,
                #[graphql(desc = "Page size from the end (at most 100).")] last: Option<i32>,
                #[graphql(desc = "Return the records before this cursor.")] before: Option<String>,
            ) -> GqlResult<$connection> {
                let _ = environment;
                let page = PageArgs::new(first, after, last, before).request(ctx)?;
                let list = $list;
                let rows = list(&services(ctx).db, &tenant(ctx)?, &page).await?;
                Ok($connection(parts(rows, |r| r.name.clone(), $type)))
            }
        }
    };
}

shared_list_query!(
    CredentialQuery,
    credentials,
    CredentialConnection,
    Credential,
    |db, tenant, page| credentials::list(db, tenant, page),
    "Credentials (metadata only), shared by both environments, by name."
);
shared_list_query!(
    KnowledgeBaseQuery,
    knowledge_bases,
    KnowledgeBaseConnection,
    KnowledgeBase,
    |db, tenant, page| domain::list(db, tenant, Category::KnowledgeBase, page),
    "Knowledge bases, shared by both environments, by name."
);
shared_list_query!(
    LlmProviderQuery,
    llm_providers,
    LlmProviderConnection,
    LlmProvider,
    |db, tenant, page| domain::list(db, tenant, Category::LlmProvider, page),
    "LLM providers, shared by both environments, by name."
);
shared_list_query!(
    DataSourceQuery,
    data_sources,
    DataSourceConnection,
    DataSource,
    |db, tenant, page| domain::list(db, tenant, Category::DataSource, page),
    "Data sources, shared by both environments, by name."
);

#[derive(Default)]
pub struct SharedMutation;

#[Object]
impl SharedMutation {
    /// Creates a credential. Shared: both environments use it at once.
    async fn create_credential(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Must be STAGING, like every edit.")] environment: Environment,
        #[graphql(desc = "The new credential.")] input: CreateCredentialInput,
    ) -> GqlResult<Credential> {
        // PRODUCTION was refused on the parsed operation (graphql/access.rs).
        let _ = environment;
        let tenant = tenant(ctx)?;
        let services = services(ctx);
        let credential = credentials::create(
            &services.db,
            &tenant,
            &services.secret_box,
            actor(ctx)?.subject(),
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
        #[graphql(desc = "Must be STAGING, like every edit.")] environment: Environment,
        #[graphql(desc = "The credential and its new secret.")] input: RotateCredentialInput,
    ) -> GqlResult<Credential> {
        // PRODUCTION was refused on the parsed operation (graphql/access.rs).
        let _ = environment;
        let tenant = tenant(ctx)?;
        let services = services(ctx);
        let credential = credentials::rotate(
            &services.db,
            &tenant,
            &services.secret_box,
            actor(ctx)?.subject(),
            &input.name,
            Secret(input.secret),
            input.expected_revision,
        )
        .await?;
        Ok(Credential(credential))
    }

    /// Deletes a credential (refused while something uses it).
    async fn delete_credential(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Must be STAGING, like every edit.")] environment: Environment,
        #[graphql(desc = "The credential to delete.")] name: String,
        #[graphql(desc = "The `revision` you last read; a stale one fails with CONFLICT.")] expected_revision: Option<
            i64,
        >,
    ) -> GqlResult<DeletePayload> {
        let tenant = tenant(ctx)?;
        let id = credentials::delete(&services(ctx).db, &tenant, &name, expected_revision).await?;
        Ok(DeletePayload::new(NodeType::Credential, environment.into(), id))
    }
}

/// The create, update and delete mutations of one category of shared resource.
macro_rules! shared_resource_mutations {
    ($mutation:ident, $type:ident, $what:literal, $category:expr, $create:ident, $update:ident, $delete:ident) => {
        #[derive(Default)]
        pub struct $mutation;

        #[Object]
        impl $mutation {
            #[doc = concat!("Creates a shared ", $what, " (both environments use it at once).")]
            async fn $create(
                &self,
                ctx: &Context<'_>,
                #[graphql(desc = "Must be STAGING, like every edit.")] environment: Environment,
                #[graphql(desc = "The new record.")] input: CreateSharedResourceInput,
            ) -> GqlResult<$type> {
                // PRODUCTION was refused on the parsed operation (graphql/access.rs).
                let _ = environment;
                let tenant = tenant(ctx)?;
                Ok($type(
                    domain::create(&services(ctx).db, &tenant, $category, input.into()).await?,
                ))
            }

            #[doc = concat!("Changes a shared ", $what, "; both environments see the change at once.")]
            async fn $update(
                &self,
                ctx: &Context<'_>,
                #[graphql(desc = "Must be STAGING, like every edit.")] environment: Environment,
                #[graphql(desc = "The changes.")] input: UpdateSharedResourceInput,
            ) -> GqlResult<$type> {
                // PRODUCTION was refused on the parsed operation (graphql/access.rs).
                let _ = environment;
                let tenant = tenant(ctx)?;
                Ok($type(
                    domain::update(&services(ctx).db, &tenant, $category, input.into()).await?,
                ))
            }

            #[doc = concat!("Deletes a shared ", $what, ".")]
            async fn $delete(
                &self,
                ctx: &Context<'_>,
                #[graphql(desc = "Must be STAGING, like every edit.")] environment: Environment,
                #[graphql(desc = "The record to delete.")] name: String,
                #[graphql(desc = "The `revision` you last read; a stale one fails with CONFLICT.")]
                expected_revision: Option<i64>,
            ) -> GqlResult<DeletePayload> {
                let tenant = tenant(ctx)?;
                let id = domain::delete(&services(ctx).db, &tenant, $category, &name, expected_revision).await?;
                Ok(DeletePayload::new(NodeType::$type, environment.into(), id))
            }
        }
    };
}

shared_resource_mutations!(
    KnowledgeBaseMutation,
    KnowledgeBase,
    "knowledge base",
    Category::KnowledgeBase,
    create_knowledge_base,
    update_knowledge_base,
    delete_knowledge_base
);
shared_resource_mutations!(
    LlmProviderMutation,
    LlmProvider,
    "LLM provider",
    Category::LlmProvider,
    create_llm_provider,
    update_llm_provider,
    delete_llm_provider
);
shared_resource_mutations!(
    DataSourceMutation,
    DataSource,
    "data source",
    Category::DataSource,
    create_data_source,
    update_data_source,
    delete_data_source
);
