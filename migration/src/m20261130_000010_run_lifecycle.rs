//! The run lifecycle: an execution's lease (a worker renews it while the run lives; an
//! expired lease means the worker died), its parent (agent calling agent), its depth in that
//! chain and its attempt number (idempotent agents are retried after a lost worker).

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261130_000010_run_lifecycle"
    }
}

fn col(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            col("lease_expires_at").timestamp_with_time_zone().null().to_owned(),
            col("parent_id").uuid().null().to_owned(),
            col("depth").integer().not_null().default(0).to_owned(),
            col("attempt").integer().not_null().default(1).to_owned(),
        ] {
            let mut column = column;
            manager
                .alter_table(
                    Table::alter()
                        .table(Alias::new("executions"))
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("ix_executions_tenant_status")
                    .table(Alias::new("executions"))
                    .col(Alias::new("tenant_id"))
                    .col(Alias::new("status"))
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in ["attempt", "depth", "parent_id", "lease_expires_at"] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Alias::new("executions"))
                        .drop_column(Alias::new(column))
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
