//! `GET /v1/contacts/{wa_id}`: what we know of a contact, and its customer-service window
//! ([`wagate_engine::contacts`]).

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;
use wagate_engine::auth::Caller;
use wagate_engine::contacts::{self, ContactView};

use crate::error::{ApiResult, ErrorBody};
use crate::state::AppState;

#[derive(Deserialize, IntoParams)]
pub struct ContactQuery {
    /// Account name or id.
    pub account: Option<String>,
}

/// A contact and its 24-hour window.
#[utoipa::path(get, path = "/v1/contacts/{wa_id}", tag = "contacts",
    params(("wa_id" = String, Path, description = "WhatsApp id or phone number"), ContactQuery),
    responses((status = 200, body = ContactView), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn get_contact(
    State(state): State<AppState>,
    caller: Caller,
    Path(wa_id): Path<String>,
    Query(q): Query<ContactQuery>,
) -> ApiResult<Json<ContactView>> {
    Ok(Json(
        contacts::get(&state, &caller, &wa_id, q.account.as_deref()).await?,
    ))
}
