//! Revisions: the one way an editable record (a row with a `revision` column) is changed or
//! deleted, so that optimistic concurrency holds on PostgreSQL (READ COMMITTED) as on SQLite.
//!
//! Every change goes through [`update`] or [`delete`], inside the caller's write transaction:
//!
//! 1. the row is locked (`SELECT ... FOR UPDATE` on PostgreSQL; SQLite write transactions
//!    begin IMMEDIATE and already run one at a time) and read as committed now;
//! 2. the caller's `expectedRevision`, if any, is compared with that row: CONFLICT if stale;
//! 3. the write is conditional, `UPDATE ... SET ..., revision = <read> + 1 WHERE id = ? AND
//!    revision = <read>` (or the same `DELETE`), and CONFLICT unless exactly one row changed.
//!
//! So of N concurrent writers quoting one revision exactly one wins, the revision moves by
//! exactly one per successful write, and writers that quote no revision are serialised
//! (last writer wins, no lost increment).

use entity::TenantOwned;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, IntoActiveModel, QueryFilter, QuerySelect, TryIntoModel,
};
use uuid::Uuid;

use crate::error::{Error, Result, check_revision};
use crate::scope::Tenant;

/// An entity with a UUID `id` and an `i64` `revision`.
pub trait Revisioned: TenantOwned {
    fn id_column() -> Self::Column;
    fn revision_column() -> Self::Column;
    fn revision_of(model: &Self::Model) -> i64;
}

macro_rules! revisioned {
    ($($module:ident),* $(,)?) => {
        $(
            impl Revisioned for entity::$module::Entity {
                fn id_column() -> Self::Column {
                    entity::$module::Column::Id
                }
                fn revision_column() -> Self::Column {
                    entity::$module::Column::Revision
                }
                fn revision_of(model: &Self::Model) -> i64 {
                    model.revision
                }
            }
        )*
    };
}

revisioned!(
    agents,
    agent_deployments,
    prompts,
    credentials,
    connector_instances,
    connector_resources,
    shared_resources,
    triggers,
    memory_entries,
);

/// Locks the row `id` of `tenant` until the end of `tx` and returns it as committed now;
/// NOT_FOUND (as `what`) when it no longer exists.
pub async fn lock<E: Revisioned, C: ConnectionTrait>(
    tx: &C,
    tenant: &Tenant,
    what: &str,
    id: Uuid,
) -> Result<E::Model> {
    tenant
        .select::<E>()
        .filter(E::id_column().eq(id))
        .lock_exclusive()
        .one(tx)
        .await?
        .ok_or_else(|| Error::not_found(what))
}

/// Changes the record `id`: checks `expected` against the locked row, applies `change` to it,
/// and writes it conditionally with the revision moved by one. Returns the row as written.
pub async fn update<E, C, F>(
    tx: &C,
    tenant: &Tenant,
    what: &str,
    id: Uuid,
    expected: Option<i64>,
    change: F,
) -> Result<E::Model>
where
    E: Revisioned,
    E::Model: IntoActiveModel<E::ActiveModel>,
    E::ActiveModel: TryIntoModel<E::Model>,
    C: ConnectionTrait,
    F: FnOnce(&mut E::ActiveModel),
{
    let current = lock::<E, C>(tx, tenant, what, id).await?;
    let revision = E::revision_of(&current);
    check_revision(what, revision, expected)?;
    let mut active = current.into_active_model();
    change(&mut active);
    active.set(E::revision_column(), (revision + 1).into());
    let written = tenant
        .update_many::<E>()
        .set(active.clone())
        .filter(E::id_column().eq(id))
        .filter(E::revision_column().eq(revision))
        .exec(tx)
        .await?;
    if written.rows_affected != 1 {
        return Err(moved(what));
    }
    Ok(active.try_into_model()?)
}

/// Deletes the record `id` if `expected` (when given) is its revision. Returns the deleted row.
pub async fn delete<E, C>(tx: &C, tenant: &Tenant, what: &str, id: Uuid, expected: Option<i64>) -> Result<E::Model>
where
    E: Revisioned,
    C: ConnectionTrait,
{
    let current = lock::<E, C>(tx, tenant, what, id).await?;
    let revision = E::revision_of(&current);
    check_revision(what, revision, expected)?;
    let deleted = tenant
        .delete_many::<E>()
        .filter(E::id_column().eq(id))
        .filter(E::revision_column().eq(revision))
        .exec(tx)
        .await?;
    if deleted.rows_affected != 1 {
        return Err(moved(what));
    }
    Ok(current)
}

fn moved(what: &str) -> Error {
    Error::Conflict(format!(
        "{what} was changed by someone else while this change was being written; reload it and retry"
    ))
}
