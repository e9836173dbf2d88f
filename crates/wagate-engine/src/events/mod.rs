//! The event log: an event as the API, the stream and hooks show it ([`EventView`]), waiting for
//! events to be written ([`wait_until`]), and the log's operations ([`ops`]: pages, one event,
//! replay, the live tail).

use std::time::Duration;

pub mod ops;

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use wagate_core::time::rfc3339_ms;
use wagate_store::Event;

use crate::error::EngineResult;
use crate::state::Engine;

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

/// Reads with `read` until `met` holds for what it returns, or `within` has passed: again at
/// every event written (here or on another gateway) and every 250 ms (a send's own steps write
/// no event). Returns the last read and whether it met the wait.
pub async fn wait_until<T, F, Fut>(
    state: &Engine,
    within: Duration,
    mut read: F,
    met: impl Fn(&T) -> bool,
) -> EngineResult<(T, bool)>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = EngineResult<T>>,
{
    let deadline = tokio::time::Instant::now() + within;
    let mut written = state.events_written.subscribe();
    loop {
        written.mark_unchanged();
        let got = read().await?;
        if met(&got) {
            return Ok((got, true));
        }
        let next = deadline.min(tokio::time::Instant::now() + Duration::from_millis(250));
        if tokio::time::Instant::now() >= deadline {
            return Ok((got, false));
        }
        let _ = tokio::time::timeout_at(next, written.changed()).await;
    }
}
