//! `/v1/events`: the event log, oldest first, with a cursor; one event; replay; the live stream.
//! The handlers call the engine's event operations ([`wagate_engine::events::ops`]).

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::Value;
use utoipa::IntoParams;
use wagate_engine::auth::Caller;
use wagate_engine::events::ops::{self, EventPage, EventReplay};

use crate::api::{opt_i64, page_limit, wait_header, WaitQuery};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;

#[derive(Debug, Deserialize, IntoParams)]
pub struct EventQuery {
    /// Event types, comma separated (e.g. `message.received,message.read`).
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub types: Option<String>,
    /// Occurred at or after (RFC 3339 or unix seconds).
    pub since: Option<String>,
    /// Occurred before (RFC 3339 or unix seconds).
    pub until: Option<String>,
    pub account: Option<String>,
    /// About this contact: a number (`16505551234`, `+1 650 555 1234`) or a user id.
    pub contact: Option<String>,
    /// `next_cursor` of the previous page.
    #[serde(default, deserialize_with = "opt_i64")]
    #[param(value_type = Option<i64>)]
    pub cursor: Option<i64>,
    #[serde(default, deserialize_with = "opt_i64")]
    #[param(value_type = Option<i64>)]
    pub limit: Option<i64>,
    /// `base64`: put the bytes of stored media into the events (`content.media.data_base64`), for
    /// consumers that cannot reach the download URL.
    pub include_media: Option<String>,
}

impl EventQuery {
    fn engine(&self) -> ops::EventQuery {
        ops::EventQuery {
            types: self.types.clone(),
            since: self.since.clone(),
            until: self.until.clone(),
            account: self.account.clone(),
            contact: self.contact.clone(),
            cursor: self.cursor,
            before: None,
            newest_first: false,
            include_media: self.include_media.clone(),
        }
    }
}

/// The event log.
#[utoipa::path(get, path = "/v1/events", tag = "events", params(EventQuery, WaitQuery),
    responses((status = 200, body = EventPage), (status = 400, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<EventQuery>,
    Query(wait): Query<WaitQuery>,
) -> ApiResult<Response> {
    caller.require("read")?;
    let within = wait.within()?;
    let pattern = wait.wait_for.as_deref().filter(|_| within.is_some());
    if let Some(pattern) = pattern {
        ops::check_wait_pattern(pattern)?;
    }
    let limit = page_limit(q.limit)?;
    let waiting = within.zip(pattern);
    let (page, waited) = ops::list(&state, &caller, &q.engine(), limit, waiting).await?;
    Ok(match waited {
        Some(met) => (wait_header(met), Json(page)).into_response(),
        None => Json(page).into_response(),
    })
}

/// One event, with its deliveries to each hook (state, attempts, last error).
#[utoipa::path(get, path = "/v1/events/{id}", tag = "events", params(("id" = String, Path)),
    responses((status = 200, description = "the event and its `deliveries`"), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn get_one(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    Ok(Json(ops::get(&state, &caller, &id).await?))
}

/// Deliver one event again.
#[utoipa::path(post, path = "/v1/events/{id}/replay", tag = "events", params(("id" = String, Path)), request_body = EventReplay,
    responses((status = 202, description = "{\"queued\": n}"), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn replay(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.require("admin")?;
    let r: EventReplay = if body.iter().all(u8::is_ascii_whitespace) {
        EventReplay::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::invalid_json(e, "send {} or {\"hook\": \"hook_…\"}"))?
    };
    let queued = ops::replay(&state, &caller, &id, &r).await?;
    Ok((StatusCode::ACCEPTED, Json(serde_json::json!({"queued": queued}))))
}

/// The event log live, as Server-Sent Events (`id` is the sequence, `event` the type, `data`
/// the event as `GET /v1/events` shows it). Same filters as the list. It starts after
/// `Last-Event-ID` (or `cursor`), else with the events that come from now on; a client that
/// reconnects with the last id it saw gets every event after it, once, in order.
#[utoipa::path(get, path = "/v1/events/stream", tag = "events", params(EventQuery),
    responses((status = 200, description = "text/event-stream"), (status = 400, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn stream(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Query(q): Query<EventQuery>,
) -> ApiResult<Sse<impl futures_util::Stream<Item = Result<SseEvent, axum::Error>>>> {
    caller.require("read")?;
    let query = q.engine();
    ops::check_query(&state, &caller, &query)?;
    let last_id = match headers.get("last-event-id").map(|v| v.to_str().map(str::trim)) {
        Some(Ok(v)) => Some(v.parse::<i64>().map_err(|_| {
            ApiError::invalid_field(
                "last-event-id",
                format!("Last-Event-ID `{v}` is not an event sequence"),
                "send back the id of the last event received",
            )
        })?),
        Some(Err(_)) => {
            return Err(ApiError::invalid_field(
                "last-event-id",
                "Last-Event-ID is not text",
                "send back the id of the last event received",
            ))
        }
        None => q.cursor,
    };
    let tail = ops::tail(&state, &caller, &query, last_id).await?;
    let events = futures_util::stream::unfold(tail, |mut tail| async move {
        let view = tail.next().await;
        let item = SseEvent::default()
            .id(view.sequence.to_string())
            .event(view.event_type.clone())
            .json_data(view);
        Some((item, tail))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}
