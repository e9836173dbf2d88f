//! The API's one error type and its one mapping to the HTTP error body:
//! `{"error": {"code", "message", "details", "meta", "hint"}}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use wagate_store::StoreError;

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

    pub fn not_found(what: &str, id: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", format!("no {what} with id `{id}`")).hint(format!(
            "check the {what} id; it may belong to an account your API key cannot see"
        ))
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
            .hint("send `Authorization: Bearer <api key>`; create a key with `wagate keys create`")
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
            GraphError::Transport(_) | GraphError::Unexpected { .. } => {
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
            other => {
                tracing::error!(error = %other, "store error");
                Self::internal("the database failed")
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorObject {
                code: self.code.to_string(),
                message: self.message,
                details: self.details,
                meta: self.meta,
                hint: self.hint,
            },
        };
        (self.status, Json(body)).into_response()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
