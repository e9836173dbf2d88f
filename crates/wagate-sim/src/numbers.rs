//! A phone number's management endpoints, as Meta serves them: settings, verification codes,
//! deregistration, the two-step PIN, blocked users, QR codes, commerce settings and call
//! permissions; and the WABA's flows, which flow messages must name.
//!
//! The simulator's verification code is always `123456` (after `request_code`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use axum::extract::{FromRequest, Path, Query, State};
use axum::http::{HeaderMap, Method};
use axum::Json;
use serde_json::{json, Map, Value};

use crate::graph::{check_token, merge_params, unknown_object, GraphFail};
use crate::state::SimState;

/// The code `verify_code` takes once one was requested.
pub const VERIFICATION_CODE: &str = "123456";

/// The catalog every simulated WABA has: product messages must name it.
pub const CATALOG_ID: &str = "1144232363442290";

/// A flow of the WABA: `(id, name, status, categories)`.
const FLOWS: [(&str, &str, &str, &str); 3] = [
    (
        "1234567890123456",
        "appointment_booking",
        "PUBLISHED",
        "APPOINTMENT_BOOKING",
    ),
    ("1299474981293487", "lead_signup", "PUBLISHED", "SIGN_UP"),
    ("9871212127619834", "survey_draft", "DRAFT", "SURVEY"),
];

/// Whether a flow message's `flow_id` or `flow_name` names a flow of the WABA (drafts only in
/// draft mode).
pub fn flow_exists(id: Option<&str>, name: Option<&str>, draft: bool) -> bool {
    FLOWS
        .iter()
        .any(|(fid, fname, status, _)| (Some(*fid) == id || Some(*fname) == name) && (draft || *status == "PUBLISHED"))
}

#[derive(Default)]
struct Inner {
    settings: HashMap<String, Map<String, Value>>,
    code_requested: HashSet<String>,
    deregistered: HashSet<String>,
    pins: HashMap<String, String>,
    blocked: HashMap<String, Vec<String>>,
    qr: HashMap<String, BTreeMap<String, Value>>,
    commerce: HashMap<String, (bool, bool)>,
    permission_asked: HashSet<String>,
}

/// The per-number state of these endpoints.
#[derive(Default)]
pub struct Numbers(Mutex<Inner>);

impl Numbers {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the number was deregistered (and not registered again): Meta refuses its sends.
    pub fn is_deregistered(&self, phone: &str) -> bool {
        self.lock().deregistered.contains(phone)
    }

    pub fn registered(&self, phone: &str) {
        self.lock().deregistered.remove(phone);
    }

    pub fn is_blocked(&self, phone: &str, wa_id: &str) -> bool {
        self.lock()
            .blocked
            .get(phone)
            .is_some_and(|b| b.iter().any(|u| u == wa_id))
    }

    /// The business asked the user for call permission (an interactive `call_permission_request`).
    pub fn asked_permission(&self, phone: &str, wa_id: &str) {
        self.lock().permission_asked.insert(format!("{phone}/{wa_id}"));
    }
}

/// A call on one of the simulator's phone numbers: the token checked, the number known, and
/// Graph's parameters read from the body and the query.
pub struct NumberCall {
    state: Arc<SimState>,
    method: Method,
    /// The path after the version: the number's id, its edge, and what follows.
    segments: Vec<String>,
    params: Map<String, Value>,
}

impl FromRequest<Arc<SimState>> for NumberCall {
    type Rejection = GraphFail;

    async fn from_request(req: axum::extract::Request, state: &Arc<SimState>) -> Result<Self, GraphFail> {
        let (parts, body) = req.into_parts();
        let segments: Vec<String> = parts
            .uri
            .path()
            .trim_start_matches('/')
            .split('/')
            .skip(1)
            .map(str::to_string)
            .collect();
        check_token(state, &parts.headers)?;
        let node = segments.first().map(String::as_str).unwrap_or_default();
        if state.business_by_phone(node).is_none() {
            return Err(unknown_object(parts.method.as_str(), node));
        }
        let query: HashMap<String, String> = Query::try_from_uri(&parts.uri).map(|q| q.0).unwrap_or_default();
        let bytes = axum::body::to_bytes(body, 1 << 20)
            .await
            .map_err(|_| invalid("The request body is too large."))?;
        let mut params = if bytes.is_empty() {
            Map::new()
        } else {
            match serde_json::from_slice::<Value>(&bytes) {
                Ok(Value::Object(m)) => m,
                _ => return Err(invalid("The request body must be a JSON object.")),
            }
        };
        merge_params(&mut params, &query);
        Ok(Self {
            state: state.clone(),
            method: parts.method,
            segments,
            params,
        })
    }
}

impl NumberCall {
    fn node(&self) -> String {
        self.segments.first().cloned().unwrap_or_default()
    }

    fn text(&self, key: &str) -> Option<&str> {
        self.params.get(key).and_then(Value::as_str)
    }

    fn numbers(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.state.numbers.lock()
    }
}

fn invalid(details: impl Into<String>) -> GraphFail {
    GraphFail::new(400, 100, "Invalid parameter", details)
}

fn missing(what: &str) -> GraphFail {
    GraphFail::new(
        400,
        100,
        "Invalid parameter",
        format!("The parameter {what} is required."),
    )
}

type Answer = Result<Json<Value>, GraphFail>;

fn success() -> Answer {
    Ok(Json(json!({"success": true})))
}

fn default_settings() -> Map<String, Value> {
    json!({
        "calling": {"status": "disabled", "call_icon_visibility": "DEFAULT", "callback_permission_status": "disabled"},
        "payload_encryption": {"status": "disabled"},
        "storage_configuration": {"status": "default"},
    })
    .as_object()
    .cloned()
    .unwrap_or_default()
}

/// `GET /{phone}/settings`, and `POST` with `calling`, `payload_encryption`,
/// `storage_configuration` or `user_identity_change`, each an object.
pub async fn settings(c: NumberCall) -> Answer {
    let node = c.node();
    if c.method == Method::GET {
        let settings = c.numbers().settings.get(&node).cloned();
        return Ok(Json(Value::Object(settings.unwrap_or_else(default_settings))));
    }
    if c.params.is_empty() {
        return Err(missing(
            "calling, payload_encryption, storage_configuration or user_identity_change",
        ));
    }
    let mut inner = c.numbers();
    let mut settings = inner.settings.get(&node).cloned().unwrap_or_else(default_settings);
    for (k, v) in &c.params {
        if ![
            "calling",
            "payload_encryption",
            "storage_configuration",
            "user_identity_change",
        ]
        .contains(&k.as_str())
        {
            return Err(invalid(format!("Param {k} is not a phone number setting.")));
        }
        let Value::Object(fields) = v else {
            return Err(invalid(format!("Param {k} must be an object.")));
        };
        if k == "calling"
            && fields
                .get("status")
                .and_then(Value::as_str)
                .is_some_and(|s| s != "enabled" && s != "disabled")
        {
            return Err(invalid("Param calling.status must be enabled or disabled."));
        }
        if let Some(e) = settings.entry(k.clone()).or_insert_with(|| json!({})).as_object_mut() {
            e.extend(fields.clone());
        }
    }
    inner.settings.insert(node, settings);
    success()
}

/// `POST /{phone}/request_code`: `code_method` SMS or VOICE, and a `language`.
pub async fn request_code(c: NumberCall) -> Answer {
    match c.text("code_method") {
        Some("SMS" | "VOICE") => {}
        Some(m) => return Err(invalid(format!("Param code_method must be SMS or VOICE, not {m}."))),
        None => return Err(missing("code_method")),
    }
    if c.text("language").is_none_or(str::is_empty) {
        return Err(missing("language"));
    }
    c.numbers().code_requested.insert(c.node());
    success()
}

/// `POST /{phone}/verify_code`: the code sent (the simulator's is `123456`).
pub async fn verify_code(c: NumberCall) -> Answer {
    let Some(code) = c.text("code") else {
        return Err(missing("code"));
    };
    let node = c.node();
    let mut inner = c.numbers();
    if !inner.code_requested.contains(&node) || code != VERIFICATION_CODE {
        return Err(GraphFail::new(
            400,
            136025,
            "Code couldn't be verified",
            "The code is wrong or was not requested (POST /{phone-number-id}/request_code first).",
        ));
    }
    inner.code_requested.remove(&node);
    Ok(Json(json!({"success": true, "id": node})))
}

/// `POST /{phone}/deregister`: the number stops sending until registered again.
pub async fn deregister(c: NumberCall) -> Answer {
    c.numbers().deregistered.insert(c.node());
    success()
}

/// `POST /{phone}`: the two-step verification PIN (`{"pin": "123456"}`).
pub async fn update_number(c: NumberCall) -> Answer {
    let Some(pin) = c.params.get("pin") else {
        return Err(missing("pin"));
    };
    match pin.as_str() {
        Some(p) if p.len() == 6 && p.chars().all(|c| c.is_ascii_digit()) => {
            c.numbers().pins.insert(c.node(), p.to_string());
            success()
        }
        _ => Err(invalid("Param pin must be 6 digits.")),
    }
}

/// The users of a `block_users` body: `[{"user": "+16505551234"}]`.
fn block_list(body: &Map<String, Value>) -> Result<Vec<(String, String)>, GraphFail> {
    if body.get("messaging_product").and_then(Value::as_str) != Some("whatsapp") {
        return Err(invalid(
            "The parameter messaging_product is required and must be 'whatsapp'.",
        ));
    }
    let Some(users) = body.get("block_users").and_then(Value::as_array) else {
        return Err(missing("block_users"));
    };
    users
        .iter()
        .map(|u| {
            let input = u.get("user").and_then(Value::as_str).unwrap_or_default().to_string();
            let wa_id: String = input.chars().filter(char::is_ascii_digit).collect();
            if !(7..=15).contains(&wa_id.len()) {
                return Err(invalid(format!("Param block_users: `{input}` is not a phone number.")));
            }
            Ok((input, wa_id))
        })
        .collect()
}

/// `GET /{phone}/block_users`, `POST` (block) and `DELETE` (unblock) with `block_users`.
pub async fn block(c: NumberCall) -> Answer {
    let node = c.node();
    if c.method == Method::GET {
        let data: Vec<Value> = c
            .numbers()
            .blocked
            .get(&node)
            .into_iter()
            .flatten()
            .map(|w| json!({"messaging_product": "whatsapp", "wa_id": w}))
            .collect();
        return Ok(Json(
            json!({"data": data, "paging": {"cursors": {"before": "", "after": ""}}}),
        ));
    }
    let users = block_list(&c.params)?;
    let adding = c.method == Method::POST;
    let mut inner = c.numbers();
    let list = inner.blocked.entry(node).or_default();
    let mut done = Vec::new();
    for (input, wa_id) in users {
        list.retain(|w| w != &wa_id);
        if adding {
            list.push(wa_id.clone());
        }
        done.push(json!({"input": input, "wa_id": wa_id}));
    }
    let key = if adding { "added_users" } else { "removed_users" };
    Ok(Json(
        json!({"messaging_product": "whatsapp", "block_users": {key: done}}),
    ))
}

fn qr_json(code: &str, message: &str, image: Option<&str>) -> Value {
    let mut qr = json!({
        "code": code,
        "prefilled_message": message,
        "deep_link_url": format!("https://wa.me/message/{code}"),
    });
    if let Some(format) = image {
        qr["qr_image_url"] = json!(format!(
            "https://scontent.whatsapp.net/sim/qr/{code}.{}",
            format.to_ascii_lowercase()
        ));
    }
    qr
}

/// `GET /{phone}/message_qrdls`, and `POST` for a new code (or an update when `code` names one),
/// `generate_qr_image` PNG or SVG.
pub async fn qr_codes(c: NumberCall) -> Answer {
    let node = c.node();
    if c.method == Method::GET {
        let data: Vec<Value> = c
            .numbers()
            .qr
            .get(&node)
            .into_iter()
            .flat_map(|m| m.values().cloned())
            .collect();
        return Ok(Json(json!({"data": data})));
    }
    let Some(message) = c.text("prefilled_message") else {
        return Err(missing("prefilled_message"));
    };
    if message.chars().count() > 140 {
        return Err(invalid("Param prefilled_message must be at most 140 characters."));
    }
    let image = match c.text("generate_qr_image").map(str::to_ascii_uppercase) {
        None => None,
        Some(f) if f == "SVG" || f == "PNG" => Some(f),
        Some(f) => return Err(invalid(format!("Param generate_qr_image must be SVG or PNG, not {f}."))),
    };
    let mut inner = c.numbers();
    let codes = inner.qr.entry(node).or_default();
    let code = match c.text("code") {
        Some(code) if codes.contains_key(code) => code.to_string(),
        Some(code) => return Err(unknown_object("post", code)),
        None => crate::state::random_hex(7).to_ascii_uppercase(),
    };
    codes.insert(code.clone(), qr_json(&code, message, None));
    Ok(Json(qr_json(&code, message, image.as_deref())))
}

/// `GET /{phone}/message_qrdls/{code}`, `DELETE` of the same, and `POST` with a new
/// `prefilled_message`.
pub async fn qr_code(c: NumberCall) -> Answer {
    let (node, code) = (c.node(), c.segments.get(2).cloned().unwrap_or_default());
    let message = c.text("prefilled_message").map(str::to_string);
    let mut inner = c.numbers();
    let codes = inner.qr.entry(node).or_default();
    let Some(qr) = codes.get(&code).cloned() else {
        return Err(unknown_object(c.method.as_str(), &code));
    };
    match c.method {
        Method::DELETE => {
            codes.remove(&code);
            success()
        }
        Method::POST => {
            let Some(message) = message else {
                return Err(missing("prefilled_message"));
            };
            let qr = qr_json(&code, &message, None);
            codes.insert(code, qr.clone());
            Ok(Json(qr))
        }
        _ => Ok(Json(json!({"data": [qr]}))),
    }
}

/// `GET /{phone}/whatsapp_commerce_settings`, and `POST` with `is_cart_enabled` and/or
/// `is_catalog_visible` (query or body).
pub async fn commerce(c: NumberCall) -> Answer {
    let node = c.node();
    if c.method == Method::GET {
        let (cart, visible) = c.numbers().commerce.get(&node).copied().unwrap_or((true, true));
        return Ok(Json(
            json!({"data": [{"id": format!("{node}0"), "is_cart_enabled": cart, "is_catalog_visible": visible}]}),
        ));
    }
    let flag = |k: &str| -> Result<Option<bool>, GraphFail> {
        match c.params.get(k) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) if s == "true" || s == "false" => Ok(Some(s == "true")),
            Some(_) => Err(invalid(format!("Param {k} must be a boolean."))),
        }
    };
    let (cart, visible) = (flag("is_cart_enabled")?, flag("is_catalog_visible")?);
    if cart.is_none() && visible.is_none() {
        return Err(missing("is_cart_enabled or is_catalog_visible"));
    }
    let mut inner = c.numbers();
    let entry = inner.commerce.entry(node).or_insert((true, true));
    *entry = (cart.unwrap_or(entry.0), visible.unwrap_or(entry.1));
    success()
}

/// `GET /{phone}/call_permissions?user_wa_id=…`: `denied` (the business may ask) until it asks
/// with an interactive `call_permission_request`, then `pending`.
pub async fn call_permissions(c: NumberCall) -> Answer {
    let Some(user) = c.text("user_wa_id").filter(|u| !u.is_empty()) else {
        return Err(missing("user_wa_id"));
    };
    let asked = c.numbers().permission_asked.contains(&format!("{}/{user}", c.node()));
    let answer = if asked {
        json!({"messaging_product": "whatsapp", "permission": {"status": "pending"}, "actions": [
            {"action_name": "start_call", "can_perform_action": false},
            {"action_name": "send_call_permission_request", "can_perform_action": false}]})
    } else {
        json!({"messaging_product": "whatsapp", "permission": {"status": "denied"}, "actions": [
            {"action_name": "start_call", "can_perform_action": false},
            {"action_name": "send_call_permission_request", "can_perform_action": true,
             "limits": [{"time_period": "24h", "current_usage": 0, "max_allowed": 5}]}]})
    };
    Ok(Json(answer))
}

/// `GET /{waba}/flows` (`fields` as Graph takes them: `preview.invalidate(true)` is `preview`).
pub async fn flows(
    State(state): State<Arc<SimState>>,
    Path((_v, waba)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Json<Value>, GraphFail> {
    check_token(&state, &headers)?;
    if state.business_by_waba(&waba).is_none() {
        return Err(unknown_object("get", &waba));
    }
    let stamp = wagate_core::time::graph_time;
    let now = crate::state::now_ms();
    let data: Vec<Value> = FLOWS
        .iter()
        .map(|(id, name, status, category)| {
            let flow = json!({
                "id": id, "name": name, "status": status, "categories": [category], "validation_errors": [],
                "json_version": "6.0", "data_api_version": "3.0",
                "updated_at": stamp(now - 86_400_000),
                "preview": {"preview_url": format!("https://business.facebook.com/wa/manage/flows/{id}/preview/?token=sim"),
                            "expires_at": stamp(now + 30 * 86_400_000)},
            });
            crate::nodes::select(
                flow.as_object().cloned().unwrap_or_default(),
                q.get("fields"),
                &["id", "name", "status", "categories", "validation_errors"],
            )
        })
        .collect();
    Ok(Json(
        json!({"data": data, "paging": {"cursors": {"before": "QVFIUmZA", "after": "QVFIUmZA"}}}),
    ))
}

/// Refuses an interactive message that names an object the business does not have, as Meta
/// does: a flow that is not the WABA's (a draft only in draft mode), a catalog that is not its
/// catalog (product, product list and product carousel messages).
pub fn check_objects(body: &Value) -> Result<(), GraphFail> {
    let not_found = |what: String| GraphFail::new(400, 131009, "Parameter value is not valid", what);
    let Some(i) = body.get("interactive") else {
        return Ok(());
    };
    let action = &i["action"];
    match i["type"].as_str() {
        Some("flow") => {
            let p = &action["parameters"];
            let draft = p["mode"].as_str() == Some("draft");
            let (id, name) = (p["flow_id"].as_str(), p["flow_name"].as_str());
            if !flow_exists(id, name, draft) {
                return Err(not_found(format!(
                    "Flow {} does not exist, is not published, or does not belong to this business.",
                    id.or(name).unwrap_or_default()
                )));
            }
        }
        Some("product" | "product_list") => catalog(action["catalog_id"].as_str(), &not_found)?,
        Some("carousel") => {
            for card in action["cards"].as_array().into_iter().flatten() {
                if card["type"].as_str() == Some("product") {
                    catalog(card["action"]["catalog_id"].as_str(), &not_found)?;
                }
            }
        }
        _ => {}
    }
    Ok(())
}

fn catalog(id: Option<&str>, not_found: &dyn Fn(String) -> GraphFail) -> Result<(), GraphFail> {
    match id {
        Some(CATALOG_ID) => Ok(()),
        Some(other) => Err(not_found(format!(
            "Catalog {other} does not exist or is not connected to this WhatsApp Business Account."
        ))),
        None => Err(missing("catalog_id")),
    }
}
