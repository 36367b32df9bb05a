//! Outgoing webhooks: tenant-level endpoints (with their signing secret, encrypted), the
//! outbox of deliveries filled from the event log, and each tenant's cursor into that log.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261130_000050_webhooks"
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
                    .table(Alias::new("webhook_endpoints"))
                    .if_not_exists()
                    .col(col("id").uuid().not_null().primary_key())
                    .col(col("tenant_id").string_len(128).not_null())
                    .col(col("url").string_len(2048).not_null())
                    .col(col("event_types").json_binary().not_null())
                    .col(col("enabled").boolean().not_null())
                    .col(col("secret_ciphertext").binary().not_null())
                    .col(col("secret_nonce").binary().not_null())
                    .col(col("secret_hint").string_len(64).not_null())
                    .col(col("revision").big_integer().not_null())
                    .col(col("failing_since").timestamp_with_time_zone().null())
                    .col(col("created_by").string_len(256).not_null())
                    .col(col("created_at").timestamp_with_time_zone().not_null())
                    .col(col("updated_at").timestamp_with_time_zone().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_webhook_endpoints_tenant")
                    .table(Alias::new("webhook_endpoints"))
                    .col(Alias::new("tenant_id"))
                    .col(Alias::new("id"))
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("webhook_deliveries"))
                    .if_not_exists()
                    .col(col("id").uuid().not_null().primary_key())
                    .col(col("tenant_id").string_len(128).not_null())
                    .col(col("endpoint_id").uuid().not_null())
                    .col(col("message_id").string_len(64).not_null())
                    .col(col("event_type").string_len(64).not_null())
                    .col(col("event_seq").big_integer().null())
                    .col(col("body").text().not_null())
                    .col(col("status").string_len(16).not_null())
                    .col(col("attempts").integer().not_null())
                    .col(col("next_attempt_at").timestamp_with_time_zone().not_null())
                    .col(col("claimed_until").timestamp_with_time_zone().null())
                    .col(col("claim_token").uuid().null())
                    .col(col("created_at").timestamp_with_time_zone().not_null())
                    .col(col("last_attempt_at").timestamp_with_time_zone().null())
                    .col(col("delivered_at").timestamp_with_time_zone().null())
                    .col(col("response_status").integer().null())
                    .col(col("latency_ms").big_integer().null())
                    .col(col("last_error").string_len(1024).null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_webhook_deliveries_endpoint")
                    .table(Alias::new("webhook_deliveries"))
                    .col(Alias::new("endpoint_id"))
                    .col(Alias::new("id"))
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_webhook_deliveries_due")
                    .table(Alias::new("webhook_deliveries"))
                    .col(Alias::new("status"))
                    .col(Alias::new("next_attempt_at"))
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("webhook_cursors"))
                    .if_not_exists()
                    .col(col("tenant_id").string_len(128).not_null().primary_key())
                    .col(col("seq").big_integer().not_null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["webhook_cursors", "webhook_deliveries", "webhook_endpoints"] {
            manager
                .drop_table(Table::drop().table(Alias::new(table)).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}
