//! The SQL both backends share, written once in the dialect SQLite and PostgreSQL have in common
//! (`$n` parameters, `ON CONFLICT`, `RETURNING`), one file per area: [`accounts`], [`journal`],
//! [`outbound`], [`events`], [`templates`], [`media`] (and `crate::hooks`). Each file declares its
//! area's trait and a macro implementing it; `impl_store!` instantiates them all per backend; the
//! backend supplies `pool` (reads), `writer` (writes), `journal` (the webhook journal), its
//! migrations, `CLAIM_LOCK` (row locking for the queue claim) and how journal progress is kept
//! (`pending`, `counts`, `mark_processed`, `after_apply`). SQLite's `writer` is one connection: writers then wait their
//! turn in the pool's queue instead of sleeping in SQLite's busy handler.

pub(crate) mod accounts;
pub(crate) mod activity;
pub(crate) mod audit;
pub(crate) mod cluster;
pub(crate) mod events;
pub(crate) mod journal;
pub(crate) mod media;
pub(crate) mod outbound;
pub(crate) mod sessions;
pub(crate) mod templates;
pub(crate) mod usage;

macro_rules! impl_store {
    ($store:ty, $backend:literal) => {
        #[async_trait::async_trait]
        impl $crate::Store for $store {
            fn backend(&self) -> &'static str {
                $backend
            }

            fn wakeups(&self) -> Option<tokio::sync::broadcast::Receiver<$crate::Wake>> {
                <$store>::wakeups(self)
            }

            fn listening(&self) -> Option<bool> {
                <$store>::listening(self)
            }

            async fn migrate(&self) -> $crate::Result<()> {
                Self::MIGRATOR.run(&self.writer).await?;
                Ok(())
            }

            async fn ping(&self) -> $crate::Result<()> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }

            async fn prune(&self, r: &$crate::Retention, batch: i64) -> $crate::Result<$crate::Pruned> {
                let mut p = $crate::Pruned::default();
                let delete = |table: &str, key: &str, filter: &str| {
                    format!("DELETE FROM {table} WHERE {key} IN (SELECT {key} FROM {table} WHERE {filter} ORDER BY {key} LIMIT $2)")
                };
                let run = |sql: String, before: i64| async move {
                    Ok::<u64, $crate::StoreError>(
                        sqlx::query(&sql).bind(before).bind(batch).execute(&self.writer).await?.rows_affected(),
                    )
                };
                if let Some(before) = r.journal_before {
                    p.journal = self.prune_journal(before, batch).await?;
                }
                if let Some(before) = r.events_before {
                    p.events = run(delete("events", "seq", "created_at < $1"), before).await?;
                    p.attempts = run(delete("hook_attempts", "id", "attempted_at < $1"), before).await?;
                    // The hourly counts go with the events they summed.
                    run(delete("activity_hours", "hour", "hour < $1"), before.div_euclid(3_600_000)).await?;
                    p.deliveries = run(
                        delete("hook_deliveries", "id", "created_at < $1 AND state IN ('succeeded', 'failed')"),
                        before,
                    )
                    .await?;
                }
                if let Some(before) = r.statuses_before {
                    p.statuses = run(delete("message_statuses", "id", "recorded_at < $1"), before).await?;
                }
                if let Some(before) = r.jobs_before {
                    p.jobs = run(delete("send_jobs", "id", "created_at < $1 AND state IN ('done', 'dead', 'cancelled')"), before).await?;
                }
                if let Some(before) = r.idempotency_before {
                    p.idempotency_keys = sqlx::query(
                        "DELETE FROM idempotency_keys WHERE created_at < $1 AND key IN
                           (SELECT key FROM idempotency_keys WHERE created_at < $1 LIMIT $2)",
                    )
                    .bind(before)
                    .bind(batch)
                    .execute(&self.writer)
                    .await?
                    .rows_affected();
                }
                if let Some(before) = r.media_before {
                    let mut tx = self.writer.begin().await?;
                    let gone: Vec<(Option<String>,)> = sqlx::query_as(
                        "DELETE FROM media WHERE id IN (SELECT id FROM media WHERE created_at < $1 ORDER BY created_at LIMIT $2)
                         RETURNING content_hash",
                    )
                    .bind(before)
                    .bind(batch)
                    .fetch_all(&mut *tx)
                    .await?;
                    p.media = gone.len() as u64;
                    let mut hashes: Vec<String> = gone.into_iter().filter_map(|(h,)| h).collect();
                    hashes.sort();
                    hashes.dedup();
                    for h in hashes {
                        // One file serves every row with the same content: kept while any refers to it.
                        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM media WHERE content_hash = $1")
                            .bind(&h)
                            .fetch_one(&mut *tx)
                            .await?;
                        if n == 0 {
                            p.unreferenced_media.push(h);
                        }
                    }
                    tx.commit().await?;
                }
                Ok(p)
            }
        }

        $crate::sql::accounts::impl_account_store!($store);
        $crate::sql::audit::impl_audit_store!($store);
        $crate::sql::journal::impl_journal_store!($store);
        $crate::sql::outbound::impl_outbound_store!($store);
        $crate::sql::events::impl_event_store!($store);
        $crate::sql::templates::impl_template_store!($store);
        $crate::sql::media::impl_media_store!($store);
        $crate::sql::sessions::impl_session_store!($store);
        $crate::sql::activity::impl_activity_store!($store);
        $crate::sql::activity::impl_activity_count!($store);
        $crate::sql::usage::impl_usage_store!($store);
        $crate::sql::cluster::impl_cluster_store!($store);
    };
}

pub(crate) use impl_store;

/// The most journal entries written by one statement: 4 parameters each, well under SQLite's
/// 32,766 and PostgreSQL's 65,535 parameters per statement. A group commit of at most this many
/// is one statement (the server's journal writer takes batches of this size).
pub const JOURNAL_STATEMENT_ROWS: usize = 1024;

/// The most rows a processing batch writes with one multi-row statement.
pub const BATCH_STATEMENT_ROWS: usize = 256;

/// `rows` in chunks whose sizes are powers of two, largest first (at most
/// [`BATCH_STATEMENT_ROWS`]): 500 rows are 256 + 128 + 64 + 32 + 16 + 4. A connection keeps each
/// statement it prepared, and a multi-row insert of a few hundred rows is a program of a few
/// hundred kilobytes: with a statement for every size a batch happened to have, the cached ones
/// held about 15 MiB of the ingest benchmark's peak; with these sizes there are at most nine
/// per table, and none is prepared twice.
pub fn sized_chunks<T>(mut rows: &[T]) -> impl Iterator<Item = &[T]> {
    std::iter::from_fn(move || {
        if rows.is_empty() {
            return None;
        }
        let size = BATCH_STATEMENT_ROWS.min(1 << rows.len().ilog2());
        let (chunk, rest) = rows.split_at(size);
        rows = rest;
        Some(chunk)
    })
}

/// What a backend module provides to `impl_store!`.
pub(crate) trait Backend {
    type Db: sqlx::Database;
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// `AND column IN (…)` for a list of values; an empty list matches nothing, `None` everything.
pub(crate) fn push_in<DB: sqlx::Database>(qb: &mut sqlx::QueryBuilder<'_, DB>, column: &str, values: Option<&[String]>)
where
    String: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    match values {
        None => {}
        Some([]) => {
            qb.push(" AND 1 = 0");
        }
        Some(values) => {
            qb.push(format!(" AND {column} IN ("));
            let mut sep = qb.separated(", ");
            for v in values {
                sep.push_bind(v.clone());
            }
            qb.push(")");
        }
    }
}

/// Sets a top-level key of a JSON object payload.
pub(crate) fn set<T: serde::Serialize + ?Sized>(payload: &mut serde_json::Value, key: &str, value: &T) {
    if let Some(obj) = payload.as_object_mut() {
        obj.insert(key.to_string(), serde_json::to_value(value).unwrap_or_default());
    }
}

/// A JSON object payload with some top-level string keys set, serialised as if they had been
/// set on a copy (the same keys, in the same sorted order: `serde_json`'s objects keep their keys
/// sorted), without copying the payload first. `keys` must be sorted; `None` when the payload is
/// not an object.
pub(crate) fn stamped(payload: &serde_json::Value, keys: &[(&str, &str)]) -> Option<String> {
    struct Stamped<'a> {
        object: &'a serde_json::Map<String, serde_json::Value>,
        keys: &'a [(&'a str, &'a str)],
    }
    impl serde::Serialize for Stamped<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
            use serde::ser::SerializeMap;
            let mut map = s.serialize_map(None)?;
            let mut keys = self.keys.iter().peekable();
            for (k, v) in self.object {
                // The keys that sort before this one go first; one equal to it replaces it.
                let mut replaced = false;
                while let Some((key, value)) = keys.next_if(|(key, _)| *key <= k.as_str()) {
                    map.serialize_entry(key, value)?;
                    replaced |= *key == k.as_str();
                }
                if !replaced {
                    map.serialize_entry(k, v)?;
                }
            }
            for (key, value) in keys {
                map.serialize_entry(key, value)?;
            }
            map.end()
        }
    }
    let object = payload.as_object()?;
    serde_json::to_string(&Stamped { object, keys }).ok()
}

/// An inbound message as it is written.
pub(crate) struct InboundRow {
    pub message_id: String,
    pub account_id: String,
    pub phone_number_id: String,
    pub wamid: String,
    pub wa_id: Option<String>,
    pub message_type: String,
    pub contact_name: Option<String>,
    pub sent_at: i64,
    /// The normalised payload, serialised once for the message row and its event.
    pub payload: String,
    pub media: Option<InboundMedia>,
}

#[derive(Clone, Default)]
pub(crate) struct InboundMedia {
    pub id: String,
    pub meta_media_id: String,
    pub mime_type: Option<String>,
    pub sha256: Option<String>,
}

pub(crate) const MEDIA_COLUMNS: &str = "id, account_id, message_id, meta_media_id, mime_type, sha256, state, attempts, content_hash, size, error, created_at, updated_at";

impl InboundRow {
    pub fn new(account_id: &str, m: &wagate_core::webhook::InboundMessage, received_at: i64) -> Self {
        let message_id = wagate_core::ids::message_id();
        let ids = [("account", account_id), ("message_id", message_id.as_str())];
        // Inbound media gets our id and download URL at once; the bytes follow. (An id is made
        // only for a message with media: each is a clock read and random bytes.) A message
        // without media is serialised with its ids straight from the parsed payload.
        let has_media = m.payload.pointer("/content/media").is_some();
        let (payload, media) = match (!has_media).then(|| stamped(&m.payload, &ids)).flatten() {
            Some(text) => (text, None),
            None => {
                let mut payload = m.payload.clone();
                for (key, value) in ids {
                    set(&mut payload, key, value);
                }
                let media = has_media
                    .then(|| {
                        let media_id = wagate_core::ids::new_id("med");
                        wagate_core::webhook::assign_media(&mut payload, &media_id).map(|m| InboundMedia {
                            id: media_id,
                            meta_media_id: m.meta_media_id,
                            mime_type: m.mime_type,
                            sha256: m.sha256,
                        })
                    })
                    .flatten();
                (payload.to_string(), media)
            }
        };
        Self {
            message_id,
            account_id: account_id.to_string(),
            phone_number_id: m.phone_number_id.clone(),
            wamid: m.wamid.clone(),
            wa_id: m.contact_key().map(str::to_string),
            message_type: m.message_type.clone(),
            contact_name: m.contact_name.clone(),
            sent_at: m.timestamp_ms.unwrap_or(received_at),
            payload,
            media,
        }
    }
}

/// An event as it is written.
pub(crate) struct NewEvent {
    pub id: String,
    pub account_id: Option<String>,
    pub event_type: String,
    pub occurred_at: i64,
    /// Who it is about (see [`wagate_core::hooks::event_contact`]).
    pub contact: Option<String>,
    pub payload: String,
    pub raw: String,
}

impl NewEvent {
    pub fn new(
        account_id: Option<&str>,
        event_type: &str,
        occurred_at: i64,
        payload: &serde_json::Value,
        raw: &serde_json::Value,
    ) -> Self {
        Self {
            id: wagate_core::ids::event_id(),
            account_id: account_id.map(str::to_string),
            event_type: event_type.to_string(),
            occurred_at,
            contact: wagate_core::hooks::event_contact(payload).map(str::to_string),
            payload: payload.to_string(),
            raw: raw.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn chunks_are_powers_of_two_at_most_the_statement_rows() {
        let rows: Vec<u32> = (0..1100).collect();
        let sizes: Vec<usize> = super::sized_chunks(&rows).map(<[u32]>::len).collect();
        assert_eq!(sizes, [256, 256, 256, 256, 64, 8, 4]);
        let joined: Vec<u32> = super::sized_chunks(&rows).flatten().copied().collect();
        assert_eq!(joined, rows);
        assert_eq!(
            super::sized_chunks(&rows[..500]).map(<[u32]>::len).collect::<Vec<_>>(),
            [256, 128, 64, 32, 16, 4]
        );
        assert_eq!(super::sized_chunks::<u32>(&[]).count(), 0);
    }

    use serde_json::json;

    /// `stamped` writes what setting the keys on a copy and serialising it writes.
    #[test]
    fn stamped_is_the_payload_with_its_keys_set() {
        let ids = [("account", "acc_1"), ("message_id", "msg_\"2\"")];
        for payload in [
            json!({"type": "text", "content": {"text": "hi"}, "from": "1650"}),
            json!({"account": "old", "zeta": 1, "alpha": [1, 2], "message_id": null}),
            json!({}),
            json!({"message_idx": 1, "accounts": 2, "b": {"account": "inner"}}),
        ] {
            let mut copy = payload.clone();
            for (k, v) in ids {
                super::set(&mut copy, k, v);
            }
            assert_eq!(
                super::stamped(&payload, &ids).as_deref(),
                Some(copy.to_string().as_str())
            );
        }
        assert_eq!(super::stamped(&json!([1]), &ids), None);
    }
}
