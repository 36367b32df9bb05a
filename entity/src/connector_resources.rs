//! A keyed resource of a connector instance.

use sea_orm::entity::prelude::*;

use crate::Environment;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize, serde::Deserialize)]
#[sea_orm(table_name = "connector_resources")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: String,
    pub environment: Environment,
    pub instance_id: Uuid,
    pub key: String,
    #[sea_orm(column_type = "JsonBinary")]
    pub config: Json,
    pub revision: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
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
