//! The audit log: every administrative action through the API (keys, accounts, hooks, the
//! journal) and the command line (keys, secrets) is recorded with who, from where, and what it
//! changed. Recording never fails the action: a failure to record is logged.

use serde_json::Value;

use crate::auth::Caller;
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
