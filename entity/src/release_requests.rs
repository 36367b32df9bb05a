//! A release request: exactly what a developer proposes to publish, for publishers to approve.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize, serde::Deserialize)]
#[sea_orm(table_name = "release_requests")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: String,
    pub requested_by: String,
    #[sea_orm(column_type = "Text")]
    pub note: String,
    /// Requested as "everything pending" (with `fingerprint`).
    pub all_items: bool,
    pub fingerprint: Option<String>,
    /// A requested rollback: the release whose changes are undone.
    pub rollback_to: Option<Uuid>,
    /// `[{"item": "agent:bot", "revision": "..."}]`: the items and the revisions reviewed.
    #[sea_orm(column_type = "JsonBinary")]
    pub items: Json,
    /// `open`, `approved`, `rejected` or `published` (staleness is computed on read).
    pub state: String,
    /// The release that carried it out, once published.
    pub release_id: Option<Uuid>,
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
