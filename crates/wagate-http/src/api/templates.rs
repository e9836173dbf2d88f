//! `/v1/templates`: the template catalog per account — synced from Meta (following paging),
//! created and deleted through Meta, and kept current by template webhooks. Sends are checked
//! against it before they are queued. The engine's catalog operations do the work
//! ([`wagate_engine::sending::catalog`]).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use wagate_engine::auth::Caller;
use wagate_engine::sending::catalog::{self, TemplateList, TemplatePage, TemplateView};

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;

#[derive(Deserialize, IntoParams)]
pub struct AccountQuery {
    /// Account name or id (default: the key's, or the only one).
    pub account: Option<String>,
}

/// The catalog.
#[utoipa::path(get, path = "/v1/templates", tag = "templates", params(AccountQuery),
    responses((status = 200, body = TemplatePage)), security(("api_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<AccountQuery>,
) -> ApiResult<Json<TemplatePage>> {
    Ok(Json(catalog::list(&state, &caller, q.account.as_deref()).await?))
}

/// A template by Meta's template id, or by name (every language), among the accounts this key
/// sees; another tenant's is not found.
#[utoipa::path(get, path = "/v1/templates/{id}", tag = "templates",
    params(("id" = String, Path, description = "Meta's template id, or the template's name")),
    responses((status = 200, body = TemplateList), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    Path(key): Path<String>,
) -> ApiResult<Json<TemplateList>> {
    Ok(Json(catalog::get(&state, &caller, &key).await?))
}

/// Pull the catalog from Meta.
#[utoipa::path(post, path = "/v1/templates/sync", tag = "templates", params(AccountQuery),
    responses((status = 200, description = "{\"synced\": n}"), (status = 422, body = ErrorBody)), security(("api_key" = [])))]
pub async fn sync(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<AccountQuery>,
) -> ApiResult<Json<Value>> {
    Ok(Json(catalog::sync(&state, &caller, q.account.as_deref()).await?))
}

/// A template to create at Meta: Meta's own body (`name`, `language`, `category`, `components`,
/// `parameter_format`), plus optional `account`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct CreateTemplate {
    name: String,
    language: String,
    category: String,
    #[schema(value_type = Object)]
    components: Value,
    account: Option<String>,
}

/// Create a template at Meta (it starts PENDING; a webhook tells its verdict).
#[utoipa::path(post, path = "/v1/templates", tag = "templates", request_body = CreateTemplate,
    responses((status = 201, body = TemplateView), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<TemplateView>)> {
    caller.require("admin")?;
    // JSON whatever the Content-Type says, as every other endpoint.
    let body: Value = serde_json::from_slice(&body).map_err(|e| {
        ApiError::invalid_json(
            e,
            "send {\"name\": \"order_update\", \"language\": \"en_US\", \"category\": \"UTILITY\", \"components\": […]}",
        )
    })?;
    Ok((StatusCode::CREATED, Json(catalog::create(&state, &caller, body).await?)))
}

/// Delete a template (every language) at Meta and from the catalog.
#[utoipa::path(delete, path = "/v1/templates/{name}", tag = "templates",
    params(("name" = String, Path, description = "Template name"), AccountQuery),
    responses((status = 200, description = "{\"deleted\": n}"), (status = 422, body = ErrorBody)), security(("api_key" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Query(q): Query<AccountQuery>,
) -> ApiResult<Json<Value>> {
    Ok(Json(
        catalog::delete(&state, &caller, &name, q.account.as_deref(), None).await?,
    ))
}
