//! Who is calling: bearer tokens, roles and the authenticated [`Actor`].
//!
//! The tenant comes only from a verified token. Roles are ordered: each includes the ones
//! before it. The role *policy* (which operation needs which role) lives in [`policy`].

pub mod capability;
pub mod policy;
mod tokens;

pub use tokens::{Claims, TokenService};

use std::fmt;
use std::str::FromStr;

/// Roles, lowest first. `Ord` follows the order of inclusion.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// An agent runtime (not a person): reports to the runtime API in its token's environment
    /// only; it has no access to the GraphQL API.
    Runtime,
    /// Reads everything of its tenant.
    Viewer,
    /// Edits staging.
    Developer,
    /// Publishes staging to production.
    Publisher,
    /// Manages credentials and the other shared resources.
    Admin,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Runtime,
        Role::Viewer,
        Role::Developer,
        Role::Publisher,
        Role::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Runtime => "runtime",
            Role::Viewer => "viewer",
            Role::Developer => "developer",
            Role::Publisher => "publisher",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == value)
            .ok_or_else(|| format!("unknown role {value:?} (expected viewer, developer, publisher, admin or runtime)"))
    }
}

/// An authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    /// The token's `sub`: who, for audit fields (`author`, `updatedBy`, ...).
    pub subject: String,
    pub tenant: String,
    pub role: Role,
    /// The environment a runtime token is bound to (None for people's tokens).
    pub environment: Option<entity::Environment>,
    /// When the token expires (unix seconds): live connections close then.
    pub expires_at: u64,
}

/// What the HTTP layer learnt from the `Authorization` header.
#[derive(Clone, Debug)]
pub enum Authentication {
    /// No header: only introspection is allowed.
    Anonymous,
    Authenticated(Actor),
    /// A header was sent but its token is not acceptable; the reason is safe to show.
    Rejected(String),
}

impl Authentication {
    /// Reads an `Authorization` header value.
    pub fn from_header(header: Option<&str>, tokens: &TokenService) -> Self {
        let Some(value) = header else {
            return Authentication::Anonymous;
        };
        let Some(token) = value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")) else {
            return Authentication::Rejected("the Authorization header must be `Bearer <token>`".into());
        };
        match tokens.verify(token.trim()) {
            Ok(actor) => Authentication::Authenticated(actor),
            Err(reason) => Authentication::Rejected(reason),
        }
    }
}

/// Tenant ids appear in URLs and memory namespaces: keep them to a safe alphabet.
pub fn validate_tenant(tenant: &str) -> Result<(), String> {
    let valid = !tenant.is_empty()
        && tenant.len() <= 64
        && tenant
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if valid {
        Ok(())
    } else {
        Err("the token's tenant must be 1-64 characters of a-z, A-Z, 0-9, '-' or '_'".into())
    }
}
