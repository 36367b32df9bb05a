//! Connector instances (per environment) and their keyed resources.
//!
//! The same slug can exist in both environments with different config and resources; an
//! instance refers to shared credentials by name.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use entity::{Environment, connector_instances, connector_resources};
use sea_orm::{ColumnTrait, ConnectionTrait, PaginatorTrait, QueryFilter, QueryOrder, Set};
use serde_json::Value;
use uuid::Uuid;

use super::pagination::{self, Page, PageRequest};
use super::quotas::{RecordQuota, ensure_room};
use super::{EnvironmentWrite, credentials, new_id, now, revision, validate};
use crate::db::Db;
use crate::error::{Error, Result};
use crate::scope::{Scope, StagingScope, Tenant, TenantWrite};

/// A connector instance, as the domain hands it out.
#[derive(Clone, Debug, PartialEq)]
pub struct Connector {
    pub id: Uuid,
    pub environment: Environment,
    pub slug: String,
    /// The connector type (`http`, `slack`...).
    pub kind: String,
    pub config: Value,
    /// Names of the shared credentials it uses, a JSON array of strings.
    pub credential_refs: Value,
    pub revision: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// In production: the release that last set it.
    pub release_id: Option<Uuid>,
}

impl From<connector_instances::Model> for Connector {
    fn from(row: connector_instances::Model) -> Self {
        Connector {
            id: row.id,
            environment: row.environment,
            slug: row.slug,
            kind: row.kind,
            config: row.config,
            credential_refs: row.credential_refs,
            revision: row.revision,
            created_at: row.created_at,
            updated_at: row.updated_at,
            release_id: row.release_id,
        }
    }
}

/// A keyed resource of a connector instance.
#[derive(Clone, Debug, PartialEq)]
pub struct ConnectorResource {
    pub id: Uuid,
    pub environment: Environment,
    pub instance_id: Uuid,
    pub key: String,
    pub config: Value,
    pub revision: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<connector_resources::Model> for ConnectorResource {
    fn from(row: connector_resources::Model) -> Self {
        ConnectorResource {
            id: row.id,
            environment: row.environment,
            instance_id: row.instance_id,
            key: row.key,
            config: row.config,
            revision: row.revision,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

#[derive(Clone, Debug)]
pub struct CreateConnectorInput {
    pub slug: String,
    pub kind: String,
    pub config: Value,
    pub credentials: Vec<String>,
}

#[derive(Clone, Debug, Default)]
pub struct UpdateConnectorInput {
    pub slug: String,
    pub kind: Option<String>,
    pub config: Option<Value>,
    pub credentials: Option<Vec<String>>,
    pub expected_revision: Option<i64>,
}

#[derive(Clone, Debug)]
pub struct ResourceInput {
    pub connector: String,
    pub key: String,
    pub config: Value,
    pub expected_revision: Option<i64>,
}

/// A page of the connector instances of the scope's environment, by slug.
pub async fn list(db: &Db, scope: &Scope, page: &PageRequest) -> Result<Page<Connector>> {
    let select = scope.select::<connector_instances::Entity>();
    let page = pagination::fetch_by_name(db, select, connector_instances::Column::Slug, page).await?;
    Ok(page.map(Connector::from))
}

/// A connector instance of the scope by slug, as the domain hands it out (None: not there).
pub async fn by_slug(db: &Db, scope: &Scope, slug: &str) -> Result<Option<Connector>> {
    Ok(find(&db.conn, scope, slug).await?.map(Connector::from))
}

/// A connector instance of the scope by id (None: not there).
pub async fn by_id(db: &Db, scope: &Scope, id: Uuid) -> Result<Option<Connector>> {
    let row =
        super::lookup::in_scope::<connector_instances::Entity, _>(&db.conn, scope, connector_instances::Column::Id, id);
    Ok(row.await?.map(Connector::from))
}

/// A connector resource of the scope by id (None: not there).
pub async fn resource_by_id(db: &Db, scope: &Scope, id: Uuid) -> Result<Option<ConnectorResource>> {
    let row =
        super::lookup::in_scope::<connector_resources::Entity, _>(&db.conn, scope, connector_resources::Column::Id, id);
    Ok(row.await?.map(ConnectorResource::from))
}

pub async fn find<C: ConnectionTrait>(db: &C, scope: &Scope, slug: &str) -> Result<Option<connector_instances::Model>> {
    Ok(scope
        .select::<connector_instances::Entity>()
        .filter(connector_instances::Column::Slug.eq(slug))
        .one(db)
        .await?)
}

pub async fn get<C: ConnectionTrait>(db: &C, scope: &Scope, slug: &str) -> Result<connector_instances::Model> {
    find(db, scope, slug)
        .await?
        .ok_or_else(|| Error::not_found(format!("connector {slug:?} in {}", scope.environment)))
}

pub async fn create(
    db: &Db,
    scope: &StagingScope,
    quota: RecordQuota,
    input: CreateConnectorInput,
) -> Result<Connector> {
    validate::slug("slug", &input.slug)?;
    super::validate_config(Some(&input.kind), Some(&input.config), Some(&input.credentials))?;
    let tx = db.begin_write().await?;
    credentials::require_all(&tx, scope.tenant(), &input.credentials).await?;
    if find(&tx, scope, &input.slug).await?.is_some() {
        return Err(Error::Conflict(format!(
            "connector {:?} already exists in staging",
            input.slug
        )));
    }
    ensure_room(
        &tx,
        scope.tenant(),
        "connectors",
        scope.select::<connector_instances::Entity>(),
        quota.max_per_kind,
        "RUNFLOW_MAX_RECORDS_PER_KIND",
    )
    .await?;
    let row = new_instance(
        scope,
        &input.slug,
        input.kind,
        input.config,
        serde_json::json!(input.credentials),
    )
    .insert_into(scope.tenant(), &tx)
    .await?;
    db.commit(tx).await?;
    Ok(row.into())
}

/// A new instance row of the written environment (a create in staging, a publish in production).
fn new_instance(
    write: &impl EnvironmentWrite,
    slug: &str,
    kind: String,
    config: Value,
    credential_refs: Value,
) -> connector_instances::ActiveModel {
    let time = now();
    connector_instances::ActiveModel {
        id: Set(new_id()),
        tenant_id: Set(write.target().tenant.id().to_string()),
        environment: Set(write.target().environment),
        slug: Set(slug.to_string()),
        kind: Set(kind),
        config: Set(config),
        credential_refs: Set(credential_refs),
        revision: Set(1),
        created_at: Set(time),
        updated_at: Set(time),
        release_id: Set(write.release_id()),
    }
}

/// A new resource row of the written environment.
fn new_resource(
    write: &impl EnvironmentWrite,
    instance_id: Uuid,
    key: String,
    config: Value,
) -> connector_resources::ActiveModel {
    let time = now();
    connector_resources::ActiveModel {
        id: Set(new_id()),
        tenant_id: Set(write.target().tenant.id().to_string()),
        environment: Set(write.target().environment),
        instance_id: Set(instance_id),
        key: Set(key),
        config: Set(config),
        revision: Set(1),
        created_at: Set(time),
        updated_at: Set(time),
    }
}

/// A connector's whole publishable state.
#[derive(Clone, Debug)]
pub struct ConnectorState {
    pub kind: String,
    pub config: Value,
    /// The credential names, as stored (a JSON array).
    pub credentials: Value,
    pub resources: BTreeMap<String, Value>,
}

/// Makes the written environment's connector `slug` equal `state`, resources included
/// (publishing; staging is edited field by field).
pub async fn put<C: ConnectionTrait>(
    db: &C,
    write: &impl EnvironmentWrite,
    slug: &str,
    state: ConnectorState,
) -> Result<connector_instances::Model> {
    let release_id = write.release_id();
    let existing = find(db, write.target(), slug).await?;
    let instance = match existing {
        Some(row) => {
            delete_resources(db, &write.target().tenant, row.id).await?;
            revision::update::<connector_instances::Entity, _, _>(
                db,
                &write.target().tenant,
                &format!("connector:{slug}"),
                row.id,
                None,
                |active| {
                    active.kind = Set(state.kind);
                    active.config = Set(state.config);
                    active.credential_refs = Set(state.credentials);
                    active.updated_at = Set(now());
                    active.release_id = Set(release_id);
                },
            )
            .await?
        }
        None => {
            new_instance(write, slug, state.kind, state.config, state.credentials)
                .insert_into(&write.target().tenant, db)
                .await?
        }
    };
    let resources: Vec<connector_resources::ActiveModel> = state
        .resources
        .into_iter()
        .map(|(key, config)| new_resource(write, instance.id, key, config))
        .collect();
    if !resources.is_empty() {
        write.target().tenant.insert_many(resources).exec(db).await?;
    }
    Ok(instance)
}

/// Removes the connector and its resources from the written environment (a published removal;
/// a staging edit uses [`delete`], which checks the revision).
pub async fn remove<C: ConnectionTrait>(db: &C, write: &impl EnvironmentWrite, slug: &str) -> Result<()> {
    if let Some(row) = find(db, write.target(), slug).await? {
        let tenant = &write.target().tenant;
        delete_resources(db, tenant, row.id).await?;
        tenant
            .delete_many::<connector_instances::Entity>()
            .filter(connector_instances::Column::Id.eq(row.id))
            .exec(db)
            .await?;
    }
    Ok(())
}

async fn delete_resources<C: ConnectionTrait>(db: &C, tenant: &Tenant, instance_id: Uuid) -> Result<()> {
    tenant
        .delete_many::<connector_resources::Entity>()
        .filter(connector_resources::Column::InstanceId.eq(instance_id))
        .exec(db)
        .await?;
    Ok(())
}

/// Changes a staging connector instance; omitted fields keep their value, and a stale
/// `expected_revision` fails with CONFLICT.
pub async fn update(db: &Db, scope: &StagingScope, input: UpdateConnectorInput) -> Result<Connector> {
    let changes = super::ConfigChanges {
        kind: input.kind,
        config: input.config,
        credentials: input.credentials,
    };
    changes.validate()?;
    let tx = db.begin_write().await?;
    let row = get(&tx, scope, &input.slug).await?;
    let what = format!("connector {:?}", input.slug);
    let row = changes
        .write::<connector_instances::Entity, _>(&tx, &scope.tenant, &what, row.id, input.expected_revision)
        .await?;
    db.commit(tx).await?;
    Ok(row.into())
}

/// Deletes the staging instance and its resources.
pub async fn delete(db: &Db, scope: &StagingScope, slug: &str, expected_revision: Option<i64>) -> Result<Uuid> {
    let tx = db.begin_write().await?;
    let row = get(&tx, scope, slug).await?;
    // The instance first: its lock keeps resource edits out until this commits.
    revision::delete::<connector_instances::Entity, _>(
        &tx,
        &scope.tenant,
        &format!("connector {slug:?}"),
        row.id,
        expected_revision,
    )
    .await?;
    scope
        .tenant
        .delete_many::<connector_resources::Entity>()
        .filter(connector_resources::Column::InstanceId.eq(row.id))
        .exec(&tx)
        .await?;
    db.commit(tx).await?;
    Ok(row.id)
}

/// Resources of several instances at once, keyed by instance id, each list sorted by key.
pub async fn resources_of(
    db: &Db,
    tenant: &crate::scope::Tenant,
    instance_ids: &[Uuid],
) -> Result<HashMap<Uuid, Vec<ConnectorResource>>> {
    let rows = tenant
        .select::<connector_resources::Entity>()
        .filter(connector_resources::Column::InstanceId.is_in(instance_ids.to_vec()))
        .order_by_asc(connector_resources::Column::Key)
        .all(&db.conn)
        .await?;
    let mut map: HashMap<Uuid, Vec<ConnectorResource>> = HashMap::new();
    for row in rows {
        map.entry(row.instance_id).or_default().push(row.into());
    }
    Ok(map)
}

async fn find_resource<C: ConnectionTrait>(
    db: &C,
    scope: &Scope,
    instance_id: Uuid,
    key: &str,
) -> Result<Option<connector_resources::Model>> {
    Ok(scope
        .select::<connector_resources::Entity>()
        .filter(connector_resources::Column::InstanceId.eq(instance_id))
        .filter(connector_resources::Column::Key.eq(key))
        .one(db)
        .await?)
}

fn validate_resource(input: &ResourceInput) -> Result<()> {
    validate::short_text("key", &input.key, 255)?;
    if input.key.chars().any(|c| c.is_control()) {
        return Err(Error::bad_input("key must not contain control characters"));
    }
    validate::json_object("config", &input.config)
}

/// Adds a resource; the instance's revision moves too (its resource set changed).
/// Resources one connector may have (`Connector.resources` is a plain list, bounded by this).
pub const MAX_RESOURCES_PER_CONNECTOR: u64 = 200;

pub async fn create_resource(db: &Db, scope: &StagingScope, input: ResourceInput) -> Result<ConnectorResource> {
    validate_resource(&input)?;
    let tx = db.begin_write().await?;
    let instance = get(&tx, scope, &input.connector).await?;
    // Bumping locks the instance: concurrent creates on one connector count one at a time.
    bump_instance(&tx, &scope.tenant, &input.connector, instance.id).await?;
    let existing = scope
        .select::<connector_resources::Entity>()
        .filter(connector_resources::Column::InstanceId.eq(instance.id))
        .count(&tx)
        .await?;
    if existing >= MAX_RESOURCES_PER_CONNECTOR {
        return Err(Error::LimitExceeded(format!(
            "connector {:?} already has {existing} resources, the limit per connector ({MAX_RESOURCES_PER_CONNECTOR})",
            input.connector
        )));
    }
    if find_resource(&tx, scope, instance.id, &input.key).await?.is_some() {
        return Err(Error::Conflict(format!(
            "connector {:?} already has a resource {:?}",
            input.connector, input.key
        )));
    }
    let row = new_resource(scope, instance.id, input.key, input.config)
        .insert_into(scope.tenant(), &tx)
        .await?;
    db.commit(tx).await?;
    Ok(row.into())
}

pub async fn update_resource(db: &Db, scope: &StagingScope, input: ResourceInput) -> Result<ConnectorResource> {
    validate_resource(&input)?;
    let tx = db.begin_write().await?;
    let instance = get(&tx, scope, &input.connector).await?;
    bump_instance(&tx, &scope.tenant, &input.connector, instance.id).await?;
    let row = find_resource(&tx, scope, instance.id, &input.key)
        .await?
        .ok_or_else(|| Error::not_found(format!("resource {:?} of connector {:?}", input.key, input.connector)))?;
    let row = revision::update::<connector_resources::Entity, _, _>(
        &tx,
        &scope.tenant,
        &format!("resource {:?}", input.key),
        row.id,
        input.expected_revision,
        |active| {
            active.config = Set(input.config);
            active.updated_at = Set(now());
        },
    )
    .await?;
    db.commit(tx).await?;
    Ok(row.into())
}

pub async fn delete_resource(
    db: &Db,
    scope: &StagingScope,
    connector: &str,
    key: &str,
    expected_revision: Option<i64>,
) -> Result<Uuid> {
    let tx = db.begin_write().await?;
    let instance = get(&tx, scope, connector).await?;
    bump_instance(&tx, &scope.tenant, connector, instance.id).await?;
    let row = find_resource(&tx, scope, instance.id, key)
        .await?
        .ok_or_else(|| Error::not_found(format!("resource {key:?} of connector {connector:?}")))?;
    revision::delete::<connector_resources::Entity, _>(
        &tx,
        &scope.tenant,
        &format!("resource {key:?}"),
        row.id,
        expected_revision,
    )
    .await?;
    db.commit(tx).await?;
    Ok(row.id)
}

/// A resource changed: the instance's revision moves too (its resource set is part of it).
/// Called first in the transaction, so the instance's lock orders the resource edits.
async fn bump_instance<C: ConnectionTrait>(db: &C, tenant: &Tenant, slug: &str, instance_id: Uuid) -> Result<()> {
    revision::update::<connector_instances::Entity, _, _>(
        db,
        tenant,
        &format!("connector {slug:?}"),
        instance_id,
        None,
        |active| active.updated_at = Set(now()),
    )
    .await?;
    Ok(())
}
