//! Connector instances (per environment) and their resources.

use async_graphql::{Context, ID, InputObject, Json, Object};
use chrono::{DateTime, Utc};
use entity::{connector_instances, connector_resources};
use serde_json::Value;

use super::context::{loader, scope, services, staging};
use super::loaders::ResourcesOfConnector;
use super::{Environment, GqlResult};
use crate::domain::connectors::{
    self as domain, CreateConnectorInput as Create, ResourceInput, UpdateConnectorInput as Update,
};

/// A connector instance in one environment.
pub struct Connector(pub connector_instances::Model);

#[Object]
impl Connector {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn slug(&self) -> &str {
        &self.0.slug
    }
    async fn environment(&self) -> Environment {
        self.0.environment.into()
    }
    /// The connector type, for example `http` or `slack`.
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
    /// Changes on every write to the instance or its resources.
    async fn revision(&self) -> i64 {
        self.0.revision
    }
    /// In production: the release that set this state (its `kind` says when it is a rollback).
    async fn release(&self, ctx: &Context<'_>) -> GqlResult<Option<super::releases::Release>> {
        super::releases::release_of(ctx, self.0.release_id).await
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    /// Its resources, by key.
    async fn resources(&self, ctx: &Context<'_>) -> GqlResult<Vec<ConnectorResource>> {
        let rows = loader(ctx)?
            .load_one(ResourcesOfConnector(self.0.id))
            .await?
            .unwrap_or_default();
        Ok(rows.into_iter().map(ConnectorResource).collect())
    }
}

/// A keyed resource of a connector instance.
pub struct ConnectorResource(connector_resources::Model);

#[Object]
impl ConnectorResource {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn key(&self) -> &str {
        &self.0.key
    }
    async fn config(&self) -> Json<Value> {
        Json(self.0.config.clone())
    }
    async fn revision(&self) -> i64 {
        self.0.revision
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

#[derive(InputObject)]
pub struct CreateConnectorInput {
    slug: String,
    kind: String,
    #[graphql(default_with = "Json(serde_json::json!({}))")]
    config: Json<Value>,
    /// Names of shared credentials.
    #[graphql(default)]
    credentials: Vec<String>,
}

#[derive(InputObject)]
pub struct UpdateConnectorInput {
    slug: String,
    kind: Option<String>,
    config: Option<Json<Value>>,
    credentials: Option<Vec<String>>,
    expected_revision: Option<i64>,
}

#[derive(InputObject)]
pub struct ConnectorResourceInput {
    /// The connector's slug.
    connector: String,
    key: String,
    config: Json<Value>,
    /// For updates: the resource's `revision` you last read.
    expected_revision: Option<i64>,
}

#[derive(Default)]
pub struct ConnectorQuery;

#[Object]
impl ConnectorQuery {
    /// Connector instances of the environment, by slug.
    async fn connectors(&self, ctx: &Context<'_>, environment: Environment) -> GqlResult<Vec<Connector>> {
        let scope = scope(ctx, environment)?;
        Ok(domain::list(&services(ctx).db, &scope)
            .await?
            .into_iter()
            .map(Connector)
            .collect())
    }

    /// One connector instance; null when it does not exist in the environment.
    async fn connector(
        &self,
        ctx: &Context<'_>,
        environment: Environment,
        slug: String,
    ) -> GqlResult<Option<Connector>> {
        let scope = scope(ctx, environment)?;
        Ok(domain::find(&services(ctx).db.conn, &scope, &slug)
            .await?
            .map(Connector))
    }
}

#[derive(Default)]
pub struct ConnectorMutation;

#[Object]
impl ConnectorMutation {
    async fn create_connector(
        &self,
        ctx: &Context<'_>,
        environment: Environment,
        input: CreateConnectorInput,
    ) -> GqlResult<Connector> {
        let scope = staging(ctx, environment)?;
        let input = Create {
            slug: input.slug,
            kind: input.kind,
            config: input.config.0,
            credentials: input.credentials,
        };
        Ok(Connector(domain::create(&services(ctx).db, &scope, input).await?))
    }

    async fn update_connector(
        &self,
        ctx: &Context<'_>,
        environment: Environment,
        input: UpdateConnectorInput,
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

    /// Deletes the staging instance and its resources; returns its id.
    async fn delete_connector(
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

    async fn create_connector_resource(
        &self,
        ctx: &Context<'_>,
        environment: Environment,
        input: ConnectorResourceInput,
    ) -> GqlResult<ConnectorResource> {
        let scope = staging(ctx, environment)?;
        Ok(ConnectorResource(
            domain::create_resource(&services(ctx).db, &scope, resource_input(input)).await?,
        ))
    }

    async fn update_connector_resource(
        &self,
        ctx: &Context<'_>,
        environment: Environment,
        input: ConnectorResourceInput,
    ) -> GqlResult<ConnectorResource> {
        let scope = staging(ctx, environment)?;
        Ok(ConnectorResource(
            domain::update_resource(&services(ctx).db, &scope, resource_input(input)).await?,
        ))
    }

    /// Deletes a resource; returns its id.
    async fn delete_connector_resource(
        &self,
        ctx: &Context<'_>,
        environment: Environment,
        connector: String,
        key: String,
        expected_revision: Option<i64>,
    ) -> GqlResult<ID> {
        let scope = staging(ctx, environment)?;
        let id = domain::delete_resource(&services(ctx).db, &scope, &connector, &key, expected_revision).await?;
        Ok(ID(id.to_string()))
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
