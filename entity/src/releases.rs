//! A release: one publish or rollback, append-only.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize, serde::Deserialize)]
#[sea_orm(table_name = "releases")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: String,
    /// 1, 2, 3... per tenant.
    pub number: i64,
    /// `publish` or `rollback`.
    pub kind: String,
    /// For a rollback: the release it rolls back.
    pub rolls_back_id: Option<Uuid>,
    #[sea_orm(column_type = "Text")]
    pub note: String,
    pub idempotency_key: Option<String>,
    /// Fingerprint of the publish request that used `idempotency_key` (internal: never shown).
    #[serde(skip)]
    pub request_hash: Option<String>,
    pub created_by: String,
    pub created_at: DateTimeUtc,
    /// The approved release request this release carried out (when approvals are required).
    pub approval_request_id: Option<Uuid>,
    /// An admin published without an approved request (an emergency rollback).
    pub emergency_override: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl crate::TenantOwned for Entity {
    fn tenant_column() -> Column {
        Column::TenantId
    }
}
