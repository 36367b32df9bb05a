//! Credentials: shared by both environments; the secret is write-only.
//!
//! The secret is sealed with [`crate::crypto::SecretBox`] before it reaches the database and
//! is never returned by a read: the model type handed to the API layers is [`Credential`],
//! which has no secret field at all.

use chrono::{DateTime, Utc};
use entity::credentials;
use sea_orm::{ColumnTrait, ConnectionTrait, QueryFilter, QuerySelect, Set};
use uuid::Uuid;
use zeroize::Zeroize;

use super::pagination::{self, Page, PageRequest};
use super::{new_id, now, revision, validate};
use crate::crypto::{SecretBox, hint};
use crate::db::Db;
use crate::error::{Error, Result};
use crate::scope::{Tenant, TenantWrite};

pub const MAX_SECRET_BYTES: usize = 16 * 1024;

/// The readable part of a credential.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credential {
    pub id: Uuid,
    pub name: String,
    pub kind: String,
    pub hint: String,
    pub revision: i64,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub rotated_by: Option<String>,
    pub rotated_at: Option<DateTime<Utc>>,
}

impl From<credentials::Model> for Credential {
    fn from(row: credentials::Model) -> Self {
        Credential {
            id: row.id,
            name: row.name,
            kind: row.kind,
            hint: row.hint,
            revision: row.revision,
            created_by: row.created_by,
            created_at: row.created_at,
            rotated_by: row.rotated_by,
            rotated_at: row.rotated_at,
        }
    }
}

/// A secret value in transit. Its `Debug` is redacted so it cannot end up in a log line, and
/// its plaintext is wiped from memory when it is dropped (after sealing).
#[derive(Clone)]
pub struct Secret(pub String);

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

fn validate_secret(secret: &Secret) -> Result<()> {
    if secret.0.is_empty() {
        return Err(Error::bad_input("secret must not be empty"));
    }
    if secret.0.len() > MAX_SECRET_BYTES {
        return Err(Error::bad_input(format!(
            "secret must be at most {MAX_SECRET_BYTES} bytes"
        )));
    }
    Ok(())
}

/// A page of the tenant's credentials (metadata), by name.
pub async fn list(db: &Db, tenant: &Tenant, page: &PageRequest) -> Result<Page<Credential>> {
    let select = tenant.select::<credentials::Entity>();
    let page = pagination::fetch_by_name(db, select, credentials::Column::Name, page).await?;
    Ok(page.map(Credential::from))
}

/// A credential of the tenant by id (None: not there).
pub async fn by_id(db: &Db, tenant: &Tenant, id: Uuid) -> Result<Option<Credential>> {
    let row = super::lookup::in_tenant::<credentials::Entity, _>(&db.conn, tenant, credentials::Column::Id, id);
    Ok(row.await?.map(Credential::from))
}

async fn find<C: ConnectionTrait>(db: &C, tenant: &Tenant, name: &str) -> Result<Option<credentials::Model>> {
    Ok(tenant
        .select::<credentials::Entity>()
        .filter(credentials::Column::Name.eq(name))
        .one(db)
        .await?)
}

/// Fails with BAD_USER_INPUT naming every credential of `names` that does not exist.
pub async fn require_all<C: ConnectionTrait>(db: &C, tenant: &Tenant, names: &[String]) -> Result<()> {
    if names.is_empty() {
        return Ok(());
    }
    let existing: Vec<String> = tenant
        .select::<credentials::Entity>()
        .filter(credentials::Column::Name.is_in(names.to_vec()))
        .select_only()
        .column(credentials::Column::Name)
        .into_tuple()
        .all(db)
        .await?;
    let missing: Vec<&str> = names
        .iter()
        .filter(|n| !existing.contains(n))
        .map(String::as_str)
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Error::bad_input(format!(
            "unknown credentials: {}; create them first (credentials are shared by both environments)",
            missing.join(", ")
        )))
    }
}

pub async fn create(
    db: &Db,
    tenant: &Tenant,
    secret_box: &SecretBox,
    actor: &str,
    name: &str,
    kind: &str,
    secret: Secret,
) -> Result<Credential> {
    validate::author(actor)?;
    validate::slug("name", name)?;
    validate::slug("kind", kind)?;
    validate_secret(&secret)?;
    let sealed = secret_box.seal(&secret.0).map_err(Error::internal)?;
    let tx = db.begin_write().await?;
    if find(&tx, tenant, name).await?.is_some() {
        return Err(Error::Conflict(format!(
            "credential {name:?} already exists; rotate it instead"
        )));
    }
    let row = credentials::ActiveModel {
        id: Set(new_id()),
        tenant_id: Set(tenant.id().to_string()),
        name: Set(name.to_string()),
        kind: Set(kind.to_string()),
        ciphertext: Set(sealed.ciphertext),
        nonce: Set(sealed.nonce),
        hint: Set(hint(&secret.0)),
        revision: Set(1),
        created_by: Set(actor.to_string()),
        created_at: Set(now()),
        rotated_by: Set(None),
        rotated_at: Set(None),
    }
    .insert_into(tenant, &tx)
    .await?;
    db.commit(tx).await?;
    Ok(row.into())
}

/// Replaces the secret. Affects both environments immediately.
pub async fn rotate(
    db: &Db,
    tenant: &Tenant,
    secret_box: &SecretBox,
    actor: &str,
    name: &str,
    secret: Secret,
    expected_revision: Option<i64>,
) -> Result<Credential> {
    validate::author(actor)?;
    validate_secret(&secret)?;
    let sealed = secret_box.seal(&secret.0).map_err(Error::internal)?;
    let tx = db.begin_write().await?;
    let row = find(&tx, tenant, name)
        .await?
        .ok_or_else(|| Error::not_found(format!("credential {name:?}")))?;
    let row = revision::update::<credentials::Entity, _, _>(
        &tx,
        tenant,
        &format!("credential {name:?}"),
        row.id,
        expected_revision,
        |active| {
            active.ciphertext = Set(sealed.ciphertext);
            active.nonce = Set(sealed.nonce);
            active.hint = Set(hint(&secret.0));
            active.rotated_by = Set(Some(actor.to_string()));
            active.rotated_at = Set(Some(now()));
        },
    )
    .await?;
    db.commit(tx).await?;
    Ok(row.into())
}

pub async fn delete(db: &Db, tenant: &Tenant, name: &str, expected_revision: Option<i64>) -> Result<Uuid> {
    let tx = db.begin_write().await?;
    let row = find(&tx, tenant, name)
        .await?
        .ok_or_else(|| Error::not_found(format!("credential {name:?}")))?;
    revision::delete::<credentials::Entity, _>(&tx, tenant, &format!("credential {name:?}"), row.id, expected_revision)
        .await?;
    db.commit(tx).await?;
    Ok(row.id)
}
