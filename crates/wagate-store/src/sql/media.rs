//! Inbound media: the download queue, and the bytes when kept in the database.

use async_trait::async_trait;

use crate::model::*;
use crate::Result;

/// Inbound media: downloads to do, and the bytes when `media.store = "database"`.
#[async_trait]
pub trait MediaStore: Send + Sync {
    /// Leases up to `limit` media due for a download attempt.
    async fn claim_media(&self, owner: &str, limit: i64, lease_ms: i64, now_ms: i64) -> Result<Vec<Media>>;
    async fn finish_media(&self, id: &str, outcome: &MediaOutcome, now_ms: i64) -> Result<()>;
    async fn get_media(&self, id: &MediaId) -> Result<Option<Media>>;
    /// Stores media bytes under their content hash (kept if already there).
    async fn put_media_blob(&self, content_hash: &str, bytes: &[u8], now_ms: i64) -> Result<()>;
    async fn get_media_blob(&self, content_hash: &str) -> Result<Option<Vec<u8>>>;
    async fn delete_media_blob(&self, content_hash: &str) -> Result<()>;
    /// Inbound media by Meta's media id (the id in Meta's webhook), or a file uploaded through
    /// the gateway by the id Meta gave it.
    async fn media_by_meta_id(&self, meta_media_id: &str) -> Result<Option<Media>>;
    /// Records a file uploaded through the gateway (stored, with no message).
    async fn insert_media(&self, media: &Media) -> Result<()>;
    /// Forgets a media row (its bytes stay while another row names their hash).
    async fn delete_media(&self, id: &MediaId) -> Result<bool>;
}

macro_rules! impl_media_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::MediaStore for $store {
            async fn claim_media(&self, owner: &str, limit: i64, lease_ms: i64, now: i64) -> $crate::Result<Vec<$crate::Media>> {
                let sql = format!(
                    "UPDATE media SET lease_until = $1, lease_owner = $4, attempts = attempts + 1
                     WHERE id IN (SELECT id FROM media WHERE state = 'pending' AND next_attempt_at <= $2
                       AND (lease_until IS NULL OR lease_until < $2) ORDER BY next_attempt_at LIMIT $3 {})
                     RETURNING {}",
                    Self::CLAIM_LOCK,
                    $crate::sql::MEDIA_COLUMNS
                );
                Ok(sqlx::query_as(&sql).bind(now + lease_ms).bind(now).bind(limit).bind(owner).fetch_all(&self.writer).await?)
            }

            async fn finish_media(&self, id: &str, outcome: &$crate::MediaOutcome, now: i64) -> $crate::Result<()> {
                use $crate::MediaOutcome;
                let q = match outcome {
                    MediaOutcome::Stored { content_hash, size } => sqlx::query(
                        "UPDATE media SET state = 'stored', content_hash = $1, size = $2, error = NULL, lease_until = NULL, lease_owner = NULL, updated_at = $3 WHERE id = $4",
                    )
                    .bind(content_hash.clone())
                    .bind(*size),
                    MediaOutcome::Retry { at, error } => sqlx::query(
                        "UPDATE media SET next_attempt_at = $1, error = $2, lease_until = NULL, lease_owner = NULL, updated_at = $3 WHERE id = $4",
                    )
                    .bind(*at)
                    .bind(error.clone()),
                    MediaOutcome::Failed { error } => sqlx::query(
                        "UPDATE media SET state = 'failed', error = $1, lease_until = NULL, lease_owner = NULL, updated_at = $2 WHERE id = $3",
                    )
                    .bind(error.clone()),
                };
                q.bind(now).bind(id).execute(&self.writer).await?;
                Ok(())
            }

            async fn get_media(&self, id: &$crate::MediaId) -> $crate::Result<Option<$crate::Media>> {
                let sql = format!("SELECT {} FROM media WHERE id = $1", $crate::sql::MEDIA_COLUMNS);
                Ok(sqlx::query_as(&sql).bind(id).fetch_optional(&self.pool).await?)
            }

            async fn put_media_blob(&self, content_hash: &str, bytes: &[u8], now: i64) -> $crate::Result<()> {
                sqlx::query(
                    "INSERT INTO media_blobs (content_hash, bytes, created_at) VALUES ($1, $2, $3) ON CONFLICT (content_hash) DO NOTHING",
                )
                .bind(content_hash)
                .bind(bytes)
                .bind(now)
                .execute(&self.writer)
                .await?;
                Ok(())
            }

            async fn get_media_blob(&self, content_hash: &str) -> $crate::Result<Option<Vec<u8>>> {
                let row: Option<(Vec<u8>,)> = sqlx::query_as("SELECT bytes FROM media_blobs WHERE content_hash = $1")
                    .bind(content_hash)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row.map(|r| r.0))
            }

            async fn delete_media_blob(&self, content_hash: &str) -> $crate::Result<()> {
                sqlx::query("DELETE FROM media_blobs WHERE content_hash = $1")
                    .bind(content_hash)
                    .execute(&self.writer)
                    .await?;
                Ok(())
            }

            async fn media_by_meta_id(&self, meta_media_id: &str) -> $crate::Result<Option<$crate::Media>> {
                let sql = format!(
                    "SELECT {} FROM media WHERE meta_media_id = $1 ORDER BY created_at DESC LIMIT 1",
                    $crate::sql::MEDIA_COLUMNS
                );
                Ok(sqlx::query_as(&sql).bind(meta_media_id).fetch_optional(&self.pool).await?)
            }

            async fn insert_media(&self, m: &$crate::Media) -> $crate::Result<()> {
                sqlx::query(
                    "INSERT INTO media (id, account_id, message_id, meta_media_id, mime_type, sha256, state, attempts, next_attempt_at, content_hash, size, created_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
                )
                .bind(&m.id)
                .bind(&m.account_id)
                .bind(&m.message_id)
                .bind(&m.meta_media_id)
                .bind(&m.mime_type)
                .bind(&m.sha256)
                .bind(m.state.clone().as_str())
                .bind(m.attempts)
                .bind(m.created_at)
                .bind(&m.content_hash)
                .bind(m.size)
                .bind(m.created_at)
                .bind(m.updated_at)
                .execute(&self.writer)
                .await?;
                Ok(())
            }

            async fn delete_media(&self, id: &$crate::MediaId) -> $crate::Result<bool> {
                let done = sqlx::query("DELETE FROM media WHERE id = $1").bind(id).execute(&self.writer).await?;
                Ok(done.rows_affected() > 0)
            }
        }
    };
}

pub(crate) use impl_media_store;
