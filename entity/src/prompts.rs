//! A prompt in one environment: the published version it serves and, in staging, its draft.

use sea_orm::entity::prelude::*;

use crate::Environment;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize, serde::Deserialize)]
#[sea_orm(table_name = "prompts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: String,
    pub environment: Environment,
    pub slug: String,
    pub published_version_id: Option<Uuid>,
    pub draft_template: Option<String>,
    #[sea_orm(column_type = "JsonBinary")]
    pub draft_variables: Option<Json>,
    #[sea_orm(column_type = "JsonBinary")]
    pub draft_model_settings: Option<Json>,
    pub revision: i64,
    pub updated_by: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// In production: the release that last set this record.
    pub release_id: Option<Uuid>,
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
