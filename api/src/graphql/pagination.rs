//! Relay connections over the domain's [`Page`]s. Cursors are opaque (base64 of the id).

use async_graphql::connection::{Connection, Edge, EmptyFields};
use async_graphql::{ID, OutputType};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use uuid::Uuid;

use crate::domain::pagination::{Page, PageRequest};
use crate::error::{Error, Result};

pub type RelayConnection<T> = Connection<String, T, EmptyFields, EmptyFields>;

pub fn encode_cursor(id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(id.as_bytes())
}

pub fn decode_cursor(cursor: &str) -> Result<Uuid> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| Uuid::from_slice(&bytes).ok())
        .ok_or_else(|| Error::bad_input(format!("`after` cursor {cursor:?} is not a cursor this API returned")))
}

/// The domain page request for `first`/`after` arguments.
pub fn page_request(first: Option<i32>, after: Option<String>) -> Result<PageRequest> {
    let after = after.as_deref().map(decode_cursor).transpose()?;
    PageRequest::new(first, after)
}

/// A connection from a page, with the cursor of each node taken from its id.
pub fn connection<M, T: OutputType>(
    page: Page<M>,
    id: impl Fn(&M) -> Uuid,
    node: impl Fn(M) -> T,
) -> RelayConnection<T> {
    let mut connection = Connection::new(page.has_previous_page, page.has_next_page);
    connection.edges.extend(
        page.items
            .into_iter()
            .map(|item| Edge::new(encode_cursor(id(&item)), node(item))),
    );
    connection
}

/// Parses an `ID!` argument as a UUID; a malformed id is just an id that does not exist.
pub fn parse_id(what: &str, id: &ID) -> Result<Uuid> {
    Uuid::parse_str(id.as_str()).map_err(|_| Error::not_found(format!("{what} {:?}", id.as_str())))
}
