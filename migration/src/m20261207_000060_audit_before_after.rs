//! The audit log records a non-secret summary of the record before and after each change
//! (`before_state` is null for a create, `after_state` for a delete).

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261207_000060_audit_before_after"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per ALTER: SQLite adds one at a time.
        for column in ["before_state", "after_state"] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Alias::new("audit_entries"))
                        .add_column(ColumnDef::new(Alias::new(column)).json_binary().null())
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in ["after_state", "before_state"] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Alias::new("audit_entries"))
                        .drop_column(Alias::new(column))
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
