//! Firing triggers: webhook secrets (encrypted) and the ticks schedule triggers fired.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261129_000005_triggers"
    }
}

fn col(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            col("secret_ciphertext").binary().null().to_owned(),
            col("secret_nonce").binary().null().to_owned(),
        ] {
            let mut column = column;
            manager
                .alter_table(
                    Table::alter()
                        .table(Alias::new("triggers"))
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("trigger_firings"))
                    .if_not_exists()
                    .col(col("id").uuid().not_null().primary_key())
                    .col(col("tenant_id").string_len(128).not_null())
                    .col(col("trigger_id").uuid().not_null())
                    .col(col("tick").timestamp_with_time_zone().not_null())
                    .col(col("execution_id").uuid().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_trigger_firings_tick")
                    .table(Alias::new("trigger_firings"))
                    .col(Alias::new("trigger_id"))
                    .col(Alias::new("tick"))
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(
                Table::drop()
                    .table(Alias::new("trigger_firings"))
                    .if_exists()
                    .to_owned(),
            )
            .await?;
        for column in ["secret_nonce", "secret_ciphertext"] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Alias::new("triggers"))
                        .drop_column(Alias::new(column))
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
