//! The console's pages: each handler checks the session, calls engine operations and renders a
//! template.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde_json::json;
use wagate_engine::EngineError;

use super::{cookie, cookie_with, csrf_refused, form, see_other, set_cookie, Signed, LOGIN_COOKIE, SESSION_COOKIE};
use crate::state::AppState;

/// The header and navigation of a signed-in page.
pub(super) struct Chrome {
    pub(super) nav: Vec<NavItem>,
    pub(super) csrf: String,
    pub(super) who: String,
    pub(super) scopes: String,
}

pub(super) struct NavItem {
    pub(super) href: &'static str,
    pub(super) label: &'static str,
    pub(super) active: bool,
}

const NAV: [(&str, &str); 9] = [
    ("/console", "Overview"),
    ("/console/inbox", "Inbox"),
    ("/console/templates", "Templates"),
    ("/console/hooks", "Hooks"),
    ("/console/events", "Events"),
    ("/console/accounts", "Accounts"),
    ("/console/keys", "Keys"),
    ("/console/audit", "Audit"),
    ("/console/usage", "Usage"),
];

pub(super) fn chrome(signed: &Signed, active: &str) -> Option<Chrome> {
    let c = &signed.caller;
    let scopes = ["admin", "send", "read"]
        .iter()
        .filter(|s| c.require(s).is_ok())
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    let tenant = c.tenant.as_deref().map(|t| format!(" · {t}")).unwrap_or_default();
    Some(Chrome {
        nav: NAV
            .iter()
            .filter(|(href, _)| {
                c.require("admin").is_ok() || !matches!(*href, "/console/keys" | "/console/audit" | "/console/hooks")
            })
            .map(|(href, label)| NavItem {
                href,
                label,
                active: *href == active,
            })
            .collect(),
        csrf: signed.csrf.clone(),
        who: format!("{}{tenant}", c.key_name),
        scopes,
    })
}

/// A page that failed: the engine's message, in the page's place.
pub(super) fn failed(e: impl Into<crate::error::ApiError>) -> Response {
    let e: crate::error::ApiError = e.into();
    let page = FailedPage {
        chrome: None,
        live: false,
        after: 0,
        message: e.message.clone(),
        hint: e.hint.clone().unwrap_or_default(),
    };
    match page.render() {
        Ok(html) => (e.status, Html(html)).into_response(),
        Err(_) => (e.status, e.message.clone()).into_response(),
    }
}

#[derive(Template)]
#[template(path = "console/failed.html")]
struct FailedPage {
    chrome: Option<Chrome>,
    live: bool,
    after: i64,
    message: String,
    hint: String,
}

pub(super) fn render(t: impl Template) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => failed(EngineError::internal(format!("the page could not be rendered: {e}"))),
    }
}

// ---------- sign-in

#[derive(Template)]
#[template(path = "console/login.html")]
struct LoginPage {
    chrome: Option<Chrome>,
    live: bool,
    after: i64,
    csrf: String,
    error: Option<String>,
    /// Sign-in with the identity provider is offered.
    idp: bool,
}

/// `GET /console/login`: the sign-in form, with its own CSRF token (a cookie and a field).
pub async fn login_form(State(state): State<AppState>) -> Response {
    login_page(&state, None, StatusCode::OK)
}

fn login_page(state: &AppState, error: Option<String>, status: StatusCode) -> Response {
    let token = wagate_core::ids::secret("login_", 16);
    let page = LoginPage {
        chrome: None,
        live: false,
        after: 0,
        csrf: token.clone(),
        error,
        idp: state.config.auth.jwt.enabled(),
    };
    let mut response = render(page);
    *response.status_mut() = status;
    response
        .headers_mut()
        .append(header::SET_COOKIE, set_cookie(state, LOGIN_COOKIE, &token, 1800));
    response
}

/// `POST /console/login`: an API key in, a session cookie out.
pub async fn login(State(state): State<AppState>, request: axum::extract::Request) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, 16 * 1024).await else {
        return login_page(&state, Some("The form is too large.".into()), StatusCode::BAD_REQUEST);
    };
    let fields = form(&body);
    let expected = cookie(&parts, LOGIN_COOKIE).unwrap_or_default();
    let given = fields.get("csrf").map(String::as_str).unwrap_or_default();
    if expected.is_empty() || !wagate_core::signature::constant_time_eq(given, expected) {
        return csrf_refused();
    }
    let address = crate::extract::remote(&parts).unwrap_or_else(|| "unknown".into());
    let key = fields.get("api_key").map(String::as_str).unwrap_or_default();
    match wagate_engine::auth::signin::sign_in(&state, key, &address).await {
        Ok((id, _, caller)) => {
            let details = json!({"via": "console"});
            wagate_engine::audit::record(&state, &caller, "console.signed_in", None, None, details).await;
            let max_age = state.config.console.session_hours as i64 * 3600;
            let mut response = Redirect::to("/console").into_response();
            *response.status_mut() = StatusCode::SEE_OTHER;
            let h = response.headers_mut();
            h.append(header::SET_COOKIE, set_cookie(&state, SESSION_COOKIE, &id, max_age));
            h.append(header::SET_COOKIE, set_cookie(&state, LOGIN_COOKIE, "", 0));
            response
        }
        Err(e) => {
            let status = crate::error::status_of(e.kind);
            let message = match status {
                StatusCode::UNAUTHORIZED => "That API key does not work (unknown, revoked or expired).".to_string(),
                _ => e.message.clone() + &e.hint.map(|h| format!(" ({h})")).unwrap_or_default(),
            };
            login_page(&state, Some(message), status)
        }
    }
}

/// `POST /console/logout`.
pub async fn logout(State(state): State<AppState>, signed: Signed, body: Bytes) -> Response {
    if let Err(r) = signed.check_csrf(form(&body).get("csrf").map(String::as_str)) {
        return r;
    }
    if let Err(e) = wagate_engine::auth::signin::sign_out(&state, &signed.session_id).await {
        return failed(e);
    }
    let mut response = see_other("/console/login");
    response
        .headers_mut()
        .append(header::SET_COOKIE, set_cookie(&state, SESSION_COOKIE, "", 0));
    response
}

// ---------- overview

/// An account as the overview and the accounts page show it.
pub(super) struct AccountCard {
    pub(super) name: String,
    pub(super) waba_id: String,
    pub(super) numbers: String,
    pub(super) rate: String,
    pub(super) managed_by: String,
    pub(super) tenant: Option<String>,
    pub(super) webhook_path: String,
    pub(super) paused: bool,
    pub(super) pause_reason: Option<String>,
    /// Just connected (the accounts page marks it).
    pub(super) highlight: bool,
}

impl AccountCard {
    pub(super) fn of(a: wagate_engine::accounts::ops::AccountView) -> Self {
        Self {
            numbers: a.phone_number_ids.join(", "),
            rate: match a.messages_per_second {
                0 => "no limit".into(),
                n => format!("{n} messages/s per number"),
            },
            paused: a.paused.is_some(),
            pause_reason: a.paused.map(|p| format!("{} — {}", p.reason, p.hint)),
            name: a.name,
            waba_id: a.waba_id,
            managed_by: a.managed_by,
            tenant: a.tenant,
            webhook_path: a.webhook_path,
            highlight: false,
        }
    }
}

struct HookRow {
    id: String,
    url: String,
    events: String,
    enabled: bool,
    reason: String,
    /// Since when every attempt has failed, if they do.
    failing_since: Option<String>,
    pending: i64,
}

#[derive(Template)]
#[template(path = "console/overview.html")]
struct OverviewPage {
    chrome: Option<Chrome>,
    live: bool,
    after: i64,
    accounts: Vec<AccountCard>,
    hooks: Vec<HookRow>,
    chart: String,
    legend: Vec<(&'static str, &'static str, i64)>,
    /// The journal's state, for an operator of every account.
    journal: Option<String>,
    failures: Vec<wagate_engine::activity::FailureGroup>,
    numbers: Vec<NumberLine>,
}

/// A number on the overview, as Meta last described it.
struct NumberLine {
    account: String,
    number: String,
    name: String,
    quality: String,
    throughput: String,
    limit: String,
    name_status: String,
    token: String,
    /// Quality yellow or red, a display name not approved, or a token that expires within a week.
    attention: bool,
    /// Never read from Meta (a configured number): the doctor's page reads it.
    unread: bool,
}

fn number_lines(known: Vec<wagate_engine::accounts::ops::KnownNumbers>) -> Vec<NumberLine> {
    let now_s = wagate_engine::now_ms() / 1000;
    let mut lines = Vec::new();
    for k in known {
        let (token, token_soon) = match k.token_expires_at {
            None => ("not checked yet (Health checks it)".to_string(), false),
            Some(None) => ("never expires".to_string(), false),
            Some(Some(at)) => {
                let days = (at - now_s) / 86_400;
                (format!("expires in {days} day(s)"), days < 7)
            }
        };
        for n in k.numbers {
            let or_unknown = |v: Option<String>| v.unwrap_or_else(|| "—".into());
            let quality = or_unknown(n.quality_rating);
            let name_status = or_unknown(n.name_status);
            lines.push(NumberLine {
                unread: n.synced_at.is_none(),
                attention: token_soon
                    || ["YELLOW", "RED"].contains(&quality.as_str())
                    || !["APPROVED", "AVAILABLE_WITHOUT_REVIEW", "—"].contains(&name_status.as_str()),
                account: k.account.clone(),
                number: n.display_phone_number.unwrap_or(n.phone_number_id),
                name: or_unknown(n.verified_name),
                throughput: or_unknown(n.throughput),
                limit: or_unknown(n.messaging_limit).replace("TIER_", ""),
                quality,
                name_status,
                token: token.clone(),
            });
        }
    }
    lines
}

/// `GET /console`: the accounts and their state, and the hooks.
pub async fn overview(State(state): State<AppState>, signed: Signed) -> Response {
    // The log's position before anything is read: what is written after, the page follows.
    let after = wagate_engine::events::ops::cursor(&state).await.unwrap_or(0);
    let accounts = match wagate_engine::accounts::ops::list(&state, &signed.caller) {
        Ok(list) => list.data,
        Err(e) => return failed(e),
    };
    let mut hooks = match signed.caller.require("admin") {
        Ok(()) => wagate_engine::hooks::ops::list(&state, &signed.caller)
            .await
            .map(|l| l.data)
            .unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    // Each hook with its health (failing since, backlog).
    for h in hooks.iter_mut() {
        let id = wagate_store::HookId::from(h.id.as_str());
        if let Ok(full) = wagate_engine::hooks::ops::get(&state, &signed.caller, &id).await {
            *h = full;
        }
    }
    // The journal: how far behind processing is, and what waits in quarantine (an operator's).
    let journal = match signed.caller.require_global("admin") {
        Ok(()) => {
            let (_, ready) = wagate_engine::readiness::check(&state).await;
            let behind = ready
                .pointer("/journal/oldest_pending_age_seconds")
                .and_then(serde_json::Value::as_f64)
                .unwrap_or(0.0);
            let quarantined = wagate_engine::inbound::admin::quarantined(&state, &signed.caller, 0, 500)
                .await
                .map(|q| q.data.len())
                .unwrap_or(0);
            Some(format!(
                "processing is {behind:.0} s behind; {quarantined} webhook(s) in quarantine"
            ))
        }
        Err(_) => None,
    };
    let activity = match wagate_engine::activity::count::last_day(&state, &signed.caller).await {
        Ok(a) => a,
        Err(e) => return failed(e),
    };
    let numbers = match wagate_engine::accounts::ops::known_numbers(&state, &signed.caller).await {
        Ok(known) => number_lines(known),
        Err(e) => return failed(e),
    };
    render(OverviewPage {
        chart: super::chart::svg(&activity.hours),
        legend: super::chart::legend(&activity.hours),
        failures: activity.failures,
        numbers,
        chrome: chrome(&signed, "/console"),
        live: true,
        after,
        accounts: accounts.into_iter().map(AccountCard::of).collect(),
        hooks: hooks
            .into_iter()
            .map(|h| {
                let health = h.health.clone().unwrap_or(serde_json::Value::Null);
                HookRow {
                    events: match h.events.is_empty() {
                        true => "every event".into(),
                        false => h.events.join(", "),
                    },
                    failing_since: health["failing_since"].as_str().map(str::to_string),
                    pending: health["pending"].as_i64().unwrap_or(0),
                    id: h.id,
                    url: h.url,
                    enabled: h.enabled,
                    reason: h.disabled_reason.unwrap_or_default(),
                }
            })
            .collect(),
        journal,
    })
}

#[derive(serde::Deserialize, Default)]
pub struct LiveQuery {
    after: Option<i64>,
}

/// `GET /console/live?after=…`: a `change` event whenever the event log moves for this caller
/// after the page's own cursor (the page then fetches itself again).
pub async fn live(State(state): State<AppState>, signed: Signed, Query(q): Query<LiveQuery>) -> Response {
    let query = wagate_engine::events::ops::EventQuery::default();
    let tail = match wagate_engine::events::ops::tail(&state, &signed.caller, &query, q.after).await {
        Ok(t) => t,
        Err(e) => return failed(e),
    };
    let events = futures_util::stream::unfold(tail, |mut tail| async move {
        let view = tail.next().await;
        let item = SseEvent::default().event("change").data(view.event_type);
        Some((Ok::<_, std::convert::Infallible>(item), tail))
    });
    Sse::new(events).keep_alive(KeepAlive::default()).into_response()
}

// ---------- assets

/// `GET /console/assets/console.css`.
pub async fn css() -> Response {
    asset("text/css; charset=utf-8", include_str!("../../assets/console.css"))
}

/// `GET /console/assets/console.js`.
pub async fn js() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("../../assets/console.js"),
    )
}

fn asset(content_type: &'static str, text: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        text,
    )
        .into_response()
}

/// The sign-in cookie of the identity provider's flow: `state.verifier`, sent back on the
/// provider's redirect (`SameSite=Lax`: a top-level navigation from the provider's site).
const OIDC_COOKIE: &str = "wagate_oidc";

fn callback_url(state: &AppState) -> String {
    format!("{}/console/login/callback", state.public_base)
}

/// `GET /console/login/oidc`: to the identity provider's sign-in (authorization code with PKCE).
pub async fn login_oidc(State(state): State<AppState>) -> Response {
    match wagate_engine::auth::oidc::begin(&state, &callback_url(&state)).await {
        Ok(begun) => {
            let mut response = see_other(&begun.url);
            let kept = format!("{}.{}", begun.state, begun.verifier);
            let cookie = cookie_with(&state, OIDC_COOKIE, &kept, 600, "Lax");
            response.headers_mut().append(header::SET_COOKIE, cookie);
            response
        }
        Err(e) => login_page(&state, Some(super::said(e)), StatusCode::BAD_GATEWAY),
    }
}

#[derive(serde::Deserialize, Default)]
pub struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// `GET /console/login/callback`: back from the identity provider; a session, then the console
/// (through a page of ours, so that the new `SameSite=Strict` cookie goes with the next request).
pub async fn login_callback(
    State(state): State<AppState>,
    Query(q): Query<Callback>,
    request: axum::extract::Request,
) -> Response {
    let (parts, _) = request.into_parts();
    if let Some(e) = q.error {
        let said = format!(
            "The identity provider did not sign you in: {e} {}",
            q.error_description.unwrap_or_default()
        );
        return login_page(&state, Some(said), StatusCode::UNAUTHORIZED);
    }
    let kept = cookie(&parts, OIDC_COOKIE).unwrap_or_default();
    let (kept_state, verifier) = kept.split_once('.').unwrap_or(("", ""));
    let given = q.state.unwrap_or_default();
    if kept_state.is_empty() || !wagate_core::signature::constant_time_eq(kept_state, &given) {
        return csrf_refused();
    }
    let code = q.code.unwrap_or_default();
    let outcome = wagate_engine::auth::oidc::finish(&state, &code, verifier, &callback_url(&state)).await;
    let (token, caller) = match outcome {
        Ok(done) => done,
        Err(e) => return login_page(&state, Some(super::said(e)), StatusCode::UNAUTHORIZED),
    };
    let (id, _) = match wagate_engine::auth::signin::sign_in_with_token(&state, &token).await {
        Ok(s) => s,
        Err(e) => return failed(e),
    };
    let details = json!({"via": "console", "with": "identity provider"});
    wagate_engine::audit::record(&state, &caller, "console.signed_in", None, None, details).await;
    let page = "<!doctype html><title>Signed in</title><meta http-equiv=\"refresh\" content=\"0; url=/console\"><p><a href=\"/console\">Continue to the console</a></p>";
    let mut response = Html(page).into_response();
    let max_age = state.config.console.session_hours as i64 * 3600;
    let h = response.headers_mut();
    h.append(header::SET_COOKIE, set_cookie(&state, SESSION_COOKIE, &id, max_age));
    h.append(header::SET_COOKIE, cookie_with(&state, OIDC_COOKIE, "", 0, "Lax"));
    response
}
