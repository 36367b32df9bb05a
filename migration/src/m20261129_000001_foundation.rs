//! The foundation schema: agents and their commits, prompts, connectors, triggers, the
//! per-environment runtime records (executions, sessions, traces, memory) and the shared
//! records (credentials, knowledge bases, LLM providers, data sources).
//!
//! Conventions: every row carries `tenant_id`; per-environment rows carry `environment`
//! (`staging` | `production`); ids are UUIDv7 (time-ordered, so ordering by id is ordering by
//! creation and serves as a stable pagination cursor); editable rows carry `revision`.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261129_000001_foundation"
    }
}

/// A table under construction with the columns every table shares.
fn table(name: &str) -> TableCreateStatement {
    Table::create()
        .table(Alias::new(name))
        .if_not_exists()
        .col(ColumnDef::new(Alias::new("id")).uuid().not_null().primary_key())
        .col(ColumnDef::new(Alias::new("tenant_id")).string_len(128).not_null())
        .to_owned()
}

fn col(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
}

fn text(name: &str) -> ColumnDef {
    col(name).text().not_null().to_owned()
}

fn string(name: &str) -> ColumnDef {
    col(name).string_len(255).not_null().to_owned()
}

fn json(name: &str) -> ColumnDef {
    col(name).json_binary().not_null().to_owned()
}

fn time(name: &str) -> ColumnDef {
    col(name).timestamp_with_time_zone().not_null().to_owned()
}

fn revision() -> ColumnDef {
    col("revision").big_integer().not_null().to_owned()
}

fn environment() -> ColumnDef {
    col("environment").string_len(16).not_null().to_owned()
}

fn index(table: &str, name: &str, columns: &[&str], unique: bool) -> IndexCreateStatement {
    let mut index = Index::create();
    index.name(name).table(Alias::new(table)).if_not_exists();
    for column in columns {
        index.col(Alias::new(*column));
    }
    if unique {
        index.unique();
    }
    index.to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let tables = [
            // Agents: shared metadata; code lives in commits, pointed at per environment.
            table("agents")
                .col(string("slug"))
                .col(string("name"))
                .col(text("description"))
                .col(revision())
                .col(time("created_at"))
                .col(time("updated_at"))
                .to_owned(),
            table("agent_commits")
                .col(col("agent_id").uuid().not_null())
                .col(col("seq").big_integer().not_null())
                .col(col("hash").string_len(64).not_null())
                .col(col("parent_id").uuid().null())
                .col(text("message"))
                .col(string("author"))
                .col(json("manifest"))
                .col(col("file_count").big_integer().not_null())
                .col(col("total_size").big_integer().not_null())
                .col(time("created_at"))
                .to_owned(),
            table("agent_commit_files")
                .col(col("commit_id").uuid().not_null())
                .col(col("path").string_len(512).not_null())
                .col(col("blob_hash").string_len(64).not_null())
                .col(col("size").big_integer().not_null())
                .to_owned(),
            table("blobs")
                .col(col("hash").string_len(64).not_null())
                .col(text("content"))
                .col(col("size").big_integer().not_null())
                .to_owned(),
            table("agent_deployments")
                .col(col("agent_id").uuid().not_null())
                .col(environment())
                .col(col("commit_id").uuid().not_null())
                .col(revision())
                .col(string("updated_by"))
                .col(time("updated_at"))
                .to_owned(),
            // Prompts: one row per environment; versions are immutable and shared.
            table("prompts")
                .col(environment())
                .col(string("slug"))
                .col(col("published_version_id").uuid().null())
                .col(col("draft_template").text().null())
                .col(col("draft_variables").json_binary().null())
                .col(col("draft_model_settings").json_binary().null())
                .col(revision())
                .col(string("updated_by"))
                .col(time("created_at"))
                .col(time("updated_at"))
                .to_owned(),
            table("prompt_versions")
                .col(string("slug"))
                .col(col("version").integer().not_null())
                .col(text("template"))
                .col(json("variables"))
                .col(json("model_settings"))
                .col(string("created_by"))
                .col(time("created_at"))
                .to_owned(),
            // Connector instances and their keyed resources, per environment.
            table("connector_instances")
                .col(environment())
                .col(string("slug"))
                .col(string("kind"))
                .col(json("config"))
                .col(json("credential_refs"))
                .col(revision())
                .col(time("created_at"))
                .col(time("updated_at"))
                .to_owned(),
            table("connector_resources")
                .col(environment())
                .col(col("instance_id").uuid().not_null())
                .col(string("key"))
                .col(json("config"))
                .col(revision())
                .col(time("created_at"))
                .col(time("updated_at"))
                .to_owned(),
            table("triggers")
                .col(environment())
                .col(string("name"))
                .col(string("agent_slug"))
                .col(string("kind"))
                .col(col("schedule").string_len(255).null())
                .col(json("config"))
                .col(col("enabled").boolean().not_null())
                .col(revision())
                .col(time("created_at"))
                .col(time("updated_at"))
                .to_owned(),
            // Runtime records: per environment, never edited by people.
            table("executions")
                .col(environment())
                .col(col("agent_id").uuid().not_null())
                .col(col("commit_id").uuid().null())
                .col(col("trigger_id").uuid().null())
                .col(col("session_id").uuid().null())
                .col(string("status"))
                .col(json("input"))
                .col(col("output").json_binary().null())
                .col(col("error").text().null())
                .col(time("created_at"))
                .col(col("started_at").timestamp_with_time_zone().null())
                .col(col("finished_at").timestamp_with_time_zone().null())
                .to_owned(),
            table("sessions")
                .col(environment())
                .col(col("agent_id").uuid().null())
                .col(string("title"))
                .col(time("created_at"))
                .col(time("updated_at"))
                .to_owned(),
            table("session_messages")
                .col(environment())
                .col(col("session_id").uuid().not_null())
                .col(string("role"))
                .col(text("content"))
                .col(time("created_at"))
                .to_owned(),
            table("traces")
                .col(environment())
                .col(col("execution_id").uuid().null())
                .col(string("name"))
                .col(string("status"))
                .col(time("started_at"))
                .col(col("ended_at").timestamp_with_time_zone().null())
                .to_owned(),
            table("spans")
                .col(environment())
                .col(col("trace_id").uuid().not_null())
                .col(col("execution_id").uuid().null())
                .col(col("parent_span_id").uuid().null())
                .col(string("name"))
                .col(string("kind"))
                .col(string("status"))
                .col(time("started_at"))
                .col(col("ended_at").timestamp_with_time_zone().null())
                .col(json("attributes"))
                .col(col("input_tokens").big_integer().null())
                .col(col("output_tokens").big_integer().null())
                .to_owned(),
            table("memory_entries")
                .col(environment())
                .col(string("namespace"))
                .col(col("key").string_len(512).not_null())
                .col(json("value"))
                .col(revision())
                .col(time("created_at"))
                .col(time("updated_at"))
                .to_owned(),
            // Shared by both environments.
            table("credentials")
                .col(string("name"))
                .col(string("kind"))
                .col(col("ciphertext").binary().not_null())
                .col(col("nonce").binary().not_null())
                .col(string("hint"))
                .col(revision())
                .col(string("created_by"))
                .col(time("created_at"))
                .col(col("rotated_by").string_len(255).null())
                .col(col("rotated_at").timestamp_with_time_zone().null())
                .to_owned(),
            table("shared_resources")
                .col(string("category"))
                .col(string("name"))
                .col(string("kind"))
                .col(json("config"))
                .col(json("credential_refs"))
                .col(revision())
                .col(time("created_at"))
                .col(time("updated_at"))
                .to_owned(),
        ];
        for statement in tables {
            manager.create_table(statement).await?;
        }

        let indexes = [
            index("agents", "ux_agents_slug", &["tenant_id", "slug"], true),
            index("agent_commits", "ux_agent_commits_seq", &["agent_id", "seq"], true),
            index(
                "agent_commit_files",
                "ux_commit_files_path",
                &["commit_id", "path"],
                true,
            ),
            index("blobs", "ux_blobs_hash", &["tenant_id", "hash"], true),
            index(
                "agent_deployments",
                "ux_deployments_env",
                &["agent_id", "environment"],
                true,
            ),
            index(
                "agent_deployments",
                "ix_deployments_tenant",
                &["tenant_id", "environment"],
                false,
            ),
            index(
                "prompts",
                "ux_prompts_slug",
                &["tenant_id", "environment", "slug"],
                true,
            ),
            index(
                "prompt_versions",
                "ux_prompt_versions",
                &["tenant_id", "slug", "version"],
                true,
            ),
            index(
                "connector_instances",
                "ux_connectors_slug",
                &["tenant_id", "environment", "slug"],
                true,
            ),
            index(
                "connector_resources",
                "ux_connector_resources_key",
                &["instance_id", "key"],
                true,
            ),
            index(
                "triggers",
                "ux_triggers_name",
                &["tenant_id", "environment", "name"],
                true,
            ),
            index(
                "executions",
                "ix_executions_env",
                &["tenant_id", "environment", "id"],
                false,
            ),
            index("executions", "ix_executions_agent", &["agent_id", "environment"], false),
            index(
                "sessions",
                "ix_sessions_env",
                &["tenant_id", "environment", "id"],
                false,
            ),
            index("session_messages", "ix_messages_session", &["session_id", "id"], false),
            index("traces", "ix_traces_env", &["tenant_id", "environment", "id"], false),
            index("traces", "ix_traces_execution", &["execution_id"], false),
            index("spans", "ix_spans_trace", &["trace_id", "id"], false),
            index("spans", "ix_spans_execution", &["execution_id"], false),
            index(
                "memory_entries",
                "ux_memory_key",
                &["tenant_id", "environment", "namespace", "key"],
                true,
            ),
            index("credentials", "ux_credentials_name", &["tenant_id", "name"], true),
            index(
                "shared_resources",
                "ux_shared_resources_name",
                &["tenant_id", "category", "name"],
                true,
            ),
        ];
        for statement in indexes {
            manager.create_index(statement).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for name in [
            "shared_resources",
            "credentials",
            "memory_entries",
            "spans",
            "traces",
            "session_messages",
            "sessions",
            "executions",
            "triggers",
            "connector_resources",
            "connector_instances",
            "prompt_versions",
            "prompts",
            "agent_deployments",
            "blobs",
            "agent_commit_files",
            "agent_commits",
            "agents",
        ] {
            manager
                .drop_table(Table::drop().table(Alias::new(name)).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}
