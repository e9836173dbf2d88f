//! Soak: the release binary under steady mixed traffic for a long time, against `wagate sim`
//! playing Meta. Inbound messages (every tenth an image the gateway downloads) come through the
//! simulator's signed webhooks; templates go out through the governor; a hook receiver refuses
//! one call in ten; API reads and an SSE reader run throughout. Every minute it prints the
//! gateway's RSS, open file descriptors, database size, journal and hook backlogs, and p99 per
//! route; at the end, after the backlog drains, what was lost and what was repeated.
//!
//!   cargo build --release -p wagate -p wagate-bench
//!   target/release/soak --minutes 30
//!
//! Options: --minutes N (30), --inbound per second (10), --sends per second (10), --reads per
//! second (5), --wagate PATH (the binary beside this one). Fails (exit 1) when anything
//! acknowledged was lost or sent twice.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Value};

mod common;

struct Args {
    minutes: u64,
    inbound: f64,
    sends: f64,
    reads: f64,
    wagate: Option<String>,
}

fn args() -> anyhow::Result<Args> {
    let mut a = Args {
        minutes: 30,
        inbound: 10.0,
        sends: 10.0,
        reads: 5.0,
        wagate: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--minutes" => a.minutes = value()?.parse()?,
            "--inbound" => a.inbound = value()?.parse()?,
            "--sends" => a.sends = value()?.parse()?,
            "--reads" => a.reads = value()?.parse()?,
            "--wagate" => a.wagate = Some(value()?),
            other => bail!("unknown option {other}"),
        }
    }
    Ok(a)
}

/// Latencies per route, for the current minute.
#[derive(Default)]
struct Latencies(Mutex<HashMap<&'static str, Vec<f64>>>);

impl Latencies {
    fn record(&self, route: &'static str, since: Instant) {
        let ms = since.elapsed().as_secs_f64() * 1000.0;
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(route)
            .or_default()
            .push(ms);
    }

    fn take(&self) -> HashMap<&'static str, Vec<f64>> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

const ROUTES: [&str; 3] = ["inbound (Meta → ack)", "POST /v1/messages", "GET reads"];

/// What the traffic did and saw.
#[derive(Default)]
struct Tally {
    /// Inbound wamids Meta had acknowledged by the gateway.
    inbound_acked: Mutex<Vec<String>>,
    /// Message ids the API accepted (202).
    sends_accepted: Mutex<Vec<String>>,
    /// Hook deliveries the receiver accepted, by webhook-id.
    hook_accepted: Mutex<HashMap<String, u32>>,
    hook_calls: AtomicU64,
    sse_events: AtomicU64,
    errors: AtomicU64,
}

/// A hook receiver that answers 500 to every tenth call and records what it accepted.
async fn receiver(tally: Arc<Tally>) -> anyhow::Result<String> {
    common::hook_receiver(move |req: hyper::Request<hyper::body::Incoming>| {
        let tally = tally.clone();
        async move {
            let n = tally.hook_calls.fetch_add(1, Ordering::Relaxed);
            let id = req
                .headers()
                .get("webhook-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            let _ = http_body_util::BodyExt::collect(req.into_body()).await;
            if n % 10 == 9 {
                return 500;
            }
            *tally
                .hook_accepted
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(id)
                .or_default() += 1;
            200
        }
    })
    .await
}

/// Runs `step(i)` `per_second` times a second until `stop`.
fn steady<F, Fut>(per_second: f64, stop: Arc<AtomicBool>, step: F) -> tokio::task::JoinHandle<()>
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        if per_second <= 0.0 {
            return;
        }
        let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / per_second));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut i = 0;
        while !stop.load(Ordering::Relaxed) {
            tick.tick().await;
            tokio::spawn(step(i));
            i += 1;
        }
    })
}

fn rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|k| k.parse::<f64>().ok()))
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

fn db_mb(dir: &std::path::Path) -> f64 {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with("soak.db"))
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum::<u64>()
        })
        .unwrap_or(0) as f64
        / 1_048_576.0
}

fn p99(times: &mut [f64]) -> Option<f64> {
    if times.is_empty() {
        return None;
    }
    times.sort_by(|a, b| a.total_cmp(b));
    Some(times[((times.len() as f64 - 1.0) * 0.99).round() as usize])
}

/// Every item of a paged list (`data`, `next_cursor`).
async fn all_pages(http: &reqwest::Client, base: &str, key: &str, path: &str) -> anyhow::Result<Vec<Value>> {
    let mut all = Vec::new();
    let mut cursor = String::new();
    loop {
        let sep = if path.contains('?') { '&' } else { '?' };
        let page: Value = http
            .get(format!("{base}{path}{sep}limit=500{cursor}"))
            .bearer_auth(key)
            .send()
            .await?
            .json()
            .await?;
        let data = page["data"].as_array().cloned().unwrap_or_default();
        if data.is_empty() {
            return Ok(all);
        }
        all.extend(data);
        // Messages page with an opaque string, events with a sequence number.
        match &page["next_cursor"] {
            Value::String(c) => cursor = format!("&cursor={c}"),
            Value::Number(n) => cursor = format!("&cursor={n}"),
            _ => return Ok(all),
        }
    }
}

struct Minute {
    minute: u64,
    rss_mb: f64,
    fds: usize,
    db_mb: f64,
    journal_age_s: f64,
    hook_backlog: f64,
    p99: Vec<Option<f64>>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = args()?;
    let wagate = common::wagate_path(a.wagate.clone())?;
    let (_sim, sim_url) = common::start_sim(&wagate).await?;
    let dir = std::env::temp_dir().join(format!("wagate-soak-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let database_url = format!("sqlite://{}", dir.join("soak.db").display());
    let key = format!("wg_soak_{}_0123456789abcdef", std::process::id());
    let config = dir.join("wagate.toml");
    std::fs::write(
        &config,
        format!(
            "[hooks]\nallow_private_networks = true\nretry_schedule_seconds = [1, 2, 5, 10, 20, 30]\n[media]\ndir = \"{}\"\n",
            dir.join("media").display()
        ),
    )?;
    let running =
        common::start_wagate(&wagate, &database_url, &config, &key, &[("WAGATE_GRAPH_URL", &sim_url)]).await?;
    let pid = running.child.id().context("the gateway's pid")?;
    let base = format!("http://{}", running.addr);
    let http = reqwest::Client::builder().pool_max_idle_per_host(64).build()?;
    let r = http
        .post(format!("{sim_url}/_sim/settings"))
        .json(&json!({"webhook_url": format!("{base}/webhooks/whatsapp"), "webhook_retry_scale": 0.001}))
        .send()
        .await?;
    if !r.status().is_success() {
        bail!("simulator settings: {}", r.text().await?);
    }
    let tally = Arc::new(Tally::default());
    let hook_url = receiver(tally.clone()).await?;
    let r = http
        .post(format!("{base}/v1/hooks"))
        .bearer_auth(&key)
        .json(&json!({"url": hook_url, "description": "soak"}))
        .send()
        .await?;
    if r.status().as_u16() != 201 {
        bail!("creating the hook: {}", r.text().await?);
    }
    // Events from then on go to the hook.
    let hook: Value = r.json().await?;
    let hook_created = hook["created_at"]
        .as_str()
        .context("the hook's created_at")?
        .to_string();
    let lat = Arc::new(Latencies::default());
    let stop = Arc::new(AtomicBool::new(false));
    eprintln!(
        "soak: {} minutes, {} inbound/s (every tenth an image), {} sends/s, {} reads/s, a hook failing 10 %, an SSE reader",
        a.minutes, a.inbound, a.sends, a.reads
    );

    let mut loops = Vec::new();
    {
        let (http, sim_url, tally, lat) = (http.clone(), sim_url.clone(), tally.clone(), lat.clone());
        loops.push(steady(a.inbound, stop.clone(), move |i| {
            let (http, sim_url, tally, lat) = (http.clone(), sim_url.clone(), tally.clone(), lat.clone());
            async move {
                let user = format!("1650666{:04}", i % 500);
                let message = if i % 10 == 0 {
                    json!({"type": "image", "image": {"caption": format!("soak-in-{i}")}})
                } else {
                    json!({"type": "text", "text": {"body": format!("soak-in-{i}")}})
                };
                let t = Instant::now();
                let r = http
                    .post(format!("{sim_url}/_sim/users/{user}/messages"))
                    .json(&message)
                    .send()
                    .await;
                lat.record(ROUTES[0], t);
                match r {
                    Ok(r) if r.status().as_u16() == 200 => {
                        if let Ok(v) = r.json::<Value>().await {
                            if let Some(w) = v["wamid"].as_str() {
                                tally
                                    .inbound_acked
                                    .lock()
                                    .unwrap_or_else(|e| e.into_inner())
                                    .push(w.to_string());
                            }
                        }
                    }
                    _ => {
                        tally.errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    {
        let (http, base, key, tally, lat) = (http.clone(), base.clone(), key.clone(), tally.clone(), lat.clone());
        loops.push(steady(a.sends, stop.clone(), move |i| {
            let (http, base, key, tally, lat) = (http.clone(), base.clone(), key.clone(), tally.clone(), lat.clone());
            async move {
                let body = json!({"to": format!("+1415555{:04}", i % 1000), "type": "template",
                    "template": {"name": "hello_world", "language": {"code": "en_US"}}});
                let t = Instant::now();
                let r = http
                    .post(format!("{base}/v1/messages"))
                    .bearer_auth(&key)
                    .json(&body)
                    .send()
                    .await;
                lat.record(ROUTES[1], t);
                match r {
                    Ok(r) if r.status().as_u16() == 202 => {
                        if let Ok(v) = r.json::<Value>().await {
                            if let Some(id) = v["id"].as_str() {
                                tally
                                    .sends_accepted
                                    .lock()
                                    .unwrap_or_else(|e| e.into_inner())
                                    .push(id.to_string());
                            }
                        }
                    }
                    _ => {
                        tally.errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    {
        let (http, base, key, tally, lat) = (http.clone(), base.clone(), key.clone(), tally.clone(), lat.clone());
        loops.push(steady(a.reads, stop.clone(), move |i| {
            let (http, base, key, tally, lat) = (http.clone(), base.clone(), key.clone(), tally.clone(), lat.clone());
            async move {
                let path = [
                    "/v1/messages?limit=20",
                    "/v1/events?limit=20",
                    "/v1/templates",
                    "/v1/hooks",
                ][i as usize % 4];
                let t = Instant::now();
                let r = http.get(format!("{base}{path}")).bearer_auth(&key).send().await;
                let ok = match r {
                    Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                    Err(_) => false,
                };
                lat.record(ROUTES[2], t);
                if !ok {
                    tally.errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    // The SSE reader: follows the live stream, reconnecting from the last id.
    {
        let (http, base, key, tally, stop) = (http.clone(), base.clone(), key.clone(), tally.clone(), stop.clone());
        loops.push(tokio::spawn(async move {
            let mut last = String::new();
            while !stop.load(Ordering::Relaxed) {
                let mut req = http.get(format!("{base}/v1/events/stream")).bearer_auth(&key);
                if !last.is_empty() {
                    req = req.header("last-event-id", last.clone());
                }
                let Ok(mut resp) = req.send().await else {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                };
                let mut buf = String::new();
                while let Ok(Some(chunk)) = resp.chunk().await {
                    buf.push_str(&String::from_utf8_lossy(&chunk));
                    while let Some(end) = buf.find("\n\n") {
                        let frame: String = buf.drain(..end + 2).collect();
                        if let Some(id) = frame.lines().find_map(|l| l.strip_prefix("id: ")) {
                            last = id.to_string();
                            tally.sse_events.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                }
            }
        }));
    }

    // Every minute: the process and the routes.
    let started = Instant::now();
    let mut minutes = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    tick.tick().await;
    let metric = |text: &str, name: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().last())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    for minute in 1..=a.minutes {
        tick.tick().await;
        let ready: Value = match http.get(format!("{base}/ready")).send().await {
            Ok(r) => r.json().await.unwrap_or_default(),
            Err(_) => Value::Null,
        };
        let metrics = match http.get(format!("{base}/metrics")).send().await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        let mut taken = lat.take();
        let m = Minute {
            minute,
            rss_mb: rss_mb(pid),
            fds: open_fds(pid),
            db_mb: db_mb(&dir),
            journal_age_s: ready["journal"]["oldest_pending_age_seconds"].as_f64().unwrap_or(-1.0),
            hook_backlog: metric(&metrics, "wagate_hook_backlog"),
            p99: ROUTES.iter().map(|r| taken.get_mut(r).and_then(|t| p99(t))).collect(),
        };
        eprintln!(
            "minute {:>3}: RSS {:.1} MB, {} fds, db {:.1} MB, journal {:.1} s behind, hook backlog {}, p99 {:?}",
            m.minute, m.rss_mb, m.fds, m.db_mb, m.journal_age_s, m.hook_backlog, m.p99
        );
        minutes.push(m);
    }
    stop.store(true, Ordering::Relaxed);
    for l in &loops {
        l.abort();
    }
    let ran = started.elapsed();

    // Drain: every accepted send at Meta, every acknowledged inbound message and every event
    // delivered to the hook (retries included), within five minutes.
    let accepted: Vec<String> = tally.sends_accepted.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let acked: Vec<String> = tally.inbound_acked.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let drain_deadline = Instant::now() + Duration::from_secs(300);
    let (sent_by_id, inbound_seen, events, lost_hooks) = loop {
        let sent: Value = http.get(format!("{sim_url}/_sim/sent")).send().await?.json().await?;
        let mut sent_by_id: HashMap<String, u32> = HashMap::new();
        for s in sent["data"].as_array().cloned().unwrap_or_default() {
            if let Some(c) = s["body"]["biz_opaque_callback_data"].as_str() {
                *sent_by_id.entry(c.to_string()).or_default() += 1;
            }
        }
        let inbound = all_pages(&http, &base, &key, "/v1/messages?direction=inbound").await?;
        let mut inbound_seen: HashMap<String, u32> = HashMap::new();
        for m in &inbound {
            if let Some(w) = m["wamid"].as_str() {
                *inbound_seen.entry(w.to_string()).or_default() += 1;
            }
        }
        let events = all_pages(&http, &base, &key, "/v1/events").await?;
        let lost_hooks = {
            let got = tally.hook_accepted.lock().unwrap_or_else(|e| e.into_inner());
            events
                .iter()
                .filter(|e| e["created_at"].as_str().is_some_and(|t| t >= hook_created.as_str()))
                .filter(|e| e["id"].as_str().is_none_or(|id| !got.contains_key(id)))
                .count()
        };
        let done = accepted.iter().all(|id| sent_by_id.contains_key(id))
            && acked.iter().all(|w| inbound_seen.contains_key(w))
            && lost_hooks == 0;
        if done || Instant::now() > drain_deadline {
            break (sent_by_id, inbound_seen, events, lost_hooks);
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    };
    let sends_lost = accepted.iter().filter(|id| !sent_by_id.contains_key(*id)).count();
    let sends_twice = accepted
        .iter()
        .filter(|id| sent_by_id.get(*id).copied().unwrap_or(0) > 1)
        .count();
    let inbound_lost = acked.iter().filter(|w| !inbound_seen.contains_key(*w)).count();
    let inbound_twice = inbound_seen.values().filter(|n| **n > 1).count();
    let hooks_twice = tally
        .hook_accepted
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .values()
        .filter(|n| **n > 1)
        .count();

    println!(
        "\nwagate soak: {} minutes of mixed traffic (SQLite, release build, {} cores): {} inbound/s (every tenth an image), {} template sends/s through the governor, {} API reads/s, a hook failing 10 % of calls, an SSE reader\n",
        a.minutes,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        a.inbound,
        a.sends,
        a.reads
    );
    println!("| minute | RSS | open fds | database | journal behind | hook backlog | p99 inbound (Meta → ack) | p99 POST /v1/messages | p99 GET reads |");
    println!("|---|---|---|---|---|---|---|---|---|");
    let fmt = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{v:.1} ms"));
    for m in &minutes {
        println!(
            "| {} | {:.1} MB | {} | {:.1} MB | {:.1} s | {} | {} | {} | {} |",
            m.minute,
            m.rss_mb,
            m.fds,
            m.db_mb,
            m.journal_age_s.max(0.0),
            m.hook_backlog,
            fmt(m.p99[0]),
            fmt(m.p99[1]),
            fmt(m.p99[2])
        );
    }
    // Flatness after a warm-up (the first third, at least 2 minutes).
    let warm: Vec<&Minute> = minutes.iter().skip((minutes.len() / 3).max(2)).collect();
    let spread = |f: &dyn Fn(&Minute) -> f64| -> f64 {
        let (lo, hi) = warm
            .iter()
            .map(|m| f(m))
            .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
        let mean = warm.iter().map(|m| f(m)).sum::<f64>() / warm.len().max(1) as f64;
        if mean > 0.0 {
            (hi - lo) / mean * 100.0
        } else {
            0.0
        }
    };
    println!(
        "\nafter warm-up: RSS spread {:.1} %, open fds spread {:.1} % (goal ±10 %)",
        spread(&|m| m.rss_mb),
        spread(&|m| m.fds as f64)
    );
    println!(
        "ran {:.0} s; inbound acknowledged {}, lost {inbound_lost}, twice {inbound_twice}; sends accepted {}, lost {sends_lost}, twice {sends_twice}; events {}, not delivered to the hook {lost_hooks}, delivered twice {hooks_twice} ({} hook calls, one in ten refused); SSE events read {}; request errors {}",
        ran.as_secs_f64(),
        acked.len(),
        accepted.len(),
        events.len(),
        tally.hook_calls.load(Ordering::Relaxed),
        tally.sse_events.load(Ordering::Relaxed),
        tally.errors.load(Ordering::Relaxed),
    );
    let _ = std::fs::remove_dir_all(&dir);
    if inbound_lost + sends_lost + sends_twice + inbound_twice + lost_hooks > 0 {
        bail!("something acknowledged was lost or sent twice");
    }
    Ok(())
}
