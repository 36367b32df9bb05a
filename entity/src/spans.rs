//! A span of a trace.

use sea_orm::entity::prelude::*;

use crate::Environment;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize, serde::Deserialize)]
#[sea_orm(table_name = "spans")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: String,
    pub environment: Environment,
    pub trace_id: Uuid,
    pub execution_id: Option<Uuid>,
    pub parent_span_id: Option<Uuid>,
    pub name: String,
    pub kind: String,
    pub status: String,
    pub started_at: DateTimeUtc,
    pub ended_at: Option<DateTimeUtc>,
    #[sea_orm(column_type = "JsonBinary")]
    pub attributes: Json,
    pub input_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
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
