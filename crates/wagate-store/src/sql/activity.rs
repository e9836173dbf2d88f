//! Activity over time: messages received and sent, and the statuses Meta reported, per hour;
//! and the recent failures with their errors.

use async_trait::async_trait;

use crate::model::*;
use crate::Result;

/// Activity per hour, for the console's overview.
#[async_trait]
pub trait ActivityStore: Send + Sync {
    /// Per hour since `since_ms` (`hour` = unix ms / 3,600,000): `received` and `sent`
    /// (messages made), and `delivered`, `read`, `failed`, … (statuses recorded), as counted
    /// when they happened (`activity_hours`).
    async fn activity(&self, scope: &AccountScope, since_ms: i64) -> Result<Vec<ActivityCount>>;
    /// The errors of the messages made since `since_ms` that failed, newest first, at most
    /// `limit`.
    async fn recent_failures(&self, scope: &AccountScope, since_ms: i64, limit: i64) -> Result<Vec<String>>;
    /// Counts the hour's activity of up to `limit` events written since the last count
    /// (received, delivered, read, failed; the log's sequence is its commit order, so none is
    /// skipped), moving the count's cursor in the same transaction (of two gateways counting at
    /// once, one does). Returns how many events were read.
    async fn count_new_events(&self, limit: i64) -> Result<usize>;
}

/// How many rows an account's count of one kind in one hour is spread over.
pub(crate) const SHARDS: i64 = 8;

/// The shard a message's count goes to.
pub(crate) fn shard_of(id: &str) -> i64 {
    id.bytes().fold(0i64, |h, b| (h * 31 + i64::from(b)) % SHARDS)
}

/// The smallest message id made at or after `ms` (ids are `msg_` and a UUIDv7 in hex, whose first
/// 12 digits are the unix milliseconds).
pub(crate) fn first_id(ms: i64) -> String {
    format!("msg_{:012x}", ms.max(0))
}

macro_rules! impl_activity_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::ActivityStore for $store {
            async fn activity(
                &self,
                scope: &$crate::AccountScope,
                since_ms: i64,
            ) -> $crate::Result<Vec<$crate::ActivityCount>> {
                let mut qb = sqlx::QueryBuilder::new(
                    "SELECT hour, kind, CAST(SUM(count) AS BIGINT) AS count FROM activity_hours WHERE hour >= ",
                );
                qb.push_bind(since_ms.div_euclid(3_600_000));
                if let Some(a) = &scope.account_id {
                    qb.push(" AND account_id = ").push_bind(a.clone());
                }
                $crate::sql::push_in(&mut qb, "account_id", scope.account_ids.as_deref());
                qb.push(" GROUP BY hour, kind");
                Ok(qb.build_query_as().fetch_all(&self.pool).await?)
            }

            async fn count_new_events(&self, limit: i64) -> $crate::Result<usize> {
                let mut tx = self.writer.begin().await?;
                // The cursor is locked first (PostgreSQL): a second gateway waits, then reads on
                // from where the first stopped.
                let (from,): (i64,) = sqlx::query_as(&format!(
                    "SELECT position FROM counter_cursors WHERE name = 'activity' {}",
                    <$store>::ROW_LOCK
                ))
                .fetch_one(&mut *tx)
                .await?;
                let rows: Vec<(i64, Option<String>, String, i64)> = sqlx::query_as(
                    "SELECT seq, account_id, event_type, created_at FROM events WHERE seq > $1 ORDER BY seq LIMIT $2",
                )
                .bind(from)
                .bind(limit)
                .fetch_all(&mut *tx)
                .await?;
                let Some(to) = rows.last().map(|r| r.0) else {
                    return Ok(0);
                };
                let mut counts: std::collections::BTreeMap<(String, i64, &str), i64> = Default::default();
                for (_, account, event_type, created_at) in &rows {
                    let kind = match event_type.as_str() {
                        "message.received" => "received",
                        "message.delivered" => "delivered",
                        "message.read" | "message.played" => "read",
                        "message.failed" => "failed",
                        _ => continue,
                    };
                    let Some(account) = account else { continue };
                    *counts
                        .entry((account.clone(), created_at.div_euclid(3_600_000), kind))
                        .or_default() += 1;
                }
                let counts: Vec<(&str, i64, &str, i64)> = counts
                    .iter()
                    .map(|((account, hour, kind), n)| (account.as_str(), *hour, *kind, *n))
                    .collect();
                Self::count_activity(&mut tx, &counts, 0).await?;
                let moved =
                    sqlx::query("UPDATE counter_cursors SET position = $1 WHERE name = 'activity' AND position = $2")
                        .bind(to)
                        .bind(from)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                if moved != 1 {
                    // Another gateway counted these first: nothing of ours is kept.
                    tx.rollback().await?;
                    return Ok(0);
                }
                tx.commit().await?;
                Ok(rows.len())
            }

            async fn recent_failures(
                &self,
                scope: &$crate::AccountScope,
                since_ms: i64,
                limit: i64,
            ) -> $crate::Result<Vec<String>> {
                let mut qb = sqlx::QueryBuilder::new(
                    "SELECT error FROM messages WHERE status = 'failed' AND error IS NOT NULL AND id >= ",
                );
                qb.push_bind($crate::sql::activity::first_id(since_ms));
                if let Some(a) = &scope.account_id {
                    qb.push(" AND account_id = ").push_bind(a.clone());
                }
                $crate::sql::push_in(&mut qb, "account_id", scope.account_ids.as_deref());
                qb.push(" ORDER BY id DESC LIMIT ").push_bind(limit);
                let rows: Vec<(String,)> = qb.build_query_as().fetch_all(&self.pool).await?;
                Ok(rows.into_iter().map(|(e,)| e).collect())
            }
        }
    };
}

pub(crate) use impl_activity_store;

/// Counting activity, in the transaction that makes it.
macro_rules! impl_activity_count {
    ($store:ty) => {
        impl $store {
            /// Adds to accounts' counts (account, hour, kind, how many; each key once), in the
            /// transaction that makes them: one statement per 200 counts.
            pub(crate) async fn count_activity(
                tx: &mut sqlx::Transaction<'_, <$store as $crate::sql::Backend>::Db>,
                counts: &[(&str, i64, &str, i64)],
                shard: i64,
            ) -> $crate::Result<()> {
                for chunk in counts.chunks(200) {
                    let mut qb = sqlx::QueryBuilder::new("INSERT INTO activity_hours (account_id, hour, kind, shard, count) ");
                    qb.push_values(chunk, |mut b, (account, hour, kind, n)| {
                        b.push_bind(account.to_string())
                            .push_bind(*hour)
                            .push_bind(kind.to_string())
                            .push_bind(shard)
                            .push_bind(*n);
                    });
                    qb.push(" ON CONFLICT (hour, account_id, kind, shard) DO UPDATE SET count = activity_hours.count + excluded.count");
                    qb.build().execute(&mut **tx).await?;
                }
                Ok(())
            }
        }
    };
}

pub(crate) use impl_activity_count;

#[cfg(test)]
mod tests {
    #[test]
    fn the_first_id_of_a_time_sorts_before_every_id_made_then() {
        let ms = 1_765_000_000_123_i64;
        let made = wagate_core::ids::message_id();
        assert!(super::first_id(ms) < made, "an id made now is after a time in the past");
        assert!(
            super::first_id(crate::testing::now_ms() + 60_000) > made,
            "and before a time to come"
        );
        assert_eq!(super::first_id(ms).len(), made.len() - 20);
    }
}
