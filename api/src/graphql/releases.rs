//! Releases: the staging-to-production diff, publishing, history and rollback.

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use entity::{release_items, releases};
use serde_json::Value;

use super::agents::Commit;
use super::context::{actor, loader, services, tenant};
use super::ids::{self, NodeType};
use super::loaders::{CommitKey, CommitRange, FileDiffsKey, ReleaseItemsKey, ReleaseKey};
use super::pagination::{PageArgs, connection_type, parts};
use super::prompts::PromptSource;
use super::scalars::{DateTime, Json};
use super::{Environment, GqlResult};
use crate::domain::releases::{self as domain, PendingChange as Pending, diff};
use crate::domain::string_array;
use crate::error::Error;

/// The `Idempotency-Key` HTTP header of a request, if any.
#[derive(Clone, Debug)]
pub struct IdempotencyKey(pub String);

/// What kind of record a release item is.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "crate::domain::releases::ItemKind")]
pub enum ItemKind {
    /// An agent's deployment (its commit).
    Agent,
    /// A prompt's published text and settings.
    Prompt,
    /// A connector instance with its resources.
    Connector,
    /// A trigger.
    Trigger,
}

/// How an item or a file differs between production and staging.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "crate::domain::releases::Change")]
pub enum ChangeType {
    /// In staging, not in production.
    Added,
    /// In both, different.
    Modified,
    /// In production, removed from staging.
    Removed,
}

/// What a line of a unified hunk is.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "crate::domain::releases::diff::LineTag")]
pub enum LineTag {
    /// Unchanged context, in both versions.
    Equal,
    /// Only in the new (staging) version.
    Insert,
    /// Only in the old (production) version.
    Delete,
}

/// What a side-by-side row shows.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "crate::domain::releases::diff::RowTag")]
pub enum RowTag {
    /// The same line on both sides.
    Equal,
    /// A line only on the right (staging).
    Insert,
    /// A line only on the left (production).
    Delete,
    /// A changed line: both sides, with the changed words in `highlights`.
    Replace,
}

/// Where a dependency of a planned item comes from.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "crate::domain::releases::DependencyStatus")]
pub enum DependencyStatus {
    /// Production already has it.
    InProduction,
    /// This publish brings it.
    InThisPublish,
    /// Neither: the publish would fail. Add the item to the publish or publish it first.
    Missing,
}

/// What a release did.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseKind {
    /// Published staging changes.
    Publish,
    /// Restored production to the state before an earlier release.
    Rollback,
}

/// One line of a hunk.
#[derive(SimpleObject)]
pub struct DiffLine {
    /// Whether the line is context, inserted or deleted.
    tag: LineTag,
    /// 1-based line number in the old (production) file; null for an inserted line.
    old_number: Option<i32>,
    /// 1-based line number in the new (staging) file; null for a deleted line.
    new_number: Option<i32>,
    /// The line's text, without its newline.
    text: String,
}

/// A hunk of a file diff, ready to render.
#[derive(SimpleObject)]
pub struct DiffHunk {
    /// First line of the hunk in the old file (1-based).
    old_start: i32,
    /// Number of old-file lines the hunk covers.
    old_lines: i32,
    /// First line of the hunk in the new file (1-based).
    new_start: i32,
    /// Number of new-file lines the hunk covers.
    new_lines: i32,
    /// The hunk's lines, in order.
    lines: Vec<DiffLine>,
}

/// How a file differs between the production and the staging bundle.
#[derive(SimpleObject)]
pub struct FileDiff {
    /// The file's path in the bundle.
    path: String,
    /// Added, removed or modified.
    change: ChangeType,
    /// The same diff as unified diff text (or the "diff too large" marker).
    unified_diff: String,
    /// The diff as structured hunks.
    hunks: Vec<DiffHunk>,
    /// True when the file is too large (or its diff too slow) to diff: `unifiedDiff` holds a
    /// "diff too large" marker and `hunks` is empty.
    too_large: bool,
}

fn int(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

impl From<diff::FileDiff> for FileDiff {
    fn from(d: diff::FileDiff) -> Self {
        FileDiff {
            path: d.path,
            change: d.change.into(),
            unified_diff: d.unified,
            too_large: d.too_large,
            hunks: d
                .hunks
                .into_iter()
                .map(|h| DiffHunk {
                    old_start: int(h.old_start),
                    old_lines: int(h.old_lines),
                    new_start: int(h.new_start),
                    new_lines: int(h.new_lines),
                    lines: h
                        .lines
                        .into_iter()
                        .map(|l| DiffLine {
                            tag: l.tag.into(),
                            old_number: l.old_number.map(int),
                            new_number: l.new_number.map(int),
                            text: l.text,
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}

/// A changed span inside a line, in characters.
#[derive(SimpleObject)]
pub struct TextRange {
    /// Offset of the first changed character (0-based).
    start: i32,
    /// Offset just past the last changed character.
    end: i32,
}

/// One side of a side-by-side row.
#[derive(SimpleObject)]
pub struct DiffCell {
    /// 1-based line number.
    number: i32,
    /// The line's text.
    text: String,
    /// The changed words of a REPLACE row.
    highlights: Vec<TextRange>,
}

/// A row of a side-by-side diff: left is production, right is staging.
#[derive(SimpleObject)]
pub struct SideBySideRow {
    /// What the row shows.
    tag: RowTag,
    /// Production's line (null for an INSERT row).
    left: Option<DiffCell>,
    /// Staging's line (null for a DELETE row).
    right: Option<DiffCell>,
}

fn cell(side: diff::RowSide) -> DiffCell {
    DiffCell {
        number: int(side.number),
        text: side.text,
        highlights: side
            .highlights
            .into_iter()
            .map(|h| TextRange {
                start: int(h.start),
                end: int(h.end),
            })
            .collect(),
    }
}

/// A changed key of a JSON object or a keyed set.
#[derive(SimpleObject)]
pub struct KeyChange {
    /// The key.
    key: String,
    /// Added, removed or modified.
    change: ChangeType,
    /// The value in production (null when added).
    before: Option<Json>,
    /// The value in staging (null when removed).
    after: Option<Json>,
}

fn key_changes(changes: Vec<diff::KeyChange>) -> Vec<KeyChange> {
    changes
        .into_iter()
        .map(|c| KeyChange {
            key: c.key,
            change: c.change.into(),
            before: c.before.map(Json),
            after: c.after.map(Json),
        })
        .collect()
}

fn field<'a>(state: Option<&'a Value>, name: &str) -> Option<&'a Value> {
    state.and_then(|s| s.get(name))
}

/// The text of a prompt on one side.
#[derive(SimpleObject)]
pub struct PromptSnapshot {
    /// The staging draft or a published version.
    source: PromptSource,
    /// The published version number (null for a draft).
    version: Option<i64>,
    /// The template.
    template: String,
    /// The declared variables.
    variables: Vec<String>,
    /// Model settings as a JSON object.
    model_settings: Json,
}

fn prompt_snapshot(state: Option<&Value>) -> Option<PromptSnapshot> {
    let state = state?;
    let (source, body) = match state.get("draft") {
        Some(draft) => (PromptSource::Draft, draft),
        None => (PromptSource::Published, state),
    };
    Some(PromptSnapshot {
        source,
        version: state.get("number").and_then(Value::as_i64),
        template: body
            .get("template")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        variables: string_array(body.get("variables")),
        model_settings: Json(body.get("modelSettings").cloned().unwrap_or(Value::Null)),
    })
}

/// An agent's unpromoted code.
pub struct AgentChange(Pending);

/// An agent's code in staging that production does not run yet.
#[Object]
impl AgentChange {
    /// The commit staging runs (null when removed from staging).
    async fn staging_commit(&self, ctx: &Context<'_>) -> GqlResult<Option<Commit>> {
        let Some(id) = domain::commit_of(self.0.staging.as_ref()) else {
            return Ok(None);
        };
        Ok(loader(ctx)?.load_one(CommitKey(id)).await?.map(Commit))
    }

    /// The commit production runs (null when the agent is new to production).
    async fn production_commit(&self, ctx: &Context<'_>) -> GqlResult<Option<Commit>> {
        let Some(id) = domain::commit_of(self.0.production.as_ref()) else {
            return Ok(None);
        };
        Ok(loader(ctx)?.load_one(CommitKey(id)).await?.map(Commit))
    }

    /// The commits on staging since production's commit, newest first.
    async fn commits(&self, ctx: &Context<'_>) -> GqlResult<Vec<Commit>> {
        let number = |state: Option<&Value>| field(state, "number").and_then(Value::as_i64);
        let Some(up_to) = number(self.0.staging.as_ref()) else {
            return Ok(vec![]);
        };
        let key = CommitRange {
            agent_slug: self.0.item.slug.clone(),
            after: number(self.0.production.as_ref()).unwrap_or(0),
            up_to,
        };
        Ok(loader(ctx)?
            .load_one(key)
            .await?
            .unwrap_or_default()
            .into_iter()
            .map(Commit)
            .collect())
    }

    /// Per-file diffs from the production bundle to the staging bundle (changed files only).
    async fn files(&self, ctx: &Context<'_>) -> GqlResult<Vec<FileDiff>> {
        let key = FileDiffsKey(
            domain::commit_of(self.0.production.as_ref()),
            domain::commit_of(self.0.staging.as_ref()),
        );
        Ok(loader(ctx)?
            .load_one(key)
            .await?
            .unwrap_or_default()
            .into_iter()
            .map(Into::into)
            .collect())
    }
}

/// A prompt's unpublished text: production (left) against staging (right).
pub struct PromptChange(Pending);

impl PromptChange {
    /// The side-by-side rows, computed off the async threads within the diff limits.
    async fn side_by_side(&self) -> GqlResult<Option<Vec<diff::SideBySideRow>>> {
        let text = |s: Option<PromptSnapshot>| s.map(|s| s.template).unwrap_or_default();
        let (old, new) = (
            text(prompt_snapshot(self.0.production.as_ref())),
            text(prompt_snapshot(self.0.staging.as_ref())),
        );
        tokio::task::spawn_blocking(move || diff::side_by_side(&old, &new))
            .await
            .map_err(|e| Error::internal(anyhow::anyhow!("diff computation failed: {e}")).into())
    }
}

/// A prompt's unpublished text: production (left) against staging (right).
#[Object]
impl PromptChange {
    /// What production serves (null when new).
    async fn before(&self) -> Option<PromptSnapshot> {
        prompt_snapshot(self.0.production.as_ref())
    }

    /// What staging serves (null when removed).
    async fn after(&self) -> Option<PromptSnapshot> {
        prompt_snapshot(self.0.staging.as_ref())
    }

    /// The two templates side by side (empty when `diffTooLarge`).
    async fn rows(&self) -> GqlResult<Vec<SideBySideRow>> {
        Ok(self
            .side_by_side()
            .await?
            .unwrap_or_default()
            .into_iter()
            .map(|row| SideBySideRow {
                tag: row.tag.into(),
                left: row.left.map(cell),
                right: row.right.map(cell),
            })
            .collect())
    }

    /// True when the templates are too large (or too slow) to diff: `rows` is then empty.
    async fn diff_too_large(&self) -> GqlResult<bool> {
        Ok(self.side_by_side().await?.is_none())
    }

    /// Variables staging declares and production does not.
    async fn variables_added(&self) -> Vec<String> {
        self.variable_changes().0
    }

    /// Variables production declares and staging does not.
    async fn variables_removed(&self) -> Vec<String> {
        self.variable_changes().1
    }

    /// Changed model settings, by key.
    async fn model_settings(&self) -> Vec<KeyChange> {
        let settings = |state: Option<&Value>| {
            prompt_snapshot(state)
                .map(|s| s.model_settings.0)
                .unwrap_or(Value::Null)
        };
        key_changes(diff::object_changes(
            &settings(self.0.production.as_ref()),
            &settings(self.0.staging.as_ref()),
        ))
    }
}

impl PromptChange {
    fn variable_changes(&self) -> (Vec<String>, Vec<String>) {
        let variables = |state: Option<&Value>| prompt_snapshot(state).map(|s| s.variables).unwrap_or_default();
        diff::list_changes(
            &variables(self.0.production.as_ref()),
            &variables(self.0.staging.as_ref()),
        )
    }
}

/// A connector instance's changes: production against staging.
pub struct ConnectorChange(Pending);

fn resource_map(state: Option<&Value>) -> std::collections::BTreeMap<String, Value> {
    field(state, "resources")
        .and_then(Value::as_object)
        .map(|m| m.clone().into_iter().collect())
        .unwrap_or_default()
}

/// A connector instance's changes: production against staging.
#[Object]
impl ConnectorChange {
    /// The connector type in production (null when new).
    async fn kind_before(&self) -> Option<String> {
        field(self.0.production.as_ref(), "kind")
            .and_then(Value::as_str)
            .map(str::to_string)
    }
    /// The connector type in staging (null when removed).
    async fn kind_after(&self) -> Option<String> {
        field(self.0.staging.as_ref(), "kind")
            .and_then(Value::as_str)
            .map(str::to_string)
    }
    /// The instance config in production (null when new).
    async fn config_before(&self) -> Option<Json> {
        field(self.0.production.as_ref(), "config").cloned().map(Json)
    }
    /// The instance config in staging (null when removed).
    async fn config_after(&self) -> Option<Json> {
        field(self.0.staging.as_ref(), "config").cloned().map(Json)
    }
    /// Changed keys of the instance config.
    async fn config(&self) -> Vec<KeyChange> {
        let config = |s: Option<&Value>| field(s, "config").cloned().unwrap_or(Value::Null);
        key_changes(diff::object_changes(
            &config(self.0.production.as_ref()),
            &config(self.0.staging.as_ref()),
        ))
    }
    /// Credential names staging uses and production does not.
    async fn credentials_added(&self) -> Vec<String> {
        diff::list_changes(
            &string_array(field(self.0.production.as_ref(), "credentials")),
            &string_array(field(self.0.staging.as_ref(), "credentials")),
        )
        .0
    }
    /// Credential names production uses and staging does not.
    async fn credentials_removed(&self) -> Vec<String> {
        diff::list_changes(
            &string_array(field(self.0.production.as_ref(), "credentials")),
            &string_array(field(self.0.staging.as_ref(), "credentials")),
        )
        .1
    }
    /// Resources added, removed and modified, with each one's config before and after.
    async fn resources(&self) -> Vec<KeyChange> {
        key_changes(diff::map_changes(
            &resource_map(self.0.production.as_ref()),
            &resource_map(self.0.staging.as_ref()),
        ))
    }
}

/// A trigger's changes: production against staging.
pub struct TriggerChange(Pending);

/// A trigger's changes: production against staging.
#[Object]
impl TriggerChange {
    /// The trigger in production (null when new).
    async fn before(&self) -> Option<Json> {
        self.0.production.clone().map(Json)
    }
    /// The trigger in staging (null when removed).
    async fn after(&self) -> Option<Json> {
        self.0.staging.clone().map(Json)
    }
    /// Changed fields (agent, kind, schedule, config, enabled).
    async fn fields(&self) -> Vec<KeyChange> {
        let or_null = |s: &Option<Value>| s.clone().unwrap_or(Value::Null);
        key_changes(diff::object_changes(
            &or_null(&self.0.production),
            &or_null(&self.0.staging),
        ))
    }
}

/// Something staging has that production lacks.
pub struct PendingChange(pub Pending);

impl PendingChange {
    /// The occurrence key: the item and the fingerprint of the states shown.
    pub fn key_of(change: &Pending) -> String {
        format!("{}@{}", change.item, change.revision)
    }
}

/// A difference between staging and production, as it is now: publish it with its `key`
/// and `fingerprint`.
#[Object]
impl PendingChange {
    /// Global id of this change as shown: it changes when either side changes (it includes
    /// the fingerprint), so a cache never mixes two states of one item.
    pub(crate) async fn id(&self) -> ID {
        ids::encode_shared(NodeType::PendingChange, PendingChange::key_of(&self.0))
    }
    /// The stable item key: `agent:<slug>`, `prompt:<slug>`, `connector:<slug>` or
    /// `trigger:<name>`; pass it as `key` in `PublishItemInput`.
    async fn key(&self) -> String {
        self.0.item.to_string()
    }
    /// What kind of record the item is.
    async fn kind(&self) -> ItemKind {
        self.0.item.kind.into()
    }
    /// The item's slug (a trigger's name).
    async fn slug(&self) -> &str {
        &self.0.item.slug
    }
    /// Added, modified or removed, seen from production.
    async fn change(&self) -> ChangeType {
        self.0.change.into()
    }
    /// Fingerprint of the states shown; publish this item with it.
    async fn fingerprint(&self) -> &str {
        &self.0.revision
    }
    /// Staging's state of the item (null when removed from staging).
    async fn staging(&self) -> Option<Json> {
        self.0.staging.clone().map(Json)
    }
    /// Production's state of the item (null when new).
    async fn production(&self) -> Option<Json> {
        self.0.production.clone().map(Json)
    }
    /// For agents: commits and file diffs.
    async fn agent(&self) -> Option<AgentChange> {
        (self.0.item.kind == domain::ItemKind::Agent).then(|| AgentChange(self.0.clone()))
    }
    /// For prompts: the side-by-side text diff and settings changes.
    async fn prompt(&self) -> Option<PromptChange> {
        (self.0.item.kind == domain::ItemKind::Prompt).then(|| PromptChange(self.0.clone()))
    }
    /// For connectors: config and resource changes.
    async fn connector(&self) -> Option<ConnectorChange> {
        (self.0.item.kind == domain::ItemKind::Connector).then(|| ConnectorChange(self.0.clone()))
    }
    /// For triggers: field changes.
    async fn trigger(&self) -> Option<TriggerChange> {
        (self.0.item.kind == domain::ItemKind::Trigger).then(|| TriggerChange(self.0.clone()))
    }
}

/// A publish or a rollback.
pub struct Release(pub releases::Model);

connection_type!(ReleaseConnection, ReleaseEdge, Release, "releases");

/// A publish or a rollback of production: an immutable record of what changed.
#[Object]
impl Release {
    /// Global id of the release (releases belong to the tenant: one id).
    pub(crate) async fn id(&self) -> ID {
        ids::encode_shared(NodeType::Release, self.0.id)
    }
    /// The approved release request this release carried out (when approvals are required).
    async fn approval_request(&self, ctx: &Context<'_>) -> GqlResult<Option<super::governance::ReleaseRequest>> {
        match self.0.approval_request_id {
            Some(id) => super::governance::load_request(ctx, id).await,
            None => Ok(None),
        }
    }
    /// Whether an admin rolled back without an approved request (an emergency override).
    async fn emergency_override(&self) -> bool {
        self.0.emergency_override
    }
    /// 1, 2, 3... per tenant.
    async fn number(&self) -> i64 {
        self.0.number
    }
    /// A publish or a rollback.
    async fn kind(&self) -> ReleaseKind {
        if self.0.kind == "rollback" {
            ReleaseKind::Rollback
        } else {
            ReleaseKind::Publish
        }
    }
    /// The note given to `publish` (may be empty).
    async fn note(&self) -> &str {
        &self.0.note
    }
    /// Subject of the token that published it.
    async fn created_by(&self) -> &str {
        &self.0.created_by
    }
    /// When it was published.
    async fn created_at(&self) -> DateTime {
        self.0.created_at.into()
    }
    /// The idempotency key it was published with, if any.
    async fn idempotency_key(&self) -> Option<&str> {
        self.0.idempotency_key.as_deref()
    }
    /// For a rollback: the release it rolled back.
    async fn rolls_back(&self, ctx: &Context<'_>) -> GqlResult<Option<Release>> {
        let Some(id) = self.0.rolls_back_id else {
            return Ok(None);
        };
        Ok(loader(ctx)?.load_one(ReleaseKey(id)).await?.map(Release))
    }
    /// Each item with production's state before and after.
    async fn items(&self, ctx: &Context<'_>) -> GqlResult<Vec<ReleaseItem>> {
        let items = loader(ctx)?
            .load_one(ReleaseItemsKey(self.0.id))
            .await?
            .unwrap_or_default();
        Ok(items.into_iter().map(ReleaseItem).collect())
    }
}

/// One item of a release.
pub struct ReleaseItem(pub release_items::Model);

/// One item of a release, with production's state before and after it. Its id is unique to
/// the release: the same agent in two releases is two objects.
#[Object]
impl ReleaseItem {
    /// Global id of this item of this release.
    pub(crate) async fn id(&self) -> ID {
        ids::encode_shared(NodeType::ReleaseItem, self.0.id)
    }
    /// The stable item key (`agent:<slug>`, ...); the same in every release.
    async fn key(&self) -> &str {
        &self.0.item_id
    }
    /// What kind of record the item is.
    async fn kind(&self) -> GqlResult<ItemKind> {
        let item: domain::ItemRef = self.0.item_id.parse()?;
        Ok(item.kind.into())
    }
    /// Added, modified or removed in production.
    async fn change(&self) -> GqlResult<ChangeType> {
        let change = domain::Change::parse(&self.0.change)
            .ok_or_else(|| Error::internal(anyhow::anyhow!("stored change {:?} is unknown", self.0.change)))?;
        Ok(change.into())
    }
    /// Production's state before (null: absent).
    async fn before(&self) -> Option<Json> {
        self.0.before.clone().map(Json)
    }
    /// Production's state after (null: absent).
    async fn after(&self) -> Option<Json> {
        self.0.after.clone().map(Json)
    }
}

/// An item a publish would change, with the plan it belongs to (`occurrence`).
pub struct PlannedItem(domain::PlannedItem, String);

/// An item a publish would change. Its id is unique to the plan (it includes the plan's
/// fingerprint, or the release a rollback restores).
#[Object]
impl PlannedItem {
    /// Id of this item in this plan (not refetchable with `node`: plans are not stored).
    pub(crate) async fn id(&self) -> ID {
        ids::encode_shared(NodeType::PlannedItem, format!("{}@{}", self.0.item, self.1))
    }
    /// The stable item key (`agent:<slug>`, ...).
    async fn key(&self) -> String {
        self.0.item.to_string()
    }
    /// What kind of record the item is.
    async fn kind(&self) -> ItemKind {
        self.0.item.kind.into()
    }
    /// Added, modified or removed in production.
    async fn change(&self) -> ChangeType {
        self.0.change.into()
    }
    /// The item fingerprint planned (null for rollbacks).
    async fn fingerprint(&self) -> Option<&str> {
        self.0.revision.as_deref()
    }
    /// Production's state now.
    async fn before(&self) -> Option<Json> {
        self.0.before.clone().map(Json)
    }
    /// Production's state after publishing.
    async fn after(&self) -> Option<Json> {
        self.0.after.clone().map(Json)
    }
}

/// `item` needs `requires` in production.
#[derive(SimpleObject)]
pub struct PlanDependency {
    /// Key of the planned item (`agent:<slug>`, ...).
    item: String,
    /// Key of what it needs (`prompt:<slug>` or `connector:<slug>`).
    requires: String,
    /// Whether production has it, this publish brings it, or it is missing.
    status: DependencyStatus,
}

/// Exactly what `publish` would do with the same input; nothing is changed.
pub struct PublishPlan(domain::Plan);

/// Exactly what `publish` would do with the same input; nothing is changed.
#[Object]
impl PublishPlan {
    /// Fingerprint of all pending changes: pass it with `all: true`.
    async fn fingerprint(&self) -> &str {
        &self.0.fingerprint
    }
    /// The items the publish would change.
    async fn items(&self) -> Vec<PlannedItem> {
        let occurrence = match &self.0.rollback_of {
            Some(release) => format!("rollback:{}", release.id),
            None => self.0.fingerprint.clone(),
        };
        self.0
            .items
            .iter()
            .cloned()
            .map(|item| PlannedItem(item, occurrence.clone()))
            .collect()
    }
    /// What the planned items need in production, and where it comes from.
    async fn dependencies(&self) -> Vec<PlanDependency> {
        self.0
            .dependencies
            .iter()
            .map(|d| PlanDependency {
                item: d.item.to_string(),
                requires: d.requires.to_string(),
                status: d.status.into(),
            })
            .collect()
    }
    /// Missing dependencies; `publish` fails with BAD_USER_INPUT while any remain.
    async fn missing(&self) -> &[String] {
        &self.0.missing
    }
    /// Things to review that do not block the publish.
    async fn warnings(&self) -> &[String] {
        &self.0.warnings
    }
    /// True when `missing` is empty.
    async fn can_publish(&self) -> bool {
        self.0.missing.is_empty()
    }
    /// For a rollback plan: the release being rolled back.
    async fn rollback_of(&self) -> Option<Release> {
        self.0.rollback_of.clone().map(Release)
    }
}

/// One item to publish.
#[derive(InputObject)]
pub struct PublishItemInput {
    /// The item key from `pendingChanges` (`agent:<slug>`, ...).
    key: String,
    /// The `fingerprint` you reviewed. Required, except to select items of a rollback.
    fingerprint: Option<String>,
}

/// What to publish (or roll back) and why.
#[derive(InputObject)]
pub struct PublishInput {
    /// The items to publish, each with the revision you reviewed.
    items: Option<Vec<PublishItemInput>>,
    /// Publish everything pending; requires `fingerprint`.
    #[graphql(default)]
    all: bool,
    /// With `all`: the fingerprint from `publishPlan`.
    fingerprint: Option<String>,
    /// Why: stored with the release.
    note: Option<String>,
    /// A retried publish with the same key returns the first result (the `Idempotency-Key`
    /// header works too).
    idempotency_key: Option<String>,
    /// Restore production to the state before this release (all of its items, or those listed
    /// in `items`).
    rollback_to: Option<ID>,
    /// Admins only, rollbacks only: roll back without an approved release request when the
    /// tenant requires approvals (an emergency). Recorded in the release.
    #[graphql(default)]
    emergency_override: bool,
}

fn request(ctx: &Context<'_>, environment: Environment, input: PublishInput) -> GqlResult<domain::PublishRequest> {
    if environment != Environment::Production {
        return Err(Error::bad_input("publishing targets PRODUCTION: call it with `environment: PRODUCTION`").into());
    }
    let rollback_to = match &input.rollback_to {
        Some(id) => Some(
            ids::uuid_of(id, NodeType::Release, environment.into())
                .ok_or_else(|| Error::not_found(format!("release {:?}", id.as_str())))?,
        ),
        None => None,
    };
    let header = ctx.data_opt::<IdempotencyKey>().map(|k| k.0.clone());
    Ok(domain::PublishRequest {
        items: input
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|i| (i.key, i.fingerprint))
            .collect(),
        all: input.all,
        fingerprint: input.fingerprint,
        note: input.note.unwrap_or_default(),
        idempotency_key: input.idempotency_key.or(header),
        rollback_to,
        emergency_override: input.emergency_override,
    })
}

#[derive(Default)]
pub struct ReleaseQuery;

#[Object]
impl ReleaseQuery {
    /// Everything that differs between staging and production (the same answer whichever
    /// environment is passed), by kind then slug.
    async fn pending_changes(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Either environment; the answer is the same.")] environment: Environment,
    ) -> GqlResult<Vec<PendingChange>> {
        let _ = environment;
        let changes = domain::pending_changes(&services(ctx).db.conn, &tenant(ctx)?).await?;
        Ok(changes.into_iter().map(PendingChange).collect())
    }

    /// The dry run of `publish`: what it would do, and what it would need. Changes nothing.
    async fn publish_plan(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Must be PRODUCTION, like `publish`.")] environment: Environment,
        #[graphql(desc = "The same input `publish` would get.")] input: PublishInput,
    ) -> GqlResult<PublishPlan> {
        let request = request(ctx, environment, input)?;
        Ok(PublishPlan(
            domain::plan(&services(ctx).db.conn, &tenant(ctx)?, &request).await?,
        ))
    }

    /// Releases (publishes and rollbacks), newest first.
    async fn releases(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Either environment; the answer is the same.")] environment: Environment,
        #[graphql(desc = "Page size from the start (default 20, at most 100).")] first: Option<i32>,
        #[graphql(desc = "Return the releases after this cursor.")] after: Option<String>,
        #[graphql(desc = "Page size from the end (at most 100).")] last: Option<i32>,
        #[graphql(desc = "Return the releases before this cursor.")] before: Option<String>,
    ) -> GqlResult<ReleaseConnection> {
        let _ = environment;
        let page = PageArgs::new(first, after, last, before).request(ctx)?;
        let releases = domain::list(&services(ctx).db, &tenant(ctx)?, &page).await?;
        Ok(ReleaseConnection(parts(releases, |r| r.id.to_string(), Release)))
    }

    /// One release; null when it does not exist.
    async fn release(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Either environment; releases are the tenant's.")] environment: Environment,
        #[graphql(desc = "The release's global id.")] id: ID,
    ) -> GqlResult<Option<Release>> {
        let Some(id) = ids::uuid_of(&id, NodeType::Release, environment.into()) else {
            return Ok(None);
        };
        match domain::get(&services(ctx).db.conn, &tenant(ctx)?, id).await {
            Ok(release) => Ok(Some(Release(release))),
            Err(Error::NotFound(_)) => Ok(None),
            Err(other) => Err(other.into()),
        }
    }
}

#[derive(Default)]
pub struct ReleaseMutation;

#[Object]
impl ReleaseMutation {
    /// Publishes staging changes to production, atomically: every item or none. The only
    /// mutation that accepts PRODUCTION (and the only way production changes). Also rolls back
    /// (`rollbackTo`). Needs the publisher role.
    async fn publish(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Must be PRODUCTION.")] environment: Environment,
        #[graphql(desc = "What to publish or roll back.")] input: PublishInput,
    ) -> GqlResult<Release> {
        let request = request(ctx, environment, input)?;
        let actor = actor(ctx)?;
        let release = domain::publish(&services(ctx).db, &tenant(ctx)?, &actor.subject, actor.role, request).await?;
        Ok(Release(release))
    }
}

/// The release that set a production record (null in staging).
pub async fn release_of(ctx: &Context<'_>, release_id: Option<uuid::Uuid>) -> GqlResult<Option<Release>> {
    let Some(id) = release_id else { return Ok(None) };
    Ok(loader(ctx)?.load_one(ReleaseKey(id)).await?.map(Release))
}
