//! The SQL both backends share, written once in the dialect SQLite and PostgreSQL have in common
//! (`$n` parameters, `ON CONFLICT`, `RETURNING`). `impl_store!` instantiates it per backend; the
//! backend supplies `pool` (reads), `writer` (writes), `journal` (the webhook journal), its
//! migrations, `CLAIM_LOCK` (row locking for the queue claim) and how journal progress is kept
//! (`pending`, `counts`, `mark_processed`, `after_apply`). SQLite's `writer` is one connection: writers then wait their
//! turn in the pool's queue instead of sleeping in SQLite's busy handler.

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
                    "INSERT INTO api_keys (id, name, account_id, scopes, key_hash, prefix, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)
                     RETURNING id, name, account_id, scopes, key_hash, prefix, created_at, revoked_at",
                )
                .bind(wagate_core::ids::api_key_id())
                .bind(&k.name)
                .bind(&k.account_id)
                .bind(k.scopes.join(","))
                .bind(&k.key_hash)
                .bind(&k.prefix)
                .bind($crate::sql::now_ms())
                .fetch_one(&self.writer)
                .await?)
            }

            async fn api_key_by_hash(&self, key_hash: &str) -> $crate::Result<Option<$crate::ApiKey>> {
                Ok(sqlx::query_as(
                    "SELECT id, name, account_id, scopes, key_hash, prefix, created_at, revoked_at
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

            async fn journal_webhooks(&self, entries: &[$crate::NewJournalEntry]) -> $crate::Result<Vec<i64>> {
                let mut ids = Vec::with_capacity(entries.len());
                let mut tx = self.journal.begin().await?;
                // Multi-row inserts: one statement per chunk keeps a large group commit cheap.
                for chunk in entries.chunks(200) {
                    let mut qb = sqlx::QueryBuilder::new(
                        "INSERT INTO webhook_journal (received_at, account_id, body, state) ",
                    );
                    qb.push_values(chunk, |mut b, e| {
                        b.push_bind(e.received_at)
                            .push_bind(e.account_id.clone())
                            .push_bind(e.body.clone())
                            .push_bind(e.state);
                    });
                    qb.push(" RETURNING id");
                    let rows: Vec<(i64,)> = qb.build_query_as().fetch_all(&mut *tx).await?;
                    ids.extend(rows.into_iter().map(|r| r.0));
                }
                tx.commit().await?;
                Ok(ids)
            }

            async fn pending_journal(&self, limit: i64) -> $crate::Result<Vec<$crate::JournalEntry>> {
                self.pending(limit).await
            }

            async fn journal_counts(&self) -> $crate::Result<$crate::JournalCounts> {
                self.counts().await
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
                self.requeue(id).await
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
                for chunk in rows.chunks(400) {
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
                let mut contacts: HashMap<(String, String, String), (Option<String>, i64)> = HashMap::new();
                for r in rows.iter().filter(|r| inserted.contains(&r.wamid)) {
                    let Some(wa_id) = r.wa_id.clone() else { continue };
                    let entry = contacts
                        .entry((r.account_id.clone(), r.phone_number_id.clone(), wa_id))
                        .or_insert((None, i64::MIN));
                    if r.sent_at >= entry.1 {
                        entry.1 = r.sent_at;
                        if r.contact_name.is_some() {
                            entry.0 = r.contact_name.clone();
                        }
                    }
                }
                let contacts: Vec<_> = contacts.into_iter().collect();
                for chunk in contacts.chunks(500) {
                    let mut qb = sqlx::QueryBuilder::new(
                        "INSERT INTO contacts (account_id, phone_number_id, wa_id, name, last_inbound_at, window_expires_at, updated_at) ",
                    );
                    qb.push_values(chunk, |mut b, ((account_id, phone, wa_id), (name, sent_at))| {
                        b.push_bind(account_id.clone())
                            .push_bind(phone.clone())
                            .push_bind(wa_id.clone())
                            .push_bind(name.clone())
                            .push_bind(*sent_at)
                            .push_bind(wagate_core::window::expires_at(*sent_at))
                            .push_bind(now);
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
                           updated_at = excluded.updated_at",
                    );
                    qb.build().execute(&mut *tx).await?;
                }

                // Media of new messages: their download starts right after this commit.
                let media: Vec<&$crate::sql::InboundRow> =
                    rows.iter().filter(|r| r.media.is_some() && inserted.contains(&r.wamid)).collect();
                for chunk in media.chunks(500) {
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
                                        payload: row.payload.clone(),
                                        raw: m.raw.to_string(),
                                    });
                                    stats.events.push("message.received".into());
                                }
                            }
                            Update::Status(s) => {
                                if let Some(e) = Self::apply_status(&mut tx, account_id.as_deref(), s, fallback_at, now).await? {
                                    stats.statuses += 1;
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
                for chunk in events.chunks(500) {
                    let mut qb = sqlx::QueryBuilder::new(
                        "INSERT INTO events (id, account_id, event_type, occurred_at, created_at, payload, raw) ",
                    );
                    qb.push_values(chunk, |mut b, e| {
                        b.push_bind(e.id.clone())
                            .push_bind(e.account_id.clone())
                            .push_bind(e.event_type.clone())
                            .push_bind(e.occurred_at)
                            .push_bind(now)
                            .push_bind(e.payload.clone())
                            .push_bind(e.raw.clone());
                    });
                    qb.build().execute(&mut *tx).await?;
                }

                // 5. The journal entries are done (how that is recorded is the backend's).
                self.mark_processed(&mut tx, batch, now).await?;
                tx.commit().await?;
                self.after_apply(batch, now).await?;
                Ok(stats)
            }

            async fn enqueue_message_once(
                &self,
                m: &$crate::NewOutboundMessage,
                key: &$crate::IdempotencyKey,
                keep_ms: i64,
            ) -> $crate::Result<$crate::Enqueued> {
                let mut tx = self.writer.begin().await?;
                // An expired key is free again.
                sqlx::query("DELETE FROM idempotency_keys WHERE account_id = $1 AND key = $2 AND created_at < $3")
                    .bind(&m.account_id)
                    .bind(&key.key)
                    .bind(m.now_ms - keep_ms)
                    .execute(&mut *tx)
                    .await?;
                let claimed = sqlx::query(
                    "INSERT INTO idempotency_keys (account_id, key, request_hash, message_id, created_at)
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (account_id, key) DO NOTHING",
                )
                .bind(&m.account_id)
                .bind(&key.key)
                .bind(&key.request_hash)
                .bind(&m.id)
                .bind(m.now_ms)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if claimed == 0 {
                    let (hash, message_id): (String, String) = sqlx::query_as(
                        "SELECT request_hash, message_id FROM idempotency_keys WHERE account_id = $1 AND key = $2",
                    )
                    .bind(&m.account_id)
                    .bind(&key.key)
                    .fetch_one(&mut *tx)
                    .await?;
                    tx.rollback().await?;
                    if hash != key.request_hash {
                        return Ok($crate::Enqueued::Conflict { message_id });
                    }
                    return match $crate::Store::get_message(self, &message_id).await? {
                        Some(found) => Ok($crate::Enqueued::Replayed(found)),
                        None => Ok($crate::Enqueued::Conflict { message_id }),
                    };
                }
                let message = Self::insert_outbound(&mut tx, m).await?;
                tx.commit().await?;
                Ok($crate::Enqueued::Created(message))
            }

            async fn enqueue_message(&self, m: &$crate::NewOutboundMessage) -> $crate::Result<$crate::Message> {
                let mut tx = self.writer.begin().await?;
                let message = Self::insert_outbound(&mut tx, m).await?;
                tx.commit().await?;
                Ok(message)
            }

            async fn cancel_message(&self, id: &str, now: i64) -> $crate::Result<Option<$crate::Message>> {
                let mut tx = self.writer.begin().await?;
                // Only a job still waiting (not leased by a worker) can be taken back.
                let taken = sqlx::query("UPDATE send_jobs SET state = 'cancelled' WHERE message_id = $1 AND state = 'queued'")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                self.then_message(tx, taken, "UPDATE messages SET status = 'cancelled', updated_at = $1 WHERE id = $2", id, now)
                    .await
            }

            async fn retry_message(&self, id: &str, now: i64) -> $crate::Result<Option<$crate::Message>> {
                let mut tx = self.writer.begin().await?;
                // A send Meta refused (or that ran out of attempts): queued again, from scratch.
                let requeued = sqlx::query(
                    "UPDATE send_jobs SET state = 'queued', run_at = $1, attempts = 0, last_error = NULL,
                       lease_owner = NULL, lease_until = NULL
                     WHERE message_id = $2 AND state = 'dead'",
                )
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                self.then_message(
                    tx,
                    requeued,
                    "UPDATE messages SET status = 'queued', error = NULL, updated_at = $1 WHERE id = $2",
                    id,
                    now,
                )
                .await
            }

            async fn get_message(&self, id: &str) -> $crate::Result<Option<$crate::Message>> {
                Ok(sqlx::query_as(
                    "SELECT id, account_id, phone_number_id, direction, wamid, wa_id, message_type, status,
                       content, error, pricing, created_at, updated_at FROM messages WHERE id = $1",
                )
                .bind(id)
                .fetch_optional(&self.pool)
                .await?)
            }

            async fn message_timeline(&self, id: &str) -> $crate::Result<Vec<$crate::StatusEntry>> {
                Ok(sqlx::query_as(
                    "SELECT status, occurred_at, recorded_at, payload FROM message_statuses
                     WHERE message_id = $1 ORDER BY recorded_at, id",
                )
                .bind(id)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn list_messages(&self, f: &$crate::MessageFilter) -> $crate::Result<Vec<$crate::Message>> {
                Ok(sqlx::query_as(
                    "SELECT id, account_id, phone_number_id, direction, wamid, wa_id, message_type, status,
                       content, error, pricing, created_at, updated_at FROM messages
                     WHERE ($1 IS NULL OR account_id = $1) AND ($2 IS NULL OR direction = $2)
                       AND ($3 IS NULL OR status = $3) AND ($4 IS NULL OR wa_id = $4) AND ($5 IS NULL OR id < $5)
                     ORDER BY id DESC LIMIT $6",
                )
                .bind(&f.account_id)
                .bind(&f.direction)
                .bind(&f.status)
                .bind(&f.wa_id)
                .bind(&f.before_id)
                .bind(f.limit)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn claim_send_jobs(&self, owner: &str, limit: i64, lease_ms: i64, now_ms: i64, skip: &$crate::ClaimFilter<'_>) -> $crate::Result<Vec<$crate::SendJob>> {
                // Only queued jobs: a lease that ran out may belong to a send Meta took (the
                // gateway died during the call), so it goes to `resolve_in_doubt`, not back out.
                let mut q = sqlx::QueryBuilder::new("UPDATE send_jobs SET state = 'leased', lease_owner = ");
                q.push_bind(owner);
                q.push(", lease_until = ");
                q.push_bind(now_ms + lease_ms);
                q.push(", attempts = attempts + 1 WHERE id IN (SELECT id FROM send_jobs WHERE state = 'queued' AND run_at <= ");
                q.push_bind(now_ms);
                for (column, values) in [("account_id", skip.paused_accounts), ("phone_number_id", skip.full_numbers)] {
                    if values.is_empty() {
                        continue;
                    }
                    q.push(format!(" AND {column} NOT IN ("));
                    let mut list = q.separated(", ");
                    for v in values {
                        list.push_bind(v);
                    }
                    list.push_unseparated(")");
                }
                q.push(" ORDER BY priority, run_at, id LIMIT ");
                q.push_bind(limit);
                q.push(" ");
                q.push(Self::CLAIM_LOCK);
                q.push(") RETURNING id, message_id, account_id, phone_number_id, attempts");
                Ok(q.build_query_as().fetch_all(&self.writer).await?)
            }

            async fn renew_send_leases(&self, jobs: &[(i64, i64)], until: i64) -> $crate::Result<u64> {
                let mut renewed = 0;
                for chunk in jobs.chunks(500) {
                    let mut q = sqlx::QueryBuilder::new("UPDATE send_jobs SET lease_until = ");
                    q.push_bind(until);
                    q.push(" FROM (");
                    q.push_values(chunk, |mut row, (id, attempt)| {
                        row.push_bind(*id).push_bind(*attempt);
                    });
                    q.push(") AS v WHERE send_jobs.id = v.column1 AND send_jobs.attempts = v.column2 AND send_jobs.state = 'leased'");
                    renewed += q.build().execute(&self.writer).await?.rows_affected();
                }
                Ok(renewed)
            }

            async fn release_send_job(&self, job: &$crate::SendJob) -> $crate::Result<bool> {
                Ok(sqlx::query(
                    "UPDATE send_jobs SET state = 'queued', lease_owner = NULL, lease_until = NULL
                     WHERE id = $1 AND attempts = $2 AND state = 'leased'",
                )
                .bind(job.id)
                .bind(job.attempts)
                .execute(&self.writer)
                .await?
                .rows_affected()
                    == 1)
            }

            async fn resolve_in_doubt(&self, now: i64, act_before: i64, action: $crate::InDoubtAction, limit: i64) -> $crate::Result<Vec<$crate::InDoubt>> {
                let sql = format!(
                    "SELECT j.id, j.message_id, j.attempts, j.lease_until, m.callback_data, m.account_id, m.phone_number_id
                     FROM send_jobs j JOIN messages m ON m.id = j.message_id
                     WHERE j.state = 'leased' AND j.lease_until < $1 ORDER BY j.id LIMIT $2 {}",
                    Self::CLAIM_LOCK
                );
                let mut tx = self.writer.begin().await?;
                let expired: Vec<(i64, String, i64, i64, Option<String>, String, String)> =
                    sqlx::query_as(&sql).bind(now).bind(limit).fetch_all(&mut *tx).await?;
                let mut resolved = Vec::new();
                for (job_id, message_id, attempts, lease_until, callback, account_id, phone_number_id) in expired {
                    // A status Meta already sent for this send tells its wamid.
                    let orphans: Vec<(String,)> = match &callback {
                        Some(c) => sqlx::query_as(
                            "SELECT DISTINCT wamid FROM message_statuses WHERE message_id IS NULL AND callback_data = $1 LIMIT 2",
                        )
                        .bind(c)
                        .fetch_all(&mut *tx)
                        .await?,
                        None => Vec::new(),
                    };
                    if let [(wamid,)] = orphans.as_slice() {
                        if Self::adopt_send(&mut tx, job_id, attempts, &message_id, wamid, None, now).await? {
                            resolved.push($crate::InDoubt { message_id, outcome: $crate::InDoubtOutcome::Accepted { wamid: wamid.clone() } });
                        }
                        continue;
                    }
                    if lease_until >= act_before {
                        continue;
                    }
                    let note = serde_json::json!({
                        "code": "in_doubt",
                        "title": "the gateway stopped during the call to Meta, and no status webhook for this send arrived in time",
                        "details": {"attempt": attempts},
                        "hint": match action {
                            $crate::InDoubtAction::Retry => "sent again (sender.in_doubt_action = \"retry\"); if Meta had taken the first call, the user gets it twice",
                            $crate::InDoubtAction::Unknown => "not sent again (sender.in_doubt_action = \"unknown\"); check with the user, or POST /v1/messages/{id}/retry",
                        },
                        "retry": "fix",
                    });
                    // Fenced by the attempt: requeued to go again, or ended (`dead`) as unknown.
                    let (state, run_at) = match action {
                        $crate::InDoubtAction::Retry => ("queued", Some(now)),
                        $crate::InDoubtAction::Unknown => ("dead", None),
                    };
                    let n = sqlx::query(
                        "UPDATE send_jobs SET state = $1, run_at = COALESCE($2, run_at), lease_owner = NULL, lease_until = NULL,
                           last_error = $3 WHERE id = $4 AND attempts = $5 AND state = 'leased'",
                    )
                    .bind(state)
                    .bind(run_at)
                    .bind(note.to_string())
                    .bind(job_id)
                    .bind(attempts)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    if n != 1 {
                        continue;
                    }
                    if action == $crate::InDoubtAction::Retry {
                        resolved.push($crate::InDoubt { message_id, outcome: $crate::InDoubtOutcome::Requeued });
                        continue;
                    }
                    sqlx::query("UPDATE messages SET status = 'unknown', error = $1, updated_at = $2 WHERE id = $3")
                        .bind(note.to_string())
                        .bind(now)
                        .bind(&message_id)
                        .execute(&mut *tx)
                        .await?;
                    let payload = serde_json::json!({
                        "message_id": message_id,
                        "account": account_id,
                        "phone_number_id": phone_number_id,
                        "wamid": null,
                        "status": "unknown",
                        "errors": [note],
                    });
                    Self::insert_event(&mut tx, Some(&account_id), "message.unknown", now, &payload, &serde_json::Value::Null, now).await?;
                    resolved.push($crate::InDoubt { message_id, outcome: $crate::InDoubtOutcome::Unknown });
                }
                tx.commit().await?;
                Ok(resolved)
            }

            async fn finish_send_job(&self, job: &$crate::SendJob, owner: &str, outcome: &$crate::SendOutcome, now: i64) -> $crate::Result<bool> {
                let done = $crate::Store::finish_send_jobs(self, &[(job.clone(), owner.to_string(), outcome.clone())], now).await?;
                Ok(done.first().copied().unwrap_or(false))
            }

            async fn finish_send_jobs(&self, finished: &[($crate::SendJob, String, $crate::SendOutcome)], now: i64) -> $crate::Result<Vec<bool>> {
                // One transaction (one disk sync) for the lot: the sender group-commits outcomes.
                let mut tx = self.writer.begin().await?;
                let mut done = Vec::with_capacity(finished.len());
                for (job, owner, outcome) in finished {
                    done.push(Self::finish_one(&mut tx, job, owner, outcome, now).await?);
                }
                tx.commit().await?;
                Ok(done)
            }

            async fn get_contact(&self, account_id: &str, phone_number_id: &str, wa_id: &str) -> $crate::Result<Option<$crate::Contact>> {
                Ok(sqlx::query_as(
                    "SELECT account_id, phone_number_id, wa_id, name, last_inbound_at, window_expires_at, updated_at
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
                    "SELECT account_id, phone_number_id, wa_id, name, last_inbound_at, window_expires_at, updated_at
                     FROM contacts WHERE ($1 IS NULL OR account_id = $1) AND wa_id = $2 ORDER BY updated_at DESC",
                )
                .bind(account_id)
                .bind(wa_id)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn list_events(&self, f: &$crate::EventFilter) -> $crate::Result<Vec<$crate::Event>> {
                let mut qb = sqlx::QueryBuilder::new(
                    "SELECT seq, id, account_id, event_type, occurred_at, created_at, payload, raw FROM events WHERE 1 = 1",
                );
                if let Some(a) = &f.account_id {
                    qb.push(" AND account_id = ").push_bind(a.clone());
                }
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
                if let Some(c) = f.after_seq {
                    qb.push(" AND seq > ").push_bind(c);
                }
                qb.push(" ORDER BY seq LIMIT ").push_bind(f.limit);
                Ok(qb.build_query_as().fetch_all(&self.pool).await?)
            }

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
                       quality_score, updated_at FROM templates WHERE ($1 IS NULL OR account_id = $1) ORDER BY name, language",
                )
                .bind(account_id)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn templates_named(&self, account_id: &str, name: &str) -> $crate::Result<Vec<$crate::Template>> {
                Ok(sqlx::query_as(
                    "SELECT account_id, name, language, template_id, status, category, parameter_format, components,
                       quality_score, updated_at FROM templates WHERE account_id = $1 AND name = $2 ORDER BY language",
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

            async fn claim_media(&self, limit: i64, lease_ms: i64, now: i64) -> $crate::Result<Vec<$crate::Media>> {
                let sql = format!(
                    "UPDATE media SET lease_until = $1, attempts = attempts + 1
                     WHERE id IN (SELECT id FROM media WHERE state = 'pending' AND next_attempt_at <= $2
                       AND (lease_until IS NULL OR lease_until < $2) ORDER BY next_attempt_at LIMIT $3 {})
                     RETURNING {}",
                    Self::CLAIM_LOCK,
                    $crate::sql::MEDIA_COLUMNS
                );
                Ok(sqlx::query_as(&sql).bind(now + lease_ms).bind(now).bind(limit).fetch_all(&self.writer).await?)
            }

            async fn finish_media(&self, id: &str, outcome: &$crate::MediaOutcome, now: i64) -> $crate::Result<()> {
                use $crate::MediaOutcome;
                let q = match outcome {
                    MediaOutcome::Stored { content_hash, size } => sqlx::query(
                        "UPDATE media SET state = 'stored', content_hash = $1, size = $2, error = NULL, lease_until = NULL, updated_at = $3 WHERE id = $4",
                    )
                    .bind(content_hash.clone())
                    .bind(*size),
                    MediaOutcome::Retry { at, error } => sqlx::query(
                        "UPDATE media SET next_attempt_at = $1, error = $2, lease_until = NULL, updated_at = $3 WHERE id = $4",
                    )
                    .bind(*at)
                    .bind(error.clone()),
                    MediaOutcome::Failed { error } => sqlx::query(
                        "UPDATE media SET state = 'failed', error = $1, lease_until = NULL, updated_at = $2 WHERE id = $3",
                    )
                    .bind(error.clone()),
                };
                q.bind(now).bind(id).execute(&self.writer).await?;
                Ok(())
            }

            async fn get_media(&self, id: &str) -> $crate::Result<Option<$crate::Media>> {
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
        }

        impl $store {
            /// After a change to a message's send job: when the job changed (`changed` rows),
            /// the message follows (`message_sql`, binding `now` and the id) and both commit;
            /// otherwise nothing changes (`None`).
            async fn then_message(
                &self,
                mut tx: sqlx::Transaction<'_, <$store as $crate::sql::Backend>::Db>,
                changed: u64,
                message_sql: &'static str,
                id: &str,
                now: i64,
            ) -> $crate::Result<Option<$crate::Message>> {
                if changed == 0 {
                    tx.rollback().await?;
                    return Ok(None);
                }
                sqlx::query(message_sql).bind(now).bind(id).execute(&mut *tx).await?;
                tx.commit().await?;
                $crate::Store::get_message(self, id).await
            }

            /// An outbound message and its send job, in the caller's transaction.
            async fn insert_outbound(
                tx: &mut sqlx::Transaction<'_, <$store as $crate::sql::Backend>::Db>,
                m: &$crate::NewOutboundMessage,
            ) -> $crate::Result<$crate::Message> {
                let message: $crate::Message = sqlx::query_as(
                    "INSERT INTO messages (id, account_id, phone_number_id, direction, wa_id, message_type, status,
                       content, created_at, updated_at, callback_data)
                     VALUES ($1, $2, $3, 'outbound', $4, $5, 'queued', $6, $7, $7, $8)
                     RETURNING id, account_id, phone_number_id, direction, wamid, wa_id, message_type, status,
                       content, error, pricing, created_at, updated_at",
                )
                .bind(&m.id)
                .bind(&m.account_id)
                .bind(&m.phone_number_id)
                .bind(&m.wa_id)
                .bind(&m.message_type)
                .bind(m.content.to_string())
                .bind(m.now_ms)
                .bind(
                    m.content
                        .get("biz_opaque_callback_data")
                        .and_then(|v| v.as_str())
                        .unwrap_or(&m.id),
                )
                .fetch_one(&mut **tx)
                .await?;
                sqlx::query(
                    "INSERT INTO send_jobs (message_id, account_id, phone_number_id, state, run_at, created_at, priority)
                     VALUES ($1, $2, $3, 'queued', $4, $5, $6)",
                )
                .bind(&m.id)
                .bind(&m.account_id)
                .bind(&m.phone_number_id)
                .bind(m.send_at)
                .bind(m.now_ms)
                .bind(m.priority)
                .execute(&mut **tx)
                .await?;
                Ok(message)
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
                        seen.iter()
                            .filter_map(|(st,)| MessageStatus::parse(st))
                            .fold(MessageStatus::Accepted, |cur, st| if cur.advances_to(st) { st } else { cur })
                            .advances_to(s.status)
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

            async fn write_template(
                tx: &mut sqlx::Transaction<'_, <$store as $crate::sql::Backend>::Db>,
                t: &$crate::Template,
            ) -> $crate::Result<()> {
                sqlx::query(
                    "INSERT INTO templates (account_id, name, language, template_id, status, category, parameter_format,
                       components, quality_score, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                     ON CONFLICT (account_id, name, language) DO UPDATE SET
                       template_id = COALESCE(excluded.template_id, templates.template_id),
                       status = excluded.status,
                       category = COALESCE(excluded.category, templates.category),
                       parameter_format = COALESCE(excluded.parameter_format, templates.parameter_format),
                       components = COALESCE(excluded.components, templates.components),
                       quality_score = COALESCE(excluded.quality_score, templates.quality_score),
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
                .execute(&mut **tx)
                .await?;
                Ok(())
            }

            /// A template webhook updates the catalog at once: status, quality, category.
            async fn apply_template_update(
                tx: &mut sqlx::Transaction<'_, <$store as $crate::sql::Backend>::Db>,
                account_id: &str,
                o: &wagate_core::webhook::OtherUpdate,
                now: i64,
            ) -> $crate::Result<()> {
                let v = &o.raw;
                let s = |k: &str| v.get(k).and_then(|x| match x {
                    serde_json::Value::String(s) => Some(s.clone()),
                    serde_json::Value::Number(n) => Some(n.to_string()),
                    _ => None,
                });
                let (Some(name), Some(language)) = (s("message_template_name"), s("message_template_language")) else {
                    return Ok(());
                };
                let template_id = s("message_template_id");
                let (status, quality, category) = match o.field.as_str() {
                    "message_template_status_update" => (s("event"), None, None),
                    "message_template_quality_update" => (None, s("new_quality_score"), None),
                    "template_category_update" => (None, None, s("new_category")),
                    _ => (None, None, None),
                };
                // A components update carries the new texts and buttons: rebuild the components.
                let components = (o.field == "message_template_components_update").then(|| {
                    let mut c = Vec::new();
                    if let Some(t) = s("message_template_title") {
                        c.push(serde_json::json!({"type": "HEADER", "format": "TEXT", "text": t}));
                    }
                    c.push(serde_json::json!({"type": "BODY", "text": s("message_template_element").unwrap_or_default()}));
                    if let Some(f) = s("message_template_footer") {
                        c.push(serde_json::json!({"type": "FOOTER", "text": f}));
                    }
                    if let Some(b) = v.get("message_template_buttons").and_then(serde_json::Value::as_array) {
                        let buttons: Vec<serde_json::Value> = b
                            .iter()
                            .map(|x| serde_json::json!({
                                "type": x.get("message_template_button_type"),
                                "text": x.get("message_template_button_text"),
                                "url": x.get("message_template_button_url"),
                                "phone_number": x.get("message_template_button_phone_number"),
                            }))
                            .collect();
                        c.push(serde_json::json!({"type": "BUTTONS", "buttons": buttons}));
                    }
                    serde_json::Value::Array(c).to_string()
                });
                let updated = sqlx::query(
                    "UPDATE templates SET status = COALESCE($1, status), quality_score = COALESCE($2, quality_score),
                       category = COALESCE($3, category), template_id = COALESCE(template_id, $4), updated_at = $5,
                       components = COALESCE($9, components)
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
                            category: s("message_template_category"),
                            parameter_format: None,
                            components: None,
                            quality_score: None,
                            updated_at: now,
                        };
                        Self::write_template(tx, &t).await?;
                    }
                }
                Ok(())
            }

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
                    "INSERT INTO events (id, account_id, event_type, occurred_at, created_at, payload, raw)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(wagate_core::ids::event_id())
                .bind(account_id)
                .bind(event_type)
                .bind(occurred_at)
                .bind(now)
                .bind(payload.to_string())
                .bind(raw.to_string())
                .execute(&mut **tx)
                .await?;
                Ok(())
            }

            /// One send outcome, fenced by the job's attempt, in the caller's transaction; false
            /// when the job is no longer this attempt's (nothing changes).
            async fn finish_one(
                tx: &mut sqlx::Transaction<'_, <$store as $crate::sql::Backend>::Db>,
                job: &$crate::SendJob,
                owner: &str,
                outcome: &$crate::SendOutcome,
                now: i64,
            ) -> $crate::Result<bool> {
                use $crate::SendOutcome;
                let (state, run_at, error) = match outcome {
                    SendOutcome::Accepted { .. } => ("done", None, None),
                    SendOutcome::Failed { error } => ("dead", None, Some(error.to_string())),
                    SendOutcome::Retry { run_at, error } => ("queued", Some(*run_at), Some(error.to_string())),
                    SendOutcome::InDoubt { error } => ("leased", None, Some(error.to_string())),
                };
                // In doubt: the lease ends now, so the job goes to `resolve_in_doubt`.
                let lease_until = matches!(outcome, SendOutcome::InDoubt { .. }).then_some(now);
                // The fence: only the holder of this attempt's lease may finish the job (a lease
                // taken again after it ran out has another attempt number).
                let fenced = sqlx::query(
                    "UPDATE send_jobs SET state = $1, run_at = COALESCE($2, run_at), last_error = $3,
                       lease_owner = NULL, lease_until = $7
                     WHERE id = $4 AND attempts = $5 AND lease_owner = $6 AND state = 'leased'",
                )
                .bind(state)
                .bind(run_at)
                .bind(&error)
                .bind(job.id)
                .bind(job.attempts)
                .bind(owner)
                .bind(lease_until)
                .execute(&mut **tx)
                .await?
                .rows_affected();
                if fenced != 1 {
                    return Ok(false);
                }
                match outcome {
                    SendOutcome::Accepted { wamid, wa_id, .. } => {
                        Self::adopt_wamid(tx, &job.message_id, wamid, wa_id.as_deref(), now).await?;
                    }
                    SendOutcome::Failed { error } => {
                        sqlx::query("UPDATE messages SET status = 'failed', error = $1, updated_at = $2 WHERE id = $3")
                            .bind(error.to_string())
                            .bind(now)
                            .bind(&job.message_id)
                            .execute(&mut **tx)
                            .await?;
                        let payload = serde_json::json!({
                            "message_id": job.message_id,
                            "account": job.account_id,
                            "phone_number_id": job.phone_number_id,
                            "wamid": null,
                            "status": "failed",
                            "errors": [error],
                        });
                        Self::insert_event(tx, Some(&job.account_id), "message.failed", now, &payload, &serde_json::Value::Null, now).await?;
                    }
                    SendOutcome::Retry { error, .. } | SendOutcome::InDoubt { error } => {
                        sqlx::query("UPDATE messages SET error = $1, updated_at = $2 WHERE id = $3")
                            .bind(error.to_string())
                            .bind(now)
                            .bind(&job.message_id)
                            .execute(&mut **tx)
                            .await?;
                    }
                }
                Ok(true)
            }

            /// Meta took the send: the message gets its wamid, and statuses that arrived before
            /// we knew it join their message.
            async fn adopt_wamid(
                tx: &mut sqlx::Transaction<'_, <$store as $crate::sql::Backend>::Db>,
                message_id: &str,
                wamid: &str,
                wa_id: Option<&str>,
                now: i64,
            ) -> $crate::Result<()> {
                sqlx::query(
                    "UPDATE messages SET wamid = $1, wa_id = COALESCE($2, wa_id), status = 'accepted', updated_at = $3
                     WHERE id = $4 AND status IN ('queued', 'unknown')",
                )
                .bind(wamid)
                .bind(wa_id)
                .bind(now)
                .bind(message_id)
                .execute(&mut **tx)
                .await?;
                let early: Vec<(String, String)> = sqlx::query_as(
                    "UPDATE message_statuses SET message_id = $1 WHERE wamid = $2 AND message_id IS NULL
                     RETURNING status, payload",
                )
                .bind(message_id)
                .bind(wamid)
                .fetch_all(&mut **tx)
                .await?;
                let mut current = wagate_core::status::MessageStatus::Accepted;
                for (status, payload) in early {
                    if let Some(s) = wagate_core::status::MessageStatus::parse(&status) {
                        if current.advances_to(s) {
                            current = s;
                            let payload: serde_json::Value = serde_json::from_str(&payload).unwrap_or_default();
                            Self::set_message_status(tx, message_id, s, &payload, now).await?;
                        }
                    }
                }
                Ok(())
            }

            /// A send in doubt (its lease ran out during the call) turns out to have been taken by
            /// Meta: the job is done and the message has its wamid. Fenced by the attempt.
            async fn adopt_send(
                tx: &mut sqlx::Transaction<'_, <$store as $crate::sql::Backend>::Db>,
                job_id: i64,
                attempts: i64,
                message_id: &str,
                wamid: &str,
                wa_id: Option<&str>,
                now: i64,
            ) -> $crate::Result<bool> {
                let n = sqlx::query(
                    "UPDATE send_jobs SET state = 'done', lease_owner = NULL, lease_until = NULL, last_error = NULL
                     WHERE id = $1 AND attempts = $2 AND state IN ('leased', 'dead')",
                )
                .bind(job_id)
                .bind(attempts)
                .execute(&mut **tx)
                .await?
                .rows_affected();
                if n == 1 {
                    Self::adopt_wamid(tx, message_id, wamid, wa_id, now).await?;
                    tracing::info!(message = message_id, wamid, "a send in doubt was resolved from Meta's status webhook: sent once");
                }
                Ok(n == 1)
            }

            async fn set_message_status(
                tx: &mut sqlx::Transaction<'_, <$store as $crate::sql::Backend>::Db>,
                message_id: &str,
                status: wagate_core::status::MessageStatus,
                payload: &serde_json::Value,
                now: i64,
            ) -> $crate::Result<()> {
                let error = payload
                    .get("errors")
                    .and_then(|e| e.get(0))
                    .map(|e| e.to_string());
                let pricing = payload.get("pricing").filter(|p| !p.is_null()).map(|p| p.to_string());
                sqlx::query(
                    "UPDATE messages SET status = $1, error = COALESCE($2, error), pricing = COALESCE($3, pricing),
                       updated_at = $4 WHERE id = $5",
                )
                .bind(status.as_str())
                .bind(error)
                .bind(pricing)
                .bind(now)
                .bind(message_id)
                .execute(&mut **tx)
                .await?;
                Ok(())
            }
        }
    };
}

pub(crate) use impl_store;

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

/// Sets a top-level key of a JSON object payload.
pub(crate) fn set<T: serde::Serialize + ?Sized>(payload: &mut serde_json::Value, key: &str, value: &T) {
    if let Some(obj) = payload.as_object_mut() {
        obj.insert(key.to_string(), serde_json::to_value(value).unwrap_or_default());
    }
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
        let mut payload = m.payload.clone();
        set(&mut payload, "message_id", &message_id);
        set(&mut payload, "account", account_id);
        // Inbound media gets our id and download URL at once; the bytes follow.
        let media = payload
            .pointer("/content/media/id")
            .and_then(serde_json::Value::as_str)
            .map(|meta_id| InboundMedia {
                id: wagate_core::ids::new_id("med"),
                meta_media_id: meta_id.to_string(),
                mime_type: payload
                    .pointer("/content/media/mime_type")
                    .and_then(serde_json::Value::as_str)
                    .map(str::to_string),
                sha256: payload
                    .pointer("/content/media/sha256")
                    .and_then(serde_json::Value::as_str)
                    .map(str::to_string),
            });
        if let (Some(m), Some(obj)) = (
            &media,
            payload
                .pointer_mut("/content/media")
                .and_then(serde_json::Value::as_object_mut),
        ) {
            obj.insert("media_id".into(), serde_json::json!(m.id));
            obj.insert("download_url".into(), serde_json::json!(format!("/v1/media/{}", m.id)));
        }
        Self {
            message_id,
            account_id: account_id.to_string(),
            phone_number_id: m.phone_number_id.clone(),
            wamid: m.wamid.clone(),
            wa_id: m.contact_key().map(str::to_string),
            message_type: m.message_type.clone(),
            contact_name: m.contact_name.clone(),
            sent_at: m.timestamp_ms.unwrap_or(received_at),
            payload: payload.to_string(),
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
            payload: payload.to_string(),
            raw: raw.to_string(),
        }
    }
}
