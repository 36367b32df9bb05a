//! A publish scheduled with `at` accepts an idempotency key like an immediate one: the
//! scheduled release records the key and a fingerprint of the request (unique per tenant), so
//! a retried request returns the first scheduled release instead of scheduling a second.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261207_000070_scheduled_idempotency"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per ALTER: SQLite adds one at a time.
        for (column, length) in [("idempotency_key", 255), ("request_hash", 64)] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Alias::new("scheduled_releases"))
                        .add_column(ColumnDef::new(Alias::new(column)).string_len(length).null())
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("ux_scheduled_releases_idempotency")
                    .table(Alias::new("scheduled_releases"))
                    .col(Alias::new("tenant_id"))
                    .col(Alias::new("idempotency_key"))
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("ux_scheduled_releases_idempotency")
                    .table(Alias::new("scheduled_releases"))
                    .to_owned(),
            )
            .await?;
        for column in ["request_hash", "idempotency_key"] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Alias::new("scheduled_releases"))
                        .drop_column(Alias::new(column))
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
