//! Release governance: the audit log (append-only; no code path updates or deletes a row).

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261130_000030_governance"
    }
}

fn col(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("audit_entries"))
                    .if_not_exists()
                    .col(col("id").uuid().not_null().primary_key())
                    .col(col("tenant_id").string_len(128).not_null())
                    .col(col("environment").string_len(16).not_null())
                    .col(col("actor_subject").string_len(255).not_null())
                    .col(col("actor_role").string_len(16).not_null())
                    .col(col("action").string_len(64).not_null())
                    .col(col("record_kind").string_len(64).not_null())
                    .col(col("record_key").string_len(512).null())
                    .col(col("summary").json_binary().not_null())
                    .col(col("created_at").timestamp_with_time_zone().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_audit_entries_tenant")
                    .table(Alias::new("audit_entries"))
                    .col(Alias::new("tenant_id"))
                    .col(Alias::new("environment"))
                    .col(Alias::new("id"))
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Alias::new("audit_entries")).if_exists().to_owned())
            .await
    }
}
