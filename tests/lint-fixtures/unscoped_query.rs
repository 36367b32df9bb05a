//! A deliberately bad example: a tenant-owned table queried, updated or deleted without the
//! scope module (builders, one-row writes, raw SQL), and a transaction committed without
//! `Db::commit` (so without the operation's audit entry).
//!
//! Not built by `cargo clippy --all-targets` (it needs the `lint-fixture` feature). `.ci/run`
//! (through `tests/lint-fixtures/check.sh`) runs clippy on it and expects `clippy::disallowed_methods`
//! to reject every call below, which proves the rule in `clippy.toml` can fail.

use sea_orm::{ActiveModelTrait, EntityTrait, TransactionTrait};

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
    let _insert_row = row.clone().insert(&db);
    // One row changed or removed by its primary key alone, whichever tenant it belongs to.
    let _update_row = row.clone().update(&db);
    let _save_row = row.clone().save(&db);
    let _delete_row = row.clone().delete(&db);
    let _update_one = entity::agents::Entity::update(row.clone());
    let _delete_one_row = entity::agents::Entity::delete(row.clone());
    let _delete_model = delete_model;
    // Raw SQL: every tenant's agents, whatever the scope module would have added.
    let _raw = sea_orm::Statement::from_string(sea_orm::DbBackend::Sqlite, "SELECT * FROM agents");
    // A change committed around the audit log: `Db::commit` writes the entry, this does not.
    let _commit = async {
        let tx = db.begin().await?;
        tx.commit().await
    };
    let _closure = db.transaction::<_, (), sea_orm::DbErr>(|_tx| Box::pin(async { Ok(()) }));
}

/// A loaded row deleted by its primary key alone.
async fn delete_model(model: entity::agents::Model, db: &sea_orm::DatabaseConnection) {
    let _ = sea_orm::ModelTrait::delete(model, db).await;
}
