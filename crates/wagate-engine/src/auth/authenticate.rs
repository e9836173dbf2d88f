//! Who is calling: a bearer token (an API key, or a JWT from the configured OpenID Connect
//! issuer) turned into a [`Caller`] with its tenant, account and permissions.

use crate::auth::Caller;
use crate::clock::now_ms;
use crate::error::{EngineError, EngineResult, Kind};
use crate::state::Engine;

/// The caller an `Authorization` header stands for (`remote`: where the request came from, for
/// the audit log).
pub async fn authenticate(state: &Engine, authorization: Option<&str>, remote: Option<String>) -> EngineResult<Caller> {
    let header = authorization.ok_or_else(|| EngineError::unauthorized("this endpoint needs an API key"))?;
    // The scheme is case-insensitive (RFC 7235 §2.1): `bearer` and `BEARER` are `Bearer`.
    let token = header
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| EngineError::unauthorized("the Authorization header must be `Bearer <api key>`"))?;
    let mut caller = match state.config.auth.jwt.enabled() && super::jwt::looks_like_jwt(token) {
        true => from_jwt(state, token).await?,
        false => from_key(state, token).await?,
    };
    caller.remote = remote;
    Ok(caller)
}

/// A tenant's accounts now; `None` for a caller of every tenant.
fn tenant_accounts(state: &Engine, tenant: Option<&str>) -> Option<Vec<String>> {
    tenant.map(|t| {
        state
            .accounts
            .all()
            .iter()
            .filter(|a| a.tenant.as_deref() == Some(t))
            .map(|a| a.id.clone())
            .collect()
    })
}

/// The caller a JWT from the configured OpenID Connect issuer stands for.
pub async fn from_jwt(state: &Engine, token: &str) -> Result<Caller, EngineError> {
    let claims = super::jwt::verify(&state.config.auth.jwt, &state.jwks, token)
        .await
        .map_err(|why| {
            EngineError::new(Kind::Unauthenticated, "unauthorized", why)
                .hint("sign in again with the identity provider; its tokens must be for this gateway's audience")
        })?;
    let tenant_accounts = tenant_accounts(state, claims.tenant.as_deref());
    Ok(Caller {
        key_id: format!("jwt:{}", claims.subject),
        key_name: claims.name,
        account_id: None,
        tenant: claims.tenant,
        tenant_accounts,
        scopes: claims.scopes,
        remote: None,
    })
}

/// The caller an API key stands for.
pub async fn from_key(state: &Engine, key: &str) -> Result<Caller, EngineError> {
    from_key_hash(state, &wagate_core::signature::sha256_hex(key.as_bytes())).await
}

/// The caller the API key with this SHA-256 stands for (a console session keeps the hash).
pub async fn from_key_hash(state: &Engine, hash: &str) -> Result<Caller, EngineError> {
    let key = state
        .store
        .api_key_by_hash(hash)
        .await?
        .filter(|k| k.revoked_at.is_none())
        .ok_or_else(|| EngineError::unauthorized("the API key is not valid (unknown or revoked)"))?;
    let now = now_ms();
    if let Some(end) = key.expires_at.filter(|end| now >= *end) {
        return Err(EngineError::new(
            Kind::Unauthenticated,
            "unauthorized",
            format!(
                "the API key `{}` expired at {}",
                key.name,
                wagate_core::time::rfc3339_ms(end)
            ),
        )
        .hint("use the key that replaced it, or create one (POST /v1/keys or `wagate keys create`)"));
    }
    // When it was last used, to the minute: a busy key writes once a minute, not per request,
    // and the request does not wait for it.
    if key.last_used_at.is_none_or(|t| now - t >= 60_000) {
        let (store, id) = (state.store.clone(), key.id.clone());
        tokio::spawn(async move {
            if let Err(e) = store.touch_api_key(&id, now).await {
                tracing::debug!(error = %e, "could not record when an API key was used");
            }
        });
    }
    let tenant_accounts = tenant_accounts(state, key.tenant.as_deref());
    Ok(Caller {
        key_id: key.id.into(),
        key_name: key.name,
        remote: None,
        account_id: key.account_id,
        tenant: key.tenant,
        tenant_accounts,
        scopes: key.scopes.split(',').map(str::to_string).collect(),
    })
}
