//! Triggers: each lives in, and fires only in, one environment; it targets one agent there.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use entity::{Environment, triggers};
use sea_orm::{ColumnTrait, ConnectionTrait, QueryFilter, Set};
use serde_json::Value;
use uuid::Uuid;

use super::pagination::{self, Page, PageRequest};
use super::{EnvironmentWrite, agents, new_id, now, revision, validate};
use crate::crypto::{Sealed, SecretBox};
use crate::db::Db;
use crate::domain::credentials::Secret;
use crate::error::{Error, Result};
use crate::scope::{AcrossTenants, Scope, StagingScope, TenantWrite};
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

/// A trigger, as the domain hands it out: its webhook secret is not part of it (only whether
/// one is set).
#[derive(Clone, Debug, PartialEq)]
pub struct Trigger {
    pub id: Uuid,
    pub environment: Environment,
    pub name: String,
    pub agent_slug: String,
    pub kind: TriggerKind,
    /// Cron expression of a schedule trigger.
    pub schedule: Option<String>,
    pub config: Value,
    pub enabled: bool,
    pub revision: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// In production: the release that last set it.
    pub release_id: Option<Uuid>,
    /// Whether a webhook signing secret is set.
    pub has_secret: bool,
}

impl TryFrom<triggers::Model> for Trigger {
    type Error = Error;

    fn try_from(row: triggers::Model) -> Result<Self> {
        Ok(Trigger {
            kind: row.kind.parse()?,
            has_secret: row.secret_ciphertext.is_some(),
            id: row.id,
            environment: row.environment,
            name: row.name,
            agent_slug: row.agent_slug,
            schedule: row.schedule,
            config: row.config,
            enabled: row.enabled,
            revision: row.revision,
            created_at: row.created_at,
            updated_at: row.updated_at,
            release_id: row.release_id,
        })
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

/// Bounds on triggers (from configuration).
#[derive(Clone, Copy, Debug)]
pub struct TriggerLimits {
    /// Shortest interval between two ticks of a schedule.
    pub min_interval: std::time::Duration,
    /// Triggers a tenant may have per environment.
    pub max_triggers: u64,
    /// Firings (schedule and webhook) a tenant may have per minute.
    pub max_firings_per_minute: u64,
    /// How far a webhook call's signed timestamp may be from now.
    pub webhook_tolerance: std::time::Duration,
}

impl Default for TriggerLimits {
    fn default() -> Self {
        TriggerLimits {
            min_interval: std::time::Duration::from_secs(60),
            max_triggers: 100,
            max_firings_per_minute: 60,
            webhook_tolerance: std::time::Duration::from_secs(300),
        }
    }
}

/// Validates a cron expression (5 fields, or 6 with seconds) and that its ticks are at least
/// `min_interval` apart.
pub fn validate_schedule(expression: &str, min_interval: std::time::Duration) -> Result<()> {
    validate::string_column("schedule", expression)?;
    let cron = croner::Cron::from_str(expression).map_err(|error| {
        Error::bad_input(format!(
            "schedule {expression:?} is not a valid cron expression: {error}"
        ))
    })?;
    // Look at the ticks of the coming days: the shortest gap between two.
    let mut cursor = chrono::Utc::now();
    let mut previous: Option<chrono::DateTime<chrono::Utc>> = None;
    let min = chrono::Duration::from_std(min_interval).unwrap_or_else(|_| chrono::Duration::seconds(60));
    for _ in 0..500 {
        let Ok(next) = cron.find_next_occurrence(&cursor, false) else {
            break;
        };
        if let Some(previous) = previous
            && next - previous < min
        {
            return Err(Error::bad_input(format!(
                "schedule {expression:?} fires every {} s; the shortest allowed interval is {} (RUNFLOW_MIN_SCHEDULE_INTERVAL)",
                (next - previous).num_seconds(),
                humantime::format_duration(min_interval)
            )));
        }
        previous = Some(next);
        cursor = next;
    }
    Ok(())
}

fn check_kind_fields(kind: TriggerKind, schedule: &Option<String>, limits: &TriggerLimits) -> Result<()> {
    match (kind, schedule) {
        (TriggerKind::Schedule, None) => Err(Error::bad_input(
            "a schedule trigger needs `schedule`, a cron expression",
        )),
        (TriggerKind::Schedule, Some(expression)) => validate_schedule(expression, limits.min_interval),
        (TriggerKind::Webhook, Some(_)) => Err(Error::bad_input("a webhook trigger has no `schedule`")),
        (TriggerKind::Webhook, None) => Ok(()),
    }
}

/// A page of the triggers of the scope's environment, by name.
pub async fn list(db: &Db, scope: &Scope, page: &PageRequest) -> Result<Page<Trigger>> {
    let select = scope.select::<triggers::Entity>();
    pagination::fetch_by_name(db, select, triggers::Column::Name, page)
        .await?
        .try_map(Trigger::try_from)
}

/// A trigger of the scope by id (None: not there).
pub async fn by_id(db: &Db, scope: &Scope, id: Uuid) -> Result<Option<Trigger>> {
    let row = super::lookup::in_scope::<triggers::Entity, _>(&db.conn, scope, triggers::Column::Id, id);
    row.await?.map(Trigger::try_from).transpose()
}

/// Triggers of the tenant by id, in either environment (in no particular order; missing ids are
/// left out): what the DataLoaders batch into.
pub async fn by_ids(db: &Db, tenant: &crate::scope::Tenant, ids: Vec<Uuid>) -> Result<Vec<Trigger>> {
    let rows = super::lookup::many_in_tenant::<triggers::Entity, _>(&db.conn, tenant, triggers::Column::Id, ids);
    rows.await?.into_iter().map(Trigger::try_from).collect()
}

pub async fn find<C: ConnectionTrait>(db: &C, scope: &Scope, name: &str) -> Result<Option<triggers::Model>> {
    Ok(scope
        .select::<triggers::Entity>()
        .filter(triggers::Column::Name.eq(name))
        .one(db)
        .await?)
}

/// A trigger of the scope by name, as the domain hands it out (None: not there).
pub async fn by_name(db: &Db, scope: &Scope, name: &str) -> Result<Option<Trigger>> {
    find(&db.conn, scope, name).await?.map(Trigger::try_from).transpose()
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
    limits: &TriggerLimits,
    input: CreateTriggerInput,
) -> Result<Trigger> {
    validate::slug("name", &input.name)?;
    validate::slug("agent", &input.agent)?;
    check_kind_fields(input.kind, &input.schedule, limits)?;
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
    crate::domain::quotas::ensure_room(
        &tx,
        scope.tenant(),
        "triggers",
        scope.select::<triggers::Entity>(),
        limits.max_triggers,
        "RUNFLOW_MAX_TRIGGERS",
    )
    .await?;
    let fields = TriggerState {
        agent: input.agent,
        kind: input.kind.as_str().to_string(),
        schedule: input.schedule,
        config,
        enabled: input.enabled,
    };
    let secret = SealedSecret {
        ciphertext: sealed.as_ref().map(|s| s.ciphertext.clone()),
        nonce: sealed.map(|s| s.nonce),
    };
    let row = new_row(scope, &input.name, fields, secret)
        .insert_into(scope.tenant(), &tx)
        .await?;
    db.commit(tx).await?;
    row.try_into()
}

/// A trigger's publishable fields.
#[derive(Clone, Debug)]
pub struct TriggerState {
    pub agent: String,
    pub kind: String,
    pub schedule: Option<String>,
    pub config: Value,
    pub enabled: bool,
}

/// A webhook secret as stored: sealed (both None: no secret).
#[derive(Clone, Debug, Default)]
pub struct SealedSecret {
    pub ciphertext: Option<Vec<u8>>,
    pub nonce: Option<Vec<u8>>,
}

impl SealedSecret {
    pub fn of(row: &triggers::Model) -> SealedSecret {
        SealedSecret {
            ciphertext: row.secret_ciphertext.clone(),
            nonce: row.secret_nonce.clone(),
        }
    }
}

/// A new trigger row of the written environment (a create in staging; in production, a
/// separate trigger bound to production, made by publishing).
fn new_row(
    write: &impl EnvironmentWrite,
    name: &str,
    fields: TriggerState,
    secret: SealedSecret,
) -> triggers::ActiveModel {
    let time = now();
    triggers::ActiveModel {
        id: Set(new_id()),
        tenant_id: Set(write.target().tenant.id().to_string()),
        environment: Set(write.target().environment),
        name: Set(name.to_string()),
        agent_slug: Set(fields.agent),
        kind: Set(fields.kind),
        schedule: Set(fields.schedule),
        config: Set(fields.config),
        enabled: Set(fields.enabled),
        revision: Set(1),
        created_at: Set(time),
        updated_at: Set(time),
        release_id: Set(write.release_id()),
        secret_ciphertext: Set(secret.ciphertext),
        secret_nonce: Set(secret.nonce),
    }
}

/// Makes the written environment's trigger `name` equal `fields` with `secret` (publishing).
pub async fn put<C: ConnectionTrait>(
    db: &C,
    write: &impl EnvironmentWrite,
    name: &str,
    fields: TriggerState,
    secret: SealedSecret,
) -> Result<triggers::Model> {
    let release_id = write.release_id();
    match find(db, write.target(), name).await? {
        Some(row) => {
            revision::update::<triggers::Entity, _, _>(
                db,
                &write.target().tenant,
                &format!("trigger:{name}"),
                row.id,
                None,
                |active| {
                    active.agent_slug = Set(fields.agent);
                    active.kind = Set(fields.kind);
                    active.schedule = Set(fields.schedule);
                    active.config = Set(fields.config);
                    active.enabled = Set(fields.enabled);
                    active.updated_at = Set(now());
                    active.release_id = Set(release_id);
                    active.secret_ciphertext = Set(secret.ciphertext);
                    active.secret_nonce = Set(secret.nonce);
                },
            )
            .await
        }
        None => Ok(new_row(write, name, fields, secret)
            .insert_into(&write.target().tenant, db)
            .await?),
    }
}

/// Removes the trigger from the written environment (a published removal; a staging edit uses
/// [`delete`], which checks the revision).
pub async fn remove<C: ConnectionTrait>(db: &C, write: &impl EnvironmentWrite, name: &str) -> Result<()> {
    if let Some(row) = find(db, write.target(), name).await? {
        write
            .target()
            .tenant
            .delete_many::<triggers::Entity>()
            .filter(triggers::Column::Id.eq(row.id))
            .exec(db)
            .await?;
    }
    Ok(())
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

/// The URL at which a webhook trigger of `tenant` is called.
pub fn webhook_url(public_url: &str, tenant: &crate::scope::Tenant, trigger: &Trigger) -> Option<String> {
    (trigger.kind == TriggerKind::Webhook).then(|| {
        format!(
            "{public_url}/v1/{}/{}/triggers/{}",
            tenant.id(),
            trigger.environment.as_str(),
            trigger.name
        )
    })
}

/// A webhook call as received.
pub struct WebhookCall<'a> {
    /// `X-Runflow-Timestamp`: unix seconds, part of the signed payload.
    pub timestamp: Option<&'a str>,
    /// `X-Runflow-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`.
    pub signature: Option<&'a str>,
    pub body: &'a [u8],
}

/// The payload a webhook signature covers: `<timestamp>.<raw body>`.
pub fn signed_payload(timestamp: &str, body: &[u8]) -> Vec<u8> {
    let mut payload = Vec::with_capacity(timestamp.len() + 1 + body.len());
    payload.extend_from_slice(timestamp.as_bytes());
    payload.push(b'.');
    payload.extend_from_slice(body);
    payload
}

/// Checks a webhook call against its trigger (None when no webhook trigger has that name).
/// Every refusal (unknown trigger, missing, stale or wrong signature) is the same error, after
/// the same work (an HMAC is computed even for an unknown trigger), so callers learn nothing
/// about which triggers exist.
pub fn verify_webhook<'t>(
    secret_box: &SecretBox,
    limits: &TriggerLimits,
    trigger: Option<&'t triggers::Model>,
    call: &WebhookCall<'_>,
) -> Result<&'t triggers::Model> {
    use hmac::{Hmac, Mac};
    let refuse = || {
        Error::Unauthenticated(
            "the webhook call was refused: the trigger does not exist, or X-Runflow-Timestamp / X-Runflow-Signature \
             are missing, outside the tolerance window or do not match"
                .into(),
        )
    };
    let secret = match trigger {
        Some(row) => match (&row.secret_ciphertext, &row.secret_nonce) {
            (Some(ciphertext), Some(nonce)) => Some(
                secret_box
                    .open(&Sealed {
                        ciphertext: ciphertext.clone(),
                        nonce: nonce.clone(),
                    })
                    .map_err(Error::internal)?,
            ),
            _ => None,
        },
        None => None,
    };
    let timestamp = call.timestamp.unwrap_or_default().trim();
    let fresh = timestamp.parse::<i64>().is_ok_and(|sent| {
        let skew = (chrono::Utc::now().timestamp() - sent).unsigned_abs();
        skew <= limits.webhook_tolerance.as_secs()
    });
    let expected = call
        .signature
        .and_then(|h| h.strip_prefix("sha256="))
        .and_then(|h| hex::decode(h.trim()).ok())
        .unwrap_or_default();
    let key = secret
        .as_ref()
        .map_or("runflow: no such webhook trigger", |s| s.as_str());
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).map_err(Error::internal)?;
    mac.update(&signed_payload(timestamp, call.body));
    // Constant-time comparison.
    let matches = mac.verify_slice(&expected).is_ok();
    match trigger {
        Some(row) if matches && fresh && secret.is_some() => Ok(row),
        _ => Err(refuse()),
    }
}

/// Fires a trigger: queues an execution of its agent in the trigger's own environment. For a
/// schedule tick, the tick is claimed in the same transaction (unique per trigger and tick),
/// so among replicas exactly one fires it; `None` when another already did.
///
/// Refused with LIMIT_EXCEEDED when the tenant's triggers already fired
/// `limits.max_firings_per_minute` times in the last minute.
pub async fn fire(
    db: &Db,
    execution_limits: &super::executions::ExecutionLimits,
    limits: &TriggerLimits,
    row: &triggers::Model,
    tick: Option<chrono::DateTime<chrono::Utc>>,
    input: Value,
) -> Result<Option<super::executions::Execution>> {
    use sea_orm::PaginatorTrait;
    let scope = Scope::of_trigger(row);
    let tx = db.begin_write().await?;
    // Counted under the same per-tenant lock as the executions it creates (see `create_in`).
    crate::db::lock_for_update(&tx, &super::executions::active_executions_lock(scope.tenant.id())).await?;
    let recent = scope
        .tenant
        .select::<entity::executions::Entity>()
        .filter(entity::executions::Column::TriggerId.is_not_null())
        .filter(entity::executions::Column::CreatedAt.gte(now() - chrono::Duration::seconds(60)))
        .count(&tx)
        .await?;
    if recent >= limits.max_firings_per_minute {
        return Err(Error::LimitExceeded(format!(
            "the tenant's triggers fired {recent} times in the last minute, the limit (RUNFLOW_MAX_FIRINGS_PER_MINUTE)"
        )));
    }
    let start = super::executions::StartExecution {
        agent: row.agent_slug.clone(),
        input,
        session_id: None,
        trigger_id: Some(row.id),
        parent: None,
    };
    let execution = super::executions::create_in(
        &tx,
        &scope,
        execution_limits,
        start,
        super::executions::ExecutionStatus::Queued,
    )
    .await?;
    if let Some(tick) = tick {
        let claimed = scope
            .tenant
            .insert_one(entity::trigger_firings::ActiveModel {
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
    db.commit(tx).await?;
    db.wake_live_feed();
    Ok(Some(execution.try_into()?))
}

pub async fn update(
    db: &Db,
    scope: &StagingScope,
    secret_box: &SecretBox,
    limits: &TriggerLimits,
    input: UpdateTriggerInput,
) -> Result<Trigger> {
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
        check_kind_fields(kind, &input.schedule, limits)?;
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
        &scope.tenant,
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
    db.commit(tx).await?;
    row.try_into()
}

pub async fn delete(db: &Db, scope: &StagingScope, name: &str, expected_revision: Option<i64>) -> Result<Uuid> {
    let tx = db.begin_write().await?;
    let row = get(&tx, scope, name).await?;
    revision::delete::<triggers::Entity, _>(
        &tx,
        &scope.tenant,
        &format!("trigger {name:?}"),
        row.id,
        expected_revision,
    )
    .await?;
    db.commit(tx).await?;
    Ok(row.id)
}

/// Every enabled schedule trigger of every tenant, in both environments (the scheduler's
/// system-level read; each trigger then fires only in its own environment).
pub async fn enabled_schedules(db: &Db) -> Result<Vec<triggers::Model>> {
    Ok(AcrossTenants::select::<triggers::Entity>()
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
