//! The GraphQL schema. Resolvers are thin: they turn arguments into domain calls.
//!
//! Cross-cutting rules are extensions, each in one place:
//! - [`access`]: production read-only, authentication and the role policy, checked on the
//!   parsed operation before validation or any resolver;
//! - [`errors`]: every error leaves with a stable `extensions.code`.
//!
//! One module per domain holds its types, queries and mutations.

pub mod access;
mod agents;
pub mod audit;
mod connectors;
pub mod context;
pub mod errors;
mod executions;
pub mod governance;
pub mod loaders;
mod memory;
mod pagination;
mod prompts;
mod releases;
pub use releases::IdempotencyKey;
mod runtime_tokens;
mod sessions;
mod shared;
mod subscriptions;
mod traces;
mod triggers;
mod viewer;

use async_graphql::{Enum, MergedObject, Schema};

use crate::app::Services;
use crate::config::Config;

/// The two environments. Every root field takes one.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(remote = "entity::Environment")]
pub enum Environment {
    Staging,
    Production,
}

#[derive(MergedObject, Default)]
pub struct Query(
    viewer::ViewerQuery,
    agents::AgentQuery,
    prompts::PromptQuery,
    releases::ReleaseQuery,
    connectors::ConnectorQuery,
    triggers::TriggerQuery,
    executions::ExecutionQuery,
    sessions::SessionQuery,
    traces::TraceQuery,
    memory::MemoryQuery,
    shared::SharedQuery,
    audit::AuditQuery,
    governance::GovernanceQuery,
    governance::ScheduleQuery,
);

#[derive(MergedObject, Default)]
pub struct Mutation(
    agents::AgentMutation,
    prompts::PromptMutation,
    releases::ReleaseMutation,
    runtime_tokens::RuntimeTokenMutation,
    connectors::ConnectorMutation,
    triggers::TriggerMutation,
    shared::SharedMutation,
    shared::KnowledgeBaseMutation,
    shared::LlmProviderMutation,
    shared::DataSourceMutation,
    governance::GovernanceMutation,
    governance::ScheduleMutation,
);

/// What resolvers return: domain errors convert with `?` and keep their code (see [`errors`]).
pub type GqlResult<T> = async_graphql::Result<T>;

pub type RunflowSchema = Schema<Query, Mutation, subscriptions::Subscription>;

fn builder() -> async_graphql::SchemaBuilder<Query, Mutation, subscriptions::Subscription> {
    Schema::build(Query::default(), Mutation::default(), subscriptions::Subscription)
}

/// The schema served by the API.
pub fn build_schema(services: Services, config: &Config) -> RunflowSchema {
    builder()
        .data(services)
        .extension(errors::ErrorCodes)
        .extension(access::AccessControl)
        .extension(audit::AuditTrail)
        .limit_depth(config.max_query_depth)
        .limit_complexity(config.max_query_complexity)
        .limit_recursive_depth(32)
        .limit_directives(16)
        .disable_suggestions()
        .finish()
}

/// Attaches what resolvers need to a request: who is calling and, for an authenticated
/// caller, per-request DataLoaders scoped to its tenant.
pub fn prepare_request(
    services: &Services,
    authentication: crate::auth::Authentication,
    request: async_graphql::Request,
) -> async_graphql::Request {
    let mut request = request.data(authentication.clone());
    if let crate::auth::Authentication::Authenticated(actor) = authentication {
        let loader = loaders::request_loader(services.db.clone(), crate::scope::Tenant(actor.tenant.clone()));
        request = request.data(loader).data(actor);
    }
    request
}

/// The SDL that `schema.graphql` must equal.
pub fn sdl() -> String {
    builder().finish().sdl()
}
