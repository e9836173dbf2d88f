//! Inbound media: downloaded right after the webhook is processed — Meta's URL expires within
//! minutes and needs the token — checked against Meta's SHA-256, and kept in a directory under
//! the hex SHA-256 of the bytes. Failures are retried with backoff; the message and its event
//! never wait for the download. `GET /v1/media/{id}` serves the file.

use std::time::Duration;

use axum::extract::{Multipart, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use wagate_store::{Media, MediaId, MediaOutcome, MediaState};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::{now_ms, AppState};

pub async fn run(state: AppState, cancel: CancellationToken) {
    loop {
        let due = match state.store.claim_media(8, 120_000, now_ms()).await {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = %e, "claiming media downloads failed");
                Vec::new()
            }
        };
        if due.is_empty() {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = state.wake_media.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
            continue;
        }
        let tasks: Vec<_> = due
            .into_iter()
            .map(|m| {
                let state = state.clone();
                tokio::spawn(async move {
                    let outcome = download(&state, &m).await;
                    if let MediaOutcome::Failed { error } | MediaOutcome::Retry { error, .. } = &outcome {
                        tracing::warn!(media = %m.id, attempts = m.attempts, error = %error, "media download failed");
                    }
                    metrics::counter!("wagate_media_downloads_total", "result" => match outcome {
                        MediaOutcome::Stored { .. } => "stored",
                        MediaOutcome::Retry { .. } => "retry",
                        MediaOutcome::Failed { .. } => "failed",
                    })
                    .increment(1);
                    if let Err(e) = state.store.finish_media(&m.id, &outcome, now_ms()).await {
                        tracing::error!(media = %m.id, error = %e, "recording a media download failed");
                    }
                })
            })
            .collect();
        for t in tasks {
            let _ = t.await;
        }
    }
}

async fn download(state: &AppState, m: &Media) -> MediaOutcome {
    let retry = |error: String| {
        if m.attempts >= state.config.media.max_attempts {
            MediaOutcome::Failed { error }
        } else {
            let delay = wagate_core::retry::backoff_ms(m.attempts as u32, rand::Rng::random::<f64>(&mut rand::rng()));
            MediaOutcome::Retry {
                at: now_ms() + delay,
                error,
            }
        }
    };
    let Some(account) = state.accounts.by_id(&m.account_id) else {
        return MediaOutcome::Failed {
            error: "the media's account is no longer configured".into(),
        };
    };
    let info = match state
        .graph
        .get(
            &account.access_token(),
            &wagate_graph::GraphPath::new([m.meta_media_id.as_str()]),
        )
        .await
    {
        Ok(i) => i,
        Err(e) => return retry(format!("getting the media URL: {e}")),
    };
    let Some(url) = info.get("url").and_then(|u| u.as_str()) else {
        return retry("Meta's answer had no url".into());
    };
    let bytes = match state.graph.download(&account.access_token(), url).await {
        Ok(b) => b,
        Err(e) => return retry(format!("downloading: {e}")),
    };
    let expected = m
        .sha256
        .clone()
        .or_else(|| info.get("sha256").and_then(|s| s.as_str()).map(str::to_string));
    if let Some(expected) = expected {
        let got = wagate_core::signature::sha256_base64(&bytes);
        if got != expected {
            return retry(format!(
                "the bytes do not match Meta's sha256 (expected {expected}, got {got})"
            ));
        }
    }
    let hash = wagate_core::signature::sha256_hex(&bytes);
    if let Err(e) = state.blobs.put(&hash, &bytes).await {
        return retry(e);
    }
    MediaOutcome::Stored {
        content_hash: hash,
        size: bytes.len() as i64,
    }
}

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
    // Who asks comes first: without a key or a link whose signature holds, nothing says whether
    // the id exists (a made-up signature is refused alike for every id).
    let hook = match (&link.signature, caller) {
        (Some(signature), _) => check_link(&state, &id, &link, signature).await?,
        (None, Ok(caller)) => {
            caller.require("read")?;
            let m = state
                .store
                .get_media(&MediaId::from(id.as_str()))
                .await?
                .filter(|m| caller.sees(&m.account_id))
                .ok_or_else(|| ApiError::not_found("media", &id))?;
            return answer(&state, m).await;
        }
        (None, Err(e)) => return Err(e),
    };
    let m = state
        .store
        .get_media(&MediaId::from(id.as_str()))
        .await?
        .ok_or_else(|| ApiError::not_found("media", &id))?;
    // The hook must be one that takes this media's account: its accounts, within its tenant.
    let filter = crate::workers::hooks::filter_for(&state, &hook);
    if !filter.takes_account(Some(&m.account_id)) {
        return Err(link_refused("the media is not of the hook's accounts"));
    }
    answer(&state, m).await
}

/// The stored file, or why it is not there.
async fn answer(state: &AppState, m: wagate_store::Media) -> ApiResult<Response> {
    match (m.state, &m.content_hash) {
        (MediaState::Stored, Some(hash)) => {
            let bytes = state.blobs.get(hash).await.map_err(ApiError::internal)?;
            let mime = m.mime_type.unwrap_or_else(|| "application/octet-stream".into());
            Ok(([("content-type", mime)], bytes).into_response())
        }
        (MediaState::Failed, _) => Err(ApiError::new(
            StatusCode::GONE,
            "media_failed",
            format!("the media could not be downloaded: {}", m.error.unwrap_or_default()),
        )
        .details(json!({"attempts": m.attempts}))
        .hint("Meta keeps inbound media for 7 days; ask the user to send it again")),
        _ => Err(ApiError::new(
            StatusCode::CONFLICT,
            "media_pending",
            "the media is still being downloaded",
        )
        .details(json!({"attempts": m.attempts, "last_error": m.error}))
        .hint("try again in a moment")),
    }
}

/// The query of a media link given to a hook.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
pub struct MediaLink {
    /// The hook the link was given to.
    pub hook: Option<String>,
    /// Unix seconds after which the link no longer works.
    pub expires: Option<i64>,
    pub signature: Option<String>,
}

fn link_refused(why: &str) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "media_link_invalid",
        format!("this media link does not work: {why}"),
    )
    .details(json!({"field": "signature"}))
    .hint("use the signed_url of a recent delivery, or GET /v1/media/{id} with an API key")
}

/// A hook's media link for `media_id`: the hook it names, if the signature holds.
async fn check_link(
    state: &AppState,
    media_id: &str,
    link: &MediaLink,
    signature: &str,
) -> ApiResult<wagate_store::Hook> {
    let (Some(hook_id), Some(expires)) = (&link.hook, link.expires) else {
        return Err(link_refused("it lacks hook or expires"));
    };
    let now_s = crate::now_ms() / 1000;
    if expires < now_s {
        return Err(link_refused("it has expired"));
    }
    // The gateway signs links for `hooks.media_link_seconds`; one that lasts longer was not
    // made by it (a minute's slack for clocks).
    if expires > now_s + state.config.hooks.media_link_seconds as i64 + 60 {
        return Err(link_refused(
            "it lasts longer than the gateway's links do (hooks.media_link_seconds)",
        ));
    }
    let hook = state
        .store
        .get_hook(&wagate_store::HookId::from(hook_id.as_str()))
        .await?
        .ok_or_else(|| link_refused("its hook no longer exists"))?;
    let mut secrets = vec![hook.secret.as_str()];
    if let (Some(prev), Some(until)) = (&hook.previous_secret, hook.previous_secret_until) {
        if until > crate::now_ms() {
            secrets.push(prev.as_str());
        }
    }
    if !secrets
        .iter()
        .any(|s| wagate_core::hooks::media_link_valid(s, media_id, expires, signature))
    {
        return Err(link_refused("the signature does not match"));
    }
    Ok(hook)
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
    let mut form = form.map_err(|e| ApiError::invalid_multipart(&e.body_text()))?;
    let account = crate::api::resolve_account(&state, &caller, q.account.as_deref(), crate::api::AccountFrom::Query)?;
    let phone = match q.phone_number_id {
        Some(p) if account.phone_number_ids.contains(&p) => p,
        Some(p) => {
            return Err(ApiError::invalid_field(
                "phone_number_id",
                format!("{p} is not a number of account `{}`", account.name),
                "leave it out to use the account's first number",
            ))
        }
        None => account.phone_number_ids.first().cloned().unwrap_or_default(),
    };
    let bad_form = |e: String| {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_upload", e)
            .details(json!({"field": "file"}))
            .hint("send multipart/form-data with the file in a part named `file` (curl -F file=@photo.jpg)")
    };
    let mut file = None;
    let mut declared_type = None;
    while let Some(field) = form.next_field().await.map_err(|e| bad_form(e.to_string()))? {
        match field.name() {
            Some("file") => {
                let mime = field.content_type().map(str::to_string);
                let name = field.file_name().unwrap_or("upload").to_string();
                let bytes = field.bytes().await.map_err(|e| bad_form(e.to_string()))?;
                file = Some((bytes, mime, name));
            }
            Some("type") => declared_type = Some(field.text().await.map_err(|e| bad_form(e.to_string()))?),
            _ => {}
        }
    }
    let Some((bytes, part_type, name)) = file else {
        return Err(bad_form("no `file` part".into()));
    };
    let mime = declared_type.or(part_type).unwrap_or_default();
    let Some((kind, limit)) = wagate_core::meta::media_limit(&mime) else {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("WhatsApp does not take `{mime}` files"),
        )
        .details(json!({"field": "file", "mime_type": mime, "allowed": wagate_core::meta::MEDIA_TYPES}))
        .hint("convert the file to an allowed type, or give the right type (curl -F 'file=@x.jpg;type=image/jpeg')"));
    };
    if bytes.len() > limit {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "media_too_large",
            format!(
                "{mime} files may be at most {limit} bytes; this one has {}",
                bytes.len()
            ),
        )
        .details(json!({"field": "file", "limit": limit, "size": bytes.len()}))
        .hint("compress or shrink the file; Meta's limits are per type"));
    }
    let sha256 = wagate_core::signature::sha256_base64(&bytes);
    let size = bytes.len();
    let id = state
        .graph
        .upload_media(&account.access_token(), &phone, bytes.to_vec(), &mime, &name)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": id, "mime_type": mime, "size": size, "sha256": sha256, "message_type": kind})),
    ))
}

/// Puts the bytes of an event's stored media into it (`content.media.data_base64`), with its
/// download state; media still downloading is marked so, not waited for.
pub async fn inline_base64(state: &AppState, payload: &mut serde_json::Value) -> ApiResult<()> {
    media_into(state, payload, Some(usize::MAX)).await
}

/// Puts the media's download state into an event payload and, with `bytes_up_to`, its bytes
/// when the file is no larger (else says why they were left out).
pub async fn media_into(
    state: &AppState,
    payload: &mut serde_json::Value,
    bytes_up_to: Option<usize>,
) -> ApiResult<()> {
    use base64::Engine;
    let Some(id) = payload
        .pointer("/content/media/media_id")
        .and_then(|v| v.as_str())
        .map(str::to_string)
    else {
        return Ok(());
    };
    let Some(m) = state.store.get_media(&MediaId::from(id.as_str())).await? else {
        return Ok(());
    };
    let too_large = bytes_up_to.is_some_and(|cap| m.size.is_some_and(|size| size as usize > cap));
    let data = match (m.state, &m.content_hash, bytes_up_to) {
        (MediaState::Stored, Some(hash), Some(_)) if !too_large => state.blobs.get(hash).await.ok(),
        _ => None,
    };
    if let Some(media) = payload.pointer_mut("/content/media").and_then(|v| v.as_object_mut()) {
        media.insert("state".into(), json!(m.state));
        if too_large {
            media.insert(
                "data_omitted".into(),
                json!(format!(
                    "{} bytes, more than hooks.media_max_bytes; use the link",
                    m.size.unwrap_or_default()
                )),
            );
        }
        if let Some(bytes) = data {
            media.insert(
                "data_base64".into(),
                json!(base64::engine::general_purpose::STANDARD.encode(bytes)),
            );
        }
    }
    Ok(())
}
