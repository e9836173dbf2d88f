//! `/health`, `/ready` and `/metrics` (Prometheus).

use std::sync::OnceLock;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde_json::json;

use crate::state::AppState;

static PROMETHEUS: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide metrics recorder once (several gateways in one test process share it).
pub fn install() -> PrometheusHandle {
    PROMETHEUS
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets(&[
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                ])
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder is installed; then ours records nothing but renders.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

pub async fn health() -> impl IntoResponse {
    Json(json!({"status": "ok"}))
}

/// Ready when the database answers and processing keeps up: the oldest webhook waiting in the
/// journal is younger than `server.ready_max_backlog_seconds`. A load balancer then drains a
/// gateway that cannot keep up (its journal is still processed: the others share it).
pub async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    let backend = state.store.backend();
    if let Err(e) = state.store.ping().await {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "unavailable", "database": backend, "error": e.to_string()})),
        );
    }
    // Reads may work while writes do not (a write lock held elsewhere): a request the database
    // refused in the last 10 s makes this gateway not ready.
    if let Some(why) = state.database_failed_recently(10_000) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "unavailable", "database": backend, "error": why,
                "hint": "the database refused a request in the last 10 s (a lock held elsewhere, or an outage)"})),
        );
    }
    let bound_ms = state.config.server.ready_max_backlog_seconds as i64 * 1000;
    let oldest = match state.store.oldest_pending_journal().await {
        Ok(o) => o,
        Err(e) => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "unavailable", "database": backend, "error": e.to_string()})),
            )
        }
    };
    let age_ms = oldest.map(|t| (wagate_engine::now_ms() - t).max(0)).unwrap_or(0);
    let journal = json!({"oldest_pending_age_seconds": age_ms as f64 / 1000.0, "bound_seconds": bound_ms / 1000});
    if bound_ms > 0 && age_ms > bound_ms {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "behind", "database": backend, "journal": journal,
                "hint": "webhook processing is behind; the backlog is kept and processed, this gateway takes no new traffic until it catches up"})),
        );
    }
    // Without its LISTEN connection a gateway still works (it polls); it says so.
    let listener = match state.store.listening() {
        None => "not needed",
        Some(true) => "listening",
        Some(false) => "reconnecting (polling meanwhile)",
    };
    (
        StatusCode::OK,
        Json(json!({"status": "ready", "database": backend, "journal": journal, "listener": listener})),
    )
}

pub async fn metrics(State(_): State<AppState>) -> impl IntoResponse {
    ([("content-type", "text/plain; version=0.0.4")], install().render())
}
