//! Configuration: command-line flags, each with an environment variable (`RUNFLOW_*`).
//!
//! clap parses and validates both; an invalid value stops the process at start with a message
//! naming the variable (each flag's value name *is* its variable's name).
//!
//! Secrets (`RUNFLOW_JWT_SECRET`, `RUNFLOW_SECRET_KEY`, the database URL with its password)
//! are [`SecretString`]s: `Debug` prints `[REDACTED]`, and they are wiped from memory on drop.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use secrecy::{ExposeSecret, SecretString};

#[derive(Args, Clone, Debug)]
pub struct Config {
    /// Address and port to listen on.
    #[arg(
        long,
        env = "RUNFLOW_LISTEN",
        value_name = "RUNFLOW_LISTEN",
        default_value = "127.0.0.1:8080"
    )]
    pub listen: SocketAddr,

    /// Data directory: the embedded SQLite database and generated secrets live here.
    #[arg(
        long,
        env = "RUNFLOW_DATA_DIR",
        value_name = "RUNFLOW_DATA_DIR",
        default_value = "./runflow-data"
    )]
    pub data_dir: PathBuf,

    /// Database URL (`sqlite://...` or `postgres://...`). Default: SQLite in the data directory.
    #[arg(
        long,
        env = "RUNFLOW_DATABASE_URL",
        value_name = "RUNFLOW_DATABASE_URL",
        hide_env_values = true
    )]
    pub database_url: Option<SecretString>,

    /// HS256 secret for bearer tokens. Default: generated once into the data directory.
    #[arg(
        long,
        env = "RUNFLOW_JWT_SECRET",
        value_name = "RUNFLOW_JWT_SECRET",
        hide_env_values = true
    )]
    pub jwt_secret: Option<SecretString>,

    /// Token algorithm. RS256 and ES256 verify with `RUNFLOW_JWT_PUBLIC_KEY_FILE`.
    #[arg(
        long,
        env = "RUNFLOW_JWT_ALGORITHM",
        value_name = "RUNFLOW_JWT_ALGORITHM",
        value_enum,
        default_value = "HS256"
    )]
    pub jwt_algorithm: JwtAlgorithm,

    /// PEM public key used to verify RS256/ES256 tokens.
    #[arg(
        long,
        env = "RUNFLOW_JWT_PUBLIC_KEY_FILE",
        value_name = "RUNFLOW_JWT_PUBLIC_KEY_FILE"
    )]
    pub jwt_public_key_file: Option<PathBuf>,

    /// When set, tokens must carry this `iss`.
    #[arg(long, env = "RUNFLOW_JWT_ISSUER", value_name = "RUNFLOW_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,

    /// When set, tokens must carry this `aud`.
    #[arg(long, env = "RUNFLOW_JWT_AUDIENCE", value_name = "RUNFLOW_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,

    /// Public base URL of this server, used to build agent endpoint URLs.
    /// Default: `http://` + the listen address.
    #[arg(long, env = "RUNFLOW_PUBLIC_URL", value_name = "RUNFLOW_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Key that encrypts credential secrets at rest: 32 bytes, base64.
    /// Default: generated once into the data directory.
    #[arg(
        long,
        env = "RUNFLOW_SECRET_KEY",
        value_name = "RUNFLOW_SECRET_KEY",
        hide_env_values = true
    )]
    pub secret_key: Option<SecretString>,

    /// Largest accepted HTTP request body, in bytes (413 beyond it).
    #[arg(long, env = "RUNFLOW_MAX_BODY_BYTES", value_name = "RUNFLOW_MAX_BODY_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Largest agent bundle (sum of file sizes), in bytes.
    #[arg(long, env = "RUNFLOW_MAX_BUNDLE_BYTES", value_name = "RUNFLOW_MAX_BUNDLE_BYTES", default_value_t = 2 * 1024 * 1024)]
    pub max_bundle_bytes: usize,

    /// Largest single file of an agent bundle, in bytes.
    #[arg(long, env = "RUNFLOW_MAX_FILE_BYTES", value_name = "RUNFLOW_MAX_FILE_BYTES", default_value_t = 512 * 1024)]
    pub max_file_bytes: usize,

    /// Deepest accepted GraphQL selection.
    #[arg(
        long,
        env = "RUNFLOW_MAX_QUERY_DEPTH",
        value_name = "RUNFLOW_MAX_QUERY_DEPTH",
        default_value_t = 16
    )]
    pub max_query_depth: usize,

    /// Highest accepted GraphQL operation cost (one point per field and object; lists multiply
    /// by `first` or the default page size; see the README's cost model).
    #[arg(
        long,
        env = "RUNFLOW_MAX_QUERY_COMPLEXITY",
        value_name = "RUNFLOW_MAX_QUERY_COMPLEXITY",
        default_value_t = 10_000
    )]
    pub max_query_complexity: usize,

    /// Most aliases one GraphQL operation may use.
    #[arg(
        long,
        env = "RUNFLOW_MAX_ALIASES",
        value_name = "RUNFLOW_MAX_ALIASES",
        default_value_t = 30
    )]
    pub max_aliases: usize,

    /// Most root fields one GraphQL operation may select.
    #[arg(
        long,
        env = "RUNFLOW_MAX_ROOT_FIELDS",
        value_name = "RUNFLOW_MAX_ROOT_FIELDS",
        default_value_t = 20
    )]
    pub max_root_fields: usize,

    /// Whether GraphQL introspection (and `GET /schema.graphql`) is served. Turn it off for a
    /// public production deployment; clients then use the published `schema.graphql`.
    #[arg(
        long,
        env = "RUNFLOW_INTROSPECTION",
        value_name = "RUNFLOW_INTROSPECTION",
        default_value_t = true,
        action = clap::ArgAction::Set
    )]
    pub introspection: bool,

    /// Whether `GET /graphql` from a browser serves the GraphiQL IDE.
    #[arg(
        long,
        env = "RUNFLOW_GRAPHIQL",
        value_name = "RUNFLOW_GRAPHIQL",
        default_value_t = true,
        action = clap::ArgAction::Set
    )]
    pub graphiql: bool,

    /// Origins (comma-separated, e.g. `https://app.example.com`) whose browser pages may call
    /// the API (CORS). Default: none, same-origin only.
    #[arg(
        long,
        env = "RUNFLOW_CORS_ORIGINS",
        value_name = "RUNFLOW_CORS_ORIGINS",
        value_delimiter = ','
    )]
    pub cors_origins: Vec<String>,

    /// Trusted-documents mode: a JSON manifest `{"<sha256 hex>": "<document>"}`; only the
    /// operations it lists run (sent by hash or in full). Default: any operation runs.
    #[arg(long, env = "RUNFLOW_TRUSTED_DOCUMENTS", value_name = "RUNFLOW_TRUSTED_DOCUMENTS")]
    pub trusted_documents: Option<PathBuf>,

    /// How long the event log keeps events (resuming from an older cursor fails with
    /// CURSOR_EXPIRED).
    #[arg(long, env = "RUNFLOW_EVENT_RETENTION", value_name = "RUNFLOW_EVENT_RETENTION", default_value = "7d", value_parser = humantime::parse_duration)]
    pub event_retention: std::time::Duration,

    /// Events the process's live-feed broadcast buffers; a subscription further behind catches
    /// up from the event log.
    #[arg(
        long,
        env = "RUNFLOW_LIVE_BUFFER",
        value_name = "RUNFLOW_LIVE_BUFFER",
        default_value_t = 4096
    )]
    pub live_buffer: usize,

    /// Seconds a WebSocket may wait before `connection_init` (then it is closed with 4408).
    #[arg(long, env = "RUNFLOW_WS_INIT_TIMEOUT", value_name = "RUNFLOW_WS_INIT_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub ws_init_timeout: std::time::Duration,

    /// Interval of the server's keep-alive pings on WebSockets.
    #[arg(long, env = "RUNFLOW_WS_KEEPALIVE", value_name = "RUNFLOW_WS_KEEPALIVE", default_value = "15s", value_parser = humantime::parse_duration)]
    pub ws_keepalive: std::time::Duration,

    /// Subscriptions one WebSocket may hold at once.
    #[arg(
        long,
        env = "RUNFLOW_WS_MAX_SUBSCRIPTIONS",
        value_name = "RUNFLOW_WS_MAX_SUBSCRIPTIONS",
        default_value_t = 100
    )]
    pub ws_max_subscriptions: usize,

    /// Messages queued for one WebSocket before its slowest subscription is ended (SLOW_CONSUMER).
    #[arg(
        long,
        env = "RUNFLOW_WS_BUFFER",
        value_name = "RUNFLOW_WS_BUFFER",
        default_value_t = 256
    )]
    pub ws_buffer: usize,

    /// Largest WebSocket message accepted from a client, in bytes.
    #[arg(long, env = "RUNFLOW_WS_MAX_MESSAGE_BYTES", value_name = "RUNFLOW_WS_MAX_MESSAGE_BYTES", default_value_t = 64 * 1024)]
    pub ws_max_message_bytes: usize,

    /// Per-tenant rate of GraphQL requests (`/graphql`): `N/s`, `N/min` or `N/h`, optionally
    /// `,burst=B` (default burst: N); `off` disables. Over it: 429 with `Retry-After`.
    #[arg(long, env = "RUNFLOW_RATE_LIMIT_GRAPHQL", value_name = "RUNFLOW_RATE_LIMIT_GRAPHQL", default_value = "50/s,burst=100", value_parser = crate::http::limits::RateSpec::parse)]
    pub rate_limit_graphql: crate::http::limits::RateSpec,

    /// Per-tenant rate of runtime API requests (`/v1/runtime/...`).
    #[arg(long, env = "RUNFLOW_RATE_LIMIT_RUNTIME", value_name = "RUNFLOW_RATE_LIMIT_RUNTIME", default_value = "200/s,burst=400", value_parser = crate::http::limits::RateSpec::parse)]
    pub rate_limit_runtime: crate::http::limits::RateSpec,

    /// Per-tenant rate of agent endpoint calls (`/v1/{tenant}/{environment}/agents/...`).
    #[arg(long, env = "RUNFLOW_RATE_LIMIT_AGENTS", value_name = "RUNFLOW_RATE_LIMIT_AGENTS", default_value = "20/s,burst=40", value_parser = crate::http::limits::RateSpec::parse)]
    pub rate_limit_agents: crate::http::limits::RateSpec,

    /// Per-tenant rate of webhook deliveries (`/v1/{tenant}/{environment}/triggers/...`).
    #[arg(long, env = "RUNFLOW_RATE_LIMIT_WEBHOOKS", value_name = "RUNFLOW_RATE_LIMIT_WEBHOOKS", default_value = "20/s,burst=40", value_parser = crate::http::limits::RateSpec::parse)]
    pub rate_limit_webhooks: crate::http::limits::RateSpec,

    /// Per-tenant rate of WebSocket connections (counted at `connection_init`).
    #[arg(long, env = "RUNFLOW_RATE_LIMIT_WS_CONNECTS", value_name = "RUNFLOW_RATE_LIMIT_WS_CONNECTS", default_value = "20/s,burst=200", value_parser = crate::http::limits::RateSpec::parse)]
    pub rate_limit_ws_connects: crate::http::limits::RateSpec,

    /// Open WebSockets one tenant may hold on this process (0: no cap).
    #[arg(
        long,
        env = "RUNFLOW_WS_MAX_CONNECTIONS_PER_TENANT",
        value_name = "RUNFLOW_WS_MAX_CONNECTIONS_PER_TENANT",
        default_value_t = 2000
    )]
    pub ws_max_connections_per_tenant: usize,

    /// Requests this process handles at once (WebSockets excluded); beyond it: a fast 503.
    #[arg(
        long,
        env = "RUNFLOW_MAX_CONCURRENT_REQUESTS",
        value_name = "RUNFLOW_MAX_CONCURRENT_REQUESTS",
        default_value_t = 256
    )]
    pub max_concurrent_requests: usize,

    /// Longest an HTTP request (including a GraphQL execution) may take before it is stopped
    /// with 503 `TIMEOUT`. Synchronous agent calls wait up to `RUNFLOW_RUN_TIMEOUT` + 30 s instead.
    #[arg(long, env = "RUNFLOW_REQUEST_TIMEOUT", value_name = "RUNFLOW_REQUEST_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub request_timeout: std::time::Duration,

    /// Longest a release diff may compute (per file); a slower or larger diff is replaced by a
    /// "diff too large" marker.
    #[arg(long, env = "RUNFLOW_DIFF_TIMEOUT", value_name = "RUNFLOW_DIFF_TIMEOUT", default_value = "2s", value_parser = humantime::parse_duration)]
    pub diff_timeout: std::time::Duration,

    /// Time without any message from a client (after a keep-alive ping) before its WebSocket is
    /// considered dead and closed (4504).
    #[arg(long, env = "RUNFLOW_WS_PONG_TIMEOUT", value_name = "RUNFLOW_WS_PONG_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub ws_pong_timeout: std::time::Duration,

    /// Bytes queued for one WebSocket before its slowest subscription is ended (SLOW_CONSUMER).
    #[arg(long, env = "RUNFLOW_WS_BUFFER_BYTES", value_name = "RUNFLOW_WS_BUFFER_BYTES", default_value_t = 8 * 1024 * 1024)]
    pub ws_buffer_bytes: usize,

    /// Largest message sent to a WebSocket client; a larger result is replaced by an error
    /// `MESSAGE_TOO_LARGE` (the subscription goes on).
    #[arg(long, env = "RUNFLOW_WS_MAX_OUTGOING_BYTES", value_name = "RUNFLOW_WS_MAX_OUTGOING_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub ws_max_outgoing_bytes: usize,

    /// Largest execution `output` (JSON) the runtime API accepts, in bytes (413 beyond it).
    #[arg(long, env = "RUNFLOW_MAX_OUTPUT_BYTES", value_name = "RUNFLOW_MAX_OUTPUT_BYTES", default_value_t = 1024 * 1024)]
    pub max_output_bytes: usize,

    /// Largest execution `input`, `error` or session message `content` the runtime API accepts, in bytes.
    #[arg(long, env = "RUNFLOW_MAX_TEXT_BYTES", value_name = "RUNFLOW_MAX_TEXT_BYTES", default_value_t = 256 * 1024)]
    pub max_text_bytes: usize,

    /// Largest `attributes` of one span, in bytes of the JSON text as sent.
    #[arg(long, env = "RUNFLOW_MAX_SPAN_ATTRIBUTES_BYTES", value_name = "RUNFLOW_MAX_SPAN_ATTRIBUTES_BYTES", default_value_t = 64 * 1024)]
    pub max_span_attributes_bytes: usize,

    /// Most spans one request may record.
    #[arg(
        long,
        env = "RUNFLOW_MAX_SPANS_PER_REQUEST",
        value_name = "RUNFLOW_MAX_SPANS_PER_REQUEST",
        default_value_t = 1000
    )]
    pub max_spans_per_request: usize,

    /// A scheduled release whose time passed while no process ran is still published at the
    /// next start within this window after its time; later it is marked MISSED.
    #[arg(long, env = "RUNFLOW_SCHEDULED_RELEASE_GRACE", value_name = "RUNFLOW_SCHEDULED_RELEASE_GRACE", default_value = "15m", value_parser = humantime::parse_duration)]
    pub scheduled_release_grace: std::time::Duration,

    /// Agent runs this process executes at once (0: run no workers here, see `runflow worker`).
    #[arg(long, env = "RUNFLOW_WORKERS", value_name = "RUNFLOW_WORKERS", default_value_t = 4)]
    pub workers: usize,

    /// Longest an agent run may take before it is stopped (FAILED).
    #[arg(long, env = "RUNFLOW_RUN_TIMEOUT", value_name = "RUNFLOW_RUN_TIMEOUT", default_value = "60s", value_parser = humantime::parse_duration)]
    pub run_timeout: std::time::Duration,

    /// Largest output an agent may print on stdout, in bytes.
    #[arg(long, env = "RUNFLOW_RUN_MAX_OUTPUT_BYTES", value_name = "RUNFLOW_RUN_MAX_OUTPUT_BYTES", default_value_t = 1024 * 1024)]
    pub run_max_output_bytes: usize,

    /// How much of an agent's stderr is kept as the execution's log, in bytes.
    #[arg(long, env = "RUNFLOW_RUN_MAX_LOG_BYTES", value_name = "RUNFLOW_RUN_MAX_LOG_BYTES", default_value_t = 256 * 1024)]
    pub run_max_log_bytes: usize,

    /// The API URL agents call back (RUNFLOW_API_URL inside a run). Default: the address the
    /// server listens on (`runflow worker`: RUNFLOW_PUBLIC_URL).
    #[arg(long, env = "RUNFLOW_AGENT_API_URL", value_name = "RUNFLOW_AGENT_API_URL")]
    pub agent_api_url: Option<String>,

    /// How agent code is isolated: `bwrap` (bubblewrap; the default) or `none` (no isolation:
    /// the run can read everything the server's OS user can; development only).
    #[arg(
        long,
        env = "RUNFLOW_RUNNER_SANDBOX",
        value_name = "RUNFLOW_RUNNER_SANDBOX",
        value_enum,
        default_value = "bwrap"
    )]
    pub runner_sandbox: SandboxMode,

    /// Outbound internet of sandboxed runs: `none` (the default: the Runflow API only) or
    /// `public` (also public internet addresses through an HTTPS `CONNECT` proxy at
    /// 127.0.0.1:3128 inside the sandbox, which refuses loopback, private, link-local and other
    /// special-purpose addresses and this host's own). Needs RUNFLOW_RUNNER_SANDBOX=bwrap.
    #[arg(
        long,
        env = "RUNFLOW_RUNNER_EGRESS",
        value_name = "RUNFLOW_RUNNER_EGRESS",
        value_enum,
        default_value = "none"
    )]
    pub runner_egress: Egress,

    /// The bubblewrap program (a name looked up in PATH, or a path).
    #[arg(
        long,
        env = "RUNFLOW_RUNNER_BWRAP",
        value_name = "RUNFLOW_RUNNER_BWRAP",
        default_value = "bwrap"
    )]
    pub runner_bwrap: String,

    /// Extra host paths bound read-only into every sandbox (comma-separated), e.g. an
    /// interpreter installed outside /usr. Never the data directory.
    #[arg(
        long,
        env = "RUNFLOW_RUNNER_SANDBOX_BIND",
        value_name = "RUNFLOW_RUNNER_SANDBOX_BIND",
        value_delimiter = ','
    )]
    pub runner_sandbox_bind: Vec<PathBuf>,

    /// First of the unprivileged user ids runs execute as (one per concurrent run), when the
    /// server runs as root.
    #[arg(
        long,
        env = "RUNFLOW_RUNNER_UID_BASE",
        value_name = "RUNFLOW_RUNNER_UID_BASE",
        default_value_t = 200_000
    )]
    pub runner_uid_base: u32,

    /// CPU time a run may use, in seconds (RLIMIT_CPU).
    #[arg(
        long,
        env = "RUNFLOW_RUN_MAX_CPU_SECONDS",
        value_name = "RUNFLOW_RUN_MAX_CPU_SECONDS",
        default_value_t = 60
    )]
    pub run_max_cpu_seconds: u64,

    /// Address space of each process of a run, in bytes (RLIMIT_AS).
    #[arg(long, env = "RUNFLOW_RUN_MAX_MEMORY_BYTES", value_name = "RUNFLOW_RUN_MAX_MEMORY_BYTES", default_value_t = 1024 * 1024 * 1024)]
    pub run_max_memory_bytes: u64,

    /// Processes (and threads) a run may have at once (RLIMIT_NPROC of its own user id).
    #[arg(
        long,
        env = "RUNFLOW_RUN_MAX_PROCESSES",
        value_name = "RUNFLOW_RUN_MAX_PROCESSES",
        default_value_t = 64
    )]
    pub run_max_processes: u64,

    /// Files a process of a run may have open (RLIMIT_NOFILE).
    #[arg(
        long,
        env = "RUNFLOW_RUN_MAX_OPEN_FILES",
        value_name = "RUNFLOW_RUN_MAX_OPEN_FILES",
        default_value_t = 256
    )]
    pub run_max_open_files: u64,

    /// Size of a run's private writable /tmp, in bytes (a tmpfs; also the largest file).
    #[arg(long, env = "RUNFLOW_RUN_MAX_TMP_BYTES", value_name = "RUNFLOW_RUN_MAX_TMP_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub run_max_tmp_bytes: u64,

    /// How long a worker's claim on a running execution lasts without renewal. A worker renews
    /// it every third of this; when a worker dies, its executions are failed (or retried, for
    /// idempotent agents) once the lease has expired.
    #[arg(long, env = "RUNFLOW_RUN_LEASE", value_name = "RUNFLOW_RUN_LEASE", default_value = "30s", value_parser = humantime::parse_duration)]
    pub run_lease: std::time::Duration,

    /// How long an execution started through the runtime API may stay RUNNING without being
    /// finished; then it is failed.
    #[arg(long, env = "RUNFLOW_RUNTIME_EXECUTION_TIMEOUT", value_name = "RUNFLOW_RUNTIME_EXECUTION_TIMEOUT", default_value = "1h", value_parser = humantime::parse_duration)]
    pub runtime_execution_timeout: std::time::Duration,

    /// Deepest chain of agents calling agents (a root execution has depth 0).
    #[arg(
        long,
        env = "RUNFLOW_MAX_EXECUTION_DEPTH",
        value_name = "RUNFLOW_MAX_EXECUTION_DEPTH",
        default_value_t = 4
    )]
    pub max_execution_depth: u32,

    /// Queued plus running executions a tenant may have at once (both environments).
    #[arg(
        long,
        env = "RUNFLOW_MAX_ACTIVE_EXECUTIONS",
        value_name = "RUNFLOW_MAX_ACTIVE_EXECUTIONS",
        default_value_t = 100
    )]
    pub max_active_executions: u64,

    /// Shortest interval between two ticks of a schedule trigger.
    #[arg(long, env = "RUNFLOW_MIN_SCHEDULE_INTERVAL", value_name = "RUNFLOW_MIN_SCHEDULE_INTERVAL", default_value = "1m", value_parser = humantime::parse_duration)]
    pub min_schedule_interval: std::time::Duration,

    /// Agents, prompts and connectors a tenant may have, each kind counted on its own. Bounds
    /// the lists that are not paged (`pendingChanges`, `PublishPlan.items`, `Release.items`).
    #[arg(
        long,
        env = "RUNFLOW_MAX_RECORDS_PER_KIND",
        value_name = "RUNFLOW_MAX_RECORDS_PER_KIND",
        default_value_t = 1000
    )]
    pub max_records_per_kind: u64,

    /// Triggers a tenant may have (per environment).
    #[arg(
        long,
        env = "RUNFLOW_MAX_TRIGGERS",
        value_name = "RUNFLOW_MAX_TRIGGERS",
        default_value_t = 100
    )]
    pub max_triggers: u64,

    /// Trigger firings (schedule and webhook) a tenant may have per minute.
    #[arg(
        long,
        env = "RUNFLOW_MAX_FIRINGS_PER_MINUTE",
        value_name = "RUNFLOW_MAX_FIRINGS_PER_MINUTE",
        default_value_t = 60
    )]
    pub max_firings_per_minute: u64,

    /// How far a webhook call's signed timestamp may be from the server's clock.
    #[arg(long, env = "RUNFLOW_WEBHOOK_TOLERANCE", value_name = "RUNFLOW_WEBHOOK_TOLERANCE", default_value = "5m", value_parser = humantime::parse_duration)]
    pub webhook_tolerance: std::time::Duration,

    /// Outgoing webhooks may call loopback, private and link-local addresses (development
    /// and tests; refused by default, checked on every call's resolved addresses).
    #[arg(
        long,
        env = "RUNFLOW_WEBHOOK_ALLOW_PRIVATE",
        value_name = "RUNFLOW_WEBHOOK_ALLOW_PRIVATE",
        default_value_t = false,
        action = clap::ArgAction::Set
    )]
    pub webhook_allow_private: bool,

    /// How long an outgoing webhook message is retried after it was queued; then it is failed
    /// and its endpoint is marked failing.
    #[arg(long, env = "RUNFLOW_WEBHOOK_RETRY_FOR", value_name = "RUNFLOW_WEBHOOK_RETRY_FOR", default_value = "24h", value_parser = humantime::parse_duration)]
    pub webhook_retry_for: std::time::Duration,

    /// Delay before the first retry of an outgoing webhook message; each next retry waits
    /// twice as long (at most an hour), with random jitter.
    #[arg(long, env = "RUNFLOW_WEBHOOK_RETRY_BASE", value_name = "RUNFLOW_WEBHOOK_RETRY_BASE", default_value = "5s", value_parser = humantime::parse_duration)]
    pub webhook_retry_base: std::time::Duration,

    /// Time limit of one outgoing webhook call (connecting at most 5s of it), answer included.
    #[arg(long, env = "RUNFLOW_WEBHOOK_TIMEOUT", value_name = "RUNFLOW_WEBHOOK_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub webhook_timeout: std::time::Duration,

    /// A file holding the HS256 secret (instead of RUNFLOW_JWT_SECRET in the environment).
    #[arg(long, env = "RUNFLOW_JWT_SECRET_FILE", value_name = "RUNFLOW_JWT_SECRET_FILE")]
    pub jwt_secret_file: Option<PathBuf>,

    /// A file holding the credential encryption key (instead of RUNFLOW_SECRET_KEY).
    #[arg(long, env = "RUNFLOW_SECRET_KEY_FILE", value_name = "RUNFLOW_SECRET_KEY_FILE")]
    pub secret_key_file: Option<PathBuf>,
    /// Longest wait for a database connection (and for connecting): beyond it a request fails
    /// with 503 / SERVICE_UNAVAILABLE instead of hanging while the database is down.
    #[arg(long, env = "RUNFLOW_DB_ACQUIRE_TIMEOUT", value_name = "RUNFLOW_DB_ACQUIRE_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration)]
    pub db_acquire_timeout: std::time::Duration,

    /// PostgreSQL `statement_timeout` of every connection: a statement running longer is
    /// cancelled by the server (so an abandoned request leaves no query running). `0s` disables.
    #[arg(long, env = "RUNFLOW_DB_STATEMENT_TIMEOUT", value_name = "RUNFLOW_DB_STATEMENT_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub db_statement_timeout: std::time::Duration,

    /// Export the server's own traces over OTLP/HTTP (protobuf) to this endpoint, e.g.
    /// `http://collector:4318` (`/v1/traces` is appended, as with OTEL_EXPORTER_OTLP_ENDPOINT).
    /// Off when unset. OTEL_EXPORTER_OTLP_HEADERS, OTEL_SERVICE_NAME and OTEL_BSP_* apply.
    #[arg(long, env = "RUNFLOW_OTLP_ENDPOINT", value_name = "RUNFLOW_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,

    /// Log format.
    #[arg(
        long,
        env = "RUNFLOW_LOG_FORMAT",
        value_name = "RUNFLOW_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    pub log_format: LogFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum JwtAlgorithm {
    #[value(name = "HS256")]
    Hs256,
    #[value(name = "RS256")]
    Rs256,
    #[value(name = "ES256")]
    Es256,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SandboxMode {
    /// bubblewrap: namespaces, read-only bundle, private tmpfs, no host network.
    Bwrap,
    /// No isolation (development only; the server says so in its log).
    None,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Egress {
    /// No outbound network: the Runflow API only.
    None,
    /// Public internet addresses through the run's CONNECT proxy (never local or private ones).
    Public,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

impl Config {
    /// How the database pool is tuned.
    pub fn db_options(&self) -> crate::db::DbOptions {
        crate::db::DbOptions {
            acquire_timeout: self.db_acquire_timeout,
            statement_timeout: self.db_statement_timeout,
        }
    }

    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.expose_secret().to_string(),
            None => format!("sqlite://{}?mode=rwc", self.data_dir.join("runflow.db").display()),
        }
    }

    pub fn public_url(&self) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => format!("http://{}", self.listen),
        }
    }

    /// The API URL agents call back.
    pub fn api_url(&self) -> String {
        self.agent_api_url.clone().unwrap_or_else(|| self.public_url())
    }

    /// How outgoing webhooks behave.
    pub fn webhook_settings(&self) -> crate::domain::webhooks::WebhookSettings {
        crate::domain::webhooks::WebhookSettings {
            allow_private: self.webhook_allow_private,
            retry_for: self.webhook_retry_for,
            retry_base: self.webhook_retry_base,
            timeout: self.webhook_timeout,
        }
    }

    /// The limits of the cost model (see `graphql::cost`).
    pub fn cost_limits(&self) -> crate::graphql::cost::CostLimits {
        crate::graphql::cost::CostLimits {
            max_cost: self.max_query_complexity as u64,
            max_aliases: self.max_aliases as u64,
            max_root_fields: self.max_root_fields as u64,
        }
    }

    /// Checks what clap cannot: values that depend on each other.
    pub fn validate(&self) -> anyhow::Result<()> {
        if let Some(url) = self.database_url.as_ref().map(ExposeSecret::expose_secret)
            && !(url.starts_with("sqlite:") || url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            anyhow::bail!("RUNFLOW_DATABASE_URL must start with sqlite: or postgres:// (got a different scheme)");
        }
        if let Some(url) = &self.public_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            anyhow::bail!("RUNFLOW_PUBLIC_URL must be an http:// or https:// URL, got {url:?}");
        }
        if self.jwt_algorithm != JwtAlgorithm::Hs256 && self.jwt_public_key_file.is_none() {
            anyhow::bail!(
                "RUNFLOW_JWT_ALGORITHM={:?} needs RUNFLOW_JWT_PUBLIC_KEY_FILE",
                self.jwt_algorithm
            );
        }
        if let Some(secret) = &self.jwt_secret
            && secret.expose_secret().len() < 32
        {
            anyhow::bail!("RUNFLOW_JWT_SECRET must be at least 32 characters long");
        }
        if self.jwt_secret.is_some() && self.jwt_secret_file.is_some() {
            anyhow::bail!("set RUNFLOW_JWT_SECRET or RUNFLOW_JWT_SECRET_FILE, not both");
        }
        if self.secret_key.is_some() && self.secret_key_file.is_some() {
            anyhow::bail!("set RUNFLOW_SECRET_KEY or RUNFLOW_SECRET_KEY_FILE, not both");
        }
        if self.run_lease < std::time::Duration::from_secs(1) {
            anyhow::bail!("RUNFLOW_RUN_LEASE must be at least 1s");
        }
        if self.max_execution_depth > 16 {
            anyhow::bail!("RUNFLOW_MAX_EXECUTION_DEPTH must be at most 16");
        }
        if self.runner_sandbox == SandboxMode::Bwrap
            && let Some(url) = &self.agent_api_url
            && !url.starts_with("http://")
        {
            anyhow::bail!(
                "with RUNFLOW_RUNNER_SANDBOX=bwrap, RUNFLOW_AGENT_API_URL must be an http:// URL the worker reaches \
                 (runs reach it through a forwarder, not with TLS); got {url:?}"
            );
        }
        for origin in &self.cors_origins {
            let origin = origin.trim();
            if origin.is_empty() {
                continue;
            }
            let valid = (origin.starts_with("http://") || origin.starts_with("https://"))
                && !origin
                    .trim_start_matches("https://")
                    .trim_start_matches("http://")
                    .contains('/')
                && axum::http::HeaderValue::from_str(origin).is_ok();
            if !valid {
                anyhow::bail!(
                    "RUNFLOW_CORS_ORIGINS must list origins like https://app.example.com (scheme and host, \
                     no path), got {origin:?}"
                );
            }
        }
        if self.runner_egress == Egress::Public && self.runner_sandbox == SandboxMode::None {
            anyhow::bail!(
                "RUNFLOW_RUNNER_EGRESS=public needs RUNFLOW_RUNNER_SANDBOX=bwrap: without the sandbox a run has the \
                 host's whole network and no egress policy applies"
            );
        }
        if let Some(endpoint) = &self.otlp_endpoint
            && !((endpoint.starts_with("http://") || endpoint.starts_with("https://"))
                && endpoint.parse::<axum::http::Uri>().is_ok())
        {
            anyhow::bail!(
                "RUNFLOW_OTLP_ENDPOINT must be an http:// or https:// URL such as http://collector:4318, got {endpoint:?}"
            );
        }
        if self.webhook_timeout < std::time::Duration::from_secs(1)
            || self.webhook_timeout > std::time::Duration::from_secs(60)
        {
            anyhow::bail!("RUNFLOW_WEBHOOK_TIMEOUT must be between 1s and 60s");
        }
        if self.webhook_retry_base < std::time::Duration::from_millis(100) {
            anyhow::bail!("RUNFLOW_WEBHOOK_RETRY_BASE must be at least 100ms");
        }
        if self.max_query_depth < 4 {
            anyhow::bail!("RUNFLOW_MAX_QUERY_DEPTH must be at least 4");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::Config;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        config: Config,
    }

    #[test]
    fn debug_never_prints_a_secret() {
        let cli = Cli::try_parse_from([
            "runflow",
            "--jwt-secret",
            "jwt-secret-value-at-least-32-characters",
            "--secret-key",
            "secret-key-value",
            "--database-url",
            "postgres://user:db-password-value@127.0.0.1/db",
        ])
        .unwrap();
        let printed = format!("{:?}", cli.config);
        for secret in ["jwt-secret-value", "secret-key-value", "db-password-value"] {
            assert!(!printed.contains(secret), "{secret} appears in {printed}");
        }
        assert!(cli.config.database_url().contains("db-password-value"));
    }
}
