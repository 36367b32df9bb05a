//! Connector instances with resources, and triggers bound to their environment.

use entity::{Environment, connector_instances};
use runflow::auth::Role;
use sea_orm::{ActiveModelTrait, Set};
use serde_json::json;

use crate::on_both_backends;
use crate::support::{Backend, InProcess, Server, deploy, error_code, error_message, tenant, token};

async fn connectors_and_their_resources(backend: Backend) {
    let server = Server::start(backend).await;
    let tenant = tenant();
    let (admin, developer) = (token(&tenant, "admin"), token(&tenant, "developer"));
    let create = r#"mutation($input: CreateConnectorInput!) { createConnector(environment: STAGING, input: $input) { slug kind config credentials revision } }"#;
    let missing = server
        .gql(
            Some(&developer),
            create,
            json!({ "input": { "slug": "crm", "kind": "http", "credentials": ["crm-key"] } }),
        )
        .await;
    assert_eq!(error_code(&missing), "BAD_USER_INPUT");
    assert!(error_message(&missing).contains("crm-key"), "{missing:#}");
    server
        .data(&admin, r#"mutation { createCredential(environment: STAGING, input: {name: "crm-key", kind: "api-key", secret: "abc123abc123abc"}) { name } }"#, json!({}))
        .await;
    let created = server
        .data(&developer, create, json!({ "input": { "slug": "crm", "kind": "http", "config": { "baseUrl": "https://crm.test" }, "credentials": ["crm-key"] } }))
        .await;
    assert_eq!(
        created["createConnector"],
        json!({ "slug": "crm", "kind": "http", "config": { "baseUrl": "https://crm.test" }, "credentials": ["crm-key"], "revision": 1 })
    );
    let duplicate = server
        .gql(
            Some(&developer),
            create,
            json!({ "input": { "slug": "crm", "kind": "http" } }),
        )
        .await;
    assert_eq!(error_code(&duplicate), "CONFLICT");
    let bad_config = server
        .gql(
            Some(&developer),
            create,
            json!({ "input": { "slug": "x", "kind": "http", "config": "text" } }),
        )
        .await;
    assert_eq!(error_code(&bad_config), "BAD_USER_INPUT");

    let resource = r#"mutation($input: ConnectorResourceInput!) { createConnectorResource(environment: STAGING, input: $input) { key config revision } }"#;
    server
        .data(
            &developer,
            resource,
            json!({ "input": { "connector": "crm", "key": "contacts", "config": { "path": "/contacts" } } }),
        )
        .await;
    server
        .data(
            &developer,
            resource,
            json!({ "input": { "connector": "crm", "key": "deals", "config": { "path": "/deals" } } }),
        )
        .await;
    let update = r#"mutation($input: ConnectorResourceInput!) { updateConnectorResource(environment: STAGING, input: $input) { key config revision } }"#;
    let updated = server.data(&developer, update, json!({ "input": { "connector": "crm", "key": "deals", "config": { "path": "/v2/deals" }, "expectedRevision": 1 } })).await;
    assert_eq!(updated["updateConnectorResource"]["revision"], 2);
    let stale = server
        .gql(
            Some(&developer),
            update,
            json!({ "input": { "connector": "crm", "key": "deals", "config": {}, "expectedRevision": 1 } }),
        )
        .await;
    assert_eq!(error_code(&stale), "CONFLICT");
    server
        .data(
            &developer,
            r#"mutation { deleteConnectorResource(environment: STAGING, connector: "crm", key: "contacts") { deletedId deletedType } }"#,
            json!({}),
        )
        .await;

    let read = server
        .data(&developer, r#"{ connector(environment: STAGING, slug: "crm") { revision resources { key config } } connectors(environment: PRODUCTION) { nodes { slug } } }"#, json!({}))
        .await;
    assert_eq!(
        read["connector"]["resources"],
        json!([{ "key": "deals", "config": { "path": "/v2/deals" } }])
    );
    assert_eq!(
        read["connector"]["revision"], 5,
        "every resource change moves the instance's revision"
    );
    assert_eq!(
        read["connectors"]["nodes"],
        json!([]),
        "not in production until published"
    );

    let update_instance = r#"mutation($input: UpdateConnectorInput!) { updateConnector(environment: STAGING, input: $input) { kind revision } }"#;
    let stale = server
        .gql(
            Some(&developer),
            update_instance,
            json!({ "input": { "slug": "crm", "kind": "rest", "expectedRevision": 1 } }),
        )
        .await;
    assert_eq!(error_code(&stale), "CONFLICT");
    let ok = server
        .data(
            &developer,
            update_instance,
            json!({ "input": { "slug": "crm", "kind": "rest", "expectedRevision": 5 } }),
        )
        .await;
    assert_eq!(ok["updateConnector"], json!({ "kind": "rest", "revision": 6 }));
    server
        .data(
            &developer,
            r#"mutation { deleteConnector(environment: STAGING, slug: "crm") { deletedId } }"#,
            json!({}),
        )
        .await;
    let gone = server
        .data(
            &developer,
            r#"{ connectors(environment: STAGING) { nodes { slug } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(gone["connectors"]["nodes"], json!([]));
}

/// The same slug in both environments with different configuration: each sees its own.
async fn each_environment_has_its_own_connector_instance(backend: Backend) {
    let app = InProcess::start(backend).await;
    let tenant = tenant();
    app.data(&tenant, Role::Developer, r#"mutation { createConnector(environment: STAGING, input: {slug: "crm", kind: "http", config: {url: "https://staging.crm"}}) { slug } }"#, json!({}))
        .await;
    // Production's instance is seeded directly (publishing is the releases feature).
    let now = chrono::Utc::now();
    connector_instances::ActiveModel {
        id: Set(uuid::Uuid::now_v7()),
        tenant_id: Set(tenant.clone()),
        environment: Set(Environment::Production),
        slug: Set("crm".into()),
        kind: Set("http".into()),
        config: Set(json!({ "url": "https://crm" })),
        credential_refs: Set(json!([])),
        revision: Set(1),
        created_at: Set(now),
        updated_at: Set(now),
        release_id: Set(None),
    }
    .insert(&app.db().conn)
    .await
    .expect("seed");
    let query = r#"query($env: Environment!) { connector(environment: $env, slug: "crm") { environment config } }"#;
    let staging = app
        .data(&tenant, Role::Viewer, query, json!({ "env": "STAGING" }))
        .await;
    let production = app
        .data(&tenant, Role::Viewer, query, json!({ "env": "PRODUCTION" }))
        .await;
    assert_eq!(
        staging["connector"],
        json!({ "environment": "STAGING", "config": { "url": "https://staging.crm" } })
    );
    assert_eq!(
        production["connector"],
        json!({ "environment": "PRODUCTION", "config": { "url": "https://crm" } })
    );
}

async fn triggers_are_bound_to_their_environment(backend: Backend) {
    let server = Server::start(backend).await;
    let developer = token(&tenant(), "developer");
    let create = r#"mutation($input: CreateTriggerInput!) { createTrigger(environment: STAGING, input: $input) { name environment kind schedule enabled revision agentSlug agent { slug environment } } }"#;
    let no_agent = server
        .gql(
            Some(&developer),
            create,
            json!({ "input": { "name": "nightly", "agent": "bot", "kind": "SCHEDULE", "schedule": "0 3 * * *" } }),
        )
        .await;
    assert_eq!(error_code(&no_agent), "BAD_USER_INPUT");
    assert!(error_message(&no_agent).contains("deploy it first"), "{no_agent:#}");
    deploy(&server, &developer, "bot", "print(1)\n", "first").await;
    let created = server
        .data(
            &developer,
            create,
            json!({ "input": { "name": "nightly", "agent": "bot", "kind": "SCHEDULE", "schedule": "0 3 * * *" } }),
        )
        .await;
    assert_eq!(
        created["createTrigger"],
        json!({ "name": "nightly", "environment": "STAGING", "kind": "SCHEDULE", "schedule": "0 3 * * *", "enabled": true,
                "revision": 1, "agentSlug": "bot", "agent": { "slug": "bot", "environment": "STAGING" } })
    );
    for (input, expected) in [
        (
            json!({ "name": "bad", "agent": "bot", "kind": "SCHEDULE", "schedule": "every day" }),
            "not a valid cron",
        ),
        (
            json!({ "name": "bad", "agent": "bot", "kind": "SCHEDULE" }),
            "needs `schedule`",
        ),
        (
            json!({ "name": "bad", "agent": "bot", "kind": "WEBHOOK", "schedule": "* * * * *" }),
            "no `schedule`",
        ),
        (
            json!({ "name": "nightly", "agent": "bot", "kind": "WEBHOOK", "secret": "0123456789abcdef" }),
            "already exists",
        ),
        (
            json!({ "name": "hook2", "agent": "bot", "kind": "WEBHOOK" }),
            "needs `secret`",
        ),
        (
            json!({ "name": "hook2", "agent": "bot", "kind": "WEBHOOK", "secret": "short" }),
            "at least 16",
        ),
    ] {
        let response = server.gql(Some(&developer), create, json!({ "input": input })).await;
        assert!(
            ["BAD_USER_INPUT", "CONFLICT"].contains(&error_code(&response).as_str()),
            "{response:#}"
        );
        assert!(
            error_message(&response).contains(expected),
            "{expected:?}: {response:#}"
        );
    }
    server
        .data(
            &developer,
            create,
            json!({ "input": { "name": "hook", "agent": "bot", "kind": "WEBHOOK", "secret": "0123456789abcdef" } }),
        )
        .await;
    let update = r#"mutation($input: UpdateTriggerInput!) { updateTrigger(environment: STAGING, input: $input) { enabled schedule revision } }"#;
    let updated = server.data(&developer, update, json!({ "input": { "name": "nightly", "enabled": false, "schedule": "*/5 * * * *", "expectedRevision": 1 } })).await;
    assert_eq!(
        updated["updateTrigger"],
        json!({ "enabled": false, "schedule": "*/5 * * * *", "revision": 2 })
    );
    let stale = server
        .gql(
            Some(&developer),
            update,
            json!({ "input": { "name": "nightly", "enabled": true, "expectedRevision": 1 } }),
        )
        .await;
    assert_eq!(error_code(&stale), "CONFLICT");
    let lists = server
        .data(
            &developer,
            "{ s: triggers(environment: STAGING) { nodes { name } } p: triggers(environment: PRODUCTION) { nodes { name } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        lists,
        json!({ "s": { "nodes": [{ "name": "hook" }, { "name": "nightly" }] }, "p": { "nodes": [] } })
    );
    server
        .data(
            &developer,
            r#"mutation { deleteTrigger(environment: STAGING, name: "hook") { deletedId } }"#,
            json!({}),
        )
        .await;
    let missing = server
        .gql(
            Some(&developer),
            r#"mutation { deleteTrigger(environment: STAGING, name: "hook") { deletedId } }"#,
            json!({}),
        )
        .await;
    assert_eq!(error_code(&missing), "NOT_FOUND");
}

on_both_backends!(
    connectors_and_their_resources,
    each_environment_has_its_own_connector_instance,
    triggers_are_bound_to_their_environment,
);
