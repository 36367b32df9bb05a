//! Prompts: immutable numbered versions, a draft in staging, and per-environment resolution.
//!
//! - Editing in staging writes the draft (`save_draft`).
//! - Staging resolves to the draft when there is one, else to the latest published version.
//! - Production resolves to its published version only; a never-published prompt does not
//!   exist there.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use entity::{Environment, prompt_versions, prompts};
use sea_orm::{ColumnTrait, ConnectionTrait, Order, QueryFilter, QueryOrder, Set};
use serde_json::Value;
use uuid::Uuid;

use super::pagination::{self, Key, Page, PageRequest};
use super::quotas::{RecordQuota, ensure_room};
use super::{EnvironmentWrite, new_id, now, revision, validate};
use crate::db::{Db, lock_for_update};
use crate::error::{Error, Result};
use crate::scope::{Scope, StagingScope, Tenant, TenantWrite};

pub const MAX_TEMPLATE_BYTES: usize = 100 * 1024;

/// A prompt in one environment, as the domain hands it out.
#[derive(Clone, Debug, PartialEq)]
pub struct Prompt {
    pub id: Uuid,
    pub environment: Environment,
    pub slug: String,
    /// In production: the version it serves.
    pub published_version_id: Option<Uuid>,
    /// The staging draft, if any: its template, variables (a JSON array) and model settings.
    pub draft_template: Option<String>,
    pub draft_variables: Option<Value>,
    pub draft_model_settings: Option<Value>,
    pub revision: i64,
    pub updated_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// In production: the release that last set it.
    pub release_id: Option<Uuid>,
}

impl From<prompts::Model> for Prompt {
    fn from(row: prompts::Model) -> Self {
        Prompt {
            id: row.id,
            environment: row.environment,
            slug: row.slug,
            published_version_id: row.published_version_id,
            draft_template: row.draft_template,
            draft_variables: row.draft_variables,
            draft_model_settings: row.draft_model_settings,
            revision: row.revision,
            updated_by: row.updated_by,
            created_at: row.created_at,
            updated_at: row.updated_at,
            release_id: row.release_id,
        }
    }
}

/// An immutable published version of a prompt (shared by both environments).
#[derive(Clone, Debug, PartialEq)]
pub struct PromptVersion {
    pub id: Uuid,
    pub slug: String,
    /// 1 for the first publish, then one more per publish.
    pub version: i32,
    pub template: String,
    /// The declared variables, a JSON array of strings.
    pub variables: Value,
    pub model_settings: Value,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

impl From<prompt_versions::Model> for PromptVersion {
    fn from(row: prompt_versions::Model) -> Self {
        PromptVersion {
            id: row.id,
            slug: row.slug,
            version: row.version,
            template: row.template,
            variables: row.variables,
            model_settings: row.model_settings,
            created_by: row.created_by,
            created_at: row.created_at,
        }
    }
}

#[derive(Clone, Debug)]
pub struct SaveDraftInput {
    pub slug: String,
    pub template: String,
    /// Declared variables; `None` derives them from the template's `{{name}}` placeholders.
    pub variables: Option<Vec<String>>,
    pub model_settings: Option<Value>,
    pub expected_revision: Option<i64>,
}

/// Where a resolved prompt came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Draft,
    Published,
}

/// The prompt text an environment serves.
#[derive(Clone, Debug)]
pub struct Resolved {
    pub source: Source,
    pub version: Option<i32>,
    pub template: String,
    pub variables: Vec<String>,
    pub model_settings: Value,
}

/// The `{{ name }}` placeholders of a template, in order of first use.
pub fn placeholders(template: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        let name = after[..end].trim().to_string();
        if !name.is_empty() && !found.contains(&name) {
            found.push(name);
        }
        rest = &after[end + 2..];
    }
    found
}

fn validate_variable_name(name: &str) -> Result<()> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if valid {
        Ok(())
    } else {
        Err(Error::bad_input(format!(
            "variable {name:?} is not a valid name: use letters, digits and '_', starting with a letter or '_'"
        )))
    }
}

/// Saves the staging draft, creating the prompt in staging if needed.
pub async fn save_draft(
    db: &Db,
    scope: &StagingScope,
    author: &str,
    quota: RecordQuota,
    input: SaveDraftInput,
) -> Result<Prompt> {
    validate::author(author)?;
    validate::slug("slug", &input.slug)?;
    if input.template.trim().is_empty() {
        return Err(Error::bad_input("template must not be empty"));
    }
    validate::text_size("template", &input.template, MAX_TEMPLATE_BYTES)?;
    let used = placeholders(&input.template);
    for name in &used {
        validate_variable_name(name)?;
    }
    validate::list_length("variables", used.len())?;
    let variables = match input.variables {
        Some(declared) => {
            validate::list_length("variables", declared.len())?;
            let mut seen = BTreeSet::new();
            for name in &declared {
                validate_variable_name(name)?;
                if !seen.insert(name.as_str()) {
                    return Err(Error::bad_input(format!("variables lists {name:?} twice")));
                }
            }
            if let Some(undeclared) = used.iter().find(|name| !seen.contains(name.as_str())) {
                return Err(Error::bad_input(format!(
                    "template uses {{{{{undeclared}}}}} but variables does not declare it"
                )));
            }
            declared
        }
        None => used,
    };
    let model_settings = input
        .model_settings
        .unwrap_or_else(|| Value::Object(Default::default()));
    validate::json_object("modelSettings", &model_settings)?;

    let tx = db.begin_write().await?;
    lock_for_update(&tx, &format!("prompt:{}:{}", scope.tenant().id(), input.slug)).await?;
    let existing = find_row(&tx, scope, &input.slug).await?;
    let time = now();
    let row = match existing {
        Some(row) => {
            revision::update::<prompts::Entity, _, _>(
                &tx,
                &scope.tenant,
                &format!("prompt {:?}", input.slug),
                row.id,
                input.expected_revision,
                |active| {
                    active.draft_template = Set(Some(input.template));
                    active.draft_variables = Set(Some(serde_json::json!(variables)));
                    active.draft_model_settings = Set(Some(model_settings));
                    active.updated_by = Set(author.to_string());
                    active.updated_at = Set(time);
                },
            )
            .await?
        }
        None => {
            if input.expected_revision.is_some() {
                return Err(Error::not_found(format!("prompt {:?} in staging", input.slug)));
            }
            ensure_room(
                &tx,
                scope.tenant(),
                "prompts",
                scope.select::<prompts::Entity>(),
                quota.max_per_kind,
                "RUNFLOW_MAX_RECORDS_PER_KIND",
            )
            .await?;
            let mut row = new_row(scope, &input.slug, author);
            row.draft_template = Set(Some(input.template));
            row.draft_variables = Set(Some(serde_json::json!(variables)));
            row.draft_model_settings = Set(Some(model_settings));
            row.insert_into(scope.tenant(), &tx).await?
        }
    };
    db.commit(tx).await?;
    Ok(row.into())
}

/// A new prompt row of the written environment, with no draft and nothing published yet: the
/// first draft in staging ([`save_draft`]) and the first publish in production
/// ([`set_published_version`]) both start from it.
fn new_row(write: &impl EnvironmentWrite, slug: &str, author: &str) -> prompts::ActiveModel {
    let time = now();
    prompts::ActiveModel {
        id: Set(new_id()),
        tenant_id: Set(write.target().tenant.id().to_string()),
        environment: Set(write.target().environment),
        slug: Set(slug.to_string()),
        published_version_id: Set(None),
        draft_template: Set(None),
        draft_variables: Set(None),
        draft_model_settings: Set(None),
        revision: Set(1),
        updated_by: Set(author.to_string()),
        created_at: Set(time),
        updated_at: Set(time),
        release_id: Set(write.release_id()),
    }
}

/// The written environment's prompt serves `version_id` from now on (created if missing).
pub async fn set_published_version<C: ConnectionTrait>(
    db: &C,
    write: &impl EnvironmentWrite,
    author: &str,
    slug: &str,
    version_id: Uuid,
) -> Result<prompts::Model> {
    let release_id = write.release_id();
    match find_row(db, write.target(), slug).await? {
        Some(row) => {
            revision::update::<prompts::Entity, _, _>(
                db,
                &write.target().tenant,
                &format!("prompt:{slug}"),
                row.id,
                None,
                |active| {
                    active.published_version_id = Set(Some(version_id));
                    active.updated_by = Set(author.to_string());
                    active.updated_at = Set(now());
                    active.release_id = Set(release_id);
                },
            )
            .await
        }
        None => {
            let mut row = new_row(write, slug, author);
            row.published_version_id = Set(Some(version_id));
            Ok(row.insert_into(&write.target().tenant, db).await?)
        }
    }
}

/// Removes the prompt from the written environment (a published removal; a staging edit uses
/// [`delete`], which checks the revision). Its versions stay, immutable.
pub async fn remove<C: ConnectionTrait>(db: &C, write: &impl EnvironmentWrite, slug: &str) -> Result<()> {
    if let Some(row) = find_row(db, write.target(), slug).await? {
        write
            .target()
            .tenant
            .delete_many::<prompts::Entity>()
            .filter(prompts::Column::Id.eq(row.id))
            .exec(db)
            .await?;
    }
    Ok(())
}

/// Turns the staging draft into the next immutable version and clears the draft (publishing).
/// `draft` is the draft as the publish reviewed it.
pub async fn publish_draft<C: ConnectionTrait>(
    db: &C,
    staging: &StagingScope,
    author: &str,
    slug: &str,
    draft: &Resolved,
) -> Result<prompt_versions::Model> {
    let tenant = staging.tenant();
    let latest = latest_version(db, tenant, slug).await?;
    let version = prompt_versions::ActiveModel {
        id: Set(new_id()),
        tenant_id: Set(tenant.id().to_string()),
        slug: Set(slug.to_string()),
        version: Set(latest.map_or(1, |v| v.version + 1)),
        template: Set(draft.template.clone()),
        variables: Set(serde_json::json!(draft.variables)),
        model_settings: Set(draft.model_settings.clone()),
        created_by: Set(author.to_string()),
        created_at: Set(now()),
    }
    .insert_into(tenant, db)
    .await?;
    if let Some(row) = find_row(db, staging, slug).await? {
        revision::update::<prompts::Entity, _, _>(
            db,
            &staging.tenant,
            &format!("prompt {slug:?}"),
            row.id,
            None,
            |active| {
                active.draft_template = Set(None);
                active.draft_variables = Set(None);
                active.draft_model_settings = Set(None);
                active.updated_at = Set(now());
            },
        )
        .await?;
    }
    Ok(version)
}

async fn find_row<C: ConnectionTrait>(db: &C, scope: &Scope, slug: &str) -> Result<Option<prompts::Model>> {
    Ok(scope
        .select::<prompts::Entity>()
        .filter(prompts::Column::Slug.eq(slug))
        .one(db)
        .await?)
}

/// One prompt in the scope's environment.
pub async fn get<C: ConnectionTrait>(db: &C, scope: &Scope, slug: &str) -> Result<Prompt> {
    find_row(db, scope, slug)
        .await?
        .map(Prompt::from)
        .ok_or_else(|| Error::not_found(format!("prompt {slug:?} in {}", scope.environment)))
}

/// A prompt of the scope by id (None: not there).
pub async fn by_id(db: &Db, scope: &Scope, id: Uuid) -> Result<Option<Prompt>> {
    let row = super::lookup::in_scope::<prompts::Entity, _>(&db.conn, scope, prompts::Column::Id, id);
    Ok(row.await?.map(Prompt::from))
}

/// A published version of the tenant by id (None: not there).
pub async fn version_by_id(db: &Db, tenant: &Tenant, id: Uuid) -> Result<Option<PromptVersion>> {
    let row = super::lookup::in_tenant::<prompt_versions::Entity, _>(&db.conn, tenant, prompt_versions::Column::Id, id);
    Ok(row.await?.map(PromptVersion::from))
}

/// Published versions of the tenant by id (in no particular order; missing ids are left out):
/// what the DataLoaders batch into.
pub async fn versions_by_ids(db: &Db, tenant: &Tenant, ids: Vec<Uuid>) -> Result<Vec<PromptVersion>> {
    let rows =
        super::lookup::many_in_tenant::<prompt_versions::Entity, _>(&db.conn, tenant, prompt_versions::Column::Id, ids);
    Ok(rows.await?.into_iter().map(PromptVersion::from).collect())
}

/// A page of the prompts of the scope's environment, by slug.
pub async fn list(db: &Db, scope: &Scope, page: &PageRequest) -> Result<Page<Prompt>> {
    let select = scope.select::<prompts::Entity>();
    let page = pagination::fetch_by_name(db, select, prompts::Column::Slug, page).await?;
    Ok(page.map(Prompt::from))
}

/// Removes the prompt from staging (its published versions stay, immutable).
pub async fn delete(db: &Db, scope: &StagingScope, slug: &str, expected_revision: Option<i64>) -> Result<Uuid> {
    let tx = db.begin_write().await?;
    let row = get(&tx, scope, slug).await?;
    revision::delete::<prompts::Entity, _>(
        &tx,
        &scope.tenant,
        &format!("prompt {slug:?}"),
        row.id,
        expected_revision,
    )
    .await?;
    db.commit(tx).await?;
    Ok(row.id)
}

/// Published versions of a prompt, newest first.
pub async fn versions(db: &Db, tenant: &Tenant, slug: &str, page: &PageRequest) -> Result<Page<PromptVersion>> {
    let select = tenant
        .select::<prompt_versions::Entity>()
        .filter(prompt_versions::Column::Slug.eq(slug));
    let page = pagination::fetch_by(
        &db.conn,
        select,
        prompt_versions::Column::Version,
        Key::Int,
        page,
        Order::Desc,
    )
    .await?;
    Ok(page.map(PromptVersion::from))
}

/// The latest published version of each of these prompts (those never published are left out).
pub async fn latest_versions(db: &Db, tenant: &Tenant, slugs: Vec<String>) -> Result<Vec<PromptVersion>> {
    let rows = tenant
        .select::<prompt_versions::Entity>()
        .filter(prompt_versions::Column::Slug.is_in(slugs))
        .order_by_asc(prompt_versions::Column::Version)
        .all(&db.conn)
        .await?;
    // Ascending order: the last one per slug wins, which is the latest.
    let mut latest: HashMap<String, prompt_versions::Model> = HashMap::new();
    for row in rows {
        latest.insert(row.slug.clone(), row);
    }
    Ok(latest.into_values().map(PromptVersion::from).collect())
}

pub async fn latest_version<C: ConnectionTrait>(
    db: &C,
    tenant: &Tenant,
    slug: &str,
) -> Result<Option<prompt_versions::Model>> {
    Ok(tenant
        .select::<prompt_versions::Entity>()
        .filter(prompt_versions::Column::Slug.eq(slug))
        .order_by_desc(prompt_versions::Column::Version)
        .one(db)
        .await?)
}

/// A published version, named by id or as "the latest of this slug".
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VersionRef {
    Id(Uuid),
    LatestOf(String),
}

/// What a prompt row serves in its environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Serves {
    /// Its staging draft (see [`draft_of`]).
    Draft,
    /// A published version.
    Version(VersionRef),
}

/// The published version a prompt row is based on: production's published version; in
/// staging the latest published version. None: production has never published it.
pub fn base_version(row: &Prompt) -> Option<VersionRef> {
    match (row.environment, row.published_version_id) {
        (Environment::Production, Some(id)) => Some(VersionRef::Id(id)),
        (Environment::Production, None) => None,
        (Environment::Staging, _) => Some(VersionRef::LatestOf(row.slug.clone())),
    }
}

/// The resolution rule, in one place (the module docs say it in words): staging serves its
/// draft, else the base version; production serves its published version. Callers only fetch
/// what this names (one row here, a batch in a DataLoader, a whole environment in
/// [`super::releases::state`]).
pub fn serves(row: &Prompt) -> Option<Serves> {
    if row.environment == Environment::Staging && row.draft_template.is_some() {
        return Some(Serves::Draft);
    }
    base_version(row).map(Serves::Version)
}

/// Reads the version `reference` names.
pub async fn version<C: ConnectionTrait>(
    db: &C,
    tenant: &Tenant,
    reference: &VersionRef,
) -> Result<Option<prompt_versions::Model>> {
    match reference {
        VersionRef::Id(id) => Ok(tenant
            .select::<prompt_versions::Entity>()
            .filter(prompt_versions::Column::Id.eq(*id))
            .one(db)
            .await?),
        VersionRef::LatestOf(slug) => latest_version(db, tenant, slug).await,
    }
}

impl Resolved {
    /// A published version, as served.
    pub fn published(version: PromptVersion) -> Resolved {
        Resolved {
            source: Source::Published,
            version: Some(version.version),
            variables: super::string_array(Some(&version.variables)),
            template: version.template,
            model_settings: version.model_settings,
        }
    }
}

/// What `row` serves in its environment (see [`serves`]).
pub async fn resolve_row<C: ConnectionTrait>(db: &C, tenant: &Tenant, row: &Prompt) -> Result<Option<Resolved>> {
    Ok(match serves(row) {
        Some(Serves::Draft) => draft_of(row),
        Some(Serves::Version(reference)) => version(db, tenant, &reference)
            .await?
            .map(|version| Resolved::published(version.into())),
        None => None,
    })
}

/// Resolves a prompt by slug in the scope's environment: NOT_FOUND when it does not exist there.
pub async fn resolve(db: &Db, scope: &Scope, slug: &str) -> Result<Resolved> {
    let row = get(&db.conn, scope, slug).await?;
    resolve_row(&db.conn, &scope.tenant, &row)
        .await?
        .ok_or_else(|| Error::not_found(format!("prompt {slug:?} in {}", scope.environment)))
}

/// The draft of a staging prompt row, if any.
pub fn draft_of(row: &Prompt) -> Option<Resolved> {
    row.draft_template.as_ref().map(|template| Resolved {
        source: Source::Draft,
        version: None,
        template: template.clone(),
        variables: super::string_array(row.draft_variables.as_ref()),
        model_settings: row.draft_model_settings.clone().unwrap_or(Value::Null),
    })
}

#[cfg(test)]
mod tests {
    use super::placeholders;

    #[test]
    fn placeholders_are_found_once_in_order() {
        assert_eq!(
            placeholders("Hi {{ name }}, {{topic}} and {{name}} {{"),
            vec!["name", "topic"]
        );
    }
}
