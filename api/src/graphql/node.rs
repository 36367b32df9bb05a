//! The `Node` interface and the `node`/`nodes` root fields: refetching any cacheable object
//! by its global id (see [`super::ids`]), only inside the caller's tenant and the environment
//! asked for.

use async_graphql::{Context, ID, Interface, Object};
use uuid::Uuid;

use super::agents::{Agent, Commit};
use super::audit::AuditEntry;
use super::connectors::{Connector, ConnectorResource};
use super::context::{loader, scope, services, tenant};
use super::executions::Execution;
use super::governance::{ReleaseRequest, ScheduledRelease, load_request};
use super::ids::{self, GlobalId, NodeType};
use super::loaders::{AgentInEnvKey, ReleaseItemsKey};
use super::memory::MemoryEntry;
use super::prompts::{Prompt, PromptVersion};
use super::releases::{PendingChange, Release, ReleaseItem};
use super::sessions::{Message, Session};
use super::shared::{Credential, DataSource, KnowledgeBase, LlmProvider};
use super::traces::{Span, Trace};
use super::triggers::Trigger;
use super::webhooks::{WebhookDelivery, WebhookEndpoint};
use super::{Environment, GqlResult};
use crate::domain;
use crate::domain::releases as release_domain;
use crate::domain::shared_resources::Category;
use crate::error::Error;

/// The most ids one `nodes` call takes.
pub const MAX_NODES: usize = 100;

/// An object with a global id: cacheable by `__typename` and `id`, and refetchable with
/// `node(environment:, id:)`. A record that exists per environment has a different id in
/// each environment; shared records have one id.
#[derive(Interface)]
#[graphql(field(
    name = "id",
    ty = "ID",
    desc = "Globally unique, opaque id (distinct per environment for per-environment records). \
            Pass it to `node` to refetch the object."
))]
pub enum Node {
    Agent(Agent),
    Prompt(Prompt),
    PromptVersion(PromptVersion),
    Connector(Connector),
    ConnectorResource(ConnectorResource),
    Trigger(Trigger),
    Execution(Execution),
    Session(Session),
    Message(Message),
    Trace(Trace),
    Span(Span),
    MemoryEntry(MemoryEntry),
    Commit(Commit),
    Release(Release),
    ReleaseItem(ReleaseItem),
    PendingChange(PendingChange),
    Credential(Credential),
    KnowledgeBase(KnowledgeBase),
    LlmProvider(LlmProvider),
    DataSource(DataSource),
    ReleaseRequest(ReleaseRequest),
    ScheduledRelease(ScheduledRelease),
    AuditEntry(AuditEntry),
    WebhookEndpoint(WebhookEndpoint),
    WebhookDelivery(WebhookDelivery),
}

fn uuid(key: &str) -> Option<Uuid> {
    Uuid::parse_str(key).ok()
}

/// The record `id` names, if the caller may see it in `environment`.
async fn resolve(ctx: &Context<'_>, environment: Environment, id: &str) -> GqlResult<Option<Node>> {
    let env: entity::Environment = environment.into();
    let Some(GlobalId { node_type, key, .. }) = ids::decode(id).filter(|g| g.visible_in(env)) else {
        return Ok(None);
    };
    let database = &services(ctx).db;
    let db = &database.conn;
    let scope = scope(ctx, environment)?;
    let tenant = tenant(ctx)?;
    if node_type == NodeType::PendingChange {
        let changes = release_domain::pending_changes(db, &tenant).await?;
        return Ok(changes
            .into_iter()
            .find(|c| PendingChange::key_of(c) == key)
            .map(|c| Node::PendingChange(PendingChange(c))));
    }
    let Some(uuid) = uuid(&key) else { return Ok(None) };
    let may_read_webhooks = crate::auth::policy::may_read_webhooks(super::context::actor(ctx)?.role());
    let shared =
        |category: Category| crate::domain::shared_resources::by_id(&services(ctx).db, &tenant, category, uuid);
    Ok(match node_type {
        NodeType::Agent => loader(ctx)?
            .load_one(AgentInEnvKey(uuid, env))
            .await?
            .map(|a| Node::Agent(Agent(a))),
        NodeType::Prompt => domain::prompts::by_id(database, &scope, uuid)
            .await?
            .map(|r| Node::Prompt(Prompt(r))),
        NodeType::Connector => domain::connectors::by_id(database, &scope, uuid)
            .await?
            .map(|r| Node::Connector(Connector(r))),
        NodeType::ConnectorResource => domain::connectors::resource_by_id(database, &scope, uuid)
            .await?
            .map(|r| Node::ConnectorResource(ConnectorResource(r))),
        NodeType::Trigger => domain::triggers::by_id(database, &scope, uuid)
            .await?
            .map(|r| Node::Trigger(Trigger(r))),
        NodeType::Execution => domain::executions::by_id(database, &scope, uuid)
            .await?
            .map(|r| Node::Execution(Execution(r))),
        NodeType::Session => domain::sessions::by_id(database, &scope, uuid)
            .await?
            .map(|r| Node::Session(Session(r))),
        NodeType::Message => domain::sessions::message_by_id(database, &scope, uuid)
            .await?
            .map(|r| Node::Message(Message(r))),
        NodeType::Trace => domain::traces::by_id(database, &scope, uuid)
            .await?
            .map(|r| Node::Trace(Trace(r))),
        NodeType::Span => domain::traces::span_by_id(database, &scope, uuid)
            .await?
            .map(|r| Node::Span(Span(r))),
        NodeType::MemoryEntry => domain::memory::by_id(database, &scope, uuid)
            .await?
            .map(|r| Node::MemoryEntry(MemoryEntry(r))),
        NodeType::Commit => domain::agents::commit_by_id(database, &tenant, uuid)
            .await?
            .map(|r| Node::Commit(Commit(r))),
        NodeType::PromptVersion => domain::prompts::version_by_id(database, &tenant, uuid)
            .await?
            .map(|r| Node::PromptVersion(PromptVersion(r))),
        NodeType::Release => release_domain::by_id(database, &tenant, uuid)
            .await?
            .map(|r| Node::Release(Release(r))),
        NodeType::ReleaseItem => {
            let Some(release_id) = release_domain::release_of_item(database, &tenant, uuid).await? else {
                return Ok(None);
            };
            // Through the loader, so a page of items refetched by id costs one query.
            let items = loader(ctx)?.load_one(ReleaseItemsKey(release_id)).await?;
            items
                .unwrap_or_default()
                .into_iter()
                .find(|i| i.id == uuid)
                .map(|i| Node::ReleaseItem(ReleaseItem(i)))
        }
        NodeType::Credential => domain::credentials::by_id(database, &tenant, uuid)
            .await?
            .map(|r| Node::Credential(Credential(r))),
        NodeType::KnowledgeBase => shared(Category::KnowledgeBase)
            .await?
            .map(|r| Node::KnowledgeBase(KnowledgeBase(r))),
        NodeType::LlmProvider => shared(Category::LlmProvider)
            .await?
            .map(|r| Node::LlmProvider(LlmProvider(r))),
        NodeType::DataSource => shared(Category::DataSource)
            .await?
            .map(|r| Node::DataSource(DataSource(r))),
        NodeType::ReleaseRequest => load_request(ctx, uuid).await?.map(Node::ReleaseRequest),
        NodeType::ScheduledRelease => domain::scheduled_releases::by_id(database, &tenant, uuid)
            .await?
            .map(|r| Node::ScheduledRelease(ScheduledRelease(r))),
        // The audit log is for admins only, through `node` as through `auditLog`.
        NodeType::AuditEntry => {
            if super::context::actor(ctx)?.role() < crate::auth::Role::Admin {
                return Ok(None);
            }
            domain::audit::by_id(database, &scope, uuid)
                .await?
                .map(|r| Node::AuditEntry(AuditEntry(r)))
        }
        // Webhook endpoints and their deliveries are for admins only (see `auth::policy`).
        NodeType::WebhookEndpoint | NodeType::WebhookDelivery if !may_read_webhooks => None,
        NodeType::WebhookEndpoint => domain::webhooks::endpoint_by_id(database, &tenant, uuid)
            .await?
            .map(|r| Node::WebhookEndpoint(WebhookEndpoint(r))),
        NodeType::WebhookDelivery => domain::webhooks::delivery_by_id(database, &tenant, uuid)
            .await?
            .map(|r| Node::WebhookDelivery(WebhookDelivery(r))),
        NodeType::PendingChange | NodeType::PlannedItem => None,
    })
}

#[derive(Default)]
pub struct NodeQuery;

#[Object]
impl NodeQuery {
    /// Refetches any object by its global `id`. Null when it does not exist, is in another
    /// tenant, belongs to the other environment, or the id is not an id of this API.
    async fn node(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The environment to look in; per-environment ids resolve only in their own.")]
        environment: Environment,
        #[graphql(desc = "A global id as returned in any `id` field.")] id: ID,
    ) -> GqlResult<Option<Node>> {
        resolve(ctx, environment, &id).await
    }

    /// Refetches several objects by global id, in the order given; each missing or foreign
    /// id gives null at its position. At most 100 ids.
    async fn nodes(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The environment to look in; per-environment ids resolve only in their own.")]
        environment: Environment,
        #[graphql(desc = "Global ids as returned in `id` fields (at most 100).")] ids: Vec<ID>,
    ) -> GqlResult<Vec<Option<Node>>> {
        if ids.len() > MAX_NODES {
            return Err(Error::bad_input(format!(
                "`ids` holds {} ids; at most {MAX_NODES} are allowed",
                ids.len()
            ))
            .into());
        }
        let mut nodes = Vec::with_capacity(ids.len());
        for id in &ids {
            nodes.push(resolve(ctx, environment, id).await?);
        }
        Ok(nodes)
    }
}
