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

use std::sync::Arc;

use async_trait::async_trait;
pub use hooks::{Attempt, Delivery, DeliveryOutcome, Finished, Hook, HookHealth, HookStore, NewDelivery};
pub use model::*;

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
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                StoreError::Unavailable(e.to_string())
            }
            sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(db.message().to_string()),
            _ => StoreError::Database(e),
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Everything the gateway keeps.
#[async_trait]
pub trait Store: HookStore + Send + Sync + 'static {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;
    async fn migrate(&self) -> Result<()>;
    /// Whether the database answers (readiness).
    async fn ping(&self) -> Result<()>;
    /// Wake-ups for work other gateways committed (PostgreSQL `LISTEN`, reconnecting); `None`
    /// where there is only ever one gateway (SQLite).
    fn wakeups(&self) -> Option<tokio::sync::broadcast::Receiver<Wake>>;
    /// Whether the wake-up listener is connected (`None` without one).
    fn listening(&self) -> Option<bool>;

    /// Creates the account, or updates the one with that name; adds its phone numbers.
    async fn upsert_account(&self, account: &NewAccount) -> Result<Account>;
    async fn list_accounts(&self) -> Result<Vec<Account>>;
    /// Pauses (with the reason, as JSON) or resumes an account's sending.
    async fn set_account_pause(&self, account_id: &str, pause: Option<&str>) -> Result<bool>;
    async fn list_phone_numbers(&self) -> Result<Vec<PhoneNumber>>;

    async fn create_api_key(&self, key: &NewApiKey) -> Result<ApiKey>;
    async fn api_key_by_hash(&self, key_hash: &str) -> Result<Option<ApiKey>>;
    async fn count_api_keys(&self) -> Result<i64>;

    /// Stores webhook bodies in one transaction (group commit); returns their journal ids.
    async fn journal_webhooks(&self, entries: &[NewJournalEntry]) -> Result<Vec<i64>>;
    /// Journalled bodies not processed yet, oldest first.
    async fn pending_journal(&self, limit: i64) -> Result<Vec<JournalEntry>>;
    /// Applies parsed webhooks (messages, statuses, events) and marks them processed, in one
    /// transaction; duplicates and backwards statuses change nothing.
    async fn apply_webhooks(&self, batch: &[AppliedWebhook]) -> Result<ApplyStats>;
    async fn journal_counts(&self) -> Result<JournalCounts>;
    /// Deletes at most `batch` rows of each kind past its retention; call again until it
    /// deletes nothing.
    async fn prune(&self, retention: &Retention, batch: i64) -> Result<Pruned>;
    /// When the oldest journal entry still waiting to be processed was received (unix ms).
    async fn oldest_pending_journal(&self) -> Result<Option<i64>>;
    /// Sets aside an entry that failed to apply on its own, with the error; the rest flows.
    async fn set_aside_journal(&self, id: i64, error: &str, now_ms: i64) -> Result<()>;
    /// The entries set aside, newest first.
    async fn dead_journal(&self, limit: i64) -> Result<Vec<DeadEntry>>;
    /// Queues a set-aside entry for processing again; false when it is not set aside.
    async fn requeue_journal(&self, id: i64) -> Result<bool>;

    /// Writes an outbound message and its send job in one transaction.
    async fn enqueue_message(&self, message: &NewOutboundMessage) -> Result<Message>;
    /// As `enqueue_message`, once per idempotency key of the account: a key seen within
    /// `keep_ms` gives back its message (when the request hash matches) or a conflict, and
    /// queues nothing. Race-free: the key is claimed in the message's own transaction.
    async fn enqueue_message_once(
        &self,
        message: &NewOutboundMessage,
        key: &IdempotencyKey,
        keep_ms: i64,
    ) -> Result<Enqueued>;
    /// Cancels a message whose send job still waits in the queue (not taken by a worker);
    /// `None` when there is none such.
    async fn cancel_message(&self, id: &str, now: i64) -> Result<Option<Message>>;
    /// Queues again a message whose send failed (its job is dead); `None` when there is none.
    async fn retry_message(&self, id: &str, now: i64) -> Result<Option<Message>>;
    async fn get_message(&self, id: &str) -> Result<Option<Message>>;
    async fn message_timeline(&self, id: &str) -> Result<Vec<StatusEntry>>;
    async fn list_messages(&self, filter: &MessageFilter) -> Result<Vec<Message>>;

    /// Leases up to `limit` due send jobs (and jobs whose lease expired) to `owner`.
    async fn claim_send_jobs(
        &self,
        owner: &str,
        limit: i64,
        lease_ms: i64,
        now_ms: i64,
        skip: &ClaimFilter<'_>,
    ) -> Result<Vec<SendJob>>;
    /// Extends the leases of jobs still in flight (`(job id, attempt)`); returns how many held.
    async fn renew_send_leases(&self, jobs: &[(i64, i64)], until_ms: i64) -> Result<u64>;
    /// Gives back a claimed job that was not sent (shutdown before its call).
    async fn release_send_job(&self, job: &SendJob) -> Result<bool>;
    /// Jobs whose lease ran out during the call: adopted when a status Meta sent names them,
    /// else, once their lease ended before `act_before_ms`, requeued or marked `unknown`.
    async fn resolve_in_doubt(
        &self,
        now_ms: i64,
        act_before_ms: i64,
        action: InDoubtAction,
        limit: i64,
    ) -> Result<Vec<InDoubt>>;
    /// Finishes a leased job; `false` (and nothing changed) when `owner` no longer holds the lease.
    async fn finish_send_job(&self, job: &SendJob, owner: &str, outcome: &SendOutcome, now_ms: i64) -> Result<bool>;
    /// Several outcomes (job, lease owner, outcome) in one transaction; each fenced on its own.
    async fn finish_send_jobs(&self, finished: &[(SendJob, String, SendOutcome)], now_ms: i64) -> Result<Vec<bool>>;

    async fn get_contact(&self, account_id: &str, phone_number_id: &str, wa_id: &str) -> Result<Option<Contact>>;
    async fn find_contacts(&self, account_id: Option<&str>, wa_id: &str) -> Result<Vec<Contact>>;

    async fn list_events(&self, filter: &EventFilter) -> Result<Vec<Event>>;

    /// Replaces an account's catalog with what Meta listed, and records the sync time.
    async fn replace_templates(&self, account_id: &str, templates: &[Template], synced_at: i64) -> Result<()>;
    async fn upsert_template(&self, template: &Template) -> Result<()>;
    async fn list_templates(&self, account_id: Option<&str>) -> Result<Vec<Template>>;
    /// Every language of a template name in an account.
    async fn templates_named(&self, account_id: &str, name: &str) -> Result<Vec<Template>>;
    async fn delete_templates(&self, account_id: &str, name: &str) -> Result<u64>;
    /// When the account's catalog was last synced; `None`: never.
    async fn templates_synced_at(&self, account_id: &str) -> Result<Option<i64>>;

    /// Leases up to `limit` media due for a download attempt.
    async fn claim_media(&self, limit: i64, lease_ms: i64, now_ms: i64) -> Result<Vec<Media>>;
    async fn finish_media(&self, id: &str, outcome: &MediaOutcome, now_ms: i64) -> Result<()>;
    async fn get_media(&self, id: &str) -> Result<Option<Media>>;
    /// Stores media bytes under their content hash (kept if already there).
    async fn put_media_blob(&self, content_hash: &str, bytes: &[u8], now_ms: i64) -> Result<()>;
    async fn get_media_blob(&self, content_hash: &str) -> Result<Option<Vec<u8>>>;
    async fn delete_media_blob(&self, content_hash: &str) -> Result<()>;
    /// Inbound media by Meta's media id (the id in Meta's webhook).
    async fn media_by_meta_id(&self, meta_media_id: &str) -> Result<Option<Media>>;
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
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            max_connections: 8,
            sqlite_synchronous: "full".into(),
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

    /// A fresh SQLite database file in the temp directory.
    pub fn fresh_sqlite_url() -> String {
        let dir = std::env::temp_dir().join("wagate-tests");
        let _ = std::fs::create_dir_all(&dir);
        format!("sqlite://{}", dir.join(format!("{}.db", uuid_like())).display())
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
