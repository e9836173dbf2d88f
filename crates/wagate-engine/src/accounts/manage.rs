//! Making and changing accounts: names and secrets checked, the numbers Meta lists for a WABA,
//! an account made (its numbers free) and seen by every part of the gateway at once.

use wagate_core::meta::RetryClass;
use wagate_graph::{GraphError, GraphPath};

use super::runtime::AccountRuntime;
use crate::auth::Caller;
use crate::clock::now_ms;
use crate::error::{EngineError, EngineResult, Kind};
use crate::state::Engine;

/// A name, used in URLs (`/webhooks/whatsapp/{name}`): letters, digits, `-` and `_`.
pub fn check_name(name: &str) -> EngineResult<()> {
    let ok = wagate_core::validate::is_slug(name) && !name.starts_with("acc_");
    if ok {
        return Ok(());
    }
    Err(EngineError::invalid_field(
        "name",
        format!("`{name}` is not an account name: 1 to 64 letters, digits, - or _, not starting with acc_"),
        "e.g. \"acme-shoes\"",
    ))
}

pub fn check_secret(field: &str, value: &str, hint: &str) -> EngineResult<()> {
    if value.is_empty() || value.len() > 2048 || value.chars().any(char::is_whitespace) {
        return Err(EngineError::invalid_field(
            field,
            format!("{field} must be 1 to 2048 characters without spaces"),
            hint,
        ));
    }
    Ok(())
}

pub const TOKEN_HINT: &str = "paste the token from Meta's Business Settings (System users > Generate token)";
pub const SECRET_HINT: &str = "the App Secret from Meta's App Dashboard (App settings > Basic)";

/// What Meta lists of a WABA's phone numbers, with the token given; a refusal names the field.
pub async fn meta_numbers(
    state: &Engine,
    token: &str,
    waba_id: &str,
) -> EngineResult<Vec<wagate_store::PhoneNumberInfo>> {
    let path = GraphPath::new([waba_id, "phone_numbers"]).query(
        "fields",
        "id,display_phone_number,verified_name,quality_rating,throughput,name_status,whatsapp_business_manager_messaging_limit,messaging_limit_tier",
    );
    let answer = match state.graph.get(token, &path).await {
        Ok(a) => a,
        Err(GraphError::Meta { error, .. }) if error.class() == RetryClass::Account || error.code == 100 => {
            let field = if error.code == 100 { "waba_id" } else { "access_token" };
            return Err(EngineError::new(
                Kind::Refused,
                if error.code == 100 { "waba_not_found" } else { "token_rejected" },
                format!("Meta refused: {}", error.summary()),
            )
            .details(serde_json::json!({"field": field, "code": error.code}))
            .hint("nothing changed; check the WABA id and that the token has whatsapp_business_management and whatsapp_business_messaging for it"));
        }
        Err(e) => return Err(e.into()),
    };
    let text = |v: &serde_json::Value, k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
    Ok(answer["data"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|n| {
            Some(wagate_store::PhoneNumberInfo {
                phone_number_id: text(n, "id")?,
                display_phone_number: text(n, "display_phone_number"),
                verified_name: text(n, "verified_name"),
                quality_rating: text(n, "quality_rating"),
                throughput: n
                    .pointer("/throughput/level")
                    .and_then(|x| x.as_str())
                    .map(str::to_string),
                name_status: text(n, "name_status"),
                // The newer field, else the one it replaces.
                messaging_limit: text(n, "whatsapp_business_manager_messaging_limit")
                    .or_else(|| text(n, "messaging_limit_tier")),
            })
        })
        .collect())
}

/// A new token ends a pause that Meta's answer caused (one by hand stays); true when it did.
pub async fn resume_after_new_token(state: &Engine, account: &AccountRuntime, why: &str) -> bool {
    let resumed = account.pause().is_some_and(|p| !p.by_hand);
    if resumed {
        super::pause::resume(state, account, why).await;
    }
    resumed
}

/// An account the configuration file has is changed there, not here.
pub fn check_api_managed(a: &AccountRuntime) -> EngineResult<()> {
    if a.managed_by == "config" {
        return Err(EngineError::new(
            Kind::Conflict,
            "managed_by_file",
            format!("the account `{}` comes from the configuration file", a.name),
        )
        .hint("change it in the configuration file (or remove it there) and restart"));
    }
    Ok(())
}

/// Only a key of every account makes or removes accounts.
pub fn require_global_admin(caller: &Caller) -> EngineResult<()> {
    caller.require_global("admin")
}

/// The account just changed, as every part of the gateway now sees it.
pub async fn reloaded(state: &Engine, id: &str) -> EngineResult<AccountRuntime> {
    state.reload_accounts().await;
    state
        .accounts
        .by_id(id)
        .ok_or_else(|| EngineError::internal("the account is not in the reloaded list"))
}

/// Makes an account (its numbers free, its name and WABA not another's), has every part of the
/// gateway see it, processes what waited in quarantine for its numbers, and syncs its template
/// catalog (a failure to sync is logged; the account stands).
pub async fn make_account(state: &Engine, new: &wagate_store::NewApiAccount) -> EngineResult<AccountRuntime> {
    if let Some(taken) = new
        .phone_numbers
        .iter()
        .find_map(|n| state.accounts.by_phone(&n.phone_number_id))
    {
        return Err(EngineError::new(
            Kind::Conflict,
            "phone_number_taken",
            format!("the account `{}` has a number of this WABA already", taken.name),
        )
        .hint("delete that account first, or give phone_number_ids without it"));
    }
    let created = state.store.create_account(new, now_ms()).await.map_err(|e| match e {
        wagate_store::StoreError::Conflict(m) => EngineError::new(Kind::Conflict, "account_exists", m)
            .hint("choose another name, or change the account that has it (PATCH /v1/accounts/{name})"),
        e => e.into(),
    })?;
    let account = reloaded(state, &created.id).await?;
    // What Meta's webhooks of this WABA waited for in quarantine is processed now.
    if let Err(e) = crate::inbound::receive::release_quarantined(state).await {
        tracing::warn!(error = %e, "could not release the quarantined webhooks");
    }
    // Its template catalog, at once: sends are checked against it, and the doctor asks for it.
    match crate::sending::templates::sync_account(state, &account).await {
        Ok(n) => tracing::info!(account = %account.name, templates = n, "template catalog synced"),
        Err(e) => {
            tracing::warn!(account = %account.name, error = %e.message, "could not sync the new account's template catalog; POST /v1/templates/sync to try again")
        }
    }
    Ok(account)
}
