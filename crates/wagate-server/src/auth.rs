//! API keys: `Authorization: Bearer wg_…`, stored as SHA-256 (the keys are long random values, so
//! a fast hash is enough), scoped to an account (or all) and to permissions.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::StatusCode;

use crate::error::ApiError;
use crate::AppState;

/// The caller, as its API key allows.
#[derive(Debug, Clone)]
pub struct Caller {
    pub key_id: String,
    /// The key's name, for the audit log.
    pub key_name: String,
    /// `None`: every account (of its tenant).
    pub account_id: Option<wagate_store::AccountId>,
    /// The tenant the key belongs to: it sees that tenant's accounts only.
    pub tenant: Option<String>,
    /// The tenant's accounts when the request came in.
    tenant_accounts: Option<Vec<String>>,
    scopes: Vec<String>,
    /// Where the request came from: the peer address, and `X-Forwarded-For` when a proxy set it.
    pub remote: Option<String>,
}

impl Caller {
    /// Refuses unless the key has `scope` (or `admin`).
    pub fn require(&self, scope: &str) -> Result<(), ApiError> {
        if self.scopes.iter().any(|s| s == scope || s == "admin") {
            return Ok(());
        }
        let (what, hint) = if self.key_id.starts_with("jwt:") {
            (
                "token",
                format!("the identity provider must put `{scope}` in the token's scopes claim (auth.jwt.scopes_claim)"),
            )
        } else {
            (
                "API key",
                format!("create a key with `wagate keys create --scopes {scope}`"),
            )
        };
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("this {what} lacks the `{scope}` permission"),
        )
        .hint(hint))
    }

    /// The gateway itself, sending for one account (a hook's reply goes through the same checks
    /// as any send).
    pub fn for_account(account_id: &str) -> Self {
        Self {
            key_id: "gateway".into(),
            key_name: "gateway".into(),
            account_id: Some(account_id.into()),
            tenant: None,
            tenant_accounts: None,
            scopes: vec!["send".into()],
            remote: None,
        }
    }

    /// Whether the key may see data of `account_id`.
    pub fn sees(&self, account_id: &str) -> bool {
        self.account_id.as_deref().is_none_or(|a| a == account_id)
            && self
                .tenant_accounts
                .as_ref()
                .is_none_or(|ids| ids.iter().any(|id| id == account_id))
    }

    /// The same for data that may belong to no account (an update for a WABA no account has):
    /// only keys of every account see that.
    pub fn sees_opt(&self, account_id: Option<&str>) -> bool {
        match account_id {
            Some(a) => self.sees(a),
            None => self.is_global(),
        }
    }

    /// Refuses unless the key has `scope` and is a key of every account of every tenant
    /// (what spans tenants: the webhook journal, making and deleting accounts).
    pub fn require_global(&self, scope: &str) -> Result<(), ApiError> {
        self.require(scope)?;
        if self.is_global() {
            return Ok(());
        }
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this API key is limited to one account or tenant, and this spans them all",
        )
        .hint("use an admin key of every account (no account, no tenant)"))
    }

    /// A key of every account of every tenant.
    pub fn is_global(&self) -> bool {
        self.account_id.is_none() && self.tenant.is_none()
    }

    /// The accounts a list is limited to: the key's account, or its tenant's; `None`: all.
    pub fn account_ids(&self) -> Option<Vec<String>> {
        match &self.account_id {
            Some(a) => Some(vec![a.to_string()]),
            None => self.tenant_accounts.clone(),
        }
    }

    /// Whether the key may see something owned by `tenant` (a hook, a key): a tenant's key
    /// sees its tenant's only.
    pub fn sees_tenant(&self, tenant: Option<&str>) -> bool {
        self.tenant.is_none() || self.tenant.as_deref() == tenant
    }

    /// Whether the caller may see and manage `hook`: a tenant's key sees its tenant's hooks; a
    /// key of one account sees only hooks limited to accounts it sees, never one that takes
    /// every account's events.
    pub fn sees_hook(&self, hook: &wagate_store::Hook) -> bool {
        let accounts: Vec<String> = serde_json::from_str(&hook.accounts).unwrap_or_default();
        self.sees_tenant(hook.tenant.as_deref())
            && (self.account_id.is_none() || (!accounts.is_empty() && accounts.iter().all(|a| self.sees(a))))
    }

    /// Refuses unless the key has `scope` and is not limited to one account: `what` (making an
    /// account, say) reaches beyond any one account.
    pub fn require_all_accounts(&self, scope: &str, what: &str) -> Result<(), ApiError> {
        self.require(scope)?;
        if self.account_id.is_none() {
            return Ok(());
        }
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("this API key is limited to one account, and {what} reaches beyond it"),
        )
        .hint("use an admin key of the tenant (no account) or of every tenant"))
    }
}

pub const SCOPES: &[&str] = &["send", "read", "admin"];

/// Checks a key's permissions: known ones, at least one, each once.
pub fn check_scopes(scopes: &[String]) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for s in scopes.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        if !SCOPES.contains(&s) {
            return Err(format!("`{s}` is not a permission; use send, read and/or admin"));
        }
        if !out.iter().any(|o| o == s) {
            out.push(s.to_string());
        }
    }
    if out.is_empty() {
        return Err("a key needs at least one permission: send, read or admin".into());
    }
    Ok(out)
}

/// Rotates a key: a new one like it (name, account, permissions, expiry) is created, and the old
/// one stops working after `grace_ms` (at once when 0), so that a client can switch without a
/// gap. Returns the new key's secret (shown once) and record.
pub async fn rotate_key(
    store: &dyn wagate_store::Store,
    old: &wagate_store::ApiKey,
    grace_ms: i64,
    now: i64,
) -> wagate_store::Result<(String, wagate_store::ApiKey)> {
    let (secret, mut new) = new_key(
        &old.name,
        old.account_id.clone(),
        old.scopes.split(',').map(str::to_string).collect(),
    );
    new.expires_at = old.expires_at;
    new.tenant = old.tenant.clone();
    let created = store.create_api_key(&new).await?;
    if grace_ms > 0 {
        store.expire_api_key(&old.id, now + grace_ms).await?;
    } else {
        store.revoke_api_key(&old.id, now).await?;
    }
    Ok((secret, created))
}

/// A new API key: the secret (shown once) and what to store.
pub fn new_key(
    name: &str,
    account_id: Option<wagate_store::AccountId>,
    scopes: Vec<String>,
) -> (String, wagate_store::NewApiKey) {
    let secret = wagate_core::ids::secret("wg_", 24);
    let key = wagate_store::NewApiKey {
        name: name.to_string(),
        account_id,
        scopes,
        key_hash: wagate_core::signature::sha256_hex(secret.as_bytes()),
        prefix: secret[..7].to_string(),
        expires_at: None,
        tenant: None,
    };
    (secret, key)
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| ApiError::unauthorized("this endpoint needs an API key"))?;
        // The scheme is case-insensitive (RFC 7235 §2.1): `bearer` and `BEARER` are `Bearer`.
        let token = header
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ApiError::unauthorized("the Authorization header must be `Bearer <api key>`"))?;
        let mut caller = match state.config.auth.jwt.enabled() && crate::jwt::looks_like_jwt(token) {
            true => Caller::from_jwt(state, token).await?,
            false => Caller::from_key(state, token).await?,
        };
        let peer = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip().to_string());
        let forwarded = parts
            .headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().take(200).collect::<String>());
        caller.remote = match (peer, forwarded) {
            (Some(p), Some(f)) => Some(format!("{p} (forwarded for {f})")),
            (p, f) => p.or(f),
        };
        Ok(caller)
    }
}

/// A tenant's accounts now; `None` for a caller of every tenant.
fn tenant_accounts(state: &AppState, tenant: Option<&str>) -> Option<Vec<String>> {
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

impl Caller {
    /// The caller a JWT from the configured OpenID Connect issuer stands for.
    pub async fn from_jwt(state: &AppState, token: &str) -> Result<Self, ApiError> {
        let claims = crate::jwt::verify(&state.config.auth.jwt, &state.jwks, token)
            .await
            .map_err(|why| {
                ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", why)
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
    pub async fn from_key(state: &AppState, key: &str) -> Result<Self, ApiError> {
        let hash = wagate_core::signature::sha256_hex(key.as_bytes());
        let key = state
            .store
            .api_key_by_hash(&hash)
            .await?
            .filter(|k| k.revoked_at.is_none())
            .ok_or_else(|| ApiError::unauthorized("the API key is not valid (unknown or revoked)"))?;
        let now = crate::now_ms();
        if let Some(end) = key.expires_at.filter(|end| now >= *end) {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
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
}
