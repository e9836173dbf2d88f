//! `GET /v1/audit`: the administrative actions, newest first.

use axum::extract::{Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use wagate_core::time::rfc3339_ms;

use crate::api::{opt_i64, page_limit};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use wagate_engine::auth::Caller;

#[derive(Serialize, ToSchema)]
pub struct AuditView {
    pub id: i64,
    pub at: String,
    /// Who: the API key's id (or `cli` for the command line)…
    pub actor: String,
    /// …and its name (or the system user on the command line).
    pub actor_name: Option<String>,
    /// From where: the peer address, and `X-Forwarded-For` when a proxy set it.
    pub remote: Option<String>,
    /// What, e.g. `key.created`, `hook.deleted`, `account.paused`, `secrets.rotated`.
    pub action: String,
    /// The id or name of what it acted on.
    pub target: Option<String>,
    /// The account it concerns (name), if one.
    pub account: Option<String>,
    /// What changed; never a secret.
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
}

#[derive(Serialize, ToSchema)]
pub struct AuditList {
    pub data: Vec<AuditView>,
    /// Pass as `before` for the next (older) page; `null` at the end.
    pub next_before: Option<i64>,
}

#[derive(Deserialize, IntoParams)]
pub struct AuditQuery {
    /// Actions starting with this, e.g. `key.` or `hook.deleted`.
    pub action: Option<String>,
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
    if q.action.as_deref().is_some_and(|a| a.is_empty() || a.len() > 100) {
        return Err(ApiError::invalid_field(
            "action",
            "action must be 1 to 100 characters",
            "e.g. ?action=key. for every key action",
        ));
    }
    // A tenant's key sees its tenant's actions: those taken for it, and those on its accounts.
    let tenant_accounts = caller.account_ids().unwrap_or_default();
    let tenant = caller.tenant.as_deref().map(|t| (t, tenant_accounts.as_slice()));
    let rows = state
        .store
        .list_audit(
            caller.account_id.as_deref(),
            tenant,
            q.action.as_deref(),
            q.before,
            limit,
        )
        .await?;
    let next_before = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|r| r.id))
        .flatten();
    let data = rows
        .into_iter()
        .map(|r| AuditView {
            id: r.id,
            at: rfc3339_ms(r.at),
            actor: r.actor,
            actor_name: r.actor_name,
            remote: r.remote,
            action: r.action,
            target: r.target,
            account: r
                .account_id
                .map(|id| state.accounts.by_id(&id).map_or(id.to_string(), |a| a.name.clone())),
            details: serde_json::from_str(&r.details).unwrap_or_default(),
        })
        .collect();
    Ok(Json(AuditList { data, next_before }))
}
