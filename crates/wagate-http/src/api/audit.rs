//! `GET /v1/audit`: the administrative actions, newest first ([`wagate_engine::audit`]).

use axum::extract::{Query, State};
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;
use wagate_engine::audit::{self, AuditList};
use wagate_engine::auth::Caller;

use crate::api::{opt_i64, page_limit};
use crate::error::ApiResult;
use crate::state::AppState;

#[derive(Deserialize, IntoParams)]
pub struct AuditQuery {
    /// Actions starting with this, e.g. `key.` or `hook.deleted`.
    pub action: Option<String>,
    /// One account's actions (name or id; one the key sees).
    pub account: Option<String>,
    /// Entries older than this id (`next_before` of the previous page).
    #[serde(default, deserialize_with = "opt_i64")]
    #[param(value_type = Option<i64>)]
    pub before: Option<i64>,
    #[serde(default, deserialize_with = "opt_i64")]
    #[param(value_type = Option<i64>)]
    pub limit: Option<i64>,
}

/// The administrative actions, newest first: who, what, when, from where. A key of one account
/// sees that account's only.
#[utoipa::path(get, path = "/v1/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, body = AuditList)), security(("api_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Json<AuditList>> {
    caller.require("admin")?;
    let limit = page_limit(q.limit)?;
    Ok(Json(
        audit::list(
            &state,
            &caller,
            &audit::AuditFilter {
                action: q.action,
                account: q.account,
                before: q.before,
            },
            limit,
        )
        .await?,
    ))
}
