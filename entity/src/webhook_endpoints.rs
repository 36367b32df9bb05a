//! An outgoing webhook endpoint, shared by both environments. (Not `Serialize`: it holds a
//! sealed signing secret.)

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_endpoints")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: String,
    pub url: String,
    /// The event types delivered, as a JSON array of strings (`release.published`, ...).
    #[sea_orm(column_type = "JsonBinary")]
    pub event_types: Json,
    pub enabled: bool,
    /// The signing secret (`whsec_...`), encrypted; never returned.
    pub secret_ciphertext: Vec<u8>,
    pub secret_nonce: Vec<u8>,
    pub secret_hint: String,
    pub revision: i64,
    /// Set when a delivery ran out of retries; cleared by the next successful delivery.
    pub failing_since: Option<DateTimeUtc>,
    pub created_by: String,
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
