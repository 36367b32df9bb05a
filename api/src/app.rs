//! Wiring: configuration in, a ready [`App`] out (database, keys, schema).

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use base64::Engine;
use rand::RngCore;
use runflow_common::private_file::{self, Existing};
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use crate::auth::{ActorKind, Role, TokenService};
use crate::config::{Config, JwtAlgorithm};
use crate::crypto::SecretBox;
use crate::db::Db;
use crate::domain::agents::BundleLimits;
use crate::graphql::{self, RunflowSchema, SchemaOptions};
pub use crate::services::Services;

/// Everything a request handler needs, shared: cloning it (axum clones the state for every
/// request) copies one pointer, not the configuration and services.
#[derive(Clone)]
pub struct App(Arc<AppState>);

impl std::ops::Deref for App {
    type Target = AppState;

    fn deref(&self) -> &AppState {
        &self.0
    }
}

#[derive(Clone)]
pub struct AppState {
    pub services: Services,
    pub schema: RunflowSchema,
    pub config: Config,
    /// Automatic persisted queries and the trusted-documents manifest.
    pub persisted: Arc<crate::http::persisted::PersistedQueries>,
    /// Rate, concurrency and connection limits (see [`crate::http::limits`]).
    pub limits: Arc<crate::http::limits::Limits>,
    /// Subscription executions shared by subscribers of the same operation (see
    /// [`crate::live::multiplex`]).
    pub shared_subscriptions: Arc<crate::live::multiplex::SharedSubscriptions>,
    /// Becomes `true` when the server shuts down (long-lived connections close then).
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    shutdown_sender: Arc<tokio::sync::watch::Sender<bool>>,
    /// First start only: the short-lived token of the dashboard sign-in link.
    signin_token: Option<String>,
}

/// A secret read from configuration, or from (or generated into) a file of the data directory.
pub struct LoadedSecret {
    pub value: SecretString,
    pub generated: bool,
}

fn load_or_generate(dir: &Path, file: &str, generate: impl FnOnce() -> String) -> anyhow::Result<LoadedSecret> {
    let path = dir.join(file);
    if path.exists() {
        let value =
            Zeroizing::new(std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?);
        return Ok(LoadedSecret {
            value: value.trim().into(),
            generated: false,
        });
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create RUNFLOW_DATA_DIR {}", dir.display()))?;
    let value = SecretString::from(generate());
    private_file::write(&path, value.expose_secret().as_bytes(), Existing::Refuse)
        .with_context(|| format!("cannot create {}", path.display()))?;
    Ok(LoadedSecret { value, generated: true })
}

fn random_secret() -> String {
    let mut bytes = Zeroizing::new([0u8; 48]);
    rand::rng().fill_bytes(bytes.as_mut());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes.as_ref())
}

/// The HS256 secret: `RUNFLOW_JWT_SECRET`, else the data directory's `jwt-secret` file.
pub fn jwt_secret(config: &Config) -> anyhow::Result<Option<LoadedSecret>> {
    if config.jwt_algorithm != JwtAlgorithm::Hs256 {
        return Ok(None);
    }
    Ok(Some(match (&config.jwt_secret, &config.jwt_secret_file) {
        (Some(secret), _) => LoadedSecret {
            value: secret.clone(),
            generated: false,
        },
        (None, Some(path)) => {
            let value = read_secret_file(path, "RUNFLOW_JWT_SECRET_FILE")?;
            anyhow::ensure!(
                value.expose_secret().len() >= 32,
                "RUNFLOW_JWT_SECRET_FILE must hold at least 32 characters"
            );
            LoadedSecret {
                value,
                generated: false,
            }
        }
        (None, None) => load_or_generate(&config.data_dir, "jwt-secret", random_secret)?,
    }))
}

/// Reads a secret from a file (trailing whitespace trimmed); the error names the variable.
fn read_secret_file(path: &Path, variable: &str) -> anyhow::Result<SecretString> {
    let value = Zeroizing::new(
        std::fs::read_to_string(path).with_context(|| format!("{variable}: cannot read {}", path.display()))?,
    );
    anyhow::ensure!(!value.trim().is_empty(), "{variable}: {} is empty", path.display());
    Ok(value.trim().into())
}

/// How long the first start's dashboard sign-in link works.
const SIGNIN_LINK_TTL_SECS: u64 = 15 * 60;

/// The token service, built from configuration (used by `serve` and `token`).
pub fn token_service(config: &Config) -> anyhow::Result<(TokenService, bool)> {
    let secret = jwt_secret(config)?;
    let generated = secret.as_ref().is_some_and(|s| s.generated);
    let service = TokenService::from_config(config, secret.as_ref().map(|s| s.value.expose_secret()))?;
    Ok((service, generated))
}

impl App {
    /// Connects to the database, loads keys and builds the schema.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        config.validate()?;
        // Fail on bad keys before touching the database.
        let keys = Self::prepare_data_dir(&config)?;
        let db = Db::connect_with(&config.database_url(), &config.db_options()).await?;
        Self::assemble(config, db, keys)
    }

    /// Tells long-lived connections (WebSockets) to close.
    pub fn begin_shutdown(&self) {
        let _ = self.shutdown_sender.send(true);
    }

    fn prepare_data_dir(config: &Config) -> anyhow::Result<(TokenService, bool, SecretBox)> {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("cannot create RUNFLOW_DATA_DIR {}", config.data_dir.display()))?;
        let (tokens, generated) = token_service(config)?;
        let secret_key = match (&config.secret_key, &config.secret_key_file) {
            (Some(key), _) => key.clone(),
            (None, Some(path)) => read_secret_file(path, "RUNFLOW_SECRET_KEY_FILE")?,
            (None, None) => load_or_generate(&config.data_dir, "secret-key", SecretBox::generate_key)?.value,
        };
        Ok((
            tokens,
            generated,
            SecretBox::from_base64_key(secret_key.expose_secret())?,
        ))
    }

    /// Like [`App::build`], on an already connected database.
    pub fn with_db(config: Config, db: Db) -> anyhow::Result<Self> {
        config.validate()?;
        let keys = Self::prepare_data_dir(&config)?;
        Self::assemble(config, db, keys)
    }

    fn assemble(config: Config, db: Db, keys: (TokenService, bool, SecretBox)) -> anyhow::Result<Self> {
        let (tokens, generated, secret_box) = keys;
        let persisted = Arc::new(crate::http::persisted::PersistedQueries::new(
            config.trusted_documents.as_deref(),
        )?);
        if generated {
            let token = tokens.mint(
                "admin",
                "default",
                ActorKind::Person(Role::Admin),
                std::time::Duration::from_secs(30 * 24 * 3600),
            )?;
            // Printed once, on the first start, so a newcomer can call the API at once.
            println!(
                "\nGenerated a token secret in {}.\nAdmin token for tenant `default` (valid 30 days):\n\n  {token}\n\n\
                 Use it as `Authorization: Bearer <token>`; mint others with `runflow token`.\n",
                config.data_dir.join("jwt-secret").display()
            );
        }
        // The dashboard's sign-in link (printed by `print_signin_link` once the port is bound):
        // a short-lived admin token, so the long-lived one never sits in browser history.
        let signin_token = if generated {
            Some(tokens.mint(
                "admin",
                "default",
                ActorKind::Person(Role::Admin),
                std::time::Duration::from_secs(SIGNIN_LINK_TTL_SECS),
            )?)
        } else {
            None
        };
        let live = crate::live::LiveFeed::start(
            db.clone(),
            &config.database_url(),
            config.live_buffer,
            config.event_retention,
        );
        let services = Services {
            live,
            db,
            tokens: Arc::new(tokens),
            secret_box,
            public_url: config.public_url(),
            bundle_limits: BundleLimits {
                max_bundle_bytes: config.max_bundle_bytes,
                max_file_bytes: config.max_file_bytes,
                max_files: 2000,
            },
            record_quota: crate::domain::quotas::RecordQuota {
                max_per_kind: config.max_records_per_kind,
            },
            execution_limits: crate::domain::executions::ExecutionLimits {
                max_depth: config.max_execution_depth as i32,
                max_active: config.max_active_executions,
            },
            trigger_limits: crate::domain::triggers::TriggerLimits {
                min_interval: config.min_schedule_interval,
                max_triggers: config.max_triggers,
                max_firings_per_minute: config.max_firings_per_minute,
                webhook_tolerance: config.webhook_tolerance,
            },
            webhooks: config.webhook_settings(),
        };
        let schema = graphql::build_schema(
            services.clone(),
            SchemaOptions {
                cost: config.cost_limits(),
                max_depth: config.max_query_depth,
                introspection: config.introspection,
            },
        );
        let (shutdown_sender, shutdown) = tokio::sync::watch::channel(false);
        let limits = crate::http::limits::Limits::new(&config);
        crate::domain::releases::diff::configure(crate::domain::releases::diff::DiffLimits {
            timeout: config.diff_timeout,
            ..Default::default()
        });
        Ok(App(Arc::new(AppState {
            services,
            schema,
            limits,
            shared_subscriptions: crate::live::multiplex::SharedSubscriptions::new(),
            config,
            persisted,
            shutdown,
            shutdown_sender: Arc::new(shutdown_sender),
            signin_token,
        })))
    }

    /// The configuration, to adjust before serving (copied first if the state is shared).
    pub fn config_mut(&mut self) -> &mut Config {
        &mut Arc::make_mut(&mut self.0).config
    }

    /// On the first start: prints the dashboard's sign-in link for the address actually bound.
    /// The token travels in the URL fragment, which browsers never send to the server (so it is
    /// in no access log); the dashboard moves it to session storage and out of the address bar.
    pub fn print_signin_link(&self, bound: std::net::SocketAddr) {
        let Some(token) = &self.signin_token else {
            return;
        };
        let base = match &self.config.public_url {
            Some(_) => self.config.public_url(),
            None => format!("http://{bound}"),
        };
        println!(
            "Open the dashboard (this sign-in link works for {} minutes):\n\n  {base}/#signin={token}\n",
            SIGNIN_LINK_TTL_SECS / 60
        );
    }
}
