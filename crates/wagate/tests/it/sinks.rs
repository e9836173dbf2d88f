//! Hooks whose URL names a broker (issue 30): events published to NATS JetStream, Redis
//! Streams and RabbitMQ on this machine, read back with each broker's own client, signed as HTTP deliveries
//! are; a broker that is down or refuses is an attempt that failed and is retried; the URL's
//! password is sealed and never shown.

use serde_json::{json, Value};

use crate::helpers::*;

/// A gateway whose hooks may reach 127.0.0.1 and retry at once.
async fn app_with_sinks(schedule: Vec<u64>) -> TestApp {
    spawn_app_with(|c| {
        c.hooks.allow_private_networks = true;
        c.hooks.retry_schedule_seconds = schedule;
        c.hooks.timeout_seconds = 5;
    })
    .await
}

fn unique(prefix: &str) -> String {
    format!("{prefix}{}", rand::random::<u64>())
}

/// Verifies a Standard Webhooks signature carried as broker headers or fields.
fn verify(secret: &str, id: &str, timestamp: &str, signature: &str, body: &[u8]) -> Result<(), String> {
    let mut headers = reqwest::header::HeaderMap::new();
    for (k, v) in [
        ("webhook-id", id),
        ("webhook-timestamp", timestamp),
        ("webhook-signature", signature),
    ] {
        headers.insert(k, v.parse().map_err(|_| format!("header {k}"))?);
    }
    let wh = standardwebhooks::Webhook::new(secret).map_err(|e| e.to_string())?;
    wh.verify(body, &headers).map_err(|e| e.to_string())
}

/// A JetStream stream of its own for a test: (context, stream name, subject, stream).
async fn jetstream_stream() -> (
    async_nats::jetstream::Context,
    String,
    String,
    async_nats::jetstream::stream::Stream,
) {
    let nats = async_nats::connect("nats://127.0.0.1:4222")
        .await
        .expect("NATS on 4222");
    let js = async_nats::jetstream::new(nats);
    let (name, subject) = (unique("WAGATE_TEST_"), unique("wagate.test."));
    let stream = js
        .create_stream(async_nats::jetstream::stream::Config {
            name: name.clone(),
            subjects: vec![subject.clone()],
            ..Default::default()
        })
        .await
        .expect("a stream for the test's subject");
    (js, name, subject, stream)
}

/// A hook of `message.received` events to `url`, made.
async fn create_hook(app: &TestApp, url: &str) -> Value {
    let (status, hook) = app
        .post("/v1/hooks", &json!({"url": url, "events": ["message.received"]}))
        .await;
    assert_eq!(status, 201, "{hook}");
    hook
}

/// Verifies the signature carried by a broker message, `get` reading its headers or fields.
fn verify_carried(secret: &str, get: impl Fn(&str) -> String, body: &[u8]) -> Result<(), String> {
    verify(
        secret,
        &get("webhook-id"),
        &get("webhook-timestamp"),
        &get("webhook-signature"),
        body,
    )
}

async fn attempts(app: &TestApp, hook_id: &str) -> Vec<Value> {
    let (status, body) = app.get(&format!("/v1/hooks/{hook_id}/attempts")).await;
    assert_eq!(status, 200, "{body}");
    body["data"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn events_reach_a_jetstream_stream_signed_with_the_password_sealed() {
    let app = app_with_sinks(vec![0]).await;
    let (js, stream_name, subject, stream) = jetstream_stream().await;

    // The URL's password is taken out, sealed, and shown masked; NATS without authentication
    // accepts the credentials it is given.
    let url = format!("nats://wagate:s3cret-pw@127.0.0.1:4222/{subject}");
    let (status, hook) = app
        .post("/v1/hooks", &json!({"url": url, "events": ["message.received"]}))
        .await;
    assert_eq!(status, 201, "{hook}");
    assert_eq!(hook["url"], format!("nats://wagate:****@127.0.0.1:4222/{subject}"));
    assert!(!hook.to_string().contains("s3cret-pw"), "{hook}");
    assert_eq!(hook["headers"], json!({}), "the kept password is not a header: {hook}");
    let secret = hook["secret"].as_str().expect("secret").to_string();
    let id = hook["id"].as_str().expect("id").to_string();
    let stored = raw_texts(
        &app.gateway.state.config.database_url,
        "SELECT url || ' ' || headers FROM hooks",
    )
    .await;
    assert!(
        stored.iter().all(|s| !s.contains("s3cret-pw")),
        "the password is sealed at rest: {stored:?}"
    );

    app.user_sends(USER, text("first")).await;
    app.user_sends("16505550000", text("second")).await;
    let in_stream = &stream;
    eventually("two messages in the stream", || async move {
        in_stream.get_raw_message(2).await.ok()
    })
    .await;
    assert!(stream.get_raw_message(3).await.is_err(), "each event once");
    let mut texts = Vec::new();
    for seq in 1..=2 {
        let m = stream.get_raw_message(seq).await.expect("message");
        let h = &m.headers;
        let header = |name: &str| h.get(name).map(|v| v.as_str().to_string()).unwrap_or_default();
        let body: Value = serde_json::from_slice(&m.payload).expect("the event JSON");
        assert_eq!(body["type"], "message.received");
        assert_eq!(header("webhook-id"), body["id"].as_str().unwrap_or_default());
        assert_eq!(
            h.get(async_nats::header::NATS_MESSAGE_ID).map(|v| v.as_str()),
            Some(header("webhook-id").as_str()),
            "JetStream de-duplicates by event id"
        );
        assert_eq!(header("wagate-event-type"), "message.received");
        verify_carried(&secret, header, &m.payload).expect("the standardwebhooks crate verifies the signature");
        let mut tampered = m.payload.to_vec();
        tampered[5] ^= 1;
        assert!(verify_carried(&secret, header, &tampered).is_err());
        texts.push(body["payload"]["text"].as_str().unwrap_or_default().to_string());
    }
    assert_eq!(texts, ["first", "second"]);
    let a = eventually("the attempts are recorded", || async {
        let a = attempts(&app, &id).await;
        (a.len() == 2).then_some(a)
    })
    .await;
    assert!(
        a.iter().all(|a| a["succeeded"] == true && a["status_code"] == 200),
        "{a:?}"
    );

    // The masked URL sent back (an update) keeps the password; deliveries go on.
    let (status, updated) = app
        .patch(
            &format!("/v1/hooks/{id}"),
            &json!({"url": hook["url"], "description": "bus"}),
        )
        .await;
    assert_eq!(status, 200, "{updated}");
    let kept = app.stored_hook(&id).await;
    assert_eq!(
        wagate_engine::hooks::sinks::with_password(&kept.url, Some("x")),
        format!("nats://wagate:x@127.0.0.1:4222/{subject}")
    );
    assert!(kept.headers.contains("s3cret-pw"), "the password is still kept");
    js.delete_stream(&stream_name).await.expect("clean up");
}

#[tokio::test]
async fn events_reach_a_redis_stream_and_a_replay_publishes_them_again() {
    let app = app_with_sinks(vec![0]).await;
    let key = unique("wagate-test-");
    let since = wagate_core::time::rfc3339_ms(wagate_engine::now_ms() - 60_000);
    let hook = create_hook(&app, &format!("redis://127.0.0.1:6379/0?stream={key}&maxlen=1000")).await;
    let secret = hook["secret"].as_str().expect("secret").to_string();
    let id = hook["id"].as_str().expect("id").to_string();
    app.user_sends(USER, text("hello redis")).await;

    let client = redis::Client::open("redis://127.0.0.1:6379/0").expect("redis url");
    let mut con = client.get_multiplexed_async_connection().await.expect("Redis on 6379");
    type Entries = Vec<(String, Vec<(String, Vec<u8>)>)>;
    let read = |n: usize| {
        let (mut con, key) = (con.clone(), key.clone());
        async move {
            let entries: Entries = redis::cmd("XRANGE")
                .arg(&key)
                .arg("-")
                .arg("+")
                .query_async(&mut con)
                .await
                .ok()?;
            (entries.len() >= n).then_some(entries)
        }
    };
    let entries = eventually("the event in the stream", || read(1)).await;
    let fields: std::collections::HashMap<String, Vec<u8>> = entries[0].1.iter().cloned().collect();
    let field = |k: &str| String::from_utf8(fields.get(k).cloned().unwrap_or_default()).unwrap_or_default();
    let body: Value = serde_json::from_slice(&fields["body"]).expect("the event JSON");
    assert_eq!(body["payload"]["text"], "hello redis");
    assert_eq!(field("webhook-id"), body["id"].as_str().unwrap_or_default());
    assert_eq!(field("wagate-event-type"), "message.received");
    verify_carried(&secret, field, &fields["body"]).expect("signature verifies");

    // A replay publishes the range again, with the same event id.
    eventually("the delivery succeeded", || async {
        let a = attempts(&app, &id).await;
        (a.len() == 1 && a[0]["succeeded"] == true).then_some(())
    })
    .await;
    let (status, r) = app
        .post(&format!("/v1/hooks/{id}/replay"), &json!({"since": since}))
        .await;
    assert_eq!((status, r["queued"].as_u64()), (202, Some(1)), "{r}");
    let entries = eventually("the replayed event in the stream", || read(2)).await;
    let again: std::collections::HashMap<String, Vec<u8>> = entries[1].1.iter().cloned().collect();
    assert_eq!(again["webhook-id"], fields["webhook-id"]);
    let _: i64 = redis::cmd("DEL")
        .arg(&key)
        .query_async(&mut con)
        .await
        .expect("clean up");
}

#[tokio::test]
async fn a_broker_that_is_down_or_refuses_is_a_failed_attempt_retried_on_schedule() {
    let app = app_with_sinks(vec![0, 0]).await;
    // Nothing listens on port 1; no stream takes this subject.
    let (_, down) = app
        .post(
            "/v1/hooks",
            &json!({"url": "nats://127.0.0.1:1/wagate.down", "events": ["message.received"]}),
        )
        .await;
    let subject = unique("wagate.nostream.");
    let (_, refused) = app
        .post(
            "/v1/hooks",
            &json!({"url": format!("nats://127.0.0.1:4222/{subject}"), "events": ["message.received"]}),
        )
        .await;
    app.user_sends(USER, text("anyone there?")).await;
    for (hook, says) in [
        (&down, "cannot reach NATS"),
        (&refused, "no JetStream stream takes subject"),
    ] {
        let id = hook["id"].as_str().unwrap_or_default();
        let a = eventually("every attempt of the schedule is made", || async {
            let a = attempts(&app, id).await;
            (a.len() == 3).then_some(a)
        })
        .await;
        for attempt in &a {
            assert_eq!(attempt["succeeded"], false, "{attempt}");
            let error = attempt["error"].as_str().unwrap_or_default();
            assert!(error.contains(says), "{error}");
        }
        let h = eventually("the delivery is failed", || async {
            let (_, h) = app.get(&format!("/v1/hooks/{id}")).await;
            (h["health"]["failed"] == 1).then_some(h)
        })
        .await;
        assert_eq!(h["enabled"], true, "{h}");
    }
}

#[tokio::test]
async fn broker_urls_are_checked_and_what_does_not_apply_is_refused() {
    let app = app_with_sinks(vec![0]).await;
    for (body, field, says) in [
        (json!({"url": "nats://127.0.0.1:4222"}), "url", "names no subject"),
        (json!({"url": "redis://127.0.0.1:6379/0"}), "url", "names no stream"),
        (
            json!({"url": "redis://127.0.0.1:6379/0?stream=s&maxlen=-1"}),
            "url",
            "maxlen",
        ),
        (
            json!({"url": "amqp://guest:guest@127.0.0.1:5672/%2f?exchange=x"}),
            "url",
            "names no routing_key",
        ),
        (
            json!({"url": "sqs://orders?region=eu-west-1"}),
            "url",
            "not delivered by this gateway yet",
        ),
        (
            json!({"url": "nats://127.0.0.1:4222/a.b", "headers": {"X-Api-Key": "k"}}),
            "headers",
            "a broker takes no HTTP headers",
        ),
    ] {
        let (status, e) = app.post("/v1/hooks", &body).await;
        assert_eq!(status, 400, "{body}: {e}");
        assert_eq!(e["error"]["details"]["field"], field, "{e}");
        let message = e["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{message}");
        assert!(!e.to_string().contains("guest:guest"), "{e}");
    }
    let (_, listed) = app.get("/v1/hooks").await;
    assert_eq!(listed["data"], json!([]), "nothing was made");

    // Without private networks allowed, a broker on loopback is refused as an HTTP hook is.
    let strict = spawn_app().await;
    let (status, e) = strict
        .post("/v1/hooks", &json!({"url": "nats://127.0.0.1:4222/a.b"}))
        .await;
    assert_eq!(status, 400, "{e}");
    assert!(e.to_string().contains("loopback"), "{e}");
}

/// The texts in a JetStream stream, in the stream's order: (contact, message number, event id).
async fn stream_texts(stream: &async_nats::jetstream::stream::Stream) -> Vec<(String, usize, String)> {
    let mut out = Vec::new();
    let mut seq = 1;
    while let Ok(m) = stream.get_raw_message(seq).await {
        let body: Value = serde_json::from_slice(&m.payload).unwrap_or(Value::Null);
        let text = body["payload"]["text"].as_str().unwrap_or_default();
        if let Some((contact, n)) = text.split_once(" #") {
            out.push((
                contact.to_string(),
                n.parse().unwrap_or(usize::MAX),
                body["id"].as_str().unwrap_or_default().to_string(),
            ));
        }
        seq += 1;
    }
    out
}

#[tokio::test]
async fn a_kill_mid_stream_loses_no_event_and_keeps_each_contacts_order() {
    let http = reqwest::Client::new();
    let (sim, sim_url) = start_sim().await;
    let dir = wagate_store::testing::TestDir::new("sinks-kill");
    let db = match wagate_store::testing::fresh_postgres_url().await {
        Some(url) => url,
        None => format!("sqlite://{}", dir.join("wagate.db").display()),
    };
    let key = wagate_core::ids::secret("wg_test_", 16);
    let config = "[hooks]\nallow_private_networks = true\n";
    let env = [("WAGATE_MASTER_KEY", TEST_MASTER_KEY)];
    let (mut child, addr) = serve_binary_with(&dir, config, &db, &sim_url, &key, &env).await;
    sim.set_webhook_url(Some(format!("http://{addr}/webhooks/whatsapp")));

    let (js, stream_name, subject, stream) = jetstream_stream().await;
    let r = http
        .post(format!("http://{addr}/v1/hooks"))
        .bearer_auth(&key)
        .json(&json!({"url": format!("nats://127.0.0.1:4222/{subject}"), "events": ["message.received"], "ordered": true}))
        .send()
        .await
        .expect("hook");
    assert_eq!(r.status().as_u16(), 201, "{}", r.text().await.unwrap_or_default());

    // Five contacts write, one message after another, until the gateway is killed.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sender = {
        let (http, sim_url, stop) = (http.clone(), sim_url.clone(), stop.clone());
        tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0..2000usize {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                let contact = format!("1650555{:04}", i % 5);
                let r = http
                    .post(format!("{sim_url}/_sim/users/{contact}/messages"))
                    .json(&text(&format!("{contact} #{i}")))
                    .send()
                    .await;
                // 200: the gateway acknowledged it (202: it did not, Meta retries).
                if r.is_ok_and(|r| r.status().as_u16() == 200) {
                    acked.push((contact, i));
                }
            }
            acked
        })
    };
    let in_stream = &stream;
    eventually("deliveries under way", || async move {
        in_stream.get_raw_message(30).await.ok()
    })
    .await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    child.start_kill().expect("kill -9");
    child.wait().await.expect("killed");
    let acked = sender.await.expect("sender");
    let at_kill = stream_texts(&stream).await.len();

    let (_child, addr) = serve_binary_with(&dir, config, &db, &sim_url, &key, &env).await;
    sim.set_webhook_url(Some(format!("http://{addr}/webhooks/whatsapp")));
    // Within 30 s: on PostgreSQL the new gateway takes the dead one's leases over once it has
    // been silent for `cluster.dead_after_seconds`.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    let texts = loop {
        let texts = stream_texts(&stream).await;
        let got: std::collections::HashSet<(String, usize)> = texts.iter().map(|(c, n, _)| (c.clone(), *n)).collect();
        let missing = acked.iter().filter(|a| !got.contains(a)).count();
        if missing == 0 {
            break texts;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{missing} of {} acknowledged messages never reached the stream",
            acked.len()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let ids: std::collections::HashSet<&str> = texts.iter().map(|t| t.2.as_str()).collect();
    assert_eq!(ids.len(), texts.len(), "JetStream kept each event once");
    // The hook's order is its events' (event ids are time-ordered). On SQLite that is also the
    // order the contact wrote in; on PostgreSQL a webhook the dead gateway had claimed becomes an
    // event only when its claim is taken over, after newer ones (noted on issue 30).
    for contact in (0..5).map(|c| format!("1650555{c:04}")) {
        let events: Vec<&str> = texts.iter().filter(|t| t.0 == contact).map(|t| t.2.as_str()).collect();
        assert!(
            events.windows(2).all(|w| w[0] < w[1]),
            "{contact}'s events out of order: {events:?}"
        );
        let order: Vec<usize> = texts.iter().filter(|t| t.0 == contact).map(|t| t.1).collect();
        if !db.starts_with("postgres") {
            assert!(order.windows(2).all(|w| w[0] < w[1]), "{contact}'s order: {order:?}");
        }
    }
    eprintln!(
        "sinks: {} acknowledged, {at_kill} in the stream at the kill, all {} there after the restart, none twice",
        acked.len(),
        texts.len()
    );
    js.delete_stream(&stream_name).await.expect("clean up");
}

#[tokio::test]
async fn events_reach_a_rabbitmq_queue_confirmed_and_refusals_are_clear() {
    use lapin::options::{BasicGetOptions, QueueDeclareOptions, QueueDeleteOptions};
    let app = app_with_sinks(vec![0]).await;
    let connection = lapin::Connection::connect("amqp://guest:guest@127.0.0.1:5672/%2f", Default::default())
        .await
        .expect("RabbitMQ on 5672");
    let channel = connection.create_channel().await.expect("channel");
    let queue = unique("wagate-test-");
    channel
        .queue_declare(
            queue.as_str().into(),
            QueueDeclareOptions::default(),
            Default::default(),
        )
        .await
        .expect("a queue for the test");
    // The default exchange routes by queue name.
    let hook = create_hook(
        &app,
        &format!("amqp://guest:guest@127.0.0.1:5672/%2f?routing_key={queue}"),
    )
    .await;
    assert_eq!(
        hook["url"],
        format!("amqp://guest:****@127.0.0.1:5672/%2f?routing_key={queue}")
    );
    let secret = hook["secret"].as_str().expect("secret").to_string();
    // A routing key no queue takes, and an exchange that does not exist.
    let (_, unroutable) = app
        .post("/v1/hooks", &json!({"url": format!("amqp://guest:guest@127.0.0.1:5672/%2f?routing_key={}", unique("nobody-")), "events": ["message.received"]}))
        .await;
    let (_, no_exchange) = app
        .post("/v1/hooks", &json!({"url": "amqp://guest:guest@127.0.0.1:5672/%2f?exchange=wagate-missing&routing_key=k", "events": ["message.received"]}))
        .await;
    app.user_sends(USER, text("hello rabbit")).await;

    let got = eventually("the message in the queue", || async {
        channel
            .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: true })
            .await
            .ok()
            .flatten()
    })
    .await;
    let m = got.delivery;
    let body: Value = serde_json::from_slice(&m.data).expect("the event JSON");
    assert_eq!(body["payload"]["text"], "hello rabbit");
    assert_eq!(m.properties.delivery_mode(), &Some(2), "persistent");
    assert_eq!(
        m.properties.message_id().as_ref().map(|s| s.to_string()),
        body["id"].as_str().map(str::to_string)
    );
    let headers = m.properties.headers().clone().unwrap_or_default();
    let header = |k: &str| match headers.inner().get(k) {
        Some(lapin::types::AMQPValue::LongString(s)) => s.to_string(),
        _ => String::new(),
    };
    assert_eq!(header("wagate-event-type"), "message.received");
    verify_carried(&secret, header, &m.data).expect("signature verifies");

    for (hook, says) in [(&unroutable, "no queue takes"), (&no_exchange, "wagate-missing")] {
        let id = hook["id"].as_str().unwrap_or_default();
        let a = eventually("the refusal is recorded", || async {
            let a = attempts(&app, id).await;
            (!a.is_empty()).then_some(a)
        })
        .await;
        let error = a[0]["error"].as_str().unwrap_or_default();
        assert_eq!(a[0]["succeeded"], false);
        assert!(error.contains(says), "{error}");
    }
    channel
        .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
        .await
        .expect("clean up");
}
