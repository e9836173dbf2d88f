//! Gateways sharing a database: each registers itself and heartbeats; the claims of one that
//! stopped heartbeating (or stopped on purpose) are taken over at once rather than when their
//! leases run out.

use async_trait::async_trait;

use crate::Result;

/// What a takeover gave back.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct TakenOver {
    /// Send jobs claimed but never called: queued again at once.
    pub sends_requeued: u64,
    /// Send jobs whose call had started: in doubt from now, resolved by Meta's status webhook.
    pub sends_in_doubt: u64,
    pub deliveries: u64,
    pub media: u64,
    pub journal: u64,
}

impl TakenOver {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Whose claims a takeover gives back.
#[derive(Debug, Clone, Copy)]
pub enum Claims<'a> {
    /// A gateway's own, when it stops.
    Own(&'a str),
    /// A gateway's that stopped heartbeating before the time given, if it still has not.
    Dead { instance: &'a str, stale_before_ms: i64 },
    /// Everyone's: a gateway alone on its database (SQLite) at start.
    All,
}

#[async_trait]
pub trait ClusterStore: Send + Sync {
    /// Registers (or registers again) a gateway instance.
    async fn register_instance(&self, id: &str, host: &str, pid: i64, now_ms: i64) -> Result<()>;
    /// Records a heartbeat; `false` when the instance's row is gone (it was taken for dead).
    async fn heartbeat_instance(&self, id: &str, now_ms: i64) -> Result<bool>;
    /// Instances whose last heartbeat is older than `before_ms`.
    async fn stale_instances(&self, before_ms: i64) -> Result<Vec<String>>;
    /// Gives back claims (and forgets the instance); `None` when another gateway took that dead
    /// instance's claims first, or it came back.
    async fn take_over_claims(&self, whose: Claims<'_>, now_ms: i64) -> Result<Option<TakenOver>>;
}

macro_rules! impl_cluster_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::ClusterStore for $store {
            async fn register_instance(&self, id: &str, host: &str, pid: i64, now: i64) -> $crate::Result<()> {
                sqlx::query(
                    "INSERT INTO instances (id, host, pid, started_at, heartbeat_at) VALUES ($1, $2, $3, $4, $4)
                     ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at",
                )
                .bind(id)
                .bind(host)
                .bind(pid)
                .bind(now)
                .execute(&self.writer)
                .await?;
                Ok(())
            }

            async fn heartbeat_instance(&self, id: &str, now: i64) -> $crate::Result<bool> {
                Ok(
                    sqlx::query("UPDATE instances SET heartbeat_at = $1 WHERE id = $2")
                        .bind(now)
                        .bind(id)
                        .execute(&self.writer)
                        .await?
                        .rows_affected()
                        == 1,
                )
            }

            async fn stale_instances(&self, before: i64) -> $crate::Result<Vec<String>> {
                let rows: Vec<(String,)> =
                    sqlx::query_as("SELECT id FROM instances WHERE heartbeat_at < $1 ORDER BY id")
                        .bind(before)
                        .fetch_all(&self.pool)
                        .await?;
                Ok(rows.into_iter().map(|r| r.0).collect())
            }

            async fn take_over_claims(
                &self,
                whose: $crate::Claims<'_>,
                now: i64,
            ) -> $crate::Result<Option<$crate::TakenOver>> {
                use $crate::Claims;
                let mut tx = self.writer.begin().await?;
                // Forgetting the instance is the lock: of two gateways taking over the same dead
                // one, the one that deletes its row does the rest.
                let (owner, filter) = match whose {
                    Claims::Own(id) => {
                        sqlx::query("DELETE FROM instances WHERE id = $1")
                            .bind(id)
                            .execute(&mut *tx)
                            .await?;
                        (id, "lease_owner = $1")
                    }
                    Claims::Dead {
                        instance,
                        stale_before_ms,
                    } => {
                        let gone = sqlx::query("DELETE FROM instances WHERE id = $1 AND heartbeat_at < $2")
                            .bind(instance)
                            .bind(stale_before_ms)
                            .execute(&mut *tx)
                            .await?
                            .rows_affected();
                        if gone == 0 {
                            return Ok(None);
                        }
                        (instance, "lease_owner = $1")
                    }
                    Claims::All => {
                        sqlx::query("DELETE FROM instances").execute(&mut *tx).await?;
                        ("", "($1 = $1)")
                    }
                };
                let mut taken = $crate::TakenOver::default();
                // Claimed, never called: nothing reached Meta, so the job goes again at once.
                taken.sends_requeued = sqlx::query(&format!(
                    "UPDATE send_jobs SET state = 'queued', lease_owner = NULL, lease_until = NULL
                     WHERE state = 'leased' AND called_at IS NULL AND {filter}"
                ))
                .bind(owner)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                // Called: Meta may have taken it. In doubt from now (its lease ends now), to be
                // settled by the status webhook that names it.
                taken.sends_in_doubt = sqlx::query(&format!(
                    "UPDATE send_jobs SET lease_until = $2
                     WHERE state = 'leased' AND called_at IS NOT NULL AND lease_until > $2 AND {filter}"
                ))
                .bind(owner)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                taken.deliveries = sqlx::query(&format!(
                    "UPDATE hook_deliveries SET lease_token = NULL, lease_until = NULL, lease_owner = NULL
                     WHERE state = 'pending' AND lease_until IS NOT NULL AND {filter}"
                ))
                .bind(owner)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                taken.media = sqlx::query(&format!(
                    "UPDATE media SET lease_until = NULL, lease_owner = NULL
                     WHERE state = 'pending' AND lease_until IS NOT NULL AND {filter}"
                ))
                .bind(owner)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                tx.commit().await?;
                taken.journal = self.release_journal_claims(owner, filter).await?;
                Ok(Some(taken))
            }
        }
    };
}

pub(crate) use impl_cluster_store;
