//! Sessions (threads) and their messages, per environment.

use async_graphql::{Context, Enum, ID, Object};

use super::agents::Agent;
use super::context::{loader, scope, scope_in, scoped_id, services};
use super::ids::{self, NodeType};
use super::loaders::AgentInEnvKey;
use super::pagination::{PageArgs, connection_type, parts};
use super::scalars::DateTime;
use super::{Environment, GqlResult};
use crate::domain::sessions as domain;
use crate::error::Optional;

/// A conversation with an agent.
pub struct Session(pub domain::Session);

connection_type!(SessionConnection, SessionEdge, Session, "sessions");
connection_type!(MessageConnection, MessageEdge, Message, "messages");

/// A conversation (thread) with an agent in one environment.
#[Object]
impl Session {
    /// Global id of the session.
    pub(crate) async fn id(&self) -> ID {
        ids::encode(NodeType::Session, self.0.environment, self.0.id)
    }
    /// The environment it belongs to.
    async fn environment(&self) -> Environment {
        self.0.environment.into()
    }
    /// A title (may be empty).
    async fn title(&self) -> &str {
        &self.0.title
    }
    /// When it was created.
    async fn created_at(&self) -> DateTime {
        self.0.created_at.into()
    }
    /// When the last message was added.
    async fn updated_at(&self) -> DateTime {
        self.0.updated_at.into()
    }
    /// The agent it talks to, as it exists in the session's environment (null if none or removed).
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
        #[graphql(desc = "Page size from the start (default 20, at most 100).")] first: Option<i32>,
        #[graphql(desc = "Return the messages after this cursor.")] after: Option<String>,
        #[graphql(desc = "Page size from the end (at most 100).")] last: Option<i32>,
        #[graphql(desc = "Return the messages before this cursor.")] before: Option<String>,
    ) -> GqlResult<MessageConnection> {
        let scope = scope_in(ctx, self.0.environment)?;
        let page = PageArgs::new(first, after, last, before).request(ctx)?;
        let messages = domain::messages(&services(ctx).db, &scope, self.0.id, &page).await?;
        Ok(MessageConnection(parts(messages, |m| m.id.to_string(), Message)))
    }
}

/// Who wrote a message.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "crate::domain::sessions::MessageRole")]
pub enum MessageRole {
    /// The person talking to the agent.
    User,
    /// The agent (the model's reply).
    Assistant,
    /// Instructions set by the agent's code.
    System,
    /// The result of a tool call.
    Tool,
}

/// One message of a session.
pub struct Message(pub domain::Message);

/// One message of a session.
#[Object]
impl Message {
    /// Global id of the message.
    pub(crate) async fn id(&self) -> ID {
        ids::encode(NodeType::Message, self.0.environment, self.0.id)
    }
    /// Who wrote it.
    async fn role(&self) -> MessageRole {
        self.0.role.into()
    }
    /// The text.
    async fn content(&self) -> &str {
        &self.0.content
    }
    /// When it was added.
    async fn created_at(&self) -> DateTime {
        self.0.created_at.into()
    }
}

#[derive(Default)]
pub struct SessionQuery;

#[Object]
impl SessionQuery {
    /// Sessions of the environment, newest first.
    #[allow(clippy::too_many_arguments)]
    async fn sessions(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The environment to list.")] environment: Environment,
        #[graphql(desc = "Only sessions of this agent (slug).")] agent: Option<String>,
        #[graphql(desc = "Page size from the start (default 20, at most 100).")] first: Option<i32>,
        #[graphql(desc = "Return the sessions after this cursor.")] after: Option<String>,
        #[graphql(desc = "Page size from the end (at most 100).")] last: Option<i32>,
        #[graphql(desc = "Return the sessions before this cursor.")] before: Option<String>,
    ) -> GqlResult<SessionConnection> {
        let scope = scope(ctx, environment)?;
        let page = PageArgs::new(first, after, last, before).request(ctx)?;
        let sessions = domain::list(&services(ctx).db, &scope, agent.as_deref(), &page).await?;
        Ok(SessionConnection(parts(sessions, |s| s.id.to_string(), Session)))
    }

    /// One session; null when it does not exist in the environment.
    async fn session(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The environment to look in.")] environment: Environment,
        #[graphql(desc = "The session's global id (the bare UUID the runtime API returns works too).")] id: ID,
    ) -> GqlResult<Option<Session>> {
        let Some((scope, id)) = scoped_id(ctx, environment, &id, NodeType::Session)? else {
            return Ok(None);
        };
        Ok(domain::get(&services(ctx).db, &scope, id)
            .await
            .optional()?
            .map(Session))
    }
}
