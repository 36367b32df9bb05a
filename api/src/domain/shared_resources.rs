//! Knowledge bases, LLM providers and data sources: records shared by both environments.
//! They have the same shape, so one module serves all three, told apart by [`Category`].

use chrono::{DateTime, Utc};
use entity::shared_resources;
use sea_orm::{ColumnTrait, ConnectionTrait, QueryFilter, Set};
use serde_json::Value;
use uuid::Uuid;

use super::pagination::{self, Page, PageRequest};
use super::{credentials, new_id, now, revision, validate};
use crate::db::Db;
use crate::error::{Error, Result};
use crate::scope::{Tenant, TenantWrite};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Category {
    KnowledgeBase,
    LlmProvider,
    DataSource,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::KnowledgeBase => "knowledge_base",
            Category::LlmProvider => "llm_provider",
            Category::DataSource => "data_source",
        }
    }

    /// How people call it, for messages.
    pub fn label(self) -> &'static str {
        match self {
            Category::KnowledgeBase => "knowledge base",
            Category::LlmProvider => "LLM provider",
            Category::DataSource => "data source",
        }
    }
}

/// A shared resource (knowledge base, LLM provider or data source), as the domain hands it out.
#[derive(Clone, Debug, PartialEq)]
pub struct SharedResource {
    pub id: Uuid,
    pub category: Category,
    pub name: String,
    /// The provider or engine (`openai`, `pgvector`...).
    pub kind: String,
    pub config: Value,
    /// Names of the shared credentials it uses, a JSON array of strings.
    pub credential_refs: Value,
    pub revision: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl SharedResource {
    /// A stored row of `category` (every read filters by its category).
    fn of(category: Category, row: shared_resources::Model) -> SharedResource {
        SharedResource {
            id: row.id,
            category,
            name: row.name,
            kind: row.kind,
            config: row.config,
            credential_refs: row.credential_refs,
            revision: row.revision,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct SharedResourceInput {
    pub name: String,
    pub kind: Option<String>,
    pub config: Option<Value>,
    pub credentials: Option<Vec<String>>,
    pub expected_revision: Option<i64>,
}

fn select(tenant: &Tenant, category: Category) -> sea_orm::Select<shared_resources::Entity> {
    tenant
        .select::<shared_resources::Entity>()
        .filter(shared_resources::Column::Category.eq(category.as_str()))
}

/// A shared resource of this category by id (`node(id:)`); None when missing or of another
/// category or tenant.
pub async fn by_id(db: &Db, tenant: &Tenant, category: Category, id: uuid::Uuid) -> Result<Option<SharedResource>> {
    let row = select(tenant, category)
        .filter(shared_resources::Column::Id.eq(id))
        .one(&db.conn)
        .await?;
    Ok(row.map(|row| SharedResource::of(category, row)))
}

/// A page of the tenant's resources of one category, by name.
pub async fn list(db: &Db, tenant: &Tenant, category: Category, page: &PageRequest) -> Result<Page<SharedResource>> {
    let select = select(tenant, category);
    let page = pagination::fetch_by_name(db, select, shared_resources::Column::Name, page).await?;
    Ok(page.map(|row| SharedResource::of(category, row)))
}

async fn find<C: ConnectionTrait>(
    db: &C,
    tenant: &Tenant,
    category: Category,
    name: &str,
) -> Result<Option<shared_resources::Model>> {
    Ok(select(tenant, category)
        .filter(shared_resources::Column::Name.eq(name))
        .one(db)
        .await?)
}

async fn get<C: ConnectionTrait>(
    db: &C,
    tenant: &Tenant,
    category: Category,
    name: &str,
) -> Result<shared_resources::Model> {
    find(db, tenant, category, name)
        .await?
        .ok_or_else(|| Error::not_found(format!("{} {name:?}", category.label())))
}

fn validate_fields(input: &SharedResourceInput) -> Result<()> {
    validate::slug("name", &input.name)?;
    super::validate_config(
        input.kind.as_deref(),
        input.config.as_ref(),
        input.credentials.as_deref(),
    )
}

/// Creates a resource of `category`; its name must be new within the category and the
/// credentials it names must exist.
pub async fn create(
    db: &Db,
    tenant: &Tenant,
    category: Category,
    input: SharedResourceInput,
) -> Result<SharedResource> {
    validate_fields(&input)?;
    let kind = input.kind.ok_or_else(|| Error::bad_input("kind is required"))?;
    let names = input.credentials.unwrap_or_default();
    let tx = db.begin_write().await?;
    credentials::require_all(&tx, tenant, &names).await?;
    if find(&tx, tenant, category, &input.name).await?.is_some() {
        return Err(Error::Conflict(format!(
            "{} {:?} already exists",
            category.label(),
            input.name
        )));
    }
    let time = now();
    let row = shared_resources::ActiveModel {
        id: Set(new_id()),
        tenant_id: Set(tenant.id().to_string()),
        category: Set(category.as_str().to_string()),
        name: Set(input.name),
        kind: Set(kind),
        config: Set(input.config.unwrap_or_else(|| Value::Object(Default::default()))),
        credential_refs: Set(serde_json::json!(names)),
        revision: Set(1),
        created_at: Set(time),
        updated_at: Set(time),
    }
    .insert_into(tenant, &tx)
    .await?;
    db.commit(tx).await?;
    Ok(SharedResource::of(category, row))
}

/// Changes the named resource of `category`; omitted fields keep their value, and a stale
/// `expected_revision` fails with CONFLICT.
pub async fn update(
    db: &Db,
    tenant: &Tenant,
    category: Category,
    input: SharedResourceInput,
) -> Result<SharedResource> {
    validate_fields(&input)?;
    let changes = super::ConfigChanges {
        kind: input.kind,
        config: input.config,
        credentials: input.credentials,
    };
    let tx = db.begin_write().await?;
    let row = get(&tx, tenant, category, &input.name).await?;
    let what = format!("{} {:?}", category.label(), input.name);
    let row = changes
        .write::<shared_resources::Entity, _>(&tx, tenant, &what, row.id, input.expected_revision)
        .await?;
    db.commit(tx).await?;
    Ok(SharedResource::of(category, row))
}

/// Deletes the named resource of `category` and returns its id.
pub async fn delete(
    db: &Db,
    tenant: &Tenant,
    category: Category,
    name: &str,
    expected_revision: Option<i64>,
) -> Result<Uuid> {
    let tx = db.begin_write().await?;
    let row = get(&tx, tenant, category, name).await?;
    revision::delete::<shared_resources::Entity, _>(
        &tx,
        tenant,
        &format!("{} {name:?}", category.label()),
        row.id,
        expected_revision,
    )
    .await?;
    db.commit(tx).await?;
    Ok(row.id)
}
