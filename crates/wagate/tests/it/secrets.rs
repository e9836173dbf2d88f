//! Secrets sealed at rest under a master key: what the database holds, what a start without the
//! right key says, rotation to a new key, and logs that never print a secret.

use serde_json::{json, Value};
use wagate_core::seal::MasterKey;

use crate::helpers::*;

/// The hook secrets exactly as the database holds them.
async fn raw_hook_secrets(url: &str) -> Vec<String> {
    raw_texts(
        url,
        "SELECT secret FROM hooks UNION ALL SELECT previous_secret FROM hooks WHERE previous_secret IS NOT NULL",
    )
    .await
}

fn key_id(text: &str) -> String {
    MasterKey::parse(text).expect("key").id().to_string()
}

#[tokio::test]
async fn hook_secrets_are_sealed_at_rest_and_a_start_needs_their_key() {
    let url = wagate_store::testing::fresh_database_url().await;
    let app = spawn_app_with(|c| {
        c.database_url = url.clone();
        c.hooks.allow_private_networks = true;
    })
    .await;
    let (status, hook) = app.post("/v1/hooks", &json!({"url": "http://127.0.0.1:9/hook"})).await;
    assert_eq!(status, 201, "{hook}");
    let id = hook["id"].as_str().expect("id").to_string();
    let secret = hook["secret"].as_str().expect("secret").to_string();
    // Rotation keeps the old secret for a while: both are sealed.
    let (status, rotated) = app.post(&format!("/v1/hooks/{id}/secret/rotate"), &json!({})).await;
    assert_eq!(status, 200, "{rotated}");
    let new_secret = rotated["secret"].as_str().expect("secret").to_string();
    let raw = raw_hook_secrets(&url).await;
    assert_eq!(raw.len(), 2, "{raw:?}");
    let bare = |s: &str| s.trim_start_matches("whsec_").to_string();
    for stored in &raw {
        assert!(
            stored.starts_with(&format!("sealed:v1:{}:", key_id(TEST_MASTER_KEY))),
            "{stored}"
        );
        for s in [&secret, &new_secret] {
            assert!(!stored.contains(&bare(s)), "a secret in clear in the database");
        }
    }
    let (_, listed) = app.get("/v1/hooks").await;
    assert!(
        !listed.to_string().contains(&bare(&new_secret)),
        "the API never returns a secret after it is made: {listed}"
    );
    app.gateway.shutdown().await;

    // Without the key, or with another, the gateway does not start, and says why in one line.
    let other = MasterKey::generate();
    for (key, names) in [
        (None, "WAGATE_MASTER_KEY"),
        (Some(other.as_str()), "WAGATE_MASTER_KEY_PREVIOUS"),
    ] {
        let err = match try_spawn_app_with(|c| {
            c.database_url = url.clone();
            c.master_key = key.map(|k| MasterKey::parse(k).expect("key"));
        })
        .await
        {
            Ok(_) => panic!("a gateway without the master key started"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains(names) && !err.contains('\n'), "{err}");
        if key.is_some() {
            assert!(err.contains(&key_id(TEST_MASTER_KEY)), "names the key it needs: {err}");
        }
    }

    // A new key: the gateways get it with the old one as previous, `wagate secrets rotate`
    // seals everything under it, and from then on the new key alone opens everything.
    let app = spawn_app_with(|c| {
        c.database_url = url.clone();
        c.master_key = Some(MasterKey::parse(&other).expect("key"));
        c.previous_master_keys = vec![MasterKey::parse(TEST_MASTER_KEY).expect("key")];
    })
    .await;
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_wagate"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("WAGATE_MASTER_KEY", &other)
        .env("WAGATE_MASTER_KEY_PREVIOUS", TEST_MASTER_KEY)
        .args(["secrets", "rotate", "--database-url", &url])
        .output()
        .await
        .expect("run wagate secrets rotate");
    let said = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains(&format!(
            "2 secret(s) read, 2 sealed again under master key {}",
            key_id(&other)
        )),
        "{said}"
    );
    assert!(!said.contains(&other) && !said.contains(TEST_MASTER_KEY), "{said}");
    for stored in raw_hook_secrets(&url).await {
        assert!(
            stored.starts_with(&format!("sealed:v1:{}:", key_id(&other))),
            "{stored}"
        );
    }
    app.gateway.shutdown().await;
    let app = spawn_app_with(|c| {
        c.database_url = url.clone();
        c.master_key = Some(MasterKey::parse(&other).expect("key"));
    })
    .await;
    let opened = app.stored_hook(&id).await;
    assert_eq!(
        (opened.secret.as_str(), opened.previous_secret.as_deref()),
        (new_secret.as_str(), Some(secret.as_str()))
    );
    // Rotating again with nothing left under the old key changes nothing.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_wagate"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("WAGATE_MASTER_KEY", &other)
        .args(["secrets", "rotate", "--database-url", &url])
        .output()
        .await
        .expect("run wagate secrets rotate");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("2 secret(s) read, 0 sealed again"),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn a_bad_master_key_is_refused_naming_the_variable_not_the_value() {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_wagate"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("WAGATE_MASTER_KEY", "c2hvcnQta2V5")
        .args(["config", "check"])
        .output()
        .await
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("WAGATE_MASTER_KEY is 9 bytes, not 32") && err.contains("wagate secrets new-key"),
        "{err}"
    );
    assert!(!err.contains("c2hvcnQta2V5"), "{err}");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_wagate"))
        .args(["secrets", "new-key"])
        .output()
        .await
        .expect("run");
    let key = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(MasterKey::parse(&key).is_ok(), "{key}");
}

#[tokio::test]
async fn a_full_run_never_logs_a_secret() {
    // The real binary with every secret set, logging everything it logs at debug level, taken
    // through the handshake, webhooks, sends, hooks and a token rotation.
    let dir = wagate_store::testing::TestDir::new("logs");
    let (sim, sim_url) = start_sim().await;
    let db = format!("sqlite://{}", dir.join("w.db").display());
    let api_key = wagate_core::ids::secret("wg_logs_", 16);
    let master = MasterKey::generate();
    let log_path = dir.join("wagate.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_wagate"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("WAGATE_LOG", "debug")
        .env("WAGATE_BIND", "127.0.0.1:0")
        .env("WAGATE_DATABASE_URL", &db)
        .env("WAGATE_GRAPH_URL", &sim_url)
        .env("WAGATE_BOOTSTRAP_API_KEY", &api_key)
        .env("WAGATE_MASTER_KEY", &master)
        .env("WAGATE_HOOKS_ALLOW_PRIVATE_NETWORKS", "true")
        .env("WHATSAPP_ACCESS_TOKEN", TOKEN)
        .env("WHATSAPP_PHONE_NUMBER_ID", PHONE_ID)
        .env("WHATSAPP_WABA_ID", WABA)
        .env("WHATSAPP_APP_SECRET", APP_SECRET)
        .env("WHATSAPP_VERIFY_TOKEN", VERIFY_TOKEN)
        .current_dir(&dir)
        .arg("serve")
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .expect("spawn wagate serve");
    let addr = eventually("the gateway listens", || {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        async move {
            text.lines()
                .find_map(|l| l.split("wagate listening on http://").nth(1))
                .and_then(|rest| rest.split_whitespace().next())
                .map(str::to_string)
        }
    })
    .await;
    let base = format!("http://{addr}");
    sim.set_webhook_url(Some(format!("{base}/webhooks/whatsapp")));
    let http = reqwest::Client::new();
    let call = |method: reqwest::Method, path: &str, body: Option<Value>| {
        let mut r = http.request(method, format!("{base}{path}")).bearer_auth(&api_key);
        if let Some(b) = body {
            r = r.json(&b);
        }
        async move {
            let r = r.send().await.expect("request");
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    // Meta's handshake, once wrong and once right.
    for token in ["wrong-token", VERIFY_TOKEN] {
        http.get(format!(
            "{base}/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token={token}&hub.challenge=42"
        ))
        .send()
        .await
        .expect("verify");
    }
    // A hook (its secret), rotated (another).
    let receiver = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let hook_url = format!("http://{}/hook", receiver.local_addr().expect("addr"));
    drop(receiver);
    let (status, hook) = call(reqwest::Method::POST, "/v1/hooks", Some(json!({"url": hook_url}))).await;
    assert_eq!(status, 201, "{hook}");
    let hook_id = hook["id"].as_str().expect("id").to_string();
    let (_, rotated) = call(
        reqwest::Method::POST,
        &format!("/v1/hooks/{hook_id}/secret/rotate"),
        Some(json!({})),
    )
    .await;
    // Sends, a user's reply (a signed webhook), a key, and a token Meta refuses.
    let (status, m) = call(
        reqwest::Method::POST,
        "/v1/messages?wait=accepted",
        Some(
            json!({"to": USER, "type": "template", "template": {"name": "hello_world", "language": {"code": "en_US"}}}),
        ),
    )
    .await;
    assert_eq!(status, 202, "{m}");
    let r = http
        .post(format!("{sim_url}/_sim/users/{USER}/messages"))
        .json(&json!({"type": "text", "text": {"body": "hi"}}))
        .send()
        .await
        .expect("the user replies");
    assert!(r.status().is_success());
    let (_, new_key) = call(reqwest::Method::POST, "/v1/keys", Some(json!({"name": "logs"}))).await;
    let (status, _) = call(
        reqwest::Method::PUT,
        "/v1/accounts/default/token",
        Some(json!({"access_token": "refused-token-123456"})),
    )
    .await;
    assert_eq!(status, 422);
    eventually("the reply is processed", || async move {
        let (_, events) = call(reqwest::Method::GET, "/v1/events?type=message.received", None).await;
        (!events["data"].as_array()?.is_empty()).then_some(())
    })
    .await;
    // What logs warnings: a webhook for a number no account has (quarantined), a hook that
    // cannot be reached, and a token Meta stops taking (the account pauses, with Meta's reason).
    let body = String::from_utf8(fixture("inbound_text.json"))
        .expect("utf8")
        .replace(PHONE_ID, "109999999999999");
    let r = http
        .post(format!("{base}/webhooks/whatsapp"))
        .header("content-type", "application/json")
        .header(
            "x-hub-signature-256",
            wagate_core::signature::sign_hub(APP_SECRET, body.as_bytes()),
        )
        .body(body)
        .send()
        .await
        .expect("webhook");
    assert_eq!(r.status().as_u16(), 200);
    eventually("the hook's delivery fails", || async {
        let (_, attempts) = call(reqwest::Method::GET, &format!("/v1/hooks/{hook_id}/attempts"), None).await;
        (!attempts["data"].as_array()?.is_empty()).then_some(())
    })
    .await;
    let r = http
        .post(format!("{sim_url}/_sim/settings"))
        .json(&json!({"access_token": "rotated-at-meta-654321"}))
        .send()
        .await
        .expect("settings");
    assert!(r.status().is_success());
    let (status, _) = call(
        reqwest::Method::POST,
        "/v1/messages",
        Some(json!({"to": USER, "type": "text", "text": {"body": "paused?"}})),
    )
    .await;
    assert_eq!(status, 202);
    eventually("the account pauses", || async {
        let (_, accounts) = call(reqwest::Method::GET, "/v1/accounts", None).await;
        accounts["data"][0]["paused"].is_object().then_some(())
    })
    .await;
    let _ = child.kill().await;
    let logs = std::fs::read_to_string(&log_path).expect("logs");
    for said in ["DEBUG", "quarantine", "sending paused"] {
        assert!(logs.contains(said), "the run logged `{said}`:\n{logs}");
    }
    let secrets = [
        ("the access token", TOKEN.to_string()),
        ("the refused token", "refused-token-123456".to_string()),
        ("the app secret", APP_SECRET.to_string()),
        ("the verify token", VERIFY_TOKEN.to_string()),
        ("the master key", master.clone()),
        ("the token Meta now wants", "rotated-at-meta-654321".to_string()),
        ("the bootstrap API key", api_key.clone()),
        ("a created API key", new_key["key"].as_str().expect("key").to_string()),
        ("the hook secret", hook["secret"].as_str().expect("secret").to_string()),
        (
            "the rotated hook secret",
            rotated["secret"].as_str().expect("secret").to_string(),
        ),
    ];
    for (what, secret) in secrets {
        let bare = secret.trim_start_matches("whsec_");
        assert!(!logs.contains(bare), "{what} is in the logs:\n{logs}");
    }
}
