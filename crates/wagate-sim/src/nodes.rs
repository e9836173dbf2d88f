//! Graph nodes read by id (`GET /{id}`: the phone number, the WABA, a template, a media file),
//! the phone number list and business profile, the simulated users of the control API, and
//! Graph's JSON answer for everything the simulator does not know.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::body::JsonBody;
use crate::graph::{check_phone, check_token, merge_params, unknown_object, GraphFail};
use crate::state::SimState;

pub use wagate_core::graphjson::select;

fn phone_number(state: &SimState, c: &crate::state::Business) -> Map<String, Value> {
    json!({
        "id": c.phone_number_id,
        "display_phone_number": wagate_core::phone::international(&c.display_phone_number),
        "verified_name": c.verified_name,
        "quality_rating": "GREEN",
        "code_verification_status": "VERIFIED",
        "name_status": "APPROVED",
        "status": "CONNECTED",
        "platform_type": "CLOUD_API",
        "account_mode": "LIVE",
        "throughput": {"level": "STANDARD"},
        "messaging_limit_tier": "TIER_2K",
        "whatsapp_business_manager_messaging_limit": "TIER_2K",
        "is_official_business_account": false,
        "webhook_configuration": {"application": state.webhook_url().unwrap_or_default()},
    })
    .as_object()
    .cloned()
    .unwrap_or_default()
}

const PHONE_DEFAULT_FIELDS: [&str; 4] = ["id", "display_phone_number", "verified_name", "quality_rating"];
/// The list's default fields: Meta's documented example, plus `status`, which Meta's OpenAPI
/// specification marks required.
const PHONE_LIST_FIELDS: [&str; 8] = [
    "status",
    "id",
    "display_phone_number",
    "verified_name",
    "quality_rating",
    "code_verification_status",
    "platform_type",
    "throughput",
];

/// `GET /{id}`: whichever node the id names.
pub async fn get_node(
    State(state): State<Arc<SimState>>,
    Path((version, id)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, GraphFail> {
    if version == "_sim" {
        return Ok(control_not_found(&Method::GET, &format!("/_sim/{id}")));
    }
    check_token(&state, &headers)?;
    let fields = q.get("fields");
    if let Some(b) = state.business_by_phone(&id) {
        return Ok(Json(select(phone_number(&state, &b), fields, &PHONE_DEFAULT_FIELDS)).into_response());
    }
    if let Some(b) = state.business_by_waba(&id) {
        let waba = json!({
            "id": id,
            "name": b.verified_name,
            "timezone_id": "1",
            "message_template_namespace": "c8ae5f90_307a_ca4c_b8f6_d1e2a2573574",
            "currency": "USD",
            "business_verification_status": "verified",
            "account_review_status": "APPROVED",
            "health_status": {"can_send_message": "AVAILABLE"},
        });
        let obj = waba.as_object().cloned().unwrap_or_default();
        // `pricing_analytics.start(…).end(…)…`: a field with modifiers, answered from what was
        // delivered.
        let analytics = fields.and_then(|f| state.pricing_analytics(f, &id));
        let mut answer = select(
            obj,
            fields,
            &["id", "name", "timezone_id", "message_template_namespace"],
        );
        if let (Some(a), Some(o)) = (analytics, answer.as_object_mut()) {
            o.insert("pricing_analytics".into(), a);
        }
        return Ok(Json(answer).into_response());
    }
    if let Some(t) = state.template_by_id(&id) {
        let obj = crate::templates::to_json(&t).as_object().cloned().unwrap_or_default();
        return Ok(Json(select(obj, fields, &crate::templates::DEFAULT_FIELDS)).into_response());
    }
    crate::media::get_url(State(state), Path((version, id)), headers)
        .await
        .map(IntoResponse::into_response)
}

/// `GET /{waba_id}/phone_numbers`.
pub async fn phone_numbers(
    State(state): State<Arc<SimState>>,
    Path((_version, waba)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Json<Value>, GraphFail> {
    check_token(&state, &headers)?;
    let Some(b) = state.business_by_waba(&waba) else {
        return Err(unknown_object("get", &waba));
    };
    let number = select(phone_number(&state, &b), q.get("fields"), &PHONE_LIST_FIELDS);
    Ok(Json(json!({
        "data": [number],
        "paging": {"cursors": {"before": "QVFIUk5UZAG5", "after": "QVFIUk5UZAG5"}},
    })))
}

const PROFILE_FIELDS: [&str; 7] = [
    "about",
    "address",
    "description",
    "email",
    "profile_picture_url",
    "websites",
    "vertical",
];

const VERTICALS: [&str; 19] = [
    "UNDEFINED",
    "OTHER",
    "AUTO",
    "BEAUTY",
    "APPAREL",
    "EDU",
    "ENTERTAIN",
    "EVENT_PLAN",
    "FINANCE",
    "GROCERY",
    "GOVT",
    "HOTEL",
    "HEALTH",
    "NONPROFIT",
    "PROF_SERVICES",
    "RETAIL",
    "TRAVEL",
    "RESTAURANT",
    "NOT_A_BIZ",
];

/// `GET /{phone_number_id}/whatsapp_business_profile`.
pub async fn get_profile(
    State(state): State<Arc<SimState>>,
    Path((_version, node)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Json<Value>, GraphFail> {
    check_token(&state, &headers)?;
    if state.business_by_phone(&node).is_none() {
        return Err(unknown_object("get", &node));
    }
    let mut profile = select(state.business_profile(), q.get("fields"), &PROFILE_FIELDS);
    profile["messaging_product"] = json!("whatsapp");
    if let Some(o) = profile.as_object_mut() {
        o.remove("id");
    }
    Ok(Json(json!({"data": [profile]})))
}

/// `POST /{phone_number_id}/whatsapp_business_profile`: Meta's limits (about ≤139 characters,
/// description ≤512, address and email ≤256, ≤2 websites, a known vertical).
pub async fn update_profile(
    State(state): State<Arc<SimState>>,
    Path((_version, node)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<Value>, GraphFail> {
    check_token(&state, &headers)?;
    check_phone(&state, &node)?;
    let mut body = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default();
    merge_params(&mut body, &q);
    let invalid = |d: String| GraphFail::new(400, 100, "Invalid parameter", d);
    if body
        .remove("messaging_product")
        .and_then(|v| v.as_str().map(str::to_string))
        .as_deref()
        != Some("whatsapp")
    {
        return Err(invalid(
            "The parameter messaging_product is required and must be 'whatsapp'.".into(),
        ));
    }
    let mut update = Map::new();
    for (k, v) in body {
        let limit = match k.as_str() {
            "about" => 139,
            "description" => 512,
            "address" | "email" => 256,
            "vertical" | "websites" | "profile_picture_handle" => usize::MAX,
            _ => return Err(invalid(format!("Param {k} is not a business profile field."))),
        };
        match (&*k, &v) {
            ("websites", Value::Array(sites)) if sites.len() <= 2 && sites.iter().all(Value::is_string) => {}
            ("websites", _) => return Err(invalid("Param websites must be a list of at most 2 URLs.".into())),
            ("vertical", Value::String(x)) if VERTICALS.contains(&x.as_str()) => {}
            ("vertical", _) => {
                return Err(invalid(format!(
                    "Param vertical must be one of {}.",
                    VERTICALS.join(", ")
                )))
            }
            (_, Value::String(x)) if x.chars().count() <= limit => {}
            _ => {
                return Err(invalid(format!(
                    "Param {k} must be a string of at most {limit} characters."
                )))
            }
        }
        if k == "profile_picture_handle" {
            update.insert(
                "profile_picture_url".into(),
                json!("https://pps.whatsapp.net/v/sim-profile-picture.jpg"),
            );
        } else {
            update.insert(k, v);
        }
    }
    state.update_business_profile(update);
    Ok(Json(json!({"success": true})))
}

/// Graph's answer for paths and methods it does not serve, always a JSON `error` object: an
/// unknown object id is code 100 with subcode 33; an unknown edge of a known node is code 100
/// ("Tried accessing nonexisting field"); anything else is code 2500 ("Unknown path components").
pub async fn fallback(State(state): State<Arc<SimState>>, method: Method, uri: Uri) -> Response {
    let segments: Vec<&str> = uri.path().trim_matches('/').split('/').collect();
    if segments.first() == Some(&"_sim") {
        return control_not_found(&method, uri.path());
    }
    let versioned = segments
        .first()
        .is_some_and(|v| v.starts_with('v') && v[1..].split('.').all(|p| p.parse::<u32>().is_ok()));
    let rest = &segments[usize::from(versioned)..];
    let node_type = |id: &str| {
        if state.business_by_phone(id).is_some() {
            Some("WhatsAppBusinessPhoneNumber")
        } else if state.business_by_waba(id).is_some() {
            Some("WhatsAppBusinessAccount")
        } else {
            None
        }
    };
    let numeric = |id: &str| !id.is_empty() && id.chars().all(|c| c.is_ascii_digit());
    let mut e = wagate_core::meta::MetaError::new(100, "", "");
    e.error_data = None;
    // Edges the simulator serves (with other methods than this one).
    const EDGES: [&str; 15] = [
        "messages",
        "media",
        "message_templates",
        "phone_numbers",
        "whatsapp_business_profile",
        "settings",
        "request_code",
        "verify_code",
        "register",
        "deregister",
        "block_users",
        "message_qrdls",
        "whatsapp_commerce_settings",
        "call_permissions",
        "flows",
    ];
    match rest {
        [id, edge] if node_type(id).is_some() && !EDGES.contains(edge) => {
            e.message = Some(format!(
                "(#100) Tried accessing nonexisting field ({edge}) on node type ({})",
                node_type(id).unwrap_or_default()
            ));
        }
        [id] | [id, _] if numeric(id) => return unknown_object(method.as_str(), id).into_response(),
        _ => {
            e.code = 2500;
            e.message = Some(format!("Unknown path components: /{}", rest.join("/")));
        }
    }
    GraphFail::from_error(StatusCode::BAD_REQUEST, e).into_response()
}

fn control_not_found(method: &Method, path: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({"error": format!("the simulator's control API has no {method} {path}; see the README's simulator section")})),
    )
        .into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    wa_id: Option<String>,
    username: Option<String>,
    name: Option<String>,
    /// ISO 3166 country of a user without a phone number (default `US`).
    country: Option<String>,
}

/// `POST /_sim/users`: a simulated user, with a phone number, a username, or both.
pub async fn create_user(
    State(state): State<Arc<SimState>>,
    JsonBody(u): JsonBody<NewUser>,
) -> (StatusCode, Json<Value>) {
    let bad = |msg: String| (StatusCode::BAD_REQUEST, Json(json!({"error": msg})));
    if u.wa_id.is_none() && u.username.is_none() {
        return bad("give a wa_id (phone number digits), a username, or both".into());
    }
    if let Some(w) = &u.wa_id {
        if !(7..=15).contains(&w.len()) || !w.chars().all(|c| c.is_ascii_digit()) {
            return bad(format!(
                "wa_id `{w}` must be 7 to 15 digits, the phone number with its country code and no +"
            ));
        }
    }
    if let Some(name) = &u.username {
        let bare = name.strip_prefix('@').unwrap_or(name);
        if bare.is_empty() || !bare.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.') {
            return bad(format!("username `{name}` must be letters, digits, `_` or `.`"));
        }
    }
    if let Some(c) = &u.country {
        if c.len() != 2 || !c.chars().all(|x| x.is_ascii_alphabetic()) {
            return bad(format!("country `{c}` must be a two-letter ISO code such as US or BR"));
        }
    }
    let username = u.username.map(|n| n.trim_start_matches('@').to_string());
    match state.create_user(u.wa_id, username, u.name, u.country) {
        Ok(user) => (StatusCode::CREATED, Json(json!(user))),
        Err(e) => (StatusCode::CONFLICT, Json(json!({"error": e}))),
    }
}

/// `GET /_sim/users`.
pub async fn list_users(State(state): State<Arc<SimState>>) -> Json<Value> {
    Json(json!({"data": state.users()}))
}
