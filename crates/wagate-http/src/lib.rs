//! wagate's HTTP doors: the `/v1` JSON API, Meta's webhooks (`/webhooks/*`), the Graph-compatible
//! front door, `/openapi.json`, health and metrics, and the connection layer with its limits.
//! Handlers parse, call the engine ([`wagate_engine`]) and map its answer; the one mapping from
//! the engine's error to the HTTP error body is in [`error`]. The app is built without binding a
//! port, so tests run the real thing on `127.0.0.1:0`.
#![forbid(unsafe_code)]

pub mod api;
mod bounds;
pub mod connect;
mod console;
mod docs;
pub mod error;
mod extract;
pub mod frontdoor;
pub mod limits;
pub mod openapi;
mod serve;
pub mod state;
mod telemetry;
mod upload;
mod webhooks;

use std::net::SocketAddr;
use std::time::Duration;

use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use wagate_engine::{Config, Engine, KeyPolicy, StartError, Workers};

pub use error::{ApiError, ErrorBody};
pub use state::AppState;

/// A running gateway: the engine and its workers, served on a listener.
pub struct Gateway {
    pub addr: SocketAddr,
    pub state: AppState,
    /// An API key created at this start (shown once), if one was.
    pub new_api_key: Option<String>,
    workers: Workers,
    server: JoinHandle<()>,
}

impl Gateway {
    /// Opens the engine (store, accounts, workers) and serves its doors on `listener`.
    pub async fn start(config: Config, listener: TcpListener, keys: KeyPolicy) -> Result<Gateway, StartError> {
        telemetry::install();
        let addr = listener.local_addr()?;
        let public_base = config.public_url.clone().unwrap_or_else(|| format!("http://{addr}"));
        let opened = Engine::open(config, public_base, keys).await?;
        let state = AppState(opened.engine);
        let app = router(state.clone());
        let s = &state.config.server;
        let connection_limits = serve::Limits {
            header_timeout: Duration::from_secs(s.header_timeout_seconds),
            idle_timeout: Duration::from_secs(s.idle_timeout_seconds),
            max_connections: limits::connection_cap(s.max_connections),
            max_buf_size: wagate_engine::config::HYPER_MAX_BUF,
            max_headers: wagate_engine::config::HYPER_MAX_HEADERS,
        };
        let server = tokio::spawn(serve::serve(
            listener,
            app,
            connection_limits,
            opened.workers.cancel.clone(),
        ));
        Ok(Gateway {
            addr,
            state,
            new_api_key: opened.new_api_key,
            workers: opened.workers,
            server,
        })
    }

    /// Stops serving, lets in-flight work finish, and waits for the workers.
    /// Within `server.shutdown_seconds`: what is still in flight then is given back to the
    /// other gateways.
    pub async fn shutdown(self) {
        let deadline = self.workers.deadline();
        self.workers.cancel.cancel();
        // In-flight webhook requests wait for their journal commit, so the writer stops last.
        let mut server = self.server;
        if tokio::time::timeout_at(deadline, &mut server).await.is_err() {
            server.abort();
        }
        self.workers.finish(deadline).await;
    }
}

/// Every route of the gateway, with the limits and the one error body around them.
pub fn router(state: AppState) -> Router {
    use axum::http::{header, HeaderValue, StatusCode};
    let limits = &state.config.server;
    let webhook_deadline = tower_http::timeout::TimeoutLayer::with_status_code(
        StatusCode::REQUEST_TIMEOUT,
        Duration::from_secs(limits.webhook_timeout_seconds),
    );
    let console = match state.config.console.enabled {
        true => console::with_headers(&state),
        false => Router::new(),
    };
    Router::new()
        .route("/webhooks/whatsapp", get(webhooks::verify).post(webhooks::receive))
        .route(
            "/webhooks/whatsapp/{account}",
            get(webhooks::verify_account).post(webhooks::receive_account),
        )
        // A webhook without a well-formed signature header is refused before its body is read.
        .route_layer(axum::middleware::from_fn(webhooks::signature_first))
        .layer(axum::extract::DefaultBodyLimit::max(
            state.config.webhook.max_body_bytes,
        ))
        .layer(webhook_deadline)
        .merge(api::routes(limits))
        .merge(console)
        .route("/connect/callback", get(connect::callback))
        .route("/health", get(telemetry::health))
        .route("/ready", get(telemetry::ready))
        .route("/metrics", get(telemetry::metrics))
        .route("/openapi.json", get(openapi::serve))
        // Meta's own paths, for apps built on Meta's SDKs (`/v23.0/{phone_number_id}/messages`).
        .route("/{version}/{*rest}", axum::routing::any(frontdoor::objects::graph))
        .fallback(|uri: axum::http::Uri, method: axum::http::Method| async move {
            // Under Meta's paths, Meta's error: an SDK reads it rather than crash on ours.
            if frontdoor::is_metas_path(uri.path()) {
                return frontdoor::unsupported(method.as_str(), uri.path());
            }
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no such endpoint: {method} {}", uri.path()),
            )
            .details(serde_json::json!({"field": "path"}))
            .hint("see /openapi.json for the API")
            .into_response()
        })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            error::one_error_shape,
        ))
        .layer(axum::middleware::from_fn_with_state(state.clone(), limits::guard_body))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            limits::check_request,
        ))
        // Meta's paths answer in Meta's shape whoever refused.
        .layer(axum::middleware::from_fn(frontdoor::meta_shape))
        // The verify endpoint echoes Meta's challenge: no browser may read an answer as HTML.
        .layer(tower_http::set_header::SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .with_state(state)
}
