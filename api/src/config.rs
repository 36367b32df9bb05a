//! Configuration: command-line flags, each with an environment variable (`RUNFLOW_*`).
//!
//! clap parses and validates both; an invalid value stops the process at start with a message
//! naming the variable (each flag's value name *is* its variable's name).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, ValueEnum};

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
    pub database_url: Option<String>,

    /// HS256 secret for bearer tokens. Default: generated once into the data directory.
    #[arg(
        long,
        env = "RUNFLOW_JWT_SECRET",
        value_name = "RUNFLOW_JWT_SECRET",
        hide_env_values = true
    )]
    pub jwt_secret: Option<String>,

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
    pub secret_key: Option<String>,

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

    /// Highest accepted GraphQL query complexity (one point per field, lists multiply by `first`).
    #[arg(
        long,
        env = "RUNFLOW_MAX_QUERY_COMPLEXITY",
        value_name = "RUNFLOW_MAX_QUERY_COMPLEXITY",
        default_value_t = 5000
    )]
    pub max_query_complexity: usize,

    /// How long the event log keeps events (resuming from an older cursor fails with
    /// CURSOR_EXPIRED).
    #[arg(long, env = "RUNFLOW_EVENT_RETENTION", value_name = "RUNFLOW_EVENT_RETENTION", default_value = "7d", value_parser = humantime::parse_duration)]
    pub event_retention: std::time::Duration,

    /// Events a subscription may fall behind the live feed before it ends with SLOW_CONSUMER.
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

    /// Longest wait for a database connection (and for connecting): beyond it a request fails
    /// with 503 / SERVICE_UNAVAILABLE instead of hanging while the database is down.
    #[arg(long, env = "RUNFLOW_DB_ACQUIRE_TIMEOUT", value_name = "RUNFLOW_DB_ACQUIRE_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration)]
    pub db_acquire_timeout: std::time::Duration,

    /// PostgreSQL `statement_timeout` of every connection: a statement running longer is
    /// cancelled by the server (so an abandoned request leaves no query running). `0s` disables.
    #[arg(long, env = "RUNFLOW_DB_STATEMENT_TIMEOUT", value_name = "RUNFLOW_DB_STATEMENT_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub db_statement_timeout: std::time::Duration,

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
            Some(url) => url.clone(),
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

    /// Checks what clap cannot: values that depend on each other.
    pub fn validate(&self) -> anyhow::Result<()> {
        if let Some(url) = &self.database_url
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
            && secret.len() < 32
        {
            anyhow::bail!("RUNFLOW_JWT_SECRET must be at least 32 characters long");
        }
        if self.max_query_depth < 4 {
            anyhow::bail!("RUNFLOW_MAX_QUERY_DEPTH must be at least 4");
        }
        Ok(())
    }
}
