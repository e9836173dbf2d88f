//! `/v1/accounts`: the accounts, whether their sending is paused, and the live controls — rotate
//! the access token, pause, resume — that work without a restart.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use wagate_core::meta::RetryClass;
use wagate_graph::{GraphError, GraphPath};

use crate::accounts::{AccountRuntime, Pause};
use crate::api::resolve_account;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::AppState;

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
}

#[derive(Serialize, ToSchema)]
pub struct AccountList {
    pub data: Vec<AccountView>,
}

fn view(state: &AppState, a: &AccountRuntime) -> AccountView {
    let limit = state
        .config
        .accounts
        .iter()
        .find(|c| c.name == a.name)
        .and_then(|c| c.messages_per_second)
        .unwrap_or(state.config.sender.messages_per_second);
    AccountView {
        id: a.id.clone(),
        name: a.name.clone(),
        waba_id: a.waba_id.clone(),
        phone_number_ids: a.phone_number_ids.clone(),
        messages_per_second: limit,
        paused: a.pause(),
    }
}

/// The accounts this key may act for.
#[utoipa::path(get, path = "/v1/accounts", tag = "accounts",
    responses((status = 200, body = AccountList)), security(("api_key" = [])))]
pub async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<AccountList>> {
    caller.require("read")?;
    let data = state
        .accounts
        .all()
        .iter()
        .filter(|a| caller.sees(&a.id))
        .map(|a| view(&state, a))
        .collect();
    Ok(Json(AccountList { data }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// The new access token (a system user's token does not expire).
    pub access_token: String,
}

/// Rotates the account's access token without a restart. The token is checked with Meta first
/// (a read of the account's first phone number); a refused one changes nothing. A pause that
/// Meta's answer caused ends, and queued messages go. The token lives in memory: put it in the
/// configuration too, or a restart brings back the configured one.
#[utoipa::path(put, path = "/v1/accounts/{name}/token", tag = "accounts",
    params(("name" = String, Path, description = "account name or id")),
    request_body = TokenRequest,
    responses((status = 200, body = AccountView), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn set_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<Json<AccountView>> {
    caller.require("admin")?;
    let account = resolve_account(&state, &caller, Some(&name))?.clone();
    let de = &mut serde_json::Deserializer::from_slice(&body);
    let r: TokenRequest = serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        ApiError::invalid_field(
            if field == "." { "body" } else { &field },
            format!("the request is not valid: {}", e.inner()),
            "send {\"access_token\": \"EAAG…\"}",
        )
    })?;
    let token = r.access_token.trim();
    if token.is_empty() || token.len() > 2048 || token.chars().any(char::is_whitespace) {
        return Err(ApiError::invalid_field(
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
                    &state,
                    &caller,
                    "account.token_rejected",
                    Some(&account.name),
                    Some(&account.id),
                    serde_json::json!({"meta_code": error.code}),
                )
                .await;
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
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
    tracing::info!(account = %account.name, "access token rotated");
    let resumed = account.pause().is_some_and(|p| !p.by_hand);
    if resumed {
        crate::accounts::resume(&state, &account, "the access token was rotated").await;
    }
    crate::audit::record(
        &state,
        &caller,
        "account.token_set",
        Some(&account.name),
        Some(&account.id),
        serde_json::json!({"resumed": resumed}),
    )
    .await;
    Ok(Json(view(&state, &account)))
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct PauseRequest {
    /// Why (shown to senders in `account_paused`).
    pub reason: Option<String>,
}

/// Pauses the account's sending by hand: queued messages wait, new sends answer
/// `409 account_paused`. Only `resume` ends it.
#[utoipa::path(post, path = "/v1/accounts/{name}/pause", tag = "accounts",
    params(("name" = String, Path, description = "account name or id")),
    request_body(content = PauseRequest, description = "optional"),
    responses((status = 200, body = AccountView)), security(("api_key" = [])))]
pub async fn pause(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<Json<AccountView>> {
    caller.require("admin")?;
    let account = resolve_account(&state, &caller, Some(&name))?.clone();
    let r: PauseRequest = if body.iter().all(u8::is_ascii_whitespace) {
        PauseRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::invalid_field(
                "reason",
                format!("the request is not valid: {e}"),
                "send {\"reason\": \"…\"} or nothing",
            )
        })?
    };
    let p = Pause {
        reason: r.reason.unwrap_or_else(|| "paused through the API".into()),
        code: None,
        hint: format!("POST /v1/accounts/{}/resume when sending may go on", account.name),
        since: wagate_core::time::rfc3339_ms(crate::now_ms()),
        by_hand: true,
    };
    // A pause from Meta's answer becomes one by hand (only resume ends it).
    let details = serde_json::json!({"reason": p.reason});
    if crate::accounts::pause(&state, &account, p).await {
        crate::audit::record(
            &state,
            &caller,
            "account.paused",
            Some(&account.name),
            Some(&account.id),
            details,
        )
        .await;
    }
    Ok(Json(view(&state, &account)))
}

/// Resumes the account's sending; queued messages go.
#[utoipa::path(post, path = "/v1/accounts/{name}/resume", tag = "accounts",
    params(("name" = String, Path, description = "account name or id")),
    responses((status = 200, body = AccountView)), security(("api_key" = [])))]
pub async fn resume(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<AccountView>> {
    caller.require("admin")?;
    let account = resolve_account(&state, &caller, Some(&name))?.clone();
    if crate::accounts::resume(&state, &account, "resumed through the API")
        .await
        .is_some()
    {
        crate::audit::record(
            &state,
            &caller,
            "account.resumed",
            Some(&account.name),
            Some(&account.id),
            serde_json::json!({}),
        )
        .await;
    }
    Ok(Json(view(&state, &account)))
}
