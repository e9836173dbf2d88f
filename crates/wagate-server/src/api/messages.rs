//! `POST /v1/messages`, `GET /v1/messages/{id}`, `GET /v1/messages`.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::{IntoParams, ToSchema};
use wagate_core::meta::MESSAGE_TYPES;
use wagate_core::status::MessageStatus;
use wagate_core::time::rfc3339_ms;
use wagate_store::{Direction, Message, MessageFilter, MessageId, NewOutboundMessage, StatusEntry};

use crate::api::{filter_account, opt_i64, page_limit, resolve_account};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::{now_ms, AccountRuntime, AppState};

/// A message with its status timeline.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessageView {
    /// The gateway's id (`msg_…`).
    pub id: String,
    /// Account id (`acc_…`).
    pub account: String,
    pub phone_number_id: String,
    /// `outbound` (sent by you) or `inbound` (from the user).
    pub direction: String,
    /// Meta's message id, once Meta accepted the message.
    pub wamid: Option<String>,
    /// The user's WhatsApp id (phone digits).
    pub wa_id: Option<String>,
    #[serde(rename = "type")]
    pub message_type: String,
    /// queued, accepted, sent, delivered, read, played, failed, cancelled, unknown (outbound);
    /// received (inbound).
    pub status: String,
    /// Outbound: the Meta message object sent. Inbound: the normalised message.
    #[schema(value_type = Object)]
    pub content: Value,
    /// Why it failed: code, title, details, hint, and Meta's error.
    #[schema(value_type = Object)]
    pub error: Option<Value>,
    #[schema(value_type = Object)]
    pub pricing: Option<Value>,
    pub created_at: String,
    pub updated_at: String,
    pub timeline: Vec<TimelineEntry>,
    /// Things to know that did not stop the send (e.g. the template could not be checked).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TimelineEntry {
    pub status: String,
    /// When it happened (Meta's time for statuses).
    pub at: Option<String>,
}

pub fn view(m: Message, statuses: &[StatusEntry]) -> MessageView {
    let parse = |s: &Option<String>| s.as_deref().and_then(|s| serde_json::from_str(s).ok());
    let mut timeline = Vec::new();
    if m.direction == Direction::Outbound {
        timeline.push(TimelineEntry {
            status: "queued".into(),
            at: Some(rfc3339_ms(m.created_at)),
        });
    } else {
        timeline.push(TimelineEntry {
            status: "received".into(),
            at: Some(rfc3339_ms(m.created_at)),
        });
    }
    for s in statuses {
        timeline.push(TimelineEntry {
            status: s.status.to_string(),
            at: Some(rfc3339_ms(s.occurred_at.unwrap_or(s.recorded_at))),
        });
    }
    if m.status == MessageStatus::Failed && !statuses.iter().any(|s| s.status == MessageStatus::Failed) {
        timeline.push(TimelineEntry {
            status: "failed".into(),
            at: Some(rfc3339_ms(m.updated_at)),
        });
    }
    MessageView {
        content: serde_json::from_str(&m.content).unwrap_or(Value::Null),
        error: parse(&m.error),
        pricing: parse(&m.pricing),
        created_at: rfc3339_ms(m.created_at),
        updated_at: rfc3339_ms(m.updated_at),
        id: m.id.into(),
        account: m.account_id.into(),
        phone_number_id: m.phone_number_id,
        direction: m.direction.to_string(),
        wamid: m.wamid,
        wa_id: m.wa_id,
        message_type: m.message_type,
        status: m.status.to_string(),
        timeline,
        warnings: Vec::new(),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct SendQuery {
    /// `accepted`: answer once Meta accepted or refused the message (up to 30 s).
    pub wait: Option<String>,
}

/// Meta's message object (`to`, `type`, `<type>`, `context`, `biz_opaque_callback_data`), plus
/// optional `account` and `phone_number_id`.
#[derive(ToSchema)]
#[schema(example = json!({"to": "+16505551234", "type": "template", "template": {"name": "hello_world", "language": {"code": "en_US"}}}))]
#[allow(dead_code)]
pub struct SendRequest {
    /// Recipient: E.164, with or without `+`, or a national number with a default country.
    to: String,
    /// text, template, image, … (default text)
    #[schema(rename = "type")]
    message_type: Option<String>,
    /// The account's name or id (default: the only account, or the key's).
    account: Option<String>,
    /// Which of the account's numbers sends (default: its first).
    phone_number_id: Option<String>,
    /// Send later: RFC 3339 or unix seconds, at most 30 days ahead (until then
    /// `DELETE /v1/messages/{id}` cancels it).
    send_at: Option<String>,
}

/// A send, checked and ready to queue.
pub struct Prepared {
    /// Things the caller should know that did not stop the send.
    pub warnings: Vec<String>,
    pub account: AccountRuntime,
    pub phone_number_id: String,
    pub wa_id: String,
    pub message_type: String,
    pub body: Value,
    /// A scheduled send's due time (unix ms).
    pub send_at: Option<i64>,
    /// 0: interactive; 1: bulk (batches), queued behind interactive sends.
    pub priority: i64,
}

/// The longest a send may be scheduled ahead.
const SEND_AT_MAX_AHEAD_MS: i64 = 30 * 24 * 3600 * 1000;

/// `send_at`: RFC 3339 or unix seconds, not more than 30 days ahead; a time in the past means now.
fn send_at(obj: &mut serde_json::Map<String, Value>) -> ApiResult<Option<i64>> {
    let hint = "give an RFC 3339 time such as 2026-12-01T09:00:00Z, or unix seconds, at most 30 days ahead";
    let at = match obj.remove("send_at") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(t)) => wagate_core::time::parse_time_ms(&t),
        Some(Value::Number(n)) => n.as_i64().map(|s| s * 1000),
        Some(_) => None,
    }
    .ok_or_else(|| ApiError::invalid_field("send_at", "send_at is not a time", hint))?;
    if at - now_ms() > SEND_AT_MAX_AHEAD_MS {
        return Err(ApiError::invalid_field(
            "send_at",
            "send_at is more than 30 days ahead",
            hint,
        ));
    }
    Ok(Some(at.max(now_ms())))
}

/// Checks a send request and builds the body for Meta. Bad input changes nothing.
pub async fn prepare(state: &AppState, caller: &Caller, mut body: Value) -> ApiResult<Prepared> {
    let obj = body
        .as_object_mut()
        .ok_or_else(|| ApiError::invalid_field("", "the body must be a JSON object", "send Meta's message object, e.g. {\"to\": \"+16505551234\", \"type\": \"text\", \"text\": {\"body\": \"hi\"}}"))?;
    let named = obj.remove("account");
    let named = match &named {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.as_str()),
        Some(_) => {
            return Err(ApiError::invalid_field(
                "account",
                "account must be a string",
                "give the account's name or id",
            ))
        }
    };
    let account = resolve_account(state, caller, named, crate::api::AccountFrom::Body)?;
    if let Some(pause) = account.pause() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "account_paused",
            format!("sending from account `{}` is paused: {}", account.name, pause.reason),
        )
        .details(json!({"account": account.name, "pause": pause}))
        .hint(pause.hint));
    }
    let send_at = send_at(obj)?;
    let phone_number_id = match obj.remove("phone_number_id") {
        None | Some(Value::Null) => account.phone_number_ids.first().cloned().unwrap_or_default(),
        Some(Value::String(p)) if account.phone_number_ids.contains(&p) => p,
        Some(p) => {
            return Err(ApiError::invalid_field(
                "phone_number_id",
                format!("{p} is not a phone number of account `{}`", account.name),
                format!("use one of {:?}", account.phone_number_ids),
            ))
        }
    };
    // The recipient: a phone number in `to`, or a business-scoped user id in `recipient` (for
    // users known only by it); `to` wins when both are given, as at Meta.
    let (recipient, wa_id, field) = match (obj.get("to"), obj.get("recipient")) {
        (Some(Value::String(to)), _) => {
            let e164 = wagate_core::phone::normalize(to, state.default_country).map_err(|e| {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_phone_number", format!("to: {e}"))
                    .details(json!({"field": "to", "value": to}))
                    .hint(e.hint())
            })?;
            obj.remove("recipient");
            obj.insert("to".into(), json!(e164.as_str()));
            (e164.as_str().to_string(), e164.wa_id().to_string(), "to")
        }
        (Some(_), _) => {
            return Err(ApiError::invalid_field(
                "to",
                "to must be a string",
                "write the number as a string, e.g. \"+16505551234\"",
            ))
        }
        (None, Some(Value::String(r))) if wagate_core::phone::is_business_scoped_user_id(r) => {
            (r.clone(), r.clone(), "recipient")
        }
        (None, Some(r)) => {
            return Err(ApiError::invalid_field(
                "recipient",
                format!("recipient {r} is not a business-scoped user id"),
                "give the user id from the user's webhooks (contacts[].user_id), e.g. \"US.13491208655302741918\", or a phone number in `to`",
            ))
        }
        (None, None) => {
            return Err(ApiError::invalid_field(
                "to",
                "to is required",
                "give the recipient's phone number, e.g. \"+16505551234\" (or a business-scoped user id in `recipient`)",
            ))
        }
    };
    let message_type = match obj.get("type") {
        None => "text".to_string(),
        Some(Value::String(t)) if MESSAGE_TYPES.contains(&t.as_str()) => t.clone(),
        Some(t) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "unsupported_message_type",
                format!("type {t} is not a WhatsApp message type"),
            )
            .details(json!({"field": "type", "allowed": MESSAGE_TYPES}))
            .hint("use one of the allowed types"))
        }
    };
    if !obj.get(&message_type).is_some_and(|v| v.is_object() || v.is_array()) {
        return Err(ApiError::invalid_field(&message_type, format!("a {message_type} message needs a `{message_type}` object"),
            format!("see Meta's documentation of {message_type} messages; e.g. {{\"type\": \"text\", \"text\": {{\"body\": \"hi\"}}}}")));
    }
    validate_type(&message_type, obj)?;
    obj.insert("messaging_product".into(), json!("whatsapp"));
    obj.entry("recipient_type").or_insert(json!("individual"));
    obj.insert("type".into(), json!(message_type));
    let mut warnings = Vec::new();
    if message_type == "template" {
        warnings.extend(crate::api::templates::check_send(state, &account, &body["template"]).await?);
    } else {
        let contact = state.store.get_contact(&account.id, &phone_number_id, &wa_id).await?;
        let expires = contact.as_ref().and_then(|c| c.window_expires_at);
        if send_at.is_some_and(|at| {
            wagate_core::window::is_open(expires, now_ms()) && !wagate_core::window::is_open(expires, at)
        }) {
            return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "window_closed",
                format!("the 24-hour customer-service window with {recipient} closes before send_at; Meta would refuse this {message_type} message (131047)"))
                .details(json!({"field": "send_at", "window": {"open": true, "expires_at": expires.map(rfc3339_ms)}}))
                .hint("schedule it before the window closes, or send an approved template"));
        }
        if !wagate_core::window::is_open(expires, now_ms()) {
            let when = match contact.and_then(|c| c.last_inbound_at) {
                Some(t) => format!("they last wrote at {}", rfc3339_ms(t)),
                None => "they have never written to this number".into(),
            };
            return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "window_closed",
                format!("the 24-hour customer-service window with {recipient} is closed ({when}); Meta would refuse this {message_type} message (131047)"))
                .details(json!({"field": field, "window": {"open": false, "expires_at": expires.map(rfc3339_ms)}}))
                .hint("send an approved template (\"type\": \"template\"); the window opens again when the user writes to you"));
        }
    }
    Ok(Prepared {
        warnings,
        account,
        phone_number_id,
        wa_id,
        message_type,
        body,
        send_at,
        priority: 0,
    })
}

/// Meta's rules for the type (core's validator), as one refusal naming every problem.
fn validate_type(message_type: &str, obj: &serde_json::Map<String, Value>) -> ApiResult<()> {
    let body = Value::Object(obj.clone());
    let Err(violations) = wagate_core::validate::check_message(message_type, &body) else {
        return Ok(());
    };
    let first = &violations[0];
    let message = if violations.len() == 1 {
        first.message.clone()
    } else {
        format!(
            "{} (and {} more problems, listed in details)",
            first.message,
            violations.len() - 1
        )
    };
    Err(ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message)
        .details(json!({"field": first.field, "limit": first.limit, "size": first.size, "violations": violations}))
        .hint("fix the named fields; the limits are Meta's (see the WhatsApp Cloud API message reference)"))
}

/// Queues a prepared send (message and job in one transaction) and wakes the sender.
pub async fn enqueue(state: &AppState, p: Prepared) -> ApiResult<Message> {
    let message = state.store.enqueue_message(&new_outbound(p)).await?;
    state.wake_sender.notify_one();
    Ok(message)
}

fn new_outbound(p: Prepared) -> NewOutboundMessage {
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

/// The `Idempotency-Key` header, checked: 1 to 255 visible ASCII characters.
pub fn idempotency_key(headers: &HeaderMap) -> ApiResult<Option<String>> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value.to_str().unwrap_or_default();
    if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::invalid_field(
            "Idempotency-Key",
            "the Idempotency-Key header must be 1 to 255 visible ASCII characters",
            "use a UUID or another unique string per message, e.g. Idempotency-Key: order-1042-shipped",
        ));
    }
    Ok(Some(key.to_string()))
}

/// The most messages one batch takes.
pub const BATCH_MAX: usize = 1000;

#[derive(Deserialize, ToSchema)]
pub struct BatchRequest {
    /// Up to 1,000 messages, each as for `POST /v1/messages`, optionally with its own
    /// `idempotency_key`.
    #[schema(value_type = Vec<Object>)]
    pub messages: Vec<Value>,
}

#[derive(Serialize, ToSchema)]
pub struct BatchItem {
    /// The item's position in `messages`.
    pub index: usize,
    /// 202 when queued, else the status a single send would have had.
    pub status: u16,
    pub message: Option<MessageView>,
    /// Whether the item's idempotency key gave back an earlier message.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub replayed: bool,
    #[schema(value_type = Object)]
    pub error: Option<Value>,
}

#[derive(Serialize, ToSchema)]
pub struct BatchAnswer {
    pub queued: usize,
    pub refused: usize,
    pub data: Vec<BatchItem>,
}

/// Send up to 1,000 messages at once. Each is validated and answered on its own: the good ones
/// are queued (as bulk: interactive sends from `POST /v1/messages` go first), the bad ones say
/// why, and one bad item stops nothing else.
#[utoipa::path(post, path = "/v1/messages/batch", tag = "messages",
    request_body = BatchRequest,
    responses((status = 200, description = "Each item's outcome", body = BatchAnswer),
               (status = 400, description = "Not a batch", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn send_batch(State(state): State<AppState>, caller: Caller, body: Bytes) -> ApiResult<Json<BatchAnswer>> {
    caller.require("send")?;
    let body: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::invalid_json(e, "send {\"messages\": [{…}, …]} with Content-Type: application/json"))?;
    let Some(items) = body.get("messages").and_then(Value::as_array) else {
        return Err(ApiError::invalid_field(
            "messages",
            "messages must be an array of message objects",
            "send {\"messages\": [{\"to\": \"+16505551234\", \"type\": \"text\", \"text\": {\"body\": \"hi\"}}]}",
        ));
    };
    if items.is_empty() || items.len() > BATCH_MAX {
        return Err(ApiError::invalid_field(
            "messages",
            format!("a batch holds 1 to {BATCH_MAX} messages, not {}", items.len()),
            format!("split it into batches of at most {BATCH_MAX}"),
        )
        .details(json!({"field": "messages", "limit": BATCH_MAX, "size": items.len()})));
    }
    // Each item is checked on its own; the good ones without an idempotency key are then
    // written together, in one transaction (one commit for the batch, not one per message).
    // Keyed items are queued as they come: their key is claimed in their own transaction.
    let mut outcomes: Vec<Option<ApiResult<(Message, bool)>>> = Vec::with_capacity(items.len());
    let mut plain: Vec<(usize, NewOutboundMessage)> = Vec::new();
    for (index, item) in items.iter().enumerate() {
        match batch_item(&state, &caller, item.clone()).await {
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
    let mut data = Vec::with_capacity(items.len());
    for (index, outcome) in outcomes.into_iter().enumerate() {
        let Some(outcome) = outcome else { continue };
        data.push(match outcome {
            Ok((message, replayed)) => {
                // A message queued just now has no statuses yet.
                let timeline = if replayed {
                    state.store.message_timeline(&message.id).await?
                } else {
                    Vec::new()
                };
                BatchItem {
                    index,
                    status: 202,
                    message: Some(view(message, &timeline)),
                    replayed,
                    error: None,
                }
            }
            Err(e) => {
                let status = e.status.as_u16();
                let body =
                    json!({"code": e.code, "message": e.message, "details": e.details, "meta": e.meta, "hint": e.hint});
                BatchItem {
                    index,
                    status,
                    message: None,
                    replayed: false,
                    error: Some(body),
                }
            }
        });
    }
    state.wake_sender.notify_one();
    let queued = data.iter().filter(|d| d.status == 202).count();
    Ok(Json(BatchAnswer {
        queued,
        refused: data.len() - queued,
        data,
    }))
}

/// One batch item, checked: queued already (keyed: `true` when its key gave back an earlier
/// message), or ready to be written with the rest of the batch.
enum BatchOutcome {
    Done(Message, bool),
    Ready(NewOutboundMessage),
}

async fn batch_item(state: &AppState, caller: &Caller, mut item: Value) -> ApiResult<BatchOutcome> {
    let key = match item.as_object_mut().and_then(|o| o.remove("idempotency_key")) {
        None | Some(Value::Null) => None,
        Some(Value::String(k)) if !k.is_empty() && k.len() <= 255 && k.bytes().all(|b| b.is_ascii_graphic()) => Some(k),
        Some(_) => {
            return Err(ApiError::invalid_field(
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
pub async fn enqueue_once(state: &AppState, p: Prepared, key: String, request: &Value) -> ApiResult<(Message, bool)> {
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
        wagate_store::Enqueued::Conflict { message_id } => Err(ApiError::new(
            StatusCode::CONFLICT,
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
pub async fn wait_for_meta(state: &AppState, id: &str, timeout: Duration) -> ApiResult<Message> {
    let deadline = tokio::time::Instant::now() + timeout;
    let notify = state.sent_waiters.register(id);
    loop {
        let m = state
            .store
            .get_message(&MessageId::from(id))
            .await?
            .ok_or_else(|| ApiError::not_found("message", id))?;
        if m.status != MessageStatus::Queued || m.error.is_some() || tokio::time::Instant::now() >= deadline {
            state.sent_waiters.forget(id);
            return Ok(m);
        }
        // The sender wakes us: in this process directly, in another through the store's
        // notification (`Wake::Sent`); polling covers a lost notification.
        let _ = tokio::time::timeout(Duration::from_millis(250), notify.notified()).await;
    }
}

/// Send a message.
#[utoipa::path(post, path = "/v1/messages", tag = "messages",
    params(SendQuery, ("Idempotency-Key" = Option<String>, Header, description = "Sends once per key (per account, for 24 hours): the same key and body give back the first message, with `Idempotent-Replayed: true`")),
    request_body = SendRequest,
    responses((status = 202, description = "Queued (or, with wait=accepted, Meta's answer)", body = MessageView),
               (status = 400, description = "Invalid request", body = ErrorBody),
               (status = 409, description = "The Idempotency-Key was used for another request", body = ErrorBody),
               (status = 401, description = "No or bad API key", body = ErrorBody),
               (status = 422, description = "The 24-hour window is closed", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn send(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<SendQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(StatusCode, HeaderMap, Json<MessageView>)> {
    caller.require("send")?;
    let key = idempotency_key(&headers)?;
    let body: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::invalid_json(e, "send a JSON object with Content-Type: application/json"))?;
    let wait = match q.wait.as_deref() {
        None => false,
        Some("accepted") => true,
        Some(other) => {
            return Err(ApiError::invalid_field(
                "wait",
                format!("wait={other} is not supported"),
                "use wait=accepted, or leave it out",
            ))
        }
    };
    let request = body.clone();
    let prepared = prepare(&state, &caller, body).await?;
    let warnings = prepared.warnings.clone();
    let (mut message, replayed) = match key {
        Some(key) => enqueue_once(&state, prepared, key, &request).await?,
        None => (enqueue(&state, prepared).await?, false),
    };
    if wait {
        message = wait_for_meta(&state, &message.id, Duration::from_secs(30)).await?;
    }
    let timeline = state.store.message_timeline(&message.id).await?;
    let mut shown = view(message, &timeline);
    shown.warnings = warnings;
    let mut answer_headers = HeaderMap::new();
    if replayed {
        answer_headers.insert("idempotent-replayed", axum::http::HeaderValue::from_static("true"));
    }
    Ok((StatusCode::ACCEPTED, answer_headers, Json(shown)))
}

/// A message with its status timeline.
#[utoipa::path(get, path = "/v1/messages/{id}", tag = "messages",
    params(("id" = String, Path, description = "Message id (msg_…)"), crate::api::WaitQuery),
    responses((status = 200, body = MessageView), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(wait): Query<crate::api::WaitQuery>,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    caller.require("read")?;
    let within = wait.within()?;
    let read = || async {
        let m = callers_message(&state, &caller, &id).await?;
        let timeline = state.store.message_timeline(&MessageId::from(id.as_str())).await?;
        Ok(view(m, &timeline))
    };
    let (Some(within), Some(status)) = (within, wait.wait_for.as_deref()) else {
        return Ok(Json(read().await?).into_response());
    };
    if MessageStatus::parse(status).is_none_or(|s| !MESSAGE_STATUSES.contains(&s.as_str())) {
        return Err(ApiError::invalid_field(
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
    let (shown, met) = crate::api::wait_until(&state, within, read, met).await?;
    Ok((crate::api::wait_header(met), Json(shown)).into_response())
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

/// The caller's message, or 404.
async fn callers_message(state: &AppState, caller: &Caller, id: &str) -> ApiResult<Message> {
    state
        .store
        .get_message(&MessageId::from(id))
        .await?
        .filter(|m| caller.sees(&m.account_id))
        .ok_or_else(|| ApiError::not_found("message", id))
}

/// Cancel a message that has not gone out.
#[utoipa::path(delete, path = "/v1/messages/{id}", tag = "messages",
    params(("id" = String, Path, description = "Message id (msg_…)")),
    responses((status = 200, description = "Cancelled: it will not be sent", body = MessageView),
              (status = 404, body = ErrorBody),
              (status = 409, description = "It is being sent or has gone out", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<MessageView>> {
    caller.require("send")?;
    let m = callers_message(&state, &caller, &id).await?;
    match state.store.cancel_message(&m.id, now_ms()).await? {
        Some(cancelled) => {
            let payload = json!({
                "message_id": cancelled.id,
                "recipient_id": cancelled.wa_id,
                "phone_number_id": cancelled.phone_number_id,
                "status": "cancelled",
            });
            crate::workers::hooks::emit(&state, Some(&cancelled.account_id), "message.cancelled", &payload).await;
            let timeline = state.store.message_timeline(&MessageId::from(id.as_str())).await?;
            Ok(Json(view(cancelled, &timeline)))
        }
        None => Err(ApiError::new(
            StatusCode::CONFLICT,
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

/// Queue again a message whose send failed.
#[utoipa::path(post, path = "/v1/messages/{id}/retry", tag = "messages",
    params(("id" = String, Path, description = "Message id (msg_…)")),
    responses((status = 202, description = "Queued again", body = MessageView),
              (status = 404, body = ErrorBody),
              (status = 409, description = "Its send did not fail", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn retry(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<MessageView>)> {
    caller.require("send")?;
    let m = callers_message(&state, &caller, &id).await?;
    match state.store.retry_message(&m.id, now_ms()).await? {
        Some(queued) => {
            state.wake_sender.notify_one();
            let timeline = state.store.message_timeline(&MessageId::from(id.as_str())).await?;
            Ok((StatusCode::ACCEPTED, Json(view(queued, &timeline))))
        }
        None => Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_retryable",
            format!("message {id} is {}: only a message whose send failed (Meta refused it, or the attempts ran out) can be queued again", m.status),
        )
        .details(json!({"status": m.status}))
        .hint("a message Meta accepted and later reported failed has a wamid; send a new message instead")),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ListQuery {
    /// `inbound` or `outbound`
    pub direction: Option<String>,
    pub status: Option<String>,
    /// The contact's WhatsApp id or phone number.
    pub wa_id: Option<String>,
    /// Account name or id.
    pub account: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    #[serde(default, deserialize_with = "opt_i64")]
    #[param(value_type = Option<i64>)]
    pub limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct MessagePage {
    pub data: Vec<MessageView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Messages, newest first.
#[utoipa::path(get, path = "/v1/messages", tag = "messages", params(ListQuery),
    responses((status = 200, body = MessagePage), (status = 400, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<MessagePage>> {
    caller.require("read")?;
    let limit = page_limit(q.limit)?;
    let account_id = filter_account(&state, &caller, q.account.as_deref())?;
    let account_ids = caller.account_ids();
    if let Some(d) = q.direction.as_deref().filter(|d| !["inbound", "outbound"].contains(d)) {
        return Err(ApiError::invalid_field(
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
        return Err(ApiError::invalid_field(
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
    Ok(Json(MessagePage { data, next_cursor }))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct ReadRequest {
    /// Also show the typing indicator (until you reply, or 25 s).
    #[serde(default)]
    pub typing_indicator: bool,
}

/// Mark an inbound message read (blue ticks), optionally showing the typing indicator.
#[utoipa::path(post, path = "/v1/messages/{id}/read", tag = "messages",
    params(("id" = String, Path, description = "Id of an inbound message (msg_…)")),
    request_body(content = ReadRequest, description = "optional"),
    responses((status = 200, description = "{\"success\": true}"), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 422, description = "Meta refused", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn mark_read(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    caller.require("send")?;
    let req: ReadRequest = if body.is_empty() {
        ReadRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::invalid_json(e, "send {} or {\"typing_indicator\": true}"))?
    };
    let m = state
        .store
        .get_message(&MessageId::from(id.as_str()))
        .await?
        .filter(|m| caller.sees(&m.account_id))
        .ok_or_else(|| ApiError::not_found("message", &id))?;
    let wamid = match (m.direction, &m.wamid) {
        (Direction::Inbound, Some(w)) => w.clone(),
        _ => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "not_inbound",
                "only messages a user sent you can be marked read",
            )
            .hint("use the id of a message.received event's message"))
        }
    };
    let account = state
        .accounts
        .by_id(&m.account_id)
        .ok_or_else(|| ApiError::internal("the message's account is not configured"))?;
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
    Ok(Json(json!({"success": true})))
}
