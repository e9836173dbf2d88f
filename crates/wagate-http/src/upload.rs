//! Reading an upload form as Meta takes it, for `/v1/media` and the front door alike.

use axum::extract::Multipart;
use wagate_engine::media::files::Upload;

/// The file of an upload form, as Meta takes it: the `file` part, and a `type` field (which wins
/// over the part's own type, as does `declared_type` from elsewhere, e.g. the query).
pub async fn read_upload(mut form: Multipart, declared_type: Option<String>) -> Result<Upload, String> {
    let (mut file, mut declared_type) = (None, declared_type);
    while let Some(field) = form.next_field().await.map_err(|e| e.to_string())? {
        match field.name() {
            Some("file") => {
                let part_type = field.content_type().map(str::to_string);
                let name = field.file_name().unwrap_or("upload").to_string();
                let bytes = field.bytes().await.map_err(|e| e.to_string())?;
                file = Some((bytes, part_type, name));
            }
            Some("type") => declared_type = Some(field.text().await.map_err(|e| e.to_string())?),
            _ => {}
        }
    }
    let Some((bytes, part_type, name)) = file else {
        return Err("no `file` part".into());
    };
    Ok(Upload {
        bytes: bytes.to_vec(),
        part_type,
        declared_type,
        name,
    })
}
