//! `/v1/hooks`: the user's services that receive events. Create (the secret is shown this once),
//! list, get (with health), update, delete, rotate the secret, enable, the attempts, replay —
//! each done by the engine's hook operations ([`wagate_engine::hooks::ops`]).

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use wagate_engine::auth::Caller;
use wagate_engine::hooks::delivery::TestAnswer;
use wagate_engine::hooks::manage::{find, HookRequest};
use wagate_engine::hooks::ops::{self, HookList, HookView, ReplayRequest};
use wagate_store::HookId;

use crate::api::{opt_i64, page_limit, wait_header, WaitQuery};
use crate::error::{ApiResult, ErrorBody};
use crate::state::AppState;

fn parse_request(body: &Bytes) -> ApiResult<HookRequest> {
    super::parse_body_of(
        "hook",
        body,
        "send {\"url\": \"https://…\", \"events\": [\"message.*\"]}; see /openapi.json for every field",
    )
}

/// Register a hook; the answer carries its secret, this once.
#[utoipa::path(post, path = "/v1/hooks", tag = "hooks", request_body = HookRequest,
    responses((status = 201, body = HookView), (status = 400, body = ErrorBody)), security(("api_key" = [])))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<HookView>)> {
    caller.require("admin")?;
    let r = parse_request(&body)?;
    Ok((StatusCode::CREATED, Json(ops::create(&state, &caller, r).await?)))
}

/// Every hook.
#[utoipa::path(get, path = "/v1/hooks", tag = "hooks", responses((status = 200, body = HookList)), security(("api_key" = [])))]
pub async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<HookList>> {
    Ok(Json(ops::list(&state, &caller).await?))
}

/// A hook with its health: success rate, backlog, last error.
#[utoipa::path(get, path = "/v1/hooks/{id}", tag = "hooks", params(("id" = String, Path)),
    responses((status = 200, body = HookView), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<HookId>,
) -> ApiResult<Json<HookView>> {
    Ok(Json(ops::get(&state, &caller, &id).await?))
}

/// Change a hook's fields.
#[utoipa::path(patch, path = "/v1/hooks/{id}", tag = "hooks", params(("id" = String, Path)), request_body = HookRequest,
    responses((status = 200, body = HookView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<HookId>,
    body: Bytes,
) -> ApiResult<Json<HookView>> {
    caller.require("admin")?;
    let hook = find(&state, &caller, &id).await?;
    let r = parse_request(&body)?;
    let changed: Vec<String> = serde_json::from_slice::<serde_json::Map<String, Value>>(&body)
        .map(|m| m.keys().filter(|k| k.as_str() != "secret").cloned().collect())
        .unwrap_or_default();
    Ok(Json(ops::update(&state, &caller, hook, r, changed).await?))
}

/// Delete a hook with its deliveries and attempts.
#[utoipa::path(delete, path = "/v1/hooks/{id}", tag = "hooks", params(("id" = String, Path)),
    responses((status = 200, description = "{\"deleted\": true}"), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn delete(State(state): State<AppState>, caller: Caller, Path(id): Path<HookId>) -> ApiResult<Json<Value>> {
    Ok(Json(ops::delete(&state, &caller, &id).await?))
}

/// A new secret; the previous one keeps signing beside it for 24 hours.
#[utoipa::path(post, path = "/v1/hooks/{id}/secret/rotate", tag = "hooks", params(("id" = String, Path)),
    responses((status = 200, description = "{\"secret\", \"previous_secret_valid_until\"}"), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn rotate(State(state): State<AppState>, caller: Caller, Path(id): Path<HookId>) -> ApiResult<Json<Value>> {
    Ok(Json(ops::rotate(&state, &caller, &id).await?))
}

/// Turn a disabled hook back on. It takes new events from now on, and what was pending when it
/// was disabled; replay brings what happened in between.
#[utoipa::path(post, path = "/v1/hooks/{id}/enable", tag = "hooks", params(("id" = String, Path)),
    responses((status = 200, body = HookView), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn enable(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<HookId>,
) -> ApiResult<Json<HookView>> {
    Ok(Json(ops::enable(&state, &caller, &id).await?))
}

/// Turn a hook off (its events wait in the log; enabling it takes new ones, and replay brings
/// what it missed).
#[utoipa::path(post, path = "/v1/hooks/{id}/disable", tag = "hooks", params(("id" = String, Path)),
    responses((status = 200, body = HookView), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn disable(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<HookId>,
) -> ApiResult<Json<HookView>> {
    Ok(Json(ops::disable(&state, &caller, &id).await?))
}

/// Send the hook a `hook.test` event now, signed as its deliveries are, and see what its
/// receiver answered. Nothing is stored: its deliveries and health are untouched.
#[utoipa::path(post, path = "/v1/hooks/{id}/test", tag = "hooks", params(("id" = String, Path)),
    responses((status = 200, body = TestAnswer), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn test(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<HookId>,
) -> ApiResult<Json<TestAnswer>> {
    Ok(Json(ops::test(&state, &caller, &id).await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct AttemptQuery {
    #[serde(default, deserialize_with = "opt_i64")]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[serde(default, deserialize_with = "opt_i64")]
    pub cursor: Option<i64>,
}

/// The hook's attempts, newest first.
#[utoipa::path(get, path = "/v1/hooks/{id}/attempts", tag = "hooks", params(("id" = String, Path), AttemptQuery, WaitQuery),
    responses((status = 200, description = "{\"data\": [...], \"next_cursor\"}"), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn attempts(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<HookId>,
    Query(q): Query<AttemptQuery>,
    Query(wait): Query<WaitQuery>,
) -> ApiResult<Response> {
    caller.require("admin")?;
    find(&state, &caller, &id).await?;
    let limit = page_limit(q.limit)?;
    let within = wait.within()?;
    let waiting = within.map(|w| (w, wait.wait_for.as_deref().unwrap_or_default()));
    Ok(
        match ops::attempts(&state, &caller, &id, q.cursor, limit, waiting).await? {
            (page, Some(met)) => (wait_header(met), Json(page)).into_response(),
            (page, None) => Json(page).into_response(),
        },
    )
}

/// Deliver again every event in a time range that this hook takes (or only the failed ones).
#[utoipa::path(post, path = "/v1/hooks/{id}/replay", tag = "hooks", params(("id" = String, Path)), request_body = ReplayRequest,
    responses((status = 202, description = "{\"queued\": n}"), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn replay(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<HookId>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.require("admin")?;
    let hook = find(&state, &caller, &id).await?;
    let r: ReplayRequest = super::parse_body_of("replay", &body, "send {\"since\": \"2026-01-31T12:00:00Z\"}")?;
    let queued = ops::replay(&state, &caller, &hook, &r).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({"queued": queued}))))
}
