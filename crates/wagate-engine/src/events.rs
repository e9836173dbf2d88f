//! An event as the API, the stream and hooks show it.

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use wagate_core::time::rfc3339_ms;
use wagate_store::Event;

#[derive(Debug, Serialize, ToSchema)]
pub struct EventView {
    /// `evt_…`
    pub id: String,
    /// Position in the log; pass the last one as `cursor` to read on.
    pub sequence: i64,
    #[serde(rename = "type")]
    pub event_type: String,
    pub account: Option<String>,
    /// When it happened (Meta's time where Meta gave one).
    pub occurred_at: String,
    /// When the gateway stored it.
    pub created_at: String,
    /// The normalised event.
    #[schema(value_type = Object)]
    pub payload: Value,
    /// Meta's object the event came from.
    #[schema(value_type = Object)]
    pub raw: Value,
}

impl From<Event> for EventView {
    fn from(e: Event) -> Self {
        Self {
            payload: serde_json::from_str(&e.payload).unwrap_or(Value::Null),
            raw: serde_json::from_str(&e.raw).unwrap_or(Value::Null),
            occurred_at: rfc3339_ms(e.occurred_at),
            created_at: rfc3339_ms(e.created_at),
            id: e.id.into(),
            sequence: e.seq,
            event_type: e.event_type,
            account: e.account_id.map(Into::into),
        }
    }
}
