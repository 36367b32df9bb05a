//! Reading one record by its UUID, inside a tenant (and environment): what `node(id:)` needs.
//! A record of another tenant or environment is exactly like a missing one.

use entity::{EnvironmentOwned, TenantOwned};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use uuid::Uuid;

use crate::error::Result;
use crate::scope::{Scope, Tenant};

/// A per-environment record of the scope.
pub async fn in_scope<E, C>(db: &C, scope: &Scope, id_column: E::Column, id: Uuid) -> Result<Option<E::Model>>
where
    E: EnvironmentOwned,
    C: ConnectionTrait,
{
    Ok(scope.select::<E>().filter(id_column.eq(id)).one(db).await?)
}

/// A shared record of the tenant.
pub async fn in_tenant<E, C>(db: &C, tenant: &Tenant, id_column: E::Column, id: Uuid) -> Result<Option<E::Model>>
where
    E: TenantOwned + EntityTrait,
    C: ConnectionTrait,
{
    Ok(tenant.select::<E>().filter(id_column.eq(id)).one(db).await?)
}

/// Records of the tenant by their UUIDs (in no particular order; missing ids are left out).
/// What the per-request DataLoaders batch their lookups by id into.
pub async fn many_in_tenant<E, C>(
    db: &C,
    tenant: &Tenant,
    id_column: E::Column,
    ids: Vec<Uuid>,
) -> Result<Vec<E::Model>>
where
    E: TenantOwned + EntityTrait,
    C: ConnectionTrait,
{
    Ok(tenant.select::<E>().filter(id_column.is_in(ids)).all(db).await?)
}
