//! `GET /v1/media/{id}` and `POST /v1/media`: inbound files out, files to send up to Meta.

use axum::extract::{Multipart, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use wagate_engine::auth::Caller;
use wagate_engine::media::files::{self, MediaLink};

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Inbound media a user sent: the stored file, with its MIME type.
#[utoipa::path(get, path = "/v1/media/{id}", tag = "media",
    params(("id" = String, Path, description = "Media id (med_…) from a message.received event"), MediaLink),
    responses((status = 200, description = "The file, with its MIME type"), (status = 404, body = crate::error::ErrorBody),
              (status = 409, description = "Still downloading", body = crate::error::ErrorBody),
              (status = 410, description = "The download failed for good", body = crate::error::ErrorBody)),
    security(("api_key" = [])))]
pub async fn serve(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    Path(id): Path<String>,
    Query(link): Query<MediaLink>,
) -> ApiResult<Response> {
    let file = files::read(&state, caller.map_err(|e| e.error), &id, &link).await?;
    Ok(([("content-type", file.mime)], file.bytes).into_response())
}

#[derive(serde::Deserialize, utoipa::IntoParams)]
pub struct UploadQuery {
    /// Account name or id.
    pub account: Option<String>,
    /// Which of the account's numbers uploads (default: its first).
    pub phone_number_id: Option<String>,
}

/// Upload a file to Meta for sending (`multipart/form-data` with a `file` part). Its MIME type
/// and size are checked against Meta's limits first. Answers with Meta's media id, to send as
/// `{"image": {"id": …}}` and the like.
#[utoipa::path(post, path = "/v1/media", tag = "media", params(UploadQuery),
    responses((status = 201, description = "{id, mime_type, size, sha256, message_type}"),
              (status = 413, body = crate::error::ErrorBody), (status = 415, body = crate::error::ErrorBody),
              (status = 422, description = "Meta refused", body = crate::error::ErrorBody)),
    security(("api_key" = [])))]
pub async fn upload(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<UploadQuery>,
    form: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    // The permission first: a caller that may not upload learns nothing of its body.
    caller.require("send")?;
    let form = form.map_err(|e| ApiError::invalid_multipart(&e.body_text()))?;
    let target = files::upload_target(&state, &caller, q.account.as_deref(), q.phone_number_id)?;
    let upload = crate::upload::read_upload(form, None).await.map_err(|e| {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_upload", e)
            .details(json!({"field": "file"}))
            .hint("send multipart/form-data with the file in a part named `file` (curl -F file=@photo.jpg)")
    })?;
    let answer = files::upload(&state, target, upload).await?;
    Ok((StatusCode::CREATED, Json(answer)))
}
