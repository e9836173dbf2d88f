//! Turning journalled bodies into messages, statuses and events: the group-commit writer, the
//! pacing of acknowledgements to processing, and the processor (which also recovers what a
//! previous run left unprocessed).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use wagate_core::webhook::{parse_updates, Update, INVALID};
use wagate_store::{AppliedWebhook, JournalState, NewJournalEntry};

use super::journal::JournalRequest;
use super::receive::release_quarantined;
use crate::clock::now_ms;
use crate::state::Engine;

/// The group-commit loop: takes everything waiting, commits it in one transaction, answers all.
pub async fn run_journal_writer(state: Engine, mut rx: mpsc::Receiver<JournalRequest>, stop: CancellationToken) {
    // As many as the store writes in one statement: each group commit is one round trip.
    const MAX_BATCH: usize = wagate_store::JOURNAL_STATEMENT_ROWS;
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        tokio::select! {
            biased;
            n = rx.recv_many(&mut batch, MAX_BATCH) => if n == 0 { return },
            _ = stop.cancelled() => {
                // The server has stopped; commit whatever is still waiting, then end.
                while let Ok(r) = rx.try_recv() {
                    batch.push(r);
                }
                if batch.is_empty() {
                    return;
                }
            }
        }
        pace(&state).await;
        let entries: Vec<NewJournalEntry> = batch
            .iter_mut()
            .map(|r| NewJournalEntry {
                body: std::mem::take(&mut r.entry.body),
                ..r.entry.clone()
            })
            .collect();
        let ok = match state.store.journal_webhooks(&entries).await {
            Ok(ids) => {
                // What the processor will take up (not the quarantined).
                let newest = ids
                    .iter()
                    .zip(&entries)
                    .filter(|(_, e)| e.state == JournalState::Pending)
                    .map(|(id, _)| *id)
                    .max();
                if let Some(newest) = newest {
                    state.journal_head.fetch_max(newest, Ordering::Relaxed);
                }
                true
            }
            Err(e) => {
                tracing::error!(error = %e, n = entries.len(), "journal commit failed");
                false
            }
        };
        for r in batch.drain(..) {
            let _ = r.done.send(ok);
        }
        if ok {
            state.wake_processor.notify_one();
        }
    }
}

/// Paces acknowledgements to processing: while more than `webhook.pace_backlog` journalled
/// webhooks wait to be processed, the next group commit waits for a processed batch, at most
/// 100 ms. Acknowledgements never stop (processing may be broken; Meta must still get its 200),
/// but under a sustained overload they go at the speed of processing, so events stay close
/// behind. Only where this gateway is the one processing its journal (SQLite), and not while
/// hooks are delivering: then the deliveries are the slower step, and processing yields to them.
async fn pace(state: &Engine) {
    let limit = state.config.webhook.pace_backlog as i64;
    if limit == 0 || state.store.backend() != "sqlite" {
        return;
    }
    if state.hooks_busy() {
        return;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_millis(100);
    loop {
        // Made before the check, so that a batch finished right after it still wakes this.
        let processed = state.journal_processed.notified();
        let done = state.processed_upto.load(Ordering::Relaxed);
        // Until the processor has finished a batch of this run, there is nothing to pace to.
        if done == 0 || state.journal_head.load(Ordering::Relaxed) - done <= limit {
            return;
        }
        if tokio::time::timeout_at(deadline, processed).await.is_err() {
            metrics::counter!("wagate_webhook_paced_total", "result" => "timeout").increment(1);
            return;
        }
    }
}

/// Processes journalled bodies in batches, until cancelled. Also recovers what a previous run
/// left unprocessed.
///
/// Two stages overlap: while the store applies one batch (on its own thread, mostly waiting
/// for SQLite or PostgreSQL), the next is read and parsed here; on two cores the parse no
/// longer waits for the commit, nor the commit for the parse.
pub async fn run_processor(state: Engine, cancel: CancellationToken) {
    if let Err(e) = release_quarantined(&state).await {
        tracing::warn!(error = %e, "could not look through the quarantined webhooks; POST /v1/journal/quarantined/requeue retries");
    }
    let mut in_flight: Option<InFlight> = None;
    let mut started = tokio::time::Instant::now();
    loop {
        let upto = in_flight.as_ref().map_or(0, |f| f.upto);
        let next = read_batch(&state, upto).await;
        if let Some(flight) = in_flight.take() {
            match flight.finish().await {
                Ok(n) => {
                    let pause = pause_after(&state, n, started.elapsed());
                    if !pause.is_zero() {
                        tokio::select! {
                            _ = cancel.cancelled() => {}
                            _ = tokio::time::sleep(pause) => {}
                        }
                    }
                }
                // The batch read ahead may start past entries that are not applied (where the
                // journal is read from a cursor): it is read again after them.
                Err(e) => {
                    log_failure(&e);
                    if let Ok(Some(batch)) = next {
                        state.store.unclaim_journal(&state.instance, &batch.ids()).await.ok();
                    }
                    if idle(&state, &cancel).await {
                        return;
                    }
                    continue;
                }
            }
        }
        match next {
            Ok(Some(batch)) => {
                started = tokio::time::Instant::now();
                in_flight = Some(InFlight::start(&state, batch));
            }
            Ok(None) => {
                if idle(&state, &cancel).await {
                    return;
                }
            }
            Err(e) => {
                log_failure(&e);
                if idle(&state, &cancel).await {
                    return;
                }
            }
        }
    }
}

/// Waits for more to process (a wake-up, or a second); true when cancelled, after draining
/// what is already journalled.
async fn idle(state: &Engine, cancel: &CancellationToken) -> bool {
    tokio::select! {
        _ = cancel.cancelled() => {
            let _ = process_pending(state).await;
            true
        }
        _ = state.wake_processor.notified() => false,
        _ = tokio::time::sleep(Duration::from_secs(1)) => false,
    }
}

fn log_failure(e: &wagate_store::StoreError) {
    match e {
        wagate_store::StoreError::Conflict(m) => tracing::debug!(reason = %m, "another gateway processed this batch"),
        e => tracing::error!(error = %e, "webhook processing failed; will retry"),
    }
}

/// How long to wait after applying `n` entries that took `took`. Processing runs at full speed
/// while there is a backlog (acknowledgements are paced to it, see `pace`), except while hooks
/// are delivering: then it takes about three quarters of the time, leaving the database writer
/// to the deliveries in between (events processed faster than they can be delivered only wait;
/// at half the time, events fell behind a 5,000/s stream). A small batch waits a little for more
/// to gather, which costs fewer commits.
fn pause_after(state: &Engine, n: usize, took: Duration) -> Duration {
    if state.hooks_busy() {
        (took / 3).max(Duration::from_millis(10))
    } else if n < PROCESS_BATCH / 4 {
        Duration::from_millis(25)
    } else {
        Duration::ZERO
    }
}

/// A batch being applied by the store, on a task of its own.
struct InFlight {
    /// The newest journal id in it.
    upto: i64,
    task: tokio::task::JoinHandle<Result<usize, wagate_store::StoreError>>,
}

impl InFlight {
    fn start(state: &Engine, batch: ReadBatch) -> Self {
        let state = state.clone();
        Self {
            upto: batch.upto,
            task: tokio::spawn(async move { apply_batch(&state, batch).await }),
        }
    }

    async fn finish(self) -> Result<usize, wagate_store::StoreError> {
        match self.task.await {
            Ok(r) => r,
            Err(e) => Err(wagate_store::StoreError::Unavailable(format!(
                "the batch's task ended: {e}"
            ))),
        }
    }
}

/// Applies entries one at a time; one that fails three times on its own is set aside (state
/// `dead`, with its error; `GET /v1/journal/dead`) so that the rest flows.
async fn apply_one_by_one(
    state: &Engine,
    batch: &[AppliedWebhook],
) -> Result<wagate_store::ApplyStats, wagate_store::StoreError> {
    let mut all = wagate_store::ApplyStats::default();
    for entry in batch {
        let mut tries = 0;
        loop {
            tries += 1;
            match state.store.apply_webhooks(std::slice::from_ref(entry)).await {
                Ok(stats) => {
                    all.events.extend(stats.events);
                    all.new_media += stats.new_media;
                    all.new_messages += stats.new_messages;
                    all.duplicate_messages += stats.duplicate_messages;
                    all.statuses += stats.statuses;
                    break;
                }
                Err(wagate_store::StoreError::Database(e)) if tries >= 3 => {
                    let error = e.to_string();
                    tracing::error!(journal_id = entry.journal_id, %error, "a webhook failed to apply on its own three times; set aside (GET /v1/journal/dead)");
                    metrics::counter!("wagate_webhooks_dead_total").increment(1);
                    state
                        .store
                        .set_aside_journal(entry.journal_id, &error, now_ms())
                        .await?;
                    break;
                }
                Err(wagate_store::StoreError::Database(_)) => {
                    tokio::time::sleep(Duration::from_millis(50 * tries)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }
    Ok(all)
}

/// The most journal entries processed in one transaction.
const PROCESS_BATCH: usize = 500;

/// Processes one batch; returns how many journal entries it handled.
pub async fn process_pending(state: &Engine) -> Result<usize, wagate_store::StoreError> {
    match read_batch(state, 0).await? {
        Some(batch) => apply_batch(state, batch).await,
        None => Ok(0),
    }
}

/// Journal entries read and parsed, ready to apply.
struct ReadBatch {
    webhooks: Vec<AppliedWebhook>,
    /// The newest journal id among them.
    upto: i64,
}

impl ReadBatch {
    fn ids(&self) -> Vec<i64> {
        self.webhooks.iter().map(|w| w.journal_id).collect()
    }
}

/// Reads (past `in_flight`, the newest id of a batch still being applied) and parses the next
/// batch; `None` when nothing waits.
async fn read_batch(state: &Engine, in_flight: i64) -> Result<Option<ReadBatch>, wagate_store::StoreError> {
    let pending = state
        .store
        .pending_journal(&state.instance, in_flight, PROCESS_BATCH as i64)
        .await?;
    let Some(upto) = pending.iter().map(|e| e.id).max() else {
        return Ok(None);
    };
    let webhooks: Vec<AppliedWebhook> = pending
        .iter()
        .map(|entry| {
            let updates: Vec<(Option<String>, Update)> = parse_updates(&entry.body)
                .into_iter()
                .map(|u| {
                    // An account-level update for a WABA no account has is no account's (the
                    // event carries the WABA id); anything else unrouted is the entry's.
                    let newcomer = u.phone_number_id().is_none() && u.waba_id().is_some();
                    let account = state
                        .accounts
                        .route(u.waba_id(), u.phone_number_id())
                        .map(|a| a.id.clone())
                        .or_else(|| (!newcomer).then(|| entry.account_id.clone()).flatten());
                    (account, u)
                })
                .collect();
            let mut error = None;
            for (_, u) in &updates {
                if let Update::Other(o) = u {
                    if o.event_type == INVALID {
                        let reason = o.payload["reason"].as_str().unwrap_or_default();
                        tracing::warn!(journal_id = entry.id, %reason, "an acknowledged webhook could not be processed; kept as a webhook.invalid event");
                        metrics::counter!("wagate_webhooks_invalid_total").increment(1);
                        if o.payload["path"].is_null() {
                            // The whole body is unusable: the journal row says so too.
                            error = Some(reason.to_string());
                        }
                    }
                }
            }
            AppliedWebhook {
                journal_id: entry.id,
                received_at: entry.received_at,
                updates,
                error,
            }
        })
        .collect();
    Ok(Some(ReadBatch { webhooks, upto }))
}

/// Applies a batch read by [`read_batch`]; returns how many journal entries it handled.
async fn apply_batch(state: &Engine, batch: ReadBatch) -> Result<usize, wagate_store::StoreError> {
    let ReadBatch { webhooks: batch, upto } = batch;
    let stats = match state.store.apply_webhooks(&batch).await {
        Ok(stats) => stats,
        // The database refused the batch (not a conflict with another gateway, not an outage):
        // one entry may be poison. Each is applied alone; one that still fails is set aside.
        Err(wagate_store::StoreError::Database(e)) => {
            tracing::warn!(error = %e, entries = batch.len(), "a batch failed to apply; applying its entries one by one");
            apply_one_by_one(state, &batch).await?
        }
        Err(e) => return Err(e),
    };
    state.processed_upto.fetch_max(upto, Ordering::Relaxed);
    state.journal_processed.notify_waiters();
    if !stats.events.is_empty() {
        state.wake_hooks.notify_one();
        state.events_written.send_modify(|n| *n += 1);
    }
    if stats.new_media > 0 {
        state.wake_media.notify_one();
    }
    // Counted per type first: one registry lookup per type and batch, not one per event.
    let mut by_type: HashMap<&str, u64> = HashMap::new();
    for t in &stats.events {
        *by_type.entry(t.as_str()).or_default() += 1;
    }
    for (t, n) in by_type {
        metrics::counter!("wagate_events_total", "type" => t.to_string()).increment(n);
    }
    metrics::counter!("wagate_inbound_messages_total", "result" => "new").increment(stats.new_messages);
    metrics::counter!("wagate_inbound_messages_total", "result" => "duplicate").increment(stats.duplicate_messages);
    Ok(batch.len())
}
