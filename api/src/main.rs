//! `runflow`: the Runflow API server, and its admin commands.
//!
//! - `runflow` or `runflow serve`: serve the API (the default).
//! - `runflow token --tenant T --role R [--ttl 1h]`: print a bearer token.
//! - `runflow schema`: print the GraphQL SDL (what `schema.graphql` holds).
//! - `runflow audit export [--tenant T]`: print the audit log as JSON lines, oldest first.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use runflow::app::{App, token_service};
use runflow::auth::Role;
use runflow::config::{Config, LogFormat};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "runflow",
    version,
    about = "Runflow: the environment-aware GraphQL API for AI agents"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
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
        /// viewer, developer, publisher or admin.
        #[arg(long, value_parser = parse_role)]
        role: Role,
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

fn parse_role(value: &str) -> Result<Role, String> {
    value.parse()
}

fn parse_environment(value: &str) -> Result<entity::Environment, String> {
    entity::Environment::parse(value).ok_or_else(|| format!("{value:?} is not staging or production"))
}

fn init_tracing(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,sea_orm=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            init_tracing(cli.config.log_format);
            serve(cli.config).await
        }
        Command::Token {
            tenant,
            role,
            ttl,
            subject,
            environment,
        } => token(&cli.config, &tenant, role, ttl, &subject, environment),
        Command::Worker => {
            init_tracing(cli.config.log_format);
            worker(cli.config).await
        }
        Command::Schema => {
            print!("{}", runflow::graphql::sdl());
            Ok(())
        }
        Command::Audit {
            command: AuditCommand::Export { tenant },
        } => audit_export(&cli.config, tenant).await,
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
    // Agents run on this machine: by default they call back the address actually bound.
    if app.config.agent_api_url.is_none() {
        app.config.agent_api_url = Some(format!("http://{}", listener.local_addr()?));
    }
    if app.config.workers > 0 {
        runflow::runner::start(app.clone());
    }
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
    let tenant = tenant.map(runflow::scope::Tenant);
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
    role: Role,
    ttl: std::time::Duration,
    subject: &str,
    environment: Option<entity::Environment>,
) -> anyhow::Result<()> {
    config.validate()?;
    let (tokens, _) = token_service(config)?;
    println!("{}", tokens.mint(subject, tenant, role, ttl, environment)?);
    Ok(())
}
