//! Release governance: the audit log (append-only; no code path updates or deletes a row),
//! tenant settings (required approvals), release requests and their reviews, and what a
//! release records about its approval.

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
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("tenant_settings"))
                    .if_not_exists()
                    .col(col("tenant_id").string_len(128).not_null().primary_key())
                    .col(col("required_approvals").integer().not_null())
                    .col(col("revision").big_integer().not_null())
                    .col(col("updated_by").string_len(255).not_null())
                    .col(col("updated_at").timestamp_with_time_zone().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("release_requests"))
                    .if_not_exists()
                    .col(col("id").uuid().not_null().primary_key())
                    .col(col("tenant_id").string_len(128).not_null())
                    .col(col("requested_by").string_len(255).not_null())
                    .col(col("note").text().not_null())
                    .col(col("all_items").boolean().not_null())
                    .col(col("fingerprint").string_len(128).null())
                    .col(col("rollback_to").uuid().null())
                    .col(col("items").json_binary().not_null())
                    .col(col("state").string_len(16).not_null())
                    .col(col("release_id").uuid().null())
                    .col(col("created_at").timestamp_with_time_zone().not_null())
                    .col(col("updated_at").timestamp_with_time_zone().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_release_requests_tenant")
                    .table(Alias::new("release_requests"))
                    .col(Alias::new("tenant_id"))
                    .col(Alias::new("state"))
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("release_request_reviews"))
                    .if_not_exists()
                    .col(col("id").uuid().not_null().primary_key())
                    .col(col("tenant_id").string_len(128).not_null())
                    .col(col("request_id").uuid().not_null())
                    .col(col("reviewer").string_len(255).not_null())
                    .col(col("decision").string_len(16).not_null())
                    .col(col("comment").text().not_null())
                    .col(col("created_at").timestamp_with_time_zone().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_release_request_reviews")
                    .table(Alias::new("release_request_reviews"))
                    .col(Alias::new("request_id"))
                    .col(Alias::new("reviewer"))
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Alias::new("releases"))
                    .add_column(col("approval_request_id").uuid().null())
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Alias::new("releases"))
                    .add_column(col("emergency_override").boolean().not_null().default(false))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("scheduled_releases"))
                    .if_not_exists()
                    .col(col("id").uuid().not_null().primary_key())
                    .col(col("tenant_id").string_len(128).not_null())
                    .col(col("run_at").timestamp_with_time_zone().not_null())
                    .col(col("items").json_binary().not_null())
                    .col(col("note").text().not_null())
                    .col(col("state").string_len(16).not_null())
                    .col(col("revision").big_integer().not_null())
                    .col(col("claimed_until").timestamp_with_time_zone().null())
                    .col(col("release_id").uuid().null())
                    .col(col("failure").text().null())
                    .col(col("stale_items").json_binary().null())
                    .col(col("created_by").string_len(255).not_null())
                    .col(col("created_by_role").string_len(16).not_null())
                    .col(col("created_at").timestamp_with_time_zone().not_null())
                    .col(col("updated_at").timestamp_with_time_zone().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_scheduled_releases_due")
                    .table(Alias::new("scheduled_releases"))
                    .col(Alias::new("state"))
                    .col(Alias::new("run_at"))
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in ["emergency_override", "approval_request_id"] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Alias::new("releases"))
                        .drop_column(Alias::new(column))
                        .to_owned(),
                )
                .await?;
        }
        for table in [
            "release_request_reviews",
            "release_requests",
            "tenant_settings",
            "audit_entries",
        ] {
            manager
                .drop_table(Table::drop().table(Alias::new(table)).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}
