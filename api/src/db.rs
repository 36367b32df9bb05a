//! Database connection: SQLite by default, PostgreSQL for several replicas.

use std::time::Duration;

use anyhow::Context;
use migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseBackend, DatabaseConnection, DatabaseTransaction,
    SqliteTransactionMode, Statement, TransactionOptions, TransactionTrait,
};

/// The database handle every domain function takes.
#[derive(Clone, Debug)]
pub struct Db {
    pub conn: DatabaseConnection,
    /// Signalled after a transaction that appended events commits (see `domain::events`).
    pub events_committed: std::sync::Arc<tokio::sync::Notify>,
}

/// Pool settings (`RUNFLOW_DB_*`).
#[derive(Clone, Copy, Debug)]
pub struct DbOptions {
    /// Longest wait for a pooled connection, including connecting: then SERVICE_UNAVAILABLE.
    pub acquire_timeout: Duration,
    /// PostgreSQL `statement_timeout` (zero: none).
    pub statement_timeout: Duration,
}

impl Default for DbOptions {
    fn default() -> Self {
        DbOptions {
            acquire_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(30),
        }
    }
}

impl Db {
    /// Connects with the default [`DbOptions`] and applies pending migrations.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        Self::connect_with(url, &DbOptions::default()).await
    }

    /// Connects and applies pending migrations.
    ///
    /// SQLite runs in WAL mode with `synchronous=FULL` (a commit survives power loss, at the
    /// cost of one extra fsync per commit) and a 5 s busy timeout; foreign keys on. A write
    /// that waits longer for another process's lock fails with SERVICE_UNAVAILABLE.
    ///
    /// PostgreSQL connections carry `statement_timeout`; a request waits at most
    /// `acquire_timeout` for a connection, so a database outage gives fast 503s, and the pool
    /// reconnects by itself when the database is back.
    pub async fn connect_with(url: &str, settings: &DbOptions) -> anyhow::Result<Self> {
        let mut options = ConnectOptions::new(url.to_string());
        let statement_timeout_ms = settings.statement_timeout.as_millis().to_string();
        options
            .sqlx_logging(false)
            .connect_timeout(settings.acquire_timeout)
            .acquire_timeout(settings.acquire_timeout)
            .max_connections(if url.starts_with("sqlite:") { 8 } else { 16 })
            .map_sqlx_sqlite_opts(|opts| {
                opts.journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Full)
                    .busy_timeout(Duration::from_secs(5))
                    .foreign_keys(true)
            })
            .map_sqlx_postgres_opts(move |opts| opts.options([("statement_timeout", statement_timeout_ms.as_str())]));
        let conn = Database::connect(options).await.with_context(|| {
            format!(
                "cannot connect to the database at RUNFLOW_DATABASE_URL ({})",
                redact_url(url)
            )
        })?;
        let db = Db {
            conn,
            events_committed: Default::default(),
        };
        db.migrate(url).await?;
        Ok(db)
    }

    /// Applies migrations. On PostgreSQL an advisory lock makes replicas that start together
    /// take turns instead of racing.
    #[expect(
        clippy::disallowed_methods,
        reason = "PostgreSQL session advisory lock around the migrations: no table is read"
    )]
    async fn migrate(&self, url: &str) -> anyhow::Result<()> {
        if self.backend() == DatabaseBackend::Postgres {
            // A dedicated one-connection pool holds the session-level lock and runs the
            // migrations, without the pool's statement_timeout (a migration may be long).
            let mut lock_options = ConnectOptions::new(url.to_string());
            lock_options.max_connections(1).sqlx_logging(false);
            let lock = Database::connect(lock_options).await?;
            lock.execute_raw(Statement::from_string(
                DatabaseBackend::Postgres,
                "SELECT pg_advisory_lock(7243911)",
            ))
            .await?;
            let result = Migrator::up(&lock, None).await;
            lock.execute_raw(Statement::from_string(
                DatabaseBackend::Postgres,
                "SELECT pg_advisory_unlock(7243911)",
            ))
            .await?;
            lock.close().await?;
            result.context("database migration failed")?;
        } else {
            Migrator::up(&self.conn, None)
                .await
                .context("database migration failed")?;
        }
        Ok(())
    }

    pub fn backend(&self) -> DatabaseBackend {
        self.conn.get_database_backend()
    }

    /// Begins a transaction that will write. On SQLite it is `BEGIN IMMEDIATE`, so a
    /// concurrent writer waits on the busy timeout instead of failing with "database is
    /// locked" at its first write.
    pub async fn begin_write(&self) -> Result<DatabaseTransaction, sea_orm::DbErr> {
        self.conn
            .begin_with_options(TransactionOptions {
                isolation_level: None,
                access_mode: None,
                sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            })
            .await
    }

    /// Commits `tx`: the one way every write transaction ends (`clippy.toml` forbids
    /// `DatabaseTransaction::commit` elsewhere).
    ///
    /// When the current task runs an operation whose audit entry is pending and not yet
    /// written ([`crate::domain::audit::Pending::run`]), the entry is inserted into `tx`
    /// first, so the change and its entry commit together or not at all: if the entry cannot
    /// be written, `tx` is dropped (rolled back) and the error returned.
    #[allow(clippy::disallowed_methods)]
    pub async fn commit(&self, tx: DatabaseTransaction) -> crate::error::Result<()> {
        let appended = crate::domain::audit::append_pending(&tx).await?;
        tx.commit().await?;
        if let Some(appended) = appended {
            appended.committed();
        }
        Ok(())
    }

    /// Wakes this process's live-feed pump: call after committing a transaction that appended
    /// events. (Other replicas are woken by PostgreSQL NOTIFY; a periodic poll backs both up.)
    pub fn wake_live_feed(&self) {
        self.events_committed.notify_one();
    }

    /// Whether the database answers within two seconds (for `/readyz`).
    pub async fn ping(&self) -> bool {
        matches!(
            tokio::time::timeout(Duration::from_secs(2), self.conn.ping()).await,
            Ok(Ok(()))
        )
    }
}

/// A database URL without its password, for messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            let user = credentials.split(':').next().unwrap_or_default();
            format!("{}://{}:***@{}", &url[..scheme_end], user, &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

impl Db {
    /// "sqlite" or "postgres", for logs.
    pub fn backend_name(&self) -> &'static str {
        match self.backend() {
            DatabaseBackend::Postgres => "postgres",
            DatabaseBackend::Sqlite => "sqlite",
            _ => "other",
        }
    }
}

/// Serialises transactions that touch the same logical record (for example two first deploys
/// of one agent) until the end of `tx`.
///
/// On PostgreSQL this is a transaction-scoped advisory lock on a hash of `key`; on SQLite it
/// is nothing, because write transactions begin IMMEDIATE and already run one at a time.
#[expect(
    clippy::disallowed_methods,
    reason = "PostgreSQL transaction advisory lock on a key: no table is read"
)]
pub async fn lock_for_update<C: ConnectionTrait>(tx: &C, key: &str) -> Result<(), sea_orm::DbErr> {
    if tx.get_database_backend() == DatabaseBackend::Postgres {
        tx.query_one_raw(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            [key.into()],
        ))
        .await?;
    }
    Ok(())
}
