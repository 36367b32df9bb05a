//! The audit log: one row per change, who made it, where and what. Append-only: rows are
//! inserted and read, never updated or deleted by the API.

use sea_orm::entity::prelude::*;

use crate::Environment;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize, serde::Deserialize)]
#[sea_orm(table_name = "audit_entries")]
pub struct Model {
    /// UUIDv7: entries sort by time.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: String,
    pub environment: Environment,
    /// The token's subject.
    pub actor_subject: String,
    /// The token's role (`developer`, `publisher`, `admin`...).
    pub actor_role: String,
    /// The operation, for example `createCredential` or `publish`.
    pub action: String,
    /// The kind of record changed, for example `Credential` or `Release`.
    pub record_kind: String,
    /// The record's key (slug, name...), when the operation names one.
    pub record_key: Option<String>,
    /// What changed: the operation's input with secrets redacted, and the result's id.
    #[sea_orm(column_type = "JsonBinary")]
    pub summary: Json,
    /// A non-secret summary of the record before the change (revision, fingerprint or commit,
    /// flags, names; never a secret value); null for a create or when there was no record.
    #[sea_orm(column_type = "JsonBinary", nullable)]
    #[serde(rename = "before")]
    pub before_state: Option<Json>,
    /// The same summary after the change; null for a delete.
    #[sea_orm(column_type = "JsonBinary", nullable)]
    #[serde(rename = "after")]
    pub after_state: Option<Json>,
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
