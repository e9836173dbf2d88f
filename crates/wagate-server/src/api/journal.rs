//! `/v1/journal`: webhooks set aside because they failed to apply on their own, and requeueing
//! them once the cause is fixed.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use wagate_core::time::rfc3339_ms;

use crate::api::{opt_i64, page_limit};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::AppState;

#[derive(Serialize, ToSchema)]
pub struct DeadEntryView {
    /// The journal entry's id.
    pub id: i64,
    pub received_at: String,
    pub set_aside_at: Option<String>,
    /// The account it was routed to at intake, if any.
    pub account: Option<String>,
    /// Why it could not be applied (the database's error).
    pub error: Option<String>,
    /// Meta's body as received.
    pub body: String,
}

#[derive(Serialize, ToSchema)]
pub struct DeadList {
    pub data: Vec<DeadEntryView>,
}

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
    caller.require("admin")?;
    let limit = page_limit(q.limit)?;
    let data = state
        .store
        .dead_journal(limit)
        .await?
        .into_iter()
        .map(|e| DeadEntryView {
            id: e.id,
            received_at: rfc3339_ms(e.received_at),
            set_aside_at: e.processed_at.map(rfc3339_ms),
            account: e.account_id,
            error: e.error,
            body: String::from_utf8_lossy(&e.body).to_string(),
        })
        .collect();
    Ok(Json(DeadList { data }))
}

#[derive(Serialize, ToSchema)]
pub struct Requeued {
    pub id: i64,
    pub requeued: bool,
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
    caller.require("admin")?;
    let id: i64 = id.parse().map_err(|_| {
        ApiError::invalid_field(
            "id",
            format!("`{id}` is not a journal entry id"),
            "use the id from GET /v1/journal/dead",
        )
    })?;
    if !state.store.requeue_journal(id).await? {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no set-aside journal entry {id}"),
        )
        .hint("GET /v1/journal/dead lists the entries that can be requeued"));
    }
    state.wake_processor.notify_one();
    Ok(Json(Requeued { id, requeued: true }))
}
