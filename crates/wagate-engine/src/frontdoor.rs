//! The rules of the Graph-compatible front door (Meta's own paths on the gateway): which account
//! an object id belongs to and whether the caller may use it, the template catalog in Meta's
//! shapes, and the audited pass-through of every other call to Meta with the account's token.
//! The HTTP side only reads requests and writes Meta's shapes.

use std::collections::HashMap;

use serde_json::{json, Value};
use wagate_graph::{GraphError, GraphPath};
use wagate_store::Template;

use crate::accounts::runtime::AccountRuntime;
use crate::auth::Caller;
use crate::error::{EngineError, EngineResult};
use crate::state::Engine;

/// The permission a front-door call needs, known before the id is looked up (so a caller
/// without it learns nothing of the id): reads need `read`; sends, uploads and deleting a file
/// `send`; every other change `admin`.
pub fn scope_for(method: &str, edges: &[&str]) -> &'static str {
    match (method, edges) {
        ("GET", _) => "read",
        ("POST", ["messages"] | ["media"]) | ("DELETE", []) => "send",
        _ => "admin",
    }
}

/// What an id of Meta's names, among the gateway's accounts.
pub enum Object {
    PhoneNumber,
    Waba,
    Template(Box<Template>),
    /// A file a user sent or one uploaded through the gateway.
    Media(Box<wagate_store::Media>),
}

/// An object and the account it belongs to.
pub struct Owned {
    pub account: AccountRuntime,
    pub object: Object,
}

/// The account `id` belongs to, if the caller may use it; `None` alike for an id that is not
/// the gateway's and one of an account the caller does not see (Meta's "does not exist").
pub async fn owner(state: &Engine, caller: &Caller, id: &str) -> EngineResult<Option<Owned>> {
    let visible = |a: Option<AccountRuntime>| a.filter(|a| caller.sees(&a.id));
    if let Some(account) = state.accounts.by_phone(id) {
        return Ok(visible(Some(account)).map(|account| Owned {
            account,
            object: Object::PhoneNumber,
        }));
    }
    if let Some(account) = state.accounts.by_waba(id) {
        return Ok(visible(Some(account)).map(|account| Owned {
            account,
            object: Object::Waba,
        }));
    }
    // Only digits can be Meta's ids: nothing else is looked up.
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    if let Some(m) = state.store.media_by_meta_id(id).await? {
        return Ok(visible(state.accounts.by_id(&m.account_id)).map(|account| Owned {
            account,
            object: Object::Media(Box::new(m)),
        }));
    }
    let template = state
        .store
        .list_templates(None)
        .await?
        .into_iter()
        .find(|t| t.template_id.as_deref() == Some(id));
    if let Some(t) = template {
        return Ok(visible(state.accounts.by_id(&t.account_id)).map(|account| Owned {
            account,
            object: Object::Template(Box::new(t)),
        }));
    }
    Ok(None)
}

/// A catalog template as Graph shows it.
pub fn template_json(t: &Template) -> Value {
    let components = t
        .components
        .as_deref()
        .and_then(|c| serde_json::from_str(c).ok())
        .unwrap_or_else(|| json!([]));
    wagate_core::graphjson::template(wagate_core::graphjson::TemplateFields {
        id: t.template_id.as_deref().unwrap_or_default(),
        name: &t.name,
        language: &t.language,
        status: &t.status,
        category: t.category.as_deref().unwrap_or_default(),
        parameter_format: t.parameter_format.as_deref().unwrap_or("POSITIONAL"),
        components,
        quality: t
            .quality_score
            .as_deref()
            .unwrap_or(if t.status == "APPROVED" { "GREEN" } else { "UNKNOWN" }),
        quality_date_s: t.updated_at / 1000,
        rejected_reason: t.rejected_reason.as_deref().unwrap_or("NONE"),
    })
}

/// `GET /{waba}/message_templates`, served from the catalog (what sends are checked against),
/// with Meta's filters, paging and summary; `base` is the `next` link's address.
pub async fn templates(
    state: &Engine,
    caller: &Caller,
    account: &AccountRuntime,
    query: &HashMap<String, String>,
    base: &str,
) -> EngineResult<Value> {
    caller.require("read")?;
    // A catalog never read from Meta is read first: the list is what Meta has.
    if state.store.templates_synced_at(&account.id).await?.is_none() {
        crate::sending::templates::sync_account(state, account).await?;
    }
    let all: Vec<Value> = state
        .store
        .list_templates(Some(&account.id))
        .await?
        .iter()
        .map(template_json)
        .collect();
    Ok(wagate_core::graphjson::template_page(&all, query, 100, base))
}

/// `POST /{waba}/message_templates`: created at Meta through the catalog; Meta's answer
/// (`id`, `status`, `category`).
pub async fn create_template(
    state: &Engine,
    caller: &Caller,
    account: &AccountRuntime,
    mut body: Value,
) -> EngineResult<Value> {
    if let Some(o) = body.as_object_mut() {
        o.insert("account".into(), json!(account.id));
    }
    let t = crate::sending::catalog::create(state, caller, body).await?;
    Ok(json!({"id": t.id, "status": t.status, "category": t.category}))
}

/// `DELETE /{waba}/message_templates?name=…[&hsm_id=…]`: every language of the name, or the one
/// template `hsm_id` names, at Meta and in the catalog.
pub async fn delete_template(
    state: &Engine,
    caller: &Caller,
    account: &AccountRuntime,
    name: Option<&str>,
    hsm_id: Option<&str>,
) -> EngineResult<Value> {
    let Some(name) = name.filter(|n| !n.is_empty()) else {
        return Err(EngineError::invalid_field(
            "name",
            "the template's name is required",
            "DELETE /{waba-id}/message_templates?name=order_update",
        ));
    };
    crate::sending::catalog::delete(state, caller, name, Some(&account.id), hsm_id).await?;
    Ok(json!({"success": true}))
}

/// A call the gateway does not handle itself, forwarded to Meta with the account's token once
/// the caller's permission for the account holds (`read` for reads, `admin` for the rest), and
/// audited (`graph.forwarded`). Meta's answer comes back as it is, error or not.
pub async fn pass_through(
    state: &Engine,
    caller: &Caller,
    account: &AccountRuntime,
    method: &str,
    segments: Vec<String>,
    query: Vec<(String, String)>,
    body: Option<(String, Vec<u8>)>,
) -> EngineResult<Result<Value, GraphError>> {
    caller.require(if method == "GET" { "read" } else { "admin" })?;
    let shown = format!("{method} /{}", segments.join("/"));
    let mut path = GraphPath::new(segments);
    for (k, v) in query.into_iter().filter(|(k, _)| k != "access_token") {
        path = path.query(&k, v);
    }
    let answer = state.graph.forward(&account.access_token(), method, &path, body).await;
    let outcome = match &answer {
        Ok(_) => json!("ok"),
        Err(e) => json!(e.metric_code()),
    };
    crate::audit::record(
        state,
        caller,
        "graph.forwarded",
        Some(&shown),
        Some(&account.id),
        json!({"outcome": outcome}),
    )
    .await;
    metrics::counter!("wagate_frontdoor_forwarded_total", "method" => method.to_string()).increment(1);
    Ok(answer)
}
