//! The audit log of administrative actions.

use async_trait::async_trait;

use crate::model::*;
use crate::Result;

/// The audit log: appended to, read newest first.
#[async_trait]
pub trait AuditStore: Send + Sync {
    async fn record_audit(&self, entry: &NewAuditEntry) -> Result<()>;
    /// Entries newest first, before `before_id`; of one account (and those of no account are
    /// left out) when `account_id` is given; of one tenant (its own, or of one of `accounts`)
    /// when `tenant` is given; whose action starts with `action` when given.
    async fn list_audit(
        &self,
        account_id: Option<&str>,
        tenant: Option<(&str, &[String])>,
        action: Option<&str>,
        before_id: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditEntry>>;
}

macro_rules! impl_audit_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::AuditStore for $store {
            async fn record_audit(&self, e: &$crate::NewAuditEntry) -> $crate::Result<()> {
                sqlx::query(
                    "INSERT INTO audit_log (at, actor, actor_name, remote, action, target, account_id, details, tenant)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(e.at)
                .bind(&e.actor)
                .bind(&e.actor_name)
                .bind(&e.remote)
                .bind(&e.action)
                .bind(&e.target)
                .bind(&e.account_id)
                .bind(e.details.to_string())
                .bind(&e.tenant)
                .execute(&self.writer)
                .await?;
                Ok(())
            }

            async fn list_audit(
                &self,
                account_id: Option<&str>,
                tenant: Option<(&str, &[String])>,
                action: Option<&str>,
                before_id: Option<i64>,
                limit: i64,
            ) -> $crate::Result<Vec<$crate::AuditEntry>> {
                let mut qb = sqlx::QueryBuilder::new(
                    "SELECT id, at, actor, actor_name, remote, action, target, account_id, tenant, details FROM audit_log WHERE 1 = 1",
                );
                if let Some(a) = account_id {
                    qb.push(" AND account_id = ").push_bind(a.to_string());
                }
                if let Some((t, accounts)) = tenant {
                    qb.push(" AND (tenant = ").push_bind(t.to_string());
                    for a in accounts {
                        qb.push(" OR account_id = ").push_bind(a.clone());
                    }
                    qb.push(")");
                }
                if let Some(a) = action {
                    // A prefix: `key.` is every key action. LIKE's wildcards in it match themselves.
                    let escaped = a.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
                    qb.push(" AND action LIKE ").push_bind(format!("{escaped}%")).push(" ESCAPE '\\'");
                }
                if let Some(b) = before_id {
                    qb.push(" AND id < ").push_bind(b);
                }
                qb.push(" ORDER BY id DESC LIMIT ").push_bind(limit);
                Ok(qb.build_query_as().fetch_all(&self.pool).await?)
            }
        }
    };
}

pub(crate) use impl_audit_store;
