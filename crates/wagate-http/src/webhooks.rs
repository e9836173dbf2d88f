//! `/webhooks/whatsapp` and `/webhooks/whatsapp/{account}`: Meta's handshake and its POSTs, handed
//! to the engine's inbound slice (which checks the signature, routes and journals).

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use wagate_engine::inbound::receive;

use crate::error::ApiError;
use crate::state::AppState;

/// `GET /webhooks/whatsapp`: Meta's subscription handshake.
pub async fn verify(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    challenge(receive::verify(&state, None, &q)?)
}

pub async fn verify_account(
    State(state): State<AppState>,
    Path(account): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    challenge(receive::verify(&state, Some(&account), &q)?)
}

fn challenge(text: String) -> Result<Response, ApiError> {
    Ok((StatusCode::OK, [("content-type", "text/plain")], text).into_response())
}

/// `POST /webhooks/whatsapp`.
pub async fn receive(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<StatusCode, ApiError> {
    receive_with(&state, None, &headers, &body).await
}

pub async fn receive_account(
    State(state): State<AppState>,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    receive_with(&state, Some(&account), &headers, &body).await
}

async fn receive_with(
    state: &AppState,
    account: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<StatusCode, ApiError> {
    let signature = headers.get("x-hub-signature-256").and_then(|v| v.to_str().ok());
    // Not Meta's: a test or the simulator asks to be answered once the body is processed.
    let wait = headers.get("x-wagate-wait").is_some_and(|v| v == "processed");
    receive::receive(state, account, signature, body, wait).await?;
    Ok(StatusCode::OK)
}

/// A webhook POST whose signature header is missing or malformed is refused before its body is
/// read: the signature covers the body, but a header that cannot match needs none, and a
/// sender without one must not hold a connection while it trickles a body.
pub async fn signature_first(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    if req.method() == axum::http::Method::POST {
        let header = req.headers().get("x-hub-signature-256").and_then(|v| v.to_str().ok());
        if let Err(e) = receive::check_signature_header(header) {
            return ApiError::from(e).into_response();
        }
    }
    next.run(req).await
}
