//! The console's accounts: each with its state, pause and resume, and "Connect WhatsApp", which
//! runs Meta's dialog and lands back here on the new account.

use std::collections::HashMap;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use wagate_engine::accounts::ops::{self, PauseRequest};
use wagate_engine::EngineError;

use super::pages::{chrome, failed, render, AccountCard, Chrome};
use super::{encode, form, said, see_other, Signed};
use crate::state::AppState;

#[derive(Template)]
#[template(path = "console/accounts.html")]
struct AccountsPage {
    chrome: Option<Chrome>,
    live: bool,
    after: i64,
    csrf: String,
    accounts: Vec<AccountCard>,
    may_admin: bool,
    may_connect: bool,
    own_tenant: Option<String>,
    notice: Option<String>,
    error: Option<String>,
}

#[derive(serde::Deserialize, Default)]
pub struct AccountsQuery {
    /// Where "Connect WhatsApp" landed: the new account…
    account: Option<String>,
    /// …or why it did not finish.
    error: Option<String>,
    error_description: Option<String>,
    notice: Option<String>,
}

/// `GET /console/accounts` (Connect WhatsApp lands here too).
pub async fn list(State(state): State<AppState>, signed: Signed, Query(q): Query<AccountsQuery>) -> Response {
    let accounts = match ops::list(&state, &signed.caller) {
        Ok(l) => l.data,
        Err(e) => return failed(e),
    };
    let caller = &signed.caller;
    let notice = match &q.account {
        Some(a) => Some(format!("Connected: the account {a} is ready.")),
        None => q.notice.clone(),
    };
    let error = q.error.as_ref().map(|code| match &q.error_description {
        Some(d) => format!("Connect WhatsApp did not finish ({code}): {d}"),
        None => format!("Connect WhatsApp did not finish ({code})"),
    });
    render(AccountsPage {
        chrome: chrome(&signed, "/console/accounts"),
        live: false,
        after: 0,
        csrf: signed.csrf.clone(),
        may_admin: caller.require("admin").is_ok(),
        may_connect: caller.require("admin").is_ok()
            && caller.account_id.is_none()
            && !state.config.meta.app_id.is_empty(),
        own_tenant: caller.tenant.clone(),
        accounts: accounts
            .into_iter()
            .map(|a| AccountCard {
                highlight: q.account.as_deref() == Some(a.name.as_str()),
                ..AccountCard::of(a)
            })
            .collect(),
        notice,
        error,
    })
}

/// `POST /console/accounts/connect`: starts Meta's dialog; the browser comes back to the
/// accounts page.
pub async fn connect(State(state): State<AppState>, signed: Signed, body: Bytes) -> Response {
    let f = form(&body);
    if let Err(r) = signed.check_csrf(f.get("csrf").map(String::as_str)) {
        return r;
    }
    let mut q: HashMap<String, String> = HashMap::new();
    q.insert("redirect".into(), format!("{}/console/accounts", state.public_base));
    for k in ["tenant", "pin"] {
        if let Some(v) = f.get(k).filter(|v| !v.trim().is_empty()) {
            q.insert(k.into(), v.trim().to_string());
        }
    }
    match wagate_engine::accounts::connect::start(&state, &signed.caller, &q).await {
        Ok(started) => see_other(&started.url),
        Err(e) => see_other(&{
            let code = e.code;
            format!("/console/accounts?error={code}&error_description={}", encode(&said(e)))
        }),
    }
}

/// `POST /console/accounts/{name}/{pause|resume}`.
pub async fn act(
    State(state): State<AppState>,
    signed: Signed,
    Path((name, action)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let f = form(&body);
    if let Err(r) = signed.check_csrf(f.get("csrf").map(String::as_str)) {
        return r;
    }
    let caller = &signed.caller;
    let account = match ops::found(&state, caller, &name) {
        Ok(a) => a,
        Err(e) => return failed(e),
    };
    let outcome = match action.as_str() {
        "pause" => {
            let request = PauseRequest {
                reason: Some("paused from the console".into()),
            };
            ops::pause(&state, caller, &account, request).await.map(|_| "paused")
        }
        "resume" => ops::resume(&state, caller, &account).await.map(|_| "resumed"),
        _ => return failed(EngineError::not_found("account action", &action)),
    };
    match outcome {
        Ok(done) => see_other(&format!(
            "/console/accounts?notice={}",
            encode(&format!("{name}: sending {done}"))
        )),
        Err(e) => see_other(&{
            let code = e.code;
            format!("/console/accounts?error={code}&error_description={}", encode(&said(e)))
        }),
    }
}

struct CheckLine {
    name: &'static str,
    ok: bool,
    detail: String,
    fix: String,
}

#[derive(Template)]
#[template(path = "console/health.html")]
struct HealthPage {
    chrome: Option<Chrome>,
    live: bool,
    after: i64,
    csrf: String,
    account: String,
    ok: bool,
    checks: Vec<CheckLine>,
    may_fix: bool,
}

async fn health_page(state: &AppState, signed: &Signed, name: &str, fix: bool) -> Response {
    let caller = &signed.caller;
    let account = match ops::found(state, caller, name) {
        Ok(a) => a,
        Err(e) => return failed(e),
    };
    let health = match ops::health(state, caller, &account, fix).await {
        Ok(h) => h,
        Err(e) => return failed(e),
    };
    render(HealthPage {
        chrome: chrome(signed, "/console/accounts"),
        live: false,
        after: 0,
        csrf: signed.csrf.clone(),
        account: account.name.clone(),
        ok: health.ok,
        checks: health
            .checks
            .into_iter()
            .map(|c| CheckLine {
                name: c.name,
                ok: c.ok,
                detail: c.detail,
                fix: c.fix.unwrap_or_default(),
            })
            .collect(),
        may_fix: caller.require("admin").is_ok(),
    })
}

/// `GET /console/accounts/{name}/health`: the doctor's checks, each with its fix.
pub async fn health(State(state): State<AppState>, signed: Signed, Path(name): Path<String>) -> Response {
    health_page(&state, &signed, &name, false).await
}

/// `POST /console/accounts/{name}/fix`: the same checks, fixing what can be fixed from here.
pub async fn fix(State(state): State<AppState>, signed: Signed, Path(name): Path<String>, body: Bytes) -> Response {
    if let Err(r) = signed.check_csrf(form(&body).get("csrf").map(String::as_str)) {
        return r;
    }
    health_page(&state, &signed, &name, true).await
}
