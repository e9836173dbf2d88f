//! The console's event log: filtered pages (the newest by default), one event with its JSON and
//! its deliveries (and delivering it again), and the journal's quarantined and set-aside
//! webhooks with their requeue.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use serde_json::Value;
use wagate_engine::events::ops::{self, EventQuery, EventReplay};
use wagate_engine::inbound::admin;

use super::pages::{chrome, failed, render, Chrome};
use super::{encode, form, said, see_other, Signed};
use crate::state::AppState;

/// Events on a page.
const PAGE: i64 = 50;

/// How many events one page of a contact's events reads.
const CONTACT_WINDOW: i64 = 100_000;

struct EventLine {
    id: String,
    seq: i64,
    kind: String,
    account: String,
    at: String,
    summary: String,
}

#[derive(Template)]
#[template(path = "console/events.html")]
struct EventsPage {
    chrome: Option<Chrome>,
    live: bool,
    after: i64,
    types: String,
    account: String,
    contact: String,
    since: String,
    events: Vec<EventLine>,
    older: Option<String>,
    newer: Option<String>,
    /// The events read for a contact's page (`1 to 100000`).
    window: Option<String>,
    error: Option<String>,
    may_admin: bool,
}

#[derive(serde::Deserialize, Default)]
pub struct EventsParams {
    #[serde(rename = "type")]
    types: Option<String>,
    account: Option<String>,
    contact: Option<String>,
    since: Option<String>,
    /// Events after this sequence number (default: the last page).
    cursor: Option<i64>,
    /// Events before this sequence number.
    before: Option<i64>,
}

/// A line that says what an event is about.
fn summary(payload: &Value) -> String {
    let s = |p: &str| payload.pointer(p).and_then(Value::as_str).unwrap_or_default();
    let who = [s("/contact/name"), s("/from"), s("/recipient_id")]
        .into_iter()
        .find(|v| !v.is_empty())
        .unwrap_or_default();
    let what = [s("/text"), s("/status"), s("/alert"), s("/reason")]
        .into_iter()
        .find(|v| !v.is_empty())
        .unwrap_or_default();
    format!("{who} {what}").trim().chars().take(140).collect()
}

/// `GET /console/events`: the newest matching first; `before` pages to older ones, `cursor`
/// to newer ones.
pub async fn list(State(state): State<AppState>, signed: Signed, Query(p): Query<EventsParams>) -> Response {
    let newest = ops::cursor(&state).await.unwrap_or(0);
    let contact = p.contact.clone().filter(|t| !t.is_empty());
    // A contact's events are found by reading the log (the column is not indexed): a page
    // reads at most CONTACT_WINDOW events, and pages older from where it stopped.
    let window = contact.as_ref().filter(|_| p.cursor.is_none()).map(|_| {
        let upper = p.before.unwrap_or(newest + 1);
        ((upper - CONTACT_WINDOW).max(0), upper)
    });
    let query = EventQuery {
        types: p.types.clone().filter(|t| !t.is_empty()),
        since: p.since.clone().filter(|t| !t.is_empty()),
        account: p.account.clone().filter(|t| !t.is_empty()),
        contact,
        cursor: window.map(|w| w.0).or(p.cursor),
        before: window.map(|w| w.1).or(p.before),
        newest_first: p.cursor.is_none(),
        ..EventQuery::default()
    };
    let (mut rows, error) = match ops::list(&state, &signed.caller, &query, PAGE, None).await {
        Ok((page, _)) => (page.data, None),
        Err(e) => (Vec::new(), Some(said(e))),
    };
    if !query.newest_first {
        rows.reverse();
    }
    let filters = format!(
        "type={}&account={}&contact={}&since={}",
        encode(p.types.as_deref().unwrap_or_default()),
        encode(p.account.as_deref().unwrap_or_default()),
        encode(p.contact.as_deref().unwrap_or_default()),
        encode(p.since.as_deref().unwrap_or_default())
    );
    let (first, last) = (rows.first().map(|e| e.sequence), rows.last().map(|e| e.sequence));
    let full = rows.len() as i64 == PAGE;
    render(EventsPage {
        chrome: chrome(&signed, "/console/events"),
        live: false,
        after: 0,
        // Older: past the page's oldest, when a page this full suggests more (or it came from
        // a newer page).
        older: match window {
            // The window's start, when the page is not full and older events remain.
            Some((lower, _)) if !full && lower > 0 => Some(format!("/console/events?{filters}&before={}", lower + 1)),
            _ => last
                .filter(|_| full || p.cursor.is_some())
                .map(|l| format!("/console/events?{filters}&before={l}")),
        },
        window: window.map(|(lower, upper)| format!("{} to {}", lower + 1, (upper - 1).min(newest))),
        newer: first
            .filter(|f| *f < newest && (p.before.is_some() || p.cursor.is_some()))
            .map(|f| format!("/console/events?{filters}&cursor={f}")),
        events: rows
            .into_iter()
            .map(|e| EventLine {
                summary: summary(&e.payload),
                id: e.id,
                seq: e.sequence,
                kind: e.event_type,
                account: e.account.unwrap_or_default(),
                at: e.occurred_at.get(..19).unwrap_or_default().replace('T', " "),
            })
            .collect(),
        types: p.types.unwrap_or_default(),
        account: p.account.unwrap_or_default(),
        contact: p.contact.unwrap_or_default(),
        since: p.since.unwrap_or_default(),
        error,
        may_admin: signed.caller.require_global("admin").is_ok(),
    })
}

#[derive(Template)]
#[template(path = "console/event.html")]
struct EventPage {
    chrome: Option<Chrome>,
    live: bool,
    after: i64,
    csrf: String,
    id: String,
    kind: String,
    json: String,
    deliveries: Vec<(String, String, String, String)>,
    may_admin: bool,
    notice: Option<String>,
    error: Option<String>,
}

#[derive(serde::Deserialize, Default)]
pub struct Notice {
    notice: Option<String>,
    error: Option<String>,
}

/// `GET /console/events/{id}`: the event's JSON and its deliveries.
pub async fn one(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
    Query(n): Query<Notice>,
) -> Response {
    let mut event = match ops::get(&state, &signed.caller, &id).await {
        Ok(e) => e,
        Err(e) => return failed(e),
    };
    let deliveries = event
        .get_mut("deliveries")
        .map(Value::take)
        .and_then(|d| d.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .map(|d| {
            let s = |k: &str| d[k].as_str().unwrap_or_default().to_string();
            (
                s("hook_id"),
                d["state"].to_string().trim_matches('"').to_string(),
                d["attempts"].to_string(),
                s("last_error"),
            )
        })
        .collect();
    if let Some(obj) = event.as_object_mut() {
        obj.remove("deliveries");
    }
    render(EventPage {
        chrome: chrome(&signed, "/console/events"),
        live: false,
        after: 0,
        csrf: signed.csrf.clone(),
        kind: event["type"].as_str().unwrap_or_default().to_string(),
        json: serde_json::to_string_pretty(&event).unwrap_or_default(),
        id,
        deliveries,
        may_admin: signed.caller.require("admin").is_ok(),
        notice: n.notice,
        error: n.error,
    })
}

/// `POST /console/events/{id}/replay`: the event, delivered again to the hooks that take it.
pub async fn replay(State(state): State<AppState>, signed: Signed, Path(id): Path<String>, body: Bytes) -> Response {
    if let Err(r) = signed.check_csrf(form(&body).get("csrf").map(String::as_str)) {
        return r;
    }
    let to = match ops::replay(&state, &signed.caller, &id, &EventReplay::default()).await {
        Ok(n) => format!(
            "/console/events/{id}?notice={}",
            encode(&format!("queued for {n} hook(s)"))
        ),
        Err(e) => format!("/console/events/{id}?error={}", encode(&said(e))),
    };
    see_other(&to)
}

#[derive(Template)]
#[template(path = "console/journal.html")]
struct JournalPage {
    chrome: Option<Chrome>,
    live: bool,
    after: i64,
    csrf: String,
    hint: &'static str,
    quarantined: Vec<(i64, String, String, String)>,
    dead: Vec<(i64, String, String)>,
    notice: Option<String>,
}

/// `GET /console/journal`: quarantined and set-aside webhooks.
pub async fn journal(State(state): State<AppState>, signed: Signed, Query(n): Query<Notice>) -> Response {
    let quarantined = match admin::quarantined(&state, &signed.caller, 0, 200).await {
        Ok(q) => q,
        Err(e) => return failed(e),
    };
    let dead = match admin::dead(&state, &signed.caller, 200).await {
        Ok(d) => d.data,
        Err(e) => return failed(e),
    };
    render(JournalPage {
        chrome: chrome(&signed, "/console/events"),
        live: false,
        after: 0,
        csrf: signed.csrf.clone(),
        hint: quarantined.hint,
        quarantined: quarantined
            .data
            .into_iter()
            .map(|q| {
                (
                    q.id,
                    q.received_at,
                    q.waba_ids.join(", "),
                    q.phone_number_ids.join(", "),
                )
            })
            .collect(),
        dead: dead
            .into_iter()
            .map(|d| (d.id, d.received_at, d.error.unwrap_or_default()))
            .collect(),
        notice: n.notice.or(n.error),
    })
}

/// `POST /console/journal/release` and `POST /console/journal/{id}/requeue`.
pub async fn release(State(state): State<AppState>, signed: Signed, body: Bytes) -> Response {
    if let Err(r) = signed.check_csrf(form(&body).get("csrf").map(String::as_str)) {
        return r;
    }
    let said_done = match admin::release(&state, &signed.caller).await {
        Ok(r) => format!(
            "{} released, {} still waiting for an account",
            r.released, r.still_quarantined
        ),
        Err(e) => said(e),
    };
    see_other(&format!("/console/journal?notice={}", encode(&said_done)))
}

/// `POST /console/journal/{id}/requeue`.
pub async fn requeue(State(state): State<AppState>, signed: Signed, Path(id): Path<String>, body: Bytes) -> Response {
    if let Err(r) = signed.check_csrf(form(&body).get("csrf").map(String::as_str)) {
        return r;
    }
    let said_done = match admin::requeue(&state, &signed.caller, &id).await {
        Ok(_) => format!("{id} queued for processing again"),
        Err(e) => said(e),
    };
    see_other(&format!("/console/journal?notice={}", encode(&said_done)))
}
