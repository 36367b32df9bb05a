//! Global object ids: the one place they are made and read.
//!
//! An id is URL-safe base64 (no padding) of `<TypeName>:<ENVIRONMENT or "shared">:<key>`, where
//! the key is the record's UUID (or, for items of releases and pending lists, a composite
//! key). A record that exists per environment therefore has a different id in each
//! environment, and a normalised client cache (Apollo, Relay, urql) never merges them.
//! Clients must treat ids as opaque.

use async_graphql::ID;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use uuid::Uuid;

/// Every type with a global id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NodeType {
    Agent,
    Prompt,
    Connector,
    ConnectorResource,
    Trigger,
    Execution,
    Session,
    Message,
    Trace,
    Span,
    MemoryEntry,
    Commit,
    PromptVersion,
    Release,
    ReleaseItem,
    PendingChange,
    PlannedItem,
    Credential,
    KnowledgeBase,
    LlmProvider,
    DataSource,
    ReleaseRequest,
    ScheduledRelease,
    AuditEntry,
    WebhookEndpoint,
    WebhookDelivery,
}

const ALL: [NodeType; 26] = [
    NodeType::Agent,
    NodeType::Prompt,
    NodeType::Connector,
    NodeType::ConnectorResource,
    NodeType::Trigger,
    NodeType::Execution,
    NodeType::Session,
    NodeType::Message,
    NodeType::Trace,
    NodeType::Span,
    NodeType::MemoryEntry,
    NodeType::Commit,
    NodeType::PromptVersion,
    NodeType::Release,
    NodeType::ReleaseItem,
    NodeType::PendingChange,
    NodeType::PlannedItem,
    NodeType::Credential,
    NodeType::KnowledgeBase,
    NodeType::LlmProvider,
    NodeType::DataSource,
    NodeType::ReleaseRequest,
    NodeType::ScheduledRelease,
    NodeType::AuditEntry,
    NodeType::WebhookEndpoint,
    NodeType::WebhookDelivery,
];

impl NodeType {
    /// The GraphQL type name.
    pub fn name(self) -> &'static str {
        match self {
            NodeType::Agent => "Agent",
            NodeType::Prompt => "Prompt",
            NodeType::Connector => "Connector",
            NodeType::ConnectorResource => "ConnectorResource",
            NodeType::Trigger => "Trigger",
            NodeType::Execution => "Execution",
            NodeType::Session => "Session",
            NodeType::Message => "Message",
            NodeType::Trace => "Trace",
            NodeType::Span => "Span",
            NodeType::MemoryEntry => "MemoryEntry",
            NodeType::Commit => "Commit",
            NodeType::PromptVersion => "PromptVersion",
            NodeType::Release => "Release",
            NodeType::ReleaseItem => "ReleaseItem",
            NodeType::PendingChange => "PendingChange",
            NodeType::PlannedItem => "PlannedItem",
            NodeType::Credential => "Credential",
            NodeType::KnowledgeBase => "KnowledgeBase",
            NodeType::LlmProvider => "LlmProvider",
            NodeType::DataSource => "DataSource",
            NodeType::ReleaseRequest => "ReleaseRequest",
            NodeType::ScheduledRelease => "ScheduledRelease",
            NodeType::AuditEntry => "AuditEntry",
            NodeType::WebhookEndpoint => "WebhookEndpoint",
            NodeType::WebhookDelivery => "WebhookDelivery",
        }
    }

    /// Whether the records exist once per environment (else once per tenant: "shared").
    pub fn per_environment(self) -> bool {
        matches!(
            self,
            NodeType::Agent
                | NodeType::Prompt
                | NodeType::Connector
                | NodeType::ConnectorResource
                | NodeType::Trigger
                | NodeType::Execution
                | NodeType::Session
                | NodeType::Message
                | NodeType::Trace
                | NodeType::Span
                | NodeType::MemoryEntry
                | NodeType::AuditEntry
        )
    }

    fn from_name(name: &str) -> Option<NodeType> {
        ALL.into_iter().find(|t| t.name() == name)
    }
}

const SHARED: &str = "shared";

fn environment_name(environment: entity::Environment) -> &'static str {
    match environment {
        entity::Environment::Staging => "STAGING",
        entity::Environment::Production => "PRODUCTION",
    }
}

/// A decoded global id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GlobalId {
    pub node_type: NodeType,
    /// `None` for shared records.
    pub environment: Option<entity::Environment>,
    pub key: String,
}

impl GlobalId {
    /// Whether the id may be resolved in `environment`: shared records in both, the others
    /// only in their own.
    pub fn visible_in(&self, environment: entity::Environment) -> bool {
        self.environment.is_none_or(|e| e == environment)
    }
}

/// The id of a record of `node_type` with `key`, in `environment` (ignored for shared types).
pub fn encode(node_type: NodeType, environment: entity::Environment, key: impl std::fmt::Display) -> ID {
    let scope = if node_type.per_environment() {
        environment_name(environment)
    } else {
        SHARED
    };
    ID(URL_SAFE_NO_PAD.encode(format!("{}:{scope}:{key}", node_type.name())))
}

/// The id of a shared record.
pub fn encode_shared(node_type: NodeType, key: impl std::fmt::Display) -> ID {
    debug_assert!(!node_type.per_environment());
    ID(URL_SAFE_NO_PAD.encode(format!("{}:{SHARED}:{key}", node_type.name())))
}

/// Reads a global id; `None` for anything this API did not make.
pub fn decode(id: &str) -> Option<GlobalId> {
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(id).ok()?).ok()?;
    let mut parts = text.splitn(3, ':');
    let node_type = NodeType::from_name(parts.next()?)?;
    let scope = parts.next()?;
    let key = parts.next()?.to_string();
    let environment = match (scope, node_type.per_environment()) {
        ("STAGING", true) => Some(entity::Environment::Staging),
        ("PRODUCTION", true) => Some(entity::Environment::Production),
        (SHARED, false) => None,
        _ => return None,
    };
    Some(GlobalId {
        node_type,
        environment,
        key,
    })
}

/// The key of `id` if it is an id of `node_type` visible in `environment`; `None` otherwise
/// (another type, another environment, or not an id), which callers answer as not found.
pub fn key_of(id: &str, node_type: NodeType, environment: entity::Environment) -> Option<String> {
    decode(id)
        .filter(|g| g.node_type == node_type && g.visible_in(environment))
        .map(|g| g.key)
}

/// The UUID of a record of `node_type` from its global id. The bare UUID that the HTTP and
/// runtime APIs return for executions, sessions and traces is accepted as well.
pub fn uuid_of(id: &str, node_type: NodeType, environment: entity::Environment) -> Option<Uuid> {
    if let Ok(uuid) = Uuid::parse_str(id) {
        return Some(uuid);
    }
    key_of(id, node_type, environment).and_then(|key| Uuid::parse_str(&key).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use entity::Environment::{Production, Staging};

    #[test]
    fn ids_differ_per_environment_and_round_trip() {
        let uuid = Uuid::now_v7();
        let staging = encode(NodeType::Agent, Staging, uuid);
        let production = encode(NodeType::Agent, Production, uuid);
        assert_ne!(staging, production);
        assert_eq!(uuid_of(&staging, NodeType::Agent, Staging), Some(uuid));
        assert_eq!(uuid_of(&staging, NodeType::Agent, Production), None);
        assert_eq!(uuid_of(&staging, NodeType::Prompt, Staging), None);
        assert!(!staging.contains('=') && !staging.contains('+') && !staging.contains('/'));
    }

    #[test]
    fn shared_ids_are_the_same_in_both_environments() {
        let uuid = Uuid::now_v7();
        let a = encode(NodeType::Credential, Staging, uuid);
        assert_eq!(a, encode(NodeType::Credential, Production, uuid));
        assert_eq!(uuid_of(&a, NodeType::Credential, Production), Some(uuid));
        assert_eq!(uuid_of(&a, NodeType::Credential, Staging), Some(uuid));
    }

    #[test]
    fn foreign_strings_are_not_ids() {
        for bad in [
            "",
            "!!",
            "QWdlbnQ",
            &URL_SAFE_NO_PAD.encode("Nope:shared:x"),
            &URL_SAFE_NO_PAD.encode("Agent:shared:x"),
        ] {
            assert_eq!(decode(bad), None, "{bad}");
        }
    }
}
