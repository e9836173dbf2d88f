//! Sign-in with an OpenID Connect issuer: Firebase-style JWTs work where API keys do, with the
//! issuer's keys from a JWKS the test serves (and rotates), made in the test; expired, wrong
//! audience, wrong issuer, unknown key, unsigned (`alg: none`) and forged tokens are refused
//! with a clear error.

use std::sync::{Arc, Mutex};

use base64::Engine;
use ring::signature::KeyPair;
use serde_json::{json, Value};

use crate::helpers::*;

pub(crate) const ISSUER: &str = "https://securetoken.google.com/wagate-demo";
pub(crate) const AUDIENCE: &str = "wagate-demo";

/// An ES256 key made here: its JWK and what signs with it.
pub(crate) struct Key {
    pub(crate) kid: String,
    pkcs8: Vec<u8>,
    pub(crate) jwk: Value,
}

pub(crate) fn new_key(kid: &str) -> Key {
    let rng = ring::rand::SystemRandom::new();
    let alg = &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING;
    let pkcs8 = ring::signature::EcdsaKeyPair::generate_pkcs8(alg, &rng).expect("key");
    let pair = ring::signature::EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).expect("pair");
    let point = pair.public_key().as_ref();
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    Key {
        kid: kid.into(),
        pkcs8: pkcs8.as_ref().to_vec(),
        jwk: json!({"kty": "EC", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..65]), "kid": kid, "alg": "ES256", "use": "sig"}),
    }
}

pub(crate) fn sign(key: &Key, claims: &Value) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&header, claims, &jsonwebtoken::EncodingKey::from_ec_der(&key.pkcs8)).expect("sign")
}

pub(crate) fn claims(extra: Value) -> Value {
    let now = wagate_engine::now_ms() / 1000;
    let mut c = json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "firebase-user-1", "email": "ana@example.com", "iat": now, "exp": now + 3600});
    if let (Some(c), Some(extra)) = (c.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            c.insert(k.clone(), v.clone());
        }
    }
    c
}

/// Serves a JWKS that the test can change (key rotation).
pub(crate) async fn serve_jwks(keys: Arc<Mutex<Vec<Value>>>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/jwks.json", listener.local_addr().expect("addr"));
    let app = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move || {
            let keys = keys.clone();
            async move { axum::Json(json!({"keys": keys.lock().expect("keys").clone()})) }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

#[tokio::test]
async fn a_firebase_style_jwt_works_where_an_api_key_does_and_bad_ones_are_refused_clearly() {
    let first = new_key("key-1");
    let published = Arc::new(Mutex::new(vec![first.jwk.clone()]));
    let jwks_url = serve_jwks(published.clone()).await;
    let app = spawn_app_with(|c| {
        c.auth.jwt.issuer = ISSUER.into();
        c.auth.jwt.audience = AUDIENCE.into();
        c.auth.jwt.jwks_url = jwks_url.clone();
    })
    .await;
    let with = |token: String, method: reqwest::Method, path: &str, body: Option<Value>| {
        let r = app
            .http
            .request(method, format!("{}{path}", app.url))
            .bearer_auth(token);
        let r = match body {
            Some(b) => r.json(&b),
            None => r,
        };
        async move {
            let r = r.send().await.expect("request");
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let get = reqwest::Method::GET;
    // A reader's token: reads, does not send.
    let reader = sign(&first, &claims(json!({"wagate_scopes": ["read"]})));
    let (status, accounts) = with(reader.clone(), get.clone(), "/v1/accounts", None).await;
    assert_eq!(status, 200, "{accounts}");
    assert_eq!(accounts["data"][0]["name"], "acme");
    app.open_window(USER).await;
    let send = json!({"to": USER, "type": "text", "text": {"body": "signed in with a JWT"}});
    let (status, e) = with(reader, reqwest::Method::POST, "/v1/messages", Some(send.clone())).await;
    assert_eq!((status, e["error"]["code"].as_str()), (403, Some("forbidden")), "{e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("token lacks the `send`")),
        "{e}"
    );
    // A sender's token (scopes as a space-separated string, as some issuers write them) sends.
    let sender = sign(&first, &claims(json!({"wagate_scopes": "send read"})));
    let (status, m) = with(sender, reqwest::Method::POST, "/v1/messages", Some(send)).await;
    assert_eq!(status, 202, "{m}");
    // The issuer rotates its keys: a token of the new key works at once.
    let second = new_key("key-2");
    published.lock().expect("keys").push(second.jwk.clone());
    let rotated = sign(&second, &claims(json!({"wagate_scopes": ["read"]})));
    assert_eq!(with(rotated, get.clone(), "/v1/accounts", None).await.0, 200);
    // A tenant's token sees its tenant's accounts only.
    let tenant = sign(
        &first,
        &claims(json!({"wagate_scopes": ["read"], "wagate_tenant": "alpha"})),
    );
    let (status, mine) = with(tenant, get.clone(), "/v1/accounts", None).await;
    assert_eq!((status, &mine["data"]), (200, &json!([])), "{mine}");
    // Refused, each with what is wrong.
    let now = wagate_engine::now_ms() / 1000;
    let stranger = new_key("key-1");
    let unsigned = format!(
        "{}.{}.",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims(json!({})).to_string())
    );
    for (token, says) in [
        (
            sign(&first, &claims(json!({"exp": now - 600, "iat": now - 4000}))),
            "expired",
        ),
        (sign(&first, &claims(json!({"aud": "another-project"}))), "audience"),
        (
            sign(&first, &claims(json!({"iss": "https://evil.example.com"}))),
            "issuer",
        ),
        (sign(&new_key("key-9"), &claims(json!({}))), "does not list"),
        (sign(&stranger, &claims(json!({}))), "signature"),
        (unsigned, "alg none"),
        (
            sign(&first, &claims(json!({"wagate_scopes": ["root"]}))),
            "not a permission",
        ),
    ] {
        let (status, e) = with(token, get.clone(), "/v1/accounts", None).await;
        assert_eq!(status, 401, "{says}: {e}");
        assert_eq!(e["error"]["code"], "unauthorized");
        let message = e["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{says}: {message}");
        assert!(e["error"]["hint"].is_string());
    }
    // API keys keep working beside tokens.
    assert_eq!(app.get("/v1/accounts").await.0, 200);

    // A gateway that takes tenants' tokens only refuses one without the tenant claim.
    let strict = spawn_app_with(|c| {
        c.auth.jwt.issuer = ISSUER.into();
        c.auth.jwt.audience = AUDIENCE.into();
        c.auth.jwt.jwks_url = jwks_url.clone();
        c.auth.jwt.require_tenant = true;
    })
    .await;
    for (claims, status) in [(json!({}), 401), (json!({"wagate_tenant": "alpha"}), 200)] {
        let token = sign(&first, &self::claims(claims));
        let (got, body) = strict.get_as(&token, "/v1/accounts").await;
        assert_eq!(got, status, "{body}");
        if status == 401 {
            assert!(
                body["error"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("wagate_tenant")),
                "{body}"
            );
        }
    }
}
