//! The console's hooks: the list with each hook's health, a new hook (its secret shown once), and
//! a hook's page with its attempts and the actions on it (edit, test, replay, rotate, enable,
//! disable, delete).

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::Value;
use wagate_engine::hooks::manage::HookRequest;
use wagate_engine::hooks::ops::{self, HookView};
use wagate_engine::{now_ms, EngineError};
use wagate_store::HookId;

use super::pages::{chrome, failed, render, Chrome};
use super::{comma_list, encode, form, said, see_other, Signed};
use crate::state::AppState;

/// A hook as the console shows it.
#[derive(Default, Clone)]
struct HookLine {
    id: String,
    url: String,
    description: String,
    events: String,
    /// As the edit form takes them: comma-separated, and `Name: value` lines.
    events_list: String,
    accounts: String,
    headers: String,
    media: String,
    ordered: bool,
    source: String,
    format: String,
    enabled: bool,
    failing: bool,
    reason: String,
    success: String,
    pending: String,
    last_error: String,
}

fn line(h: HookView) -> HookLine {
    let health = h.health.unwrap_or(Value::Null);
    let n = |k: &str| health.get(k).and_then(Value::as_i64).unwrap_or(0);
    HookLine {
        failing: health.get("failing_since").is_some_and(|f| !f.is_null()),
        success: match health.get("success_rate").and_then(Value::as_f64) {
            Some(r) => format!(
                "{:.0} % of {}",
                r * 100.0,
                n("attempts_succeeded") + n("attempts_failed")
            ),
            None => "no attempt yet".into(),
        },
        pending: n("pending").to_string(),
        last_error: health
            .get("last_error")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        events: match h.events.is_empty() {
            true => "every event".into(),
            false => h.events.join(", "),
        },
        events_list: h.events.join(", "),
        accounts: h.accounts.join(", "),
        headers: h.headers.iter().map(|(k, v)| format!("{k}: {v}\n")).collect(),
        media: h.media,
        ordered: h.ordered,
        source: h.source,
        description: h.description.unwrap_or_default(),
        id: h.id,
        url: h.url,
        format: h.format,
        enabled: h.enabled,
        reason: h.disabled_reason.unwrap_or_default(),
    }
}

#[derive(Template)]
#[template(path = "console/hooks.html")]
struct HooksPage {
    chrome: Option<Chrome>,
    live: bool,
    after: i64,
    csrf: String,
    hooks: Vec<HookLine>,
    /// The new-hook form's values: none.
    form: HookLine,
    secret: Option<String>,
    error: Option<String>,
}

async fn hooks_page(state: &AppState, signed: &Signed, secret: Option<String>, error: Option<String>) -> Response {
    let listed = match ops::list(state, &signed.caller).await {
        Ok(l) => l.data,
        Err(e) => return failed(e),
    };
    let mut hooks = Vec::with_capacity(listed.len());
    for h in listed {
        let id = HookId::from(h.id.as_str());
        hooks.push(line(ops::get(state, &signed.caller, &id).await.unwrap_or(h)));
    }
    render(HooksPage {
        chrome: chrome(signed, "/console/hooks"),
        live: false,
        after: 0,
        csrf: signed.csrf.clone(),
        hooks,
        form: HookLine {
            format: "event".into(),
            media: "link".into(),
            ..HookLine::default()
        },
        secret,
        error,
    })
}

/// `GET /console/hooks`.
pub async fn list(State(state): State<AppState>, signed: Signed) -> Response {
    hooks_page(&state, &signed, None, None).await
}

/// `POST /console/hooks`: a new hook; the page shows its secret this once.
pub async fn create(State(state): State<AppState>, signed: Signed, body: Bytes) -> Response {
    let f = form(&body);
    if let Err(r) = signed.check_csrf(f.get("csrf").map(String::as_str)) {
        return r;
    }
    let created = match edit_request(&f) {
        Ok(request) => ops::create(&state, &signed.caller, request).await,
        Err(e) => Err(e),
    };
    match created {
        Ok(hook) => hooks_page(&state, &signed, hook.secret, None).await,
        Err(e) => {
            let mut page = hooks_page(&state, &signed, None, Some(said(e))).await;
            *page.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            page
        }
    }
}

struct AttemptLine {
    at: String,
    event: String,
    succeeded: bool,
    result: String,
    latency: String,
    answer: String,
}

#[derive(Template)]
#[template(path = "console/hook.html")]
struct HookPage {
    chrome: Option<Chrome>,
    live: bool,
    after: i64,
    csrf: String,
    hook: HookLine,
    /// The edit form's values: the hook's.
    form: HookLine,
    attempts: Vec<AttemptLine>,
    secret: Option<String>,
    notice: Option<String>,
    error: Option<String>,
}

#[derive(serde::Deserialize, Default)]
pub struct HookQuery {
    notice: Option<String>,
    error: Option<String>,
}

async fn hook_page(state: &AppState, signed: &Signed, id: &str, secret: Option<String>, q: HookQuery) -> Response {
    let after = wagate_engine::events::ops::cursor(state).await.unwrap_or(0);
    let id = HookId::from(id);
    let hook = match ops::get(state, &signed.caller, &id).await {
        Ok(h) => h,
        Err(e) => return failed(e),
    };
    let attempts = match ops::attempts(state, &signed.caller, &id, None, 50, None).await {
        Ok((page, _)) => page["data"].as_array().cloned().unwrap_or_default(),
        Err(e) => return failed(e),
    };
    let s = |a: &Value, k: &str| a.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    let hook = line(hook);
    render(HookPage {
        chrome: chrome(signed, "/console/hooks"),
        live: true,
        after,
        csrf: signed.csrf.clone(),
        form: hook.clone(),
        hook,
        attempts: attempts
            .iter()
            .map(|a| {
                let succeeded = a["succeeded"] == true;
                AttemptLine {
                    at: s(a, "attempted_at").get(..19).unwrap_or_default().replace('T', " "),
                    event: s(a, "event_id"),
                    result: match (a["status_code"].as_i64(), succeeded) {
                        (Some(code), _) => code.to_string(),
                        (None, true) => "ok".into(),
                        (None, false) => "no answer".into(),
                    },
                    succeeded,
                    latency: a["latency_ms"].as_i64().map(|l| format!("{l} ms")).unwrap_or_default(),
                    answer: a["error"]
                        .as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| s(a, "response_excerpt")),
                }
            })
            .collect(),
        secret,
        notice: q.notice,
        error: q.error,
    })
}

/// `GET /console/hooks/{id}`.
pub async fn one(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
    Query(q): Query<HookQuery>,
) -> Response {
    hook_page(&state, &signed, &id, None, q).await
}

/// Back to the hook's page, saying what happened.
fn back(id: &str, outcome: Result<String, EngineError>) -> Response {
    let to = match outcome {
        Ok(notice) => format!("/console/hooks/{id}?notice={}", encode(&notice)),
        Err(e) => format!("/console/hooks/{id}?error={}", encode(&said(e))),
    };
    see_other(&to)
}

/// `Name: value` lines as headers; a line without a colon is refused.
fn header_lines(text: &str) -> Result<std::collections::BTreeMap<String, String>, EngineError> {
    let mut headers = std::collections::BTreeMap::new();
    for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let Some((k, v)) = line.split_once(':') else {
            return Err(EngineError::invalid_field(
                "headers",
                format!("line {} has no `:`", n + 1),
                "write one header a line, as `Authorization: Bearer …`",
            ));
        };
        headers.insert(k.trim().to_string(), v.trim().to_string());
    }
    Ok(headers)
}

/// The edit form as a change to the hook: every field it shows.
fn edit_request(f: &std::collections::HashMap<String, String>) -> Result<HookRequest, EngineError> {
    Ok(HookRequest {
        url: f.get("url").cloned(),
        description: f.get("description").cloned(),
        events: Some(comma_list(f.get("events"))),
        accounts: Some(comma_list(f.get("accounts"))),
        format: f.get("format").cloned(),
        media: f.get("media").cloned(),
        ordered: Some(f.get("ordered").is_some_and(|v| v == "true")),
        headers: Some(header_lines(f.get("headers").map(String::as_str).unwrap_or_default())?),
        ..HookRequest::default()
    })
}

/// What a test delivery got back, in a sentence.
fn tested(answer: &wagate_engine::hooks::delivery::TestAnswer) -> String {
    let excerpt = answer
        .response_excerpt
        .as_deref()
        .map(|e| format!(": {}", e.chars().take(200).collect::<String>()))
        .unwrap_or_default();
    match (answer.status_code, &answer.error) {
        (Some(code), _) => format!(
            "The test event {} was answered {code} in {} ms{excerpt}",
            answer.id, answer.latency_ms
        ),
        (None, Some(e)) => format!("The test event {} got no answer: {e}", answer.id),
        (None, None) => format!("The test event {} got no answer", answer.id),
    }
}

/// `POST /console/hooks/{id}/{action}`: edit, test, replay, rotate, enable, disable or delete.
pub async fn act(
    State(state): State<AppState>,
    signed: Signed,
    Path((id, action)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let f = form(&body);
    if let Err(r) = signed.check_csrf(f.get("csrf").map(String::as_str)) {
        return r;
    }
    let hook_id = HookId::from(id.as_str());
    let caller = &signed.caller;
    match action.as_str() {
        "replay" => {
            let seconds: i64 = f.get("since").and_then(|s| s.parse().ok()).unwrap_or(3600);
            let request = ops::ReplayRequest {
                since: ((now_ms() / 1000) - seconds).to_string(),
                until: None,
                only_failed: f.get("only_failed").is_some_and(|v| v == "true"),
            };
            let outcome = match wagate_engine::hooks::manage::find(&state, caller, &hook_id).await {
                Ok(hook) => ops::replay(&state, caller, &hook, &request).await.map(|n| match n {
                    1 => "1 delivery queued again".to_string(),
                    n => format!("{n} deliveries queued again"),
                }),
                Err(e) => Err(e),
            };
            back(
                &id,
                outcome.map(|n| format!("{n}; Pending below falls to 0 as they go out")),
            )
        }
        "edit" => {
            let outcome = match (
                edit_request(&f),
                wagate_engine::hooks::manage::find(&state, caller, &hook_id).await,
            ) {
                (Ok(request), Ok(hook)) => {
                    let fields = [
                        "url",
                        "description",
                        "events",
                        "accounts",
                        "format",
                        "media",
                        "ordered",
                        "headers",
                    ];
                    let changed = fields.iter().map(|f| f.to_string()).collect();
                    ops::update(&state, caller, hook, request, changed)
                        .await
                        .map(|_| "saved".into())
                }
                (Err(e), _) | (_, Err(e)) => Err(e),
            };
            back(&id, outcome)
        }
        "test" => back(&id, ops::test(&state, caller, &hook_id).await.map(|a| tested(&a))),
        "disable" => back(
            &id,
            ops::disable(&state, caller, &hook_id).await.map(|_| "disabled".into()),
        ),
        "rotate" => match ops::rotate(&state, caller, &hook_id).await {
            Ok(answer) => {
                let secret = answer["secret"].as_str().map(str::to_string);
                hook_page(&state, &signed, &id, secret, HookQuery::default()).await
            }
            Err(e) => back(&id, Err(e)),
        },
        "enable" => back(
            &id,
            ops::enable(&state, caller, &hook_id).await.map(|_| "enabled".into()),
        ),
        "delete" => match ops::delete(&state, caller, &hook_id).await {
            Ok(_) => see_other("/console/hooks"),
            Err(e) => back(&id, Err(e)),
        },
        _ => failed(EngineError::not_found("hook action", &action)),
    }
}
