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
    /// `None`: every account.
    pub account_id: Option<String>,
    scopes: Vec<String>,
}

impl Caller {
    /// Refuses unless the key has `scope` (or `admin`).
    pub fn require(&self, scope: &str) -> Result<(), ApiError> {
        if self.scopes.iter().any(|s| s == scope || s == "admin") {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("this API key lacks the `{scope}` permission"),
            )
            .hint(format!("create a key with `wagate keys create --scopes {scope}`")))
        }
    }

    /// The gateway itself, sending for one account (a hook's reply goes through the same checks
    /// as any send).
    pub fn for_account(account_id: &str) -> Self {
        Self {
            key_id: "gateway".into(),
            account_id: Some(account_id.to_string()),
            scopes: vec!["send".into()],
        }
    }

    /// Whether the key may see data of `account_id`.
    pub fn sees(&self, account_id: &str) -> bool {
        self.account_id.as_deref().is_none_or(|a| a == account_id)
    }
}

pub const SCOPES: &[&str] = &["send", "read", "admin"];

/// A new API key: the secret (shown once) and what to store.
pub fn new_key(name: &str, account_id: Option<String>, scopes: Vec<String>) -> (String, wagate_store::NewApiKey) {
    let secret = wagate_core::ids::secret("wg_", 24);
    let key = wagate_store::NewApiKey {
        name: name.to_string(),
        account_id,
        scopes,
        key_hash: wagate_core::signature::sha256_hex(secret.as_bytes()),
        prefix: secret[..7].to_string(),
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
        Caller::from_key(state, token).await
    }
}

impl Caller {
    /// The caller an API key stands for.
    pub async fn from_key(state: &AppState, key: &str) -> Result<Self, ApiError> {
        let hash = wagate_core::signature::sha256_hex(key.as_bytes());
        let key = state
            .store
            .api_key_by_hash(&hash)
            .await?
            .filter(|k| k.revoked_at.is_none())
            .ok_or_else(|| ApiError::unauthorized("the API key is not valid (unknown or revoked)"))?;
        Ok(Caller {
            key_id: key.id,
            account_id: key.account_id,
            scopes: key.scopes.split(',').map(str::to_string).collect(),
        })
    }
}
