//! The role policy: the one table of which operation needs which role.
//!
//! Queries and subscriptions need `viewer` (any valid token), webhook endpoints `admin`. Mutations need `developer`
//! unless listed here. The GraphQL access check ([`crate::graphql::access`]) applies it to
//! every root mutation field before any resolver runs, so a new mutation is covered by default.

use super::Role;

/// The role a root mutation field requires.
pub fn required_role_for_mutation(field: &str) -> Role {
    match field {
        "publish"
        | "rollback"
        | "approveReleaseRequest"
        | "rejectReleaseRequest"
        | "scheduleRelease"
        | "rescheduleRelease"
        | "cancelScheduledRelease" => Role::Publisher,
        // Tenant settings (required approvals) govern every publish: admins only.
        "updateSettings" => Role::Admin,
        // Shared resources affect production immediately: admins only.
        f if f.ends_with("Credential")
            || f.ends_with("KnowledgeBase")
            || f.ends_with("LlmProvider")
            || f.ends_with("DataSource") =>
        {
            Role::Admin
        }
        // Outgoing webhooks send production's events out of the system: admins only.
        f if f.ends_with("WebhookEndpoint") || f == "redeliverWebhook" => Role::Admin,
        _ => Role::Developer,
    }
}

/// The role needed to read.
pub const READ_ROLE: Role = Role::Viewer;

/// The role a root query or subscription field requires: `viewer` except for these.
pub fn required_role_for_query(field: &str) -> Role {
    match field {
        // Who did what: admins only.
        "auditLog" => Role::Admin,
        // Webhook endpoints: their URLs often carry a receiver's credentials.
        "webhookEndpoints" => Role::Admin,
        _ => READ_ROLE,
    }
}

/// Whether `role` may read webhook endpoints and deliveries (also through `node`).
pub fn may_read_webhooks(role: Role) -> bool {
    role >= required_role_for_query("webhookEndpoints")
}
