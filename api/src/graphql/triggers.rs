//! Triggers: bound to the environment they live in.

use async_graphql::{Context, Enum, ID, InputObject, Object};

use super::agents::Agent;
use super::context::{loader, scope, services, staging, tenant};
use super::ids::{self, NodeType};
use super::loaders::AgentBySlug;
use super::pagination::{PageArgs, connection_type, parts};
use super::payloads::DeletePayload;
use super::scalars::{DateTime, Json};
use super::{Environment, GqlResult};
use crate::domain::credentials::Secret;
use crate::domain::triggers::{self as domain, CreateTriggerInput as Create, UpdateTriggerInput as Update};

/// How a trigger fires.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "crate::domain::triggers::TriggerKind")]
pub enum TriggerKind {
    /// Fires on a cron schedule.
    Schedule,
    /// Fires when its URL is called.
    Webhook,
}

/// A trigger. It fires only in its own environment.
pub struct Trigger(pub domain::Trigger);

connection_type!(TriggerConnection, TriggerEdge, Trigger, "triggers");

/// A trigger: runs an agent on a schedule or when its webhook is called, only in its own
/// environment.
#[Object]
impl Trigger {
    /// Global id of the trigger in this environment.
    pub(crate) async fn id(&self) -> ID {
        ids::encode(NodeType::Trigger, self.0.environment, self.0.id)
    }
    /// The trigger's unique name in its environment.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// The environment it lives and fires in.
    async fn environment(&self) -> Environment {
        self.0.environment.into()
    }
    /// Schedule or webhook.
    async fn kind(&self) -> TriggerKind {
        self.0.kind.into()
    }
    /// Cron expression of a schedule trigger.
    async fn schedule(&self) -> Option<&str> {
        self.0.schedule.as_deref()
    }
    /// The input the agent gets when the trigger fires, a JSON object.
    async fn config(&self) -> Json {
        Json(self.0.config.clone())
    }
    /// A disabled trigger does not fire.
    async fn enabled(&self) -> bool {
        self.0.enabled
    }
    /// WEBHOOK triggers: the URL to call, with `X-Runflow-Signature: sha256=<hex HMAC-SHA256
    /// of the body with the trigger's secret>`.
    async fn webhook_url(&self, ctx: &Context<'_>) -> GqlResult<Option<String>> {
        Ok(domain::webhook_url(&services(ctx).public_url, &tenant(ctx)?, &self.0))
    }
    /// WEBHOOK triggers: whether a signing secret is set (the secret itself is never returned).
    async fn has_secret(&self) -> bool {
        self.0.has_secret
    }
    /// Changes on every write; pass it as `expectedRevision`.
    async fn revision(&self) -> i64 {
        self.0.revision
    }
    /// In production: the release that set this state (its `kind` says when it is a
    /// rollback). Null in staging.
    async fn release(&self, ctx: &Context<'_>) -> GqlResult<Option<super::releases::Release>> {
        super::releases::release_of(ctx, self.0.release_id).await
    }
    /// When it last changed.
    async fn updated_at(&self) -> DateTime {
        self.0.updated_at.into()
    }
    /// Slug of the agent it runs.
    async fn agent_slug(&self) -> &str {
        &self.0.agent_slug
    }
    /// The agent it runs, in the trigger's environment (null if it is not there).
    async fn agent(&self, ctx: &Context<'_>) -> GqlResult<Option<Agent>> {
        let key = AgentBySlug(self.0.agent_slug.clone(), self.0.environment);
        Ok(loader(ctx)?.load_one(key).await?.map(Agent))
    }
}

/// A new trigger in staging.
#[derive(InputObject)]
pub struct CreateTriggerInput {
    /// Unique name in the environment.
    name: String,
    /// Slug of an agent that exists in staging.
    agent: String,
    /// Schedule or webhook.
    kind: TriggerKind,
    /// Cron expression; required for SCHEDULE, refused for WEBHOOK.
    schedule: Option<String>,
    /// The input the agent gets, a JSON object.
    config: Option<Json>,
    /// Whether it fires.
    #[graphql(default = true)]
    enabled: bool,
    /// WEBHOOK only (required there): the secret that signs calls, 16+ characters. Write-only.
    #[graphql(secret)]
    secret: Option<String>,
}

/// Changes to a staging trigger; omitted fields keep their value.
#[derive(InputObject)]
pub struct UpdateTriggerInput {
    /// The trigger to change.
    name: String,
    /// Slug of another agent (must exist in staging).
    agent: Option<String>,
    /// A new cron expression (SCHEDULE only).
    schedule: Option<String>,
    /// A new input for the agent.
    config: Option<Json>,
    /// Enable or disable it.
    enabled: Option<bool>,
    /// WEBHOOK only: a new signing secret. Write-only.
    #[graphql(secret)]
    secret: Option<String>,
    /// The `revision` you last read; a stale one fails with CONFLICT.
    expected_revision: Option<i64>,
}

#[derive(Default)]
pub struct TriggerQuery;

#[Object]
impl TriggerQuery {
    /// Triggers of the environment, by name.
    async fn triggers(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The environment to list.")] environment: Environment,
        #[graphql(desc = "Page size from the start (default 20, at most 100).")] first: Option<i32>,
        #[graphql(desc = "Return the triggers after this cursor.")] after: Option<String>,
        #[graphql(desc = "Page size from the end (at most 100).")] last: Option<i32>,
        #[graphql(desc = "Return the triggers before this cursor.")] before: Option<String>,
    ) -> GqlResult<TriggerConnection> {
        let scope = scope(ctx, environment)?;
        let page = PageArgs::new(first, after, last, before).request(ctx)?;
        let triggers = domain::list(&services(ctx).db, &scope, &page).await?;
        Ok(TriggerConnection(parts(triggers, |t| t.name.clone(), Trigger)))
    }

    /// One trigger; null when it does not exist in the environment.
    async fn trigger(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The environment to look in.")] environment: Environment,
        #[graphql(desc = "The trigger's name.")] name: String,
    ) -> GqlResult<Option<Trigger>> {
        let scope = scope(ctx, environment)?;
        Ok(domain::by_name(&services(ctx).db, &scope, &name).await?.map(Trigger))
    }
}

impl From<CreateTriggerInput> for Create {
    fn from(input: CreateTriggerInput) -> Self {
        Create {
            name: input.name,
            agent: input.agent,
            kind: input.kind.into(),
            schedule: input.schedule,
            config: input.config.map(|j| j.0),
            enabled: input.enabled,
            secret: input.secret.map(Secret),
        }
    }
}

impl From<UpdateTriggerInput> for Update {
    fn from(input: UpdateTriggerInput) -> Self {
        Update {
            name: input.name,
            agent: input.agent,
            schedule: input.schedule,
            config: input.config.map(|j| j.0),
            enabled: input.enabled,
            secret: input.secret.map(Secret),
            expected_revision: input.expected_revision,
        }
    }
}

#[derive(Default)]
pub struct TriggerMutation;

#[Object]
impl TriggerMutation {
    /// Creates a trigger in staging.
    async fn create_trigger(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Must be STAGING.")] environment: Environment,
        #[graphql(desc = "The new trigger.")] input: CreateTriggerInput,
    ) -> GqlResult<Trigger> {
        let scope = staging(ctx, environment)?;
        let services = services(ctx);
        let (db, secret_box, limits) = (&services.db, &services.secret_box, &services.trigger_limits);
        Ok(Trigger(
            domain::create(db, &scope, secret_box, limits, input.into()).await?,
        ))
    }

    /// Changes a staging trigger.
    async fn update_trigger(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Must be STAGING.")] environment: Environment,
        #[graphql(desc = "The changes.")] input: UpdateTriggerInput,
    ) -> GqlResult<Trigger> {
        let scope = staging(ctx, environment)?;
        let services = services(ctx);
        let (db, secret_box, limits) = (&services.db, &services.secret_box, &services.trigger_limits);
        Ok(Trigger(
            domain::update(db, &scope, secret_box, limits, input.into()).await?,
        ))
    }

    /// Deletes the staging trigger (production keeps it until the removal is published).
    async fn delete_trigger(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Must be STAGING.")] environment: Environment,
        #[graphql(desc = "The trigger to delete.")] name: String,
        #[graphql(desc = "The `revision` you last read; a stale one fails with CONFLICT.")] expected_revision: Option<
            i64,
        >,
    ) -> GqlResult<DeletePayload> {
        let scope = staging(ctx, environment)?;
        let id = domain::delete(&services(ctx).db, &scope, &name, expected_revision).await?;
        Ok(DeletePayload::new(NodeType::Trigger, environment.into(), id))
    }
}
