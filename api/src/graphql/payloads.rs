//! Mutation payloads that a normalised client cache can apply.

use async_graphql::{ID, SimpleObject};

use super::ids::{self, NodeType};

/// What a delete removed: evict `deletedId` from a client cache.
#[derive(SimpleObject)]
pub struct DeletePayload {
    /// The global id the deleted object had (as returned in its `id` field).
    deleted_id: ID,
    /// The GraphQL type name of the deleted object (its `__typename`).
    deleted_type: String,
}

impl DeletePayload {
    pub fn new(node_type: NodeType, environment: entity::Environment, key: impl std::fmt::Display) -> Self {
        DeletePayload {
            deleted_id: ids::encode(node_type, environment, key),
            deleted_type: node_type.name().to_string(),
        }
    }
}
