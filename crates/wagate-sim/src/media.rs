//! Media as Meta serves it: `GET /{media-id}` answers with a URL valid for 5 minutes, and the
//! download itself needs the bearer token.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Multipart, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::graph::{check_phone, check_token, fault_gate, unknown_object, GraphFail};
use crate::state::{now_ms, SimState};

const URL_LIFETIME_MS: i64 = 5 * 60 * 1000;

/// How long the `url` in an inbound media webhook works (Meta keeps webhook media 7 days).
pub const INBOUND_URL_LIFETIME_MS: i64 = 7 * 24 * 3600 * 1000;

pub async fn get_url(
    State(state): State<Arc<SimState>>,
    Path((_version, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<Value>, GraphFail> {
    check_token(&state, &headers)?;
    fault_gate(&state, &format!("/{id}"), None, None).await?;
    let (bytes, mime) = state.media(&id).ok_or_else(|| unknown_object("get", &id))?;
    let host = headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1");
    Ok(Json(json!({
        "messaging_product": "whatsapp",
        "url": format!("http://{host}/_sim/media/{id}?exp={}", now_ms() + URL_LIFETIME_MS),
        "mime_type": mime,
        "sha256": wagate_core::signature::sha256_base64(&bytes),
        "file_size": bytes.len().to_string(),
        "id": id,
    })))
}

pub async fn download(
    State(state): State<Arc<SimState>>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Err(e) = check_token(&state, &headers) {
        return e.into_response();
    }
    if let Err(e) = fault_gate(&state, "/_sim/media", None, None).await {
        return e.into_response();
    }
    let expired = q
        .get("exp")
        .and_then(|e| e.parse::<i64>().ok())
        .is_none_or(|e| e < now_ms());
    match state.media(&id) {
        Some((bytes, mime)) if !expired => ([("content-type", mime)], bytes).into_response(),
        _ => (
            StatusCode::NOT_FOUND,
            "URL expired or media not found: fetch a new URL with GET /{media-id}",
        )
            .into_response(),
    }
}

/// `POST /{phone-number-id}/media` (multipart: `messaging_product`, `type`, `file`).
pub async fn upload(
    State(state): State<Arc<SimState>>,
    Path((_version, node)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    mut form: Multipart,
) -> Result<Json<Value>, GraphFail> {
    check_token(&state, &headers)?;
    check_phone(&state, &node)?;
    fault_gate(&state, "/media", None, None).await?;
    let mut file = None;
    // Graph takes parameters from the query string too (whatsapp-api-js puts
    // `messaging_product` there); form fields win.
    let mut declared = q.get("type").cloned();
    let mut product = q.get("messaging_product").cloned();
    while let Ok(Some(field)) = form.next_field().await {
        match field.name() {
            Some("file") => {
                let mime = field.content_type().map(str::to_string);
                file = field.bytes().await.ok().map(|b| (b.to_vec(), mime));
            }
            Some("type") => declared = field.text().await.ok(),
            Some("messaging_product") => product = field.text().await.ok(),
            _ => {}
        }
    }
    if product.as_deref() != Some("whatsapp") {
        return Err(GraphFail::new(
            400,
            100,
            "Invalid parameter",
            "The parameter messaging_product is required.",
        ));
    }
    let Some((bytes, part_type)) = file else {
        return Err(GraphFail::new(
            400,
            131008,
            "Required parameter is missing",
            "The parameter file is required.",
        ));
    };
    let mime = declared.or(part_type).unwrap_or_default();
    match wagate_core::meta::media_limit(&mime) {
        Some((_, limit)) if bytes.len() <= limit => {}
        _ => {
            return Err(GraphFail::new(
                400,
                131053,
                "Media upload error",
                format!("Unsupported file type or size: {mime}, {} bytes.", bytes.len()),
            ))
        }
    }
    Ok(Json(json!({"id": state.put_media(bytes, &mime)})))
}

/// `DELETE /{media-id}`.
pub async fn delete(
    State(state): State<Arc<SimState>>,
    Path((_version, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<Value>, GraphFail> {
    check_token(&state, &headers)?;
    if state.remove_media(&id) {
        Ok(Json(json!({"success": true})))
    } else {
        Err(unknown_object("delete", &id))
    }
}
