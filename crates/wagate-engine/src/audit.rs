//! The audit log: every administrative action through the API (keys, accounts, hooks, the
//! journal) and the command line (keys, secrets) is recorded with who, from where, and what it
//! changed. Recording never fails the action: a failure to record is logged. Reading it is
//! [`list`].

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use wagate_core::time::rfc3339_ms;

use crate::auth::Caller;
use crate::error::{EngineError, EngineResult};
use crate::state::Engine;

/// Records an action taken through the API.
pub async fn record(
    state: &Engine,
    caller: &Caller,
    action: &str,
    target: Option<&str>,
    account_id: Option<&str>,
    details: Value,
) {
    let entry = wagate_store::NewAuditEntry {
        at: crate::clock::now_ms(),
        actor: caller.key_id.clone(),
        actor_name: Some(caller.key_name.clone()),
        remote: caller.remote.clone(),
        action: action.to_string(),
        target: target.map(str::to_string),
        account_id: account_id.map(Into::into).or_else(|| caller.account_id.clone()),
        // The caller's tenant, else the tenant of the account it acted on.
        tenant: caller.tenant.clone().or_else(|| {
            account_id
                .or(caller.account_id.as_deref())
                .and_then(|a| state.accounts.by_id(a))
                .and_then(|a| a.tenant.clone())
        }),
        details,
    };
    write(state.store.as_ref(), &entry).await;
}

/// Records an action taken on the command line (straight on the database).
pub async fn record_cli(
    store: &dyn wagate_store::Store,
    action: &str,
    target: Option<&str>,
    account_id: Option<&str>,
    details: Value,
) {
    let user = std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).ok();
    let entry = wagate_store::NewAuditEntry {
        at: crate::clock::now_ms(),
        actor: "cli".into(),
        actor_name: user,
        remote: Some("local".into()),
        action: action.to_string(),
        target: target.map(str::to_string),
        account_id: account_id.map(Into::into),
        tenant: None,
        details,
    };
    write(store, &entry).await;
}

async fn write(store: &dyn wagate_store::Store, entry: &wagate_store::NewAuditEntry) {
    if let Err(e) = store.record_audit(entry).await {
        tracing::error!(error = %e, action = %entry.action, "could not record an administrative action in the audit log");
    }
}

#[derive(Serialize, ToSchema)]
pub struct AuditView {
    pub id: i64,
    pub at: String,
    /// Who: the API key's id (or `cli` for the command line)…
    pub actor: String,
    /// …and its name (or the system user on the command line).
    pub actor_name: Option<String>,
    /// From where: the peer address, and `X-Forwarded-For` when a proxy set it.
    pub remote: Option<String>,
    /// What, e.g. `key.created`, `hook.deleted`, `account.paused`, `secrets.rotated`.
    pub action: String,
    /// The id or name of what it acted on.
    pub target: Option<String>,
    /// The account it concerns (name), if one.
    pub account: Option<String>,
    /// What changed; never a secret.
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
}

#[derive(Serialize, ToSchema)]
pub struct AuditList {
    pub data: Vec<AuditView>,
    /// Pass as `before` for the next (older) page; `null` at the end.
    pub next_before: Option<i64>,
}

/// Which administrative actions to read.
#[derive(Debug, Default, Clone)]
pub struct AuditFilter {
    /// Actions starting with this, e.g. `key.` or `hook.deleted`.
    pub action: Option<String>,
    /// One account's (name or id).
    pub account: Option<String>,
    /// Older than this entry (`next_before` of the previous page).
    pub before: Option<i64>,
}

/// The administrative actions the caller may see, newest first: a key of one account sees that
/// account's; a tenant's key, its tenant's (those taken for it, and those on its accounts).
pub async fn list(state: &Engine, caller: &Caller, filter: &AuditFilter, limit: i64) -> EngineResult<AuditList> {
    caller.require("admin")?;
    let (action, before) = (filter.action.as_deref(), filter.before);
    if action.is_some_and(|a| a.is_empty() || a.len() > 100) {
        return Err(EngineError::invalid_field(
            "action",
            "action must be 1 to 100 characters",
            "e.g. ?action=key. for every key action",
        ));
    }
    // A tenant's key sees its tenant's actions: those taken for it, and those on its accounts.
    let tenant_accounts = caller.account_ids().unwrap_or_default();
    let tenant = caller.tenant.as_deref().map(|t| (t, tenant_accounts.as_slice()));
    // One account: the one named (which the caller must see), else the key's own.
    let account = crate::auth::accounts::filter_account(state, caller, filter.account.as_deref())?;
    let rows = state
        .store
        .list_audit(account.as_deref(), tenant, action, before, limit)
        .await?;
    let next_before = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|r| r.id))
        .flatten();
    let data = rows
        .into_iter()
        .map(|r| AuditView {
            id: r.id,
            at: rfc3339_ms(r.at),
            actor: r.actor,
            actor_name: r.actor_name,
            remote: r.remote,
            action: r.action,
            target: r.target,
            account: r
                .account_id
                .map(|id| state.accounts.by_id(&id).map_or(id.to_string(), |a| a.name.clone())),
            details: serde_json::from_str(&r.details).unwrap_or_default(),
        })
        .collect();
    Ok(AuditList { data, next_before })
}
