//! Tenant and environment scoping: the one mechanism through which every query is built.
//!
//! A domain function never calls `Entity::find()` (nor `find_by_id`, `update_many`,
//! `delete_many`, `delete_by_id`) itself: it asks a [`Scope`] (or a [`Tenant`]) for a query that
//! already filters by tenant (and environment). A record of another tenant therefore behaves
//! exactly like one that does not exist. `clippy.toml` forbids those sea-orm methods everywhere
//! else (`disallowed-methods`), so an unscoped query outside this module fails CI.
//!
//! A [`Tenant`] (and so a [`Scope`]) comes only from an authenticated caller ([`Tenant::of`],
//! [`Scope::of`]), or, for work done on behalf of a stored row rather than a caller, from that
//! row through a constructor named after it ([`Scope::of_execution`], [`Scope::of_trigger`],
//! [`Scope::of_webhook_url`]). Nothing else can build one:
//!
//! ```
//! // The only way to an `Actor` is a verified token (its fields are private).
//! fn staging_scope(tokens: &runflow::auth::TokenService, bearer: &str) -> Option<runflow::scope::Scope> {
//!     let actor = tokens.verify(bearer).ok()?;
//!     Some(runflow::scope::Scope::of(&actor, entity::Environment::Staging))
//! }
//! ```
//!
//! ```compile_fail,E0599
//! // A scope cannot be made up from plain values outside this module.
//! let scope = runflow::scope::Scope::new("someone-else", entity::Environment::Staging);
//! ```
//!
//! ```compile_fail,E0423
//! // Nor can the tenant it is built from.
//! let tenant = runflow::scope::Tenant("someone-else".to_string());
//! ```
//!
//! The server's own housekeeping across tenants (the runner's claim, the reaper, pruning the
//! event log, schedules) uses [`AcrossTenants`], by name.
//!
//! Writes in an environment require a [`StagingScope`], which can only be obtained from a
//! staging [`Scope`]: the production read-only rule is also a type in the domain layer.

// The one place the sea-orm query builders may be called directly (see `clippy.toml`).
#![allow(clippy::disallowed_methods)]

use entity::{Environment, EnvironmentOwned, TenantOwned};
use sea_orm::{
    ActiveModelBehavior, ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, DeleteMany, EntityTrait, Insert,
    InsertMany, IntoActiveModel, QueryFilter, Select, UpdateMany,
};

use crate::auth::Actor;
use crate::error::{Error, Result};

/// A tenant, as taken from a verified token.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Tenant(String);

impl Tenant {
    /// The tenant of an authenticated caller.
    pub fn of(actor: &Actor) -> Tenant {
        Tenant(actor.tenant_id().to_string())
    }

    pub fn id(&self) -> &str {
        &self.0
    }

    /// Rows of a shared (not per-environment) table that belong to this tenant.
    pub fn select<E: TenantOwned>(&self) -> Select<E> {
        E::find().filter(E::tenant_column().eq(self.0.as_str()))
    }

    /// An update of this tenant's rows of `E` (add filters to narrow it).
    pub fn update_many<E: TenantOwned>(&self) -> UpdateMany<E> {
        E::update_many().filter(E::tenant_column().eq(self.0.as_str()))
    }

    /// A delete of this tenant's rows of `E` (add filters to narrow it).
    pub fn delete_many<E: TenantOwned>(&self) -> DeleteMany<E> {
        E::delete_many().filter(E::tenant_column().eq(self.0.as_str()))
    }

    /// An insert of one row of this tenant, to finish with `on_conflict` and `exec` (the
    /// tenant column is set here).
    pub fn insert_one<A>(&self, row: A) -> Insert<A>
    where
        A: ActiveModelTrait,
        A::Entity: TenantOwned,
    {
        <A::Entity as EntityTrait>::insert(self.owned(row))
    }

    /// An insert of many rows of this tenant, to finish with `exec` (the tenant column of
    /// every row is set here).
    pub fn insert_many<A, I>(&self, rows: I) -> InsertMany<A>
    where
        A: ActiveModelTrait,
        A::Entity: TenantOwned,
        I: IntoIterator<Item = A>,
    {
        <A::Entity as EntityTrait>::insert_many(rows.into_iter().map(|row| self.owned(row)))
    }

    /// `row`, made this tenant's.
    fn owned<A>(&self, mut row: A) -> A
    where
        A: ActiveModelTrait,
        A::Entity: TenantOwned,
    {
        row.set(<A::Entity as TenantOwned>::tenant_column(), self.0.clone().into());
        row
    }

    /// A tenant named by the server's operator on the command line (`runflow audit export
    /// --tenant`): whoever can run the binary against the database already holds every tenant.
    pub fn named_by_operator(tenant: String) -> Tenant {
        Tenant(tenant)
    }

    /// The tenant a scheduled release was scheduled by (for the scheduler running it).
    pub fn of_scheduled_release(row: &entity::scheduled_releases::Model) -> Tenant {
        Tenant(row.tenant_id.clone())
    }

    /// The tenant a webhook cursor reads the event log for (for the outbox filler).
    pub fn of_webhook_cursor(row: &entity::webhook_cursors::Model) -> Tenant {
        Tenant(row.tenant_id.clone())
    }

    /// The tenant of a claimed webhook delivery (for the sender).
    pub fn of_webhook_delivery(row: &entity::webhook_deliveries::Model) -> Tenant {
        Tenant(row.tenant_id.clone())
    }

    pub fn in_env(&self, environment: Environment) -> Scope {
        Scope {
            tenant: self.clone(),
            environment,
        }
    }
}

/// The stored row (model) an active model `A` writes.
pub type RowOf<A> = <<A as ActiveModelTrait>::Entity as EntityTrait>::Model;

/// Writes of one row of a tenant-owned table, as the tenant's. Outside this module they are
/// the only way to insert or update one row: `clippy.toml` forbids `ActiveModelTrait::{insert,
/// update, save, delete}`, `ModelTrait::delete` and `EntityTrait::{insert, insert_many, update,
/// delete}` elsewhere (delete with [`Tenant::delete_many`] or [`Scope::delete_many`] and an id
/// filter).
#[async_trait::async_trait]
pub trait TenantWrite: ActiveModelTrait + ActiveModelBehavior + Send
where
    Self::Entity: TenantOwned,
    <Self::Entity as EntityTrait>::Model: IntoActiveModel<Self>,
{
    /// `row.insert_into(tenant, db)`: inserts the row as `tenant`'s (the tenant column is set
    /// from `tenant`, whatever the row says).
    async fn insert_into<C: ConnectionTrait>(self, tenant: &Tenant, db: &C) -> std::result::Result<RowOf<Self>, DbErr> {
        tenant.owned(self).insert(db).await
    }

    /// `row.update_in(tenant, db)`: updates the row (by its primary key) only if it is
    /// `tenant`'s: the tenant is in the `WHERE` clause too, so a row of another tenant is not
    /// updated (an error, as for a row that does not exist).
    async fn update_in<C: ConnectionTrait>(self, tenant: &Tenant, db: &C) -> std::result::Result<RowOf<Self>, DbErr> {
        <Self::Entity as EntityTrait>::update(self)
            .validate()?
            .filter(<Self::Entity as TenantOwned>::tenant_column().eq(tenant.0.as_str()))
            .exec(db)
            .await
    }
}

impl<A> TenantWrite for A
where
    A: ActiveModelTrait + ActiveModelBehavior + Send,
    A::Entity: TenantOwned,
    <A::Entity as EntityTrait>::Model: IntoActiveModel<A>,
{
}

/// A tenant in one environment: what every per-environment read is scoped to.
///
/// Its fields can be read but a `Scope` cannot be built outside this module (its tenant is a
/// [`Tenant`], which only an authenticated caller or a named row constructor yields).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Scope {
    pub tenant: Tenant,
    pub environment: Environment,
}

impl Scope {
    /// An authenticated caller's tenant in `environment`.
    pub fn of(actor: &Actor, environment: Environment) -> Scope {
        Tenant::of(actor).in_env(environment)
    }

    /// The scope a stored execution belongs to: for work done on behalf of the execution
    /// (the runner that claimed it, the reaper, a run's token being checked).
    pub fn of_execution(row: &entity::executions::Model) -> Scope {
        Tenant(row.tenant_id.clone()).in_env(row.environment)
    }

    /// The scope a stored trigger belongs to: for its firings (schedules, webhooks).
    pub fn of_trigger(row: &entity::triggers::Model) -> Scope {
        Tenant(row.tenant_id.clone()).in_env(row.environment)
    }

    /// The tenant and environment a webhook's URL names. Nobody is authenticated yet: the
    /// caller proves itself with the signature of a trigger found in this scope.
    pub fn of_webhook_url(tenant: &str, environment: Environment) -> Scope {
        Tenant(tenant.to_string()).in_env(environment)
    }

    /// Rows of a per-environment table in this tenant and environment.
    pub fn select<E: EnvironmentOwned>(&self) -> Select<E> {
        self.tenant
            .select::<E>()
            .filter(E::environment_column().eq(self.environment))
    }

    /// An update of this tenant's rows of `E` in this environment.
    pub fn update_many<E: EnvironmentOwned>(&self) -> UpdateMany<E> {
        self.tenant
            .update_many::<E>()
            .filter(E::environment_column().eq(self.environment))
    }

    /// A delete of this tenant's rows of `E` in this environment.
    pub fn delete_many<E: EnvironmentOwned>(&self) -> DeleteMany<E> {
        self.tenant
            .delete_many::<E>()
            .filter(E::environment_column().eq(self.environment))
    }

    /// The scope for edits: only staging is editable.
    pub fn editable(&self) -> Result<StagingScope> {
        match self.environment {
            Environment::Staging => Ok(StagingScope { scope: self.clone() }),
            Environment::Production => Err(Error::ProductionReadOnly),
        }
    }
}

/// Every tenant at once, for the server's own housekeeping, never on behalf of a caller: the
/// runner claiming queued executions, the reaper, pruning the event log, the live feed's pump,
/// the scheduler. Each use names this type, so it is found by a search.
pub struct AcrossTenants;

impl AcrossTenants {
    pub fn select<E: TenantOwned>() -> Select<E> {
        E::find()
    }

    pub fn update_many<E: TenantOwned>() -> UpdateMany<E> {
        E::update_many()
    }

    pub fn delete_many<E: TenantOwned>() -> DeleteMany<E> {
        E::delete_many()
    }
}

/// Proof that the caller edits staging. Per-environment writes take one.
#[derive(Clone, Debug)]
pub struct StagingScope {
    scope: Scope,
}

impl StagingScope {
    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    pub fn tenant(&self) -> &Tenant {
        &self.scope.tenant
    }
}

impl std::ops::Deref for StagingScope {
    type Target = Scope;

    fn deref(&self) -> &Scope {
        &self.scope
    }
}
