//! API keys' operations: create (the secret is given this once), list with when each was last
//! used, read, revoke (at once, on every gateway: keys are looked up on each request, never
//! cached), and rotate with an optional grace period for the old one.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use wagate_core::time::{parse_time_ms, rfc3339_ms};
use wagate_store::ApiKey;

use super::accounts::{resolve_account, AccountFrom};
use super::Caller;
use crate::clock::now_ms;
use crate::error::{EngineError, EngineResult, Kind};
use crate::state::Engine;

#[derive(Serialize, ToSchema)]
pub struct KeyView {
    pub id: String,
    pub name: String,
    /// The first characters of the key, to recognise it.
    pub prefix: String,
    /// Its permissions: send, read, admin.
    pub scopes: Vec<String>,
    /// The account it is limited to (name); `null`: every account.
    pub account: Option<String>,
    /// The tenant it belongs to; `null`: every tenant.
    pub tenant: Option<String>,
    pub created_at: String,
    /// When it last authenticated a request (to the minute); `null`: never.
    pub last_used_at: Option<String>,
    /// When it stops working; `null`: never.
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
    /// `active`, `expired` or `revoked`.
    pub state: &'static str,
    /// The key itself: only in the answer that creates it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct KeyList {
    pub data: Vec<KeyView>,
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct KeyRequest {
    /// What the key is for, e.g. `billing-service`.
    pub name: Option<String>,
    /// Permissions: send, read, admin (default send and read).
    pub scopes: Option<Vec<String>>,
    /// Limit the key to one account (name or id); default: the caller's, or every account.
    pub account: Option<String>,
    /// When it stops working (RFC 3339)…
    pub expires_at: Option<String>,
    /// …or in how many seconds.
    pub expires_in_seconds: Option<i64>,
    /// The tenant it belongs to (a key of every tenant may give any; a tenant's key makes keys
    /// of its own tenant).
    pub tenant: Option<String>,
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct RotateRequest {
    /// How long the old key keeps working beside the new one (default 0: it stops at once).
    pub grace_seconds: Option<i64>,
}

pub fn view(state: &Engine, k: &ApiKey, now: i64) -> KeyView {
    KeyView {
        id: k.id.to_string(),
        name: k.name.clone(),
        prefix: k.prefix.clone(),
        scopes: k.scopes.split(',').map(str::to_string).collect(),
        account: k.account_id.as_deref().map(|id| {
            state
                .accounts
                .by_id(id)
                .map_or_else(|| id.to_string(), |a| a.name.clone())
        }),
        tenant: k.tenant.clone(),
        created_at: rfc3339_ms(k.created_at),
        last_used_at: k.last_used_at.map(rfc3339_ms),
        expires_at: k.expires_at.map(rfc3339_ms),
        revoked_at: k.revoked_at.map(rfc3339_ms),
        state: match () {
            _ if k.revoked_at.is_some() => "revoked",
            _ if !k.is_active(now) => "expired",
            _ => "active",
        },
        key: None,
    }
}

/// The key a caller may manage: one of its account's (or any, for a key of every account).
/// Another account's key is not found, rather than forbidden, so that its existence is not told.
pub async fn find(state: &Engine, caller: &Caller, id: &str) -> EngineResult<ApiKey> {
    state
        .store
        .get_api_key(id)
        .await?
        .filter(|k| caller.account_id.is_none() || k.account_id == caller.account_id)
        .filter(|k| caller.sees_tenant(k.tenant.as_deref()))
        .ok_or_else(|| EngineError::not_found("API key", id).hint("GET /v1/keys lists the keys this key may manage"))
}

/// Creates an API key; the view carries the key itself, this once.
pub async fn create(state: &Engine, caller: &Caller, r: KeyRequest) -> EngineResult<KeyView> {
    caller.require("admin")?;
    let name = r.name.unwrap_or_default();
    if name.trim().is_empty() || name.len() > 100 {
        return Err(EngineError::invalid_field(
            "name",
            "name is required (1 to 100 characters)",
            "name the key after what uses it, e.g. \"billing-service\"",
        ));
    }
    let scopes = super::check_scopes(&r.scopes.unwrap_or_else(|| vec!["send".into(), "read".into()]))
        .map_err(|e| EngineError::invalid_field("scopes", e, "e.g. [\"send\", \"read\"]"))?;
    // A key of one account makes keys of that account only.
    let account_id = match (r.account.as_deref(), caller.account_id.as_deref()) {
        (None, None) => None,
        (named, _) => Some(resolve_account(state, caller, named, AccountFrom::Body)?.id.clone()),
    };
    let now = now_ms();
    let expires_at = match (r.expires_at.as_deref(), r.expires_in_seconds) {
        (Some(_), Some(_)) => {
            return Err(EngineError::invalid_field(
                "expires_at",
                "give expires_at or expires_in_seconds, not both",
                "drop one of them",
            ))
        }
        (Some(at), None) => Some(parse_time_ms(at).filter(|t| *t > now).ok_or_else(|| {
            EngineError::invalid_field(
                "expires_at",
                format!("`{at}` is not a time in the future"),
                "use RFC 3339, e.g. 2027-01-31T00:00:00Z",
            )
        })?),
        (None, Some(s)) if s <= 0 || s > 10 * 365 * 86_400 => {
            return Err(EngineError::invalid_field(
                "expires_in_seconds",
                format!("{s} is not between 1 and 315360000 (ten years)"),
                "e.g. 86400 for a day",
            ))
        }
        (None, Some(s)) => Some(now + s * 1000),
        (None, None) => None,
    };
    let tenant = match (&caller.tenant, r.tenant.as_deref().map(str::trim)) {
        (Some(own), Some(asked)) if asked != own => {
            return Err(EngineError::invalid_field(
                "tenant",
                format!("this key belongs to tenant `{own}` and makes keys of that tenant only"),
                "leave tenant out",
            ))
        }
        (Some(own), _) => Some(own.clone()),
        (None, Some(t)) if !wagate_core::validate::is_slug(t) => {
            return Err(EngineError::invalid_field(
                "tenant",
                format!("`{t}` is not a tenant: 1 to 64 letters, digits, - or _"),
                "e.g. \"acme\"",
            ))
        }
        (None, t) => t.map(str::to_string),
    };
    // A key of one account is of that account's tenant.
    if let (Some(t), Some(a)) = (&tenant, &account_id) {
        if state.accounts.by_id(a).is_none_or(|acc| acc.tenant.as_ref() != Some(t)) {
            return Err(EngineError::invalid_field(
                "account",
                format!("the account is not tenant `{t}`'s"),
                "give an account of the tenant, or leave account out",
            ));
        }
    }
    let (secret, mut new) = super::new_key(name.trim(), account_id.map(Into::into), scopes);
    new.expires_at = expires_at;
    new.tenant = tenant;
    let created = state.store.create_api_key(&new).await?;
    let details = serde_json::json!({"name": created.name, "scopes": created.scopes, "expires_at": created.expires_at.map(rfc3339_ms)});
    crate::audit::record(
        state,
        caller,
        "key.created",
        Some(&created.id),
        created.account_id.as_deref(),
        details,
    )
    .await;
    let mut v = view(state, &created, now);
    v.key = Some(secret);
    Ok(v)
}

/// Every key the caller may manage (never the keys themselves), newest first.
pub async fn list(state: &Engine, caller: &Caller) -> EngineResult<KeyList> {
    caller.require("admin")?;
    let now = now_ms();
    let data = state
        .store
        .list_api_keys()
        .await?
        .iter()
        .filter(|k| caller.account_id.is_none() || k.account_id == caller.account_id)
        .filter(|k| caller.sees_tenant(k.tenant.as_deref()))
        .map(|k| view(state, k, now))
        .collect();
    Ok(KeyList { data })
}

/// One key.
pub async fn get(state: &Engine, caller: &Caller, id: &str) -> EngineResult<KeyView> {
    caller.require("admin")?;
    let key = find(state, caller, id).await?;
    Ok(view(state, &key, now_ms()))
}

/// Revokes a key: it stops working at once, on every gateway sharing the database.
pub async fn revoke(state: &Engine, caller: &Caller, id: &str) -> EngineResult<KeyView> {
    caller.require("admin")?;
    let key = find(state, caller, id).await?;
    let now = now_ms();
    if state.store.revoke_api_key(&key.id, now).await? {
        let details = serde_json::json!({"name": key.name});
        crate::audit::record(
            state,
            caller,
            "key.revoked",
            Some(&key.id),
            key.account_id.as_deref(),
            details,
        )
        .await;
    }
    let key = find(state, caller, id).await?;
    Ok(view(state, &key, now))
}

/// Replaces a key with a new one like it; the old one stops working at once, or after the
/// request's `grace_seconds`. The view carries the new key itself, this once.
pub async fn rotate(state: &Engine, caller: &Caller, id: &str, r: RotateRequest) -> EngineResult<KeyView> {
    caller.require("admin")?;
    let grace = r.grace_seconds.unwrap_or(0);
    if !(0..=30 * 86_400).contains(&grace) {
        return Err(EngineError::invalid_field(
            "grace_seconds",
            format!("{grace} is not between 0 and 2592000 (30 days)"),
            "e.g. 3600 to let the old key work for another hour",
        ));
    }
    let old = find(state, caller, id).await?;
    let now = now_ms();
    if !old.is_active(now) {
        return Err(EngineError::new(
            Kind::Conflict,
            "key_inactive",
            format!("the API key `{}` is revoked or expired", old.id),
        )
        .hint("create a new key (POST /v1/keys) instead"));
    }
    let (secret, created) = super::rotate_key(state.store.as_ref(), &old, grace * 1000, now).await?;
    let details = serde_json::json!({"name": old.name, "replaced_by": created.id, "grace_seconds": grace});
    crate::audit::record(
        state,
        caller,
        "key.rotated",
        Some(&old.id),
        old.account_id.as_deref(),
        details,
    )
    .await;
    let mut v = view(state, &created, now);
    v.key = Some(secret);
    Ok(v)
}
