//! The OpenAPI document, generated from the handlers and types (`/openapi.json`,
//! `wagate openapi`).

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::api;

#[derive(OpenApi)]
#[openapi(
    info(title = "wagate", description = "Self-hosted WhatsApp Business Cloud API gateway. Every error has the shape {\"error\": {code, message, details, meta, hint}}."),
    paths(
        api::messages::send,
        api::messages::send_batch,
        api::messages::get_one,
        api::messages::cancel,
        api::messages::retry,
        api::messages::list,
        api::messages::mark_read,
        api::notify::notify,
        api::contacts::get_contact,
        api::events::list,
        api::events::get_one,
        api::events::stream,
        api::events::replay,
        api::hooks::create,
        api::hooks::list,
        api::hooks::get_one,
        api::hooks::update,
        api::hooks::delete,
        api::hooks::rotate,
        api::usage::usage,
        api::usage::reconcile,
        api::usage::reconciliation,
        api::usage::put_rates,
        api::usage::list_rates,
        api::usage::put_account_budget,
        api::usage::put_tenant_budget,
        api::usage::list_budgets,
        api::hooks::enable,
        api::hooks::disable,
        api::hooks::test,
        api::hooks::attempts,
        api::hooks::replay,
        api::templates::list,
        api::templates::get_one,
        api::templates::sync,
        api::templates::create,
        api::templates::delete,
        crate::api::media::serve,
        crate::api::media::upload,
        api::accounts::list,
        api::accounts::create,
        api::accounts::get_one,
        api::accounts::update,
        api::accounts::delete,
        api::accounts::phone_numbers,
        api::accounts::health,
        api::accounts::health_fix,
        api::accounts::set_token,
        api::accounts::pause,
        api::accounts::resume,
        api::journal::dead,
        api::journal::requeue,
        api::journal::quarantined,
        api::audit::list,
        crate::connect::start,
        api::keys::create,
        api::keys::list,
        api::keys::get_one,
        api::keys::revoke,
        api::keys::rotate,
        api::journal::release,
    ),
    components(schemas(crate::error::ErrorBody, crate::error::ErrorObject)),
    modifiers(&BearerAuth),
    tags(
        (name = "messages", description = "Send messages and follow their status"),
        (name = "contacts", description = "Contacts and their 24-hour windows"),
        (name = "events", description = "The event log"),
        (name = "hooks", description = "Your services that receive events, signed per Standard Webhooks"),
        (name = "templates", description = "The template catalog, synced from Meta"),
        (name = "media", description = "Media users sent, stored by the gateway"),
        (name = "accounts", description = "Accounts: token rotation, pause and resume, live"),
        (name = "journal", description = "Webhooks set aside because they failed to apply, and webhooks in quarantine for numbers no account has"),
        (name = "keys", description = "API keys: create, list, revoke, rotate"),
        (name = "audit", description = "Administrative actions: who, what, when, from where"),
        (name = "usage", description = "Usage and costs: messages delivered and their estimated cost, rate cards, budgets"),
        (name = "connect", description = "Connect WhatsApp: a business signs up through Meta's dialog and lands back with an account"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(components) = openapi.components.as_mut() {
            components.add_security_scheme(
                "api_key",
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .bearer_format("wg_…")
                        .build(),
                ),
            );
        }
    }
}

/// The document as JSON.
pub fn document() -> serde_json::Value {
    serde_json::to_value(ApiDoc::openapi()).unwrap_or_default()
}

pub async fn serve() -> Json<serde_json::Value> {
    Json(document())
}
