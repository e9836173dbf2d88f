//! The engine's one error: what kind of failure it is, a stable code, and the message, details,
//! Meta's own error and hint a person needs. The HTTP doors map [`Kind`] to a status in one place
//! (`wagate-http`'s `error.rs`); the CLI prints the message and hint.

use serde_json::{json, Value};
use wagate_store::StoreError;

/// What kind of failure: the doors choose their answer by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The input is wrong (a field, a value, a shape).
    Invalid,
    /// No credentials, or ones that do not hold.
    Unauthenticated,
    /// The caller may not do this.
    Forbidden,
    NotFound,
    /// The state does not allow it (a paused account, a key used for another request).
    Conflict,
    /// It existed and is gone (an expired link).
    Gone,
    /// More bytes than allowed.
    TooLarge,
    /// A kind of file or body that is not taken here.
    UnsupportedMediaType,
    /// Too many attempts from one place (failed sign-ins); try again later.
    TooManyRequests,
    /// A rule refuses it: the 24-hour window, a template's status, Meta's refusal.
    Refused,
    /// Meta could not be reached or answered oddly.
    Upstream,
    /// The database (or another dependency) is not answering now; try again.
    Unavailable,
    /// Waited too long.
    Timeout,
    /// A bug or an outage.
    Internal,
}

#[derive(Debug)]
pub struct EngineError {
    pub kind: Kind,
    pub code: &'static str,
    pub message: String,
    pub details: Option<Value>,
    pub meta: Option<Value>,
    pub hint: Option<String>,
}

pub type EngineResult<T> = Result<T, EngineError>;

impl std::fmt::Display for EngineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, " ({hint})")?;
        }
        Ok(())
    }
}

impl std::error::Error for EngineError {}

impl EngineError {
    pub fn new(kind: Kind, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            kind,
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
        Self::new(Kind::Invalid, "invalid_request", message)
            .details(json!({ "field": field }))
            .hint(hint)
    }

    /// A body that is not JSON (or not the JSON expected).
    pub fn invalid_json(problem: impl std::fmt::Display, hint: impl Into<String>) -> Self {
        Self::new(
            Kind::Invalid,
            "invalid_json",
            format!("the body is not valid JSON: {problem}"),
        )
        .details(json!({"field": "body"}))
        .hint(hint)
    }

    pub fn not_found(what: &str, id: &str) -> Self {
        Self::new(Kind::NotFound, "not_found", format!("no {what} with id `{id}`")).hint(format!(
            "check the {what} id; it may belong to an account your API key cannot see"
        ))
    }

    /// An account named in a query or body that does not exist, or that the caller may not
    /// see: both answer the same, so another tenant's account is not confirmed.
    pub fn unknown_account(field: &str, key: &str) -> Self {
        Self::new(Kind::NotFound, "not_found", format!("no account `{key}`"))
            .details(json!({ "field": field }))
            .hint(
                "use an account name or id from GET /v1/accounts; an account your API key cannot see is unknown to it",
            )
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(Kind::Unauthenticated, "unauthorized", message)
            .hint("send `Authorization: Bearer <api key>`; create a key with `wagate keys create`")
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(Kind::Internal, "internal_error", message)
            .hint("this is a bug or an outage; the gateway's log has the details")
    }

    /// The error as the `error` object of the API's body.
    pub fn body(&self) -> Value {
        json!({"code": self.code, "message": self.message, "details": self.details, "meta": self.meta, "hint": self.hint})
    }
}

impl From<wagate_graph::GraphError> for EngineError {
    fn from(e: wagate_graph::GraphError) -> Self {
        use wagate_graph::GraphError;
        match &e {
            GraphError::Meta { error, .. } => {
                let kind = if error.code == 190 {
                    Kind::Unauthenticated
                } else {
                    Kind::Refused
                };
                Self::new(kind, "meta_error", format!("Meta refused: {}", error.summary()))
                    .details(json!({"code": error.code, "details": error.details()}))
                    .meta(serde_json::to_value(error.as_ref()).unwrap_or_default())
                    .hint(error.hint())
            }
            GraphError::InvalidRequest(m) => Self::new(Kind::Invalid, "invalid_request", m.clone())
                .hint("an id or name in this request cannot be sent to Meta as it is spelt"),
            GraphError::Transport(_) | GraphError::Unreached(_) | GraphError::Unexpected { .. } => {
                Self::new(Kind::Upstream, "meta_unreachable", e.to_string())
                    .hint("Meta could not be reached or answered oddly; try again")
            }
        }
    }
}

impl From<StoreError> for EngineError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Self::new(Kind::NotFound, "not_found", "not found"),
            StoreError::Conflict(m) => Self::new(Kind::Conflict, "conflict", m),
            StoreError::Unavailable(m) => Self::new(Kind::Unavailable, "database_unavailable", m)
                .hint("the database is not answering; retry shortly"),
            StoreError::Sealed(wagate_core::seal::SealError::NoKey) => Self::new(
                Kind::Conflict,
                "master_key_missing",
                "secrets are kept sealed in the database, and this gateway has no master key to seal them with",
            )
            .hint("set WAGATE_MASTER_KEY (base64 of 32 bytes, e.g. from `wagate secrets new-key`) on every gateway sharing the database, and restart"),
            StoreError::Sealed(e) => {
                tracing::error!(error = %e, "a secret in the database does not open");
                Self::new(Kind::Internal, "secret_unreadable", e.to_string())
                    .hint("start every gateway with the master key the secrets were sealed with (WAGATE_MASTER_KEY, or WAGATE_MASTER_KEY_PREVIOUS while replacing it)")
            }
            other => {
                tracing::error!(error = %other, "store error");
                Self::internal("the database failed")
            }
        }
    }
}

/// Why the engine could not open.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("database: {0}")]
    Store(#[from] wagate_store::StoreError),
    #[error("Graph API client: {0}")]
    Graph(#[from] wagate_graph::GraphError),
    #[error("cannot listen: {0}")]
    Io(#[from] std::io::Error),
    #[error("configuration: {0}")]
    Config(String),
}
