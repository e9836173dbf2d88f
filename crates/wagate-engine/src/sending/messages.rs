//! A message's operations after it is queued: sending one (checked, queued once per key, and,
//! if asked, until Meta answered), reading one (waiting for a status, if asked), cancelling,
//! retrying, listing, and marking an inbound message read.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;
use wagate_core::status::MessageStatus;
use wagate_store::{Direction, Message, MessageFilter, MessageId};

use super::prepare::prepare;
use super::queue::{enqueue, enqueue_once, wait_for_meta};
use super::views::{view, MessageView};
use crate::auth::accounts::filter_account;
use crate::auth::Caller;
use crate::clock::now_ms;
use crate::error::{EngineError, EngineResult, Kind};
use crate::events::wait_until;
use crate::state::Engine;

/// Sends a message (Meta's message object, plus `account` and `phone_number_id`): checked,
/// queued (once per idempotency `key`), and with `wait_accepted` answered once Meta accepted or
/// refused it (up to 30 s). `true` when the key gave back an earlier message.
pub async fn send(
    state: &Engine,
    caller: &Caller,
    body: Value,
    key: Option<String>,
    wait_accepted: bool,
) -> EngineResult<(MessageView, bool)> {
    caller.require("send")?;
    let request = body.clone();
    let prepared = prepare(state, caller, body).await?;
    let warnings = prepared.warnings.clone();
    let (mut message, replayed) = match key {
        Some(key) => enqueue_once(state, prepared, key, &request).await?,
        None => (enqueue(state, prepared).await?, false),
    };
    if wait_accepted {
        message = wait_for_meta(state, &message.id, Duration::from_secs(30)).await?;
    }
    let timeline = state.store.message_timeline(&message.id).await?;
    let mut shown = view(message, &timeline);
    shown.warnings = warnings;
    Ok((shown, replayed))
}

/// The caller's message, or not found.
async fn callers_message(state: &Engine, caller: &Caller, id: &str) -> EngineResult<Message> {
    state
        .store
        .get_message(&MessageId::from(id))
        .await?
        .filter(|m| caller.sees(&m.account_id))
        .ok_or_else(|| EngineError::not_found("message", id))
}

/// A message with its status timeline; with `wait`, once it reached that status (or ended
/// otherwise) or the time has passed (`Some(met)` says which).
pub async fn get(
    state: &Engine,
    caller: &Caller,
    id: &str,
    wait: Option<(Duration, &str)>,
) -> EngineResult<(MessageView, Option<bool>)> {
    caller.require("read")?;
    let read = || async {
        let m = callers_message(state, caller, id).await?;
        let queued = m.status == MessageStatus::Queued;
        let timeline = state.store.message_timeline(&MessageId::from(id)).await?;
        let mut shown = view(m, &timeline);
        if queued {
            shown.in_doubt_until = in_doubt_until(state, id).await?;
        }
        Ok(shown)
    };
    let Some((within, status)) = wait else {
        return Ok((read().await?, None));
    };
    if MessageStatus::parse(status).is_none_or(|s| !MESSAGE_STATUSES.contains(&s.as_str())) {
        return Err(EngineError::invalid_field(
            "wait_for",
            format!("`{status}` is not a message status"),
            "wait for one of the statuses in details, e.g. wait_for=read",
        )
        .details(json!({"field": "wait_for", "allowed": MESSAGE_STATUSES})));
    }
    // Met once the message reached that status, or ended otherwise (it will not reach it then).
    let met = |v: &MessageView| {
        v.status == status
            || v.timeline.iter().any(|t| t.status == status)
            || ["failed", "cancelled"].contains(&v.status.as_str())
    };
    let (shown, met) = wait_until(state, within, read, met).await?;
    Ok((shown, Some(met)))
}

/// What `GET /v1/messages/{id}?wait_for=` may wait for: an outbound message's statuses.
const MESSAGE_STATUSES: &[&str] = &[
    "queued",
    "accepted",
    "sent",
    "delivered",
    "read",
    "played",
    "failed",
    "cancelled",
];

/// Cancels a message that has not gone out.
pub async fn cancel(state: &Engine, caller: &Caller, id: &str) -> EngineResult<MessageView> {
    caller.require("send")?;
    let m = callers_message(state, caller, id).await?;
    match state.store.cancel_message(&m.id, now_ms()).await? {
        Some(cancelled) => {
            let payload = json!({
                "message_id": cancelled.id,
                "recipient_id": cancelled.wa_id,
                "phone_number_id": cancelled.phone_number_id,
                "status": "cancelled",
            });
            state
                .emit(Some(&cancelled.account_id), "message.cancelled", &payload)
                .await;
            let timeline = state.store.message_timeline(&MessageId::from(id)).await?;
            Ok(view(cancelled, &timeline))
        }
        None => Err(EngineError::new(
            Kind::Conflict,
            "not_cancellable",
            format!(
                "message {id} is {} and can no longer be cancelled: only a message still waiting in the queue can",
                m.status
            ),
        )
        .details(json!({"status": m.status}))
        .hint("a message being sent or already sent cannot be called back")),
    }
}

/// Queues again a message whose send failed.
pub async fn retry(state: &Engine, caller: &Caller, id: &str) -> EngineResult<MessageView> {
    caller.require("send")?;
    let m = callers_message(state, caller, id).await?;
    match state.store.retry_message(&m.id, now_ms()).await? {
        Some(queued) => {
            state.wake_sender.notify_one();
            let timeline = state.store.message_timeline(&MessageId::from(id)).await?;
            Ok(view(queued, &timeline))
        }
        None => Err(EngineError::new(
            Kind::Conflict,
            "not_retryable",
            format!("message {id} is {}: only a message whose send failed (Meta refused it, or the attempts ran out) can be queued again", m.status),
        )
        .details(json!({"status": m.status}))
        .hint("a message Meta accepted and later reported failed has a wamid; send a new message instead")),
    }
}

/// Which messages a list asks for.
#[derive(Debug, Default, Clone)]
pub struct MessageQuery {
    pub direction: Option<String>,
    pub status: Option<String>,
    pub wa_id: Option<String>,
    pub account: Option<String>,
    pub cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct MessagePage {
    pub data: Vec<MessageView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Messages the caller may see, newest first, at most `limit`.
pub async fn list(state: &Engine, caller: &Caller, q: MessageQuery, limit: i64) -> EngineResult<MessagePage> {
    caller.require("read")?;
    let account_id = filter_account(state, caller, q.account.as_deref())?;
    let account_ids = caller.account_ids();
    if let Some(d) = q.direction.as_deref().filter(|d| !["inbound", "outbound"].contains(d)) {
        return Err(EngineError::invalid_field(
            "direction",
            format!("direction `{d}` is unknown"),
            "use inbound or outbound",
        ));
    }
    if let Some(c) = q
        .cursor
        .as_deref()
        .filter(|c| !c.is_empty() && !wagate_core::ids::is_id("msg", c))
    {
        return Err(EngineError::invalid_field(
            "cursor",
            format!("cursor `{c}` is not a cursor of this list"),
            "pass the next_cursor of the previous page as it was given, or leave cursor out for the first page",
        ));
    }
    let filter = MessageFilter {
        account_id,
        account_ids,
        direction: q.direction,
        status: q.status,
        wa_id: q.wa_id.map(|w| w.chars().filter(char::is_ascii_digit).collect()),
        before_id: q.cursor.filter(|c| !c.is_empty()),
        limit: limit + 1,
    };
    let mut rows = state.store.list_messages(&filter).await?;
    let next_cursor = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|m| m.id.to_string())
    } else {
        None
    };
    let mut data = Vec::with_capacity(rows.len());
    for m in rows {
        let timeline = state.store.message_timeline(&m.id).await?;
        data.push(view(m, &timeline));
    }
    Ok(MessagePage { data, next_cursor })
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct ReadRequest {
    /// Also show the typing indicator (until you reply, or 25 s).
    #[serde(default)]
    pub typing_indicator: bool,
}

/// Marks an inbound message read (blue ticks), optionally showing the typing indicator.
pub async fn mark_read(state: &Engine, caller: &Caller, id: &str, req: &ReadRequest) -> EngineResult<Value> {
    caller.require("send")?;
    let m = callers_message(state, caller, id).await?;
    let wamid = match (m.direction, &m.wamid) {
        (Direction::Inbound, Some(w)) => w.clone(),
        _ => {
            return Err(EngineError::new(
                Kind::Conflict,
                "not_inbound",
                "only messages a user sent you can be marked read",
            )
            .hint("use the id of a message.received event's message"))
        }
    };
    let account = state
        .accounts
        .by_id(&m.account_id)
        .ok_or_else(|| EngineError::internal("the message's account is not configured"))?;
    let mut meta_body = json!({"messaging_product": "whatsapp", "status": "read", "message_id": wamid});
    if req.typing_indicator {
        meta_body["typing_indicator"] = json!({"type": "text"});
    }
    state
        .graph
        .post(
            &account.access_token(),
            &wagate_graph::GraphPath::new([m.phone_number_id.as_str(), "messages"]),
            &meta_body,
        )
        .await?;
    // The conversation has nothing unread any more (the inbox's count).
    if let Some(wa_id) = &m.wa_id {
        state.store.mark_contact_read(&m.account_id, wa_id).await?;
    }
    Ok(json!({"success": true}))
}

/// A message request for one of the account's numbers passed on to Meta as it is (mark as
/// read, the typing indicator), answered with Meta's answer or Meta's error.
pub async fn pass_to_meta(
    state: &Engine,
    account: &crate::accounts::runtime::AccountRuntime,
    phone_number_id: &str,
    body: &Value,
) -> Result<Value, wagate_graph::GraphError> {
    let path = wagate_graph::GraphPath::new([phone_number_id, "messages"]);
    state.graph.post(&account.access_token(), &path, body).await
}

/// Until when a send in doubt waits for Meta's status webhook before it is acted on: its lease's
/// end (or this gateway's start, whichever is later) plus `sender.in_doubt_seconds`.
async fn in_doubt_until(state: &Engine, id: &str) -> EngineResult<Option<String>> {
    let since = state.store.in_doubt_since(&MessageId::from(id), now_ms()).await?;
    Ok(since.map(|since| {
        let from = since.max(state.started_at_ms);
        wagate_core::time::rfc3339_ms(from + state.config.sender.in_doubt_seconds as i64 * 1000)
    }))
}
