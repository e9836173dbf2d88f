//! Accounts, their phone numbers, and API keys.

use async_trait::async_trait;

use crate::model::*;
use crate::Result;

/// Accounts (their pause, their phone numbers) and API keys.
#[async_trait]
pub trait AccountStore: Send + Sync {
    /// Creates the account, or updates the one with that name; adds its phone numbers.
    async fn upsert_account(&self, account: &NewAccount) -> Result<Account>;
    async fn list_accounts(&self) -> Result<Vec<Account>>;
    /// Pauses (with the reason, as JSON) or resumes an account's sending.
    async fn set_account_pause(&self, account_id: &str, pause: Option<&str>) -> Result<bool>;
    async fn list_phone_numbers(&self) -> Result<Vec<PhoneNumber>>;
    async fn create_api_key(&self, key: &NewApiKey) -> Result<ApiKey>;
    async fn api_key_by_hash(&self, key_hash: &str) -> Result<Option<ApiKey>>;
    async fn count_api_keys(&self) -> Result<i64>;
    /// Every key, newest first.
    async fn list_api_keys(&self) -> Result<Vec<ApiKey>>;
    async fn get_api_key(&self, id: &str) -> Result<Option<ApiKey>>;
    /// Revokes a key at once; false when it is unknown or revoked already.
    async fn revoke_api_key(&self, id: &str, now_ms: i64) -> Result<bool>;
    /// Makes a key stop working at `expires_at` (or sooner, if it expires sooner already).
    async fn expire_api_key(&self, id: &str, expires_at: i64) -> Result<bool>;
    /// Records that a key was used at `now_ms`.
    async fn touch_api_key(&self, id: &str, now_ms: i64) -> Result<()>;
}

macro_rules! impl_account_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::AccountStore for $store {
            async fn upsert_account(&self, a: &$crate::NewAccount) -> $crate::Result<$crate::Account> {
                let mut tx = self.writer.begin().await?;
                let now = $crate::sql::now_ms();
                let account: $crate::Account = sqlx::query_as(
                    "INSERT INTO accounts (id, name, waba_id, created_at) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (name) DO UPDATE SET waba_id = excluded.waba_id
                     RETURNING id, name, waba_id, created_at, paused",
                )
                .bind(wagate_core::ids::account_id())
                .bind(&a.name)
                .bind(&a.waba_id)
                .bind(now)
                .fetch_one(&mut *tx)
                .await?;
                for (phone_number_id, display) in &a.phone_numbers {
                    sqlx::query(
                        "INSERT INTO phone_numbers (phone_number_id, account_id, display_phone_number)
                         VALUES ($1, $2, $3)
                         ON CONFLICT (phone_number_id) DO UPDATE SET account_id = excluded.account_id,
                           display_phone_number = COALESCE(excluded.display_phone_number, phone_numbers.display_phone_number)",
                    )
                    .bind(phone_number_id)
                    .bind(&account.id)
                    .bind(display)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(account)
            }

            async fn list_accounts(&self) -> $crate::Result<Vec<$crate::Account>> {
                Ok(sqlx::query_as("SELECT id, name, waba_id, created_at, paused FROM accounts ORDER BY created_at, id")
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn set_account_pause(&self, account_id: &str, pause: Option<&str>) -> $crate::Result<bool> {
                Ok(sqlx::query("UPDATE accounts SET paused = $1 WHERE id = $2")
                    .bind(pause)
                    .bind(account_id)
                    .execute(&self.writer)
                    .await?
                    .rows_affected()
                    == 1)
            }

            async fn list_phone_numbers(&self) -> $crate::Result<Vec<$crate::PhoneNumber>> {
                Ok(sqlx::query_as(
                    "SELECT phone_number_id, account_id, display_phone_number FROM phone_numbers ORDER BY phone_number_id",
                )
                .fetch_all(&self.pool)
                .await?)
            }

            async fn create_api_key(&self, k: &$crate::NewApiKey) -> $crate::Result<$crate::ApiKey> {
                Ok(sqlx::query_as(
                    "INSERT INTO api_keys (id, name, account_id, scopes, key_hash, prefix, created_at, expires_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                     RETURNING id, name, account_id, scopes, key_hash, prefix, created_at, revoked_at, expires_at, last_used_at",
                )
                .bind(wagate_core::ids::api_key_id())
                .bind(&k.name)
                .bind(&k.account_id)
                .bind(k.scopes.join(","))
                .bind(&k.key_hash)
                .bind(&k.prefix)
                .bind($crate::sql::now_ms())
                .bind(k.expires_at)
                .fetch_one(&self.writer)
                .await?)
            }

            async fn api_key_by_hash(&self, key_hash: &str) -> $crate::Result<Option<$crate::ApiKey>> {
                Ok(sqlx::query_as(
                    "SELECT id, name, account_id, scopes, key_hash, prefix, created_at, revoked_at, expires_at, last_used_at
                     FROM api_keys WHERE key_hash = $1",
                )
                .bind(key_hash)
                .fetch_optional(&self.pool)
                .await?)
            }

            async fn count_api_keys(&self) -> $crate::Result<i64> {
                let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM api_keys").fetch_one(&self.pool).await?;
                Ok(n)
            }

            async fn list_api_keys(&self) -> $crate::Result<Vec<$crate::ApiKey>> {
                Ok(sqlx::query_as("SELECT id, name, account_id, scopes, key_hash, prefix, created_at, revoked_at, expires_at, last_used_at FROM api_keys ORDER BY created_at DESC, id DESC")
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn get_api_key(&self, id: &str) -> $crate::Result<Option<$crate::ApiKey>> {
                Ok(sqlx::query_as("SELECT id, name, account_id, scopes, key_hash, prefix, created_at, revoked_at, expires_at, last_used_at FROM api_keys WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn revoke_api_key(&self, id: &str, now: i64) -> $crate::Result<bool> {
                Ok(sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                    .bind(now)
                    .bind(id)
                    .execute(&self.writer)
                    .await?
                    .rows_affected()
                    == 1)
            }

            async fn expire_api_key(&self, id: &str, expires_at: i64) -> $crate::Result<bool> {
                Ok(sqlx::query(
                    "UPDATE api_keys SET expires_at = $1 WHERE id = $2 AND revoked_at IS NULL
                       AND (expires_at IS NULL OR expires_at > $1)",
                )
                .bind(expires_at)
                .bind(id)
                .execute(&self.writer)
                .await?
                .rows_affected()
                    == 1)
            }

            async fn touch_api_key(&self, id: &str, now: i64) -> $crate::Result<()> {
                sqlx::query("UPDATE api_keys SET last_used_at = $1 WHERE id = $2")
                    .bind(now)
                    .bind(id)
                    .execute(&self.writer)
                    .await?;
                Ok(())
            }
        }
    };
}

pub(crate) use impl_account_store;
