//! A simulator of Meta's WhatsApp Cloud API (Graph API) on loopback: for wagate's own tests, for
//! users' test suites (`wagate sim`), and for sandbox mode. It answers as Meta does — Meta's
//! response and error shapes and codes — and then delivers signed status webhooks to the gateway.
//!
//! The control API under `/_sim/` lets a test act as a WhatsApp user, see what was sent, and
//! inject faults.
#![forbid(unsafe_code)]

mod body;
mod graph;
mod idp;
mod media;
mod metajson;
mod nodes;
mod numbers;
mod oauth;
mod pricing;
mod samples;
mod state;
mod templates;
mod webhooks;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;

use state::SimState;
pub use state::{Business, SimConfig, SimTemplate};

/// Graph accepts the token as `?access_token=` as well as in `Authorization`.
async fn token_from_query(mut req: axum::extract::Request) -> axum::extract::Request {
    if !req.headers().contains_key("authorization") {
        let query = axum::extract::Query::<std::collections::HashMap<String, String>>::try_from_uri(req.uri());
        if let Some(token) = query.ok().and_then(|q| q.0.get("access_token").cloned()) {
            if let Ok(v) = axum::http::HeaderValue::from_str(&format!("Bearer {token}")) {
                req.headers_mut().insert("authorization", v);
            }
        }
    }
    req
}

/// The simulator. Cheap to clone; all clones share one world.
#[derive(Clone)]
pub struct Simulator {
    state: Arc<SimState>,
}

impl Simulator {
    pub fn new(config: SimConfig) -> Self {
        wagate_core::phone::warm();
        Self {
            state: Arc::new(SimState::new(config)),
        }
    }

    /// Where the simulator delivers webhooks (the gateway's `/webhooks/whatsapp`).
    pub fn set_webhook_url(&self, url: Option<String>) {
        self.state.set_webhook_url(url);
    }

    /// How many messages the business has sent so far (what `/_sim/sent` lists), without
    /// building the list: for an embedding test that acts at a point of a send run.
    /// Subscribes the app to a WABA's webhooks, or not (as `POST|DELETE /{waba}/subscribed_apps`).
    pub fn subscribe(&self, waba: &str, on: bool) {
        self.state.subscribe(waba, on);
    }

    pub fn sent_count(&self) -> usize {
        self.state.sent_count()
    }

    pub fn config(&self) -> SimConfig {
        self.state.config.clone()
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/{version}/{node}/messages", post(graph::send_message))
            .route("/{version}/{node}/phone_numbers", get(nodes::phone_numbers))
            .route("/{version}/dialog/oauth", get(oauth::dialog))
            .route("/{version}/oauth/access_token", get(oauth::access_token))
            .route("/{version}/debug_token", get(oauth::debug_token))
            .route(
                "/{version}/{node}/subscribed_apps",
                get(oauth::subscribed_apps)
                    .post(oauth::subscribed_apps)
                    .delete(oauth::subscribed_apps),
            )
            .route("/{version}/{node}/register", post(oauth::register))
            .route("/{version}/{node}/subscriptions", get(oauth::app_subscriptions))
            .route("/_sim/tokens/{token}/expire", post(oauth::expire))
            .route("/_sim/oauth", get(oauth::status))
            .route("/_sim/oidc/.well-known/openid-configuration", get(idp::discovery))
            .route("/_sim/oidc/jwks.json", get(idp::jwks))
            .route("/_sim/oidc/token", post(idp::token))
            .route("/_sim/oidc/rotate", post(idp::rotate))
            .route("/_sim/oidc/authorize", get(idp::authorize_page).post(idp::authorize))
            .route("/_sim/oidc/oauth/token", post(idp::exchange))
            .route(
                "/{version}/{node}/whatsapp_business_profile",
                get(nodes::get_profile).post(nodes::update_profile),
            )
            .route("/_sim/users", post(nodes::create_user).get(nodes::list_users))
            .route(
                "/{version}/{node}/message_templates",
                get(templates::list).post(templates::create).delete(templates::delete),
            )
            .route("/_sim/users/{wa_id}/messages", post(webhooks::user_sends))
            .route("/_sim/sent", get(graph::list_sent))
            .route("/_sim/media/{id}", get(media::download))
            .route(
                "/{version}/{node}",
                get(nodes::get_node).delete(media::delete).post(numbers::update_number),
            )
            .route(
                "/{version}/{node}/settings",
                get(numbers::settings).post(numbers::settings),
            )
            .route("/{version}/{node}/request_code", post(numbers::request_code))
            .route("/{version}/{node}/verify_code", post(numbers::verify_code))
            .route("/{version}/{node}/deregister", post(numbers::deregister))
            .route(
                "/{version}/{node}/block_users",
                get(numbers::block).post(numbers::block).delete(numbers::block),
            )
            .route(
                "/{version}/{node}/message_qrdls",
                get(numbers::qr_codes).post(numbers::qr_codes),
            )
            .route(
                "/{version}/{node}/message_qrdls/{code}",
                get(numbers::qr_code).delete(numbers::qr_code).post(numbers::qr_code),
            )
            .route(
                "/{version}/{node}/whatsapp_commerce_settings",
                get(numbers::commerce).post(numbers::commerce),
            )
            .route("/{version}/{node}/call_permissions", get(numbers::call_permissions))
            .route("/{version}/{node}/flows", get(numbers::flows))
            .route("/{version}/{node}/media", post(media::upload))
            .route("/_sim/templates/{name}/status", post(templates::change_status))
            .route("/_sim/faults", post(graph::add_fault).get(graph::list_faults))
            .route("/_sim/settings", post(graph::update_settings))
            .route("/_sim/health", get(|| async { "ok" }))
            .fallback(nodes::fallback)
            .method_not_allowed_fallback(nodes::fallback)
            .layer(axum::middleware::map_request(token_from_query))
            .layer(axum::middleware::map_request(graph::stamp_arrival))
            .with_state(self.state.clone())
    }

    /// Serves on `listener` until `shutdown` resolves.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        if self.state.base_url().is_none() {
            if let Ok(addr) = listener.local_addr() {
                self.state.set_base_url(format!("http://{addr}"));
            }
        }
        axum::serve(listener, self.router())
            .with_graceful_shutdown(shutdown)
            .await
    }
}
