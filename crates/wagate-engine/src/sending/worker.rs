//! The send worker: claims due jobs from the store's queue with a lease, sends them through the
//! Graph client, and finishes each job fenced by its lease — so a job whose lease passed to
//! another worker is not finished twice. Temporary Meta errors and transport failures are
//! retried with backoff; the rest fail the message with Meta's error and a hint.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use serde_json::{json, Value};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use wagate_core::meta::RetryClass;
use wagate_graph::GraphError;
use wagate_store::{ClaimFilter, InDoubtAction, InDoubtOutcome, SendJob, SendOutcome};

use crate::clock::now_ms;
use crate::state::Engine;

/// Jobs this worker holds, by id, with the attempt number that fences them.
type Held = Arc<Mutex<HashMap<i64, i64>>>;

pub async fn run(state: Engine, cancel: CancellationToken) {
    // Claims carry the gateway's instance id: when it dies they are taken over (`cluster`).
    let owner = state.instance.clone();
    let cfg = &state.config.sender;
    let concurrency = cfg.concurrency;
    let lease_ms = (cfg.lease_seconds * 1000) as i64;
    let in_doubt_ms = (cfg.in_doubt_seconds * 1000) as i64;
    let in_doubt_action = match cfg.in_doubt_action.as_str() {
        "unknown" => InDoubtAction::Unknown,
        _ => InDoubtAction::Retry,
    };
    let held: Held = Arc::default();
    // Sends in flight per phone number.
    let in_flight: Counts = Arc::default();
    let mut tasks = JoinSet::new();
    // Outcomes are recorded by one task, many per transaction (one disk sync for the lot).
    let (finished, outcomes) = tokio::sync::mpsc::unbounded_channel();
    let recorder = tokio::spawn(record_outcomes(state.clone(), owner.clone(), held.clone(), outcomes));
    // Leases are renewed while calls are in flight, three times per lease.
    let mut renew = tokio::time::interval(Duration::from_millis((lease_ms / 3).max(100) as u64));
    let mut sweep = tokio::time::interval(Duration::from_millis((in_doubt_ms / 4).clamp(200, 5_000) as u64));
    renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        while tasks.try_join_next().is_some() {}
        if cancel.is_cancelled() {
            break;
        }
        // Claims jobs for the free slots, a few at a time, leaving out the numbers that already
        // have their share in flight: a slow call holds only its own slot, and one number's
        // backlog (a big batch at 80/s) cannot keep another number's message waiting.
        let free = concurrency.saturating_sub(tasks.len());
        let want = free.min(state.throttle.smallest_cap(concurrency).max(CLAIM_STEP));
        let mut claimed = 0;
        if want > 0 {
            let full: Vec<String> = lock_counts(&in_flight)
                .iter()
                .filter(|(number, n)| **n >= state.throttle.in_flight_cap(number, concurrency))
                .map(|(number, _)| number.clone())
                .collect();
            let paused = state.accounts.paused_ids();
            let skip = ClaimFilter {
                paused_accounts: &paused,
                full_numbers: &full,
            };
            match state
                .store
                .claim_send_jobs(&owner, want as i64, lease_ms, now_ms(), &skip)
                .await
            {
                Ok(jobs) => {
                    claimed = jobs.len();
                    for job in jobs {
                        lock(&held).insert(job.id, job.attempts);
                        *lock_counts(&in_flight).entry(job.phone_number_id.clone()).or_default() += 1;
                        let (state, held, cancel, finished, in_flight) = (
                            state.clone(),
                            held.clone(),
                            cancel.clone(),
                            finished.clone(),
                            in_flight.clone(),
                        );
                        tasks.spawn(async move {
                            if !send_one(&state, job.clone(), &cancel, &finished).await {
                                lock(&held).remove(&job.id);
                            }
                            let mut counts = lock_counts(&in_flight);
                            if let Some(n) = counts.get_mut(&job.phone_number_id) {
                                *n = n.saturating_sub(1);
                                if *n == 0 {
                                    counts.remove(&job.phone_number_id);
                                }
                            }
                        });
                    }
                }
                Err(e) => tracing::error!(error = %e, "claiming send jobs failed"),
            }
        }
        if claimed > 0 && claimed == want && tasks.len() < concurrency {
            // There may be more: claim again at once.
            continue;
        }
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = state.wake_sender.notified(), if tasks.len() < concurrency => {}
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            _ = renew.tick() => renew_leases(&state, &held, lease_ms).await,
            _ = sweep.tick() => resolve_in_doubt(&state, in_doubt_ms, in_doubt_action).await,
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
    // Calls in flight finish (each bounded by the Graph timeout) and are recorded; jobs still
    // waiting for the governor were given back by their tasks.
    loop {
        tokio::select! {
            next = tasks.join_next() => if next.is_none() { break },
            _ = renew.tick() => renew_leases(&state, &held, lease_ms).await,
        }
    }
    drop(finished);
    let _ = recorder.await;
}

/// What the recorder writes: a call about to start, or a send's outcome.
enum Record {
    /// The job's call to Meta starts once this is recorded; `false` back: the job is no longer
    /// this gateway's (it was taken over), do not call.
    Calling(SendJob, tokio::sync::oneshot::Sender<bool>),
    Finished(Outcome),
}

/// One send's outcome, on its way to the store.
struct Outcome {
    job: SendJob,
    outcome: SendOutcome,
}

/// Records the starts of calls and outcomes as they come, all that are waiting in one
/// transaction. An outcome whose recording fails leaves its job leased: once the lease ends it
/// is in doubt and resolved from Meta's status webhooks, never resent blindly.
async fn record_outcomes(
    state: Engine,
    owner: String,
    held: Held,
    mut records: tokio::sync::mpsc::UnboundedReceiver<Record>,
) {
    const MAX: usize = 256;
    let mut received = Vec::with_capacity(MAX);
    let mut batch = Vec::with_capacity(MAX);
    let mut calling = Vec::new();
    while records.recv_many(&mut received, MAX).await > 0 {
        for r in received.drain(..) {
            match r {
                Record::Calling(job, answer) => calling.push((job, answer)),
                Record::Finished(o) => batch.push(o),
            }
        }
        let rows: Vec<(SendJob, String, SendOutcome)> = batch
            .iter()
            .map(|o| (o.job.clone(), owner.clone(), o.outcome.clone()))
            .collect();
        let starting: Vec<(i64, i64)> = calling.iter().map(|(j, _)| (j.id, j.attempts)).collect();
        match state.store.record_sends(&owner, &starting, &rows, now_ms()).await {
            Ok((started, done)) => {
                for ((job, answer), ok) in calling.drain(..).zip(started) {
                    if !ok {
                        tracing::warn!(job = job.id, "send job was taken over before its call; not calling");
                    }
                    let _ = answer.send(ok);
                }
                for (o, ok) in batch.iter().zip(done) {
                    if !ok {
                        tracing::warn!(
                            job = o.job.id,
                            "send job lease was lost before it finished; it was resolved another way"
                        );
                    }
                }
            }
            Err(e) => {
                // The calls do not start (their senders see `false`): their leases run out
                // and, never called, they go again.
                calling.clear();
                tracing::error!(jobs = batch.len(), error = %e, "recording send outcomes failed; those jobs are resolved as in doubt")
            }
        }
        {
            let mut held = lock(&held);
            for o in &batch {
                held.remove(&o.job.id);
            }
        }
        for o in batch.drain(..) {
            state.sent_waiters.wake(&o.job.message_id);
        }
    }
}

type Counts = Arc<Mutex<HashMap<String, usize>>>;

/// Jobs claimed per statement, at least: at most the smallest number's share, so that the numbers
/// left out are looked at again soon.
const CLAIM_STEP: usize = 16;

fn lock_counts(counts: &Counts) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
    counts.lock().unwrap_or_else(|e| e.into_inner())
}

fn lock(held: &Held) -> std::sync::MutexGuard<'_, HashMap<i64, i64>> {
    held.lock().unwrap_or_else(|e| e.into_inner())
}

async fn renew_leases(state: &Engine, held: &Held, lease_ms: i64) {
    let jobs: Vec<(i64, i64)> = lock(held).iter().map(|(id, attempt)| (*id, *attempt)).collect();
    if jobs.is_empty() {
        return;
    }
    match state.store.renew_send_leases(&jobs, now_ms() + lease_ms).await {
        Ok(n) if n < jobs.len() as u64 => {
            tracing::debug!(held = jobs.len(), renewed = n, "some send leases had already ended")
        }
        Ok(_) => {}
        Err(e) => tracing::error!(error = %e, "renewing send leases failed"),
    }
}

/// Sends whose lease ran out during the call (the gateway died): resolved from Meta's status
/// webhooks, else after `sender.in_doubt_seconds` requeued or marked `unknown`.
///
/// The status that settles a doubt is a webhook: a send is only acted on once webhooks have
/// had `in_doubt_seconds` past its lease's end to arrive *and be processed* — measured up to the
/// oldest webhook still waiting in the journal, and not before this gateway has been up that
/// long (while no gateway was up, Meta's deliveries failed and come again later).
async fn resolve_in_doubt(state: &Engine, in_doubt_ms: i64, action: InDoubtAction) {
    let now = now_ms();
    let processed_up_to = match state.store.oldest_pending_journal().await {
        Ok(oldest) => oldest.map_or(now, |t| t.min(now)),
        Err(e) => {
            tracing::error!(error = %e, "reading the journal backlog failed; sends in doubt wait");
            return;
        }
    };
    let act_before = if now - state.started_at_ms < in_doubt_ms {
        // Adopt what statuses already name; act on nothing else yet.
        i64::MIN
    } else {
        processed_up_to - in_doubt_ms
    };
    match state.store.resolve_in_doubt(now, act_before, action, 200).await {
        Ok(resolved) => {
            for r in &resolved {
                match &r.outcome {
                    InDoubtOutcome::Accepted { wamid } => {
                        tracing::info!(message = %r.message_id, %wamid, "a send in doubt had reached Meta (its status says so): not sent again")
                    }
                    InDoubtOutcome::NeverCalled => tracing::info!(
                        message = %r.message_id,
                        "a send whose lease ran out before its call started goes again"
                    ),
                    InDoubtOutcome::Requeued => tracing::warn!(
                        message = %r.message_id,
                        "a send in doubt got no status from Meta within sender.in_doubt_seconds: sending it again"
                    ),
                    InDoubtOutcome::Unknown => tracing::warn!(
                        message = %r.message_id,
                        "a send in doubt got no status from Meta within sender.in_doubt_seconds: marked unknown (message.unknown)"
                    ),
                }
                state.sent_waiters.wake(&r.message_id);
            }
            let requeued = |r: &&wagate_store::InDoubt| {
                matches!(r.outcome, InDoubtOutcome::Requeued | InDoubtOutcome::NeverCalled)
            };
            if resolved.iter().any(|r| !requeued(&r)) {
                state.wake_hooks.notify_one();
                state.events_written.send_modify(|n| *n += 1);
            }
            if resolved.iter().any(|r| requeued(&r)) {
                state.wake_sender.notify_one();
            }
        }
        Err(e) => tracing::error!(error = %e, "resolving sends in doubt failed"),
    }
}

/// Sends one job and hands its outcome to the recorder; false when nothing was sent (the job
/// was given back).
async fn send_one(
    state: &Engine,
    job: SendJob,
    cancel: &CancellationToken,
    finished: &tokio::sync::mpsc::UnboundedSender<Record>,
) -> bool {
    let Some(outcome) = attempt(state, &job, cancel, finished).await else {
        // Stopping before the call: the job goes back to the queue as it was.
        if let Err(e) = state.store.release_send_job(&job).await {
            tracing::error!(job = job.id, error = %e, "giving back an unsent job failed; it is resolved as in doubt");
        }
        return false;
    };
    let status = match &outcome {
        SendOutcome::Accepted { .. } => "accepted",
        SendOutcome::Failed { .. } => "failed",
        SendOutcome::Retry { .. } => "retry",
        SendOutcome::InDoubt { .. } => "in_doubt",
    };
    metrics::counter!("wagate_messages_sent_total", "status" => status).increment(1);
    if finished.send(Record::Finished(Outcome { job, outcome })).is_err() {
        tracing::error!("the outcome recorder stopped; this send is resolved as in doubt");
    }
    true
}

/// One try. `None`: nothing was sent (the worker is stopping, or the job was taken over).
async fn attempt(
    state: &Engine,
    job: &SendJob,
    cancel: &CancellationToken,
    recorder: &tokio::sync::mpsc::UnboundedSender<Record>,
) -> Option<SendOutcome> {
    Some(match prepare(state, job).await {
        Err(outcome) => outcome,
        Ok((account, message, mut body)) => {
            // Meta's throughput and pair limits, kept here rather than learnt from errors: the
            // call has its cell, and goes at its time.
            let mut cell = tokio::select! {
                _ = cancel.cancelled() => return None,
                cell = state.throttle.reserve(&job.phone_number_id, message.wa_id.as_deref()) => cell,
            };
            // The send carries callback data, which Meta returns in every status of this
            // message: if the gateway dies before recording Meta's answer, the status tells
            // whether the send went out. A caller's own value is kept (and matched instead).
            if body.get("biz_opaque_callback_data").is_none() {
                if let Some(obj) = body.as_object_mut() {
                    obj.insert("biz_opaque_callback_data".into(), json!(message.id));
                }
            }
            // The start of the call is recorded first (grouped with other starts and outcomes
            // in one commit), just ahead of its cell so that the commit does not make it late:
            // if the gateway dies, a job never called goes again at once, and only one whose
            // call was about to start or started waits for Meta's status.
            tokio::select! {
                _ = cancel.cancelled() => return None,
                _ = tokio::time::sleep_until(cell - MARK_AHEAD) => {}
            }
            let (answer, started) = tokio::sync::oneshot::channel();
            if recorder.send(Record::Calling(job.clone(), answer)).is_err() || !started.await.unwrap_or(false) {
                return None;
            }
            loop {
                tokio::select! {
                    // Not called: given back as it was.
                    _ = cancel.cancelled() => return None,
                    _ = tokio::time::sleep_until(cell) => {}
                }
                // A call later than its cell (a busy machine, a slow commit) would crowd the
                // next cells at Meta: it takes a new one instead.
                if tokio::time::Instant::now() <= cell + LATE_LIMIT {
                    break;
                }
                metrics::counter!("wagate_sends_late_for_their_cell_total").increment(1);
                cell = state.throttle.next_cell(&job.phone_number_id);
            }
            call(state, job, &account, &message, &body).await
        }
    })
}

type Prepared = (crate::accounts::runtime::AccountRuntime, wagate_store::Message, Value);

/// Everything that can be checked before the call; `Err` is the outcome without calling.
async fn prepare(state: &Engine, job: &SendJob) -> Result<Prepared, SendOutcome> {
    let message = match state.store.get_message(&job.message_id).await {
        Ok(Some(m)) => m,
        Ok(None) => {
            return Err(SendOutcome::Failed {
                error: local_error("message_missing", "the message record is gone"),
            })
        }
        Err(e) => return Err(retry_or_fail(state, job, local_error("database", &e.to_string()))),
    };
    let Some(account) = state.accounts.by_id(&job.account_id) else {
        return Err(SendOutcome::Failed {
            error: local_error("account_missing", "the message's account is no longer configured"),
        });
    };
    // The window is checked again just before the call: a message that waited in the queue
    // past its close would only earn Meta's 131047.
    if let (false, Some(wa_id)) = (message.message_type == "template", message.wa_id.as_deref()) {
        match state
            .store
            .get_contact(&job.account_id, &job.phone_number_id, wa_id)
            .await
        {
            Ok(contact) => {
                let expires = contact.and_then(|c| c.window_expires_at);
                if !wagate_core::window::is_open(expires, now_ms()) {
                    return Err(SendOutcome::Failed {
                        error: json!({
                            "code": "window_closed",
                            "title": "the 24-hour customer-service window closed while the message waited in the queue",
                            "details": {"window_expires_at": expires.map(wagate_core::time::rfc3339_ms)},
                            "hint": "send an approved template; the window opens again when the user writes to you",
                            "retry": "fix",
                        }),
                    });
                }
            }
            Err(e) => return Err(retry_or_fail(state, job, local_error("database", &e.to_string()))),
        }
    }
    match serde_json::from_str(&message.content) {
        Ok(body) => Ok((account, message, body)),
        Err(e) => Err(SendOutcome::Failed {
            error: local_error("corrupt_message", &e.to_string()),
        }),
    }
}

async fn call(
    state: &Engine,
    job: &SendJob,
    account: &crate::accounts::runtime::AccountRuntime,
    message: &wagate_store::Message,
    body: &Value,
) -> SendOutcome {
    match state
        .graph
        .send_message(&account.access_token(), &job.phone_number_id, body)
        .await
    {
        Ok(resp) => match resp.messages.first() {
            Some(m) => SendOutcome::Accepted {
                wamid: m.id.clone(),
                wa_id: resp.contacts.first().and_then(|c| c.wa_id.clone()),
            },
            None => retry_or_fail(
                state,
                job,
                local_error("unexpected_response", "Meta answered without a message id"),
            ),
        },
        Err(e) => {
            let error = graph_error_json(&e);
            let code = match &e {
                GraphError::Meta { error, .. } => Some(error.code),
                _ => None,
            };
            match code {
                // Over the number's throughput, or the pair's: hold that number (or only that
                // recipient) and wait; these never count against max_attempts.
                Some(130429) => {
                    state.throttle.hold_number(&job.phone_number_id, THROTTLE_HOLD);
                    SendOutcome::Retry {
                        run_at: now_ms() + THROTTLE_HOLD.as_millis() as i64,
                        error,
                    }
                }
                Some(131056) => {
                    let hold = pair_hold(job.attempts);
                    if let Some(to) = message.wa_id.as_deref() {
                        state.throttle.hold_pair(&job.phone_number_id, to, hold);
                    }
                    SendOutcome::Retry {
                        run_at: now_ms() + hold.as_millis() as i64,
                        error,
                    }
                }
                // The call may have reached Meta: in doubt, resolved like a crash during the
                // call (Meta's status webhook names it), never resent blindly.
                _ if matches!(e, GraphError::Transport(_)) => SendOutcome::InDoubt { error },
                _ => match e.retry_class() {
                    RetryClass::Retry => retry_or_fail(state, job, error),
                    RetryClass::Later => retry_much_later(state, message.created_at, error),
                    RetryClass::Fix => SendOutcome::Failed { error },
                    // The account cannot send (token, permission, block, lock): it pauses, and
                    // this message waits in the queue with the others until it resumes.
                    RetryClass::Account => {
                        if let GraphError::Meta { error: meta, .. } = &e {
                            crate::accounts::pause::pause(
                                state,
                                account,
                                crate::accounts::pause::pause_for_meta_error(meta),
                            )
                            .await;
                        }
                        SendOutcome::Retry {
                            run_at: now_ms(),
                            error,
                        }
                    }
                },
            }
        }
    }
}

/// How long before its cell a call's start is recorded: about a commit's time, so that the call
/// is not late for its cell; a gateway that dies in that time leaves at most this long's worth of
/// a number's calls in doubt though not made.
const MARK_AHEAD: Duration = Duration::from_millis(30);

/// How late for its cell a call may still go (part of the throttle's JITTER; the rest is the way
/// to Meta).
const LATE_LIMIT: Duration = Duration::from_millis(5);

/// How long a number waits after Meta's 130429.
const THROTTLE_HOLD: Duration = Duration::from_secs(1);

/// After Meta's 131056, the pair waits 4^x seconds (Meta's advice), x growing with the attempts,
/// up to about 17 minutes.
fn pair_hold(attempts: i64) -> Duration {
    Duration::from_secs(4u64.pow(attempts.saturating_sub(1).clamp(0, 5) as u32))
}

fn retry_or_fail(state: &Engine, job: &SendJob, error: Value) -> SendOutcome {
    if job.attempts >= state.config.sender.max_attempts {
        return SendOutcome::Failed { error };
    }
    let delay = wagate_core::retry::backoff_ms(job.attempts as u32, rand::rng().random::<f64>());
    SendOutcome::Retry {
        run_at: now_ms() + delay,
        error,
    }
}

/// Meta asked to wait long (a spam or marketing limit): the next try comes after
/// `sender.later_retry_seconds`, unless that is past `sender.later_horizon_seconds` from when
/// the message was queued; then it fails with Meta's reason.
fn retry_much_later(state: &Engine, queued_at: i64, mut error: Value) -> SendOutcome {
    let now = now_ms();
    let run_at = now + state.config.sender.later_retry_seconds as i64 * 1000;
    if run_at - queued_at > state.config.sender.later_horizon_seconds as i64 * 1000 {
        error["gave_up"] = json!(format!(
            "Meta asked to retry much later, and that is past sender.later_horizon_seconds ({} s) from when the message was queued",
            state.config.sender.later_horizon_seconds
        ));
        return SendOutcome::Failed { error };
    }
    SendOutcome::Retry { run_at, error }
}

fn local_error(code: &str, message: &str) -> Value {
    json!({"code": code, "title": message, "details": null, "hint": "see the gateway's log", "retry": "fix"})
}

/// Meta's error as the API shows it, with the HTTP status and our hint.
pub fn graph_error_json(e: &GraphError) -> Value {
    match e {
        GraphError::Meta { status, error } => {
            let mut v = wagate_core::webhook::error_json(error);
            v["http_status"] = json!(status);
            v["meta"] = serde_json::to_value(error).unwrap_or_default();
            v
        }
        GraphError::Unreached(m) => {
            json!({"code": "unreached", "title": m, "details": null, "hint": "Meta could not be reached; the gateway retries", "retry": "retry"})
        }
        GraphError::Transport(m) => {
            json!({"code": "transport", "title": m, "details": null, "hint": "Meta could not be reached; the gateway retries", "retry": "retry"})
        }
        GraphError::Unexpected { status, body } => {
            json!({"code": "unexpected_response", "title": format!("HTTP {status}"), "details": body, "hint": "Meta answered something unexpected", "retry": "retry"})
        }
        GraphError::InvalidRequest(m) => local_error("invalid_request", m),
    }
}
