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
use wagate_engine::sending::views::MessageView;

use super::pages::{chrome, failed, render, Chrome};
use super::{encode, form, see_other, Signed};
use crate::state::AppState;

struct ConversationRow {
    wa_id: String,
    title: String,
    subtitle: String,
    window_left: Option<String>,
    selected: bool,
}

struct Bubble {
    id: String,
    direction: &'static str,
    status: String,
    ticks: &'static str,
    text: String,
    quote: Option<String>,
    time: String,
    failure: Option<String>,
    /// Media the user sent: its kind (`image`, `audio`, `video`, other) and where the console
    /// serves it.
    media: Option<(String, String)>,
}

/// An inbound message's stored media, as the console serves it.
fn media_of(m: &MessageView) -> Option<(String, String)> {
    let id = m.content.pointer("/content/media/media_id").and_then(Value::as_str)?;
    let kind = match m.message_type.as_str() {
        "image" | "sticker" => "image",
        "audio" => "audio",
        "video" => "video",
        _ => "file",
    };
    Some((kind.to_string(), format!("/console/media/{id}")))
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
                c.last_inbound_at
                    .map(|t| short_time(&rfc3339_ms(t)))
                    .unwrap_or_default()
            ),
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

/// The line a message shows.
fn bubble_text(m: &MessageView) -> String {
    let c = &m.content;
    let s = |p: &str| c.pointer(p).and_then(Value::as_str).map(str::to_string);
    if m.direction == "inbound" {
        let text = s("/text").unwrap_or_default();
        return match (m.message_type.as_str(), text.is_empty()) {
            (_, false) => text,
            ("reaction", _) => format!("reacted {}", s("/content/emoji").unwrap_or_default()),
            (t, true) => format!("[{t}]"),
        };
    }
    match m.message_type.as_str() {
        "text" => s("/text/body").unwrap_or_default(),
        "template" => {
            let params: Vec<String> = c
                .pointer("/template/components")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .flat_map(|comp| {
                    comp.get("parameters")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default()
                })
                .filter_map(|p| p.get("text").and_then(Value::as_str).map(str::to_string))
                .collect();
            let name = s("/template/name").unwrap_or_default();
            match params.is_empty() {
                true => format!("Template {name}"),
                false => format!("Template {name}: {}", params.join(", ")),
            }
        }
        "interactive" => {
            // The body as the user saw it, and the choices offered.
            let choices: Vec<String> = c
                .pointer("/interactive/action/buttons")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|b| b.pointer("/reply/title").and_then(Value::as_str))
                .map(|t| format!("[ {t} ]"))
                .collect();
            let body = s("/interactive/body/text").unwrap_or_default();
            format!("{body} {}", choices.join(" ")).trim().to_string()
        }
        "reaction" => format!("reacted {}", s("/reaction/emoji").unwrap_or_default()),
        "location" => s("/location/name").map_or_else(|| "[location]".into(), |n| format!("📍 {n}")),
        t => s(&format!("/{t}/caption")).map_or_else(|| format!("[{t}]"), |cap| format!("[{t}] {cap}")),
    }
}

fn ticks(status: &str) -> &'static str {
    match status {
        "queued" | "accepted" => "🕓",
        "sent" => "✓",
        "delivered" | "read" | "played" => "✓✓",
        "failed" => "✗",
        "cancelled" => "⊘",
        _ => "",
    }
}

/// The approved templates of an account, for the picker.
async fn template_choices(state: &AppState, caller: &Caller, account: &str) -> Vec<TemplateChoice> {
    let Ok(page) = wagate_engine::sending::catalog::list(state, caller, Some(account)).await else {
        return Vec::new();
    };
    page.data
        .into_iter()
        .filter(|t| t.status == "APPROVED")
        .map(|t| {
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
            TemplateChoice {
                value: format!("{}|{}", t.name, t.language),
                label: format!("{} ({})", t.name, t.language),
                body,
            }
        })
        .collect()
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
    let bubbles: Vec<Bubble> = page
        .data
        .iter()
        .rev()
        .map(|m| Bubble {
            id: m.id.clone(),
            direction: if m.direction == "inbound" {
                "inbound"
            } else {
                "outbound"
            },
            status: m.status.clone(),
            ticks: ticks(&m.status),
            text: bubble_text(m),
            quote: m
                .content
                .pointer("/context/id")
                .or_else(|| m.content.pointer("/context/message_id"))
                .and_then(Value::as_str)
                .map(|w| format!("in reply to {}", w.chars().take(24).collect::<String>())),
            time: short_time(&m.created_at),
            media: media_of(m),
            failure: m.error.as_ref().map(|e| {
                let title = e.get("title").and_then(Value::as_str).unwrap_or("failed");
                match e.get("hint").and_then(Value::as_str) {
                    Some(h) => format!("{title} — {h}"),
                    None => title.to_string(),
                }
            }),
        })
        .collect();
    let window_until = known
        .as_ref()
        .filter(|c| c.window.open)
        .and_then(|c| c.window.expires_at.as_deref())
        .and_then(wagate_core::time::parse_time_ms);
    let may_send = caller.require("send").is_ok() && !account.is_empty();
    let templates = match (may_send, window_until) {
        (true, None) => template_choices(&state, caller, &account).await,
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
