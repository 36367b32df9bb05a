//! Relay connections over the domain's [`Page`]s.
//!
//! Every list that can grow is a connection with `first`/`after` (forwards) and
//! `last`/`before` (backwards), at most 100 items a page, and `totalCount`. Cursors are
//! opaque: URL-safe base64 of the row's sort key.

use async_graphql::{Context, SimpleObject};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::domain::pagination::{Page, PageRequest};
use crate::error::{Error, Result};

/// Where a page sits in its list, and the cursors to fetch the neighbouring pages.
#[derive(SimpleObject, Clone, Debug)]
pub struct PageInfo {
    /// True when items follow this page: fetch them with `first` and `after: endCursor`.
    pub has_next_page: bool,
    /// True when items precede this page: fetch them with `last` and `before: startCursor`.
    pub has_previous_page: bool,
    /// The cursor of the first edge of this page (null when the page is empty).
    pub start_cursor: Option<String>,
    /// The cursor of the last edge of this page (null when the page is empty).
    pub end_cursor: Option<String>,
}

pub fn encode_cursor(key: &str) -> String {
    URL_SAFE_NO_PAD.encode(key)
}

pub fn decode_cursor(name: &str, cursor: &str) -> Result<String> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| Error::bad_input(format!("`{name}` cursor {cursor:?} is not a cursor this API returned")))
}

/// The Relay arguments of a connection field.
#[derive(Clone, Debug, Default)]
pub struct PageArgs {
    pub first: Option<i32>,
    pub after: Option<String>,
    pub last: Option<i32>,
    pub before: Option<String>,
}

impl PageArgs {
    pub fn new(first: Option<i32>, after: Option<String>, last: Option<i32>, before: Option<String>) -> Self {
        PageArgs {
            first,
            after,
            last,
            before,
        }
    }

    /// The domain page request; `totalCount` is counted only when the query selects it.
    pub fn request(self, ctx: &Context<'_>) -> Result<PageRequest> {
        let after = self.after.as_deref().map(|c| decode_cursor("after", c)).transpose()?;
        let before = self.before.as_deref().map(|c| decode_cursor("before", c)).transpose()?;
        let count_total = ctx.look_ahead().field("totalCount").exists();
        Ok(PageRequest::new(self.first, after, self.last, before)?.with_total(count_total))
    }
}

/// What a generated connection type holds.
pub struct ConnectionParts<T> {
    pub edges: Vec<(String, T)>,
    pub page_info: PageInfo,
    pub total_count: Option<u64>,
}

/// Builds a connection from a page: `key` gives each item's sort key (its cursor).
pub fn parts<M, T>(page: Page<M>, key: impl Fn(&M) -> String, node: impl Fn(M) -> T) -> ConnectionParts<T> {
    let edges: Vec<(String, T)> = page
        .items
        .into_iter()
        .map(|item| (encode_cursor(&key(&item)), node(item)))
        .collect();
    let page_info = PageInfo {
        has_next_page: page.has_next_page,
        has_previous_page: page.has_previous_page,
        start_cursor: edges.first().map(|e| e.0.clone()),
        end_cursor: edges.last().map(|e| e.0.clone()),
    };
    ConnectionParts {
        edges,
        page_info,
        total_count: page.total_count,
    }
}

/// Declares `$connection` and `$edge` for node type `$node`; `$what` names the items in
/// descriptions ("agents").
macro_rules! connection_type {
    ($connection:ident, $edge:ident, $node:ty, $what:literal) => {
        #[doc = concat!("A page of ", $what, " (a Relay connection).")]
        pub struct $connection(pub $crate::graphql::pagination::ConnectionParts<$node>);

        #[doc = concat!("A page of ", $what, " (a Relay connection).")]
        #[async_graphql::Object]
        impl $connection {
            #[doc = concat!("The ", $what, " of this page, each with its cursor.")]
            async fn edges(&self) -> Vec<$edge<'_>> {
                self.0
                    .edges
                    .iter()
                    .map(|(cursor, node)| $edge { cursor, node })
                    .collect()
            }

            #[doc = concat!("The ", $what, " of this page, without cursors (the same as `edges { node }`).")]
            async fn nodes(&self) -> Vec<&$node> {
                self.0.edges.iter().map(|(_, node)| node).collect()
            }

            /// Whether more items exist before or after this page, and the cursors to get them.
            async fn page_info(&self) -> &$crate::graphql::pagination::PageInfo {
                &self.0.page_info
            }

            #[doc = concat!("How many ", $what, " the whole list holds (every page, not only this one).")]
            async fn total_count(&self) -> async_graphql::Result<i64> {
                self.0
                    .total_count
                    .map(|n| i64::try_from(n).unwrap_or(i64::MAX))
                    .ok_or_else(|| async_graphql::Error::new("totalCount was not computed"))
            }
        }

        #[doc = concat!("One of ", $what, " in a page, with the cursor that points at it.")]
        pub struct $edge<'a> {
            cursor: &'a str,
            node: &'a $node,
        }

        #[doc = concat!("One of ", $what, " in a page, with the cursor that points at it.")]
        #[async_graphql::Object]
        impl<'a> $edge<'a> {
            /// Pass it as `after` (or `before`) to fetch the items after (or before) this one.
            async fn cursor(&self) -> &str {
                self.cursor
            }

            /// The item.
            async fn node(&self) -> &$node {
                self.node
            }
        }
    };
}

pub(crate) use connection_type;
