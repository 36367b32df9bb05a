//! Tenant and environment scoping: the one mechanism through which every query is built.
//!
//! A domain function never calls `Entity::find()` itself: it asks a [`Scope`] (or a
//! [`Tenant`]) for a `Select` that already filters by tenant (and environment). A record of
//! another tenant therefore behaves exactly like one that does not exist.
//!
//! Writes in an environment require a [`StagingScope`], which can only be obtained from a
//! staging [`Scope`]: the production read-only rule is also a type in the domain layer.

use entity::{Environment, EnvironmentOwned, TenantOwned};
use sea_orm::{ColumnTrait, QueryFilter, Select};

use crate::error::{Error, Result};

/// A tenant, as taken from a verified token.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Tenant(pub String);

impl Tenant {
    pub fn id(&self) -> &str {
        &self.0
    }

    /// Rows of a shared (not per-environment) table that belong to this tenant.
    pub fn select<E: TenantOwned>(&self) -> Select<E> {
        E::find().filter(E::tenant_column().eq(self.0.as_str()))
    }

    pub fn in_env(&self, environment: Environment) -> Scope {
        Scope {
            tenant: self.clone(),
            environment,
        }
    }
}

/// A tenant in one environment: what every per-environment read is scoped to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Scope {
    pub tenant: Tenant,
    pub environment: Environment,
}

impl Scope {
    pub fn new(tenant: impl Into<String>, environment: Environment) -> Self {
        Scope {
            tenant: Tenant(tenant.into()),
            environment,
        }
    }

    /// Rows of a per-environment table in this tenant and environment.
    pub fn select<E: EnvironmentOwned>(&self) -> Select<E> {
        self.tenant
            .select::<E>()
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
