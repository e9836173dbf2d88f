//! Which account a request acts for, as its caller may see them: the one it names, the
//! caller's own, the configured default, or the only one.

use crate::accounts::runtime::AccountRuntime;
use crate::auth::Caller;
use crate::error::{EngineError, Kind};
use crate::state::Engine;

/// The account a list or lookup is limited to: the one named (`?account=`, which must be one
/// the key sees), else the key's own account; `None`: every account the key sees.
pub fn filter_account(state: &Engine, caller: &Caller, named: Option<&str>) -> Result<Option<String>, EngineError> {
    Ok(match named {
        Some(a) => Some(resolve_account(state, caller, Some(a), AccountFrom::Query)?.id.clone()),
        None => caller.account_id.clone().map(String::from),
    })
}

/// Where a request names its account: the error says how to name one there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountFrom {
    /// `"account"` in a JSON body.
    Body,
    /// `?account=` in the query.
    Query,
}

impl AccountFrom {
    fn example(self, name: &str) -> String {
        match self {
            AccountFrom::Body => format!("add \"account\": \"{name}\" to the JSON body"),
            AccountFrom::Query => format!("add ?account={name} to the URL"),
        }
    }
}

/// The account a request acts for: the one it names (by name or id), or the key's own, or the
/// configured default (`default_account`, the sandbox's own in the sandbox), or the only one
/// there is.
pub fn resolve_account(
    state: &Engine,
    caller: &Caller,
    named: Option<&str>,
    from: AccountFrom,
) -> Result<AccountRuntime, EngineError> {
    // An account the key may not see is answered as one that does not exist (a "forbidden"
    // would tell another tenant's account exists).
    let visible: Vec<AccountRuntime> = state
        .accounts
        .all()
        .iter()
        .filter(|a| caller.sees(&a.id))
        .cloned()
        .collect();
    let find = |key: &str| visible.iter().find(|a| a.id == key || a.name == key).cloned();
    let account = match named.or(caller.account_id.as_deref()) {
        Some(key) => find(key).ok_or_else(|| EngineError::unknown_account("account", key))?,
        None => match (visible.as_slice(), state.config.default_account.as_deref().and_then(find)) {
            ([only], _) => only.clone(),
            (_, Some(default)) => default,
            ([], None) => {
                return Err(
                    EngineError::new(Kind::Conflict, "no_account", "no account is configured")
                        .hint("configure an account, connect one (GET /v1/connect/start), or start without credentials for sandbox mode"),
                )
            }
            (several, None) => {
                let names: Vec<&str> = several.iter().map(|a| a.name.as_str()).collect();
                return Err(EngineError::invalid_field(
                    "account",
                    format!(
                        "several accounts are configured ({}) and the request names none",
                        names.join(", ")
                    ),
                    format!(
                        "name one: {}; or set default_account (WAGATE_DEFAULT_ACCOUNT)",
                        from.example(names[0])
                    ),
                )
                .details(serde_json::json!({"field": "account", "accounts": names})));
            }
        },
    };
    Ok(account)
}
