//! Queueing checked sends: one at a time, once per idempotency key, or as a batch (bulk, behind
//! interactive sends); and waiting for Meta's answer to one.

use std::time::Duration;

use serde_json::{json, Value};
use wagate_core::status::MessageStatus;
use wagate_store::{Message, MessageId, NewOutboundMessage};

use super::prepare::{prepare, Prepared};
use crate::auth::Caller;
use crate::clock::now_ms;
use crate::error::{EngineError, EngineResult, Kind};
use crate::state::Engine;

/// Queues a prepared send (message and job in one transaction) and wakes the sender.
pub async fn enqueue(state: &Engine, p: Prepared) -> EngineResult<Message> {
    let message = state.store.enqueue_message(&new_outbound(p)).await?;
    state.wake_sender.notify_one();
    Ok(message)
}

pub(crate) fn new_outbound(p: Prepared) -> NewOutboundMessage {
    NewOutboundMessage {
        id: wagate_core::ids::message_id(),
        account_id: p.account.id.clone(),
        phone_number_id: p.phone_number_id,
        wa_id: p.wa_id,
        message_type: p.message_type,
        content: p.body,
        now_ms: now_ms(),
        send_at: p.send_at.unwrap_or_else(now_ms),
        priority: p.priority,
    }
}

/// How long an `Idempotency-Key` is honoured.
pub const IDEMPOTENCY_KEEP_MS: i64 = 24 * 3600 * 1000;

/// The most messages one batch takes.
pub const BATCH_MAX: usize = 1000;

/// Checks and queues up to [`BATCH_MAX`] sends as bulk (interactive sends go first). Each item is
/// answered on its own: queued (`true` when its `idempotency_key` gave back an earlier
/// message), or why not; one bad item stops nothing else. Each outcome comes with its item's
/// position.
pub async fn send_batch(
    state: &Engine,
    caller: &Caller,
    items: &[Value],
) -> EngineResult<Vec<(usize, EngineResult<(super::views::MessageView, bool)>)>> {
    if items.is_empty() || items.len() > BATCH_MAX {
        return Err(EngineError::invalid_field(
            "messages",
            format!("a batch holds 1 to {BATCH_MAX} messages, not {}", items.len()),
            format!("split it into batches of at most {BATCH_MAX}"),
        )
        .details(json!({"field": "messages", "limit": BATCH_MAX, "size": items.len()})));
    }
    // Each item is checked on its own; the good ones without an idempotency key are then
    // written together, in one transaction (one commit for the batch, not one per message).
    // Keyed items are queued as they come: their key is claimed in their own transaction.
    let mut outcomes: Vec<Option<EngineResult<(Message, bool)>>> = Vec::with_capacity(items.len());
    let mut plain: Vec<(usize, NewOutboundMessage)> = Vec::new();
    for (index, item) in items.iter().enumerate() {
        match batch_item(state, caller, item.clone()).await {
            Ok(BatchOutcome::Done(message, replayed)) => outcomes.push(Some(Ok((message, replayed)))),
            Ok(BatchOutcome::Ready(m)) => {
                plain.push((index, m));
                outcomes.push(None);
            }
            Err(e) => outcomes.push(Some(Err(e))),
        }
    }
    let (places, ready): (Vec<usize>, Vec<NewOutboundMessage>) = plain.into_iter().unzip();
    if !ready.is_empty() {
        for (index, message) in places.into_iter().zip(state.store.enqueue_messages(&ready).await?) {
            outcomes[index] = Some(Ok((message, false)));
        }
    }
    state.wake_sender.notify_one();
    let mut shown = Vec::with_capacity(outcomes.len());
    for (index, outcome) in outcomes.into_iter().enumerate() {
        let Some(outcome) = outcome else { continue };
        shown.push((
            index,
            match outcome {
                Ok((message, replayed)) => {
                    // A message queued just now has no statuses yet.
                    let timeline = match replayed {
                        true => state.store.message_timeline(&message.id).await?,
                        false => Vec::new(),
                    };
                    Ok((super::views::view(message, &timeline), replayed))
                }
                Err(e) => Err(e),
            },
        ));
    }
    Ok(shown)
}

/// One batch item, checked: queued already (keyed: `true` when its key gave back an earlier
/// message), or ready to be written with the rest of the batch.
enum BatchOutcome {
    Done(Message, bool),
    Ready(NewOutboundMessage),
}

async fn batch_item(state: &Engine, caller: &Caller, mut item: Value) -> EngineResult<BatchOutcome> {
    let key = match item.as_object_mut().and_then(|o| o.remove("idempotency_key")) {
        None | Some(Value::Null) => None,
        Some(Value::String(k)) if !k.is_empty() && k.len() <= 255 && k.bytes().all(|b| b.is_ascii_graphic()) => Some(k),
        Some(_) => {
            return Err(EngineError::invalid_field(
                "idempotency_key",
                "idempotency_key must be 1 to 255 visible ASCII characters",
                "use a unique string per message, e.g. order-1042-shipped",
            ))
        }
    };
    let request = item.clone();
    let mut prepared = prepare(state, caller, item).await?;
    prepared.priority = 1;
    match key {
        Some(key) => {
            let (message, replayed) = enqueue_once(state, prepared, key, &request).await?;
            Ok(BatchOutcome::Done(message, replayed))
        }
        None => Ok(BatchOutcome::Ready(new_outbound(prepared))),
    }
}

/// Queues a prepared send once per idempotency key: the same key and request give back the
/// first message (`true`: replayed); the same key with another request is a conflict.
pub async fn enqueue_once(state: &Engine, p: Prepared, key: String, request: &Value) -> EngineResult<(Message, bool)> {
    let key = wagate_store::IdempotencyKey {
        key,
        // A JSON value serialises with sorted keys, so the hash ignores key order.
        request_hash: wagate_core::signature::sha256_base64(request.to_string().as_bytes()),
    };
    match state
        .store
        .enqueue_message_once(&new_outbound(p), &key, IDEMPOTENCY_KEEP_MS)
        .await?
    {
        wagate_store::Enqueued::Created(m) => {
            state.wake_sender.notify_one();
            Ok((m, false))
        }
        wagate_store::Enqueued::Replayed(m) => Ok((m, true)),
        wagate_store::Enqueued::Conflict { message_id } => Err(EngineError::new(
            Kind::Conflict,
            "idempotency_conflict",
            format!(
                "the Idempotency-Key `{}` was used in the last 24 hours for another request (message {message_id}); nothing was queued",
                key.key
            ),
        )
        .details(json!({"field": "Idempotency-Key", "message_id": message_id}))
        .hint("use a new key for a new message, or send the same body again to get the first message back")),
    }
}

/// Waits until the message has left `queued` (Meta accepted or refused it), up to `timeout`.
pub async fn wait_for_meta(state: &Engine, id: &str, timeout: Duration) -> EngineResult<Message> {
    let deadline = tokio::time::Instant::now() + timeout;
    let notify = state.sent_waiters.register(id);
    loop {
        let m = state
            .store
            .get_message(&MessageId::from(id))
            .await?
            .ok_or_else(|| EngineError::not_found("message", id))?;
        if m.status != MessageStatus::Queued || m.error.is_some() || tokio::time::Instant::now() >= deadline {
            state.sent_waiters.forget(id);
            return Ok(m);
        }
        // The sender wakes us: in this process directly, in another through the store's
        // notification (`Wake::Sent`); polling covers a lost notification.
        let _ = tokio::time::timeout(Duration::from_millis(250), notify.notified()).await;
    }
}
