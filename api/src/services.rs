//! [`Services`]: the plain values every request handler and resolver uses (database, keys,
//! limits, the live feed). `app` fills it from configuration; `graphql` and `http` read it.
//! It lives apart from both so that `graphql` never imports `app` (which builds the schema).

use std::sync::Arc;

use crate::auth::TokenService;
use crate::crypto::SecretBox;
use crate::db::Db;
use crate::domain::agents::BundleLimits;

/// What every request handler needs. Cheap to clone.
#[derive(Clone)]
pub struct Services {
    pub db: Db,
    pub tokens: Arc<TokenService>,
    pub secret_box: SecretBox,
    pub public_url: String,
    pub bundle_limits: BundleLimits,
    /// Agents, prompts and connectors a tenant may have.
    pub record_quota: crate::domain::quotas::RecordQuota,
    pub live: crate::live::LiveFeed,
    /// Depth and per-tenant caps of executions.
    pub execution_limits: crate::domain::executions::ExecutionLimits,
    /// Schedule interval, trigger count, firing rate and webhook replay window.
    pub trigger_limits: crate::domain::triggers::TriggerLimits,
    /// Outgoing webhooks: target policy, retries, time limits.
    pub webhooks: crate::domain::webhooks::WebhookSettings,
}
