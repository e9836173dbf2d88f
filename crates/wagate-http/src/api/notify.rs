//! `POST /v1/whatsapp/notify`: the compatible template-notification endpoint. Synchronous: it
//! answers with Meta's result mapped to 200/400/401/500 and `{message, error}`.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::ToSchema;
use wagate_core::status::MessageStatus;

use crate::state::AppState;
use wagate_engine::auth::Caller;
use wagate_engine::sending::prepare::prepare;
use wagate_engine::sending::queue::{enqueue, wait_for_meta};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NotifyRequest {
    /// Recipient; defaults to WHATSAPP_DEFAULT_RECIPIENT.
    pub phone_number: Option<String>,
    pub template_name: String,
    pub language_code: String,
    /// Text parameters of the template's header.
    #[serde(default)]
    pub header_parameters: Vec<String>,
    /// Text parameters of the template's body, in order.
    #[serde(default)]
    pub template_parameters: Vec<String>,
    /// Account name or id.
    pub account: Option<String>,
}

type Reply = (StatusCode, Json<Value>);

fn fail(status: StatusCode, message: &str, error: Value) -> Reply {
    (status, Json(json!({"message": message, "error": error})))
}

/// Send a template notification and wait for Meta's answer.
#[utoipa::path(post, path = "/v1/whatsapp/notify", tag = "messages", request_body = NotifyRequest,
    responses((status = 200, description = "{message, messageId, wamid}"),
              (status = 400, description = "{message, error}: invalid request or refused by Meta"),
              (status = 401, description = "{message, error}: bad API key or Meta token"),
              (status = 403, description = "{message, error}: the key lacks the send permission"),
              (status = 500, description = "{message, error}: Meta failed or timed out")),
    security(("api_key" = [])))]
pub async fn notify(
    State(state): State<AppState>,
    caller: Result<Caller, crate::error::ApiError>,
    body: Bytes,
) -> Reply {
    let caller = match caller {
        Ok(c) => c,
        Err(e) => {
            return fail(
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                json!({"code": e.code, "message": e.message, "hint": e.hint}),
            )
        }
    };
    if let Err(e) = caller.require("send") {
        return fail(
            StatusCode::FORBIDDEN,
            "Forbidden",
            json!({"code": e.code, "message": e.message, "hint": e.hint}),
        );
    }
    let req: NotifyRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return fail(
                StatusCode::BAD_REQUEST,
                "Invalid request",
                json!({"code": "invalid_request", "message": e.to_string(),
            "hint": "send {templateName, languageCode, phoneNumber?, headerParameters?, templateParameters?}"}),
            )
        }
    };
    let Some(to) = req
        .phone_number
        .clone()
        .or_else(|| state.config.default_recipient.clone())
    else {
        return fail(
            StatusCode::BAD_REQUEST,
            "Invalid request",
            json!({"code": "invalid_request", "field": "phoneNumber",
            "message": "phoneNumber is required when WHATSAPP_DEFAULT_RECIPIENT is not set", "hint": "give phoneNumber or set WHATSAPP_DEFAULT_RECIPIENT"}),
        );
    };
    let text_params = |p: &[String]| p.iter().map(|t| json!({"type": "text", "text": t})).collect::<Vec<_>>();
    let mut components = Vec::new();
    if !req.header_parameters.is_empty() {
        components.push(json!({"type": "header", "parameters": text_params(&req.header_parameters)}));
    }
    if !req.template_parameters.is_empty() {
        components.push(json!({"type": "body", "parameters": text_params(&req.template_parameters)}));
    }
    let message = json!({
        "to": to,
        "type": "template",
        "account": req.account,
        "template": {"name": req.template_name, "language": {"code": req.language_code}, "components": components},
    });
    let prepared = match prepare(&state, &caller, message).await {
        Ok(p) => p,
        Err(e) => {
            return fail(
                StatusCode::BAD_REQUEST,
                "Invalid request",
                json!({"code": e.code, "message": e.message, "details": e.details, "hint": e.hint}),
            )
        }
    };
    let result = match enqueue(&state, prepared).await {
        Ok(m) => wait_for_meta(&state, &m.id, Duration::from_secs(30)).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(m) if m.wamid.is_some() => (
            StatusCode::OK,
            Json(json!({"message": "Notification sent", "messageId": m.id, "wamid": m.wamid})),
        ),
        Ok(m) => {
            let error: Value = m
                .error
                .as_deref()
                .and_then(|e| serde_json::from_str(e).ok())
                .unwrap_or(Value::Null);
            let code = error.get("code").and_then(Value::as_i64);
            let status = match (code, error.get("retry").and_then(Value::as_str), m.status) {
                (Some(190), _, _) => StatusCode::UNAUTHORIZED,
                (_, Some("fix"), MessageStatus::Failed) => StatusCode::BAD_REQUEST,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            let message = if m.status == MessageStatus::Queued {
                "Meta has not answered yet; the message stays queued"
            } else {
                "Meta refused the notification"
            };
            (
                status,
                Json(json!({"message": message, "messageId": m.id, "error": error})),
            )
        }
        Err(e) => fail(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal error",
            json!({"code": e.code, "message": e.message}),
        ),
    }
}
