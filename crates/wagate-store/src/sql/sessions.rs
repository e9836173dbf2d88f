//! Console sessions: made at sign-in, read on each page, ended at sign-out or expiry.

use async_trait::async_trait;

use crate::model::*;
use crate::Result;

/// Console sessions, by the SHA-256 of their id.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Keeps a session (and drops the expired ones).
    async fn create_session(&self, session: &ConsoleSession) -> Result<()>;
    /// The session, unless it has expired at `now`.
    async fn get_session(&self, id_hash: &str, now: i64) -> Result<Option<ConsoleSession>>;
    async fn delete_session(&self, id_hash: &str) -> Result<()>;
}

macro_rules! impl_session_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::SessionStore for $store {
            async fn create_session(&self, s: &$crate::ConsoleSession) -> $crate::Result<()> {
                sqlx::query("DELETE FROM console_sessions WHERE expires_at <= $1")
                    .bind(s.created_at)
                    .execute(&self.writer)
                    .await?;
                sqlx::query(
                    "INSERT INTO console_sessions (id_hash, key_hash, csrf, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&s.id_hash)
                .bind(&s.key_hash)
                .bind(&s.csrf)
                .bind(s.created_at)
                .bind(s.expires_at)
                .execute(&self.writer)
                .await?;
                Ok(())
            }

            async fn get_session(&self, id_hash: &str, now: i64) -> $crate::Result<Option<$crate::ConsoleSession>> {
                Ok(sqlx::query_as(
                    "SELECT id_hash, key_hash, csrf, created_at, expires_at FROM console_sessions WHERE id_hash = $1 AND expires_at > $2",
                )
                .bind(id_hash)
                .bind(now)
                .fetch_optional(&self.pool)
                .await?)
            }

            async fn delete_session(&self, id_hash: &str) -> $crate::Result<()> {
                sqlx::query("DELETE FROM console_sessions WHERE id_hash = $1")
                    .bind(id_hash)
                    .execute(&self.writer)
                    .await?;
                Ok(())
            }
        }
    };
}

pub(crate) use impl_session_store;
