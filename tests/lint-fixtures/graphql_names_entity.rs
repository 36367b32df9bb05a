//! A GraphQL module that names storage entities, as `graphql_names_no_storage_entity` (a unit
//! test in `api/src/graphql/mod.rs`) must refuse: `the_storage_check_rejects_its_fixture` runs
//! the check on this file and expects each of the names below. Never compiled.

use entity::sessions;
use entity::{Environment, spans,
    traces};

// entity::agents in a comment is not code.
pub struct Execution(pub entity::executions::Model);

pub struct Event(pub entity::events::Model);

pub async fn rows(db: &sea_orm::DatabaseConnection) {}

pub fn environment(environment: entity::Environment) -> Environment {
    environment
}
