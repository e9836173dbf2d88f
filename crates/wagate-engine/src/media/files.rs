//! Media files through the API: reading a stored inbound file (with a key, or with a hook's signed
//! link), uploading one to Meta after checking it against Meta's limits, and putting a file's
//! state or bytes into an event for a hook.

use serde_json::json;
use wagate_store::{MediaId, MediaState};

use crate::auth::Caller;
use crate::clock::now_ms;
use crate::error::{EngineError, EngineResult, Kind};
use crate::state::Engine;

/// A stored file and its MIME type.
pub struct StoredFile {
    pub bytes: Vec<u8>,
    pub mime: String,
}

/// Reads an inbound file: for a caller with `read` that sees its account, or through a hook's
/// signed link. Who asks comes first: without a key or a link whose signature holds, nothing
/// says whether the id exists (a made-up signature is refused alike for every id).
pub async fn read(
    state: &Engine,
    caller: EngineResult<Caller>,
    id: &str,
    link: &MediaLink,
) -> EngineResult<StoredFile> {
    let hook = match (&link.signature, caller) {
        (Some(signature), _) => check_link(state, id, link, signature).await?,
        (None, Ok(caller)) => {
            caller.require("read")?;
            let m = state
                .store
                .get_media(&MediaId::from(id))
                .await?
                .filter(|m| caller.sees(&m.account_id))
                .ok_or_else(|| EngineError::not_found("media", id))?;
            return answer(state, m).await;
        }
        (None, Err(e)) => return Err(e),
    };
    let m = state
        .store
        .get_media(&MediaId::from(id))
        .await?
        .ok_or_else(|| EngineError::not_found("media", id))?;
    // The hook must be one that takes this media's account: its accounts, within its tenant.
    let filter = crate::hooks::filters::filter_for(state, &hook);
    if !filter.takes_account(Some(&m.account_id)) {
        return Err(link_refused("the media is not of the hook's accounts"));
    }
    answer(state, m).await
}

/// The stored file, or why it is not there.
async fn answer(state: &Engine, m: wagate_store::Media) -> EngineResult<StoredFile> {
    match (m.state, &m.content_hash) {
        (MediaState::Stored, Some(hash)) => {
            let bytes = state.blobs.get(hash).await.map_err(EngineError::internal)?;
            let mime = m.mime_type.unwrap_or_else(|| "application/octet-stream".into());
            Ok(StoredFile { bytes, mime })
        }
        (MediaState::Failed, _) => Err(EngineError::new(
            Kind::Gone,
            "media_failed",
            format!("the media could not be downloaded: {}", m.error.unwrap_or_default()),
        )
        .details(json!({"attempts": m.attempts}))
        .hint("Meta keeps inbound media for 7 days; ask the user to send it again")),
        _ => Err(
            EngineError::new(Kind::Conflict, "media_pending", "the media is still being downloaded")
                .details(json!({"attempts": m.attempts, "last_error": m.error}))
                .hint("try again in a moment"),
        ),
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

fn link_refused(why: &str) -> EngineError {
    EngineError::new(
        Kind::Forbidden,
        "media_link_invalid",
        format!("this media link does not work: {why}"),
    )
    .details(json!({"field": "signature"}))
    .hint("use the signed_url of a recent delivery, or GET /v1/media/{id} with an API key")
}

/// A hook's media link for `media_id`: the hook it names, if the signature holds.
async fn check_link(
    state: &Engine,
    media_id: &str,
    link: &MediaLink,
    signature: &str,
) -> EngineResult<wagate_store::Hook> {
    let (Some(hook_id), Some(expires)) = (&link.hook, link.expires) else {
        return Err(link_refused("it lacks hook or expires"));
    };
    let now_s = now_ms() / 1000;
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
        if until > now_ms() {
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

/// A file to upload, as the form carried it.
pub struct Upload {
    pub bytes: Vec<u8>,
    /// The part's own `Content-Type`.
    pub part_type: Option<String>,
    /// A `type` field of the form, which wins over the part's.
    pub declared_type: Option<String>,
    pub name: String,
}

/// Inbound media by Meta's media id, if the caller may see it (`None` otherwise, alike).
pub async fn by_meta_id(state: &Engine, caller: &Caller, meta_id: &str) -> EngineResult<Option<wagate_store::Media>> {
    caller.require("read")?;
    Ok(state
        .store
        .media_by_meta_id(meta_id)
        .await?
        .filter(|m| caller.sees(&m.account_id)))
}

/// Where an upload goes: one of the account's numbers (its first unless named).
pub struct UploadTarget {
    account: crate::accounts::runtime::AccountRuntime,
    phone_number_id: String,
}

/// Checks where an upload goes before its bytes are read.
pub fn upload_target(
    state: &Engine,
    caller: &Caller,
    account: Option<&str>,
    phone_number_id: Option<String>,
) -> EngineResult<UploadTarget> {
    let account =
        crate::auth::accounts::resolve_account(state, caller, account, crate::auth::accounts::AccountFrom::Query)?;
    let phone = match phone_number_id {
        Some(p) if account.phone_number_ids.contains(&p) => p,
        Some(p) => {
            return Err(EngineError::invalid_field(
                "phone_number_id",
                format!("{p} is not a number of account `{}`", account.name),
                "leave it out to use the account's first number",
            ))
        }
        None => account.phone_number_ids.first().cloned().unwrap_or_default(),
    };
    Ok(UploadTarget {
        account,
        phone_number_id: phone,
    })
}

/// Uploads a file to Meta once its MIME type and size pass Meta's limits:
/// `{id, mime_type, size, sha256, message_type}`.
pub async fn upload(state: &Engine, target: UploadTarget, file: Upload) -> EngineResult<serde_json::Value> {
    let UploadTarget {
        account,
        phone_number_id: phone,
    } = target;
    let Upload {
        bytes,
        part_type,
        declared_type,
        name,
    } = file;
    let mime = declared_type.or(part_type).unwrap_or_default();
    let Some((kind, limit)) = wagate_core::meta::media_limit(&mime) else {
        return Err(EngineError::new(
            Kind::UnsupportedMediaType,
            "unsupported_media_type",
            format!("WhatsApp does not take `{mime}` files"),
        )
        .details(json!({"field": "file", "mime_type": mime, "allowed": wagate_core::meta::MEDIA_TYPES}))
        .hint("convert the file to an allowed type, or give the right type (curl -F 'file=@x.jpg;type=image/jpeg')"));
    };
    if bytes.len() > limit {
        return Err(EngineError::new(
            Kind::TooLarge,
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
    let hash = wagate_core::signature::sha256_hex(&bytes);
    // Kept first: a file Meta took is always readable through the gateway (`GET /{media-id}` of
    // the front door, `GET /v1/media/{id}`).
    state.blobs.put(&hash, &bytes).await.map_err(EngineError::internal)?;
    let id = state
        .graph
        .upload_media(&account.access_token(), &phone, bytes, &mime, &name)
        .await?;
    let now = now_ms();
    let media_id = wagate_core::ids::new_id("med");
    state
        .store
        .insert_media(&wagate_store::Media {
            id: MediaId::from(media_id.as_str()),
            account_id: wagate_store::AccountId::from(account.id.as_str()),
            message_id: wagate_store::MessageId::from(""),
            meta_media_id: id.clone(),
            mime_type: Some(mime.clone()),
            sha256: Some(sha256.clone()),
            state: MediaState::Stored,
            attempts: 0,
            content_hash: Some(hash),
            size: Some(size as i64),
            error: None,
            created_at: now,
            updated_at: now,
        })
        .await?;
    Ok(json!({"id": id, "mime_type": mime, "size": size, "sha256": sha256, "message_type": kind, "media_id": media_id}))
}

/// Deletes a file uploaded through the gateway, at Meta and here: `{"success": true}`.
pub async fn delete_uploaded(
    state: &Engine,
    caller: &Caller,
    media: wagate_store::Media,
) -> EngineResult<serde_json::Value> {
    caller.require("send")?;
    let account = state
        .accounts
        .by_id(&media.account_id)
        .filter(|a| caller.sees(&a.id))
        .ok_or_else(|| EngineError::not_found("media", &media.meta_media_id))?;
    let phone = account.phone_number_ids.first().cloned().unwrap_or_default();
    state
        .graph
        .delete(
            &account.access_token(),
            &wagate_graph::GraphPath::new([media.meta_media_id.as_str()]).query("phone_number_id", phone),
        )
        .await?;
    state.store.delete_media(&media.id).await?;
    crate::audit::record(
        state,
        caller,
        "media.deleted",
        Some(&media.meta_media_id),
        Some(&account.id),
        json!({"mime_type": media.mime_type, "size": media.size}),
    )
    .await;
    Ok(json!({"success": true}))
}

/// Puts the bytes of an event's stored media into it (`content.media.data_base64`), with its
/// download state; media still downloading is marked so, not waited for.
pub async fn inline_base64(state: &Engine, payload: &mut serde_json::Value) -> EngineResult<()> {
    media_into(state, payload, Some(usize::MAX)).await
}

/// Puts the media's download state into an event payload and, with `bytes_up_to`, its bytes
/// when the file is no larger (else says why they were left out).
pub async fn media_into(
    state: &Engine,
    payload: &mut serde_json::Value,
    bytes_up_to: Option<usize>,
) -> EngineResult<()> {
    use base64::Engine as _;
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
