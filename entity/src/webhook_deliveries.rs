//! One message to one webhook endpoint (the outbox row and its delivery log entry).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_deliveries")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: String,
    pub endpoint_id: Uuid,
    /// The `webhook-id` header (`msg_...`): the same for a redelivery of the same message.
    pub message_id: String,
    /// `release.published`, `webhook.ping`, ...
    pub event_type: String,
    /// The event-log `seq` the message was made from (null for pings).
    pub event_seq: Option<i64>,
    /// The exact JSON body sent (signed as is).
    #[sea_orm(column_type = "Text")]
    pub body: String,
    /// `pending`, `succeeded` or `failed`.
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: DateTimeUtc,
    /// A process holds the delivery until then (it is sending it).
    pub claimed_until: Option<DateTimeUtc>,
    pub claim_token: Option<Uuid>,
    pub created_at: DateTimeUtc,
    pub last_attempt_at: Option<DateTimeUtc>,
    pub delivered_at: Option<DateTimeUtc>,
    pub response_status: Option<i32>,
    pub latency_ms: Option<i64>,
    pub last_error: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl crate::TenantOwned for Entity {
    fn tenant_column() -> Column {
        Column::TenantId
    }
}
