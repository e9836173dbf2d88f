//! Signing in to the console with the identity provider (`[auth.jwt]`): the OpenID Connect
//! authorization code flow with PKCE. The provider is found from its discovery document
//! (`<issuer>/.well-known/openid-configuration`); the client id is the configured audience; the
//! ID token it gives back is checked as any JWT the gateway takes.

use base64::Engine as _;
use serde_json::Value;

use super::Caller;
use crate::error::{EngineError, EngineResult, Kind};
use crate::state::Engine;

/// A sign-in begun: where the browser goes, and what the callback must match.
pub struct Begun {
    pub url: String,
    /// The `state` parameter, given back to the callback.
    pub state: String,
    /// The PKCE code verifier, kept by the browser's sign-in cookie until the callback.
    pub verifier: String,
}

fn upstream(why: impl std::fmt::Display) -> EngineError {
    EngineError::new(
        Kind::Upstream,
        "identity_provider_unreachable",
        format!("the identity provider: {why}"),
    )
    .hint("check auth.jwt.issuer, and that the provider is reachable from the gateway")
}

fn client() -> EngineResult<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .map_err(upstream)
}

/// The provider's discovery document.
async fn discovery(state: &Engine) -> EngineResult<Value> {
    let issuer = state.config.auth.jwt.issuer.trim_end_matches('/');
    let url = format!("{issuer}/.well-known/openid-configuration");
    let r = client()?.get(&url).send().await.map_err(upstream)?;
    if !r.status().is_success() {
        return Err(upstream(format!("{url} answered {}", r.status())));
    }
    r.json().await.map_err(upstream)
}

fn endpoint(doc: &Value, key: &str) -> EngineResult<String> {
    doc[key]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| upstream(format!("its discovery document has no {key}")))
}

/// Begins a sign-in: the provider's authorize URL (with a fresh `state` and PKCE challenge) for
/// a browser that comes back to `redirect_uri`.
pub async fn begin(state: &Engine, redirect_uri: &str) -> EngineResult<Begun> {
    if !state.config.auth.jwt.enabled() {
        return Err(EngineError::new(
            Kind::NotFound,
            "sign_in_not_configured",
            "no identity provider is configured",
        )
        .hint(
            "set [auth.jwt] (WAGATE_JWT_ISSUER, WAGATE_JWT_AUDIENCE, WAGATE_JWT_JWKS_URL), or sign in with an API key",
        ));
    }
    let doc = discovery(state).await?;
    let authorize = endpoint(&doc, "authorization_endpoint")?;
    let verifier = wagate_core::ids::secret("v", 32);
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(wagate_core::signature::sha256_raw(verifier.as_bytes()));
    let st = wagate_core::ids::secret("st", 16);
    let mut url = reqwest::Url::parse(&authorize).map_err(upstream)?;
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &state.config.auth.jwt.audience)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("scope", "openid profile")
        .append_pair("state", &st)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    Ok(Begun {
        url: url.to_string(),
        state: st,
        verifier,
    })
}

/// Finishes a sign-in: exchanges the code (with the verifier) for the provider's ID token, and
/// checks it as any JWT. The token and the caller it stands for.
pub async fn finish(state: &Engine, code: &str, verifier: &str, redirect_uri: &str) -> EngineResult<(String, Caller)> {
    let doc = discovery(state).await?;
    let token_url = endpoint(&doc, "token_endpoint")?;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect_uri),
        ("client_id", state.config.auth.jwt.audience.as_str()),
        ("code_verifier", verifier),
    ];
    let body: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let r = client()?
        .post(&token_url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .map_err(upstream)?;
    let status = r.status();
    let answer: Value = r.json().await.map_err(upstream)?;
    if !status.is_success() {
        return Err(EngineError::new(
            Kind::Unauthenticated,
            "sign_in_refused",
            format!("the identity provider refused the sign-in: {answer}"),
        )
        .hint("sign in again"));
    }
    let token = answer["id_token"]
        .as_str()
        .ok_or_else(|| upstream("its token answer has no id_token"))?
        .to_string();
    let caller = super::authenticate::from_jwt(state, &token).await?;
    Ok((token, caller))
}
