//! The event log's operations: a page of events (waiting, if asked, for one to be written), one
//! event with its deliveries, replaying one event to hooks, and following the log live.

use std::collections::VecDeque;
use std::time::Duration;

use serde_json::{json, Value};
use wagate_core::time::{parse_time_ms, rfc3339_ms};
use wagate_core::webhook::EVENT_TYPES;
use wagate_store::{Event, EventFilter, EventId};

use super::{wait_until, EventView};
use crate::auth::accounts::filter_account;
use crate::auth::Caller;
use crate::clock::now_ms;
use crate::error::{EngineError, EngineResult};
use crate::state::Engine;

/// What a read of the log asks for, as the doors take it (`type`, `since`, `until`, `account`).
#[derive(Debug, Default, Clone)]
pub struct EventQuery {
    /// Event types, comma separated.
    pub types: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub account: Option<String>,
    /// About this contact: a number (its digits) or a user id.
    pub contact: Option<String>,
    /// After this sequence number.
    pub cursor: Option<i64>,
    /// Before this sequence number, the newest first (the console's older pages).
    pub before: Option<i64>,
    /// The newest first.
    pub newest_first: bool,
    /// `base64`: the bytes of stored media in the events.
    pub include_media: Option<String>,
}

// A page of the log (no doc comment: it would become the schema's description).
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct EventPage {
    pub data: Vec<EventView>,
    /// Pass as `cursor` to read on; present whenever the page is not empty, so a consumer can
    /// keep polling from where it stopped.
    pub next_cursor: Option<i64>,
}

/// A contact as events name it: a user id as given, a number as its digits (`+1 650-555-1234`
/// is `16505551234`).
fn contact_param(contact: Option<&str>) -> Option<String> {
    let c = contact.map(str::trim).filter(|c| !c.is_empty())?;
    match wagate_core::phone::is_business_scoped_user_id(c) {
        true => Some(c.to_string()),
        false => Some(c.chars().filter(char::is_ascii_digit).collect()),
    }
}

/// The type and account filters of an event query, checked.
fn filters(state: &Engine, caller: &Caller, q: &EventQuery) -> EngineResult<(Vec<String>, Option<String>)> {
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
        return Err(EngineError::invalid_field(
            "type",
            format!("`{bad}` is not an event type"),
            "use the types listed in details",
        )
        .details(json!({"field": "type", "allowed": EVENT_TYPES})));
    }
    let account_id = filter_account(state, caller, q.account.as_deref())?;
    Ok((event_types, account_id))
}

fn time_param(name: &str, v: Option<&str>) -> EngineResult<Option<i64>> {
    v.filter(|s| !s.is_empty())
        .map(|s| {
            parse_time_ms(s).ok_or_else(|| {
                EngineError::invalid_field(
                    name,
                    format!("{name}=`{s}` is not a time"),
                    "use RFC 3339 (2026-01-31T12:00:00Z) or unix seconds",
                )
            })
        })
        .transpose()
}

/// Checks a query's type and account filters (the stream does before it reads its headers).
pub fn check_query(state: &Engine, caller: &Caller, q: &EventQuery) -> EngineResult<()> {
    filters(state, caller, q).map(|_| ())
}

/// A wait for an event (`wait_for`, a type or pattern), checked.
pub fn check_wait_pattern(pattern: &str) -> EngineResult<()> {
    wagate_core::hooks::check_pattern(pattern).map_err(|e| {
        EngineError::invalid_field(
            "wait_for",
            e,
            "wait for an event type or pattern, e.g. wait_for=message.received",
        )
        .details(json!({"field": "wait_for", "allowed": EVENT_TYPES}))
    })
}

/// A page of at most `limit` events the caller may see; with `wait`, once an event matching
/// its pattern is on the page or its time has passed (`Some(met)` says which).
pub async fn list(
    state: &Engine,
    caller: &Caller,
    q: &EventQuery,
    limit: i64,
    wait: Option<(Duration, &str)>,
) -> EngineResult<(EventPage, Option<bool>)> {
    caller.require("read")?;
    if let Some((_, pattern)) = wait {
        check_wait_pattern(pattern)?;
    }
    let (event_types, account_id) = filters(state, caller, q)?;
    let filter = EventFilter {
        account_id,
        account_ids: caller.account_ids(),
        event_types,
        contact: contact_param(q.contact.as_deref()),
        since_ms: time_param("since", q.since.as_deref())?,
        until_ms: time_param("until", q.until.as_deref())?,
        after_seq: q.cursor,
        before_seq: q.before,
        newest_first: q.newest_first,
        limit,
        ..EventFilter::default()
    };
    let inline = match q.include_media.as_deref() {
        None | Some("") => false,
        Some("base64") => true,
        Some(other) => {
            return Err(EngineError::invalid_field(
                "include_media",
                format!("include_media={other} is not supported"),
                "use include_media=base64",
            ))
        }
    };
    let read = || async {
        let rows = state.store.list_events(&filter).await?;
        let next_cursor = rows.last().map(|e| e.seq).or(q.cursor);
        Ok::<_, EngineError>((rows, next_cursor))
    };
    let ((rows, next_cursor), waited) = match wait {
        Some((within, pattern)) => {
            let patterns = [pattern.to_string()];
            let met = |(rows, _): &(Vec<Event>, Option<i64>)| {
                rows.iter()
                    .any(|e| wagate_core::hooks::type_matches(&patterns, e.event_type.as_str()))
            };
            let (got, met) = wait_until(state, within, read, met).await?;
            (got, Some(met))
        }
        None => (read().await?, None),
    };
    let mut data: Vec<EventView> = rows.into_iter().map(EventView::from).collect();
    if inline {
        for e in &mut data {
            crate::media::files::inline_base64(state, &mut e.payload).await?;
        }
    }
    Ok((EventPage { data, next_cursor }, waited))
}

/// The event, if the caller may see it.
async fn visible_event(state: &Engine, caller: &Caller, id: &str) -> EngineResult<Event> {
    state
        .store
        .get_event(&EventId::from(id))
        .await?
        .filter(|e| caller.sees_opt(e.account_id.as_deref()))
        .ok_or_else(|| EngineError::not_found("event", id))
}

/// One event, with its deliveries to the hooks the caller may see (state, attempts, last
/// error).
pub async fn get(state: &Engine, caller: &Caller, id: &str) -> EngineResult<Value> {
    caller.require("read")?;
    let event = visible_event(state, caller, id).await?;
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
        .deliveries_of_event(id)
        .await?
        .iter()
        .filter(|d| visible.contains(&d.hook_id))
        .map(|d| {
            json!({
                "hook_id": d.hook_id,
                "state": d.state,
                "attempts": d.attempts,
                "next_attempt_at": (d.state == wagate_store::DeliveryState::Pending).then(|| rfc3339_ms(d.next_attempt_at)),
                "last_error": d.last_error,
                "updated_at": rfc3339_ms(d.updated_at),
            })
        })
        .collect();
    let mut v = serde_json::to_value(EventView::from(event)).map_err(|e| EngineError::internal(e.to_string()))?;
    v["deliveries"] = Value::Array(deliveries);
    Ok(v)
}

/// The body of `POST /v1/events/{id}/replay`.
#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventReplay {
    /// Only to this hook (default: every enabled hook that takes the event).
    pub hook: Option<String>,
}

/// Delivers one event again: to the hook named, or to every enabled hook the caller may see
/// that takes it. Returns how many deliveries were queued.
pub async fn replay(state: &Engine, caller: &Caller, id: &str, r: &EventReplay) -> EngineResult<u64> {
    caller.require("admin")?;
    let event = visible_event(state, caller, id).await?;
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
                return Err(EngineError::invalid_field(
                    "hook",
                    format!("no hook `{h}`"),
                    "use an id from GET /v1/hooks",
                ))
            }
            Some(x) if x.format == "meta" => {
                return Err(EngineError::invalid_field(
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
                let filter = crate::hooks::filters::filter_for(state, hook);
                !crate::hooks::filters::matching(&filter, std::slice::from_ref(&event)).is_empty()
            }
        };
        if chosen {
            let contact = serde_json::from_str::<Value>(&event.payload)
                .ok()
                .as_ref()
                .and_then(wagate_core::hooks::event_contact)
                .map(str::to_string);
            let delivery = wagate_store::NewDelivery {
                event_id: event.id.to_string(),
                seq: event.seq,
                contact,
            };
            state
                .store
                .add_deliveries(&hook.id, &[delivery], None, now_ms())
                .await?;
            queued += 1;
        }
    }
    state.wake_deliveries.notify_one();
    Ok(queued)
}

/// Where the log stands now: the sequence of its newest event (a page rendered now is current up
/// to it; following the log from here misses nothing written after).
pub async fn cursor(state: &Engine) -> EngineResult<i64> {
    Ok(state.store.last_event_seq().await?)
}

/// The log followed live: every event the caller may see after a sequence number, in order,
/// once each, waiting for new ones as they are written (here or on another gateway).
pub struct Tail {
    state: Engine,
    filter: EventFilter,
    buffer: VecDeque<Event>,
    written: tokio::sync::watch::Receiver<u64>,
    inline: bool,
}

/// Follows the log after `after` (default: from now on) with the query's filters.
pub async fn tail(state: &Engine, caller: &Caller, q: &EventQuery, after: Option<i64>) -> EngineResult<Tail> {
    caller.require("read")?;
    let (event_types, account_id) = filters(state, caller, q)?;
    let after = match after {
        Some(n) => n,
        None => state.store.last_event_seq().await?,
    };
    let filter = EventFilter {
        account_id,
        account_ids: caller.account_ids(),
        event_types,
        contact: contact_param(q.contact.as_deref()),
        since_ms: None,
        until_ms: None,
        after_seq: Some(after),
        limit: 100,
        ..EventFilter::default()
    };
    Ok(Tail {
        state: state.clone(),
        filter,
        buffer: VecDeque::new(),
        written: state.events_written.subscribe(),
        inline: q.include_media.as_deref() == Some("base64"),
    })
}

impl Tail {
    /// The next event (its sequence is `sequence`), waiting for it as long as it takes.
    pub async fn next(&mut self) -> EventView {
        loop {
            if let Some(e) = self.buffer.pop_front() {
                self.filter.after_seq = Some(e.seq);
                let mut view = EventView::from(e);
                if self.inline {
                    let _ = crate::media::files::inline_base64(&self.state, &mut view.payload).await;
                }
                return view;
            }
            match self.state.store.list_events(&self.filter).await {
                Ok(rows) if !rows.is_empty() => self.buffer.extend(rows),
                result => {
                    if let Err(e) = result {
                        tracing::warn!(error = %e, "the event stream could not read the log; retrying");
                    }
                    tokio::select! {
                        _ = self.written.changed() => {}
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
        }
    }
}
