//! Sessions (threads) and their messages, per environment.

use async_graphql::{Context, ID, Object};
use chrono::{DateTime, Utc};
use entity::{session_messages, sessions};

use super::agents::Agent;
use super::context::{loader, scope, services};
use super::loaders::AgentInEnvKey;
use super::pagination::{RelayConnection, connection, page_request, parse_id};
use super::{Environment, GqlResult};
use crate::domain::sessions as domain;
use crate::error::Error;
use crate::scope::Scope;

pub struct Session(pub sessions::Model);

#[Object]
impl Session {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn environment(&self) -> Environment {
        self.0.environment.into()
    }
    async fn title(&self) -> &str {
        &self.0.title
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// When the last message was added.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    async fn agent(&self, ctx: &Context<'_>) -> GqlResult<Option<Agent>> {
        let Some(agent_id) = self.0.agent_id else {
            return Ok(None);
        };
        Ok(loader(ctx)?
            .load_one(AgentInEnvKey(agent_id, self.0.environment))
            .await?
            .map(Agent))
    }
    /// Messages, oldest first.
    async fn messages(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> GqlResult<RelayConnection<Message>> {
        let scope = Scope::new(self.0.tenant_id.clone(), self.0.environment);
        let page = page_request(first, after)?;
        let messages = domain::messages(&services(ctx).db, &scope, self.0.id, &page).await?;
        Ok(connection(messages, |m| m.id, Message))
    }
}

pub struct Message(pub session_messages::Model);

#[Object]
impl Message {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// Who wrote it: user, assistant, system, tool...
    async fn role(&self) -> &str {
        &self.0.role
    }
    async fn content(&self) -> &str {
        &self.0.content
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

#[derive(Default)]
pub struct SessionQuery;

#[Object]
impl SessionQuery {
    /// Sessions of the environment, newest first.
    async fn sessions(
        &self,
        ctx: &Context<'_>,
        environment: Environment,
        #[graphql(desc = "Only sessions of this agent (slug).")] agent: Option<String>,
        first: Option<i32>,
        after: Option<String>,
    ) -> GqlResult<RelayConnection<Session>> {
        let scope = scope(ctx, environment)?;
        let page = page_request(first, after)?;
        let sessions = domain::list(&services(ctx).db, &scope, agent.as_deref(), &page).await?;
        Ok(connection(sessions, |s| s.id, Session))
    }

    /// One session; null when it does not exist in the environment.
    async fn session(&self, ctx: &Context<'_>, environment: Environment, id: ID) -> GqlResult<Option<Session>> {
        let scope = scope(ctx, environment)?;
        let Ok(id) = parse_id("session", &id) else {
            return Ok(None);
        };
        match domain::get(&services(ctx).db, &scope, id).await {
            Ok(row) => Ok(Some(Session(row))),
            Err(Error::NotFound(_)) => Ok(None),
            Err(other) => Err(other.into()),
        }
    }
}
