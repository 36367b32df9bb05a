//! The event log behind the live feed.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261129_000003_events"
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
                    .table(Alias::new("events"))
                    .if_not_exists()
                    .col(col("id").uuid().not_null().primary_key())
                    .col(col("tenant_id").string_len(128).not_null())
                    .col(col("environment").string_len(16).not_null())
                    .col(col("seq").big_integer().not_null())
                    .col(col("topic").string_len(16).not_null())
                    .col(col("kind").string_len(32).not_null())
                    .col(col("agent_slug").string_len(255).null())
                    .col(col("execution_id").uuid().null())
                    .col(col("session_id").uuid().null())
                    .col(col("payload").json_binary().not_null())
                    .col(col("created_at").timestamp_with_time_zone().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_events_seq")
                    .table(Alias::new("events"))
                    .col(Alias::new("tenant_id"))
                    .col(Alias::new("seq"))
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_events_created")
                    .table(Alias::new("events"))
                    .col(Alias::new("created_at"))
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("event_counters"))
                    .if_not_exists()
                    .col(col("tenant_id").string_len(128).not_null().primary_key())
                    .col(col("seq").big_integer().not_null())
                    .col(col("pruned_through").big_integer().not_null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["event_counters", "events"] {
            manager
                .drop_table(Table::drop().table(Alias::new(table)).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}
