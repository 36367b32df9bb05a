//! Triggers: each lives in, and fires only in, one environment; it targets one agent there.

use std::str::FromStr;

use entity::triggers;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set};
use serde_json::Value;
use uuid::Uuid;

use super::{agents, new_id, now, validate};
use crate::db::Db;
use crate::error::{Error, Result, check_revision};
use crate::scope::{Scope, StagingScope};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TriggerKind {
    Schedule,
    Webhook,
}

impl TriggerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TriggerKind::Schedule => "schedule",
            TriggerKind::Webhook => "webhook",
        }
    }
}

impl FromStr for TriggerKind {
    type Err = Error;

    fn from_str(value: &str) -> Result<Self> {
        match value {
            "schedule" => Ok(TriggerKind::Schedule),
            "webhook" => Ok(TriggerKind::Webhook),
            other => Err(Error::internal(anyhow::anyhow!(
                "stored trigger kind {other:?} is unknown"
            ))),
        }
    }
}

#[derive(Clone, Debug)]
pub struct CreateTriggerInput {
    pub name: String,
    pub agent: String,
    pub kind: TriggerKind,
    pub schedule: Option<String>,
    pub config: Option<Value>,
    pub enabled: bool,
}

#[derive(Clone, Debug, Default)]
pub struct UpdateTriggerInput {
    pub name: String,
    pub agent: Option<String>,
    pub schedule: Option<String>,
    pub config: Option<Value>,
    pub enabled: Option<bool>,
    pub expected_revision: Option<i64>,
}

/// Validates a cron expression (5 fields, or 6 with seconds).
pub fn validate_schedule(expression: &str) -> Result<()> {
    croner::Cron::from_str(expression).map(|_| ()).map_err(|error| {
        Error::bad_input(format!(
            "schedule {expression:?} is not a valid cron expression: {error}"
        ))
    })
}

fn check_kind_fields(kind: TriggerKind, schedule: &Option<String>) -> Result<()> {
    match (kind, schedule) {
        (TriggerKind::Schedule, None) => Err(Error::bad_input(
            "a schedule trigger needs `schedule`, a cron expression",
        )),
        (TriggerKind::Schedule, Some(expression)) => validate_schedule(expression),
        (TriggerKind::Webhook, Some(_)) => Err(Error::bad_input("a webhook trigger has no `schedule`")),
        (TriggerKind::Webhook, None) => Ok(()),
    }
}

pub async fn list(db: &Db, scope: &Scope) -> Result<Vec<triggers::Model>> {
    Ok(scope
        .select::<triggers::Entity>()
        .order_by_asc(triggers::Column::Name)
        .all(&db.conn)
        .await?)
}

pub async fn find<C: ConnectionTrait>(db: &C, scope: &Scope, name: &str) -> Result<Option<triggers::Model>> {
    Ok(scope
        .select::<triggers::Entity>()
        .filter(triggers::Column::Name.eq(name))
        .one(db)
        .await?)
}

pub async fn get<C: ConnectionTrait>(db: &C, scope: &Scope, name: &str) -> Result<triggers::Model> {
    find(db, scope, name)
        .await?
        .ok_or_else(|| Error::not_found(format!("trigger {name:?} in {}", scope.environment)))
}

pub async fn create(db: &Db, scope: &StagingScope, input: CreateTriggerInput) -> Result<triggers::Model> {
    validate::slug("name", &input.name)?;
    validate::slug("agent", &input.agent)?;
    check_kind_fields(input.kind, &input.schedule)?;
    let config = input.config.unwrap_or_else(|| Value::Object(Default::default()));
    validate::json_object("config", &config)?;
    let tx = db.begin_write().await?;
    if agents::find(&tx, scope, &input.agent).await?.is_none() {
        return Err(Error::bad_input(format!(
            "agent {:?} does not exist in staging; deploy it first",
            input.agent
        )));
    }
    if find(&tx, scope, &input.name).await?.is_some() {
        return Err(Error::Conflict(format!(
            "trigger {:?} already exists in staging",
            input.name
        )));
    }
    let time = now();
    let row = triggers::ActiveModel {
        id: Set(new_id()),
        tenant_id: Set(scope.tenant().id().to_string()),
        environment: Set(scope.environment),
        name: Set(input.name),
        agent_slug: Set(input.agent),
        kind: Set(input.kind.as_str().to_string()),
        schedule: Set(input.schedule),
        config: Set(config),
        enabled: Set(input.enabled),
        revision: Set(1),
        created_at: Set(time),
        updated_at: Set(time),
        release_id: Set(None),
    }
    .insert(&tx)
    .await?;
    tx.commit().await?;
    Ok(row)
}

pub async fn update(db: &Db, scope: &StagingScope, input: UpdateTriggerInput) -> Result<triggers::Model> {
    if let Some(agent) = &input.agent {
        validate::slug("agent", agent)?;
    }
    if let Some(config) = &input.config {
        validate::json_object("config", config)?;
    }
    let tx = db.begin_write().await?;
    let row = get(&tx, scope, &input.name).await?;
    check_revision(
        &format!("trigger {:?}", input.name),
        row.revision,
        input.expected_revision,
    )?;
    let kind: TriggerKind = row.kind.parse()?;
    if input.schedule.is_some() {
        check_kind_fields(kind, &input.schedule)?;
    }
    if let Some(agent) = &input.agent
        && agents::find(&tx, scope, agent).await?.is_none()
    {
        return Err(Error::bad_input(format!(
            "agent {agent:?} does not exist in staging; deploy it first"
        )));
    }
    let revision = row.revision + 1;
    let mut active: triggers::ActiveModel = row.into();
    if let Some(agent) = input.agent {
        active.agent_slug = Set(agent);
    }
    if let Some(schedule) = input.schedule {
        active.schedule = Set(Some(schedule));
    }
    if let Some(config) = input.config {
        active.config = Set(config);
    }
    if let Some(enabled) = input.enabled {
        active.enabled = Set(enabled);
    }
    active.revision = Set(revision);
    active.updated_at = Set(now());
    let row = active.update(&tx).await?;
    tx.commit().await?;
    Ok(row)
}

pub async fn delete(db: &Db, scope: &StagingScope, name: &str, expected_revision: Option<i64>) -> Result<Uuid> {
    let tx = db.begin_write().await?;
    let row = get(&tx, scope, name).await?;
    check_revision(&format!("trigger {name:?}"), row.revision, expected_revision)?;
    triggers::Entity::delete_by_id(row.id).exec(&tx).await?;
    tx.commit().await?;
    Ok(row.id)
}
