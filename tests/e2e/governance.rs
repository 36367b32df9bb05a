//! Release governance: the audit log, approvals, scheduled releases.

use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, Server, error_code, manifest, plan_fingerprint, tenant, token};

const MUTATIONS: &str = "{ __schema { mutationType { fields(includeDeprecated: true) { name } } } }";

const AUDIT_LOG: &str = r#"query($env: Environment!, $filter: AuditLogFilter, $after: String) {
  auditLog(environment: $env, filter: $filter, first: 100, after: $after) {
    edges { node { id createdAt environment actor actorRole action recordKind recordKey summary before after } }
    pageInfo { hasNextPage endCursor }
  } }"#;

const CREDENTIAL_SECRET: &str = "audit-credential-secret-0001";
const ROTATED_SECRET: &str = "audit-rotated-secret-0002";
const TRIGGER_SECRET: &str = "audit-trigger-secret-0003-xyz";
const TRIGGER_SECRET_2: &str = "audit-trigger-secret-0004-xyz";
const WEBHOOK_SECRET: &str = "whsec_YXVkaXQtd2ViaG9vay1zZWNyZXQtMDAwNS14eXo=";
const WEBHOOK_SECRET_2: &str = "whsec_YXVkaXQtd2ViaG9vay1zZWNyZXQtMDAwNi14eXo=";

/// A valid call of every mutation, in an order that makes each succeed. The test fails if the
/// schema has a mutation missing here, so a new mutation must be added (and is then checked).
fn calls() -> Vec<(&'static str, String, Value)> {
    // A mutation of STAGING taking its input as `$i`.
    let with_input = |field: &'static str, input_type: &str, selection: &str, input: Value| {
        let query = format!("mutation($i: {input_type}) {{ {field}(environment: STAGING, input: $i) {selection} }}");
        (field, query, json!({ "i": input }))
    };
    // A mutation without variables (placeholders in capitals are filled in as the calls run).
    let plain = |field: &'static str, query: &str| (field, query.to_string(), json!({}));
    // A deletion in STAGING of the record `arguments` name.
    let delete = |field: &'static str, arguments: &str| {
        let query = format!("mutation {{ {field}(environment: STAGING, {arguments}) {{ deletedId }} }}");
        (field, query, json!({}))
    };
    vec![
        with_input(
            "deployAgent",
            "DeployAgentInput!",
            "{ agent { id } }",
            json!({ "slug": "bot", "message": "first", "files": [
                { "path": "runflow.toml", "content": manifest("bot") },
                { "path": "main.py", "content": "print('hi')\n" } ] }),
        ),
        with_input(
            "updateAgent",
            "UpdateAgentMetadataInput!",
            "{ id }",
            json!({ "slug": "bot", "name": "Bot" }),
        ),
        with_input(
            "savePromptDraft",
            "SavePromptDraftInput!",
            "{ id }",
            json!({ "slug": "greet", "template": "Hello" }),
        ),
        with_input(
            "createCredential",
            "CreateCredentialInput!",
            "{ id }",
            json!({ "name": "key", "kind": "api-key", "secret": CREDENTIAL_SECRET }),
        ),
        with_input(
            "rotateCredential",
            "RotateCredentialInput!",
            "{ id }",
            json!({ "name": "key", "secret": ROTATED_SECRET }),
        ),
        with_input(
            "createConnector",
            "CreateConnectorInput!",
            "{ id }",
            json!({ "slug": "crm", "kind": "http", "credentials": ["key"] }),
        ),
        with_input(
            "updateConnector",
            "UpdateConnectorInput!",
            "{ id }",
            json!({ "slug": "crm", "config": { "url": "https://crm.example" } }),
        ),
        with_input(
            "createConnectorResource",
            "ConnectorResourceInput!",
            "{ id }",
            json!({ "connector": "crm", "key": "accounts", "config": {} }),
        ),
        with_input(
            "updateConnectorResource",
            "ConnectorResourceInput!",
            "{ id }",
            json!({ "connector": "crm", "key": "accounts", "config": { "a": 1 } }),
        ),
        with_input(
            "createTrigger",
            "CreateTriggerInput!",
            "{ id }",
            json!({ "name": "hook", "agent": "bot", "kind": "WEBHOOK", "secret": TRIGGER_SECRET }),
        ),
        with_input(
            "updateTrigger",
            "UpdateTriggerInput!",
            "{ id }",
            json!({ "name": "hook", "secret": TRIGGER_SECRET_2 }),
        ),
        with_input(
            "createKnowledgeBase",
            "CreateSharedResourceInput!",
            "{ id }",
            json!({ "name": "kb", "kind": "vector" }),
        ),
        with_input(
            "updateKnowledgeBase",
            "UpdateSharedResourceInput!",
            "{ id }",
            json!({ "name": "kb", "kind": "vector2" }),
        ),
        with_input(
            "createLlmProvider",
            "CreateSharedResourceInput!",
            "{ id }",
            json!({ "name": "llm", "kind": "openai" }),
        ),
        with_input(
            "updateLlmProvider",
            "UpdateSharedResourceInput!",
            "{ id }",
            json!({ "name": "llm", "kind": "anthropic" }),
        ),
        with_input(
            "createDataSource",
            "CreateSharedResourceInput!",
            "{ id }",
            json!({ "name": "ds", "kind": "postgres" }),
        ),
        with_input(
            "updateDataSource",
            "UpdateSharedResourceInput!",
            "{ id }",
            json!({ "name": "ds", "kind": "mysql" }),
        ),
        with_input(
            "createWebhookEndpoint",
            "CreateWebhookEndpointInput!",
            "{ webhookEndpoint { id } signingSecret }",
            json!({ "url": "http://127.0.0.1:9/hooks", "eventTypes": ["RELEASE_PUBLISHED"], "secret": WEBHOOK_SECRET }),
        ),
        plain(
            "updateWebhookEndpoint",
            &format!(
                r#"mutation {{ updateWebhookEndpoint(environment: STAGING, input: {{id: "WEBHOOK_ENDPOINT_ID", enabled: false, secret: "{WEBHOOK_SECRET_2}"}}) {{ id }} }}"#
            ),
        ),
        plain(
            "testWebhookEndpoint",
            r#"mutation { testWebhookEndpoint(environment: STAGING, id: "WEBHOOK_ENDPOINT_ID") { id } }"#,
        ),
        plain(
            "redeliverWebhook",
            r#"mutation { redeliverWebhook(environment: STAGING, id: "WEBHOOK_DELIVERY_ID") { id } }"#,
        ),
        delete("deleteWebhookEndpoint", r#"id: "WEBHOOK_ENDPOINT_ID""#),
        plain(
            "createRuntimeToken",
            "mutation { createRuntimeToken(environment: STAGING) { token } }",
        ),
        plain(
            "cancelExecution",
            r#"mutation { cancelExecution(environment: STAGING, id: "EXECUTION") { id status } }"#,
        ),
        plain(
            "updateSettings",
            "mutation { updateSettings(environment: STAGING, input: {requiredApprovals: 0}) { revision } }",
        ),
        plain(
            "requestRelease",
            "mutation { requestRelease(environment: STAGING, input: {all: true, fingerprint: \"FINGERPRINT\"}) { id } }",
        ),
        plain(
            "approveReleaseRequest",
            "mutation { approveReleaseRequest(environment: STAGING, id: \"REQUEST\") { id } }",
        ),
        plain(
            "requestRelease",
            "mutation { requestRelease(environment: STAGING, input: {all: true, fingerprint: \"FINGERPRINT\"}) { id } }",
        ),
        plain(
            "rejectReleaseRequest",
            "mutation { rejectReleaseRequest(environment: STAGING, id: \"REQUEST\", comment: \"no\") { id } }",
        ),
        plain(
            "scheduleRelease",
            "mutation { scheduleRelease(environment: STAGING, input: {all: true, fingerprint: \"FINGERPRINT\", at: \"AT_LATER\"}) { id } }",
        ),
        plain(
            "rescheduleRelease",
            "mutation { rescheduleRelease(environment: STAGING, id: \"SCHEDULED\", at: \"AT_LATER\") { id } }",
        ),
        plain(
            "cancelScheduledRelease",
            "mutation { cancelScheduledRelease(environment: STAGING, id: \"SCHEDULED\") { id } }",
        ),
        plain(
            "publish",
            "mutation { publish(environment: PRODUCTION, input: {all: true, fingerprint: \"FINGERPRINT\"}) { release { id } } }",
        ),
        delete("deleteConnectorResource", r#"connector: "crm", key: "accounts""#),
        delete("deleteConnector", r#"slug: "crm""#),
        delete("deleteTrigger", r#"name: "hook""#),
        delete("deleteAgent", r#"slug: "bot""#),
        delete("deletePrompt", r#"slug: "greet""#),
        delete("deleteCredential", r#"name: "key""#),
        delete("deleteKnowledgeBase", r#"name: "kb""#),
        delete("deleteLlmProvider", r#"name: "llm""#),
        delete("deleteDataSource", r#"name: "ds""#),
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
    // The webhook endpoint it creates points at a closed loopback port: tests talk only to
    // 127.0.0.1, so private targets are allowed here.
    let server = Server::start_with(backend, &[("RUNFLOW_WEBHOOK_ALLOW_PRIVATE", "true")]).await;
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

    let developer = token(&tenant, "developer");
    let mut runtime_token = String::new();
    let mut request = String::new();
    let mut scheduled = String::new();
    let mut execution = String::new();
    let mut webhook = String::new();
    let mut delivery = String::new();
    for (field, query, variables) in &calls {
        let query = query.replace("AT_LATER", &in_seconds(3600));
        let query = if query.contains("FINGERPRINT") {
            let fingerprint = plan_fingerprint(&server, &admin).await;
            query.replace("FINGERPRINT", fingerprint.as_str().expect("fingerprint"))
        } else {
            query
                .replace("REQUEST", &request)
                .replace("SCHEDULED", &scheduled)
                .replace("EXECUTION", &execution)
                .replace("WEBHOOK_ENDPOINT_ID", &webhook)
                .replace("WEBHOOK_DELIVERY_ID", &delivery)
                .replace("AT_LATER", &in_seconds(3600))
        };
        let caller = if *field == "requestRelease" { &developer } else { &admin };
        let data = server.data(caller, &query, variables.clone()).await;
        if *field == "scheduleRelease" {
            scheduled = data["scheduleRelease"]["id"].as_str().expect("id").to_string();
        }
        if *field == "createWebhookEndpoint" {
            webhook = data["createWebhookEndpoint"]["webhookEndpoint"]["id"]
                .as_str()
                .expect("id")
                .to_string();
        }
        if *field == "testWebhookEndpoint" {
            delivery = data["testWebhookEndpoint"]["id"].as_str().expect("id").to_string();
        }
        if *field == "requestRelease" {
            request = data["requestRelease"]["id"].as_str().expect("id").to_string();
        }
        if *field == "createRuntimeToken" {
            runtime_token = data["createRuntimeToken"]["token"].as_str().expect("token").to_string();
            // An execution to cancel, started through the runtime API with that token.
            let (status, started) = server
                .runtime(
                    &runtime_token,
                    reqwest::Method::POST,
                    "/executions",
                    Some(json!({ "agent": "bot" })),
                )
                .await;
            assert_eq!(status, 201, "{started:#}");
            execution = started["id"].as_str().expect("id").to_string();
        }
    }

    // A failed mutation changes nothing and is not recorded.
    let failed = server
        .gql(
            Some(&admin),
            r#"mutation { deleteAgent(environment: STAGING, slug: "no-such-agent") { deletedId } }"#,
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
        let role = if name == "requestRelease" { "developer" } else { "admin" };
        assert_eq!(entry["actor"], format!("{role}@{tenant}"), "{entry:#}");
        assert_eq!(entry["actorRole"], role.to_uppercase());
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
        WEBHOOK_SECRET,
        WEBHOOK_SECRET_2,
        runtime_token.as_str(),
    ] {
        assert!(!everything.contains(secret), "a secret reached the audit log");
    }
    // Newest first.
    assert_eq!(staging[0]["action"], "deleteDataSource");

    // Before and after: a create has only `after`, a delete only `before`, an update both,
    // with the old and the new revision.
    let find = |action: &str| -> &Value {
        staging
            .iter()
            .chain(production.iter())
            .find(|e| e["action"] == action)
            .unwrap_or_else(|| panic!("no entry for {action}"))
    };
    for create in [
        "deployAgent",
        "createCredential",
        "createConnector",
        "createConnectorResource",
        "createTrigger",
        "createKnowledgeBase",
        "createWebhookEndpoint",
        "requestRelease",
        "scheduleRelease",
    ] {
        let entry = find(create);
        assert!(entry["before"].is_null(), "{create}: {entry:#}");
        assert!(entry["after"].is_object(), "{create}: {entry:#}");
    }
    for delete in [
        "deleteAgent",
        "deletePrompt",
        "deleteCredential",
        "deleteConnector",
        "deleteConnectorResource",
        "deleteTrigger",
        "deleteDataSource",
        "deleteWebhookEndpoint",
    ] {
        let entry = find(delete);
        assert!(entry["before"].is_object(), "{delete}: {entry:#}");
        assert!(entry["after"].is_null(), "{delete}: {entry:#}");
    }
    for update in [
        "updateAgent",
        "updateConnector",
        "updateConnectorResource",
        "updateTrigger",
        "updateKnowledgeBase",
        "updateLlmProvider",
        "updateDataSource",
        "rotateCredential",
        "updateWebhookEndpoint",
        "rescheduleRelease",
    ] {
        let entry = find(update);
        let old = entry["before"]["revision"]
            .as_i64()
            .unwrap_or_else(|| panic!("{update}: {entry:#}"));
        let new = entry["after"]["revision"]
            .as_i64()
            .unwrap_or_else(|| panic!("{update}: {entry:#}"));
        assert_eq!(new, old + 1, "{update}: {entry:#}");
    }
    let connector = find("updateConnector");
    assert_eq!(connector["before"]["configKeys"], json!([]), "{connector:#}");
    assert_eq!(
        connector["after"]["configKeys"],
        json!(["url"]),
        "keys, never values: {connector:#}"
    );
    let rotation = find("rotateCredential");
    assert_eq!(rotation["before"]["name"], "key");
    assert!(rotation["after"]["rotatedAt"].is_string(), "{rotation:#}");
    for side in ["before", "after"] {
        let text = rotation[side].to_string();
        for secret in [CREDENTIAL_SECRET, ROTATED_SECRET, "••••0001", "••••0002"] {
            assert!(
                !text.contains(secret),
                "{side} of a rotation holds (a part of) a secret: {text}"
            );
        }
    }
    let endpoint = find("updateWebhookEndpoint");
    assert_eq!(endpoint["before"]["enabled"], true);
    assert_eq!(endpoint["after"]["enabled"], false);
    assert_eq!(
        endpoint["after"]["host"], "127.0.0.1:9",
        "the host, never the path: {endpoint:#}"
    );
    let cancelled = find("cancelScheduledRelease");
    assert_eq!(cancelled["after"]["state"], "cancelled", "{cancelled:#}");
    let approved = find("approveReleaseRequest");
    assert_ne!(approved["before"]["state"], approved["after"]["state"], "{approved:#}");
    let settings = find("updateSettings");
    assert_eq!(settings["after"]["requiredApprovals"], 0, "{settings:#}");
    // The publish: the release it made (production had none before).
    let publish = find("publish");
    assert!(publish["before"].is_null(), "{publish:#}");
    assert_eq!(publish["after"]["number"], 1, "{publish:#}");
    assert!(
        publish["after"]["items"]
            .as_array()
            .is_some_and(|items| !items.is_empty()),
        "{publish:#}"
    );
    let deploy = find("deployAgent");
    assert!(deploy["after"]["deployment"]["commit"].is_string(), "{deploy:#}");

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
    let rotated = lines
        .iter()
        .find(|l| l["action"] == "rotateCredential")
        .expect("rotation exported");
    assert_eq!(
        rotated["after"]["revision"].as_i64(),
        rotated["before"]["revision"].as_i64().map(|r| r + 1),
        "before/after exported: {rotated:#}"
    );
}

/// Makes the database refuse audit entries of record `doomed` and of `createRuntimeToken`:
/// a trigger on `audit_entries`, as an outage of the audit log would look to the server.
async fn refuse_audit_entries(server: &Server, backend: Backend) {
    let db = sea_orm::Database::connect(server.database_url())
        .await
        .expect("connect to the test database");
    let statements: &[&str] = match backend {
        Backend::Sqlite => &[r#"CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_entries
            WHEN NEW.record_key = 'doomed' OR NEW.action = 'createRuntimeToken'
            BEGIN SELECT RAISE(ABORT, 'audit entry refused by the test'); END"#],
        Backend::Postgres => &[
            r#"CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              IF NEW.record_key = 'doomed' OR NEW.action = 'createRuntimeToken' THEN
                RAISE EXCEPTION 'audit entry refused by the test';
              END IF;
              RETURN NEW;
            END $$"#,
            "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_entries
            FOR EACH ROW EXECUTE FUNCTION refuse_audit()",
        ],
    };
    for statement in statements {
        db.execute_unprepared(statement).await.expect("create the trigger");
    }
    db.close().await.ok();
}

/// Rows of `table` whose `column` is `value`, read straight from storage.
async fn stored(server: &Server, table: &str, column: &str, value: &str) -> i64 {
    use sea_orm::{Database, Statement};
    let db = Database::connect(server.database_url()).await.expect("connect");
    let backend = db.get_database_backend();
    let sql = match backend {
        sea_orm::DatabaseBackend::Postgres => format!("SELECT COUNT(*) AS n FROM {table} WHERE {column} = $1"),
        _ => format!("SELECT COUNT(*) AS n FROM {table} WHERE {column} = ?"),
    };
    let row = db
        .query_one_raw(Statement::from_sql_and_values(backend, sql, [value.into()]))
        .await
        .expect("count")
        .expect("a row");
    let count: i64 = row.try_get("", "n").expect("n");
    db.close().await.ok();
    count
}

/// The audit entry is written in the transaction of the change: when the entry cannot be
/// stored, the mutation fails and its change is rolled back (with the entry written after
/// the commit, as before, the credential and the agent below were stored unaudited).
async fn audit_entry_commits_with_its_change(backend: Backend) {
    let server = Server::start(backend).await;
    let tenant = tenant();
    let admin = token(&tenant, "admin");
    refuse_audit_entries(&server, backend).await;

    // A one-table change: refused, and nothing stored.
    let create = r#"mutation($i: CreateCredentialInput!) { createCredential(environment: STAGING, input: $i) { id } }"#;
    let refused = server
        .gql(
            Some(&admin),
            create,
            json!({ "i": { "name": "doomed", "kind": "api-key", "secret": CREDENTIAL_SECRET } }),
        )
        .await;
    assert_eq!(error_code(&refused), "INTERNAL", "{refused:#}");
    assert!(
        refused["data"].is_null() || refused["data"]["createCredential"].is_null(),
        "{refused:#}"
    );
    assert_eq!(
        stored(&server, "credentials", "name", "doomed").await,
        0,
        "the change was rolled back"
    );

    // A change across several tables (agent, commit, deployment, events): the same.
    let deploy = r#"mutation($i: DeployAgentInput!) { deployAgent(environment: STAGING, input: $i) { agent { id } } }"#;
    let files = |slug: &str| {
        json!({ "i": { "slug": slug, "message": "first", "files": [
            { "path": "runflow.toml", "content": manifest(slug) },
            { "path": "main.py", "content": "print('hi')\n" } ] } })
    };
    let refused = server.gql(Some(&admin), deploy, files("doomed")).await;
    assert_eq!(error_code(&refused), "INTERNAL", "{refused:#}");
    assert_eq!(
        stored(&server, "agents", "slug", "doomed").await,
        0,
        "the deploy was rolled back"
    );

    // An operation that stores nothing (a runtime token): its result is withheld.
    let minted = server
        .gql(
            Some(&admin),
            "mutation { createRuntimeToken(environment: STAGING) { token } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&minted), "INTERNAL", "{minted:#}");
    assert!(
        !minted.to_string().contains("\"token\":\""),
        "no token without its entry: {minted:#}"
    );

    // Nothing of them reached the log.
    assert_eq!(stored(&server, "audit_entries", "record_key", "doomed").await, 0);
    assert_eq!(
        stored(&server, "audit_entries", "action", "createRuntimeToken").await,
        0
    );

    // Ordinary changes: stored, each with its entry, before and after.
    server.data(&admin, deploy, files("kept")).await;
    let created = server
        .data(
            &admin,
            create,
            json!({ "i": { "name": "kept", "kind": "api-key", "secret": CREDENTIAL_SECRET } }),
        )
        .await;
    let rotate = r#"mutation($i: RotateCredentialInput!) { rotateCredential(environment: STAGING, input: $i) { id } }"#;
    server
        .data(
            &admin,
            rotate,
            json!({ "i": { "name": "kept", "secret": ROTATED_SECRET } }),
        )
        .await;
    assert_eq!(stored(&server, "credentials", "name", "kept").await, 1);
    let log = audit_log(&server, &admin, "STAGING", Value::Null).await;
    let actions: Vec<&str> = log.iter().map(|e| e["action"].as_str().unwrap_or_default()).collect();
    assert_eq!(
        actions,
        ["rotateCredential", "createCredential", "deployAgent"],
        "{log:#?}"
    );
    let (rotation, creation, deployment) = (&log[0], &log[1], &log[2]);
    assert_eq!(creation["recordKey"], "kept");
    assert!(creation["before"].is_null(), "{creation:#}");
    assert_eq!(creation["after"]["name"], "kept", "{creation:#}");
    assert_eq!(
        creation["summary"]["resultId"], created["createCredential"]["id"],
        "{creation:#}"
    );
    assert_eq!(
        rotation["after"]["revision"].as_i64(),
        rotation["before"]["revision"].as_i64().map(|r| r + 1),
        "{rotation:#}"
    );
    assert!(
        deployment["after"]["deployment"]["commit"].is_string(),
        "{deployment:#}"
    );

    // A refused mutation (nothing committed) has no entry, as before.
    let missing = server
        .gql(
            Some(&admin),
            r#"mutation { deleteAgent(environment: STAGING, slug: "no-such-agent") { deletedId } }"#,
            json!({}),
        )
        .await;
    assert_eq!(error_code(&missing), "NOT_FOUND");
    assert_eq!(audit_log(&server, &admin, "STAGING", Value::Null).await.len(), 3);

    // The trigger is the only reason for the refusals: without it the same changes pass.
    let db = sea_orm::Database::connect(server.database_url())
        .await
        .expect("connect");
    let drop = match backend {
        Backend::Sqlite => "DROP TRIGGER refuse_audit",
        Backend::Postgres => "DROP TRIGGER refuse_audit ON audit_entries",
    };
    db.execute_unprepared(drop).await.expect("drop the trigger");
    db.close().await.ok();
    server
        .data(
            &admin,
            create,
            json!({ "i": { "name": "doomed", "kind": "api-key", "secret": CREDENTIAL_SECRET } }),
        )
        .await;
    assert_eq!(stored(&server, "credentials", "name", "doomed").await, 1);
    assert_eq!(stored(&server, "audit_entries", "record_key", "doomed").await, 1);
}

/// The commit path's rule, in process: one entry per operation however many transactions it
/// commits (in the first), none from a transaction rolled back or committed by a task the
/// operation spawned, and one written by `finish` when the operation committed nothing.
async fn one_entry_per_operation_in_its_first_commit(backend: Backend) {
    use runflow::domain::audit::{NewAuditEntry, Pending, finish, state::RecordRef};
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

    let app = crate::support::InProcess::start(backend).await;
    let db = app.db().clone();
    let tenant = tenant();
    let pending = |action: &str| {
        Pending::new(
            crate::support::actor(&tenant, "admin"),
            NewAuditEntry {
                environment: entity::Environment::Staging,
                action: action.into(),
                record_kind: "Test".into(),
                record_key: None,
                summary: json!({ "input": {}, "resultId": null }),
                before: None,
                after: None,
            },
            RecordRef {
                kind: "Test".into(),
                ..Default::default()
            },
        )
    };
    let entries = |action: &'static str| {
        let db = db.clone();
        async move {
            entity::audit_entries::Entity::find()
                .filter(entity::audit_entries::Column::Action.eq(action))
                .all(&db.conn)
                .await
                .expect("entries")
        }
    };

    // Rolled back, then committed twice: one entry, from the first commit.
    let twice = pending("twice");
    twice
        .run(async {
            let tx = db.begin_write().await.expect("begin");
            drop(tx);
            assert!(twice.written().is_none(), "a rollback writes nothing");
            for _ in 0..2 {
                let tx = db.begin_write().await.expect("begin");
                db.commit(tx).await.expect("commit");
            }
        })
        .await;
    let first = twice.written().expect("written by the first commit");
    let stored = entries("twice").await;
    assert_eq!(stored.len(), 1, "{stored:#?}");
    assert_eq!(stored[0].id, first);
    // The result id is added afterwards.
    finish(&db, &twice, Some(json!("result-1"))).await.expect("finish");
    assert_eq!(entries("twice").await[0].summary["resultId"], "result-1");

    // A transaction committed by a task the operation spawned is not the operation's.
    let spawned = pending("spawned");
    spawned
        .run(async {
            let db = db.clone();
            tokio::spawn(async move {
                let tx = db.begin_write().await.expect("begin");
                db.commit(tx).await.expect("commit");
            })
            .await
            .expect("task");
        })
        .await;
    assert!(spawned.written().is_none());
    assert!(entries("spawned").await.is_empty());
    // It committed nothing of its own: `finish` writes the entry, with the result id.
    finish(&db, &spawned, Some(json!("result-2"))).await.expect("finish");
    let stored = entries("spawned").await;
    assert_eq!(stored.len(), 1, "{stored:#?}");
    assert_eq!(stored[0].summary["resultId"], "result-2");
    assert_eq!(stored[0].actor_subject, format!("admin@{tenant}"));

    // Outside any operation, commits write no entry.
    let tx = db.begin_write().await.expect("begin");
    db.commit(tx).await.expect("commit");
    let all = entity::audit_entries::Entity::find()
        .all(&db.conn)
        .await
        .expect("entries");
    assert_eq!(all.len(), 2, "{all:#?}");
}

const REQUEST: &str = r#"mutation($i: RequestReleaseInput!) { requestRelease(environment: STAGING, input: $i) {
  id state requestedBy note items { key fingerprint } } }"#;
const APPROVE: &str = r#"mutation($id: ID!, $c: String) { approveReleaseRequest(environment: STAGING, id: $id, comment: $c) {
  id state reviews { reviewer approved comment } } }"#;
const REJECT: &str = r#"mutation($id: ID!) { rejectReleaseRequest(environment: STAGING, id: $id, comment: "not now") {
  id state } }"#;
const GET_REQUEST: &str = r#"query($id: ID!) { releaseRequest(environment: STAGING, id: $id) {
  id state staleItems release { id } reviews { reviewer approved } } }"#;
const PUBLISH: &str = r#"mutation($i: PublishInput!) { publish(environment: PRODUCTION, input: $i) { release {
  id number approvalRequest { id } emergencyOverride } } }"#;

/// The pending revision of `agent:<slug>`.
async fn agent_revision(server: &Server, token: &str, slug: &str) -> String {
    let data = server
        .data(
            token,
            "{ pendingChanges(environment: STAGING) { key fingerprint } }",
            json!({}),
        )
        .await;
    data["pendingChanges"]
        .as_array()
        .expect("pending")
        .iter()
        .find(|c| c["key"] == format!("agent:{slug}"))
        .map(|c| c["fingerprint"].as_str().expect("fingerprint").to_string())
        .expect("a pending change of the agent")
}

fn person(tenant: &str, subject: &str, role: &str) -> String {
    crate::support::sign(json!({ "sub": subject, "tenant": tenant, "role": role, "exp": crate::support::now() + 3600 }))
}

async fn publishing_needs_an_approved_current_request(backend: Backend) {
    let server = Server::start(backend).await;
    let tenant = tenant();
    let admin = token(&tenant, "admin");
    let developer = token(&tenant, "developer");
    let publisher = token(&tenant, "publisher");
    let other_publisher = person(&tenant, "second-publisher", "publisher");

    // Live: the Releases screen follows requests.
    let mut ws = server
        .subscribed(
            &token(&tenant, "viewer"),
            "r",
            "subscription { releaseRequestEvents(environment: STAGING) { kind environment state request { requestedBy } } }",
            json!({}),
        )
        .await;

    // Off by default; only admins turn it on, with STAGING (shared setting).
    let settings = server
        .data(
            &admin,
            "{ settings(environment: STAGING) { requiredApprovals revision } }",
            json!({}),
        )
        .await;
    assert_eq!(settings["settings"], json!({ "requiredApprovals": 0, "revision": 0 }));
    let response = server
        .gql(
            Some(&publisher),
            "mutation { updateSettings(environment: STAGING, input: {requiredApprovals: 1}) { requiredApprovals } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&response), "FORBIDDEN");
    let response = server
        .gql(
            Some(&admin),
            "mutation { updateSettings(environment: STAGING, input: {requiredApprovals: 9}) { requiredApprovals } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&response), "BAD_USER_INPUT");
    let updated = server
        .data(
            &admin,
            "mutation { updateSettings(environment: STAGING, input: {requiredApprovals: 1, expectedRevision: 0}) { requiredApprovals revision updatedBy } }",
            json!({}),
        )
        .await;
    assert_eq!(
        updated["updateSettings"],
        json!({ "requiredApprovals": 1, "revision": 1, "updatedBy": format!("admin@{tenant}") })
    );

    // Approval required: a publish without an approved request is refused.
    crate::support::deploy(&server, &developer, "bot", "print('v1')\n", "v1").await;
    let r1 = agent_revision(&server, &developer, "bot").await;
    let items = json!([{ "key": "agent:bot", "fingerprint": r1 }]);
    let response = server
        .gql(Some(&publisher), PUBLISH, json!({ "i": { "items": items } }))
        .await;
    assert_eq!(error_code(&response), "FORBIDDEN", "{response:#}");
    assert!(
        crate::support::error_message(&response).contains("approval"),
        "{response:#}"
    );

    // A developer requests exactly that; publishers review it.
    let request = server
        .data(
            &developer,
            REQUEST,
            json!({ "i": { "items": items, "note": "ship v1" } }),
        )
        .await["requestRelease"]
        .clone();
    assert_eq!(request["state"], "OPEN");
    assert_eq!(request["requestedBy"], format!("developer@{tenant}"));
    assert_eq!(request["items"], json!([{ "key": "agent:bot", "fingerprint": r1 }]));
    let id = request["id"].clone();
    // Developers can not approve; nor can the requester (two-person rule).
    let response = server.gql(Some(&developer), APPROVE, json!({ "id": id })).await;
    assert_eq!(error_code(&response), "FORBIDDEN");
    let own = server
        .data(&publisher, REQUEST, json!({ "i": { "items": items } }))
        .await["requestRelease"]["id"]
        .clone();
    let response = server.gql(Some(&publisher), APPROVE, json!({ "id": own })).await;
    assert_eq!(error_code(&response), "FORBIDDEN", "{response:#}");
    assert!(crate::support::error_message(&response).contains("two-person"));
    // Still not publishable while only open.
    let response = server
        .gql(Some(&publisher), PUBLISH, json!({ "i": { "items": items } }))
        .await;
    assert_eq!(error_code(&response), "FORBIDDEN");
    let approved = server
        .data(&other_publisher, APPROVE, json!({ "id": id, "c": "looks good" }))
        .await["approveReleaseRequest"]
        .clone();
    assert_eq!(approved["state"], "APPROVED");
    assert_eq!(
        approved["reviews"],
        json!([{ "reviewer": "second-publisher", "approved": true, "comment": "looks good" }])
    );
    let response = server.gql(Some(&admin), APPROVE, json!({ "id": id })).await;
    assert_eq!(error_code(&response), "CONFLICT", "already approved: {response:#}");

    // Now the publish goes through and carries the request out.
    let release = server
        .data(&publisher, PUBLISH, json!({ "i": { "items": items } }))
        .await["publish"]["release"]
        .clone();
    assert_eq!(release["approvalRequest"]["id"], id);
    assert_eq!(release["emergencyOverride"], false);
    let published = server.data(&developer, GET_REQUEST, json!({ "id": id })).await["releaseRequest"].clone();
    assert_eq!(published["state"], "PUBLISHED");
    assert_eq!(published["release"]["id"], release["id"]);

    // Stale: staging moves after approval; publishing the new revision is a CONFLICT naming it.
    crate::support::deploy(&server, &developer, "bot", "print('v2')\n", "v2").await;
    let r2 = agent_revision(&server, &developer, "bot").await;
    let items2 = json!([{ "key": "agent:bot", "fingerprint": r2 }]);
    let id2 = server
        .data(&developer, REQUEST, json!({ "i": { "items": items2 } }))
        .await["requestRelease"]["id"]
        .clone();
    server.data(&other_publisher, APPROVE, json!({ "id": id2 })).await;
    crate::support::deploy(&server, &developer, "bot", "print('v3')\n", "v3").await;
    let r3 = agent_revision(&server, &developer, "bot").await;
    let stale = server.data(&developer, GET_REQUEST, json!({ "id": id2 })).await["releaseRequest"].clone();
    assert_eq!(stale["state"], "STALE");
    assert!(
        stale["staleItems"][0]
            .as_str()
            .unwrap_or_default()
            .contains("agent:bot"),
        "{stale:#}"
    );
    let response = server
        .gql(
            Some(&publisher),
            PUBLISH,
            json!({ "i": { "items": [{ "key": "agent:bot", "fingerprint": r3 }] } }),
        )
        .await;
    assert_eq!(error_code(&response), "CONFLICT", "{response:#}");
    assert!(
        crate::support::error_message(&response).contains("agent:bot"),
        "{response:#}"
    );
    let response = server
        .gql(Some(&publisher), PUBLISH, json!({ "i": { "items": items2 } }))
        .await;
    assert_eq!(error_code(&response), "CONFLICT", "{response:#}");
    // A stale request can not be approved either; a new one can, or be rejected.
    let id3 = server
        .data(
            &developer,
            REQUEST,
            json!({ "i": { "items": [{ "key": "agent:bot", "fingerprint": r3 }] } }),
        )
        .await["requestRelease"]["id"]
        .clone();
    let rejected = server.data(&other_publisher, REJECT, json!({ "id": id3 })).await;
    assert_eq!(rejected["rejectReleaseRequest"]["state"], "REJECTED");
    let response = server.gql(Some(&admin), APPROVE, json!({ "id": id3 })).await;
    assert_eq!(error_code(&response), "CONFLICT");

    // Listing by state.
    let list = server
        .data(
            &developer,
            "{ releaseRequests(environment: PRODUCTION, state: PUBLISHED) { edges { node { id state } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        list["releaseRequests"]["edges"],
        json!([{ "node": { "id": id, "state": "PUBLISHED" } }])
    );
    let all = server
        .data(
            &developer,
            "{ releaseRequests(environment: STAGING) { edges { node { state } } } }",
            json!({}),
        )
        .await;
    let states: Vec<&str> = all["releaseRequests"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"]["state"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(states, ["REJECTED", "STALE", "STALE", "PUBLISHED"], "newest first");

    // Rollback follows the policy; an admin may override it, recorded in the release.
    let rollback = json!({ "i": { "rollbackTo": release["id"] } });
    let response = server.gql(Some(&publisher), PUBLISH, rollback.clone()).await;
    assert_eq!(error_code(&response), "FORBIDDEN");
    let emergency = json!({ "i": { "rollbackTo": release["id"], "emergencyOverride": true } });
    let response = server.gql(Some(&publisher), PUBLISH, emergency.clone()).await;
    assert_eq!(error_code(&response), "FORBIDDEN");
    assert!(crate::support::error_message(&response).contains("admin"));
    let response = server
        .gql(
            Some(&admin),
            PUBLISH,
            json!({ "i": { "items": [{ "key": "agent:bot", "fingerprint": r3 }], "emergencyOverride": true } }),
        )
        .await;
    assert_eq!(error_code(&response), "BAD_USER_INPUT", "only rollbacks: {response:#}");
    let rolled_back = server.data(&admin, PUBLISH, emergency).await["publish"]["release"].clone();
    assert_eq!(rolled_back["emergencyOverride"], true);
    assert_eq!(rolled_back["approvalRequest"], Value::Null);

    // The subscriber saw every step, in order.
    let mut kinds = Vec::new();
    for _ in 0..8 {
        let message = ws.json().await;
        let event = &message["payload"]["data"]["releaseRequestEvents"];
        assert_eq!(event["environment"], "STAGING", "{message:#}");
        kinds.push(format!(
            "{}:{}",
            event["kind"].as_str().unwrap_or("?"),
            event["state"].as_str().unwrap_or("?")
        ));
    }
    assert_eq!(
        kinds,
        [
            "OPENED:OPEN",
            "OPENED:OPEN",
            "APPROVED:APPROVED",
            "PUBLISHED:PUBLISHED",
            "OPENED:OPEN",
            "APPROVED:APPROVED",
            "OPENED:OPEN",
            "REJECTED:REJECTED",
        ]
    );
}

/// Publishing later: `publish` with `at` answers with the scheduled release, no release.
const SCHEDULE: &str = r#"mutation($i: PublishInput!) { publish(environment: PRODUCTION, input: $i) {
  release { id } scheduledRelease { id at state revision items { key fingerprint } } } }"#;
/// The deprecated way to schedule, kept working.
const SCHEDULE_RELEASE: &str = r#"mutation($i: ScheduleReleaseInput!) { scheduleRelease(environment: STAGING, input: $i) {
  id at state revision items { key fingerprint } } }"#;
const SCHEDULED: &str = r#"{ scheduledReleases(environment: STAGING) { edges { node {
  id state failure staleItems release { id } revision note } } } }"#;

fn in_seconds(seconds: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::seconds(seconds)).to_rfc3339()
}

/// Polls until the scheduled release `id` leaves SCHEDULED/RUNNING (no timing assertion: the
/// limit only keeps a broken build from hanging).
async fn settled(server: &Server, token: &str, id: &Value) -> Value {
    for _ in 0..600 {
        let data = server.data(token, SCHEDULED, json!({})).await;
        let node = data["scheduledReleases"]["edges"]
            .as_array()
            .expect("edges")
            .iter()
            .map(|e| e["node"].clone())
            .find(|n| n["id"] == *id)
            .expect("the scheduled release");
        if node["state"] != "SCHEDULED" && node["state"] != "RUNNING" {
            return node;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("scheduled release {id} never ran");
}

async fn releases(server: &Server, token: &str) -> Vec<Value> {
    server
        .data(
            token,
            "{ releases(environment: PRODUCTION) { edges { node { id number note } } } }",
            json!({}),
        )
        .await["releases"]["edges"]
        .as_array()
        .expect("releases")
        .iter()
        .map(|e| e["node"].clone())
        .collect()
}

async fn scheduled_release_runs_once_across_replicas(backend: Backend) {
    // The first process runs no scheduler (no workers) until the replicas are up.
    let first = Server::start_with(backend, &[("RUNFLOW_WORKERS", "0")]).await;
    let tenant = tenant();
    let developer = token(&tenant, "developer");
    let publisher = token(&tenant, "publisher");
    crate::support::deploy(&first, &developer, "bot", "print('v1')\n", "v1").await;
    let r1 = agent_revision(&first, &developer, "bot").await;
    let items = json!([{ "key": "agent:bot", "fingerprint": r1 }]);

    // Validation: the future only; exactly reviewed revisions; developers can not schedule.
    let response = first
        .gql(
            Some(&publisher),
            SCHEDULE,
            json!({ "i": { "items": items, "at": in_seconds(-5) } }),
        )
        .await;
    assert_eq!(error_code(&response), "BAD_USER_INPUT");
    let response = first
        .gql(
            Some(&publisher),
            SCHEDULE,
            json!({ "i": { "items": [{ "key": "agent:bot", "fingerprint": "old" }], "at": in_seconds(60) } }),
        )
        .await;
    assert_eq!(error_code(&response), "CONFLICT");
    let response = first
        .gql(
            Some(&developer),
            SCHEDULE,
            json!({ "i": { "items": items, "at": in_seconds(60) } }),
        )
        .await;
    assert_eq!(error_code(&response), "FORBIDDEN");

    // Cancel and reschedule.
    let later = first
        .data(
            &publisher,
            SCHEDULE_RELEASE,
            json!({ "i": { "items": items, "at": in_seconds(3600) } }),
        )
        .await["scheduleRelease"]
        .clone();
    assert_eq!(later["state"], "SCHEDULED");
    let moved = first
        .data(
            &publisher,
            "mutation($id: ID!, $at: DateTime!) { rescheduleRelease(environment: STAGING, id: $id, at: $at, expectedRevision: 1) { state revision } }",
            json!({ "id": later["id"], "at": in_seconds(7200) }),
        )
        .await;
    assert_eq!(
        moved["rescheduleRelease"],
        json!({ "state": "SCHEDULED", "revision": 2 })
    );
    let cancel = "mutation($id: ID!) { cancelScheduledRelease(environment: STAGING, id: $id) { state } }";
    let cancelled = first.data(&publisher, cancel, json!({ "id": later["id"] })).await;
    assert_eq!(cancelled["cancelScheduledRelease"]["state"], "CANCELLED");
    let response = first.gql(Some(&publisher), cancel, json!({ "id": later["id"] })).await;
    assert_eq!(error_code(&response), "CONFLICT");

    // An idempotency key: a retry returns the first scheduled release; the key with another
    // request is refused; nothing is published now.
    let keyed = json!({ "items": items, "at": in_seconds(3600), "idempotencyKey": "launch" });
    let first_answer = first.data(&publisher, SCHEDULE, json!({ "i": keyed })).await;
    assert!(first_answer["publish"]["release"].is_null(), "{first_answer:#}");
    let retried = first.data(&publisher, SCHEDULE, json!({ "i": keyed })).await;
    assert_eq!(first_answer, retried, "a retry returns the first answer");
    let mut other_time = keyed.clone();
    other_time["at"] = json!(in_seconds(7200));
    let (status, response) = first
        .gql_status(Some(&publisher), SCHEDULE, json!({ "i": other_time }))
        .await;
    assert_eq!(
        (status, error_code(&response)),
        (422, "IDEMPOTENCY_KEY_REUSED".to_string()),
        "{response:#}"
    );
    let mut published_now = keyed.clone();
    published_now["at"] = Value::Null;
    let (status, response) = first
        .gql_status(Some(&publisher), SCHEDULE, json!({ "i": published_now }))
        .await;
    assert_eq!(
        (status, error_code(&response)),
        (422, "IDEMPOTENCY_KEY_REUSED".to_string()),
        "{response:#}"
    );
    assert!(releases(&first, &publisher).await.is_empty(), "nothing published now");
    let cancelled = first
        .data(
            &publisher,
            cancel,
            json!({ "id": first_answer["publish"]["scheduledRelease"]["id"] }),
        )
        .await;
    assert_eq!(cancelled["cancelScheduledRelease"]["state"], "CANCELLED");

    // Due in two seconds, with two replicas running schedulers on one database.
    let soon = first
        .data(
            &publisher,
            SCHEDULE,
            json!({ "i": { "items": items, "at": in_seconds(2), "note": "timed" } }),
        )
        .await["publish"]["scheduledRelease"]
        .clone();
    assert_eq!(soon["items"], json!([{ "key": "agent:bot", "fingerprint": r1 }]));
    let a = first.replica().await;
    let b = first.replica().await;
    let done = settled(&a, &publisher, &soon["id"]).await;
    assert_eq!(done["state"], "PUBLISHED", "{done:#}");
    let made = releases(&b, &publisher).await;
    assert_eq!(made.len(), 1, "published once: {made:#?}");
    assert_eq!(made[0]["note"], "timed");
    assert_eq!(done["release"]["id"], made[0]["id"]);
    let audit = b
        .data(
            &token(&tenant, "admin"),
            AUDIT_LOG,
            json!({ "env": "PRODUCTION", "filter": { "action": "scheduledPublish" }, "after": null }),
        )
        .await;
    let entries = audit["auditLog"]["edges"].as_array().expect("edges");
    assert_eq!(entries.len(), 1, "{audit:#}");
    assert_eq!(entries[0]["node"]["actor"], format!("publisher@{tenant}"));
    // Before: no release yet; after: the release it made, with its items.
    assert!(entries[0]["node"]["before"].is_null(), "{audit:#}");
    assert_eq!(entries[0]["node"]["after"]["number"], made[0]["number"], "{audit:#}");
    assert_eq!(entries[0]["node"]["after"]["items"][0]["key"], "agent:bot", "{audit:#}");
    // A rollback cannot be scheduled.
    let response = first
        .gql(
            Some(&publisher),
            SCHEDULE,
            json!({ "i": { "rollbackTo": made[0]["id"], "at": in_seconds(60) } }),
        )
        .await;
    assert_eq!(error_code(&response), "BAD_USER_INPUT", "{response:#}");
    let production = b
        .data(
            &publisher,
            r#"{ agent(environment: PRODUCTION, slug: "bot") { slug } }"#,
            json!({}),
        )
        .await;
    assert_eq!(production["agent"]["slug"], "bot");

    // Staging moves after scheduling: it does not publish, and says which item changed.
    crate::support::deploy(&first, &developer, "bot", "print('v2')\n", "v2").await;
    let r2 = agent_revision(&first, &developer, "bot").await;
    let doomed = first
        .data(
            &publisher,
            SCHEDULE,
            json!({ "i": { "items": [{ "key": "agent:bot", "fingerprint": r2 }], "at": in_seconds(2) } }),
        )
        .await["publish"]["scheduledRelease"]
        .clone();
    crate::support::deploy(&first, &developer, "bot", "print('v3')\n", "v3").await;
    let failed = settled(&b, &publisher, &doomed["id"]).await;
    assert_eq!(failed["state"], "FAILED", "{failed:#}");
    assert!(
        failed["failure"].as_str().unwrap_or_default().contains("agent:bot"),
        "{failed:#}"
    );
    assert_eq!(failed["staleItems"], json!(["agent:bot"]), "{failed:#}");
    assert_eq!(releases(&a, &publisher).await.len(), 1, "nothing more was published");
}

async fn scheduled_release_survives_restarts_within_the_grace_window(backend: Backend) {
    // No scheduler runs while the releases fall due.
    let first = Server::start_with(backend, &[("RUNFLOW_WORKERS", "0")]).await;
    let tenant = tenant();
    let developer = token(&tenant, "developer");
    let publisher = token(&tenant, "publisher");
    crate::support::deploy(&first, &developer, "bot", "print('v1')\n", "v1").await;
    let r1 = agent_revision(&first, &developer, "bot").await;
    let items = json!([{ "key": "agent:bot", "fingerprint": r1 }]);
    let missed = first
        .data(
            &publisher,
            SCHEDULE,
            json!({ "i": { "items": items, "at": in_seconds(1) } }),
        )
        .await["publish"]["scheduledRelease"]
        .clone();
    // Wait (not a timing assertion) until it is well past due.
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    // A scheduler with a one-second grace window: too late, MISSED; nothing published.
    {
        let strict = first.replica_with(&[("RUNFLOW_SCHEDULED_RELEASE_GRACE", "1s")]).await;
        let state = settled(&strict, &publisher, &missed["id"]).await;
        assert_eq!(state["state"], "MISSED", "{state:#}");
        assert!(state["failure"].as_str().unwrap_or_default().contains("grace"));
        assert!(releases(&strict, &publisher).await.is_empty());
    }
    let due = first
        .data(
            &publisher,
            SCHEDULE,
            json!({ "i": { "items": items, "at": in_seconds(1) } }),
        )
        .await["publish"]["scheduledRelease"]
        .clone();
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    // The next start, within the (default 15 min) window: published.
    let next = first.replica().await;
    let state = settled(&next, &publisher, &due["id"]).await;
    assert_eq!(state["state"], "PUBLISHED", "{state:#}");
    assert_eq!(releases(&next, &publisher).await.len(), 1);
}

on_both_backends!(
    every_mutation_is_audited_without_secrets,
    audit_entry_commits_with_its_change,
    one_entry_per_operation_in_its_first_commit,
    publishing_needs_an_approved_current_request,
    scheduled_release_runs_once_across_replicas,
    scheduled_release_survives_restarts_within_the_grace_window,
);
