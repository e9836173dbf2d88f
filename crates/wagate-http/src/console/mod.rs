//! The console under `/console`: server-rendered pages (askama templates compiled into the
//! binary, with their CSS and JavaScript) over the same engine operations as the JSON API. A
//! browser signs in with an API key, which becomes a session kept on the server behind an
//! `HttpOnly; SameSite=Strict` cookie; every form carries the session's CSRF token; every answer
//! carries a CSP without inline script, `X-Frame-Options: DENY` and `Referrer-Policy:
//! same-origin`. Pages work without JavaScript; `console.js` only keeps them live (over the
//! event log's stream).

mod accounts;
mod audit;
mod bubbles;
mod chart;
mod events;
mod hooks;
mod inbox;
mod keys;
mod pages;
mod templates;
mod usage;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use wagate_engine::auth::Caller;

use crate::state::AppState;

/// The session cookie.
const SESSION_COOKIE: &str = "wagate_session";
/// The sign-in form's own CSRF cookie (before there is a session).
const LOGIN_COOKIE: &str = "wagate_login";

/// Every console route (when `console.enabled`).
fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/console") }))
        .route("/console", get(pages::overview))
        .route("/console/", get(|| async { Redirect::to("/console") }))
        .route("/console/login", get(pages::login_form).post(pages::login))
        .route("/console/login/oidc", get(pages::login_oidc))
        .route("/console/login/callback", get(pages::login_callback))
        .route("/console/logout", post(pages::logout))
        .route("/console/inbox", get(inbox::inbox))
        .route("/console/inbox/new", get(inbox::new_conversation))
        .route("/console/inbox/{contact}", get(inbox::thread))
        .route("/console/inbox/{contact}/send", post(inbox::send))
        .route("/console/inbox/{contact}/read", post(inbox::mark_read))
        .route("/console/media/{id}", get(inbox::media))
        .route("/console/templates", get(templates::list).post(templates::create))
        .route("/console/templates/sync", post(templates::sync))
        .route("/console/templates/{name}/delete", post(templates::delete))
        .route("/console/hooks", get(hooks::list).post(hooks::create))
        .route("/console/hooks/{id}", get(hooks::one))
        .route("/console/hooks/{id}/{action}", post(hooks::act))
        .route("/console/events", get(events::list))
        .route("/console/events/{id}", get(events::one))
        .route("/console/events/{id}/replay", post(events::replay))
        .route("/console/journal", get(events::journal))
        .route("/console/journal/release", post(events::release))
        .route("/console/journal/{id}/requeue", post(events::requeue))
        .route("/console/accounts", get(accounts::list))
        .route("/console/accounts/connect", post(accounts::connect))
        .route("/console/accounts/{name}/health", get(accounts::health))
        .route("/console/accounts/{name}/fix", post(accounts::fix))
        .route("/console/accounts/{name}/{action}", post(accounts::act))
        .route("/console/keys", get(keys::list).post(keys::create))
        .route("/console/keys/{id}/revoke", post(keys::revoke))
        .route("/console/keys/{id}/rotate", post(keys::rotate))
        .route("/console/audit", get(audit::audit))
        .route("/console/usage", get(usage::page))
        .route("/console/usage/rates", post(usage::load_card))
        .route("/console/usage/budget", post(usage::set_budget))
        .route("/console/usage/reconcile", post(usage::reconcile_now))
        .route("/console/live", get(pages::live))
        .route("/docs", get(crate::docs::page))
        .route("/console/assets/console.css", get(pages::css))
        .route("/console/assets/console.js", get(pages::js))
}

/// The console's routes with their security headers.
pub fn with_headers(state: &AppState) -> Router<AppState> {
    routes().layer(axum::middleware::from_fn_with_state(state.clone(), security_headers))
}

/// The headers every console answer carries. Forms post to the console only, and to Meta's
/// dialog (where "Connect WhatsApp" sends the browser).
async fn security_headers(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let dialog = url::Url::parse(&state.config.meta.dialog_url)
        .ok()
        .map(|u| u.origin().ascii_serialization())
        .filter(|o| o != "null")
        .unwrap_or_default();
    let csp = format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'self' {dialog}; base-uri 'none'; object-src 'none'"
    );
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(csp.trim()) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    let set = |h: &mut axum::http::HeaderMap, k: header::HeaderName, v: &'static str| {
        h.insert(k, HeaderValue::from_static(v));
    };
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(h, header::REFERRER_POLICY, "same-origin");
    if !h.contains_key(header::CACHE_CONTROL) {
        set(h, header::CACHE_CONTROL, "no-store");
    }
    response
}

/// A cookie's value from the request.
fn cookie<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value for the console: `HttpOnly; SameSite=Strict; Path=/console`, and `Secure`
/// when the gateway is reached over https.
fn set_cookie(state: &AppState, name: &str, value: &str, max_age_seconds: i64) -> HeaderValue {
    cookie_with(state, name, value, max_age_seconds, "Strict")
}

/// The same with another `SameSite` (`Lax` for what must come back on a top-level navigation
/// from another site, as the identity provider's redirect).
fn cookie_with(state: &AppState, name: &str, value: &str, max_age_seconds: i64, same_site: &str) -> HeaderValue {
    let secure = match state.public_base.starts_with("https://") {
        true => "; Secure",
        false => "",
    };
    let text =
        format!("{name}={value}; HttpOnly; SameSite={same_site}; Path=/console; Max-Age={max_age_seconds}{secure}");
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("wagate_session=; Max-Age=0"))
}

/// A signed-in browser: the caller its session stands for.
pub struct Signed {
    pub caller: Caller,
    pub session_id: String,
    pub csrf: String,
}

impl FromRequestParts<AppState> for Signed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let to_login = || Redirect::to("/console/login").into_response();
        let Some(id) = cookie(parts, SESSION_COOKIE).filter(|v| !v.is_empty()) else {
            return Err(to_login());
        };
        match wagate_engine::auth::signin::session_caller(state, id).await {
            Ok((mut caller, session)) => {
                caller.remote = crate::extract::remote(parts);
                Ok(Signed {
                    caller,
                    session_id: id.to_string(),
                    csrf: session.csrf,
                })
            }
            Err(_) => Err(to_login()),
        }
    }
}

impl Signed {
    /// Refuses a form whose CSRF token is not this session's.
    fn check_csrf(&self, given: Option<&str>) -> Result<(), Response> {
        match given.is_some_and(|g| wagate_core::signature::constant_time_eq(g, &self.csrf)) {
            true => Ok(()),
            false => Err(csrf_refused()),
        }
    }
}

/// The answer to a form without the right CSRF token.
fn csrf_refused() -> Response {
    (
        StatusCode::FORBIDDEN,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        "<!doctype html><title>Refused</title><h1>This form is not valid</h1><p>It was not sent from this console session (its CSRF token does not match). Reload the page and try again.</p>",
    )
        .into_response()
}

/// A form body's fields.
fn form(body: &[u8]) -> std::collections::HashMap<String, String> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

/// A redirect after a form (303: the browser asks with GET).
fn see_other(to: &str) -> Response {
    let mut response = Redirect::to(to).into_response();
    *response.status_mut() = StatusCode::SEE_OTHER;
    response
}

/// The engine's refusal, as a sentence with its hint.
fn said(e: wagate_engine::EngineError) -> String {
    e.message + &e.hint.map(|h| format!(" ({h})")).unwrap_or_default()
}

/// A value for a query string.
fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A comma-separated form field as a list (empty: none).
fn comma_list(v: Option<&String>) -> Vec<String> {
    v.map(String::as_str)
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}
