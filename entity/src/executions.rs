//! One run of an agent in one environment.

use sea_orm::entity::prelude::*;

use crate::Environment;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize, serde::Deserialize)]
#[sea_orm(table_name = "executions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: String,
    pub environment: Environment,
    pub agent_id: Uuid,
    pub commit_id: Option<Uuid>,
    pub trigger_id: Option<Uuid>,
    pub session_id: Option<Uuid>,
    pub status: String,
    #[sea_orm(column_type = "JsonBinary")]
    pub input: Json,
    #[sea_orm(column_type = "JsonBinary")]
    pub output: Option<Json>,
    pub error: Option<String>,
    pub created_at: DateTimeUtc,
    pub started_at: Option<DateTimeUtc>,
    pub finished_at: Option<DateTimeUtc>,
    /// The agent's stderr (capped).
    #[sea_orm(column_type = "Text")]
    pub log: Option<String>,
    /// The worker that claimed it.
    pub claimed_by: Option<String>,
    /// While RUNNING on a worker: until when the worker's lease holds (it renews it).
    pub lease_expires_at: Option<DateTimeUtc>,
    /// The execution whose run started this one (agent calling agent).
    pub parent_id: Option<Uuid>,
    /// 0 for a root execution, parent's depth + 1 for a child.
    pub depth: i32,
    /// 1 for the first run; retries of idempotent agents count up.
    pub attempt: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl crate::TenantOwned for Entity {
    fn tenant_column() -> Column {
        Column::TenantId
    }
}

impl crate::EnvironmentOwned for Entity {
    fn environment_column() -> Column {
        Column::Environment
    }
}
