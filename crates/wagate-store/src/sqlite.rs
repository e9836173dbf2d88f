//! The SQLite backend: one file, WAL journal, writers serialised by SQLite itself.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions as _, Sqlite, SqliteConnection, Transaction};

use crate::{AppliedWebhook, ConnectOptions, JournalCounts, JournalEntry, Result, StoreError};

pub struct SqliteStore {
    /// Readers (WAL lets them run beside the writer).
    pool: SqlitePool,
    /// The one connection that writes.
    writer: SqlitePool,
    /// The webhook journal, in its own file (`<name>.journal.db`) so that acknowledging a
    /// webhook never waits for processing's writes; only the journal writer writes to it.
    journal: SqlitePool,
    /// The journal writer's own connection (opened on first use, again after an error): a
    /// connection from the pool is pinged by sqlx when it goes back, a second round trip to its
    /// thread for every group commit.
    journal_writer: tokio::sync::Mutex<Option<SqliteConnection>>,
    journal_options: SqliteConnectOptions,
    /// The configured `synchronous` level, restored after relaxed bookkeeping.
    synchronous: &'static str,
    sealer: wagate_core::seal::Sealer,
}

impl crate::sql::Backend for SqliteStore {
    type Db = sqlx::Sqlite;
}

impl SqliteStore {
    const MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
    const JOURNAL_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite-journal");
    /// SQLite serialises writers, so a claim needs no row locks.
    const CLAIM_LOCK: &'static str = "";
    /// One writer at a time: no row locks to take ahead.
    const ROW_LOCK: &'static str = "";

    pub async fn connect(url: &str, options: &ConnectOptions) -> Result<Self> {
        let (synchronous, level) = match options.sqlite_synchronous.as_str() {
            "normal" => (SqliteSynchronous::Normal, "NORMAL"),
            "full" => (SqliteSynchronous::Full, "FULL"),
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
            .foreign_keys(true)
            // Rows travel from the connection's thread to the task one by one through a bounded
            // channel. With sqlx's 50, reading a batch of 500 journal bodies, or the 500 wamids
            // an insert returns, stopped the thread ten times to wait for the task, and each
            // stop and wake-up is a context switch on both sides: about half of the gateway's
            // switches under load. The rows are small and the channel only as full as needed.
            .row_buffer_size(1024);
        // The journal takes every webhook body; checkpointing its WAL less often (40 MB rather than
        // 4 MB) keeps that work out of most acknowledgements.
        let journal_opts = opts
            .clone()
            .filename(journal_path(opts.get_filename()))
            .pragma("wal_autocheckpoint", "10000")
            // Appends and reads of recent rows: a small page cache is enough (SQLite's default
            // is 2 MB per connection, and each of these is one more connection).
            .pragma("cache_size", "-512");
        let journal = SqlitePoolOptions::new()
            // A local file: no connection to test; the ping is a thread round trip per acquire.
            .test_before_acquire(false)
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(journal_opts.clone())
            .await?;
        Self::JOURNAL_MIGRATOR.run(&journal).await?;
        let writer = SqlitePoolOptions::new()
            // A local file: no connection to test; the ping is a thread round trip per acquire.
            .test_before_acquire(false)
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            // Checkpointing less often copies each often-written page (index and contact pages)
            // back once per 40 MB of WAL rather than per 4 MB: a tenth of processing's CPU went
            // to checkpoints. The one writer gets 10 MB of page cache (SQLite's default is 2 MB):
            // inserts land all over the per-contact and wamid indexes, and with 2 MB each batch
            // read back most of the pages it had just written; the ingest benchmark's CPU per
            // webhook fell by about a quarter, and deliveries no longer slow down as the tables
            // grow past 100,000 messages.
            .connect_with(
                opts.clone()
                    .pragma("wal_autocheckpoint", "10000")
                    .pragma("cache_size", "-10240"),
            )
            .await?;
        let pool = SqlitePoolOptions::new()
            // A local file: no connection to test; the ping is a thread round trip per acquire.
            .test_before_acquire(false)
            .max_connections(options.max_connections.max(2))
            .acquire_timeout(Duration::from_secs(10))
            // Readers share the OS page cache; 256 KB each of SQLite's own keeps the pool lean
            // (the memory goes to the writer's cache instead).
            .connect_with(opts.pragma("cache_size", "-256"))
            .await?;
        Ok(Self {
            pool,
            writer,
            journal,
            journal_writer: tokio::sync::Mutex::new(None),
            journal_options: journal_opts,
            synchronous: level,
            sealer: options.sealer.clone(),
        })
    }

    /// The writer, for bookkeeping whose loss only repeats work: hook deliveries added, claimed
    /// and finished. It commits without waiting for the disk (`synchronous = NORMAL` in WAL mode):
    /// a crash of the process loses nothing, a power cut can lose the last of these commits since
    /// the previous ordinary one, which then re-sends those deliveries (at-least-once, same event
    /// id). The next ordinary commit on the writer syncs them along with itself.
    async fn relaxed_writer(&self) -> Result<PoolConnection<Sqlite>> {
        let mut conn = self.writer.acquire().await?;
        if let Err(e) = sqlx::query("PRAGMA synchronous = NORMAL").execute(&mut *conn).await {
            conn.close_on_drop();
            return Err(e.into());
        }
        Ok(conn)
    }

    /// Gives the writer back with the configured level; a connection that cannot be restored
    /// is closed rather than reused.
    async fn release_relaxed(&self, mut conn: PoolConnection<Sqlite>) {
        let restore = format!("PRAGMA synchronous = {}", self.synchronous);
        if sqlx::query(&restore).execute(&mut *conn).await.is_err() {
            conn.close_on_drop();
        }
    }

    async fn cursor(&self) -> Result<i64> {
        let (last,): (i64,) = sqlx::query_as("SELECT last_id FROM journal_progress WHERE id = 1")
            .fetch_one(&self.pool)
            .await?;
        Ok(last)
    }

    /// The journal is claimed by no one: one gateway processes it, in order, from its cursor.
    async fn release_journal_claims(&self, _owner: &str, _filter: &str) -> Result<u64> {
        Ok(0)
    }

    async fn pending(&self, _owner: &str, in_flight: i64, limit: i64) -> Result<Vec<JournalEntry>> {
        let after = self.cursor().await?.max(in_flight);
        // Entries requeued from the set-aside ones (below the cursor; rare), then those past the
        // cursor. Two queries: one with OR would sort the whole backlog for every batch.
        // Requeued entries stay requeued until the batch holding them commits, so they are
        // taken only when no batch is in flight.
        let mut entries: Vec<JournalEntry> = match in_flight {
            0 => sqlx::query_as(
                "SELECT id, received_at, account_id, body FROM webhook_journal WHERE state = 'requeued' ORDER BY id LIMIT $1",
            )
            .bind(limit)
            .fetch_all(&self.journal)
            .await?,
            _ => Vec::new(),
        };
        let more = limit - entries.len() as i64;
        if more > 0 {
            entries.extend(
                sqlx::query_as::<_, JournalEntry>(
                    "SELECT id, received_at, account_id, body FROM webhook_journal
                     WHERE state = 'pending' AND id > $1 ORDER BY id LIMIT $2",
                )
                .bind(after)
                .bind(more)
                .fetch_all(&self.journal)
                .await?,
            );
        }
        Ok(entries)
    }

    /// Nothing is claimed: a batch not applied is read again from the cursor.
    async fn unclaim(&self, _owner: &str, _ids: &[i64]) -> Result<u64> {
        Ok(0)
    }

    async fn counts(&self) -> Result<JournalCounts> {
        let after = self.cursor().await?;
        let rows: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT state, SUM(CASE WHEN id > $1 THEN 1 ELSE 0 END), COUNT(*) FROM webhook_journal GROUP BY state",
        )
        .bind(after)
        .fetch_all(&self.journal)
        .await?;
        let mut c = JournalCounts::default();
        for (state, beyond, all) in rows {
            match state.as_str() {
                "pending" => {
                    c.pending += beyond;
                    c.processed += all - beyond;
                }
                "quarantined" => c.quarantined = all,
                "dead" => c.dead = all,
                "requeued" => c.pending += all,
                "processed" => c.processed += all,
                _ => c.failed += all,
            }
        }
        Ok(c)
    }

    /// Journal entries in one statement, which commits on its own, on the journal writer's
    /// connection. After an error the connection is closed: the next commit opens a fresh one.
    async fn append_journal(&self, entries: &[crate::NewJournalEntry]) -> Result<Vec<i64>> {
        let mut slot = self.journal_writer.lock().await;
        let conn = match slot.as_mut() {
            Some(conn) => conn,
            None => slot.insert(self.journal_options.connect().await?),
        };
        match Self::journal_insert(entries)
            .build_query_as::<(i64,)>()
            .fetch_all(&mut *conn)
            .await
        {
            Ok(rows) => Ok(rows.into_iter().map(|r| r.0).collect()),
            Err(e) => {
                *slot = None;
                Err(e.into())
            }
        }
    }

    /// Moves the cursor in the processing transaction itself. The journal has one writer and
    /// commits in id order, so every id below the cursor was seen.
    async fn mark_processed(
        &self,
        tx: &mut Transaction<'_, Sqlite>,
        batch: &[AppliedWebhook],
        _now: i64,
    ) -> Result<()> {
        if let Some(max) = batch.iter().map(|w| w.journal_id).max() {
            sqlx::query(
                "UPDATE journal_progress SET last_id = CASE WHEN $1 > last_id THEN $1 ELSE last_id END WHERE id = 1",
            )
            .bind(max)
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }

    /// Entries that could not be parsed are marked in the journal for inspection (the cursor has
    /// already passed them).
    /// Processed entries are those behind the cursor (and those marked processed, failed or
    /// quarantined); set-aside ones stay until requeued.
    async fn prune_journal(&self, before: i64, batch: i64) -> Result<u64> {
        let after = self.cursor().await?;
        Ok(sqlx::query(
            "DELETE FROM webhook_journal WHERE id IN (SELECT id FROM webhook_journal
               WHERE received_at < $1 AND ((state = 'pending' AND id <= $2) OR state IN ('processed', 'failed', 'quarantined'))
               ORDER BY id LIMIT $3)",
        )
        .bind(before)
        .bind(after)
        .bind(batch)
        .execute(&self.journal)
        .await?
        .rows_affected())
    }

    fn wakeups(&self) -> Option<tokio::sync::broadcast::Receiver<crate::Wake>> {
        None
    }

    fn listening(&self) -> Option<bool> {
        None
    }

    async fn oldest_pending(&self) -> Result<Option<i64>> {
        Ok(self.pending("", 0, 1).await?.first().map(|e| e.received_at))
    }

    /// An entry that failed alone: marked dead in the journal, and the cursor moves past it.
    async fn set_aside(&self, id: i64, error: &str, now: i64) -> Result<()> {
        sqlx::query("UPDATE webhook_journal SET state = 'dead', processed_at = $1, error = $2 WHERE id = $3")
            .bind(now)
            .bind(error)
            .bind(id)
            .execute(&self.journal)
            .await?;
        sqlx::query(
            "UPDATE journal_progress SET last_id = CASE WHEN $1 > last_id THEN $1 ELSE last_id END WHERE id = 1",
        )
        .bind(id)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Queues an entry in state `from` (dead or quarantined) again: the cursor has passed it, so
    /// it is marked requeued, which the processor also reads.
    async fn requeue(&self, id: i64, from: &str, account_id: Option<&str>) -> Result<bool> {
        Ok(
            sqlx::query("UPDATE webhook_journal SET state = 'requeued', error = NULL, account_id = COALESCE($3, account_id) WHERE id = $1 AND state = $2")
                .bind(id)
                .bind(from)
                .bind(account_id)
                .execute(&self.journal)
                .await?
                .rows_affected()
                == 1,
        )
    }

    async fn after_apply(&self, batch: &[AppliedWebhook], now: i64) -> Result<()> {
        // Requeued entries (below the cursor) are done once applied: one statement per batch on
        // the (state, id) index, which writes nothing when there are none (a statement per
        // entry would be a journal commit, and a disk sync, per webhook).
        let applied = batch.iter().filter(|w| w.error.is_none()).map(|w| w.journal_id);
        if let (Some(lo), Some(hi)) = (applied.clone().min(), applied.max()) {
            sqlx::query(
                "UPDATE webhook_journal SET state = 'processed', processed_at = $1 WHERE state = 'requeued' AND id BETWEEN $2 AND $3",
            )
            .bind(now)
            .bind(lo)
            .bind(hi)
            .execute(&self.journal)
            .await?;
        }
        for w in batch.iter().filter(|w| w.error.is_some()) {
            sqlx::query("UPDATE webhook_journal SET state = 'failed', processed_at = $1, error = $2 WHERE id = $3")
                .bind(now)
                .bind(&w.error)
                .bind(w.journal_id)
                .execute(&self.journal)
                .await?;
        }
        Ok(())
    }
}

/// Where the master key of a SQLite database is kept when none is given: beside it,
/// `wagate.db` → `wagate.master.key`. `None` for a database in memory, or a URL of another kind.
pub fn master_key_path(url: &str) -> Option<PathBuf> {
    let main = sqlite_file(url)?;
    let name = main.file_name()?.to_string_lossy().to_string();
    let stem = name.strip_suffix(".db").unwrap_or(&name);
    Some(main.with_file_name(format!("{stem}.master.key")))
}

/// The main database file a `sqlite:` URL names; `None` for an in-memory database or another
/// kind of URL.
pub fn sqlite_file(url: &str) -> Option<PathBuf> {
    if !url.starts_with("sqlite:") {
        return None;
    }
    let opts = SqliteConnectOptions::from_str(url).ok()?;
    let main = opts.get_filename();
    let name = main.file_name()?.to_string_lossy().to_string();
    if name.is_empty() || name.starts_with(':') || url.contains("mode=memory") {
        return None;
    }
    Some(main.to_path_buf())
}

/// `wagate.db` → `wagate.journal.db`; any other name gets `.journal` appended.
fn journal_path(main: &Path) -> PathBuf {
    let name = main
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let journal = match name.strip_suffix(".db") {
        Some(stem) => format!("{stem}.journal.db"),
        None => format!("{name}.journal"),
    };
    main.with_file_name(journal)
}

crate::sql::impl_store!(SqliteStore, "sqlite");
crate::hooks::impl_hook_store!(SqliteStore);

/// The files of a SQLite gateway's databases a backup holds: the main database, then its
/// webhook journal.
pub fn database_files(url: &str) -> Option<(PathBuf, PathBuf)> {
    let main = sqlite_file(url)?;
    let journal = journal_path(&main);
    Some((main, journal))
}

/// Writes a consistent copy of a SQLite gateway's two databases into `dir` (as `wagate.db` and
/// `wagate.journal.db`), while the gateway runs: each with `VACUUM INTO`, which reads one
/// snapshot of its database and writes a compact copy. The journal is copied first: what is
/// processed after its copy is found unprocessed there and applied again on restore (applying is
/// idempotent), so nothing acknowledged before the backup began is missing.
pub async fn backup_databases(url: &str, dir: &Path) -> Result<(PathBuf, PathBuf)> {
    let (main, journal) = database_files(url).ok_or_else(|| {
        crate::StoreError::Invalid(format!(
            "{url} is not a SQLite database file: back up PostgreSQL with pg_dump"
        ))
    })?;
    if !main.exists() {
        return Err(crate::StoreError::Invalid(format!(
            "there is no database at {}",
            main.display()
        )));
    }
    let (to_main, to_journal) = (dir.join("wagate.db"), dir.join("wagate.journal.db"));
    for (from, to) in [(&journal, &to_journal), (&main, &to_main)] {
        if to.exists() {
            return Err(crate::StoreError::Invalid(format!(
                "{} exists: back up into an empty directory",
                to.display()
            )));
        }
        let options = SqliteConnectOptions::new()
            .filename(from)
            .read_only(true)
            .busy_timeout(Duration::from_secs(30));
        let mut conn = sqlx::ConnectOptions::connect(&options).await?;
        sqlx::query("VACUUM INTO $1")
            .bind(to.display().to_string())
            .execute(&mut conn)
            .await?;
        sqlx::Connection::close(conn).await?;
    }
    Ok((to_main, to_journal))
}

/// Puts a backup's databases (from [`backup_databases`]) where `url` says, refusing to overwrite
/// anything there: a database in place may be live.
pub fn restore_databases(dir: &Path, url: &str) -> Result<(PathBuf, PathBuf)> {
    let (main, journal) = database_files(url)
        .ok_or_else(|| crate::StoreError::Invalid(format!("{url} is not a SQLite database file")))?;
    let (from_main, from_journal) = (dir.join("wagate.db"), dir.join("wagate.journal.db"));
    for from in [&from_main, &from_journal] {
        if !from.exists() {
            return Err(crate::StoreError::Invalid(format!(
                "{} is missing: not a backup",
                from.display()
            )));
        }
    }
    for to in [&main, &journal] {
        for file in [to.clone(), PathBuf::from(format!("{}-wal", to.display()))] {
            if file.exists() {
                return Err(crate::StoreError::Invalid(format!(
                    "{} exists and may be a live database: stop that gateway and move it away first (nothing was overwritten)",
                    file.display()
                )));
            }
        }
    }
    if let Some(parent) = main.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| crate::StoreError::Invalid(format!("{}: {e}", parent.display())))?;
    }
    for (from, to) in [(&from_journal, &journal), (&from_main, &main)] {
        std::fs::copy(from, to)
            .map_err(|e| crate::StoreError::Invalid(format!("{} → {}: {e}", from.display(), to.display())))?;
    }
    Ok((main, journal))
}
