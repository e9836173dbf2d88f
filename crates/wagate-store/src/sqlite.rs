//! The SQLite backend: one file, WAL journal, writers serialised by SQLite itself.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

use crate::{ConnectOptions, Result, StoreError};

pub struct SqliteStore {
    pool: SqlitePool,
}

impl crate::sql::Backend for SqliteStore {
    type Db = sqlx::Sqlite;
}

impl SqliteStore {
    const MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
    /// SQLite serialises writers, so a claim needs no row locks.
    const CLAIM_LOCK: &'static str = "";

    pub async fn connect(url: &str, options: &ConnectOptions) -> Result<Self> {
        let synchronous = match options.sqlite_synchronous.as_str() {
            "normal" => SqliteSynchronous::Normal,
            "full" => SqliteSynchronous::Full,
            other => {
                return Err(StoreError::BadUrl(format!(
                    "sqlite synchronous `{other}`: use `full` or `normal`"
                )))
            }
        };
        let opts = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::BadUrl(format!("`{url}`: {e}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(synchronous)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(options.max_connections.max(2))
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(opts)
            .await?;
        Ok(Self { pool })
    }
}

crate::sql::impl_store!(SqliteStore, "sqlite");
