//! Triggers: each lives in, and fires only in, one environment; it targets one agent there.

use std::str::FromStr;

use entity::triggers;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, Order, QueryFilter, Set};
use serde_json::Value;
use uuid::Uuid;

use super::pagination::{self, Key, Page, PageRequest};
use super::{agents, new_id, now, revision, validate};
use crate::crypto::{Sealed, SecretBox};
use crate::db::Db;
use crate::domain::credentials::Secret;
use crate::error::{Error, Result};
use crate::scope::{Scope, StagingScope};
use sha2::Digest;

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
    /// Webhook triggers: the secret that signs calls (write-only).
    pub secret: Option<Secret>,
}

#[derive(Clone, Debug, Default)]
pub struct UpdateTriggerInput {
    pub name: String,
    pub agent: Option<String>,
    pub schedule: Option<String>,
    pub config: Option<Value>,
    pub enabled: Option<bool>,
    /// Webhook triggers: a new signing secret.
    pub secret: Option<Secret>,
    pub expected_revision: Option<i64>,
}

/// Validates a cron expression (5 fields, or 6 with seconds).
pub fn validate_schedule(expression: &str) -> Result<()> {
    validate::string_column("schedule", expression)?;
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

/// A page of the triggers of the scope's environment, by name.
pub async fn list(db: &Db, scope: &Scope, page: &PageRequest) -> Result<Page<triggers::Model>> {
    let select = scope.select::<triggers::Entity>();
    pagination::fetch_by(&db.conn, select, triggers::Column::Name, Key::Text, page, Order::Asc).await
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

pub async fn create(
    db: &Db,
    scope: &StagingScope,
    secret_box: &SecretBox,
    input: CreateTriggerInput,
) -> Result<triggers::Model> {
    validate::slug("name", &input.name)?;
    validate::slug("agent", &input.agent)?;
    check_kind_fields(input.kind, &input.schedule)?;
    let sealed = match (input.kind, &input.secret) {
        (TriggerKind::Webhook, Some(secret)) => Some(seal_secret(secret_box, secret)?),
        (TriggerKind::Webhook, None) => {
            return Err(Error::bad_input(
                "a webhook trigger needs `secret`: it signs the calls (HMAC-SHA256)",
            ));
        }
        (TriggerKind::Schedule, Some(_)) => return Err(Error::bad_input("a schedule trigger has no `secret`")),
        (TriggerKind::Schedule, None) => None,
    };
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
        secret_ciphertext: Set(sealed.as_ref().map(|s| s.ciphertext.clone())),
        secret_nonce: Set(sealed.map(|s| s.nonce)),
    }
    .insert(&tx)
    .await?;
    tx.commit().await?;
    Ok(row)
}

/// Webhook secrets are at least 16 characters, stored sealed.
fn seal_secret(secret_box: &SecretBox, secret: &Secret) -> Result<Sealed> {
    if secret.0.chars().count() < 16 {
        return Err(Error::bad_input("a webhook secret must be at least 16 characters"));
    }
    secret_box.seal(&secret.0).map_err(Error::internal)
}

/// A fingerprint of a trigger's sealed secret (for the release diff; never the secret).
pub fn secret_fingerprint(row: &triggers::Model) -> Option<String> {
    row.secret_ciphertext
        .as_ref()
        .map(|c| hex::encode(sha2::Sha256::digest(c))[..16].to_string())
}

/// The URL at which a webhook trigger is called.
pub fn webhook_url(public_url: &str, row: &triggers::Model) -> Option<String> {
    (row.kind == TriggerKind::Webhook.as_str()).then(|| {
        format!(
            "{public_url}/v1/{}/{}/triggers/{}",
            row.tenant_id,
            row.environment.as_str(),
            row.name
        )
    })
}

/// Checks a webhook call's `X-Runflow-Signature: sha256=<hex>` (HMAC-SHA256 of the raw body).
pub fn verify_signature(
    secret_box: &SecretBox,
    row: &triggers::Model,
    body: &[u8],
    header: Option<&str>,
) -> Result<()> {
    use hmac::{Hmac, Mac};
    let refuse =
        || Error::Unauthenticated("the X-Runflow-Signature header is missing or does not match the body".into());
    let (Some(ciphertext), Some(nonce)) = (&row.secret_ciphertext, &row.secret_nonce) else {
        return Err(refuse());
    };
    let secret = secret_box
        .open(&Sealed {
            ciphertext: ciphertext.clone(),
            nonce: nonce.clone(),
        })
        .map_err(Error::internal)?;
    let expected = header
        .and_then(|h| h.strip_prefix("sha256="))
        .and_then(|h| hex::decode(h.trim()).ok())
        .ok_or_else(refuse)?;
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).map_err(Error::internal)?;
    mac.update(body);
    // Constant-time comparison.
    mac.verify_slice(&expected).map_err(|_| refuse())
}

/// Fires a trigger: queues an execution of its agent in the trigger's own environment. For a
/// schedule tick, the tick is claimed in the same transaction (unique per trigger and tick),
/// so among replicas exactly one fires it; `None` when another already did.
pub async fn fire(
    db: &Db,
    row: &triggers::Model,
    tick: Option<chrono::DateTime<chrono::Utc>>,
    input: Value,
) -> Result<Option<entity::executions::Model>> {
    use sea_orm::EntityTrait;
    let scope = Scope::new(row.tenant_id.clone(), row.environment);
    let tx = db.begin_write().await?;
    let start = super::executions::StartExecution {
        agent: row.agent_slug.clone(),
        input,
        session_id: None,
        trigger_id: Some(row.id),
    };
    let execution =
        super::executions::create_in(&tx, &scope, start, super::executions::ExecutionStatus::Queued).await?;
    if let Some(tick) = tick {
        let claimed = entity::trigger_firings::Entity::insert(entity::trigger_firings::ActiveModel {
            id: Set(new_id()),
            tenant_id: Set(row.tenant_id.clone()),
            trigger_id: Set(row.id),
            tick: Set(tick),
            execution_id: Set(execution.id),
        })
        .on_conflict_do_nothing_on([
            entity::trigger_firings::Column::TriggerId,
            entity::trigger_firings::Column::Tick,
        ])
        .exec(&tx)
        .await?;
        if matches!(claimed, sea_orm::TryInsertResult::Conflicted) {
            // Another replica fired this tick: drop ours.
            tx.rollback().await?;
            return Ok(None);
        }
    }
    tx.commit().await?;
    db.wake_live_feed();
    Ok(Some(execution))
}

pub async fn update(
    db: &Db,
    scope: &StagingScope,
    secret_box: &SecretBox,
    input: UpdateTriggerInput,
) -> Result<triggers::Model> {
    if let Some(agent) = &input.agent {
        validate::slug("agent", agent)?;
    }
    if let Some(config) = &input.config {
        validate::json_object("config", config)?;
    }
    let tx = db.begin_write().await?;
    let row = get(&tx, scope, &input.name).await?;
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
    if input.secret.is_some() && kind != TriggerKind::Webhook {
        return Err(Error::bad_input("only webhook triggers have a `secret`"));
    }
    let sealed = input
        .secret
        .as_ref()
        .map(|secret| seal_secret(secret_box, secret))
        .transpose()?;
    let row = revision::update::<triggers::Entity, _, _>(
        &tx,
        &format!("trigger {:?}", input.name),
        row.id,
        input.expected_revision,
        |active| {
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
            if let Some(sealed) = sealed {
                active.secret_ciphertext = Set(Some(sealed.ciphertext));
                active.secret_nonce = Set(Some(sealed.nonce));
            }
            active.updated_at = Set(now());
        },
    )
    .await?;
    tx.commit().await?;
    Ok(row)
}

pub async fn delete(db: &Db, scope: &StagingScope, name: &str, expected_revision: Option<i64>) -> Result<Uuid> {
    let tx = db.begin_write().await?;
    let row = get(&tx, scope, name).await?;
    revision::delete::<triggers::Entity, _>(&tx, &format!("trigger {name:?}"), row.id, expected_revision).await?;
    tx.commit().await?;
    Ok(row.id)
}

/// Every enabled schedule trigger of every tenant, in both environments (the scheduler's
/// system-level read; each trigger then fires only in its own environment).
pub async fn enabled_schedules(db: &Db) -> Result<Vec<triggers::Model>> {
    Ok(triggers::Entity::find()
        .filter(triggers::Column::Kind.eq(TriggerKind::Schedule.as_str()))
        .filter(triggers::Column::Enabled.eq(true))
        .all(&db.conn)
        .await?)
}

/// The latest tick of `expression` in `(after, now]`, if any.
pub fn latest_tick(
    expression: &str,
    after: chrono::DateTime<chrono::Utc>,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<chrono::DateTime<chrono::Utc>> {
    let cron = croner::Cron::from_str(expression).ok()?;
    let mut latest = None;
    let mut cursor = after;
    for _ in 0..10_000 {
        match cron.find_next_occurrence(&cursor, false) {
            Ok(next) if next <= now => {
                latest = Some(next);
                cursor = next;
            }
            _ => break,
        }
    }
    latest
}
