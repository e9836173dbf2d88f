//! wagate's storage. One [`Store`] interface; a SQLite and a PostgreSQL implementation, each with
//! its own embedded migrations. The SQL they share is written once ([`sql`]); what differs per
//! backend (connection setup, migrations, the queue's row locking) lives in the backend module.
//!
//! The store knows no HTTP: it takes and returns records and core types.
#![forbid(unsafe_code)]

pub mod hooks;
mod model;
mod postgres;
mod sql;
mod sqlite;
pub use sqlite::{backup_databases, database_files, master_key_path, restore_databases, sqlite_file};

use std::sync::Arc;

use async_trait::async_trait;
pub use hooks::{Attempt, Delivery, DeliveryOutcome, Finished, Hook, HookHealth, HookStore, NewDelivery, SealReport};
pub use model::*;
pub use sql::accounts::AccountStore;
pub use sql::activity::ActivityStore;
pub use sql::audit::AuditStore;
pub use sql::cluster::{Claims, ClusterStore, TakenOver};
pub use sql::events::EventStore;
pub use sql::journal::JournalStore;
pub use sql::media::MediaStore;
pub use sql::outbound::OutboundStore;
pub use sql::sessions::SessionStore;
pub use sql::templates::TemplateStore;
pub use sql::usage::UsageStore;
pub use sql::JOURNAL_STATEMENT_ROWS;

/// The store's one error type.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    #[error("the database URL is not supported: {0}")]
    BadUrl(String),
    #[error("database error: {0}")]
    Database(sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{0}")]
    Sealed(#[from] wagate_core::seal::SealError),
    /// A request the store cannot carry out as asked (a backup of a database that is not a
    /// SQLite file, a restore over a database in place): the message says why.
    #[error("{0}")]
    Invalid(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                StoreError::Unavailable(e.to_string())
            }
            sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(db.message().to_string()),
            sqlx::Error::Database(db) if unavailable(db.as_ref()) => StoreError::Unavailable(e.to_string()),
            _ => StoreError::Database(e),
        }
    }
}

/// Whether a database error code says the database cannot be used now, rather than that the
/// statement is wrong: SQLite's busy and locked (another process holds the write lock past the
/// busy timeout), PostgreSQL's connection exceptions (08), insufficient resources (53),
/// operator intervention (57P: shutdown, cannot connect now), a statement cancelled by its
/// timeout (57014: a lock held elsewhere, say) and lock not available (55P03).
fn unavailable(db: &dyn sqlx::error::DatabaseError) -> bool {
    let Some(code) = db.code() else {
        return false;
    };
    if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
        // SQLite's extended codes keep the primary code in their low byte.
        return code.parse::<u32>().is_ok_and(|n| matches!(n & 0xff, 5 | 6));
    }
    code.starts_with("08") || code.starts_with("53") || code.starts_with("57P") || ["57014", "55P03"].contains(&&*code)
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Everything the gateway keeps: one trait per area, each implemented once for both backends
/// (`sql`).
#[async_trait]
pub trait Store:
    AccountStore
    + AuditStore
    + JournalStore
    + OutboundStore
    + EventStore
    + TemplateStore
    + MediaStore
    + HookStore
    + SessionStore
    + ActivityStore
    + UsageStore
    + ClusterStore
    + Send
    + Sync
    + 'static
{
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;
    /// Wake-ups for work other gateways committed (PostgreSQL `LISTEN`, reconnecting); `None`
    /// where there is only ever one gateway (SQLite).
    fn wakeups(&self) -> Option<tokio::sync::broadcast::Receiver<Wake>>;
    /// Whether the wake-up listener is connected (`None` without one).
    fn listening(&self) -> Option<bool>;
    async fn migrate(&self) -> Result<()>;
    /// Whether the database answers (readiness).
    async fn ping(&self) -> Result<()>;
    /// Deletes at most `batch` rows of each kind past its retention; call again until it
    /// deletes nothing.
    async fn prune(&self, retention: &Retention, batch: i64) -> Result<Pruned>;
}

/// Opens the store a URL names: `sqlite://path` (created if missing) or `postgres://…`.
pub async fn connect(url: &str, options: &ConnectOptions) -> Result<Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(sqlite::SqliteStore::connect(url, options).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(postgres::PgStore::connect(url, options).await?))
    } else {
        Err(StoreError::BadUrl(format!(
            "`{url}`: use sqlite://path/to/wagate.db or postgres://user@host/db"
        )))
    }
}

/// How to open the database.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    pub max_connections: u32,
    /// SQLite `synchronous`: `full` (fsync every commit) or `normal` (a commit survives a crash of
    /// the process, not of the machine).
    pub sqlite_synchronous: String,
    /// The master keys that seal the secrets kept in the database (hook secrets).
    pub sealer: wagate_core::seal::Sealer,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            max_connections: 8,
            sqlite_synchronous: "full".into(),
            sealer: Default::default(),
        }
    }
}

/// Helpers for tests that run the same story on SQLite and PostgreSQL.
pub mod testing {
    use sqlx::Connection;

    /// Now, in unix milliseconds (as the store stamps rows it writes on its own clock).
    pub fn now_ms() -> i64 {
        crate::sql::now_ms()
    }

    /// The PostgreSQL URL of `WAGATE_TEST_POSTGRES_URL`, pointed at a fresh, empty schema, or
    /// `None` when the variable is not set.
    pub async fn fresh_postgres_url() -> Option<String> {
        let base = std::env::var("WAGATE_TEST_POSTGRES_URL")
            .ok()
            .filter(|v| !v.is_empty())?;
        let schema = format!("t_{}", uuid_like());
        let mut conn = match sqlx::PgConnection::connect(&base).await {
            Ok(c) => c,
            Err(e) => panic!("WAGATE_TEST_POSTGRES_URL={base} is set but cannot be reached: {e}"),
        };
        if let Err(e) = sqlx::query(&format!("CREATE SCHEMA {schema}")).execute(&mut conn).await {
            panic!("creating test schema {schema}: {e}");
        }
        let sep = if base.contains('?') { '&' } else { '?' };
        Some(format!("{base}{sep}options[search_path]={schema}"))
    }

    /// [`fresh_postgres_url`] for a test that runs on PostgreSQL only: without the variable it
    /// says `SKIPPED <test>` on the error stream (which libtest does not hide; `.ci/run` fails
    /// on the line, since it sets the variable) and the test returns.
    pub async fn postgres_or_skip(test: &str) -> Option<String> {
        let url = fresh_postgres_url().await;
        if url.is_none() {
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "\nSKIPPED {test}: WAGATE_TEST_POSTGRES_URL is not set (e.g. postgres://postgres@127.0.0.1:5432/test)"
            );
        }
        url
    }

    /// A fresh SQLite database file in this test run's directory (`wagate-tests/run-<pid>` in
    /// the temporary directory). A run cannot remove its own at exit, so each run removes those
    /// of runs whose process is gone.
    pub fn fresh_sqlite_url() -> String {
        let dir = run_dir();
        let _ = std::fs::create_dir_all(&dir);
        format!("sqlite://{}", dir.join(format!("{}.db", uuid_like())).display())
    }

    /// This run's directory for databases no [`TestDir`] holds; the first call sweeps away the
    /// directories of earlier runs.
    fn run_dir() -> std::path::PathBuf {
        static SWEPT: std::sync::Once = std::sync::Once::new();
        let root = std::env::temp_dir().join("wagate-tests");
        SWEPT.call_once(|| {
            let Ok(entries) = std::fs::read_dir(&root) else {
                return;
            };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().to_string();
                let gone = name
                    .strip_prefix("run-")
                    .and_then(|pid| pid.parse::<u32>().ok())
                    .is_some_and(|pid| {
                        pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists()
                    });
                if gone {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        });
        root.join(format!("run-{}", std::process::id()))
    }

    /// A directory of one test, `wagate-tests/<name>_<id>` in the temporary directory: removed
    /// when dropped, unless the test is failing (then kept for a look, and its path printed).
    #[derive(Debug)]
    pub struct TestDir(std::path::PathBuf);

    impl TestDir {
        pub fn new(name: &str) -> Self {
            let path = std::env::temp_dir()
                .join("wagate-tests")
                .join(format!("{name}_{}", uuid_like()));
            if let Err(e) = std::fs::create_dir_all(&path) {
                panic!("creating the test directory {}: {e}", path.display());
            }
            Self(path)
        }

        /// A SQLite database in it.
        pub fn sqlite_url(&self) -> String {
            format!("sqlite://{}", self.0.join("wagate.db").display())
        }
    }

    impl std::ops::Deref for TestDir {
        type Target = std::path::Path;
        fn deref(&self) -> &std::path::Path {
            &self.0
        }
    }

    impl AsRef<std::path::Path> for TestDir {
        fn as_ref(&self) -> &std::path::Path {
            &self.0
        }
    }

    impl Drop for TestDir {
        fn drop(&mut self) {
            if std::thread::panicking() {
                use std::io::Write;
                let _ = writeln!(std::io::stderr(), "kept {} (the test failed)", self.0.display());
            } else {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    /// The database the tests use: PostgreSQL when `WAGATE_TEST_POSTGRES_URL` is set, else SQLite.
    pub async fn fresh_database_url() -> String {
        match fresh_postgres_url().await {
            Some(url) => url,
            None => fresh_sqlite_url(),
        }
    }

    fn uuid_like() -> String {
        wagate_core::ids::new_id("x").trim_start_matches("x_").to_string()
    }
}
