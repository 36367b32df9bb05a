//! Test support: start the real `runflow` binary on SQLite or PostgreSQL, mint tokens, send
//! GraphQL over HTTP, and build an in-process app for tests that seed through the domain layer.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use clap::Parser;
use jsonwebtoken::{EncodingKey, Header, encode};
use runflow::app::App;
use runflow::config::Config;
use runflow::db::Db;
use sea_orm::{ConnectionTrait, Database};
use serde_json::{Value, json};

pub const JWT_SECRET: &str = "test-secret-test-secret-test-secret-0123456789";
pub const POSTGRES_URL_VAR: &str = "RUNFLOW_TEST_POSTGRES_URL";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A storage location for one test: a fresh SQLite file or a fresh PostgreSQL database.
pub struct Storage {
    pub dir: tempfile::TempDir,
    pub url: String,
    postgres: Option<(String, String)>,
}

impl Storage {
    pub async fn new(backend: Backend) -> Storage {
        let dir = tempfile::tempdir().expect("temp dir");
        match backend {
            Backend::Sqlite => {
                let url = format!("sqlite://{}?mode=rwc", dir.path().join("runflow.db").display());
                Storage {
                    dir,
                    url,
                    postgres: None,
                }
            }
            Backend::Postgres => {
                let admin_url = std::env::var(POSTGRES_URL_VAR).unwrap_or_else(|_| {
                    panic!("{POSTGRES_URL_VAR} must point at a PostgreSQL database to run the PostgreSQL suite")
                });
                let name = format!("rf_test_{}", uuid::Uuid::new_v4().simple());
                let admin = Database::connect(&admin_url).await.expect("connect to PostgreSQL");
                admin
                    .execute_unprepared(&format!("CREATE DATABASE {name}"))
                    .await
                    .expect("create database");
                admin.close().await.ok();
                let base = admin_url
                    .rsplit_once('/')
                    .map(|(base, _)| base.to_string())
                    .expect("URL with a database");
                let url = format!("{base}/{name}");
                Storage {
                    dir,
                    url,
                    postgres: Some((admin_url, name)),
                }
            }
        }
    }
}

impl Drop for Storage {
    fn drop(&mut self) {
        if let Some((admin_url, name)) = self.postgres.take() {
            // Best effort: drop the test database from a thread of its own (Drop is not async).
            let _ = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .ok()?;
                runtime.block_on(async {
                    let admin = Database::connect(&admin_url).await.ok()?;
                    admin
                        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await
                        .ok()?;
                    admin.close().await.ok()
                })
            })
            .join();
        }
    }
}

/// A running `runflow` process.
pub struct Server {
    child: Child,
    pub url: String,
    /// Held so the database lives as long as the server.
    _storage: Storage,
    client: reqwest::Client,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_runflow")
}

impl Server {
    pub async fn start(backend: Backend) -> Server {
        Self::start_with(backend, &[]).await
    }

    /// Starts the server with extra environment variables.
    pub async fn start_with(backend: Backend, env: &[(&str, &str)]) -> Server {
        Self::start_on(Storage::new(backend).await, env).await
    }

    /// A second replica on the same database as this one.
    pub async fn replica(&self) -> Server {
        self.replica_with(&[]).await
    }

    /// A second replica on the same database, with extra environment variables.
    pub async fn replica_with(&self, env: &[(&str, &str)]) -> Server {
        let storage = Storage {
            dir: tempfile::tempdir().expect("dir"),
            url: self._storage.url.clone(),
            postgres: None,
        };
        Self::start_on(storage, env).await
    }

    async fn start_on(storage: Storage, env: &[(&str, &str)]) -> Server {
        let mut command = Command::new(binary());
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUNFLOW_LISTEN", "127.0.0.1:0")
            .env("RUNFLOW_DATA_DIR", storage.dir.path())
            .env("RUNFLOW_DATABASE_URL", &storage.url)
            .env("RUNFLOW_JWT_SECRET", JWT_SECRET)
            .env("RUNFLOW_PUBLIC_URL", "https://api.example.test")
            .env("RUNFLOW_LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            // Tests fire requests back to back; limits/limits.rs turns the rate limits on itself.
            .env("RUNFLOW_RATE_LIMIT_GRAPHQL", "off")
            .env("RUNFLOW_RATE_LIMIT_RUNTIME", "off")
            .env("RUNFLOW_RATE_LIMIT_AGENTS", "off")
            .env("RUNFLOW_RATE_LIMIT_WEBHOOKS", "off")
            .env("RUNFLOW_RATE_LIMIT_WS_CONNECTS", "off")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("spawn runflow");
        let stderr = child.stderr.take().expect("stderr");
        let (address_tx, address_rx) = std::sync::mpsc::channel();
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let log_writer = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Ok(entry) = serde_json::from_str::<Value>(&line)
                    && let Some(address) = entry.pointer("/fields/address").and_then(Value::as_str)
                {
                    let _ = address_tx.send(address.to_string());
                }
                if let Ok(mut log) = log_writer.lock() {
                    log.push_str(&line);
                    log.push('\n');
                }
            }
        });
        let address = address_rx.recv_timeout(Duration::from_secs(60)).unwrap_or_else(|_| {
            let _ = child.kill();
            panic!(
                "runflow did not start; its log:\n{}",
                log.lock().map(|l| l.clone()).unwrap_or_default()
            )
        });
        Server {
            child,
            url: format!("http://{address}"),
            _storage: storage,
            client: reqwest::Client::new(),
            stderr: log,
        }
    }

    /// The server's data directory.
    pub fn data_dir(&self) -> &std::path::Path {
        self._storage.dir.path()
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Starts `runflow worker` on this server's database; agents call this server back.
    pub fn worker(&self, env: &[(&str, &str)]) -> Child {
        let dir = tempfile::tempdir().expect("dir").keep();
        let mut command = Command::new(binary());
        command
            .arg("worker")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUNFLOW_DATA_DIR", &dir)
            .env("RUNFLOW_DATABASE_URL", &self._storage.url)
            .env("RUNFLOW_JWT_SECRET", JWT_SECRET)
            .env("RUNFLOW_PUBLIC_URL", "https://api.example.test")
            .env("RUNFLOW_AGENT_API_URL", &self.url)
            .env("RUNFLOW_LOG_FORMAT", "json")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (key, value) in env {
            command.env(key, value);
        }
        command.spawn().expect("spawn runflow worker")
    }

    /// Sends SIGTERM and waits (up to `limit`) for the process to exit; returns its status.
    pub fn terminate(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = std::time::Instant::now() + limit;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// The server's database URL.
    pub fn database_url(&self) -> &str {
        &self._storage.url
    }

    /// On PostgreSQL: the admin URL and the name of this server's own test database.
    pub fn postgres_database(&self) -> Option<(&str, &str)> {
        self._storage
            .postgres
            .as_ref()
            .map(|(admin, name)| (admin.as_str(), name.as_str()))
    }

    /// Everything the server logged so far.
    pub fn log(&self) -> String {
        self.stderr.lock().map(|l| l.clone()).unwrap_or_default()
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.client
    }

    /// Calls the runtime API; returns the status and the JSON body (null when empty).
    pub async fn runtime(&self, token: &str, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self
            .client
            .request(method, format!("{}/v1/runtime{path}", self.url))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.fetch().await;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Opens a graphql-transport-ws connection.
    pub async fn websocket(&self, authorization: Option<&str>) -> Ws {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let url = format!("{}/graphql/ws", self.url.replace("http://", "ws://"));
        let mut request = url.into_client_request().expect("request");
        request.headers_mut().insert(
            "sec-websocket-protocol",
            "graphql-transport-ws".parse().expect("header"),
        );
        if let Some(value) = authorization {
            request
                .headers_mut()
                .insert("authorization", value.parse().expect("header"));
        }
        let (socket, response) = tokio_tungstenite::connect_async(request).await.expect("connect");
        assert_eq!(
            response
                .headers()
                .get("sec-websocket-protocol")
                .and_then(|v| v.to_str().ok()),
            Some("graphql-transport-ws")
        );
        Ws { socket }
    }

    /// Opens a graphql-transport-ws connection as `token`'s caller and starts the subscription
    /// `id`.
    pub async fn subscribed(&self, token: &str, id: &str, query: &str, variables: Value) -> Ws {
        let mut ws = self.websocket(None).await;
        ws.init(token).await;
        ws.subscribe(id, query, variables).await;
        ws
    }

    /// POSTs a GraphQL request and returns the whole JSON response.
    pub async fn gql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let (status, response) = self.gql_status(token, query, variables).await;
        assert_eq!(status, 200, "GraphQL over HTTP answers 200: {response:#}");
        response
    }

    /// POSTs a GraphQL request and returns the HTTP status with the whole JSON response (for
    /// the errors answered with another status, such as 422 for a reused idempotency key).
    pub async fn gql_status(&self, token: Option<&str>, query: &str, variables: Value) -> (u16, Value) {
        post_graphql(&self.client, &self.url, token, query, variables).await
    }

    /// GETs `path` of this server, without a token.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(format!("{}{path}", self.url)).fetch().await
    }

    /// POSTs `body` as it is, labelled `content_type`, to `path` (for requests the server must
    /// refuse: wrong media types, malformed bodies).
    pub async fn post_raw_body(
        &self,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        let mut request = self
            .client
            .post(format!("{}{path}", self.url))
            .header("content-type", content_type)
            .body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.fetch().await
    }

    /// POSTs `input` to an agent's endpoint, `/v1/{tenant}/{environment}/agents/{slug_and_query}`
    /// (the slug may carry a query string such as `?async=true`).
    pub async fn call_agent(
        &self,
        token: &str,
        tenant: &str,
        environment: &str,
        slug_and_query: &str,
        input: &Value,
    ) -> reqwest::Response {
        self.client
            .post(format!(
                "{}/v1/{tenant}/{environment}/agents/{slug_and_query}",
                self.url
            ))
            .bearer_auth(token)
            .json(input)
            .fetch()
            .await
    }

    /// The `data` of a response that must have no errors.
    pub async fn data(&self, token: &str, query: &str, variables: Value) -> Value {
        let response = self.gql(Some(token), query, variables).await;
        assert!(response.get("errors").is_none(), "unexpected errors: {response:#}");
        response["data"].clone()
    }
}

/// POSTs a GraphQL request to the server at `base_url` (one this suite may not have started
/// through `Server`); returns the HTTP status with the whole JSON response.
pub async fn post_graphql(
    client: &reqwest::Client,
    base_url: &str,
    token: Option<&str>,
    query: &str,
    variables: Value,
) -> (u16, Value) {
    let mut request = client
        .post(format!("{base_url}/graphql"))
        .json(&json!({ "query": query, "variables": variables }));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.fetch().await;
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON response"))
}

/// Sending a request in a test: a request that cannot be sent fails the test.
pub trait Fetch {
    /// Sends the request; returns the response, whatever its status.
    fn fetch(self) -> impl Future<Output = reqwest::Response>;
    /// Sends the request; returns its JSON body, whatever the status.
    fn fetch_json(self) -> impl Future<Output = Value>;
}

impl Fetch for reqwest::RequestBuilder {
    async fn fetch(self) -> reqwest::Response {
        self.send().await.expect("send")
    }

    async fn fetch_json(self) -> Value {
        self.fetch().await.json().await.expect("json")
    }
}

/// Starts `runflow` to serve from `data_dir` (no workers) with only `env` set, expecting it
/// to stop with an error at start; returns what it printed on stderr.
pub fn refused_start(data_dir: &std::path::Path, env: &[(&str, &str)]) -> String {
    let mut command = Command::new(binary());
    command
        .env_clear()
        .env("RUNFLOW_DATA_DIR", data_dir)
        .env("RUNFLOW_LISTEN", "127.0.0.1:0")
        .env("RUNFLOW_WORKERS", "0");
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().expect("run");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!output.status.success(), "runflow started with {env:?}: {stderr}");
    stderr
}

/// Runs a check script (Node.js or Python) that prints one JSON summary line; fails the test
/// with the script's output when it exits with an error. Returns the summary.
pub async fn script_summary(command: &mut tokio::process::Command) -> Value {
    let output = command.output().await.expect("run the script");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(stdout.trim()).expect("JSON summary")
}

/// The publish plan's fingerprint of everything pending.
pub async fn plan_fingerprint(server: &Server, token: &str) -> Value {
    server
        .data(
            token,
            "{ publishPlan(environment: PRODUCTION, input: {all: true}) { fingerprint } }",
            json!({}),
        )
        .await["publishPlan"]["fingerprint"]
        .clone()
}

/// Publishes everything pending to production at the plan's fingerprint; returns the release
/// (`id number items { id key }`).
pub async fn publish_all(server: &Server, publisher: &str) -> Value {
    let fingerprint = plan_fingerprint(server, publisher).await;
    server
        .data(
            publisher,
            "mutation($f: String!) { publish(environment: PRODUCTION, input: {all: true, fingerprint: $f}) { release { id number items { id key } } } }",
            json!({ "f": fingerprint }),
        )
        .await["publish"]["release"]
        .clone()
}

/// Runs `slug` in staging and waits for it: the finished execution (the call must answer 200).
pub async fn run_agent(server: &Server, token: &str, tenant: &str, slug: &str, input: Value) -> Value {
    let response = server.call_agent(token, tenant, "staging", slug, &input).await;
    let status = response.status();
    let body: Value = response.json().await.expect("json");
    assert_eq!(status, 200, "{body:#}");
    body
}

/// `X-Runflow-Signature` of a webhook call sent at `timestamp`.
pub fn sign_webhook(secret: &str, timestamp: u64, body: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Posts a webhook call sent at `timestamp` with `signature`; returns the status and the JSON
/// body (null when there is none).
pub async fn call_webhook(server: &Server, url: &str, timestamp: u64, signature: String, body: &[u8]) -> (u16, Value) {
    let response = server
        .http()
        .post(url)
        .header("x-runflow-timestamp", timestamp.to_string())
        .header("x-runflow-signature", signature)
        .body(body.to_vec())
        .fetch()
        .await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The `extensions.code` of a response's first error (panics when there is none).
pub fn error_code(response: &Value) -> String {
    response
        .pointer("/errors/0/extensions/code")
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("expected an error with a code, got {response:#}"))
        .to_string()
}

pub fn error_message(response: &Value) -> String {
    response
        .pointer("/errors/0/message")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A token for `tenant` with `role`, signed with the test secret.
pub fn token(tenant: &str, role: &str) -> String {
    sign(json!({ "sub": format!("{role}@{tenant}"), "tenant": tenant, "role": role, "exp": now() + 3600 }))
}

/// A runtime token for `tenant` reporting to `environment` (`staging` or `production`).
pub fn runtime_token(tenant: &str, environment: &str) -> String {
    sign(
        json!({ "sub": "runtime", "tenant": tenant, "role": "runtime", "environment": environment, "exp": now() + 3600 }),
    )
}

pub fn sign(claims: Value) -> String {
    encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .expect("sign")
}

/// `tenant`'s scope in `environment`, as an authenticated caller of that tenant gets it (a
/// `Scope` cannot be built from plain values).
pub fn scope(tenant: &str, environment: entity::Environment) -> runflow::scope::Scope {
    runflow::scope::Scope::of(&actor(tenant, "viewer"), environment)
}

/// The caller a verified token of `tenant` with `role` makes: the same path as a request (an
/// `Actor` has private fields; only token verification makes one).
pub fn actor(tenant: &str, role: &str) -> runflow::auth::Actor {
    static TOKENS: std::sync::OnceLock<runflow::auth::TokenService> = std::sync::OnceLock::new();
    let tokens = TOKENS.get_or_init(|| {
        let config = ConfigArgs::try_parse_from(["runflow", "--jwt-secret", JWT_SECRET])
            .expect("config")
            .config;
        runflow::auth::TokenService::from_config(&config, Some(JWT_SECRET)).expect("token service")
    });
    tokens.verify(&token(tenant, role)).expect("a valid test token")
}

/// A unique tenant per test, so tests can share nothing by accident.
pub fn tenant() -> String {
    format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

pub fn manifest(slug: &str) -> String {
    format!("name = \"{slug}\"\nentrypoint = [\"python3\", \"main.py\"]\n")
}

/// Deploys `files` (plus a manifest) to staging and returns the commit.
pub async fn deploy(server: &Server, token: &str, slug: &str, main_py: &str, message: &str) -> Value {
    let data = server
        .data(
            token,
            "mutation($input: DeployAgentInput!) { deployAgent(environment: STAGING, input: $input) { commit { id hash number message } } }",
            json!({ "input": { "slug": slug, "message": message, "files": [
                { "path": "runflow.toml", "content": manifest(slug) },
                { "path": "main.py", "content": main_py },
            ]}}),
        )
        .await;
    data["deployAgent"]["commit"].clone()
}

#[derive(Parser)]
struct ConfigArgs {
    #[command(flatten)]
    config: Config,
}

/// The input that starts `agent` with no input and nothing linked (`..start_of(agent)` fills in
/// the rest of a fuller one).
pub fn start_of(agent: &str) -> runflow::domain::executions::StartExecution {
    runflow::domain::executions::StartExecution {
        agent: agent.into(),
        ..Default::default()
    }
}

/// An in-process app on fresh storage, for tests that seed through the domain layer.
pub struct InProcess {
    pub app: App,
    /// Held so the database lives as long as the app.
    _storage: Storage,
}

impl InProcess {
    pub async fn start(backend: Backend) -> InProcess {
        Self::start_with(backend, |_| {}).await
    }

    /// `prepare` may adjust the connection (e.g. install a statement counter) before use.
    pub async fn start_with(backend: Backend, prepare: impl FnOnce(&mut sea_orm::DatabaseConnection)) -> InProcess {
        let storage = Storage::new(backend).await;
        let data_dir = storage.dir.path().display().to_string();
        let config = ConfigArgs::try_parse_from([
            "runflow",
            "--data-dir",
            &data_dir,
            "--database-url",
            &storage.url,
            "--jwt-secret",
            JWT_SECRET,
            "--public-url",
            "https://api.example.test",
        ])
        .expect("config")
        .config;
        let mut db = Db::connect(&storage.url).await.expect("database");
        prepare(&mut db.conn);
        let app = App::with_db(config, db).expect("app");
        InProcess { app, _storage: storage }
    }

    pub fn db(&self) -> &Db {
        &self.app.services.db
    }

    /// Runs a GraphQL request as `tenant` with `role`, in process.
    pub async fn gql(&self, tenant: &str, role: runflow::auth::Role, query: &str, variables: Value) -> Value {
        let actor = actor(tenant, role.as_str());
        let request = async_graphql::Request::new(query).variables(async_graphql::Variables::from_json(variables));
        let request = runflow::graphql::prepare_request(
            &self.app.services,
            runflow::auth::Authentication::Authenticated(actor),
            request,
        );
        let response = self.app.schema.execute(request).await;
        serde_json::to_value(&response).expect("response JSON")
    }

    pub async fn data(&self, tenant: &str, role: runflow::auth::Role, query: &str, variables: Value) -> Value {
        let response = self.gql(tenant, role, query, variables).await;
        assert!(response.get("errors").is_none(), "unexpected errors: {response:#}");
        response["data"].clone()
    }

    /// Starts an execution through the domain layer (what the runtime API calls); see
    /// [`start_of`] for its input.
    pub async fn start_execution(
        &self,
        scope: &runflow::scope::Scope,
        input: runflow::domain::executions::StartExecution,
    ) -> runflow::domain::executions::Execution {
        runflow::domain::executions::start(self.db(), scope, &self.app.services.execution_limits, input)
            .await
            .expect("start")
    }
}

/// Declares each listed scenario twice: on SQLite (run by `cargo test`) and on PostgreSQL
/// (ignored by default; `.ci/run` runs them with `--include-ignored` and the database URL).
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::support::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[ignore = "needs PostgreSQL: set RUNFLOW_TEST_POSTGRES_URL and pass --include-ignored"]
                async fn $name() {
                    super::$name($crate::support::Backend::Postgres).await
                }
            )*
        }
    };
}

/// A graphql-transport-ws client for tests.
pub struct Ws {
    socket: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
}

/// What the server sent next.
#[derive(Debug, PartialEq)]
pub enum Frame {
    Json(Value),
    Closed(u16, String),
}

impl Ws {
    pub async fn send(&mut self, message: Value) {
        use futures_util::SinkExt;
        self.socket
            .send(tokio_tungstenite::tungstenite::Message::text(message.to_string()))
            .await
            .expect("send");
    }

    pub async fn send_raw(&mut self, text: &str) {
        use futures_util::SinkExt;
        self.socket
            .send(tokio_tungstenite::tungstenite::Message::text(text))
            .await
            .expect("send");
    }

    /// The next protocol message or the close frame, server pings included.
    pub async fn next_raw(&mut self) -> Frame {
        use futures_util::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        loop {
            let message = tokio::time::timeout(Duration::from_secs(20), self.socket.next())
                .await
                .expect("a message within 20 s");
            match message {
                Some(Ok(Message::Text(text))) => {
                    return Frame::Json(serde_json::from_str(text.as_str()).expect("JSON"));
                }
                Some(Ok(Message::Close(frame))) => {
                    return frame
                        .map(|f| Frame::Closed(f.code.into(), f.reason.to_string()))
                        .unwrap_or(Frame::Closed(1005, String::new()));
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Frame::Closed(1006, String::new()),
            }
        }
    }

    /// The next protocol message or the close frame (server pings are skipped).
    pub async fn next(&mut self) -> Frame {
        loop {
            match self.next_raw().await {
                Frame::Json(value) if value["type"] == "ping" => continue,
                frame => return frame,
            }
        }
    }

    pub async fn json(&mut self) -> Value {
        match self.next().await {
            Frame::Json(value) => value,
            other => panic!("expected a message, got {other:?}"),
        }
    }

    pub async fn closed(&mut self) -> (u16, String) {
        match self.next().await {
            Frame::Closed(code, reason) => (code, reason),
            other => panic!("expected the socket to close, got {other:?}"),
        }
    }

    /// `connection_init` with a bearer token, expecting the acknowledgement.
    pub async fn init(&mut self, token: &str) {
        self.send(json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } }))
            .await;
        assert_eq!(self.json().await["type"], "connection_ack");
    }

    pub async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        self.send(json!({ "type": "subscribe", "id": id, "payload": { "query": query, "variables": variables } }))
            .await;
    }
}

/// The global id the GraphQL API gives a record whose UUID the runtime API returned:
/// URL-safe base64 of `<Type>:<ENVIRONMENT or shared>:<key>` (api/src/graphql/ids.rs).
pub fn gid(type_name: &str, environment: &str, key: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{type_name}:{environment}:{key}"))
}
