//! Hooks, their deliveries and attempts. An area like those under `sql/`: `impl_hook_store!` is
//! instantiated per backend like `impl_store!`, in the dialect both share. Which events a hook
//! takes is decided in core; the store persists the decisions (fan-out, leases, outcomes).

use async_trait::async_trait;

use crate::{Event, JournalEntry, Result};

/// A hook as stored. JSON columns hold lists (`events`, `accounts`, `contacts`) and the
/// `headers` object.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Hook {
    pub id: crate::HookId,
    /// Set for hooks from the configuration file (`[[hooks]] name = …`).
    pub name: Option<String>,
    pub url: String,
    pub description: Option<String>,
    pub format: String,
    pub events: String,
    pub accounts: String,
    pub contacts: String,
    pub headers: String,
    pub media: String,
    /// Per contact, one delivery at a time: the next waits for the previous one's success.
    pub ordered: bool,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_secret_until: Option<i64>,
    /// Events up to this sequence have been considered for this hook.
    pub cursor_seq: i64,
    /// `api` or `config`.
    pub source: String,
    /// Since when every attempt has failed (none succeeded since).
    pub failing_since: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    /// The tenant it belongs to (made with a tenant's key): it gets only their accounts' events.
    pub tenant: Option<String>,
}

/// What to deliver: an event (or journalled body) and the contact it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    pub event_id: String,
    pub seq: i64,
    pub contact: Option<String>,
}

/// One event to deliver to one hook.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Delivery {
    pub id: i64,
    pub hook_id: crate::HookId,
    pub event_id: String,
    pub event_seq: i64,
    #[sqlx(try_from = "String")]
    pub state: crate::DeliveryState,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub lease_token: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// One try of a delivery.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Attempt {
    pub id: i64,
    pub delivery_id: i64,
    pub hook_id: crate::HookId,
    pub event_id: String,
    pub attempted_at: i64,
    pub succeeded: bool,
    pub status_code: Option<i64>,
    pub error: Option<String>,
    pub latency_ms: i64,
    pub response_excerpt: Option<String>,
    /// The reply a two-way bot asked for: the message sent, or why it was refused.
    pub reply_message_id: Option<String>,
    pub reply_error: Option<String>,
}

/// What a delivery attempt came to.
#[derive(Debug, Clone, PartialEq)]
pub enum DeliveryOutcome {
    Succeeded,
    /// Try again at this time (unix ms).
    Retry {
        at: i64,
    },
    /// The schedule ran out.
    GaveUp,
    /// Not sent yet (its media is still downloading): due again at this time, no attempt
    /// counted.
    Postpone {
        at: i64,
    },
    /// The receiver asked to stop (410), or the hook failed for too long: the delivery stays
    /// pending (it goes out when the hook is enabled again) and the hook is disabled.
    DisableHook {
        reason: String,
    },
}

/// A claim of deliveries: the gateway instance making it, the token that fences its outcomes,
/// and how long it holds.
#[derive(Debug, Clone, Copy)]
pub struct Lease<'a> {
    pub owner: &'a str,
    pub token: i64,
    pub ms: i64,
}

/// An attempt made under a lease, with its outcome, to record.
#[derive(Debug, Clone)]
pub struct Finished {
    pub delivery: Delivery,
    pub token: i64,
    /// What was sent and answered; `None` when nothing was sent (a postponed delivery).
    pub attempt: Option<Attempt>,
    pub outcome: DeliveryOutcome,
}

/// How a hook did: counts of attempts and the last error.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HookHealth {
    pub attempts_succeeded: i64,
    pub attempts_failed: i64,
    pub pending: i64,
    pub failed: i64,
    pub last_error: Option<String>,
    pub last_attempt_at: Option<i64>,
}

#[async_trait]
pub trait HookStore: Send + Sync {
    /// Creates a hook; it takes events from now on (earlier ones by replay). With a `name`, the
    /// hook of that name is updated instead (configuration hooks), keeping its secret unless
    /// one is given and its cursor.
    async fn save_hook(&self, hook: &Hook) -> Result<Hook>;
    /// Opens every stored secret (failing on the first that does not open, with why), and seals
    /// again those kept in clear, and, with `all`, those sealed under a previous master key.
    async fn seal_secrets(&self, all: bool) -> Result<SealReport>;
    async fn list_hooks(&self) -> Result<Vec<Hook>>;
    async fn get_hook(&self, id: &crate::HookId) -> Result<Option<Hook>>;
    async fn delete_hook(&self, id: &crate::HookId) -> Result<bool>;
    /// Enables or disables a hook. Enabling a disabled hook moves its cursor to the end of the
    /// log: what happened while it was off comes by replay, if wanted.
    async fn set_hook_enabled(&self, id: &crate::HookId, enabled: bool, reason: Option<&str>, now: i64)
        -> Result<bool>;
    async fn rotate_hook_secret(&self, id: &crate::HookId, secret: &str, previous_until: i64, now: i64)
        -> Result<bool>;
    /// Adds deliveries of these events (id, sequence) to a hook; with `cursor` (from, to) also
    /// moves the hook's cursor, only if it still stands at `from` (one fan-out wins).
    async fn add_deliveries(
        &self,
        hook_id: &crate::HookId,
        deliveries: &[NewDelivery],
        cursor: Option<(i64, i64)>,
        now: i64,
    ) -> Result<bool>;
    /// Journalled webhook bodies (not quarantined) after `after_id`, received in [since, until)
    /// when given: what `meta`-format hooks deliver.
    async fn journal_page(
        &self,
        after_id: i64,
        since: Option<i64>,
        until: Option<i64>,
        limit: i64,
    ) -> Result<Vec<JournalEntry>>;
    async fn journal_entry(&self, id: i64) -> Result<Option<JournalEntry>>;
    /// Makes the hook's failed deliveries created in [since, until) pending again.
    async fn retry_failed_deliveries(&self, hook_id: &crate::HookId, since: i64, until: i64, now: i64) -> Result<u64>;
    /// Leases up to `limit` due deliveries of one hook, oldest first.
    /// (With `ordered`, only the oldest pending delivery of each contact.)
    async fn claim_deliveries(
        &self,
        hook_id: &crate::HookId,
        ordered: bool,
        lease: &Lease<'_>,
        limit: i64,
        now: i64,
    ) -> Result<Vec<Delivery>>;
    /// Records attempts and their outcomes in one transaction (a group commit); for each, `false`
    /// (nothing changed) when its lease was lost.
    async fn finish_deliveries(&self, finished: &[Finished], now: i64) -> Result<Vec<bool>>;
    async fn list_attempts(&self, hook_id: &crate::HookId, before_id: Option<i64>, limit: i64) -> Result<Vec<Attempt>>;
    async fn deliveries_of_event(&self, event_id: &str) -> Result<Vec<Delivery>>;
    async fn hook_health(&self, hook_id: &crate::HookId) -> Result<HookHealth>;
    async fn get_event(&self, id: &crate::EventId) -> Result<Option<Event>>;
    /// The events with these ids (those that exist), in no particular order.
    async fn get_events(&self, ids: &[String]) -> Result<Vec<Event>>;
    /// The sequence of the newest event (0 when there is none).
    async fn last_event_seq(&self) -> Result<i64>;
    /// Appends an event of the gateway's own (e.g. `hook.disabled`).
    async fn append_event(
        &self,
        account_id: Option<&str>,
        event_type: &str,
        payload: &serde_json::Value,
        now: i64,
    ) -> Result<()>;
}

/// Deliveries recorded per statement when finishing (11 bound values each, well under the
/// SQLite and PostgreSQL limits on bound parameters).
pub(crate) const SENT_CHUNK: usize = 500;

/// The state and next attempt time a delivery settles in after an attempt with this outcome.
pub(crate) fn settled(outcome: &DeliveryOutcome, next_attempt_at: i64, now: i64) -> (crate::DeliveryState, i64) {
    use crate::DeliveryState::*;
    match outcome {
        DeliveryOutcome::Succeeded => (Succeeded, next_attempt_at),
        DeliveryOutcome::Retry { at } => (Pending, *at),
        DeliveryOutcome::GaveUp => (Failed, next_attempt_at),
        DeliveryOutcome::DisableHook { .. } | DeliveryOutcome::Postpone { .. } => (Pending, now),
    }
}

/// How a hook's `failing_since` changes after a run of attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FailingSince {
    /// An attempt succeeded: failing since the first failure after the last success, or not.
    Reset(Option<i64>),
    /// Only failures: failing since the first of them, unless failing already.
    StartIfNot(i64),
}

/// For attempts `(hook, succeeded, attempted_at)` in the order they are recorded, what each
/// hook's `failing_since` becomes — the same as applying them one by one (a success clears it, a
/// failure sets it when it is clear).
pub(crate) fn failing_since_changes<'a>(attempts: &[(&'a str, bool, i64)]) -> Vec<(&'a str, FailingSince)> {
    let mut changes: Vec<(&'a str, FailingSince)> = Vec::new();
    for &(hook, succeeded, at) in attempts {
        let next = match (
            changes.iter().position(|(h, _)| *h == hook).map(|i| changes[i].1),
            succeeded,
        ) {
            (_, true) => FailingSince::Reset(None),
            (None, false) => FailingSince::StartIfNot(at),
            (Some(FailingSince::Reset(None)), false) => FailingSince::Reset(Some(at)),
            (Some(kept), false) => kept,
        };
        match changes.iter_mut().find(|(h, _)| *h == hook) {
            Some(c) => c.1 = next,
            None => changes.push((hook, next)),
        }
    }
    changes
}

/// What [`HookStore::seal_secrets`] found and did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SealReport {
    /// Secrets read (each opened).
    pub checked: u64,
    /// Secrets sealed again (under the current key).
    pub sealed: u64,
}

/// Where hook secrets are kept: the associated data they are sealed with. The current and the
/// previous secret share it, since rotation moves one column's value to the other.
pub(crate) const HOOK_SECRET: &str = "hooks.secret";

/// Where a hook's extra headers (credentials, often) are kept sealed: the JSON object whole.
pub(crate) const HOOK_HEADERS: &str = "hooks.headers";

/// Every column that holds a sealed secret: (table, column, associated data).
pub(crate) const SEALED_COLUMNS: [(&str, &str, &str); 6] = [
    ("hooks", "secret", HOOK_SECRET),
    ("hooks", "previous_secret", HOOK_SECRET),
    ("hooks", "headers", HOOK_HEADERS),
    ("accounts", "access_token", "accounts.access_token"),
    ("accounts", "app_secret", "accounts.app_secret"),
    ("accounts", "verify_token", "accounts.verify_token"),
];

/// Seals a secret; an empty one (none given) stays empty.
pub(crate) fn seal(sealer: &wagate_core::seal::Sealer, plain: &str) -> crate::Result<String> {
    if plain.is_empty() {
        return Ok(String::new());
    }
    Ok(sealer.seal(plain, HOOK_SECRET)?)
}

/// Seals a hook's headers; none (`{}`) stay as they are, so a hook without headers needs no
/// master key for them.
pub(crate) fn seal_headers(sealer: &wagate_core::seal::Sealer, plain: &str) -> crate::Result<String> {
    if matches!(plain.trim(), "" | "{}") {
        return Ok(plain.to_string());
    }
    Ok(sealer.seal(plain, HOOK_HEADERS)?)
}

/// A hook as read, with its secrets opened.
pub(crate) fn open(sealer: &wagate_core::seal::Sealer, mut h: Hook) -> crate::Result<Hook> {
    h.secret = sealer.open(&h.secret, HOOK_SECRET)?;
    h.headers = sealer.open(&h.headers, HOOK_HEADERS)?;
    if let Some(p) = &h.previous_secret {
        h.previous_secret = Some(sealer.open(p, HOOK_SECRET)?);
    }
    Ok(h)
}

pub(crate) const HOOK_COLUMNS: &str = "id, name, url, description, format, events, accounts, contacts, headers, media, ordered, enabled, disabled_reason, secret, previous_secret, previous_secret_until, cursor_seq, source, failing_since, created_at, updated_at, tenant";
pub(crate) const DELIVERY_COLUMNS: &str =
    "id, hook_id, event_id, event_seq, state, attempts, next_attempt_at, lease_token, last_error, created_at, updated_at";

macro_rules! impl_hook_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::hooks::HookStore for $store {
            async fn save_hook(&self, h: &$crate::hooks::Hook) -> $crate::Result<$crate::hooks::Hook> {
                use $crate::hooks::HOOK_COLUMNS;
                // A new hook starts at the end of what it reads: the event log, or for the `meta`
                // format the webhook journal.
                let (max_journal,): (Option<i64>,) = sqlx::query_as("SELECT MAX(id) FROM webhook_journal")
                    .fetch_one(&self.journal)
                    .await?;
                let mut tx = self.writer.begin().await?;
                let (max_seq,): (Option<i64>,) = sqlx::query_as("SELECT MAX(seq) FROM events")
                    .fetch_one(&mut *tx)
                    .await?;
                let start = if h.format == "meta" { max_journal } else { max_seq };
                let conflict = if h.name.is_some() {
                    // A configuration hook: the file decides its settings; its secret and cursor stay.
                    "ON CONFLICT (name) DO UPDATE SET url = excluded.url, description = excluded.description,
                       format = excluded.format, events = excluded.events, accounts = excluded.accounts,
                       contacts = excluded.contacts, headers = excluded.headers, media = excluded.media, ordered = excluded.ordered,
                       secret = CASE WHEN excluded.secret = '' THEN hooks.secret ELSE excluded.secret END,
                       updated_at = excluded.updated_at"
                } else {
                    "ON CONFLICT (id) DO UPDATE SET url = excluded.url, description = excluded.description,
                       format = excluded.format, events = excluded.events, accounts = excluded.accounts,
                       contacts = excluded.contacts, headers = excluded.headers, media = excluded.media, ordered = excluded.ordered,
                       enabled = excluded.enabled, updated_at = excluded.updated_at"
                };
                let sql = format!(
                    "INSERT INTO hooks ({HOOK_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)
                     {conflict} RETURNING {HOOK_COLUMNS}"
                );
                let saved: $crate::hooks::Hook = sqlx::query_as(&sql)
                    .bind(&h.id)
                    .bind(&h.name)
                    .bind(&h.url)
                    .bind(&h.description)
                    .bind(&h.format)
                    .bind(&h.events)
                    .bind(&h.accounts)
                    .bind(&h.contacts)
                    .bind($crate::hooks::seal_headers(&self.sealer, &h.headers)?)
                    .bind(&h.media)
                    .bind(h.ordered)
                    .bind(h.enabled)
                    .bind(&h.disabled_reason)
                    .bind($crate::hooks::seal(&self.sealer, &h.secret)?)
                    .bind(h.previous_secret.as_deref().map(|p| $crate::hooks::seal(&self.sealer, p)).transpose()?)
                    .bind(h.previous_secret_until)
                    .bind(start.unwrap_or(0))
                    .bind(&h.source)
                    .bind(h.failing_since)
                    .bind(h.created_at)
                    .bind(h.updated_at)
                    .bind(&h.tenant)
                    .fetch_one(&mut *tx)
                    .await?;
                tx.commit().await?;
                $crate::hooks::open(&self.sealer, saved)
            }

            async fn seal_secrets(&self, all: bool) -> $crate::Result<$crate::hooks::SealReport> {
                let mut report = $crate::hooks::SealReport::default();
                // (table, column, the associated data it is sealed with)
                for (table, column, context) in $crate::hooks::SEALED_COLUMNS {
                    // Empty, or a hook without headers (`{}`): nothing secret to seal.
                    let sql = format!("SELECT id, {column} FROM {table} WHERE {column} IS NOT NULL AND {column} NOT IN ('', '{{}}') ORDER BY id");
                    let rows: Vec<(String, String)> = sqlx::query_as(&sql).fetch_all(&self.pool).await?;
                    for (id, stored) in rows {
                        let plain = self.sealer.open(&stored, context)?;
                        report.checked += 1;
                        let in_clear = wagate_core::seal::sealed_with(&stored).is_none();
                        if !self.sealer.needs_sealing(&stored) || !(all || in_clear) {
                            continue;
                        }
                        // Only if it is still what was read: a rotation in between wins.
                        let sql = format!("UPDATE {table} SET {column} = $1 WHERE id = $2 AND {column} = $3");
                        let n = sqlx::query(&sql)
                            .bind(self.sealer.seal(&plain, context)?)
                            .bind(&id)
                            .bind(&stored)
                            .execute(&self.writer)
                            .await?
                            .rows_affected();
                        report.sealed += n;
                    }
                }
                Ok(report)
            }

            async fn list_hooks(&self) -> $crate::Result<Vec<$crate::hooks::Hook>> {
                let sql = format!("SELECT {} FROM hooks ORDER BY created_at, id", $crate::hooks::HOOK_COLUMNS);
                let rows: Vec<$crate::hooks::Hook> = sqlx::query_as(&sql).fetch_all(&self.pool).await?;
                rows.into_iter().map(|h| $crate::hooks::open(&self.sealer, h)).collect()
            }

            async fn get_hook(&self, id: &$crate::HookId) -> $crate::Result<Option<$crate::hooks::Hook>> {
                let sql = format!("SELECT {} FROM hooks WHERE id = $1", $crate::hooks::HOOK_COLUMNS);
                let row: Option<$crate::hooks::Hook> = sqlx::query_as(&sql).bind(id).fetch_optional(&self.pool).await?;
                row.map(|h| $crate::hooks::open(&self.sealer, h)).transpose()
            }

            async fn delete_hook(&self, id: &$crate::HookId) -> $crate::Result<bool> {
                let mut tx = self.writer.begin().await?;
                sqlx::query("DELETE FROM hook_attempts WHERE hook_id = $1").bind(id).execute(&mut *tx).await?;
                sqlx::query("DELETE FROM hook_deliveries WHERE hook_id = $1").bind(id).execute(&mut *tx).await?;
                let n = sqlx::query("DELETE FROM hooks WHERE id = $1").bind(id).execute(&mut *tx).await?.rows_affected();
                tx.commit().await?;
                Ok(n == 1)
            }

            async fn set_hook_enabled(&self, id: &$crate::HookId, enabled: bool, reason: Option<&str>, now: i64) -> $crate::Result<bool> {
                let n = sqlx::query(
                    "UPDATE hooks SET
                       cursor_seq = CASE WHEN $1 AND NOT enabled THEN (SELECT COALESCE(MAX(seq), 0) FROM events) ELSE cursor_seq END,
                       enabled = $1, disabled_reason = $2,
                       failing_since = CASE WHEN $1 THEN NULL ELSE failing_since END, updated_at = $3 WHERE id = $4",
                )
                .bind(enabled)
                .bind(reason)
                .bind(now)
                .bind(id)
                .execute(&self.writer)
                .await?
                .rows_affected();
                Ok(n == 1)
            }

            async fn rotate_hook_secret(&self, id: &$crate::HookId, secret: &str, previous_until: i64, now: i64) -> $crate::Result<bool> {
                let n = sqlx::query(
                    "UPDATE hooks SET previous_secret = secret, previous_secret_until = $1, secret = $2, updated_at = $3 WHERE id = $4",
                )
                .bind(previous_until)
                .bind($crate::hooks::seal(&self.sealer, secret)?)
                .bind(now)
                .bind(id)
                .execute(&self.writer)
                .await?
                .rows_affected();
                Ok(n == 1)
            }

            async fn add_deliveries(&self, hook_id: &$crate::HookId, events: &[$crate::hooks::NewDelivery], cursor: Option<(i64, i64)>, now: i64) -> $crate::Result<bool> {
                let mut conn = self.relaxed_writer().await?;
                let result: $crate::Result<bool> = async {
                let mut tx = sqlx::Acquire::begin(&mut *conn).await?;
                if let Some((from, to)) = cursor {
                    let moved = sqlx::query("UPDATE hooks SET cursor_seq = $1 WHERE id = $2 AND cursor_seq = $3")
                        .bind(to)
                        .bind(hook_id)
                        .bind(from)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    if moved != 1 {
                        return Ok(false);
                    }
                }
                for chunk in events.chunks(500) {
                    let mut qb = sqlx::QueryBuilder::new(
                        "INSERT INTO hook_deliveries (hook_id, event_id, event_seq, contact, state, attempts, next_attempt_at, created_at, updated_at) ",
                    );
                    qb.push_values(chunk, |mut b, d| {
                        b.push_bind(hook_id)
                            .push_bind(d.event_id.clone())
                            .push_bind(d.seq)
                            .push_bind(d.contact.clone())
                            .push_bind("pending")
                            .push_bind(0i64)
                            .push_bind(now)
                            .push_bind(now)
                            .push_bind(now);
                    });
                    qb.build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(true)
                }
                .await;
                self.release_relaxed(conn).await;
                result
            }

            async fn journal_page(&self, after_id: i64, since: Option<i64>, until: Option<i64>, limit: i64) -> $crate::Result<Vec<$crate::JournalEntry>> {
                Ok(sqlx::query_as(
                    "SELECT id, received_at, account_id, body FROM webhook_journal
                     WHERE id > $1 AND state <> 'quarantined'
                       AND ($2 IS NULL OR received_at >= $2) AND ($3 IS NULL OR received_at < $3)
                     ORDER BY id LIMIT $4",
                )
                .bind(after_id)
                .bind(since)
                .bind(until)
                .bind(limit)
                .fetch_all(&self.journal)
                .await?)
            }

            async fn journal_entry(&self, id: i64) -> $crate::Result<Option<$crate::JournalEntry>> {
                Ok(sqlx::query_as("SELECT id, received_at, account_id, body FROM webhook_journal WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.journal)
                    .await?)
            }

            async fn retry_failed_deliveries(&self, hook_id: &$crate::HookId, since: i64, until: i64, now: i64) -> $crate::Result<u64> {
                Ok(sqlx::query(
                    "UPDATE hook_deliveries SET state = 'pending', attempts = 0, next_attempt_at = $1, updated_at = $1
                     WHERE hook_id = $2 AND state = 'failed' AND created_at >= $3 AND created_at < $4",
                )
                .bind(now)
                .bind(hook_id)
                .bind(since)
                .bind(until)
                .execute(&self.writer)
                .await?
                .rows_affected())
            }

            async fn claim_deliveries(&self, hook_id: &$crate::HookId, ordered: bool, lease: &$crate::hooks::Lease<'_>, limit: i64, now: i64) -> $crate::Result<Vec<$crate::hooks::Delivery>> {
                let (owner, token, lease_ms) = (lease.owner, lease.token, lease.ms);
                let sql = format!(
                    "UPDATE hook_deliveries SET lease_token = $1, lease_until = $2, lease_owner = $7
                     WHERE id IN (SELECT d.id FROM hook_deliveries d
                       WHERE d.hook_id = $5 AND d.state = 'pending' AND d.next_attempt_at <= $3
                         AND (d.lease_until IS NULL OR d.lease_until < $3)
                         AND EXISTS (SELECT 1 FROM hooks h WHERE h.id = d.hook_id AND h.enabled)
                         AND ($6 = FALSE OR d.contact IS NULL OR NOT EXISTS (
                           SELECT 1 FROM hook_deliveries p
                           WHERE p.hook_id = d.hook_id AND p.contact = d.contact AND p.state = 'pending' AND p.id < d.id))
                       ORDER BY d.next_attempt_at, d.id LIMIT $4 {})
                     RETURNING {}",
                    Self::CLAIM_LOCK,
                    $crate::hooks::DELIVERY_COLUMNS
                );
                let mut conn = self.relaxed_writer().await?;
                let claimed: $crate::Result<Vec<$crate::hooks::Delivery>> = sqlx::query_as(&sql)
                    .bind(token)
                    .bind(now + lease_ms)
                    .bind(now)
                    .bind(limit)
                    .bind(hook_id)
                    .bind(ordered)
                    .bind(owner)
                    .fetch_all(&mut *conn)
                    .await
                    .map_err(Into::into);
                self.release_relaxed(conn).await;
                let mut claimed = claimed?;
                claimed.sort_by_key(|d| (d.next_attempt_at, d.id));
                Ok(claimed)
            }

            async fn finish_deliveries(&self, finished: &[$crate::hooks::Finished], now: i64) -> $crate::Result<Vec<bool>> {
                use $crate::hooks::{DeliveryOutcome, SENT_CHUNK};
                let mut conn = self.relaxed_writer().await?;
                let result: $crate::Result<Vec<bool>> = async {
                let mut tx = sqlx::Acquire::begin(&mut *conn).await?;
                let mut recorded = vec![false; finished.len()];
                // Nothing was sent (postponed): the delivery is only due again later. Rare; one
                // statement each.
                for (i, f) in finished.iter().enumerate() {
                    if f.attempt.is_some() && !matches!(f.outcome, DeliveryOutcome::Postpone { .. }) {
                        continue;
                    }
                    let at = match f.outcome {
                        DeliveryOutcome::Postpone { at } => at,
                        _ => now,
                    };
                    let n = sqlx::query(
                        "UPDATE hook_deliveries SET next_attempt_at = $1, lease_token = NULL, lease_until = NULL, updated_at = $2
                         WHERE id = $3 AND lease_token = $4 AND state = 'pending'",
                    )
                    .bind(at)
                    .bind(now)
                    .bind(f.delivery.id)
                    .bind(f.token)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    recorded[i] = n == 1;
                }
                // What was sent, set-wise: a few statements per batch rather than three per
                // delivery (each statement is a round trip to the database).
                let sent: Vec<(usize, &$crate::hooks::Finished, &$crate::hooks::Attempt)> = finished
                    .iter()
                    .enumerate()
                    .filter_map(|(i, f)| match (&f.attempt, &f.outcome) {
                        (_, DeliveryOutcome::Postpone { .. }) | (None, _) => None,
                        (Some(a), _) => Some((i, f, a)),
                    })
                    .collect();
                for chunk in sent.chunks(SENT_CHUNK) {
                    // The fence: only the holder of a lease records its outcome.
                    let mut update = sqlx::QueryBuilder::new(
                        "UPDATE hook_deliveries SET state = v.column3, attempts = hook_deliveries.attempts + 1,
                           next_attempt_at = v.column4, last_error = v.column5, lease_token = NULL, lease_until = NULL, updated_at = ",
                    );
                    update.push_bind(now);
                    update.push(" FROM (");
                    update.push_values(chunk, |mut row, (_, f, a)| {
                        let (state, next) = $crate::hooks::settled(&f.outcome, f.delivery.next_attempt_at, now);
                        row.push_bind(f.delivery.id)
                            .push_bind(f.token)
                            .push_bind(state.as_str())
                            .push_bind(next)
                            .push_bind(a.error.clone());
                    });
                    update.push(
                        ") AS v WHERE hook_deliveries.id = v.column1 AND hook_deliveries.lease_token = v.column2
                           AND hook_deliveries.state = 'pending' RETURNING hook_deliveries.id",
                    );
                    let fenced: std::collections::HashSet<i64> = update
                        .build_query_scalar::<i64>()
                        .fetch_all(&mut *tx)
                        .await?
                        .into_iter()
                        .collect();
                    let kept: Vec<&(usize, &$crate::hooks::Finished, &$crate::hooks::Attempt)> =
                        chunk.iter().filter(|(_, f, _)| fenced.contains(&f.delivery.id)).collect();
                    if kept.is_empty() {
                        continue;
                    }
                    let mut insert = sqlx::QueryBuilder::new(
                        "INSERT INTO hook_attempts (delivery_id, hook_id, event_id, attempted_at, succeeded, status_code, error, latency_ms, response_excerpt, reply_message_id, reply_error) ",
                    );
                    insert.push_values(&kept, |mut row, (_, f, a)| {
                        row.push_bind(f.delivery.id)
                            .push_bind(f.delivery.hook_id.clone())
                            .push_bind(f.delivery.event_id.clone())
                            .push_bind(a.attempted_at)
                            .push_bind(a.succeeded)
                            .push_bind(a.status_code)
                            .push_bind(a.error.clone())
                            .push_bind(a.latency_ms)
                            .push_bind(a.response_excerpt.clone())
                            .push_bind(a.reply_message_id.clone())
                            .push_bind(a.reply_error.clone());
                    });
                    insert.build().execute(&mut *tx).await?;
                    for (i, _, _) in &kept {
                        recorded[*i] = true;
                    }
                    // Since when each hook has been failing, from these attempts in order.
                    let attempts: Vec<(&str, bool, i64)> = kept
                        .iter()
                        .map(|(_, f, a)| (&*f.delivery.hook_id, a.succeeded, a.attempted_at))
                        .collect();
                    for (hook_id, change) in $crate::hooks::failing_since_changes(&attempts) {
                        let q = match change {
                            $crate::hooks::FailingSince::Reset(since) => {
                                sqlx::query("UPDATE hooks SET failing_since = $1 WHERE id = $2").bind(since).bind(hook_id)
                            }
                            $crate::hooks::FailingSince::StartIfNot(since) => {
                                sqlx::query("UPDATE hooks SET failing_since = $1 WHERE id = $2 AND failing_since IS NULL")
                                    .bind(Some(since))
                                    .bind(hook_id)
                            }
                        };
                        q.execute(&mut *tx).await?;
                    }
                    for (_, f, _) in &kept {
                        if let DeliveryOutcome::DisableHook { reason } = &f.outcome {
                            sqlx::query("UPDATE hooks SET enabled = FALSE, disabled_reason = $1, updated_at = $2 WHERE id = $3")
                                .bind(reason)
                                .bind(now)
                                .bind(&f.delivery.hook_id)
                                .execute(&mut *tx)
                                .await?;
                        }
                    }
                }
                tx.commit().await?;
                Ok(recorded)
                }
                .await;
                self.release_relaxed(conn).await;
                result
            }

            async fn list_attempts(&self, hook_id: &$crate::HookId, before_id: Option<i64>, limit: i64) -> $crate::Result<Vec<$crate::hooks::Attempt>> {
                Ok(sqlx::query_as(
                    "SELECT id, delivery_id, hook_id, event_id, attempted_at, succeeded, status_code, error, latency_ms, response_excerpt,
                       reply_message_id, reply_error
                     FROM hook_attempts WHERE hook_id = $1 AND ($2 IS NULL OR id < $2) ORDER BY id DESC LIMIT $3",
                )
                .bind(hook_id)
                .bind(before_id)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn deliveries_of_event(&self, event_id: &str) -> $crate::Result<Vec<$crate::hooks::Delivery>> {
                let sql = format!(
                    "SELECT {} FROM hook_deliveries WHERE event_id = $1 ORDER BY id",
                    $crate::hooks::DELIVERY_COLUMNS
                );
                Ok(sqlx::query_as(&sql).bind(event_id).fetch_all(&self.pool).await?)
            }

            async fn hook_health(&self, hook_id: &$crate::HookId) -> $crate::Result<$crate::hooks::HookHealth> {
                let (ok, bad): (Option<i64>, Option<i64>) = sqlx::query_as(
                    "SELECT SUM(CASE WHEN succeeded THEN 1 ELSE 0 END), SUM(CASE WHEN succeeded THEN 0 ELSE 1 END)
                     FROM hook_attempts WHERE hook_id = $1",
                )
                .bind(hook_id)
                .fetch_one(&self.pool)
                .await?;
                // Each count on its own partial index (pending, failed): neither reads the
                // deliveries that succeeded.
                let (pending, failed): (Option<i64>, Option<i64>) = sqlx::query_as(
                    "SELECT (SELECT COUNT(*) FROM hook_deliveries WHERE hook_id = $1 AND state = 'pending'),
                            (SELECT COUNT(*) FROM hook_deliveries WHERE hook_id = $1 AND state = 'failed')",
                )
                .bind(hook_id)
                .fetch_one(&self.pool)
                .await?;
                let last: Option<(i64, Option<String>)> = sqlx::query_as(
                    "SELECT attempted_at, error FROM hook_attempts WHERE hook_id = $1 ORDER BY id DESC LIMIT 1",
                )
                .bind(hook_id)
                .fetch_optional(&self.pool)
                .await?;
                let last_error: Option<(Option<String>,)> = sqlx::query_as(
                    "SELECT error FROM hook_attempts WHERE hook_id = $1 AND NOT succeeded ORDER BY id DESC LIMIT 1",
                )
                .bind(hook_id)
                .fetch_optional(&self.pool)
                .await?;
                Ok($crate::hooks::HookHealth {
                    attempts_succeeded: ok.unwrap_or(0),
                    attempts_failed: bad.unwrap_or(0),
                    pending: pending.unwrap_or(0),
                    failed: failed.unwrap_or(0),
                    last_error: last_error.and_then(|e| e.0),
                    last_attempt_at: last.map(|l| l.0),
                })
            }

            async fn get_event(&self, id: &$crate::EventId) -> $crate::Result<Option<$crate::Event>> {
                Ok(sqlx::query_as(
                    "SELECT seq, id, account_id, event_type, occurred_at, created_at, payload, raw FROM events WHERE id = $1",
                )
                .bind(id)
                .fetch_optional(&self.pool)
                .await?)
            }

            async fn get_events(&self, ids: &[String]) -> $crate::Result<Vec<$crate::Event>> {
                let mut found = Vec::with_capacity(ids.len());
                for chunk in ids.chunks(500) {
                    let mut qb = sqlx::QueryBuilder::new(
                        "SELECT seq, id, account_id, event_type, occurred_at, created_at, payload, raw FROM events WHERE id IN (",
                    );
                    let mut sep = qb.separated(", ");
                    for id in chunk {
                        sep.push_bind(id.clone());
                    }
                    qb.push(")");
                    found.extend(qb.build_query_as::<$crate::Event>().fetch_all(&self.pool).await?);
                }
                Ok(found)
            }

            async fn last_event_seq(&self) -> $crate::Result<i64> {
                let (max,): (Option<i64>,) = sqlx::query_as("SELECT MAX(seq) FROM events")
                    .fetch_one(&self.pool)
                    .await?;
                Ok(max.unwrap_or(0))
            }

            async fn append_event(&self, account_id: Option<&str>, event_type: &str, payload: &serde_json::Value, now: i64) -> $crate::Result<()> {
                sqlx::query(
                    "INSERT INTO events (id, account_id, event_type, occurred_at, created_at, payload, raw) VALUES ($1, $2, $3, $4, $4, $5, $6)",
                )
                .bind(wagate_core::ids::event_id())
                .bind(account_id)
                .bind(event_type)
                .bind(now)
                .bind(payload.to_string())
                .bind("{}")
                .execute(&self.writer)
                .await?;
                Ok(())
            }
        }
    };
}

pub(crate) use impl_hook_store;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failing_since_follows_the_attempts_in_order() {
        use FailingSince::*;
        assert_eq!(
            failing_since_changes(&[("a", false, 1), ("a", false, 2)]),
            [("a", StartIfNot(1))]
        );
        assert_eq!(
            failing_since_changes(&[("a", false, 1), ("a", true, 2)]),
            [("a", Reset(None))]
        );
        assert_eq!(
            failing_since_changes(&[("a", true, 1), ("a", false, 2), ("a", false, 3), ("b", true, 4)]),
            [("a", Reset(Some(2))), ("b", Reset(None))]
        );
    }
}
