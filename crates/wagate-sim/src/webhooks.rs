//! Webhooks the simulator sends to the gateway: statuses of sent messages, and messages from
//! simulated users. Signed with the app secret like Meta's, retried a few times like Meta's.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde_json::{json, Value};
use wagate_core::signature::sign_hub;

use crate::body::JsonBody;
use crate::state::{major_version, now_ms, Business, SimState, SimUser};

/// Meta's retry schedule after the first try and its immediate retry, in seconds: growing
/// intervals, then daily, until seven days have passed (then Meta drops the update).
const RETRY_SCHEDULE_SECS: [u64; 10] = [
    15,
    60,
    300,
    900,
    3600,
    3 * 3600,
    6 * 3600,
    12 * 3600,
    24 * 3600,
    24 * 3600,
];
const GIVE_UP_AFTER_SECS: u64 = 7 * 24 * 3600;

/// One POST of a signed webhook body: the HTTP status, or `None` when nothing answered (or
/// the simulator has no webhook URL).
async fn post_once(state: &SimState, raw: &[u8], signature: &str, wait_processed: bool) -> Option<u16> {
    let url = state.webhook_url()?;
    let mut request = state
        .http
        .post(&url)
        .header("content-type", "application/json")
        .header("x-hub-signature-256", signature);
    // Not Meta's: asks wagate to answer once it has processed the body (`?wait=processed`).
    if wait_processed {
        request = request.header(WAIT_HEADER, "processed");
    }
    let resp = request.body(raw.to_vec()).send().await;
    match resp {
        Ok(r) => Some(r.status().as_u16()),
        Err(e) => {
            tracing::debug!(error = %e, "simulator webhook delivery failed");
            None
        }
    }
}

/// Posts a webhook body serialised and signed as Meta does (non-ASCII escaped, HMAC-SHA256 of
/// those bytes under the app secret). Tries once and retries at once; when both fail, keeps
/// retrying in the background on Meta's schedule (scaled by `webhook_retry_scale`) for seven
/// days. Returns the status of the last synchronous try, or `None` when nothing answered.
pub async fn deliver(state: &Arc<SimState>, body: &Value) -> Option<u16> {
    deliver_waiting(state, body, false).await
}

/// The header that asks wagate to acknowledge a webhook only once it has processed it.
pub const WAIT_HEADER: &str = "x-wagate-wait";

/// [`deliver`]; `wait_processed`: the synchronous tries ask the gateway to answer once the body
/// is processed, so that what follows sees its events (background retries do not ask).
pub async fn deliver_waiting(state: &Arc<SimState>, body: &Value, wait_processed: bool) -> Option<u16> {
    if !subscribed(state, body) {
        state.note_unsubscribed_drop();
        tracing::info!(
            "simulator sent no webhook: the app is not subscribed to the WABA (POST /{{waba}}/subscribed_apps)"
        );
        return None;
    }
    let raw = crate::metajson::to_vec(body);
    let signature = sign_hub(&state.config.app_secret, &raw);
    let mut last = None;
    for _ in 0..2 {
        last = post_once(state, &raw, &signature, wait_processed).await;
        if last.is_some_and(|s| (200..300).contains(&s)) {
            return last;
        }
    }
    let state = state.clone();
    tokio::spawn(async move {
        let started = tokio::time::Instant::now();
        let scale = state.webhook_retry_scale();
        let scaled = |secs: u64| Duration::from_secs_f64(secs as f64 * scale);
        let steps = RETRY_SCHEDULE_SECS.iter().copied().chain(std::iter::repeat(24 * 3600));
        for wait in steps {
            tokio::time::sleep(scaled(wait)).await;
            if started.elapsed() > scaled(GIVE_UP_AFTER_SECS) {
                tracing::warn!("simulator dropped a webhook that went unacknowledged for seven days (Meta's limit)");
                return;
            }
            if post_once(&state, &raw, &signature, false)
                .await
                .is_some_and(|s| (200..300).contains(&s))
            {
                return;
            }
        }
    });
    last
}

/// Whether Meta would send this webhook: the app is subscribed to its WABA, or it is an account
/// update (those go to the app whatever its subscriptions).
fn subscribed(state: &SimState, body: &Value) -> bool {
    let entry = &body["entry"][0];
    let field = entry["changes"][0]["field"].as_str().unwrap_or_default();
    field == "account_update" || entry["id"].as_str().is_some_and(|waba| state.is_subscribed(waba))
}

/// Delivers a webhook of a field other than `messages` (template and account updates).
pub async fn deliver_field(state: &Arc<SimState>, field: &str, value: Value) -> Option<u16> {
    let body = json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": state.config.waba_id, "time": now_ms() / 1000, "changes": [{"value": value, "field": field}]}],
    });
    deliver(state, &body).await
}

fn envelope(business: &Business, value: Value) -> Value {
    json!({
        "object": "whatsapp_business_account",
        "entry": [{
            "id": business.waba_id,
            "changes": [{"value": value, "field": "messages"}],
        }],
    })
}

fn metadata(business: &Business) -> Value {
    json!({
        "display_phone_number": business.display_phone_number,
        "phone_number_id": business.phone_number_id,
    })
}

/// The `contacts[]` entry of a user, as Meta writes it beside messages and statuses.
pub fn contact(state: &SimState, user: &SimUser, with_profile: bool) -> Value {
    let mut c = json!({"user_id": user.user_id});
    if with_profile {
        let mut profile = json!({"name": user.name});
        if let Some(u) = &user.username {
            profile["username"] = json!(u);
        }
        c["profile"] = profile;
    }
    if let Some(w) = &user.wa_id {
        c["wa_id"] = json!(w);
    }
    if state.parent_user_ids() {
        c["parent_user_id"] = json!(user.parent_user_id);
    }
    c
}

/// How a sent message's statuses unfold.
pub struct StatusPlan {
    pub wamid: String,
    pub recipient: SimUser,
    /// The template's category (billable), `None` for free-form messages.
    pub template_category: Option<String>,
    /// Outside the customer-service window: one `failed` status with 131047.
    pub fails_131047: bool,
    /// Reactions get only `sent`, as with Meta.
    pub only_sent: bool,
    pub biz_opaque: Option<Value>,
    /// The business whose number sent it.
    pub business: Business,
}

/// After a send: sent → delivered → read (or failed 131047 outside the window), each after its
/// delay. Statuses other than `failed` carry the recipient's `contacts[]` and
/// `recipient_user_id`; up to v23 they carry `conversation` as well.
pub fn spawn_statuses(state: Arc<SimState>, plan: StatusPlan) {
    tokio::spawn(async move {
        let delays = state.status_delays();
        let category = plan.template_category.clone().unwrap_or_else(|| "service".into());
        let pricing = json!({
            "billable": plan.template_category.is_some(),
            "pricing_model": "PMP",
            "type": if plan.template_category.is_some() { "regular" } else { "free_customer_service" },
            "category": category,
        });
        let with_conversation = major_version(&state.webhook_version()) <= 23;
        let conversation_id: String = (0..32)
            .map(|_| char::from(b"0123456789abcdef"[rand::random::<u8>() as usize % 16]))
            .collect();
        let steps: Vec<(&str, bool)> = if plan.fails_131047 {
            vec![("failed", false)]
        } else if plan.only_sent {
            vec![("sent", true)]
        } else {
            vec![("sent", true), ("delivered", true), ("read", false)]
        };
        for (i, (status, with_pricing)) in steps.into_iter().enumerate() {
            tokio::time::sleep(delays[i.min(2)]).await;
            let mut st = json!({
                "id": plan.wamid,
                "status": status,
                "timestamp": (now_ms() / 1000).to_string(),
            });
            // A user known only by username has no phone number to show.
            if let Some(w) = &plan.recipient.wa_id {
                st["recipient_id"] = json!(w);
            }
            if status != "failed" {
                st["recipient_user_id"] = json!(plan.recipient.user_id);
                if state.parent_user_ids() {
                    st["recipient_parent_user_id"] = json!(plan.recipient.parent_user_id);
                }
            }
            if with_pricing {
                st["pricing"] = pricing.clone();
                if status == "delivered" {
                    // What Meta's pricing analytics will count.
                    state.record_delivery(crate::pricing::PricedDelivery {
                        waba_id: plan.business.waba_id.clone(),
                        at_ms: now_ms(),
                        country: plan
                            .recipient
                            .wa_id
                            .as_deref()
                            .and_then(wagate_core::phone::region_of)
                            .unwrap_or_default(),
                        category: category.to_lowercase(),
                        pricing_type: pricing["type"].as_str().unwrap_or_default().to_string(),
                        billable: plan.template_category.is_some(),
                    });
                }
                if with_conversation {
                    let mut c = json!({"id": conversation_id, "origin": {"type": category}});
                    if status == "sent" {
                        c["expiration_timestamp"] = json!((now_ms() / 1000 + 24 * 3600).to_string());
                    }
                    st["conversation"] = c;
                }
            }
            if let Some(b) = &plan.biz_opaque {
                st["biz_opaque_callback_data"] = b.clone();
            }
            let mut value = json!({
                "messaging_product": "whatsapp",
                "metadata": metadata(&plan.business),
            });
            if status == "failed" {
                st["errors"] = json!([{
                    "code": 131047,
                    "title": "Re-engagement message",
                    "message": "Re-engagement message",
                    "error_data": {"details": "Message failed to send because more than 24 hours have passed since the customer last replied to this number."},
                    "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/",
                }]);
            } else {
                value["contacts"] = json!([contact(&state, &plan.recipient, false)]);
            }
            value["statuses"] = json!([st]);
            deliver(&state, &envelope(&plan.business, value)).await;
        }
    });
}

/// `POST /_sim/users/{user}/messages`: the user sends a message to the business. `{user}` is a
/// wa_id (a user is made on first use), or the user id or `@username` of a user made with
/// `POST /_sim/users`. The body is a Meta message object (`{"type":"text","text":{"body":"hi"}}`),
/// optionally with `profile_name` and `context`, or an array of them delivered in one POST.
/// Answers 200 once the gateway has acknowledged the webhook, 202 when it has not yet (Meta's
/// retries go on in the background).
pub async fn user_sends(
    state: State<Arc<SimState>>,
    key: Path<String>,
    q: axum::extract::Query<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
    body: JsonBody<Value>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    // One line of JSON and a newline, as a shell prints it: a command after the curl in a pasted
    // script starts on a line of its own.
    let (code, Json(answer)) = user_sends_json(state, key, q, headers, body).await;
    (
        code,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        format!("{answer}\n"),
    )
        .into_response()
}

async fn user_sends_json(
    State(state): State<Arc<SimState>>,
    Path(key): Path<String>,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<Value>,
) -> (StatusCode, Json<Value>) {
    // `?wait=processed`: answer once the gateway has processed the webhook, not merely stored it.
    let wait_processed = match q.get("wait").map(String::as_str) {
        None | Some("") => false,
        Some("processed") => true,
        Some(other) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(
                    json!({"error": format!("wait=`{other}`: the only wait is wait=processed (answer once the gateway has processed the webhook)")}),
                ),
            )
        }
    };
    // `?to=<phone_number_id>`: which business the user writes to (default the configured one).
    let business = match q.get("to") {
        None => state.primary(),
        Some(to) => match state.business_by_phone(to) {
            Some(b) => b,
            None => {
                return (
                    StatusCode::NOT_FOUND,
                    Json(
                        json!({"error": format!("no business number `{to}`: use the configured phone_number_id or the connectable one")}),
                    ),
                )
            }
        },
    };
    if state.numbers.is_blocked(&business.phone_number_id, &key) {
        return (
            StatusCode::CONFLICT,
            Json(
                json!({"error": format!("the business blocked `{key}` (POST /{{phone-number-id}}/block_users): its messages do not reach the business; unblock with DELETE")}),
            ),
        );
    }
    if state.webhook_url().is_none() {
        return (
            StatusCode::CONFLICT,
            Json(
                json!({"error": "the simulator has no webhook URL: set WAGATE_SIM_WEBHOOK_URL or POST /_sim/settings"}),
            ),
        );
    }
    let user = if !key.is_empty() && key.chars().all(|c| c.is_ascii_digit()) {
        state.user_for_wa_id(&key)
    } else {
        match state.find_user(&key) {
            Some(u) => u,
            None => {
                return (
                    StatusCode::NOT_FOUND,
                    Json(
                        json!({"error": format!("no user `{key}`: use a phone number (digits), or create the user with POST /_sim/users and use its user_id or @username")}),
                    ),
                )
            }
        }
    };
    // One message object, or an array of them delivered together in one batched POST.
    let batch = body.is_array();
    let items = match body {
        Value::Array(items) if !items.is_empty() => items,
        Value::Object(_) => vec![body],
        _ => {
            return (
                StatusCode::BAD_REQUEST,
                Json(
                    json!({"error": "the body must be a Meta message object such as {\"type\":\"text\",\"text\":{\"body\":\"hi\"}}, or an array of them"}),
                ),
            )
        }
    };
    let base = state.base_url().unwrap_or_else(|| {
        let host = headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1");
        format!("http://{host}")
    });
    let mut messages = Vec::with_capacity(items.len());
    let mut wamids = Vec::with_capacity(items.len());
    let mut user = user;
    for item in items {
        match user_message(&state, &user, &base, item) {
            Ok((profile, wamid, msg)) => {
                if let Some(p) = profile {
                    state.set_profile_name(&user.user_id, &p);
                    user.name = p;
                }
                wamids.push(wamid);
                messages.push(msg);
            }
            Err(e) => return (StatusCode::BAD_REQUEST, Json(json!({"error": e}))),
        }
    }
    for w in &wamids {
        state.note_inbound_wamid(w);
    }
    state.note_inbound(&user, now_ms());
    let body = envelope(
        &business,
        json!({
            "messaging_product": "whatsapp",
            "metadata": metadata(&business),
            "contacts": [contact(&state, &user, true)],
            "messages": messages,
        }),
    );
    let status = deliver_waiting(&state, &body, wait_processed).await;
    let acked = status.is_some_and(|s| (200..300).contains(&s));
    let code = if acked { StatusCode::OK } else { StatusCode::ACCEPTED };
    let mut answer = if batch {
        json!({"wamids": wamids, "webhook_status": status})
    } else {
        json!({"wamid": wamids[0], "webhook_status": status})
    };
    answer["user_id"] = json!(user.user_id);
    if !state.is_subscribed(&business.waba_id) {
        answer["not_subscribed"] = json!(format!(
            "no webhook was sent: the app is not subscribed to WABA {} (POST /{}/subscribed_apps)",
            business.waba_id, business.waba_id
        ));
    } else if !acked {
        answer["retrying"] = json!(true);
    }
    (code, Json(answer))
}

/// One message from the user, in Meta's webhook form: (profile name, wamid, message).
fn user_message(
    state: &SimState,
    user: &SimUser,
    base_url: &str,
    mut msg: Value,
) -> Result<(Option<String>, String, Value), String> {
    let Some(obj) = msg.as_object_mut() else {
        return Err(
            "each message must be a Meta message object such as {\"type\":\"text\",\"text\":{\"body\":\"hi\"}}".into(),
        );
    };
    let name = obj.remove("profile_name").and_then(|v| v.as_str().map(str::to_string));
    let message_type = obj.get("type").and_then(Value::as_str).unwrap_or("text").to_string();
    let is_media = crate::samples::MEDIA_TYPES.contains(&message_type.as_str());
    if is_media && !obj.contains_key(&message_type) {
        // `{"type": "image"}` alone: the user sends some picture.
        obj.insert(message_type.clone(), json!({}));
    }
    if !obj.contains_key(&message_type) && message_type != "unsupported" {
        return Err(format!(
            "the message has type `{message_type}` but no `{message_type}` object"
        ));
    }
    if is_media {
        if let Some(media) = obj.get_mut(&message_type).and_then(Value::as_object_mut) {
            host_media(state, &message_type, media, base_url)?;
        }
    }
    // A reply names the business message it answers; Meta always adds who sent that message.
    if let Some(context) = obj.get_mut("context").and_then(Value::as_object_mut) {
        if context.contains_key("id") && !context.contains_key("from") {
            context.insert("from".into(), json!(state.config.display_phone_number));
        }
    }
    let identity = user.wa_id.as_deref().unwrap_or(&user.user_id);
    let wamid = wagate_core::ids::wamid(identity, false);
    if let Some(w) = &user.wa_id {
        obj.insert("from".into(), json!(w));
    }
    obj.insert("from_user_id".into(), json!(user.user_id));
    if state.parent_user_ids() {
        obj.insert("from_parent_user_id".into(), json!(user.parent_user_id));
    }
    obj.insert("id".into(), json!(wamid));
    obj.insert("timestamp".into(), json!((now_ms() / 1000).to_string()));
    obj.insert("type".into(), json!(message_type));
    Ok((name, wamid, msg))
}

/// Media a user sends is hosted here, as Meta hosts it: given as bytes (`data_base64`), or a
/// small valid file of the type when neither bytes nor an id are given. The webhook then has
/// `id`, `mime_type`, `sha256` and a `url` (which needs the access token, as Meta's does).
fn host_media(
    state: &SimState,
    message_type: &str,
    media: &mut serde_json::Map<String, Value>,
    base_url: &str,
) -> Result<(), String> {
    let (bytes, mime) = if let Some(data) = media.remove("data_base64") {
        use base64::Engine;
        let bytes = data
            .as_str()
            .and_then(|d| base64::engine::general_purpose::STANDARD.decode(d).ok())
            .ok_or_else(|| "data_base64 is not base64".to_string())?;
        let mime = media
            .get("mime_type")
            .and_then(Value::as_str)
            .unwrap_or("application/octet-stream")
            .to_string();
        (bytes, mime)
    } else if media.contains_key("id") {
        // An id the caller chose: left as given (e.g. to test media that cannot be fetched).
        return Ok(());
    } else {
        let sample = crate::samples::for_type(message_type);
        (sample.bytes.to_vec(), sample.mime_type.to_string())
    };
    media.insert("sha256".into(), json!(wagate_core::signature::sha256_base64(&bytes)));
    media.insert("mime_type".into(), json!(mime));
    let id = state.put_media(bytes, &mime);
    media.insert(
        "url".into(),
        json!(format!(
            "{base_url}/_sim/media/{id}?exp={}",
            now_ms() + crate::media::INBOUND_URL_LIFETIME_MS
        )),
    );
    media.insert("id".into(), json!(id));
    match message_type {
        "audio" => {
            media.entry("voice").or_insert(json!(false));
        }
        "sticker" => {
            media.entry("animated").or_insert(json!(false));
        }
        "document" => {
            media.entry("filename").or_insert(json!("document.pdf"));
        }
        _ => {}
    }
    Ok(())
}
