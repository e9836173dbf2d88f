//! The template catalog's rules: syncing an account's catalog from Meta (following paging), and
//! checking a template send against it (exists in the language, APPROVED, parameters fit).

use serde_json::{json, Value};
use wagate_graph::GraphPath;
use wagate_store::Template;

use crate::accounts::runtime::AccountRuntime;
use crate::clock::now_ms;
use crate::error::{EngineError, EngineResult, Kind};
use crate::state::Engine;

pub fn from_meta(account_id: &str, t: &Value, now: i64) -> Option<Template> {
    let s = |k: &str| {
        t.get(k).and_then(|v| {
            v.as_str()
                .map(str::to_string)
                .or_else(|| v.as_u64().map(|n| n.to_string()))
        })
    };
    Some(Template {
        account_id: account_id.to_string(),
        name: s("name")?,
        language: s("language")?,
        template_id: s("id"),
        status: s("status").unwrap_or_else(|| "PENDING".into()),
        category: s("category"),
        parameter_format: s("parameter_format"),
        components: t.get("components").map(Value::to_string),
        quality_score: t
            .pointer("/quality_score/score")
            .and_then(Value::as_str)
            .map(str::to_string),
        updated_at: now,
        rejected_reason: s("rejected_reason").filter(|r| r != "NONE"),
    })
}

/// What a sync reads of each template (Meta's default leaves out the quality and the reason).
const TEMPLATE_FIELDS: &str =
    "name,language,status,category,id,components,parameter_format,quality_score,rejected_reason";

/// Pulls an account's `message_templates` from Meta, page after page, and replaces the catalog.
pub async fn sync_account(state: &Engine, account: &AccountRuntime) -> EngineResult<usize> {
    let now = now_ms();
    let mut templates = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..1000 {
        let mut path = GraphPath::new([account.waba_id.as_str(), "message_templates"])
            .query("limit", "100")
            .query("fields", TEMPLATE_FIELDS);
        if let Some(a) = &after {
            path = path.query("after", a.as_str());
        }
        let page = state.graph.get(&account.access_token(), &path).await?;
        templates.extend(
            page["data"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| from_meta(&account.id, t, now)),
        );
        match (
            page.pointer("/paging/next"),
            page.pointer("/paging/cursors/after").and_then(Value::as_str),
        ) {
            (Some(_), Some(a)) => after = Some(a.to_string()),
            _ => break,
        }
    }
    state.store.replace_templates(&account.id, &templates, now).await?;
    Ok(templates.len())
}

pub fn check_name(name: &str) -> EngineResult<()> {
    wagate_core::validate::template_name(name).map_err(|problem| {
        EngineError::invalid_field(
            "name",
            problem,
            "use the template's name as Meta shows it, e.g. order_shipped (GET /v1/templates lists them)",
        )
    })
}

/// Checks a template send against the catalog. `Ok(Some(warning))` when the catalog was never
/// synced, so nothing could be checked.
pub async fn check_send(state: &Engine, account: &AccountRuntime, template: &Value) -> EngineResult<Option<String>> {
    let Some(_) = state.store.templates_synced_at(&account.id).await? else {
        return Ok(Some(format!(
            "the template catalog of account `{}` was never synced, so this template was not checked; POST /v1/templates/sync",
            account.name
        )));
    };
    let name = template.get("name").and_then(Value::as_str).unwrap_or_default();
    let language = template
        .pointer("/language/code")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let versions = state.store.templates_named(&account.id, name).await?;
    let Some(t) = versions.iter().find(|t| t.language == language) else {
        let languages: Vec<&str> = versions.iter().map(|t| t.language.as_str()).collect();
        let hint = if languages.is_empty() {
            "check the name, or sync the catalog if the template was created recently".to_string()
        } else {
            format!("this template exists in: {}", languages.join(", "))
        };
        return Err(EngineError::new(
            Kind::Refused,
            "template_not_found",
            format!("no template `{name}` in language `{language}` (Meta would answer 132001)"),
        )
        .details(json!({"field": "template.language.code", "available_languages": languages}))
        .hint(hint));
    };
    if t.status != "APPROVED" {
        return Err(EngineError::new(
            Kind::Refused,
            "template_not_approved",
            format!("template `{name}` ({language}) is {}, not APPROVED", t.status),
        )
        .details(json!({"field": "template.name", "status": t.status}))
        .hint("only APPROVED templates can be sent; wait for review or fix the template"));
    }
    if t.category
        .as_deref()
        .is_some_and(|c| c.eq_ignore_ascii_case("MARKETING"))
    {
        crate::usage::budgets::check_marketing(state, &account.id)?;
    }
    let components: Value = t
        .components
        .as_deref()
        .and_then(|c| serde_json::from_str(c).ok())
        .unwrap_or(Value::Null);
    if components.is_array() {
        if let Err(v) =
            wagate_core::validate::check_against_template(&components, t.parameter_format.as_deref(), template)
        {
            return Err(EngineError::new(
                Kind::Refused,
                "template_parameters",
                format!("{} (Meta would answer 132000 or 132012)", v.message),
            )
            .details(json!({"field": v.field, "limit": v.limit, "size": v.size}))
            .hint("send one parameter per placeholder, of the kind the template's header expects"));
        }
    }
    Ok(None)
}
