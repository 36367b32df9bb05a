//! Cursor pagination over UUIDv7 ids (which sort by creation time).

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, Order, QueryFilter, QueryOrder, QuerySelect, Select};
use uuid::Uuid;

use crate::error::{Error, Result};

pub const DEFAULT_PAGE_SIZE: u64 = 20;
pub const MAX_PAGE_SIZE: u64 = 100;

/// What a caller asked for: `first` items after the `after` cursor.
#[derive(Clone, Copy, Debug)]
pub struct PageRequest {
    pub first: u64,
    pub after: Option<Uuid>,
}

impl PageRequest {
    pub fn new(first: Option<i32>, after: Option<Uuid>) -> Result<Self> {
        let first = match first {
            None => DEFAULT_PAGE_SIZE,
            Some(n) if n < 0 => return Err(Error::bad_input("first must not be negative")),
            Some(n) if n as u64 > MAX_PAGE_SIZE => {
                return Err(Error::bad_input(format!("first must be at most {MAX_PAGE_SIZE}")));
            }
            Some(n) => n as u64,
        };
        Ok(PageRequest { first, after })
    }
}

/// One page of results.
#[derive(Clone, Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub has_next_page: bool,
    pub has_previous_page: bool,
}

/// Fetches one page of `select`, ordered by `id` (newest first with `Order::Desc`).
pub async fn fetch<E, C>(
    db: &C,
    select: Select<E>,
    id: E::Column,
    request: &PageRequest,
    order: Order,
) -> Result<Page<E::Model>>
where
    E: EntityTrait,
    C: ConnectionTrait,
{
    let mut select = select;
    if let Some(after) = request.after {
        select = match order {
            Order::Asc => select.filter(id.gt(after)),
            _ => select.filter(id.lt(after)),
        };
    }
    let mut items = select.order_by(id, order).limit(request.first + 1).all(db).await?;
    let has_next_page = items.len() as u64 > request.first;
    items.truncate(request.first as usize);
    Ok(Page {
        items,
        has_next_page,
        has_previous_page: request.after.is_some(),
    })
}
