//! Request limits the gateway enforces itself, so that what it refuses is refused with the one
//! error body: the length of the request target (414) and the size of the headers (431), and
//! the open-file limit that bounds how many connections can be open at all.
//!
//! hyper has hard limits of its own, set above ours here; only a request beyond those (a target
//! over 64 KiB, a head over 128 KiB, more than 256 headers) gets hyper's bare answer.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::error::ApiError;
use crate::state::AppState;

pub use wagate_engine::config::{HYPER_MAX_BUF, HYPER_MAX_HEADERS, HYPER_MAX_URI};

/// File descriptors kept back from the connection cap (database, journal, media files, logs).
const RESERVED_FDS: u64 = 256;

/// Refuses a request whose target or headers exceed `[server]`'s limits, before any handler.
pub async fn check_request(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let limits = &state.config.server;
    let uri_len = req.uri().path_and_query().map(|p| p.as_str().len()).unwrap_or_default();
    if uri_len > limits.max_uri_bytes {
        return ApiError::new(
            StatusCode::URI_TOO_LONG,
            "uri_too_long",
            format!(
                "the request target is {uri_len} bytes, more than the {} allowed",
                limits.max_uri_bytes
            ),
        )
        .details(json!({"field": "uri", "limit": limits.max_uri_bytes, "size": uri_len}))
        .hint("send long values in a JSON body, not in the query string")
        .into_response();
    }
    let headers = req.headers();
    let header_bytes: usize = headers.iter().map(|(k, v)| k.as_str().len() + v.len() + 4).sum();
    if headers.len() > limits.max_headers || header_bytes > limits.max_header_bytes {
        return ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            format!(
                "the request has {} headers of {header_bytes} bytes; at most {} headers and {} bytes are allowed",
                headers.len(),
                limits.max_headers,
                limits.max_header_bytes
            ),
        )
        .details(json!({"field": "headers", "limit": limits.max_header_bytes, "size": header_bytes, "count": headers.len(), "max_count": limits.max_headers}))
        .hint("send fewer or shorter headers (large cookies are a common cause)")
        .into_response();
    }
    next.run(req).await
}

/// Before a handler reads a body: a declared length over the route's limit is answered 413 at
/// once, and the body must keep coming (at least `server.min_body_bytes_per_second` on average
/// after `server.body_grace_seconds`), else the answer is 408. Meanwhile the connection counts
/// as slow, and may be closed to make room for a new one.
pub async fn guard_body(State(state): State<AppState>, req: Request, next: Next) -> Response {
    use axum::http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let (_, limit) = crate::error::body_limit_of(&state, req.uri().path());
    if declared.is_some_and(|n| n > limit as u64) {
        return ApiError::body_too_large(&state, req.uri().path(), declared).into_response();
    }
    if !(declared.is_some_and(|n| n > 0) || req.headers().contains_key(TRANSFER_ENCODING)) {
        return next.run(req).await;
    }
    let server = &state.config.server;
    let (grace, rate) = (server.body_grace_seconds, server.min_body_bytes_per_second);
    let slow = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reading = req.extensions().get::<crate::serve::Reading>().cloned();
    let (parts, body) = req.into_parts();
    let body = axum::body::Body::new(crate::serve::Paced::new(
        body,
        std::time::Duration::from_secs(grace),
        rate,
        slow.clone(),
        reading,
    ));
    let response = next.run(Request::from_parts(parts, body)).await;
    if !slow.load(std::sync::atomic::Ordering::Acquire) {
        return response;
    }
    metrics::counter!("wagate_connections_closed_total", "reason" => "slow_body").increment(1);
    ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        "request_timeout",
        format!("the request body arrived too slowly: less than {rate} bytes a second after {grace} s"),
    )
    .details(json!({"field": "body", "min_bytes_per_second": rate, "grace_seconds": grace}))
    .hint("send the whole body promptly (server.min_body_bytes_per_second, server.body_grace_seconds)")
    .into_response()
}

/// Raises the soft open-file limit as far as the system allows, and returns how many
/// connections fit below it. Logs when the configured cap had to be lowered.
pub fn connection_cap(configured: usize) -> usize {
    let limit = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read or raise the open-file limit");
            return configured;
        }
    };
    let fits = limit.saturating_sub(RESERVED_FDS).max(16) as usize;
    if fits < configured {
        tracing::warn!(
            configured,
            open_file_limit = limit,
            max_connections = fits,
            "server.max_connections is lowered to fit the open-file limit (raise it with `ulimit -n` or LimitNOFILE=)"
        );
        fits
    } else {
        configured
    }
}
