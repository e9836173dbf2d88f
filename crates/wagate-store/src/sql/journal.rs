//! The webhook journal, and applying what Meta sent: messages, statuses, template
//! updates and other events, each webhook in order, duplicates and backwards statuses changing
//! nothing. What a webhook means is decided in `wagate-core`; this persists the decisions.

use async_trait::async_trait;

use crate::model::*;
use crate::Result;

/// The webhook journal: bodies kept before the 200, processed in order, set aside when poison.
#[async_trait]
pub trait JournalStore: Send + Sync {
    /// Stores webhook bodies in one transaction (group commit); returns their journal ids.
    async fn journal_webhooks(&self, entries: &[NewJournalEntry]) -> Result<Vec<i64>>;
    /// Journalled bodies not processed yet, oldest first, claimed for `owner` (the gateway
    /// instance) where several gateways share the journal. `in_flight` is the newest id of a
    /// batch this gateway read and is still applying (0: none): the next batch starts past it
    /// where the journal is read from a cursor, which moves only when that batch commits.
    async fn pending_journal(&self, owner: &str, in_flight: i64, limit: i64) -> Result<Vec<JournalEntry>>;
    /// Gives back entries `owner` claimed and will not apply now (a batch read ahead of one
    /// that failed), so that they are taken again at once rather than when the claim runs out.
    async fn unclaim_journal(&self, owner: &str, ids: &[i64]) -> Result<u64>;
    /// Applies parsed webhooks (messages, statuses, events) and marks them processed, in one
    /// transaction; duplicates and backwards statuses change nothing.
    async fn apply_webhooks(&self, batch: &[AppliedWebhook]) -> Result<ApplyStats>;
    async fn journal_counts(&self) -> Result<JournalCounts>;
    /// When the oldest journal entry still waiting to be processed was received (unix ms).
    async fn oldest_pending_journal(&self) -> Result<Option<i64>>;
    /// Sets aside an entry that failed to apply on its own, with the error; the rest flows.
    async fn set_aside_journal(&self, id: i64, error: &str, now_ms: i64) -> Result<()>;
    /// The entries set aside, newest first.
    async fn dead_journal(&self, limit: i64) -> Result<Vec<DeadEntry>>;
    /// Queues a set-aside entry for processing again; false when it is not set aside.
    async fn requeue_journal(&self, id: i64) -> Result<bool>;
    /// Quarantined entries (for a WABA or number no account had), oldest first, after `after_id`.
    async fn quarantined_journal(&self, after_id: i64, limit: i64) -> Result<Vec<JournalEntry>>;
    /// Queues a quarantined entry for processing as the given account's; false when it is not
    /// quarantined (any more).
    async fn release_quarantined(&self, id: i64, account_id: Option<&str>) -> Result<bool>;
}

macro_rules! impl_journal_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::JournalStore for $store {
            async fn journal_webhooks(&self, entries: &[$crate::NewJournalEntry]) -> $crate::Result<Vec<i64>> {
                // A group commit of up to JOURNAL_STATEMENT_ROWS bodies is one statement, which
                // commits on its own (see the backend's `append_journal`): one round trip to the
                // database rather than three (BEGIN, INSERT, COMMIT). Each round trip wakes a
                // thread, and on a busy 2-core VM a wake-up costs more than the insert.
                if entries.len() <= $crate::sql::JOURNAL_STATEMENT_ROWS {
                    return self.append_journal(entries).await;
                }
                let mut ids = Vec::with_capacity(entries.len());
                let mut tx = self.journal.begin().await?;
                for chunk in entries.chunks($crate::sql::JOURNAL_STATEMENT_ROWS) {
                    let rows: Vec<(i64,)> = Self::journal_insert(chunk).build_query_as().fetch_all(&mut *tx).await?;
                    ids.extend(rows.into_iter().map(|r| r.0));
                }
                tx.commit().await?;
                Ok(ids)
            }

            async fn pending_journal(&self, owner: &str, in_flight: i64, limit: i64) -> $crate::Result<Vec<$crate::JournalEntry>> {
                self.pending(owner, in_flight, limit).await
            }

            async fn unclaim_journal(&self, owner: &str, ids: &[i64]) -> $crate::Result<u64> {
                self.unclaim(owner, ids).await
            }

            async fn apply_webhooks(&self, batch: &[$crate::AppliedWebhook]) -> $crate::Result<$crate::ApplyStats> {
                use std::collections::{HashMap, HashSet};
                use wagate_core::webhook::Update;
                let mut stats = $crate::ApplyStats::default();
                let now = $crate::sql::now_ms();
                let mut tx = self.writer.begin().await?;

                // 1. Inbound messages: one multi-row insert; RETURNING names the new ones.
                let mut rows: Vec<$crate::sql::InboundRow> = Vec::new();
                let mut seen = HashSet::new();
                let mut total_messages = 0u64;
                for webhook in batch {
                    for (account_id, update) in &webhook.updates {
                        if let (Update::Message(m), Some(account_id)) = (update, account_id) {
                            total_messages += 1;
                            if seen.insert(m.wamid.clone()) {
                                rows.push($crate::sql::InboundRow::new(account_id, m, webhook.received_at));
                            }
                        }
                    }
                }
                let mut inserted: HashSet<String> = HashSet::new();
                // Rows are written in key order (messages by wamid, contacts by key): two
                // gateways applying overlapping batches then wait for each other at most, never
                // in a cycle (PostgreSQL would abort one with "deadlock detected").
                let mut by_wamid: Vec<&$crate::sql::InboundRow> = rows.iter().collect();
                by_wamid.sort_by(|a, b| a.wamid.cmp(&b.wamid));
                for chunk in $crate::sql::sized_chunks(&by_wamid) {
                    let mut qb = sqlx::QueryBuilder::new(
                        "INSERT INTO messages (id, account_id, phone_number_id, direction, wamid, wa_id, message_type, status, content, created_at, updated_at) ",
                    );
                    qb.push_values(chunk, |mut b, r| {
                        b.push_bind(r.message_id.clone())
                            .push_bind(r.account_id.clone())
                            .push_bind(r.phone_number_id.clone())
                            .push_bind("inbound")
                            .push_bind(r.wamid.clone())
                            .push_bind(r.wa_id.clone())
                            .push_bind(r.message_type.clone())
                            .push_bind("received")
                            .push_bind(r.payload.clone())
                            .push_bind(now)
                            .push_bind(now);
                    });
                    qb.push(" ON CONFLICT (wamid) DO NOTHING RETURNING wamid");
                    let got: Vec<(String,)> = qb.build_query_as().fetch_all(&mut *tx).await?;
                    inserted.extend(got.into_iter().map(|r| r.0));
                }
                stats.new_messages = inserted.len() as u64;
                stats.duplicate_messages = total_messages - stats.new_messages;

                // 2. Contacts and their windows: merged per contact first, since one statement
                //    may not update the same row twice (PostgreSQL).
                let mut contacts: HashMap<(String, String, String), (Option<String>, i64, i64)> = HashMap::new();
                let mut usage: HashMap<$crate::sql::usage::UsageKey, i64> = HashMap::new();
                for r in rows.iter().filter(|r| inserted.contains(&r.wamid)) {
                    let Some(wa_id) = r.wa_id.clone() else { continue };
                    let entry = contacts
                        .entry((r.account_id.clone(), r.phone_number_id.clone(), wa_id))
                        .or_insert((None, i64::MIN, 0));
                    entry.2 += 1;
                    if r.sent_at >= entry.1 {
                        entry.1 = r.sent_at;
                        if r.contact_name.is_some() {
                            entry.0 = r.contact_name.clone();
                        }
                    }
                }
                let mut contacts: Vec<_> = contacts.into_iter().collect();
                contacts.sort_by(|a, b| a.0.cmp(&b.0));
                for chunk in $crate::sql::sized_chunks(&contacts) {
                    let mut qb = sqlx::QueryBuilder::new(
                        "INSERT INTO contacts (account_id, phone_number_id, wa_id, name, last_inbound_at, window_expires_at, updated_at, unread) ",
                    );
                    qb.push_values(chunk, |mut b, ((account_id, phone, wa_id), (name, sent_at, unread))| {
                        b.push_bind(account_id.clone())
                            .push_bind(phone.clone())
                            .push_bind(wa_id.clone())
                            .push_bind(name.clone())
                            .push_bind(*sent_at)
                            .push_bind(wagate_core::window::expires_at(*sent_at))
                            .push_bind(now)
                            .push_bind(*unread);
                    });
                    qb.push(
                        " ON CONFLICT (account_id, phone_number_id, wa_id) DO UPDATE SET
                           name = COALESCE(excluded.name, contacts.name),
                           last_inbound_at = CASE WHEN contacts.last_inbound_at IS NULL
                             OR excluded.last_inbound_at > contacts.last_inbound_at
                             THEN excluded.last_inbound_at ELSE contacts.last_inbound_at END,
                           window_expires_at = CASE WHEN contacts.window_expires_at IS NULL
                             OR excluded.window_expires_at > contacts.window_expires_at
                             THEN excluded.window_expires_at ELSE contacts.window_expires_at END,
                           unread = contacts.unread + excluded.unread,
                           updated_at = excluded.updated_at",
                    );
                    qb.build().execute(&mut *tx).await?;
                }

                // Media of new messages: their download starts right after this commit.
                let media: Vec<&$crate::sql::InboundRow> =
                    rows.iter().filter(|r| r.media.is_some() && inserted.contains(&r.wamid)).collect();
                for chunk in $crate::sql::sized_chunks(&media) {
                    let mut qb = sqlx::QueryBuilder::new(
                        "INSERT INTO media (id, account_id, message_id, meta_media_id, mime_type, sha256, state, next_attempt_at, created_at, updated_at) ",
                    );
                    qb.push_values(chunk, |mut b, r| {
                        let m = r.media.clone().unwrap_or_default();
                        b.push_bind(m.id)
                            .push_bind(r.account_id.clone())
                            .push_bind(r.message_id.clone())
                            .push_bind(m.meta_media_id)
                            .push_bind(m.mime_type)
                            .push_bind(m.sha256)
                            .push_bind("pending")
                            .push_bind(now)
                            .push_bind(now)
                            .push_bind(now);
                    });
                    qb.build().execute(&mut *tx).await?;
                }
                stats.new_media = media.len() as u64;

                // The messages the statuses name are locked first, in wamid order, then updated
                // in the webhooks' order: two gateways applying statuses of the same messages
                // wait for each other at most, never in a cycle (PostgreSQL; SQLite has one writer).
                if !Self::ROW_LOCK.is_empty() {
                    let mut wamids: Vec<&str> = batch
                        .iter()
                        .flat_map(|w| w.updates.iter())
                        .filter_map(|(_, u)| match u {
                            Update::Status(s) => Some(s.wamid.as_str()),
                            _ => None,
                        })
                        .collect();
                    wamids.sort_unstable();
                    wamids.dedup();
                    for chunk in $crate::sql::sized_chunks(&wamids) {
                        let mut q = sqlx::QueryBuilder::new("SELECT id FROM messages WHERE wamid IN (");
                        let mut list = q.separated(", ");
                        for w in chunk {
                            list.push_bind(*w);
                        }
                        q.push(format!(") ORDER BY wamid {}", Self::ROW_LOCK));
                        q.build().fetch_all(&mut *tx).await?;
                    }
                }

                // 3. Every update in its order: statuses applied one by one (they read the
                //    message), events collected in order.
                let mut events: Vec<$crate::sql::NewEvent> = Vec::new();
                let mut emitted = HashSet::new();
                let rows_by_wamid: HashMap<&str, &$crate::sql::InboundRow> = rows.iter().map(|r| (r.wamid.as_str(), r)).collect();
                for webhook in batch {
                    let fallback_at = webhook.received_at;
                    for (account_id, update) in &webhook.updates {
                        match update {
                            Update::Message(m) => {
                                let Some(row) = rows_by_wamid.get(m.wamid.as_str()) else { continue };
                                if inserted.contains(&m.wamid) && emitted.insert(m.wamid.clone()) {
                                    events.push($crate::sql::NewEvent {
                                        id: wagate_core::ids::event_id(),
                                        account_id: Some(row.account_id.clone()),
                                        event_type: "message.received".into(),
                                        occurred_at: row.sent_at,
                                        contact: m.from.clone().or_else(|| m.from_user_id.clone()),
                                        payload: row.payload.clone(),
                                        raw: m.raw.clone(),
                                    });
                                    stats.events.push("message.received".into());
                                }
                            }
                            Update::Status(s) => {
                                if let Some(e) = Self::apply_status(&mut tx, account_id.as_deref(), s, fallback_at, now).await? {
                                    stats.statuses += 1;
                                    if let Some(u) = account_id.as_ref().and(wagate_core::pricing::usage_of(s.status.as_str(), &s.payload)) {
                                        let key = $crate::sql::usage::UsageKey {
                                            day: s.timestamp_ms.unwrap_or(fallback_at).div_euclid(86_400_000),
                                            account_id: account_id.clone().unwrap_or_default(),
                                            phone_number_id: s.phone_number_id.clone(),
                                            usage: u,
                                        };
                                        *usage.entry(key).or_default() += 1;
                                    }
                                    if let Some(e) = e {
                                        stats.events.push(e.event_type.clone());
                                        events.push(e);
                                    }
                                }
                            }
                            Update::Other(o) => {
                                if let (true, Some(account)) = (o.event_type.starts_with("template."), account_id.as_deref()) {
                                    Self::apply_template_update(&mut tx, account, o, now).await?;
                                }
                                let mut payload = o.payload.clone();
                                $crate::sql::set(&mut payload, "account", &account_id.as_deref());
                                events.push($crate::sql::NewEvent::new(account_id.as_deref(), o.event_type, o.occurred_ms.unwrap_or(fallback_at), &payload, &o.raw));
                                stats.events.push(o.event_type.into());
                            }
                        }
                    }
                }

                // 4. The events, in order, in one statement per chunk.
                for chunk in $crate::sql::sized_chunks(&events) {
                    let mut qb = sqlx::QueryBuilder::new(
                        "INSERT INTO events (id, account_id, event_type, occurred_at, created_at, contact, payload, raw) ",
                    );
                    qb.push_values(chunk, |mut b, e| {
                        b.push_bind(e.id.clone())
                            .push_bind(e.account_id.clone())
                            .push_bind(e.event_type.clone())
                            .push_bind(e.occurred_at)
                            .push_bind(now)
                            .push_bind(e.contact.clone())
                            .push_bind(e.payload.clone())
                            .push_bind(e.raw.clone());
                    });
                    qb.build().execute(&mut *tx).await?;
                }

                // 5. What Meta charges, counted once per message (on its priced delivery status),
                //    in key order as the rows above. (The hour's activity is counted from the
                //    event log, off this path: `ActivityStore::count_new_events`.)
                if !usage.is_empty() {
                    let shard = batch.first().map_or(0, |w| w.journal_id.rem_euclid($crate::sql::activity::SHARDS));
                    let mut usage: Vec<_> = usage.into_iter().collect();
                    usage.sort();
                    Self::count_usage(&mut tx, &usage, shard).await?;
                }

                // 6. The journal entries are done (how that is recorded is the backend's).
                self.mark_processed(&mut tx, batch, now).await?;
                tx.commit().await?;
                self.after_apply(batch, now).await?;
                Ok(stats)
            }

            async fn journal_counts(&self) -> $crate::Result<$crate::JournalCounts> {
                self.counts().await
            }

            async fn oldest_pending_journal(&self) -> $crate::Result<Option<i64>> {
                self.oldest_pending().await
            }

            async fn set_aside_journal(&self, id: i64, error: &str, now: i64) -> $crate::Result<()> {
                self.set_aside(id, error, now).await
            }

            async fn dead_journal(&self, limit: i64) -> $crate::Result<Vec<$crate::DeadEntry>> {
                Ok(sqlx::query_as(
                    "SELECT id, received_at, account_id, body, error, processed_at FROM webhook_journal
                     WHERE state = 'dead' ORDER BY id DESC LIMIT $1",
                )
                .bind(limit)
                .fetch_all(&self.journal)
                .await?)
            }

            async fn requeue_journal(&self, id: i64) -> $crate::Result<bool> {
                self.requeue(id, "dead", None).await
            }

            async fn quarantined_journal(&self, after_id: i64, limit: i64) -> $crate::Result<Vec<$crate::JournalEntry>> {
                Ok(sqlx::query_as(
                    "SELECT id, received_at, account_id, body FROM webhook_journal
                     WHERE state = 'quarantined' AND id > $1 ORDER BY id LIMIT $2",
                )
                .bind(after_id)
                .bind(limit)
                .fetch_all(&self.journal)
                .await?)
            }

            async fn release_quarantined(&self, id: i64, account_id: Option<&str>) -> $crate::Result<bool> {
                self.requeue(id, "quarantined", account_id).await
            }
        }

        impl $store {
            /// One multi-row insert of journal entries, returning their ids in order.
            fn journal_insert(
                entries: &[$crate::NewJournalEntry],
            ) -> sqlx::QueryBuilder<'_, <$store as $crate::sql::Backend>::Db> {
                let mut qb = sqlx::QueryBuilder::new("INSERT INTO webhook_journal (received_at, account_id, body, state) ");
                qb.push_values(entries, |mut b, e| {
                    b.push_bind(e.received_at)
                        .push_bind(e.account_id.as_deref())
                        .push_bind(e.body.as_slice())
                        .push_bind(e.state.as_str());
                });
                qb.push(" RETURNING id");
                qb
            }

            /// Records one status. `None`: a duplicate (nothing recorded). `Some(event)`: recorded,
            /// with the event to emit when the status moves the message forward.
            async fn apply_status(
                tx: &mut sqlx::Transaction<'_, <$store as $crate::sql::Backend>::Db>,
                account_id: Option<&str>,
                s: &wagate_core::webhook::StatusUpdate,
                fallback_at: i64,
                now: i64,
            ) -> $crate::Result<Option<Option<$crate::sql::NewEvent>>> {
                use wagate_core::status::MessageStatus;
                let mut message: Option<(String, String, String)> =
                    sqlx::query_as("SELECT id, account_id, status FROM messages WHERE wamid = $1")
                        .bind(&s.wamid)
                        .fetch_optional(&mut **tx)
                        .await?;
                let callback = s.payload.get("biz_opaque_callback_data").and_then(|v| v.as_str());
                if let (None, Some(c)) = (&message, callback) {
                    // A send in doubt (the gateway died during the call, its lease ran out): the
                    // callback data it carried names it. Only an unambiguous match is taken.
                    let candidates: Vec<(i64, i64, String)> = sqlx::query_as(
                        "SELECT j.id, j.attempts, m.id FROM messages m JOIN send_jobs j ON j.message_id = m.id
                         WHERE m.callback_data = $1 AND m.wamid IS NULL
                           AND ((j.state = 'leased' AND j.lease_until < $2) OR (j.state = 'dead' AND m.status = 'unknown'))
                           AND (m.wa_id IS NULL OR $3 IS NULL OR m.wa_id = $3) LIMIT 2",
                    )
                    .bind(c)
                    .bind(now)
                    .bind(s.payload.get("recipient_id").and_then(|v| v.as_str()))
                    .fetch_all(&mut **tx)
                    .await?;
                    if let [(job_id, attempts, message_id)] = candidates.as_slice() {
                        if Self::adopt_send(tx, *job_id, *attempts, message_id, &s.wamid, None, now).await? {
                            message = sqlx::query_as("SELECT id, account_id, status FROM messages WHERE wamid = $1")
                                .bind(&s.wamid)
                                .fetch_optional(&mut **tx)
                                .await?;
                        }
                    }
                }
                let mut payload = s.payload.clone();
                let message_id = message.as_ref().map(|m| m.0.clone());
                $crate::sql::set(&mut payload, "message_id", &message_id.as_deref());
                let inserted: Option<(i64,)> = sqlx::query_as(
                    "INSERT INTO message_statuses (wamid, message_id, status, occurred_at, recorded_at, payload, callback_data)
                     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (wamid, status) DO NOTHING RETURNING id",
                )
                .bind(&s.wamid)
                .bind(&message_id)
                .bind(s.status.as_str())
                .bind(s.timestamp_ms)
                .bind(now)
                .bind(payload.to_string())
                .bind(callback)
                .fetch_optional(&mut **tx)
                .await?;
                let Some((status_row,)) = inserted else { return Ok(None) };
                let event_account = message.as_ref().map(|m| m.1.clone()).or_else(|| account_id.map(str::to_string));
                let advances = match &message {
                    // Not our message (yet): order by what was recorded for the wamid.
                    None => {
                        let seen: Vec<(String,)> =
                            sqlx::query_as("SELECT status FROM message_statuses WHERE wamid = $1 AND id <> $2")
                                .bind(&s.wamid)
                                .bind(status_row)
                                .fetch_all(&mut **tx)
                                .await?;
                        MessageStatus::furthest(seen.iter().filter_map(|(st,)| MessageStatus::parse(st))).advances_to(s.status)
                    }
                    Some((id, _, current)) => {
                        let current = MessageStatus::parse(current).unwrap_or(MessageStatus::Queued);
                        let advances = current.advances_to(s.status);
                        if advances {
                            Self::set_message_status(tx, id, s.status, &payload, now).await?;
                        } else if let Some(p) = payload.get("pricing").filter(|p| !p.is_null()) {
                            // A late status changes nothing but may carry the only pricing.
                            sqlx::query("UPDATE messages SET pricing = COALESCE(pricing, $1) WHERE id = $2")
                                .bind(p.to_string())
                                .bind(id)
                                .execute(&mut **tx)
                                .await?;
                        }
                        advances
                    }
                };
                if !advances {
                    return Ok(Some(None));
                }
                let event_type = s.status.event_type().unwrap_or("webhook.unknown");
                $crate::sql::set(&mut payload, "account", &event_account.as_deref());
                Ok(Some(Some($crate::sql::NewEvent::new(
                    event_account.as_deref(),
                    event_type,
                    s.timestamp_ms.unwrap_or(fallback_at),
                    &payload,
                    &s.raw,
                ))))
            }

            /// A template webhook updates the catalog at once: status, quality, category,
            /// components (what changes is decided in core: `OtherUpdate::template_change`).
            async fn apply_template_update(
                tx: &mut sqlx::Transaction<'_, <$store as $crate::sql::Backend>::Db>,
                account_id: &str,
                o: &wagate_core::webhook::OtherUpdate,
                now: i64,
            ) -> $crate::Result<()> {
                let Some(change) = o.template_change() else {
                    return Ok(());
                };
                let wagate_core::webhook::TemplateChange {
                    name,
                    language,
                    template_id,
                    status,
                    reason,
                    quality_score: quality,
                    category,
                    stated_category,
                    components,
                } = change;
                let components = components.map(|c| c.to_string());
                let updated = sqlx::query(
                    "UPDATE templates SET status = COALESCE($1, status), quality_score = COALESCE($2, quality_score),
                       category = COALESCE($3, category), template_id = COALESCE(template_id, $4), updated_at = $5,
                       components = COALESCE($9, components),
                       rejected_reason = CASE WHEN $1 IS NULL THEN rejected_reason ELSE $10 END
                     WHERE account_id = $6 AND name = $7 AND language = $8",
                )
                .bind(&status)
                .bind(&quality)
                .bind(&category)
                .bind(&template_id)
                .bind(now)
                .bind(account_id)
                .bind(&name)
                .bind(&language)
                .bind(&components)
                .bind(&reason)
                .execute(&mut **tx)
                .await?
                .rows_affected();
                if updated == 0 {
                    if let Some(status) = status {
                        // A template we had not seen (created elsewhere): known by name from now on.
                        let t = $crate::Template {
                            account_id: account_id.to_string(),
                            name,
                            language,
                            template_id,
                            status,
                            category: stated_category,
                            parameter_format: None,
                            components: None,
                            quality_score: None,
                            updated_at: now,
                            rejected_reason: reason,
                        };
                        Self::write_template(tx, &t).await?;
                    }
                }
                Ok(())
            }
        }
    };
}

pub(crate) use impl_journal_store;
