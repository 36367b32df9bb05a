//! `createRuntimeToken`: a staging runtime token for local runs (`rf test`). Like every
//! mutation it refuses PRODUCTION, so local runs are staging by the server's rule.

use async_graphql::{Context, Object, SimpleObject};

use super::context::{actor, services, staging};
use super::{Environment, GqlResult};
use crate::auth::Role;
use crate::error::Error;

/// How long a token from `createRuntimeToken` lives.
const TTL: std::time::Duration = std::time::Duration::from_secs(3600);

#[derive(SimpleObject)]
pub struct RuntimeToken {
    /// A bearer token for the runtime API, bound to this tenant and environment.
    token: String,
    environment: Environment,
    /// Unix seconds.
    expires_at: i64,
}

#[derive(Default)]
pub struct RuntimeTokenMutation;

#[Object]
impl RuntimeTokenMutation {
    /// Mints a runtime token for staging (valid one hour).
    async fn create_runtime_token(&self, ctx: &Context<'_>, environment: Environment) -> GqlResult<RuntimeToken> {
        let scope = staging(ctx, environment)?;
        let actor = actor(ctx)?;
        let subject = format!("local:{}", actor.subject);
        let token = services(ctx)
            .tokens
            .mint(
                &subject,
                scope.tenant().id(),
                Role::Runtime,
                TTL,
                Some(scope.environment),
            )
            .map_err(Error::internal)?;
        let expires_at = chrono::Utc::now().timestamp() + TTL.as_secs() as i64;
        Ok(RuntimeToken {
            token,
            environment,
            expires_at,
        })
    }
}
