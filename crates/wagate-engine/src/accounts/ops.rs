//! The accounts' operations (`/v1/accounts` in the HTTP API): the accounts — those of the configuration file, and those made here, whose
//! secrets the database keeps sealed — their phone numbers as Meta describes them, whether their
//! sending is paused, and the live controls (rotate the token, pause, resume).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use wagate_core::meta::RetryClass;
use wagate_graph::{GraphError, GraphPath};

use super::health::AccountHealth;
use super::manage::{
    check_api_managed, check_name, check_secret, make_account, meta_numbers, reloaded, require_global_admin,
    resume_after_new_token, SECRET_HINT, TOKEN_HINT,
};
use super::runtime::{AccountRuntime, Pause};
use crate::auth::Caller;
use crate::clock::now_ms;
use crate::error::{EngineError, EngineResult, Kind};
use crate::state::Engine;

#[derive(Serialize, ToSchema)]
pub struct AccountView {
    pub id: String,
    pub name: String,
    pub waba_id: String,
    pub phone_number_ids: Vec<String>,
    /// Messages per second per phone number that the gateway keeps to (0: no limit).
    pub messages_per_second: u32,
    /// Why sending is paused; `null` while it sends.
    pub paused: Option<Pause>,
    /// `config` (the configuration file has it; change it there) or `api`.
    pub managed_by: String,
    /// The tenant that connected it through "Connect WhatsApp", if one.
    pub tenant: Option<String>,
    /// Where Meta's webhooks for it go (set it as the app's callback URL).
    pub webhook_path: String,
    /// The verify token for Meta's webhook settings: only in the answer that creates the
    /// account (or changes the token).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify_token: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct AccountList {
    pub data: Vec<AccountView>,
}

pub fn view(state: &Engine, a: &AccountRuntime) -> AccountView {
    AccountView {
        id: a.id.clone(),
        name: a.name.clone(),
        waba_id: a.waba_id.clone(),
        phone_number_ids: a.phone_number_ids.clone(),
        messages_per_second: a.messages_per_second.unwrap_or(state.config.sender.messages_per_second),
        paused: a.pause(),
        managed_by: a.managed_by.clone(),
        tenant: a.tenant.clone(),
        webhook_path: format!("/webhooks/whatsapp/{}", a.name),
        verify_token: None,
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAccountRequest {
    /// Its name, used in URLs: letters, digits, `-`, `_`.
    pub name: String,
    /// The WhatsApp Business Account id.
    pub waba_id: String,
    /// A token with whatsapp_business_messaging and whatsapp_business_management for the WABA.
    pub access_token: String,
    /// The Meta app's App Secret: it checks the webhooks' signatures.
    pub app_secret: String,
    /// For Meta's webhook handshake; made for you when not given (shown once).
    pub verify_token: Option<String>,
    /// The numbers it sends from; default every number Meta lists for the WABA.
    pub phone_number_ids: Option<Vec<String>>,
    /// Messages per second per number (default the gateway's).
    pub messages_per_second: Option<u32>,
    /// The tenant it belongs to: that tenant's keys see it, no other tenant's.
    pub tenant: Option<String>,
}

/// Adds an account: the token is checked with Meta, the WABA's numbers are read from Meta, and
/// the secrets are kept sealed. The answer carries the verify token, this once.
/// Adds an account: the token is checked with Meta, the WABA's numbers are read from Meta, and
/// the secrets are kept sealed. The view carries the verify token, this once.
pub async fn create(state: &Engine, caller: &Caller, r: NewAccountRequest) -> EngineResult<AccountView> {
    require_global_admin(caller)?;
    check_name(&r.name)?;
    if r.waba_id.is_empty() || r.waba_id.len() > 32 || !r.waba_id.chars().all(|c| c.is_ascii_digit()) {
        return Err(EngineError::invalid_field(
            "waba_id",
            format!("`{}` is not a WABA id (digits)", r.waba_id),
            "the WhatsApp Business Account id from Meta's WhatsApp Manager",
        ));
    }
    check_secret("access_token", &r.access_token, TOKEN_HINT)?;
    check_secret("app_secret", &r.app_secret, SECRET_HINT)?;
    if let Some(t) = r.tenant.as_deref().filter(|t| !wagate_core::validate::is_slug(t)) {
        return Err(EngineError::invalid_field(
            "tenant",
            format!("`{t}` is not a tenant: 1 to 64 letters, digits, - or _"),
            "e.g. \"acme\"",
        ));
    }
    if let Some(v) = &r.verify_token {
        check_secret(
            "verify_token",
            v,
            "any string without spaces; enter the same in Meta's webhook settings",
        )?;
    }
    if r.messages_per_second.is_some_and(|n| n > 1000) {
        return Err(EngineError::invalid_field(
            "messages_per_second",
            "messages_per_second is at most 1000 (Meta's highest throughput)",
            "80 is Meta's default; 0 is no limit",
        ));
    }
    let listed = meta_numbers(state, &r.access_token, &r.waba_id).await?;
    let numbers = match &r.phone_number_ids {
        None if listed.is_empty() => {
            return Err(EngineError::new(
                Kind::Refused,
                "no_phone_numbers",
                format!("Meta lists no phone number for WABA {}", r.waba_id),
            )
            .details(serde_json::json!({"field": "waba_id"}))
            .hint("add a number to the WABA in WhatsApp Manager first"))
        }
        None => listed,
        Some(ids) => {
            if let Some(missing) = ids.iter().find(|id| !listed.iter().any(|n| &n.phone_number_id == *id)) {
                return Err(EngineError::new(
                    Kind::Refused,
                    "phone_number_not_in_waba",
                    format!("Meta lists no phone number {missing} for WABA {}", r.waba_id),
                )
                .details(serde_json::json!({"field": "phone_number_ids", "listed": listed.iter().map(|n| &n.phone_number_id).collect::<Vec<_>>()}))
                .hint("use the ids Meta lists for this WABA, or leave phone_number_ids out to take them all"));
            }
            listed
                .into_iter()
                .filter(|n| ids.contains(&n.phone_number_id))
                .collect()
        }
    };
    let verify_token = r
        .verify_token
        .clone()
        .unwrap_or_else(|| wagate_core::ids::secret("vt_", 16));
    let new = wagate_store::NewApiAccount {
        name: r.name.clone(),
        waba_id: r.waba_id.clone(),
        access_token: r.access_token.clone(),
        app_secret: r.app_secret.clone(),
        verify_token: verify_token.clone(),
        messages_per_second: r.messages_per_second.map(i64::from),
        phone_numbers: numbers,
        tenant: r.tenant.clone(),
    };
    let account = make_account(state, &new).await?;
    let details = serde_json::json!({"waba_id": account.waba_id, "phone_number_ids": account.phone_number_ids});
    crate::audit::record(
        state,
        caller,
        "account.created",
        Some(&account.name),
        Some(&account.id),
        details,
    )
    .await;
    let mut v = view(state, &account);
    v.verify_token = Some(verify_token);
    Ok(v)
}

/// One account.
/// The account a path names, if the key may see it; another's is not found.
pub fn found(state: &Engine, caller: &Caller, name: &str) -> EngineResult<AccountRuntime> {
    state.accounts.find(name).filter(|a| caller.sees(&a.id)).ok_or_else(|| {
        EngineError::not_found("account", name).hint("GET /v1/accounts lists the accounts this key may see")
    })
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct AccountPatchRequest {
    pub name: Option<String>,
    pub access_token: Option<String>,
    pub app_secret: Option<String>,
    pub verify_token: Option<String>,
    /// `null` goes back to the gateway's default.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<u32>)]
    pub messages_per_second: Option<Option<u32>>,
}

/// Changes an account made through the API (a new token is checked with Meta first).
/// Changes an account made through the API (a new token is checked with Meta first).
pub async fn update(
    state: &Engine,
    caller: &Caller,
    account: &AccountRuntime,
    r: AccountPatchRequest,
) -> EngineResult<AccountView> {
    caller.require("admin")?;
    check_api_managed(account)?;
    if let Some(n) = &r.name {
        check_name(n)?;
    }
    if let Some(t) = &r.access_token {
        check_secret("access_token", t, TOKEN_HINT)?;
        meta_numbers(state, t, &account.waba_id).await?;
    }
    if let Some(s) = &r.app_secret {
        check_secret("app_secret", s, SECRET_HINT)?;
    }
    if let Some(v) = &r.verify_token {
        check_secret(
            "verify_token",
            v,
            "any string without spaces; enter the same in Meta's webhook settings",
        )?;
    }
    let patch = wagate_store::AccountPatch {
        name: r.name.clone(),
        access_token: r.access_token.clone(),
        app_secret: r.app_secret.clone(),
        verify_token: r.verify_token.clone(),
        messages_per_second: r.messages_per_second.map(|n| n.map(i64::from)),
    };
    state
        .store
        .update_account(&account.id, &patch, now_ms())
        .await
        .map_err(|e| match e {
            wagate_store::StoreError::Conflict(m) => {
                EngineError::new(Kind::Conflict, "account_exists", m).hint("choose another name")
            }
            e => e.into(),
        })?
        .ok_or_else(|| EngineError::not_found("account", &account.name))?;
    let changed: Vec<&str> = [
        ("name", r.name.is_some()),
        ("access_token", r.access_token.is_some()),
        ("app_secret", r.app_secret.is_some()),
        ("verify_token", r.verify_token.is_some()),
        ("messages_per_second", r.messages_per_second.is_some()),
    ]
    .into_iter()
    .filter_map(|(f, on)| on.then_some(f))
    .collect();
    let updated = reloaded(state, &account.id).await?;
    if r.access_token.is_some() {
        resume_after_new_token(state, &updated, "the access token was changed").await;
    }
    crate::audit::record(
        state,
        caller,
        "account.updated",
        Some(&updated.name),
        Some(&updated.id),
        serde_json::json!({"fields": changed}),
    )
    .await;
    let mut v = view(state, &updated);
    v.verify_token = r.verify_token;
    Ok(v)
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct DeleteQuery {
    /// Also remove its history: messages, statuses, contacts, events, media, templates, keys.
    #[serde(default)]
    pub purge: bool,
}

/// Deletes an account made through the API. Its history stays (and comes back if an account is
/// made for its WABA again) unless `?purge=true`. Its API keys stop working.
/// Deletes an account made through the API. Its history stays (and comes back if an account is
/// made for its WABA again) unless `purge`. Its API keys stop working.
pub async fn delete(
    state: &Engine,
    caller: &Caller,
    account: &AccountRuntime,
    purge: bool,
) -> EngineResult<serde_json::Value> {
    require_global_admin(caller)?;
    check_api_managed(account)?;
    if !state.store.delete_account(&account.id, purge, now_ms()).await? {
        return Err(EngineError::not_found("account", &account.name));
    }
    state.reload_accounts().await;
    crate::audit::record(
        state,
        caller,
        "account.deleted",
        Some(&account.name),
        Some(&account.id),
        serde_json::json!({"purged": purge}),
    )
    .await;
    Ok(serde_json::json!({"deleted": true, "purged": purge}))
}

#[derive(Serialize, ToSchema)]
pub struct PhoneNumberView {
    pub phone_number_id: String,
    pub display_phone_number: Option<String>,
    /// The display name Meta approved.
    pub verified_name: Option<String>,
    /// GREEN, YELLOW, RED or UNKNOWN.
    pub quality_rating: Option<String>,
    /// Meta's throughput level: STANDARD (80 messages/s) or HIGH (up to 1,000).
    pub throughput: Option<String>,
    /// The display name's review: APPROVED, PENDING_REVIEW, DECLINED, …
    pub name_status: Option<String>,
    /// When Meta was last asked; `null`: never (only configured).
    pub synced_at: Option<String>,
    /// How many users the number may start conversations with a day: TIER_250 … TIER_UNLIMITED.
    pub messaging_limit: Option<String>,
}

fn number_view(n: wagate_store::PhoneNumber) -> PhoneNumberView {
    PhoneNumberView {
        phone_number_id: n.phone_number_id,
        display_phone_number: n.display_phone_number,
        verified_name: n.verified_name,
        quality_rating: n.quality_rating,
        throughput: n.throughput,
        name_status: n.name_status,
        synced_at: n.synced_at.map(wagate_core::time::rfc3339_ms),
        messaging_limit: n.messaging_limit,
    }
}

/// An account's numbers as Meta last described them (kept when the account was made, its
/// numbers read or its health checked: nothing is asked of Meta now), and when its token
/// expires as last checked (`Some(None)`: never; `None`: not checked since this gateway started).
pub struct KnownNumbers {
    pub account: String,
    pub numbers: Vec<PhoneNumberView>,
    pub token_expires_at: Option<Option<i64>>,
}

/// What is known of the numbers of the accounts the caller sees, for the overview.
pub async fn known_numbers(state: &Engine, caller: &Caller) -> EngineResult<Vec<KnownNumbers>> {
    caller.require("read")?;
    let mut known = Vec::new();
    for account in list(state, caller)?.data {
        let numbers = state.store.account_phone_numbers(&account.id).await?;
        known.push(KnownNumbers {
            token_expires_at: state.token_expiry.get(&account.id),
            account: account.name,
            numbers: numbers.into_iter().map(number_view).collect(),
        });
    }
    Ok(known)
}

#[derive(Serialize, ToSchema)]
pub struct PhoneNumberList {
    pub data: Vec<PhoneNumberView>,
    /// Why Meta could not be asked now (the list is the last one read), or `null`.
    pub sync_error: Option<String>,
}

/// The account's phone numbers as Meta describes them, read from Meta now (and kept).
pub async fn phone_numbers(state: &Engine, caller: &Caller, account: &AccountRuntime) -> EngineResult<PhoneNumberList> {
    caller.require("read")?;
    let sync_error = match meta_numbers(state, &account.access_token(), &account.waba_id).await {
        Ok(listed) => {
            // Only the account's own numbers are updated; a number it does not use stays out.
            let own: Vec<_> = listed
                .into_iter()
                .filter(|n| account.phone_number_ids.contains(&n.phone_number_id))
                .collect();
            state.store.sync_phone_numbers(&account.id, &own, now_ms()).await?;
            None
        }
        Err(e) => Some(e.message),
    };
    let data = state
        .store
        .account_phone_numbers(&account.id)
        .await?
        .into_iter()
        .map(number_view)
        .collect();
    Ok(PhoneNumberList { data, sync_error })
}

/// The accounts the caller may act for.
pub fn list(state: &Engine, caller: &Caller) -> EngineResult<AccountList> {
    caller.require("read")?;
    let data = state
        .accounts
        .all()
        .iter()
        .filter(|a| caller.sees(&a.id))
        .map(|a| view(state, a))
        .collect();
    Ok(AccountList { data })
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// The new access token (a system user's token does not expire).
    pub access_token: String,
}

/// Rotates the account's access token without a restart. The token is checked with Meta first
/// (a read of the account's first phone number); a refused one changes nothing. A pause that
/// Meta's answer caused ends, and queued messages go. An account made through the API keeps it
/// (sealed); for one of the configuration file it lives in memory: put it in the file too, or a
/// restart brings back the file's.
/// Rotates the account's access token without a restart, once Meta accepts it (a read of the
/// account's first phone number); a refused one changes nothing. A pause that Meta's answer
/// caused ends, and queued messages go.
pub async fn set_token(
    state: &Engine,
    caller: &Caller,
    account: &AccountRuntime,
    r: TokenRequest,
) -> EngineResult<AccountView> {
    caller.require("admin")?;
    let token = r.access_token.trim();
    if token.is_empty() || token.len() > 2048 || token.chars().any(char::is_whitespace) {
        return Err(EngineError::invalid_field(
            "access_token",
            "access_token must be 1 to 2048 characters without spaces",
            "paste the token from Meta's Business Settings (System users > Generate token)",
        ));
    }
    if let Some(phone) = account.phone_number_ids.first() {
        match state.graph.get(token, &GraphPath::new([phone.as_str()])).await {
            Ok(_) => {}
            Err(GraphError::Meta { error, .. }) if error.class() == RetryClass::Account || error.code == 100 => {
                crate::audit::record(
                    state,
                    caller,
                    "account.token_rejected",
                    Some(&account.name),
                    Some(&account.id),
                    serde_json::json!({"meta_code": error.code}),
                )
                .await;
                return Err(EngineError::new(
                    Kind::Refused,
                    "token_rejected",
                    format!("Meta refused the new token: {}", error.summary()),
                )
                .details(serde_json::json!({"field": "access_token", "code": error.code}))
                .hint("nothing changed; generate a token with whatsapp_business_messaging for this account"));
            }
            Err(e) => return Err(e.into()),
        }
    }
    account.set_access_token(token);
    if account.managed_by != "config" {
        // An account made through the API keeps its token, sealed, across restarts.
        let patch = wagate_store::AccountPatch {
            access_token: Some(token.to_string()),
            ..Default::default()
        };
        state.store.update_account(&account.id, &patch, now_ms()).await?;
    }
    tracing::info!(account = %account.name, "access token rotated");
    let resumed = resume_after_new_token(state, account, "the access token was rotated").await;
    crate::audit::record(
        state,
        caller,
        "account.token_set",
        Some(&account.name),
        Some(&account.id),
        serde_json::json!({"resumed": resumed}),
    )
    .await;
    Ok(view(state, account))
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct PauseRequest {
    /// Why (shown to senders in `account_paused`).
    pub reason: Option<String>,
}

/// Pauses the account's sending by hand: queued messages wait, new sends answer
/// `409 account_paused`. Only `resume` ends it.
/// Pauses the account's sending by hand: queued messages wait, new sends are refused with
/// `account_paused`. Only `resume` ends it.
pub async fn pause(
    state: &Engine,
    caller: &Caller,
    account: &AccountRuntime,
    r: PauseRequest,
) -> EngineResult<AccountView> {
    caller.require("admin")?;
    let p = Pause {
        reason: r.reason.unwrap_or_else(|| "paused through the API".into()),
        code: None,
        hint: format!("POST /v1/accounts/{}/resume when sending may go on", account.name),
        since: wagate_core::time::rfc3339_ms(now_ms()),
        by_hand: true,
    };
    // A pause from Meta's answer becomes one by hand (only resume ends it).
    let details = serde_json::json!({"reason": p.reason});
    if super::pause::pause(state, account, p).await {
        crate::audit::record(
            state,
            caller,
            "account.paused",
            Some(&account.name),
            Some(&account.id),
            details,
        )
        .await;
    }
    Ok(view(state, account))
}

/// Resumes the account's sending; queued messages go.
/// Resumes the account's sending; queued messages go.
pub async fn resume(state: &Engine, caller: &Caller, account: &AccountRuntime) -> EngineResult<AccountView> {
    caller.require("admin")?;
    if super::pause::resume(state, account, "resumed through the API")
        .await
        .is_some()
    {
        crate::audit::record(
            state,
            caller,
            "account.resumed",
            Some(&account.name),
            Some(&account.id),
            serde_json::json!({}),
        )
        .await;
    }
    Ok(view(state, account))
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct HealthRequest {
    /// Fix what can be fixed from here (the app's subscription to the WABA).
    #[serde(default)]
    pub fix: bool,
}

async fn health_of(state: &Engine, account: &AccountRuntime, fix: bool) -> AccountHealth {
    let mut health = super::health::account_health(state, account, fix).await;
    health.checks.extend(super::health::gateway_checks(state).await);
    health.ok = health.checks.iter().all(|c| c.ok);
    health
}

/// Every check of the account, with what was found and the fix: token (valid, permissions,
/// expiry), WABA and numbers reachable, registered, quality and display name, the app's
/// subscription to the WABA, the app's webhook, the template catalog, and the gateway's
/// database, journal and clock. What `wagate doctor` prints.
/// Every check of the account, with what was found and the fix (and, with `fix`, fixing what
/// can be fixed from here: the app's subscription to the WABA). What `wagate doctor` prints.
pub async fn health(
    state: &Engine,
    caller: &Caller,
    account: &AccountRuntime,
    fix: bool,
) -> EngineResult<AccountHealth> {
    caller.require("read")?;
    if fix {
        caller.require("admin")?;
    }
    let health = health_of(state, account, fix).await;
    if fix {
        let fixed: Vec<&str> = health
            .checks
            .iter()
            .filter(|c| c.detail.contains("(--fix)"))
            .map(|c| c.name)
            .collect();
        crate::audit::record(
            state,
            caller,
            "account.fixed",
            Some(&account.name),
            Some(&account.id),
            serde_json::json!({"fixed": fixed}),
        )
        .await;
    }
    Ok(health)
}

/// A field that may be absent (`None`), `null` (`Some(None)`) or a value.
fn double_option<'de, T: Deserialize<'de>, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}
