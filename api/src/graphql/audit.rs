//! The audit log over GraphQL: the Mutation root that records every change ([`Audited`]), and
//! the `auditLog` query (admins only, see [`crate::auth::policy::required_role_for_query`]).
//!
//! [`Audited`] is the one place entries are prepared: for every root mutation field it
//! reads the record's non-secret summary before the operation
//! ([`crate::domain::audit::state`]), and runs the field with a [`domain::Pending`] entry, so
//! a mutation added later is audited without anyone remembering to. The operation's first
//! commit ([`crate::db::Db::commit`]) inserts the entry in the same transaction as the
//! change, with the summary after it: an entry that cannot be stored rolls the change back
//! and fails the mutation. After the field returns, [`domain::finish`] adds the returned id
//! (`resultId`), or writes the entry of an operation that succeeded without committing
//! anything (failing the field if it cannot). Arguments the schema marks `#[graphql(secret)]`
//! are replaced by [`REDACTED`] before anything is stored, so secrets never reach the log
//! (a record kind that [`crate::domain::audit::state::state_of`] does not know gets no
//! summaries).

use std::borrow::Cow;
use std::future::Future;

use async_graphql::parser::types::Field;
use async_graphql::registry::{MetaType, Registry};
use async_graphql::resolver_utils::ContainerType;
use async_graphql::{
    Context, ContextSelectionSet, ID, InputObject, Json, Name, Object, ObjectType, OutputType, Positioned,
    ServerResult, Value as GqlValue, Variables,
};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::context::{scope, services};
use super::ids::{self, NodeType};
use super::pagination::{PageArgs, connection_type, parts};
use super::viewer::Role;
use super::{Environment, GqlResult};
use crate::auth::Actor;
use crate::domain::audit::state::RecordRef;
use crate::domain::audit::{self as domain, AuditFilter, NewAuditEntry, REDACTED};
use crate::services::Services;

/// Longest string kept verbatim in a summary; longer ones are replaced by their length.
const MAX_SUMMARY_STRING: usize = 256;
/// Most items of a list kept in a summary.
const MAX_SUMMARY_ITEMS: usize = 50;

// ---------------------------------------------------------------------------------------
// Recording
// ---------------------------------------------------------------------------------------

/// The schema's Mutation root: `M` (the merged mutation fields) with every root field run
/// through [`audited`]. It is `M` to the schema (same name, same fields): only the root
/// mutation fields pass through here, so queries and nested fields run with no audit hook.
pub struct Audited<M>(pub M);

impl<M: ObjectType> OutputType for Audited<M> {
    fn type_name() -> Cow<'static, str> {
        M::type_name()
    }

    fn create_type_info(registry: &mut Registry) -> String {
        M::create_type_info(registry)
    }

    async fn resolve(&self, ctx: &ContextSelectionSet<'_>, _field: &Positioned<Field>) -> ServerResult<GqlValue> {
        // Only reached if the root type were selected as a field; root fields run one by one.
        async_graphql::resolver_utils::resolve_container_serial(ctx, self).await
    }
}

impl<M: ObjectType> ContainerType for Audited<M> {
    async fn resolve_field(&self, ctx: &Context<'_>) -> ServerResult<Option<GqlValue>> {
        audited(ctx, self.0.resolve_field(ctx)).await
    }
}

impl<M: ObjectType> ObjectType for Audited<M> {}

/// Runs one root mutation field (`field`, the resolver's future) with its audit entry pending.
async fn audited<F>(ctx: &Context<'_>, field: F) -> ServerResult<Option<GqlValue>>
where
    F: Future<Output = ServerResult<Option<GqlValue>>> + Send,
{
    let caller = match (ctx.data_opt::<Actor>(), ctx.data_opt::<Services>()) {
        (Some(actor), Some(services)) => Some((actor, services)),
        _ => None,
    };
    let Some((actor, services)) = caller else {
        return field.await;
    };
    let node = &ctx.item.node;
    let name = node.name.node.to_string();
    let arguments = arguments(&ctx.schema_env.registry, &name, node, &ctx.query_env.variables);
    let target = target(&name, &arguments);
    // The record as it was: read before the operation runs (a create finds nothing).
    let before = state(services, actor, &target, &target.record).await;
    let mut record = target.record.clone();
    if record.id.is_none() && record.key.is_none() && target.creates {
        // A create that names no key: the caller's newest record of the kind, read in
        // the transaction that made it.
        record.newest_by = Some(actor.subject().to_string());
    }
    let pending = domain::Pending::new(actor.clone(), entry(&name, target, arguments, before), record);
    // The operation's first commit writes the entry in its own transaction.
    let result = pending.run(field).await?;
    let result_id = result.as_ref().and_then(result_id);
    if let Err(error) = domain::finish(&services.db, &pending, result_id).await {
        // It committed nothing, and its entry could not be written: no success unaudited.
        let mut error = super::errors::from_domain(&error);
        error.path = vec![async_graphql::PathSegment::Field(name)];
        return Err(error);
    }
    Ok(result)
}

/// What an operation targets: where, which kind of record, which one.
struct Target {
    environment: entity::Environment,
    record: RecordRef,
    /// The key shown in the entry: slug, name, `connector/key`, or the id argument.
    display_key: Option<String>,
    /// Whether the operation creates the record (found afterwards as the caller's newest).
    creates: bool,
}

fn target(action: &str, arguments: &Map<String, Value>) -> Target {
    let environment = match arguments.get("environment") {
        Some(Value::String(env)) if env == "PRODUCTION" => entity::Environment::Production,
        _ => entity::Environment::Staging,
    };
    let input = arguments.get("input").and_then(Value::as_object);
    let get = |k: &str| {
        arguments
            .get(k)
            .or_else(|| input.and_then(|i| i.get(k)))
            .and_then(Value::as_str)
    };
    let key = ["slug", "name", "key"]
        .into_iter()
        .find_map(get)
        .map(|key| match get("connector") {
            Some(connector) => format!("{connector}/{key}"),
            None => key.to_string(),
        });
    let id = get("id");
    // `publish` with `at` schedules a release: it creates a scheduled release.
    let scheduled = action == "publish" && input.and_then(|i| i.get("at")).is_some_and(|at| !at.is_null());
    Target {
        environment,
        display_key: key.clone().or_else(|| id.map(str::to_string)),
        creates: scheduled || is_create(action),
        record: RecordRef {
            kind: if scheduled {
                "ScheduledRelease".to_string()
            } else {
                record_kind(action)
            },
            key,
            id: id.and_then(|id| uuid_in(&Value::String(id.to_string()))),
            newest_by: None,
        },
    }
}

/// The kind of record an operation changes, from its name: `createCredential` → `Credential`.
fn record_kind(action: &str) -> String {
    let (verb_end, _) = action
        .char_indices()
        .find(|(_, c)| c.is_ascii_uppercase())
        .unwrap_or((action.len(), ' '));
    match (action, &action[verb_end..]) {
        ("requestRelease", _) => "ReleaseRequest".to_string(),
        ("scheduleRelease" | "rescheduleRelease", _) => "ScheduledRelease".to_string(),
        ("savePromptDraft", _) => "Prompt".to_string(),
        ("redeliverWebhook", _) => "WebhookDelivery".to_string(),
        (_, "") => "Release".to_string(),
        (_, kind) => kind.to_string(),
    }
}

/// Whether the operation creates a record.
fn is_create(action: &str) -> bool {
    ["create", "request", "schedule"].iter().any(|verb| {
        action
            .strip_prefix(verb)
            .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_uppercase()))
    })
}

/// The UUID inside a global id (or a bare UUID).
fn uuid_in(id: &Value) -> Option<uuid::Uuid> {
    let id = id.as_str()?;
    uuid::Uuid::parse_str(id)
        .ok()
        .or_else(|| ids::decode(id).and_then(|g| uuid::Uuid::parse_str(&g.key).ok()))
}

/// The record's summary now; a failure to read it is logged and leaves it out.
async fn state(services: &Services, actor: &Actor, target: &Target, record: &RecordRef) -> Option<Value> {
    let tenant = crate::scope::Tenant::of(actor);
    match domain::state::state_of(&services.db.conn, &tenant, target.environment, record).await {
        Ok(state) => state,
        Err(error) => {
            tracing::warn!(kind = %record.kind, %error, "audit: could not read the record's state");
            None
        }
    }
}

/// The field's arguments with variables substituted and secrets redacted, as JSON.
fn arguments(
    registry: &Registry,
    field: &str,
    node: &async_graphql::parser::types::Field,
    variables: &Variables,
) -> Map<String, Value> {
    let meta = registry
        .types
        .get(registry.mutation_type.as_deref().unwrap_or("Mutation"))
        .and_then(|t| t.field_by_name(field));
    let mut out = Map::new();
    for (name, value) in &node.arguments {
        let value = value
            .node
            .clone()
            .into_const_with(|var: Name| Ok::<_, ()>(variables.get(&var).cloned().unwrap_or(GqlValue::Null)))
            .unwrap_or(GqlValue::Null);
        let input = meta.and_then(|m| m.args.get(name.node.as_str()));
        let value = match input {
            Some(input) if input.is_secret => Value::String(REDACTED.into()),
            Some(input) => redact(registry, &input.ty, value),
            None => summarise(value.into_json().unwrap_or(Value::Null)),
        };
        out.insert(name.node.to_string(), value);
    }
    out
}

/// A value of GraphQL type `ty` as JSON, with secret input fields redacted at any depth.
fn redact(registry: &Registry, ty: &str, value: GqlValue) -> Value {
    let named = ty.trim_matches(|c| c == '[' || c == ']' || c == '!');
    match value {
        GqlValue::List(items) => Value::Array(
            items
                .into_iter()
                .take(MAX_SUMMARY_ITEMS)
                .map(|item| redact(registry, named, item))
                .collect(),
        ),
        GqlValue::Object(fields) => {
            let input_fields = match registry.types.get(named) {
                Some(MetaType::InputObject { input_fields, .. }) => Some(input_fields),
                _ => None,
            };
            let mut out = Map::new();
            for (name, value) in fields {
                let meta = input_fields.and_then(|f| f.get(name.as_str()));
                let value = match meta {
                    Some(meta) if meta.is_secret => Value::String(REDACTED.into()),
                    Some(meta) => redact(registry, &meta.ty, value),
                    // A JSON scalar's content: kept, bounded.
                    None => summarise(value.into_json().unwrap_or(Value::Null)),
                };
                out.insert(name.to_string(), value);
            }
            Value::Object(out)
        }
        other => summarise(other.into_json().unwrap_or(Value::Null)),
    }
}

/// Bounds a value: long strings become their length, long lists are cut.
fn summarise(value: Value) -> Value {
    match value {
        Value::String(text) if text.len() > MAX_SUMMARY_STRING => {
            Value::String(format!("<{} characters>", text.chars().count()))
        }
        Value::Array(items) => Value::Array(items.into_iter().take(MAX_SUMMARY_ITEMS).map(summarise).collect()),
        Value::Object(fields) => Value::Object(fields.into_iter().map(|(k, v)| (k, summarise(v))).collect()),
        other => other,
    }
}

/// The entry of a root mutation field, before it runs: `resultId` and `after` are filled in
/// by [`domain::append_pending`] and [`domain::finish`].
fn entry(action: &str, target: Target, mut arguments: Map<String, Value>, before: Option<Value>) -> NewAuditEntry {
    arguments.remove("environment");
    NewAuditEntry {
        environment: target.environment,
        action: action.to_string(),
        record_kind: target.record.kind,
        record_key: target.display_key,
        summary: json!({ "input": arguments, "resultId": null }),
        before,
        after: None,
    }
}

/// The id of the record a mutation returned, as far as the caller selected it: the result's
/// `id`, a delete's `deletedId`, or the `id` of the first object inside a payload
/// (`deployAgent { agent { id } }`).
fn result_id(result: &GqlValue) -> Option<Value> {
    match result {
        GqlValue::Object(fields) => fields
            .get("id")
            .or_else(|| fields.get("deletedId"))
            .and_then(|id| id.clone().into_json().ok())
            .or_else(|| {
                fields.values().find_map(|v| match v {
                    GqlValue::Object(inner) => inner.get("id").and_then(|id| id.clone().into_json().ok()),
                    _ => None,
                })
            }),
        GqlValue::String(id) => Some(Value::String(id.clone())),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------

/// One change: who made it, when, where and what. Append-only.
pub struct AuditEntry(pub domain::AuditEntry);

/// One change: who made it, when, where and what. Append-only.
#[Object]
impl AuditEntry {
    /// Globally unique, opaque id (entries belong to one environment's log).
    pub(crate) async fn id(&self) -> ID {
        ids::encode(NodeType::AuditEntry, self.0.environment, self.0.id)
    }
    /// When the change was made.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// The environment the operation targeted (shared records are changed with STAGING).
    async fn environment(&self) -> Environment {
        self.0.environment.into()
    }
    /// Who: the subject of the caller's token.
    async fn actor(&self) -> &str {
        &self.0.actor_subject
    }
    /// The caller's role when the change was made (null for a role this server no longer knows).
    async fn actor_role(&self) -> Option<Role> {
        self.0.actor_role.map(Into::into)
    }
    /// The operation, named after the mutation: `deployAgent`, `publish`, `rotateCredential`...
    /// (`scheduledPublish` for the release a scheduled release made, in its scheduler's name).
    async fn action(&self) -> &str {
        &self.0.action
    }
    /// The kind of record changed: `Agent`, `Credential`, `Release`...
    async fn record_kind(&self) -> &str {
        &self.0.record_kind
    }
    /// The record's key (slug or name; `connector/key` for connector resources), when the
    /// operation names one.
    async fn record_key(&self) -> Option<&str> {
        self.0.record_key.as_deref()
    }
    /// What was asked: `input` (the operation's arguments, secrets replaced by `[redacted]`,
    /// long strings by their length) and `resultId` (the id of the record it returned).
    async fn summary(&self) -> Json<Value> {
        Json(self.0.summary.clone())
    }
    /// The record before the change: a summary of non-secret fields (names, revision,
    /// commit, version, flags, state; configuration key names but never their values, never
    /// a secret or a part of one). Null for a create, or when the operation changes no stored
    /// record (`createRuntimeToken`).
    async fn before(&self) -> Option<Json<Value>> {
        self.0.before.clone().map(Json)
    }
    /// The same summary after the change. Null for a delete.
    async fn after(&self) -> Option<Json<Value>> {
        self.0.after.clone().map(Json)
    }
}

connection_type!(AuditEntryConnection, AuditEntryEdge, AuditEntry, "audit entries");

/// Filters of `auditLog`: entries match every filter given.
#[derive(InputObject, Default)]
pub struct AuditLogFilter {
    /// Only changes by this token subject.
    actor: Option<String>,
    /// Only this operation (a mutation name, such as `publish`).
    action: Option<String>,
    /// Only this kind of record (`Agent`, `Credential`...).
    record_kind: Option<String>,
    /// Only this record key (slug or name).
    record_key: Option<String>,
    /// Only changes at or after this time.
    since: Option<DateTime<Utc>>,
    /// Only changes before this time.
    until: Option<DateTime<Utc>>,
}

#[derive(Default)]
pub struct AuditQuery;

#[Object]
impl AuditQuery {
    /// The audit log of the environment, newest first. Admins only. Shared records
    /// (credentials, settings, release requests...) are changed with STAGING, so their
    /// entries are in STAGING's log; publishes and rollbacks are in PRODUCTION's.
    #[allow(clippy::too_many_arguments)]
    async fn audit_log(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Whose log: the environment the changes targeted.")] environment: Environment,
        #[graphql(desc = "Only entries matching every filter given.")] filter: Option<AuditLogFilter>,
        #[graphql(desc = "Page size from the start (default 20, at most 100).")] first: Option<i32>,
        #[graphql(desc = "Return the entries after this cursor.")] after: Option<String>,
        #[graphql(desc = "Page size from the end (at most 100).")] last: Option<i32>,
        #[graphql(desc = "Return the entries before this cursor.")] before: Option<String>,
    ) -> GqlResult<AuditEntryConnection> {
        let scope = scope(ctx, environment)?;
        let request = PageArgs::new(first, after, last, before).request(ctx)?;
        let filter = filter.unwrap_or_default();
        let filter = AuditFilter {
            actor: filter.actor,
            action: filter.action,
            record_kind: filter.record_kind,
            record_key: filter.record_key,
            since: filter.since,
            until: filter.until,
        };
        let page = domain::list(&services(ctx).db, &scope, &filter, &request).await?;
        Ok(AuditEntryConnection(parts(page, |e| e.id.to_string(), AuditEntry)))
    }
}
