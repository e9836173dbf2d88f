//! `/v1/journal`: webhooks set aside because they failed to apply on their own, webhooks kept in
//! quarantine because no account has their phone number, and requeueing both once the cause is
//! fixed ([`wagate_engine::inbound::admin`]).

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;
use wagate_engine::auth::Caller;
use wagate_engine::inbound::admin::{self, DeadList, QuarantinedList, Released, Requeued};

use crate::api::{opt_i64, page_limit};
use crate::error::{ApiResult, ErrorBody};
use crate::state::AppState;

#[derive(Deserialize, IntoParams)]
pub struct DeadQuery {
    #[serde(default, deserialize_with = "opt_i64")]
    #[param(value_type = Option<i64>)]
    pub limit: Option<i64>,
}

/// Webhooks set aside because they failed to apply on their own (the rest kept flowing).
#[utoipa::path(get, path = "/v1/journal/dead", tag = "journal", params(DeadQuery),
    responses((status = 200, body = DeadList)), security(("api_key" = [])))]
pub async fn dead(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<DeadQuery>,
) -> ApiResult<Json<DeadList>> {
    caller.require_global("admin")?;
    let limit = page_limit(q.limit)?;
    Ok(Json(admin::dead(&state, &caller, limit).await?))
}

#[derive(Deserialize, IntoParams)]
pub struct QuarantinedQuery {
    /// Entries after this journal id (the last `id` of the previous page).
    #[serde(default, deserialize_with = "opt_i64")]
    #[param(value_type = Option<i64>)]
    pub after: Option<i64>,
    #[serde(default, deserialize_with = "opt_i64")]
    #[param(value_type = Option<i64>)]
    pub limit: Option<i64>,
}

/// Signed webhooks for phone numbers no account has, kept (acknowledged to Meta) until the
/// account exists; oldest first.
#[utoipa::path(get, path = "/v1/journal/quarantined", tag = "journal", params(QuarantinedQuery),
    responses((status = 200, body = QuarantinedList)), security(("api_key" = [])))]
pub async fn quarantined(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<QuarantinedQuery>,
) -> ApiResult<Json<QuarantinedList>> {
    caller.require_global("admin")?;
    let limit = page_limit(q.limit)?;
    Ok(Json(
        admin::quarantined(&state, &caller, q.after.unwrap_or(0), limit).await?,
    ))
}

/// Processes every quarantined webhook whose phone numbers now all have an account.
#[utoipa::path(post, path = "/v1/journal/quarantined/requeue", tag = "journal",
    responses((status = 200, body = Released)), security(("api_key" = [])))]
pub async fn release(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Released>> {
    Ok(Json(admin::release(&state, &caller).await?))
}

/// Queues a set-aside webhook for processing again (after fixing what made it fail).
#[utoipa::path(post, path = "/v1/journal/{id}/requeue", tag = "journal",
    params(("id" = i64, Path, description = "the journal entry's id")),
    responses((status = 200, body = Requeued), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn requeue(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Requeued>> {
    Ok(Json(admin::requeue(&state, &caller, &id).await?))
}
