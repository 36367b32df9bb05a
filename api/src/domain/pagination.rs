//! Keyset (cursor) pagination, forwards (`first`/`after`) and backwards (`last`/`before`).
//!
//! A cursor is the sort key of a row: its UUIDv7 id (ids sort by creation time) or, for lists
//! sorted by name, the unique name. The GraphQL layer makes cursors opaque.

use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, Order, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Select,
};
use uuid::Uuid;

use crate::db::Db;
use crate::error::{Error, Result};

pub const DEFAULT_PAGE_SIZE: u64 = 20;
pub const MAX_PAGE_SIZE: u64 = 100;

/// Which end of the bounded range a page is taken from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// `first` items after `after`.
    Forward,
    /// `last` items before `before`.
    Backward,
}

/// What a caller asked for: a page of `size` items inside the (`after`, `before`) range.
#[derive(Clone, Debug)]
pub struct PageRequest {
    pub size: u64,
    pub direction: Direction,
    pub after: Option<String>,
    pub before: Option<String>,
    /// Whether to count every item of the list (not only the page).
    pub count_total: bool,
}

fn size(name: &str, n: Option<i32>) -> Result<Option<u64>> {
    match n {
        None => Ok(None),
        Some(n) if n < 0 => Err(Error::bad_input(format!("{name} must not be negative"))),
        Some(n) if n as u64 > MAX_PAGE_SIZE => Err(Error::bad_input(format!("{name} must be at most {MAX_PAGE_SIZE}"))),
        Some(n) => Ok(Some(n as u64)),
    }
}

impl PageRequest {
    /// Relay's arguments: `first` (default 20) or `last`, each at most 100, and the cursors.
    pub fn new(first: Option<i32>, after: Option<String>, last: Option<i32>, before: Option<String>) -> Result<Self> {
        let (size, direction) = match (size("first", first)?, size("last", last)?) {
            (Some(_), Some(_)) => return Err(Error::bad_input("pass either `first` or `last`, not both")),
            (Some(n), None) => (n, Direction::Forward),
            (None, Some(n)) => (n, Direction::Backward),
            (None, None) if before.is_some() && after.is_none() => (DEFAULT_PAGE_SIZE, Direction::Backward),
            (None, None) => (DEFAULT_PAGE_SIZE, Direction::Forward),
        };
        Ok(PageRequest {
            size,
            direction,
            after,
            before,
            count_total: false,
        })
    }

    /// The first `size` items (for callers outside GraphQL).
    pub fn first(size: u64) -> Self {
        PageRequest {
            size: size.min(MAX_PAGE_SIZE),
            direction: Direction::Forward,
            after: None,
            before: None,
            count_total: false,
        }
    }

    pub fn with_total(mut self, count_total: bool) -> Self {
        self.count_total = count_total;
        self
    }
}

/// One page of results.
#[derive(Clone, Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub has_next_page: bool,
    pub has_previous_page: bool,
    /// Every item of the list, when the request asked for it.
    pub total_count: Option<u64>,
}

impl<T> Page<T> {
    pub fn empty() -> Self {
        Page {
            items: vec![],
            has_next_page: false,
            has_previous_page: false,
            total_count: Some(0),
        }
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            has_next_page: self.has_next_page,
            has_previous_page: self.has_previous_page,
            total_count: self.total_count,
        }
    }

    /// [`Page::map`] with a conversion that may fail (a stored value the domain does not know).
    pub fn try_map<U>(self, f: impl FnMut(T) -> Result<U>) -> Result<Page<U>> {
        Ok(Page {
            items: self.items.into_iter().map(f).collect::<Result<_>>()?,
            has_next_page: self.has_next_page,
            has_previous_page: self.has_previous_page,
            total_count: self.total_count,
        })
    }
}

/// How the sort key of a list is written in a cursor.
#[derive(Clone, Copy, Debug)]
pub enum Key {
    /// A UUID column (cursor: the UUID).
    Uuid,
    /// A unique text column (cursor: the text).
    Text,
    /// A unique integer column (cursor: the number).
    Int,
}

impl Key {
    fn value(self, cursor: &str) -> Result<sea_orm::Value> {
        match self {
            Key::Uuid => Uuid::parse_str(cursor)
                .map(Into::into)
                .map_err(|_| Error::bad_input("the cursor is not one this list returned")),
            Key::Text => Ok(cursor.to_string().into()),
            Key::Int => cursor
                .parse::<i64>()
                .map(Into::into)
                .map_err(|_| Error::bad_input("the cursor is not one this list returned")),
        }
    }
}

/// Fetches one page of `select`, ordered by the UUID column `id` (newest first with `Order::Desc`).
pub async fn fetch<E: EntityTrait>(
    db: &Db,
    select: Select<E>,
    id: E::Column,
    request: &PageRequest,
    order: Order,
) -> Result<Page<E::Model>>
where
    E::Model: Sync,
{
    fetch_by(&db.conn, select, id, Key::Uuid, request, order).await
}

/// Fetches one page of `select` in the order of its unique text column `name` (a slug or a
/// name), A to Z: how every list of named records is paged.
pub async fn fetch_by_name<E: EntityTrait>(
    db: &Db,
    select: Select<E>,
    name: E::Column,
    request: &PageRequest,
) -> Result<Page<E::Model>>
where
    E::Model: Sync,
{
    fetch_by(&db.conn, select, name, Key::Text, request, Order::Asc).await
}

/// Fetches one page of `select`, ordered by the unique column `column` whose cursor format is `key`.
pub async fn fetch_by<E, C>(
    db: &C,
    select: Select<E>,
    column: E::Column,
    key: Key,
    request: &PageRequest,
    order: Order,
) -> Result<Page<E::Model>>
where
    E: EntityTrait,
    E::Model: Sync,
    C: ConnectionTrait,
{
    let total_count = if request.count_total {
        Some(select.clone().count(db).await?)
    } else {
        None
    };
    let ascending = matches!(order, Order::Asc);
    let mut select = select;
    if let Some(after) = &request.after {
        let value = key.value(after)?;
        select = if ascending {
            select.filter(column.gt(value))
        } else {
            select.filter(column.lt(value))
        };
    }
    if let Some(before) = &request.before {
        let value = key.value(before)?;
        select = if ascending {
            select.filter(column.lt(value))
        } else {
            select.filter(column.gt(value))
        };
    }
    let (order, reversed) = match (request.direction, ascending) {
        (Direction::Forward, true) | (Direction::Backward, false) => (Order::Asc, !ascending),
        (Direction::Forward, false) | (Direction::Backward, true) => (Order::Desc, ascending),
    };
    let mut items = select.order_by(column, order).limit(request.size + 1).all(db).await?;
    let more = items.len() as u64 > request.size;
    items.truncate(request.size as usize);
    if reversed {
        items.reverse();
    }
    let (has_next_page, has_previous_page) = match request.direction {
        Direction::Forward => (more, request.after.is_some()),
        Direction::Backward => (request.before.is_some(), more),
    };
    Ok(Page {
        items,
        has_next_page,
        has_previous_page,
        total_count,
    })
}
