//! `/v1/journal`: webhooks set aside because they failed to apply on their own, webhooks kept in
//! quarantine because no account has their phone number, and requeueing both once the cause is
//! fixed.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use wagate_core::time::rfc3339_ms;

use crate::api::{opt_i64, page_limit};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;
use wagate_engine::auth::Caller;

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
    caller.require_global("admin")?;
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
pub struct QuarantinedEntryView {
    /// The journal entry's id.
    pub id: i64,
    pub received_at: String,
    /// The WABAs it names.
    pub waba_ids: Vec<String>,
    /// The phone numbers (phone_number_id) it names; those no account has keep it here.
    pub phone_number_ids: Vec<String>,
    /// Meta's body as received.
    pub body: String,
}

#[derive(Serialize, ToSchema)]
pub struct QuarantinedList {
    pub data: Vec<QuarantinedEntryView>,
    /// What to do about them.
    pub hint: &'static str,
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

const QUARANTINE_HINT: &str = "add an account with these phone numbers (and WABA), then POST /v1/journal/quarantined/requeue (a restart also releases them)";

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
    let data = state
        .store
        .quarantined_journal(q.after.unwrap_or(0), limit)
        .await?
        .into_iter()
        .map(|e| {
            let routing = wagate_core::webhook::Routing::parse(&e.body);
            let (mut waba_ids, mut phone_number_ids) = (Vec::new(), Vec::new());
            for (waba, phone) in routing.targets() {
                for (id, list) in [(waba, &mut waba_ids), (phone, &mut phone_number_ids)] {
                    if let Some(id) = id.filter(|id| !list.iter().any(|x: &String| x == id)) {
                        list.push(id.to_string());
                    }
                }
            }
            QuarantinedEntryView {
                id: e.id,
                received_at: rfc3339_ms(e.received_at),
                waba_ids,
                phone_number_ids,
                body: String::from_utf8_lossy(&e.body).to_string(),
            }
        })
        .collect();
    Ok(Json(QuarantinedList {
        data,
        hint: QUARANTINE_HINT,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct Released {
    /// Entries queued for processing as the accounts that now have their numbers.
    pub released: u64,
    /// Entries still naming a number no account has.
    pub still_quarantined: u64,
}

/// Processes every quarantined webhook whose phone numbers now all have an account.
#[utoipa::path(post, path = "/v1/journal/quarantined/requeue", tag = "journal",
    responses((status = 200, body = Released)), security(("api_key" = [])))]
pub async fn release(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Released>> {
    caller.require_global("admin")?;
    let (released, still_quarantined) = wagate_engine::inbound::receive::release_quarantined(&state).await?;
    let details = serde_json::json!({"released": released, "still_quarantined": still_quarantined});
    wagate_engine::audit::record(&state, &caller, "journal.quarantine_released", None, None, details).await;
    Ok(Json(Released {
        released,
        still_quarantined,
    }))
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
    caller.require_global("admin")?;
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
    wagate_engine::audit::record(
        &state,
        &caller,
        "journal.requeued",
        Some(&id.to_string()),
        None,
        serde_json::json!({}),
    )
    .await;
    Ok(Json(Requeued { id, requeued: true }))
}
