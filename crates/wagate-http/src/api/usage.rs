//! `/v1/usage`, `/v1/rates` and budgets: what each account, number and tenant spends
//! ([`wagate_engine::usage`]).

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;
use wagate_engine::auth::Caller;
use wagate_engine::usage::budgets::{self, BudgetList, BudgetRequest, BudgetView};
use wagate_engine::usage::cards::{self, CardList, CardView};
use wagate_engine::usage::reconcile::{self as recon, ReconcileRequest, Reconciliation};
use wagate_engine::usage::report::{self, UsageQuery, UsageReport};

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;

#[derive(Debug, Deserialize, IntoParams)]
pub struct UsageParams {
    /// The first day, `YYYY-MM-DD` (UTC); default: the first of this month.
    pub from: Option<String>,
    /// The last day, included; default: today.
    pub to: Option<String>,
    /// Comma-separated: day, account, number, tenant, category, market, type.
    pub group_by: Option<String>,
    /// The cards' currency; default: the newest card's.
    pub currency: Option<String>,
    /// One account (name or id).
    pub account: Option<String>,
}

/// Messages delivered and their estimated cost, grouped as asked, priced with the rate card in
/// force each day (volume tiers counted per account, market and category from the start of the
/// month). Billable messages no card prices are listed apart in `unpriced`, never counted as
/// free. `Accept: text/csv` answers the groups as CSV. A tenant's key sees its tenant's only.
#[utoipa::path(get, path = "/v1/usage", tag = "usage", params(UsageParams),
    responses((status = 200, body = UsageReport), (status = 400, body = ErrorBody)), security(("api_key" = [])))]
pub async fn usage(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Query(p): Query<UsageParams>,
) -> ApiResult<Response> {
    caller.require("read")?;
    let q = UsageQuery {
        from: p.from,
        to: p.to,
        group_by: p.group_by,
        currency: p.currency,
        account: p.account,
    };
    let answer = report::usage(&state, &caller, &q).await?;
    let wants_csv = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/csv"));
    if wants_csv {
        let csv = report::csv(&answer, q.group_by.as_deref())?;
        return Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], csv).into_response());
    }
    Ok(Json(answer).into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct RatesParams {
    /// The card's currency (ISO 4217, e.g. EUR).
    pub currency: Option<String>,
    /// The first day it prices, `YYYY-MM-DD`.
    pub effective: Option<String>,
}

/// Load a rate card: Meta's rates as CSV (`market,category,rate`, and for volume tiers
/// `tier_from,tier_to`). Checked whole: a fault is answered with its line and column, and
/// nothing is loaded. A card of the same currency and day is replaced.
#[utoipa::path(put, path = "/v1/rates", tag = "usage", params(RatesParams),
    request_body(content = String, content_type = "text/csv"),
    responses((status = 201, body = CardView), (status = 400, body = ErrorBody)), security(("api_key" = [])))]
pub async fn put_rates(
    State(state): State<AppState>,
    caller: Caller,
    Query(p): Query<RatesParams>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<CardView>)> {
    caller.require_global("admin")?;
    let required = |v: Option<String>, field: &str, example: &str| {
        v.filter(|v| !v.trim().is_empty()).ok_or_else(|| {
            ApiError::from(wagate_engine::EngineError::invalid_field(
                field,
                format!("?{field}= is required"),
                format!("e.g. PUT /v1/rates?currency=EUR&effective=2026-10-01 ({field}={example})"),
            ))
        })
    };
    let currency = required(p.currency, "currency", "EUR")?;
    let effective = required(p.effective, "effective", "2026-10-01")?;
    let text = std::str::from_utf8(&body).map_err(|_| {
        ApiError::from(wagate_engine::EngineError::invalid_field(
            "csv",
            "the body is not UTF-8 text",
            "send the card as CSV text (Content-Type: text/csv)",
        ))
    })?;
    let card = cards::import(&state, &caller, &currency, &effective, text).await?;
    Ok((StatusCode::CREATED, Json(card)))
}

/// The rate cards loaded, the oldest first.
#[utoipa::path(get, path = "/v1/rates", tag = "usage",
    responses((status = 200, body = CardList)), security(("api_key" = [])))]
pub async fn list_rates(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<CardList>> {
    Ok(Json(cards::list(&state, &caller).await?))
}

fn budget_body(body: &[u8]) -> Result<BudgetRequest, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::invalid_json(
            e,
            "send {\"amount\": \"250.00\", \"currency\": \"EUR\", \"hard_stop\": false}",
        )
    })
}

/// Set an account's monthly budget: `account.alert` events at 80 % and 100 % of the month's
/// estimated cost, and with `hard_stop` marketing templates refused once it is spent.
#[utoipa::path(put, path = "/v1/accounts/{name}/budget", tag = "usage", params(("name" = String, Path)),
    request_body = BudgetRequest,
    responses((status = 200, body = BudgetView), (status = 400, body = ErrorBody)), security(("api_key" = [])))]
pub async fn put_account_budget(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<Json<BudgetView>> {
    let scope = budgets::account_scope(&state, &caller, &name)?;
    let r = budget_body(&body)?;
    Ok(Json(budgets::put(&state, &caller, scope, r).await?))
}

/// Set a tenant's monthly budget (its accounts together).
#[utoipa::path(put, path = "/v1/tenants/{tenant}/budget", tag = "usage", params(("tenant" = String, Path)),
    request_body = BudgetRequest,
    responses((status = 200, body = BudgetView), (status = 400, body = ErrorBody)), security(("api_key" = [])))]
pub async fn put_tenant_budget(
    State(state): State<AppState>,
    caller: Caller,
    Path(tenant): Path<String>,
    body: Bytes,
) -> ApiResult<Json<BudgetView>> {
    let scope = budgets::tenant_scope(&caller, &tenant)?;
    let r = budget_body(&body)?;
    Ok(Json(budgets::put(&state, &caller, scope, r).await?))
}

/// The budgets the caller sees, with the month so far.
#[utoipa::path(get, path = "/v1/budgets", tag = "usage",
    responses((status = 200, body = BudgetList)), security(("api_key" = [])))]
pub async fn list_budgets(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<BudgetList>> {
    Ok(Json(budgets::list(&state, &caller).await?))
}

/// Read Meta's own pricing analytics now (each WABA's volume and cost per day, country and
/// category) and answer them beside wagate's estimate, per day and account (default: the last
/// 7 days). wagate reads them daily by itself as well.
#[utoipa::path(post, path = "/v1/usage/reconcile", tag = "usage", request_body = ReconcileRequest,
    responses((status = 200, body = Reconciliation), (status = 400, body = ErrorBody)), security(("api_key" = [])))]
pub async fn reconcile(State(state): State<AppState>, caller: Caller, body: Bytes) -> ApiResult<Json<Reconciliation>> {
    caller.require("admin")?;
    let r: ReconcileRequest = match body.is_empty() {
        true => ReconcileRequest::default(),
        false => serde_json::from_slice(&body).map_err(|e| {
            ApiError::invalid_json(e, "send {\"from\": \"2026-11-01\", \"to\": \"2026-11-30\"} or nothing")
        })?,
    };
    Ok(Json(recon::reconcile(&state, &caller, &r).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ReconciliationParams {
    /// The first day, `YYYY-MM-DD`; default: the first of this month.
    pub from: Option<String>,
    /// The last day, included; default: today.
    pub to: Option<String>,
}

/// wagate's estimate beside Meta's figures as last read, per day and account, with the
/// difference (when both are in one currency).
#[utoipa::path(get, path = "/v1/usage/reconciliation", tag = "usage", params(ReconciliationParams),
    responses((status = 200, body = Reconciliation), (status = 400, body = ErrorBody)), security(("api_key" = [])))]
pub async fn reconciliation(
    State(state): State<AppState>,
    caller: Caller,
    Query(p): Query<ReconciliationParams>,
) -> ApiResult<Json<Reconciliation>> {
    let q = UsageQuery {
        from: p.from,
        to: p.to,
        ..UsageQuery::default()
    };
    Ok(Json(recon::reconciliation(&state, &caller, &q).await?))
}
