//! `wagate backup` and `wagate restore`, as an operator runs them: a backup taken while users
//! write holds everything acknowledged before it began, with the media; a restore refuses to
//! overwrite a database in place.

use serde_json::json;

use crate::helpers::*;

/// Runs `wagate ARGS` with the configuration file `config`; (success, stdout+stderr).
async fn wagate(config: &std::path::Path, args: &[&str]) -> (bool, String) {
    run_wagate(&[("WAGATE_CONFIG", &config.display().to_string())], args).await
}

#[tokio::test]
async fn a_backup_taken_under_load_restores_everything_acknowledged_before_it() {
    let app = spawn_app().await;
    let url = app.gateway.state.config.database_url.clone();
    let dir = std::env::temp_dir().join(format!("wagate-backup-{}", wagate_core::ids::event_id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let config = dir.join("wagate.toml");
    let media_dir = app.gateway.state.config.media.dir.clone();
    std::fs::write(
        &config,
        format!("database_url = \"{url}\"\n[media]\ndir = \"{}\"\n", media_dir.display()),
    )
    .expect("config");
    let backup_dir = dir.join("backup");
    if !url.starts_with("sqlite:") {
        let (ok, out) = wagate(&config, &["backup", backup_dir.to_str().expect("path")]).await;
        assert!(!ok && out.contains("pg_dump"), "{out}");
        return;
    }
    // Acknowledged and processed before the backup: 20 texts and an image.
    use base64::Engine as _;
    let image = json!({"type": "image", "image": {"data_base64": base64::engine::general_purpose::STANDARD.encode(b"\xff\xd8\xff\xe0backup-me"), "mime_type": "image/jpeg"}});
    app.user_sends(USER, image).await;
    for i in 0..20 {
        app.user_sends(USER, text(&format!("before {i}"))).await;
    }
    let before = eventually("the 21 messages are stored, the image downloaded", || async {
        let texts = raw_texts(&url, "SELECT wamid FROM messages WHERE direction = 'inbound'").await;
        let media = raw_texts(&url, "SELECT state FROM media").await;
        (texts.len() == 21 && media.iter().all(|s| s == "stored") && !media.is_empty()).then_some(texts)
    })
    .await;
    // Users go on writing while the backup runs.
    let load = {
        let (http, sim) = (app.http.clone(), app.sim_url.clone());
        tokio::spawn(async move {
            for i in 0..30 {
                let _ = http
                    .post(format!("{sim}/_sim/users/{USER}/messages?to={PHONE_ID}"))
                    .json(&text(&format!("during {i}")))
                    .send()
                    .await;
            }
        })
    };
    let (ok, out) = wagate(&config, &["backup", backup_dir.to_str().expect("path")]).await;
    load.await.expect("load");
    assert!(ok, "{out}");
    assert!(out.contains("1 media files") && out.contains("master key"), "{out}");
    let note = std::fs::read_to_string(backup_dir.join("README.txt")).expect("the backup's note");
    assert!(note.contains("NOT in this backup"), "{note}");
    // Into an empty directory only.
    let (ok, out) = wagate(&config, &["backup", backup_dir.to_str().expect("path")]).await;
    assert!(!ok && out.contains("empty directory"), "{out}");

    // Restored elsewhere: every message acknowledged before the backup, and the image.
    let fresh = dir.join("fresh");
    let fresh_config = dir.join("fresh.toml");
    let fresh_url = format!("sqlite://{}", fresh.join("wagate.db").display());
    std::fs::write(
        &fresh_config,
        format!(
            "database_url = \"{fresh_url}\"\n[media]\ndir = \"{}\"\n",
            fresh.join("media").display()
        ),
    )
    .expect("config");
    let (ok, out) = wagate(&fresh_config, &["restore", backup_dir.to_str().expect("path")]).await;
    assert!(ok, "{out}");
    let restored = raw_texts(&fresh_url, "SELECT wamid FROM messages WHERE direction = 'inbound'").await;
    let missing: Vec<&String> = before.iter().filter(|w| !restored.contains(w)).collect();
    assert!(missing.is_empty(), "lost in the backup: {missing:?}");
    let files = std::fs::read_dir(fresh.join("media")).map(|d| d.count()).unwrap_or(0);
    assert!(files > 0, "the image's file is restored");
    // A gateway started on the restored files serves what was acknowledged before the backup.
    let key = wagate_core::ids::secret("wg_test_", 16);
    let (mut restored_gw, addr) = serve_binary_with(
        &fresh,
        &format!(
            "[media]\ndir = \"{}\"\n[[accounts]]\nname = \"acme\"\nwaba_id = \"{WABA}\"\nphone_number_ids = [\"{PHONE_ID}\"]\naccess_token = \"{TOKEN}\"\napp_secret = \"{APP_SECRET}\"\nverify_token = \"{VERIFY_TOKEN}\"\n",
            fresh.join("media").display()
        ),
        &fresh_url,
        &app.sim_url,
        &key,
        // The same account as before, from the file only.
        &[
            ("WAGATE_MASTER_KEY", TEST_MASTER_KEY),
            ("WHATSAPP_ACCESS_TOKEN", ""),
            ("WHATSAPP_PHONE_NUMBER_ID", ""),
            ("WHATSAPP_WABA_ID", ""),
            ("WHATSAPP_APP_SECRET", ""),
            ("WHATSAPP_VERIFY_TOKEN", ""),
        ],
    )
    .await;
    let listed: serde_json::Value = app
        .http
        .get(format!("http://{addr}/v1/messages?direction=inbound&limit=100"))
        .bearer_auth(&key)
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    let served: Vec<&str> = listed["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|m| m["wamid"].as_str())
        .collect();
    let missing: Vec<&String> = before.iter().filter(|w| !served.contains(&w.as_str())).collect();
    assert!(missing.is_empty(), "not served by the restored gateway: {missing:?}");
    // The image's link (`download_url`, wherever the message keeps it) serves its bytes.
    fn download_url(v: &serde_json::Value) -> Option<String> {
        match v {
            serde_json::Value::Object(o) => o
                .get("download_url")
                .and_then(|u| u.as_str().map(str::to_string))
                .or_else(|| o.values().find_map(download_url)),
            serde_json::Value::Array(a) => a.iter().find_map(download_url),
            _ => None,
        }
    }
    let link = download_url(&listed["data"]);
    assert!(link.is_some(), "the image message has its link: {listed}");
    if let Some(link) = link {
        let r = app
            .http
            .get(format!("http://{addr}{link}"))
            .bearer_auth(&key)
            .send()
            .await
            .expect("media");
        assert_eq!(r.status().as_u16(), 200, "the restored image is served");
        assert_eq!(&r.bytes().await.expect("bytes")[..], b"\xff\xd8\xff\xe0backup-me");
    }
    restored_gw.start_kill().expect("stop");
    let _ = restored_gw.wait().await;
    // Never over a database in place.
    let (ok, out) = wagate(&fresh_config, &["restore", backup_dir.to_str().expect("path")]).await;
    assert!(!ok && out.contains("may be a live database"), "{out}");
    let (ok, out) = wagate(&config, &["restore", backup_dir.to_str().expect("path")]).await;
    assert!(!ok && out.contains("nothing was overwritten"), "{out}");
}
