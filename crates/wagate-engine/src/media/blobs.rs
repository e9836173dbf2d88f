//! Where the bytes of inbound media live, named by their SHA-256 (`media.store`):
//!
//! - `local`: files under `media.dir` (one machine);
//! - `database`: the store's own table (every gateway sharing a PostgreSQL reaches them);
//! - `s3`: an S3-compatible object store, through the `object_store` crate (AWS S3, MinIO, Ceph,
//!   R2…), for those who keep large files outside the database.
//!
//! Content-addressed: the same bytes are kept once, and writing them again is harmless.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use object_store::aws::AmazonS3Builder;
use object_store::{ObjectStore, PutPayload};
use rand::Rng;
use wagate_store::Store;

use crate::config::MediaConfig;
use crate::now_ms;

pub enum Blobs {
    Local(PathBuf),
    Database(Arc<dyn Store>),
    Objects {
        store: Arc<dyn ObjectStore>,
        prefix: String,
    },
}

impl Blobs {
    /// The media store `media.store` names (configuration is validated before this).
    pub fn open(media: &MediaConfig, store: Arc<dyn Store>) -> Result<Blobs, String> {
        match media.store.as_str() {
            "database" => Ok(Blobs::Database(store)),
            "s3" => {
                let s3 = &media.s3;
                // The standard AWS_* environment first; what the configuration sets wins.
                let mut b = AmazonS3Builder::from_env()
                    .with_bucket_name(&s3.bucket)
                    .with_region(&s3.region)
                    .with_allow_http(s3.allow_http);
                if !s3.endpoint.is_empty() {
                    b = b.with_endpoint(&s3.endpoint);
                }
                if !s3.access_key_id.is_empty() {
                    b = b
                        .with_access_key_id(&s3.access_key_id)
                        .with_secret_access_key(&s3.secret_access_key);
                }
                let objects = b
                    .build()
                    .map_err(|e| format!("media.s3: cannot use bucket `{}`: {e}", s3.bucket))?;
                Ok(Blobs::Objects {
                    store: Arc::new(objects),
                    prefix: s3.prefix.clone(),
                })
            }
            _ => Ok(Blobs::Local(media.dir.clone())),
        }
    }

    /// Keeps these bytes under their hash.
    pub async fn put(&self, hash: &str, bytes: &[u8]) -> Result<(), String> {
        match self {
            Blobs::Database(store) => store
                .put_media_blob(hash, bytes, now_ms())
                .await
                .map_err(|e| format!("storing in the database: {e}")),
            Blobs::Objects { store, prefix } => {
                let at = object_path(prefix, hash);
                store
                    .put(&at, PutPayload::from(bytes.to_vec()))
                    .await
                    .map(|_| ())
                    .map_err(|e| format!("storing {at} in the object store: {e}"))
            }
            Blobs::Local(dir) => {
                let path = stored_path(dir, hash);
                if tokio::fs::metadata(&path).await.is_ok() {
                    return Ok(());
                }
                // Written beside, then renamed, so that a reader never sees half a file.
                let write = async {
                    if let Some(dir) = path.parent() {
                        tokio::fs::create_dir_all(dir).await?;
                    }
                    let tmp = path.with_extension(format!("tmp{}", rand::rng().random::<u32>()));
                    tokio::fs::write(&tmp, bytes).await?;
                    tokio::fs::rename(&tmp, &path).await
                };
                write.await.map_err(|e| format!("writing {}: {e}", path.display()))
            }
        }
    }

    /// The bytes kept under this hash.
    pub async fn get(&self, hash: &str) -> Result<Vec<u8>, String> {
        match self {
            Blobs::Database(store) => match store.get_media_blob(hash).await {
                Ok(Some(b)) => Ok(b),
                Ok(None) => Err("the stored media is missing from the database".into()),
                Err(e) => Err(e.to_string()),
            },
            Blobs::Objects { store, prefix } => {
                let at = object_path(prefix, hash);
                let read = async { store.get(&at).await?.bytes().await };
                read.await
                    .map(|b| b.to_vec())
                    .map_err(|e| format!("reading {at} from the object store: {e}"))
            }
            Blobs::Local(dir) => tokio::fs::read(stored_path(dir, hash))
                .await
                .map_err(|e| format!("the stored file is missing: {e}")),
        }
    }

    /// Deletes the bytes kept under this hash (no row refers to them any more); gone already is
    /// fine.
    pub async fn delete(&self, hash: &str) -> Result<(), String> {
        match self {
            Blobs::Database(store) => store.delete_media_blob(hash).await.map_err(|e| e.to_string()),
            Blobs::Objects { store, prefix } => match store.delete(&object_path(prefix, hash)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(e.to_string()),
            },
            Blobs::Local(dir) => {
                let path = stored_path(dir, hash);
                match tokio::fs::remove_file(&path).await {
                    Ok(()) => Ok(()),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                    Err(e) => Err(format!("{}: {e}", path.display())),
                }
            }
        }
    }
}

/// Where bytes with this hex SHA-256 live under the media directory.
fn stored_path(dir: &Path, hash: &str) -> PathBuf {
    dir.join(&hash[..2.min(hash.len())]).join(hash)
}

/// The object's name in the bucket.
fn object_path(prefix: &str, hash: &str) -> object_store::path::Path {
    object_store::path::Path::from(format!("{prefix}{hash}"))
}
