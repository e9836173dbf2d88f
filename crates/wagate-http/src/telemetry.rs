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

/// Ready when the database answers and processing keeps up ([`wagate_engine::readiness`]).
pub async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    let (ready, body) = wagate_engine::readiness::check(&state).await;
    let status = match ready {
        true => StatusCode::OK,
        false => StatusCode::SERVICE_UNAVAILABLE,
    };
    (status, Json(body))
}

pub async fn metrics(State(_): State<AppState>) -> impl IntoResponse {
    ([("content-type", "text/plain; version=0.0.4")], install().render())
}
