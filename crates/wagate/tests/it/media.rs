//! Inbound media: downloaded after the webhook, verified, stored, served; failures retried
//! without holding back the message.

use base64::Engine;
use serde_json::{json, Value};

use crate::helpers::*;

fn picture() -> Vec<u8> {
    let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xE0];
    bytes.extend((0..20_000u32).map(|i| (i * 7 % 251) as u8));
    bytes
}

async fn send_image(app: &TestApp, bytes: &[u8]) -> Value {
    let image = json!({"type": "image", "image": {"data_base64": base64::engine::general_purpose::STANDARD.encode(bytes), "mime_type": "image/jpeg", "caption": "the box arrived broken"}});
    app.user_sends(USER, image).await;
    eventually("the image's event", || async {
        app.events()
            .await
            .into_iter()
            .find(|e| e["type"] == "message.received" && e["payload"]["type"] == "image")
    })
    .await
}

async fn fetch(app: &TestApp, url: &str) -> (u16, Option<String>, Vec<u8>) {
    let r = app
        .http
        .get(format!("{}{url}", app.url))
        .bearer_auth(&app.key)
        .send()
        .await
        .expect("get");
    let status = r.status().as_u16();
    let mime = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (status, mime, r.bytes().await.expect("bytes").to_vec())
}

#[tokio::test]
async fn an_inbound_image_is_downloaded_and_served_byte_for_byte() {
    served_byte_for_byte(spawn_app().await).await;
}

#[tokio::test]
async fn media_kept_in_the_database_is_served_byte_for_byte_and_not_on_disk() {
    let app = spawn_app_with(|c| c.media.store = "database".into()).await;
    let dir = app.gateway.state.config.media.dir.clone();
    served_byte_for_byte(app).await;
    assert!(!dir.exists(), "nothing was written to {}", dir.display());
}

/// Runs when an S3-compatible server is given (`.ci/run` starts one: moto's server, with a bucket
/// made for the tests): the bytes go to the bucket, under the configured prefix, and nowhere else.
#[tokio::test]
async fn media_kept_in_an_s3_bucket_is_served_byte_for_byte_and_not_on_disk() {
    use object_store::ObjectStore;
    let (Ok(endpoint), Ok(bucket)) = (
        std::env::var("WAGATE_TEST_S3_URL"),
        std::env::var("WAGATE_TEST_S3_BUCKET"),
    ) else {
        eprintln!(
            "\nSKIPPED media_kept_in_an_s3_bucket_…: WAGATE_TEST_S3_URL and WAGATE_TEST_S3_BUCKET are not set (.ci/run sets them)"
        );
        return;
    };
    let prefix = format!("test-{}/", rand::random::<u64>());
    let s3 = |c: &mut wagate_engine::config::S3Config| {
        c.bucket = bucket.clone();
        c.endpoint = endpoint.clone();
        c.allow_http = true;
        c.prefix = prefix.clone();
        c.access_key_id = "test".into();
        c.secret_access_key = "test".into();
    };
    let app = spawn_app_with(|c| {
        c.media.store = "s3".into();
        s3(&mut c.media.s3);
    })
    .await;
    let dir = app.gateway.state.config.media.dir.clone();
    served_byte_for_byte(app).await;
    assert!(!dir.exists(), "nothing was written to {}", dir.display());
    // Read back with the object store client on its own: one object, the picture's bytes.
    let bucket_client = object_store::aws::AmazonS3Builder::new()
        .with_bucket_name(&bucket)
        .with_endpoint(&endpoint)
        .with_allow_http(true)
        .with_region("us-east-1")
        .with_access_key_id("test")
        .with_secret_access_key("test")
        .build()
        .expect("client");
    let listed = futures_util::TryStreamExt::try_collect::<Vec<_>>(
        bucket_client.list(Some(&object_store::path::Path::from(prefix.trim_end_matches('/')))),
    )
    .await
    .expect("list");
    assert_eq!(listed.len(), 1, "{listed:?}");
    let got = bucket_client
        .get(&listed[0].location)
        .await
        .expect("get")
        .bytes()
        .await
        .expect("bytes");
    assert_eq!(got.to_vec(), picture());
}

async fn served_byte_for_byte(app: TestApp) {
    let bytes = picture();
    let event = send_image(&app, &bytes).await;
    assert_eq!(event["payload"]["text"], "the box arrived broken");
    let url = event["payload"]["content"]["media"]["download_url"]
        .as_str()
        .expect("download_url")
        .to_string();
    assert!(url.starts_with("/v1/media/med_"), "{url}");
    let (mime, got) = eventually("the image is stored", || async {
        let (status, mime, body) = fetch(&app, &url).await;
        (status == 200).then_some((mime, body))
    })
    .await;
    assert_eq!(mime.as_deref(), Some("image/jpeg"));
    assert_eq!(got, bytes, "the exact bytes");
    let r = app.http.get(format!("{}{url}", app.url)).send().await.expect("get");
    assert_eq!(r.status().as_u16(), 401, "media needs an API key");
    let (status, _, _) = fetch(&app, "/v1/media/med_nope").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_download_that_fails_twice_is_retried_without_holding_back_the_message() {
    let app = spawn_app().await;
    app.fault(json!({"code": 131000, "http_status": 500, "count": 2, "path_contains": "/_sim/media"}))
        .await;
    let bytes = picture();
    let event = send_image(&app, &bytes).await;
    // The event is there while the media is still pending (its first download failed).
    let url = event["payload"]["content"]["media"]["download_url"]
        .as_str()
        .expect("download_url")
        .to_string();
    let (status, _, body) = fetch(&app, &url).await;
    assert_eq!(status, 409, "{}", String::from_utf8_lossy(&body));
    let err: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(err["error"]["code"], "media_pending");
    let got = eventually("stored after retries", || async {
        let (status, _, body) = fetch(&app, &url).await;
        (status == 200).then_some(body)
    })
    .await;
    assert_eq!(got, bytes);
    let metrics = app.get_text(&format!("{}/metrics", app.url)).await;
    assert!(
        metrics.contains("wagate_media_downloads_total{result=\"retry\"}"),
        "{metrics}"
    );
}

async fn upload(app: &TestApp, bytes: Vec<u8>, mime: &str) -> (u16, Value) {
    let part = reqwest::multipart::Part::bytes(bytes)
        .file_name("photo")
        .mime_str(mime)
        .expect("mime");
    let form = reqwest::multipart::Form::new().part("file", part);
    let r = app
        .http
        .post(format!("{}/v1/media", app.url))
        .bearer_auth(&app.key)
        .multipart(form)
        .send()
        .await
        .expect("upload");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn an_uploaded_image_is_sent_by_its_id() {
    let app = spawn_app().await;
    app.open_window(USER).await;
    let bytes = picture();
    let (status, media) = upload(&app, bytes.clone(), "image/png").await;
    assert_eq!(status, 201, "{media}");
    assert_eq!(media["message_type"], "image");
    let id = media["id"].as_str().expect("id").to_string();
    // Meta (the simulator) holds exactly these bytes.
    let info: Value = app
        .http
        .get(format!("{}/v23.0/{id}", app.sim_url))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(info["sha256"], media["sha256"]);
    assert_eq!(info["file_size"], bytes.len().to_string());
    let (status, m) = app
        .post(
            "/v1/messages",
            &json!({"to": USER, "type": "image", "image": {"id": id, "caption": "your receipt"}}),
        )
        .await;
    assert_eq!(status, 202, "{m}");
    app.message_reaches(m["id"].as_str().expect("id"), "read").await;
}

#[tokio::test]
async fn uploads_outside_metas_limits_are_refused_before_reaching_meta() {
    let app = spawn_app().await;
    let (status, err) = upload(&app, vec![0u8; 5 * 1024 * 1024 + 1], "image/jpeg").await;
    assert_eq!(status, 413, "{err}");
    assert_eq!(err["error"]["code"], "media_too_large");
    assert_eq!(err["error"]["details"]["limit"], 5 * 1024 * 1024);
    assert_eq!(err["error"]["details"]["size"], 5 * 1024 * 1024 + 1);
    let (status, err) = upload(&app, b"GIF89a".to_vec(), "image/gif").await;
    assert_eq!(status, 415, "{err}");
    assert!(err["error"]["details"]["allowed"]
        .as_array()
        .is_some_and(|a| a.contains(&json!("image/png"))));
    let form = reqwest::multipart::Form::new().text("type", "image/png");
    let r = app
        .http
        .post(format!("{}/v1/media", app.url))
        .bearer_auth(&app.key)
        .multipart(form)
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 400);
}

#[tokio::test]
async fn events_can_carry_the_media_bytes_for_consumers_without_a_shared_network() {
    let app = spawn_app().await;
    let bytes = picture();
    let event = send_image(&app, &bytes).await;
    let url = event["payload"]["content"]["media"]["download_url"]
        .as_str()
        .expect("url")
        .to_string();
    eventually("stored", || async { (fetch(&app, &url).await.0 == 200).then_some(()) }).await;
    let (status, page) = app.get("/v1/events?type=message.received&include_media=base64").await;
    assert_eq!(status, 200, "{page}");
    let image = page["data"]
        .as_array()
        .expect("data")
        .iter()
        .find(|e| e["payload"]["type"] == "image")
        .cloned()
        .expect("image");
    let media = &image["payload"]["content"]["media"];
    assert_eq!(media["state"], "stored");
    let data = base64::engine::general_purpose::STANDARD
        .decode(media["data_base64"].as_str().expect("data"))
        .expect("base64");
    assert_eq!(data, bytes);
    let (status, _) = app.get("/v1/events?include_media=hex").await;
    assert_eq!(status, 400);
}
