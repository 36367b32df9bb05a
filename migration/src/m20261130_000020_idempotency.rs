//! Idempotency keys remember the request they were first used with: a release records a
//! fingerprint of its publish request, so a retry with the same key and a different body is
//! refused instead of answered with an unrelated release.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261130_000020_idempotency"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Alias::new("releases"))
                    .add_column(ColumnDef::new(Alias::new("request_hash")).string_len(64).null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Alias::new("releases"))
                    .drop_column(Alias::new("request_hash"))
                    .to_owned(),
            )
            .await
    }
}
