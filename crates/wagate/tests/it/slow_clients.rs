//! The real binary under idle and slow connections, with small limits configured: Meta's
//! webhooks and `/health` still get through, and every slow or idle socket is closed within
//! its configured time.

use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::helpers::{serve_binary, start_sim, APP_SECRET, PHONE_ID, TOKEN, USER, WABA};

const HEADER_TIMEOUT: u64 = 1;
const IDLE_TIMEOUT: u64 = 2;
const WEBHOOK_TIMEOUT: u64 = 2;
const MAX_CONNECTIONS: usize = 64;
/// Slack on top of a configured time before a socket must be closed (a loaded CI machine).
const SLACK: Duration = Duration::from_secs(3);

/// Reads until the server closes the socket; returns what it sent, or `None` if it stays open
/// past `within`.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> Option<Vec<u8>> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(got),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

fn webhook_body(wamid: &str) -> Vec<u8> {
    json!({"object": "whatsapp_business_account", "entry": [{"id": WABA, "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"display_phone_number": "15550783881", "phone_number_id": PHONE_ID},
        "contacts": [{"profile": {"name": "Sheena"}, "wa_id": USER}],
        "messages": [{"from": USER, "id": wamid, "timestamp": "1751000000", "type": "text", "text": {"body": "still here"}}]}}]}]})
    .to_string()
    .into_bytes()
}

#[tokio::test]
async fn idle_and_slow_connections_cannot_lock_out_meta() {
    let sim = wagate_sim::Simulator::new(wagate_sim::SimConfig {
        access_token: TOKEN.into(),
        app_secret: APP_SECRET.into(),
        ..wagate_sim::SimConfig::default()
    });
    let sim_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let sim_url = format!("http://{}", sim_listener.local_addr().expect("addr"));
    tokio::spawn(sim.serve(sim_listener, std::future::pending()));

    let dir = wagate_store::testing::TestDir::new("slow");
    let config = format!(
        "[server]\nheader_timeout_seconds = {HEADER_TIMEOUT}\nidle_timeout_seconds = {IDLE_TIMEOUT}\n\
         webhook_timeout_seconds = {WEBHOOK_TIMEOUT}\nrequest_timeout_seconds = 10\nmax_connections = {MAX_CONNECTIONS}\n\
         [sender]\ngraph_timeout_seconds = 5\n"
    );
    let db = match wagate_store::testing::fresh_postgres_url().await {
        Some(url) => url,
        None => format!("sqlite://{}", dir.join("wagate.db").display()),
    };
    let key = wagate_core::ids::secret("wg_test_", 16);
    let (mut child, addr) = serve_binary(&dir, &config, &db, &sim_url, &key).await;

    // Over twice the connection cap of idle sockets.
    let mut idle = Vec::new();
    for _ in 0..(MAX_CONNECTIONS * 2 + 20) {
        idle.push(TcpStream::connect(&addr).await.expect("connect"));
    }
    // Slowloris: a request head trickled one line at a time, never finished.
    let mut slowloris = Vec::new();
    for i in 0..20 {
        let mut s = TcpStream::connect(&addr).await.expect("connect");
        s.write_all(format!("POST /webhooks/whatsapp HTTP/1.1\r\nHost: x\r\nX-Slow-{i}: 1\r\n").as_bytes())
            .await
            .expect("write");
        slowloris.push((Instant::now(), s));
    }
    let trickle: Vec<_> = slowloris
        .into_iter()
        .map(|(started, mut s)| {
            tokio::spawn(async move {
                for n in 0..40 {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    if s.write_all(format!("X-More-{n}: 1\r\n").as_bytes()).await.is_err() {
                        break;
                    }
                }
                (started, s)
            })
        })
        .collect();
    // A signed webhook whose body comes at one byte every 250 ms.
    let mut slow_bodies = Vec::new();
    for i in 0..5 {
        let body = webhook_body(&format!("wamid.slowbody{i}"));
        let sig = wagate_core::signature::sign_hub(APP_SECRET, &body);
        let mut s = TcpStream::connect(&addr).await.expect("connect");
        s.write_all(
            format!(
                "POST /webhooks/whatsapp HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Hub-Signature-256: {sig}\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        )
        .await
        .expect("write");
        slow_bodies.push((Instant::now(), body, s));
    }
    let dribble: Vec<_> = slow_bodies
        .into_iter()
        .map(|(started, body, mut s)| {
            tokio::spawn(async move {
                for b in body.iter().take(40) {
                    if s.write_all(&[*b]).await.is_err() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                (started, s)
            })
        })
        .collect();

    // Meta and a health check get through at once, on new connections, under all of that.
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    let base = format!("http://{addr}");
    for i in 0..5 {
        let health = http.get(format!("{base}/health")).send().await.expect("health answers");
        assert_eq!(health.status().as_u16(), 200);
        let body = webhook_body(&format!("wamid.meta{i}"));
        let r = http
            .post(format!("{base}/webhooks/whatsapp"))
            .header("content-type", "application/json")
            .header(
                "x-hub-signature-256",
                wagate_core::signature::sign_hub(APP_SECRET, &body),
            )
            .body(body)
            .send()
            .await
            .expect("a signed webhook is answered");
        assert_eq!(r.status().as_u16(), 200);
    }

    // Every trickled head is cut off once its head took longer than the header timeout.
    for t in trickle {
        let (started, mut s) = t.await.expect("trickle");
        let waited = started.elapsed();
        let within = (Duration::from_secs(HEADER_TIMEOUT) + SLACK).saturating_sub(waited);
        assert!(
            closed_within(&mut s, within).await.is_some(),
            "a trickled head was still open after {:?}",
            started.elapsed()
        );
    }
    // Every slow body is answered 408 in the error shape and closed.
    for d in dribble {
        let (started, mut s) = d.await.expect("dribble");
        let within = (Duration::from_secs(WEBHOOK_TIMEOUT) + SLACK).saturating_sub(started.elapsed());
        let got = closed_within(&mut s, within)
            .await
            .unwrap_or_else(|| panic!("a slow body was still open after {:?}", started.elapsed()));
        let text = String::from_utf8_lossy(&got);
        assert!(text.starts_with("HTTP/1.1 408"), "{text}");
        assert!(text.contains("\"code\":\"request_timeout\""), "{text}");
    }
    // Every idle socket is closed: the oldest to make room, the rest after the idle timeout.
    let idle_started = Instant::now();
    for mut s in idle {
        let within = (Duration::from_secs(IDLE_TIMEOUT) + SLACK).saturating_sub(idle_started.elapsed());
        assert!(
            closed_within(&mut s, within).await.is_some(),
            "an idle socket stayed open"
        );
    }

    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    for reason in ["header_timeout", "idle_timeout", "evicted", "request_timeout"] {
        let line = metrics
            .lines()
            .find(|l| l.starts_with("wagate_connections_closed_total") && l.contains(&format!("reason=\"{reason}\"")))
            .unwrap_or_else(|| panic!("no {reason} count in:\n{metrics}"));
        let n: f64 = line.rsplit(' ').next().and_then(|v| v.parse().ok()).unwrap_or_default();
        assert!(n >= 1.0, "{line}");
    }
    // The webhooks that got through were journalled and processed.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let events: serde_json::Value = http
            .get(format!("{base}/v1/events?type=message.received"))
            .bearer_auth(&key)
            .send()
            .await
            .expect("events")
            .json()
            .await
            .expect("json");
        let n = events["data"].as_array().map(Vec::len).unwrap_or_default();
        if n == 5 {
            break;
        }
        assert!(Instant::now() < deadline, "{events}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.start_kill();
}

/// Reads what the server answers within `within` (until it closes or stops sending).
async fn answer_within(stream: &mut TcpStream, within: Duration) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + within;
    while let Ok(Ok(n)) = tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
        if got.windows(4).any(|w| w == b"\r\n\r\n") && got.ends_with(b"}") {
            break;
        }
    }
    String::from_utf8_lossy(&got).to_string()
}

#[tokio::test]
async fn unsigned_oversized_and_stalled_requests_are_refused_without_holding_meta_out() {
    const MAX: usize = 16;
    let (_sim, sim_url) = start_sim().await;
    let dir = wagate_store::testing::TestDir::new("stall");
    // A long idle timeout, so that only the head's own deadline can close a trickled head.
    let config = format!(
        "[server]\nheader_timeout_seconds = 1\nidle_timeout_seconds = 60\nwebhook_timeout_seconds = 30\n\
         body_grace_seconds = 1\nmax_connections = {MAX}\n"
    );
    let db = match wagate_store::testing::fresh_postgres_url().await {
        Some(url) => url,
        None => format!("sqlite://{}", dir.join("wagate.db").display()),
    };
    let key = wagate_core::ids::secret("wg_test_", 16);
    let (mut child, addr) = serve_binary(&dir, &config, &db, &sim_url, &key).await;

    // A head trickled a byte at a time is closed at the header timeout, not the idle one.
    let mut trickled = TcpStream::connect(&addr).await.expect("connect");
    let started = Instant::now();
    trickled.write_all(b"P").await.expect("write");
    let trickle = tokio::spawn(async move {
        for b in b"OST /webhooks/whatsapp HTTP/1.1\r\nHost: x\r\n".iter() {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if trickled.write_all(&[*b]).await.is_err() {
                break;
            }
        }
        trickled
    });
    // No signature: 401 before any of the declared body; a length over the limit: 413 at once.
    for (head, status) in [
        ("POST /webhooks/whatsapp HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n", "401"),
        (
            "POST /webhooks/whatsapp HTTP/1.1\r\nHost: x\r\nX-Hub-Signature-256: sha256=zz\r\nContent-Length: 100\r\n\r\n",
            "403",
        ),
        (
            "POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 209715200\r\n\r\n",
            "413",
        ),
        (
            "POST /webhooks/whatsapp HTTP/1.1\r\nHost: x\r\nContent-Length: 209715200\r\n\r\n",
            "413",
        ),
    ] {
        let mut s = TcpStream::connect(&addr).await.expect("connect");
        s.write_all(head.as_bytes()).await.expect("write");
        let got = answer_within(&mut s, Duration::from_secs(1)).await;
        assert!(got.starts_with(&format!("HTTP/1.1 {status}")), "{head:?} -> {got}");
        assert!(got.contains("\"code\":"), "{got}");
    }
    // Every connection held by a well-formed but unverifiable signature whose body never comes.
    let mut held = Vec::new();
    for _ in 0..MAX {
        let mut s = TcpStream::connect(&addr).await.expect("connect");
        let sig = format!("sha256={}", "ab".repeat(32));
        s.write_all(
            format!("POST /webhooks/whatsapp HTTP/1.1\r\nHost: x\r\nX-Hub-Signature-256: {sig}\r\nContent-Length: 100\r\n\r\n")
                .as_bytes(),
        )
        .await
        .expect("write");
        held.push(s);
    }
    // Meta's signed webhook is still acknowledged within a second.
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    let body = webhook_body("wamid.through");
    let r = http
        .post(format!("http://{addr}/webhooks/whatsapp"))
        .header("content-type", "application/json")
        .header(
            "x-hub-signature-256",
            wagate_core::signature::sign_hub(APP_SECRET, &body),
        )
        .body(body)
        .send()
        .await
        .expect("a signed webhook is acknowledged within 1 s");
    assert_eq!(r.status().as_u16(), 200);
    // The stalled bodies: closed to make room, or cut with 408 after the grace.
    let mut cut = 0;
    for mut s in held {
        let got = answer_within(&mut s, Duration::from_secs(1) + SLACK).await;
        assert!(got.is_empty() || got.starts_with("HTTP/1.1 408"), "{got}");
        cut += usize::from(got.contains("\"code\":\"request_timeout\""));
    }
    assert!(cut > 0, "no stalled body was answered 408");
    let mut trickled = trickle.await.expect("trickle");
    assert!(
        closed_within(&mut trickled, Duration::from_secs(1) + SLACK)
            .await
            .is_some(),
        "a trickled head was still open after {:?}",
        started.elapsed()
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "closed by the header timeout"
    );
    let _ = child.start_kill();
}
