//! Releases: the append-only record of every publish and rollback, and a link from each
//! production record to the release that last set it.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261129_000002_releases"
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
                    .table(Alias::new("releases"))
                    .if_not_exists()
                    .col(col("id").uuid().not_null().primary_key())
                    .col(col("tenant_id").string_len(128).not_null())
                    .col(col("number").big_integer().not_null())
                    .col(col("kind").string_len(16).not_null())
                    .col(col("rolls_back_id").uuid().null())
                    .col(col("note").text().not_null())
                    .col(col("idempotency_key").string_len(255).null())
                    .col(col("created_by").string_len(255).not_null())
                    .col(col("created_at").timestamp_with_time_zone().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("release_items"))
                    .if_not_exists()
                    .col(col("id").uuid().not_null().primary_key())
                    .col(col("tenant_id").string_len(128).not_null())
                    .col(col("release_id").uuid().not_null())
                    .col(col("item_id").string_len(255).not_null())
                    .col(col("kind").string_len(16).not_null())
                    .col(col("change").string_len(16).not_null())
                    .col(col("before").json_binary().null())
                    .col(col("after").json_binary().null())
                    .to_owned(),
            )
            .await?;
        for (table, name, columns, unique) in [
            ("releases", "ux_releases_number", vec!["tenant_id", "number"], true),
            (
                "releases",
                "ux_releases_idempotency",
                vec!["tenant_id", "idempotency_key"],
                true,
            ),
            ("release_items", "ix_release_items_release", vec!["release_id"], false),
        ] {
            let mut index = Index::create();
            index.name(name).table(Alias::new(table)).if_not_exists();
            for column in columns {
                index.col(Alias::new(column));
            }
            if unique {
                index.unique();
            }
            manager.create_index(index.to_owned()).await?;
        }
        // The release that last set each production record (null in staging).
        for table in ["agent_deployments", "prompts", "connector_instances", "triggers"] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Alias::new(table))
                        .add_column(col("release_id").uuid().null())
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["agent_deployments", "prompts", "connector_instances", "triggers"] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Alias::new(table))
                        .drop_column(Alias::new("release_id"))
                        .to_owned(),
                )
                .await?;
        }
        for table in ["release_items", "releases"] {
            manager
                .drop_table(Table::drop().table(Alias::new(table)).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}
