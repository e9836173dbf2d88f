//! Accounts, their phone numbers, and API keys.

use async_trait::async_trait;

use crate::model::*;
use crate::Result;

pub(crate) const ACCOUNT_COLUMNS: &str =
    "id, name, waba_id, created_at, paused, managed_by, access_token, app_secret, verify_token, messages_per_second, deleted_at, updated_at, tenant";
pub(crate) const PHONE_COLUMNS: &str =
    "phone_number_id, account_id, display_phone_number, verified_name, quality_rating, throughput, name_status, synced_at, messaging_limit";

/// An account as read, with its secrets opened.
pub(crate) fn open_account(sealer: &wagate_core::seal::Sealer, mut a: Account) -> Result<Account> {
    for (value, context) in [
        (&mut a.access_token, "accounts.access_token"),
        (&mut a.app_secret, "accounts.app_secret"),
        (&mut a.verify_token, "accounts.verify_token"),
    ] {
        if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
            *value = Some(sealer.open(v, context)?);
        }
    }
    Ok(a)
}

pub(crate) fn seal(sealer: &wagate_core::seal::Sealer, plain: &str, column: &str) -> Result<String> {
    Ok(sealer.seal(plain, &format!("accounts.{column}"))?)
}

/// Accounts (their pause, their phone numbers) and API keys.
#[async_trait]
pub trait AccountStore: Send + Sync {
    /// Creates the account of the configuration file, or updates the one with that name (it
    /// becomes the file's); adds its phone numbers.
    async fn upsert_account(&self, account: &NewAccount) -> Result<Account>;
    /// Creates an account through the API, its secrets sealed. A deleted account of the same
    /// WABA comes back (with its history); a name or WABA of another account is a conflict.
    async fn create_account(&self, account: &NewApiAccount, now_ms: i64) -> Result<Account>;
    /// Changes an account; `None` when there is no such (live) account.
    async fn update_account(&self, id: &str, patch: &AccountPatch, now_ms: i64) -> Result<Option<Account>>;
    /// Deletes an account: its history stays unless `purge`, which removes its messages,
    /// statuses, contacts, events, media, templates and keys too. False when there is none.
    async fn delete_account(&self, id: &str, purge: bool, now_ms: i64) -> Result<bool>;
    /// Records what Meta says of an account's numbers (adding those new to it).
    async fn sync_phone_numbers(&self, account_id: &str, numbers: &[PhoneNumberInfo], now_ms: i64) -> Result<()>;
    async fn account_phone_numbers(&self, account_id: &str) -> Result<Vec<PhoneNumber>>;
    async fn create_connect_state(&self, state: &ConnectState) -> Result<()>;
    /// Whether any live account was made through the API (or "Connect WhatsApp").
    async fn has_api_accounts(&self) -> Result<bool>;
    /// Takes a state for its callback: marks it used the first time.
    async fn take_connect_state(&self, id: &str, now_ms: i64) -> Result<TakenState>;
    async fn list_accounts(&self) -> Result<Vec<Account>>;
    /// Pauses (with the reason, as JSON) or resumes an account's sending.
    async fn set_account_pause(&self, account_id: &str, pause: Option<&str>) -> Result<bool>;
    /// The numbers of every live account.
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
                let sql = format!(
                    "INSERT INTO accounts (id, name, waba_id, created_at, managed_by) VALUES ($1, $2, $3, $4, 'config')
                     ON CONFLICT (name) DO UPDATE SET waba_id = excluded.waba_id, managed_by = 'config',
                       access_token = NULL, app_secret = NULL, verify_token = NULL, deleted_at = NULL
                     RETURNING {}",
                    $crate::sql::accounts::ACCOUNT_COLUMNS
                );
                let account: $crate::Account = sqlx::query_as(&sql)
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
                let sql = format!(
                    "SELECT {} FROM accounts WHERE deleted_at IS NULL ORDER BY created_at, id",
                    $crate::sql::accounts::ACCOUNT_COLUMNS
                );
                let rows: Vec<$crate::Account> = sqlx::query_as(&sql).fetch_all(&self.pool).await?;
                rows.into_iter().map(|a| $crate::sql::accounts::open_account(&self.sealer, a)).collect()
            }

            async fn create_account(&self, a: &$crate::NewApiAccount, now: i64) -> $crate::Result<$crate::Account> {
                use $crate::sql::accounts::{seal, ACCOUNT_COLUMNS};
                let mut tx = self.writer.begin().await?;
                let taken: Vec<(String, String, String, Option<i64>)> = sqlx::query_as(
                    "SELECT id, name, waba_id, deleted_at FROM accounts WHERE name = $1 OR waba_id = $2",
                )
                .bind(&a.name)
                .bind(&a.waba_id)
                .fetch_all(&mut *tx)
                .await?;
                if let Some((_, name, _, _)) = taken.iter().find(|t| t.3.is_none() && t.1 == a.name) {
                    return Err($crate::StoreError::Conflict(format!("an account is named `{name}` already")));
                }
                if let Some((_, name, _, _)) = taken.iter().find(|t| t.3.is_none() && t.2 == a.waba_id) {
                    return Err($crate::StoreError::Conflict(format!("the account `{name}` has WABA {} already", a.waba_id)));
                }
                // A deleted account of this WABA comes back; a deleted one of this name only
                // gives its name up.
                let revived = taken.iter().find(|t| t.2 == a.waba_id).map(|t| t.0.clone());
                for (id, name, _, _) in taken.iter().filter(|t| t.1 == a.name && Some(&t.0) != revived.as_ref()) {
                    sqlx::query("UPDATE accounts SET name = $1 WHERE id = $2")
                        .bind(format!("{name}~deleted~{id}"))
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
                let sql = match &revived {
                    Some(_) => format!(
                        "UPDATE accounts SET name = $2, managed_by = 'api', access_token = $5, app_secret = $6, verify_token = $7,
                           messages_per_second = $8, deleted_at = NULL, paused = NULL, updated_at = $4, tenant = $9
                         WHERE id = $1 AND waba_id = $3 RETURNING {ACCOUNT_COLUMNS}"
                    ),
                    None => format!(
                        "INSERT INTO accounts (id, name, waba_id, created_at, managed_by, access_token, app_secret, verify_token, messages_per_second, updated_at, tenant)
                         VALUES ($1, $2, $3, $4, 'api', $5, $6, $7, $8, $4, $9) RETURNING {ACCOUNT_COLUMNS}"
                    ),
                };
                let id = revived.unwrap_or_else(wagate_core::ids::account_id);
                let account: $crate::Account = sqlx::query_as(&sql)
                    .bind(&id)
                    .bind(&a.name)
                    .bind(&a.waba_id)
                    .bind(now)
                    .bind(seal(&self.sealer, &a.access_token, "access_token")?)
                    .bind(seal(&self.sealer, &a.app_secret, "app_secret")?)
                    .bind(seal(&self.sealer, &a.verify_token, "verify_token")?)
                    .bind(a.messages_per_second)
                    .bind(&a.tenant)
                    .fetch_one(&mut *tx)
                    .await?;
                Self::write_phone_numbers(&mut tx, &id, &a.phone_numbers, now).await?;
                tx.commit().await?;
                $crate::sql::accounts::open_account(&self.sealer, account)
            }

            async fn update_account(&self, id: &str, p: &$crate::AccountPatch, now: i64) -> $crate::Result<Option<$crate::Account>> {
                use $crate::sql::accounts::{seal, ACCOUNT_COLUMNS};
                let sealed = |v: &Option<String>, column: &str| v.as_deref().map(|v| seal(&self.sealer, v, column)).transpose();
                let sql = format!(
                    "UPDATE accounts SET name = COALESCE($1, name), access_token = COALESCE($2, access_token),
                       app_secret = COALESCE($3, app_secret), verify_token = COALESCE($4, verify_token),
                       messages_per_second = CASE WHEN $5 THEN $6 ELSE messages_per_second END, updated_at = $7
                     WHERE id = $8 AND deleted_at IS NULL RETURNING {ACCOUNT_COLUMNS}"
                );
                let row: Option<$crate::Account> = sqlx::query_as(&sql)
                    .bind(&p.name)
                    .bind(sealed(&p.access_token, "access_token")?)
                    .bind(sealed(&p.app_secret, "app_secret")?)
                    .bind(sealed(&p.verify_token, "verify_token")?)
                    .bind(p.messages_per_second.is_some())
                    .bind(p.messages_per_second.flatten())
                    .bind(now)
                    .bind(id)
                    .fetch_optional(&self.writer)
                    .await
                    .map_err(|e| match &e {
                        sqlx::Error::Database(d) if d.is_unique_violation() => {
                            $crate::StoreError::Conflict("another account has that name".into())
                        }
                        _ => e.into(),
                    })?;
                row.map(|a| $crate::sql::accounts::open_account(&self.sealer, a)).transpose()
            }

            async fn delete_account(&self, id: &str, purge: bool, now: i64) -> $crate::Result<bool> {
                let mut tx = self.writer.begin().await?;
                let n = sqlx::query(
                    "UPDATE accounts SET deleted_at = $1, access_token = NULL, app_secret = NULL, verify_token = NULL
                     WHERE id = $2 AND deleted_at IS NULL",
                )
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if n == 0 {
                    return Ok(false);
                }
                // Keys of the account stop working with it.
                sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE account_id = $2 AND revoked_at IS NULL")
                    .bind(now)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                if purge {
                    for sql in [
                        "DELETE FROM message_statuses WHERE message_id IN (SELECT id FROM messages WHERE account_id = $1)",
                        "DELETE FROM hook_attempts WHERE event_id IN (SELECT id FROM events WHERE account_id = $1)",
                        "DELETE FROM hook_deliveries WHERE event_id IN (SELECT id FROM events WHERE account_id = $1)",
                        "DELETE FROM send_jobs WHERE account_id = $1",
                        "DELETE FROM idempotency_keys WHERE account_id = $1",
                        "DELETE FROM media WHERE account_id = $1",
                        "DELETE FROM messages WHERE account_id = $1",
                        "DELETE FROM contacts WHERE account_id = $1",
                        "DELETE FROM activity_hours WHERE account_id = $1",
                        "DELETE FROM events WHERE account_id = $1",
                        "DELETE FROM templates WHERE account_id = $1",
                        "DELETE FROM template_syncs WHERE account_id = $1",
                        "DELETE FROM api_keys WHERE account_id = $1",
                        "DELETE FROM phone_numbers WHERE account_id = $1",
                        "DELETE FROM accounts WHERE id = $1",
                    ] {
                        sqlx::query(sql).bind(id).execute(&mut *tx).await?;
                    }
                }
                tx.commit().await?;
                Ok(true)
            }

            async fn sync_phone_numbers(&self, account_id: &str, numbers: &[$crate::PhoneNumberInfo], now: i64) -> $crate::Result<()> {
                let mut tx = self.writer.begin().await?;
                Self::write_phone_numbers(&mut tx, account_id, numbers, now).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn has_api_accounts(&self) -> $crate::Result<bool> {
                let found: Option<(String,)> =
                    sqlx::query_as("SELECT id FROM accounts WHERE managed_by = 'api' AND deleted_at IS NULL LIMIT 1")
                        .fetch_optional(&self.pool)
                        .await?;
                Ok(found.is_some())
            }

            async fn create_connect_state(&self, s: &$crate::ConnectState) -> $crate::Result<()> {
                sqlx::query(
                    "INSERT INTO connect_states (id, tenant, redirect, pin, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&s.id)
                .bind(&s.tenant)
                .bind(&s.redirect)
                .bind(&s.pin)
                .bind(s.created_at)
                .bind(s.expires_at)
                .execute(&self.writer)
                .await?;
                Ok(())
            }

            async fn take_connect_state(&self, id: &str, now: i64) -> $crate::Result<$crate::TakenState> {
                const COLUMNS: &str = "id, tenant, redirect, pin, created_at, expires_at, used_at";
                let taken: Option<$crate::ConnectState> = sqlx::query_as(&format!(
                    "UPDATE connect_states SET used_at = $1 WHERE id = $2 AND used_at IS NULL RETURNING {COLUMNS}"
                ))
                .bind(now)
                .bind(id)
                .fetch_optional(&self.writer)
                .await?;
                if let Some(s) = taken {
                    return Ok(if s.expires_at <= now { $crate::TakenState::Expired(s) } else { $crate::TakenState::Fresh(s) });
                }
                let before: Option<$crate::ConnectState> = sqlx::query_as(&format!("SELECT {COLUMNS} FROM connect_states WHERE id = $1"))
                    .bind(id)
                    .fetch_optional(&self.writer)
                    .await?;
                Ok(before.map_or($crate::TakenState::Unknown, $crate::TakenState::Used))
            }

            async fn account_phone_numbers(&self, account_id: &str) -> $crate::Result<Vec<$crate::PhoneNumber>> {
                let sql = format!(
                    "SELECT {} FROM phone_numbers WHERE account_id = $1 ORDER BY phone_number_id",
                    $crate::sql::accounts::PHONE_COLUMNS
                );
                Ok(sqlx::query_as(&sql).bind(account_id).fetch_all(&self.pool).await?)
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
                let sql = format!(
                    "SELECT {} FROM phone_numbers WHERE account_id IN (SELECT id FROM accounts WHERE deleted_at IS NULL)
                     ORDER BY phone_number_id",
                    $crate::sql::accounts::PHONE_COLUMNS
                );
                Ok(sqlx::query_as(&sql).fetch_all(&self.pool).await?)
            }

            async fn create_api_key(&self, k: &$crate::NewApiKey) -> $crate::Result<$crate::ApiKey> {
                Ok(sqlx::query_as(
                    "INSERT INTO api_keys (id, name, account_id, scopes, key_hash, prefix, created_at, expires_at, tenant)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                     RETURNING id, name, account_id, scopes, key_hash, prefix, created_at, revoked_at, expires_at, last_used_at, tenant",
                )
                .bind(wagate_core::ids::api_key_id())
                .bind(&k.name)
                .bind(&k.account_id)
                .bind(k.scopes.join(","))
                .bind(&k.key_hash)
                .bind(&k.prefix)
                .bind($crate::sql::now_ms())
                .bind(k.expires_at)
                .bind(&k.tenant)
                .fetch_one(&self.writer)
                .await?)
            }

            async fn api_key_by_hash(&self, key_hash: &str) -> $crate::Result<Option<$crate::ApiKey>> {
                Ok(sqlx::query_as(
                    "SELECT id, name, account_id, scopes, key_hash, prefix, created_at, revoked_at, expires_at, last_used_at, tenant
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
                Ok(sqlx::query_as("SELECT id, name, account_id, scopes, key_hash, prefix, created_at, revoked_at, expires_at, last_used_at, tenant FROM api_keys ORDER BY created_at DESC, id DESC")
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn get_api_key(&self, id: &str) -> $crate::Result<Option<$crate::ApiKey>> {
                Ok(sqlx::query_as("SELECT id, name, account_id, scopes, key_hash, prefix, created_at, revoked_at, expires_at, last_used_at, tenant FROM api_keys WHERE id = $1")
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

        impl $store {
            /// Adds or updates numbers with what Meta says of them; a number moves to this
            /// account if another (deleted) one had it.
            async fn write_phone_numbers(
                tx: &mut sqlx::Transaction<'_, <$store as $crate::sql::Backend>::Db>,
                account_id: &str,
                numbers: &[$crate::PhoneNumberInfo],
                now: i64,
            ) -> $crate::Result<()> {
                for n in numbers {
                    sqlx::query(
                        "INSERT INTO phone_numbers (phone_number_id, account_id, display_phone_number, verified_name, quality_rating, throughput, name_status, synced_at, messaging_limit)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                         ON CONFLICT (phone_number_id) DO UPDATE SET account_id = excluded.account_id,
                           display_phone_number = COALESCE(excluded.display_phone_number, phone_numbers.display_phone_number),
                           verified_name = excluded.verified_name, quality_rating = excluded.quality_rating,
                           throughput = excluded.throughput, name_status = excluded.name_status, synced_at = excluded.synced_at,
                           messaging_limit = excluded.messaging_limit",
                    )
                    .bind(&n.phone_number_id)
                    .bind(account_id)
                    .bind(&n.display_phone_number)
                    .bind(&n.verified_name)
                    .bind(&n.quality_rating)
                    .bind(&n.throughput)
                    .bind(&n.name_status)
                    .bind(now)
                    .bind(&n.messaging_limit)
                    .execute(&mut **tx)
                    .await?;
                }
                Ok(())
            }
        }
    };
}

pub(crate) use impl_account_store;
