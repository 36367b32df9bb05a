//! Sessions (threads) and their messages, per environment.

use entity::{session_messages, sessions};
use sea_orm::{ColumnTrait, Order, QueryFilter, Set};
use uuid::Uuid;

use super::events::{self, NewEvent, Topic};
use super::pagination::{self, Page, PageRequest};
use super::{agents, new_id, now, validate};
use crate::db::Db;
use crate::error::{Error, Result};
use crate::scope::{InsertInto, Scope, UpdateIn};

pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;

pub async fn create(db: &Db, scope: &Scope, agent: Option<&str>, title: &str) -> Result<sessions::Model> {
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
    Ok(session)
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

pub async fn get(db: &Db, scope: &Scope, id: Uuid) -> Result<sessions::Model> {
    scope
        .select::<sessions::Entity>()
        .filter(sessions::Column::Id.eq(id))
        .one(&db.conn)
        .await?
        .ok_or_else(|| Error::not_found(format!("session {id} in {}", scope.environment)))
}

/// Appends a message; the session's `updated_at` moves with it, in one transaction.
pub async fn add_message(
    db: &Db,
    scope: &Scope,
    session_id: Uuid,
    role: &str,
    content: &str,
) -> Result<session_messages::Model> {
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
    Ok(message)
}

/// Sessions of the environment, newest first, optionally of one agent.
pub async fn list(db: &Db, scope: &Scope, agent: Option<&str>, page: &PageRequest) -> Result<Page<sessions::Model>> {
    let mut select = scope.select::<sessions::Entity>();
    if let Some(slug) = agent {
        let agent_id = agents::find(&db.conn, scope, slug)
            .await?
            .map(|a| a.agent.id)
            .unwrap_or_else(Uuid::nil);
        select = select.filter(sessions::Column::AgentId.eq(agent_id));
    }
    pagination::fetch(&db.conn, select, sessions::Column::Id, page, Order::Desc).await
}

/// Messages of a session, oldest first.
pub async fn messages(
    db: &Db,
    scope: &Scope,
    session_id: Uuid,
    page: &PageRequest,
) -> Result<Page<session_messages::Model>> {
    let select = scope
        .select::<session_messages::Entity>()
        .filter(session_messages::Column::SessionId.eq(session_id));
    pagination::fetch(&db.conn, select, session_messages::Column::Id, page, Order::Asc).await
}
