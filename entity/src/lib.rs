//! sea-orm entities of Runflow: one module per table.
//!
//! Every table is owned by a tenant ([`TenantOwned`]); per-environment tables also carry the
//! [`Environment`] ([`EnvironmentOwned`]). The API's scoping mechanism builds every query
//! through these two traits, so a query can not forget the tenant or the environment.

use sea_orm::entity::prelude::*;

pub mod agent_commit_files;
pub mod agent_commits;
pub mod agent_deployments;
pub mod agents;
pub mod audit_entries;
pub mod blobs;
pub mod connector_instances;
pub mod connector_resources;
pub mod credentials;
pub mod event_counters;
pub mod events;
pub mod executions;
pub mod memory_entries;
pub mod prompt_versions;
pub mod prompts;
pub mod release_items;
pub mod release_request_reviews;
pub mod release_requests;
pub mod releases;
pub mod scheduled_releases;
pub mod session_messages;
pub mod sessions;
pub mod shared_resources;
pub mod spans;
pub mod tenant_settings;
pub mod traces;
pub mod trigger_firings;
pub mod triggers;
pub mod webhook_cursors;
pub mod webhook_deliveries;
pub mod webhook_endpoints;

/// The two environments every tenant has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, serde::Serialize, serde::Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    #[sea_orm(string_value = "staging")]
    Staging,
    #[sea_orm(string_value = "production")]
    Production,
}

impl Environment {
    /// The lowercase name used in URLs, tokens and memory namespaces.
    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Staging => "staging",
            Environment::Production => "production",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value.to_ascii_lowercase().as_str() {
            "staging" => Some(Environment::Staging),
            "production" => Some(Environment::Production),
            _ => None,
        }
    }
}

impl std::fmt::Display for Environment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A table whose rows belong to one tenant.
pub trait TenantOwned: EntityTrait {
    fn tenant_column() -> Self::Column;
}

/// A table whose rows also belong to one environment.
pub trait EnvironmentOwned: TenantOwned {
    fn environment_column() -> Self::Column;
}
