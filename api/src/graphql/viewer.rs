//! `viewer`: who the caller is.

use async_graphql::{Context, Object, SimpleObject};

use super::Environment;
use super::context::actor;

#[derive(SimpleObject)]
pub struct Viewer {
    /// The token's subject.
    subject: String,
    tenant: String,
    /// viewer, developer, publisher or admin.
    role: String,
    /// The environment this query asked for.
    environment: Environment,
}

#[derive(Default)]
pub struct ViewerQuery;

#[Object]
impl ViewerQuery {
    /// Who the caller is: subject, tenant and role, from the verified token.
    async fn viewer(&self, ctx: &Context<'_>, environment: Environment) -> crate::error::Result<Viewer> {
        let actor = actor(ctx)?;
        Ok(Viewer {
            subject: actor.subject.clone(),
            tenant: actor.tenant.clone(),
            role: actor.role.to_string(),
            environment,
        })
    }
}
