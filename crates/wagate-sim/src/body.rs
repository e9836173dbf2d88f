//! A JSON body extractor that does not insist on `Content-Type: application/json`, so a plain
//! `curl -d '{…}'` works against the control API; bad JSON gets a clear 400.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use serde_json::json;

pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(IntoResponse::into_response)?;
        serde_json::from_slice(&bytes).map(JsonBody).map_err(|e| {
            (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": format!("the body is not the JSON expected here: {e}")})),
            )
                .into_response()
        })
    }
}
