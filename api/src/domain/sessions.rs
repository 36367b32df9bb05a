//! Sessions (threads) and their messages, per environment.

use chrono::{DateTime, Utc};
use entity::{Environment, session_messages, sessions};
use sea_orm::{ColumnTrait, Order, QueryFilter, Set};
use uuid::Uuid;

use super::events::{self, NewEvent, Topic};
use super::pagination::{self, Page, PageRequest};
use super::{agents, new_id, now, validate};
use crate::db::Db;
use crate::error::{Error, Result};
use crate::scope::{Scope, Tenant, TenantWrite};

pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;

/// A session (thread), as the domain hands it out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    pub id: Uuid,
    pub environment: Environment,
    pub agent_id: Option<Uuid>,
    pub title: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<sessions::Model> for Session {
    fn from(row: sessions::Model) -> Self {
        Session {
            id: row.id,
            environment: row.environment,
            agent_id: row.agent_id,
            title: row.title,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

impl Session {
    /// The session as a session event of `environment` describes it.
    pub fn of_event(summary: events::SessionSummary, environment: Environment) -> Session {
        Session {
            id: summary.id,
            environment,
            agent_id: summary.agent_id,
            title: summary.title,
            created_at: summary.created_at,
            updated_at: summary.updated_at,
        }
    }
}

/// A message of a session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub id: Uuid,
    pub environment: Environment,
    pub session_id: Uuid,
    pub role: MessageRole,
    pub content: String,
    pub created_at: DateTime<Utc>,
}

impl TryFrom<session_messages::Model> for Message {
    type Error = Error;

    fn try_from(row: session_messages::Model) -> Result<Self> {
        Ok(Message {
            role: row.role.parse()?,
            id: row.id,
            environment: row.environment,
            session_id: row.session_id,
            content: row.content,
            created_at: row.created_at,
        })
    }
}

impl Message {
    /// The message as a session event of `environment` describes it: without its content
    /// (never part of an event).
    pub fn of_event(summary: events::MessageSummary, environment: Environment) -> Result<Message> {
        Ok(Message {
            role: summary.role.parse()?,
            id: summary.id,
            environment,
            session_id: summary.session_id,
            content: String::new(),
            created_at: summary.created_at,
        })
    }
}

pub async fn create(db: &Db, scope: &Scope, agent: Option<&str>, title: &str) -> Result<Session> {
    validate::string_column("title", title)?;
    let agent_id = match agent {
        Some(slug) => Some(agents::get(&db.conn, scope, slug).await?.agent.id),
        None => None,
    };
    let time = now();
    let tx = db.begin_write().await?;
    let session = sessions::ActiveModel {
        id: Set(new_id()),
        tenant_id: Set(scope.tenant.id().to_string()),
        environment: Set(scope.environment),
        agent_id: Set(agent_id),
        title: Set(title.to_string()),
        created_at: Set(time),
        updated_at: Set(time),
    }
    .insert_into(&scope.tenant, &tx)
    .await?;
    append_event(&tx, scope, &session, None, "created", agent).await?;
    db.commit(tx).await?;
    db.wake_live_feed();
    Ok(session.into())
}

async fn append_event<C: sea_orm::ConnectionTrait>(
    tx: &C,
    scope: &Scope,
    session: &sessions::Model,
    message: Option<&session_messages::Model>,
    kind: &'static str,
    agent_slug: Option<&str>,
) -> Result<()> {
    let event = NewEvent {
        environment: scope.environment,
        topic: Topic::Session,
        kind,
        agent_slug: agent_slug.map(str::to_string),
        execution_id: None,
        session_id: Some(session.id),
        payload: events::session_payload(session, message),
    };
    events::append(tx, &scope.tenant, vec![event]).await?;
    Ok(())
}

/// Who wrote a message (stored lower-case).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageRole {
    User,
    Assistant,
    System,
    Tool,
}

impl MessageRole {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageRole::User => "user",
            MessageRole::Assistant => "assistant",
            MessageRole::System => "system",
            MessageRole::Tool => "tool",
        }
    }
}

impl std::str::FromStr for MessageRole {
    type Err = Error;

    fn from_str(role: &str) -> Result<Self> {
        Ok(match role {
            "user" => MessageRole::User,
            "assistant" => MessageRole::Assistant,
            "system" => MessageRole::System,
            "tool" => MessageRole::Tool,
            other => {
                return Err(Error::bad_input(format!(
                    "message role {other:?} is unknown; use user, assistant, system or tool"
                )));
            }
        })
    }
}

pub async fn get(db: &Db, scope: &Scope, id: Uuid) -> Result<Session> {
    by_id(db, scope, id)
        .await?
        .ok_or_else(|| Error::not_found(format!("session {id} in {}", scope.environment)))
}

/// A session of the scope by id (None: not there).
pub async fn by_id(db: &Db, scope: &Scope, id: Uuid) -> Result<Option<Session>> {
    let row = super::lookup::in_scope::<sessions::Entity, _>(&db.conn, scope, sessions::Column::Id, id);
    Ok(row.await?.map(Session::from))
}

/// Sessions of the tenant by id, in either environment (in no particular order; missing ids are
/// left out): what the DataLoaders batch into.
pub async fn by_ids(db: &Db, tenant: &Tenant, ids: Vec<Uuid>) -> Result<Vec<Session>> {
    let rows = super::lookup::many_in_tenant::<sessions::Entity, _>(&db.conn, tenant, sessions::Column::Id, ids);
    Ok(rows.await?.into_iter().map(Session::from).collect())
}

/// A message of the scope by id (None: not there).
pub async fn message_by_id(db: &Db, scope: &Scope, id: Uuid) -> Result<Option<Message>> {
    let row = super::lookup::in_scope::<session_messages::Entity, _>(&db.conn, scope, session_messages::Column::Id, id);
    row.await?.map(Message::try_from).transpose()
}

/// Appends a message; the session's `updated_at` moves with it, in one transaction.
pub async fn add_message(db: &Db, scope: &Scope, session_id: Uuid, role: &str, content: &str) -> Result<Message> {
    let role = role.parse::<MessageRole>()?.as_str();
    validate::text_size("content", content, MAX_MESSAGE_BYTES)?;
    let tx = db.begin_write().await?;
    let session = scope
        .select::<sessions::Entity>()
        .filter(sessions::Column::Id.eq(session_id))
        .one(&tx)
        .await?
        .ok_or_else(|| Error::not_found(format!("session {session_id} in {}", scope.environment)))?;
    let time = now();
    let message = session_messages::ActiveModel {
        id: Set(new_id()),
        tenant_id: Set(scope.tenant.id().to_string()),
        environment: Set(scope.environment),
        session_id: Set(session.id),
        role: Set(role.to_string()),
        content: Set(content.to_string()),
        created_at: Set(time),
    }
    .insert_into(&scope.tenant, &tx)
    .await?;
    let mut active: sessions::ActiveModel = session.into();
    active.updated_at = Set(time);
    let session = active.update_in(&scope.tenant, &tx).await?;
    append_event(&tx, scope, &session, Some(&message), "message_added", None).await?;
    db.commit(tx).await?;
    db.wake_live_feed();
    message.try_into()
}

/// Sessions of the environment, newest first, optionally of one agent.
pub async fn list(db: &Db, scope: &Scope, agent: Option<&str>, page: &PageRequest) -> Result<Page<Session>> {
    let mut select = scope.select::<sessions::Entity>();
    if let Some(slug) = agent {
        let agent_id = agents::find(&db.conn, scope, slug)
            .await?
            .map(|a| a.agent.id)
            .unwrap_or_else(Uuid::nil);
        select = select.filter(sessions::Column::AgentId.eq(agent_id));
    }
    let page = pagination::fetch(db, select, sessions::Column::Id, page, Order::Desc).await?;
    Ok(page.map(Session::from))
}

/// Messages of a session, oldest first.
pub async fn messages(db: &Db, scope: &Scope, session_id: Uuid, page: &PageRequest) -> Result<Page<Message>> {
    let select = scope
        .select::<session_messages::Entity>()
        .filter(session_messages::Column::SessionId.eq(session_id));
    pagination::fetch(db, select, session_messages::Column::Id, page, Order::Asc)
        .await?
        .try_map(Message::try_from)
}
