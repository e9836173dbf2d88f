//! The console's list pages: templates, hooks, events, accounts, keys, audit, usage.

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use wagate_engine::EngineError;

use super::pages::{chrome, render, Chrome};
use super::Signed;
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
