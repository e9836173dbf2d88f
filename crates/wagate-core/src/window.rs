//! The 24-hour customer-service window: opened or reset each time the user messages the number.

/// How long a window stays open after the user's last message.
pub const WINDOW_MS: i64 = 24 * 60 * 60 * 1000;

/// When the window opened by an inbound message at `inbound_ms` closes.
pub fn expires_at(inbound_ms: i64) -> i64 {
    inbound_ms + WINDOW_MS
}

/// Whether a window that closes at `expires_at_ms` is open at `now_ms`.
pub fn is_open(expires_at_ms: Option<i64>, now_ms: i64) -> bool {
    expires_at_ms.is_some_and(|e| now_ms < e)
}
