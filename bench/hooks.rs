//! Hook delivery benchmark: inbound messages in (signed Meta webhooks, as the simulator sends
//! them) → `wagate serve` (release, fresh SQLite database) → one local receiver hook. Prints a
//! table of:
//!
//! - sustained: events delivered per second end to end while webhooks arrive as fast as the
//!   gateway takes them, and the latency from Meta's acknowledged POST to the receiver;
//! - paced: the same latency at 1,000 events/s;
//! - offered: webhooks paced at 5,000/s for 10 s, and whether deliveries keep up (the rate
//!   delivered end to end, which includes the last delivery's latency and so is just under the
//!   rate offered at best; and the p99 latency of the phase's first and last tenth, which stays
//!   flat when deliveries keep up and grows when they do not);
//! - backlog: how fast a backlog of events drains once the receiver is back (the events arrive
//!   while the hook is off, then are replayed to it at once).
//!
//!     cargo build --release -p wagate && cargo run --release -p wagate-bench --bin hooks
//!
//! Options: --sustained N (30000), --paced-seconds S (10), --offered-rate R (5000),
//! --offered-seconds S (10), --backlog N (100000),
//! --concurrency N (hooks.concurrency_per_hook; default: the gateway's), --synchronous full|normal
//! (database.sqlite_synchronous; default: the gateway's, full), --wagate PATH.
//!
//! `--sink nats|redis|amqp` delivers to a broker on this machine instead of the HTTP receiver (a
//! JetStream stream on NATS at 127.0.0.1:4222, a Redis stream on 127.0.0.1:6379, a RabbitMQ queue
//! on 127.0.0.1:5672 as guest), read back by a
//! consumer with the broker's own client; run without it for the HTTP figure beside it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Value};

mod common;

use common::{APP_SECRET, PHONE_ID, WABA};

struct Args {
    sustained: u64,
    paced_seconds: u64,
    /// A second paced phase: this many webhooks per second for `offered_seconds`.
    offered_rate: u64,
    offered_seconds: u64,
    backlog: u64,
    concurrency: Option<usize>,
    /// `database.sqlite_synchronous` (`full`, the default, or `normal`).
    synchronous: Option<String>,
    wagate: Option<String>,
    /// `nats` or `redis`: deliver to a broker rather than over HTTP.
    sink: Option<String>,
}

fn args() -> anyhow::Result<Args> {
    let mut a = Args {
        sustained: 30_000,
        paced_seconds: 10,
        offered_rate: 5000,
        offered_seconds: 10,
        backlog: 100_000,
        concurrency: None,
        synchronous: None,
        wagate: None,
        sink: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--sustained" => a.sustained = value()?.parse()?,
            "--paced-seconds" => a.paced_seconds = value()?.parse()?,
            "--offered-rate" => a.offered_rate = value()?.parse()?,
            "--offered-seconds" => a.offered_seconds = value()?.parse()?,
            "--backlog" => a.backlog = value()?.parse()?,
            "--concurrency" => a.concurrency = Some(value()?.parse()?),
            "--synchronous" => a.synchronous = Some(value()?),
            "--wagate" => a.wagate = Some(value()?),
            "--sink" => a.sink = Some(value()?),
            other => bail!("unknown option {other}; see the top of bench/hooks.rs"),
        }
    }
    Ok(a)
}

/// Message `n` as Meta sends it; its number is in the text the receiver reads back.
fn body(n: u64) -> String {
    let sender = n % 1000;
    format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"{WABA}","changes":[{{"value":{{"messaging_product":"whatsapp","metadata":{{"display_phone_number":"15550783881","phone_number_id":"{PHONE_ID}"}},"contacts":[{{"profile":{{"name":"Customer {sender}"}},"wa_id":"1650555{sender:04}"}}],"messages":[{{"from":"1650555{sender:04}","id":"wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQ{n:020}","timestamp":"{ts}","type":"text","text":{{"body":"order #{n}"}}}}]}},"field":"messages"}}]}}]}}"#,
        ts = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default()
    )
}

/// Per message number: when Meta's POST was acknowledged and when the receiver had it
/// (µs since the start; 0 = not yet).
struct Clock {
    start: Instant,
    acked: Vec<AtomicU64>,
    arrived: Vec<AtomicU64>,
    received: AtomicU64,
    duplicates: AtomicU64,
}

impl Clock {
    fn now(&self) -> u64 {
        self.start.elapsed().as_micros() as u64 + 1
    }

    /// A delivered event: its message number is in its text.
    fn record(&self, event: &[u8]) {
        let n = serde_json::from_slice::<Value>(event).ok().and_then(|v| {
            v["payload"]["text"]
                .as_str()
                .and_then(|t| t.strip_prefix("order #")?.parse::<usize>().ok())
        });
        if let Some(slot) = n.and_then(|n| self.arrived.get(n)) {
            if slot
                .compare_exchange(0, self.now(), Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                self.received.fetch_add(1, Ordering::Relaxed);
            } else {
                self.duplicates.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

async fn receiver(clock: Arc<Clock>) -> anyhow::Result<String> {
    common::hook_receiver(move |req: hyper::Request<hyper::body::Incoming>| {
        let clock = clock.clone();
        async move {
            let bytes = http_body_util::BodyExt::collect(req.into_body())
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            clock.record(&bytes);
            200
        }
    })
    .await
}

/// A broker to deliver to, and a consumer recording what arrives; returns the hook URL.
async fn sink(kind: &str, clock: Arc<Clock>) -> anyhow::Result<String> {
    let name = format!("wagate-bench-{}", std::process::id());
    match kind {
        "nats" => {
            let subject = format!("wagate.bench.{}", std::process::id());
            let client = async_nats::connect("nats://127.0.0.1:4222")
                .await
                .context("NATS on 4222")?;
            let js = async_nats::jetstream::new(client.clone());
            // In memory, the oldest dropped past 100,000: the bench measures delivery, not disk.
            js.create_stream(async_nats::jetstream::stream::Config {
                name: name.replace('-', "_"),
                subjects: vec![subject.clone()],
                storage: async_nats::jetstream::stream::StorageType::Memory,
                max_messages: 100_000,
                ..Default::default()
            })
            .await
            .map_err(|e| anyhow::anyhow!("creating the JetStream stream: {e}"))?;
            let mut messages = client.subscribe(subject.clone()).await?;
            tokio::spawn(async move {
                use futures_util::StreamExt;
                while let Some(m) = messages.next().await {
                    clock.record(&m.payload);
                }
            });
            Ok(format!("nats://127.0.0.1:4222/{subject}"))
        }
        "redis" => {
            let client = redis::Client::open("redis://127.0.0.1:6379/0")?;
            let mut con = client
                .get_multiplexed_async_connection()
                .await
                .context("Redis on 6379")?;
            let _: i64 = redis::cmd("DEL").arg(&name).query_async(&mut con).await?;
            let key = name.clone();
            tokio::spawn(async move {
                type Read = Vec<(String, Vec<(String, Vec<(String, Vec<u8>)>)>)>;
                let mut last = "0".to_string();
                loop {
                    let read: Option<Read> = redis::cmd("XREAD")
                        .arg("COUNT")
                        .arg(1000)
                        .arg("BLOCK")
                        .arg(1000)
                        .arg("STREAMS")
                        .arg(&key)
                        .arg(&last)
                        .query_async(&mut con)
                        .await
                        .unwrap_or_default();
                    for (_, entries) in read.unwrap_or_default() {
                        for (id, fields) in entries {
                            if let Some((_, body)) = fields.iter().find(|(k, _)| k == "body") {
                                clock.record(body);
                            }
                            last = id;
                        }
                    }
                }
            });
            Ok(format!("redis://127.0.0.1:6379/0?stream={name}&maxlen=100000"))
        }
        "amqp" => {
            use futures_util::StreamExt;
            let uri = "amqp://guest:guest@127.0.0.1:5672/%2f";
            let connection = lapin::Connection::connect(uri, Default::default())
                .await
                .context("RabbitMQ on 5672")?;
            let channel = connection.create_channel().await?;
            let options = lapin::options::QueueDeclareOptions {
                auto_delete: true,
                ..Default::default()
            };
            channel
                .queue_declare(name.as_str().into(), options, Default::default())
                .await?;
            let mut consumer = channel
                .basic_consume(
                    name.as_str().into(),
                    "bench".into(),
                    lapin::options::BasicConsumeOptions {
                        no_ack: true,
                        ..Default::default()
                    },
                    Default::default(),
                )
                .await?;
            tokio::spawn(async move {
                let _connection = connection;
                while let Some(Ok(delivery)) = consumer.next().await {
                    clock.record(&delivery.data);
                }
            });
            Ok(format!("{uri}?routing_key={name}"))
        }
        other => bail!("--sink {other}: use nats, redis or amqp"),
    }
}

/// Sends messages `range` over `connections` kept-alive connections; `per_second` paces them.
async fn send(
    addr: &str,
    clock: &Arc<Clock>,
    range: std::ops::Range<u64>,
    connections: usize,
    per_second: Option<u64>,
) -> anyhow::Result<()> {
    let next = Arc::new(AtomicU64::new(range.start));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (addr, next, clock, end) = (addr.to_string(), next.clone(), clock.clone(), range.end);
        tasks.push(tokio::spawn(async move {
            let stream = tokio::net::TcpStream::connect(&addr).await?;
            stream.set_nodelay(true)?;
            let (mut sender, conn) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
            tokio::spawn(conn);
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= end {
                    return anyhow::Ok(());
                }
                if let Some(rate) = per_second {
                    let due = started + Duration::from_secs_f64((n - range.start) as f64 / rate as f64);
                    tokio::time::sleep_until(due.into()).await;
                }
                let body = body(n);
                let sig = wagate_core::signature::sign_hub(APP_SECRET, body.as_bytes());
                let req = hyper::Request::post("/webhooks/whatsapp")
                    .header("host", &addr)
                    .header("content-type", "application/json")
                    .header("x-hub-signature-256", sig)
                    .body(http_body_util::Full::new(bytes::Bytes::from(body)))?;
                let resp = sender.send_request(req).await?;
                let status = resp.status().as_u16();
                let _ = http_body_util::BodyExt::collect(resp.into_body()).await;
                if status != 200 {
                    bail!("webhook {n} answered {status}");
                }
                if let Some(slot) = clock.acked.get(n as usize) {
                    slot.store(clock.now(), Ordering::Release);
                }
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

async fn wait_received(clock: &Clock, want: u64, limit: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    let mut report = Instant::now();
    while clock.received.load(Ordering::Relaxed) < want {
        if report.elapsed() > Duration::from_secs(5) {
            report = Instant::now();
            eprintln!("… {} of {want} delivered", clock.received.load(Ordering::Relaxed));
        }
        if Instant::now() > deadline {
            bail!(
                "only {} of {want} events reached the receiver",
                clock.received.load(Ordering::Relaxed)
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Latency percentiles (ms) and the end-to-end rate of messages `range`.
fn measure(clock: &Clock, range: std::ops::Range<u64>) -> (f64, f64, f64, f64) {
    let pairs: Vec<(u64, u64)> = range
        .map(|n| {
            (
                clock.acked[n as usize].load(Ordering::Acquire),
                clock.arrived[n as usize].load(Ordering::Acquire),
            )
        })
        .collect();
    let mut lat: Vec<u64> = pairs.iter().map(|(a, r)| r.saturating_sub(*a)).collect();
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len() - 1))
            .copied()
            .unwrap_or(0) as f64
            / 1000.0
    };
    let first = pairs.iter().map(|p| p.0).min().unwrap_or(0);
    let last = pairs.iter().map(|p| p.1).max().unwrap_or(0);
    let rate = pairs.len() as f64 / ((last - first) as f64 / 1e6);
    (rate, pct(0.5), pct(0.99), *lat.last().unwrap_or(&0) as f64 / 1000.0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = args()?;
    let wagate = common::wagate_path(args.wagate.clone())?;
    let paced = 1000 * args.paced_seconds;
    let offered = args.offered_rate * args.offered_seconds;
    let total = args.sustained + paced + offered + args.backlog;
    let clock = Arc::new(Clock {
        start: Instant::now(),
        acked: (0..total).map(|_| AtomicU64::new(0)).collect(),
        arrived: (0..total).map(|_| AtomicU64::new(0)).collect(),
        received: AtomicU64::new(0),
        duplicates: AtomicU64::new(0),
    });
    let hook_url = match &args.sink {
        Some(kind) => sink(kind, clock.clone()).await?,
        None => receiver(clock.clone()).await?,
    };

    let dir = std::env::temp_dir().join(format!("wagate-bench-hooks-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let database_url = format!("sqlite://{}", dir.join("bench.db").display());
    let api_key = format!("wg_bench_{}_0123456789abcdef", std::process::id());
    let config = dir.join("wagate.toml");
    let mut toml = String::new();
    if let Some(n) = args.concurrency {
        toml.push_str(&format!("[hooks]\nconcurrency_per_hook = {n}\n"));
    }
    if let Some(s) = &args.synchronous {
        toml.push_str(&format!("[database]\nsqlite_synchronous = \"{s}\"\n"));
    }
    std::fs::write(&config, toml)?;
    let mut running = common::start_wagate(
        &wagate,
        &database_url,
        &config,
        &api_key,
        &[("WAGATE_HOOKS_ALLOW_PRIVATE_NETWORKS", "true")],
    )
    .await?;
    let addr = running.addr.clone();
    let api = reqwest::Client::new();
    let call = |method: reqwest::Method, path: &str, body: Value| {
        api.request(method, format!("http://{addr}{path}"))
            .bearer_auth(&api_key)
            .json(&body)
            .send()
    };
    let hook: Value = call(
        reqwest::Method::POST,
        "/v1/hooks",
        json!({"url": hook_url, "events": ["message.received"]}),
    )
    .await?
    .json()
    .await?;
    let hook_id = hook["id"].as_str().context("hook id")?.to_string();

    // Sustained: as fast as the gateway takes webhooks.
    let t = Instant::now();
    send(&addr, &clock, 0..args.sustained, 32, None).await?;
    let ingest_rate = args.sustained as f64 / t.elapsed().as_secs_f64();
    eprintln!(
        "sustained: {} webhooks acknowledged at {ingest_rate:.0}/s",
        args.sustained
    );
    wait_received(&clock, args.sustained, Duration::from_secs(600)).await?;
    let sustained = measure(&clock, 0..args.sustained);

    // Paced: 1,000 events/s.
    let range = args.sustained..args.sustained + paced;
    send(&addr, &clock, range.clone(), 8, Some(1000)).await?;
    wait_received(&clock, args.sustained + paced, Duration::from_secs(120)).await?;
    let at_1000 = measure(&clock, range);

    // Offered: webhooks paced at a fixed rate for a while; the gateway sustains that rate when
    // deliveries keep up (the latency stays flat instead of growing with the backlog).
    let start = args.sustained + paced;
    let range = start..start + offered;
    let t = Instant::now();
    send(&addr, &clock, range.clone(), 32, Some(args.offered_rate)).await?;
    let offered_acks = offered as f64 / t.elapsed().as_secs_f64();
    wait_received(&clock, start + offered, Duration::from_secs(300)).await?;
    let at_offered = measure(&clock, range.clone());
    // Whether deliveries kept pace: the latency of the first and of the last tenth of the
    // phase (flat when they did; growing with the backlog when they did not).
    let tenth = (offered / 10).max(1);
    let first_tenth = measure(&clock, range.start..range.start + tenth);
    let last_tenth = measure(&clock, range.end - tenth..range.end);

    // Backlog: the events arrive while the hook is off, then are replayed to it at once.
    call(
        reqwest::Method::PATCH,
        &format!("/v1/hooks/{hook_id}"),
        json!({"enabled": false}),
    )
    .await?;
    // Everything stored from now on is the backlog (the earlier phases are all delivered).
    let since = wagate_core::time::rfc3339_ms(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis() as i64,
    );
    let range = args.sustained + paced + offered..total;
    send(&addr, &clock, range.clone(), 32, None).await?;
    let store = wagate_store::connect(&database_url, &Default::default()).await?;
    while store.journal_counts().await?.pending > 0 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    call(reqwest::Method::POST, &format!("/v1/hooks/{hook_id}/enable"), json!({})).await?;
    let drain_started = Instant::now();
    let replay: Value = call(
        reqwest::Method::POST,
        &format!("/v1/hooks/{hook_id}/replay"),
        json!({"since": since}),
    )
    .await?
    .json()
    .await?;
    let queued_after = drain_started.elapsed().as_secs_f64();
    wait_received(&clock, total, Duration::from_secs(1800)).await?;
    let drain_s = drain_started.elapsed().as_secs_f64();
    let _ = running.child.kill().await;
    let _ = std::fs::remove_dir_all(&dir);

    println!();
    println!(
        "wagate hook delivery benchmark (SQLite, synchronous={}, concurrency_per_hook={}, {})",
        args.synchronous.as_deref().unwrap_or("full"),
        args.concurrency.map_or("default".to_string(), |n| n.to_string()),
        match args.sink.as_deref() {
            Some("nats") => "to a JetStream stream on NATS",
            Some("amqp") => "to a RabbitMQ queue",
            Some(_) => "to a Redis stream",
            None => "one local HTTP receiver",
        }
    );
    println!("| measure                                   | value        |");
    println!("|-------------------------------------------|--------------|");
    println!("| sustained: webhooks acknowledged          | {:>12} |", args.sustained);
    println!("| sustained: acks/s                         | {:>12.0} |", ingest_rate);
    println!("| sustained: events delivered/s, end to end | {:>12.0} |", sustained.0);
    println!(
        "| sustained: latency p50 / p99 (ms)         | {:>5.1} / {:>5.1} |",
        sustained.1, sustained.2
    );
    println!(
        "| 1,000/s: latency p50 / p99 / max (ms)     | {:>4.1}/{:>4.1}/{:>4.0} |",
        at_1000.1, at_1000.2, at_1000.3
    );
    println!(
        "| {:>5}/s offered for {:>3} s: acks/s        | {:>12.0} |",
        args.offered_rate, args.offered_seconds, offered_acks
    );
    println!(
        "| {:>5}/s offered: delivered/s, end to end  | {:>12.0} |",
        args.offered_rate, at_offered.0
    );
    println!(
        "| {:>5}/s offered: latency p50/p99/max (ms) | {:>4.1}/{:>4.1}/{:>4.0} |",
        args.offered_rate, at_offered.1, at_offered.2, at_offered.3
    );
    println!(
        "| {:>5}/s offered: p99 1st/last tenth (ms)  | {:>5.0} / {:>5.0} |",
        args.offered_rate, first_tenth.2, last_tenth.2
    );
    println!(
        "| backlog: events replayed                  | {:>12} |",
        replay["queued"]
    );
    println!("| backlog: queued in (s)                    | {:>12.1} |", queued_after);
    println!("| backlog: drained in (s)                   | {:>12.1} |", drain_s);
    println!(
        "| backlog: drain rate (events/s)            | {:>12.0} |",
        args.backlog as f64 / drain_s
    );
    println!(
        "| duplicates at the receiver                | {:>12} |",
        clock.duplicates.load(Ordering::Relaxed)
    );
    Ok(())
}
