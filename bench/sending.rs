//! Sending benchmark: messages queued through the API of `wagate serve` (release, fresh SQLite
//! database) and sent to `wagate sim` (its own process; no status webhooks, so that only the send
//! path is measured). Prints a table of three phases, each on a fresh gateway and simulator:
//!
//! - limit 1,000/s: the rate Meta sees (from the simulator's arrival times), the most sends in any
//!   one-second window, and the API's accept latency while the sends go;
//! - limit 80/s (Meta's default): the same, with fewer messages (80/s is slow);
//! - no limit: the pipeline's own ceiling.
//!
//! Each phase queues its messages first, due `--hold` seconds later, so that the backlog is there
//! when sending starts; while the sends go, a client queues 250 more at 50/s and times each
//! accept.
//!
//!     cargo build --release -p wagate && cargo run --release -p wagate-bench --bin sending
//!
//! Options: --messages N (20000), --default-messages N (2400), --concurrency N (sender.concurrency,
//! 64), --clients N (API clients queueing at once, 8), --hold S (messages are due S seconds after
//! queueing starts, 25), --wagate PATH.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Value};

mod common;

struct Args {
    messages: usize,
    default_messages: usize,
    concurrency: usize,
    clients: usize,
    /// The no-limit phase queues everything due this many seconds ahead.
    hold: u64,
    wagate: Option<String>,
}

fn args() -> anyhow::Result<Args> {
    let mut a = Args {
        messages: 20_000,
        default_messages: 2_400,
        concurrency: 64,
        clients: 8,
        hold: 25,
        wagate: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--messages" => a.messages = value()?.parse()?,
            "--default-messages" => a.default_messages = value()?.parse()?,
            "--concurrency" => a.concurrency = value()?.parse()?,
            "--clients" => a.clients = value()?.parse()?,
            "--hold" => a.hold = value()?.parse()?,
            "--wagate" => a.wagate = Some(value()?),
            other => bail!("unknown option {other}"),
        }
    }
    Ok(a)
}

/// Messages queued one by one (50/s) while the sends go, to time the API's accepts meanwhile.
const PROBE: usize = 250;

struct Phase {
    name: String,
    messages: usize,
    /// Sends per second Meta saw, first to last arrival.
    rate: f64,
    /// The same between the 5th and 95th percentile of arrivals.
    steady: f64,
    /// The most arrivals in any one-second window.
    max_window: usize,
    /// The same, leaving out windows that start in the first second.
    max_after_first: usize,
    /// The number's limit (0: none).
    limit: u32,
    accept_p50_ms: f64,
    accept_p99_ms: f64,
    queued_per_s: f64,
}

/// `hold`: queue everything due this many seconds ahead, so that the sends are measured alone.
async fn phase(wagate: &str, name: &str, limit: u32, messages: usize, hold: u64, a: &Args) -> anyhow::Result<Phase> {
    let (_sim, sim_url) = common::start_sim(wagate).await?;
    let dir = std::env::temp_dir().join(format!("wagate-bench-sending-{}-{limit}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let database_url = format!("sqlite://{}", dir.join("bench.db").display());
    let api_key = format!("wg_bench_{}_0123456789abcdef", std::process::id());
    let config = dir.join("wagate.toml");
    std::fs::write(
        &config,
        format!(
            "[sender]\nmessages_per_second = {limit}\nconcurrency = {}\npair_interval_ms = 0\n",
            a.concurrency
        ),
    )?;
    let mut running = common::start_wagate(
        wagate,
        &database_url,
        &config,
        &api_key,
        &[("WAGATE_GRAPH_URL", &sim_url)],
    )
    .await?;
    let addr = running.addr.clone();
    let http = reqwest::Client::new();

    // Queue, from several clients at once, timing each accept.
    let send_at = (hold > 0).then(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() + hold)
            .unwrap_or_default()
    });
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let t0 = Instant::now();
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..a.clients {
        let (http, addr, key, next) = (http.clone(), addr.clone(), api_key.clone(), next.clone());
        clients.spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= messages {
                    return Ok::<_, anyhow::Error>(latencies);
                }
                // A thousand recipients, in two area codes.
                let to = format!("+1{}555{:04}", if i % 2 == 0 { "650" } else { "415" }, i % 1000);
                let mut body = json!({"to": to, "type": "template",
                    "template": {"name": "hello_world", "language": {"code": "en_US"}}});
                if let Some(at) = send_at {
                    body["send_at"] = json!(at);
                }
                let t = Instant::now();
                let r = http
                    .post(format!("http://{addr}/v1/messages"))
                    .bearer_auth(&key)
                    .json(&body)
                    .send()
                    .await?;
                if r.status().as_u16() != 202 {
                    bail!(
                        "queueing answered {}: {}",
                        r.status(),
                        r.text().await.unwrap_or_default()
                    );
                }
                latencies.push(t.elapsed().as_secs_f64() * 1000.0);
            }
        });
    }
    let mut queueing = Vec::new();
    while let Some(r) = clients.join_next().await {
        queueing.extend(r??);
    }
    let queued_per_s = messages as f64 / t0.elapsed().as_secs_f64();
    // While the sends go: a client queueing 50 messages per second, timing each accept.
    if let Some(at) = send_at {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs_f64();
        if (at as f64) > now {
            tokio::time::sleep(Duration::from_secs_f64(at as f64 - now + 0.5)).await;
        } else {
            eprintln!("{name}: queueing took longer than --hold; raise it");
        }
    }
    let mut latencies = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    for i in 0..PROBE {
        tick.tick().await;
        let body = json!({"to": format!("+1212555{:04}", i), "type": "template",
            "template": {"name": "hello_world", "language": {"code": "en_US"}}});
        let t = Instant::now();
        let r = http
            .post(format!("http://{addr}/v1/messages"))
            .bearer_auth(&api_key)
            .json(&body)
            .send()
            .await?;
        if r.status().as_u16() != 202 {
            bail!("queueing answered {}", r.status());
        }
        latencies.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    let messages = messages + PROBE;

    // Wait until Meta has them all.
    let deadline = Instant::now() + Duration::from_secs(60 + messages as u64 / limit.max(50) as u64 * 2);
    // Progress by the count only: listing what was sent while sends arrive would hold the
    // simulator and bunch the arrivals it measures.
    loop {
        let sent: Value = http
            .get(format!("{sim_url}/_sim/sent?count"))
            .send()
            .await?
            .json()
            .await?;
        let count = sent["count"].as_u64().unwrap_or(0) as usize;
        eprintln!("{name}: {count} of {messages} at Meta");
        if count >= messages {
            break;
        }
        if Instant::now() > deadline {
            bail!("{name}: only {count} of {messages} reached the simulator");
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let sent: Value = http.get(format!("{sim_url}/_sim/sent")).send().await?.json().await?;
    let data = sent["data"].as_array().cloned().unwrap_or_default();
    let mut arrivals: Vec<i64> = data.iter().filter_map(|s| s["received_at_ms"].as_i64()).collect();
    arrivals.sort();
    let span = (arrivals[arrivals.len() - 1] - arrivals[0]) as f64 / 1000.0;
    let rate = (arrivals.len() - 1) as f64 / span.max(0.001);
    // Steady state: between the 5th and the 95th percentile of arrivals (without the ramp-up
    // of the first claims and connections, and the tail).
    let (lo_i, hi_i) = (arrivals.len() / 20, arrivals.len() * 19 / 20);
    let steady = (hi_i - lo_i) as f64 / ((arrivals[hi_i] - arrivals[lo_i]) as f64 / 1000.0).max(0.001);
    let mut max_window = 0;
    let mut worst = (0, 0);
    let mut lo = 0;
    for hi in 0..arrivals.len() {
        while arrivals[hi] - arrivals[lo] >= 1000 {
            lo += 1;
        }
        if hi - lo + 1 > max_window {
            max_window = hi - lo + 1;
            worst = (lo, hi);
        }
    }
    // The same once the first second is past (connections to Meta are opened then).
    let mut max_after_first = 0;
    let mut lo = 0;
    let first = arrivals.partition_point(|t| *t < arrivals[0] + 1000);
    for hi in first..arrivals.len() {
        lo = lo.max(first);
        while arrivals[hi] - arrivals[lo] >= 1000 {
            lo += 1;
        }
        max_after_first = max_after_first.max(hi - lo + 1);
    }
    if limit > 0 && max_window > limit as usize {
        // Where the busiest second came from: the gaps between arrivals in it and just before.
        let from = worst.0.saturating_sub(5);
        let gaps: Vec<i64> = (from + 1..=worst.1).map(|i| arrivals[i] - arrivals[i - 1]).collect();
        eprintln!(
            "{name}: {max_window} arrivals in the second from {} ms; gaps (ms) from 5 before: {gaps:?}",
            arrivals[worst.0] - arrivals[0]
        );
    }
    running.child.start_kill()?;
    Ok(Phase {
        name: name.to_string(),
        messages,
        rate,
        steady,
        max_window,
        max_after_first,
        limit,
        accept_p50_ms: pct(0.50),
        accept_p99_ms: pct(0.99),
        queued_per_s,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = args()?;
    let wagate = common::wagate_path(a.wagate.clone())?;
    let phases = vec![
        phase(&wagate, "limit 1,000/s", 1000, a.messages, a.hold, &a).await?,
        phase(
            &wagate,
            "limit 80/s (default)",
            80,
            a.default_messages,
            a.hold.min(10),
            &a,
        )
        .await?,
        phase(&wagate, "no limit", 0, a.messages, a.hold, &a).await?,
    ];
    println!(
        "\nwagate sending benchmark: SQLite, sender.concurrency {}, {} API clients, {} cores\n",
        a.concurrency,
        a.clients,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );
    println!(
        "| phase | messages | sends/s at Meta (steady) | sends/s (first to last) | most in any 1 s at Meta | the same after the first second | queued at (accepts/s) | accept p50 while sending | accept p99 while sending |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let mut over = Vec::new();
    for p in &phases {
        // A phase fails when Meta saw more than the limit in any one-second window, or the
        // steady rate is more than 2 % under it.
        let failed = p.limit > 0 && (p.max_window > p.limit as usize || p.steady < p.limit as f64 * 0.98);
        if failed {
            over.push(p.name.clone());
        }
        println!(
            "| {}{} | {} | {:.1} | {:.1} | {} | {} | {:.0} | {:.1} ms | {:.1} ms |",
            p.name,
            if failed { " **FAILED**" } else { "" },
            p.messages,
            p.steady,
            p.rate,
            p.max_window,
            p.max_after_first,
            p.queued_per_s,
            p.accept_p50_ms,
            p.accept_p99_ms
        );
    }
    if !over.is_empty() {
        anyhow::bail!(
            "the governor let Meta see more than the limit in a one-second window, or held the steady rate more than 2 % under it: {}",
            over.join(", ")
        );
    }
    Ok(())
}
