//! `/{waba_id}/message_templates`: list (with paging), create (PENDING, then APPROVED or
//! REJECTED after a delay, announced by the status webhook, as Meta does), delete.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::Json;
use serde_json::{json, Value};

use crate::body::JsonBody;
use crate::graph::{check_token, GraphFail};
use crate::state::{now_ms, SimState, SimTemplate};
use crate::webhooks;

fn check_waba(state: &SimState, node: &str) -> Result<(), GraphFail> {
    if state.business_by_waba(node).is_some() {
        Ok(())
    } else {
        Err(crate::graph::unknown_object("get", node))
    }
}

/// The fields Graph returns for a template when `fields` is not given.
pub use wagate_core::graphjson::TEMPLATE_DEFAULT_FIELDS as DEFAULT_FIELDS;

/// A template as Graph shows it, with every field the simulator knows (`select` narrows it).
pub fn to_json(t: &SimTemplate) -> Value {
    wagate_core::graphjson::template(wagate_core::graphjson::TemplateFields {
        id: &t.id,
        name: &t.name,
        language: &t.language,
        status: &t.status,
        category: &t.category,
        parameter_format: &t.parameter_format,
        components: t.components.clone(),
        quality: if t.status == "APPROVED" { "GREEN" } else { "UNKNOWN" },
        quality_date_s: now_ms() / 1000,
        rejected_reason: if t.status == "REJECTED" {
            "INVALID_FORMAT"
        } else {
            "NONE"
        },
    })
}

pub async fn list(
    State(state): State<Arc<SimState>>,
    Path((version, node)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Json<Value>, GraphFail> {
    check_token(&state, &headers)?;
    check_waba(&state, &node)?;
    let every: Vec<Value> = state.templates().iter().map(to_json).collect();
    let host = headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1");
    let base = format!("http://{host}/{version}/{node}/message_templates");
    let answer = wagate_core::graphjson::template_page(&every, &q, state.template_page_size(), &base);
    Ok(Json(answer))
}

pub async fn create(
    State(state): State<Arc<SimState>>,
    Path((_version, node)): Path<(String, String)>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<Value>, GraphFail> {
    check_token(&state, &headers)?;
    check_waba(&state, &node)?;
    let invalid = |details: String| GraphFail::new(400, 100, "Invalid parameter", details);
    let name = body.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
    if name.is_empty()
        || name.len() > 512
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(invalid(
            "name must be 1-512 characters of lowercase letters, digits and underscores.".into(),
        ));
    }
    let language = body
        .get("language")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if language.is_empty() {
        return Err(invalid("language is required.".into()));
    }
    let category = body
        .get("category")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_ascii_uppercase();
    if !["AUTHENTICATION", "MARKETING", "UTILITY"].contains(&category.as_str()) {
        return Err(invalid("category must be AUTHENTICATION, MARKETING or UTILITY.".into()));
    }
    let components = body.get("components").cloned().unwrap_or(Value::Null);
    let has_body = components.as_array().is_some_and(|c| {
        c.iter().any(|x| {
            x.get("type")
                .and_then(Value::as_str)
                .map(str::to_ascii_uppercase)
                .as_deref()
                == Some("BODY")
        })
    });
    if !has_body {
        return Err(invalid("components must include a BODY component.".into()));
    }
    let id = format!(
        "{}",
        1_000_000_000_000_000u64 + (now_ms() as u64 % 1_000_000_000) * 1000 + rand::random::<u16>() as u64 % 1000
    );
    let template = SimTemplate {
        id: id.clone(),
        name: name.clone(),
        language: language.clone(),
        status: "PENDING".into(),
        category: category.clone(),
        parameter_format: body
            .get("parameter_format")
            .and_then(Value::as_str)
            .unwrap_or("POSITIONAL")
            .to_ascii_uppercase(),
        components,
    };
    if !state.add_template(template) {
        let mut fail = GraphFail::new(
            400,
            100,
            "Invalid parameter",
            format!(
                "There is already {language} content for this template. You can create a new template and try again."
            ),
        );
        fail.set_subcode(2388024);
        return Err(fail);
    }
    // Review: names starting with `reject` are rejected, everything else approved.
    let verdict = if name.starts_with("reject") {
        "REJECTED"
    } else {
        "APPROVED"
    };
    let review_state = state.clone();
    tokio::spawn(async move {
        tokio::time::sleep(review_state.status_delays()[1]).await;
        // A template deleted while in review gets no verdict.
        if review_state.template_by_id(&id).is_none() {
            return;
        }
        review_state.set_template_status(&id, verdict);
        let value = json!({
            "event": verdict,
            "message_template_id": id.parse::<u64>().unwrap_or_default(),
            "message_template_name": name,
            "message_template_language": language,
            "reason": if verdict == "REJECTED" { "INVALID_FORMAT" } else { "NONE" },
        });
        webhooks::deliver_field(&review_state, "message_template_status_update", value).await;
    });
    Ok(Json(
        json!({"id": template_id_of(&state, &body), "status": "PENDING", "category": category}),
    ))
}

fn template_id_of(state: &SimState, body: &Value) -> String {
    let name = body.get("name").and_then(Value::as_str).unwrap_or_default();
    let language = body.get("language").and_then(Value::as_str).unwrap_or_default();
    state.template(name, language).map(|t| t.id).unwrap_or_default()
}

pub async fn delete(
    State(state): State<Arc<SimState>>,
    Path((_version, node)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Json<Value>, GraphFail> {
    check_token(&state, &headers)?;
    check_waba(&state, &node)?;
    let name = q.get("name").cloned().unwrap_or_default();
    if name.is_empty() {
        return Err(GraphFail::new(
            400,
            100,
            "Invalid parameter",
            "The parameter name is required.",
        ));
    }
    if state.remove_templates(&name) == 0 {
        return Err(GraphFail::new(
            400,
            100,
            "Invalid parameter",
            format!("Template {name} does not exist."),
        ));
    }
    Ok(Json(json!({"success": true})))
}

#[derive(serde::Deserialize)]
pub struct StatusChange {
    /// APPROVED, PAUSED, DISABLED, REJECTED, …
    status: String,
    /// One language; default: every language of the name.
    language: Option<String>,
}

/// `POST /_sim/templates/{name}/status`: Meta changes a template's status (e.g. pauses it for low
/// quality) and tells the gateway by webhook.
pub async fn change_status(
    State(state): State<Arc<SimState>>,
    Path(name): Path<String>,
    JsonBody(change): JsonBody<StatusChange>,
) -> (axum::http::StatusCode, Json<Value>) {
    let status = change.status.to_ascii_uppercase();
    let changed = state.set_status_by_name(&name, change.language.as_deref(), &status);
    if changed.is_empty() {
        return (
            axum::http::StatusCode::NOT_FOUND,
            Json(json!({"error": format!("no template {name}")})),
        );
    }
    for t in &changed {
        let mut value = json!({
            "event": status,
            "message_template_id": t.id.parse::<u64>().unwrap_or_default(),
            "message_template_name": t.name,
            "message_template_language": t.language,
            "reason": "NONE",
        });
        if status == "PAUSED" {
            value["other_info"] = json!({"title": "FIRST_PAUSE", "description": "Your template has been paused for 3 hours because of low quality."});
        }
        webhooks::deliver_field(&state, "message_template_status_update", value).await;
    }
    (axum::http::StatusCode::OK, Json(json!({"updated": changed.len()})))
}
