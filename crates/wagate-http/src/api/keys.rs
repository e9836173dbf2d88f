//! `/v1/keys`: the API keys — create (the secret is shown once), list with when each was last
//! used, revoke (at once, on every gateway: keys are looked up on each request, never cached),
//! and rotate with an optional grace period for the old one. The engine's key operations do the
//! work ([`wagate_engine::auth::keys`]).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use wagate_engine::auth::keys::{self, KeyList, KeyRequest, KeyView, RotateRequest};
use wagate_engine::auth::Caller;

use crate::api::parse_body_or_default;
use crate::error::{ApiResult, ErrorBody};
use crate::state::AppState;

/// Creates an API key; the answer carries the key itself, this once.
#[utoipa::path(post, path = "/v1/keys", tag = "keys", request_body = KeyRequest,
    responses((status = 201, body = KeyView), (status = 400, body = ErrorBody)), security(("api_key" = [])))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<KeyView>)> {
    caller.require("admin")?;
    const EXAMPLE: &str =
        "send {\"name\": \"billing\", \"scopes\": [\"send\", \"read\"], \"account\": \"acme\", \"expires_in_seconds\": 86400}";
    let r: KeyRequest = parse_body_or_default(&body, EXAMPLE)?;
    Ok((StatusCode::CREATED, Json(keys::create(&state, &caller, r).await?)))
}

/// Every key this key may manage (never the keys themselves), newest first.
#[utoipa::path(get, path = "/v1/keys", tag = "keys", responses((status = 200, body = KeyList)), security(("api_key" = [])))]
pub async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<KeyList>> {
    Ok(Json(keys::list(&state, &caller).await?))
}

/// One key.
#[utoipa::path(get, path = "/v1/keys/{id}", tag = "keys", params(("id" = String, Path, description = "the key's id")),
    responses((status = 200, body = KeyView), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<KeyView>> {
    Ok(Json(keys::get(&state, &caller, &id).await?))
}

/// Revokes a key: it stops working at once, on every gateway sharing the database.
#[utoipa::path(delete, path = "/v1/keys/{id}", tag = "keys", params(("id" = String, Path, description = "the key's id")),
    responses((status = 200, body = KeyView), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn revoke(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<KeyView>> {
    Ok(Json(keys::revoke(&state, &caller, &id).await?))
}

/// Replaces a key with a new one like it; the old one stops working at once, or after
/// `grace_seconds`. The answer carries the new key itself, this once.
#[utoipa::path(post, path = "/v1/keys/{id}/rotate", tag = "keys", request_body = RotateRequest,
    params(("id" = String, Path, description = "the key's id")),
    responses((status = 201, body = KeyView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)), security(("api_key" = [])))]
pub async fn rotate(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<KeyView>)> {
    caller.require("admin")?;
    let r: RotateRequest = parse_body_or_default(&body, "send {\"grace_seconds\": 3600} or nothing")?;
    Ok((StatusCode::CREATED, Json(keys::rotate(&state, &caller, &id, r).await?)))
}
