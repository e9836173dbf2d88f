//! The drop-in front door: Meta's own endpoints on the gateway, so that an app built on Meta's
//! SDKs (pywa, whatsapp-api-js, …) moves to wagate by changing its base URL and using a wagate
//! API key as its access token. Sends go through the queue, the checks, the governor and the
//! exactly-once machinery, and come back in Meta's shapes: the success body with the wamid, or
//! Meta's error body and code.
//!
//! - `POST /{version}/{phone_number_id}/messages`: a send (answered once Meta took it), or
//!   mark-as-read (`status: read`), passed on.
//! - media, templates and everything else under an account's ids: [`objects`].

use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use wagate_core::status::MessageStatus;
use wagate_graph::GraphError;

use wagate_engine::sending::messages;
use wagate_engine::sending::prepare::prepare;
use wagate_engine::sending::queue::{enqueue, enqueue_once, wait_for_meta};

use crate::api::idempotency_key;
pub(crate) use crate::bounds::is_version;
use crate::error::ApiError;
use crate::state::AppState;
use wagate_engine::auth::Caller;

pub mod objects;

/// How long a front-door send waits for Meta's answer before it says the message is queued.
const WAIT: Duration = Duration::from_secs(30);

/// Meta's error body.
pub(crate) fn meta_error(status: StatusCode, code: i64, message: &str, details: Option<String>) -> Response {
    let mut error = json!({
        "message": format!("(#{code}) {message}"),
        "type": "OAuthException",
        "code": code,
        "fbtrace_id": wagate_core::ids::new_id("wagate"),
    });
    if code == 190 {
        error["message"] = json!(message);
    }
    if let Some(d) = details {
        error["error_data"] = json!({"messaging_product": "whatsapp", "details": d});
    }
    (status, Json(json!({ "error": error }))).into_response()
}

/// One of our API errors, as Meta would say it; one that carries Meta's own refusal answers with
/// Meta's error as it is.
pub(crate) fn from_api_error(e: impl Into<ApiError>) -> Response {
    let e: ApiError = e.into();
    if let Some(meta) = e.meta.as_ref().filter(|m| m.is_object()) {
        return (StatusCode::BAD_REQUEST, Json(json!({ "error": meta }))).into_response();
    }
    let detail = match &e.hint {
        Some(h) => format!("{} ({h})", e.message),
        None => e.message.clone(),
    };
    match e.code {
        "unauthorized" => meta_error(
            StatusCode::UNAUTHORIZED,
            190,
            "Invalid OAuth access token - Cannot parse access token",
            None,
        ),
        "forbidden" => meta_error(
            StatusCode::FORBIDDEN,
            10,
            "Application does not have permission for this action",
            Some(detail),
        ),
        "window_closed" => meta_error(StatusCode::BAD_REQUEST, 131047, "Re-engagement message", Some(detail)),
        // The catalog check answers before Meta would, with Meta's codes.
        "template_not_found" => meta_error(
            StatusCode::NOT_FOUND,
            132001,
            "Template name does not exist in the translation",
            Some(detail),
        ),
        "template_not_approved" => meta_error(
            StatusCode::BAD_REQUEST,
            132001,
            "Template is not approved",
            Some(detail),
        ),
        "template_parameters" => meta_error(
            StatusCode::BAD_REQUEST,
            132000,
            "Number of parameters does not match the expected number of params",
            Some(detail),
        ),
        "account_paused" => {
            let code = e
                .details
                .as_ref()
                .and_then(|d| d.pointer("/pause/code"))
                .and_then(Value::as_i64)
                .unwrap_or(131031);
            meta_error(
                StatusCode::BAD_REQUEST,
                code,
                "Sending from this account is paused",
                Some(detail),
            )
        }
        _ if e.status.is_server_error() => meta_error(e.status, 1, "An unknown error occurred", Some(detail)),
        _ => meta_error(StatusCode::BAD_REQUEST, 100, "Invalid parameter", Some(detail)),
    }
}

/// Meta's answer when it refused: its own body, as it sent it. Meta's 401 (the account's token,
/// not the caller's) is answered 400: a 401 from the gateway always means the caller's own token.
pub(crate) fn from_graph_error(e: GraphError) -> Response {
    match e {
        GraphError::Meta { status, error } => (
            StatusCode::from_u16(status)
                .ok()
                .filter(|s| *s != StatusCode::UNAUTHORIZED)
                .unwrap_or(StatusCode::BAD_REQUEST),
            Json(json!({ "error": error })),
        )
            .into_response(),
        other => meta_error(
            StatusCode::BAD_GATEWAY,
            2,
            "Service temporarily unavailable",
            Some(other.to_string()),
        ),
    }
}

/// A request under Meta's paths (`/vNN.N/…`) that names no object the front door serves, answered
/// as Meta answers one it does not support, so that an SDK reads an error rather than crash on
/// ours: `GraphMethodException`, code 100, subcode 33 when it names an object.
pub fn unsupported(method: &str, path: &str) -> Response {
    match path
        .trim_start_matches('/')
        .split('/')
        .nth(1)
        .filter(|id| !id.is_empty())
    {
        Some(id) => unknown_object(method, id),
        None => graph_method_exception(format!("Unsupported {} request.", method.to_ascii_lowercase()), None),
    }
}

/// Meta's "does not exist" (code 100, subcode 33), for an id that is not the gateway's and one
/// the caller may not use alike.
pub(crate) fn unknown_object(method: &str, id: &str) -> Response {
    graph_method_exception(
        format!(
            "Unsupported {} request. Object with ID '{id}' does not exist, cannot be loaded due to missing permissions, or does not support this operation. Please read the Graph API documentation at https://developers.facebook.com/docs/graph-api",
            method.to_ascii_lowercase()
        ),
        Some(33),
    )
}

fn graph_method_exception(message: String, subcode: Option<i64>) -> Response {
    let mut error = json!({
        "message": message,
        "type": "GraphMethodException",
        "code": 100,
        "fbtrace_id": wagate_core::ids::new_id("wagate"),
    });
    if let Some(s) = subcode {
        error["error_subcode"] = json!(s);
    }
    (StatusCode::BAD_REQUEST, Json(json!({ "error": error }))).into_response()
}

/// The last word on Meta's paths: an error answered before the front door ran (a body over the
/// limit, a slow body, the connection and rate limits, a deadline) comes back in Meta's shape
/// too, with the code Meta uses for the like (190, 10, 4, 2, 100).
pub async fn meta_shape(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    if !is_metas_path(req.uri().path()) {
        return next.run(req).await;
    }
    let response = next.run(req).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, 64 * 1024).await.unwrap_or_default();
    let parsed: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if parsed.pointer("/error/code").is_some_and(Value::is_number) {
        return Response::from_parts(parts, axum::body::Body::from(bytes));
    }
    let said = match (
        parsed.pointer("/error/message").and_then(Value::as_str),
        parsed.pointer("/error/hint").and_then(Value::as_str),
    ) {
        (Some(m), Some(h)) => format!("{m} ({h})"),
        (Some(m), None) => m.to_string(),
        _ => String::from_utf8_lossy(&bytes).trim().chars().take(300).collect(),
    };
    let (code, title) = match status {
        StatusCode::UNAUTHORIZED => (190, "Invalid OAuth access token"),
        StatusCode::FORBIDDEN => (10, "Application does not have permission for this action"),
        StatusCode::TOO_MANY_REQUESTS => (4, "Application request limit reached"),
        s if s.is_server_error() => (2, "Service temporarily unavailable"),
        _ => (100, "Invalid parameter"),
    };
    let mut answer = meta_error(status, code, title, Some(said));
    for name in [axum::http::header::RETRY_AFTER, axum::http::header::ALLOW] {
        if let Some(v) = parts.headers.get(&name) {
            answer.headers_mut().insert(name, v.clone());
        }
    }
    answer
}

/// Whether a path is under Meta's (`/vNN.N/…`).
pub fn is_metas_path(path: &str) -> bool {
    path.trim_start_matches('/').split('/').next().is_some_and(is_version)
}

pub(crate) fn no_such_endpoint(method: &str, path: &str) -> Response {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no such endpoint: {method} {path}"),
    )
    .details(json!({"field": "path"}))
    .hint("see /openapi.json for the API; Meta's paths need a version such as /v23.0/…")
    .into_response()
}

/// The API key, where Meta takes the access token: the `Authorization` header or `access_token`.
pub(crate) async fn caller(
    state: &AppState,
    headers: &HeaderMap,
    query: &std::collections::HashMap<String, String>,
) -> Result<Caller, Response> {
    let from_header = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim().to_string());
    let Some(token) = from_header
        .or_else(|| query.get("access_token").cloned())
        .filter(|t| !t.is_empty())
    else {
        return Err(meta_error(
            StatusCode::UNAUTHORIZED,
            190,
            "An active access token must be used to query information about the current user.",
            None,
        ));
    };
    // An API key or a JWT, as on `/v1`.
    let remote = headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.chars().take(200).collect());
    wagate_engine::auth::authenticate::authenticate(state, Some(&format!("Bearer {token}")), remote)
        .await
        .map_err(from_api_error)
}

/// `POST /{version}/{phone_number_id}/messages`, for a caller known.
pub(crate) async fn send(
    state: &AppState,
    caller: Caller,
    phone_number_id: &str,
    query: &std::collections::HashMap<String, String>,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(e) = caller.require("send") {
        return from_api_error(e);
    }
    let Some(account) = state.accounts.by_phone(phone_number_id).filter(|a| caller.sees(&a.id)) else {
        return unknown_object("post", phone_number_id);
    };
    // Graph's parameters: the body's, the query's, JSON-encoded objects decoded.
    let parsed = match body.is_empty() {
        true => Ok(Value::Object(Default::default())),
        false => serde_json::from_slice(&body),
    };
    let mut body: Value = match parsed {
        Ok(Value::Object(mut o)) => {
            wagate_core::graphjson::merge_params(&mut o, query);
            Value::Object(o)
        }
        _ => {
            return meta_error(
                StatusCode::BAD_REQUEST,
                100,
                "Invalid parameter",
                Some("the body must be a JSON object".into()),
            )
        }
    };
    // Mark as read (and the typing indicator): passed on to Meta as it is.
    if body.get("status").and_then(Value::as_str) == Some("read") {
        return match messages::pass_to_meta(state, &account, phone_number_id, &body).await {
            Ok(answer) => Json(answer).into_response(),
            Err(e) => from_graph_error(e),
        };
    }
    let to_input = body
        .get("to")
        .or_else(|| body.get("recipient"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if let Some(obj) = body.as_object_mut() {
        obj.insert("account".into(), json!(account.id));
        obj.insert("phone_number_id".into(), json!(phone_number_id));
    }
    let key = match idempotency_key(headers) {
        Ok(k) => k,
        Err(e) => return from_api_error(e),
    };
    let request = body.clone();
    let prepared = match prepare(state, &caller, body).await {
        Ok(p) => p,
        Err(e) => return from_api_error(e),
    };
    let is_template = prepared.message_type == "template";
    let queued = match key {
        Some(key) => enqueue_once(state, prepared, key, &request).await.map(|(m, _)| m),
        None => enqueue(state, prepared).await,
    };
    let message = match queued {
        Ok(m) => m,
        Err(e) => return from_api_error(e),
    };
    let message = match wait_for_meta(state, &message.id, WAIT).await {
        Ok(m) => m,
        Err(e) => return from_api_error(e),
    };
    if let Some(wamid) = &message.wamid {
        let mut sent = json!({"id": wamid});
        if is_template {
            sent["message_status"] = json!("accepted");
        }
        let contact = match &message.wa_id {
            Some(w) if wagate_core::phone::is_business_scoped_user_id(w) => json!({"input": to_input, "user_id": w}),
            Some(w) => json!({"input": to_input, "wa_id": w}),
            None => json!({"input": to_input}),
        };
        return Json(json!({"messaging_product": "whatsapp", "contacts": [contact], "messages": [sent]}))
            .into_response();
    }
    let error: Value = message
        .error
        .as_deref()
        .and_then(|e| serde_json::from_str(e).ok())
        .unwrap_or(Value::Null);
    match (message.status, error.get("meta")) {
        // Meta refused it: Meta's own body and status.
        (MessageStatus::Failed, Some(meta)) if meta.is_object() => {
            let status = error["http_status"].as_u64().and_then(|s| StatusCode::from_u16(s as u16).ok());
            (status.unwrap_or(StatusCode::BAD_REQUEST), Json(json!({ "error": meta }))).into_response()
        }
        (MessageStatus::Failed, _) => match error["code"].as_str() {
            Some("window_closed") => meta_error(
                StatusCode::BAD_REQUEST,
                131047,
                "Re-engagement message",
                error["title"].as_str().map(str::to_string),
            ),
            _ => meta_error(
                StatusCode::BAD_REQUEST,
                131000,
                "Something went wrong",
                error["title"].as_str().map(str::to_string),
            ),
        },
        _ => meta_error(
            StatusCode::SERVICE_UNAVAILABLE,
            131000,
            "Something went wrong",
            Some(format!(
                "the message is queued as {} and wagate sends it; do not send it again (follow it with GET /v1/messages/{})",
                message.id, message.id
            )),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::is_version;

    #[test]
    fn versions_are_metas() {
        assert!(is_version("v23.0"));
        assert!(is_version("v9.1"));
        for v in ["v1", "23.0", "v.0", "v23.", "vx.0", "v23.0a", "webhooks"] {
            assert!(!is_version(v), "{v}");
        }
    }
}
