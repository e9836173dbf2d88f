//! Whether this gateway should take traffic: the database answers (and has not refused a request
//! in the last 10 s), and processing keeps up with the journal.

use serde_json::{json, Value};

use crate::clock::now_ms;
use crate::state::Engine;

/// Ready when the database answers and processing keeps up: the oldest webhook waiting in the
/// journal is younger than `server.ready_max_backlog_seconds`. A load balancer then drains a
/// gateway that cannot keep up (its journal is still processed: the others share it).
pub async fn check(state: &Engine) -> (bool, Value) {
    let backend = state.store.backend();
    if let Err(e) = state.store.ping().await {
        return (
            false,
            json!({"status": "unavailable", "database": backend, "error": e.to_string()}),
        );
    }
    // Reads may work while writes do not (a write lock held elsewhere): a request the database
    // refused in the last 10 s makes this gateway not ready.
    if let Some(why) = state.database_failed_recently(10_000) {
        return (
            false,
            json!({"status": "unavailable", "database": backend, "error": why,
                "hint": "the database refused a request in the last 10 s (a lock held elsewhere, or an outage)"}),
        );
    }
    let bound_ms = state.config.server.ready_max_backlog_seconds as i64 * 1000;
    let oldest = match state.store.oldest_pending_journal().await {
        Ok(o) => o,
        Err(e) => {
            return (
                false,
                json!({"status": "unavailable", "database": backend, "error": e.to_string()}),
            )
        }
    };
    let age_ms = oldest.map(|t| (now_ms() - t).max(0)).unwrap_or(0);
    let journal = json!({"oldest_pending_age_seconds": age_ms as f64 / 1000.0, "bound_seconds": bound_ms / 1000});
    if bound_ms > 0 && age_ms > bound_ms {
        return (
            false,
            json!({"status": "behind", "database": backend, "journal": journal,
                "hint": "webhook processing is behind; the backlog is kept and processed, this gateway takes no new traffic until it catches up"}),
        );
    }
    // Without its LISTEN connection a gateway still works (it polls); it says so.
    let listener = match state.store.listening() {
        None => "not needed",
        Some(true) => "listening",
        Some(false) => "reconnecting (polling meanwhile)",
    };
    (
        true,
        json!({"status": "ready", "database": backend, "journal": journal, "listener": listener}),
    )
}
