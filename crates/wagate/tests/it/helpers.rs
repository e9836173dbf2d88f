//! `spawn_app`: a gateway and a simulator wired to each other, plus helpers to drive them.

use std::future::Future;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::net::TcpListener;
use wagate_engine::config::{AccountConfig, Config, Overrides};
use wagate_engine::KeyPolicy;
use wagate_http::Gateway;
use wagate_sim::{SimConfig, Simulator};

pub const WABA: &str = "102290129340398";
pub const PHONE_ID: &str = "106540352242922";
/// The app secret of the shared fixture `webhook_signature_example.json`.
pub const APP_SECRET: &str = "0123456789abcdef0123456789abcdef";
pub const VERIFY_TOKEN: &str = "meatyhamhock";
pub const TOKEN: &str = "test-access-token";
pub const USER: &str = "16505551234";
/// The simulator's second business, the one "Connect WhatsApp" signs up.
pub const CONNECT_WABA: &str = "204060801020304";
pub const CONNECT_PHONE: &str = "305070901030507";
/// The master key of test gateways (base64 of 32 bytes).
pub const TEST_MASTER_KEY: &str = "dGVzdC1tYXN0ZXIta2V5LW9mLTMyLWJ5dGVzLWxvbmc=";

pub struct TestApp {
    pub gateway: Gateway,
    pub sim: Simulator,
    pub sim_url: String,
    pub url: String,
    pub key: String,
    pub http: reqwest::Client,
    /// The gateway's SQLite database and media files: removed when the test passes.
    pub _dir: wagate_store::testing::TestDir,
}

pub fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/../../testdata/meta/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

pub fn fixture_names() -> Vec<String> {
    let dir = format!("{}/../../testdata/meta", env!("CARGO_MANIFEST_DIR"));
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    names
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
    try_spawn_app_with(adjust).await.expect("gateway starts")
}

/// As [`spawn_app_with`], with the gateway's start error instead of a panic.
pub async fn try_spawn_app_with(adjust: impl FnOnce(&mut Config)) -> Result<TestApp, wagate_engine::StartError> {
    let sim_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind sim");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind gateway");
    let sim_url = format!("http://{}", sim_listener.local_addr().expect("addr"));
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let sim = Simulator::new(SimConfig {
        access_token: TOKEN.into(),
        app_secret: APP_SECRET.into(),
        webhook_url: Some(format!("{url}/webhooks/whatsapp")),
        status_delays: [Duration::from_millis(10); 3],
        ..SimConfig::default()
    });
    let served = sim.clone();
    tokio::spawn(async move { served.serve(sim_listener, std::future::pending()).await });

    let (mut config, _) = Config::load(None, &Default::default(), &Overrides::default()).expect("defaults");
    let dir = wagate_store::testing::TestDir::new("app");
    config.database_url = match wagate_store::testing::fresh_postgres_url().await {
        Some(url) => url,
        None => dir.sqlite_url(),
    };
    config.graph_url = sim_url.clone();
    config.media.dir = dir.join("media");
    let key = wagate_core::ids::secret("wg_test_", 16);
    config.bootstrap_api_key = Some(key.clone());
    // One key for every test gateway, so that a test that restarts on the same database opens
    // what the first start sealed.
    config.master_key = Some(wagate_core::seal::MasterKey::parse(TEST_MASTER_KEY).expect("test master key"));
    config.accounts = vec![AccountConfig {
        name: "acme".into(),
        waba_id: WABA.into(),
        phone_number_ids: vec![PHONE_ID.into()],
        access_token: Some(TOKEN.into()),
        access_token_file: None,
        messages_per_second: None,
        app_secret: Some(APP_SECRET.into()),
        app_secret_file: None,
        verify_token: Some(VERIFY_TOKEN.into()),
        verify_token_file: None,
    }];
    adjust(&mut config);
    let gateway = Gateway::start(config, listener, KeyPolicy::WhenNone).await?;
    Ok(TestApp {
        gateway,
        sim,
        sim_url,
        url,
        key,
        http: reqwest::Client::new(),
        _dir: dir,
    })
}

/// Waits for `check` to return `Some`, polling, up to 10 s; panics with `what` otherwise.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

impl TestApp {
    /// POSTs a webhook body signed with the app secret.
    pub async fn post_webhook(&self, body: &[u8]) -> reqwest::Response {
        self.http
            .post(format!("{}/webhooks/whatsapp", self.url))
            .header("content-type", "application/json")
            .header(
                "x-hub-signature-256",
                wagate_core::signature::sign_hub(APP_SECRET, body),
            )
            .body(body.to_vec())
            .send()
            .await
            .expect("webhook request")
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path).await
    }

    /// A GET with another API key; (status, JSON body or null).
    /// Holds the main database from another connection (SQLite: a write transaction;
    /// PostgreSQL: the messages table locked) until the returned connection is dropped:
    /// webhooks are still acknowledged (the journal is apart), but processing waits.
    pub async fn hold_database(&self) -> Box<dyn std::any::Any + Send> {
        use sqlx::Connection;
        let url = &self.gateway.state.config.database_url;
        if url.starts_with("postgres") {
            let mut c = sqlx::PgConnection::connect(url).await.expect("connect");
            sqlx::query("BEGIN").execute(&mut c).await.expect("begin");
            sqlx::query("LOCK TABLE messages IN EXCLUSIVE MODE")
                .execute(&mut c)
                .await
                .expect("lock");
            Box::new(c)
        } else {
            let mut c = sqlx::SqliteConnection::connect(url).await.expect("connect");
            sqlx::query("BEGIN IMMEDIATE").execute(&mut c).await.expect("lock");
            Box::new(c)
        }
    }

    pub async fn get_as(&self, key: &str, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.url))
            .bearer_auth(key)
            .send()
            .await
            .expect("request");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// A call with another key and an optional JSON body; (status, JSON body or null).
    pub async fn request_as(
        &self,
        key: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let mut r = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(key);
        if let Some(b) = body {
            r = r.json(b);
        }
        let r = r.send().await.expect("request");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// A hook as the store holds it, its secrets opened.
    pub async fn stored_hook(&self, id: &str) -> wagate_store::Hook {
        self.gateway
            .state
            .store
            .get_hook(&id.into())
            .await
            .expect("hook")
            .expect("the hook")
    }

    /// A bodiless call with the API key; (status, JSON body or null).
    async fn call(&self, method: reqwest::Method, path: &str) -> (u16, Value) {
        let r = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(&self.key)
            .send()
            .await
            .expect("request");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// GETs an absolute URL without an API key (metrics, the OpenAPI document, the simulator's
    /// control API) and reads the body as JSON.
    pub async fn get_json(&self, url: &str) -> Value {
        self.http
            .get(url)
            .send()
            .await
            .expect("request")
            .json()
            .await
            .expect("json body")
    }

    /// Like `get_json`, as text.
    pub async fn get_text(&self, url: &str) -> String {
        self.http
            .get(url)
            .send()
            .await
            .expect("request")
            .text()
            .await
            .expect("text body")
    }

    pub async fn delete(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::DELETE, path).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> (u16, Value) {
        self.send_json(reqwest::Method::PUT, path, body).await
    }

    /// Runs `wagate accounts ARGS` against this gateway with `stdin`; (success, stdout+stderr).
    pub async fn accounts_cli(&self, args: &[&str], stdin: &str) -> (bool, String) {
        use tokio::io::AsyncWriteExt;
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_wagate"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("WAGATE_URL", &self.url)
            .env("WAGATE_API_KEY", &self.key)
            .arg("accounts")
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run wagate accounts");
        let mut input = child.stdin.take().expect("stdin");
        input.write_all(stdin.as_bytes()).await.expect("write stdin");
        drop(input);
        let out = child.wait_with_output().await.expect("output");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr),
        )
    }

    pub async fn patch(&self, path: &str, body: &Value) -> (u16, Value) {
        self.send_json(reqwest::Method::PATCH, path, body).await
    }

    /// Changes the simulator's settings (`POST /_sim/settings`).
    pub async fn sim_settings(&self, settings: Value) {
        let r = self
            .http
            .post(format!("{}/_sim/settings", self.sim_url))
            .json(&settings)
            .send()
            .await
            .expect("settings");
        assert_eq!(r.status().as_u16(), 200, "{}", r.text().await.unwrap_or_default());
    }

    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.send_json(reqwest::Method::POST, path, body).await
    }

    /// A call with a JSON body and the API key; (status, JSON body or null).
    async fn send_json(&self, method: reqwest::Method, path: &str, body: &Value) -> (u16, Value) {
        let r = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(&self.key)
            .json(body)
            .send()
            .await
            .expect("request");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Every event in the log, oldest first.
    pub async fn events(&self) -> Vec<Value> {
        let mut all = Vec::new();
        let mut cursor = String::new();
        loop {
            let (status, body) = self.get(&format!("/v1/events?limit=500{cursor}")).await;
            assert_eq!(status, 200, "{body}");
            let page = body["data"].as_array().cloned().unwrap_or_default();
            if page.is_empty() {
                return all;
            }
            all.extend(page);
            cursor = format!("&cursor={}", body["next_cursor"]);
        }
    }

    /// Waits until the journal has nothing pending, then returns every event.
    pub async fn settled_events(&self) -> Vec<Value> {
        let store = self.gateway.state.store.clone();
        eventually("journal processed", || {
            let store = store.clone();
            async move { store.journal_counts().await.ok().filter(|c| c.pending == 0) }
        })
        .await;
        self.events().await
    }

    /// The simulated user sends a message (through the simulator's control API).
    pub async fn user_sends(&self, wa_id: &str, message: Value) -> Value {
        self.user_sends_to(PHONE_ID, wa_id, message).await
    }

    /// The simulated user writes to the business number `phone` (the connectable one, say).
    pub async fn user_sends_to(&self, phone: &str, wa_id: &str, message: Value) -> Value {
        let r = self
            .http
            .post(format!("{}/_sim/users/{wa_id}/messages?to={phone}", self.sim_url))
            .json(&message)
            .send()
            .await
            .expect("sim request");
        assert_eq!(r.status().as_u16(), 200);
        r.json().await.expect("json")
    }

    /// The user writes to us, and we wait until that opened the 24-hour window.
    pub async fn open_window(&self, wa_id: &str) {
        self.user_sends(wa_id, text("hi")).await;
        eventually("the window opens", || async {
            let (_, c) = self.get(&format!("/v1/contacts/{wa_id}")).await;
            (c["window"]["open"] == true).then_some(())
        })
        .await;
    }

    /// Sends each of Meta's send examples (testdata/meta/send_*_request.json) through the API
    /// (`query` such as `?wait=accepted`); returns (fixture name, message) for each. Template
    /// examples other than hello_world name templates the simulator does not have.
    pub async fn send_examples(&self, query: &str) -> Vec<(String, Value)> {
        let mut sent = Vec::new();
        for name in fixture_names() {
            let is_send = name.starts_with("send_") && name.ends_with("_request.json");
            if !is_send || (name.starts_with("send_template") && name != "send_template_hello_world_request.json") {
                continue;
            }
            let body: Value = serde_json::from_slice(&fixture(&name)).expect("json");
            let (status, m) = self.post(&format!("/v1/messages{query}"), &body).await;
            assert_eq!(status, 202, "{name}: {m}");
            sent.push((name, m));
        }
        assert!(sent.len() >= 15, "only {} send examples", sent.len());
        sent
    }

    /// Waits until the message reaches `status`; returns it.
    pub async fn message_reaches(&self, id: &str, status: &str) -> Value {
        eventually(&format!("message {id} reaches {status}"), || async {
            let (_, m) = self.get(&format!("/v1/messages/{id}")).await;
            (m["status"] == status).then_some(m)
        })
        .await
    }

    pub async fn fault(&self, fault: Value) {
        let r = self
            .http
            .post(format!("{}/_sim/faults", self.sim_url))
            .json(&fault)
            .send()
            .await
            .expect("fault");
        assert_eq!(r.status().as_u16(), 201);
    }

    pub async fn sim_sent(&self) -> Vec<Value> {
        let r = self.get_json(&format!("{}/_sim/sent", self.sim_url)).await;
        r["data"].as_array().cloned().unwrap_or_default()
    }
}

/// What the simulator at `sim_url` received as sends (`/_sim/sent`).
pub async fn sim_sent(http: &reqwest::Client, sim_url: &str) -> Vec<Value> {
    let r: Value = http
        .get(format!("{sim_url}/_sim/sent"))
        .send()
        .await
        .expect("sim")
        .json()
        .await
        .expect("json");
    r["data"].as_array().cloned().unwrap_or_default()
}

pub fn text(body: &str) -> Value {
    json!({"type": "text", "text": {"body": body}})
}

/// The real `wagate serve` binary on 127.0.0.1:0 with the test account, `config` as its
/// `wagate.toml` in `dir`, talking to the simulator at `sim_url`; its child and address.
pub async fn serve_binary(
    dir: &std::path::Path,
    config: &str,
    db: &str,
    sim_url: &str,
    key: &str,
) -> (tokio::process::Child, String) {
    serve_binary_with(dir, config, db, sim_url, key, &[]).await
}

/// [`serve_binary`] with more environment variables.
pub async fn serve_binary_with(
    dir: &std::path::Path,
    config: &str,
    db: &str,
    sim_url: &str,
    key: &str,
    env: &[(&str, &str)],
) -> (tokio::process::Child, String) {
    use tokio::io::AsyncBufReadExt;
    let path = dir.join("wagate.toml");
    std::fs::write(&path, config).expect("config");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_wagate"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("WAGATE_LOG", "warn")
        .env("WAGATE_CONFIG", &path)
        .env("WAGATE_BIND", "127.0.0.1:0")
        .env("WAGATE_DATABASE_URL", db)
        .env("WAGATE_GRAPH_URL", sim_url)
        .env("WAGATE_BOOTSTRAP_API_KEY", key)
        .env("WHATSAPP_ACCESS_TOKEN", TOKEN)
        .env("WHATSAPP_PHONE_NUMBER_ID", PHONE_ID)
        .env("WHATSAPP_WABA_ID", WABA)
        .env("WHATSAPP_APP_SECRET", APP_SECRET)
        .env("WHATSAPP_VERIFY_TOKEN", VERIFY_TOKEN)
        .envs(env.iter().copied())
        .current_dir(dir)
        .arg("serve")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn wagate serve");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    let addr = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.expect("read") {
            if let Some(rest) = line.strip_prefix("wagate listening on http://") {
                return rest.split_whitespace().next().map(str::to_string);
            }
        }
        None
    })
    .await
    .expect("the gateway starts")
    .expect("the listening line");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, addr)
}

/// A simulator on 127.0.0.1:0 for gateways started as real binaries: no webhook target yet (set
/// it once the gateway's address is known), fast statuses, Meta's retries in minutes.
pub async fn start_sim() -> (Simulator, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind sim");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let sim = Simulator::new(SimConfig {
        access_token: TOKEN.into(),
        app_secret: APP_SECRET.into(),
        webhook_url: None,
        status_delays: [Duration::from_millis(10); 3],
        webhook_retry_scale: 0.0001,
        ..SimConfig::default()
    });
    let served = sim.clone();
    tokio::spawn(async move { served.serve(listener, std::future::pending()).await });
    (sim, url)
}

/// The user's contact as the gateway at `base` shows it, once their window is open.
pub async fn window_open_at(http: &reqwest::Client, base: &str, key: &str, wa_id: &str) {
    eventually("the window opens", || async {
        let c: Value = http
            .get(format!("{base}/v1/contacts/{wa_id}"))
            .bearer_auth(key)
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        (c["window"]["open"] == true).then_some(())
    })
    .await;
}

/// One text column of a query, exactly as the database holds it (no gateway in between).
pub async fn raw_texts(url: &str, sql: &str) -> Vec<String> {
    let rows: Vec<(String,)> = if url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(url).await.expect("open sqlite");
        sqlx::query_as(sql).fetch_all(&pool).await.expect("rows")
    } else {
        let pool = sqlx::PgPool::connect(url).await.expect("open postgres");
        sqlx::query_as(sql).fetch_all(&pool).await.expect("rows")
    };
    rows.into_iter().map(|r| r.0).collect()
}

/// Tenant alpha's account `alpha-shop` (a business that is not the simulator's), made straight
/// in the store and read by the gateway.
pub async fn alpha_shop(app: &TestApp) -> wagate_store::Account {
    let account = app
        .gateway
        .state
        .store
        .create_account(
            &wagate_store::NewApiAccount {
                name: "alpha-shop".into(),
                waba_id: "200000000000001".into(),
                access_token: "alpha-token".into(),
                app_secret: "alpha-secret".into(),
                verify_token: "alpha-verify".into(),
                phone_numbers: vec![wagate_store::PhoneNumberInfo {
                    phone_number_id: "200000000000011".into(),
                    ..Default::default()
                }],
                tenant: Some("alpha".into()),
                ..Default::default()
            },
            wagate_engine::now_ms(),
        )
        .await
        .expect("alpha's account");
    app.gateway.state.reload_accounts().await;
    account
}

/// Loads a card; (status, answer).
pub async fn put_card(app: &TestApp, currency: &str, effective: &str, csv: &str) -> (u16, Value) {
    let r = app
        .http
        .put(format!(
            "{}/v1/rates?currency={currency}&effective={effective}",
            app.url
        ))
        .bearer_auth(&app.key)
        .header("content-type", "text/csv")
        .body(csv.to_string())
        .send()
        .await
        .expect("put");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// A hello_world template to `to`, followed until Meta delivered it.
pub async fn template_delivered(app: &TestApp, to: &str) {
    let (status, m) = app
        .post(
            "/v1/messages",
            &json!({"to": to, "type": "template", "template": {"name": "hello_world", "language": {"code": "en_US"}}}),
        )
        .await;
    assert_eq!(status, 202, "{m}");
    app.message_reaches(m["id"].as_str().expect("id"), "read").await;
}

/// Runs the `wagate` binary with only `PATH` and these variables; (success, stdout+stderr).
pub async fn run_wagate(env: &[(&str, &str)], args: &[&str]) -> (bool, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_wagate"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .args(args)
        .output()
        .await
        .expect("run wagate");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr),
    )
}
