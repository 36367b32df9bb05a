//! Database schema of Runflow, as sea-orm migrations.
//!
//! Migrations are written with sea-query builders (not derived from the entities) so that a
//! migration, once released, never changes when an entity does. They run on SQLite and
//! PostgreSQL alike.

pub use sea_orm_migration::prelude::*;

mod m20261129_000001_foundation;
mod m20261129_000002_releases;
mod m20261129_000003_events;
mod m20261129_000004_runner;
mod m20261129_000005_triggers;
mod m20261130_000010_run_lifecycle;
mod m20261130_000020_idempotency;
mod m20261130_000030_governance;
mod m20261130_000040_indexes;
mod m20261130_000050_webhooks;
mod m20261207_000060_audit_before_after;
mod m20261207_000070_scheduled_idempotency;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261129_000001_foundation::Migration),
            Box::new(m20261129_000002_releases::Migration),
            Box::new(m20261129_000003_events::Migration),
            Box::new(m20261129_000004_runner::Migration),
            Box::new(m20261129_000005_triggers::Migration),
            Box::new(m20261130_000020_idempotency::Migration),
            Box::new(m20261130_000010_run_lifecycle::Migration),
            Box::new(m20261130_000040_indexes::Migration),
            Box::new(m20261130_000030_governance::Migration),
            Box::new(m20261130_000050_webhooks::Migration),
            Box::new(m20261207_000060_audit_before_after::Migration),
            Box::new(m20261207_000070_scheduled_idempotency::Migration),
        ]
    }
}
