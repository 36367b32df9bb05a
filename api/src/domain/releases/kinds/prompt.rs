//! Prompts: the state is the published version an environment serves,
//! `{"version", "number", "template", "variables", "modelSettings"}`, or in staging with a
//! draft `{"draft": {"template", "variables", "modelSettings"}}` (publishing a draft makes it
//! the next version).

use std::collections::HashMap;

use entity::{Environment, prompt_versions, prompts};
use sea_orm::{ColumnTrait, ConnectionTrait, QueryFilter};
use serde_json::{Value, json};
use uuid::Uuid;

use super::super::publish::ProductionWrite;
use super::super::state::version_state;
use super::{Publishable, Target, lock_by_slug, uuid_field};
use crate::domain::prompts::{self as domain, Resolved, Serves, Source, VersionRef};
use crate::error::{Error, Result};
use crate::scope::Scope;

pub(super) struct Prompt;

impl Publishable for Prompt {
    async fn snapshot<C: ConnectionTrait>(db: &C, scope: &Scope) -> Result<Vec<(String, Value)>> {
        let rows = scope.select::<prompts::Entity>().all(db).await?;
        let slugs: Vec<String> = rows.iter().map(|r| r.slug.clone()).collect();
        let versions = scope
            .tenant
            .select::<prompt_versions::Entity>()
            .filter(prompt_versions::Column::Slug.is_in(slugs))
            .all(db)
            .await?;
        let by_id: HashMap<Uuid, &prompt_versions::Model> = versions.iter().map(|v| (v.id, v)).collect();
        let mut latest: HashMap<&str, &prompt_versions::Model> = HashMap::new();
        for version in &versions {
            let entry = latest.entry(version.slug.as_str()).or_insert(version);
            if version.version > entry.version {
                *entry = version;
            }
        }
        let mut items = Vec::with_capacity(rows.len());
        for row in rows.into_iter().map(domain::Prompt::from) {
            // The resolution rule itself is `domain::prompts::serves`.
            let value = match domain::serves(&row) {
                Some(Serves::Draft) => Some(json!({ "draft": {
                    "template": row.draft_template,
                    "variables": row.draft_variables.clone().unwrap_or(json!([])),
                    "modelSettings": row.draft_model_settings.clone().unwrap_or(json!({})),
                }})),
                Some(Serves::Version(VersionRef::LatestOf(slug))) => {
                    latest.get(slug.as_str()).map(|v| version_state(v))
                }
                Some(Serves::Version(VersionRef::Id(id))) => by_id.get(&id).map(|v| version_state(v)),
                None => None,
            };
            if let Some(value) = value {
                items.push((row.slug, value));
            }
        }
        Ok(items)
    }

    async fn lock_staging<C: ConnectionTrait>(db: &C, staging: &Scope, slugs: Vec<String>) -> Result<()> {
        lock_by_slug::<prompts::Entity, _>(db, staging, prompts::Column::Slug, slugs).await
    }

    async fn remove<C: ConnectionTrait>(db: &C, write: &ProductionWrite, slug: &str) -> Result<()> {
        domain::remove(db, write, slug).await
    }

    async fn put<C: ConnectionTrait>(
        db: &C,
        Target {
            write,
            actor,
            slug,
            state,
        }: Target<'_>,
    ) -> Result<Value> {
        let version = match state.get("draft") {
            Some(draft) => {
                let staging = write.tenant().in_env(Environment::Staging).editable()?;
                let draft = Resolved {
                    source: Source::Draft,
                    version: None,
                    template: draft
                        .get("template")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    variables: crate::domain::string_array(draft.get("variables")),
                    model_settings: draft.get("modelSettings").cloned().unwrap_or(json!({})),
                };
                domain::publish_draft(db, &staging, actor, slug, &draft).await?
            }
            None => domain::version(db, write.tenant(), &VersionRef::Id(uuid_field(state, "version")?))
                .await?
                .ok_or_else(|| Error::not_found(format!("version of prompt {slug:?}")))?,
        };
        domain::set_published_version(db, write, actor, slug, version.id).await?;
        Ok(version_state(&version))
    }
}
