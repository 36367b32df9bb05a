//! Indexes that serve every list query's filter and order, so that the planner needs no
//! statistics to pick them (a fresh, never-analysed database is as fast as an analysed one).
//!
//! Each list pages by `id` (see `api/src/domain/pagination.rs`) after filtering by tenant and
//! environment and, optionally, one more column; each index below is that filter followed by
//! `id`, so a page is one index range scan in either direction.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261130_000040_indexes"
    }
}

/// (table, index name, columns): the filter columns, then the order column.
const INDEXES: &[(&str, &str, &[&str])] = &[
    // Query.executions(agent:), Query.executions(status:)
    (
        "executions",
        "ix_executions_env_agent",
        &["tenant_id", "environment", "agent_id", "id"],
    ),
    (
        "executions",
        "ix_executions_env_status",
        &["tenant_id", "environment", "status", "id"],
    ),
    // Execution.spans: spans of an execution in recorded order.
    ("spans", "ix_spans_execution_id", &["execution_id", "id"]),
    // Query.traces(execution:), Execution.trace
    ("traces", "ix_traces_execution_id", &["execution_id", "id"]),
    // Query.sessions(agent:)
    (
        "sessions",
        "ix_sessions_env_agent",
        &["tenant_id", "environment", "agent_id", "id"],
    ),
    // Query.memory(namespace:) and the unfiltered list, newest first
    (
        "memory_entries",
        "ix_memory_env_id",
        &["tenant_id", "environment", "id"],
    ),
    (
        "memory_entries",
        "ix_memory_env_namespace",
        &["tenant_id", "environment", "namespace", "id"],
    ),
    // Agent.commits
    ("agent_commits", "ix_agent_commits_agent_id", &["agent_id", "id"]),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (table, name, columns) in INDEXES {
            let mut index = Index::create();
            index.name(*name).table(Alias::new(*table)).if_not_exists();
            for column in *columns {
                index.col(Alias::new(*column));
            }
            manager.create_index(index.to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (table, name, _) in INDEXES {
            manager
                .drop_index(
                    Index::drop()
                        .name(*name)
                        .table(Alias::new(*table))
                        .if_exists()
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
