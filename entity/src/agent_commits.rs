//! An immutable commit of an agent's code bundle.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize, serde::Deserialize)]
#[sea_orm(table_name = "agent_commits")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: String,
    pub agent_id: Uuid,
    pub seq: i64,
    pub hash: String,
    pub parent_id: Option<Uuid>,
    #[sea_orm(column_type = "Text")]
    pub message: String,
    pub author: String,
    #[sea_orm(column_type = "JsonBinary")]
    pub manifest: Json,
    pub file_count: i64,
    pub total_size: i64,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl crate::TenantOwned for Entity {
    fn tenant_column() -> Column {
        Column::TenantId
    }
}
