//! A stand-in OpenID Connect issuer, so JWT sign-in can be tried without Firebase or Auth0: its
//! keys (`GET /_sim/oidc/jwks.json`, ES256, made when the simulator starts) and ID tokens for
//! any claims a test or a developer asks for (`POST /_sim/oidc/token`). `POST /_sim/oidc/rotate`
//! starts signing with a new key, still publishing the old ones, as an issuer rotates.
//!
//! The issuer (`iss`) is `<simulator URL>/_sim/oidc`; the audience is `wagate` unless asked.

use std::sync::{Arc, Mutex};

use axum::extract::State;
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
