//! The Graph API endpoints the simulator serves, with Meta's checks and error bodies.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use wagate_core::meta::{GraphErrorBody, MetaError};

use crate::body::JsonBody;
use crate::state::{now_ms, Fault, SentRecord, SimState};
use crate::webhooks;

/// A Graph error answer.
pub struct GraphFail(StatusCode, MetaError);

impl GraphFail {
    pub fn new(status: u16, code: i64, title: &str, details: impl Into<String>) -> Self {
        Self(
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
            MetaError::new(code, title, details),
        )
    }
}

impl GraphFail {
    pub fn set_subcode(&mut self, subcode: i64) {
        self.1.error_subcode = Some(subcode);
    }
}

impl IntoResponse for GraphFail {
    fn into_response(self) -> Response {
        (self.0, Json(GraphErrorBody { error: self.1 })).into_response()
    }
}

impl From<Fault> for GraphFail {
    fn from(f: Fault) -> Self {
        let info_title = f.title.unwrap_or_else(|| default_title(f.code).to_string());
        let details = f
            .details
            .unwrap_or_else(|| format!("Injected by the simulator: error {}", f.code));
        GraphFail::new(f.http_status, f.code, &info_title, details)
    }
}

fn default_title(code: i64) -> &'static str {
    match code {
        4 => "Application request limit reached",
        100 => "Invalid parameter",
        131000 => "Something went wrong",
        131008 => "Required parameter is missing",
        131009 => "Parameter value is not valid",
        131026 => "Message undeliverable",
        131030 => "Recipient phone number not in allowed list",
        131047 => "Re-engagement message",
        131056 => "(Business Account, Consumer Account) pair rate limit hit",
        130429 => "Rate limit hit",
        132000 => "Number of parameters does not match the expected number of params",
        132001 => "Template name does not exist in the translation",
        133010 => "Account not registered",
        190 => "Error validating access token",
        _ => "Simulated error",
    }
}

/// Bearer-token check: Meta's 190 when the token is missing or wrong.
pub fn check_token(state: &SimState, headers: &HeaderMap) -> Result<(), GraphFail> {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match token {
        Some(t) if t == state.config.access_token => Ok(()),
        Some(_) => {
            let mut e = MetaError::new(190, "", "");
            e.message = Some("Invalid OAuth access token - Cannot parse access token".into());
            e.error_data = None;
            Err(GraphFail(StatusCode::UNAUTHORIZED, e))
        }
        None => {
            let mut e = MetaError::new(190, "", "");
            e.message = Some("An active access token must be used to query information about the current user.".into());
            e.error_data = None;
            Err(GraphFail(StatusCode::UNAUTHORIZED, e))
        }
    }
}

/// Meta's answer to a call on a phone number id it does not know (or that this token cannot see).
pub fn check_phone(state: &SimState, node: &str) -> Result<(), GraphFail> {
    if node == state.config.phone_number_id {
        return Ok(());
    }
    Err(GraphFail::new(
        400,
        100,
        "Unsupported post request",
        format!("Unsupported post request. Object with ID '{node}' does not exist, cannot be loaded due to missing permissions, or does not support this operation."),
    ))
}

pub async fn send_message(
    State(state): State<Arc<SimState>>,
    Path((_version, node)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<Value>, GraphFail> {
    check_token(&state, &headers)?;
    check_phone(&state, &node)?;
    let body: Value = serde_json::from_slice(&body)
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| GraphFail::new(400, 100, "Invalid parameter", "The request body must be a JSON object."))?;
    let message_type = body.get("type").and_then(Value::as_str).unwrap_or("text").to_string();
    let to = body.get("to").and_then(Value::as_str).map(str::to_string);
    if let Some(f) = state.take_fault("/messages", Some(&message_type), to.as_deref()) {
        return Err(f.into());
    }
    if body.get("messaging_product").and_then(Value::as_str) != Some("whatsapp") {
        return Err(GraphFail::new(
            400,
            100,
            "Invalid parameter",
            "The parameter messaging_product is required and must be 'whatsapp'.",
        ));
    }
    // Mark as read (and typing indicator) share the endpoint.
    if body.get("status").and_then(Value::as_str) == Some("read") {
        if body.get("message_id").and_then(Value::as_str).is_none() {
            return Err(GraphFail::new(
                400,
                131008,
                "Required parameter is missing",
                "The parameter message_id is required.",
            ));
        }
        if let Some(t) = body.get("typing_indicator") {
            if t.get("type").and_then(Value::as_str) != Some("text") {
                return Err(GraphFail::new(
                    400,
                    131009,
                    "Parameter value is not valid",
                    "typing_indicator.type must be text.",
                ));
            }
        }
        state.record_read(body);
        return Ok(Json(json!({"success": true})));
    }
    let to = to.ok_or_else(|| {
        GraphFail::new(
            400,
            131008,
            "Required parameter is missing",
            "The parameter to is required.",
        )
    })?;
    let wa_id: String = to.chars().filter(char::is_ascii_digit).collect();
    if wa_id.len() < 7 || wa_id.len() > 15 {
        return Err(GraphFail::new(
            400,
            131009,
            "Parameter value is not valid",
            format!("The parameter to ({to}) is not a valid phone number."),
        ));
    }
    let category = validate(&state, &message_type, &body)?;
    let wamid = wagate_core::ids::wamid(&wa_id, true);
    state.record_sent(SentRecord {
        wamid: wamid.clone(),
        phone_number_id: node.clone(),
        to: to.clone(),
        body: body.clone(),
        received_at_ms: now_ms(),
    });
    let window_open = state.window_open(&wa_id, now_ms());
    let fails_131047 = category.is_none() && !window_open;
    webhooks::spawn_statuses(
        state.clone(),
        wamid.clone(),
        wa_id.clone(),
        category.clone(),
        fails_131047,
        body.get("biz_opaque_callback_data").cloned(),
    );
    let mut message = json!({"id": wamid});
    if message_type == "template" {
        message["message_status"] = json!("accepted");
    }
    Ok(Json(json!({
        "messaging_product": "whatsapp",
        "contacts": [{"input": to, "wa_id": wa_id}],
        "messages": [message],
    })))
}

/// Checks a send as Meta does. Returns the template category for templates (pricing), `None`
/// for free-form messages (which need an open customer-service window).
fn validate(state: &SimState, message_type: &str, body: &Value) -> Result<Option<String>, GraphFail> {
    let missing = |what: &str| {
        GraphFail::new(
            400,
            131008,
            "Required parameter is missing",
            format!("The parameter {what} is required."),
        )
    };
    let obj = body.get(message_type);
    match message_type {
        "text" => {
            let text = obj
                .and_then(|t| t.get("body"))
                .and_then(Value::as_str)
                .ok_or_else(|| missing("text['body']"))?;
            if text.chars().count() > 4096 {
                return Err(GraphFail::new(
                    400,
                    100,
                    "Invalid parameter",
                    "Param text['body'] must be at most 4096 characters long.",
                ));
            }
            Ok(None)
        }
        "template" => {
            let t = obj.ok_or_else(|| missing("template"))?;
            let name = t
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| missing("template['name']"))?;
            let language = t
                .pointer("/language/code")
                .and_then(Value::as_str)
                .ok_or_else(|| missing("template['language']['code']"))?;
            let template = state.template(name, language);
            match template.as_ref().map(|t| t.status.as_str()) {
                Some("APPROVED") => {}
                Some("PAUSED") => {
                    return Err(GraphFail::new(
                        400,
                        132015,
                        "Template is paused",
                        format!("template {name} ({language}) is paused because of low quality"),
                    ))
                }
                Some("DISABLED") => {
                    return Err(GraphFail::new(
                        400,
                        132016,
                        "Template is disabled",
                        format!("template {name} ({language}) was disabled after being paused repeatedly"),
                    ))
                }
                _ => {
                    return Err(GraphFail::new(
                        404,
                        132001,
                        "Template name does not exist in the translation",
                        format!("template name ({name}) does not exist in {language}"),
                    ))
                }
            }
            let Some(template) = template else {
                return Err(missing("template['name']"));
            };
            let components = t
                .get("components")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let params = |kind: &str| -> Vec<Value> {
                components
                    .iter()
                    .find(|c| {
                        c.get("type")
                            .and_then(Value::as_str)
                            .map(str::to_ascii_lowercase)
                            .as_deref()
                            == Some(kind)
                    })
                    .and_then(|c| c.get("parameters"))
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default()
            };
            let body_params = params("body");
            let expected = template.placeholders("BODY");
            if body_params.len() != expected {
                return Err(GraphFail::new(400, 132000, "Number of parameters does not match the expected number of params",
                    format!("body: number of localizable_params ({}) does not match the expected number of params ({expected})", body_params.len())));
            }
            match template.header_format() {
                Some(fmt @ ("IMAGE" | "VIDEO" | "DOCUMENT" | "LOCATION")) => {
                    let header = params("header");
                    let want = fmt.to_ascii_lowercase();
                    match header.first() {
                        None => return Err(GraphFail::new(400, 132000, "Number of parameters does not match the expected number of params",
                            format!("header: number of localizable_params (0) does not match the expected number of params (1); the header needs a {want} parameter"))),
                        Some(p) if p.get("type").and_then(Value::as_str) != Some(want.as_str()) => {
                            return Err(GraphFail::new(400, 132012, "Parameter format does not match format in the created template",
                                format!("header: format mismatch, expected {fmt}, received {}", p.get("type").and_then(Value::as_str).unwrap_or("nothing").to_ascii_uppercase())));
                        }
                        _ => {}
                    }
                }
                Some("TEXT") => {
                    let expected = template.placeholders("HEADER");
                    let got = params("header").len();
                    if got != expected {
                        return Err(GraphFail::new(400, 132000, "Number of parameters does not match the expected number of params",
                            format!("header: number of localizable_params ({got}) does not match the expected number of params ({expected})")));
                    }
                }
                _ => {}
            }
            Ok(Some(template.category.to_ascii_lowercase()))
        }
        "image" | "video" | "audio" | "document" | "sticker" | "location" | "contacts" | "interactive" | "reaction" => {
            obj.filter(|o| o.is_object() || o.is_array())
                .ok_or_else(|| missing(message_type))?;
            // Meta's own rules: a missing field is 131008, any other breach 100.
            if let Err(found) = wagate_core::validate::check_message(message_type, body) {
                let v = &found[0];
                let (code, title) = if v.missing {
                    (131008, "Required parameter is missing")
                } else {
                    (100, "Invalid parameter")
                };
                return Err(GraphFail::new(
                    400,
                    code,
                    title,
                    format!("Param {}: {}", v.field, v.message),
                ));
            }
            if let Some(id) = obj.and_then(|o| o.get("id")).and_then(Value::as_str) {
                if ["image", "video", "audio", "document", "sticker"].contains(&message_type)
                    && state.media(id).is_none()
                    && !id.chars().all(|c| c.is_ascii_digit())
                {
                    return Err(GraphFail::new(
                        400,
                        131053,
                        "Media upload error",
                        format!("Media id {id} is not valid."),
                    ));
                }
            }
            Ok(None)
        }
        other => Err(GraphFail::new(
            400,
            131051,
            "Unsupported message type",
            format!("Message type {other} is not supported."),
        )),
    }
}

pub async fn list_sent(State(state): State<Arc<SimState>>) -> Json<Value> {
    Json(json!({"data": state.sent(), "reads": state.reads()}))
}

pub async fn add_fault(
    State(state): State<Arc<SimState>>,
    JsonBody(fault): JsonBody<Fault>,
) -> (StatusCode, Json<Value>) {
    state.add_fault(fault.clone());
    (StatusCode::CREATED, Json(json!({"fault": fault})))
}

pub async fn list_faults(State(state): State<Arc<SimState>>) -> Json<Value> {
    Json(json!({"data": state.faults()}))
}

#[derive(Deserialize)]
pub struct Settings {
    webhook_url: Option<String>,
    /// Delays in ms before the sent, delivered and read webhooks.
    status_delays_ms: Option<[u64; 3]>,
    /// The most templates one `message_templates` page holds (Meta pages at 100 or less).
    template_page_size: Option<usize>,
}

pub async fn update_settings(State(state): State<Arc<SimState>>, JsonBody(s): JsonBody<Settings>) -> Json<Value> {
    if let Some(url) = s.webhook_url {
        state.set_webhook_url(Some(url));
    }
    if let Some(d) = s.status_delays_ms {
        state.set_status_delays(d.map(std::time::Duration::from_millis));
    }
    if let Some(n) = s.template_page_size {
        state.set_template_page_size(n);
    }
    Json(json!({
        "webhook_url": state.webhook_url(),
        "status_delays_ms": state.status_delays().map(|d| d.as_millis() as u64),
    }))
}
