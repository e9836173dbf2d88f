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

/// Where a session's identity-provider token is sealed (an API key's hash is kept as it is).
const SESSION_TOKEN: &str = "console_sessions.key_hash";
const JWT: &str = "jwt:";

/// A session's credential as it is kept: an identity provider's token (`jwt:…`) sealed under the
/// master key like the other secrets; an API key's hash as it is.
pub(crate) fn seal_credential(sealer: &wagate_core::seal::Sealer, credential: &str) -> crate::Result<String> {
    match credential.strip_prefix(JWT) {
        Some(token) => Ok(format!("{JWT}{}", sealer.seal(token, SESSION_TOKEN)?)),
        None => Ok(credential.to_string()),
    }
}

/// The credential a session keeps, opened; `None` when it no longer opens.
pub(crate) fn open_credential(sealer: &wagate_core::seal::Sealer, kept: &str) -> Option<String> {
    match kept.strip_prefix(JWT) {
        Some(sealed) => sealer.open(sealed, SESSION_TOKEN).ok().map(|t| format!("{JWT}{t}")),
        None => Some(kept.to_string()),
    }
}

macro_rules! impl_session_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::SessionStore for $store {
            async fn create_session(&self, s: &$crate::ConsoleSession) -> $crate::Result<()> {
                let credential = $crate::sql::sessions::seal_credential(&self.sealer, &s.key_hash)?;
                sqlx::query("DELETE FROM console_sessions WHERE expires_at <= $1")
                    .bind(s.created_at)
                    .execute(&self.writer)
                    .await?;
                sqlx::query(
                    "INSERT INTO console_sessions (id_hash, key_hash, csrf, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&s.id_hash)
                .bind(&credential)
                .bind(&s.csrf)
                .bind(s.created_at)
                .bind(s.expires_at)
                .execute(&self.writer)
                .await?;
                Ok(())
            }

            async fn get_session(&self, id_hash: &str, now: i64) -> $crate::Result<Option<$crate::ConsoleSession>> {
                let found: Option<$crate::ConsoleSession> = sqlx::query_as(
                    "SELECT id_hash, key_hash, csrf, created_at, expires_at FROM console_sessions WHERE id_hash = $1 AND expires_at > $2",
                )
                .bind(id_hash)
                .bind(now)
                .fetch_optional(&self.pool)
                .await?;
                // A token sealed under a key no longer given ends its session (sign in again).
                Ok(found.and_then(|mut s| {
                    s.key_hash = $crate::sql::sessions::open_credential(&self.sealer, &s.key_hash)?;
                    Some(s)
                }))
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

#[cfg(test)]
mod tests {
    use wagate_core::seal::{MasterKey, Sealer};

    fn sealer(key: &str) -> Sealer {
        Sealer::new(Some(MasterKey::parse(key).expect("key")), Vec::new())
    }

    #[test]
    fn a_token_is_kept_sealed_and_a_key_hash_as_it_is() {
        let s = sealer("dGVzdC1tYXN0ZXIta2V5LW9mLTMyLWJ5dGVzLWxvbmc=");
        let kept = super::seal_credential(&s, "jwt:eyJhbGciOiJFUzI1NiJ9.payload.sig").expect("sealed");
        assert!(kept.starts_with("jwt:") && !kept.contains("eyJ"), "{kept}");
        assert_eq!(
            super::open_credential(&s, &kept).as_deref(),
            Some("jwt:eyJhbGciOiJFUzI1NiJ9.payload.sig")
        );
        assert_eq!(super::seal_credential(&s, "abc123").expect("as it is"), "abc123");
        // Sealed under a key no longer given: the session ends (None), it does not fail.
        let other = sealer("b3RoZXIta2V5LW9mLXRoaXJ0eS10d28tYnl0ZXMtLS0=");
        assert_eq!(super::open_credential(&other, &kept), None);
    }
}
