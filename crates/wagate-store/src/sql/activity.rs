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
    /// The errors of messages that failed since `since_ms`, newest first, at most `limit`.
    async fn recent_failures(&self, scope: &AccountScope, since_ms: i64, limit: i64) -> Result<Vec<String>>;
}

macro_rules! impl_activity_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::ActivityStore for $store {
            async fn activity(&self, scope: &$crate::AccountScope, since_ms: i64) -> $crate::Result<Vec<$crate::ActivityCount>> {
                let mut qb = sqlx::QueryBuilder::new(
                    "SELECT created_at / 3600000 AS hour, CASE WHEN direction = 'inbound' THEN 'received' ELSE 'sent' END AS kind, COUNT(*) AS count FROM messages WHERE created_at >= ",
                );
                qb.push_bind(since_ms);
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
                    "SELECT error FROM messages WHERE status = 'failed' AND error IS NOT NULL AND updated_at >= ",
                );
                qb.push_bind(since_ms);
                if let Some(a) = &scope.account_id {
                    qb.push(" AND account_id = ").push_bind(a.clone());
                }
                $crate::sql::push_in(&mut qb, "account_id", scope.account_ids.as_deref());
                qb.push(" ORDER BY updated_at DESC LIMIT ").push_bind(limit);
                let rows: Vec<(String,)> = qb.build_query_as().fetch_all(&self.pool).await?;
                Ok(rows.into_iter().map(|(e,)| e).collect())
            }
        }
    };
}

pub(crate) use impl_activity_store;
