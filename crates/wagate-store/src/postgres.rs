//! The PostgreSQL backend: for several gateway processes sharing one database. Queue claims skip
//! rows another process has locked, so no job is taken twice.

use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{Postgres, Transaction};

use crate::{AppliedWebhook, ConnectOptions, JournalCounts, JournalEntry, Result};

pub struct PgStore {
    /// Wake-ups from `LISTEN`, for whoever subscribes.
    wake: tokio::sync::broadcast::Sender<crate::Wake>,
    listening: std::sync::Arc<std::sync::atomic::AtomicBool>,
    pool: PgPool,
    /// The same pool: PostgreSQL handles concurrent writers itself.
    writer: PgPool,
    /// The same pool: the journal is a table of the same database.
    journal: PgPool,
    sealer: wagate_core::seal::Sealer,
}

impl crate::sql::Backend for PgStore {
    type Db = sqlx::Postgres;
}

/// Listens for other gateways' commits (see migration 0010) and passes them on; reconnects after
/// a lost connection (what was notified meanwhile is caught by polling).
async fn listen(
    url: String,
    wake: tokio::sync::broadcast::Sender<crate::Wake>,
    listening: std::sync::Arc<std::sync::atomic::AtomicBool>,
) {
    use std::sync::atomic::Ordering;
    const CHANNELS: [&str; 6] = [
        "wagate_accounts",
        "wagate_journal",
        "wagate_jobs",
        "wagate_events",
        "wagate_media",
        "wagate_sent",
    ];
    loop {
        let connected = async {
            let mut l = sqlx::postgres::PgListener::connect(&url).await?;
            l.listen_all(CHANNELS).await?;
            Ok::<_, sqlx::Error>(l)
        }
        .await;
        let mut listener = match connected {
            Ok(l) => l,
            Err(e) => {
                listening.store(false, Ordering::Relaxed);
                tracing::warn!(error = %e, "cannot LISTEN for other gateways' work; polling meanwhile");
                tokio::time::sleep(Duration::from_secs(2)).await;
                continue;
            }
        };
        listening.store(true, Ordering::Relaxed);
        loop {
            match listener.recv().await {
                Ok(n) => {
                    let w = match n.channel() {
                        "wagate_journal" => crate::Wake::Journal,
                        "wagate_jobs" => crate::Wake::Jobs,
                        "wagate_events" => crate::Wake::Events,
                        "wagate_sent" => crate::Wake::Sent(n.payload().to_string()),
                        "wagate_accounts" => crate::Wake::Accounts,
                        _ => crate::Wake::Media,
                    };
                    // No subscriber yet is fine.
                    let _ = wake.send(w);
                }
                Err(e) => {
                    listening.store(false, Ordering::Relaxed);
                    tracing::warn!(error = %e, "the LISTEN connection failed; reconnecting");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    break;
                }
            }
        }
    }
}

/// How long a gateway holds the journal entries it claimed before another may take them over.
const JOURNAL_LEASE_MS: i64 = 30_000;

impl PgStore {
    const MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");
    const CLAIM_LOCK: &'static str = "FOR UPDATE SKIP LOCKED";
    /// Row locks taken ahead, in key order (see `apply_webhooks`).
    const ROW_LOCK: &'static str = "FOR UPDATE";

    pub async fn connect(url: &str, options: &ConnectOptions) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        let (wake, _) = tokio::sync::broadcast::channel(256);
        let listening = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        tokio::spawn(listen(url.to_string(), wake.clone(), listening.clone()));
        Ok(Self {
            wake,
            listening,
            writer: pool.clone(),
            journal: pool.clone(),
            pool,
            sealer: options.sealer.clone(),
        })
    }

    /// A connection for bookkeeping whose loss only repeats work (hook deliveries added, claimed,
    /// finished): its commits do not wait for the WAL flush (`synchronous_commit = off`). A crash
    /// of the server can lose the last few, which then re-sends those deliveries (at-least-once,
    /// same event id); the database stays consistent.
    async fn relaxed_writer(&self) -> Result<PoolConnection<Postgres>> {
        let mut conn = self.writer.acquire().await?;
        if let Err(e) = sqlx::query("SET synchronous_commit = off").execute(&mut *conn).await {
            conn.close_on_drop();
            return Err(e.into());
        }
        Ok(conn)
    }

    async fn release_relaxed(&self, mut conn: PoolConnection<Postgres>) {
        if sqlx::query("RESET synchronous_commit")
            .execute(&mut *conn)
            .await
            .is_err()
        {
            conn.close_on_drop();
        }
    }

    /// Claims a batch of the oldest pending entries (and any whose claim ran out) for this
    /// gateway: others skip the locked rows and take the next ones, so N gateways split the work.
    /// Claims are exclusive: a batch in flight is never claimed twice, whatever `_in_flight`.
    async fn pending(&self, owner: &str, _in_flight: i64, limit: i64) -> Result<Vec<JournalEntry>> {
        let now = crate::sql::now_ms();
        let mut entries: Vec<JournalEntry> = sqlx::query_as(
            "UPDATE webhook_journal SET state = 'processing', lease_until = $1, lease_owner = $4
             WHERE id IN (SELECT id FROM webhook_journal
               WHERE state = 'pending' OR (state = 'processing' AND lease_until < $2)
               ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED)
             RETURNING id, received_at, account_id, body",
        )
        .bind(now + JOURNAL_LEASE_MS)
        .bind(now)
        .bind(limit)
        .bind(owner)
        .fetch_all(&self.writer)
        .await?;
        entries.sort_by_key(|e| e.id);
        Ok(entries)
    }

    /// Gives the journal batches a gateway claimed back to the others (`filter` on `lease_owner`,
    /// with `owner` as `$1`).
    async fn release_journal_claims(&self, owner: &str, filter: &str) -> Result<u64> {
        Ok(sqlx::query(&format!(
            "UPDATE webhook_journal SET state = 'pending', lease_until = NULL, lease_owner = NULL
             WHERE state = 'processing' AND {filter}"
        ))
        .bind(owner)
        .execute(&self.journal)
        .await?
        .rows_affected())
    }

    async fn unclaim(&self, owner: &str, ids: &[i64]) -> Result<u64> {
        Ok(sqlx::query(
            "UPDATE webhook_journal SET state = 'pending', lease_until = NULL, lease_owner = NULL
             WHERE state = 'processing' AND lease_owner = $1 AND id = ANY($2)",
        )
        .bind(owner)
        .bind(ids)
        .execute(&self.journal)
        .await?
        .rows_affected())
    }

    async fn counts(&self) -> Result<JournalCounts> {
        let rows: Vec<(String, i64)> = sqlx::query_as("SELECT state, COUNT(*) FROM webhook_journal GROUP BY state")
            .fetch_all(&self.pool)
            .await?;
        let mut c = JournalCounts::default();
        for (state, n) in rows {
            match state.as_str() {
                "pending" | "processing" => c.pending += n,
                "processed" => c.processed = n,
                "quarantined" => c.quarantined = n,
                "dead" => c.dead = n,
                _ => c.failed += n,
            }
        }
        Ok(c)
    }

    /// Journal entries in one statement, which commits on its own.
    async fn append_journal(&self, entries: &[crate::NewJournalEntry]) -> Result<Vec<i64>> {
        let rows: Vec<(i64,)> = Self::journal_insert(entries)
            .build_query_as()
            .fetch_all(&self.journal)
            .await?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    /// Marks the rows themselves, in the processing transaction: with several writers, ids can
    /// commit out of order, so a cursor could skip a row that commits late.
    async fn mark_processed(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        batch: &[AppliedWebhook],
        now: i64,
    ) -> Result<()> {
        let ok: Vec<i64> = batch
            .iter()
            .filter(|w| w.error.is_none() && w.journal_id > 0)
            .map(|w| w.journal_id)
            .collect();
        // Several gateways may share the database: if another one processed (some of) these rows
        // first, this transaction rolls back rather than apply them twice. Row locks make the
        // second writer wait here, then see the rows no longer pending.
        let marked = sqlx::query(
            "UPDATE webhook_journal SET state = 'processed', processed_at = $1, lease_until = NULL
             WHERE id = ANY($2) AND state IN ('pending', 'processing')",
        )
        .bind(now)
        .bind(&ok)
        .execute(&mut **tx)
        .await?
        .rows_affected();
        if marked != ok.len() as u64 {
            return Err(crate::StoreError::Conflict(
                "journal entries were processed by another gateway".into(),
            ));
        }
        for w in batch.iter().filter(|w| w.error.is_some()) {
            let marked = sqlx::query(
                "UPDATE webhook_journal SET state = 'failed', processed_at = $1, error = $2, lease_until = NULL
                 WHERE id = $3 AND state IN ('pending', 'processing')",
            )
            .bind(now)
            .bind(&w.error)
            .bind(w.journal_id)
            .execute(&mut **tx)
            .await?
            .rows_affected();
            if marked != 1 && w.journal_id > 0 {
                return Err(crate::StoreError::Conflict(
                    "a journal entry was processed by another gateway".into(),
                ));
            }
        }
        Ok(())
    }

    async fn prune_journal(&self, before: i64, batch: i64) -> Result<u64> {
        Ok(sqlx::query(
            "DELETE FROM webhook_journal WHERE id IN (SELECT id FROM webhook_journal
               WHERE state IN ('processed', 'failed', 'quarantined') AND COALESCE(processed_at, received_at) < $1
               ORDER BY id LIMIT $2)",
        )
        .bind(before)
        .bind(batch)
        .execute(&self.journal)
        .await?
        .rows_affected())
    }

    fn wakeups(&self) -> Option<tokio::sync::broadcast::Receiver<crate::Wake>> {
        Some(self.wake.subscribe())
    }

    fn listening(&self) -> Option<bool> {
        Some(self.listening.load(std::sync::atomic::Ordering::Relaxed))
    }

    async fn oldest_pending(&self) -> Result<Option<i64>> {
        let row: Option<(i64,)> = sqlx::query_as(
            "SELECT received_at FROM webhook_journal WHERE state IN ('pending', 'processing') ORDER BY id LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| r.0))
    }

    async fn set_aside(&self, id: i64, error: &str, now: i64) -> Result<()> {
        sqlx::query(
            "UPDATE webhook_journal SET state = 'dead', processed_at = $1, error = $2, lease_until = NULL
             WHERE id = $3 AND state IN ('pending', 'processing')",
        )
        .bind(now)
        .bind(error)
        .bind(id)
        .execute(&self.journal)
        .await?;
        Ok(())
    }

    /// Queues an entry in state `from` (dead or quarantined) again.
    async fn requeue(&self, id: i64, from: &str, account_id: Option<&str>) -> Result<bool> {
        Ok(
            sqlx::query("UPDATE webhook_journal SET state = 'pending', error = NULL, account_id = COALESCE($3, account_id) WHERE id = $1 AND state = $2")
                .bind(id)
                .bind(from)
                .bind(account_id)
                .execute(&self.journal)
                .await?
                .rows_affected()
                == 1,
        )
    }

    async fn after_apply(&self, _batch: &[AppliedWebhook], _now: i64) -> Result<()> {
        Ok(())
    }
}

crate::sql::impl_store!(PgStore, "postgres");
crate::hooks::impl_hook_store!(PgStore);
