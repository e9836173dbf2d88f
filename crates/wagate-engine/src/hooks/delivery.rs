//! Delivering events to hooks (fan-out is in [`super::fanout`]).
//!
//! - **Delivery** leases due deliveries per hook, no more than the hook's free concurrency,
//!   sends each (signed per Standard Webhooks), and records the attempt and its outcome under the
//!   lease: success; a retry at the next step of the schedule (or later, if the receiver's
//!   `Retry-After` asks); failed when the schedule runs out; or the hook disabled (410 Gone, or
//!   every attempt failing for `hooks.disable_after_seconds`), with a `hook.disabled` event.
//!
//! At least once: a delivery whose outcome was not recorded (a crash mid-call) goes out again
//! when its lease runs out; receivers deduplicate by `webhook-id`, which is the event id.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use wagate_core::hooks::{next_attempt_in_ms, parse_retry_after};
use wagate_store::{Attempt, Delivery, DeliveryOutcome, Finished, Hook};

use crate::clock::now_ms;
use crate::events::EventView;
use crate::state::Engine;

/// How many times a hook's concurrency may be leased at once (in flight or waiting its turn).
const CLAIM_AHEAD: usize = 4;

/// Sends due deliveries, each hook within its concurrency, until cancelled.
pub async fn run_delivery(state: Engine, cancel: CancellationToken) {
    let client = match Transport::new(&state) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the hook HTTP client; hooks are not delivered");
            return;
        }
    };
    // Per hook: `sending` bounds the calls in flight (the receiver's concurrency); `claimed`
    // bounds what is leased, in flight or waiting its turn. Claiming ahead (up to
    // CLAIM_AHEAD × the concurrency) makes each claim — a write — cover many deliveries.
    let mut limits: HashMap<String, (Arc<Semaphore>, Arc<Semaphore>)> = HashMap::new();
    let per_hook = state.config.hooks.concurrency_per_hook;
    let ahead = per_hook * CLAIM_AHEAD;
    // A lease outlives its wait for a turn and the call it covers: the waits of the calls
    // ahead of it, its own timeout, and time to record the outcome.
    let lease_ms = (state.config.hooks.timeout_seconds as i64 * CLAIM_AHEAD as i64 + 30) * 1000;
    let tasks = tokio_util::task::TaskTracker::new();
    let (outcomes, recorded) = mpsc::channel::<(Finished, Arc<Hook>)>(4096);
    let writer = tokio::spawn(run_outcome_writer(state.clone(), recorded));
    // The hooks, read again at most every second (a claim itself checks that its hook is
    // still enabled); changes to a hook reach deliveries within that second.
    let mut hooks_read: Option<(Instant, u64, Vec<Hook>)> = None;
    loop {
        let mut claimed = 0;
        let version = state.hooks_version.load(std::sync::atomic::Ordering::Acquire);
        if hooks_read
            .as_ref()
            .is_none_or(|(at, v, _)| *v != version || at.elapsed() > Duration::from_secs(1))
        {
            match state.store.list_hooks().await {
                Ok(hooks) => hooks_read = Some((Instant::now(), version, hooks)),
                Err(e) => tracing::error!(error = %e, "listing hooks failed"),
            }
        }
        if let Some((_, _, hooks)) = &hooks_read {
            for hook in hooks.iter().filter(|h| h.enabled) {
                let (sending, claimed_limit) = limits
                    .entry(hook.id.to_string())
                    .or_insert_with(|| (Arc::new(Semaphore::new(per_hook)), Arc::new(Semaphore::new(ahead))))
                    .clone();
                let free = claimed_limit.available_permits();
                // Claim in bites (each claim is a write): when a concurrency's worth is free.
                if free < per_hook.min(ahead) {
                    continue;
                }
                let token: i64 = rand::rng().random_range(1..i64::MAX);
                let batch = match state
                    .store
                    .claim_deliveries(
                        &hook.id,
                        hook.ordered,
                        &wagate_store::hooks::Lease {
                            owner: &state.instance,
                            token,
                            ms: lease_ms,
                        },
                        free as i64,
                        now_ms(),
                    )
                    .await
                {
                    Ok(b) => b,
                    Err(e) => {
                        tracing::error!(error = %e, "claiming hook deliveries failed");
                        continue;
                    }
                };
                claimed += batch.len();
                let hook = Arc::new(hook.clone());
                // The batch's events in one read.
                let mut events: HashMap<String, wagate_store::Event> = if hook.format == "event" {
                    let ids: Vec<String> = batch.iter().map(|d| d.event_id.clone()).collect();
                    match state.store.get_events(&ids).await {
                        Ok(found) => found.into_iter().map(|e| (e.id.to_string(), e)).collect(),
                        Err(e) => {
                            // The leases run out and the deliveries are claimed again.
                            tracing::error!(error = %e, "reading events for delivery failed");
                            continue;
                        }
                    }
                } else {
                    HashMap::new()
                };
                for d in batch {
                    let Ok(place) = claimed_limit.clone().try_acquire_owned() else {
                        break;
                    };
                    let event = events.remove(&d.event_id);
                    let (state, client, hook, outcomes, sending) = (
                        state.clone(),
                        client.clone(),
                        hook.clone(),
                        outcomes.clone(),
                        sending.clone(),
                    );
                    tasks.spawn(async move {
                        // Waits its turn among the hook's calls in flight.
                        if let Ok(turn) = sending.acquire_owned().await {
                            deliver(&state, &client, hook, d, event, token, &outcomes).await;
                            drop(turn);
                        }
                        drop(place);
                        // A place is free: the next claim need not wait for outcomes to be recorded.
                        state.wake_deliveries.notify_one();
                    });
                }
            }
        }
        if claimed > 0 {
            state.mark_hooks_busy();
            continue;
        }
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = state.wake_deliveries.notified() => {}
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
        }
    }
    tasks.close();
    tasks.wait().await;
    // The last outcomes are recorded before the worker ends.
    drop(outcomes);
    let _ = writer.await;
}

/// Records delivery outcomes as they come, whatever has gathered in one transaction (a group
/// commit: one fsync for many deliveries), then acts on what was recorded.
async fn run_outcome_writer(state: Engine, mut recorded: mpsc::Receiver<(Finished, Arc<Hook>)>) {
    const BATCH: usize = 512;
    let mut batch = Vec::with_capacity(BATCH);
    while recorded.recv_many(&mut batch, BATCH).await > 0 {
        let finished: Vec<Finished> = batch.iter().map(|(f, _)| f.clone()).collect();
        let result = state.store.finish_deliveries(&finished, now_ms()).await;
        match result {
            Ok(done) => {
                for (ok, (f, hook)) in done.into_iter().zip(batch.drain(..)) {
                    if !ok {
                        tracing::warn!(
                            delivery = f.delivery.id,
                            "a hook delivery's lease was lost before its outcome was recorded; it will go out again"
                        );
                        continue;
                    }
                    if let DeliveryOutcome::DisableHook { reason } = &f.outcome {
                        tracing::warn!(hook = %hook.id, url = %hook.url, %reason, "hook disabled; POST /v1/hooks/{{id}}/enable turns it back on");
                        let payload = json!({"hook_id": hook.id, "name": hook.name, "url": hook.url, "reason": reason});
                        state.emit(None, "hook.disabled", &payload).await;
                        state.hooks_changed();
                    }
                }
            }
            Err(e) => {
                // Not recorded: the leases run out and the deliveries go out again.
                tracing::error!(error = %e, n = batch.len(), "recording hook deliveries failed; they will go out again");
                batch.clear();
            }
        }
        // Recorded outcomes free ordered contacts and make retries due.
        state.wake_deliveries.notify_one();
    }
}

/// What the receiver answered.
struct Answer {
    status: Option<u16>,
    error: Option<String>,
    retry_after: Option<u64>,
    excerpt: Option<String>,
    /// The answer's body, up to [`REPLY_MAX`] (a two-way bot's reply is read from it).
    body: Vec<u8>,
    latency_ms: i64,
}

/// The most of an answer read to find a reply in it.
const REPLY_MAX: usize = 64 * 1024;

/// The event a delivery carried, as far as a reply needs it.
struct ReplyTo {
    event_id: String,
    event_type: String,
    account_id: Option<String>,
    payload: Value,
}

/// A two-way bot's `{"reply": <message object>}`: sent to the event's contact through the
/// normal send path, with all its checks, as a reply to the message. Returns the message id.
async fn send_reply(state: &Engine, to: &ReplyTo, mut reply: Value) -> Result<String, String> {
    let account_id = to.account_id.clone().ok_or("the event has no account")?;
    let contact = wagate_core::hooks::event_contact(&to.payload)
        .ok_or("the event has no contact to reply to")?
        .to_string();
    let obj = reply.as_object_mut().ok_or("`reply` must be a message object")?;
    obj.insert("to".into(), json!(contact));
    obj.insert("account".into(), json!(account_id));
    if let Some(p) = to.payload.get("phone_number_id").filter(|p| p.is_string()) {
        obj.insert("phone_number_id".into(), p.clone());
    }
    if to.event_type == "message.received" && !obj.contains_key("context") {
        obj.insert("context".into(), json!({"message_id": to.payload["wamid"]}));
    }
    let caller = crate::auth::Caller::for_account(&account_id);
    let prepared = crate::sending::prepare::prepare(state, &caller, reply)
        .await
        .map_err(|e| format!("{}: {}", e.code, e.message))?;
    let message = crate::sending::queue::enqueue(state, prepared)
        .await
        .map_err(|e| format!("{}: {}", e.code, e.message))?;
    Ok(message.id.into())
}

/// How deliveries go out: HTTP, or a broker's client for a sink URL ([`super::sinks`]).
#[derive(Clone)]
struct Transport {
    http: reqwest::Client,
    sinks: Arc<super::sinks::Sinks>,
}

impl Transport {
    fn new(state: &Engine) -> Result<Self, reqwest::Error> {
        Ok(Self {
            http: super::targets::http_client(&state.config.hooks)?,
            sinks: Arc::default(),
        })
    }
}

/// One attempt of one delivery: send, then hand the outcome to the writer.
async fn deliver(
    state: &Engine,
    client: &Transport,
    hook: Arc<Hook>,
    d: Delivery,
    event: Option<wagate_store::Event>,
    token: i64,
    outcomes: &mpsc::Sender<(Finished, Arc<Hook>)>,
) {
    let started_at = now_ms();
    let found = if hook.format == "meta" {
        state
            .store
            .journal_entry(d.event_seq)
            .await
            .map(|j| j.map(|j| Payload::Meta(j.body)))
    } else {
        Ok(event.map(Payload::Event))
    };
    // A message whose media is still downloading waits for it, a bounded time.
    if let Ok(Some(Payload::Event(e))) = &found {
        if media_pending(state, e).await
            && started_at - e.created_at < state.config.hooks.media_wait_seconds as i64 * 1000
        {
            let finished = Finished {
                delivery: d,
                token,
                attempt: None,
                outcome: DeliveryOutcome::Postpone { at: started_at + 500 },
            };
            let _ = outcomes.send((finished, hook)).await;
            return;
        }
    }
    let reply_to = match &found {
        Ok(Some(Payload::Event(e))) => Some(ReplyTo {
            event_id: e.id.to_string(),
            event_type: e.event_type.clone(),
            account_id: e.account_id.as_deref().map(str::to_string),
            payload: serde_json::from_str(&e.payload).unwrap_or(Value::Null),
        }),
        _ => None,
    };
    let answer = match found {
        Ok(Some(payload)) => send(state, client, &hook, &d.event_id, payload).await,
        Ok(None) => Answer {
            status: None,
            error: Some("the event no longer exists (pruned)".into()),
            retry_after: None,
            excerpt: None,
            body: Vec::new(),
            latency_ms: 0,
        },
        Err(e) => {
            // Not the receiver's fault: leave the lease to run out and try again then.
            tracing::error!(error = %e, "reading an event for delivery failed");
            return;
        }
    };
    let ok = answer.status.is_some_and(|s| (200..300).contains(&s));
    // A two-way bot answers with the reply to send.
    let reply = match (&reply_to, ok) {
        (Some(to), true) => match serde_json::from_slice::<Value>(&answer.body)
            .ok()
            .and_then(|mut v| v.get_mut("reply").map(Value::take))
        {
            Some(message) => Some(send_reply(state, to, message).await),
            None => None,
        },
        _ => None,
    };
    let attempts = d.attempts as u32 + 1;
    let disable_after_ms = state.config.hooks.disable_after_seconds as i64 * 1000;
    let failing_too_long = hook
        .failing_since
        .is_some_and(|since| started_at - since >= disable_after_ms);
    let outcome = if ok {
        DeliveryOutcome::Succeeded
    } else if answer.status == Some(410) {
        DeliveryOutcome::DisableHook {
            reason: "the receiver answered 410 Gone".into(),
        }
    } else if failing_too_long {
        DeliveryOutcome::DisableHook {
            reason: format!(
                "every attempt failed for {} hours",
                state.config.hooks.disable_after_seconds / 3600
            ),
        }
    } else if answer.error.as_deref().is_some_and(|e| e.contains("no longer exists")) {
        DeliveryOutcome::GaveUp
    } else {
        match next_attempt_in_ms(&state.config.hooks.retry_schedule_seconds, attempts, answer.retry_after) {
            Some(ms) => DeliveryOutcome::Retry { at: now_ms() + ms },
            None => DeliveryOutcome::GaveUp,
        }
    };
    let error = match (&answer.error, answer.status) {
        (Some(e), _) => Some(e.clone()),
        (None, Some(s)) if !ok => Some(format!("HTTP {s}")),
        _ => None,
    };
    let attempt = Attempt {
        id: 0,
        delivery_id: d.id,
        hook_id: hook.id.clone(),
        event_id: d.event_id.clone(),
        attempted_at: started_at,
        succeeded: ok,
        status_code: answer.status.map(i64::from),
        error,
        latency_ms: answer.latency_ms,
        response_excerpt: answer.excerpt,
        reply_message_id: reply.as_ref().and_then(|r| r.as_ref().ok().cloned()),
        reply_error: reply.as_ref().and_then(|r| r.as_ref().err().cloned()),
    };
    if let (Some(Err(error)), Some(to)) = (&reply, &reply_to) {
        tracing::warn!(hook = %hook.id, event = %to.event_id, %error, "a hook's reply was refused");
        let payload = json!({"hook_id": hook.id, "event_id": to.event_id, "error": error});
        state
            .emit(to.account_id.as_deref(), "hook.reply_failed", &payload)
            .await;
    }
    let result = match &outcome {
        DeliveryOutcome::Succeeded => "succeeded",
        DeliveryOutcome::Retry { .. } => "retry",
        DeliveryOutcome::GaveUp => "failed",
        DeliveryOutcome::DisableHook { .. } => "disabled",
        DeliveryOutcome::Postpone { .. } => "postponed",
    };
    metrics::counter!("wagate_hook_deliveries_total", "result" => result).increment(1);
    metrics::histogram!("wagate_hook_delivery_duration_seconds").record(answer.latency_ms as f64 / 1000.0);
    let finished = Finished {
        delivery: d,
        token,
        attempt: Some(attempt),
        outcome,
    };
    if outcomes.send((finished, hook)).await.is_err() {
        tracing::error!("the outcome writer has stopped; the delivery will go out again");
    }
}

/// Whether the event carries media that is still being downloaded.
async fn media_pending(state: &Engine, e: &wagate_store::Event) -> bool {
    let payload: Value = serde_json::from_str(&e.payload).unwrap_or(Value::Null);
    let Some(id) = payload.pointer("/content/media/media_id").and_then(Value::as_str) else {
        return false;
    };
    matches!(state.store.get_media(&wagate_store::MediaId::from(id)).await, Ok(Some(m)) if m.state == wagate_store::MediaState::Pending)
}

/// The media of an event as this hook wants it: a signed link that needs no API key, the
/// bytes inline (up to `hooks.media_max_bytes`), or both; always with the download state.
async fn media_for_hook(state: &Engine, hook: &Hook, payload: &mut Value) {
    let Some(id) = payload
        .pointer("/content/media/media_id")
        .and_then(Value::as_str)
        .map(str::to_string)
    else {
        return;
    };
    if matches!(hook.media.as_str(), "link" | "both") {
        let expires = now_ms() / 1000 + state.config.hooks.media_link_seconds as i64;
        let signature = wagate_core::hooks::media_link_signature(&hook.secret, &id, expires);
        let base = state.config.public_url.as_deref().unwrap_or("");
        if let Some(media) = payload.pointer_mut("/content/media").and_then(Value::as_object_mut) {
            media.insert(
                "signed_url".into(),
                json!(format!(
                    "{base}/v1/media/{id}?hook={}&expires={expires}&signature={signature}",
                    hook.id
                )),
            );
            media.insert(
                "signed_url_expires_at".into(),
                json!(wagate_core::time::rfc3339_ms(expires * 1000)),
            );
        }
    }
    let bytes = matches!(hook.media.as_str(), "base64" | "both").then_some(state.config.hooks.media_max_bytes);
    if let Err(e) = crate::media::files::media_into(state, payload, bytes).await {
        tracing::warn!(error = ?e.message, "media could not be put into a delivery; it goes out without it");
    }
}

/// What a test delivery got back.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct TestAnswer {
    /// The `webhook-id` the test was sent with.
    pub id: String,
    /// The HTTP status the receiver answered (`null`: no answer).
    pub status_code: Option<u16>,
    /// Whether the receiver took it (a 2xx answer).
    pub succeeded: bool,
    pub latency_ms: i64,
    /// What went wrong (no answer, a refused address).
    pub error: Option<String>,
    /// The start of the receiver's answer.
    pub response_excerpt: Option<String>,
}

/// Sends a hook one `hook.test` event now (for a `meta` hook, a Meta body with no entries),
/// signed as its deliveries are, and says what the receiver answered. Nothing is stored: the
/// hook's deliveries, attempts and health are untouched.
pub async fn send_test(state: &Engine, hook: &Hook) -> TestAnswer {
    let id = format!("evt_test_{}", wagate_core::ids::event_id().trim_start_matches("evt_"));
    let now = now_ms();
    let payload = match hook.format.as_str() {
        "meta" => Payload::Meta(br#"{"object":"whatsapp_business_account","entry":[]}"#.to_vec()),
        _ => Payload::Event(wagate_store::Event {
            seq: 0,
            id: id.as_str().into(),
            account_id: None,
            event_type: "hook.test".into(),
            occurred_at: now,
            created_at: now,
            payload: json!({"hook": hook.id.to_string(), "test": true}).to_string(),
            raw: "{}".into(),
        }),
    };
    let answer = match Transport::new(state) {
        Ok(client) => send(state, &client, hook, &id, payload).await,
        Err(e) => Answer {
            status: None,
            error: Some(e.to_string()),
            retry_after: None,
            excerpt: None,
            body: Vec::new(),
            latency_ms: 0,
        },
    };
    TestAnswer {
        id,
        succeeded: answer.status.is_some_and(|s| (200..300).contains(&s)),
        status_code: answer.status,
        latency_ms: answer.latency_ms,
        error: answer.error,
        response_excerpt: answer.excerpt,
    }
}

/// What a delivery carries.
enum Payload {
    /// wagate's event, signed per Standard Webhooks.
    Event(wagate_store::Event),
    /// Meta's body as received, re-signed with `X-Hub-Signature-256`.
    Meta(Vec<u8>),
}

/// Builds the signed request and sends it (or publishes it, for a sink).
async fn send(state: &Engine, client: &Transport, hook: &Hook, key: &str, payload: Payload) -> Answer {
    let fail = |error: String| Answer {
        status: None,
        error: Some(error),
        retry_after: None,
        excerpt: None,
        body: Vec::new(),
        latency_ms: 0,
    };
    let sink = super::sinks::is_sink(&hook.url);
    let Ok(url) = url::Url::parse(&hook.url) else {
        return fail(format!("`{}` is not a URL", super::sinks::masked(&hook.url)));
    };
    if !super::targets::literal_ip_allowed(&url, state.config.hooks.allow_private_networks) {
        return fail("the hook's address is loopback, private or link-local".into());
    }
    let now = now_ms();
    let signed = match signed(state, hook, key, payload, now).await {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let headers: HashMap<String, String> = serde_json::from_str(&hook.headers).unwrap_or_default();
    if sink {
        let password = headers.get(super::sinks::PASSWORD_KEY).map(String::as_str);
        let message = super::sinks::Message {
            id: key,
            timestamp: now / 1000,
            signature: signed.signature,
            event_type: &signed.event_type,
            body: &signed.body,
        };
        let started = Instant::now();
        let timeout = Duration::from_secs(state.config.hooks.timeout_seconds);
        let url = super::sinks::with_password(&hook.url, password);
        let published = client.sinks.publish(&url, &message, timeout).await;
        let latency_ms = started.elapsed().as_millis() as i64;
        return match published {
            Ok(()) => Answer {
                status: Some(200),
                error: None,
                retry_after: None,
                excerpt: None,
                body: Vec::new(),
                latency_ms,
            },
            Err(e) => Answer { latency_ms, ..fail(e) },
        };
    }
    let mut req = client
        .http
        .post(url)
        .header("content-type", "application/json")
        .header(signed.signature.0, signed.signature.1);
    if signed.event_type != META_EVENT_TYPE {
        req = req
            .header("webhook-id", key)
            .header("webhook-timestamp", (now / 1000).to_string());
    }
    for (k, v) in headers.iter().filter(|(k, _)| *k != super::sinks::PASSWORD_KEY) {
        req = req.header(k.as_str(), v.as_str());
    }
    let started = Instant::now();
    let resp = req.body(signed.body).send().await;
    let mut resp = match resp {
        Ok(r) => r,
        Err(e) => {
            let mut a = fail(describe(&e));
            a.latency_ms = started.elapsed().as_millis() as i64;
            return a;
        }
    };
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, now_ms()));
    // The answer is read up to a cap, never whole: what a reply may need of a success, and
    // the excerpt kept with the attempt otherwise.
    let cap = state.config.hooks.response_excerpt_bytes;
    let limit = if (200..300).contains(&status) {
        cap.max(REPLY_MAX)
    } else {
        cap
    };
    let mut body = Vec::new();
    while body.len() < limit {
        match resp.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk[..chunk.len().min(limit - body.len())]),
            _ => break,
        }
    }
    let excerpt = &body[..body.len().min(cap)];
    Answer {
        status: Some(status),
        error: None,
        retry_after,
        excerpt: (!excerpt.is_empty()).then(|| String::from_utf8_lossy(excerpt).to_string()),
        latency_ms: started.elapsed().as_millis() as i64,
        body,
    }
}

/// What a `meta` hook's messages carry as their event type on a broker: Meta's bodies are not
/// one event.
const META_EVENT_TYPE: &str = "meta";

/// A delivery's bytes and signature, the same for HTTP and for a broker.
struct Signed {
    body: Vec<u8>,
    /// `webhook-signature` (Standard Webhooks over id, timestamp and body), or Meta's
    /// `x-hub-signature-256` for a `meta` hook.
    signature: (&'static str, String),
    event_type: String,
}

async fn signed(state: &Engine, hook: &Hook, key: &str, payload: Payload, now: i64) -> Result<Signed, String> {
    Ok(match payload {
        Payload::Meta(body) => Signed {
            // As Meta signs: HMAC-SHA256 of the raw bytes, the hook's secret as the app secret.
            signature: (
                "x-hub-signature-256",
                wagate_core::signature::sign_hub(&hook.secret, &body),
            ),
            body,
            event_type: META_EVENT_TYPE.into(),
        },
        Payload::Event(event) => {
            let event_type = event.event_type.clone();
            let mut view = EventView::from(event);
            media_for_hook(state, hook, &mut view.payload).await;
            let body = serde_json::to_vec(&view).map_err(|e| format!("the event could not be serialised: {e}"))?;
            let mut secrets = vec![hook.secret.as_str()];
            if let (Some(prev), Some(until)) = (&hook.previous_secret, hook.previous_secret_until) {
                if until > now {
                    secrets.push(prev.as_str());
                }
            }
            Signed {
                signature: (
                    "webhook-signature",
                    wagate_core::hooks::signature_header(secrets, key, now / 1000, &body),
                ),
                body,
                event_type,
            }
        }
    })
}

fn describe(e: &reqwest::Error) -> String {
    use std::error::Error;
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    if e.is_timeout() {
        format!("timed out: {text}")
    } else {
        text
    }
}
