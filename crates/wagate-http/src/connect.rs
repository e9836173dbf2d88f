//! "Connect WhatsApp" over HTTP: `GET /v1/connect/start` (the dialog's URL, or a redirect to it
//! for a browser) and `GET /connect/callback`, where Meta's dialog sends the browser back.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use wagate_engine::accounts::connect::{self, Landing};
use wagate_engine::auth::Caller;

use crate::error::ApiResult;
use crate::state::AppState;

/// Starts "Connect WhatsApp" for a tenant: answers with Meta's dialog URL (or `302` to it for
/// `Accept: text/html`). `redirect` is the page the browser comes back to, with `?account=…` or
/// `?error=…`; `pin` (6 digits) registers the number with it.
#[utoipa::path(get, path = "/v1/connect/start", tag = "connect",
    params(("tenant" = String, Query, description = "who the account will belong to"),
           ("redirect" = String, Query, description = "your page the browser comes back to"),
           ("pin" = Option<String>, Query, description = "a 6-digit PIN to register the number with")),
    responses((status = 200, body = wagate_engine::accounts::connect::Started), (status = 302, description = "to Meta's dialog"), (status = 400, body = crate::error::ErrorBody)),
    security(("api_key" = [])))]
pub async fn start(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    let started = connect::start(&state, &caller, &q).await?;
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    if wants_html {
        return Ok((StatusCode::FOUND, [(header::LOCATION, started.url)]).into_response());
    }
    Ok(Json(started).into_response())
}

/// `GET /connect/callback`: where Meta's dialog sends the browser back.
pub async fn callback(State(state): State<AppState>, Query(q): Query<HashMap<String, String>>) -> Response {
    match connect::callback(&state, &q).await {
        Landing::Back { redirect, pairs } => {
            let mut to = match url::Url::parse(&redirect) {
                Ok(u) => u,
                Err(_) => return (StatusCode::BAD_REQUEST, "the page to return to is not a URL").into_response(),
            };
            to.query_pairs_mut().extend_pairs(pairs);
            (StatusCode::FOUND, [(header::LOCATION, to.to_string())]).into_response()
        }
        Landing::Refused(message) => {
            let body = format!(
                "<!doctype html><title>Connect WhatsApp</title><h1>This link is not valid</h1><p>{message}</p><p>Start again from the app that sent you here.</p>"
            );
            (
                StatusCode::BAD_REQUEST,
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                body,
            )
                .into_response()
        }
        Landing::Unavailable => (
            StatusCode::SERVICE_UNAVAILABLE,
            "the gateway cannot read its database; try again shortly",
        )
            .into_response(),
    }
}
