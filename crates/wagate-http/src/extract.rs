//! The caller of a request, from its `Authorization` header (the engine authenticates it) and
//! where it came from (the peer address, and `X-Forwarded-For` when a proxy set it).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use wagate_engine::auth::authenticate::authenticate;
use wagate_engine::auth::Caller;

use crate::error::ApiError;
use crate::state::AppState;

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let header = parts.headers.get("authorization").and_then(|v| v.to_str().ok());
        Ok(authenticate(state, header, remote(parts)).await?)
    }
}

/// Where the request came from, for the audit log.
pub fn remote(parts: &Parts) -> Option<String> {
    let peer = parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip().to_string());
    let forwarded = parts
        .headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.chars().take(200).collect::<String>());
    match (peer, forwarded) {
        (Some(p), Some(f)) => Some(format!("{p} (forwarded for {f})")),
        (p, f) => p.or(f),
    }
}
