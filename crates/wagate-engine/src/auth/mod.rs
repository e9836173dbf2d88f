//! Who may do what: the [`Caller`] and its permissions; API keys (`Bearer wg_…`, stored as SHA-256
//! — long random values, so a fast hash is enough — scoped to an account, a tenant and
//! permissions; their operations in [`keys`]); JWTs from an OpenID Connect issuer ([`jwt`]);
//! turning a bearer token into a caller ([`authenticate`]); and which account a request acts for
//! ([`accounts`]).

pub mod accounts;
pub mod authenticate;
pub mod jwt;
pub mod keys;
pub mod oidc;
pub mod sessions;
pub mod signin;

use crate::error::{EngineError, Kind};

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
    pub(crate) tenant_accounts: Option<Vec<String>>,
    pub(crate) scopes: Vec<String>,
    /// Where the request came from: the peer address, and `X-Forwarded-For` when a proxy set it.
    pub remote: Option<String>,
}

impl Caller {
    /// Refuses unless the key has `scope` (or `admin`).
    pub fn require(&self, scope: &str) -> Result<(), EngineError> {
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
        Err(EngineError::new(
            Kind::Forbidden,
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
    pub fn require_global(&self, scope: &str) -> Result<(), EngineError> {
        self.require(scope)?;
        if self.is_global() {
            return Ok(());
        }
        Err(EngineError::new(
            Kind::Forbidden,
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
    pub fn require_all_accounts(&self, scope: &str, what: &str) -> Result<(), EngineError> {
        self.require(scope)?;
        if self.account_id.is_none() {
            return Ok(());
        }
        Err(EngineError::new(
            Kind::Forbidden,
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
