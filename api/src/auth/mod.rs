//! Who is calling: bearer tokens, roles and the authenticated [`Actor`].
//!
//! The tenant comes only from a verified token. A caller is a person with a role (roles are
//! ordered: each includes the ones before it) or an agent runtime ([`ActorKind`]). Who may do
//! what, for every transport, lives in [`policy`].

pub mod capability;
pub mod policy;
mod tokens;

pub use tokens::{Claims, TokenService};

use std::fmt;
use std::str::FromStr;

/// The roles of people, lowest first. `Ord` follows the order of inclusion.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
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
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Developer, Role::Publisher, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
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

/// The `role` claim of a runtime token.
pub const RUNTIME_ROLE_CLAIM: &str = "runtime";

/// What kind of caller a token names. A runtime is not a rung of the role ladder: it is an agent
/// runtime (not a person), bound to one environment, that reports to the runtime API (and runs
/// agents); it never reaches the GraphQL API, and people never report to the runtime API.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ActorKind {
    /// A person, with a role.
    Person(Role),
    /// An agent runtime reporting to one environment (`runflow token --role runtime
    /// --environment ...`, or a run's own token).
    Runtime(entity::Environment),
}

impl ActorKind {
    /// The token's `role` claim.
    pub fn role_claim(self) -> &'static str {
        match self {
            ActorKind::Person(role) => role.as_str(),
            ActorKind::Runtime(_) => RUNTIME_ROLE_CLAIM,
        }
    }

    /// The environment a runtime token is bound to (None for people).
    pub fn environment(self) -> Option<entity::Environment> {
        match self {
            ActorKind::Person(_) => None,
            ActorKind::Runtime(environment) => Some(environment),
        }
    }
}

impl fmt::Display for ActorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.role_claim())
    }
}

/// An authenticated caller: what a verified token says ([`TokenService::verify`]). Its fields
/// are private, so no code outside `auth` can make one up, and a [`crate::scope::Tenant`] or
/// [`crate::scope::Scope`] built from it always names a tenant some token was signed for:
///
/// ```compile_fail,E0451
/// let forged = runflow::auth::Actor {
///     subject: "mallory".into(),
///     tenant: "someone-else".into(),
///     kind: runflow::auth::ActorKind::Person(runflow::auth::Role::Admin),
///     expires_at: u64::MAX,
/// };
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    subject: String,
    tenant: String,
    kind: ActorKind,
    expires_at: u64,
}

impl Actor {
    /// Made by token verification, and by [`Actor::on_behalf_of`].
    pub(crate) fn new(subject: String, tenant: String, kind: ActorKind, expires_at: u64) -> Actor {
        Actor {
            subject,
            tenant,
            kind,
            expires_at,
        }
    }

    /// The person a stored job acts for, when the server runs it later in their name (a
    /// scheduled release publishing with its creator's subject and role). Never expires: it
    /// lives only as long as that job's run.
    pub(crate) fn on_behalf_of(subject: &str, tenant: &str, role: Role) -> Actor {
        Actor::new(
            subject.to_string(),
            tenant.to_string(),
            ActorKind::Person(role),
            u64::MAX,
        )
    }

    /// The token's `sub`: who, for audit fields (`author`, `updatedBy`, ...).
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The tenant the token was signed for.
    pub fn tenant_id(&self) -> &str {
        &self.tenant
    }

    /// A person with a role, or a runtime bound to an environment.
    pub fn kind(&self) -> ActorKind {
        self.kind
    }

    /// When the token expires (unix seconds): live connections close then.
    pub fn expires_at(&self) -> u64 {
        self.expires_at
    }

    /// A person's role. A runtime never reaches the GraphQL API (access control refuses it),
    /// so for one this is the least privilege, `viewer`, never a rung it could climb.
    pub fn role(&self) -> Role {
        match self.kind {
            ActorKind::Person(role) => role,
            ActorKind::Runtime(_) => Role::Viewer,
        }
    }
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

    /// The caller, for endpoints that need one: no token is UNAUTHENTICATED with `hint` (how
    /// to send one), a refused token UNAUTHENTICATED with the reason.
    pub fn require(self, hint: &str) -> Result<Actor, crate::error::Error> {
        match self {
            Authentication::Authenticated(actor) => Ok(actor),
            Authentication::Rejected(reason) => Err(crate::error::Error::Unauthenticated(reason)),
            Authentication::Anonymous => Err(crate::error::Error::Unauthenticated(hint.into())),
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
