//! The template catalog's operations: list an account's catalog, find a template by id or
//! name, sync from Meta, create at Meta, delete at Meta and from the catalog.

use serde::Serialize;
use serde_json::{json, Value};
use utoipa::ToSchema;
use wagate_core::time::rfc3339_ms;
use wagate_graph::GraphPath;
use wagate_store::Template;

use super::templates::{check_name, from_meta, sync_account};
use crate::auth::accounts::{resolve_account, AccountFrom};
use crate::auth::Caller;
use crate::clock::now_ms;
use crate::error::{EngineError, EngineResult};
use crate::state::Engine;

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
    /// Why Meta rejected or paused it, when it said.
    pub rejected_reason: Option<String>,
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
            rejected_reason: t.rejected_reason,
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

/// The catalog of the account named (or the caller's).
pub async fn list(state: &Engine, caller: &Caller, account: Option<&str>) -> EngineResult<TemplatePage> {
    caller.require("read")?;
    let account = resolve_account(state, caller, account, AccountFrom::Query)?;
    let data = state
        .store
        .list_templates(Some(&account.id))
        .await?
        .into_iter()
        .map(TemplateView::from)
        .collect();
    let synced_at = state.store.templates_synced_at(&account.id).await?.map(rfc3339_ms);
    Ok(TemplatePage { data, synced_at })
}

#[derive(Serialize, ToSchema)]
pub struct TemplateList {
    pub data: Vec<TemplateView>,
}

/// A template by Meta's template id, or by name (every language), among the accounts the caller
/// sees; another tenant's is not found.
pub async fn get(state: &Engine, caller: &Caller, key: &str) -> EngineResult<TemplateList> {
    caller.require("read")?;
    let data: Vec<TemplateView> = state
        .store
        .list_templates(None)
        .await?
        .into_iter()
        .filter(|t| caller.sees(&t.account_id))
        .filter(|t| t.template_id.as_deref() == Some(key) || t.name == key)
        .map(TemplateView::from)
        .collect();
    if data.is_empty() {
        return Err(EngineError::not_found("template", key)
            .hint("GET /v1/templates lists the catalog; POST /v1/templates/sync reads it from Meta"));
    }
    Ok(TemplateList { data })
}

/// Pulls the catalog of the account named (or the caller's) from Meta: `{"synced", "account"}`.
pub async fn sync(state: &Engine, caller: &Caller, account: Option<&str>) -> EngineResult<Value> {
    caller.require("admin")?;
    let account = resolve_account(state, caller, account, AccountFrom::Query)?;
    let n = sync_account(state, &account).await?;
    Ok(json!({"synced": n, "account": account.id}))
}

/// Creates a template at Meta (Meta's own body, plus optional `account`); it starts PENDING and
/// a webhook tells its verdict.
pub async fn create(state: &Engine, caller: &Caller, mut body: Value) -> EngineResult<TemplateView> {
    caller.require("admin")?;
    let named = body
        .as_object_mut()
        .and_then(|o| o.remove("account"))
        .and_then(|a| a.as_str().map(str::to_string));
    let account = resolve_account(state, caller, named.as_deref(), AccountFrom::Body)?;
    for field in ["name", "language", "category"] {
        if body.get(field).and_then(Value::as_str).is_none_or(str::is_empty) {
            return Err(EngineError::invalid_field(
                field,
                format!("{field} is required"),
                "see Meta's template creation reference",
            ));
        }
    }
    check_name(body["name"].as_str().unwrap_or_default())?;
    if !body.get("components").is_some_and(Value::is_array) {
        return Err(EngineError::invalid_field(
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
        .ok_or_else(|| EngineError::internal("Meta's answer had no name or language"))?;
    state.store.upsert_template(&template).await?;
    let details = json!({"language": template.language, "category": template.category});
    crate::audit::record(
        state,
        caller,
        "template.created",
        Some(&template.name),
        Some(&account.id),
        details,
    )
    .await;
    Ok(template.into())
}

/// Deletes a template (every language, or only the one Meta's `hsm_id` names) at Meta and from
/// the catalog: `{"deleted": n}`.
pub async fn delete(
    state: &Engine,
    caller: &Caller,
    name: &str,
    account: Option<&str>,
    hsm_id: Option<&str>,
) -> EngineResult<Value> {
    caller.require("admin")?;
    check_name(name)?;
    let account = resolve_account(state, caller, account, AccountFrom::Query)?;
    let mut path = GraphPath::new([account.waba_id.as_str(), "message_templates"]).query("name", name);
    if let Some(id) = hsm_id {
        path = path.query("hsm_id", id);
    }
    state.graph.delete(&account.access_token(), &path).await?;
    let deleted = match hsm_id {
        None => state.store.delete_templates(&account.id, name).await?,
        // One language of several: the catalog is read again from Meta.
        Some(_) => {
            let before = state.store.list_templates(Some(&account.id)).await?.len();
            let after = sync_account(state, &account).await?;
            before.saturating_sub(after) as u64
        }
    };
    crate::audit::record(
        state,
        caller,
        "template.deleted",
        Some(name),
        Some(&account.id),
        json!({"deleted": deleted, "template_id": hsm_id}),
    )
    .await;
    Ok(json!({"deleted": deleted}))
}
