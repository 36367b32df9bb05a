//! The event log: every change a live subscriber can see, written in the same transaction as
//! the change. `seq` orders a tenant's events in commit order and is the subscription cursor.

use sea_orm::entity::prelude::*;

use crate::Environment;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize, serde::Deserialize)]
#[sea_orm(table_name = "events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: String,
    pub environment: Environment,
    /// 1, 2, 3... per tenant, in commit order.
    pub seq: i64,
    /// `execution`, `session`, `trace` or `release`.
    pub topic: String,
    /// For example `started`, `finished`, `message_added`.
    pub kind: String,
    pub agent_slug: Option<String>,
    pub execution_id: Option<Uuid>,
    pub session_id: Option<Uuid>,
    #[sea_orm(column_type = "JsonBinary")]
    pub payload: Json,
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

impl crate::EnvironmentOwned for Entity {
    fn environment_column() -> Column {
        Column::Environment
    }
}
