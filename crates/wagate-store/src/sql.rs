//! The SQL both backends share, written once in the dialect SQLite and PostgreSQL have in common
//! (`$n` parameters, `ON CONFLICT`, `RETURNING`). `impl_store!` instantiates it per backend; the
//! backend supplies its pool, its migrations and `CLAIM_LOCK` (row locking for the queue claim).

macro_rules! impl_store {
    ($store:ty, $backend:literal) => {
        #[async_trait::async_trait]
        impl $crate::Store for $store {
            fn backend(&self) -> &'static str {
                $backend
            }

            async fn migrate(&self) -> $crate::Result<()> {
                Self::MIGRATOR.run(&self.pool).await?;
                Ok(())
            }

            async fn ping(&self) -> $crate::Result<()> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }

            async fn upsert_account(&self, a: &$crate::NewAccount) -> $crate::Result<$crate::Account> {
                let mut tx = self.pool.begin().await?;
                let now = $crate::sql::now_ms();
                let account: $crate::Account = sqlx::query_as(
                    "INSERT INTO accounts (id, name, waba_id, created_at) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (name) DO UPDATE SET waba_id = excluded.waba_id
                     RETURNING id, name, waba_id, created_at",
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
                Ok(sqlx::query_as("SELECT id, name, waba_id, created_at FROM accounts ORDER BY created_at, id")
                    .fetch_all(&self.pool)
                    .await?)
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
                .fetch_one(&self.pool)
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
                let mut tx = self.pool.begin().await?;
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

            async fn pending_journal(&self, after_id: i64, limit: i64) -> $crate::Result<Vec<$crate::JournalEntry>> {
                Ok(sqlx::query_as(
                    "SELECT id, received_at, account_id, body FROM webhook_journal
                     WHERE state = 'pending' AND id > $1 ORDER BY id LIMIT $2",
                )
                .bind(after_id)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn journal_counts(&self) -> $crate::Result<$crate::JournalCounts> {
                let rows: Vec<(String, i64)> =
                    sqlx::query_as("SELECT state, COUNT(*) FROM webhook_journal GROUP BY state")
                        .fetch_all(&self.pool)
                        .await?;
                let mut c = $crate::JournalCounts::default();
                for (state, n) in rows {
                    match state.as_str() {
                        "pending" => c.pending = n,
                        "processed" => c.processed = n,
                        "quarantined" => c.quarantined = n,
                        _ => c.failed += n,
                    }
                }
                Ok(c)
            }

            async fn apply_webhooks(&self, batch: &[$crate::AppliedWebhook]) -> $crate::Result<$crate::ApplyStats> {
                use wagate_core::webhook::Update;
                let mut stats = $crate::ApplyStats::default();
                let mut tx = self.pool.begin().await?;
                let now = $crate::sql::now_ms();
                for webhook in batch {
                    for (account_id, update) in &webhook.updates {
                        let fallback_at = webhook.received_at;
                        match update {
                            Update::Message(m) => {
                                let Some(account_id) = account_id else { continue };
                                let message_id = wagate_core::ids::message_id();
                                let mut payload = m.payload.clone();
                                $crate::sql::set(&mut payload, "message_id", &message_id);
                                $crate::sql::set(&mut payload, "account", account_id);
                                let inserted: Option<(String,)> = sqlx::query_as(
                                    "INSERT INTO messages (id, account_id, phone_number_id, direction, wamid, wa_id,
                                       message_type, status, content, created_at, updated_at)
                                     VALUES ($1, $2, $3, 'inbound', $4, $5, $6, 'received', $7, $8, $8)
                                     ON CONFLICT (wamid) DO NOTHING RETURNING id",
                                )
                                .bind(&message_id)
                                .bind(account_id)
                                .bind(&m.phone_number_id)
                                .bind(&m.wamid)
                                .bind(m.contact_key())
                                .bind(&m.message_type)
                                .bind(payload.to_string())
                                .bind(now)
                                .fetch_optional(&mut *tx)
                                .await?;
                                if inserted.is_none() {
                                    stats.duplicate_messages += 1;
                                    continue;
                                }
                                stats.new_messages += 1;
                                let sent_at = m.timestamp_ms.unwrap_or(fallback_at);
                                if let Some(wa_id) = m.contact_key() {
                                    sqlx::query(
                                        "INSERT INTO contacts (account_id, phone_number_id, wa_id, name, last_inbound_at,
                                           window_expires_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
                                         ON CONFLICT (account_id, phone_number_id, wa_id) DO UPDATE SET
                                           name = COALESCE(excluded.name, contacts.name),
                                           last_inbound_at = CASE WHEN contacts.last_inbound_at IS NULL
                                             OR excluded.last_inbound_at > contacts.last_inbound_at
                                             THEN excluded.last_inbound_at ELSE contacts.last_inbound_at END,
                                           window_expires_at = CASE WHEN contacts.window_expires_at IS NULL
                                             OR excluded.window_expires_at > contacts.window_expires_at
                                             THEN excluded.window_expires_at ELSE contacts.window_expires_at END,
                                           updated_at = excluded.updated_at",
                                    )
                                    .bind(account_id)
                                    .bind(&m.phone_number_id)
                                    .bind(wa_id)
                                    .bind(&m.contact_name)
                                    .bind(sent_at)
                                    .bind(wagate_core::window::expires_at(sent_at))
                                    .bind(now)
                                    .execute(&mut *tx)
                                    .await?;
                                }
                                Self::insert_event(&mut tx, Some(account_id), "message.received", sent_at, &payload, &m.raw, now).await?;
                                stats.events.push("message.received".into());
                            }
                            Update::Status(s) => {
                                let message: Option<(String, String, String)> = sqlx::query_as(
                                    "SELECT id, account_id, status FROM messages WHERE wamid = $1",
                                )
                                .bind(&s.wamid)
                                .fetch_optional(&mut *tx)
                                .await?;
                                let mut payload = s.payload.clone();
                                let message_id = message.as_ref().map(|m| m.0.clone());
                                $crate::sql::set(&mut payload, "message_id", &message_id.as_deref());
                                let inserted: Option<(i64,)> = sqlx::query_as(
                                    "INSERT INTO message_statuses (wamid, message_id, status, occurred_at, recorded_at, payload)
                                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (wamid, status) DO NOTHING RETURNING id",
                                )
                                .bind(&s.wamid)
                                .bind(&message_id)
                                .bind(s.status.as_str())
                                .bind(s.timestamp_ms)
                                .bind(now)
                                .bind(payload.to_string())
                                .fetch_optional(&mut *tx)
                                .await?;
                                if inserted.is_none() {
                                    continue;
                                }
                                stats.statuses += 1;
                                let event_account = message.as_ref().map(|m| m.1.clone()).or_else(|| account_id.clone());
                                let emit = match &message {
                                    // Not our message (yet): order by what was recorded for the wamid.
                                    None => {
                                        let seen: Vec<(String,)> = sqlx::query_as(
                                            "SELECT status FROM message_statuses WHERE wamid = $1 AND id <> $2",
                                        )
                                        .bind(&s.wamid)
                                        .bind(inserted.map(|r| r.0))
                                        .fetch_all(&mut *tx)
                                        .await?;
                                        let current = seen
                                            .iter()
                                            .filter_map(|(st,)| wagate_core::status::MessageStatus::parse(st))
                                            .fold(wagate_core::status::MessageStatus::Accepted, |cur, st| {
                                                if cur.advances_to(st) { st } else { cur }
                                            });
                                        current.advances_to(s.status)
                                    }
                                    Some((id, _, current)) => {
                                        let current = wagate_core::status::MessageStatus::parse(current)
                                            .unwrap_or(wagate_core::status::MessageStatus::Queued);
                                        let advances = current.advances_to(s.status);
                                        if advances {
                                            Self::set_message_status(&mut tx, id, s.status, &payload, now).await?;
                                        } else if let Some(p) = payload.get("pricing").filter(|p| !p.is_null()) {
                                            // A late status changes nothing but may carry the only pricing.
                                            sqlx::query("UPDATE messages SET pricing = COALESCE(pricing, $1) WHERE id = $2")
                                                .bind(p.to_string())
                                                .bind(id)
                                                .execute(&mut *tx)
                                                .await?;
                                        }
                                        advances
                                    }
                                };
                                if emit {
                                    let et = s.status.event_type().unwrap_or("webhook.unknown");
                                    $crate::sql::set(&mut payload, "account", &event_account.as_deref());
                                    Self::insert_event(&mut tx, event_account.as_deref(), et, s.timestamp_ms.unwrap_or(fallback_at), &payload, &s.raw, now).await?;
                                    stats.events.push(et.into());
                                }
                            }
                            Update::Other(o) => {
                                let mut payload = o.payload.clone();
                                $crate::sql::set(&mut payload, "account", &account_id.as_deref());
                                Self::insert_event(&mut tx, account_id.as_deref(), o.event_type, o.occurred_ms.unwrap_or(fallback_at), &payload, &o.raw, now).await?;
                                stats.events.push(o.event_type.into());
                            }
                        }
                    }
                    let state = if webhook.error.is_some() { "failed" } else { "processed" };
                    sqlx::query("UPDATE webhook_journal SET state = $1, processed_at = $2, error = $3 WHERE id = $4")
                        .bind(state)
                        .bind(now)
                        .bind(&webhook.error)
                        .bind(webhook.journal_id)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(stats)
            }

            async fn enqueue_message(&self, m: &$crate::NewOutboundMessage) -> $crate::Result<$crate::Message> {
                let mut tx = self.pool.begin().await?;
                let message: $crate::Message = sqlx::query_as(
                    "INSERT INTO messages (id, account_id, phone_number_id, direction, wa_id, message_type, status,
                       content, created_at, updated_at)
                     VALUES ($1, $2, $3, 'outbound', $4, $5, 'queued', $6, $7, $7)
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
                .fetch_one(&mut *tx)
                .await?;
                sqlx::query(
                    "INSERT INTO send_jobs (message_id, account_id, phone_number_id, state, run_at, created_at)
                     VALUES ($1, $2, $3, 'queued', $4, $4)",
                )
                .bind(&m.id)
                .bind(&m.account_id)
                .bind(&m.phone_number_id)
                .bind(m.now_ms)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(message)
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

            async fn claim_send_jobs(&self, owner: &str, limit: i64, lease_ms: i64, now_ms: i64) -> $crate::Result<Vec<$crate::SendJob>> {
                let sql = format!(
                    "UPDATE send_jobs SET state = 'leased', lease_owner = $1, lease_until = $2, attempts = attempts + 1
                     WHERE id IN (SELECT id FROM send_jobs
                       WHERE (state = 'queued' AND run_at <= $3) OR (state = 'leased' AND lease_until < $3)
                       ORDER BY run_at, id LIMIT $4 {})
                     RETURNING id, message_id, account_id, phone_number_id, attempts",
                    Self::CLAIM_LOCK
                );
                Ok(sqlx::query_as(&sql)
                    .bind(owner)
                    .bind(now_ms + lease_ms)
                    .bind(now_ms)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn finish_send_job(&self, job: &$crate::SendJob, owner: &str, outcome: &$crate::SendOutcome, now: i64) -> $crate::Result<bool> {
                use $crate::SendOutcome;
                let mut tx = self.pool.begin().await?;
                let (state, run_at, error) = match outcome {
                    SendOutcome::Accepted { .. } => ("done", None, None),
                    SendOutcome::Failed { error } => ("dead", None, Some(error.to_string())),
                    SendOutcome::Retry { run_at, error } => ("queued", Some(*run_at), Some(error.to_string())),
                };
                // The fence: only the holder of the lease may finish the job.
                let fenced = sqlx::query(
                    "UPDATE send_jobs SET state = $1, run_at = COALESCE($2, run_at), last_error = $3,
                       lease_owner = NULL, lease_until = NULL
                     WHERE id = $4 AND lease_owner = $5 AND state = 'leased'",
                )
                .bind(state)
                .bind(run_at)
                .bind(&error)
                .bind(job.id)
                .bind(owner)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if fenced != 1 {
                    return Ok(false);
                }
                match outcome {
                    SendOutcome::Accepted { wamid, wa_id, .. } => {
                        sqlx::query(
                            "UPDATE messages SET wamid = $1, wa_id = COALESCE($2, wa_id), status = 'accepted', updated_at = $3
                             WHERE id = $4 AND status = 'queued'",
                        )
                        .bind(wamid)
                        .bind(wa_id)
                        .bind(now)
                        .bind(&job.message_id)
                        .execute(&mut *tx)
                        .await?;
                        // Statuses that arrived before we knew the wamid now join their message.
                        let early: Vec<(String, String)> = sqlx::query_as(
                            "UPDATE message_statuses SET message_id = $1 WHERE wamid = $2 AND message_id IS NULL
                             RETURNING status, payload",
                        )
                        .bind(&job.message_id)
                        .bind(wamid)
                        .fetch_all(&mut *tx)
                        .await?;
                        let mut current = wagate_core::status::MessageStatus::Accepted;
                        for (status, payload) in early {
                            if let Some(s) = wagate_core::status::MessageStatus::parse(&status) {
                                if current.advances_to(s) {
                                    current = s;
                                    let payload: serde_json::Value = serde_json::from_str(&payload).unwrap_or_default();
                                    Self::set_message_status(&mut tx, &job.message_id, s, &payload, now).await?;
                                }
                            }
                        }
                    }
                    SendOutcome::Failed { error } => {
                        sqlx::query("UPDATE messages SET status = 'failed', error = $1, updated_at = $2 WHERE id = $3")
                            .bind(error.to_string())
                            .bind(now)
                            .bind(&job.message_id)
                            .execute(&mut *tx)
                            .await?;
                        let payload = serde_json::json!({
                            "message_id": job.message_id,
                            "account": job.account_id,
                            "phone_number_id": job.phone_number_id,
                            "wamid": null,
                            "status": "failed",
                            "errors": [error],
                        });
                        Self::insert_event(&mut tx, Some(&job.account_id), "message.failed", now, &payload, &serde_json::Value::Null, now).await?;
                    }
                    SendOutcome::Retry { error, .. } => {
                        sqlx::query("UPDATE messages SET error = $1, updated_at = $2 WHERE id = $3")
                            .bind(error.to_string())
                            .bind(now)
                            .bind(&job.message_id)
                            .execute(&mut *tx)
                            .await?;
                    }
                }
                tx.commit().await?;
                Ok(true)
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
                if let Some(c) = f.after_seq {
                    qb.push(" AND seq > ").push_bind(c);
                }
                qb.push(" ORDER BY seq LIMIT ").push_bind(f.limit);
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
