//! The console's API keys: the list, a new key (shown once) and revoking one.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use wagate_engine::auth::keys::{self, KeyRequest};

use super::pages::{chrome, failed, render, Chrome};
use super::{encode, form, said, see_other, Signed};
use crate::state::AppState;

struct KeyLine {
    id: String,
    name: String,
    prefix: String,
    scopes: String,
    account: String,
    tenant: String,
    created: String,
    state: &'static str,
    last_used: String,
    expires: String,
}

#[derive(Template)]
#[template(path = "console/keys.html")]
struct KeysPage {
    chrome: Option<Chrome>,
    live: bool,
    after: i64,
    csrf: String,
    keys: Vec<KeyLine>,
    new_key: Option<String>,
    notice: Option<String>,
    error: Option<String>,
}

#[derive(serde::Deserialize, Default)]
pub struct KeysQuery {
    notice: Option<String>,
    error: Option<String>,
}

async fn page(state: &AppState, signed: &Signed, new_key: Option<String>, q: KeysQuery) -> Response {
    let listed = match keys::list(state, &signed.caller).await {
        Ok(l) => l.data,
        Err(e) => return failed(e),
    };
    render(KeysPage {
        chrome: chrome(signed, "/console/keys"),
        live: false,
        after: 0,
        csrf: signed.csrf.clone(),
        keys: listed
            .into_iter()
            .map(|k| KeyLine {
                id: k.id,
                name: k.name,
                prefix: k.prefix,
                scopes: k.scopes.join(", "),
                account: k.account.unwrap_or_else(|| "every account".into()),
                tenant: k.tenant.unwrap_or_else(|| "every tenant".into()),
                created: minute(&k.created_at),
                state: k.state,
                last_used: k.last_used_at.as_deref().map_or_else(|| "never".into(), minute),
                expires: match (k.revoked_at.as_deref(), k.expires_at.as_deref()) {
                    (Some(at), _) => format!("revoked {}", minute(at)),
                    (None, Some(at)) => minute(at),
                    (None, None) => "never".into(),
                },
            })
            .collect(),
        new_key,
        notice: q.notice,
        error: q.error,
    })
}

/// `GET /console/keys`.
pub async fn list(State(state): State<AppState>, signed: Signed, Query(q): Query<KeysQuery>) -> Response {
    page(&state, &signed, None, q).await
}

/// `POST /console/keys`: a new key, shown on the page this once.
pub async fn create(State(state): State<AppState>, signed: Signed, body: Bytes) -> Response {
    let f = form(&body);
    if let Err(r) = signed.check_csrf(f.get("csrf").map(String::as_str)) {
        return r;
    }
    let scopes: Vec<String> = ["send", "read", "admin"]
        .iter()
        .filter(|s| f.get(&format!("scope_{s}")).is_some_and(|v| v == "true"))
        .map(|s| s.to_string())
        .collect();
    let expires_in_seconds = match f.get("expires_in_days").map(|d| d.trim()).filter(|d| !d.is_empty()) {
        None => None,
        Some(d) => match d.parse::<i64>() {
            Ok(days) => Some(days * 86_400),
            Err(_) => {
                let q = KeysQuery {
                    notice: None,
                    error: Some(format!("`{d}` is not a number of days")),
                };
                let mut r = page(&state, &signed, None, q).await;
                *r.status_mut() = StatusCode::BAD_REQUEST;
                return r;
            }
        },
    };
    let request = KeyRequest {
        name: f.get("name").cloned(),
        scopes: Some(scopes),
        account: f.get("account").cloned().filter(|a| !a.trim().is_empty()),
        expires_in_seconds,
        ..KeyRequest::default()
    };
    match keys::create(&state, &signed.caller, request).await {
        Ok(created) => page(&state, &signed, created.key, KeysQuery::default()).await,
        Err(e) => {
            let status = crate::error::status_of(e.kind);
            let q = KeysQuery {
                notice: None,
                error: Some(said(e)),
            };
            let mut r = page(&state, &signed, None, q).await;
            *r.status_mut() = status;
            r
        }
    }
}

/// A time as the lists show it: to the minute, in UTC.
fn minute(rfc3339: &str) -> String {
    rfc3339.get(..16).unwrap_or(rfc3339).replace('T', " ")
}

/// `POST /console/keys/{id}/rotate`: a new key like this one, shown this once; the old one
/// keeps working for the grace chosen (none, an hour, a day).
pub async fn rotate(State(state): State<AppState>, signed: Signed, Path(id): Path<String>, body: Bytes) -> Response {
    let f = form(&body);
    if let Err(r) = signed.check_csrf(f.get("csrf").map(String::as_str)) {
        return r;
    }
    let grace_seconds = match f.get("grace_seconds").map(|g| g.trim()).filter(|g| !g.is_empty()) {
        None => None,
        Some(g) => match g.parse::<i64>() {
            Ok(g) => Some(g),
            Err(_) => {
                let to = format!(
                    "/console/keys?error={}",
                    encode(&format!("`{g}` is not a number of seconds"))
                );
                return see_other(&to);
            }
        },
    };
    match keys::rotate(&state, &signed.caller, &id, keys::RotateRequest { grace_seconds }).await {
        Ok(created) => page(&state, &signed, created.key, KeysQuery::default()).await,
        Err(e) => see_other(&format!("/console/keys?error={}", encode(&said(e)))),
    }
}

/// `POST /console/keys/{id}/revoke`.
pub async fn revoke(State(state): State<AppState>, signed: Signed, Path(id): Path<String>, body: Bytes) -> Response {
    let f = form(&body);
    if let Err(r) = signed.check_csrf(f.get("csrf").map(String::as_str)) {
        return r;
    }
    let to = match keys::revoke(&state, &signed.caller, &id).await {
        Ok(k) => format!("/console/keys?notice={}", encode(&format!("{} is revoked", k.name))),
        Err(e) => format!("/console/keys?error={}", encode(&said(e))),
    };
    see_other(&to)
}
