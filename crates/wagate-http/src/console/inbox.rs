//! The inbox: conversations, a thread with its live ticks, and the reply box (free text in the
//! 24-hour window, the template picker outside it).

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::{json, Value};
use wagate_core::time::rfc3339_ms;
use wagate_engine::auth::Caller;
use wagate_engine::now_ms;
use wagate_engine::sending::messages::{self, MessageQuery};

use super::bubbles::{bubble, Bubble, Catalog};
use super::pages::{chrome, failed, render, Chrome};
use super::{encode, form, see_other, Signed};
use crate::state::AppState;

struct ConversationRow {
    wa_id: String,
    title: String,
    subtitle: String,
    unread: i64,
    window_left: Option<String>,
    selected: bool,
}

struct TemplateChoice {
    value: String,
    label: String,
    body: String,
}

struct Thread {
    contact: String,
    title: String,
    subtitle: String,
    account: String,
    window_left: Option<String>,
    messages: Vec<Bubble>,
    may_send: bool,
    has_inbound: bool,
    templates: Vec<TemplateChoice>,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "console/inbox.html")]
struct InboxPage {
    chrome: Option<Chrome>,
    live: bool,
    after: i64,
    csrf: String,
    search: String,
    conversations: Vec<ConversationRow>,
    thread: Option<Thread>,
}

#[derive(serde::Deserialize, Default)]
pub struct InboxQuery {
    q: Option<String>,
    error: Option<String>,
}

/// How long until `until` (unix ms), as a person reads it.
fn time_left(until: i64) -> String {
    let minutes = ((until - now_ms()) / 60_000).max(0);
    match minutes {
        m if m >= 60 => format!("{}h {}m", m / 60, m % 60),
        m => format!("{m}m"),
    }
}

/// A time as the inbox shows it: the date and the minute (UTC).
fn short_time(rfc3339: &str) -> String {
    rfc3339.get(..16).unwrap_or(rfc3339).replace('T', " ")
}

async fn conversation_rows(
    state: &AppState,
    caller: &Caller,
    search: Option<&str>,
    selected: Option<&str>,
) -> Result<Vec<ConversationRow>, Response> {
    let list = wagate_engine::contacts::list(state, caller, search, None, 200)
        .await
        .map_err(failed)?;
    Ok(list
        .into_iter()
        .map(|c| ConversationRow {
            selected: selected == Some(c.wa_id.as_str()),
            title: c.name.clone().unwrap_or_else(|| format!("+{}", c.wa_id)),
            subtitle: format!(
                "+{} · {} · {}",
                c.wa_id,
                c.account,
                short_time(&rfc3339_ms(c.updated_at))
            ),
            unread: c.unread,
            window_left: c.window_open_until.map(time_left),
            wa_id: c.wa_id,
        })
        .collect())
}

/// `GET /console/inbox`: the conversations, most recently active first.
pub async fn inbox(State(state): State<AppState>, signed: Signed, Query(q): Query<InboxQuery>) -> Response {
    // The log's position before anything is read: what is written after, the page follows.
    let after = wagate_engine::events::ops::cursor(&state).await.unwrap_or(0);
    let search = q.q.clone().unwrap_or_default();
    let conversations = match conversation_rows(&state, &signed.caller, Some(&search), None).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    render(InboxPage {
        chrome: chrome(&signed, "/console/inbox"),
        live: true,
        after,
        csrf: signed.csrf.clone(),
        search,
        conversations,
        thread: None,
    })
}

#[derive(serde::Deserialize)]
pub struct NewConversation {
    to: Option<String>,
}

/// `GET /console/inbox/new?to=…`: the thread of a number, new or not.
pub async fn new_conversation(
    State(state): State<AppState>,
    _signed: Signed,
    Query(q): Query<NewConversation>,
) -> Response {
    let to = q.to.unwrap_or_default();
    match wagate_core::phone::normalize(&to, state.default_country) {
        Ok(n) => Redirect::to(&format!("/console/inbox/{}", n.wa_id())).into_response(),
        Err(e) => Redirect::to(&format!("/console/inbox?error={}", encode(&format!("{to}: {e}")))).into_response(),
    }
}

/// The catalog of an account: every template's components (to show sent templates as the user
/// saw them), and the approved ones for the picker.
async fn catalog(state: &AppState, caller: &Caller, account: &str) -> (Catalog, Vec<TemplateChoice>) {
    let Ok(page) = wagate_engine::sending::catalog::list(state, caller, Some(account)).await else {
        return Default::default();
    };
    let mut choices = Vec::new();
    let mut catalog = Catalog::new();
    for t in page.data {
        let value = format!("{}|{}", t.name, t.language);
        if t.status == "APPROVED" {
            let body = t
                .components
                .as_array()
                .into_iter()
                .flatten()
                .find(|c| {
                    c.get("type")
                        .and_then(Value::as_str)
                        .is_some_and(|k| k.eq_ignore_ascii_case("body"))
                })
                .and_then(|c| c.get("text").and_then(Value::as_str))
                .unwrap_or_default()
                .to_string();
            choices.push(TemplateChoice {
                value: value.clone(),
                label: format!("{} ({})", t.name, t.language),
                body,
            });
        }
        catalog.insert(value, t.components);
    }
    (catalog, choices)
}

/// `GET /console/inbox/{contact}`: a thread, with the reply box (free text while the window is
/// open, the template picker when it is closed).
pub async fn thread(
    State(state): State<AppState>,
    signed: Signed,
    Path(contact): Path<String>,
    Query(q): Query<InboxQuery>,
) -> Response {
    // The log's position before anything is read: what is written after, the page follows.
    let after = wagate_engine::events::ops::cursor(&state).await.unwrap_or(0);
    let caller = &signed.caller;
    let conversations = match conversation_rows(&state, caller, None, Some(&contact)).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let known = wagate_engine::contacts::get(&state, caller, &contact, None).await.ok();
    let account = match &known {
        Some(c) => state.accounts.by_id(&c.account).map(|a| a.name.clone()),
        None => wagate_engine::auth::accounts::resolve_account(
            &state,
            caller,
            None,
            wagate_engine::auth::accounts::AccountFrom::Query,
        )
        .ok()
        .map(|a| a.name.clone()),
    }
    .unwrap_or_default();
    // With its account named, the contact's messages come from their index.
    let query = MessageQuery {
        wa_id: Some(contact.clone()),
        account: Some(account.clone()).filter(|a| !a.is_empty()),
        ..Default::default()
    };
    let page = match messages::list(&state, caller, query, 100).await {
        Ok(p) => p,
        Err(e) => return failed(e),
    };
    let (catalog, choices) = match account.is_empty() {
        true => Default::default(),
        false => catalog(&state, caller, &account).await,
    };
    let bubbles: Vec<Bubble> = page.data.iter().rev().map(|m| bubble(m, &catalog)).collect();
    let window_until = known
        .as_ref()
        .filter(|c| c.window.open)
        .and_then(|c| c.window.expires_at.as_deref())
        .and_then(wagate_core::time::parse_time_ms);
    let may_send = caller.require("send").is_ok() && !account.is_empty();
    let templates = match (may_send, window_until) {
        (true, None) => choices,
        _ => Vec::new(),
    };
    let title = known
        .as_ref()
        .and_then(|c| c.name.clone())
        .unwrap_or_else(|| format!("+{contact}"));
    render(InboxPage {
        chrome: chrome(&signed, "/console/inbox"),
        live: true,
        after,
        csrf: signed.csrf.clone(),
        search: String::new(),
        conversations,
        thread: Some(Thread {
            subtitle: format!("+{contact} · {account}"),
            contact,
            title,
            account,
            window_left: window_until.map(time_left),
            messages: bubbles,
            may_send,
            has_inbound: page.data.iter().any(|m| m.direction == "inbound"),
            templates,
            error: q.error,
        }),
    })
}

/// `POST /console/inbox/{contact}/send`: a reply (free text) or a template.
pub async fn send(State(state): State<AppState>, signed: Signed, Path(contact): Path<String>, body: Bytes) -> Response {
    let fields = form(&body);
    if let Err(r) = signed.check_csrf(fields.get("csrf").map(String::as_str)) {
        return r;
    }
    let account = fields.get("account").cloned().filter(|a| !a.is_empty());
    let mut message = match (fields.get("text"), fields.get("template")) {
        (Some(text), _) => json!({"to": contact, "type": "text", "text": {"body": text}}),
        (None, Some(choice)) => {
            let (name, language) = choice.split_once('|').unwrap_or((choice.as_str(), "en_US"));
            // One field per variable (param1, param2, …), else one comma-separated field.
            let each: Vec<String> = (1..).map_while(|i| fields.get(&format!("param{i}")).cloned()).collect();
            let given = match each.is_empty() {
                true => super::comma_list(fields.get("params")),
                false => each,
            };
            let values: Vec<Value> = given
                .iter()
                .map(|v| json!({"type": "text", "text": v.trim()}))
                .collect();
            let mut template = json!({"name": name, "language": {"code": language}});
            if !values.is_empty() {
                template["components"] = json!([{"type": "body", "parameters": values}]);
            }
            json!({"to": contact, "type": "template", "template": template})
        }
        (None, None) => json!({"to": contact}),
    };
    if let Some(a) = account {
        message["account"] = json!(a);
    }
    let back = format!("/console/inbox/{}", encode(&contact));
    let target = match messages::send(&state, &signed.caller, message, None, false).await {
        Ok(_) => back,
        Err(e) => {
            let text = e.message.clone() + &e.hint.map(|h| format!(" ({h})")).unwrap_or_default();
            format!("{back}?error={}", encode(&text))
        }
    };
    see_other(&target)
}

/// `POST /console/inbox/{contact}/read`: marks the contact's latest message read (Meta's read
/// receipt: blue ticks on the user's phone).
pub async fn mark_read(
    State(state): State<AppState>,
    signed: Signed,
    Path(contact): Path<String>,
    body: Bytes,
) -> Response {
    if let Err(r) = signed.check_csrf(form(&body).get("csrf").map(String::as_str)) {
        return r;
    }
    let query = MessageQuery {
        wa_id: Some(contact.clone()),
        direction: Some("inbound".into()),
        ..Default::default()
    };
    let back = format!("/console/inbox/{}", encode(&contact));
    let outcome = match messages::list(&state, &signed.caller, query, 1).await {
        Ok(page) => match page.data.first() {
            Some(m) => {
                let request = messages::ReadRequest::default();
                messages::mark_read(&state, &signed.caller, &m.id, &request)
                    .await
                    .map(|_| ())
            }
            None => Ok(()),
        },
        Err(e) => Err(e),
    };
    let target = match outcome {
        Ok(()) => back,
        Err(e) => format!(
            "{back}?error={}",
            encode(&(e.message + &e.hint.map(|h| format!(" ({h})")).unwrap_or_default()))
        ),
    };
    see_other(&target)
}

/// `GET /console/media/{id}`: a stored inbound file, for the session's caller.
pub async fn media(State(state): State<AppState>, signed: Signed, Path(id): Path<String>) -> Response {
    let link = wagate_engine::media::files::MediaLink::default();
    match wagate_engine::media::files::read(&state, Ok(signed.caller), &id, &link).await {
        Ok(file) => (
            [
                (axum::http::header::CONTENT_TYPE, file.mime),
                (axum::http::header::CACHE_CONTROL, "private, max-age=3600".to_string()),
            ],
            file.bytes,
        )
            .into_response(),
        Err(e) => failed(e),
    }
}
