//! A deliberately bad example: a tenant-owned table queried without the scope module.
//!
//! Not built by `cargo clippy --all-targets` (it needs the `lint-fixture` feature). `.ci/run`
//! (through `tests/lint-fixtures/check.sh`) runs clippy on it and expects `clippy::disallowed_methods`
//! to reject every call below, which proves the rule in `clippy.toml` can fail.

use sea_orm::{ActiveModelTrait, EntityTrait};

fn main() {
    // Every agent of every tenant: exactly what the lint must refuse.
    let _all = entity::agents::Entity::find();
    let _one = entity::agents::Entity::find_by_id(uuid::Uuid::nil());
    let _update = entity::agents::Entity::update_many();
    let _delete = entity::agents::Entity::delete_many();
    let _delete_one = entity::agents::Entity::delete_by_id(uuid::Uuid::nil());
    // A row written into whichever tenant the model names.
    let row = entity::agents::ActiveModel {
        tenant_id: sea_orm::Set("someone-else".into()),
        ..Default::default()
    };
    let _insert = entity::agents::Entity::insert(row.clone());
    let _insert_many = entity::agents::Entity::insert_many([row.clone()]);
    let db = sea_orm::DatabaseConnection::default();
    let _insert_row = row.insert(&db);
}
