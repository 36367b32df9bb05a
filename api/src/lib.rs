//! Runflow's API gateway: the environment-aware GraphQL API over the domain layer.
//!
//! Layout (each module is an error boundary with one job):
//! - [`config`]: `RUNFLOW_*` configuration.
//! - [`db`]: the database handle (SQLite default, PostgreSQL for replicas) and migrations.
//! - [`auth`]: tokens, roles, the role policy.
//! - [`scope`]: tenant and environment scoping of every query.
//! - [`domain`]: the product's rules as plain Rust (agents, prompts, connectors, ...).
//! - [`graphql`]: the schema; resolvers are thin calls into [`domain`].
//! - [`http`]: the axum router: `/graphql`, health, limits.
//! - [`live`]: the live feed's fan-out; [`runner`]: the workers that run agents.
//! - [`services`]: the plain values handlers and resolvers share; [`app`]: wiring it all
//!   together (configuration in, services and schema out).
//! - [`webhook_delivery`]: the sender of outgoing webhooks.
//! - [`app`]: wiring it all together.

pub mod app;
pub mod auth;
pub mod cache;
pub mod config;
pub mod crypto;
pub mod db;
pub mod domain;
pub mod error;
pub mod graphql;
pub mod http;
pub mod live;
pub mod runner;
pub mod scope;
pub mod services;
pub mod telemetry;
pub mod webhook_delivery;
