//! A scheduled release: exactly the reviewed items and revisions, published once at `run_at`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize, serde::Deserialize)]
#[sea_orm(table_name = "scheduled_releases")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: String,
    pub run_at: DateTimeUtc,
    /// `[{"item": "agent:bot", "revision": "..."}]`.
    #[sea_orm(column_type = "JsonBinary")]
    pub items: Json,
    #[sea_orm(column_type = "Text")]
    pub note: String,
    /// `scheduled`, `running`, `published`, `failed`, `missed` or `cancelled`.
    pub state: String,
    /// Increases with every change (reschedule, cancel, claim).
    pub revision: i64,
    /// While `running`: the claim's lease (another replica may retry after it).
    pub claimed_until: Option<DateTimeUtc>,
    pub release_id: Option<Uuid>,
    /// Why it failed (the stale items), or was missed.
    #[sea_orm(column_type = "Text", nullable)]
    pub failure: Option<String>,
    /// For a failed one: the item keys that changed in staging since it was scheduled.
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub stale_items: Option<Json>,
    pub created_by: String,
    /// The scheduler's role, with which the release is published.
    pub created_by_role: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// The idempotency key it was scheduled with, if any (unique per tenant).
    pub idempotency_key: Option<String>,
    /// Fingerprint of the request that used `idempotency_key` (internal: never shown).
    pub request_hash: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl crate::TenantOwned for Entity {
    fn tenant_column() -> Column {
        Column::TenantId
    }
}
