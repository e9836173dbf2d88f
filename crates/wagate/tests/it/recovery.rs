//! Recovery after a crash, with the default configuration (issue 27): `kill -9` while 300
//! templates to 300 recipients drain through the governor, then a restart on the same database.
//! Every message that was never called is final within 30 s of the restart; one whose call had
//! started is in doubt (`in_doubt_until`) and, if Meta took it, settled by Meta's status webhook
//! within those 30 s; nothing reaches Meta twice. Hook deliveries held at the kill resume within
//! 15 s. `SIGTERM` gives back what the gateway holds and exits 0. Runs on SQLite, and on
//! PostgreSQL when `WAGATE_TEST_POSTGRES_URL` is set (there the restarted gateway takes over once
//! the dead one has been silent for `cluster.dead_after_seconds`).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::time::Instant;

use crate::helpers::*;

const TEMPLATES: usize = 300;

fn recipient(i: usize) -> String {
    format!("1650777{i:04}")
}

async fn database(dir: &std::path::Path) -> String {
    match wagate_store::testing::fresh_postgres_url().await {
        Some(url) => url,
        None => format!("sqlite://{}", dir.join("wagate.db").display()),
    }
}

async fn get(http: &reqwest::Client, url: &str, key: &str) -> Value {
    http.get(url)
        .bearer_auth(key)
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json")
}

/// Queues `n` hello_world templates, one to each of `n` recipients, in one batch; their ids.
async fn queue_templates(http: &reqwest::Client, url: &str, key: &str, n: usize) -> Vec<String> {
    let messages: Vec<Value> = (0..n)
        .map(|i| {
            json!({"to": recipient(i), "type": "template",
                   "template": {"name": "hello_world", "language": {"code": "en_US"}}})
        })
        .collect();
    let r = http
        .post(format!("{url}/v1/messages/batch"))
        .bearer_auth(key)
        .json(&json!({ "messages": messages }))
        .send()
        .await
        .expect("batch");
    assert_eq!(r.status().as_u16(), 200);
    let answer: Value = r.json().await.expect("json");
    assert_eq!(answer["queued"], n, "{answer}");
    answer["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|r| r["message"]["id"].as_str().expect("id").to_string())
        .collect()
}

/// Final for the sender: Meta answered (a wamid), or the send failed for good.
fn is_final(m: &Value) -> bool {
    m["wamid"].is_string() || ["failed", "cancelled", "unknown"].contains(&m["status"].as_str().unwrap_or(""))
}

#[tokio::test]
async fn after_a_kill_sends_are_final_within_30_seconds_and_none_twice() {
    let http = reqwest::Client::new();
    let (sim, sim_url) = start_sim().await;
    let dir = wagate_store::testing::TestDir::new("recovery-sends");
    let db = database(&dir).await;
    let key = wagate_core::ids::secret("wg_test_", 16);
    // The default configuration: no [sender] or [cluster] settings at all.
    let (mut child, addr) = serve_binary(&dir, "", &db, &sim_url, &key).await;
    let url = format!("http://{addr}");
    sim.set_webhook_url(Some(format!("{url}/webhooks/whatsapp")));
    // Meta takes 150 ms per send, so that calls are in flight at the kill.
    let r = http
        .post(format!("{sim_url}/_sim/faults"))
        .json(&json!({"delay_ms": 150, "count": 1_000_000, "path_contains": "/messages"}))
        .send()
        .await
        .expect("fault");
    assert_eq!(r.status().as_u16(), 201);

    let ids = queue_templates(&http, &url, &key, TEMPLATES).await;

    let deadline = Instant::now() + Duration::from_secs(60);
    while sim.sent_count() < TEMPLATES / 3 {
        assert!(Instant::now() < deadline, "sending never got going");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    child.start_kill().expect("kill -9");
    child.wait().await.expect("killed");
    let at_kill = sim.sent_count();
    assert!(at_kill < TEMPLATES, "the kill came after everything was sent");

    let (_child, addr) = serve_binary(&dir, "", &db, &sim_url, &key).await;
    let restarted = Instant::now();
    let url = format!("http://{addr}");
    sim.set_webhook_url(Some(format!("{url}/webhooks/whatsapp")));

    // Within 30 s every message is final, except those in doubt that never reached Meta: those
    // say until when they wait for Meta's status.
    let within = restarted + Duration::from_secs(30);
    let (settled_after, in_doubt) = loop {
        let reached: HashSet<String> = sim_recipients(&http, &sim_url).await.into_keys().collect();
        let mut open = Vec::new();
        let mut in_doubt = Vec::new();
        for id in &ids {
            let m = get(&http, &format!("{url}/v1/messages/{id}"), &key).await;
            if is_final(&m) {
                continue;
            }
            let to = m["wa_id"].as_str().unwrap_or_default().to_string();
            match m["in_doubt_until"].as_str() {
                Some(_) if !reached.contains(&to) => in_doubt.push(m),
                _ => open.push(m),
            }
        }
        if open.is_empty() {
            break (restarted.elapsed(), in_doubt);
        }
        assert!(
            Instant::now() < within,
            "{} messages not final 30 s after the restart (in doubt, never reached Meta: {}); e.g. {}",
            open.len(),
            in_doubt.len(),
            open[0]
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    // In doubt only because the call had started: at most the calls in flight at the kill.
    assert!(in_doubt.len() <= 16, "{} in doubt", in_doubt.len());
    for m in &in_doubt {
        assert_eq!(m["status"], "queued", "{m}");
    }
    let sent = sim_recipients(&http, &sim_url).await;
    let twice: Vec<_> = sent.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "reached Meta twice: {twice:?}");
    // One in doubt may have been sent since, once its wait for Meta's status ran out (it had
    // never reached Meta): then it counts once, as sent.
    let still_in_doubt = in_doubt
        .iter()
        .filter(|m| !sent.contains_key(m["wa_id"].as_str().unwrap_or_default()))
        .count();
    assert_eq!(
        sent.len() + still_in_doubt,
        TEMPLATES,
        "every message reached Meta once, or is in doubt"
    );
    eprintln!(
        "recovery: {at_kill} of {TEMPLATES} had reached Meta at the kill; all final {:.1} s after the restart ({} in doubt that never reached Meta); none twice",
        settled_after.as_secs_f64(),
        in_doubt.len()
    );
}

/// How many sends the simulator received per recipient.
async fn sim_recipients(http: &reqwest::Client, sim_url: &str) -> HashMap<String, usize> {
    let mut n = HashMap::new();
    for s in sim_sent(http, sim_url).await {
        *n.entry(s["body"]["to"].as_str().unwrap_or_default().to_string())
            .or_insert(0) += 1;
    }
    n
}

/// A hook receiver that holds every request until `open`, recording when each event arrived.
#[derive(Clone)]
struct Gate {
    url: String,
    open: tokio::sync::watch::Sender<bool>,
    arrivals: Arc<Mutex<Vec<(Instant, Value)>>>,
}

impl Gate {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        let (open, _) = tokio::sync::watch::channel(false);
        let gate = Self {
            url,
            open,
            arrivals: Arc::default(),
        };
        let state = gate.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |body: axum::body::Bytes| {
                let state = state.clone();
                async move {
                    let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    state.arrivals.lock().expect("lock").push((Instant::now(), value));
                    let mut open = state.open.subscribe();
                    let _ = open.wait_for(|o| *o).await;
                    "thanks"
                }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        gate
    }

    fn arrived(&self) -> usize {
        self.arrivals.lock().expect("lock").len()
    }
}

#[tokio::test]
async fn after_a_kill_hook_deliveries_resume_within_15_seconds() {
    let http = reqwest::Client::new();
    let (sim, sim_url) = start_sim().await;
    let dir = wagate_store::testing::TestDir::new("recovery-hooks");
    let db = database(&dir).await;
    let key = wagate_core::ids::secret("wg_test_", 16);
    let config = "[hooks]\nallow_private_networks = true\n";
    // Hook secrets are sealed: PostgreSQL needs the master key given.
    let env = [("WAGATE_MASTER_KEY", TEST_MASTER_KEY)];
    let (mut child, addr) = serve_binary_with(&dir, config, &db, &sim_url, &key, &env).await;
    let url = format!("http://{addr}");
    sim.set_webhook_url(Some(format!("{url}/webhooks/whatsapp")));
    let gate = Gate::start().await;
    // Meta's own format, as the issue found it.
    let r = http
        .post(format!("{url}/v1/hooks"))
        .bearer_auth(&key)
        .json(&json!({"url": gate.url, "format": "meta"}))
        .send()
        .await
        .expect("hook");
    assert_eq!(r.status().as_u16(), 201, "{}", r.text().await.unwrap_or_default());

    for i in 0..5 {
        let r = http
            .post(format!("{sim_url}/_sim/users/{USER}/messages"))
            .json(&text(&format!("before the crash {i}")))
            .send()
            .await
            .expect("user writes");
        assert_eq!(r.status().as_u16(), 200);
    }
    // The deliveries are claimed and in flight (the receiver holds them) when the gateway dies.
    let deadline = Instant::now() + Duration::from_secs(30);
    while gate.arrived() < 5 {
        assert!(Instant::now() < deadline, "the deliveries never started");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    child.start_kill().expect("kill -9");
    child.wait().await.expect("killed");
    let _ = gate.open.send(true);
    let before = gate.arrived();

    let (_child, addr) = serve_binary_with(&dir, config, &db, &sim_url, &key, &env).await;
    let restarted = Instant::now();
    sim.set_webhook_url(Some(format!("http://{addr}/webhooks/whatsapp")));
    let deadline = restarted + Duration::from_secs(15);
    while gate.arrived() < before + 5 {
        assert!(
            Instant::now() < deadline,
            "hook deliveries did not resume within 15 s of the restart ({} of 5 again)",
            gate.arrived() - before
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let arrivals = gate.arrivals.lock().expect("lock").clone();
    let again: Vec<&Value> = arrivals[before..].iter().map(|(_, v)| v).collect();
    let texts = |vs: &[&Value]| -> HashSet<String> {
        vs.iter()
            .filter_map(|v| v["entry"][0]["changes"][0]["value"]["messages"][0]["text"]["body"].as_str())
            .map(str::to_string)
            .collect()
    };
    let first: Vec<&Value> = arrivals[..before].iter().map(|(_, v)| v).collect();
    assert_eq!(texts(&again), texts(&first), "the same deliveries, again");
    assert_eq!(texts(&again).len(), 5);
    eprintln!(
        "recovery: hook deliveries resumed {:.1} s after the restart",
        (arrivals[before].0 - restarted).as_secs_f64()
    );
}

#[tokio::test]
async fn sigterm_gives_back_what_is_held_and_exits_0() {
    let http = reqwest::Client::new();
    let (sim, sim_url) = start_sim().await;
    let dir = wagate_store::testing::TestDir::new("recovery-sigterm");
    let db = database(&dir).await;
    let key = wagate_core::ids::secret("wg_test_", 16);
    let config = "[server]\nshutdown_seconds = 3\n[sender]\nmessages_per_second = 20\n";
    let (mut child, addr) = serve_binary(&dir, config, &db, &sim_url, &key).await;
    let url = format!("http://{addr}");
    sim.set_webhook_url(Some(format!("{url}/webhooks/whatsapp")));
    queue_templates(&http, &url, &key, 100).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while sim.sent_count() < 10 {
        assert!(Instant::now() < deadline, "sending never got going");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let pid = child.id().expect("pid");
    let asked = Instant::now();
    let term = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill -TERM");
    assert!(term.success());
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("the gateway exits within shutdown_seconds")
        .expect("wait");
    let exited_in = asked.elapsed();
    assert!(status.success(), "exit status {status:?}");
    // shutdown_seconds is 3 here.
    assert!(exited_in < Duration::from_secs(5), "took {exited_in:?}");
    let at_stop = sim.sent_count();
    assert!(at_stop < 100, "everything was sent before the stop");

    // Nothing waits for a lease: the next gateway sends the rest at once, none twice.
    let (_child, addr) = serve_binary(&dir, config, &db, &sim_url, &key).await;
    let restarted = Instant::now();
    sim.set_webhook_url(Some(format!("http://{addr}/webhooks/whatsapp")));
    let deadline = restarted + Duration::from_secs(20);
    loop {
        let sent = sim_recipients(&http, &sim_url).await;
        let twice: Vec<_> = sent.iter().filter(|(_, n)| **n > 1).collect();
        assert!(twice.is_empty(), "reached Meta twice: {twice:?}");
        if sent.len() == 100 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of 100 sent 20 s after the restart",
            sent.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "recovery: SIGTERM exit in {:.1} s with {at_stop} of 100 sent; the rest sent {:.1} s after the restart",
        exited_in.as_secs_f64(),
        restarted.elapsed().as_secs_f64()
    );
}
