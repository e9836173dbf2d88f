//! Hooks: events delivered to a capture receiver on 127.0.0.1:0, signed per Standard Webhooks
//! (checked with the independent `standardwebhooks` crate), retried from the store, recorded,
//! and replayable.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde_json::{json, Value};
use tokio::net::TcpListener;

use crate::helpers::*;

/// What the receiver got, and what it answers next (status, Retry-After); then 200.
#[derive(Default)]
struct Captured {
    got: Vec<(HeaderMap, Bytes)>,
    answers: VecDeque<(u16, Option<&'static str>)>,
    /// The body of the next successful answers (a two-way bot's reply).
    success_body: Option<String>,
}

#[derive(Clone)]
pub(crate) struct Receiver {
    pub(crate) url: String,
    inner: Arc<Mutex<Captured>>,
}

async fn receive(
    State(inner): State<Arc<Mutex<Captured>>>,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    let mut c = inner.lock().expect("lock");
    c.got.push((headers, body));
    match c.answers.pop_front() {
        Some((status, retry_after)) => {
            let status = StatusCode::from_u16(status).expect("status");
            match retry_after {
                Some(r) => (status, [("retry-after", r)], "not now").into_response(),
                None => (status, "failing on purpose").into_response(),
            }
        }
        None => match &c.success_body {
            Some(b) => (StatusCode::OK, [("content-type", "application/json")], b.clone()).into_response(),
            None => (StatusCode::OK, "thanks").into_response(),
        },
    }
}

impl Receiver {
    pub(crate) async fn start() -> Self {
        Self::on(TcpListener::bind("127.0.0.1:0").await.expect("bind")).await
    }

    pub(crate) async fn on(listener: TcpListener) -> Self {
        let inner = Arc::new(Mutex::new(Captured::default()));
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(inner.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, inner }
    }

    fn answer(&self, status: u16, times: usize, retry_after: Option<&'static str>) {
        let mut c = self.inner.lock().expect("lock");
        for _ in 0..times {
            c.answers.push_back((status, retry_after));
        }
    }

    fn answer_with(&self, body: Value) {
        self.inner.lock().expect("lock").success_body = Some(body.to_string());
    }

    pub(crate) fn got(&self) -> Vec<(HeaderMap, Value)> {
        self.inner
            .lock()
            .expect("lock")
            .got
            .iter()
            .map(|(h, b)| (h.clone(), serde_json::from_slice(b).unwrap_or(Value::Null)))
            .collect()
    }

    fn raw(&self) -> Vec<(HeaderMap, Bytes)> {
        self.inner.lock().expect("lock").got.clone()
    }

    pub(crate) async fn has(&self, n: usize) -> Vec<(HeaderMap, Value)> {
        eventually(&format!("the receiver has {n} deliveries"), || async {
            let got = self.got();
            (got.len() >= n).then_some(got)
        })
        .await
    }
}

/// A gateway whose hooks may reach 127.0.0.1 and retry at once.
async fn app_with_hooks(schedule: Vec<u64>) -> TestApp {
    spawn_app_with(|c| {
        c.hooks.allow_private_networks = true;
        c.hooks.retry_schedule_seconds = schedule;
    })
    .await
}

impl TestApp {
    async fn create_hook(&self, body: Value) -> Value {
        let (status, hook) = self.post("/v1/hooks", &body).await;
        assert_eq!(status, 201, "{hook}");
        hook
    }

    async fn attempts(&self, hook_id: &str) -> Vec<Value> {
        let (status, body) = self.get(&format!("/v1/hooks/{hook_id}/attempts")).await;
        assert_eq!(status, 200, "{body}");
        body["data"].as_array().cloned().unwrap_or_default()
    }
}

fn verify(secret: &str, headers: &HeaderMap, body: &[u8]) -> Result<(), String> {
    let wh = standardwebhooks::Webhook::new(secret).map_err(|e| e.to_string())?;
    wh.verify(body, headers).map_err(|e| e.to_string())
}

#[tokio::test]
async fn a_users_message_reaches_the_hook_signed_per_standard_webhooks() {
    let app = app_with_hooks(vec![0]).await;
    let receiver = Receiver::start().await;
    let hook = app
        .create_hook(json!({"url": receiver.url, "events": ["message.received"], "headers": {"X-Api-Key": "k1"}, "description": "CRM"}))
        .await;
    let secret = hook["secret"].as_str().expect("the secret, shown once").to_string();
    assert!(secret.starts_with("whsec_"), "{hook}");
    let id = hook["id"].as_str().expect("id").to_string();
    let (_, listed) = app.get("/v1/hooks").await;
    assert!(
        listed["data"][0].get("secret").is_none(),
        "the secret is never shown again: {listed}"
    );

    app.user_sends(USER, text("Where is my order?")).await;
    let got = receiver.has(1).await;
    let (headers, body) = &got[0];
    assert_eq!(body["type"], "message.received");
    assert_eq!(body["payload"]["text"], "Where is my order?");
    assert_eq!(
        headers["webhook-id"].to_str().ok(),
        body["id"].as_str(),
        "webhook-id is the event id"
    );
    assert_eq!(headers["x-api-key"], "k1");
    assert_eq!(headers["content-type"], "application/json");
    let raw = receiver.raw();
    verify(&secret, &raw[0].0, &raw[0].1).expect("the standardwebhooks crate verifies our signature");
    assert!(verify("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", &raw[0].0, &raw[0].1).is_err());
    let mut tampered = raw[0].1.to_vec();
    tampered[10] ^= 1;
    assert!(verify(&secret, &raw[0].0, &tampered).is_err());

    // Every attempt is recorded; the hook's health and the event's deliveries show it.
    let attempts = eventually("the attempt is recorded", || async {
        let a = app.attempts(&id).await;
        (!a.is_empty()).then_some(a)
    })
    .await;
    assert_eq!(attempts[0]["succeeded"], true);
    assert_eq!(attempts[0]["status_code"], 200);
    assert_eq!(attempts[0]["response_excerpt"], "thanks");
    let (_, h) = app.get(&format!("/v1/hooks/{id}")).await;
    assert_eq!(h["health"]["success_rate"], 1.0, "{h}");
    assert_eq!(h["description"], "CRM");
    let (_, e) = app
        .get(&format!("/v1/events/{}", body["id"].as_str().unwrap_or_default()))
        .await;
    assert_eq!(e["deliveries"][0]["state"], "succeeded", "{e}");
    assert_eq!(e["deliveries"][0]["hook_id"], id.as_str());

    // Only what the filter takes: the statuses of our own sends do not reach this hook.
    let (status, m) = app
        .post(
            "/v1/messages",
            &json!({"to": USER, "type": "text", "text": {"body": "on its way"}}),
        )
        .await;
    assert_eq!(status, 202, "{m}");
    app.message_reaches(m["id"].as_str().unwrap_or_default(), "read").await;
    app.user_sends(USER, text("thanks")).await;
    let got = receiver.has(2).await;
    assert!(got.iter().all(|(_, b)| b["type"] == "message.received"), "{got:?}");
}

#[tokio::test]
async fn failures_are_retried_from_the_store_until_the_receiver_takes_it() {
    let app = app_with_hooks(vec![0, 0, 0, 0]).await;
    let receiver = Receiver::start().await;
    receiver.answer(500, 3, None);
    let hook = app
        .create_hook(json!({"url": receiver.url, "events": ["message.*"]}))
        .await;
    let id = hook["id"].as_str().unwrap_or_default().to_string();
    app.user_sends(USER, text("hello")).await;
    let got = receiver.has(4).await;
    let ids: Vec<&str> = got.iter().filter_map(|(h, _)| h["webhook-id"].to_str().ok()).collect();
    assert!(
        ids.windows(2).all(|w| w[0] == w[1]),
        "one event, the same webhook-id each time: {ids:?}"
    );
    let attempts = eventually("four attempts recorded", || async {
        let a = app.attempts(&id).await;
        (a.len() == 4).then_some(a)
    })
    .await;
    let codes: Vec<i64> = attempts.iter().filter_map(|a| a["status_code"].as_i64()).collect();
    assert_eq!(codes, vec![200, 500, 500, 500], "newest first");
    assert_eq!(attempts[1]["error"], "HTTP 500");
    assert_eq!(attempts[1]["response_excerpt"], "failing on purpose");
    let (_, h) = app.get(&format!("/v1/hooks/{id}")).await;
    assert_eq!(h["health"]["attempts_failed"], 3);
    assert_eq!(h["health"]["pending"], 0);
}

#[tokio::test]
async fn a_delivery_that_runs_out_of_retries_fails_and_can_be_replayed() {
    let app = app_with_hooks(vec![0]).await;
    let receiver = Receiver::start().await;
    receiver.answer(503, 2, None);
    let hook = app
        .create_hook(json!({"url": receiver.url, "events": ["message.received"]}))
        .await;
    let id = hook["id"].as_str().unwrap_or_default().to_string();
    let since = wagate_core::time::rfc3339_ms(wagate_engine::now_ms() - 60_000);
    app.user_sends(USER, text("hello")).await;
    receiver.has(2).await;
    eventually("the delivery is failed", || async {
        let (_, h) = app.get(&format!("/v1/hooks/{id}")).await;
        (h["health"]["failed"] == 1).then_some(())
    })
    .await;
    let (status, r) = app
        .post(
            &format!("/v1/hooks/{id}/replay"),
            &json!({"since": since, "only_failed": true}),
        )
        .await;
    assert_eq!((status, r["queued"].as_u64()), (202, Some(1)), "{r}");
    let got = receiver.has(3).await;
    assert_eq!(got[2].0["webhook-id"], got[0].0["webhook-id"]);
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let app = app_with_hooks(vec![0, 0]).await;
    let receiver = Receiver::start().await;
    receiver.answer(429, 1, Some("120"));
    app.create_hook(json!({"url": receiver.url, "events": ["message.received"]}))
        .await;
    app.user_sends(USER, text("hello")).await;
    let got = receiver.has(1).await;
    let event_id = got[0].1["id"].as_str().unwrap_or_default().to_string();
    let e = eventually("the retry is scheduled", || async {
        let (_, e) = app.get(&format!("/v1/events/{event_id}")).await;
        (e["deliveries"][0]["attempts"] == 1).then_some(e)
    })
    .await;
    let next = e["deliveries"][0]["next_attempt_at"].as_str().unwrap_or_default();
    let next_ms = wagate_core::time::parse_time_ms(next).unwrap_or_default();
    assert!(
        next_ms - wagate_engine::now_ms() > 100_000,
        "the receiver asked for 120 s, the schedule says 0: {e}"
    );
    assert_eq!(receiver.got().len(), 1);
}

#[tokio::test]
async fn gone_disables_the_hook_tells_the_others_and_enable_turns_it_back_on() {
    let app = app_with_hooks(vec![0]).await;
    let leaving = Receiver::start().await;
    let watcher = Receiver::start().await;
    leaving.answer(410, 1, None);
    let gone = app
        .create_hook(json!({"url": leaving.url, "events": ["message.received"]}))
        .await;
    let gone_id = gone["id"].as_str().unwrap_or_default().to_string();
    app.create_hook(json!({"url": watcher.url, "events": ["hook.disabled"]}))
        .await;
    app.user_sends(USER, text("hello")).await;
    let told = watcher.has(1).await;
    assert_eq!(told[0].1["type"], "hook.disabled");
    assert_eq!(told[0].1["payload"]["hook_id"], gone_id.as_str());
    assert!(told[0].1["payload"]["reason"]
        .as_str()
        .unwrap_or_default()
        .contains("410"));
    let (_, h) = app.get(&format!("/v1/hooks/{gone_id}")).await;
    assert_eq!(h["enabled"], false);
    assert!(h["disabled_reason"].as_str().unwrap_or_default().contains("410"), "{h}");

    // Disabled: nothing more goes out. Enabled again: the pending delivery goes out.
    app.user_sends(USER, text("while disabled")).await;
    let (status, h) = app.post(&format!("/v1/hooks/{gone_id}/enable"), &json!({})).await;
    assert_eq!((status, &h["enabled"]), (200, &json!(true)), "{h}");
    let got = leaving.has(2).await;
    assert_eq!(
        got[1].1["payload"]["text"], "hello",
        "the delivery that was refused with 410 goes out again"
    );
}

#[tokio::test]
async fn a_receiver_down_for_a_while_gets_everything_afterwards_even_across_a_restart() {
    let db = wagate_store::testing::fresh_database_url().await;
    let hooks_config = |c: &mut wagate_engine::Config| {
        c.database_url = db.clone();
        c.hooks.allow_private_networks = true;
        c.hooks.retry_schedule_seconds = vec![0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1];
    };
    // A port with nobody listening: every attempt is refused.
    let parked = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = parked.local_addr().expect("addr");
    drop(parked);
    let app = spawn_app_with(&hooks_config).await;
    let hook = app
        .create_hook(json!({"url": format!("http://{addr}/hook"), "events": ["message.received"]}))
        .await;
    let id = hook["id"].as_str().unwrap_or_default().to_string();
    for i in 0..5 {
        app.user_sends(USER, text(&format!("message {i}"))).await;
    }
    eventually("attempts fail while the receiver is down", || async {
        let a = app.attempts(&id).await;
        (a.len() >= 5 && a.iter().all(|x| x["succeeded"] == false)).then_some(())
    })
    .await;
    let attempts = app.attempts(&id).await;
    assert!(
        attempts[0]["error"].as_str().unwrap_or_default().contains("onnect"),
        "{attempts:?}"
    );
    // The gateway restarts; the deliveries are in the store, not in memory.
    app.gateway.shutdown().await;
    let app = spawn_app_with(&hooks_config).await;
    let receiver = Receiver::on(TcpListener::bind(addr).await.expect("the same port again")).await;
    let got = receiver.has(5).await;
    let mut texts: Vec<String> = got
        .iter()
        .filter_map(|(_, b)| b["payload"]["text"].as_str().map(str::to_string))
        .collect();
    texts.sort();
    texts.dedup();
    assert_eq!(texts, (0..5).map(|i| format!("message {i}")).collect::<Vec<_>>());
    eventually("nothing pending", || async {
        let (_, h) = app.get(&format!("/v1/hooks/{id}")).await;
        (h["health"]["pending"] == 0).then_some(())
    })
    .await;
}

#[tokio::test]
async fn replay_since_a_time_delivers_exactly_the_matching_events() {
    let app = app_with_hooks(vec![0]).await;
    let since = wagate_core::time::rfc3339_ms(wagate_engine::now_ms() - 1000);
    app.user_sends(USER, text("before the hook 1")).await;
    app.user_sends("16505550000", text("another contact")).await;
    app.user_sends(USER, text("before the hook 2")).await;
    let events = eventually("three messages", || async {
        let e = app.settled_events().await;
        (e.iter().filter(|e| e["type"] == "message.received").count() == 3).then_some(e)
    })
    .await;
    let receiver = Receiver::start().await;
    let hook = app
        .create_hook(json!({"url": receiver.url, "events": ["message.received"], "contacts": [USER]}))
        .await;
    let id = hook["id"].as_str().unwrap_or_default();
    // A replay without its start is refused, naming the field, and queues nothing.
    let (status, r) = app.post(&format!("/v1/hooks/{id}/replay"), &json!({})).await;
    assert_eq!((status, &r["error"]["details"]["field"]), (400, &json!("since")), "{r}");
    // A new hook takes what comes from now on: nothing of the past arrives by itself.
    let (status, r) = app
        .post(&format!("/v1/hooks/{id}/replay"), &json!({"since": since}))
        .await;
    assert_eq!((status, r["queued"].as_u64()), (202, Some(2)), "{r}");
    let got = receiver.has(2).await;
    let mut texts: Vec<&str> = got.iter().filter_map(|(_, b)| b["payload"]["text"].as_str()).collect();
    texts.sort();
    assert_eq!(texts, vec!["before the hook 1", "before the hook 2"]);
    // One event again, by id.
    let first = events.iter().find(|e| e["type"] == "message.received").expect("event");
    let (status, r) = app
        .post(
            &format!("/v1/events/{}/replay", first["id"].as_str().unwrap_or_default()),
            &json!({"hook": id}),
        )
        .await;
    assert_eq!((status, r["queued"].as_u64()), (202, Some(1)), "{r}");
    receiver.has(3).await;
    assert_eq!(receiver.got().len(), 3);
}

#[tokio::test]
async fn a_rotated_secret_signs_beside_the_old_one_for_a_day() {
    let app = app_with_hooks(vec![0]).await;
    let receiver = Receiver::start().await;
    let hook = app
        .create_hook(json!({"url": receiver.url, "events": ["message.received"]}))
        .await;
    let old = hook["secret"].as_str().unwrap_or_default().to_string();
    let id = hook["id"].as_str().unwrap_or_default();
    let (status, r) = app.post(&format!("/v1/hooks/{id}/secret/rotate"), &json!({})).await;
    assert_eq!(status, 200, "{r}");
    let new = r["secret"].as_str().unwrap_or_default().to_string();
    assert_ne!(old, new);
    app.user_sends(USER, text("after rotation")).await;
    receiver.has(1).await;
    let raw = receiver.raw();
    let sig = raw[0].0["webhook-signature"].to_str().unwrap_or_default();
    assert_eq!(sig.split(' ').count(), 2, "{sig}");
    verify(&new, &raw[0].0, &raw[0].1).expect("the new secret verifies");
    verify(&old, &raw[0].0, &raw[0].1).expect("the old secret still verifies");
}

#[tokio::test]
async fn hooks_from_the_configuration_are_applied_at_start() {
    let receiver = Receiver::start().await;
    let url = receiver.url.clone();
    let app = spawn_app_with(move |c| {
        c.hooks.allow_private_networks = true;
        c.hooks.hook = vec![wagate_engine::config::HookConfig {
            name: "archive".into(),
            url,
            events: vec!["message.*".into()],
            accounts: vec!["acme".into()],
            contacts: vec![],
            headers: Default::default(),
            secret: Some("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into()),
            description: None,
            format: None,
            media: None,
            ordered: false,
        }];
    })
    .await;
    let (_, hooks) = app.get("/v1/hooks").await;
    assert_eq!(hooks["data"][0]["name"], "archive", "{hooks}");
    assert_eq!(hooks["data"][0]["source"], "config");
    assert_eq!(hooks["data"][0]["accounts"], json!(["acme"]));
    app.user_sends(USER, text("to the archive")).await;
    receiver.has(1).await;
    let raw = receiver.raw();
    verify("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", &raw[0].0, &raw[0].1).expect("signed with the configured secret");
}

/// An existing bot written for Meta's webhooks works behind wagate by changing its URL: it gets
/// Meta's bytes unchanged, signed with the app secret it already checks.
#[tokio::test]
async fn a_meta_format_hook_gets_metas_bytes_resigned_with_the_bots_secret() {
    let app = app_with_hooks(vec![0]).await;
    let bot = Receiver::start().await;
    let bots_secret = "the-app-secret-my-bot-already-checks";
    let hook = app
        .create_hook(json!({"url": bot.url, "format": "meta", "secret": bots_secret, "accounts": ["acme"]}))
        .await;
    assert_eq!(hook["format"], "meta");
    // Meta's bytes, non-ASCII escaped as Meta does, and odd spacing that a re-serialiser loses.
    let body = fixture("inbound_text.json");
    let mut sent = body.clone();
    sent.extend_from_slice(b"\n  ");
    assert_eq!(app.post_webhook(&sent).await.status().as_u16(), 200);
    let batch = fixture("status_read.json");
    assert_eq!(app.post_webhook(&batch).await.status().as_u16(), 200);
    bot.has(2).await;
    let raw = bot.raw();
    // Deliveries run concurrently, so they may arrive in either order.
    assert!(
        raw.iter().any(|r| r.1.as_ref() == sent.as_slice()),
        "byte for byte as Meta sent it"
    );
    assert!(raw.iter().any(|r| r.1.as_ref() == batch.as_slice()));
    for (headers, body) in &raw {
        let sig = headers["x-hub-signature-256"].to_str().ok();
        assert!(
            wagate_core::signature::verify_hub(sig, body, [bots_secret]).is_ok(),
            "the bot's own check passes"
        );
        assert!(headers.get("webhook-signature").is_none());
    }
    // Replay over a time range sends the bodies again.
    let id = hook["id"].as_str().unwrap_or_default();
    let since = wagate_core::time::rfc3339_ms(wagate_engine::now_ms() - 60_000);
    let (status, r) = app
        .post(&format!("/v1/hooks/{id}/replay"), &json!({"since": since}))
        .await;
    assert_eq!((status, r["queued"].as_u64()), (202, Some(2)), "{r}");
    bot.has(4).await;
    let again = bot.raw();
    assert!(again[2..].iter().any(|r| r.1.as_ref() == sent.as_slice()));
    assert!(again[2..].iter().any(|r| r.1.as_ref() == batch.as_slice()));
}

/// A two-way bot answers a message with the reply to send; wagate sends it as a reply to that
/// message, through the normal checks. A refused reply is recorded and becomes an event.
#[tokio::test]
async fn a_two_way_bots_reply_goes_out_and_a_refused_one_is_never_silently_lost() {
    let app = app_with_hooks(vec![0]).await;
    let bot = Receiver::start().await;
    bot.answer_with(json!({"reply": {"type": "text", "text": {"body": "It ships today!"}}}));
    let hook = app
        .create_hook(json!({"url": bot.url, "events": ["message.received"]}))
        .await;
    let id = hook["id"].as_str().unwrap_or_default().to_string();
    let sent = app.user_sends(USER, text("Where is my order?")).await;
    let wamid = sent["wamid"].as_str().unwrap_or_default().to_string();
    let reply = eventually("the reply reaches Meta", || async {
        app.sim_sent()
            .await
            .into_iter()
            .find(|m| m["body"]["text"]["body"] == "It ships today!" || m["text"]["body"] == "It ships today!")
    })
    .await;
    let reply_text = reply.to_string();
    assert!(
        reply_text.contains(&wamid),
        "sent as a reply to the user's message: {reply}"
    );
    let attempts = eventually("the attempt names the reply", || async {
        let a = app.attempts(&id).await;
        a.first().filter(|a| a["reply"]["message_id"].is_string()).cloned()
    })
    .await;
    let message_id = attempts["reply"]["message_id"].as_str().unwrap_or_default();
    app.message_reaches(message_id, "read").await;

    // A reply that fails the checks: recorded on the attempt, and an event.
    bot.answer_with(json!({"reply": {"type": "text", "text": {"body": ""}}}));
    app.user_sends(USER, text("And my invoice?")).await;
    let failed = eventually("the refusal is recorded", || async {
        let a = app.attempts(&id).await;
        a.into_iter().find(|a| a["reply"]["error"].is_string())
    })
    .await;
    assert_eq!(failed["succeeded"], true, "the delivery itself succeeded");
    assert!(
        failed["reply"]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("text.body"),
        "{failed}"
    );
    let events = eventually("a hook.reply_failed event", || async {
        let (_, e) = app.get("/v1/events?type=hook.reply_failed").await;
        e["data"].as_array().filter(|d| !d.is_empty()).cloned()
    })
    .await;
    assert_eq!(events[0]["payload"]["hook_id"], id.as_str());
}

/// Reads Server-Sent Events from a raw connection: (id, type, data) of each event, until `n`.
async fn read_sse(stream: &mut tokio::net::TcpStream, mut text: String, n: usize) -> Vec<(i64, String, Value)> {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 8192];
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        // Each event is written whole; chunk-size lines of the chunked encoding are skipped.
        let mut events = Vec::new();
        let (mut id, mut kind) = (None, None);
        for line in text.lines() {
            if let Some(v) = line.strip_prefix("id: ") {
                id = v.trim().parse::<i64>().ok();
            } else if let Some(v) = line.strip_prefix("event: ") {
                kind = Some(v.trim().to_string());
            } else if let Some(v) = line.strip_prefix("data: ") {
                if let (Some(i), Some(k), Ok(d)) = (id, kind.clone(), serde_json::from_str::<Value>(v)) {
                    events.push((i, k, d));
                }
            }
        }
        if events.len() >= n {
            return events;
        }
        let read = tokio::time::timeout_at(deadline, stream.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("only {} of {n} events arrived:\n{text}", events.len()))
            .expect("read");
        assert!(read > 0, "the stream closed:\n{text}");
        text.push_str(&String::from_utf8_lossy(&buf[..read]));
    }
}

/// Opens the stream and waits for its response head; returns what came after the head.
async fn open_stream(app: &TestApp, last_event_id: Option<i64>) -> (tokio::net::TcpStream, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = app.url.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let resume = last_event_id
        .map(|i| format!("Last-Event-ID: {i}\r\n"))
        .unwrap_or_default();
    s.write_all(
        format!(
            "GET /v1/events/stream?type=message.received HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nAccept: text/event-stream\r\n{resume}\r\n",
            app.key
        )
        .as_bytes(),
    )
    .await
    .expect("write");
    let mut text = String::new();
    let mut buf = [0u8; 4096];
    while !text.contains("\r\n\r\n") {
        let n = tokio::time::timeout(std::time::Duration::from_secs(10), s.read(&mut buf))
            .await
            .expect("the stream answers")
            .expect("read");
        assert!(n > 0, "closed before the head: {text}");
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        text.to_ascii_lowercase().contains("content-type: text/event-stream"),
        "{text}"
    );
    let rest = text
        .split_once("\r\n\r\n")
        .map(|(_, r)| r.to_string())
        .unwrap_or_default();
    (s, rest)
}

#[tokio::test]
async fn the_live_stream_resumes_from_last_event_id_without_gaps_or_duplicates() {
    let app = spawn_app().await;
    app.user_sends(USER, text("before the stream")).await;
    app.settled_events().await;
    let (mut live, rest) = open_stream(&app, None).await;
    // The stream is open once its head arrived; what is sent after is on it.
    for i in 0..3 {
        app.user_sends(USER, text(&format!("live {i}"))).await;
    }
    let first = read_sse(&mut live, rest, 3).await;
    let texts: Vec<&str> = first
        .iter()
        .filter_map(|(_, _, d)| d["payload"]["text"].as_str())
        .collect();
    assert_eq!(
        texts,
        vec!["live 0", "live 1", "live 2"],
        "only what came after it opened"
    );
    assert!(first
        .iter()
        .all(|(_, k, d)| k == "message.received" && d["type"] == "message.received"));
    assert!(first.windows(2).all(|w| w[0].0 < w[1].0), "in sequence order");
    let last_seen = first[2].0;
    drop(live);
    for i in 0..2 {
        app.user_sends(USER, text(&format!("while away {i}"))).await;
    }
    let (mut resumed, rest) = open_stream(&app, Some(last_seen)).await;
    let again = read_sse(&mut resumed, rest, 2).await;
    let texts: Vec<&str> = again
        .iter()
        .filter_map(|(_, _, d)| d["payload"]["text"].as_str())
        .collect();
    assert_eq!(
        texts,
        vec!["while away 0", "while away 1"],
        "every event after the last one seen, once"
    );
    assert!(again[0].0 > last_seen);
}

/// An ordered hook gets a contact's events one at a time: the next waits until the previous
/// one succeeded, however many retries that takes.
#[tokio::test]
async fn an_ordered_hook_gets_each_contacts_events_in_order_across_retries() {
    let app = app_with_hooks(vec![0, 0, 0, 0]).await;
    let receiver = Receiver::start().await;
    receiver.answer(500, 2, None);
    let hook = app
        .create_hook(json!({"url": receiver.url, "events": ["message.received"], "ordered": true}))
        .await;
    assert_eq!(hook["ordered"], true);
    // One batched webhook: all four are pending at once, as after a receiver outage.
    let batch: Vec<Value> = (0..4).map(|i| text(&format!("in order {i}"))).collect();
    app.user_sends(USER, Value::Array(batch)).await;
    let got = receiver.has(6).await;
    let texts: Vec<&str> = got.iter().filter_map(|(_, b)| b["payload"]["text"].as_str()).collect();
    assert_eq!(
        texts,
        vec![
            "in order 0",
            "in order 0",
            "in order 0",
            "in order 1",
            "in order 2",
            "in order 3"
        ],
        "the first is retried twice before the next goes"
    );
}

/// `wagate events replay` queues a range to a hook through the API and follows the deliveries.
#[tokio::test]
async fn the_cli_replays_a_range_to_a_hook_and_sums_it_up() {
    let app = app_with_hooks(vec![0]).await;
    let since = wagate_core::time::rfc3339_ms(wagate_engine::now_ms() - 1000);
    app.user_sends(USER, text("first")).await;
    app.user_sends(USER, text("second")).await;
    eventually("both stored", || async {
        let e = app.settled_events().await;
        (e.iter().filter(|e| e["type"] == "message.received").count() == 2).then_some(())
    })
    .await;
    let receiver = Receiver::start().await;
    let hook = app
        .create_hook(json!({"url": receiver.url, "events": ["message.received"]}))
        .await;
    let id = hook["id"].as_str().unwrap_or_default();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_wagate"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("WAGATE_API_KEY", &app.key)
        .args([
            "events", "replay", "--hook", id, "--since", &since, "--url", &app.url, "--wait", "20",
        ])
        .output()
        .await
        .expect("run wagate events replay");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("replayed 2 events to hook {id}: 2 delivered, 0 still pending")),
        "{stdout}"
    );
    assert_eq!(receiver.has(2).await.len(), 2);

    // A mistake gets one clear line and a failing exit.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_wagate"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("WAGATE_API_KEY", &app.key)
        .args([
            "events",
            "replay",
            "--hook",
            "hook_nope",
            "--since",
            "yesterday",
            "--url",
            &app.url,
        ])
        .output()
        .await
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--since `yesterday` is not a time"));
}

/// Media in deliveries: the event waits for a download still in progress, then carries the
/// bytes inline and a link the receiver can use without an API key, only as signed.
#[tokio::test]
async fn a_hook_gets_the_media_inline_and_a_signed_link_once_it_is_downloaded() {
    use base64::Engine;
    let app = app_with_hooks(vec![0]).await;
    let receiver = Receiver::start().await;
    app.create_hook(json!({"url": receiver.url, "events": ["message.received"], "media": "both"}))
        .await;
    // The first download fails, so the media is still pending when the event is made.
    app.fault(json!({"code": 131000, "http_status": 500, "count": 1, "path_contains": "/_sim/media"}))
        .await;
    let bytes: Vec<u8> = (0..5000u32).map(|i| (i * 13 % 251) as u8).collect();
    let image = json!({"type": "image", "image": {"data_base64": base64::engine::general_purpose::STANDARD.encode(&bytes), "mime_type": "image/jpeg"}});
    app.user_sends(USER, image).await;
    let got = receiver.has(1).await;
    let media = &got[0].1["payload"]["content"]["media"];
    assert_eq!(
        media["state"], "stored",
        "the delivery waited for the download: {media}"
    );
    let inline = base64::engine::general_purpose::STANDARD
        .decode(media["data_base64"].as_str().unwrap_or_default())
        .expect("base64");
    assert_eq!(inline, bytes);
    let link = media["signed_url"].as_str().expect("a signed link").to_string();
    let anonymous = reqwest::Client::new();
    let r = anonymous.get(format!("{}{link}", app.url)).send().await.expect("get");
    assert_eq!(r.status().as_u16(), 200, "no API key needed");
    assert_eq!(r.bytes().await.expect("bytes").as_ref(), bytes.as_slice());
    for (what, tampered) in [
        ("another expiry", link.replace("&expires=", "&expires=9")),
        ("another signature", format!("{}x", link)),
        (
            "no signature",
            link.split("&signature=").next().unwrap_or_default().to_string(),
        ),
    ] {
        let r = anonymous
            .get(format!("{}{tampered}", app.url))
            .send()
            .await
            .expect("get");
        assert!(matches!(r.status().as_u16(), 401 | 403), "{what}: {}", r.status());
    }
}
