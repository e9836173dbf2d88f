//! Activity over time: messages received and sent, and the statuses Meta reported, per hour;
//! and the recent failures with their errors.

use async_trait::async_trait;

use crate::model::*;
use crate::Result;

/// Activity per hour, for the console's overview.
#[async_trait]
pub trait ActivityStore: Send + Sync {
    /// Per hour since `since_ms` (`hour` = unix ms / 3,600,000): `received` and `sent`
    /// (messages made), and `delivered`, `read`, `failed`, … (statuses reported), each counted.
    async fn activity(&self, scope: &AccountScope, since_ms: i64) -> Result<Vec<ActivityCount>>;
    /// The errors of the messages made since `since_ms` that failed, newest first, at most
    /// `limit`.
    async fn recent_failures(&self, scope: &AccountScope, since_ms: i64, limit: i64) -> Result<Vec<String>>;
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
            async fn activity(&self, scope: &$crate::AccountScope, since_ms: i64) -> $crate::Result<Vec<$crate::ActivityCount>> {
                let mut qb = sqlx::QueryBuilder::new(
                    "SELECT created_at / 3600000 AS hour, CASE WHEN direction = 'inbound' THEN 'received' ELSE 'sent' END AS kind, COUNT(*) AS count FROM messages WHERE id >= ",
                );
                // Message ids begin with their time (UUIDv7): the primary key finds the day.
                qb.push_bind($crate::sql::activity::first_id(since_ms));
                if let Some(a) = &scope.account_id {
                    qb.push(" AND account_id = ").push_bind(a.clone());
                }
                $crate::sql::push_in(&mut qb, "account_id", scope.account_ids.as_deref());
                qb.push(" GROUP BY 1, 2");
                let mut rows: Vec<$crate::ActivityCount> = qb.build_query_as().fetch_all(&self.pool).await?;
                let mut qb = sqlx::QueryBuilder::new(
                    "SELECT s.recorded_at / 3600000 AS hour, s.status AS kind, COUNT(*) AS count FROM message_statuses s JOIN messages m ON m.id = s.message_id WHERE s.recorded_at >= ",
                );
                qb.push_bind(since_ms);
                if let Some(a) = &scope.account_id {
                    qb.push(" AND m.account_id = ").push_bind(a.clone());
                }
                $crate::sql::push_in(&mut qb, "m.account_id", scope.account_ids.as_deref());
                qb.push(" GROUP BY 1, 2");
                rows.extend(qb.build_query_as::<$crate::ActivityCount>().fetch_all(&self.pool).await?);
                Ok(rows)
            }

            async fn recent_failures(&self, scope: &$crate::AccountScope, since_ms: i64, limit: i64) -> $crate::Result<Vec<String>> {
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
