//! What resolvers read from the request: the services, the actor and its scopes.

use async_graphql::Context;

use super::Environment;
use super::loaders::RequestLoader;
use crate::auth::Actor;
use crate::error::{Error, Result};
use crate::scope::{Scope, StagingScope, Tenant};
use crate::services::Services;

pub fn services<'a>(ctx: &Context<'a>) -> &'a Services {
    ctx.data_unchecked::<Services>()
}

/// The authenticated caller. The access check guarantees one for every non-introspection
/// field, so a missing actor here is still answered safely.
pub fn actor<'a>(ctx: &Context<'a>) -> Result<&'a Actor> {
    ctx.data_opt::<Actor>()
        .ok_or_else(|| Error::Unauthenticated("send `Authorization: Bearer <token>`".into()))
}

pub fn tenant(ctx: &Context<'_>) -> Result<Tenant> {
    Ok(Tenant::of(actor(ctx)?))
}

/// The caller's tenant in `environment`: every per-environment read goes through this.
pub fn scope(ctx: &Context<'_>, environment: Environment) -> Result<Scope> {
    Ok(tenant(ctx)?.in_env(environment.into()))
}

/// The caller's scope in `environment` and the UUID of the record `id` names, for a query of
/// one per-environment record; None when `id` is not a global id of `node_type` in that
/// environment (nor a bare UUID), which the query answers with null.
pub fn scoped_id(
    ctx: &Context<'_>,
    environment: Environment,
    id: &async_graphql::ID,
    node_type: super::ids::NodeType,
) -> Result<Option<(Scope, uuid::Uuid)>> {
    let scope = scope(ctx, environment)?;
    Ok(super::ids::uuid_of(id, node_type, environment.into()).map(|id| (scope, id)))
}

/// For a nested field of a row the caller read: the caller's tenant (the row's, since it was
/// read in the caller's scope) in the row's environment. Never taken from the row's tenant.
pub fn scope_in(ctx: &Context<'_>, environment: entity::Environment) -> Result<Scope> {
    Ok(tenant(ctx)?.in_env(environment))
}

/// The scope for a per-environment edit: staging only.
pub fn staging(ctx: &Context<'_>, environment: Environment) -> Result<StagingScope> {
    scope(ctx, environment)?.editable()
}

pub fn loader<'a>(ctx: &Context<'a>) -> Result<&'a RequestLoader> {
    ctx.data_opt::<RequestLoader>()
        .ok_or_else(|| Error::internal(anyhow::anyhow!("request has no data loaders")))
}
