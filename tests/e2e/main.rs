//! Black-box tests of Runflow: they start the real `runflow` binary and talk HTTP to it, or
//! (where a scenario must seed data the API cannot write yet) build the app in process and
//! seed through the domain layer. Each scenario runs on SQLite and on PostgreSQL.
//!
//! One test binary for the whole suite keeps the build small.

// Tests fail by panicking: unwrap and expect are the point here.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// Black-box tests inspect storage directly, across tenants on purpose (see clippy.toml).
#![allow(clippy::disallowed_methods)]

mod support;

mod access;
mod agents;
mod cli;
mod concurrency;
mod config_and_tokens;
mod connectors_and_triggers;
mod contract;
mod dashboard;
mod egress;
mod faults;
mod governance;
mod http;
mod identity;
mod limits;
mod live_feed;
mod prompts;
mod releases;
mod runner;
mod runtime_records;
mod sandbox;
mod shared_resources;
mod webhooks;
