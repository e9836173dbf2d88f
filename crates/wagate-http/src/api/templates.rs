//! `/v1/templates`: the template catalog per account — synced from Meta (following paging),
//! created and deleted through Meta, and kept current by template webhooks. Sends are checked
//! against it before they are queued.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::{IntoParams, ToSchema};
use wagate_core::time::rfc3339_ms;
use wagate_graph::GraphPath;
use wagate_store::Template;

use crate::error::{ApiError, ApiResult, ErrorBody};
use wagate_engine::auth::accounts::{resolve_account, AccountFrom};
use wagate_engine::auth::Caller;
use wagate_engine::now_ms;
use wagate_engine::sending::templates::{check_name, from_meta, sync_account};

use crate::state::AppState;

#[derive(Serialize, ToSchema)]
pub struct TemplateView {
    pub name: String,
    pub language: String,
    /// Meta's template id.
    pub id: Option<String>,
    /// APPROVED, PENDING, REJECTED, PAUSED, DISABLED, …
    pub status: String,
    pub category: Option<String>,
    pub parameter_format: Option<String>,
    #[schema(value_type = Object)]
    pub components: Value,
    pub quality_score: Option<String>,
    pub account: String,
    pub updated_at: String,
}

impl From<Template> for TemplateView {
    fn from(t: Template) -> Self {
        Self {
            components: t
                .components
                .as_deref()
                .and_then(|c| serde_json::from_str(c).ok())
                .unwrap_or(Value::Null),
            updated_at: rfc3339_ms(t.updated_at),
            name: t.name,
            language: t.language,
            id: t.template_id,
            status: t.status,
            category: t.category,
            parameter_format: t.parameter_format,
            quality_score: t.quality_score,
            account: t.account_id,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct TemplatePage {
    pub data: Vec<TemplateView>,
    /// When the account's catalog was last synced from Meta; null: never.
    pub synced_at: Option<String>,
}

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
    caller.require("read")?;
    let account = resolve_account(&state, &caller, q.account.as_deref(), AccountFrom::Query)?;
    let data = state
        .store
        .list_templates(Some(&account.id))
        .await?
        .into_iter()
        .map(TemplateView::from)
        .collect();
    let synced_at = state.store.templates_synced_at(&account.id).await?.map(rfc3339_ms);
    Ok(Json(TemplatePage { data, synced_at }))
}

#[derive(Serialize, ToSchema)]
pub struct TemplateList {
    pub data: Vec<TemplateView>,
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
    caller.require("read")?;
    let data: Vec<TemplateView> = state
        .store
        .list_templates(None)
        .await?
        .into_iter()
        .filter(|t| caller.sees(&t.account_id))
        .filter(|t| t.template_id.as_deref() == Some(key.as_str()) || t.name == key)
        .map(TemplateView::from)
        .collect();
    if data.is_empty() {
        return Err(ApiError::not_found("template", &key)
            .hint("GET /v1/templates lists the catalog; POST /v1/templates/sync reads it from Meta"));
    }
    Ok(Json(TemplateList { data }))
}

/// Pull the catalog from Meta.
#[utoipa::path(post, path = "/v1/templates/sync", tag = "templates", params(AccountQuery),
    responses((status = 200, description = "{\"synced\": n}"), (status = 422, body = ErrorBody)), security(("api_key" = [])))]
pub async fn sync(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<AccountQuery>,
) -> ApiResult<Json<Value>> {
    caller.require("admin")?;
    let account = resolve_account(&state, &caller, q.account.as_deref(), AccountFrom::Query)?;
    let n = sync_account(&state, &account).await?;
    Ok(Json(json!({"synced": n, "account": account.id})))
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
    let mut body: Value = serde_json::from_slice(&body).map_err(|e| {
        ApiError::invalid_json(
            e,
            "send {\"name\": \"order_update\", \"language\": \"en_US\", \"category\": \"UTILITY\", \"components\": […]}",
        )
    })?;
    let named = body
        .as_object_mut()
        .and_then(|o| o.remove("account"))
        .and_then(|a| a.as_str().map(str::to_string));
    let account = resolve_account(&state, &caller, named.as_deref(), AccountFrom::Body)?;
    for field in ["name", "language", "category"] {
        if body.get(field).and_then(Value::as_str).is_none_or(str::is_empty) {
            return Err(ApiError::invalid_field(
                field,
                format!("{field} is required"),
                "see Meta's template creation reference",
            ));
        }
    }
    check_name(body["name"].as_str().unwrap_or_default())?;
    if !body.get("components").is_some_and(Value::is_array) {
        return Err(ApiError::invalid_field(
            "components",
            "components must be an array with at least a BODY",
            "e.g. [{\"type\": \"BODY\", \"text\": \"Hello {{1}}\"}]",
        ));
    }
    let answer = state
        .graph
        .post(
            &account.access_token(),
            &GraphPath::new([account.waba_id.as_str(), "message_templates"]),
            &body,
        )
        .await?;
    let mut meta = body.clone();
    meta["id"] = answer.get("id").cloned().unwrap_or(Value::Null);
    meta["status"] = answer.get("status").cloned().unwrap_or(json!("PENDING"));
    if let Some(c) = answer.get("category") {
        meta["category"] = c.clone();
    }
    let template = from_meta(&account.id, &meta, now_ms())
        .ok_or_else(|| ApiError::internal("Meta's answer had no name or language"))?;
    state.store.upsert_template(&template).await?;
    let details = json!({"language": template.language, "category": template.category});
    wagate_engine::audit::record(
        &state,
        &caller,
        "template.created",
        Some(&template.name),
        Some(&account.id),
        details,
    )
    .await;
    Ok((StatusCode::CREATED, Json(template.into())))
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
    caller.require("admin")?;
    check_name(&name)?;
    let account = resolve_account(&state, &caller, q.account.as_deref(), AccountFrom::Query)?;
    state
        .graph
        .delete(
            &account.access_token(),
            &GraphPath::new([account.waba_id.as_str(), "message_templates"]).query("name", name.as_str()),
        )
        .await?;
    let deleted = state.store.delete_templates(&account.id, &name).await?;
    wagate_engine::audit::record(
        &state,
        &caller,
        "template.deleted",
        Some(&name),
        Some(&account.id),
        json!({"deleted": deleted}),
    )
    .await;
    Ok(Json(json!({"deleted": deleted})))
}
