//! Scale-out benchmark: 1, 2 and 3 `wagate serve` processes (release) on one PostgreSQL, signed
//! inbound-text webhooks spread over them round-robin on keep-alive connections for a while.
//! Prints, per instance count: acks/s, ack p99, how far processing was behind when the load
//! ended (webhooks still pending, and how long they took to drain), and processed events/s from
//! the first webhook to the last event.
//!
//!     cargo build --release -p wagate
//!     WAGATE_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test \
//!       cargo run --release -p wagate-bench --bin scale
//!
//! Each run uses a fresh schema of that database. Options: --connections N (48), --seconds S (10),
//! --max-instances N (3), --wagate PATH.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

mod common;
mod load;

use common::{PHONE_ID, WABA};

struct Args {
    connections: usize,
    seconds: u64,
    max_instances: usize,
    wagate: Option<String>,
}

fn args() -> anyhow::Result<Args> {
    let mut a = Args {
        connections: 48,
        seconds: 10,
        max_instances: 3,
        wagate: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--connections" => a.connections = value()?.parse()?,
            "--seconds" => a.seconds = value()?.parse()?,
            "--max-instances" => a.max_instances = value()?.parse()?,
            "--wagate" => a.wagate = Some(value()?),
            other => bail!("unknown option {other}; see the top of bench/scale.rs"),
        }
    }
    Ok(a)
}

fn body(n: u64, sender: u64) -> String {
    format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"{WABA}","changes":[{{"value":{{"messaging_product":"whatsapp","metadata":{{"display_phone_number":"15550783881","phone_number_id":"{PHONE_ID}"}},"contacts":[{{"profile":{{"name":"Customer {sender}"}},"wa_id":"1650555{sender:04}"}}],"messages":[{{"from":"1650555{sender:04}","id":"wamid.SCALE{n:020}","timestamp":"{ts}","type":"text","text":{{"body":"Hello, where is my order #{n}?"}}}}]}},"field":"messages"}}]}}]}}"#,
        ts = 1_760_000_000 + n
    )
}

struct Row {
    instances: usize,
    acked: u64,
    acks_per_s: f64,
    p99_ms: f64,
    pending_at_end: i64,
    drained_after_s: f64,
    processed_per_s: f64,
}

async fn run(wagate: &str, instances: usize, a: &Args) -> anyhow::Result<Row> {
    let url = wagate_store::testing::fresh_postgres_url()
        .await
        .context("set WAGATE_TEST_POSTGRES_URL to a PostgreSQL database the benchmark may use")?;
    let dir = std::env::temp_dir().join(format!("wagate-bench-scale-{}-{instances}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let api_key = format!("wg_bench_{}_0123456789abcdef", std::process::id());
    let mut running = Vec::new();
    for i in 0..instances {
        let config = dir.join(format!("wagate{i}.toml"));
        std::fs::write(&config, "[media]\nstore = \"database\"\n")?;
        running.push(common::start_wagate(wagate, &url, &config, &api_key, &[]).await?);
    }
    let store = wagate_store::connect(&url, &wagate_store::ConnectOptions::default()).await?;
    let next = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..a.connections {
        let addr = running[worker % instances].addr.clone();
        let (next, stop) = (next.clone(), stop.clone());
        tasks.push(tokio::spawn(load::post_webhooks(
            addr,
            next,
            stop,
            errors.clone(),
            move |n| body(n, worker as u64),
        )));
    }
    tokio::time::sleep(Duration::from_secs(a.seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut lat: Vec<u32> = Vec::new();
    for t in tasks {
        lat.extend(t.await??.into_iter().map(|(_, us)| us));
    }
    let load_s = started.elapsed().as_secs_f64();
    let pending_at_end = store.journal_counts().await?.pending;
    let end = Instant::now();
    loop {
        if store.journal_counts().await?.pending == 0 {
            break;
        }
        if end.elapsed() > Duration::from_secs(600) {
            bail!("{instances} instance(s): processing did not drain in 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let drained_after_s = end.elapsed().as_secs_f64();
    let processed = store.journal_counts().await?.processed as u64;
    for r in &mut running {
        r.child.start_kill()?;
    }
    lat.sort_unstable();
    let acked = lat.len() as u64;
    if processed < acked {
        bail!("{instances} instance(s): {acked} acknowledged, only {processed} processed");
    }
    Ok(Row {
        instances,
        acked,
        acks_per_s: acked as f64 / load_s,
        p99_ms: lat.get(lat.len() * 99 / 100).copied().unwrap_or(0) as f64 / 1000.0,
        pending_at_end,
        drained_after_s,
        processed_per_s: acked as f64 / (load_s + drained_after_s),
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = args()?;
    let wagate = common::wagate_path(a.wagate.clone())?;
    let mut rows = Vec::new();
    for n in 1..=a.max_instances {
        let row = run(&wagate, n, &a).await?;
        eprintln!(
            "{n} instance(s): {} acknowledged, drained {:.1} s after the load",
            row.acked, row.drained_after_s
        );
        rows.push(row);
    }
    println!(
        "\nwagate scale-out benchmark: PostgreSQL, {} connections round-robin, {} s of load, {} cores\n",
        a.connections,
        a.seconds,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );
    println!("| instances | acknowledged | acks/s | ack p99 | pending when the load ended | drained after | processed events/s |");
    println!("|---|---|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {} | {:.0} | {:.1} ms | {} | {:.1} s | {:.0} |",
            r.instances, r.acked, r.acks_per_s, r.p99_ms, r.pending_at_end, r.drained_after_s, r.processed_per_s
        );
    }
    Ok(())
}
