//! The real `wagate` binary: the sandbox banner a newcomer follows, configuration errors, and
//! the small commands.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

fn wagate() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wagate"));
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("WAGATE_LOG", "warn")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    c
}

fn temp_dir() -> wagate_store::testing::TestDir {
    wagate_store::testing::TestDir::new("bin")
}

async fn sh(cmd: &str) -> String {
    let out = Command::new("sh").arg("-c").arg(cmd).output().await.expect("sh");
    assert!(
        out.status.success(),
        "`{cmd}` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[tokio::test]
async fn following_the_sandbox_banner_works_end_to_end() {
    let dir = temp_dir();
    let db = match wagate_store::testing::fresh_postgres_url().await {
        Some(url) => url,
        None => format!("sqlite://{}", dir.join("wagate.db").display()),
    };
    let mut child = wagate()
        .current_dir(&dir)
        .env("WAGATE_BIND", "127.0.0.1:0")
        .env("WAGATE_SIM_BIND", "127.0.0.1:0")
        .env("WAGATE_DATABASE_URL", &db)
        .arg("serve")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn wagate serve");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut banner = Vec::new();
    let read = async {
        while let Some(line) = lines.next_line().await.expect("read") {
            banner.push(line);
            if banner.iter().filter(|l| l.starts_with("curl ")).count() == 3 {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .expect("the banner appears");
    let text = banner.join("\n");
    assert!(text.contains("SANDBOX MODE"), "{text}");
    assert!(text.contains("API key    wg_"), "{text}");
    let curls: Vec<&String> = banner.iter().filter(|l| l.starts_with("curl ")).collect();

    let sent = sh(curls[0]).await;
    assert!(sent.contains("\"status\":\"queued\""), "{sent}");
    let replied = sh(curls[1]).await;
    assert!(replied.contains("\"webhook_status\":200"), "{replied}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let events = sh(curls[2]).await;
        if events.contains("Where is my order?") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the reply never showed up as an event: {events}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The template sent by the first curl reaches `read` in its timeline.
    let id = sent
        .split("\"id\":\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("message id");
    let key = text
        .split("API key    ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .expect("key");
    let api = text
        .split("API        ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .expect("api url");
    loop {
        let m = sh(&format!("curl -s {api}/messages/{id} -H 'Authorization: Bearer {key}'")).await;
        if m.contains("\"status\":\"read\"") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the template never reached read: {m}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // "Connect WhatsApp" in the sandbox: the simulator's second business signs up by redirects.
    let started = sh(&format!(
        "curl -s '{api}/connect/start?tenant=acme&redirect=https://app.example.com/connected' -H 'Authorization: Bearer {key}'"
    ))
    .await;
    let dialog = started
        .split("\"url\":\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("the dialog url");
    let callback = sh(&format!("curl -s -o /dev/null -w '%{{redirect_url}}' '{dialog}'")).await;
    let home = sh(&format!("curl -s -o /dev/null -w '%{{redirect_url}}' '{callback}'")).await;
    assert!(
        home.starts_with("https://app.example.com/connected?account=acme-"),
        "{started} -> {callback} -> {home}"
    );
    // Sign-in with a JWT from the simulator's stand-in issuer, as the banner says: a tenant's
    // token sees its tenant's account only; a token signed after the issuer rotates its key works
    // at once; an expired one is refused saying so.
    let sim = text
        .split("Simulator  ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .expect("simulator url");
    assert!(
        text.contains(&format!("Sign-in    JWTs from {sim}/_sim/oidc are taken too")),
        "{text}"
    );
    let token = |claims: &str| {
        let cmd = format!("curl -s -X POST {sim}/_sim/oidc/token -d '{claims}'");
        async move {
            let issued: serde_json::Value = serde_json::from_str(&sh(&cmd).await).expect("token json");
            issued["id_token"].as_str().expect("id_token").to_string()
        }
    };
    let accounts_as = |token: String| {
        let cmd = format!("curl -s -w ' %{{http_code}}' {api}/accounts -H 'Authorization: Bearer {token}'");
        async move { sh(&cmd).await }
    };
    let reader = token(r#"{"sub": "ana", "wagate_tenant": "acme", "wagate_scopes": "read"}"#).await;
    let seen = accounts_as(reader).await;
    assert!(seen.ends_with(" 200") && seen.contains("\"name\":\"acme-"), "{seen}");
    assert!(
        !seen.contains("\"name\":\"sandbox\""),
        "another tenant's account: {seen}"
    );
    sh(&format!("curl -s -X POST {sim}/_sim/oidc/rotate")).await;
    let rotated = token(r#"{"sub": "ana", "wagate_scopes": "read"}"#).await;
    assert!(accounts_as(rotated).await.ends_with(" 200"));
    let expired = token(r#"{"sub": "ana", "expires_in": -600}"#).await;
    let refused = accounts_as(expired).await;
    assert!(refused.ends_with(" 401") && refused.contains("expired"), "{refused}");
    // A graceful stop on SIGTERM.
    let pid = child.id().expect("pid");
    sh(&format!("kill -TERM {pid}")).await;
    let status = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .expect("stops")
        .expect("wait");
    assert!(status.success(), "{status:?}");
}

#[tokio::test]
async fn bad_configuration_stops_startup_with_one_line_per_problem() {
    let out = wagate()
        .env("WAGATE_BIND", "nowhere")
        .env("WHATSAPP_ACCESS_TOKEN", "x")
        .env("WAGATE_DATABASE_URL", "mysql://db")
        .arg("serve")
        .output()
        .await
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "WAGATE_BIND",
        "WAGATE_DATABASE_URL",
        "WHATSAPP_PHONE_NUMBER_ID is not set",
        "WHATSAPP_APP_SECRET is not set",
    ] {
        assert!(
            err.lines().any(|l| l.contains(needle)),
            "no line about {needle}:\n{err}"
        );
    }
}

#[tokio::test]
async fn config_print_keys_create_migrate_and_openapi() {
    let dir = temp_dir();
    let out = wagate().args(["config", "print"]).output().await.expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("[webhook]") && text.contains("unknown_accounts"),
        "{text}"
    );

    let db = format!("sqlite://{}", dir.join("k.db").display());
    let out = wagate()
        .args(["migrate", "--database-url", &db])
        .output()
        .await
        .expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = wagate()
        .args([
            "keys",
            "create",
            "--name",
            "ci",
            "--scopes",
            "read",
            "--database-url",
            &db,
        ])
        .output()
        .await
        .expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let key = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(key.starts_with("wg_") && key.len() > 40, "{key}");
    let out = wagate()
        .args(["keys", "create", "--scopes", "root", "--database-url", &db])
        .output()
        .await
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("root"));
    // Its life from the command line: listed (never shown again), rotated, revoked.
    let keys = |args: &'static [&'static str]| {
        let db = db.clone();
        async move {
            let out = wagate()
                .arg("keys")
                .args(args)
                .args(["--database-url", &db])
                .output()
                .await
                .expect("run");
            (
                out.status.success(),
                String::from_utf8_lossy(&out.stdout).to_string(),
                String::from_utf8_lossy(&out.stderr).to_string(),
            )
        }
    };
    let (ok, listed, err) = keys(&["list"]).await;
    assert!(ok, "{err}");
    assert!(
        listed.contains("ci") && listed.contains("read") && listed.contains("active"),
        "{listed}"
    );
    assert!(!listed.contains(&key), "a key is shown only when created");
    let (ok, rotated, err) = keys(&["rotate", "ci", "--grace-seconds", "60"]).await;
    assert!(ok, "{err}");
    let rotated = rotated.trim().to_string();
    assert!(rotated.starts_with("wg_") && rotated != key, "{rotated}");
    assert!(err.contains("keeps working for 60 s"), "{err}");
    let (ok, _, err) = keys(&["revoke", "ci"]).await;
    assert!(
        !ok && err.contains("2 active keys") && err.contains("--all"),
        "both work during the grace period, and it says what to do: {err}"
    );
    let (_, listed, _) = keys(&["list"]).await;
    let new_id = listed
        .lines()
        .find(|l| l.contains(&rotated[..7]))
        .and_then(|l| l.split_whitespace().next())
        .expect("the new key is listed")
        .to_string();
    let out = wagate()
        .args(["keys", "revoke", &new_id, "--database-url", &db])
        .output()
        .await
        .expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (_, listed, _) = keys(&["list"]).await;
    assert!(
        listed.lines().any(|l| l.starts_with(&new_id) && l.ends_with("revoked")),
        "{listed}"
    );
    let (ok, _, err) = keys(&["revoke", "nosuch"]).await;
    assert!(!ok && err.contains("no API key"), "{err}");
    // The command line's actions are in the audit log, as `cli`.
    let store = wagate_store::connect(&db, &Default::default()).await.expect("open");
    let actions: Vec<(String, String)> = store
        .list_audit(None, None, Some("key."), None, 10)
        .await
        .expect("audit")
        .into_iter()
        .map(|e| (e.actor, e.action))
        .collect();
    let cli = |a: &str| ("cli".to_string(), a.to_string());
    assert_eq!(
        actions,
        [cli("key.revoked"), cli("key.rotated"), cli("key.created")],
        "newest first"
    );

    let out = wagate().arg("openapi").output().await.expect("run");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("openapi json");
    assert!(doc["paths"]["/v1/messages"].is_object());

    let out = wagate()
        .args(["healthcheck", "http://127.0.0.1:9/health"])
        .output()
        .await
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
}

#[tokio::test]
async fn wagate_sim_takes_its_world_from_the_gateways_variables() {
    let receiver = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let hook = format!("http://{}/hook", receiver.local_addr().expect("addr"));
    let mut child = wagate()
        .env("WAGATE_SIM_BIND", "127.0.0.1:0")
        .env("WHATSAPP_ACCESS_TOKEN", "tok-123")
        .env("WHATSAPP_PHONE_NUMBER_ID", "5550001")
        .env("WHATSAPP_WABA_ID", "777")
        .env("WHATSAPP_APP_SECRET", "s3cret")
        .env("WAGATE_SIM_WEBHOOK_URL", &hook)
        .arg("sim")
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn sim");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let first = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .expect("line")
        .expect("read")
        .expect("some");
    let url = first
        .split("on ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .expect("url")
        .to_string();
    let http = reqwest::Client::new();
    let send = |token: &'static str, phone: &'static str| {
        http.post(format!("{url}/v23.0/{phone}/messages"))
            .bearer_auth(token)
            .json(&serde_json::json!({"messaging_product": "whatsapp", "to": "16505551234", "type": "template", "template": {"name": "hello_world", "language": {"code": "en_US"}}}))
            .send()
    };
    let bad = send("wrong", "5550001").await.expect("send");
    assert_eq!(bad.status().as_u16(), 401);
    let body: serde_json::Value = bad.json().await.expect("json");
    assert_eq!(body["error"]["code"], 190);
    let other = send("tok-123", "106540352242922").await.expect("send");
    assert_eq!(other.status().as_u16(), 400, "only the configured phone number exists");
    let ok = send("tok-123", "5550001").await.expect("send");
    assert_eq!(ok.status().as_u16(), 200);
    // The status webhook arrives at WAGATE_SIM_WEBHOOK_URL, signed with WHATSAPP_APP_SECRET, for WABA 777.
    let (mut socket, _) = tokio::time::timeout(Duration::from_secs(10), receiver.accept())
        .await
        .expect("webhook")
        .expect("accept");
    let mut buf = vec![0u8; 65536];
    let mut got = Vec::new();
    use tokio::io::AsyncReadExt;
    loop {
        let n = tokio::time::timeout(Duration::from_secs(5), socket.read(&mut buf))
            .await
            .expect("read")
            .expect("read");
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap_or(0))
                })
                .unwrap_or(0);
            if body.len() >= len {
                let sig = head
                    .lines()
                    .find_map(|l| l.strip_prefix("x-hub-signature-256: "))
                    .expect("signature header");
                assert!(wagate_core::signature::verify_hub(Some(sig), body.as_bytes(), ["s3cret"]).is_ok());
                assert!(body.contains("\"id\":\"777\""), "{body}");
                break;
            }
        }
        if n == 0 {
            panic!("connection closed early");
        }
    }
    let _ = child.kill().await;
}

#[tokio::test]
async fn wagate_prune_deletes_what_is_past_retention_and_says_so() {
    let dir = temp_dir();
    let db = format!("sqlite://{}", dir.join("wagate.db").display());
    std::fs::write(dir.join("wagate.toml"), "[retention]\nevents_days = 0\n").expect("config");
    let out = wagate()
        .args(["migrate", "--database-url", &db])
        .output()
        .await
        .expect("run wagate migrate");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = wagate()
        .current_dir(&dir)
        .env("WAGATE_CONFIG", dir.join("wagate.toml"))
        .args(["prune", "--database-url", &db])
        .output()
        .await
        .expect("run wagate prune");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("journal, processed (7 d)"), "{stdout}");
    assert!(stdout.contains("events (kept)"), "a 0 keeps them: {stdout}");
    assert!(stdout.contains("media files deleted"), "{stdout}");
}

/// Runs the binary; (exit code, stdout, stderr).
async fn run(cmd: &mut Command) -> (Option<i32>, String, String) {
    let out = cmd.output().await.expect("run wagate");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[tokio::test]
async fn the_cli_opens_the_gateways_secrets_and_never_makes_an_empty_database_or_a_new_key() {
    use wagate_core::seal::{MasterKey, Sealer};
    let dir = temp_dir();
    let path = dir.join("wagate.db");
    let db = format!("sqlite://{}", path.display());
    // A command that reads, on a database that is not there: refused, and nothing is created.
    let (code, _, err) = run(wagate().args(["keys", "list", "--database-url", &db])).await;
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("no database at") && err.contains("--database-url"),
        "{err}"
    );
    assert!(!path.exists(), "an empty database was created");

    // The gateway's database with its key file, and an account made through the API (its
    // secrets sealed under that key).
    let old = MasterKey::generate();
    let key_file = dir.join("wagate.master.key");
    std::fs::write(&key_file, format!("{old}\n")).expect("key file");
    let store = wagate_store::connect(
        &db,
        &wagate_store::ConnectOptions {
            sealer: Sealer::new(Some(MasterKey::parse(&old).expect("key")), vec![]),
            ..Default::default()
        },
    )
    .await
    .expect("open");
    store.migrate().await.expect("migrate");
    store
        .create_account(
            &wagate_store::NewApiAccount {
                name: "connected".into(),
                waba_id: "200000000000001".into(),
                access_token: "a-token".into(),
                app_secret: "a-secret".into(),
                verify_token: "a-verify".into(),
                ..Default::default()
            },
            wagate_engine::now_ms(),
        )
        .await
        .expect("account");
    drop(store);
    // `keys list` reads the key file as the gateway does (it said "no master key is set").
    let (code, out, err) = run(wagate().args(["keys", "list", "--database-url", &db])).await;
    assert_eq!(code, Some(0), "{err}");
    assert!(out.starts_with("ID"), "{out}");

    // Rotation writes the new key to the key file before it seals anything again, and keeps the
    // old key beside it: the gateway and the command line then need no variable.
    let new = MasterKey::generate();
    let (code, out, err) =
        run(wagate()
            .env("WAGATE_MASTER_KEY", &new)
            .args(["secrets", "rotate", "--database-url", &db]))
        .await;
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("sealed again under master key"), "{out}");
    assert!(err.contains("the new key is in"), "{err}");
    assert_eq!(std::fs::read_to_string(&key_file).expect("key file").trim(), new);
    let kept: Vec<String> = std::fs::read_dir(&dir)
        .expect("dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".previous"))
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(
        std::fs::read_to_string(dir.join(&kept[0])).expect("old key").trim(),
        old,
        "the old key is kept"
    );
    let (code, _, err) = run(wagate().args(["keys", "list", "--database-url", &db])).await;
    assert_eq!(code, Some(0), "opens with the new key file alone: {err}");

    // The key file lost: the gateway refuses to start, and makes no new key that would hide it.
    std::fs::rename(&key_file, dir.join("elsewhere.key")).expect("move");
    let (code, _, err) = run(wagate().env("WAGATE_GRAPH_URL", "http://127.0.0.1:9").args([
        "serve",
        "--bind",
        "127.0.0.1:0",
        "--database-url",
        &db,
    ]))
    .await;
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("is missing") && err.contains("no new key was made"),
        "{err}"
    );
    assert!(!key_file.exists(), "a new key file was written");
}

#[tokio::test]
async fn the_cli_says_what_it_means_and_ends_quietly() {
    // Each command has its own description.
    let (_, help, _) = run(wagate().arg("--help")).await;
    let line = |name: &str| {
        help.lines()
            .find(|l| l.trim_start().starts_with(&format!("{name} ")))
            .unwrap_or_default()
            .to_string()
    };
    assert!(line("doctor").contains("Check each account"), "{help}");
    assert!(line("accounts").contains("Accounts:"), "{help}");
    // `wagate config` alone prints the effective configuration: each value with its source,
    // secrets masked; `config defaults` the commented reference.
    let (code, out, err) = run(wagate()
        .env("WAGATE_BIND", "127.0.0.1:9999")
        .env("WAGATE_BOOTSTRAP_API_KEY", "wg_a_secret_nobody_sees")
        .arg("config"))
    .await;
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("[webhook]"), "{out}");
    assert!(
        out.lines().any(|l| l == "bind = \"127.0.0.1:9999\"  # environment"),
        "{out}"
    );
    assert!(
        out.lines().any(|l| l.starts_with("bootstrap_api_key = \"…\" (set)")),
        "{out}"
    );
    assert!(!out.contains("wg_a_secret_nobody_sees"), "{out}");
    let (code, out, _) = run(wagate().args(["config", "defaults"])).await;
    assert_eq!(code, Some(0));
    assert!(out.contains("# Meta's Graph API"), "{out}");
    // A reader that stops early ends the command quietly.
    let exe = env!("CARGO_BIN_EXE_wagate");
    let (code, _, err) = run(Command::new("bash")
        .arg("-c")
        .arg(format!("set -o pipefail; '{exe}' openapi | head -c 100 > /dev/null")))
    .await;
    assert_eq!(code, Some(0), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    // A WAGATE_LOG that names no level is refused, not taken as "log nothing".
    let (code, _, err) = run(wagate()
        .env("WAGATE_LOG", "nonsense_level")
        .args(["serve", "--bind", "127.0.0.1:0"]))
    .await;
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("WAGATE_LOG") && err.contains("nonsense_level"), "{err}");
    // An address in use names where it came from.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let dir = temp_dir();
    let db = format!("sqlite://{}", dir.join("wagate.db").display());
    let (code, _, err) = run(wagate()
        .env("WAGATE_BIND", &addr)
        .args(["serve", "--database-url", &db]))
    .await;
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains(&addr) && err.contains("WAGATE_BIND"), "{err}");
    // Key listing: columns line up whatever the names.
    for name in ["a", "a-much-longer-name"] {
        let (code, _, err) = run(wagate().args(["keys", "create", "--name", name, "--database-url", &db])).await;
        assert_eq!(code, Some(0), "{err}");
    }
    let (_, listed, _) = run(wagate().args(["keys", "list", "--database-url", &db])).await;
    let column = listed.lines().next().and_then(|h| h.find("NAME")).expect("header");
    for row in listed.lines().skip(1) {
        assert_eq!(row.find(" a").map(|i| i + 1), Some(column), "{listed}");
    }
}

#[tokio::test]
async fn logs_written_to_a_file_carry_no_colour_codes() {
    let dir = temp_dir();
    let log = dir.join("wagate.log");
    let file = std::fs::File::create(&log).expect("log file");
    let db = format!("sqlite://{}", dir.join("wagate.db").display());
    let mut child = wagate()
        .env("WAGATE_LOG", "info")
        .env("WAGATE_SIM_BIND", "127.0.0.1:0")
        .args(["serve", "--bind", "127.0.0.1:0", "--database-url", &db])
        .stdout(Stdio::null())
        .stderr(file)
        .spawn()
        .expect("run wagate serve");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let text = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("INFO") || tokio::time::Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let _ = child.kill().await;
    assert!(text.contains("INFO"), "a log line: {text}");
    assert!(!text.contains('\u{1b}'), "no ANSI codes in a file: {text:?}");
}

#[tokio::test]
async fn the_data_directory_is_found_from_anywhere() {
    let data = temp_dir();
    std::fs::write(data.join("wagate.toml"), "api_version = \"v22.0\"\n").expect("wagate.toml");
    let elsewhere = temp_dir();
    let in_data = |args: &[&str]| {
        let mut c = wagate();
        c.current_dir(&*elsewhere).env("WAGATE_DATA_DIR", &*data).args(args);
        c
    };
    let (code, _, err) = run(&mut in_data(&["keys", "create", "--name", "from-elsewhere"])).await;
    assert_eq!(code, Some(0), "{err}");
    assert!(data.join("wagate.db").exists(), "the database is in the data directory");
    assert!(!elsewhere.join("wagate.db").exists(), "not in the current one");
    let (code, out, err) = run(&mut in_data(&["keys", "list"])).await;
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("from-elsewhere"), "{out}");
    // Its wagate.toml is read too.
    let (_, out, _) = run(&mut in_data(&["config", "print"])).await;
    assert!(out.lines().any(|l| l == "api_version = \"v22.0\"  # file"), "{out}");
    let db = format!("database_url = \"sqlite://{}\"", data.join("wagate.db").display());
    assert!(out.lines().any(|l| l.starts_with(&db)), "{db} in:\n{out}");
}

#[tokio::test]
async fn revoking_by_name_during_a_rotation_and_stopping_early() {
    let dir = temp_dir();
    let db = dir.sqlite_url();
    let keys = |args: &[&str]| {
        let mut c = wagate();
        c.args(["keys"]).args(args).args(["--database-url", &db]);
        c
    };
    let (code, _, err) = run(&mut keys(&["create", "--name", "pair"])).await;
    assert_eq!(code, Some(0), "{err}");
    let (code, _, err) = run(&mut keys(&["rotate", "pair", "--grace-seconds", "3600"])).await;
    assert_eq!(code, Some(0), "{err}");
    // During the grace both are active: --all revokes the old and the new one.
    let (code, out, err) = run(&mut keys(&["revoke", "pair", "--all"])).await;
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out.lines().filter(|l| l.starts_with("revoked ")).count(), 2, "{out}");
    let (_, listed, _) = run(&mut keys(&["list"])).await;
    assert_eq!(listed.lines().filter(|l| l.ends_with("revoked")).count(), 2, "{listed}");

    // A reader that stops early: every command ends quietly (a long listing fills the pipe).
    let store = wagate_store::connect(&db, &Default::default()).await.expect("open");
    for i in 0..1500 {
        let (_, key) = wagate_engine::auth::new_key(&format!("bulk-{i}"), None, vec!["read".into()]);
        store.create_api_key(&key).await.expect("key");
    }
    drop(store);
    let exe = env!("CARGO_BIN_EXE_wagate");
    let (code, _, err) = run(Command::new("bash").arg("-c").arg(format!(
        "set -o pipefail; '{exe}' keys list --database-url '{db}' | head -c 100 > /dev/null"
    )))
    .await;
    assert_eq!(code, Some(0), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    // A start that fails (the simulator's port is taken) leaves no empty database behind.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let fresh = temp_dir();
    let (code, _, err) = run(wagate()
        .current_dir(&*fresh)
        .env("WAGATE_BIND", "127.0.0.1:0")
        .env("WAGATE_SIM_BIND", taken.local_addr().expect("addr").to_string())
        .arg("serve"))
    .await;
    assert_eq!(code, Some(1), "{err}");
    let left: Vec<_> = std::fs::read_dir(&*fresh)
        .expect("dir")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "a failed start left {left:?}");
}
