//! What the audit log records of a record before and after a change: a short summary built
//! from an allowlist of non-secret fields (names, revisions, commit hashes, versions, flags,
//! states, counts). Never a secret, a ciphertext, a hint of a secret, a configuration value
//! (only its key names) or a webhook URL's path (only its host: some services put the
//! secret in the path).
//!
//! One function per record kind reads the record by what the operation names: its key
//! (slug, name, `connector/key`), or its id (a global id argument), or for a create that
//! names neither, the newest record this subject made. The GraphQL Mutation root
//! ([`crate::graphql::audit::Audited`]) calls [`state_of`] once before the operation; the
//! summary after it is read inside the transaction that commits the change and its entry
//! ([`super::append_pending`]), so a create has no `before`, a delete no `after`.

use entity::{
    Environment, agent_commits, agent_deployments, agents, connector_instances, connector_resources, credentials,
    executions, prompt_versions, prompts, release_items, release_request_reviews, release_requests, releases,
    scheduled_releases, shared_resources, tenant_settings, triggers, webhook_deliveries, webhook_endpoints,
};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Select};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::error::Result;
use crate::scope::{Scope, Tenant};

/// Most release items named in a release's summary.
const MAX_ITEMS: u64 = 50;

/// The record an operation changes, as far as its arguments and result name it.
#[derive(Clone, Debug, Default)]
pub struct RecordRef {
    /// The record kind (`Agent`, `Credential`...), as in the audit entry.
    pub kind: String,
    /// Its key: slug, name, or `connector/key` for a connector's resource.
    pub key: Option<String>,
    /// Its UUID, from a global id argument or the operation's result.
    pub id: Option<Uuid>,
    /// For a create that names neither (release requests, scheduled releases, webhook
    /// endpoints): the newest record this subject made.
    pub newest_by: Option<String>,
}

/// The summary of `record` now, in `environment` (per-environment records) of `tenant`;
/// `None` when it does not exist or the kind keeps no state (runtime tokens).
pub async fn state_of<C: ConnectionTrait>(
    conn: &C,
    tenant: &Tenant,
    environment: Environment,
    record: &RecordRef,
) -> Result<Option<Value>> {
    let scope = tenant.in_env(environment);
    let key = record.key.as_deref();
    Ok(match record.kind.as_str() {
        "Agent" => {
            let select = tenant.select::<agents::Entity>();
            let Some(select) = by_id_or_key(select, record, agents::Column::Id, agents::Column::Slug) else {
                return Ok(None);
            };
            let Some(agent) = select.one(conn).await? else {
                return Ok(None);
            };
            let deployment = scope
                .select::<agent_deployments::Entity>()
                .filter(agent_deployments::Column::AgentId.eq(agent.id))
                .one(conn)
                .await?;
            let deployment = match deployment {
                Some(d) => {
                    let commit = tenant
                        .select::<agent_commits::Entity>()
                        .filter(agent_commits::Column::Id.eq(d.commit_id))
                        .one(conn)
                        .await?;
                    json!({
                        "revision": d.revision,
                        "commit": commit.as_ref().map(|c| short(&c.hash)),
                        "commitSeq": commit.as_ref().map(|c| c.seq),
                        "releaseId": d.release_id,
                    })
                }
                // Not deployed in this environment: the agent does not exist here (a staging
                // delete leaves the shared row while production still runs it).
                None => return Ok(None),
            };
            Some(json!({
                "slug": agent.slug,
                "name": agent.name,
                "revision": agent.revision,
                "deployment": deployment,
            }))
        }
        "Prompt" => {
            let Some(slug) = key else { return Ok(None) };
            let Some(prompt) = scope
                .select::<prompts::Entity>()
                .filter(prompts::Column::Slug.eq(slug))
                .one(conn)
                .await?
            else {
                return Ok(None);
            };
            let version = match prompt.published_version_id {
                Some(id) => tenant
                    .select::<prompt_versions::Entity>()
                    .filter(prompt_versions::Column::Id.eq(id))
                    .one(conn)
                    .await?
                    .map(|v| v.version),
                None => None,
            };
            let draft = prompt.draft_template.as_ref().map(|template| {
                let template = Value::String(template.clone());
                crate::domain::releases::state::fingerprint(&[
                    Some(&template),
                    prompt.draft_variables.as_ref(),
                    prompt.draft_model_settings.as_ref(),
                ])
            });
            Some(json!({
                "slug": prompt.slug,
                "revision": prompt.revision,
                "publishedVersion": version,
                "draftFingerprint": draft,
            }))
        }
        "Release" => {
            let mut select = tenant.select::<releases::Entity>();
            if let Some(id) = record.id {
                select = select.filter(releases::Column::Id.eq(id));
            }
            let Some(release) = select.order_by_desc(releases::Column::Number).one(conn).await? else {
                return Ok(None);
            };
            let items: Vec<Value> = tenant
                .select::<release_items::Entity>()
                .filter(release_items::Column::ReleaseId.eq(release.id))
                .order_by_asc(release_items::Column::ItemId)
                .limit(MAX_ITEMS)
                .all(conn)
                .await?
                .into_iter()
                .map(|item| json!({ "key": item.item_id, "change": item.change }))
                .collect();
            Some(json!({
                "id": release.id,
                "number": release.number,
                "kind": release.kind,
                "rollsBackId": release.rolls_back_id,
                "approvalRequestId": release.approval_request_id,
                "emergencyOverride": release.emergency_override,
                "items": items,
            }))
        }
        "Connector" => {
            let Some(connector) = connector(&scope, record.id, key).one(conn).await? else {
                return Ok(None);
            };
            Some(json!({
                "slug": connector.slug,
                "kind": connector.kind,
                "revision": connector.revision,
                "configKeys": key_names(&connector.config),
                "credentials": connector.credential_refs,
            }))
        }
        "ConnectorResource" => {
            let resource = match (record.id, key.and_then(|k| k.split_once('/'))) {
                (Some(id), _) => {
                    scope
                        .select::<connector_resources::Entity>()
                        .filter(connector_resources::Column::Id.eq(id))
                        .one(conn)
                        .await?
                }
                (None, Some((slug, key))) => {
                    let Some(connector) = connector(&scope, None, Some(slug)).one(conn).await? else {
                        return Ok(None);
                    };
                    scope
                        .select::<connector_resources::Entity>()
                        .filter(connector_resources::Column::InstanceId.eq(connector.id))
                        .filter(connector_resources::Column::Key.eq(key))
                        .one(conn)
                        .await?
                }
                _ => None,
            };
            resource.map(|r| {
                json!({
                    "key": r.key,
                    "revision": r.revision,
                    "configKeys": key_names(&r.config),
                })
            })
        }
        "Trigger" => {
            let select = scope.select::<triggers::Entity>();
            let Some(select) = by_id_or_key(select, record, triggers::Column::Id, triggers::Column::Name) else {
                return Ok(None);
            };
            select.one(conn).await?.map(|t| {
                json!({
                    "name": t.name,
                    "agent": t.agent_slug,
                    "kind": t.kind,
                    "schedule": t.schedule,
                    "enabled": t.enabled,
                    "revision": t.revision,
                    "hasSecret": t.secret_ciphertext.is_some(),
                    "configKeys": key_names(&t.config),
                })
            })
        }
        "Execution" => {
            let Some(id) = record.id.or_else(|| key.and_then(|k| Uuid::parse_str(k).ok())) else {
                return Ok(None);
            };
            scope
                .select::<executions::Entity>()
                .filter(executions::Column::Id.eq(id))
                .one(conn)
                .await?
                .map(|e| json!({ "id": e.id, "status": e.status, "attempt": e.attempt }))
        }
        "Credential" => {
            let select = tenant.select::<credentials::Entity>();
            let Some(select) = by_id_or_key(select, record, credentials::Column::Id, credentials::Column::Name) else {
                return Ok(None);
            };
            // Never the ciphertext, nor the hint (a part of the secret).
            select.one(conn).await?.map(|c| {
                json!({
                    "name": c.name,
                    "kind": c.kind,
                    "revision": c.revision,
                    "rotatedBy": c.rotated_by,
                    "rotatedAt": c.rotated_at,
                })
            })
        }
        "KnowledgeBase" | "LlmProvider" | "DataSource" => {
            let category = match record.kind.as_str() {
                "KnowledgeBase" => "knowledge_base",
                "LlmProvider" => "llm_provider",
                _ => "data_source",
            };
            let select = tenant
                .select::<shared_resources::Entity>()
                .filter(shared_resources::Column::Category.eq(category));
            let Some(select) = by_id_or_key(
                select,
                record,
                shared_resources::Column::Id,
                shared_resources::Column::Name,
            ) else {
                return Ok(None);
            };
            select.one(conn).await?.map(|r| {
                json!({
                    "name": r.name,
                    "kind": r.kind,
                    "revision": r.revision,
                    "configKeys": key_names(&r.config),
                    "credentials": r.credential_refs,
                })
            })
        }
        "Settings" => tenant
            .select::<tenant_settings::Entity>()
            .one(conn)
            .await?
            .map(|s| json!({ "requiredApprovals": s.required_approvals, "revision": s.revision })),
        "ReleaseRequest" => {
            let select = tenant.select::<release_requests::Entity>();
            let Some(select) = by_id_or_newest(
                select,
                record,
                release_requests::Column::Id,
                release_requests::Column::RequestedBy,
            ) else {
                return Ok(None);
            };
            let Some(request) = select.one(conn).await? else {
                return Ok(None);
            };
            let reviews = tenant
                .select::<release_request_reviews::Entity>()
                .filter(release_request_reviews::Column::RequestId.eq(request.id))
                .all(conn)
                .await?;
            let decisions: Vec<Value> = reviews
                .iter()
                .map(|r| json!({ "reviewer": r.reviewer, "decision": r.decision }))
                .collect();
            Some(json!({
                "id": request.id,
                "state": request.state,
                "requestedBy": request.requested_by,
                "all": request.all_items,
                "fingerprint": request.fingerprint,
                "rollbackTo": request.rollback_to,
                "items": item_keys(&request.items),
                "reviews": decisions,
                "releaseId": request.release_id,
            }))
        }
        "ScheduledRelease" => {
            let select = tenant.select::<scheduled_releases::Entity>();
            let Some(select) = by_id_or_newest(
                select,
                record,
                scheduled_releases::Column::Id,
                scheduled_releases::Column::CreatedBy,
            ) else {
                return Ok(None);
            };
            select.one(conn).await?.map(|s| {
                json!({
                    "id": s.id,
                    "state": s.state,
                    "runAt": s.run_at,
                    "revision": s.revision,
                    "items": item_keys(&s.items),
                    "releaseId": s.release_id,
                })
            })
        }
        "WebhookEndpoint" => {
            let select = tenant.select::<webhook_endpoints::Entity>();
            let Some(select) = by_id_or_newest(
                select,
                record,
                webhook_endpoints::Column::Id,
                webhook_endpoints::Column::CreatedBy,
            ) else {
                return Ok(None);
            };
            // The URL's host only (the path may hold a secret), never the signing secret.
            select.one(conn).await?.map(|e| {
                json!({
                    "id": e.id,
                    "host": url_host(&e.url),
                    "eventTypes": e.event_types,
                    "enabled": e.enabled,
                    "revision": e.revision,
                    "failing": e.failing_since.is_some(),
                })
            })
        }
        "WebhookDelivery" => {
            let Some(id) = record.id else { return Ok(None) };
            tenant
                .select::<webhook_deliveries::Entity>()
                .filter(webhook_deliveries::Column::Id.eq(id))
                .one(conn)
                .await?
                .map(|d| {
                    json!({
                        "id": d.id,
                        "eventType": d.event_type,
                        "status": d.status,
                        "attempts": d.attempts,
                    })
                })
        }
        _ => None,
    })
}

/// `select` narrowed to the record: by its id when known, else by its key in `key_column`;
/// `None` when the operation names neither.
fn by_id_or_key<E: EntityTrait>(
    select: Select<E>,
    record: &RecordRef,
    id_column: E::Column,
    key_column: E::Column,
) -> Option<Select<E>> {
    match (record.id, record.key.as_deref()) {
        (Some(id), _) => Some(select.filter(id_column.eq(id))),
        (None, Some(key)) => Some(select.filter(key_column.eq(key))),
        (None, None) => None,
    }
}

/// `select` narrowed to the record: by its id when known, else the newest one that
/// `record.newest_by` made (`by_column`; ids are time-ordered); `None` when neither is known.
fn by_id_or_newest<E: EntityTrait>(
    select: Select<E>,
    record: &RecordRef,
    id_column: E::Column,
    by_column: E::Column,
) -> Option<Select<E>> {
    match (record.id, record.newest_by.as_deref()) {
        (Some(id), _) => Some(select.filter(id_column.eq(id))),
        (None, Some(subject)) => Some(select.filter(by_column.eq(subject)).order_by_desc(id_column)),
        (None, None) => None,
    }
}

fn connector(scope: &Scope, id: Option<Uuid>, slug: Option<&str>) -> Select<connector_instances::Entity> {
    let select = scope.select::<connector_instances::Entity>();
    match (id, slug) {
        (Some(id), _) => select.filter(connector_instances::Column::Id.eq(id)),
        (None, Some(slug)) => select.filter(connector_instances::Column::Slug.eq(slug)),
        // Nothing named: matches nothing.
        (None, None) => select.filter(connector_instances::Column::Id.eq(Uuid::nil())),
    }
}

/// A commit hash, shortened like `git log --oneline`.
fn short(hash: &str) -> String {
    hash.chars().take(12).collect()
}

/// The top-level key names of a configuration object, sorted (its values may be secret).
fn key_names(config: &Value) -> Value {
    match config {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            Value::Array(
                keys.into_iter()
                    .take(MAX_ITEMS as usize)
                    .cloned()
                    .map(Value::String)
                    .collect(),
            )
        }
        _ => Value::Array(vec![]),
    }
}

/// The item keys (`agent:bot`...) and revisions of a release request or scheduled release.
fn item_keys(items: &Value) -> Value {
    let Value::Array(items) = items else {
        return Value::Array(vec![]);
    };
    Value::Array(
        items
            .iter()
            .take(MAX_ITEMS as usize)
            .map(|item| match item {
                Value::Object(map) => {
                    let keep = |k: &str| map.get(k).filter(|v| v.is_string() || v.is_number()).cloned();
                    let mut out = serde_json::Map::new();
                    for field in ["item", "key", "revision", "fingerprint"] {
                        if let Some(value) = keep(field) {
                            out.insert(field.to_string(), value);
                        }
                    }
                    Value::Object(out)
                }
                Value::String(key) => Value::String(key.clone()),
                _ => Value::Null,
            })
            .collect(),
    )
}

/// The host (and port) of a URL, without scheme, credentials, path or query.
fn url_host(url: &str) -> Option<String> {
    reqwest::Url::parse(url).ok().and_then(|u| {
        u.host_str().map(|host| match u.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_webhook_url_keeps_only_its_host() {
        assert_eq!(
            url_host("https://user:pw@hooks.example.com:8443/services/T0/B0/s3cret?token=x").as_deref(),
            Some("hooks.example.com:8443")
        );
        assert_eq!(url_host("not a url"), None);
    }

    #[test]
    fn configuration_values_are_dropped() {
        assert_eq!(
            key_names(&json!({ "url": "https://x", "apiKey": "secret" })),
            json!(["apiKey", "url"])
        );
    }
}
