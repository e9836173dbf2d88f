//! `GET /v1/events`: the event log, oldest first, with a cursor.

use axum::extract::{Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use wagate_core::time::{parse_time_ms, rfc3339_ms};
use wagate_core::webhook::EVENT_TYPES;
use wagate_store::{Event, EventFilter, EventId};

use wagate_engine::auth::accounts::filter_account;
use wagate_engine::events::EventView;

use crate::api::{opt_i64, page_limit};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;
use wagate_engine::auth::Caller;

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

#[derive(Serialize, ToSchema)]
pub struct EventPage {
    pub data: Vec<EventView>,
    /// Pass as `cursor` to read on; present whenever the page is not empty, so a consumer can
    /// keep polling from where it stopped.
    pub next_cursor: Option<i64>,
}

/// The type and account filters of an event query, checked.
fn filters(state: &AppState, caller: &Caller, q: &EventQuery) -> ApiResult<(Vec<String>, Option<String>)> {
    let event_types: Vec<String> = q
        .types
        .as_deref()
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect();
    if let Some(bad) = event_types.iter().find(|t| !EVENT_TYPES.contains(&t.as_str())) {
        return Err(ApiError::invalid_field(
            "type",
            format!("`{bad}` is not an event type"),
            "use the types listed in details",
        )
        .details(serde_json::json!({"field": "type", "allowed": EVENT_TYPES})));
    }
    let account_id = filter_account(state, caller, q.account.as_deref())?;
    Ok((event_types, account_id))
}

fn time_param(name: &str, v: Option<&str>) -> ApiResult<Option<i64>> {
    v.filter(|s| !s.is_empty())
        .map(|s| {
            parse_time_ms(s).ok_or_else(|| {
                ApiError::invalid_field(
                    name,
                    format!("{name}=`{s}` is not a time"),
                    "use RFC 3339 (2026-01-31T12:00:00Z) or unix seconds",
                )
            })
        })
        .transpose()
}

/// The event log.
#[utoipa::path(get, path = "/v1/events", tag = "events", params(EventQuery, crate::api::WaitQuery),
    responses((status = 200, body = EventPage), (status = 400, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<EventQuery>,
    Query(wait): Query<crate::api::WaitQuery>,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    caller.require("read")?;
    let within = wait.within()?;
    if let Some(pattern) = wait.wait_for.as_deref().filter(|_| within.is_some()) {
        wagate_core::hooks::check_pattern(pattern).map_err(|e| {
            ApiError::invalid_field(
                "wait_for",
                e,
                "wait for an event type or pattern, e.g. wait_for=message.received",
            )
            .details(serde_json::json!({"field": "wait_for", "allowed": EVENT_TYPES}))
        })?;
    }
    let limit = page_limit(q.limit)?;
    let (event_types, account_id) = filters(&state, &caller, &q)?;
    let filter = EventFilter {
        account_id,
        account_ids: caller.account_ids(),
        event_types,
        since_ms: time_param("since", q.since.as_deref())?,
        until_ms: time_param("until", q.until.as_deref())?,
        after_seq: q.cursor,
        limit,
        ..EventFilter::default()
    };
    let inline = match q.include_media.as_deref() {
        None | Some("") => false,
        Some("base64") => true,
        Some(other) => {
            return Err(ApiError::invalid_field(
                "include_media",
                format!("include_media={other} is not supported"),
                "use include_media=base64",
            ))
        }
    };
    let read = || async {
        let rows = state.store.list_events(&filter).await?;
        let next_cursor = rows.last().map(|e| e.seq).or(q.cursor);
        Ok::<_, ApiError>((rows, next_cursor))
    };
    let ((rows, next_cursor), waited) = match (within, wait.wait_for.as_deref()) {
        (Some(within), Some(pattern)) => {
            let patterns = [pattern.to_string()];
            let met = |(rows, _): &(Vec<wagate_store::Event>, Option<i64>)| {
                rows.iter()
                    .any(|e| wagate_core::hooks::type_matches(&patterns, e.event_type.as_str()))
            };
            let (got, met) = crate::api::wait_until(&state, within, read, met).await?;
            (got, Some(met))
        }
        _ => (read().await?, None),
    };
    let mut data: Vec<EventView> = rows.into_iter().map(EventView::from).collect();
    if inline {
        for e in &mut data {
            wagate_engine::media::files::inline_base64(&state, &mut e.payload).await?;
        }
    }
    let page = Json(EventPage { data, next_cursor });
    Ok(match waited {
        Some(met) => (crate::api::wait_header(met), page).into_response(),
        None => page.into_response(),
    })
}

/// One event, with its deliveries to each hook (state, attempts, last error).
#[utoipa::path(get, path = "/v1/events/{id}", tag = "events", params(("id" = String, Path)),
    responses((status = 200, description = "the event and its `deliveries`"), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> ApiResult<Json<Value>> {
    caller.require("read")?;
    let event = state
        .store
        .get_event(&EventId::from(id.as_str()))
        .await?
        .filter(|e| caller.sees_opt(e.account_id.as_deref()))
        .ok_or_else(|| ApiError::not_found("event", &id))?;
    // Deliveries to the hooks the caller may see only.
    let visible: Vec<wagate_store::HookId> = state
        .store
        .list_hooks()
        .await?
        .into_iter()
        .filter(|h| caller.sees_hook(h))
        .map(|h| h.id)
        .collect();
    let deliveries: Vec<Value> = state
        .store
        .deliveries_of_event(&id)
        .await?
        .iter()
        .filter(|d| visible.contains(&d.hook_id))
        .map(|d| {
            serde_json::json!({
                "hook_id": d.hook_id,
                "state": d.state,
                "attempts": d.attempts,
                "next_attempt_at": (d.state == wagate_store::DeliveryState::Pending).then(|| rfc3339_ms(d.next_attempt_at)),
                "last_error": d.last_error,
                "updated_at": rfc3339_ms(d.updated_at),
            })
        })
        .collect();
    let mut v = serde_json::to_value(EventView::from(event)).map_err(|e| ApiError::internal(e.to_string()))?;
    v["deliveries"] = Value::Array(deliveries);
    Ok(Json(v))
}

/// The body of `POST /v1/events/{id}/replay`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventReplay {
    /// Only to this hook (default: every enabled hook that takes the event).
    pub hook: Option<String>,
}

/// Deliver one event again.
#[utoipa::path(post, path = "/v1/events/{id}/replay", tag = "events", params(("id" = String, Path)), request_body = EventReplay,
    responses((status = 202, description = "{\"queued\": n}"), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn replay(
    State(state): State<AppState>,
    caller: Caller,
    axum::extract::Path(id): axum::extract::Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<(axum::http::StatusCode, Json<Value>)> {
    caller.require("admin")?;
    let r: EventReplay = if body.iter().all(u8::is_ascii_whitespace) {
        EventReplay::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::invalid_json(e, "send {} or {\"hook\": \"hook_…\"}"))?
    };
    let event = state
        .store
        .get_event(&EventId::from(id.as_str()))
        .await?
        .filter(|e| caller.sees_opt(e.account_id.as_deref()))
        .ok_or_else(|| ApiError::not_found("event", &id))?;
    // A tenant's key replays to its tenant's hooks only, an account's key to its account's.
    let hooks: Vec<_> = state
        .store
        .list_hooks()
        .await?
        .into_iter()
        .filter(|h| caller.sees_hook(h))
        .collect();
    if let Some(h) = &r.hook {
        match hooks.iter().find(|x| &x.id == h) {
            None => {
                return Err(ApiError::invalid_field(
                    "hook",
                    format!("no hook `{h}`"),
                    "use an id from GET /v1/hooks",
                ))
            }
            Some(x) if x.format == "meta" => {
                return Err(ApiError::invalid_field(
                    "hook",
                    "a meta-format hook takes Meta's bodies, not events",
                    "replay it with POST /v1/hooks/{id}/replay and a time range",
                ))
            }
            Some(_) => {}
        }
    }
    let mut queued = 0;
    for hook in hooks.iter().filter(|h| h.enabled && h.format == "event") {
        let chosen = match &r.hook {
            Some(only) => &hook.id == only,
            None => {
                let filter = wagate_engine::hooks::filters::filter_for(&state, hook);
                !wagate_engine::hooks::filters::matching(&filter, std::slice::from_ref(&event)).is_empty()
            }
        };
        if chosen {
            state
                .store
                .add_deliveries(
                    &hook.id,
                    &[wagate_store::NewDelivery {
                        event_id: event.id.to_string(),
                        seq: event.seq,
                        contact: serde_json::from_str::<Value>(&event.payload)
                            .ok()
                            .as_ref()
                            .and_then(wagate_core::hooks::event_contact)
                            .map(str::to_string),
                    }],
                    None,
                    wagate_engine::now_ms(),
                )
                .await?;
            queued += 1;
        }
    }
    state.wake_deliveries.notify_one();
    Ok((
        axum::http::StatusCode::ACCEPTED,
        Json(serde_json::json!({"queued": queued})),
    ))
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
    headers: axum::http::HeaderMap,
    Query(q): Query<EventQuery>,
) -> ApiResult<axum::response::Sse<impl futures_util::Stream<Item = Result<axum::response::sse::Event, axum::Error>>>> {
    use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
    caller.require("read")?;
    let (event_types, account_id) = filters(&state, &caller, &q)?;
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
    let after = match last_id {
        Some(n) => n,
        None => state.store.last_event_seq().await?,
    };
    let inline = q.include_media.as_deref() == Some("base64");
    let filter = EventFilter {
        account_id,
        account_ids: caller.account_ids(),
        event_types,
        since_ms: None,
        until_ms: None,
        after_seq: Some(after),
        limit: 100,
        ..EventFilter::default()
    };
    let written = state.events_written.subscribe();
    let start = (state, filter, std::collections::VecDeque::<Event>::new(), written);
    let events = futures_util::stream::unfold(start, move |(state, mut filter, mut buffer, mut written)| async move {
        loop {
            if let Some(e) = buffer.pop_front() {
                filter.after_seq = Some(e.seq);
                let (seq, kind) = (e.seq, e.event_type.clone());
                let mut view = EventView::from(e);
                if inline {
                    let _ = wagate_engine::media::files::inline_base64(&state, &mut view.payload).await;
                }
                let item = SseEvent::default().id(seq.to_string()).event(kind).json_data(view);
                return Some((item, (state, filter, buffer, written)));
            }
            match state.store.list_events(&filter).await {
                Ok(rows) if !rows.is_empty() => buffer.extend(rows),
                result => {
                    if let Err(e) = result {
                        tracing::warn!(error = %e, "the event stream could not read the log; retrying");
                    }
                    tokio::select! {
                        _ = written.changed() => {}
                        _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                    }
                }
            }
        }
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}
