//! The PostgreSQL backend: for several gateway processes sharing one database. Queue claims skip
//! rows another process has locked, so no job is taken twice.

use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};

use crate::{ConnectOptions, Result};

pub struct PgStore {
    pool: PgPool,
}

impl crate::sql::Backend for PgStore {
    type Db = sqlx::Postgres;
}

impl PgStore {
    const MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");
    const CLAIM_LOCK: &'static str = "FOR UPDATE SKIP LOCKED";

    pub async fn connect(url: &str, options: &ConnectOptions) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        Ok(Self { pool })
    }
}

crate::sql::impl_store!(PgStore, "postgres");
