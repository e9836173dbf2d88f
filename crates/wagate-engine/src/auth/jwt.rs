//! Sign-in with the user's identity provider: `/v1/*` takes a JWT bearer token from an OpenID
//! Connect issuer (Firebase, Auth0, Keycloak, …) where it takes an API key. The token's
//! signature is checked against the issuer's JWKS (cached, and read again when a token names a
//! key it does not list: key rotation), with its issuer, audience, expiry and not-before (with
//! the configured clock skew). Claims give the tenant (`wagate_tenant`) and the permissions
//! (`wagate_scopes`), by configurable names.

use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

use crate::config::JwtConfig;

/// Who a valid token stands for.
#[derive(Debug, Clone, PartialEq)]
pub struct Claims {
    /// `sub`, for the audit log.
    pub subject: String,
    /// `email` or `sub`.
    pub name: String,
    pub tenant: Option<String>,
    pub scopes: Vec<String>,
}

/// The issuer's keys, cached.
#[derive(Default)]
pub struct Jwks {
    cached: tokio::sync::RwLock<Option<(Instant, JwkSet)>>,
    /// When the keys were last fetched because a token named an unknown key (at most every
    /// 30 s, so that made-up key ids cannot make the gateway hammer the issuer).
    refetched: std::sync::Mutex<Option<Instant>>,
}

/// Whether a bearer token looks like a JWT (three base64url parts, a JSON header).
pub fn looks_like_jwt(token: &str) -> bool {
    token.starts_with("eyJ") && token.split('.').count() == 3
}

impl Jwks {
    async fn fetch(config: &JwtConfig) -> Result<JwkSet, String> {
        let answer = reqwest::Client::new()
            .get(&config.jwks_url)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| {
                format!(
                    "cannot read the issuer's keys at {}: {}",
                    config.jwks_url,
                    e.without_url()
                )
            })?;
        if !answer.status().is_success() {
            return Err(format!(
                "the issuer's keys at {} answered {}",
                config.jwks_url,
                answer.status()
            ));
        }
        answer
            .json::<JwkSet>()
            .await
            .map_err(|e| format!("the issuer's keys at {} are not a JWKS: {e}", config.jwks_url))
    }

    /// The key a token names, from the cache, else from the issuer.
    async fn key(&self, config: &JwtConfig, kid: Option<&str>) -> Result<jsonwebtoken::jwk::Jwk, String> {
        let fresh_for = Duration::from_secs(config.jwks_cache_seconds);
        let find = |set: &JwkSet| match kid {
            Some(k) => set.find(k).cloned(),
            None if set.keys.len() == 1 => set.keys.first().cloned(),
            None => None,
        };
        if let Some((at, set)) = self.cached.read().await.as_ref() {
            if at.elapsed() < fresh_for {
                if let Some(k) = find(set) {
                    return Ok(k);
                }
                // Not listed: perhaps the issuer rotated its keys; read them again, rarely.
                let mut last = self.refetched.lock().unwrap_or_else(|e| e.into_inner());
                if last.is_some_and(|t| t.elapsed() < Duration::from_secs(30)) {
                    return Err(unknown_kid(kid));
                }
                *last = Some(Instant::now());
            }
        }
        let set = Self::fetch(config).await?;
        let found = find(&set);
        *self.cached.write().await = Some((Instant::now(), set));
        found.ok_or_else(|| unknown_kid(kid))
    }
}

fn unknown_kid(kid: Option<&str>) -> String {
    match kid {
        Some(k) => format!("the token is signed with key `{k}`, which the issuer's JWKS does not list"),
        None => "the token names no key (kid), and the issuer has several".into(),
    }
}

/// Checks a token; the error says what is wrong with it, for a 401.
pub async fn verify(config: &JwtConfig, jwks: &Jwks, token: &str) -> Result<Claims, String> {
    let header = jsonwebtoken::decode_header(token).map_err(|e| match e.kind() {
        jsonwebtoken::errors::ErrorKind::Json(_) => {
            "the token's header is not valid (an unsigned token, alg none, is never taken)".to_string()
        }
        _ => format!("the token's header is not valid: {e}"),
    })?;
    let jwk = jwks.key(config, header.kid.as_deref()).await?;
    let key = DecodingKey::from_jwk(&jwk).map_err(|e| format!("the issuer's key cannot check tokens: {e}"))?;
    // Only the algorithm the key is for: a token cannot choose a weaker one.
    let alg = match jwk.common.key_algorithm {
        Some(a) => format!("{a:?}")
            .parse::<Algorithm>()
            .map_err(|_| format!("the issuer's key is for {a:?}, which does not sign tokens"))?,
        None => header.alg,
    };
    if header.alg != alg {
        return Err(format!(
            "the token is signed with {:?}, but its key is for {alg:?}",
            header.alg
        ));
    }
    let mut validation = Validation::new(alg);
    validation.set_issuer(&[config.issuer.as_str()]);
    validation.set_audience(&[config.audience.as_str()]);
    validation.leeway = config.leeway_seconds;
    // jsonwebtoken leaves `nbf` unchecked unless asked: a token valid from later is not valid now.
    validation.validate_nbf = true;
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    let data = jsonwebtoken::decode::<Value>(token, &key, &validation).map_err(|e| {
        use jsonwebtoken::errors::ErrorKind::*;
        match e.kind() {
            ExpiredSignature => "the token has expired".to_string(),
            ImmatureSignature => "the token is not valid yet (nbf)".to_string(),
            InvalidIssuer => format!("the token is not from the issuer {}", config.issuer),
            InvalidAudience => format!("the token is not for the audience {}", config.audience),
            InvalidSignature => "the token's signature does not match the issuer's key".to_string(),
            MissingRequiredClaim(c) => format!("the token has no `{c}` claim"),
            _ => format!("the token is not valid: {e}"),
        }
    })?;
    let claims = data.claims;
    let text = |v: &Value| v.as_str().map(str::to_string);
    let subject = text(&claims["sub"]).unwrap_or_default();
    // A claim that is there but not of the expected shape fails closed: it never reads as "no
    // tenant" (every tenant) or "the default permissions".
    let malformed = |claim: &str, v: &Value, want: &str| {
        format!(
            "the token's `{claim}` claim is {}, not {want}; the identity provider must send {want} or leave the claim out",
            shape(v)
        )
    };
    let scopes: Vec<String> = match claims.get(config.scopes_claim.as_str()) {
        None => config.default_scopes.clone(),
        Some(Value::Array(a)) if a.iter().all(Value::is_string) => a.iter().filter_map(text).collect(),
        Some(Value::String(s)) => s
            .split([' ', ','])
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        Some(v) => {
            return Err(malformed(
                &config.scopes_claim,
                v,
                "a list of permissions (or one string of them)",
            ))
        }
    };
    if let Some(bad) = scopes.iter().find(|s| !crate::auth::SCOPES.contains(&s.as_str())) {
        return Err(format!(
            "the token's `{}` claim has `{bad}`, which is not a permission",
            config.scopes_claim
        ));
    }
    let tenant = match claims.get(config.tenant_claim.as_str()) {
        None => None,
        Some(Value::String(t)) if !t.trim().is_empty() && t.trim() == t => Some(t.clone()),
        Some(v) => {
            return Err(malformed(
                &config.tenant_claim,
                v,
                "a tenant's name (a non-empty string)",
            ))
        }
    };
    if config.require_tenant && tenant.is_none() {
        return Err(format!(
            "the token has no `{}` claim, and this gateway takes tenants' tokens only",
            config.tenant_claim
        ));
    }
    Ok(Claims {
        name: text(&claims["email"]).unwrap_or_else(|| subject.clone()),
        subject,
        tenant,
        scopes,
    })
}

/// What a claim's value is, in words, for an error.
fn shape(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(s) if s.trim().is_empty() => "an empty string",
        Value::String(_) => "a string with spaces around it",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}
