//! Usage and costs: what Meta charges, counted per day as statuses are recorded; rate cards;
//! monthly budgets.

use async_trait::async_trait;

use crate::model::*;
use crate::Result;

/// Usage counts, rate cards and budgets.
#[async_trait]
pub trait UsageStore: Send + Sync {
    /// The counts of days `from_day..=to_day` (days since the unix epoch), summed over their
    /// shards, of the accounts in `scope`.
    async fn usage(&self, scope: &AccountScope, from_day: i64, to_day: i64) -> Result<Vec<UsageCount>>;
    /// Loads a card (replacing one of the same currency and day).
    async fn put_rate_card(&self, currency: &str, effective_day: i64, rates: &str, now: i64) -> Result<RateCard>;
    /// Every card, the oldest first.
    async fn rate_cards(&self) -> Result<Vec<RateCard>>;
    async fn put_budget(&self, budget: &Budget) -> Result<()>;
    async fn budgets(&self) -> Result<Vec<Budget>>;
    /// Records that `mark` (`2026-11:80`) was alerted for `scope`; false when it already was (by
    /// this gateway or another).
    async fn mark_budget_alert(&self, scope: &str, mark: &str) -> Result<bool>;
    /// Replaces what Meta said of an account's days `from_day..=to_day`.
    async fn put_meta_usage(&self, account_id: &str, from_day: i64, to_day: i64, rows: &[MetaUsage]) -> Result<()>;
    /// What Meta said of the days `from_day..=to_day`, of the accounts in `scope`.
    async fn meta_usage(&self, scope: &AccountScope, from_day: i64, to_day: i64) -> Result<Vec<MetaUsage>>;
}

macro_rules! impl_usage_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::UsageStore for $store {
            async fn usage(&self, scope: &$crate::AccountScope, from_day: i64, to_day: i64) -> $crate::Result<Vec<$crate::UsageCount>> {
                let mut qb = sqlx::QueryBuilder::new(
                    "SELECT day, account_id, phone_number_id, category, market, pricing_type, billable, CAST(SUM(messages) AS BIGINT) AS messages
                     FROM usage_daily WHERE day >= ",
                );
                qb.push_bind(from_day).push(" AND day <= ").push_bind(to_day);
                if let Some(a) = &scope.account_id {
                    qb.push(" AND account_id = ").push_bind(a.clone());
                }
                $crate::sql::push_in(&mut qb, "account_id", scope.account_ids.as_deref());
                qb.push(" GROUP BY day, account_id, phone_number_id, category, market, pricing_type, billable ORDER BY day");
                Ok(qb.build_query_as().fetch_all(&self.pool).await?)
            }

            async fn put_rate_card(&self, currency: &str, effective_day: i64, rates: &str, now: i64) -> $crate::Result<$crate::RateCard> {
                Ok(sqlx::query_as(
                    "INSERT INTO rate_cards (currency, effective, rates, created_at) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (currency, effective) DO UPDATE SET rates = excluded.rates, created_at = excluded.created_at
                     RETURNING id, currency, effective, rates, created_at",
                )
                .bind(currency)
                .bind(effective_day)
                .bind(rates)
                .bind(now)
                .fetch_one(&self.writer)
                .await?)
            }

            async fn rate_cards(&self) -> $crate::Result<Vec<$crate::RateCard>> {
                Ok(sqlx::query_as("SELECT id, currency, effective, rates, created_at FROM rate_cards ORDER BY effective, id")
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn put_budget(&self, b: &$crate::Budget) -> $crate::Result<()> {
                sqlx::query(
                    "INSERT INTO budgets (scope, amount, currency, hard_stop, alerted, updated_at) VALUES ($1, $2, $3, $4, '', $5)
                     ON CONFLICT (scope) DO UPDATE SET amount = excluded.amount, currency = excluded.currency,
                       hard_stop = excluded.hard_stop, updated_at = excluded.updated_at",
                )
                .bind(&b.scope)
                .bind(&b.amount)
                .bind(&b.currency)
                .bind(b.hard_stop)
                .bind(b.updated_at)
                .execute(&self.writer)
                .await?;
                Ok(())
            }

            async fn budgets(&self) -> $crate::Result<Vec<$crate::Budget>> {
                Ok(sqlx::query_as("SELECT scope, amount, currency, hard_stop, alerted, updated_at FROM budgets ORDER BY scope")
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn put_meta_usage(&self, account_id: &str, from_day: i64, to_day: i64, rows: &[$crate::MetaUsage]) -> $crate::Result<()> {
                let mut tx = self.writer.begin().await?;
                sqlx::query("DELETE FROM meta_usage_daily WHERE account_id = $1 AND day >= $2 AND day <= $3")
                    .bind(account_id)
                    .bind(from_day)
                    .bind(to_day)
                    .execute(&mut *tx)
                    .await?;
                for r in rows {
                    sqlx::query(
                        "INSERT INTO meta_usage_daily (day, account_id, market, category, pricing_type, volume, cost, currency, fetched_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                         ON CONFLICT (day, account_id, market, category, pricing_type)
                         DO UPDATE SET volume = excluded.volume, cost = excluded.cost, currency = excluded.currency, fetched_at = excluded.fetched_at",
                    )
                    .bind(r.day)
                    .bind(account_id)
                    .bind(&r.market)
                    .bind(&r.category)
                    .bind(&r.pricing_type)
                    .bind(r.volume)
                    .bind(&r.cost)
                    .bind(&r.currency)
                    .bind(r.fetched_at)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn meta_usage(&self, scope: &$crate::AccountScope, from_day: i64, to_day: i64) -> $crate::Result<Vec<$crate::MetaUsage>> {
                let mut qb = sqlx::QueryBuilder::new(
                    "SELECT day, account_id, market, category, pricing_type, volume, cost, currency, fetched_at FROM meta_usage_daily WHERE day >= ",
                );
                qb.push_bind(from_day).push(" AND day <= ").push_bind(to_day);
                if let Some(a) = &scope.account_id {
                    qb.push(" AND account_id = ").push_bind(a.clone());
                }
                $crate::sql::push_in(&mut qb, "account_id", scope.account_ids.as_deref());
                qb.push(" ORDER BY day, account_id");
                Ok(qb.build_query_as().fetch_all(&self.pool).await?)
            }

            async fn mark_budget_alert(&self, scope: &str, mark: &str) -> $crate::Result<bool> {
                // One statement: of two gateways marking at once, one changes the row.
                let done = sqlx::query(
                    "UPDATE budgets SET alerted = alerted || $1 || ',' WHERE scope = $2 AND alerted NOT LIKE $3",
                )
                .bind(mark)
                .bind(scope)
                .bind(format!("%{mark},%"))
                .execute(&self.writer)
                .await?
                .rows_affected();
                Ok(done == 1)
            }
        }

        impl $store {
            /// Adds to days' usage counts (each key once), in the transaction that records the
            /// statuses: one statement per 200 counts.
            pub(crate) async fn count_usage(
                tx: &mut sqlx::Transaction<'_, <$store as $crate::sql::Backend>::Db>,
                counts: &[($crate::sql::usage::UsageKey, i64)],
                shard: i64,
            ) -> $crate::Result<()> {
                for chunk in counts.chunks(200) {
                    let mut qb = sqlx::QueryBuilder::new(
                        "INSERT INTO usage_daily (day, account_id, phone_number_id, category, market, pricing_type, billable, shard, messages) ",
                    );
                    qb.push_values(chunk, |mut b, (key, n)| {
                        b.push_bind(key.day)
                            .push_bind(key.account_id.clone())
                            .push_bind(key.phone_number_id.clone())
                            .push_bind(key.usage.category.clone())
                            .push_bind(key.usage.market.clone())
                            .push_bind(key.usage.pricing_type.clone())
                            .push_bind(key.usage.billable)
                            .push_bind(shard)
                            .push_bind(*n);
                    });
                    qb.push(
                        " ON CONFLICT (day, account_id, phone_number_id, category, market, pricing_type, billable, shard)
                         DO UPDATE SET messages = usage_daily.messages + excluded.messages",
                    );
                    qb.build().execute(&mut **tx).await?;
                }
                Ok(())
            }
        }
    };
}

pub(crate) use impl_usage_store;

/// What one count is of.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct UsageKey {
    pub day: i64,
    pub account_id: String,
    pub phone_number_id: String,
    pub usage: wagate_core::pricing::Usage,
}
