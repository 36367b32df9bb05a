//! Release governance: the audit log.

use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, Server, error_code, manifest, tenant, token};

const MUTATIONS: &str = "{ __schema { mutationType { fields { name } } } }";

const AUDIT_LOG: &str = r#"query($env: Environment!, $filter: AuditLogFilter, $after: String) {
  auditLog(environment: $env, filter: $filter, first: 100, after: $after) {
    edges { node { id createdAt environment actor actorRole action recordKind recordKey summary } }
    pageInfo { hasNextPage endCursor }
  } }"#;

const CREDENTIAL_SECRET: &str = "audit-credential-secret-0001";
const ROTATED_SECRET: &str = "audit-rotated-secret-0002";
const TRIGGER_SECRET: &str = "audit-trigger-secret-0003-xyz";
const TRIGGER_SECRET_2: &str = "audit-trigger-secret-0004-xyz";

/// A valid call of every mutation, in an order that makes each succeed. The test fails if the
/// schema has a mutation missing here, so a new mutation must be added (and is then checked).
fn calls() -> Vec<(&'static str, String, Value)> {
    let m = |field: &str, args: &str, selection: &str| -> String {
        format!("mutation($i: {args}) {{ {field}(environment: STAGING, input: $i) {selection} }}")
    };
    vec![
        (
            "deployAgent",
            m("deployAgent", "DeployAgentInput!", "{ id }"),
            json!({ "i": { "slug": "bot", "message": "first", "files": [
                { "path": "runflow.toml", "content": manifest("bot") },
                { "path": "main.py", "content": "print('hi')\n" } ] } }),
        ),
        (
            "updateAgent",
            m("updateAgent", "UpdateAgentMetadataInput!", "{ id }"),
            json!({ "i": { "slug": "bot", "name": "Bot" } }),
        ),
        (
            "savePromptDraft",
            m("savePromptDraft", "SavePromptDraftInput!", "{ id }"),
            json!({ "i": { "slug": "greet", "template": "Hello" } }),
        ),
        (
            "createCredential",
            m("createCredential", "CreateCredentialInput!", "{ id }"),
            json!({ "i": { "name": "key", "kind": "api-key", "secret": CREDENTIAL_SECRET } }),
        ),
        (
            "rotateCredential",
            m("rotateCredential", "RotateCredentialInput!", "{ id }"),
            json!({ "i": { "name": "key", "secret": ROTATED_SECRET } }),
        ),
        (
            "createConnector",
            m("createConnector", "CreateConnectorInput!", "{ id }"),
            json!({ "i": { "slug": "crm", "kind": "http", "credentials": ["key"] } }),
        ),
        (
            "updateConnector",
            m("updateConnector", "UpdateConnectorInput!", "{ id }"),
            json!({ "i": { "slug": "crm", "config": { "url": "https://crm.example" } } }),
        ),
        (
            "createConnectorResource",
            m("createConnectorResource", "ConnectorResourceInput!", "{ id }"),
            json!({ "i": { "connector": "crm", "key": "accounts", "config": {} } }),
        ),
        (
            "updateConnectorResource",
            m("updateConnectorResource", "ConnectorResourceInput!", "{ id }"),
            json!({ "i": { "connector": "crm", "key": "accounts", "config": { "a": 1 } } }),
        ),
        (
            "createTrigger",
            m("createTrigger", "CreateTriggerInput!", "{ id }"),
            json!({ "i": { "name": "hook", "agent": "bot", "kind": "WEBHOOK", "secret": TRIGGER_SECRET } }),
        ),
        (
            "updateTrigger",
            m("updateTrigger", "UpdateTriggerInput!", "{ id }"),
            json!({ "i": { "name": "hook", "secret": TRIGGER_SECRET_2 } }),
        ),
        (
            "createKnowledgeBase",
            m("createKnowledgeBase", "CreateSharedResourceInput!", "{ id }"),
            json!({ "i": { "name": "kb", "kind": "vector" } }),
        ),
        (
            "updateKnowledgeBase",
            m("updateKnowledgeBase", "UpdateSharedResourceInput!", "{ id }"),
            json!({ "i": { "name": "kb", "kind": "vector2" } }),
        ),
        (
            "createLlmProvider",
            m("createLlmProvider", "CreateSharedResourceInput!", "{ id }"),
            json!({ "i": { "name": "llm", "kind": "openai" } }),
        ),
        (
            "updateLlmProvider",
            m("updateLlmProvider", "UpdateSharedResourceInput!", "{ id }"),
            json!({ "i": { "name": "llm", "kind": "anthropic" } }),
        ),
        (
            "createDataSource",
            m("createDataSource", "CreateSharedResourceInput!", "{ id }"),
            json!({ "i": { "name": "ds", "kind": "postgres" } }),
        ),
        (
            "updateDataSource",
            m("updateDataSource", "UpdateSharedResourceInput!", "{ id }"),
            json!({ "i": { "name": "ds", "kind": "mysql" } }),
        ),
        (
            "createRuntimeToken",
            "mutation { createRuntimeToken(environment: STAGING) { token } }".into(),
            json!({}),
        ),
        (
            "publish",
            "mutation { publish(environment: PRODUCTION, input: {all: true, fingerprint: \"FINGERPRINT\"}) { id } }"
                .into(),
            json!({}),
        ),
        (
            "deleteConnectorResource",
            r#"mutation { deleteConnectorResource(environment: STAGING, connector: "crm", key: "accounts") }"#.into(),
            json!({}),
        ),
        (
            "deleteConnector",
            r#"mutation { deleteConnector(environment: STAGING, slug: "crm") }"#.into(),
            json!({}),
        ),
        (
            "deleteTrigger",
            r#"mutation { deleteTrigger(environment: STAGING, name: "hook") }"#.into(),
            json!({}),
        ),
        (
            "deleteAgent",
            r#"mutation { deleteAgent(environment: STAGING, slug: "bot") }"#.into(),
            json!({}),
        ),
        (
            "deletePrompt",
            r#"mutation { deletePrompt(environment: STAGING, slug: "greet") }"#.into(),
            json!({}),
        ),
        (
            "deleteCredential",
            r#"mutation { deleteCredential(environment: STAGING, name: "key") }"#.into(),
            json!({}),
        ),
        (
            "deleteKnowledgeBase",
            r#"mutation { deleteKnowledgeBase(environment: STAGING, name: "kb") }"#.into(),
            json!({}),
        ),
        (
            "deleteLlmProvider",
            r#"mutation { deleteLlmProvider(environment: STAGING, name: "llm") }"#.into(),
            json!({}),
        ),
        (
            "deleteDataSource",
            r#"mutation { deleteDataSource(environment: STAGING, name: "ds") }"#.into(),
            json!({}),
        ),
    ]
}

/// Every entry of an environment's audit log, newest first.
async fn audit_log(server: &Server, token: &str, environment: &str, filter: Value) -> Vec<Value> {
    let mut entries = Vec::new();
    let mut after = Value::Null;
    loop {
        let data = server
            .data(
                token,
                AUDIT_LOG,
                json!({ "env": environment, "filter": filter, "after": after }),
            )
            .await;
        let log = &data["auditLog"];
        entries.extend(
            log["edges"]
                .as_array()
                .expect("edges")
                .iter()
                .map(|e| e["node"].clone()),
        );
        if log["pageInfo"]["hasNextPage"] != true {
            return entries;
        }
        after = log["pageInfo"]["endCursor"].clone();
    }
}

async fn every_mutation_is_audited_without_secrets(backend: Backend) {
    let server = Server::start(backend).await;
    let tenant = tenant();
    let admin = token(&tenant, "admin");

    let schema = server.gql(None, MUTATIONS, json!({})).await;
    let mutations: Vec<String> = schema["data"]["__schema"]["mutationType"]["fields"]
        .as_array()
        .expect("mutations")
        .iter()
        .map(|f| f["name"].as_str().unwrap_or_default().to_string())
        .collect();
    let calls = calls();
    let missing: Vec<&String> = mutations
        .iter()
        .filter(|name| !calls.iter().any(|(field, _, _)| field == name))
        .collect();
    assert!(
        missing.is_empty(),
        "mutations without an audit scenario (add them to `calls`): {missing:?}"
    );

    let mut runtime_token = String::new();
    for (field, query, variables) in &calls {
        let query = if *field == "publish" {
            let plan = server
                .data(
                    &admin,
                    "{ publishPlan(environment: PRODUCTION, input: {all: true}) { fingerprint } }",
                    json!({}),
                )
                .await;
            query.replace(
                "FINGERPRINT",
                plan["publishPlan"]["fingerprint"].as_str().expect("fingerprint"),
            )
        } else {
            query.clone()
        };
        let data = server.data(&admin, &query, variables.clone()).await;
        if *field == "createRuntimeToken" {
            runtime_token = data["createRuntimeToken"]["token"].as_str().expect("token").to_string();
        }
    }

    // A failed mutation changes nothing and is not recorded.
    let failed = server
        .gql(
            Some(&admin),
            r#"mutation { deleteAgent(environment: STAGING, slug: "no-such-agent") }"#,
            json!({}),
        )
        .await;
    assert_eq!(error_code(&failed), "NOT_FOUND");

    let staging = audit_log(&server, &admin, "STAGING", Value::Null).await;
    let production = audit_log(&server, &admin, "PRODUCTION", Value::Null).await;
    for name in &mutations {
        let log = if name == "publish" { &production } else { &staging };
        let entry = log
            .iter()
            .find(|e| e["action"] == name.as_str())
            .unwrap_or_else(|| panic!("no audit entry for {name}: {log:#?}"));
        assert_eq!(entry["actor"], format!("admin@{tenant}"), "{entry:#}");
        assert_eq!(entry["actorRole"], "admin");
    }
    assert_eq!(staging.len() + production.len(), calls.len(), "{staging:#?}");
    assert!(!staging.iter().any(|e| e["recordKey"] == "no-such-agent"));

    // What was recorded: kind, key, the input and the result's id; never a secret.
    let credential = staging
        .iter()
        .find(|e| e["action"] == "createCredential")
        .expect("entry");
    assert_eq!(credential["recordKind"], "Credential");
    assert_eq!(credential["recordKey"], "key");
    assert_eq!(credential["environment"], "STAGING");
    assert_eq!(credential["summary"]["input"]["input"]["secret"], "[redacted]");
    assert_eq!(credential["summary"]["input"]["input"]["kind"], "api-key");
    assert!(credential["summary"]["resultId"].is_string());
    let resource = staging
        .iter()
        .find(|e| e["action"] == "createConnectorResource")
        .expect("entry");
    assert_eq!(resource["recordKey"], "crm/accounts");
    let publish = &production[0];
    assert_eq!(publish["recordKind"], "Release");
    assert_eq!(publish["environment"], "PRODUCTION");
    let everything = serde_json::to_string(&(&staging, &production)).expect("json");
    for secret in [
        CREDENTIAL_SECRET,
        ROTATED_SECRET,
        TRIGGER_SECRET,
        TRIGGER_SECRET_2,
        runtime_token.as_str(),
    ] {
        assert!(!everything.contains(secret), "a secret reached the audit log");
    }
    // Newest first.
    assert_eq!(staging[0]["action"], "deleteDataSource");

    // Filters.
    let by_action = audit_log(&server, &admin, "STAGING", json!({ "action": "rotateCredential" })).await;
    assert_eq!(by_action.len(), 1);
    let by_kind = audit_log(&server, &admin, "STAGING", json!({ "recordKind": "Credential" })).await;
    assert_eq!(by_kind.len(), 3, "{by_kind:#?}");
    let by_key = audit_log(&server, &admin, "STAGING", json!({ "recordKey": "bot" })).await;
    assert_eq!(by_key.len(), 3, "deploy, update, delete: {by_key:#?}");
    let nobody = audit_log(&server, &admin, "STAGING", json!({ "actor": "someone-else" })).await;
    assert!(nobody.is_empty());
    let since = staging[2]["createdAt"].clone();
    let recent = audit_log(&server, &admin, "STAGING", json!({ "since": since })).await;
    assert!(recent.len() >= 3 && recent.len() < staging.len(), "{}", recent.len());
    let future = audit_log(&server, &admin, "STAGING", json!({ "until": "2000-01-01T00:00:00Z" })).await;
    assert!(future.is_empty());

    // Admins only; other tenants see nothing.
    for role in ["viewer", "developer", "publisher"] {
        let response = server
            .gql(
                Some(&token(&tenant, role)),
                AUDIT_LOG,
                json!({ "env": "STAGING", "filter": null, "after": null }),
            )
            .await;
        assert_eq!(error_code(&response), "FORBIDDEN", "{role}: {response:#}");
    }
    let other = audit_log(
        &server,
        &token(&crate::support::tenant(), "admin"),
        "STAGING",
        Value::Null,
    )
    .await;
    assert!(other.is_empty());
    // Append-only: no mutation edits or deletes audit entries.
    assert!(!mutations.iter().any(|m| m.to_lowercase().contains("audit")));

    // `runflow audit export`: the same entries, oldest first, one JSON object per line.
    let output = std::process::Command::new(crate::support::binary())
        .args(["audit", "export", "--tenant", &tenant])
        .env_clear()
        .env("RUNFLOW_DATABASE_URL", server.database_url())
        .env("RUNFLOW_JWT_SECRET", crate::support::JWT_SECRET)
        .output()
        .expect("runflow audit export");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let lines: Vec<Value> = String::from_utf8(output.stdout)
        .expect("utf-8")
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), calls.len());
    assert_eq!(lines[0]["action"], "deployAgent");
    assert_eq!(lines[0]["actor_subject"], format!("admin@{tenant}"));
    assert_eq!(lines.last().expect("last")["action"], "deleteDataSource");
    let exported = serde_json::to_string(&lines).expect("json");
    assert!(!exported.contains(CREDENTIAL_SECRET) && !exported.contains(ROTATED_SECRET));
}

on_both_backends!(every_mutation_is_audited_without_secrets);
