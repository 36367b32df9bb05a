//! Prompts: drafts live in staging; staging resolves to the draft, else the latest published
//! version; production resolves to its published version only.

use entity::{Environment, prompt_versions, prompts};
use runflow::auth::Role;
use sea_orm::{ActiveModelTrait, Set};
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, InProcess, Server, error_code, error_message, tenant, token};

const SAVE: &str = "mutation($input: SavePromptDraftInput!) { savePromptDraft(environment: STAGING, input: $input) { slug revision resolved { source version template variables modelSettings } } }";

async fn drafts_live_in_staging(backend: Backend) {
    let server = Server::start(backend).await;
    let developer = token(&tenant(), "developer");
    let saved = server
        .data(
            &developer,
            SAVE,
            json!({ "input": { "slug": "greet", "template": "Hello {{name}}, about {{ topic }}", "modelSettings": { "model": "gpt-x", "temperature": 0.2 } } }),
        )
        .await;
    assert_eq!(
        saved["savePromptDraft"],
        json!({ "slug": "greet", "revision": 1, "resolved": { "source": "DRAFT", "version": null,
                "template": "Hello {{name}}, about {{ topic }}", "variables": ["name", "topic"],
                "modelSettings": { "model": "gpt-x", "temperature": 0.2 } } })
    );
    // Never published: it does not exist in production.
    let production = server
        .data(
            &developer,
            r#"{ prompt(environment: PRODUCTION, slug: "greet") { slug } prompts(environment: PRODUCTION) { nodes { slug } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(production, json!({ "prompt": null, "prompts": { "nodes": [] } }));

    // Revisions: a stale expectedRevision is a CONFLICT and changes nothing.
    let again = server
        .data(
            &developer,
            SAVE,
            json!({ "input": { "slug": "greet", "template": "Hi {{name}}", "expectedRevision": 1 } }),
        )
        .await;
    assert_eq!(again["savePromptDraft"]["revision"], 2);
    let stale = server
        .gql(
            Some(&developer),
            SAVE,
            json!({ "input": { "slug": "greet", "template": "Lost update", "expectedRevision": 1 } }),
        )
        .await;
    assert_eq!(error_code(&stale), "CONFLICT");
    let current = server
        .data(
            &developer,
            r#"{ prompt(environment: STAGING, slug: "greet") { revision draft { template } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(
        current["prompt"],
        json!({ "revision": 2, "draft": { "template": "Hi {{name}}" } })
    );

    // Bad input is typed and precise.
    for (input, expected) in [
        (
            json!({ "slug": "greet", "template": "Hi {{name}}", "variables": ["other"] }),
            "does not declare",
        ),
        (json!({ "slug": "greet", "template": "   " }), "must not be empty"),
        (
            json!({ "slug": "greet", "template": "x", "modelSettings": [1, 2] }),
            "JSON object",
        ),
        (json!({ "slug": "Bad Slug", "template": "x" }), "not a valid slug"),
        (
            json!({ "slug": "greet", "template": "{{ 9lives }}" }),
            "not a valid name",
        ),
        (
            json!({ "slug": "greet", "template": "x", "variables": ["a", "a"] }),
            "twice",
        ),
    ] {
        let response = server.gql(Some(&developer), SAVE, json!({ "input": input })).await;
        assert_eq!(error_code(&response), "BAD_USER_INPUT", "{input}: {response:#}");
        assert!(
            error_message(&response).contains(expected),
            "{expected:?}: {response:#}"
        );
    }
    let response = server
        .gql(Some(&developer), SAVE, json!({ "input": { "slug": "greet" } }))
        .await;
    assert_eq!(
        error_code(&response),
        "BAD_USER_INPUT",
        "a missing required field: {response:#}"
    );

    let deleted = server
        .gql(
            Some(&developer),
            r#"mutation { deletePrompt(environment: STAGING, slug: "greet", expectedRevision: 1) { deletedId } }"#,
            json!({}),
        )
        .await;
    assert_eq!(error_code(&deleted), "CONFLICT");
    server
        .data(
            &developer,
            r#"mutation { deletePrompt(environment: STAGING, slug: "greet", expectedRevision: 2) { deletedId } }"#,
            json!({}),
        )
        .await;
    let gone = server
        .data(
            &developer,
            r#"{ prompt(environment: STAGING, slug: "greet") { slug } }"#,
            json!({}),
        )
        .await;
    assert_eq!(gone["prompt"], Value::Null);
}

/// Resolution once versions exist. Publishing is the releases feature; here the published
/// state is seeded directly in the database to check each environment's resolution rule.
async fn each_environment_resolves_its_own_version(backend: Backend) {
    let app = InProcess::start(backend).await;
    let tenant = tenant();
    let db = &app.db().conn;
    let now = chrono::Utc::now();
    let mut versions = Vec::new();
    for (n, text) in [(1, "v1 {{name}}"), (2, "v2 {{name}}")] {
        let version = prompt_versions::ActiveModel {
            id: Set(uuid::Uuid::now_v7()),
            tenant_id: Set(tenant.clone()),
            slug: Set("greet".into()),
            version: Set(n),
            template: Set(text.into()),
            variables: Set(json!(["name"])),
            model_settings: Set(json!({})),
            created_by: Set("seed".into()),
            created_at: Set(now),
        }
        .insert(db)
        .await
        .expect("version");
        versions.push(version);
    }
    for (environment, published) in [
        (Environment::Production, Some(versions[0].id)),
        (Environment::Staging, None),
    ] {
        prompts::ActiveModel {
            id: Set(uuid::Uuid::now_v7()),
            tenant_id: Set(tenant.clone()),
            environment: Set(environment),
            slug: Set("greet".into()),
            published_version_id: Set(published),
            draft_template: Set(None),
            draft_variables: Set(None),
            draft_model_settings: Set(None),
            revision: Set(1),
            updated_by: Set("seed".into()),
            created_at: Set(now),
            updated_at: Set(now),
            release_id: Set(None),
        }
        .insert(db)
        .await
        .expect("prompt");
    }
    let query = r#"query($env: Environment!) { prompt(environment: $env, slug: "greet") {
        resolved { source version template } publishedVersion { version } versions { nodes { version } } } }"#;
    let staging = app
        .data(&tenant, Role::Viewer, query, json!({ "env": "STAGING" }))
        .await;
    assert_eq!(
        staging["prompt"]["resolved"],
        json!({ "source": "PUBLISHED", "version": 2, "template": "v2 {{name}}" })
    );
    let production = app
        .data(&tenant, Role::Viewer, query, json!({ "env": "PRODUCTION" }))
        .await;
    assert_eq!(
        production["prompt"]["resolved"],
        json!({ "source": "PUBLISHED", "version": 1, "template": "v1 {{name}}" })
    );
    assert_eq!(
        production["prompt"]["versions"]["nodes"],
        json!([{ "version": 2 }, { "version": 1 }])
    );

    // A draft changes staging only.
    app.data(
        &tenant,
        Role::Developer,
        SAVE,
        json!({ "input": { "slug": "greet", "template": "draft {{name}}" } }),
    )
    .await;
    let staging = app
        .data(&tenant, Role::Viewer, query, json!({ "env": "STAGING" }))
        .await;
    assert_eq!(
        staging["prompt"]["resolved"],
        json!({ "source": "DRAFT", "version": null, "template": "draft {{name}}" })
    );
    let production = app
        .data(&tenant, Role::Viewer, query, json!({ "env": "PRODUCTION" }))
        .await;
    assert_eq!(production["prompt"]["resolved"]["template"], "v1 {{name}}");
    // The domain's resolver agrees (it is what the runtime API will call).
    let scope = runflow::scope::Scope::new(tenant.clone(), Environment::Production);
    let resolved = runflow::domain::prompts::resolve(app.db(), &scope, "greet")
        .await
        .expect("resolve");
    assert_eq!(resolved.version, Some(1));
    let other_tenant = runflow::scope::Scope::new("someone-else", Environment::Production);
    let missing = runflow::domain::prompts::resolve(app.db(), &other_tenant, "greet").await;
    assert!(matches!(missing, Err(runflow::error::Error::NotFound(_))));
}

on_both_backends!(drafts_live_in_staging, each_environment_resolves_its_own_version);
