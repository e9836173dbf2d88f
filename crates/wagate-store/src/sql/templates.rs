//! The template catalog of each account.

use async_trait::async_trait;

use crate::model::*;
use crate::Result;

/// The template catalog of each account.
#[async_trait]
pub trait TemplateStore: Send + Sync {
    /// Replaces an account's catalog with what Meta listed, and records the sync time.
    async fn replace_templates(&self, account_id: &str, templates: &[Template], synced_at: i64) -> Result<()>;
    async fn upsert_template(&self, template: &Template) -> Result<()>;
    async fn list_templates(&self, account_id: Option<&str>) -> Result<Vec<Template>>;
    /// Every language of a template name in an account.
    async fn templates_named(&self, account_id: &str, name: &str) -> Result<Vec<Template>>;
    async fn delete_templates(&self, account_id: &str, name: &str) -> Result<u64>;
    /// When the account's catalog was last synced; `None`: never.
    async fn templates_synced_at(&self, account_id: &str) -> Result<Option<i64>>;
}

macro_rules! impl_template_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::TemplateStore for $store {
            async fn replace_templates(&self, account_id: &str, templates: &[$crate::Template], synced_at: i64) -> $crate::Result<()> {
                let mut tx = self.writer.begin().await?;
                sqlx::query("DELETE FROM templates WHERE account_id = $1").bind(account_id).execute(&mut *tx).await?;
                for t in templates {
                    Self::write_template(&mut tx, t).await?;
                }
                sqlx::query(
                    "INSERT INTO template_syncs (account_id, synced_at) VALUES ($1, $2)
                     ON CONFLICT (account_id) DO UPDATE SET synced_at = excluded.synced_at",
                )
                .bind(account_id)
                .bind(synced_at)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn upsert_template(&self, t: &$crate::Template) -> $crate::Result<()> {
                let mut tx = self.writer.begin().await?;
                Self::write_template(&mut tx, t).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn list_templates(&self, account_id: Option<&str>) -> $crate::Result<Vec<$crate::Template>> {
                Ok(sqlx::query_as(
                    "SELECT account_id, name, language, template_id, status, category, parameter_format, components,
                       quality_score, updated_at, rejected_reason FROM templates WHERE ($1 IS NULL OR account_id = $1) ORDER BY name, language",
                )
                .bind(account_id)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn templates_named(&self, account_id: &str, name: &str) -> $crate::Result<Vec<$crate::Template>> {
                Ok(sqlx::query_as(
                    "SELECT account_id, name, language, template_id, status, category, parameter_format, components,
                       quality_score, updated_at, rejected_reason FROM templates WHERE account_id = $1 AND name = $2 ORDER BY language",
                )
                .bind(account_id)
                .bind(name)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn delete_templates(&self, account_id: &str, name: &str) -> $crate::Result<u64> {
                Ok(sqlx::query("DELETE FROM templates WHERE account_id = $1 AND name = $2")
                    .bind(account_id)
                    .bind(name)
                    .execute(&self.writer)
                    .await?
                    .rows_affected())
            }

            async fn templates_synced_at(&self, account_id: &str) -> $crate::Result<Option<i64>> {
                let row: Option<(i64,)> = sqlx::query_as("SELECT synced_at FROM template_syncs WHERE account_id = $1")
                    .bind(account_id)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row.map(|r| r.0))
            }
        }

        impl $store {
            async fn write_template(
                tx: &mut sqlx::Transaction<'_, <$store as $crate::sql::Backend>::Db>,
                t: &$crate::Template,
            ) -> $crate::Result<()> {
                sqlx::query(
                    "INSERT INTO templates (account_id, name, language, template_id, status, category, parameter_format,
                       components, quality_score, updated_at, rejected_reason) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
                     ON CONFLICT (account_id, name, language) DO UPDATE SET
                       template_id = COALESCE(excluded.template_id, templates.template_id),
                       status = excluded.status,
                       category = COALESCE(excluded.category, templates.category),
                       parameter_format = COALESCE(excluded.parameter_format, templates.parameter_format),
                       components = COALESCE(excluded.components, templates.components),
                       quality_score = COALESCE(excluded.quality_score, templates.quality_score),
                       rejected_reason = excluded.rejected_reason,
                       updated_at = excluded.updated_at",
                )
                .bind(&t.account_id)
                .bind(&t.name)
                .bind(&t.language)
                .bind(&t.template_id)
                .bind(&t.status)
                .bind(&t.category)
                .bind(&t.parameter_format)
                .bind(&t.components)
                .bind(&t.quality_score)
                .bind(t.updated_at)
                .bind(&t.rejected_reason)
                .execute(&mut **tx)
                .await?;
                Ok(())
            }
        }
    };
}

pub(crate) use impl_template_store;
