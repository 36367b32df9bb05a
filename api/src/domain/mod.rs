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
    /// Refuses what [`validate_config`] refuses.
    pub(crate) fn validate(&self) -> crate::error::Result<()> {
        validate_config(self.kind.as_deref(), self.config.as_ref(), self.credentials.as_deref())
    }

    /// Writes the changes to the row `id` of `E` (called `what` in errors) inside `tx`: the
    /// credentials named must exist, `expected_revision` must be current (CONFLICT otherwise),
    /// and the row's revision and `updated_at` move on.
    pub(crate) async fn write<E, C>(
        self,
        tx: &C,
        tenant: &crate::scope::Tenant,
        what: &str,
        id: Uuid,
        expected_revision: Option<i64>,
    ) -> crate::error::Result<E::Model>
    where
        E: Configured,
        E::Model: sea_orm::IntoActiveModel<E::ActiveModel>,
        E::ActiveModel: sea_orm::TryIntoModel<E::Model>,
        C: sea_orm::ConnectionTrait,
    {
        if let Some(names) = &self.credentials {
            credentials::require_all(tx, tenant, names).await?;
        }
        revision::update::<E, _, _>(tx, tenant, what, id, expected_revision, |active| {
            let columns = E::columns(active);
            if let Some(kind) = self.kind {
                *columns.kind = sea_orm::Set(kind);
            }
            if let Some(config) = self.config {
                *columns.config = sea_orm::Set(config);
            }
            if let Some(names) = self.credentials {
                *columns.credential_refs = sea_orm::Set(serde_json::json!(names));
            }
            *columns.updated_at = sea_orm::Set(now());
        })
        .await
    }
}

/// Refuses a kind that is not a slug, a configuration that is not a JSON object and
/// credential names that are not slugs (BAD_USER_INPUT naming the field); `None` is not checked.
pub(crate) fn validate_config(
    kind: Option<&str>,
    config: Option<&Value>,
    credentials: Option<&[String]>,
) -> crate::error::Result<()> {
    if let Some(kind) = kind {
        validate::slug("kind", kind)?;
    }
    if let Some(config) = config {
        validate::json_object("config", config)?;
    }
    if let Some(names) = credentials {
        validate::slug_list("credentials", names)?;
    }
    Ok(())
}

/// The columns [`ConfigChanges`] writes, of one row being changed.
pub(crate) struct ConfigColumns<'a> {
    kind: &'a mut sea_orm::ActiveValue<String>,
    config: &'a mut sea_orm::ActiveValue<Value>,
    credential_refs: &'a mut sea_orm::ActiveValue<Value>,
    updated_at: &'a mut sea_orm::ActiveValue<DateTime<Utc>>,
}

/// A table of records configured by a kind, a JSON object and credential names.
pub(crate) trait Configured: revision::Revisioned {
    fn columns(active: &mut Self::ActiveModel) -> ConfigColumns<'_>;
}

macro_rules! configured {
    ($($module:ident),*) => {
        $(
            impl Configured for entity::$module::Entity {
                fn columns(active: &mut Self::ActiveModel) -> ConfigColumns<'_> {
                    ConfigColumns {
                        kind: &mut active.kind,
                        config: &mut active.config,
                        credential_refs: &mut active.credential_refs,
                        updated_at: &mut active.updated_at,
                    }
                }
            }
        )*
    };
}

configured!(connector_instances, shared_resources);
