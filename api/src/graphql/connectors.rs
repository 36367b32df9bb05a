//! Connector instances (per environment) and their resources.

use async_graphql::{Context, ID, InputObject, Object};

use super::context::{loader, scope, services, staging};
use super::ids::{self, NodeType};
use super::loaders::ResourcesOfConnector;
use super::pagination::{PageArgs, connection_type, parts};
use super::payloads::DeletePayload;
use super::scalars::{DateTime, Json};
use super::{Environment, GqlResult};
use crate::domain::connectors::{
    self as domain, CreateConnectorInput as Create, ResourceInput, UpdateConnectorInput as Update,
};

/// A connector instance in one environment.
pub struct Connector(pub domain::Connector);

connection_type!(ConnectorConnection, ConnectorEdge, Connector, "connector instances");

/// A connector instance (an integration such as `http` or `slack`, configured) in one
/// environment, with its keyed resources.
#[Object]
impl Connector {
    /// Global id of the instance in this environment.
    pub(crate) async fn id(&self) -> ID {
        ids::encode(NodeType::Connector, self.0.environment, self.0.id)
    }
    /// The instance's unique name in its environment.
    async fn slug(&self) -> &str {
        &self.0.slug
    }
    /// The environment this instance belongs to.
    async fn environment(&self) -> Environment {
        self.0.environment.into()
    }
    /// The connector type, for example `http` or `slack`.
    async fn kind(&self) -> &str {
        &self.0.kind
    }
    /// The instance's configuration, a JSON object (never holds secrets: see `credentials`).
    async fn config(&self) -> Json {
        Json(self.0.config.clone())
    }
    /// Names of the shared credentials it uses (at most 100).
    async fn credentials(&self) -> Vec<String> {
        crate::domain::string_array(Some(&self.0.credential_refs))
    }
    /// Changes on every write to the instance or its resources.
    async fn revision(&self) -> i64 {
        self.0.revision
    }
    /// In production: the release that set this state (its `kind` says when it is a
    /// rollback). Null in staging.
    async fn release(&self, ctx: &Context<'_>) -> GqlResult<Option<super::releases::Release>> {
        super::releases::release_of(ctx, self.0.release_id).await
    }
    /// When the instance was created in this environment.
    async fn created_at(&self) -> DateTime {
        self.0.created_at.into()
    }
    /// When the instance or one of its resources last changed.
    async fn updated_at(&self) -> DateTime {
        self.0.updated_at.into()
    }
    /// Its resources, by key (a connector has at most 200).
    async fn resources(&self, ctx: &Context<'_>) -> GqlResult<Vec<ConnectorResource>> {
        let rows = loader(ctx)?
            .load_one(ResourcesOfConnector(self.0.id))
            .await?
            .unwrap_or_default();
        Ok(rows.into_iter().map(ConnectorResource).collect())
    }
}

/// A keyed resource of a connector instance.
pub struct ConnectorResource(pub domain::ConnectorResource);

/// A keyed resource of a connector instance (for example a channel or an endpoint).
#[Object]
impl ConnectorResource {
    /// Global id of the resource in this environment.
    pub(crate) async fn id(&self) -> ID {
        ids::encode(NodeType::ConnectorResource, self.0.environment, self.0.id)
    }
    /// The resource's key, unique within its instance.
    async fn key(&self) -> &str {
        &self.0.key
    }
    /// The resource's configuration, a JSON object.
    async fn config(&self) -> Json {
        Json(self.0.config.clone())
    }
    /// Changes on every write; pass it as `expectedRevision`.
    async fn revision(&self) -> i64 {
        self.0.revision
    }
    /// When it last changed.
    async fn updated_at(&self) -> DateTime {
        self.0.updated_at.into()
    }
}

/// A new connector instance in staging.
#[derive(InputObject)]
pub struct CreateConnectorInput {
    /// Unique name in the environment (lowercase letters, digits and dashes).
    slug: String,
    /// The connector type, for example `http` or `slack`.
    kind: String,
    /// Configuration as a JSON object (no secrets: reference credentials instead); `{}` when omitted.
    config: Option<Json>,
    /// Names of shared credentials.
    #[graphql(default)]
    credentials: Vec<String>,
}

/// Changes to a staging connector instance; omitted fields keep their value.
#[derive(InputObject)]
pub struct UpdateConnectorInput {
    /// The instance to change.
    slug: String,
    /// A new connector type.
    kind: Option<String>,
    /// A new configuration (replaces the whole object).
    config: Option<Json>,
    /// New credential names (replaces the list).
    credentials: Option<Vec<String>>,
    /// The `revision` you last read; a stale one fails with CONFLICT.
    expected_revision: Option<i64>,
}

/// A resource of a staging connector instance.
#[derive(InputObject)]
pub struct ConnectorResourceInput {
    /// The connector's slug.
    connector: String,
    /// The resource's key within the instance.
    key: String,
    /// Configuration as a JSON object.
    config: Json,
    /// For updates: the resource's `revision` you last read.
    expected_revision: Option<i64>,
}

#[derive(Default)]
pub struct ConnectorQuery;

#[Object]
impl ConnectorQuery {
    /// Connector instances of the environment, by slug.
    async fn connectors(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The environment to list.")] environment: Environment,
        #[graphql(desc = "Page size from the start (default 20, at most 100).")] first: Option<i32>,
        #[graphql(desc = "Return the instances after this cursor.")] after: Option<String>,
        #[graphql(desc = "Page size from the end (at most 100).")] last: Option<i32>,
        #[graphql(desc = "Return the instances before this cursor.")] before: Option<String>,
    ) -> GqlResult<ConnectorConnection> {
        let scope = scope(ctx, environment)?;
        let page = PageArgs::new(first, after, last, before).request(ctx)?;
        let connectors = domain::list(&services(ctx).db, &scope, &page).await?;
        Ok(ConnectorConnection(parts(connectors, |c| c.slug.clone(), Connector)))
    }

    /// One connector instance; null when it does not exist in the environment.
    async fn connector(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The environment to look in.")] environment: Environment,
        #[graphql(desc = "The instance's slug.")] slug: String,
    ) -> GqlResult<Option<Connector>> {
        let scope = scope(ctx, environment)?;
        Ok(domain::by_slug(&services(ctx).db, &scope, &slug).await?.map(Connector))
    }
}

#[derive(Default)]
pub struct ConnectorMutation;

#[Object]
impl ConnectorMutation {
    /// Creates a connector instance in staging.
    async fn create_connector(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Must be STAGING.")] environment: Environment,
        #[graphql(desc = "The new instance.")] input: CreateConnectorInput,
    ) -> GqlResult<Connector> {
        let scope = staging(ctx, environment)?;
        let input = Create {
            slug: input.slug,
            kind: input.kind,
            config: input.config.map_or_else(|| serde_json::json!({}), |c| c.0),
            credentials: input.credentials,
        };
        Ok(Connector(
            domain::create(&services(ctx).db, &scope, services(ctx).record_quota, input).await?,
        ))
    }

    /// Changes a staging connector instance.
    async fn update_connector(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Must be STAGING.")] environment: Environment,
        #[graphql(desc = "The changes.")] input: UpdateConnectorInput,
    ) -> GqlResult<Connector> {
        let scope = staging(ctx, environment)?;
        let input = Update {
            slug: input.slug,
            kind: input.kind,
            config: input.config.map(|j| j.0),
            credentials: input.credentials,
            expected_revision: input.expected_revision,
        };
        Ok(Connector(domain::update(&services(ctx).db, &scope, input).await?))
    }

    /// Deletes the staging instance and its resources.
    async fn delete_connector(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Must be STAGING.")] environment: Environment,
        #[graphql(desc = "The instance to delete.")] slug: String,
        #[graphql(desc = "The `revision` you last read; a stale one fails with CONFLICT.")] expected_revision: Option<
            i64,
        >,
    ) -> GqlResult<DeletePayload> {
        let scope = staging(ctx, environment)?;
        let id = domain::delete(&services(ctx).db, &scope, &slug, expected_revision).await?;
        Ok(DeletePayload::new(NodeType::Connector, environment.into(), id))
    }

    /// Adds a resource to a staging connector instance.
    async fn create_connector_resource(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Must be STAGING.")] environment: Environment,
        #[graphql(desc = "The new resource.")] input: ConnectorResourceInput,
    ) -> GqlResult<ConnectorResource> {
        let scope = staging(ctx, environment)?;
        Ok(ConnectorResource(
            domain::create_resource(&services(ctx).db, &scope, resource_input(input)).await?,
        ))
    }

    /// Replaces a resource's configuration.
    async fn update_connector_resource(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Must be STAGING.")] environment: Environment,
        #[graphql(desc = "The resource and its new configuration.")] input: ConnectorResourceInput,
    ) -> GqlResult<ConnectorResource> {
        let scope = staging(ctx, environment)?;
        Ok(ConnectorResource(
            domain::update_resource(&services(ctx).db, &scope, resource_input(input)).await?,
        ))
    }

    /// Deletes a resource of a staging connector instance.
    async fn delete_connector_resource(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Must be STAGING.")] environment: Environment,
        #[graphql(desc = "The instance's slug.")] connector: String,
        #[graphql(desc = "The resource's key.")] key: String,
        #[graphql(desc = "The resource's `revision` you last read; a stale one fails with CONFLICT.")]
        expected_revision: Option<i64>,
    ) -> GqlResult<DeletePayload> {
        let scope = staging(ctx, environment)?;
        let id = domain::delete_resource(&services(ctx).db, &scope, &connector, &key, expected_revision).await?;
        Ok(DeletePayload::new(NodeType::ConnectorResource, environment.into(), id))
    }
}

fn resource_input(input: ConnectorResourceInput) -> ResourceInput {
    ResourceInput {
        connector: input.connector,
        key: input.key,
        config: input.config.0,
        expected_revision: input.expected_revision,
    }
}
