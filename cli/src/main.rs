//! `rf`: the Runflow command line.
//!
//! Human-readable output by default, `--json` for scripts. On failure it prints
//! `error: CODE: message` on stderr (under `--json`: `{"error": {"code", "message"}}`) and
//! exits with status 1 (2 for usage errors). Local failures have the code `CLI_ERROR`.

mod agents;
mod client;
mod executions;
mod governance;
mod operations;
mod releases;
mod webhooks;

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use client::{ApiFailure, Client, Credentials};

#[derive(Parser)]
#[command(name = "rf", version, about = "The Runflow command line")]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
pub struct Global {
    /// Server URL (default: from `rf login`).
    #[arg(long, env = "RUNFLOW_URL", global = true)]
    url: Option<String>,
    /// Bearer token (default: from `rf login`).
    #[arg(long, env = "RUNFLOW_TOKEN", global = true, hide_env_values = true)]
    token: Option<String>,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Store the server URL and your token in the user's config directory.
    Login {
        #[arg(long)]
        url: Option<String>,
        #[arg(long)]
        token: Option<String>,
    },
    /// Agents: deploy to staging, promote to production, list.
    #[command(subcommand)]
    Agents(AgentsCommand),
    /// Run the agent in this folder locally, in staging mode (always).
    Test {
        /// The input, as JSON.
        #[arg(long, conflicts_with = "input_file")]
        input: Option<String>,
        /// A file holding the input JSON.
        #[arg(long)]
        input_file: Option<std::path::PathBuf>,
        /// Continue this session (thread).
        #[arg(long)]
        session: Option<String>,
    },
    /// What staging has that production lacks (pending changes); with --history, the releases
    /// published to production, newest first (their numbers are what `rf rollback` takes).
    Releases {
        /// Show the release history instead of the pending changes.
        #[arg(long)]
        history: bool,
        #[command(subcommand)]
        command: Option<ReleasesCommand>,
    },
    /// The audit log (admins): who changed what, newest first.
    Audit {
        /// PRODUCTION's log (publishes, rollbacks) instead of STAGING's (every other change).
        #[arg(long)]
        production: bool,
        /// Only changes by this token subject.
        #[arg(long)]
        actor: Option<String>,
        /// Only this operation (a mutation name, such as `publish`).
        #[arg(long)]
        action: Option<String>,
        /// Only changes at or after this time (RFC 3339).
        #[arg(long)]
        since: Option<String>,
        /// How many entries (at most 100).
        #[arg(long, default_value_t = 50)]
        first: i64,
    },
    /// Publish staging changes to production.
    Publish {
        /// Publish everything pending.
        #[arg(long, conflicts_with = "items")]
        all: bool,
        /// Items to publish (agent:<slug>, prompt:<slug>, connector:<slug>, trigger:<name>).
        items: Vec<String>,
        /// Why (stored with the release).
        #[arg(long)]
        note: Option<String>,
        /// Publish later, at this time (RFC 3339, e.g. 2026-12-01T09:00:00Z): schedules a
        /// release of exactly these items and their current revisions (`publish` with `at`,
        /// the same as `rf releases schedule`) and prints it; nothing is published now.
        #[arg(long)]
        at: Option<String>,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// Restore production to the state before a release (all of its items, or those listed).
    Rollback {
        /// The release number (or id).
        release: String,
        items: Vec<String>,
        #[arg(long)]
        note: Option<String>,
        #[arg(long)]
        yes: bool,
    },
    /// Recent executions, or a live feed of them.
    Executions {
        /// Follow executions live.
        #[arg(long)]
        follow: bool,
        #[arg(long, value_enum, default_value = "staging")]
        environment: Env,
    },
    /// Outgoing webhook endpoints and their delivery log (admin).
    #[command(subcommand)]
    Webhooks(WebhooksCommand),
    /// Print a completion script for your shell (e.g. `rf completions zsh > ~/.zfunc/_rf`).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Subcommand)]
enum ReleasesCommand {
    /// Propose exactly these pending items (at their current fingerprints) for approval.
    Request {
        /// Request everything pending.
        #[arg(long, conflicts_with = "items")]
        all: bool,
        /// Items (agent:<slug>, prompt:<slug>, connector:<slug>, trigger:<name>).
        items: Vec<String>,
        /// Why (shown to reviewers).
        #[arg(long)]
        note: Option<String>,
    },
    /// Approve a release request (publishers; not your own).
    Approve {
        /// The request's id (see `rf releases requests`).
        id: String,
        #[arg(long)]
        comment: Option<String>,
    },
    /// Reject a release request (publishers; not your own).
    Reject {
        /// The request's id.
        id: String,
        #[arg(long)]
        comment: Option<String>,
    },
    /// Schedule a publish of exactly these pending items at a time.
    Schedule {
        /// Schedule everything pending.
        #[arg(long, conflicts_with = "items")]
        all: bool,
        /// Items (agent:<slug>, ...).
        items: Vec<String>,
        /// When (RFC 3339, e.g. 2026-12-01T09:00:00Z).
        #[arg(long)]
        at: String,
        /// Why (stored with the release).
        #[arg(long)]
        note: Option<String>,
    },
    /// Cancel a scheduled release.
    Cancel {
        /// The scheduled release's id (see `rf releases scheduled`).
        id: String,
    },
    /// Release requests and their state, newest first.
    Requests,
    /// Scheduled releases and their state, newest first.
    Scheduled,
}

#[derive(Subcommand)]
enum AgentsCommand {
    /// Upload this folder (respecting .gitignore and .rfignore) as a new commit in staging.
    Deploy {
        /// The commit message.
        #[arg(short, long, default_value = "")]
        message: String,
    },
    /// Publish this agent's staging code to production, after confirmation.
    Promote {
        /// Do not ask for confirmation (required without a terminal).
        #[arg(long)]
        yes: bool,
    },
    /// The agents of an environment.
    List {
        #[arg(long, value_enum, default_value = "staging")]
        environment: Env,
    },
}

#[derive(Subcommand)]
enum WebhooksCommand {
    /// The tenant's webhook endpoints.
    List,
    /// Create an endpoint; prints the generated signing secret once.
    Create {
        /// Where messages are POSTed.
        url: String,
        /// Event types (comma-separated): release.published, release.rolled_back,
        /// execution.failed, release_request.opened, release_request.approved,
        /// scheduled_release.failed.
        #[arg(long, value_delimiter = ',', default_value = "release.published,release.rolled_back")]
        events: Vec<String>,
        /// Your own signing secret (`whsec_...`) instead of a generated one.
        #[arg(long, env = "RF_WEBHOOK_SECRET", hide_env_values = true)]
        secret: Option<String>,
    },
    /// Delete an endpoint (by id) and its delivery log.
    Delete { id: String },
    /// An endpoint's delivery log, newest first.
    Deliveries {
        id: String,
        #[arg(long, default_value_t = 20)]
        first: i64,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Env {
    Staging,
    Production,
}

impl Env {
    pub fn name(self) -> &'static str {
        match self {
            Env::Staging => "STAGING",
            Env::Production => "PRODUCTION",
        }
    }
}

/// Prints a value as JSON (`--json`) or as the given text.
pub fn emit(global: &Global, json: serde_json::Value, text: impl FnOnce() -> String) {
    if global.json {
        println!("{}", serde_json::to_string_pretty(&json).unwrap_or_default());
    } else {
        println!("{}", text());
    }
}

/// The text form of a list: one line per row, or `empty` when there is none.
pub fn lines<T>(rows: &[T], empty: &str, line: impl FnMut(&T) -> String) -> String {
    if rows.is_empty() {
        return empty.to_string();
    }
    rows.iter().map(line).collect::<Vec<_>>().join("\n")
}

/// Asks `question` on the terminal; without one, refuses unless `yes`.
pub fn confirm(question: &str, yes: bool) -> anyhow::Result<bool> {
    if yes {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        anyhow::bail!("refusing to change production without a terminal to confirm on; pass --yes");
    }
    eprint!("{question} [y/N] ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim().to_lowercase().as_str(), "y" | "yes"))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let global = cli.global.clone();
    match cli.command {
        Command::Login { url, token } => {
            let url = url
                .or(global.url.clone())
                .ok_or_else(|| anyhow::anyhow!("pass --url (or set RUNFLOW_URL)"))?;
            let token = token
                .or(global.token.clone())
                .ok_or_else(|| anyhow::anyhow!("pass --token (or set RUNFLOW_TOKEN)"))?;
            let client = Client::new(url.clone(), token.clone());
            let (data, raw) = client
                .run_raw::<operations::Viewer>(operations::viewer::Variables {})
                .await?;
            let viewer = data.viewer;
            let path = client::save_credentials(&Credentials {
                url: client.url.clone(),
                token,
            })?;
            emit(
                &global,
                serde_json::json!({ "url": client.url, "viewer": raw["viewer"], "saved": path }),
                || {
                    format!(
                        "Logged in to {} as {} (tenant {}, role {}); saved to {}",
                        client.url,
                        viewer.subject,
                        viewer.tenant,
                        format!("{:?}", viewer.role).to_lowercase(),
                        path.display()
                    )
                },
            );
            Ok(())
        }
        Command::Agents(AgentsCommand::Deploy { message }) => agents::deploy(&global, &message).await,
        Command::Agents(AgentsCommand::Promote { yes }) => agents::promote(&global, yes).await,
        Command::Agents(AgentsCommand::List { environment }) => agents::list(&global, environment).await,
        Command::Test {
            input,
            input_file,
            session,
        } => agents::test(&global, input, input_file, session).await,
        Command::Releases {
            command: Some(command), ..
        } => match command {
            ReleasesCommand::Request { all, items, note } => governance::request(&global, all, items, note).await,
            ReleasesCommand::Approve { id, comment } => governance::review(&global, id, comment, true).await,
            ReleasesCommand::Reject { id, comment } => governance::review(&global, id, comment, false).await,
            ReleasesCommand::Schedule { all, items, at, note } => {
                governance::schedule(&global, all, items, at, note).await
            }
            ReleasesCommand::Cancel { id } => governance::cancel(&global, id).await,
            ReleasesCommand::Requests => governance::requests(&global).await,
            ReleasesCommand::Scheduled => governance::scheduled(&global).await,
        },
        Command::Releases { history: false, .. } => releases::pending(&global).await,
        Command::Releases { history: true, .. } => releases::history(&global).await,
        Command::Audit {
            production,
            actor,
            action,
            since,
            first,
        } => governance::audit(&global, production, actor, action, since, first).await,
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Cli::command(), "rf", &mut std::io::stdout());
            Ok(())
        }
        Command::Publish {
            all,
            items,
            note,
            at: Some(at),
            ..
        } => governance::schedule(&global, all, items, at, note).await,
        Command::Publish {
            all,
            items,
            note,
            at: None,
            yes,
        } => releases::publish(&global, all, items, note, yes).await,
        Command::Rollback {
            release,
            items,
            note,
            yes,
        } => releases::rollback(&global, &release, items, note, yes).await,
        Command::Executions { follow, environment } => executions::run(&global, follow, environment).await,
        Command::Webhooks(WebhooksCommand::List) => webhooks::list(&global).await,
        Command::Webhooks(WebhooksCommand::Create { url, events, secret }) => {
            webhooks::create(&global, url, events, secret).await
        }
        Command::Webhooks(WebhooksCommand::Delete { id }) => webhooks::delete(&global, id).await,
        Command::Webhooks(WebhooksCommand::Deliveries { id, first }) => webhooks::deliveries(&global, id, first).await,
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.global.json;
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let (code, message) = match error.downcast_ref::<ApiFailure>() {
                Some(failure) => (failure.code.clone(), failure.message.clone()),
                None => ("CLI_ERROR".to_string(), format!("{error:#}")),
            };
            if json {
                // Under --json, errors are JSON too (on stderr; stdout stays for results).
                eprintln!(
                    "{}",
                    serde_json::json!({ "error": { "code": code, "message": message } })
                );
            } else {
                eprintln!("error: {code}: {message}");
            }
            ExitCode::FAILURE
        }
    }
}
