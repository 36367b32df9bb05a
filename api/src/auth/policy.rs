//! Who may do what: the one policy every transport asks.
//!
//! - **GraphQL** (HTTP, WebSocket, server-sent events): [`ROOT_FIELDS`] names the role each
//!   root field of `Query`, `Mutation` and `Subscription` needs; [`authorize_field`] applies
//!   it (called by [`crate::graphql::access`] on every root field before anything runs), and
//!   [`may_use_graphql`] decides whether a WebSocket connection is acknowledged. A test proves
//!   the table names every root field of the served schema and nothing else, so a name it
//!   lacks is no field at all: it needs [`unknown_field_role`] and validation then refuses it.
//! - **Runtime API**: [`runtime_api`] (runtime tokens only; what a run's own token may touch
//!   is then decided by [`super::capability`]).
//! - **Agent endpoints**: [`may_run_agent`].
//!
//! A runtime token is a different kind of caller ([`ActorKind::Runtime`]), not a role: it never
//! passes a GraphQL check, and a person's token never passes the runtime API's.

use entity::Environment;

use super::{Actor, ActorKind, Role};
use crate::error::{Error, Result};

/// The root types of the GraphQL schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Root {
    Query,
    Mutation,
    Subscription,
}

use Role::{Admin, Developer, Publisher, Viewer};
use Root::{Mutation, Query, Subscription};

/// The role each root field needs: one entry per field of the schema's root types.
pub const ROOT_FIELDS: &[(Root, &str, Role)] = &[
    // Reads: any person of the tenant.
    (Query, "node", Viewer),
    (Query, "nodes", Viewer),
    (Query, "viewer", Viewer),
    (Query, "agents", Viewer),
    (Query, "agent", Viewer),
    (Query, "prompts", Viewer),
    (Query, "prompt", Viewer),
    (Query, "pendingChanges", Viewer),
    (Query, "publishPlan", Viewer),
    (Query, "releases", Viewer),
    (Query, "release", Viewer),
    (Query, "connectors", Viewer),
    (Query, "connector", Viewer),
    (Query, "triggers", Viewer),
    (Query, "trigger", Viewer),
    (Query, "executions", Viewer),
    (Query, "execution", Viewer),
    (Query, "sessions", Viewer),
    (Query, "session", Viewer),
    (Query, "traces", Viewer),
    (Query, "trace", Viewer),
    (Query, "memoryEntries", Viewer),
    (Query, "credentials", Viewer),
    (Query, "knowledgeBases", Viewer),
    (Query, "llmProviders", Viewer),
    (Query, "dataSources", Viewer),
    (Query, "settings", Viewer),
    (Query, "releaseRequests", Viewer),
    (Query, "releaseRequest", Viewer),
    (Query, "scheduledReleases", Viewer),
    // Who did what: admins only.
    (Query, "auditLog", Admin),
    // Webhook endpoints: their URLs often carry a receiver's credentials.
    (Query, "webhookEndpoints", Admin),
    (Subscription, "executionEvents", Viewer),
    (Subscription, "sessionEvents", Viewer),
    (Subscription, "traceEvents", Viewer),
    (Subscription, "releaseEvents", Viewer),
    (Subscription, "releaseRequestEvents", Viewer),
    // Edits of staging.
    (Mutation, "deployAgent", Developer),
    (Mutation, "updateAgent", Developer),
    (Mutation, "deleteAgent", Developer),
    (Mutation, "savePromptDraft", Developer),
    (Mutation, "deletePrompt", Developer),
    (Mutation, "createRuntimeToken", Developer),
    (Mutation, "createConnector", Developer),
    (Mutation, "updateConnector", Developer),
    (Mutation, "deleteConnector", Developer),
    (Mutation, "createConnectorResource", Developer),
    (Mutation, "updateConnectorResource", Developer),
    (Mutation, "deleteConnectorResource", Developer),
    (Mutation, "createTrigger", Developer),
    (Mutation, "updateTrigger", Developer),
    (Mutation, "deleteTrigger", Developer),
    (Mutation, "cancelExecution", Developer),
    // Asking for a release is proposing, not publishing.
    (Mutation, "requestRelease", Developer),
    // The one way production changes.
    (Mutation, "publish", Publisher),
    (Mutation, "approveReleaseRequest", Publisher),
    (Mutation, "rejectReleaseRequest", Publisher),
    (Mutation, "scheduleRelease", Publisher),
    (Mutation, "rescheduleRelease", Publisher),
    (Mutation, "cancelScheduledRelease", Publisher),
    // Tenant settings (required approvals) govern every publish: admins only.
    (Mutation, "updateSettings", Admin),
    // Outgoing webhooks send production's events out of the system: admins only.
    (Mutation, "createWebhookEndpoint", Admin),
    (Mutation, "updateWebhookEndpoint", Admin),
    (Mutation, "deleteWebhookEndpoint", Admin),
    (Mutation, "testWebhookEndpoint", Admin),
    (Mutation, "redeliverWebhook", Admin),
    // Shared resources affect production immediately: admins only.
    (Mutation, "createCredential", Admin),
    (Mutation, "rotateCredential", Admin),
    (Mutation, "deleteCredential", Admin),
    (Mutation, "createKnowledgeBase", Admin),
    (Mutation, "updateKnowledgeBase", Admin),
    (Mutation, "deleteKnowledgeBase", Admin),
    (Mutation, "createLlmProvider", Admin),
    (Mutation, "updateLlmProvider", Admin),
    (Mutation, "deleteLlmProvider", Admin),
    (Mutation, "createDataSource", Admin),
    (Mutation, "updateDataSource", Admin),
    (Mutation, "deleteDataSource", Admin),
];

/// The role a root field needs.
pub fn required_role(root: Root, field: &str) -> Role {
    ROOT_FIELDS
        .iter()
        .find(|(r, name, _)| *r == root && *name == field)
        .map_or_else(|| unknown_field_role(root), |(_, _, role)| *role)
}

/// For a name the table lacks, which (by the test) is no field of the schema: the floor of its
/// root type (the same answer for a field that does not exist and one that does, so a caller
/// below the floor learns nothing; a caller at the floor gets the validation error).
pub fn unknown_field_role(root: Root) -> Role {
    match root {
        Query | Subscription => Role::Viewer,
        Mutation => Role::Developer,
    }
}

/// Whether `role` may read webhook endpoints and deliveries (also through `node`).
pub fn may_read_webhooks(role: Role) -> bool {
    role >= required_role(Root::Query, "webhookEndpoints")
}

/// Whether `role` may read the audit log (also through `node`).
pub fn may_read_audit(role: Role) -> bool {
    role >= required_role(Root::Query, "auditLog")
}

/// The role the GraphQL API needs at all (every read).
pub const GRAPHQL_ROLE: Role = Role::Viewer;

/// The role people need to run agents through the agent endpoints.
pub const RUN_AGENTS_ROLE: Role = Role::Developer;

/// The person's role, or FORBIDDEN naming what `what` needs.
fn person_with(actor: &Actor, required: Role, what: &str) -> Result<()> {
    match actor.kind() {
        ActorKind::Person(role) if role >= required => Ok(()),
        kind => Err(Error::Forbidden(format!(
            "{what} needs the {required} role; your token has the {kind} role"
        ))),
    }
}

/// May `actor` run root field `field` of `root`? (Introspection fields are free.)
pub fn authorize_field(actor: &Actor, root: Root, field: &str) -> Result<()> {
    if field.starts_with("__") {
        return Ok(());
    }
    let required = required_role(root, field);
    person_with(actor, required, &format!("`{field}`"))
}

/// May `actor` use the GraphQL API at all (a WebSocket connection is acknowledged)?
pub fn may_use_graphql(actor: &Actor) -> bool {
    matches!(actor.kind(), ActorKind::Person(role) if role >= GRAPHQL_ROLE)
}

/// The runtime API takes runtime tokens only: the environment the caller reports to.
pub fn runtime_api(actor: &Actor) -> Result<Environment> {
    match actor.kind() {
        ActorKind::Runtime(environment) => Ok(environment),
        ActorKind::Person(_) => Err(Error::Forbidden(
            "the runtime API takes runtime tokens (`runflow token --role runtime --environment ...`)".into(),
        )),
    }
}

/// The agent endpoints of `environment`: a runtime token of that environment (a run's token
/// starts a child of its run), or a person with [`RUN_AGENTS_ROLE`].
pub fn may_run_agent(actor: &Actor, environment: Environment) -> Result<()> {
    match actor.kind() {
        ActorKind::Runtime(own) if own != environment => Err(Error::Forbidden(format!(
            "this runtime token is for {own}, not {environment}"
        ))),
        ActorKind::Runtime(_) => Ok(()),
        ActorKind::Person(role) if role < RUN_AGENTS_ROLE => Err(Error::Forbidden(format!(
            "running agents needs the {RUN_AGENTS_ROLE} role; your token has {role}"
        ))),
        ActorKind::Person(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn actor(kind: ActorKind) -> Actor {
        Actor::new("s".into(), "t".into(), kind, 0)
    }

    #[test]
    fn the_table_names_each_field_once() {
        let mut seen = HashSet::new();
        for (root, field, _) in ROOT_FIELDS {
            assert!(seen.insert((root, field)), "{root:?}.{field} is listed twice");
        }
    }

    #[test]
    fn a_runtime_is_not_a_role() {
        let runtime = actor(ActorKind::Runtime(Environment::Staging));
        assert!(!may_use_graphql(&runtime));
        assert!(authorize_field(&runtime, Query, "agents").is_err());
        assert!(runtime_api(&runtime).is_ok());
        assert!(may_run_agent(&runtime, Environment::Staging).is_ok());
        assert!(may_run_agent(&runtime, Environment::Production).is_err());
        let admin = actor(ActorKind::Person(Admin));
        assert!(may_use_graphql(&admin));
        assert!(runtime_api(&admin).is_err());
        assert!(authorize_field(&admin, Mutation, "publish").is_ok());
        let viewer = actor(ActorKind::Person(Viewer));
        assert!(authorize_field(&viewer, Mutation, "deployAgent").is_err());
        assert!(may_run_agent(&viewer, Environment::Staging).is_err());
        assert!(authorize_field(&viewer, Query, "__schema").is_ok());
        // A name the table lacks (no field of the schema) needs the floor of its root type.
        assert!(authorize_field(&viewer, Query, "noSuchField").is_ok());
        assert!(authorize_field(&viewer, Mutation, "rollback").is_err());
        assert!(authorize_field(&runtime, Query, "noSuchField").is_err());
    }
}
