//! Meta's "Connect WhatsApp" flow as the simulator plays it: the OAuth dialog (a business that
//! consents at once, or refuses with `&deny=1`), the code exchange, `debug_token`, the app's
//! subscription to a WABA and a number's registration.
//!
//! Knobs on the dialog URL, for tests of what a business may do there: `deny=1` (refuses),
//! `grant=<scope,scope>` (grants only these), `waba=none` (shares no WABA).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::graph::{bearer, check_token, unknown_object, GraphFail};
use crate::state::{now_ms, Grant, SimState};

const SCOPES: [&str; 2] = ["whatsapp_business_management", "whatsapp_business_messaging"];

/// The app's own token, `app_id|app_secret`.
fn app_token(state: &SimState) -> String {
    format!("{}|{}", state.config.app_id, state.config.app_secret)
}

fn redirect(to: &str) -> Response {
    (StatusCode::FOUND, [(header::LOCATION, to.to_string())]).into_response()
}

fn with_query(base: &str, pairs: &[(&str, &str)]) -> String {
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs.iter().copied())
        .finish();
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}{query}")
}

/// `GET /{version}/dialog/oauth`: the business consents (or refuses) at once, and the browser
/// goes back to `redirect_uri` with `code` and `state` (or `error=access_denied`).
pub async fn dialog(State(state): State<Arc<SimState>>, Query(q): Query<HashMap<String, String>>) -> Response {
    let get = |k: &str| q.get(k).map(String::as_str).unwrap_or_default();
    if get("client_id") != state.config.app_id {
        return (
            StatusCode::BAD_REQUEST,
            "Invalid App ID: the client_id is not this app's",
        )
            .into_response();
    }
    let redirect_uri = get("redirect_uri");
    if !(redirect_uri.starts_with("http://") || redirect_uri.starts_with("https://")) {
        return (
            StatusCode::BAD_REQUEST,
            "URL blocked: redirect_uri must be an absolute http(s) URL",
        )
            .into_response();
    }
    let st = get("state");
    if get("deny") == "1" {
        return redirect(&with_query(
            redirect_uri,
            &[
                ("error", "access_denied"),
                ("error_code", "200"),
                ("error_description", "Permissions error"),
                ("error_reason", "user_denied"),
                ("state", st),
            ],
        ));
    }
    let asked: Vec<String> = get("scope")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    let scopes = match q.get("grant") {
        Some(g) => g
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        None => asked,
    };
    // The connectable business, by default (`waba=first`: the configured one).
    let wabas = match get("waba") {
        "none" => Vec::new(),
        "first" => vec![state.config.waba_id.clone()],
        _ => vec![state
            .config
            .connectable
            .as_ref()
            .map_or_else(|| state.config.waba_id.clone(), |b| b.waba_id.clone())],
    };
    let code = state.grant_code(Grant {
        scopes,
        wabas,
        redirect_uri: redirect_uri.to_string(),
        at_ms: now_ms(),
        expires_at_ms: 0,
    });
    redirect(&with_query(redirect_uri, &[("code", &code), ("state", st)]))
}

fn oauth_error(code: i64, message: &str, subcode: Option<i64>) -> GraphFail {
    let mut e = wagate_core::meta::MetaError::new(code, "", "");
    e.message = Some(message.to_string());
    e.error_subcode = subcode;
    e.error_data = None;
    e.kind = Some("OAuthException".into());
    GraphFail::from_error(StatusCode::BAD_REQUEST, e)
}

/// `GET /{version}/oauth/access_token`: a code for a token (the app proves itself with its
/// secret; a code works once, for 30 s, with the redirect_uri it was issued for).
pub async fn access_token(
    State(state): State<Arc<SimState>>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, GraphFail> {
    let get = |k: &str| q.get(k).map(String::as_str).unwrap_or_default();
    if get("client_id") != state.config.app_id || get("client_secret") != state.config.app_secret {
        return Err(oauth_error(1, "Error validating client secret.", None));
    }
    let grant = state.take_code(get("code"), now_ms()).ok_or_else(|| {
        oauth_error(
            100,
            "This authorization code has expired or has been used.",
            Some(36007),
        )
    })?;
    if q.get("redirect_uri").is_some_and(|r| *r != grant.redirect_uri) {
        return Err(oauth_error(
            100,
            "Error validating verification code. Please make sure your redirect_uri is identical to the one you used in the OAuth dialog request",
            Some(36008),
        ));
    }
    let (token, expires_at) = state.issue_token(grant, now_ms());
    Ok(Json(json!({
        "access_token": token,
        "token_type": "bearer",
        "expires_in": (expires_at - now_ms()) / 1000,
    })))
}

/// `GET /{version}/debug_token?input_token=…`: what a token may do, asked with the app's token
/// (`app_id|app_secret`) or a valid token.
pub async fn debug_token(
    State(state): State<Arc<SimState>>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Json<Value>, GraphFail> {
    let app_token = app_token(&state);
    let bearer = bearer(&headers);
    let given = q.get("access_token").map(String::as_str).or(bearer);
    if given != Some(app_token.as_str()) {
        check_token(&state, &headers)?;
    }
    let input = q.get("input_token").map(String::as_str).unwrap_or_default();
    let now = now_ms();
    let data = if let Some(g) = state.issued(input) {
        json!({
            "app_id": state.config.app_id,
            "type": "USER",
            "application": "Simulated App",
            "data_access_expires_at": g.expires_at_ms / 1000,
            "expires_at": g.expires_at_ms / 1000,
            "is_valid": g.expires_at_ms > now,
            "issued_at": g.at_ms / 1000,
            "scopes": g.scopes,
            "granular_scopes": g.scopes.iter().filter(|s| SCOPES.contains(&s.as_str())).map(|s| json!({"scope": s, "target_ids": g.wabas})).collect::<Vec<_>>(),
            "user_id": "122104820846234567",
        })
    } else if input == state.access_token() {
        // The configured token: a system user's, which never expires.
        json!({
            "app_id": state.config.app_id,
            "type": "SYSTEM_USER",
            "application": "Simulated App",
            "data_access_expires_at": 0,
            "expires_at": 0,
            "is_valid": true,
            "issued_at": 1_750_000_000,
            "scopes": SCOPES,
            "granular_scopes": SCOPES.iter().map(|s| json!({"scope": s, "target_ids": [state.config.waba_id]})).collect::<Vec<_>>(),
            "user_id": "122104820846234567",
        })
    } else {
        json!({
            "error": {"code": 190, "message": "Invalid OAuth access token - Cannot parse access token"},
            "is_valid": false,
            "scopes": [],
        })
    };
    Ok(Json(json!({ "data": data })))
}

/// `POST|GET|DELETE /{version}/{waba}/subscribed_apps`.
pub async fn subscribed_apps(
    State(state): State<Arc<SimState>>,
    method: axum::http::Method,
    Path((_version, waba)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<Value>, GraphFail> {
    check_token(&state, &headers)?;
    if state.business_by_waba(&waba).is_none() {
        return Err(unknown_object(method.as_str().to_lowercase().as_str(), &waba));
    }
    match method {
        axum::http::Method::GET => {
            let data: Vec<Value> = state
                .is_subscribed(&waba)
                .then(|| json!({"whatsapp_business_api_data": {"id": state.config.app_id, "link": "https://www.facebook.com/games/?app_id=0", "name": "Simulated App"}}))
                .into_iter()
                .collect();
            Ok(Json(json!({ "data": data })))
        }
        axum::http::Method::DELETE => {
            state.subscribe(&waba, false);
            Ok(Json(json!({"success": true})))
        }
        _ => {
            state.subscribe(&waba, true);
            Ok(Json(json!({"success": true})))
        }
    }
}

/// `POST /{version}/{phone}/register {"messaging_product": "whatsapp", "pin": "123456"}`.
pub async fn register(
    State(state): State<Arc<SimState>>,
    Path((_version, phone)): Path<(String, String)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Result<Json<Value>, GraphFail> {
    check_token(&state, &headers)?;
    if state.business_by_phone(&phone).is_none() {
        return Err(unknown_object("post", &phone));
    }
    let pin = body["pin"].as_str().unwrap_or_default();
    if pin.len() != 6 || !pin.chars().all(|c| c.is_ascii_digit()) {
        return Err(GraphFail::new(
            400,
            100,
            "Invalid parameter",
            "(#100) Param pin must be 6 digits",
        ));
    }
    if body["messaging_product"] != "whatsapp" {
        return Err(GraphFail::new(
            400,
            100,
            "Invalid parameter",
            "(#100) The parameter messaging_product is required.",
        ));
    }
    state.register(&phone, pin);
    state.numbers.registered(&phone);
    Ok(Json(json!({"success": true})))
}

/// `POST /_sim/tokens/{token}/expire[?in_seconds=N]`: the token stops working now (or in N
/// seconds), as Meta's do after 60 days.
pub async fn expire(
    State(state): State<Arc<SimState>>,
    Path(token): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let later = q.get("in_seconds").and_then(|s| s.parse::<i64>().ok()).unwrap_or(0);
    if state.expire_token(&token, now_ms() + later * 1000) {
        Json(json!({"expired": true})).into_response()
    } else {
        (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "no token the dialog issued"})),
        )
            .into_response()
    }
}

/// `GET /{version}/{app_id}/subscriptions`: the app's webhook settings, asked with the app's
/// token (`app_id|app_secret`).
pub async fn app_subscriptions(
    State(state): State<Arc<SimState>>,
    Path((_version, app_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<Value>, GraphFail> {
    let app_token = app_token(&state);
    let bearer = bearer(&headers);
    if bearer != Some(app_token.as_str()) {
        return Err(oauth_error(
            190,
            "Invalid OAuth access token - an app access token is required",
            None,
        ));
    }
    if app_id != state.config.app_id {
        return Err(unknown_object("get", &app_id));
    }
    let data: Vec<Value> = state
        .webhook_url()
        .map(|url| {
            json!({
                "object": "whatsapp_business_account",
                "callback_url": url,
                "active": true,
                "fields": [{"name": "messages", "version": state.config.webhook_version}],
            })
        })
        .into_iter()
        .collect();
    Ok(Json(json!({ "data": data })))
}

/// `GET /_sim/oauth`: what the simulator's businesses did (subscriptions, registrations).
pub async fn status(State(state): State<Arc<SimState>>) -> Json<Value> {
    let businesses: Vec<Value> = state
        .businesses()
        .iter()
        .map(|b| {
            json!({
                "waba_id": b.waba_id,
                "phone_number_id": b.phone_number_id,
                "subscribed": state.is_subscribed(&b.waba_id),
                "registered_pin": state.registered_pin(&b.phone_number_id),
            })
        })
        .collect();
    Json(json!({ "businesses": businesses }))
}
