//! `createRuntimeToken`: a staging runtime token for local runs (`rf test`). Like every
//! mutation it refuses PRODUCTION, so local runs are staging by the server's rule.

use async_graphql::{Context, Object, SimpleObject};

use super::context::{actor, services, staging};
use super::scalars::DateTime;
use super::{Environment, GqlResult};
use crate::auth::ActorKind;
use crate::error::Error;

/// How long a token from `createRuntimeToken` lives.
const TTL: std::time::Duration = std::time::Duration::from_secs(3600);

/// A short-lived bearer token for the runtime API (what `rf test` runs a local agent with).
#[derive(SimpleObject)]
pub struct RuntimeToken {
    /// A bearer token for the runtime API, bound to this tenant and environment.
    token: String,
    /// The environment the token is bound to (always STAGING).
    environment: Environment,
    /// When the token stops being accepted.
    expires_at: DateTime,
}

#[derive(Default)]
pub struct RuntimeTokenMutation;

#[Object]
impl RuntimeTokenMutation {
    /// Mints a runtime token for staging (valid one hour).
    async fn create_runtime_token(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Must be STAGING.")] environment: Environment,
    ) -> GqlResult<RuntimeToken> {
        let scope = staging(ctx, environment)?;
        let actor = actor(ctx)?;
        let subject = format!("local:{}", actor.subject());
        let token = services(ctx)
            .tokens
            .mint(
                &subject,
                scope.tenant().id(),
                ActorKind::Runtime(scope.environment),
                TTL,
            )
            .map_err(Error::internal)?;
        let expires_at = DateTime(chrono::Utc::now() + TTL);
        Ok(RuntimeToken {
            token,
            environment,
            expires_at,
        })
    }
}
