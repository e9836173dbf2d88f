//! A message as the API, the front door and hooks show it: with its status timeline.

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use wagate_core::status::MessageStatus;
use wagate_core::time::rfc3339_ms;
use wagate_store::{Direction, Message, StatusEntry};

/// A message with its status timeline.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessageView {
    /// The gateway's id (`msg_…`).
    pub id: String,
    /// Account id (`acc_…`).
    pub account: String,
    pub phone_number_id: String,
    /// `outbound` (sent by you) or `inbound` (from the user).
    pub direction: String,
    /// Meta's message id, once Meta accepted the message.
    pub wamid: Option<String>,
    /// The user's WhatsApp id (phone digits).
    pub wa_id: Option<String>,
    #[serde(rename = "type")]
    pub message_type: String,
    /// queued, accepted, sent, delivered, read, played, failed, cancelled, unknown (outbound);
    /// received (inbound).
    pub status: String,
    /// Outbound: the Meta message object sent. Inbound: the normalised message.
    #[schema(value_type = Object)]
    pub content: Value,
    /// Why it failed: code, title, details, hint, and Meta's error.
    #[schema(value_type = Object)]
    pub error: Option<Value>,
    #[schema(value_type = Object)]
    pub pricing: Option<Value>,
    pub created_at: String,
    pub updated_at: String,
    pub timeline: Vec<TimelineEntry>,
    /// Set while a send whose call to Meta started cannot be known to have reached Meta (the
    /// gateway died during the call): Meta's status webhook settles it before this time; after
    /// it the send goes again, or is marked unknown (`sender.in_doubt_action`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_doubt_until: Option<String>,
    /// Things to know that did not stop the send (e.g. the template could not be checked).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TimelineEntry {
    pub status: String,
    /// When it happened (Meta's time for statuses).
    pub at: Option<String>,
}

pub fn view(m: Message, statuses: &[StatusEntry]) -> MessageView {
    let parse = |s: &Option<String>| s.as_deref().and_then(|s| serde_json::from_str(s).ok());
    let mut timeline = Vec::new();
    if m.direction == Direction::Outbound {
        timeline.push(TimelineEntry {
            status: "queued".into(),
            at: Some(rfc3339_ms(m.created_at)),
        });
    } else {
        timeline.push(TimelineEntry {
            status: "received".into(),
            at: Some(rfc3339_ms(m.created_at)),
        });
    }
    for s in statuses {
        timeline.push(TimelineEntry {
            status: s.status.to_string(),
            at: Some(rfc3339_ms(s.occurred_at.unwrap_or(s.recorded_at))),
        });
    }
    if m.status == MessageStatus::Failed && !statuses.iter().any(|s| s.status == MessageStatus::Failed) {
        timeline.push(TimelineEntry {
            status: "failed".into(),
            at: Some(rfc3339_ms(m.updated_at)),
        });
    }
    MessageView {
        content: serde_json::from_str(&m.content).unwrap_or(Value::Null),
        error: parse(&m.error),
        pricing: parse(&m.pricing),
        created_at: rfc3339_ms(m.created_at),
        updated_at: rfc3339_ms(m.updated_at),
        id: m.id.into(),
        account: m.account_id.into(),
        phone_number_id: m.phone_number_id,
        direction: m.direction.to_string(),
        wamid: m.wamid,
        wa_id: m.wa_id,
        message_type: m.message_type,
        status: m.status.to_string(),
        timeline,
        in_doubt_until: None,
        warnings: Vec::new(),
    }
}
