//! The send worker: claims due jobs from the store's queue with a lease, sends them through the
//! Graph client, and finishes each job fenced by its lease — so a job whose lease passed to
//! another worker is not finished twice. Temporary Meta errors and transport failures are
//! retried with backoff; the rest fail the message with Meta's error and a hint.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use serde_json::{json, Value};
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use wagate_core::meta::RetryClass;
use wagate_graph::GraphError;
use wagate_store::{SendJob, SendOutcome};

use crate::{now_ms, AppState};

/// Requests waiting for a message to leave `queued` (`?wait=accepted`).
#[derive(Default)]
pub struct Waiters(Mutex<HashMap<String, Arc<Notify>>>);

impl Waiters {
    pub fn register(&self, message_id: &str) -> Arc<Notify> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(message_id.to_string()).or_default().clone()
    }

    fn wake(&self, message_id: &str) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.remove(message_id) {
            n.notify_waiters();
            n.notify_one();
        }
    }

    pub fn forget(&self, message_id: &str) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).remove(message_id);
    }
}

pub async fn run(state: AppState, cancel: CancellationToken) {
    let owner = wagate_core::ids::new_id("worker");
    let concurrency = state.config.sender.concurrency;
    let permits = Arc::new(Semaphore::new(concurrency));
    let lease_ms = (state.config.sender.lease_seconds * 1000) as i64;
    loop {
        if cancel.is_cancelled() {
            break;
        }
        let jobs = match state
            .store
            .claim_send_jobs(&owner, concurrency as i64, lease_ms, now_ms())
            .await
        {
            Ok(j) => j,
            Err(e) => {
                tracing::error!(error = %e, "claiming send jobs failed");
                Vec::new()
            }
        };
        if jobs.is_empty() {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = state.wake_sender.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
            continue;
        }
        let mut handles = Vec::with_capacity(jobs.len());
        for job in jobs {
            let Ok(permit) = permits.clone().acquire_owned().await else {
                break;
            };
            let state = state.clone();
            let owner = owner.clone();
            handles.push(tokio::spawn(async move {
                send_one(&state, &owner, job).await;
                drop(permit);
            }));
        }
        for h in handles {
            let _ = h.await;
        }
    }
    // Give back nothing: leased jobs we did not finish come back when their lease expires.
}

async fn send_one(state: &AppState, owner: &str, job: SendJob) {
    let outcome = attempt(state, &job).await;
    match &outcome {
        SendOutcome::Accepted { .. } => {
            metrics::counter!("wagate_messages_sent_total", "status" => "accepted").increment(1)
        }
        SendOutcome::Failed { .. } => {
            metrics::counter!("wagate_messages_sent_total", "status" => "failed").increment(1)
        }
        SendOutcome::Retry { .. } => metrics::counter!("wagate_messages_sent_total", "status" => "retry").increment(1),
    }
    match state.store.finish_send_job(&job, owner, &outcome, now_ms()).await {
        Ok(true) => {}
        Ok(false) => tracing::warn!(
            job = job.id,
            "send job lease was lost before it finished; another worker owns it"
        ),
        Err(e) => {
            tracing::error!(job = job.id, error = %e, "finishing a send job failed; its lease will expire and it is retried")
        }
    }
    state.sent_waiters.wake(&job.message_id);
}

async fn attempt(state: &AppState, job: &SendJob) -> SendOutcome {
    let message = match state.store.get_message(&job.message_id).await {
        Ok(Some(m)) => m,
        Ok(None) => {
            return SendOutcome::Failed {
                error: local_error("message_missing", "the message record is gone"),
            }
        }
        Err(e) => return retry_or_fail(state, job, local_error("database", &e.to_string())),
    };
    let Some(account) = state.accounts.by_id(&job.account_id) else {
        return SendOutcome::Failed {
            error: local_error("account_missing", "the message's account is no longer configured"),
        };
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
                    return SendOutcome::Failed {
                        error: json!({
                            "code": "window_closed",
                            "title": "the 24-hour customer-service window closed while the message waited in the queue",
                            "details": {"window_expires_at": expires.map(wagate_core::time::rfc3339_ms)},
                            "hint": "send an approved template; the window opens again when the user writes to you",
                            "retry": "fix",
                        }),
                    };
                }
            }
            Err(e) => return retry_or_fail(state, job, local_error("database", &e.to_string())),
        }
    }
    let body: Value = match serde_json::from_str(&message.content) {
        Ok(v) => v,
        Err(e) => {
            return SendOutcome::Failed {
                error: local_error("corrupt_message", &e.to_string()),
            }
        }
    };
    match state
        .graph
        .send_message(&account.access_token, &job.phone_number_id, &body)
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
            match e.retry_class() {
                RetryClass::Retry => retry_or_fail(state, job, error),
                RetryClass::Later => retry_much_later(state, message.created_at, error),
                RetryClass::Fix => SendOutcome::Failed { error },
            }
        }
    }
}

fn retry_or_fail(state: &AppState, job: &SendJob, error: Value) -> SendOutcome {
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
fn retry_much_later(state: &AppState, queued_at: i64, mut error: Value) -> SendOutcome {
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
        GraphError::Transport(m) => {
            json!({"code": "transport", "title": m, "details": null, "hint": "Meta could not be reached; the gateway retries", "retry": "retry"})
        }
        GraphError::Unexpected { status, body } => {
            json!({"code": "unexpected_response", "title": format!("HTTP {status}"), "details": body, "hint": "Meta answered something unexpected", "retry": "retry"})
        }
        GraphError::InvalidRequest(m) => local_error("invalid_request", m),
    }
}
