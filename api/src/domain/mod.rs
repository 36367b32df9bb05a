//! The domain layer: Runflow's rules as plain Rust, independent of GraphQL and HTTP.
//!
//! Every function takes a [`crate::db::Db`] and a scope ([`crate::scope::Scope`] for reads,
//! [`crate::scope::StagingScope`] for per-environment edits, [`releases::ProductionWrite`] for
//! publishing, [`crate::scope::Tenant`] for shared records) and returns
//! [`crate::error::Result`]. The GraphQL resolvers, the HTTP
//! handlers and the CLI all call these functions; none of them re-implements a rule.

pub mod agents;
pub mod approvals;
pub mod audit;
pub mod connectors;
pub mod credentials;
pub mod events;
pub mod executions;
pub mod ingest;
pub mod lifecycle;
pub mod lookup;
pub mod manifest;
pub mod memory;
pub mod pagination;
pub mod prompts;
pub mod quotas;
pub mod releases;
pub mod revision;
pub mod scheduled_releases;
pub mod sessions;
pub mod shared_resources;
pub mod traces;
pub mod triggers;
pub mod validate;
pub mod webhooks;

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::scope::{Scope, StagingScope};

/// The right to write the per-environment configuration (deployments, prompts, connectors,
/// triggers) of one environment: a [`StagingScope`] (an edit) or a
/// [`releases::ProductionWrite`] (a publish, which only the publish module can make). A plain
/// [`Scope`] is not one, so no caller can write production by passing a production scope.
///
/// Sealed: only this module's children can implement it.
///
/// ```compile_fail,E0277
/// // A plain scope is not a write capability.
/// async fn bypass(db: &runflow::db::Db, scope: runflow::scope::Scope, agent: uuid::Uuid, commit: uuid::Uuid) {
///     let _ = runflow::domain::agents::set_deployment(&db.conn, &scope, agent, commit, "me").await;
/// }
/// ```
pub trait EnvironmentWrite: sealed::Sealed + Send + Sync {
    /// The tenant and environment written.
    fn target(&self) -> &Scope;
    /// The release that writes (production), or None (a staging edit).
    fn release_id(&self) -> Option<Uuid>;
}

mod sealed {
    /// Implemented only inside `domain`: see [`super::EnvironmentWrite`].
    pub trait Sealed {}
}

impl sealed::Sealed for StagingScope {}

impl EnvironmentWrite for StagingScope {
    fn target(&self) -> &Scope {
        self.scope()
    }

    fn release_id(&self) -> Option<Uuid> {
        None
    }
}

/// A new record id: UUIDv7, so ids sort by creation time and cannot be enumerated.
pub fn new_id() -> Uuid {
    Uuid::now_v7()
}

/// The current time, truncated to microseconds (what both databases store).
pub fn now() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
}

/// The strings of a stored JSON array (credential names, variables, manifest lists...);
/// anything else reads as empty.
pub fn string_array(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|items| items.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

/// The optional changes of a record configured by a kind, a JSON object and the names of the
/// shared credentials it uses: connector instances and shared resources take the same ones.
pub(crate) struct ConfigChanges {
    pub kind: Option<String>,
    pub config: Option<Value>,
    pub credentials: Option<Vec<String>>,
}

impl ConfigChanges {
    /// Refuses credential names the tenant has no credential for (NOT_FOUND naming them).
    pub(crate) async fn check_credentials<C: sea_orm::ConnectionTrait>(
        &self,
        db: &C,
        tenant: &crate::scope::Tenant,
    ) -> crate::error::Result<()> {
        match &self.credentials {
            Some(names) => credentials::require_all(db, tenant, names).await,
            None => Ok(()),
        }
    }

    /// Writes the given changes into the row's columns (and leaves the others as they are).
    pub(crate) fn apply(
        self,
        kind: &mut sea_orm::ActiveValue<String>,
        config: &mut sea_orm::ActiveValue<Value>,
        credential_refs: &mut sea_orm::ActiveValue<Value>,
    ) {
        if let Some(new_kind) = self.kind {
            *kind = sea_orm::Set(new_kind);
        }
        if let Some(new_config) = self.config {
            *config = sea_orm::Set(new_config);
        }
        if let Some(names) = self.credentials {
            *credential_refs = sea_orm::Set(serde_json::json!(names));
        }
    }
}
