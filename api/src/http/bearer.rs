//! The caller of an HTTP request: the one place a bearer token is read from a request.
//!
//! GraphQL over HTTP and server-sent events, the WebSocket upgrade, the runtime API, the agent
//! endpoints and the rate limiter take the caller from [`Bearer`] (or [`Bearer::of`]); a
//! WebSocket's `connection_init` payload carries the same `Bearer <token>` text and goes through
//! the same function, [`Authentication::from_header`], which parses and verifies it.

use std::convert::Infallible;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Request, header};

use crate::app::App;
use crate::auth::{Authentication, TokenService};

/// What the `Authorization` header of a request says about its caller.
pub struct Bearer(pub Authentication);

impl Bearer {
    /// The caller named by `headers` (no header: [`Authentication::Anonymous`]).
    pub fn of(headers: &HeaderMap, tokens: &TokenService) -> Authentication {
        let value = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        Authentication::from_header(value, tokens)
    }

    /// Keeps what [`Bearer::of`] said about `request`'s own header (the rate limiter verifies
    /// the token first), so the handler's [`Bearer`] does not verify it again.
    pub fn remember<B>(request: &mut Request<B>, authentication: Authentication) {
        request.extensions_mut().insert(Verified(authentication));
    }
}

/// The caller of a request, as [`Bearer::of`] found it in that request's header.
#[derive(Clone)]
struct Verified(Authentication);

impl FromRequestParts<App> for Bearer {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        if let Some(Verified(authentication)) = parts.extensions.remove::<Verified>() {
            return Ok(Bearer(authentication));
        }
        Ok(Bearer(Bearer::of(&parts.headers, &app.services.tokens)))
    }
}
