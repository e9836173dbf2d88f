//! The console's template catalog: the list with status, category, quality and body; sync from
//! Meta; create (header, body with variables and their examples, footer, quick replies) with a
//! live preview; delete. Meta's refusals are shown with the field they concern.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Value};
use wagate_engine::sending::catalog;
use wagate_engine::EngineError;

use super::pages::{chrome, render, Chrome};
use super::{comma_list, encode, form, said, see_other, Signed};
use crate::state::AppState;

struct TemplateLine {
    name: String,
    language: String,
    status: String,
    category: String,
    quality: String,
    body: String,
    reason: String,
}

#[derive(Template)]
#[template(path = "console/templates.html")]
struct TemplatesPage {
    chrome: Option<Chrome>,
    live: bool,
    after: i64,
    csrf: String,
    account: String,
    synced: String,
    templates: Vec<TemplateLine>,
    may_admin: bool,
    notice: Option<String>,
    error: Option<String>,
    error_field: String,
}

#[derive(serde::Deserialize, Default)]
pub struct TemplatesParams {
    account: Option<String>,
    notice: Option<String>,
    error: Option<String>,
}

/// The text of a template's BODY component.
fn body_of(components: &Value) -> String {
    components
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"].as_str().is_some_and(|t| t.eq_ignore_ascii_case("body")))
        .and_then(|c| c["text"].as_str())
        .unwrap_or_default()
        .to_string()
}

async fn page(
    state: &AppState,
    signed: &Signed,
    account: Option<&str>,
    notice: Option<String>,
    error: Option<EngineError>,
) -> Response {
    let caller = &signed.caller;
    let resolved = wagate_engine::auth::accounts::resolve_account(
        state,
        caller,
        account,
        wagate_engine::auth::accounts::AccountFrom::Query,
    );
    let (templates, synced, mut error) = match catalog::list(state, caller, account).await {
        Ok(p) => (p.data, p.synced_at, error),
        Err(e) => (Vec::new(), None, error.or(Some(e))),
    };
    let status = error
        .as_ref()
        .map(|e| crate::error::status_of(e.kind))
        .unwrap_or(StatusCode::OK);
    let error_field = error
        .as_ref()
        .and_then(|e| e.details.as_ref())
        .and_then(|d| d["field"].as_str())
        .unwrap_or_default()
        .to_string();
    let mut response = render(TemplatesPage {
        chrome: chrome(signed, "/console/templates"),
        live: false,
        after: 0,
        csrf: signed.csrf.clone(),
        account: resolved.map(|a| a.name.clone()).unwrap_or_default(),
        synced: match synced {
            Some(at) => format!("Synced from Meta at {at}"),
            None => "Never synced from Meta: sends of templates are not checked until it is.".into(),
        },
        templates: templates
            .into_iter()
            .map(|t| TemplateLine {
                body: body_of(&t.components),
                name: t.name,
                language: t.language,
                status: t.status,
                category: t.category.unwrap_or_default(),
                quality: t.quality_score.unwrap_or_default(),
                reason: t.rejected_reason.unwrap_or_default(),
            })
            .collect(),
        may_admin: caller.require("admin").is_ok(),
        notice,
        error: error.take().map(said),
        error_field,
    });
    *response.status_mut() = status;
    response
}

/// `GET /console/templates?account=…`.
pub async fn list(State(state): State<AppState>, signed: Signed, Query(p): Query<TemplatesParams>) -> Response {
    let error = p
        .error
        .map(|e| EngineError::new(wagate_engine::Kind::Refused, "refused", e));
    let mut r = page(&state, &signed, p.account.as_deref(), p.notice, error).await;
    *r.status_mut() = StatusCode::OK;
    r
}

/// `POST /console/templates?account=…`: creates the template at Meta.
pub async fn create(
    State(state): State<AppState>,
    signed: Signed,
    Query(p): Query<TemplatesParams>,
    body: Bytes,
) -> Response {
    let f = form(&body);
    if let Err(r) = signed.check_csrf(f.get("csrf").map(String::as_str)) {
        return r;
    }
    let text = |k: &str| f.get(k).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    let mut components = Vec::new();
    match (text("header_format").as_deref(), text("header")) {
        // A text header (the form's default; without JavaScript, a header text is text).
        (Some("TEXT") | None, Some(h)) => {
            let mut header = json!({"type": "HEADER", "format": "TEXT", "text": h});
            if let Some(example) = comma_list(f.get("examples")).first().filter(|_| h.contains("{{")) {
                header["example"] = json!({"header_text": [example]});
            }
            components.push(header);
        }
        (Some("TEXT") | None, None) => {}
        (Some(media), _) => {
            let mut header = json!({"type": "HEADER", "format": media});
            if let Some(handle) = text("header_handle") {
                header["example"] = json!({"header_handle": [handle]});
            }
            components.push(header);
        }
    }
    let mut body_component = json!({"type": "BODY", "text": text("body").unwrap_or_default()});
    let examples = comma_list(f.get("examples"));
    if !examples.is_empty() {
        body_component["example"] = json!({"body_text": [examples]});
    }
    components.push(body_component);
    if let Some(footer) = text("footer") {
        components.push(json!({"type": "FOOTER", "text": footer}));
    }
    let mut buttons: Vec<Value> = comma_list(f.get("buttons"))
        .into_iter()
        .map(|b| json!({"type": "QUICK_REPLY", "text": b}))
        .collect();
    if let Some(label) = text("url_text") {
        buttons.push(json!({"type": "URL", "text": label, "url": text("url").unwrap_or_default()}));
    }
    if let Some(label) = text("phone_text") {
        let number = text("phone_number").unwrap_or_default();
        buttons.push(json!({"type": "PHONE_NUMBER", "text": label, "phone_number": number}));
    }
    if !buttons.is_empty() {
        components.push(json!({"type": "BUTTONS", "buttons": buttons}));
    }
    let mut request = json!({
        "name": text("name").unwrap_or_default(),
        "language": text("language").unwrap_or_default(),
        "category": text("category").unwrap_or_default(),
        "components": components,
    });
    if let Some(a) = &p.account {
        request["account"] = json!(a);
    }
    match catalog::create(&state, &signed.caller, request).await {
        Ok(t) => {
            let notice = format!("{} ({}) was sent to Meta for review: {}", t.name, t.language, t.status);
            see_other(&format!(
                "/console/templates?account={}&notice={}",
                encode(&t.account),
                encode(&notice)
            ))
        }
        Err(e) => page(&state, &signed, p.account.as_deref(), None, Some(e)).await,
    }
}

/// `POST /console/templates/{name}/delete?account=…`: deletes it (every language) at Meta.
pub async fn delete(
    State(state): State<AppState>,
    signed: Signed,
    Path(name): Path<String>,
    Query(p): Query<TemplatesParams>,
    body: Bytes,
) -> Response {
    if let Err(r) = signed.check_csrf(form(&body).get("csrf").map(String::as_str)) {
        return r;
    }
    let outcome = catalog::delete(&state, &signed.caller, &name, p.account.as_deref(), None)
        .await
        .map(|_| format!("{name} was deleted"));
    back(p.account.as_deref(), outcome)
}

/// `POST /console/templates/sync?account=…`: the catalog, read again from Meta.
pub async fn sync(
    State(state): State<AppState>,
    signed: Signed,
    Query(p): Query<TemplatesParams>,
    body: Bytes,
) -> Response {
    if let Err(r) = signed.check_csrf(form(&body).get("csrf").map(String::as_str)) {
        return r;
    }
    let outcome = catalog::sync(&state, &signed.caller, p.account.as_deref())
        .await
        .map(|done| format!("{} templates synced from Meta", done["synced"]));
    back(p.account.as_deref(), outcome)
}

/// Back to the catalog, saying what happened.
fn back(account: Option<&str>, outcome: Result<String, EngineError>) -> Response {
    let account = account.map(|a| format!("&account={}", encode(a))).unwrap_or_default();
    see_other(&match outcome {
        Ok(notice) => format!("/console/templates?notice={}{account}", encode(&notice)),
        Err(e) => format!("/console/templates?error={}{account}", encode(&said(e))),
    })
}
