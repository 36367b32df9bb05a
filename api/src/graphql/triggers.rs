//! Triggers: bound to the environment they live in.

use async_graphql::{Context, Enum, ID, InputObject, Json, Object};
use chrono::{DateTime, Utc};
use entity::triggers;
use serde_json::Value;

use super::agents::Agent;
use super::context::{loader, scope, services, staging};
use super::loaders::AgentBySlug;
use super::{Environment, GqlResult};
use crate::domain::credentials::Secret;
use crate::domain::triggers::{self as domain, CreateTriggerInput as Create, UpdateTriggerInput as Update};

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "crate::domain::triggers::TriggerKind")]
pub enum TriggerKind {
    /// Fires on a cron schedule.
    Schedule,
    /// Fires when its URL is called.
    Webhook,
}

/// A trigger. It fires only in its own environment.
pub struct Trigger(pub triggers::Model);

#[Object]
impl Trigger {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// The environment it lives and fires in.
    async fn environment(&self) -> Environment {
        self.0.environment.into()
    }
    async fn kind(&self) -> GqlResult<TriggerKind> {
        Ok(self.0.kind.parse::<domain::TriggerKind>()?.into())
    }
    /// Cron expression of a schedule trigger.
    async fn schedule(&self) -> Option<&str> {
        self.0.schedule.as_deref()
    }
    async fn config(&self) -> Json<Value> {
        Json(self.0.config.clone())
    }
    async fn enabled(&self) -> bool {
        self.0.enabled
    }
    /// WEBHOOK triggers: the URL to call, with `X-Runflow-Signature: sha256=<hex HMAC-SHA256
    /// of the body with the trigger's secret>`.
    async fn webhook_url(&self, ctx: &Context<'_>) -> Option<String> {
        domain::webhook_url(&services(ctx).public_url, &self.0)
    }
    /// WEBHOOK triggers: whether a signing secret is set (the secret itself is never returned).
    async fn has_secret(&self) -> bool {
        self.0.secret_ciphertext.is_some()
    }
    async fn revision(&self) -> i64 {
        self.0.revision
    }
    /// In production: the release that set this state (its `kind` says when it is a rollback).
    async fn release(&self, ctx: &Context<'_>) -> GqlResult<Option<super::releases::Release>> {
        super::releases::release_of(ctx, self.0.release_id).await
    }

    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
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

#[derive(InputObject)]
pub struct CreateTriggerInput {
    name: String,
    /// Slug of an agent that exists in staging.
    agent: String,
    kind: TriggerKind,
    /// Cron expression; required for SCHEDULE, refused for WEBHOOK.
    schedule: Option<String>,
    config: Option<Json<Value>>,
    #[graphql(default = true)]
    enabled: bool,
    /// WEBHOOK only (required there): the secret that signs calls, 16+ characters. Write-only.
    #[graphql(secret)]
    secret: Option<String>,
}

#[derive(InputObject)]
pub struct UpdateTriggerInput {
    name: String,
    agent: Option<String>,
    schedule: Option<String>,
    config: Option<Json<Value>>,
    enabled: Option<bool>,
    /// WEBHOOK only: a new signing secret. Write-only.
    #[graphql(secret)]
    secret: Option<String>,
    expected_revision: Option<i64>,
}

#[derive(Default)]
pub struct TriggerQuery;

#[Object]
impl TriggerQuery {
    /// Triggers of the environment, by name.
    async fn triggers(&self, ctx: &Context<'_>, environment: Environment) -> GqlResult<Vec<Trigger>> {
        let scope = scope(ctx, environment)?;
        Ok(domain::list(&services(ctx).db, &scope)
            .await?
            .into_iter()
            .map(Trigger)
            .collect())
    }

    /// One trigger; null when it does not exist in the environment.
    async fn trigger(&self, ctx: &Context<'_>, environment: Environment, name: String) -> GqlResult<Option<Trigger>> {
        let scope = scope(ctx, environment)?;
        Ok(domain::find(&services(ctx).db.conn, &scope, &name).await?.map(Trigger))
    }
}

#[derive(Default)]
pub struct TriggerMutation;

#[Object]
impl TriggerMutation {
    async fn create_trigger(
        &self,
        ctx: &Context<'_>,
        environment: Environment,
        input: CreateTriggerInput,
    ) -> GqlResult<Trigger> {
        let scope = staging(ctx, environment)?;
        let input = Create {
            name: input.name,
            agent: input.agent,
            kind: input.kind.into(),
            schedule: input.schedule,
            config: input.config.map(|j| j.0),
            enabled: input.enabled,
            secret: input.secret.map(Secret),
        };
        let services = services(ctx);
        Ok(Trigger(
            domain::create(
                &services.db,
                &scope,
                &services.secret_box,
                &services.trigger_limits,
                input,
            )
            .await?,
        ))
    }

    async fn update_trigger(
        &self,
        ctx: &Context<'_>,
        environment: Environment,
        input: UpdateTriggerInput,
    ) -> GqlResult<Trigger> {
        let scope = staging(ctx, environment)?;
        let input = Update {
            name: input.name,
            agent: input.agent,
            schedule: input.schedule,
            config: input.config.map(|j| j.0),
            enabled: input.enabled,
            secret: input.secret.map(Secret),
            expected_revision: input.expected_revision,
        };
        let services = services(ctx);
        Ok(Trigger(
            domain::update(
                &services.db,
                &scope,
                &services.secret_box,
                &services.trigger_limits,
                input,
            )
            .await?,
        ))
    }

    /// Deletes the staging trigger; returns its id.
    async fn delete_trigger(
        &self,
        ctx: &Context<'_>,
        environment: Environment,
        name: String,
        expected_revision: Option<i64>,
    ) -> GqlResult<ID> {
        let scope = staging(ctx, environment)?;
        Ok(ID(domain::delete(&services(ctx).db, &scope, &name, expected_revision)
            .await?
            .to_string()))
    }
}
