//! The REST API under `/v1`, one module per resource.

pub mod accounts;
pub mod audit;
pub mod contacts;
pub mod events;
pub mod hooks;
pub mod journal;
pub mod keys;
pub mod media;
pub mod messages;
pub mod notify;
pub mod templates;
pub mod usage;

use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use serde::{Deserialize, Deserializer};
use tower_http::timeout::TimeoutLayer;

use wagate_engine::config::ServerConfig;

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

pub use crate::bounds::{API_BODY_LIMIT, MEDIA_UPLOAD_LIMIT};

/// Every `/v1` route, each bounded by its deadline (`server.request_timeout_seconds`, uploads
/// `server.upload_timeout_seconds`) and its body limit.
pub fn routes(limits: &ServerConfig) -> Router<AppState> {
    let deadline = |secs: u64| TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, Duration::from_secs(secs));
    let upload = Router::new()
        .route("/v1/media", post(media::upload))
        .layer(DefaultBodyLimit::max(MEDIA_UPLOAD_LIMIT))
        .layer(deadline(limits.upload_timeout_seconds));
    Router::new()
        .route("/v1/messages", post(messages::send).get(messages::list))
        .route("/v1/messages/batch", post(messages::send_batch))
        .route("/v1/messages/{id}", get(messages::get_one).delete(messages::cancel))
        .route("/v1/messages/{id}/retry", post(messages::retry))
        .route("/v1/messages/{id}/read", post(messages::mark_read))
        .route("/v1/contacts/{wa_id}", get(contacts::get_contact))
        .route("/v1/accounts", get(accounts::list).post(accounts::create))
        .route(
            "/v1/accounts/{name}",
            get(accounts::get_one).patch(accounts::update).delete(accounts::delete),
        )
        .route("/v1/accounts/{name}/phone-numbers", get(accounts::phone_numbers))
        .route(
            "/v1/accounts/{name}/health",
            get(accounts::health).post(accounts::health_fix),
        )
        .route("/v1/audit", get(audit::list))
        .route("/v1/connect/start", get(crate::connect::start))
        .route("/v1/keys", post(keys::create).get(keys::list))
        .route("/v1/keys/{id}", get(keys::get_one).delete(keys::revoke))
        .route("/v1/keys/{id}/rotate", post(keys::rotate))
        .route("/v1/journal/dead", get(journal::dead))
        .route("/v1/journal/quarantined", get(journal::quarantined))
        .route("/v1/journal/quarantined/requeue", post(journal::release))
        .route("/v1/journal/{id}/requeue", post(journal::requeue))
        .route("/v1/accounts/{name}/token", axum::routing::put(accounts::set_token))
        .route("/v1/accounts/{name}/pause", post(accounts::pause))
        .route("/v1/accounts/{name}/resume", post(accounts::resume))
        .route("/v1/events", get(events::list))
        .route("/v1/events/stream", get(events::stream))
        .route("/v1/events/{id}", get(events::get_one))
        .route("/v1/events/{id}/replay", post(events::replay))
        .route("/v1/hooks", post(hooks::create).get(hooks::list))
        .route(
            "/v1/hooks/{id}",
            get(hooks::get_one).patch(hooks::update).delete(hooks::delete),
        )
        .route("/v1/hooks/{id}/secret/rotate", post(hooks::rotate))
        .route("/v1/hooks/{id}/enable", post(hooks::enable))
        .route("/v1/hooks/{id}/disable", post(hooks::disable))
        .route("/v1/hooks/{id}/test", post(hooks::test))
        .route("/v1/hooks/{id}/attempts", get(hooks::attempts))
        .route("/v1/hooks/{id}/replay", post(hooks::replay))
        .route("/v1/whatsapp/notify", post(notify::notify))
        .route("/v1/templates", get(templates::list).post(templates::create))
        .route("/v1/templates/sync", post(templates::sync))
        .route("/v1/usage", get(usage::usage))
        .route("/v1/usage/reconcile", post(usage::reconcile))
        .route("/v1/usage/reconciliation", get(usage::reconciliation))
        .route("/v1/rates", get(usage::list_rates).put(usage::put_rates))
        .route("/v1/budgets", get(usage::list_budgets))
        .route(
            "/v1/accounts/{name}/budget",
            axum::routing::put(usage::put_account_budget),
        )
        .route(
            "/v1/tenants/{tenant}/budget",
            axum::routing::put(usage::put_tenant_budget),
        )
        .route("/v1/media/{id}", get(media::serve))
        .route(
            "/v1/templates/{name}",
            get(templates::get_one).delete(templates::delete),
        )
        .layer(DefaultBodyLimit::max(API_BODY_LIMIT))
        .layer(deadline(limits.request_timeout_seconds))
        .merge(upload)
}

/// The longest a read may wait (`?timeout=`): well inside `server.request_timeout_seconds`.
const LONGEST_WAIT: Duration = Duration::from_secs(30);

/// `?wait_for=…&timeout=…` of a read that waits for something to exist.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
pub struct WaitQuery {
    /// Answer once this exists (an event type or pattern for events, a status for a message),
    /// or when `timeout` has passed; the `Wagate-Wait` header says which (`met` or `timeout`).
    pub wait_for: Option<String>,
    /// How long to wait: `5s` (the default), `500ms`, or seconds; at most 30 s.
    pub timeout: Option<String>,
}

impl WaitQuery {
    /// How long to wait; `None` without `wait_for`.
    pub fn within(&self) -> Result<Option<Duration>, ApiError> {
        let Some(_) = self.wait_for.as_deref().filter(|w| !w.is_empty()) else {
            return Ok(None);
        };
        let bad = |v: &str| {
            ApiError::invalid_field(
                "timeout",
                format!("timeout=`{v}` is not a duration of at most 30 s"),
                "use e.g. timeout=5s, timeout=500ms or timeout=10",
            )
        };
        let within = match self.timeout.as_deref().map(str::trim) {
            None | Some("") => Duration::from_secs(5),
            Some(v) => {
                let parsed = match (v.strip_suffix("ms"), v.strip_suffix('s')) {
                    (Some(ms), _) => ms.trim().parse::<u64>().ok().map(Duration::from_millis),
                    (None, Some(secs)) => secs
                        .trim()
                        .parse::<f64>()
                        .ok()
                        .and_then(|s| Duration::try_from_secs_f64(s).ok()),
                    (None, None) => v.parse::<f64>().ok().and_then(|s| Duration::try_from_secs_f64(s).ok()),
                };
                parsed.filter(|d| *d <= LONGEST_WAIT).ok_or_else(|| bad(v))?
            }
        };
        Ok(Some(within))
    }
}

pub use wagate_engine::events::wait_until;

/// The `Idempotency-Key` header, checked: 1 to 255 visible ASCII characters.
pub fn idempotency_key(headers: &HeaderMap) -> ApiResult<Option<String>> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value.to_str().unwrap_or_default();
    if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::invalid_field(
            "Idempotency-Key",
            "the Idempotency-Key header must be 1 to 255 visible ASCII characters",
            "use a UUID or another unique string per message, e.g. Idempotency-Key: order-1042-shipped",
        ));
    }
    Ok(Some(key.to_string()))
}

/// The `Wagate-Wait` header of a read that waited.
pub fn wait_header(met: bool) -> [(&'static str, &'static str); 1] {
    [("wagate-wait", if met { "met" } else { "timeout" })]
}

/// Page size from `?limit=`: 1–500, default 50.
pub fn page_limit(limit: Option<i64>) -> Result<i64, ApiError> {
    match limit {
        None => Ok(50),
        Some(n) if (1..=500).contains(&n) => Ok(n),
        Some(n) => Err(ApiError::invalid_field(
            "limit",
            format!("limit {n} is out of range"),
            "use a limit from 1 to 500",
        )),
    }
}

/// Query numbers arrive as strings; an empty one counts as absent.
pub fn opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let s: Option<String> = Option::deserialize(d)?;
    match s.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => v.parse().map(Some).map_err(serde::de::Error::custom),
    }
}

/// A JSON request body; an error names the field at fault (a missing one too) and shows
/// `example`.
pub fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8], example: &str) -> Result<T, ApiError> {
    parse_body_of("request", body, example)
}

/// The same, saying what the body is in the message ("the hook is not valid: …").
pub fn parse_body_of<T: serde::de::DeserializeOwned>(what: &str, body: &[u8], example: &str) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let inner = e.inner().to_string();
        // A missing field is named by serde in its message, not in the path.
        let field = match (e.path().to_string(), inner.strip_prefix("missing field `")) {
            (_, Some(rest)) => rest.split('`').next().unwrap_or("body").to_string(),
            (p, None) if p == "." => "body".to_string(),
            (p, None) => p,
        };
        ApiError::invalid_field(&field, format!("the {what} is not valid: {inner}"), example)
    })
}

/// The same, for a body that may be left out: an empty one is every default.
pub fn parse_body_or_default<T: serde::de::DeserializeOwned + Default>(
    body: &[u8],
    example: &str,
) -> Result<T, ApiError> {
    match body.iter().all(u8::is_ascii_whitespace) {
        true => Ok(T::default()),
        false => parse_body(body, example),
    }
}

/// A field that may be absent (`None`), `null` (`Some(None)`) or a value.
pub fn double_option<'de, T: Deserialize<'de>, D: Deserializer<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}
