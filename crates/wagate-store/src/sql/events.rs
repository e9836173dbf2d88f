//! Contacts and the event log.

use async_trait::async_trait;

use crate::model::*;
use crate::Result;

/// Contacts and the event log.
#[async_trait]
pub trait EventStore: Send + Sync {
    async fn get_contact(&self, account_id: &str, phone_number_id: &str, wa_id: &str) -> Result<Option<Contact>>;
    async fn find_contacts(&self, account_id: Option<&str>, wa_id: &str) -> Result<Vec<Contact>>;
    /// Contacts, most recently active first.
    async fn list_contacts(&self, filter: &ContactFilter) -> Result<Vec<Contact>>;
    async fn list_events(&self, filter: &EventFilter) -> Result<Vec<Event>>;
    /// Nothing of the contact's is unread any more (in one account, on each of its numbers).
    async fn mark_contact_read(&self, account_id: &str, wa_id: &str) -> Result<()>;
}

macro_rules! impl_event_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::EventStore for $store {
            async fn get_contact(&self, account_id: &str, phone_number_id: &str, wa_id: &str) -> $crate::Result<Option<$crate::Contact>> {
                Ok(sqlx::query_as(
                    "SELECT account_id, phone_number_id, wa_id, name, last_inbound_at, window_expires_at, updated_at, last_outbound_at, unread
                     FROM contacts WHERE account_id = $1 AND phone_number_id = $2 AND wa_id = $3",
                )
                .bind(account_id)
                .bind(phone_number_id)
                .bind(wa_id)
                .fetch_optional(&self.pool)
                .await?)
            }

            async fn find_contacts(&self, account_id: Option<&str>, wa_id: &str) -> $crate::Result<Vec<$crate::Contact>> {
                Ok(sqlx::query_as(
                    "SELECT account_id, phone_number_id, wa_id, name, last_inbound_at, window_expires_at, updated_at, last_outbound_at, unread
                     FROM contacts WHERE ($1 IS NULL OR account_id = $1) AND wa_id = $2 ORDER BY updated_at DESC",
                )
                .bind(account_id)
                .bind(wa_id)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn mark_contact_read(&self, account_id: &str, wa_id: &str) -> $crate::Result<()> {
                sqlx::query("UPDATE contacts SET unread = 0 WHERE account_id = $1 AND wa_id = $2 AND unread <> 0")
                    .bind(account_id)
                    .bind(wa_id)
                    .execute(&self.writer)
                    .await?;
                Ok(())
            }

            async fn list_contacts(&self, f: &$crate::ContactFilter) -> $crate::Result<Vec<$crate::Contact>> {
                let mut qb = sqlx::QueryBuilder::new(
                    "SELECT account_id, phone_number_id, wa_id, name, last_inbound_at, window_expires_at, updated_at, last_outbound_at, unread FROM contacts WHERE 1 = 1",
                );
                if let Some(a) = &f.account_id {
                    qb.push(" AND account_id = ").push_bind(a.clone());
                }
                $crate::sql::push_in(&mut qb, "account_id", f.account_ids.as_deref());
                if let Some(s) = f.search.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
                    let like = format!("%{}%", s.to_lowercase().replace(['%', '_', '\\'], ""));
                    let digits: String = s.chars().filter(char::is_ascii_digit).collect();
                    qb.push(" AND (LOWER(COALESCE(name, '')) LIKE ").push_bind(like);
                    if !digits.is_empty() {
                        qb.push(" OR wa_id LIKE ").push_bind(format!("%{digits}%"));
                    }
                    qb.push(")");
                }
                if let Some(b) = f.before_updated_at {
                    qb.push(" AND updated_at < ").push_bind(b);
                }
                qb.push(" ORDER BY updated_at DESC LIMIT ").push_bind(f.limit);
                Ok(qb.build_query_as().fetch_all(&self.pool).await?)
            }

            async fn list_events(&self, f: &$crate::EventFilter) -> $crate::Result<Vec<$crate::Event>> {
                let mut qb = sqlx::QueryBuilder::new(
                    "SELECT seq, id, account_id, event_type, occurred_at, created_at, payload, raw FROM events WHERE 1 = 1",
                );
                if let Some(a) = &f.account_id {
                    qb.push(" AND account_id = ").push_bind(a.clone());
                }
                $crate::sql::push_in(&mut qb, "account_id", f.account_ids.as_deref());
                if !f.event_types.is_empty() {
                    qb.push(" AND event_type IN (");
                    let mut sep = qb.separated(", ");
                    for t in &f.event_types {
                        sep.push_bind(t.clone());
                    }
                    qb.push(")");
                }
                if let Some(s) = f.since_ms {
                    qb.push(" AND occurred_at >= ").push_bind(s);
                }
                if let Some(u) = f.until_ms {
                    qb.push(" AND occurred_at < ").push_bind(u);
                }
                if let Some(s) = f.stored_since_ms {
                    qb.push(" AND created_at >= ").push_bind(s);
                }
                if let Some(u) = f.stored_until_ms {
                    qb.push(" AND created_at < ").push_bind(u);
                }
                if let Some(c) = &f.contact {
                    qb.push(" AND contact = ").push_bind(c.clone());
                }
                if let Some(c) = f.after_seq {
                    qb.push(" AND seq > ").push_bind(c);
                }
                if let Some(c) = f.before_seq {
                    qb.push(" AND seq < ").push_bind(c);
                }
                qb.push(match f.newest_first {
                    true => " ORDER BY seq DESC LIMIT ",
                    false => " ORDER BY seq LIMIT ",
                })
                .push_bind(f.limit);
                Ok(qb.build_query_as().fetch_all(&self.pool).await?)
            }
        }

        impl $store {
            async fn insert_event(
                tx: &mut sqlx::Transaction<'_, <$store as $crate::sql::Backend>::Db>,
                account_id: Option<&str>,
                event_type: &str,
                occurred_at: i64,
                payload: &serde_json::Value,
                raw: &serde_json::Value,
                now: i64,
            ) -> $crate::Result<()> {
                sqlx::query(
                    "INSERT INTO events (id, account_id, event_type, occurred_at, created_at, payload, raw, contact)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(wagate_core::ids::event_id())
                .bind(account_id)
                .bind(event_type)
                .bind(occurred_at)
                .bind(now)
                .bind(payload.to_string())
                .bind(raw.to_string())
                .bind(wagate_core::hooks::event_contact(payload))
                .execute(&mut **tx)
                .await?;
                Ok(())
            }
        }
    };
}

pub(crate) use impl_event_store;
