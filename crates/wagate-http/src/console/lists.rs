//! The console's list pages: templates, hooks, events, accounts, keys, audit, usage.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use wagate_engine::EngineError;

use super::pages::{chrome, render, Chrome};
use super::{encode, see_other, Signed};
use crate::state::AppState;

struct Row {
    id: Option<String>,
    cells: Vec<String>,
}

#[derive(Template)]
#[template(path = "console/table.html")]
struct TablePage {
    chrome: Option<Chrome>,
    live: bool,
    after: i64,
    title: &'static str,
    note: Option<String>,
    error: Option<String>,
    headers: Vec<&'static str>,
    rows: Vec<Row>,
    /// A form above the table: where it posts, and its button.
    action: Option<(String, &'static str)>,
    csrf: String,
}

fn table(
    signed: &Signed,
    href: &str,
    title: &'static str,
    headers: Vec<&'static str>,
    rows: Result<Vec<Row>, EngineError>,
    action: Option<(String, &'static str)>,
    note: Option<String>,
) -> Response {
    let (rows, error) = match rows {
        Ok(rows) => (rows, None),
        Err(e) => (
            Vec::new(),
            Some(e.message.clone() + &e.hint.map(|h| format!(" ({h})")).unwrap_or_default()),
        ),
    };
    render(TablePage {
        chrome: chrome(signed, href),
        live: false,
        after: 0,
        title,
        note,
        error,
        headers,
        rows,
        action,
        csrf: signed.csrf.clone(),
    })
}

fn row(cells: Vec<String>) -> Row {
    Row { id: None, cells }
}

#[derive(serde::Deserialize, Default)]
pub struct AccountParam {
    account: Option<String>,
    synced: Option<String>,
    error: Option<String>,
}

/// `GET /console/templates`: the catalog of an account (`?account=`, default the caller's).
pub async fn templates(State(state): State<AppState>, signed: Signed, Query(q): Query<AccountParam>) -> Response {
    let rows = wagate_engine::sending::catalog::list(&state, &signed.caller, q.account.as_deref())
        .await
        .map(|page| {
            page.data
                .into_iter()
                .map(|t| {
                    row(vec![
                        t.name,
                        t.language,
                        t.status,
                        t.category.unwrap_or_default(),
                        t.quality_score.unwrap_or_default(),
                        t.account,
                    ])
                })
                .collect()
        });
    table(
        &signed,
        "/console/templates",
        "Templates",
        vec!["Name", "Language", "Status", "Category", "Quality", "Account"],
        rows,
        signed.caller.require("admin").ok().map(|_| {
            let account = q
                .account
                .as_deref()
                .map(|a| format!("?account={}", encode(a)))
                .unwrap_or_default();
            (format!("/console/templates/sync{account}"), "Sync from Meta")
        }),
        q.synced.map(|n| format!("{n} templates synced from Meta")).or(q.error),
    )
}

/// `POST /console/templates/sync?account=…`: the catalog, read again from Meta.
pub async fn sync_templates(
    State(state): State<AppState>,
    signed: Signed,
    Query(q): Query<AccountParam>,
    body: axum::body::Bytes,
) -> Response {
    if let Err(r) = signed.check_csrf(super::form(&body).get("csrf").map(String::as_str)) {
        return r;
    }
    let account = q
        .account
        .as_deref()
        .map(|a| format!("&account={}", encode(a)))
        .unwrap_or_default();
    let to = match wagate_engine::sending::catalog::sync(&state, &signed.caller, q.account.as_deref()).await {
        Ok(done) => format!("/console/templates?synced={}{account}", done["synced"]),
        Err(e) => format!("/console/templates?error={}{account}", encode(&e.message)),
    };
    see_other(&to)
}

/// `GET /console/events`: the newest events of the log.
pub async fn events(State(state): State<AppState>, signed: Signed) -> Response {
    let query = wagate_engine::events::ops::EventQuery::default();
    let rows = wagate_engine::events::ops::list(&state, &signed.caller, &query, 500, None)
        .await
        .map(|(page, _)| {
            page.data
                .into_iter()
                .rev()
                .take(100)
                .map(|e| {
                    row(vec![
                        e.sequence.to_string(),
                        e.event_type,
                        e.account.unwrap_or_default(),
                        e.occurred_at,
                        e.payload.to_string(),
                    ])
                })
                .collect()
        });
    table(
        &signed,
        "/console/events",
        "Events",
        vec!["#", "Type", "Account", "When", "Payload"],
        rows,
        None,
        None,
    )
}

/// `GET /console/audit`.
pub async fn audit(State(state): State<AppState>, signed: Signed) -> Response {
    let rows = wagate_engine::audit::list(&state, &signed.caller, None, None, 100)
        .await
        .map(|list| {
            list.data
                .into_iter()
                .map(|a| {
                    row(vec![
                        a.at,
                        a.action,
                        a.actor_name.unwrap_or(a.actor),
                        a.target.unwrap_or_default(),
                        a.account.unwrap_or_default(),
                        a.remote.unwrap_or_default(),
                    ])
                })
                .collect()
        });
    table(
        &signed,
        "/console/audit",
        "Audit log",
        vec!["When", "Action", "Who", "Target", "Account", "From"],
        rows,
        None,
        None,
    )
}

/// `GET /console/usage`: reserved for usage and costs.
pub async fn usage(signed: Signed) -> Response {
    render(TablePage {
        chrome: chrome(&signed, "/console/usage"),
        live: false,
        after: 0,
        title: "Usage and costs",
        note: Some("Usage and cost per account, number and tenant come with the usage work; until then, Meta's pricing of each message is in its status events (pricing).".into()),
        error: None,
        headers: vec!["Day", "Account", "Category", "Messages", "Estimated cost"],
        rows: Vec::new(),
        action: None,
        csrf: signed.csrf.clone(),
    })
}
