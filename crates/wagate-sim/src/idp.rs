//! A stand-in OpenID Connect issuer, so JWT sign-in can be tried without Firebase or Auth0: its
//! keys (`GET /_sim/oidc/jwks.json`, ES256, made when the simulator starts) and ID tokens for
//! any claims a test or a developer asks for (`POST /_sim/oidc/token`). `POST /_sim/oidc/rotate`
//! starts signing with a new key, still publishing the old ones, as an issuer rotates. A browser
//! signs in through `GET /_sim/oidc/authorize` (a login page listing test users; the
//! authorization code flow with PKCE) and the client exchanges the code at
//! `POST /_sim/oidc/oauth/token`.
//!
//! The issuer (`iss`) is `<simulator URL>/_sim/oidc`; the audience is `wagate` unless asked.

use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::{json, Map, Value};

use crate::state::{now_ms, SimState};

/// The audience of a token that names none.
pub const AUDIENCE: &str = "wagate";

struct Key {
    kid: String,
    pkcs8: Vec<u8>,
    jwk: Value,
}

/// The issuer's keys; the last one signs.
#[derive(Default)]
pub struct Issuer {
    keys: Mutex<Vec<Key>>,
    /// Codes handed out by the login page, by code.
    codes: Mutex<std::collections::HashMap<String, PendingCode>>,
}

impl Issuer {
    pub fn new() -> Self {
        let issuer = Self::default();
        issuer.rotate();
        issuer
    }

    /// Makes a new signing key; the old ones stay published. Answers the new key's id.
    fn rotate(&self) -> Option<String> {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).ok()?;
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).ok()?;
        let point = pair.public_key().as_ref();
        if point.len() != 65 {
            return None;
        }
        let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        let kid = format!("sim-key-{}", keys.len() + 1);
        let jwk = json!({"kty": "EC", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..65]),
            "kid": kid, "alg": "ES256", "use": "sig"});
        keys.push(Key {
            kid: kid.clone(),
            pkcs8: pkcs8.as_ref().to_vec(),
            jwk,
        });
        Some(kid)
    }

    fn jwks(&self) -> Value {
        let keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        json!({"keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()})
    }

    fn sign(&self, claims: &Value) -> Result<String, String> {
        let keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        let key = keys.last().ok_or("the issuer has no key")?;
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some(key.kid.clone());
        jsonwebtoken::encode(&header, claims, &jsonwebtoken::EncodingKey::from_ec_der(&key.pkcs8))
            .map_err(|e| e.to_string())
    }
}

fn issuer_url(state: &SimState) -> String {
    format!("{}/_sim/oidc", state.base_url().unwrap_or_default())
}

fn bad_request(message: &str) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": message}))).into_response()
}

/// `GET /_sim/oidc/.well-known/openid-configuration`: where the keys are.
pub async fn discovery(State(state): State<Arc<SimState>>) -> Json<Value> {
    let issuer = issuer_url(&state);
    Json(json!({
        "issuer": issuer,
        "jwks_uri": format!("{issuer}/jwks.json"),
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/oauth/token"),
        "code_challenge_methods_supported": ["S256"],
        "id_token_signing_alg_values_supported": ["ES256"],
    }))
}

/// `GET /_sim/oidc/jwks.json`: the issuer's public keys.
pub async fn jwks(State(state): State<Arc<SimState>>) -> Json<Value> {
    Json(state.issuer.jwks())
}

/// `POST /_sim/oidc/rotate`: sign with a new key from now on.
pub async fn rotate(State(state): State<Arc<SimState>>) -> Response {
    match state.issuer.rotate() {
        Some(kid) => Json(json!({"kid": kid})).into_response(),
        None => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": "no key could be made"})),
        )
            .into_response(),
    }
}

/// `POST /_sim/oidc/token` with the claims wanted, e.g. `{"sub": "ana", "wagate_tenant": "acme",
/// "wagate_scopes": "read send"}`; `aud` defaults to `wagate`, and `expires_in` (seconds, default
/// 3600; negative for a token that has already expired) sets `exp`. `iss`, `iat` and `exp` are
/// the issuer's own.
pub async fn token(State(state): State<Arc<SimState>>, body: axum::body::Bytes) -> Response {
    let mut claims: Map<String, Value> = if body.iter().all(u8::is_ascii_whitespace) {
        Map::new()
    } else {
        match serde_json::from_slice(&body) {
            Ok(c) => c,
            Err(e) => return bad_request(&format!("the body must be a JSON object of claims: {e}")),
        }
    };
    let expires_in = match claims.remove("expires_in") {
        None => 3600,
        Some(v) => match v.as_i64() {
            Some(n) => n,
            None => return bad_request("expires_in must be a whole number of seconds"),
        },
    };
    for reserved in ["iss", "iat", "exp"] {
        if claims.contains_key(reserved) {
            return bad_request(&format!(
                "{reserved} is the issuer's; leave it out (expires_in sets exp)"
            ));
        }
    }
    let now = now_ms() / 1000;
    claims.insert("iss".into(), json!(issuer_url(&state)));
    claims.entry("aud").or_insert(json!(AUDIENCE));
    claims.entry("sub").or_insert(json!("sim-user"));
    claims.insert("iat".into(), json!(now));
    claims.insert("exp".into(), json!(now + expires_in));
    match state.issuer.sign(&Value::Object(claims)) {
        Ok(t) => Json(json!({"id_token": t, "token_type": "Bearer", "expires_in": expires_in})).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"error": e}))).into_response(),
    }
}

/// The issuer's test users, for its login page: (sub, name, tenant, scopes).
pub const TEST_USERS: [(&str, &str, Option<&str>, &str); 3] = [
    ("ana", "Ana (admin)", None, "admin"),
    ("bo", "Bo (acme, read only)", Some("acme"), "read"),
    ("cy", "Cy (alpha, admin)", Some("alpha"), "admin"),
];

/// A code handed out by the authorize endpoint, waiting for the token endpoint.
pub struct PendingCode {
    sub: &'static str,
    name: &'static str,
    tenant: Option<&'static str>,
    scopes: &'static str,
    client_id: String,
    redirect_uri: String,
    challenge: String,
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `GET /_sim/oidc/authorize`: the issuer's login page (authorization code flow with PKCE, S256
/// only): pick a test user; `POST` consents and sends the browser back with a code.
pub async fn authorize_page(Query(q): Query<std::collections::HashMap<String, String>>) -> Response {
    let get = |k: &str| q.get(k).map(String::as_str).unwrap_or_default();
    if get("response_type") != "code" || get("code_challenge").is_empty() || get("code_challenge_method") != "S256" {
        return bad_request("the authorization code flow with PKCE (S256) is the only one here");
    }
    let hidden: String = ["client_id", "redirect_uri", "state", "code_challenge", "scope"]
        .iter()
        .map(|k| format!("<input type=\"hidden\" name=\"{k}\" value=\"{}\">", escape(get(k))))
        .collect();
    let users: String = TEST_USERS
        .iter()
        .map(|(sub, name, _, _)| format!("<button type=\"submit\" name=\"user\" value=\"{sub}\">{name}</button>"))
        .collect();
    let html = format!(
        "<!doctype html><title>Sign in · simulator</title><h1>Sign in</h1><p>The simulator's identity provider: pick a test user.</p><form method=\"post\" action=\"authorize\">{hidden}{users}</form>"
    );
    ([(axum::http::header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()
}

/// `POST /_sim/oidc/authorize`: the user chosen; back to the client with a code.
pub async fn authorize(State(state): State<Arc<SimState>>, body: axum::body::Bytes) -> Response {
    let f: std::collections::HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let get = |k: &str| f.get(k).cloned().unwrap_or_default();
    let Some(&(sub, name, tenant, scopes)) = TEST_USERS.iter().find(|u| u.0 == get("user")) else {
        return bad_request("no such test user");
    };
    let redirect_uri = get("redirect_uri");
    if !(redirect_uri.starts_with("http://") || redirect_uri.starts_with("https://")) {
        return bad_request("redirect_uri must be an absolute http(s) URL");
    }
    let code = format!("simcode-{}", rand_hex());
    state.issuer.codes.lock().unwrap_or_else(|p| p.into_inner()).insert(
        code.clone(),
        PendingCode {
            sub,
            name,
            tenant,
            scopes,
            client_id: get("client_id"),
            redirect_uri: redirect_uri.clone(),
            challenge: get("code_challenge"),
        },
    );
    let sep = if redirect_uri.contains('?') { '&' } else { '?' };
    let to: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("code", &code)
        .append_pair("state", &get("state"))
        .finish();
    (
        StatusCode::FOUND,
        [(axum::http::header::LOCATION, format!("{redirect_uri}{sep}{to}"))],
    )
        .into_response()
}

fn rand_hex() -> String {
    let mut bytes = [0u8; 16];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `POST /_sim/oidc/oauth/token` (`grant_type=authorization_code`, `code`, `redirect_uri`,
/// `client_id`, `code_verifier`): the ID token of the user who signed in, once per code.
pub async fn exchange(State(state): State<Arc<SimState>>, body: axum::body::Bytes) -> Response {
    let f: std::collections::HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let get = |k: &str| f.get(k).cloned().unwrap_or_default();
    if get("grant_type") != "authorization_code" {
        return bad_request("unsupported_grant_type");
    }
    let Some(pending) = state
        .issuer
        .codes
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&get("code"))
    else {
        return bad_request("invalid_grant: the code is unknown or was used");
    };
    let digest = ring::digest::digest(&ring::digest::SHA256, get("code_verifier").as_bytes());
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref());
    if challenge != pending.challenge
        || get("redirect_uri") != pending.redirect_uri
        || get("client_id") != pending.client_id
    {
        return bad_request("invalid_grant: the code_verifier, redirect_uri or client_id does not match");
    }
    let now = now_ms() / 1000;
    let mut claims = json!({"iss": issuer_url(&state), "aud": pending.client_id, "sub": pending.sub, "name": pending.name,
        "iat": now, "exp": now + 3600, "wagate_scopes": pending.scopes});
    if let Some(t) = pending.tenant {
        claims["wagate_tenant"] = json!(t);
    }
    match state.issuer.sign(&claims) {
        Ok(t) => {
            Json(json!({"id_token": t, "access_token": t, "token_type": "Bearer", "expires_in": 3600})).into_response()
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"error": e}))).into_response(),
    }
}
