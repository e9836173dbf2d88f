//! Webhooks the simulator sends to the gateway: statuses of sent messages, and messages from
//! simulated users. Signed with the app secret like Meta's, retried a few times like Meta's.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};
use wagate_core::signature::sign_hub;

use crate::body::JsonBody;
use crate::state::{now_ms, SimState};

/// Posts a signed webhook body; retries (Meta retries for days — we try a few times quickly).
/// Returns the final HTTP status, or `None` when nothing answered.
pub async fn deliver(state: &SimState, body: &Value) -> Option<u16> {
    let url = state.webhook_url()?;
    let raw = body.to_string();
    let signature = sign_hub(&state.config.app_secret, raw.as_bytes());
    let mut last = None;
    for attempt in 0..5u32 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(100 * 2u64.pow(attempt))).await;
        }
        let resp = state
            .http
            .post(&url)
            .header("content-type", "application/json")
            .header("x-hub-signature-256", &signature)
            .body(raw.clone())
            .send()
            .await;
        match resp {
            Ok(r) if r.status().is_success() => return Some(r.status().as_u16()),
            Ok(r) => last = Some(r.status().as_u16()),
            Err(e) => tracing::debug!(error = %e, "simulator webhook delivery failed"),
        }
    }
    tracing::warn!(url, "simulator gave up delivering a webhook");
    last
}

/// Delivers a webhook of a field other than `messages` (template and account updates).
pub async fn deliver_field(state: &SimState, field: &str, value: Value) -> Option<u16> {
    let body = json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": state.config.waba_id, "time": now_ms() / 1000, "changes": [{"value": value, "field": field}]}],
    });
    deliver(state, &body).await
}

fn envelope(state: &SimState, value: Value) -> Value {
    json!({
        "object": "whatsapp_business_account",
        "entry": [{
            "id": state.config.waba_id,
            "changes": [{"value": value, "field": "messages"}],
        }],
    })
}

fn metadata(state: &SimState) -> Value {
    json!({
        "display_phone_number": state.config.display_phone_number,
        "phone_number_id": state.config.phone_number_id,
    })
}

/// After a send: sent → delivered → read (or failed 131047 outside the window), each after its delay.
pub fn spawn_statuses(
    state: Arc<SimState>,
    wamid: String,
    wa_id: String,
    template_category: Option<String>,
    fails_131047: bool,
    biz_opaque: Option<Value>,
) {
    tokio::spawn(async move {
        let delays = state.status_delays();
        let pricing = json!({
            "billable": template_category.is_some(),
            "pricing_model": "PMP",
            "type": if template_category.is_some() { "regular" } else { "free_customer_service" },
            "category": template_category.clone().unwrap_or_else(|| "service".into()),
        });
        let steps: Vec<(&str, bool)> = if fails_131047 {
            vec![("failed", false)]
        } else {
            vec![("sent", true), ("delivered", true), ("read", false)]
        };
        for (i, (status, with_pricing)) in steps.into_iter().enumerate() {
            tokio::time::sleep(delays[i.min(2)]).await;
            let mut st = json!({
                "id": wamid,
                "status": status,
                "timestamp": (now_ms() / 1000).to_string(),
                "recipient_id": wa_id,
            });
            if with_pricing {
                st["pricing"] = pricing.clone();
            }
            if let Some(b) = &biz_opaque {
                st["biz_opaque_callback_data"] = b.clone();
            }
            if status == "failed" {
                st["errors"] = json!([{
                    "code": 131047,
                    "title": "Re-engagement message",
                    "message": "Re-engagement message",
                    "error_data": {"details": "Message failed to send because more than 24 hours have passed since the customer last replied to this number."},
                    "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/",
                }]);
            }
            let body = envelope(
                &state,
                json!({
                    "messaging_product": "whatsapp",
                    "metadata": metadata(&state),
                    "statuses": [st],
                }),
            );
            deliver(&state, &body).await;
        }
    });
}

/// `POST /_sim/users/{wa_id}/messages`: the user sends a message to the business. The body is a
/// Meta message object (`{"type":"text","text":{"body":"hi"}}`), optionally with `profile_name`
/// and `context`. Answers once the gateway has acknowledged the webhook.
pub async fn user_sends(
    State(state): State<Arc<SimState>>,
    Path(wa_id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> (StatusCode, Json<Value>) {
    if state.webhook_url().is_none() {
        return (
            StatusCode::CONFLICT,
            Json(
                json!({"error": "the simulator has no webhook URL: set WAGATE_SIM_WEBHOOK_URL or POST /_sim/settings"}),
            ),
        );
    }
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
    let mut name = "Sim User".to_string();
    let mut messages = Vec::with_capacity(items.len());
    let mut wamids = Vec::with_capacity(items.len());
    for item in items {
        match user_message(&state, &wa_id, item) {
            Ok((profile, wamid, msg)) => {
                if let Some(p) = profile {
                    name = p;
                }
                wamids.push(wamid);
                messages.push(msg);
            }
            Err(e) => return (StatusCode::BAD_REQUEST, Json(json!({"error": e}))),
        }
    }
    state.note_inbound(&wa_id, now_ms());
    let body = envelope(
        &state,
        json!({
            "messaging_product": "whatsapp",
            "metadata": metadata(&state),
            "contacts": [{"profile": {"name": name}, "wa_id": wa_id}],
            "messages": messages,
        }),
    );
    let status = deliver(&state, &body).await;
    let code = if status.is_some_and(|s| (200..300).contains(&s)) {
        StatusCode::OK
    } else {
        StatusCode::BAD_GATEWAY
    };
    if batch {
        (code, Json(json!({"wamids": wamids, "webhook_status": status})))
    } else {
        (code, Json(json!({"wamid": wamids[0], "webhook_status": status})))
    }
}

/// One message from the user, in Meta's webhook form: (profile name, wamid, message).
fn user_message(state: &SimState, wa_id: &str, mut msg: Value) -> Result<(Option<String>, String, Value), String> {
    let Some(obj) = msg.as_object_mut() else {
        return Err(
            "each message must be a Meta message object such as {\"type\":\"text\",\"text\":{\"body\":\"hi\"}}".into(),
        );
    };
    let name = obj.remove("profile_name").and_then(|v| v.as_str().map(str::to_string));
    let message_type = obj.get("type").and_then(Value::as_str).unwrap_or("text").to_string();
    if !obj.contains_key(&message_type) && message_type != "unsupported" {
        return Err(format!(
            "the message has type `{message_type}` but no `{message_type}` object"
        ));
    }
    // Media the user sends as bytes (`data_base64`) is hosted here, as Meta hosts it.
    if let Some(media) = obj.get_mut(&message_type).and_then(Value::as_object_mut) {
        if let Some(data) = media.remove("data_base64") {
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
            media.insert("sha256".into(), json!(wagate_core::signature::sha256_base64(&bytes)));
            media.insert("mime_type".into(), json!(mime));
            let id = state.put_media(bytes, &mime);
            media.insert("id".into(), json!(id));
        }
    }
    let wamid = wagate_core::ids::wamid(wa_id, false);
    obj.insert("from".into(), json!(wa_id));
    obj.insert("id".into(), json!(wamid));
    obj.insert("timestamp".into(), json!((now_ms() / 1000).to_string()));
    obj.insert("type".into(), json!(message_type));
    Ok((name, wamid, msg))
}
