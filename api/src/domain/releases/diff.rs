//! Text and structure diffs for the Releases screen, computed with `similar`.
//!
//! Everything here is a pure function of its inputs, so the GraphQL layer (and the CLI) can
//! render a diff without parsing text: file diffs come with structured hunks, prompt diffs as
//! side-by-side rows with word-level highlights.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;
use similar::{ChangeTag, DiffOp, TextDiff, TextDiffConfig};

use super::Change;

/// Bounds on one diff: past them the diff is replaced by a "diff too large" marker.
#[derive(Clone, Copy, Debug)]
pub struct DiffLimits {
    /// Longest a diff may compute (`similar`'s deadline; `RUNFLOW_DIFF_TIMEOUT`).
    pub timeout: Duration,
    /// Largest input (both sides together), in bytes.
    pub max_bytes: usize,
}

impl Default for DiffLimits {
    fn default() -> Self {
        DiffLimits {
            timeout: Duration::from_secs(2),
            max_bytes: 4 * 1024 * 1024,
        }
    }
}

static LIMITS: OnceLock<DiffLimits> = OnceLock::new();

/// Sets the process's diff limits (once, at start; later calls are ignored).
pub fn configure(limits: DiffLimits) {
    let _ = LIMITS.set(limits);
}

pub fn limits() -> DiffLimits {
    LIMITS.get().copied().unwrap_or_default()
}

/// A diff computation with a deadline: `None` when the inputs are too large or the deadline
/// passed (similar then returns a coarse diff quickly; we show the marker instead).
fn bounded<T>(limits: DiffLimits, size: usize, compute: impl FnOnce(TextDiffConfig) -> T) -> Option<T> {
    if size > limits.max_bytes {
        return None;
    }
    let deadline = Instant::now() + limits.timeout;
    let mut config = TextDiff::configure();
    config.deadline(deadline);
    let result = compute(config);
    (Instant::now() <= deadline).then_some(result)
}

/// The text shown instead of a diff that is too large or too slow to compute.
pub fn too_large_marker(limits: DiffLimits) -> String {
    format!(
        "diff too large: not computed (inputs over {} bytes or slower than {}; RUNFLOW_DIFF_TIMEOUT)",
        limits.max_bytes,
        humantime::format_duration(limits.timeout)
    )
}

/// How a line of a hunk relates the two sides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineTag {
    Equal,
    Insert,
    Delete,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HunkLine {
    pub tag: LineTag,
    /// 1-based line number on the old side (None for inserted lines).
    pub old_number: Option<usize>,
    /// 1-based line number on the new side (None for deleted lines).
    pub new_number: Option<usize>,
    /// The line without its line ending.
    pub text: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hunk {
    pub old_start: usize,
    pub old_lines: usize,
    pub new_start: usize,
    pub new_lines: usize,
    pub lines: Vec<HunkLine>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileDiff {
    pub path: String,
    pub change: Change,
    /// A unified diff (`--- a/path`, `+++ b/path`, `@@` hunks), or the "diff too large" marker.
    pub unified: String,
    pub hunks: Vec<Hunk>,
    /// The diff was too large or too slow to compute: `unified` holds the marker, no hunks.
    pub too_large: bool,
}

fn strip_newline(text: &str) -> String {
    text.strip_suffix('\n')
        .map(|t| t.strip_suffix('\r').unwrap_or(t))
        .unwrap_or(text)
        .to_string()
}

/// The diff of one file between two bundles (`None`: the file is absent on that side).
/// CPU-bound: call it off the async threads (`spawn_blocking`).
pub fn file_diff(path: &str, old: Option<&str>, new: Option<&str>) -> FileDiff {
    let change = match (old, new) {
        (None, _) => Change::Added,
        (_, None) => Change::Removed,
        _ => Change::Modified,
    };
    let (old_text, new_text) = (old.unwrap_or(""), new.unwrap_or(""));
    let limits = limits();
    let computed = bounded(limits, old_text.len() + new_text.len(), |config| {
        file_diff_parts(path, old, new, &config.diff_lines(old_text, new_text))
    });
    match computed {
        Some((unified, hunks)) => FileDiff {
            path: path.to_string(),
            change,
            unified,
            hunks,
            too_large: false,
        },
        None => FileDiff {
            path: path.to_string(),
            change,
            unified: too_large_marker(limits),
            hunks: vec![],
            too_large: true,
        },
    }
}

fn file_diff_parts<'a>(
    path: &str,
    old: Option<&str>,
    new: Option<&str>,
    diff: &TextDiff<'a, 'a, str>,
) -> (String, Vec<Hunk>) {
    let old_header = if old.is_some() {
        format!("a/{path}")
    } else {
        "/dev/null".to_string()
    };
    let new_header = if new.is_some() {
        format!("b/{path}")
    } else {
        "/dev/null".to_string()
    };
    let unified = diff
        .unified_diff()
        .context_radius(3)
        .header(&old_header, &new_header)
        .to_string();
    let hunks = diff
        .grouped_ops(3)
        .iter()
        .map(|group| {
            let (first, last) = (&group[0], &group[group.len() - 1]);
            let old_range = first.old_range().start..last.old_range().end;
            let new_range = first.new_range().start..last.new_range().end;
            let lines = group
                .iter()
                .flat_map(|op| diff.iter_changes(op))
                .map(|change| HunkLine {
                    tag: match change.tag() {
                        ChangeTag::Equal => LineTag::Equal,
                        ChangeTag::Insert => LineTag::Insert,
                        ChangeTag::Delete => LineTag::Delete,
                    },
                    old_number: change.old_index().map(|i| i + 1),
                    new_number: change.new_index().map(|i| i + 1),
                    text: strip_newline(change.value()),
                })
                .collect();
            Hunk {
                old_start: old_range.start + 1,
                old_lines: old_range.len(),
                new_start: new_range.start + 1,
                new_lines: new_range.len(),
                lines,
            }
        })
        .collect();
    (unified, hunks)
}

/// What a side-by-side row shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowTag {
    Equal,
    /// Only on the right (new).
    Insert,
    /// Only on the left (old).
    Delete,
    /// Both sides, changed: see the highlights.
    Replace,
}

/// A changed span inside a line, in characters: `start..end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Highlight {
    pub start: usize,
    pub end: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowSide {
    /// 1-based line number.
    pub number: usize,
    pub text: String,
    pub highlights: Vec<Highlight>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SideBySideRow {
    pub tag: RowTag,
    pub left: Option<RowSide>,
    pub right: Option<RowSide>,
}

/// Word-level highlights of a changed pair of lines: (left, right).
fn word_highlights(old: &str, new: &str) -> (Vec<Highlight>, Vec<Highlight>) {
    let mut config = TextDiff::configure();
    config.deadline(Instant::now() + limits().timeout);
    let diff = config.diff_words(old, new);
    let (mut left, mut right) = (Vec::new(), Vec::new());
    let (mut left_pos, mut right_pos) = (0usize, 0usize);
    for change in diff.iter_all_changes() {
        let length = change.value().chars().count();
        match change.tag() {
            ChangeTag::Equal => {
                left_pos += length;
                right_pos += length;
            }
            ChangeTag::Delete => {
                push_merged(&mut left, left_pos, left_pos + length);
                left_pos += length;
            }
            ChangeTag::Insert => {
                push_merged(&mut right, right_pos, right_pos + length);
                right_pos += length;
            }
        }
    }
    (left, right)
}

fn push_merged(ranges: &mut Vec<Highlight>, start: usize, end: usize) {
    match ranges.last_mut() {
        Some(last) if last.end == start => last.end = end,
        _ => ranges.push(Highlight { start, end }),
    }
}

/// A side-by-side diff of two texts, line by line, with word highlights in changed lines;
/// `None` when it is too large or too slow to compute (see [`DiffLimits`]). CPU-bound: call
/// it off the async threads.
pub fn side_by_side(old: &str, new: &str) -> Option<Vec<SideBySideRow>> {
    bounded(limits(), old.len() + new.len(), |config| {
        side_by_side_rows(&config.diff_lines(old, new))
    })
}

fn side_by_side_rows<'a>(diff: &TextDiff<'a, 'a, str>) -> Vec<SideBySideRow> {
    let old_lines: Vec<String> = diff.iter_old_slices().map(strip_newline).collect();
    let new_lines: Vec<String> = diff.iter_new_slices().map(strip_newline).collect();
    let side = |lines: &[String], index: usize| RowSide {
        number: index + 1,
        text: lines[index].clone(),
        highlights: vec![],
    };
    let mut rows = Vec::new();
    for op in diff.ops() {
        match *op {
            DiffOp::Equal {
                old_index,
                new_index,
                len,
            } => {
                for i in 0..len {
                    rows.push(SideBySideRow {
                        tag: RowTag::Equal,
                        left: Some(side(&old_lines, old_index + i)),
                        right: Some(side(&new_lines, new_index + i)),
                    });
                }
            }
            DiffOp::Delete { old_index, old_len, .. } => {
                for i in 0..old_len {
                    rows.push(SideBySideRow {
                        tag: RowTag::Delete,
                        left: Some(side(&old_lines, old_index + i)),
                        right: None,
                    });
                }
            }
            DiffOp::Insert { new_index, new_len, .. } => {
                for i in 0..new_len {
                    rows.push(SideBySideRow {
                        tag: RowTag::Insert,
                        left: None,
                        right: Some(side(&new_lines, new_index + i)),
                    });
                }
            }
            DiffOp::Replace {
                old_index,
                old_len,
                new_index,
                new_len,
            } => {
                for i in 0..old_len.max(new_len) {
                    let left = (i < old_len).then(|| side(&old_lines, old_index + i));
                    let right = (i < new_len).then(|| side(&new_lines, new_index + i));
                    let row = match (left, right) {
                        (Some(mut left), Some(mut right)) => {
                            let (l, r) = word_highlights(&left.text, &right.text);
                            left.highlights = l;
                            right.highlights = r;
                            SideBySideRow {
                                tag: RowTag::Replace,
                                left: Some(left),
                                right: Some(right),
                            }
                        }
                        (left @ Some(_), None) => SideBySideRow {
                            tag: RowTag::Delete,
                            left,
                            right: None,
                        },
                        (None, right) => SideBySideRow {
                            tag: RowTag::Insert,
                            left: None,
                            right,
                        },
                    };
                    rows.push(row);
                }
            }
        }
    }
    rows
}

/// A changed key of a JSON object (absent on one side: null there, with `change` saying so).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyChange {
    pub key: String,
    pub change: Change,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

/// Top-level key changes between two JSON objects (anything else counts as one key "").
pub fn object_changes(before: &Value, after: &Value) -> Vec<KeyChange> {
    let empty = serde_json::Map::new();
    let (Some(old), Some(new)) = (before.as_object().or(Some(&empty)), after.as_object().or(Some(&empty))) else {
        return vec![];
    };
    let keys: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    keys.into_iter()
        .filter_map(|key| {
            let (b, a) = (old.get(key), new.get(key));
            let change = match (b, a) {
                (None, Some(_)) => Change::Added,
                (Some(_), None) => Change::Removed,
                (Some(b), Some(a)) if b != a => Change::Modified,
                _ => return None,
            };
            Some(KeyChange {
                key: key.clone(),
                change,
                before: b.cloned(),
                after: a.cloned(),
            })
        })
        .collect()
}

/// Added and removed names between two lists.
pub fn list_changes(before: &[String], after: &[String]) -> (Vec<String>, Vec<String>) {
    let added = after.iter().filter(|n| !before.contains(n)).cloned().collect();
    let removed = before.iter().filter(|n| !after.contains(n)).cloned().collect();
    (added, removed)
}

/// Keyed map changes (connector resources): key → (change, before, after).
pub fn map_changes(before: &BTreeMap<String, Value>, after: &BTreeMap<String, Value>) -> Vec<KeyChange> {
    let b = Value::Object(before.clone().into_iter().collect());
    let a = Value::Object(after.clone().into_iter().collect());
    object_changes(&b, &a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_diffs_have_unified_text_and_structured_hunks() {
        let diff = file_diff("main.py", Some("a\nb\nc\n"), Some("a\nB\nc\nd\n"));
        assert_eq!(diff.change, Change::Modified);
        assert!(
            diff.unified
                .starts_with("--- a/main.py\n+++ b/main.py\n@@ -1,3 +1,4 @@"),
            "{}",
            diff.unified
        );
        assert_eq!(diff.hunks.len(), 1);
        let hunk = &diff.hunks[0];
        assert_eq!(
            (hunk.old_start, hunk.old_lines, hunk.new_start, hunk.new_lines),
            (1, 3, 1, 4)
        );
        let tags: Vec<LineTag> = hunk.lines.iter().map(|l| l.tag).collect();
        assert_eq!(
            tags,
            [
                LineTag::Equal,
                LineTag::Delete,
                LineTag::Insert,
                LineTag::Equal,
                LineTag::Insert
            ]
        );
        assert_eq!(
            hunk.lines[1],
            HunkLine {
                tag: LineTag::Delete,
                old_number: Some(2),
                new_number: None,
                text: "b".into()
            }
        );
        let added = file_diff("new.txt", None, Some("x\n"));
        assert_eq!(added.change, Change::Added);
        assert!(added.unified.starts_with("--- /dev/null\n+++ b/new.txt"));
    }

    #[test]
    fn side_by_side_rows_highlight_changed_words() {
        let rows = side_by_side("Hello {{name}}\nBye\n", "Hello dear {{name}}\nBye\nP.S.\n").unwrap_or_default();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].tag, RowTag::Replace);
        let right = rows[0].right.as_ref().unwrap();
        assert_eq!(right.highlights.len(), 1);
        let h = right.highlights[0];
        assert_eq!(
            &right
                .text
                .chars()
                .skip(h.start)
                .take(h.end - h.start)
                .collect::<String>(),
            "dear "
        );
        assert_eq!(rows[1].tag, RowTag::Equal);
        assert_eq!(rows[2].tag, RowTag::Insert);
        assert!(rows[2].left.is_none());
    }

    #[test]
    fn object_and_list_changes() {
        let changes = object_changes(
            &serde_json::json!({"a": 1, "b": 2}),
            &serde_json::json!({"b": 3, "c": 4}),
        );
        let keys: Vec<(&str, Change)> = changes.iter().map(|c| (c.key.as_str(), c.change)).collect();
        assert_eq!(
            keys,
            [("a", Change::Removed), ("b", Change::Modified), ("c", Change::Added)]
        );
        let (added, removed) = list_changes(&["x".into(), "y".into()], &["y".into(), "z".into()]);
        assert_eq!((added, removed), (vec!["z".to_string()], vec!["x".to_string()]));
    }

    #[test]
    fn oversized_diffs_become_a_marker() {
        let big = "line\n".repeat(1024 * 1024);
        let diff = file_diff("big.txt", Some(&big), Some("x\n"));
        assert!(diff.too_large);
        assert!(diff.unified.starts_with("diff too large"));
        assert!(diff.hunks.is_empty());
        assert!(side_by_side(&big, "x").is_none());
    }
}
