//! The console's audit log, filtered by action and account, newest first.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;

use super::pages::{chrome, render, Chrome};
use super::{encode, said, Signed};
use crate::state::AppState;

struct AuditLine {
    at: String,
    action: String,
    who: String,
    target: String,
    account: String,
    remote: String,
    details: String,
}

#[derive(Template)]
#[template(path = "console/audit.html")]
struct AuditPage {
    chrome: Option<Chrome>,
    live: bool,
    after: i64,
    action: String,
    account: String,
    entries: Vec<AuditLine>,
    older: Option<String>,
    error: Option<String>,
}

#[derive(serde::Deserialize, Default)]
pub struct AuditParams {
    action: Option<String>,
    account: Option<String>,
    before: Option<i64>,
}

/// `GET /console/audit`: newest first, filtered by action (a prefix) and account.
pub async fn audit(State(state): State<AppState>, signed: Signed, Query(p): Query<AuditParams>) -> Response {
    let filter = wagate_engine::audit::AuditFilter {
        action: p.action.clone().filter(|a| !a.is_empty()),
        account: p.account.clone().filter(|a| !a.is_empty()),
        before: p.before,
    };
    let (entries, older, error) = match wagate_engine::audit::list(&state, &signed.caller, &filter, 100).await {
        Ok(list) => {
            let older = list.next_before.map(|b| {
                format!(
                    "/console/audit?action={}&account={}&before={b}",
                    encode(p.action.as_deref().unwrap_or_default()),
                    encode(p.account.as_deref().unwrap_or_default())
                )
            });
            let entries = list
                .data
                .into_iter()
                .map(|a| AuditLine {
                    at: a.at.get(..19).unwrap_or_default().replace('T', " "),
                    action: a.action,
                    who: a.actor_name.unwrap_or(a.actor),
                    target: a.target.unwrap_or_default(),
                    account: a.account.unwrap_or_default(),
                    remote: a.remote.unwrap_or_default(),
                    details: match &a.details {
                        serde_json::Value::Object(o) if o.is_empty() => String::new(),
                        d => d.to_string().chars().take(200).collect(),
                    },
                })
                .collect();
            (entries, older, None)
        }
        Err(e) => (Vec::new(), None, Some(said(e))),
    };
    render(AuditPage {
        chrome: chrome(&signed, "/console/audit"),
        live: false,
        after: 0,
        action: p.action.unwrap_or_default(),
        account: p.account.unwrap_or_default(),
        entries,
        older,
        error,
    })
}
