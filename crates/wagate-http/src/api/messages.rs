//! `POST /v1/messages`, `GET /v1/messages/{id}`, `GET /v1/messages`.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::{IntoParams, ToSchema};
use wagate_core::status::MessageStatus;
use wagate_store::{Direction, Message, MessageFilter, MessageId};

use wagate_engine::auth::accounts::filter_account;
use wagate_engine::sending::prepare::prepare;
use wagate_engine::sending::queue::{self, enqueue, enqueue_once, wait_for_meta};
use wagate_engine::sending::views::{view, MessageView};

use crate::api::{opt_i64, page_limit};
use crate::error::{ApiError, ApiResult, ErrorBody};
use wagate_engine::auth::Caller;
use wagate_engine::now_ms;

use crate::state::AppState;

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
    let outcomes = queue::send_batch(&state, &caller, items).await?;
    let mut data = Vec::with_capacity(items.len());
    for (index, outcome) in outcomes {
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
                let status = crate::error::status_of(e.kind).as_u16();
                let body = e.body();
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
    let queued = data.iter().filter(|d| d.status == 202).count();
    Ok(Json(BatchAnswer {
        queued,
        refused: data.len() - queued,
        data,
    }))
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
            state
                .emit(Some(&cancelled.account_id), "message.cancelled", &payload)
                .await;
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
