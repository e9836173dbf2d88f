//! The API's one error type and its one mapping to the HTTP error body:
//! `{"error": {"code", "message", "details", "meta", "hint"}}`.

use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::{json, Value};
use utoipa::ToSchema;
use wagate_store::StoreError;

use crate::AppState;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: Option<Value>,
    pub meta: Option<Value>,
    pub hint: Option<String>,
}

/// The error body every endpoint answers with.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorObject,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorObject {
    /// Stable snake_case code, e.g. `invalid_phone_number`.
    pub code: String,
    /// What went wrong, for a person.
    pub message: String,
    /// Which field, limits, sizes.
    #[schema(value_type = Object)]
    pub details: Option<Value>,
    /// Meta's error, when Meta refused.
    #[schema(value_type = Object)]
    pub meta: Option<Value>,
    /// What to do about it.
    pub hint: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: None,
            meta: None,
            hint: None,
        }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    pub fn meta(mut self, meta: Value) -> Self {
        self.meta = Some(meta);
        self
    }

    /// A request field that is missing or wrong.
    pub fn invalid_field(field: &str, message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
            .details(serde_json::json!({ "field": field }))
            .hint(hint)
    }

    /// A body that is not JSON (or not the JSON expected).
    pub fn invalid_json(problem: impl std::fmt::Display, hint: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("the body is not valid JSON: {problem}"),
        )
        .details(json!({"field": "body"}))
        .hint(hint)
    }

    pub fn not_found(what: &str, id: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", format!("no {what} with id `{id}`")).hint(format!(
            "check the {what} id; it may belong to an account your API key cannot see"
        ))
    }

    /// An account named in a query or body that does not exist, or that the key may not see:
    /// both answer the same `404`, so another tenant's account is not confirmed.
    pub fn unknown_account(field: &str, key: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", format!("no account `{key}`"))
            .details(json!({ "field": field }))
            .hint(
                "use an account name or id from GET /v1/accounts; an account your API key cannot see is unknown to it",
            )
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
            .hint("send `Authorization: Bearer <api key>`; create a key with `wagate keys create`")
    }

    /// A body over the limit of the route at `path` (`size`: as its `Content-Length` declared).
    pub fn body_too_large(state: &AppState, path: &str, size: Option<u64>) -> Self {
        let (key, limit) = body_limit_of(state, path);
        let message = match size {
            Some(size) => format!("the body is {size} bytes, more than the {limit} bytes allowed here"),
            None => format!("the body is larger than the {limit} bytes allowed here"),
        };
        let mut details = json!({"field": "body", "limit": limit});
        if let Some(size) = size {
            details["size"] = json!(size);
        }
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", message)
            .details(details)
            .hint(format!("send a smaller body; the limit is {key}"))
    }

    /// A body that is not `multipart/form-data` where a file upload is expected.
    pub fn invalid_multipart(said: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_multipart",
            format!("the body is not multipart/form-data: {said}"),
        )
        .details(json!({"field": "body"}))
        .hint("send multipart/form-data with a `file` part, e.g. curl -F file=@photo.jpg")
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", message)
            .hint("this is a bug or an outage; the gateway's log has the details")
    }
}

impl From<wagate_graph::GraphError> for ApiError {
    fn from(e: wagate_graph::GraphError) -> Self {
        use wagate_graph::GraphError;
        match &e {
            GraphError::Meta { error, .. } => {
                let status = if error.code == 190 {
                    StatusCode::UNAUTHORIZED
                } else {
                    StatusCode::UNPROCESSABLE_ENTITY
                };
                Self::new(status, "meta_error", format!("Meta refused: {}", error.summary()))
                    .details(serde_json::json!({"code": error.code, "details": error.details()}))
                    .meta(serde_json::to_value(error.as_ref()).unwrap_or_default())
                    .hint(error.hint())
            }
            GraphError::InvalidRequest(m) => Self::new(StatusCode::BAD_REQUEST, "invalid_request", m.clone())
                .hint("an id or name in this request cannot be sent to Meta as it is spelt"),
            GraphError::Transport(_) | GraphError::Unreached(_) | GraphError::Unexpected { .. } => {
                Self::new(StatusCode::BAD_GATEWAY, "meta_unreachable", e.to_string())
                    .hint("Meta could not be reached or answered oddly; try again")
            }
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Self::new(StatusCode::NOT_FOUND, "not_found", "not found"),
            StoreError::Conflict(m) => Self::new(StatusCode::CONFLICT, "conflict", m),
            StoreError::Unavailable(m) => Self::new(StatusCode::SERVICE_UNAVAILABLE, "database_unavailable", m)
                .hint("the database is not answering; retry shortly"),
            StoreError::Sealed(wagate_core::seal::SealError::NoKey) => Self::new(
                StatusCode::CONFLICT,
                "master_key_missing",
                "secrets are kept sealed in the database, and this gateway has no master key to seal them with",
            )
            .hint("set WAGATE_MASTER_KEY (base64 of 32 bytes, e.g. from `wagate secrets new-key`) on every gateway sharing the database, and restart"),
            StoreError::Sealed(e) => {
                tracing::error!(error = %e, "a secret in the database does not open");
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, "secret_unreadable", e.to_string())
                    .hint("start every gateway with the master key the secrets were sealed with (WAGATE_MASTER_KEY, or WAGATE_MASTER_KEY_PREVIOUS while replacing it)")
            }
            other => {
                tracing::error!(error = %other, "store error");
                Self::internal("the database failed")
            }
        }
    }
}

/// An answer's error code, kept on the response for the layers around the handlers.
#[derive(Debug, Clone)]
pub struct AnsweredCode(pub &'static str, pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = AnsweredCode(self.code, self.message.clone());
        let body = ErrorBody {
            error: ErrorObject {
                code: self.code.to_string(),
                message: self.message,
                details: self.details,
                meta: self.meta,
                hint: self.hint,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        response.extensions_mut().insert(code);
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// Gives every error the framework answers by itself the one error body: extractor rejections
/// (a query or JSON body that does not deserialise, a missing multipart boundary), 404 and 405,
/// 408 from the route deadlines, 413 from the body limits. An answer that already carries the
/// body passes unchanged.
pub async fn one_error_shape(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let response = next.run(req).await;
    let status = response.status();
    // The database refused to answer a request: `/ready` says so for a while.
    if let Some(AnsweredCode(code, message)) = response.extensions().get::<AnsweredCode>() {
        if *code == "database_unavailable" {
            state.database_failed(message);
        }
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let allow = response.headers().get(header::ALLOW).cloned();
    let text = axum::body::to_bytes(response.into_body(), 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let allowed = allow
        .as_ref()
        .and_then(|a| a.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let mut out = framework_error(&state, status, &method, &path, &text, &allowed).into_response();
    if let Some(a) = allow {
        out.headers_mut().insert(header::ALLOW, a);
    }
    out
}

/// The framework's own refusal (`text` is what it said), as an [`ApiError`].
fn framework_error(
    state: &AppState,
    status: StatusCode,
    method: &Method,
    path: &str,
    text: &str,
    allowed: &str,
) -> ApiError {
    let said = |prefix: &str| text.strip_prefix(prefix).map(str::trim);
    match status {
        StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => {
            if let Some(rest) = said("Failed to deserialize query string:") {
                // serde_path_to_error puts the field first: `limit: invalid digit found in string`.
                let (field, problem) = rest.split_once(": ").unwrap_or(("query", rest));
                return ApiError::invalid_field(
                    field,
                    format!("query parameter `{field}`: {problem}"),
                    format!("fix `{field}` in the query string; see /openapi.json for its type"),
                )
                .details(json!({"field": field, "problem": problem}));
            }
            if let Some(rest) = said("Failed to parse the request body as JSON:") {
                return ApiError::invalid_json(rest, "send a JSON object; check quotes, commas and brackets");
            }
            if let Some(rest) = said("Failed to deserialize the JSON body into the target type:") {
                let field = rest.split_once(": ").map(|(f, _)| f).unwrap_or("body");
                return ApiError::invalid_field(field, format!("the body does not fit: {rest}"), "see /openapi.json for the body's shape");
            }
            if text.contains("boundary") || text.to_ascii_lowercase().contains("multipart") {
                return ApiError::invalid_multipart(text);
            }
            ApiError::new(StatusCode::BAD_REQUEST, "bad_request", non_empty(text, "the request is malformed"))
                .hint("see /openapi.json for this endpoint's parameters")
        }
        StatusCode::NOT_FOUND => ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no such endpoint: {method} {path}"))
            .details(json!({"field": "path"}))
            .hint("see /openapi.json for the API"),
        StatusCode::METHOD_NOT_ALLOWED => ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("{method} is not allowed on {path}"),
        )
        .details(json!({"field": "method", "allowed": allowed.split(',').map(str::trim).filter(|m| !m.is_empty()).collect::<Vec<_>>()}))
        .hint(format!("use one of: {allowed}")),
        StatusCode::REQUEST_TIMEOUT => {
            metrics::counter!("wagate_connections_closed_total", "reason" => "request_timeout").increment(1);
            let (key, secs) = deadline_of(state, path);
            ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                format!("the request was not received and answered within {secs} s"),
            )
            .details(json!({"field": "body", "limit_seconds": secs}))
            .hint(format!("send the whole request promptly; the deadline is {key}"))
        }
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::body_too_large(state, path, None),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            non_empty(text, "the body's Content-Type is not accepted here"),
        )
        .details(json!({"field": "content-type"}))
        .hint("send `Content-Type: application/json` (multipart/form-data for media uploads)"),
        other => ApiError::new(other, "http_error", non_empty(text, other.canonical_reason().unwrap_or("error")))
            .hint("see /openapi.json for the API"),
    }
}

fn non_empty(text: &str, fallback: &str) -> String {
    if text.is_empty() {
        fallback.to_string()
    } else {
        text.to_string()
    }
}

/// The deadline that applies to `path`, and its configuration key.
fn deadline_of(state: &AppState, path: &str) -> (&'static str, u64) {
    let s = &state.config.server;
    if path.starts_with("/webhooks/") {
        ("server.webhook_timeout_seconds", s.webhook_timeout_seconds)
    } else if path == "/v1/media" {
        ("server.upload_timeout_seconds", s.upload_timeout_seconds)
    } else {
        ("server.request_timeout_seconds", s.request_timeout_seconds)
    }
}

/// The body limit that applies to `path`, and where it comes from.
pub(crate) fn body_limit_of(state: &AppState, path: &str) -> (&'static str, usize) {
    if path.starts_with("/webhooks/") {
        ("webhook.max_body_bytes", state.config.webhook.max_body_bytes)
    } else if path == "/v1/media" {
        ("100 MiB, Meta's largest media file", crate::api::MEDIA_UPLOAD_LIMIT)
    } else {
        ("2 MiB for API requests", crate::api::API_BODY_LIMIT)
    }
}
