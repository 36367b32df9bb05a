//! `runflow`: the Runflow API server, and its admin commands.
//!
//! - `runflow` or `runflow serve`: serve the API (the default).
//! - `runflow token --tenant T --role R [--ttl 1h]`: print a bearer token.
//! - `runflow schema`: print the GraphQL SDL (what `schema.graphql` holds).
//! - `runflow audit export [--tenant T]`: print the audit log as JSON lines, oldest first.
//! - `runflow trusted-documents PATH...`: print the trusted-documents manifest of `.graphql` files.
//! - `runflow completions SHELL`: print a shell completion script.

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use runflow::app::{App, token_service};
use runflow::auth::{ActorKind, Role};
use runflow::config::{Config, LogFormat};
use tracing_subscriber::EnvFilter;

/// jemalloc instead of the system allocator: glibc keeps freed memory in one arena per thread
/// (SQLite's pooled connections each run on their own), so the server's RSS crept upward under
/// a steady load while its heap in use stayed flat. jemalloc returns it (README "Soak test").
/// Its unprefixed symbols also serve the bundled SQLite's own allocations.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(
    name = "runflow",
    version,
    about = "Runflow: the environment-aware GraphQL API for AI agents",
    // Settings from the configuration file come first; a flag given on the command line wins.
    args_override_self = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// A TOML configuration file: the settings of the environment variables, named like them
    /// (`RUNFLOW_LISTEN` or `listen`). Environment variables and flags take precedence.
    #[arg(
        long = "config",
        env = "RUNFLOW_CONFIG",
        value_name = "RUNFLOW_CONFIG",
        global = true
    )]
    config_file: Option<std::path::PathBuf>,
    #[command(flatten)]
    config: Config,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (the default when no command is given).
    Serve,
    /// Print a bearer token signed with the configured key.
    Token {
        /// The tenant the token acts for.
        #[arg(long)]
        tenant: String,
        /// viewer, developer, publisher or admin; or runtime (with --environment).
        #[arg(long, value_parser = parse_role)]
        role: TokenRole,
        /// How long the token is valid, for example 30m, 1h, 7d.
        #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
        ttl: std::time::Duration,
        /// The token's subject (who it is for).
        #[arg(long, default_value = "cli")]
        subject: String,
        /// For `--role runtime`: the environment the runtime reports to.
        #[arg(long, value_parser = parse_environment)]
        environment: Option<entity::Environment>,
    },
    /// Run agent workers only (no HTTP): they claim queued executions from the database.
    Worker,
    /// Print the GraphQL schema (SDL).
    Schema,
    /// Internal: the first process inside a run's sandbox (forwards the API, runs the
    /// entrypoint). Started by the runner, not by people.
    #[command(hide = true)]
    SandboxInit {
        #[arg(long)]
        socket: std::path::PathBuf,
        #[arg(long)]
        listen: std::net::SocketAddr,
        /// With outbound internet: the proxy's socket, and where to listen for it inside.
        #[arg(long, requires = "proxy_listen")]
        proxy_socket: Option<std::path::PathBuf>,
        #[arg(long, requires = "proxy_socket")]
        proxy_listen: Option<std::net::SocketAddr>,
        #[arg(trailing_var_arg = true, required = true)]
        command: Vec<String>,
    },
    /// Print the manifest for RUNFLOW_TRUSTED_DOCUMENTS ({"<sha256>": "<document>"}) of the
    /// given `.graphql` files and folders (each file is one document, as clients send it).
    TrustedDocuments {
        /// Files or folders (searched for *.graphql, recursively).
        #[arg(required = true)]
        paths: Vec<std::path::PathBuf>,
    },
    /// Print a completion script for your shell (e.g. `runflow completions bash > /etc/bash_completion.d/runflow`).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// The audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Print every audit entry as one JSON object per line, oldest first (for retention
    /// elsewhere). Reads the database of `RUNFLOW_DATABASE_URL`.
    Export {
        /// Only this tenant's entries (default: every tenant).
        #[arg(long)]
        tenant: Option<String>,
    },
}

/// `--role`: a person's role, or `runtime`.
#[derive(Clone, Copy)]
enum TokenRole {
    Person(Role),
    Runtime,
}

fn parse_role(value: &str) -> Result<TokenRole, String> {
    if value == runflow::auth::RUNTIME_ROLE_CLAIM {
        Ok(TokenRole::Runtime)
    } else {
        value.parse().map(TokenRole::Person)
    }
}

fn parse_environment(value: &str) -> Result<entity::Environment, String> {
    entity::Environment::parse(value).ok_or_else(|| format!("{value:?} is not staging or production"))
}

/// Logs to stderr (plain text without colour codes unless stderr is a terminal, or JSON), and,
/// with RUNFLOW_OTLP_ENDPOINT, the same spans to an OTLP collector. Returns the exporter to
/// flush at exit.
fn init_tracing(config: &Config) -> anyhow::Result<Option<opentelemetry_sdk::trace::SdkTracerProvider>> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    config.validate()?;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,sea_orm=warn"));
    // Colour codes only on a terminal: a log file or collector gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let (provider, otel) = match &config.otlp_endpoint {
        Some(endpoint) => {
            let (provider, tracer) = runflow::telemetry::tracer_provider(endpoint)?;
            (Some(provider), Some(tracing_opentelemetry::layer().with_tracer(tracer)))
        }
        None => (None, None),
    };
    let registry = tracing_subscriber::registry().with(filter).with(otel);
    let logs = tracing_subscriber::fmt::layer()
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Json => registry.with(logs.json()).init(),
        LogFormat::Text => registry.with(logs).init(),
    }
    if let Some(endpoint) = &config.otlp_endpoint {
        tracing::info!(
            endpoint = %runflow::telemetry::traces_url(endpoint),
            "exporting traces over OTLP/HTTP"
        );
    }
    Ok(provider)
}

/// Flushes the trace exporter, if any, at exit.
async fn finish_tracing(provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>) {
    if let Some(provider) = provider {
        runflow::telemetry::shutdown(provider).await;
    }
}

fn main() -> ExitCode {
    let args = match args_with_config_file() {
        Ok(args) => args,
        Err(error) => {
            eprintln!("runflow: {error:#}");
            return ExitCode::FAILURE;
        }
    };
    let cli = Cli::parse_from(args);
    // Inside a sandbox: no runtime, no configuration, just forward and run.
    if let Some(Command::SandboxInit {
        socket,
        listen,
        proxy_socket,
        proxy_listen,
        command,
    }) = &cli.command
    {
        let proxy = proxy_socket.as_deref().zip(*proxy_listen);
        return runflow::runner::sandbox_init(socket, *listen, proxy, command);
    }
    match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime.block_on(run(cli)),
        Err(error) => {
            eprintln!("runflow: cannot start the async runtime: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> ExitCode {
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => match init_tracing(&cli.config) {
            Ok(exporter) => {
                let served = serve(cli.config).await;
                finish_tracing(exporter).await;
                served
            }
            Err(error) => Err(error),
        },
        Command::Token {
            tenant,
            role,
            ttl,
            subject,
            environment,
        } => token(&cli.config, &tenant, role, ttl, &subject, environment),
        Command::Worker => match init_tracing(&cli.config) {
            Ok(exporter) => {
                let worked = worker(cli.config).await;
                finish_tracing(exporter).await;
                worked
            }
            Err(error) => Err(error),
        },
        Command::Schema => {
            print!("{}", runflow::graphql::sdl());
            Ok(())
        }
        Command::Audit {
            command: AuditCommand::Export { tenant },
        } => audit_export(&cli.config, tenant).await,
        Command::SandboxInit { .. } => Ok(()),
        Command::TrustedDocuments { paths } => trusted_documents(&paths),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "runflow", &mut std::io::stdout());
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("runflow: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let mut app = App::build(config).await?;
    let listener = runflow::http::bind(&app).await?;
    app.print_signin_link(listener.local_addr()?);
    // Agents run on this machine: by default they call back the address actually bound.
    if app.config.agent_api_url.is_none() {
        app.config_mut().agent_api_url = Some(format!("http://{}", listener.local_addr()?));
    }
    if app.config.workers > 0 {
        runflow::runner::start(app.clone());
    } else {
        // No workers here, but executions of lost workers are still reclaimed.
        tokio::spawn(runflow::runner::reap(app.clone()));
    }
    // Outgoing webhooks: every replica sends; deliveries are claimed in the database.
    tokio::spawn(runflow::webhook_delivery::run(app.clone()));
    runflow::http::serve(app, listener).await
}

async fn worker(config: Config) -> anyhow::Result<()> {
    anyhow::ensure!(
        config.workers > 0,
        "RUNFLOW_WORKERS must be at least 1 for `runflow worker`"
    );
    let app = App::build(config).await?;
    let workers = runflow::runner::start(app.clone());
    runflow::http::shutdown_signal().await;
    app.begin_shutdown();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), workers).await;
    Ok(())
}

async fn audit_export(config: &Config, tenant: Option<String>) -> anyhow::Result<()> {
    use std::io::Write;
    let db = runflow::db::Db::connect_with(&config.database_url(), &config.db_options()).await?;
    let tenant = tenant.map(runflow::scope::Tenant::named_by_operator);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    runflow::domain::audit::export(&db, tenant.as_ref(), |entry| {
        serde_json::to_writer(&mut out, entry)?;
        out.write_all(b"\n")
    })
    .await?;
    out.flush()?;
    Ok(())
}

fn token(
    config: &Config,
    tenant: &str,
    role: TokenRole,
    ttl: std::time::Duration,
    subject: &str,
    environment: Option<entity::Environment>,
) -> anyhow::Result<()> {
    let kind = match (role, environment) {
        (TokenRole::Person(role), None) => ActorKind::Person(role),
        (TokenRole::Runtime, Some(environment)) => ActorKind::Runtime(environment),
        _ => anyhow::bail!("a runtime token needs --environment (staging or production); other roles take none"),
    };
    config.validate()?;
    // Never generate a secret here: a token signed with a new secret would be rejected by the
    // server, which uses the secret of its own data directory.
    let secret_file = config.data_dir.join("jwt-secret");
    if config.jwt_algorithm == runflow::config::JwtAlgorithm::Hs256
        && config.jwt_secret.is_none()
        && config.jwt_secret_file.is_none()
        && !secret_file.exists()
    {
        anyhow::bail!(
            "no token secret at {}: run `runflow token` where the server keeps its data, or pass \
             --data-dir (RUNFLOW_DATA_DIR) or RUNFLOW_JWT_SECRET / RUNFLOW_JWT_SECRET_FILE as the server has them",
            secret_file.display()
        );
    }
    let (tokens, _) = token_service(config)?;
    println!("{}", tokens.mint(subject, tenant, kind, ttl)?);
    Ok(())
}

fn trusted_documents(paths: &[std::path::PathBuf]) -> anyhow::Result<()> {
    let mut files = Vec::new();
    for path in paths {
        collect_graphql_files(path, &mut files)?;
    }
    files.sort();
    let mut manifest = serde_json::Map::new();
    for file in files {
        let document =
            std::fs::read_to_string(&file).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
        async_graphql::parser::parse_query(&document)
            .map_err(|e| anyhow::anyhow!("{} is not a GraphQL document: {e}", file.display()))?;
        manifest.insert(
            runflow::http::persisted::document_hash(&document),
            serde_json::Value::String(document),
        );
    }
    println!("{}", serde_json::to_string_pretty(&manifest)?);
    Ok(())
}

fn collect_graphql_files(path: &std::path::Path, files: &mut Vec<std::path::PathBuf>) -> anyhow::Result<()> {
    if path.is_dir() {
        let entries = std::fs::read_dir(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        for entry in entries {
            collect_graphql_files(&entry?.path(), files)?;
        }
    } else if path.extension().is_some_and(|ext| ext == "graphql") {
        files.push(path.to_path_buf());
    } else if !path.exists() {
        anyhow::bail!("{} does not exist", path.display());
    }
    Ok(())
}

/// The command line with the configuration file's settings inserted before the user's
/// arguments, as flags, for every setting whose environment variable is not set: clap then
/// parses and validates them exactly like the variables (flags > environment > file > default).
fn args_with_config_file() -> anyhow::Result<Vec<std::ffi::OsString>> {
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let mut path = std::env::var_os("RUNFLOW_CONFIG").map(std::path::PathBuf::from);
    for (index, arg) in args.iter().enumerate() {
        let arg = arg.to_string_lossy();
        if let Some(value) = arg.strip_prefix("--config=") {
            path = Some(value.into());
        } else if arg == "--config"
            && let Some(value) = args.get(index + 1)
        {
            path = Some(value.into());
        }
    }
    let Some(path) = path else {
        return Ok(args);
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| anyhow::anyhow!("cannot read the configuration file {}: {e}", path.display()))?;
    let table: toml::Table = toml::from_str(&text)
        .map_err(|e| anyhow::anyhow!("the configuration file {} is not valid TOML: {e}", path.display()))?;
    let command = Cli::command();
    let known: std::collections::HashMap<String, String> = command
        .get_arguments()
        .filter_map(|arg| Some((arg.get_env()?.to_str()?.to_string(), arg.get_long()?.to_string())))
        .filter(|(env, _)| env != "RUNFLOW_CONFIG")
        .collect();
    let mut settings = Vec::new();
    for (key, value) in table {
        let variable = if key.starts_with("RUNFLOW_") {
            key.clone()
        } else {
            format!("RUNFLOW_{}", key.to_ascii_uppercase())
        };
        let Some(long) = known.get(&variable) else {
            anyhow::bail!(
                "the configuration file {} has an unknown setting `{key}` (settings are named like \
                 the RUNFLOW_* environment variables, see `runflow --help`)",
                path.display()
            );
        };
        if std::env::var_os(&variable).is_some() {
            continue;
        }
        let text = match value {
            toml::Value::String(text) => text,
            toml::Value::Integer(number) => number.to_string(),
            toml::Value::Float(number) => number.to_string(),
            toml::Value::Boolean(flag) => flag.to_string(),
            toml::Value::Array(items) => items
                .iter()
                .map(|item| match item {
                    toml::Value::String(text) => text.clone(),
                    other => other.to_string(),
                })
                .collect::<Vec<_>>()
                .join(","),
            other => anyhow::bail!(
                "the configuration file {}: `{key}` must be a string, number, boolean or list, not {}",
                path.display(),
                other.type_str()
            ),
        };
        settings.push(std::ffi::OsString::from(format!("--{long}={text}")));
    }
    args.splice(1..1, settings);
    Ok(args)
}
