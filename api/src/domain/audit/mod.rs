//! The audit log: who changed what, when and where.
//!
//! One entry per successful change, prepared by the one mechanism that sees every change: the
//! GraphQL Mutation root ([`crate::graphql::audit::Audited`]) prepares a [`Pending`] entry for
//! each root mutation field, with the caller's token subject and role, the environment argument,
//! the operation (`action`), the record kind and key, a summary of the input with every
//! argument the schema marks secret replaced by [`REDACTED`], and a non-secret summary of
//! the record before the change ([`state`]). Nothing in the API updates or deletes an entry
//! (append-only); `runflow audit export` writes them as JSON lines.
//!
//! **The entry is written in the transaction that makes the change.** Every write
//! transaction ends in [`Db::commit`](crate::db::Db::commit) (clippy forbids
//! `DatabaseTransaction::commit` anywhere else, `clippy.toml`), which calls
//! [`append_pending`] before committing: the first transaction the operation commits inserts
//! its entry, with the record's summary after the change read inside that same transaction.
//! Both commit, or neither does: an entry that cannot be written rolls the change back and
//! the mutation fails (counted in `runflow_audit_entries_failed_total`). An operation that
//! commits several transactions gets one entry, in the first; one that commits none (refused,
//! invalid) gets none. The pending entry travels in a task-local ([`Pending::run`]), so only
//! transactions committed by the operation's own task see it, never a background task's.
//!
//! Two things happen after the operation returns ([`finish`]): an operation that succeeded
//! without committing anything (`createRuntimeToken` mints a token and stores nothing; a
//! replayed idempotent publish) gets its entry in a transaction of its own, before its result
//! is returned (if that fails, the operation fails and its result is withheld); and the id
//! of the record the operation returned (`summary.resultId`), known only then, is added to
//! the entry by one internal update. That update is the only best-effort part: if it fails,
//! the entry stays, without `resultId`, and an error is logged.
//!
//! Writes reached by mutations all go through [`crate::db::Db::begin_write`] and
//! [`crate::db::Db::commit`]; a single statement on `db.conn` would commit on its own, without
//! the entry, so the domain functions of mutations do not write that way (the webhook ping
//! and redelivery inserts are wrapped in a transaction for this reason).

pub mod state;

use std::future::Future;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use entity::{Environment, audit_entries};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DatabaseTransaction, Order, QueryFilter, QueryOrder, QuerySelect};
use serde_json::Value;
use uuid::Uuid;

use super::pagination::{self, Page, PageRequest};
use super::{new_id, now};
use crate::auth::Actor;
use crate::db::Db;
use crate::error::Result;
use crate::scope::AcrossTenants;
use crate::scope::{Scope, Tenant};

/// What replaces a secret value in a summary.
pub const REDACTED: &str = "[redacted]";

/// An entry to append.
#[derive(Clone, Debug)]
pub struct NewAuditEntry {
    pub environment: Environment,
    pub action: String,
    pub record_kind: String,
    pub record_key: Option<String>,
    pub summary: Value,
    /// The record before the change ([`state::state_of`]); None for a create.
    pub before: Option<Value>,
    /// The record after the change; None for a delete.
    pub after: Option<Value>,
}

tokio::task_local! {
    /// The entry of the operation this task is running, if any (see [`Pending::run`]).
    static PENDING: Arc<Pending>;
}

/// The audit entry of one operation, waiting for the operation's first commit.
#[derive(Debug)]
pub struct Pending {
    actor: Actor,
    /// What the entry records; `after` is read when it is written.
    entry: Mutex<NewAuditEntry>,
    /// The record whose summary is `after`.
    record: state::RecordRef,
    /// The entry's id once a transaction that wrote it committed.
    written: Mutex<Option<Uuid>>,
}

impl Pending {
    /// An entry for `actor`'s operation; `entry.after` is ignored (read at commit from
    /// `record`).
    pub fn new(actor: Actor, entry: NewAuditEntry, record: state::RecordRef) -> Arc<Pending> {
        Arc::new(Pending {
            actor,
            entry: Mutex::new(entry),
            record,
            written: Mutex::new(None),
        })
    }

    /// Runs `operation` with this entry pending: the first transaction it commits through
    /// [`Db::commit`] writes the entry. Transactions committed by tasks it spawns do not.
    pub async fn run<F: Future>(self: &Arc<Self>, operation: F) -> F::Output {
        PENDING.scope(self.clone(), operation).await
    }

    /// The id of the entry, once committed.
    pub fn written(&self) -> Option<Uuid> {
        self.written.lock().ok().and_then(|written| *written)
    }
}

/// What [`append_pending`] wrote in a transaction, to confirm once it commits.
pub(crate) struct Appended {
    pending: Arc<Pending>,
    id: Uuid,
}

impl Appended {
    /// The transaction committed: the entry is written, later commits add none.
    pub(crate) fn committed(self) {
        if let Ok(mut written) = self.pending.written.lock() {
            *written = Some(self.id);
        }
    }
}

/// Called by [`Db::commit`] just before it commits `tx`, and nowhere else: inserts the
/// pending entry of the current operation into `tx`, with the record's summary after the
/// change read in `tx`, unless there is none or it was written already. A failure fails
/// the commit (the caller drops `tx`, which rolls the change back).
pub(crate) async fn append_pending(tx: &DatabaseTransaction) -> Result<Option<Appended>> {
    let Ok(pending) = PENDING.try_with(Arc::clone) else {
        return Ok(None);
    };
    if pending.written().is_some() {
        return Ok(None);
    }
    let tenant = Tenant::of(&pending.actor);
    let Some(entry) = pending.entry.lock().ok().map(|entry| entry.clone()) else {
        return Err(crate::error::Error::internal(anyhow::anyhow!(
            "audit entry lock poisoned"
        )));
    };
    let after = match state::state_of(tx, &tenant, entry.environment, &pending.record).await {
        Ok(after) => after,
        Err(error) => {
            tracing::warn!(kind = %pending.record.kind, %error, "audit: could not read the record's state");
            None
        }
    };
    let id = new_id();
    let action = entry.action.clone();
    let inserted = insert(tx, &pending.actor, id, NewAuditEntry { after, ..entry }).await;
    if let Err(error) = inserted {
        tracing::error!(%action, tenant = %pending.actor.tenant_id(), %error,
            "audit entry not recorded: the change is rolled back");
        crate::http::metrics::audit_entry_failed();
        return Err(error);
    }
    Ok(Some(Appended { pending, id }))
}

/// After the operation succeeded: writes its entry if no transaction did (the operation
/// committed nothing), in a transaction of its own, with `result_id` in its summary; else
/// adds `result_id` to the written entry (best effort: logged if it fails). An error means
/// the entry could not be written: the caller must not report success.
pub async fn finish(db: &Db, pending: &Arc<Pending>, result_id: Option<Value>) -> Result<()> {
    match pending.written() {
        None => {
            if let Ok(mut entry) = pending.entry.lock()
                && let Value::Object(summary) = &mut entry.summary
            {
                summary.insert("resultId".into(), result_id.unwrap_or(Value::Null));
            }
            pending
                .run(async {
                    let tx = db.begin_write().await?;
                    db.commit(tx).await
                })
                .await
        }
        Some(id) => {
            let Some(result_id) = result_id else { return Ok(()) };
            let Some(mut summary) = pending.entry.lock().ok().map(|entry| entry.summary.clone()) else {
                return Ok(());
            };
            if let Value::Object(fields) = &mut summary {
                fields.insert("resultId".into(), result_id);
            }
            let updated = Tenant::of(&pending.actor)
                .update_many::<audit_entries::Entity>()
                .col_expr(audit_entries::Column::Summary, Expr::value(summary))
                .filter(audit_entries::Column::Id.eq(id))
                .exec(&db.conn)
                .await;
            if let Err(error) = updated {
                tracing::error!(%id, %error, "audit entry left without its result id");
            }
            Ok(())
        }
    }
}

/// Inserts one entry for `actor` into `tx`.
async fn insert(tx: &DatabaseTransaction, actor: &Actor, id: Uuid, entry: NewAuditEntry) -> Result<()> {
    let model = audit_entries::Model {
        id,
        tenant_id: actor.tenant_id().to_string(),
        environment: entry.environment,
        actor_subject: actor.subject().to_string(),
        actor_role: actor.role().as_str().to_string(),
        action: entry.action,
        record_kind: entry.record_kind,
        record_key: entry.record_key,
        summary: entry.summary,
        before_state: entry.before,
        after_state: entry.after,
        created_at: now(),
    };
    let active: audit_entries::ActiveModel = model.into();
    Tenant::of(actor).insert_one(active).exec_without_returning(tx).await?;
    Ok(())
}

/// Filters of [`list`]; every one given must match.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub record_kind: Option<String>,
    pub record_key: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

/// One audit entry, as the domain hands it out.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditEntry {
    pub id: Uuid,
    pub environment: entity::Environment,
    /// The subject of the caller's token.
    pub actor_subject: String,
    /// The caller's role then (None: a role this server no longer knows).
    pub actor_role: Option<crate::auth::Role>,
    /// The operation (`publish`, `rotateCredential`...).
    pub action: String,
    /// The kind of record changed (`Agent`, `Credential`...).
    pub record_kind: String,
    pub record_key: Option<String>,
    /// The operation's input (secrets redacted) and the result's id.
    pub summary: Value,
    /// Non-secret summaries of the record before and after the change.
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub created_at: DateTime<Utc>,
}

impl From<audit_entries::Model> for AuditEntry {
    fn from(row: audit_entries::Model) -> Self {
        AuditEntry {
            actor_role: row.actor_role.parse().ok(),
            id: row.id,
            environment: row.environment,
            actor_subject: row.actor_subject,
            action: row.action,
            record_kind: row.record_kind,
            record_key: row.record_key,
            summary: row.summary,
            before: row.before_state,
            after: row.after_state,
            created_at: row.created_at,
        }
    }
}

/// An entry of the scope by id (None: not there).
pub async fn by_id(db: &Db, scope: &Scope, id: Uuid) -> Result<Option<AuditEntry>> {
    let row = super::lookup::in_scope::<audit_entries::Entity, _>(&db.conn, scope, audit_entries::Column::Id, id);
    Ok(row.await?.map(AuditEntry::from))
}

/// A page of the scope's entries, newest first.
pub async fn list(db: &Db, scope: &Scope, filter: &AuditFilter, request: &PageRequest) -> Result<Page<AuditEntry>> {
    let mut select = scope.select::<audit_entries::Entity>();
    if let Some(actor) = &filter.actor {
        select = select.filter(audit_entries::Column::ActorSubject.eq(actor.as_str()));
    }
    if let Some(action) = &filter.action {
        select = select.filter(audit_entries::Column::Action.eq(action.as_str()));
    }
    if let Some(kind) = &filter.record_kind {
        select = select.filter(audit_entries::Column::RecordKind.eq(kind.as_str()));
    }
    if let Some(key) = &filter.record_key {
        select = select.filter(audit_entries::Column::RecordKey.eq(key.as_str()));
    }
    if let Some(since) = filter.since {
        select = select.filter(audit_entries::Column::CreatedAt.gte(since));
    }
    if let Some(until) = filter.until {
        select = select.filter(audit_entries::Column::CreatedAt.lt(until));
    }
    let page = pagination::fetch(db, select, audit_entries::Column::Id, request, Order::Desc).await?;
    Ok(page.map(AuditEntry::from))
}

/// Every entry (of one tenant, or of all), oldest first, in batches: what `runflow audit
/// export` writes as JSON lines. `write` receives each entry in order.
pub async fn export(
    db: &Db,
    tenant: Option<&Tenant>,
    mut write: impl FnMut(&audit_entries::Model) -> std::io::Result<()>,
) -> anyhow::Result<u64> {
    let mut after = None;
    let mut count = 0;
    loop {
        let mut select = match tenant {
            Some(tenant) => tenant.select::<audit_entries::Entity>(),
            None => AcrossTenants::select::<audit_entries::Entity>(),
        };
        if let Some(after) = after {
            select = select.filter(audit_entries::Column::Id.gt(after));
        }
        let batch = select
            .order_by(audit_entries::Column::Id, Order::Asc)
            .limit(500)
            .all(&db.conn)
            .await?;
        let Some(last) = batch.last() else { return Ok(count) };
        after = Some(last.id);
        for entry in &batch {
            write(entry)?;
            count += 1;
        }
    }
}
