//! `POST /v1/messages` (and its batch), `GET /v1/messages/{id}`, `GET /v1/messages`, cancel,
//! retry and mark read: parsed here, done by the engine's sending slice
//! ([`wagate_engine::sending`]).

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use wagate_engine::auth::Caller;
use wagate_engine::sending::messages::{self, MessagePage, MessageQuery, ReadRequest};
use wagate_engine::sending::queue;
use wagate_engine::sending::views::MessageView;

use crate::api::{idempotency_key, opt_i64, page_limit, wait_header, WaitQuery};
use crate::error::{ApiError, ApiResult, ErrorBody};
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
            Ok((message, replayed)) => BatchItem {
                index,
                status: 202,
                message: Some(message),
                replayed,
                error: None,
            },
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
    let (shown, replayed) = messages::send(&state, &caller, body, key, wait).await?;
    let mut answer_headers = HeaderMap::new();
    if replayed {
        answer_headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok((StatusCode::ACCEPTED, answer_headers, Json(shown)))
}

/// A message with its status timeline.
#[utoipa::path(get, path = "/v1/messages/{id}", tag = "messages",
    params(("id" = String, Path, description = "Message id (msg_…)"), WaitQuery),
    responses((status = 200, body = MessageView), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(wait): Query<WaitQuery>,
) -> ApiResult<Response> {
    caller.require("read")?;
    let within = wait.within()?;
    let waiting = within.zip(wait.wait_for.as_deref());
    Ok(match messages::get(&state, &caller, &id, waiting).await? {
        (shown, Some(met)) => (wait_header(met), Json(shown)).into_response(),
        (shown, None) => Json(shown).into_response(),
    })
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
    Ok(Json(messages::cancel(&state, &caller, &id).await?))
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
    Ok((StatusCode::ACCEPTED, Json(messages::retry(&state, &caller, &id).await?)))
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
    let query = MessageQuery {
        direction: q.direction,
        status: q.status,
        wa_id: q.wa_id,
        account: q.account,
        cursor: q.cursor,
    };
    Ok(Json(messages::list(&state, &caller, query, limit).await?))
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
    Ok(Json(messages::mark_read(&state, &caller, &id, &req).await?))
}
