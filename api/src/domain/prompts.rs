//! Prompts: immutable numbered versions, a draft in staging, and per-environment resolution.
//!
//! - Editing in staging writes the draft (`save_draft`).
//! - Staging resolves to the draft when there is one, else to the latest published version.
//! - Production resolves to its published version only; a never-published prompt does not
//!   exist there.

use std::collections::BTreeSet;

use entity::{Environment, prompt_versions, prompts};
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, Order, QueryFilter, QueryOrder, Set};
use serde_json::Value;
use uuid::Uuid;

use super::pagination::{self, Key, Page, PageRequest};
use super::{new_id, now, revision, validate};
use crate::db::{Db, lock_for_update};
use crate::error::{Error, Result};
use crate::scope::{Scope, StagingScope, Tenant};

pub const MAX_TEMPLATE_BYTES: usize = 100 * 1024;

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
pub async fn save_draft(db: &Db, scope: &StagingScope, author: &str, input: SaveDraftInput) -> Result<prompts::Model> {
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
    let variables = match input.variables {
        Some(declared) => {
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
            prompts::ActiveModel {
                id: Set(new_id()),
                tenant_id: Set(scope.tenant().id().to_string()),
                environment: Set(Environment::Staging),
                slug: Set(input.slug),
                published_version_id: Set(None),
                draft_template: Set(Some(input.template)),
                draft_variables: Set(Some(serde_json::json!(variables))),
                draft_model_settings: Set(Some(model_settings)),
                revision: Set(1),
                updated_by: Set(author.to_string()),
                created_at: Set(time),
                updated_at: Set(time),
                release_id: Set(None),
            }
            .insert(&tx)
            .await?
        }
    };
    tx.commit().await?;
    Ok(row)
}

async fn find_row<C: ConnectionTrait>(db: &C, scope: &Scope, slug: &str) -> Result<Option<prompts::Model>> {
    Ok(scope
        .select::<prompts::Entity>()
        .filter(prompts::Column::Slug.eq(slug))
        .one(db)
        .await?)
}

/// One prompt in the scope's environment.
pub async fn get<C: ConnectionTrait>(db: &C, scope: &Scope, slug: &str) -> Result<prompts::Model> {
    find_row(db, scope, slug)
        .await?
        .ok_or_else(|| Error::not_found(format!("prompt {slug:?} in {}", scope.environment)))
}

/// A page of the prompts of the scope's environment, by slug.
pub async fn list(db: &Db, scope: &Scope, page: &PageRequest) -> Result<Page<prompts::Model>> {
    let select = scope.select::<prompts::Entity>();
    pagination::fetch_by(&db.conn, select, prompts::Column::Slug, Key::Text, page, Order::Asc).await
}

/// Removes the prompt from staging (its published versions stay, immutable).
pub async fn delete(db: &Db, scope: &StagingScope, slug: &str, expected_revision: Option<i64>) -> Result<Uuid> {
    let tx = db.begin_write().await?;
    let row = get(&tx, scope, slug).await?;
    revision::delete::<prompts::Entity, _>(&tx, &format!("prompt {slug:?}"), row.id, expected_revision).await?;
    tx.commit().await?;
    Ok(row.id)
}

/// Published versions of a prompt, newest first.
pub async fn versions(
    db: &Db,
    tenant: &Tenant,
    slug: &str,
    page: &PageRequest,
) -> Result<Page<prompt_versions::Model>> {
    let select = tenant
        .select::<prompt_versions::Entity>()
        .filter(prompt_versions::Column::Slug.eq(slug));
    pagination::fetch_by(
        &db.conn,
        select,
        prompt_versions::Column::Version,
        Key::Int,
        page,
        Order::Desc,
    )
    .await
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

/// What `row` serves in its environment (see the module docs for the rule).
pub async fn resolve_row<C: ConnectionTrait>(
    db: &C,
    tenant: &Tenant,
    row: &prompts::Model,
) -> Result<Option<Resolved>> {
    if row.environment == Environment::Staging
        && let Some(template) = &row.draft_template
    {
        return Ok(Some(Resolved {
            source: Source::Draft,
            version: None,
            template: template.clone(),
            variables: super::string_array(row.draft_variables.as_ref()),
            model_settings: row.draft_model_settings.clone().unwrap_or(Value::Null),
        }));
    }
    let version = match (row.environment, row.published_version_id) {
        (Environment::Production, Some(id)) => {
            tenant
                .select::<prompt_versions::Entity>()
                .filter(prompt_versions::Column::Id.eq(id))
                .one(db)
                .await?
        }
        (Environment::Production, None) => None,
        (Environment::Staging, _) => latest_version(db, tenant, &row.slug).await?,
    };
    Ok(version.map(|v| Resolved {
        source: Source::Published,
        version: Some(v.version),
        template: v.template,
        variables: super::string_array(Some(&v.variables)),
        model_settings: v.model_settings,
    }))
}

/// Resolves a prompt by slug in the scope's environment: NOT_FOUND when it does not exist there.
pub async fn resolve(db: &Db, scope: &Scope, slug: &str) -> Result<Resolved> {
    let row = get(&db.conn, scope, slug).await?;
    resolve_row(&db.conn, &scope.tenant, &row)
        .await?
        .ok_or_else(|| Error::not_found(format!("prompt {slug:?} in {}", scope.environment)))
}

/// The draft of a staging prompt row, if any.
pub fn draft_of(row: &prompts::Model) -> Option<Resolved> {
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
