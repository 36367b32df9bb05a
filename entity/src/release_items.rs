//! One item of a release, with the production state before and after it.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize, serde::Deserialize)]
#[sea_orm(table_name = "release_items")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: String,
    pub release_id: Uuid,
    /// `agent:<slug>`, `prompt:<slug>`, `connector:<slug>` or `trigger:<name>`.
    pub item_id: String,
    pub kind: String,
    /// `added`, `modified` or `removed`.
    pub change: String,
    /// Production state before (null: absent).
    #[sea_orm(column_type = "JsonBinary")]
    pub before: Option<Json>,
    /// Production state after (null: absent).
    #[sea_orm(column_type = "JsonBinary")]
    pub after: Option<Json>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl crate::TenantOwned for Entity {
    fn tenant_column() -> Column {
        Column::TenantId
    }
}
