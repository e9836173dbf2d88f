//! `/v1/accounts`: the accounts — those of the configuration file, and those made here, whose
//! secrets the database keeps sealed — their phone numbers as Meta describes them, whether their
//! sending is paused, and the live controls (rotate the token, pause, resume). Each handler parses
//! and calls the engine's account operations ([`wagate_engine::accounts::ops`]).

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use wagate_engine::accounts::health::AccountHealth;
use wagate_engine::accounts::ops::{
    self, found, AccountList, AccountPatchRequest, AccountView, DeleteQuery, HealthRequest, NewAccountRequest,
    PauseRequest, PhoneNumberList, TokenRequest,
};
use wagate_engine::auth::Caller;

use crate::api::{parse_body, parse_body_or_default};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;

/// Adds an account: the token is checked with Meta, the WABA's numbers are read from Meta, and
/// the secrets are kept sealed. The answer carries the verify token, this once.
#[utoipa::path(post, path = "/v1/accounts", tag = "accounts", request_body = NewAccountRequest,
    responses((status = 201, body = AccountView), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<AccountView>)> {
    caller.require_global("admin")?;
    let r: NewAccountRequest = parse_body(
        &body,
        "send {\"name\": \"acme\", \"waba_id\": \"…\", \"access_token\": \"EAAG…\", \"app_secret\": \"…\"}",
    )?;
    Ok((StatusCode::CREATED, Json(ops::create(&state, &caller, r).await?)))
}

/// One account.
#[utoipa::path(get, path = "/v1/accounts/{name}", tag = "accounts",
    params(("name" = String, Path, description = "account name or id")),
    responses((status = 200, body = AccountView), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<AccountView>> {
    caller.require("read")?;
    Ok(Json(ops::view(&state, &found(&state, &caller, &name)?)))
}

/// Changes an account made through the API (a new token is checked with Meta first).
#[utoipa::path(patch, path = "/v1/accounts/{name}", tag = "accounts", request_body = AccountPatchRequest,
    params(("name" = String, Path, description = "account name or id")),
    responses((status = 200, body = AccountView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<Json<AccountView>> {
    caller.require("admin")?;
    let account = found(&state, &caller, &name)?;
    let r: AccountPatchRequest = parse_body(&body, "send the fields to change, e.g. {\"name\": \"acme-eu\"}")?;
    Ok(Json(ops::update(&state, &caller, &account, r).await?))
}

/// Deletes an account made through the API. Its history stays (and comes back if an account is
/// made for its WABA again) unless `?purge=true`. Its API keys stop working.
#[utoipa::path(delete, path = "/v1/accounts/{name}", tag = "accounts",
    params(("name" = String, Path, description = "account name or id"), DeleteQuery),
    responses((status = 200, description = "{\"deleted\": true, \"purged\": bool}"), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Query(q): Query<DeleteQuery>,
) -> ApiResult<Json<serde_json::Value>> {
    caller.require_global("admin")?;
    let account = found(&state, &caller, &name)?;
    Ok(Json(ops::delete(&state, &caller, &account, q.purge).await?))
}

/// The account's phone numbers as Meta describes them, read from Meta now (and kept).
#[utoipa::path(get, path = "/v1/accounts/{name}/phone-numbers", tag = "accounts",
    params(("name" = String, Path, description = "account name or id")),
    responses((status = 200, body = PhoneNumberList), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn phone_numbers(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<PhoneNumberList>> {
    caller.require("read")?;
    let account = found(&state, &caller, &name)?;
    Ok(Json(ops::phone_numbers(&state, &caller, &account).await?))
}

/// The accounts this key may act for.
#[utoipa::path(get, path = "/v1/accounts", tag = "accounts",
    responses((status = 200, body = AccountList)), security(("api_key" = [])))]
pub async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<AccountList>> {
    Ok(Json(ops::list(&state, &caller)?))
}

/// Rotates the account's access token without a restart. The token is checked with Meta first
/// (a read of the account's first phone number); a refused one changes nothing. A pause that
/// Meta's answer caused ends, and queued messages go. An account made through the API keeps it
/// (sealed); for one of the configuration file it lives in memory: put it in the file too, or a
/// restart brings back the file's.
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
    let account = found(&state, &caller, &name)?;
    let r: TokenRequest = parse_body(&body, "send {\"access_token\": \"EAAG…\"}")?;
    Ok(Json(ops::set_token(&state, &caller, &account, r).await?))
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
    let account = found(&state, &caller, &name)?;
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
    Ok(Json(ops::pause(&state, &caller, &account, r).await?))
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
    let account = found(&state, &caller, &name)?;
    Ok(Json(ops::resume(&state, &caller, &account).await?))
}

/// Every check of the account, with what was found and the fix: token (valid, permissions,
/// expiry), WABA and numbers reachable, registered, quality and display name, the app's
/// subscription to the WABA, the app's webhook, the template catalog, and the gateway's
/// database, journal and clock. What `wagate doctor` prints.
#[utoipa::path(get, path = "/v1/accounts/{name}/health", tag = "accounts",
    params(("name" = String, Path, description = "account name or id")),
    responses((status = 200, body = AccountHealth), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn health(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<AccountHealth>> {
    caller.require("read")?;
    let account = found(&state, &caller, &name)?;
    Ok(Json(ops::health(&state, &caller, &account, false).await?))
}

/// The same checks, fixing what can be fixed from here (`{"fix": true}`): the app's
/// subscription to the WABA.
#[utoipa::path(post, path = "/v1/accounts/{name}/health", tag = "accounts", request_body = HealthRequest,
    params(("name" = String, Path, description = "account name or id")),
    responses((status = 200, body = AccountHealth), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn health_fix(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<Json<AccountHealth>> {
    caller.require("admin")?;
    let account = found(&state, &caller, &name)?;
    let r: HealthRequest = parse_body_or_default(&body, "send {\"fix\": true}")?;
    Ok(Json(ops::health(&state, &caller, &account, r.fix).await?))
}
