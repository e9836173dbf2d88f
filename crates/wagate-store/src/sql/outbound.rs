//! Outbound messages and their send jobs: enqueueing (once per idempotency key), the
//! fenced lease of each attempt, outcomes, and sends in doubt.

use async_trait::async_trait;

use crate::model::*;
use crate::Result;

/// Outbound messages and the send queue.
#[async_trait]
pub trait OutboundStore: Send + Sync {
    /// Writes an outbound message and its send job in one transaction.
    async fn enqueue_message(&self, message: &NewOutboundMessage) -> Result<Message>;
    /// Writes several outbound messages and their send jobs in one transaction (one commit for
    /// a batch): all of them, or none.
    async fn enqueue_messages(&self, messages: &[NewOutboundMessage]) -> Result<Vec<Message>>;
    /// As `enqueue_message`, once per idempotency key of the account: a key seen within
    /// `keep_ms` gives back its message (when the request hash matches) or a conflict, and
    /// queues nothing. Race-free: the key is claimed in the message's own transaction.
    async fn enqueue_message_once(
        &self,
        message: &NewOutboundMessage,
        key: &IdempotencyKey,
        keep_ms: i64,
    ) -> Result<Enqueued>;
    /// Cancels a message whose send job still waits in the queue (not taken by a worker);
    /// `None` when there is none such.
    async fn cancel_message(&self, id: &MessageId, now: i64) -> Result<Option<Message>>;
    /// Queues again a message whose send failed (its job is dead); `None` when there is none.
    async fn retry_message(&self, id: &MessageId, now: i64) -> Result<Option<Message>>;
    async fn get_message(&self, id: &MessageId) -> Result<Option<Message>>;
    async fn message_timeline(&self, id: &MessageId) -> Result<Vec<StatusEntry>>;
    async fn list_messages(&self, filter: &MessageFilter) -> Result<Vec<Message>>;
    /// Leases up to `limit` due send jobs (and jobs whose lease expired) to `owner`.
    async fn claim_send_jobs(
        &self,
        owner: &str,
        limit: i64,
        lease_ms: i64,
        now_ms: i64,
        skip: &ClaimFilter<'_>,
    ) -> Result<Vec<SendJob>>;
    /// Extends the leases of jobs still in flight (`(job id, attempt)`); returns how many held.
    async fn renew_send_leases(&self, jobs: &[(i64, i64)], until_ms: i64) -> Result<u64>;
    /// Gives back a claimed job that was not sent (shutdown before its call).
    async fn release_send_job(&self, job: &SendJob) -> Result<bool>;
    /// Jobs whose lease ran out during the call: adopted when a status Meta sent names them,
    /// else, once their lease ended before `act_before_ms`, requeued or marked `unknown`.
    async fn resolve_in_doubt(
        &self,
        now_ms: i64,
        act_before_ms: i64,
        action: InDoubtAction,
        limit: i64,
    ) -> Result<Vec<InDoubt>>;
    /// Records that the calls to Meta of these claimed jobs (`(job id, attempt)`) start now, with
    /// the outcomes waiting to be recorded, in one transaction (one disk sync for the lot). A job
    /// marked `false` is no longer `owner`'s (it was taken over): it must not be called.
    async fn record_sends(
        &self,
        owner: &str,
        calling: &[(i64, i64)],
        finished: &[(SendJob, String, SendOutcome)],
        now_ms: i64,
    ) -> Result<(Vec<bool>, Vec<bool>)>;
    /// When a message's send whose call started is in doubt (its owner died or the call's answer
    /// was lost): the end of its lease, from which the status webhook is awaited.
    async fn in_doubt_since(&self, message_id: &MessageId, now_ms: i64) -> Result<Option<i64>>;
    /// Finishes a leased job; `false` (and nothing changed) when `owner` no longer holds the lease.
    async fn finish_send_job(&self, job: &SendJob, owner: &str, outcome: &SendOutcome, now_ms: i64) -> Result<bool>;
    /// Several outcomes (job, lease owner, outcome) in one transaction; each fenced on its own.
    async fn finish_send_jobs(&self, finished: &[(SendJob, String, SendOutcome)], now_ms: i64) -> Result<Vec<bool>>;
}

macro_rules! impl_outbound_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::OutboundStore for $store {
            async fn enqueue_message(&self, m: &$crate::NewOutboundMessage) -> $crate::Result<$crate::Message> {
                let mut tx = self.writer.begin().await?;
                let message = Self::insert_outbound(&mut tx, m).await?;
                tx.commit().await?;
                Ok(message)
            }

            async fn enqueue_messages(&self, messages: &[$crate::NewOutboundMessage]) -> $crate::Result<Vec<$crate::Message>> {
                let mut tx = self.writer.begin().await?;
                let mut queued = Vec::with_capacity(messages.len());
                for m in messages {
                    queued.push(Self::insert_outbound(&mut tx, m).await?);
                }
                tx.commit().await?;
                Ok(queued)
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
                    return match $crate::OutboundStore::get_message(self, &message_id.clone().into()).await? {
                        Some(found) => Ok($crate::Enqueued::Replayed(found)),
                        None => Ok($crate::Enqueued::Conflict { message_id }),
                    };
                }
                let message = Self::insert_outbound(&mut tx, m).await?;
                tx.commit().await?;
                Ok($crate::Enqueued::Created(message))
            }

            async fn cancel_message(&self, id: &$crate::MessageId, now: i64) -> $crate::Result<Option<$crate::Message>> {
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

            async fn retry_message(&self, id: &$crate::MessageId, now: i64) -> $crate::Result<Option<$crate::Message>> {
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

            async fn get_message(&self, id: &$crate::MessageId) -> $crate::Result<Option<$crate::Message>> {
                Ok(sqlx::query_as(
                    "SELECT id, account_id, phone_number_id, direction, wamid, wa_id, message_type, status,
                       content, error, pricing, created_at, updated_at FROM messages WHERE id = $1",
                )
                .bind(id)
                .fetch_optional(&self.pool)
                .await?)
            }

            async fn message_timeline(&self, id: &$crate::MessageId) -> $crate::Result<Vec<$crate::StatusEntry>> {
                Ok(sqlx::query_as(
                    "SELECT status, occurred_at, recorded_at, payload FROM message_statuses
                     WHERE message_id = $1 ORDER BY recorded_at, id",
                )
                .bind(id)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn list_messages(&self, f: &$crate::MessageFilter) -> $crate::Result<Vec<$crate::Message>> {
                let mut qb = sqlx::QueryBuilder::new(
                    "SELECT id, account_id, phone_number_id, direction, wamid, wa_id, message_type, status,
                       content, error, pricing, created_at, updated_at FROM messages WHERE 1 = 1",
                );
                for (column, value) in [
                    ("account_id", &f.account_id),
                    ("direction", &f.direction),
                    ("status", &f.status),
                    ("wa_id", &f.wa_id),
                ] {
                    if let Some(v) = value {
                        qb.push(format!(" AND {column} = ")).push_bind(v.clone());
                    }
                }
                $crate::sql::push_in(&mut qb, "account_id", f.account_ids.as_deref());
                if let Some(b) = &f.before_id {
                    qb.push(" AND id < ").push_bind(b.clone());
                }
                qb.push(" ORDER BY id DESC LIMIT ").push_bind(f.limit);
                Ok(qb.build_query_as().fetch_all(&self.pool).await?)
            }

            async fn claim_send_jobs(&self, owner: &str, limit: i64, lease_ms: i64, now_ms: i64, skip: &$crate::ClaimFilter<'_>) -> $crate::Result<Vec<$crate::SendJob>> {
                // Only queued jobs: a lease that ran out may belong to a send Meta took (the
                // gateway died during the call), so it goes to `resolve_in_doubt`, not back out.
                let mut q = sqlx::QueryBuilder::new("UPDATE send_jobs SET state = 'leased', called_at = NULL, lease_owner = ");
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
                    // Rows are locked in id order, skipping any being finished right now (its
                    // outcome is what matters then): a batch of outcomes, which also goes in id
                    // order, and a renewal never wait for each other in a cycle (PostgreSQL).
                    q.push(") AS v WHERE send_jobs.id = v.column1 AND send_jobs.attempts = v.column2 AND send_jobs.state = 'leased'
                       AND send_jobs.id IN (SELECT id FROM send_jobs WHERE id IN (");
                    let mut ids = q.separated(", ");
                    for (id, _) in chunk {
                        ids.push_bind(*id);
                    }
                    q.push(format!(") ORDER BY id {})", Self::CLAIM_LOCK));
                    renewed += q.build().execute(&self.writer).await?.rows_affected();
                }
                Ok(renewed)
            }

            async fn release_send_job(&self, job: &$crate::SendJob) -> $crate::Result<bool> {
                Ok(sqlx::query(
                    "UPDATE send_jobs SET state = 'queued', lease_owner = NULL, lease_until = NULL, called_at = NULL
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
                    "SELECT j.id, j.message_id, j.attempts, j.lease_until, j.called_at, m.callback_data, m.account_id, m.phone_number_id
                     FROM send_jobs j JOIN messages m ON m.id = j.message_id
                     WHERE j.state = 'leased' AND j.lease_until < $1 ORDER BY j.id LIMIT $2 {}",
                    Self::CLAIM_LOCK
                );
                let mut tx = self.writer.begin().await?;
                #[allow(clippy::type_complexity)]
                let expired: Vec<(i64, String, i64, i64, Option<i64>, Option<String>, String, String)> =
                    sqlx::query_as(&sql).bind(now).bind(limit).fetch_all(&mut *tx).await?;
                let mut resolved = Vec::new();
                for (job_id, message_id, attempts, lease_until, called_at, callback, account_id, phone_number_id) in expired {
                    // Its call never started: nothing reached Meta, so it goes again at once.
                    if called_at.is_none() {
                        let n = sqlx::query(
                            "UPDATE send_jobs SET state = 'queued', lease_owner = NULL, lease_until = NULL
                             WHERE id = $1 AND attempts = $2 AND state = 'leased' AND called_at IS NULL",
                        )
                        .bind(job_id)
                        .bind(attempts)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                        if n == 1 {
                            resolved.push($crate::InDoubt { message_id: message_id.into(), outcome: $crate::InDoubtOutcome::NeverCalled });
                        }
                        continue;
                    }
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
                            resolved.push($crate::InDoubt { message_id: message_id.into(), outcome: $crate::InDoubtOutcome::Accepted { wamid: wamid.clone() } });
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
                        resolved.push($crate::InDoubt { message_id: message_id.into(), outcome: $crate::InDoubtOutcome::Requeued });
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
                    resolved.push($crate::InDoubt { message_id: message_id.into(), outcome: $crate::InDoubtOutcome::Unknown });
                }
                tx.commit().await?;
                Ok(resolved)
            }

            async fn finish_send_job(&self, job: &$crate::SendJob, owner: &str, outcome: &$crate::SendOutcome, now: i64) -> $crate::Result<bool> {
                let done = $crate::OutboundStore::finish_send_jobs(self, &[(job.clone(), owner.to_string(), outcome.clone())], now).await?;
                Ok(done.first().copied().unwrap_or(false))
            }

            async fn finish_send_jobs(&self, finished: &[($crate::SendJob, String, $crate::SendOutcome)], now: i64) -> $crate::Result<Vec<bool>> {
                Ok($crate::OutboundStore::record_sends(self, "", &[], finished, now).await?.1)
            }

            async fn record_sends(
                &self,
                owner: &str,
                calling: &[(i64, i64)],
                finished: &[($crate::SendJob, String, $crate::SendOutcome)],
                now: i64,
            ) -> $crate::Result<(Vec<bool>, Vec<bool>)> {
                // One transaction (one disk sync) for the lot: the sender group-commits outcomes
                // and the starts of calls. Rows are changed in job id order, as renewals lock
                // them, so that the two never deadlock (PostgreSQL).
                let mut tx = self.writer.begin().await?;
                let mut started = vec![false; calling.len()];
                if !calling.is_empty() {
                    let mut order: Vec<usize> = (0..calling.len()).collect();
                    order.sort_by_key(|&i| calling[i].0);
                    let mut q = sqlx::QueryBuilder::new("UPDATE send_jobs SET called_at = ");
                    q.push_bind(now);
                    q.push(" FROM (");
                    q.push_values(order.iter().map(|&i| calling[i]), |mut row, (id, attempt)| {
                        row.push_bind(id).push_bind(attempt);
                    });
                    q.push(") AS v WHERE send_jobs.id = v.column1 AND send_jobs.attempts = v.column2 AND send_jobs.state = 'leased' AND send_jobs.lease_owner = ");
                    q.push_bind(owner);
                    q.push(" RETURNING send_jobs.id");
                    let marked: std::collections::HashSet<i64> =
                        q.build_query_scalar::<i64>().fetch_all(&mut *tx).await?.into_iter().collect();
                    for (i, (id, _)) in calling.iter().enumerate() {
                        started[i] = marked.contains(id);
                    }
                }
                let mut order: Vec<usize> = (0..finished.len()).collect();
                order.sort_by_key(|&i| finished[i].0.id);
                let mut done = vec![false; finished.len()];
                for i in order {
                    let (job, owner, outcome) = &finished[i];
                    done[i] = Self::finish_one(&mut tx, job, owner, outcome, now).await?;
                }
                tx.commit().await?;
                Ok((started, done))
            }

            async fn in_doubt_since(&self, message_id: &$crate::MessageId, now: i64) -> $crate::Result<Option<i64>> {
                let row: Option<(i64,)> = sqlx::query_as(
                    "SELECT lease_until FROM send_jobs WHERE message_id = $1 AND state = 'leased'
                       AND called_at IS NOT NULL AND lease_until <= $2 ORDER BY id DESC LIMIT 1",
                )
                .bind(message_id)
                .bind(now)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.map(|r| r.0))
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
                id: &$crate::MessageId,
                now: i64,
            ) -> $crate::Result<Option<$crate::Message>> {
                if changed == 0 {
                    tx.rollback().await?;
                    return Ok(None);
                }
                sqlx::query(message_sql).bind(now).bind(id).execute(&mut *tx).await?;
                tx.commit().await?;
                $crate::OutboundStore::get_message(self, id).await
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
                let shard = $crate::sql::activity::shard_of(&m.id);
                let hour = m.now_ms.div_euclid(3_600_000);
                Self::count_activity(tx, &[(m.account_id.as_str(), hour, "sent", 1)], shard).await?;
                {
                    // The conversation moves up the inbox (and a new one appears in it).
                    sqlx::query(
                        "INSERT INTO contacts (account_id, phone_number_id, wa_id, updated_at, last_outbound_at) VALUES ($1, $2, $3, $4, $4)
                         ON CONFLICT (account_id, phone_number_id, wa_id) DO UPDATE SET updated_at = excluded.updated_at, last_outbound_at = excluded.last_outbound_at",
                    )
                    .bind(&m.account_id)
                    .bind(&m.phone_number_id)
                    .bind(&m.wa_id)
                    .bind(m.now_ms)
                    .execute(&mut **tx)
                    .await?;
                }
                Ok(message)
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

pub(crate) use impl_outbound_store;
