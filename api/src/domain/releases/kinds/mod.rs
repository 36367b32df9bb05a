//! One module per publishable kind, each owning its state snapshot, what its items need in
//! production, the locking of its staging rows and how a state is applied to production.
//!
//! Adding a fifth kind: a new file here implementing [`Publishable`], its variant in
//! [`ItemKind`] (with `ALL` and `as_str`), and its line in [`with_kind!`]. Everything else
//! (pending changes, plan, dependencies, publish, rollback) is generic.

mod agent;
mod connector;
mod prompt;
mod trigger;

use std::collections::BTreeMap;

use entity::EnvironmentOwned;
use sea_orm::{ColumnTrait, ConnectionTrait, QueryFilter, QuerySelect};
use serde_json::Value;

use super::publish::ProductionWrite;
use super::state::EnvironmentState;
use super::{ItemKind, ItemRef};
use crate::error::Result;
use crate::scope::{Scope, Tenant};

/// A kind of item that staging edits and publishing copies to production.
pub(super) trait Publishable {
    /// The state of every item of this kind in `scope`'s environment, by slug (a fixed number
    /// of queries, whatever the number of items). See `state.rs` for each kind's shape.
    async fn snapshot<C: ConnectionTrait>(db: &C, scope: &Scope) -> Result<Vec<(String, Value)>>;

    /// What these items (slug, state) need in production to work: (item, required item).
    async fn requires<C: ConnectionTrait>(_db: &C, _tenant: &Tenant, _items: &[Item<'_>]) -> Result<Vec<Edge>> {
        Ok(Vec::new())
    }

    /// Locks the staging rows of `slugs` until the transaction ends (an edit waits for the
    /// publish that reads them).
    async fn lock_staging<C: ConnectionTrait>(db: &C, staging: &Scope, slugs: Vec<String>) -> Result<()>;

    /// Makes production's item equal `target.state`, through the kind's domain module.
    /// Returns the state written.
    async fn put<C: ConnectionTrait>(db: &C, target: Target<'_>) -> Result<Value>;

    /// Removes the item from production, through the kind's domain module.
    async fn remove<C: ConnectionTrait>(db: &C, write: &ProductionWrite, slug: &str) -> Result<()>;
}

/// An item of one kind: its slug and state.
pub(super) type Item<'a> = (&'a str, &'a Value);

/// `.0` needs `.1` in production.
pub(super) type Edge = (ItemRef, ItemRef);

/// What [`Publishable::put`] writes: production's `slug` becomes `state`.
pub(super) struct Target<'a> {
    pub write: &'a ProductionWrite,
    pub actor: &'a str,
    pub slug: &'a str,
    pub state: &'a Value,
}

/// Locks the staging rows of `E` whose `column` is one of `slugs` (`lock_staging` of a kind
/// whose rows are keyed by slug).
async fn lock_by_slug<E, C>(db: &C, staging: &Scope, column: E::Column, slugs: Vec<String>) -> Result<()>
where
    E: EnvironmentOwned,
    C: ConnectionTrait,
{
    staging
        .select::<E>()
        .filter(column.is_in(slugs))
        .lock_exclusive()
        .all(db)
        .await?;
    Ok(())
}

/// The list of kinds: runs `$body` with `$K` standing for the implementation of `$kind`.
macro_rules! with_kind {
    ($kind:expr, $K:ident => $body:expr) => {
        match $kind {
            ItemKind::Agent => {
                type $K = agent::Agent;
                $body
            }
            ItemKind::Prompt => {
                type $K = prompt::Prompt;
                $body
            }
            ItemKind::Connector => {
                type $K = connector::Connector;
                $body
            }
            ItemKind::Trigger => {
                type $K = trigger::Trigger;
                $body
            }
        }
    };
}

/// Every item of every kind in `scope`'s environment.
pub(super) async fn snapshot<C: ConnectionTrait>(db: &C, scope: &Scope) -> Result<EnvironmentState> {
    let mut state = EnvironmentState::default();
    for kind in ItemKind::ALL {
        let items = with_kind!(kind, K => K::snapshot(db, scope).await?);
        for (slug, value) in items {
            state.items.insert((kind, slug), value);
        }
    }
    Ok(state)
}

/// Every (item, required item) edge of `items`, by kind then slug.
pub(super) async fn requires<C: ConnectionTrait>(
    db: &C,
    tenant: &Tenant,
    items: &BTreeMap<(ItemKind, String), Value>,
) -> Result<Vec<Edge>> {
    let mut edges: Vec<Edge> = Vec::new();
    for kind in ItemKind::ALL {
        let of_kind: Vec<Item<'_>> = items
            .iter()
            .filter(|((k, _), _)| *k == kind)
            .map(|((_, slug), value)| (slug.as_str(), value))
            .collect();
        if !of_kind.is_empty() {
            edges.extend(with_kind!(kind, K => K::requires(db, tenant, &of_kind).await?));
        }
    }
    Ok(edges)
}

/// Locks the staging rows of `items`.
pub(super) async fn lock_staging<C: ConnectionTrait>(db: &C, staging: &Scope, items: &[&ItemRef]) -> Result<()> {
    for kind in ItemKind::ALL {
        let slugs: Vec<String> = items
            .iter()
            .filter(|item| item.kind == kind)
            .map(|item| item.slug.clone())
            .collect();
        if !slugs.is_empty() {
            with_kind!(kind, K => K::lock_staging(db, staging, slugs).await?);
        }
    }
    Ok(())
}

/// Makes production's `item` equal `target`; returns the state written.
pub(super) async fn apply<C: ConnectionTrait>(
    db: &C,
    write: &ProductionWrite,
    actor: &str,
    item: &ItemRef,
    target: Option<&Value>,
) -> Result<Option<Value>> {
    let slug = item.slug.as_str();
    Ok(match target {
        Some(state) => {
            let target = Target {
                write,
                actor,
                slug,
                state,
            };
            Some(with_kind!(item.kind, K => K::put(db, target).await?))
        }
        None => {
            with_kind!(item.kind, K => K::remove(db, write, slug).await?);
            None
        }
    })
}

/// A field of a state that must hold a UUID.
fn uuid_field(value: &Value, field: &str) -> Result<uuid::Uuid> {
    value
        .get(field)
        .and_then(Value::as_str)
        .and_then(|id| uuid::Uuid::parse_str(id).ok())
        .ok_or_else(|| crate::error::Error::internal(anyhow::anyhow!("state without a valid `{field}`: {value}")))
}
