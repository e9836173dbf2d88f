//! The console's list pages: templates, hooks, events, accounts, keys, audit, usage.

use askama::Template;
use axum::extract::{Query, State};
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
}

fn table(
    signed: &Signed,
    href: &str,
    title: &'static str,
    headers: Vec<&'static str>,
    rows: Result<Vec<Row>, EngineError>,
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
        note: None,
        error,
        headers,
        rows,
    })
}

fn row(cells: Vec<String>) -> Row {
    Row { id: None, cells }
}

#[derive(serde::Deserialize, Default)]
pub struct AccountParam {
    account: Option<String>,
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
    )
}

/// `GET /console/hooks`.
pub async fn hooks(State(state): State<AppState>, signed: Signed) -> Response {
    let rows = wagate_engine::hooks::ops::list(&state, &signed.caller)
        .await
        .map(|list| {
            list.data
                .into_iter()
                .map(|h| {
                    row(vec![
                        h.url,
                        h.format,
                        if h.events.is_empty() {
                            "every event".into()
                        } else {
                            h.events.join(", ")
                        },
                        if h.enabled {
                            "on".into()
                        } else {
                            format!("off: {}", h.disabled_reason.unwrap_or_default())
                        },
                        h.created_at,
                    ])
                })
                .collect()
        });
    table(
        &signed,
        "/console/hooks",
        "Hooks",
        vec!["URL", "Format", "Events", "State", "Created"],
        rows,
    )
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
    )
}

/// `GET /console/accounts`.
pub async fn accounts(State(state): State<AppState>, signed: Signed) -> Response {
    let rows = wagate_engine::accounts::ops::list(&state, &signed.caller).map(|list| {
        list.data
            .into_iter()
            .map(|a| Row {
                id: Some(a.name.clone()),
                cells: vec![
                    a.name,
                    a.waba_id,
                    a.phone_number_ids.join(", "),
                    a.managed_by,
                    a.tenant.unwrap_or_default(),
                    a.paused
                        .map(|p| format!("paused: {}", p.reason))
                        .unwrap_or_else(|| "sending".into()),
                    a.webhook_path,
                ],
            })
            .collect()
    });
    table(
        &signed,
        "/console/accounts",
        "Accounts",
        vec![
            "Name",
            "WABA",
            "Numbers",
            "Managed by",
            "Tenant",
            "State",
            "Webhook path",
        ],
        rows,
    )
}

/// `GET /console/keys`.
pub async fn keys(State(state): State<AppState>, signed: Signed) -> Response {
    let rows = wagate_engine::auth::keys::list(&state, &signed.caller)
        .await
        .map(|list| {
            list.data
                .into_iter()
                .map(|k| {
                    row(vec![
                        k.name,
                        format!("{}…", k.prefix),
                        k.scopes.join(", "),
                        k.account.unwrap_or_else(|| "every account".into()),
                        k.state.to_string(),
                        k.last_used_at.unwrap_or_else(|| "never".into()),
                        k.expires_at.unwrap_or_default(),
                    ])
                })
                .collect()
        });
    table(
        &signed,
        "/console/keys",
        "API keys",
        vec!["Name", "Key", "Scopes", "Account", "State", "Last used", "Expires"],
        rows,
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
    })
}
