//! Shared records: the same in both environments; credentials' secrets are write-only.

use entity::credentials;
use sea_orm::EntityTrait;
use serde_json::json;

use crate::on_both_backends;
use crate::support::{Backend, InProcess, Server, error_code, tenant, token};

const SECRET: &str = "sk-live-SUPER-SECRET-4242";

async fn credential_secrets_are_write_only(backend: Backend) {
    let server = Server::start(backend).await;
    let tenant = tenant();
    let admin = token(&tenant, "admin");
    let create = r#"mutation($input: CreateCredentialInput!) { createCredential(environment: STAGING, input: $input) { name kind hint revision createdBy rotatedAt } }"#;
    let developer = server
        .gql(
            Some(&token(&tenant, "developer")),
            create,
            json!({ "input": { "name": "openai", "kind": "api-key", "secret": SECRET } }),
        )
        .await;
    assert_eq!(error_code(&developer), "FORBIDDEN", "credentials are admin-only");
    let created = server
        .gql(
            Some(&admin),
            create,
            json!({ "input": { "name": "openai", "kind": "api-key", "secret": SECRET } }),
        )
        .await;
    assert_eq!(
        created["data"]["createCredential"],
        json!({ "name": "openai", "kind": "api-key", "hint": "••••4242", "revision": 1, "createdBy": format!("admin@{tenant}"), "rotatedAt": null })
    );
    let rotated = server
        .gql(Some(&admin), r#"mutation { rotateCredential(environment: STAGING, input: {name: "openai", secret: "sk-live-NEW-SECRET-9999", expectedRevision: 1}) { hint revision rotatedBy rotatedAt } }"#, json!({}))
        .await;
    assert_eq!(rotated["data"]["rotateCredential"]["hint"], "••••9999");
    assert_eq!(
        rotated["data"]["rotateCredential"]["rotatedBy"],
        format!("admin@{tenant}")
    );
    // Shared: the same in both environments.
    let both = server
        .data(&admin, "{ s: credentials(environment: STAGING) { nodes { id name hint } } p: credentials(environment: PRODUCTION) { nodes { id name hint } } }", json!({}))
        .await;
    assert_eq!(both["s"], both["p"]);
    // No field anywhere in the schema can return a secret, and no response or log contains one.
    let fields = server
        .gql(None, r#"{ __type(name: "Credential") { fields { name } } }"#, json!({}))
        .await;
    let names: Vec<String> = fields["data"]["__type"]["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .map(|f| f["name"].to_string())
        .collect();
    assert!(
        !names
            .iter()
            .any(|n| n.to_lowercase().contains("secret") || n.contains("cipher")),
        "{names:?}"
    );
    for response in [&created, &rotated, &both] {
        let text = response.to_string();
        assert!(!text.contains("SUPER-SECRET") && !text.contains("NEW-SECRET"), "{text}");
    }
    let log = server.log();
    assert!(
        !log.contains("SUPER-SECRET") && !log.contains("NEW-SECRET"),
        "a secret reached the log"
    );
    let stale = server
        .gql(
            Some(&admin),
            r#"mutation { deleteCredential(environment: STAGING, name: "openai", expectedRevision: 1) { deletedId } }"#,
            json!({}),
        )
        .await;
    assert_eq!(error_code(&stale), "CONFLICT");
    server
        .data(
            &admin,
            r#"mutation { deleteCredential(environment: STAGING, name: "openai", expectedRevision: 2) { deletedId } }"#,
            json!({}),
        )
        .await;
}

async fn secrets_are_encrypted_at_rest(backend: Backend) {
    let app = InProcess::start(backend).await;
    let tenant = tenant();
    app.data(
        &tenant,
        runflow::auth::Role::Admin,
        r#"mutation($s: String!) { createCredential(environment: STAGING, input: {name: "k", kind: "api-key", secret: $s}) { name } }"#,
        json!({ "s": SECRET }),
    )
    .await;
    let rows = credentials::Entity::find().all(&app.db().conn).await.expect("rows");
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert!(
        !row.ciphertext.windows(12).any(|w| w == &SECRET.as_bytes()[..12]),
        "stored in clear"
    );
    let sealed = runflow::crypto::Sealed {
        ciphertext: row.ciphertext.clone(),
        nonce: row.nonce.clone(),
    };
    assert_eq!(app.app.services.secret_box.open(&sealed).expect("open"), SECRET);
}

async fn knowledge_bases_providers_and_data_sources_are_shared(backend: Backend) {
    let server = Server::start(backend).await;
    let tenant = tenant();
    let admin = token(&tenant, "admin");
    for (create, update, delete, list) in [
        (
            "createKnowledgeBase",
            "updateKnowledgeBase",
            "deleteKnowledgeBase",
            "knowledgeBases",
        ),
        (
            "createLlmProvider",
            "updateLlmProvider",
            "deleteLlmProvider",
            "llmProviders",
        ),
        (
            "createDataSource",
            "updateDataSource",
            "deleteDataSource",
            "dataSources",
        ),
    ] {
        let created = server
            .data(&admin, &format!(r#"mutation {{ {create}(environment: STAGING, input: {{name: "main", kind: "pgvector", config: {{dim: 3}}}}) {{ name kind config revision credentials }} }}"#), json!({}))
            .await;
        assert_eq!(
            created[create],
            json!({ "name": "main", "kind": "pgvector", "config": { "dim": 3 }, "revision": 1, "credentials": [] })
        );
        let duplicate = server
            .gql(
                Some(&admin),
                &format!(
                    r#"mutation {{ {create}(environment: STAGING, input: {{name: "main", kind: "x"}}) {{ name }} }}"#
                ),
                json!({}),
            )
            .await;
        assert_eq!(error_code(&duplicate), "CONFLICT");
        let missing_credential = server
            .gql(Some(&admin), &format!(r#"mutation {{ {update}(environment: STAGING, input: {{name: "main", credentials: ["nope"]}}) {{ name }} }}"#), json!({}))
            .await;
        assert_eq!(error_code(&missing_credential), "BAD_USER_INPUT");
        let stale = server
            .gql(Some(&admin), &format!(r#"mutation {{ {update}(environment: STAGING, input: {{name: "main", kind: "x", expectedRevision: 9}}) {{ name }} }}"#), json!({}))
            .await;
        assert_eq!(error_code(&stale), "CONFLICT");
        let both = server.data(&admin, &format!("{{ s: {list}(environment: STAGING) {{ nodes {{ id name kind }} }} p: {list}(environment: PRODUCTION) {{ nodes {{ id name kind }} }} }}"), json!({})).await;
        assert_eq!(both["s"]["nodes"][0]["name"], "main");
        assert_eq!(both["s"]["nodes"].as_array().map(Vec::len), Some(1));
        assert_eq!(both["s"], both["p"], "shared records are the same in both environments");
        server
            .data(
                &admin,
                &format!(r#"mutation {{ {delete}(environment: STAGING, name: "main") {{ deletedId }} }}"#),
                json!({}),
            )
            .await;
    }
    let developer = server
        .gql(
            Some(&token(&tenant, "developer")),
            r#"mutation { createDataSource(environment: STAGING, input: {name: "x", kind: "y"}) { name } }"#,
            json!({}),
        )
        .await;
    assert_eq!(error_code(&developer), "FORBIDDEN");
}

on_both_backends!(
    credential_secrets_are_write_only,
    secrets_are_encrypted_at_rest,
    knowledge_bases_providers_and_data_sources_are_shared,
);
