//! Releases: what staging has that production lacks, atomic publishing, history, rollback.
//!
//! The model is small on purpose (see [`state`]): every publishable item of an environment
//! (agent, prompt, connector, trigger) has a canonical JSON *state*. An item is pending when
//! staging's state differs from production's; its `revision` fingerprints both states, so a
//! publish of a reviewed revision fails with CONFLICT if either side moved since. Publishing
//! writes staging's state to production; a rollback writes a release's `before` states back.
//! Each publish or rollback is one transaction and one append-only release record.

pub mod diff;
mod kinds;
mod plan;
mod publish;
pub mod state;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use entity::{Environment, agent_commit_files, blobs, release_items, releases};
use sea_orm::{ColumnTrait, ConnectionTrait, Order, QueryFilter, QueryOrder};
use serde_json::Value;
use uuid::Uuid;

pub use plan::{Dependency, DependencyStatus, Plan, PlannedItem, PublishRequest, plan};
pub(crate) use publish::request_hash;
pub use publish::{ProductionWrite, publish};

use super::pagination::{self, Page, PageRequest};
use crate::db::Db;
use crate::error::{Error, Result};
use crate::scope::Tenant;

/// What can be published.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ItemKind {
    Agent,
    Prompt,
    Connector,
    Trigger,
}

impl ItemKind {
    pub const ALL: [ItemKind; 4] = [
        ItemKind::Agent,
        ItemKind::Prompt,
        ItemKind::Connector,
        ItemKind::Trigger,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ItemKind::Agent => "agent",
            ItemKind::Prompt => "prompt",
            ItemKind::Connector => "connector",
            ItemKind::Trigger => "trigger",
        }
    }
}

/// How an item differs between staging and production.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Change {
    /// In staging, not in production.
    Added,
    /// In both, different.
    Modified,
    /// In production, removed from staging.
    Removed,
}

impl Change {
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Added => "added",
            Change::Modified => "modified",
            Change::Removed => "removed",
        }
    }

    pub fn parse(value: &str) -> Option<Change> {
        [Change::Added, Change::Modified, Change::Removed]
            .into_iter()
            .find(|c| c.as_str() == value)
    }

    /// The change that turns `before` into `after` (None: nothing changes).
    pub fn between(before: Option<&Value>, after: Option<&Value>) -> Option<Change> {
        match (before, after) {
            (None, Some(_)) => Some(Change::Added),
            (Some(_), None) => Some(Change::Removed),
            (Some(b), Some(a)) if state::canonical(b) != state::canonical(a) => Some(Change::Modified),
            _ => None,
        }
    }
}

/// An item's stable id: `agent:support-bot`, `prompt:greeting`, ...
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ItemRef {
    pub kind: ItemKind,
    pub slug: String,
}

impl fmt::Display for ItemRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind.as_str(), self.slug)
    }
}

impl FromStr for ItemRef {
    type Err = Error;

    fn from_str(id: &str) -> Result<Self> {
        let (kind, slug) = id.split_once(':').unwrap_or(("", ""));
        let kind = ItemKind::ALL.into_iter().find(|k| k.as_str() == kind).ok_or_else(|| {
            Error::bad_input(format!(
                "{id:?} is not an item id: use agent:<slug>, prompt:<slug>, connector:<slug> or trigger:<name>"
            ))
        })?;
        if slug.is_empty() {
            return Err(Error::bad_input(format!("{id:?} has no slug after the colon")));
        }
        Ok(ItemRef {
            kind,
            slug: slug.to_string(),
        })
    }
}

/// A publish or a rollback, as the domain hands it out (the idempotency fingerprint stays
/// internal).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Release {
    pub id: Uuid,
    /// 1, 2, 3... per tenant.
    pub number: i64,
    /// `publish` or `rollback`.
    pub kind: String,
    /// For a rollback: the release it rolls back.
    pub rolls_back_id: Option<Uuid>,
    pub note: String,
    pub idempotency_key: Option<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    /// The approved release request it carried out (when approvals are required).
    pub approval_request_id: Option<Uuid>,
    /// An admin published without an approved request.
    pub emergency_override: bool,
}

impl From<releases::Model> for Release {
    fn from(row: releases::Model) -> Self {
        Release {
            id: row.id,
            number: row.number,
            kind: row.kind,
            rolls_back_id: row.rolls_back_id,
            note: row.note,
            idempotency_key: row.idempotency_key,
            created_by: row.created_by,
            created_at: row.created_at,
            approval_request_id: row.approval_request_id,
            emergency_override: row.emergency_override,
        }
    }
}

impl Release {
    /// The release as a release event describes it (for one deleted since).
    pub fn of_event(summary: super::events::ReleaseSummary) -> Release {
        Release {
            id: summary.id,
            number: summary.number,
            kind: summary.kind,
            rolls_back_id: summary.rolls_back_id,
            note: summary.note,
            idempotency_key: summary.idempotency_key,
            created_by: summary.created_by,
            created_at: summary.created_at,
            approval_request_id: None,
            emergency_override: false,
        }
    }
}

/// One item of a release, with production's state before and after it.
#[derive(Clone, Debug, PartialEq)]
pub struct ReleaseItem {
    pub id: Uuid,
    pub release_id: Uuid,
    /// The stable item key (`agent:<slug>`, ...).
    pub key: String,
    pub kind: ItemKind,
    pub change: Change,
    /// Production's state before and after (None: absent).
    pub before: Option<Value>,
    pub after: Option<Value>,
}

impl TryFrom<release_items::Model> for ReleaseItem {
    type Error = Error;

    fn try_from(row: release_items::Model) -> Result<Self> {
        let change = Change::parse(&row.change)
            .ok_or_else(|| Error::internal(anyhow::anyhow!("stored change {:?} is unknown", row.change)))?;
        Ok(ReleaseItem {
            kind: row.item_id.parse::<ItemRef>()?.kind,
            change,
            id: row.id,
            release_id: row.release_id,
            key: row.item_id,
            before: row.before,
            after: row.after,
        })
    }
}

/// One item that differs between staging and production.
#[derive(Clone, Debug)]
pub struct PendingChange {
    pub item: ItemRef,
    pub change: Change,
    /// Fingerprint of the staging and production states this change shows.
    pub revision: String,
    pub staging: Option<Value>,
    pub production: Option<Value>,
}

/// Everything that differs between staging and production, by kind then slug.
pub fn compare(staging: &state::EnvironmentState, production: &state::EnvironmentState) -> Vec<PendingChange> {
    let keys: std::collections::BTreeSet<&(ItemKind, String)> =
        staging.items.keys().chain(production.items.keys()).collect();
    keys.into_iter()
        .filter_map(|(kind, slug)| {
            let (s, p) = (staging.get(*kind, slug), production.get(*kind, slug));
            let change = Change::between(p, s)?;
            Some(PendingChange {
                item: ItemRef {
                    kind: *kind,
                    slug: slug.clone(),
                },
                change,
                revision: state::fingerprint(&[s, p]),
                staging: s.cloned(),
                production: p.cloned(),
            })
        })
        .collect()
}

/// What staging has that production lacks (the same whichever environment asks).
pub async fn pending_changes<C: ConnectionTrait>(db: &C, tenant: &Tenant) -> Result<Vec<PendingChange>> {
    let staging = state::load(db, &tenant.in_env(Environment::Staging)).await?;
    let production = state::load(db, &tenant.in_env(Environment::Production)).await?;
    Ok(compare(&staging, &production))
}

/// The fingerprint of a whole set of pending changes (what `all: true` must quote).
pub fn plan_fingerprint(changes: &[PendingChange]) -> String {
    let lines: Vec<Value> = changes
        .iter()
        .map(|c| Value::String(format!("{}={}", c.item, c.revision)))
        .collect();
    state::fingerprint(&[Some(&Value::Array(lines))])
}

/// Reads an agent state's commit id.
pub fn commit_of(state: Option<&Value>) -> Option<Uuid> {
    state
        .and_then(|s| s.get("commit"))
        .and_then(Value::as_str)
        .and_then(|id| Uuid::parse_str(id).ok())
}

/// File diffs for many (production commit, staging commit) pairs at once. Only the contents
/// of files that differ are read.
pub async fn file_diffs(
    db: &Db,
    tenant: &Tenant,
    pairs: &[(Option<Uuid>, Option<Uuid>)],
) -> Result<HashMap<(Option<Uuid>, Option<Uuid>), Vec<diff::FileDiff>>> {
    let commit_ids: Vec<Uuid> = pairs
        .iter()
        .flat_map(|(a, b)| [*a, *b])
        .flatten()
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let mut trees: HashMap<Uuid, BTreeMap<String, String>> = HashMap::new();
    for chunk in commit_ids.chunks(500) {
        for file in tenant
            .select::<agent_commit_files::Entity>()
            .filter(agent_commit_files::Column::CommitId.is_in(chunk.to_vec()))
            .all(&db.conn)
            .await?
        {
            trees
                .entry(file.commit_id)
                .or_default()
                .insert(file.path, file.blob_hash);
        }
    }
    let empty = BTreeMap::new();
    let tree = |id: Option<Uuid>| id.and_then(|id| trees.get(&id)).unwrap_or(&empty);
    // Which blobs are needed: both sides of every path whose hash differs.
    let mut needed: HashSet<String> = HashSet::new();
    for (old, new) in pairs {
        let (old, new) = (tree(*old), tree(*new));
        for path in old.keys().chain(new.keys()) {
            let (a, b) = (old.get(path), new.get(path));
            if a != b {
                needed.extend(a.cloned());
                needed.extend(b.cloned());
            }
        }
    }
    let needed: Vec<String> = needed.into_iter().collect();
    let mut contents: HashMap<String, String> = HashMap::new();
    for chunk in needed.chunks(500) {
        for blob in tenant
            .select::<blobs::Entity>()
            .filter(blobs::Column::Hash.is_in(chunk.to_vec()))
            .all(&db.conn)
            .await?
        {
            contents.insert(blob.hash, blob.content);
        }
    }
    // Diffing is CPU work (bounded per file by `diff::DiffLimits`): off the async threads.
    let pairs = pairs.to_vec();
    tokio::task::spawn_blocking(move || {
        let empty = BTreeMap::new();
        let tree = |id: Option<Uuid>| id.and_then(|id| trees.get(&id)).unwrap_or(&empty);
        let mut result = HashMap::new();
        for (old_id, new_id) in pairs {
            let (old, new) = (tree(old_id), tree(new_id));
            let paths: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
            let diffs = paths
                .into_iter()
                .filter(|path| old.get(*path) != new.get(*path))
                .map(|path| {
                    let content = |hash: Option<&String>| hash.and_then(|h| contents.get(h)).map(String::as_str);
                    diff::file_diff(path, content(old.get(path)), content(new.get(path)))
                })
                .collect();
            result.insert((old_id, new_id), diffs);
        }
        result
    })
    .await
    .map_err(|e| Error::internal(anyhow::anyhow!("diff computation failed: {e}")))
}

/// Releases, newest first.
pub async fn list(db: &Db, tenant: &Tenant, page: &PageRequest) -> Result<Page<Release>> {
    let page = pagination::fetch(
        db,
        tenant.select::<releases::Entity>(),
        releases::Column::Id,
        page,
        Order::Desc,
    )
    .await?;
    Ok(page.map(Release::from))
}

pub async fn get<C: ConnectionTrait>(db: &C, tenant: &Tenant, id: Uuid) -> Result<Release> {
    tenant
        .select::<releases::Entity>()
        .filter(releases::Column::Id.eq(id))
        .one(db)
        .await?
        .map(Release::from)
        .ok_or_else(|| Error::not_found(format!("release {id}")))
}

/// A release of the tenant by id (None: not there).
pub async fn by_id(db: &Db, tenant: &Tenant, id: Uuid) -> Result<Option<Release>> {
    let row = super::lookup::in_tenant::<releases::Entity, _>(&db.conn, tenant, releases::Column::Id, id);
    Ok(row.await?.map(Release::from))
}

/// Releases of the tenant by id (in no particular order; missing ids are left out): what the
/// DataLoaders batch into.
pub async fn by_ids(db: &Db, tenant: &Tenant, ids: Vec<Uuid>) -> Result<Vec<Release>> {
    let rows = super::lookup::many_in_tenant::<releases::Entity, _>(&db.conn, tenant, releases::Column::Id, ids);
    Ok(rows.await?.into_iter().map(Release::from).collect())
}

/// The release an item of the tenant belongs to, by the item's id (None: no such item).
pub async fn release_of_item(db: &Db, tenant: &Tenant, item_id: Uuid) -> Result<Option<Uuid>> {
    let row =
        super::lookup::in_tenant::<release_items::Entity, _>(&db.conn, tenant, release_items::Column::Id, item_id);
    Ok(row.await?.map(|item| item.release_id))
}

/// The items of several releases at once, keyed by release id.
pub async fn items_of(db: &Db, tenant: &Tenant, ids: &[Uuid]) -> Result<HashMap<Uuid, Vec<ReleaseItem>>> {
    let mut map: HashMap<Uuid, Vec<ReleaseItem>> = HashMap::new();
    for item in tenant
        .select::<release_items::Entity>()
        .filter(release_items::Column::ReleaseId.is_in(ids.to_vec()))
        .order_by_asc(release_items::Column::ItemId)
        .all(&db.conn)
        .await?
    {
        map.entry(item.release_id).or_default().push(item.try_into()?);
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_ids_round_trip_and_refuse_nonsense() {
        let item: ItemRef = "agent:support-bot".parse().unwrap();
        assert_eq!(
            item,
            ItemRef {
                kind: ItemKind::Agent,
                slug: "support-bot".into()
            }
        );
        assert_eq!(item.to_string(), "agent:support-bot");
        assert!("robot:x".parse::<ItemRef>().is_err());
        assert!("agent:".parse::<ItemRef>().is_err());
    }
}
