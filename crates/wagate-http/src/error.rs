//! The HTTP doors' one error type, and the one mapping from the engine's errors to it and to the
//! error body:
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

use wagate_engine::error::{EngineError, Kind};

use crate::state::AppState;

/// An answer that failed: the engine's error and the HTTP status it is answered with.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub error: EngineError,
}

impl std::ops::Deref for ApiError {
    type Target = EngineError;
    fn deref(&self) -> &EngineError {
        &self.error
    }
}

/// The status each kind of engine error is answered with: the one mapping from the engine's
/// errors to HTTP.
pub fn status_of(kind: Kind) -> StatusCode {
    match kind {
        Kind::Invalid => StatusCode::BAD_REQUEST,
        Kind::Unauthenticated => StatusCode::UNAUTHORIZED,
        Kind::Forbidden => StatusCode::FORBIDDEN,
        Kind::NotFound => StatusCode::NOT_FOUND,
        Kind::Conflict => StatusCode::CONFLICT,
        Kind::Gone => StatusCode::GONE,
        Kind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        Kind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        Kind::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
        Kind::Refused => StatusCode::UNPROCESSABLE_ENTITY,
        Kind::Upstream => StatusCode::BAD_GATEWAY,
        Kind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Kind::Timeout => StatusCode::REQUEST_TIMEOUT,
        Kind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The kind of an error this door makes itself, from its status (the same table, read back).
fn kind_of(status: StatusCode) -> Kind {
    match status {
        StatusCode::BAD_REQUEST => Kind::Invalid,
        StatusCode::UNAUTHORIZED => Kind::Unauthenticated,
        StatusCode::FORBIDDEN => Kind::Forbidden,
        StatusCode::NOT_FOUND => Kind::NotFound,
        StatusCode::CONFLICT => Kind::Conflict,
        StatusCode::GONE => Kind::Gone,
        StatusCode::PAYLOAD_TOO_LARGE => Kind::TooLarge,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => Kind::UnsupportedMediaType,
        StatusCode::TOO_MANY_REQUESTS => Kind::TooManyRequests,
        StatusCode::UNPROCESSABLE_ENTITY => Kind::Refused,
        StatusCode::BAD_GATEWAY => Kind::Upstream,
        StatusCode::SERVICE_UNAVAILABLE => Kind::Unavailable,
        StatusCode::REQUEST_TIMEOUT => Kind::Timeout,
        s if s.is_client_error() => Kind::Invalid,
        _ => Kind::Internal,
    }
}

impl From<EngineError> for ApiError {
    fn from(error: EngineError) -> Self {
        Self {
            status: status_of(error.kind),
            error,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        EngineError::from(e).into()
    }
}

impl From<wagate_graph::GraphError> for ApiError {
    fn from(e: wagate_graph::GraphError) -> Self {
        EngineError::from(e).into()
    }
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
    /// An error of this door's own (a limit, a malformed request), with its status.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            error: EngineError::new(kind_of(status), code, message),
        }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.error = self.error.hint(hint);
        self
    }

    pub fn details(mut self, details: Value) -> Self {
        self.error = self.error.details(details);
        self
    }

    pub fn meta(mut self, meta: Value) -> Self {
        self.error = self.error.meta(meta);
        self
    }

    /// A request field that is missing or wrong.
    pub fn invalid_field(field: &str, message: impl Into<String>, hint: impl Into<String>) -> Self {
        EngineError::invalid_field(field, message, hint).into()
    }

    /// A body that is not JSON (or not the JSON expected).
    pub fn invalid_json(problem: impl std::fmt::Display, hint: impl Into<String>) -> Self {
        EngineError::invalid_json(problem, hint).into()
    }

    pub fn not_found(what: &str, id: &str) -> Self {
        EngineError::not_found(what, id).into()
    }

    /// An account named in a query or body that does not exist, or that the key may not see.
    pub fn unknown_account(field: &str, key: &str) -> Self {
        EngineError::unknown_account(field, key).into()
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        EngineError::unauthorized(message).into()
    }

    pub fn internal(message: impl Into<String>) -> Self {
        EngineError::internal(message).into()
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
}

/// An answer's error code, kept on the response for the layers around the handlers.
#[derive(Debug, Clone)]
pub struct AnsweredCode(pub &'static str, pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let e = self.error;
        let code = AnsweredCode(e.code, e.message.clone());
        let body = ErrorBody {
            error: ErrorObject {
                code: e.code.to_string(),
                message: e.message,
                details: e.details,
                meta: e.meta,
                hint: e.hint,
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
    // The console's pages answer errors in HTML of their own.
    let is_html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if !(status.is_client_error() || status.is_server_error()) || is_json || is_html {
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
    } else if path == "/v1/media" || crate::bounds::is_upload_path(path) {
        ("server.upload_timeout_seconds", s.upload_timeout_seconds)
    } else {
        ("server.request_timeout_seconds", s.request_timeout_seconds)
    }
}

/// The body limit that applies to `path`, and where it comes from.
pub(crate) fn body_limit_of(state: &AppState, path: &str) -> (&'static str, usize) {
    if path.starts_with("/webhooks/") {
        ("webhook.max_body_bytes", state.config.webhook.max_body_bytes)
    } else if path == "/v1/media" || crate::bounds::is_upload_path(path) {
        ("100 MiB, Meta's largest media file", crate::bounds::MEDIA_UPLOAD_LIMIT)
    } else {
        ("2 MiB for API requests", crate::bounds::API_BODY_LIMIT)
    }
}
