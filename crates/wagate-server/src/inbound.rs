//! Meta's webhook: the verify handshake, signature check over the raw bytes, routing to an
//! account, and the journal. A body is acknowledged only after it is committed to the journal;
//! a single writer commits whatever has queued up in one transaction (group commit), which is
//! both durable and fast. A processor then turns journalled bodies into messages, statuses and
//! events; after a crash it picks up whatever was journalled and not processed.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use wagate_core::signature::{constant_time_eq, verify_hub, SignatureError};
use wagate_core::webhook::{parse_updates, Routing, Update, INVALID};
use wagate_store::{AppliedWebhook, JournalState, NewJournalEntry};

use crate::error::ApiError;
use crate::{now_ms, AppState};

/// `GET /webhooks/whatsapp`: Meta's subscription handshake.
pub async fn verify(State(state): State<AppState>, Query(q): Query<HashMap<String, String>>) -> Response {
    verify_with(&state, None, &q)
}

pub async fn verify_account(
    State(state): State<AppState>,
    Path(account): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    verify_with(&state, Some(&account), &q)
}

fn verify_with(state: &AppState, account: Option<&str>, q: &HashMap<String, String>) -> Response {
    let mode = q.get("hub.mode").map(String::as_str);
    let token = q.get("hub.verify_token").map(String::as_str).unwrap_or_default();
    let challenge = q.get("hub.challenge").cloned().unwrap_or_default();
    let all = match account {
        Some(a) => state.accounts.find(a).into_iter().collect(),
        None => state.accounts.all().to_vec(),
    };
    let candidates: Vec<&str> = all.iter().map(|a| a.verify_token.as_str()).collect();
    // Compare against every candidate so the time taken does not say which one matched.
    let matched = candidates.iter().fold(false, |acc, t| constant_time_eq(t, token) | acc);
    if mode == Some("subscribe") && matched {
        (StatusCode::OK, [("content-type", "text/plain")], challenge).into_response()
    } else {
        let (field, message) = if mode != Some("subscribe") {
            ("hub.mode", "hub.mode must be `subscribe`")
        } else {
            (
                "hub.verify_token",
                "hub.verify_token does not match the account's verify token",
            )
        };
        reject(
            "verify_token",
            ApiError::new(StatusCode::FORBIDDEN, "verification_failed", message)
                .details(serde_json::json!({"field": field}))
                .hint("in Meta's App Dashboard (WhatsApp > Configuration), enter the verify_token configured for this account"),
        )
        .into_response()
    }
}

/// `POST /webhooks/whatsapp`.
pub async fn receive(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<Response, ApiError> {
    receive_with(&state, None, &headers, body).await
}

pub async fn receive_account(
    State(state): State<AppState>,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    receive_with(&state, Some(&account), &headers, body).await
}

/// A webhook POST whose signature header is missing or malformed is refused before its body is
/// read: the signature covers the body, but a header that cannot match needs none, and a
/// sender without one must not hold a connection while it trickles a body.
pub async fn signature_first(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    if req.method() == axum::http::Method::POST {
        let header = req.headers().get("x-hub-signature-256").and_then(|v| v.to_str().ok());
        if let Err(e) = wagate_core::signature::check_hub_header(header) {
            return signature_error(e).into_response();
        }
    }
    next.run(req).await
}

fn signature_error(e: SignatureError) -> ApiError {
    match e {
        SignatureError::Missing => reject(
            "signature_missing",
            ApiError::new(StatusCode::UNAUTHORIZED, "signature_missing", e.to_string())
                .hint("Meta signs every webhook; a request without X-Hub-Signature-256 did not come from Meta"),
        ),
        _ => reject(
            "signature_invalid",
            ApiError::new(StatusCode::FORBIDDEN, "signature_invalid", e.to_string()).hint(
                "check that the account's app_secret is the App Secret of the Meta app that sends these webhooks",
            ),
        ),
    }
}

fn reject(reason: &'static str, err: ApiError) -> ApiError {
    metrics::counter!("wagate_webhooks_rejected_total", "reason" => reason).increment(1);
    err
}

async fn receive_with(
    state: &AppState,
    account: Option<&str>,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let scoped = match account {
        Some(a) => Some(state.accounts.find(a).ok_or_else(|| {
            reject(
                "unknown_account",
                ApiError::new(StatusCode::NOT_FOUND, "unknown_account", format!("no account `{a}`"))
                    .hint("use the account's name or id in the webhook URL, or /webhooks/whatsapp"),
            )
        })?),
        None => None,
    };
    let header = headers.get("x-hub-signature-256").and_then(|v| v.to_str().ok());
    let all = state.accounts.all();
    let candidates: Vec<&crate::AccountRuntime> = match &scoped {
        Some(a) => vec![a],
        None => all.iter().collect(),
    };
    // The Meta app's own secret too: it signs the webhooks of WABAs no account has yet (a
    // business that just connected through the app).
    let app_secret = state.config.meta.app_secret.as_deref().filter(|_| scoped.is_none());
    let secrets = candidates.iter().map(|a| a.app_secret.as_str()).chain(app_secret);
    let signer = match verify_hub(header, &body, secrets) {
        Ok(i) => candidates.get(i).copied(),
        Err(e) => return Err(signature_error(e)),
    };
    // A signed body is Meta's, whatever its shape: it is kept, and one that cannot be processed
    // becomes a `webhook.invalid` event (refusing it would only make Meta retry it for days).
    let mut routed = route_body(state, scoped.as_ref(), &body);
    // A number this gateway does not know may be of an account another gateway just made.
    if routed.unknown.is_some() && state.accounts.reload_if_older(state.store.as_ref(), 1_000).await {
        state.accounts_changed();
        routed = route_body(state, scoped.as_ref(), &body);
    }
    // A body that names nothing (it is not of Meta's shape) belongs to the one that signed it.
    let account_id = match routed.names_nothing {
        true => scoped.as_ref().or(signer).map(|a| a.id.clone()),
        false => routed.account_id,
    };
    let mut journal_state = JournalState::Pending;
    if let Some((waba, phone)) = routed.unknown {
        if state.config.webhook.unknown_accounts == "quarantine" {
            metrics::counter!("wagate_webhooks_quarantined_total").increment(1);
            tracing::warn!(waba = %waba.as_deref().unwrap_or_default(), phone_number_id = %phone.as_deref().unwrap_or_default(),
                "a signed webhook names a phone number no account has; kept in quarantine (GET /v1/journal/quarantined)");
            journal_state = JournalState::Quarantined;
        } else {
            return Err(reject("unknown_account", ApiError::new(StatusCode::FORBIDDEN, "unknown_account",
                format!("the webhook is for WABA {} / phone number {}, which no account has", waba.unwrap_or_default(), phone.unwrap_or_default()))
                .hint("add the account (waba_id and phone_number_ids) to the configuration, or set webhook.unknown_accounts = \"quarantine\" (the default)")));
        }
    }
    let pending = journal_state == JournalState::Pending;
    state
        .journal
        .append(NewJournalEntry {
            received_at: now_ms(),
            account_id,
            body: body.to_vec(),
            state: journal_state,
        })
        .await?;
    metrics::counter!("wagate_webhooks_received_total").increment(1);
    // Not Meta's: a test or the simulator asks to be answered once the body is processed.
    if pending && headers.get("x-wagate-wait").is_some_and(|v| v == "processed") {
        wait_processed(state, Duration::from_secs(10)).await;
    }
    Ok(StatusCode::OK.into_response())
}

/// Waits (at most `within`) until this gateway has processed everything it journalled so far,
/// so that the events of the body just stored can be read.
async fn wait_processed(state: &AppState, within: Duration) {
    let stored = state.journal_head.load(Ordering::Relaxed);
    let deadline = tokio::time::Instant::now() + within;
    loop {
        // Made before the check, so that a batch finished right after it still wakes this.
        let processed = state.journal_processed.notified();
        if state.processed_upto.load(Ordering::Relaxed) >= stored {
            return;
        }
        if tokio::time::timeout_at(deadline, processed).await.is_err() {
            return;
        }
    }
}

/// Where a signed body goes.
struct Routed {
    /// The first account it names.
    account_id: Option<String>,
    /// A message or status (it names a phone number) for a number no account has: it waits in
    /// quarantine until the account exists.
    unknown: Option<(Option<String>, Option<String>)>,
    /// The body names no WABA or number at all (it is not of Meta's shape).
    names_nothing: bool,
}

/// Routes a body by the WABAs and numbers it names. An account-level update (no phone number)
/// for a WABA no account has is not unknown: it is how a new customer arrives (Meta's
/// `account_update` with PARTNER_ADDED or PARTNER_APP_INSTALLED names the WABA before it is
/// connected), so it is processed, as an event of no account that carries the WABA id.
fn route_body(state: &AppState, scoped: Option<&crate::AccountRuntime>, body: &[u8]) -> Routed {
    let routing = Routing::parse(body);
    let mut routed = Routed {
        account_id: None,
        unknown: None,
        names_nothing: true,
    };
    for (waba, phone) in routing.targets() {
        if waba.is_none() && phone.is_none() {
            continue;
        }
        routed.names_nothing = false;
        match state.accounts.route(waba, phone) {
            Some(a) if scoped.is_none_or(|s| s.id == a.id) => {
                routed.account_id.get_or_insert_with(|| a.id.clone());
            }
            _ if phone.is_none() => {}
            _ => routed.unknown = Some((waba.map(str::to_string), phone.map(str::to_string))),
        }
    }
    routed
}

/// Releases quarantined webhooks whose every number now has an account: they are processed as
/// that account's. Runs at start (an account added to the configuration picks up what waited
/// for it) and through `POST /v1/journal/quarantined/requeue`. Returns (released, still waiting).
pub async fn release_quarantined(state: &AppState) -> Result<(u64, u64), wagate_store::StoreError> {
    let (mut released, mut waiting, mut after) = (0, 0, 0);
    loop {
        let page = state.store.quarantined_journal(after, 500).await?;
        let Some(last) = page.last() else { break };
        after = last.id;
        for entry in &page {
            let routed = route_body(state, None, &entry.body);
            if routed.unknown.is_some() {
                waiting += 1;
                continue;
            }
            if state
                .store
                .release_quarantined(entry.id, routed.account_id.as_deref())
                .await?
            {
                released += 1;
            }
        }
    }
    if released > 0 {
        tracing::info!(
            released,
            waiting,
            "quarantined webhooks released to the accounts that now exist"
        );
        state.wake_processor.notify_one();
    }
    Ok((released, waiting))
}

pub struct JournalRequest {
    entry: NewJournalEntry,
    done: oneshot::Sender<bool>,
}

/// Hands bodies to the single journal writer and waits for their commit.
#[derive(Clone)]
pub struct JournalWriter {
    tx: mpsc::Sender<JournalRequest>,
}

impl JournalWriter {
    pub fn channel() -> (Self, mpsc::Receiver<JournalRequest>) {
        let (tx, rx) = mpsc::channel(8192);
        (Self { tx }, rx)
    }

    /// Returns once the entry is committed; an error means it was not stored.
    pub async fn append(&self, entry: NewJournalEntry) -> Result<(), ApiError> {
        let (done, committed) = oneshot::channel();
        let unavailable = || {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "journal_unavailable",
                "the webhook could not be stored",
            )
            .hint("Meta retries; check the database")
        };
        self.tx
            .send(JournalRequest { entry, done })
            .await
            .map_err(|_| unavailable())?;
        match committed.await {
            Ok(true) => Ok(()),
            _ => Err(unavailable()),
        }
    }
}

/// The group-commit loop: takes everything waiting, commits it in one transaction, answers all.
pub async fn run_journal_writer(state: AppState, mut rx: mpsc::Receiver<JournalRequest>, stop: CancellationToken) {
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
async fn pace(state: &AppState) {
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
pub async fn run_processor(state: AppState, cancel: CancellationToken) {
    if let Err(e) = release_quarantined(&state).await {
        tracing::warn!(error = %e, "could not look through the quarantined webhooks; POST /v1/journal/quarantined/requeue retries");
    }
    loop {
        let started = tokio::time::Instant::now();
        match process_pending(&state).await {
            Ok(0) => {}
            Ok(n) => {
                // Processing runs at full speed while there is a backlog (acknowledgements are
                // paced to it, see `pace`), except while hooks are delivering: then it takes
                // about three quarters of the time, leaving the database writer to the
                // deliveries in between (events processed faster than they can be delivered only
                // wait; at half the time, events fell behind a 5,000/s stream). A small batch
                // waits a little for more to gather, which costs fewer commits.
                let pause = if state.hooks_busy() {
                    (started.elapsed() / 3).max(Duration::from_millis(10))
                } else if n < PROCESS_BATCH / 4 {
                    Duration::from_millis(25)
                } else {
                    Duration::ZERO
                };
                if !pause.is_zero() {
                    tokio::select! {
                        _ = cancel.cancelled() => {}
                        _ = tokio::time::sleep(pause) => {}
                    }
                }
                continue;
            }
            Err(wagate_store::StoreError::Conflict(m)) => {
                tracing::debug!(reason = %m, "another gateway processed this batch")
            }
            Err(e) => tracing::error!(error = %e, "webhook processing failed; will retry"),
        }
        tokio::select! {
            _ = cancel.cancelled() => {
                // Drain what is already journalled before stopping.
                let _ = process_pending(&state).await;
                return;
            }
            _ = state.wake_processor.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// Applies entries one at a time; one that fails three times on its own is set aside (state
/// `dead`, with its error; `GET /v1/journal/dead`) so that the rest flows.
async fn apply_one_by_one(
    state: &AppState,
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
pub async fn process_pending(state: &AppState) -> Result<usize, wagate_store::StoreError> {
    let pending = state.store.pending_journal(PROCESS_BATCH as i64).await?;
    if pending.is_empty() {
        return Ok(0);
    }
    let batch: Vec<AppliedWebhook> = pending
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
    if let Some(newest) = pending.iter().map(|e| e.id).max() {
        state.processed_upto.fetch_max(newest, Ordering::Relaxed);
    }
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
    Ok(pending.len())
}
