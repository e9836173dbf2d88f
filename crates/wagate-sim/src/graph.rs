//! The Graph API endpoints the simulator serves, with Meta's checks and error bodies.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
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
    pub fn from_error(status: StatusCode, error: MetaError) -> Self {
        Self(status, error)
    }

    pub fn set_subcode(&mut self, subcode: i64) {
        self.1.error_subcode = Some(subcode);
    }
}

impl IntoResponse for GraphFail {
    fn into_response(self) -> Response {
        (self.0, Json(GraphErrorBody { error: self.1 })).into_response()
    }
}

/// The error an injected fault answers with, when it has a code.
pub fn fault_error(f: &Fault) -> Option<GraphFail> {
    let code = f.code?;
    let title = f.title.clone().unwrap_or_else(|| default_title(code).to_string());
    let details = f
        .details
        .clone()
        .unwrap_or_else(|| format!("Injected by the simulator: error {code}"));
    Some(GraphFail::new(f.http_status, code, &title, details))
}

/// Applies the first fault matching a call: waits its delay, then fails the call when the
/// fault has a code. A fault without a code lets the call succeed; its delay is returned
/// instead, for calls that do their work first and answer late (a send accepted, then
/// answered after N ms).
pub async fn fault_gate(
    state: &SimState,
    path: &str,
    message_type: Option<&str>,
    to: Option<&str>,
) -> Result<Option<Duration>, GraphFail> {
    let Some(f) = state.take_fault(path, message_type, to) else {
        return Ok(None);
    };
    let delay = f.delay_ms.map(Duration::from_millis);
    match fault_error(&f) {
        Some(e) => {
            if let Some(d) = delay {
                tokio::time::sleep(d).await;
            }
            Err(e)
        }
        None => Ok(delay),
    }
}

/// Meta's title for an error code (cloud-api.md §3.2); the message is `(#code) title`.
pub fn default_title(code: i64) -> &'static str {
    match code {
        0 => "AuthException",
        1 => "API Unknown",
        2 => "API Service",
        3 => "API Method",
        4 => "Application request limit reached",
        10 => "Permission denied",
        33 => "Parameter value is not valid",
        100 => "Invalid parameter",
        190 => "Error validating access token",
        200..=299 => "Permission error",
        368 => "Temporarily blocked for policies violations",
        80007 => "Rate limit issues",
        80008 => "There have been too many calls to this WhatsApp Business account",
        130429 => "Rate limit hit",
        130472 => "User's number is part of an experiment",
        130497 => "Business account is restricted from messaging users in this country",
        131000 => "Something went wrong",
        131005 => "Access denied",
        131008 => "Required parameter is missing",
        131009 => "Parameter value is not valid",
        131016 => "Service unavailable",
        131021 => "Recipient cannot be sender",
        131026 => "Message undeliverable",
        131030 => "Recipient phone number not in allowed list",
        131031 => "Business Account locked",
        131037 => "WhatsApp provided number needs display name approval before message can be sent",
        131042 => "Business eligibility payment issue",
        131045 => "Incorrect certificate",
        131047 => "Re-engagement message",
        131048 => "Spam rate limit hit",
        131049 => "This message was not delivered to maintain healthy ecosystem engagement",
        131050 => "User has stopped marketing messages",
        131051 => "Unsupported message type",
        131052 => "Media download error",
        131053 => "Media upload error",
        131056 => "(Business Account, Consumer Account) pair rate limit hit",
        131057 => "Account in maintenance mode",
        131062 => "Business-scoped user ID recipients not supported",
        131063 => "Marketing templates are disabled for the Cloud API",
        131064 => "Messaging limit reached due to template classification violations",
        132000 => "Number of parameters does not match the expected number of params",
        132001 => "Template name does not exist in the translation",
        132005 => "Translated text too long",
        132007 => "Template format character policy violated",
        132008 => "Template parameter value is not valid",
        132012 => "Parameter format does not match format in the created template",
        132015 => "Template is paused",
        132016 => "Template is disabled",
        132018 => "There was an issue with the parameters in your template",
        132068 => "Flow is in blocked state",
        132069 => "Flow is in throttled state",
        133000 => "Incomplete deregistration",
        133004 => "Server temporarily unavailable",
        133005 => "Two step verification PIN mismatch",
        133006 => "Phone number re-verification needed",
        133008 => "Too many two step verification PIN guesses",
        133009 => "Two step verification PIN guessed too fast",
        133010 => "Account not registered",
        133015 => "Please wait a few minutes before attempting to register this phone number",
        133016 => "Account register deregister rate limit exceeded",
        135000 => "Generic user error",
        137000 => "Identity key mismatch",
        _ => "Unknown error",
    }
}

/// Bearer-token check: Meta's 190 when the token is missing or wrong.
/// The token of `Authorization: Bearer …`.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

pub fn check_token(state: &SimState, headers: &HeaderMap) -> Result<(), GraphFail> {
    let token = bearer(headers);
    let now = crate::state::now_ms();
    match token {
        Some(t) if t == state.access_token() => Ok(()),
        // A token the OAuth dialog's code was exchanged for, until it expires.
        Some(t) if state.issued(t).is_some_and(|g| g.expires_at_ms > now) => Ok(()),
        Some(t) if state.issued(t).is_some() => {
            let mut e = MetaError::new(190, "", "");
            e.message = Some("Error validating access token: Session has expired.".into());
            e.error_subcode = Some(463);
            e.error_data = None;
            Err(GraphFail(StatusCode::UNAUTHORIZED, e))
        }
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

/// Graph's answer for an object id it does not know (or this token cannot see): code 100,
/// subcode 33, as in the fixture `error_100_unsupported_post.json`.
pub fn unknown_object(method: &str, id: &str) -> GraphFail {
    let mut e = MetaError::new(100, "", "");
    e.message = Some(format!(
        "Unsupported {} request. Object with ID '{id}' does not exist, cannot be loaded due to missing permissions, or does not support this operation. Please read the Graph API documentation at https://developers.facebook.com/docs/graph-api",
        method.to_ascii_lowercase()
    ));
    e.kind = Some("GraphMethodException".into());
    e.error_subcode = Some(33);
    e.error_data = None;
    GraphFail(StatusCode::BAD_REQUEST, e)
}

/// Meta's answer to a call on a phone number id it does not know (or that this token cannot see).
pub fn check_phone(state: &SimState, node: &str) -> Result<(), GraphFail> {
    if state.business_by_phone(node).is_some() {
        return Ok(());
    }
    Err(unknown_object("post", node))
}

pub use wagate_core::graphjson::merge_params;

/// When a request's head arrived (unix ms), stamped before its body is read: when Meta counts it.
#[derive(Clone, Copy)]
pub struct Arrived(pub i64);

pub async fn stamp_arrival(mut req: axum::extract::Request) -> axum::extract::Request {
    req.extensions_mut().insert(Arrived(now_ms()));
    req
}

pub async fn send_message(
    State(state): State<Arc<SimState>>,
    arrived: Option<axum::Extension<Arrived>>,
    Path((_version, node)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<Value>, GraphFail> {
    check_token(&state, &headers)?;
    check_phone(&state, &node)?;
    let mut body = if body.is_empty() {
        serde_json::Map::new()
    } else {
        serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v.as_object().cloned())
            .ok_or_else(|| GraphFail::new(400, 100, "Invalid parameter", "The request body must be a JSON object."))?
    };
    merge_params(&mut body, &query);
    let body = Value::Object(body);
    let message_type = body.get("type").and_then(Value::as_str).unwrap_or("text").to_string();
    let to = body
        .get("to")
        .or_else(|| body.get("recipient"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let late = fault_gate(&state, "/messages", Some(&message_type), to.as_deref()).await?;
    let arrived = arrived.map(|a| a.0 .0).unwrap_or_else(now_ms);
    let answer = accept_send(&state, &node, &message_type, to, body, arrived)?;
    if let Some(d) = late {
        tokio::time::sleep(d).await;
    }
    Ok(answer)
}

fn accept_send(
    state: &Arc<SimState>,
    node: &str,
    message_type: &str,
    to: Option<String>,
    body: Value,
    arrived_ms: i64,
) -> Result<Json<Value>, GraphFail> {
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
        let Some(message_id) = body.get("message_id").and_then(Value::as_str) else {
            return Err(GraphFail::new(
                400,
                131008,
                "Required parameter is missing",
                "The parameter message_id is required.",
            ));
        };
        if !state.knows_inbound_wamid(message_id) {
            return Err(GraphFail::new(
                400,
                131009,
                "Parameter value is not valid",
                format!("Invalid message_id: {message_id} is not a message this phone number received."),
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
    // A business-scoped user id (`US.1349…`) names a user without their phone number.
    let by_user_id = to.contains('.') && !to.starts_with('+');
    let recipient = if by_user_id {
        state.find_user(&to).ok_or_else(|| {
            GraphFail::new(
                400,
                131009,
                "Parameter value is not valid",
                format!("The recipient {to} is not a known business-scoped user id."),
            )
        })?
    } else {
        let wa_id: String = to.chars().filter(char::is_ascii_digit).collect();
        if wa_id.len() < 7 || wa_id.len() > 15 {
            return Err(GraphFail::new(
                400,
                131009,
                "Parameter value is not valid",
                format!("The parameter to ({to}) is not a valid phone number."),
            ));
        }
        state.user_for_wa_id(&wa_id)
    };
    if state.numbers.is_deregistered(node) {
        return Err(GraphFail::new(
            400,
            133010,
            "Account not registered",
            "The phone number is not registered on the Cloud API; register it with POST /{phone-number-id}/register.",
        ));
    }
    let category = validate(state, message_type, &body)?;
    if body.pointer("/interactive/type").and_then(Value::as_str) == Some("call_permission_request") {
        state
            .numbers
            .asked_permission(node, recipient.wa_id.as_deref().unwrap_or(&recipient.user_id));
    }
    let identity = recipient.wa_id.clone().unwrap_or_else(|| recipient.user_id.clone());
    let wamid = wagate_core::ids::wamid(&identity, true);
    state.record_sent(SentRecord {
        wamid: wamid.clone(),
        phone_number_id: node.to_string(),
        to: to.clone(),
        body: body.clone(),
        received_at_ms: arrived_ms,
    });
    let window_open = state.window_open(&identity, now_ms()) || state.window_open(&recipient.user_id, now_ms());
    let contact = if by_user_id {
        json!({"input": to, "user_id": recipient.user_id})
    } else {
        json!({"input": to, "wa_id": identity})
    };
    webhooks::spawn_statuses(
        state.clone(),
        webhooks::StatusPlan {
            wamid: wamid.clone(),
            recipient,
            fails_131047: category.is_none() && !window_open,
            template_category: category,
            only_sent: message_type == "reaction",
            biz_opaque: body.get("biz_opaque_callback_data").cloned(),
            business: state.business_by_phone(node).unwrap_or_else(|| state.primary()),
        },
    );
    let mut message = json!({"id": wamid});
    if message_type == "template" {
        message["message_status"] = json!("accepted");
    }
    Ok(Json(json!({
        "messaging_product": "whatsapp",
        "contacts": [contact],
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
            if message_type == "interactive" {
                crate::numbers::check_objects(body)?;
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

/// `GET /_sim/sent`: what the business sent; `?count` answers only how many (cheap: listing
/// thousands holds the simulator's state while it copies them, which delays the sends arriving
/// meanwhile, so a client watching progress under load asks for the count).
pub async fn list_sent(
    State(state): State<Arc<SimState>>,
    Query(query): Query<HashMap<String, String>>,
) -> Json<Value> {
    if query.contains_key("count") {
        return Json(json!({"count": state.sent_count()}));
    }
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
#[serde(deny_unknown_fields)]
pub struct Settings {
    webhook_url: Option<String>,
    /// Delays in ms before the sent, delivered and read webhooks.
    status_delays_ms: Option<[u64; 3]>,
    /// The most templates one `message_templates` page holds (Meta pages at 100 or less).
    template_page_size: Option<usize>,
    /// The Graph version the app's webhooks follow (`v23.0`; from v24 statuses have no
    /// `conversation`).
    webhook_version: Option<String>,
    /// Whether webhooks carry parent business-scoped user ids.
    parent_user_ids: Option<bool>,
    /// Multiplies Meta's seven-day webhook retry schedule (`0.001`: minutes instead of days).
    webhook_retry_scale: Option<f64>,
    /// The token Graph accepts from now on (the old one gets 190), as when a token expires or
    /// is rotated in Business Settings.
    access_token: Option<String>,
    /// The rates `pricing_analytics` prices delivered messages with, per category.
    pricing_rates: Option<std::collections::BTreeMap<String, f64>>,
}

pub async fn update_settings(
    State(state): State<Arc<SimState>>,
    JsonBody(s): JsonBody<Settings>,
) -> Result<Json<Value>, (StatusCode, Json<Value>)> {
    let bad = |msg: &str| (StatusCode::BAD_REQUEST, Json(json!({"error": msg})));
    if let Some(v) = &s.webhook_version {
        if !v.starts_with('v') || crate::state::major_version(v) == u32::MAX {
            return Err(bad("webhook_version must look like v23.0"));
        }
    }
    if s.webhook_retry_scale.is_some_and(|x| !(x > 0.0 && x <= 1.0)) {
        return Err(bad("webhook_retry_scale must be above 0 and at most 1"));
    }
    if s.access_token.as_deref().is_some_and(|t| t.trim().is_empty()) {
        return Err(bad("access_token must not be empty"));
    }
    if let Some(url) = s.webhook_url {
        state.set_webhook_url(Some(url));
    }
    if let Some(t) = s.access_token {
        state.set_access_token(t);
    }
    if let Some(d) = s.status_delays_ms {
        state.set_status_delays(d.map(std::time::Duration::from_millis));
    }
    if let Some(n) = s.template_page_size {
        state.set_template_page_size(n);
    }
    if let Some(v) = s.webhook_version {
        state.set_webhook_version(v);
    }
    if let Some(p) = s.parent_user_ids {
        state.set_parent_user_ids(p);
    }
    if let Some(x) = s.webhook_retry_scale {
        state.set_webhook_retry_scale(x);
    }
    if let Some(rates) = s.pricing_rates {
        if rates.values().any(|r| !r.is_finite() || *r < 0.0) {
            return Err(bad("pricing_rates must be numbers, 0 or more"));
        }
        state.set_pricing_rates(rates);
    }
    Ok(Json(json!({
        "webhook_url": state.webhook_url(),
        "status_delays_ms": state.status_delays().map(|d| d.as_millis() as u64),
        "webhook_version": state.webhook_version(),
        "parent_user_ids": state.parent_user_ids(),
        "webhook_retry_scale": state.webhook_retry_scale(),
        // Webhooks not sent because the app was not subscribed to their WABA.
        "unsubscribed_drops": state.unsubscribed_drops(),
    })))
}
