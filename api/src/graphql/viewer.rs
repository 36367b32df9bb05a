//! `viewer`: who the caller is.

use async_graphql::{Context, Enum, Object, SimpleObject};

use super::Environment;
use super::context::actor;
use crate::auth::ActorKind;

/// What a token may do.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// An agent runtime: the runtime API only (never seen by `viewer`).
    Runtime,
    /// Reads everything of its tenant.
    Viewer,
    /// Also edits staging.
    Developer,
    /// Also publishes staging to production and rolls back.
    Publisher,
    /// Also manages credentials and the other shared resources.
    Admin,
}

impl From<crate::auth::Role> for Role {
    fn from(role: crate::auth::Role) -> Self {
        match role {
            crate::auth::Role::Viewer => Role::Viewer,
            crate::auth::Role::Developer => Role::Developer,
            crate::auth::Role::Publisher => Role::Publisher,
            crate::auth::Role::Admin => Role::Admin,
        }
    }
}

/// The caller, from its verified token.
#[derive(SimpleObject)]
pub struct Viewer {
    /// The token's subject.
    subject: String,
    /// The tenant the token belongs to.
    tenant: String,
    /// What the token may do.
    role: Role,
    /// The environment this query asked for.
    environment: Environment,
}

#[derive(Default)]
pub struct ViewerQuery;

#[Object]
impl ViewerQuery {
    /// Who the caller is: subject, tenant and role, from the verified token.
    async fn viewer(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Any environment; echoed in `environment`.")] environment: Environment,
    ) -> crate::error::Result<Viewer> {
        let actor = actor(ctx)?;
        Ok(Viewer {
            subject: actor.subject().to_string(),
            tenant: actor.tenant_id().to_string(),
            role: match actor.kind() {
                ActorKind::Person(role) => role.into(),
                ActorKind::Runtime(_) => Role::Runtime,
            },
            environment,
        })
    }
}
