//! How an item differs between staging and production, for the Releases screen: file diffs,
//! side-by-side prompt text, key-by-key config changes, and the pending change that carries
//! them.

use async_graphql::{Context, Enum, ID, Object, SimpleObject};
use serde_json::Value;

use super::super::GqlResult;
use super::super::agents::Commit;
use super::super::context::loader;
use super::super::ids::{self, NodeType};
use super::super::loaders::{CommitKey, CommitRange, FileDiffsKey};
use super::super::prompts::PromptSource;
use super::super::scalars::Json;
use super::{ChangeType, ItemKind};
use crate::domain::pagination::PageRequest;
use crate::domain::releases::{self as domain, PendingChange as Pending, diff};
use crate::domain::string_array;
use crate::error::Error;

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
    /// The hunk's lines, in order (bounded by the file size limit, RUNFLOW_MAX_FILE_BYTES).
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
    /// The diff as structured hunks (bounded by the file size limit, RUNFLOW_MAX_FILE_BYTES).
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
    /// The changed words of a REPLACE row (bounded by the row's length).
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
    /// The declared variables (at most 100).
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

impl AgentChange {
    /// Production's commit number (0 when none) and staging's, when staging has a commit.
    fn commit_numbers(&self) -> Option<(i64, i64)> {
        let number = |state: Option<&Value>| field(state, "number").and_then(Value::as_i64);
        let up_to = number(self.0.staging.as_ref())?;
        Some((number(self.0.production.as_ref()).unwrap_or(0), up_to))
    }
}

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

    /// The commits on staging since production's commit, newest first: the newest `first`
    /// of them (`commitCount` says how many there are; older ones are in `Agent.commits`).
    async fn commits(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many of the newest commits to return (default 20, at most 100).")] first: Option<i32>,
    ) -> GqlResult<Vec<Commit>> {
        let Some((after, up_to)) = self.commit_numbers() else {
            return Ok(vec![]);
        };
        let page = PageRequest::new(first, None, None, None)?;
        let key = CommitRange {
            agent_slug: self.0.item.slug.clone(),
            after,
            up_to,
            limit: page.size,
        };
        Ok(loader(ctx)?
            .load_one(key)
            .await?
            .unwrap_or_default()
            .into_iter()
            .map(Commit)
            .collect())
    }

    /// How many commits staging has since production's commit (commit numbers are
    /// consecutive per agent).
    async fn commit_count(&self) -> i64 {
        self.commit_numbers().map_or(0, |(after, up_to)| (up_to - after).max(0))
    }

    /// Per-file diffs from the production bundle to the staging bundle (changed files only;
    /// bounded by the bundle limits, RUNFLOW_MAX_BUNDLE_BYTES and 2,000 files).
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
