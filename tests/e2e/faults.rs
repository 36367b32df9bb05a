//! Faults: values the storage cannot hold are BAD_USER_INPUT naming the field; a database
//! outage (PostgreSQL refusing connections, an SQLite file locked by another process) gives
//! fast 503 / SERVICE_UNAVAILABLE, `/readyz` fails while `/healthz` stays up, and the server
//! recovers by itself; a subscription resumed from its cursor gets what it missed.

use std::time::Duration;

use reqwest::Method;
use sea_orm::{ConnectionTrait, Database, TransactionTrait};
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, Server, deploy, error_code, error_message, runtime_token, sign, tenant, token};

/// A request must answer within this long, whatever the database does (a hang guard, not a
/// timing assertion: the settings under test are a few seconds).
const ANSWER_WITHIN: Duration = Duration::from_secs(30);

/// POSTs a GraphQL request; returns the HTTP status and the body.
async fn post(server: &Server, token: &str, query: &str, variables: Value) -> (u16, Value) {
    let send = server
        .http()
        .post(format!("{}/graphql", server.url))
        .bearer_auth(token)
        .json(&json!({ "query": query, "variables": variables }))
        .send();
    let response = tokio::time::timeout(ANSWER_WITHIN, send)
        .await
        .expect("an answer, not a hang")
        .expect("send");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn get_status(server: &Server, path: &str) -> u16 {
    let send = server.http().get(format!("{}{path}", server.url)).send();
    tokio::time::timeout(ANSWER_WITHIN, send)
        .await
        .expect("an answer, not a hang")
        .expect("send")
        .status()
        .as_u16()
}

fn assert_bad_input(response: &Value, field: &str) {
    assert_eq!(error_code(response), "BAD_USER_INPUT", "{response:#}");
    assert!(
        error_message(response).contains(field),
        "the message names {field:?}: {response:#}"
    );
}

/// NUL characters, text longer than its column and an overlong token `sub` are refused as
/// BAD_USER_INPUT naming the field, on both back ends, and nothing is written.
async fn unstorable_values_are_bad_user_input(backend: Backend) {
    let server = Server::start(backend).await;
    let tenant = tenant();
    let admin = token(&tenant, "admin");
    deploy(&server, &admin, "bot", "print('hi')\n", "first").await;
    let draft = "mutation($i: SavePromptDraftInput!) { savePromptDraft(environment: STAGING, input: $i) { revision } }";

    for (query, variables, field) in [
        (
            draft,
            json!({ "i": { "slug": "greet", "template": "Hi\u{0}there" } }),
            "template",
        ),
        (
            draft,
            json!({ "i": { "slug": "greet", "template": "Hi", "modelSettings": { "stop": "\u{0}" } } }),
            "modelSettings",
        ),
        (
            "mutation($i: UpdateAgentMetadataInput!) { updateAgent(environment: STAGING, input: $i) { revision } }",
            json!({ "i": { "slug": "bot", "description": "a\u{0}b" } }),
            "description",
        ),
        (
            "mutation($i: CreateConnectorInput!) { createConnector(environment: STAGING, input: $i) { revision } }",
            json!({ "i": { "slug": "crm", "kind": "http", "config": { "k\u{0}": 1 } } }),
            "config",
        ),
        (
            "mutation($i: DeployAgentInput!) { deployAgent(environment: STAGING, input: $i) { commit { id } } }",
            json!({ "i": { "slug": "bot", "message": "m", "files": [
                { "path": "runflow.toml", "content": crate::support::manifest("bot") },
                { "path": "main.py", "content": "print('\u{0}')" },
            ] } }),
            "main.py",
        ),
    ] {
        let response = server.gql(Some(&admin), query, variables).await;
        assert_bad_input(&response, field);
    }

    // A token whose `sub` is longer than the author columns.
    let long_sub = sign(json!({
        "sub": "u".repeat(300), "tenant": tenant, "role": "admin", "exp": crate::support::now() + 3600,
    }));
    let response = server
        .gql(
            Some(&long_sub),
            draft,
            json!({ "i": { "slug": "greet", "template": "Hi" } }),
        )
        .await;
    assert_bad_input(&response, "`sub`");

    // Nothing of the refused requests was written.
    let prompts = server
        .data(
            &admin,
            "{ prompts(environment: STAGING) { nodes { slug } } }",
            json!({}),
        )
        .await;
    assert_eq!(prompts["prompts"]["nodes"], json!([]));

    // The runtime API: a session title longer than its column, NUL in an execution's output.
    let runtime = runtime_token(&tenant, "staging");
    let (status, body) = server
        .runtime(
            &runtime,
            Method::POST,
            "/sessions",
            Some(json!({ "title": "t".repeat(300) })),
        )
        .await;
    assert_eq!(status, 400, "{body:#}");
    assert_eq!(body["error"]["code"], "BAD_USER_INPUT");
    assert!(
        body["error"]["message"].as_str().unwrap_or_default().contains("title"),
        "{body:#}"
    );
    let (status, execution) = server
        .runtime(&runtime, Method::POST, "/executions", Some(json!({ "agent": "bot" })))
        .await;
    assert_eq!(status, 201, "{execution:#}");
    let id = execution["id"].as_str().expect("id");
    let (status, body) = server
        .runtime(
            &runtime,
            Method::POST,
            &format!("/executions/{id}/finish"),
            Some(json!({ "status": "SUCCEEDED", "output": { "text": "a\u{0}" } })),
        )
        .await;
    assert_eq!(status, 400, "{body:#}");
    assert!(
        body["error"]["message"].as_str().unwrap_or_default().contains("output"),
        "{body:#}"
    );
    // Span attributes are checked as the JSON text they come as: NUL (`\u0000`) and a value
    // that is not an object are refused, a backslash before `u0000` is text, not NUL.
    let span = |attributes: Value| json!({ "spans": [{ "name": "s", "kind": "TOOL", "startTime": "2026-11-29T10:00:00Z", "attributes": attributes }] });
    let spans = format!("/executions/{id}/spans");
    for (attributes, refused_for) in [
        (json!({ "text": "a\u{0}" }), "NUL"),
        (json!({ "a\u{0}": 1 }), "NUL"),
        (json!(["not", "an", "object"]), "JSON object"),
    ] {
        let (status, body) = server
            .runtime(&runtime, Method::POST, &spans, Some(span(attributes)))
            .await;
        assert_eq!(status, 400, "{body:#}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("span attributes") && message.contains(refused_for),
            "{body:#}"
        );
    }
    let (status, body) = server
        .runtime(
            &runtime,
            Method::POST,
            &spans,
            Some(span(json!({ "path": "C:\\u0000" }))),
        )
        .await;
    assert_eq!(status, 201, "{body:#}");
}

/// The database goes away and comes back: requests fail fast with 503 / SERVICE_UNAVAILABLE,
/// `/healthz` stays up while `/readyz` fails, the server recovers without a restart, and a
/// subscription resumed from its cursor gets the events it missed.
///
/// PostgreSQL: the test's own database refuses connections (`ALLOW_CONNECTIONS false`) and its
/// backends are terminated; the shared server keeps running. SQLite: another connection
/// holds an exclusive lock on the file, so writes cannot proceed.
async fn a_database_outage_fails_fast_and_recovers(backend: Backend) {
    let server = Server::start_with(backend, &[("RUNFLOW_DB_ACQUIRE_TIMEOUT", "2s")]).await;
    let tenant = tenant();
    let admin = token(&tenant, "admin");
    let runtime = runtime_token(&tenant, "staging");
    deploy(&server, &admin, "bot", "print('hi')\n", "first").await;
    let (status, _) = server
        .runtime(&runtime, Method::POST, "/executions", Some(json!({ "agent": "bot" })))
        .await;
    assert_eq!(status, 201);

    // The cursor a client holds before the outage.
    let subscription = "subscription($a: String) { executionEvents(environment: STAGING, after: $a) { cursor kind } }";
    let mut ws = server.subscribed(&admin, "1", subscription, json!({ "a": "0" })).await;
    let first = ws.json().await;
    let cursor = first["payload"]["data"]["executionEvents"]["cursor"]
        .as_str()
        .expect("cursor")
        .to_string();
    drop(ws);

    let update =
        "mutation($i: UpdateAgentMetadataInput!) { updateAgent(environment: STAGING, input: $i) { revision } }";
    let rename = json!({ "i": { "slug": "bot", "name": "Bot" } });
    let outage = Outage::begin(&server, backend).await;
    let (status, body) = post(&server, &admin, update, rename.clone()).await;
    assert_eq!(status, 503, "{body:#}");
    assert_eq!(error_code(&body), "SERVICE_UNAVAILABLE", "{body:#}");
    let (status, body) = server
        .runtime(&runtime, Method::POST, "/executions", Some(json!({ "agent": "bot" })))
        .await;
    assert_eq!(status, 503, "{body:#}");
    assert_eq!(body["error"]["code"], "SERVICE_UNAVAILABLE");
    assert_eq!(get_status(&server, "/healthz").await, 200, "the process is alive");
    if backend == Backend::Postgres {
        assert_eq!(
            get_status(&server, "/readyz").await,
            503,
            "not ready without its database"
        );
    }
    outage.end().await;

    // Recovery without a restart: ready again, writes work again.
    let mut ready = false;
    for _ in 0..60 {
        if get_status(&server, "/readyz").await == 200 {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(ready, "the server becomes ready again by itself");
    let mut recovered = Value::Null;
    for _ in 0..20 {
        let (status, body) = post(&server, &admin, update, rename.clone()).await;
        recovered = body;
        if status == 200 && recovered.get("errors").is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(recovered["data"]["updateAgent"]["revision"], 2, "{recovered:#}");
    let (status, missed) = server
        .runtime(&runtime, Method::POST, "/executions", Some(json!({ "agent": "bot" })))
        .await;
    assert_eq!(status, 201, "{missed:#}");

    // A client reconnecting with its cursor gets what happened since.
    let mut ws = server
        .subscribed(&admin, "1", subscription, json!({ "a": cursor }))
        .await;
    let next = ws.json().await;
    let event = &next["payload"]["data"]["executionEvents"];
    assert_eq!(event["kind"], "STARTED", "{next:#}");
    let resumed: i64 = event["cursor"].as_str().and_then(|c| c.parse().ok()).expect("cursor");
    assert!(resumed > cursor.parse::<i64>().expect("cursor"), "{next:#}");
}

/// Makes the server's database unavailable until [`Outage::end`].
enum Outage {
    Postgres {
        admin: sea_orm::DatabaseConnection,
        name: String,
    },
    Sqlite {
        lock: sea_orm::DatabaseTransaction,
        _connection: sea_orm::DatabaseConnection,
    },
}

impl Outage {
    async fn begin(server: &Server, backend: Backend) -> Outage {
        match backend {
            Backend::Postgres => {
                let (admin_url, name) = server.postgres_database().expect("a PostgreSQL test database");
                let admin = Database::connect(admin_url).await.expect("admin connection");
                admin
                    .execute_unprepared(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false"))
                    .await
                    .expect("refuse connections");
                admin
                    .execute_unprepared(&format!(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                         WHERE datname = '{name}' AND pid <> pg_backend_pid()"
                    ))
                    .await
                    .expect("terminate backends");
                Outage::Postgres {
                    admin,
                    name: name.to_string(),
                }
            }
            Backend::Sqlite => {
                let mut options = sea_orm::ConnectOptions::new(server.database_url().to_string());
                options.max_connections(1).sqlx_logging(false);
                let connection = Database::connect(options).await.expect("second connection");
                let lock = connection
                    .begin_with_options(sea_orm::TransactionOptions {
                        isolation_level: None,
                        access_mode: None,
                        sqlite_transaction_mode: Some(sea_orm::SqliteTransactionMode::Exclusive),
                    })
                    .await
                    .expect("exclusive lock");
                Outage::Sqlite {
                    lock,
                    _connection: connection,
                }
            }
        }
    }

    async fn end(self) {
        match self {
            Outage::Postgres { admin, name } => {
                admin
                    .execute_unprepared(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"))
                    .await
                    .expect("allow connections");
                admin.close().await.ok();
            }
            Outage::Sqlite { lock, _connection } => {
                lock.rollback().await.expect("release the lock");
            }
        }
    }
}

/// PostgreSQL's `statement_timeout` comes from RUNFLOW_DB_STATEMENT_TIMEOUT: a statement
/// running longer is cancelled by the server, and the request gets SERVICE_UNAVAILABLE.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: set RUNFLOW_TEST_POSTGRES_URL and pass --include-ignored"]
async fn postgres_statement_timeout_cancels_long_statements() {
    let storage = crate::support::Storage::new(Backend::Postgres).await;
    let options = runflow::db::DbOptions {
        acquire_timeout: Duration::from_secs(10),
        statement_timeout: Duration::from_millis(200),
    };
    let db = runflow::db::Db::connect_with(&storage.url, &options)
        .await
        .expect("connect");
    let error = db
        .conn
        .execute_unprepared("SELECT pg_sleep(5)")
        .await
        .expect_err("cancelled by statement_timeout");
    let error = runflow::error::Error::from(error);
    assert_eq!(error.code(), "SERVICE_UNAVAILABLE", "{error:?}");
    // The connection is usable afterwards.
    db.conn.execute_unprepared("SELECT 1").await.expect("still usable");
}

on_both_backends!(
    unstorable_values_are_bad_user_input,
    a_database_outage_fails_fast_and_recovers,
);
