//! Usage benchmark: how fast delivered statuses are processed while usage is counted, and how
//! long `GET /v1/usage` over a month takes with 1,000,000 delivered messages counted (the bar:
//! under 100 ms).
//!
//! It starts the release binary on a fresh SQLite database (or `--database-url`), loads the
//! example rate card, sends `--messages` signed `delivered` status webhooks with Meta's pricing
//! (recipients in eight countries, three categories, spread over the 30 days before today) over
//! 32 connections, waits until they are processed, then asks `GET /v1/usage` for the month 30
//! times with each grouping and prints p50, p99 and max.
//!
//!     cargo build --release -p wagate && cargo run --release -p wagate-bench --bin usage
//!
//! Options: --messages N (1000000), --database-url URL, --wagate PATH (a binary without usage
//! counting prints the processing rate only: the comparison).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

mod common;
mod load;
mod stats;

use common::{PHONE_ID, WABA};

/// Recipients' numbers by country: a prefix and the digits that follow.
const RECIPIENTS: [(&str, &str); 8] = [
    ("US", "1650555"),
    ("BR", "5511987"),
    ("IN", "9198765"),
    ("DE", "4915112"),
    ("GB", "4474001"),
    ("MX", "5215512"),
    ("KE", "2547123"),
    ("ID", "6281234"),
];
const CATEGORIES: [&str; 3] = ["utility", "marketing", "authentication"];

/// A `delivered` status of message `n`, priced, `days_back` days before now.
fn body(n: u64, now_s: u64) -> String {
    let (_, prefix) = RECIPIENTS[(n % 8) as usize];
    let category = CATEGORIES[((n / 8) % 3) as usize];
    let ts = now_s - (n % 30) * 86_400 - 3_600;
    format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"{WABA}","changes":[{{"value":{{"messaging_product":"whatsapp","metadata":{{"display_phone_number":"15550783881","phone_number_id":"{PHONE_ID}"}},"statuses":[{{"id":"wamid.usage{n:020}","status":"delivered","timestamp":"{ts}","recipient_id":"{prefix}{r:04}","pricing":{{"billable":true,"pricing_model":"PMP","type":"regular","category":"{category}"}}}}]}},"field":"messages"}}]}}]}}"#,
        r = n % 10_000
    )
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut messages = 1_000_000u64;
    let (mut database_url, mut wagate) = (None, None);
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--messages" => messages = value()?.parse()?,
            "--database-url" => database_url = Some(value()?),
            "--wagate" => wagate = Some(value()?),
            other => bail!("unknown option {other}; see the top of bench/usage.rs"),
        }
    }
    let dir = std::env::temp_dir().join(format!("wagate-bench-usage-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let wagate = common::wagate_path(wagate)?;
    let database_url = database_url.unwrap_or_else(|| format!("sqlite://{}", dir.join("bench.db").display()));
    let config = dir.join("wagate.toml");
    std::fs::write(&config, "")?;
    let api_key = format!("wg_bench_{}", std::process::id()) + "_0123456789abcdef";
    let mut running = common::start_wagate(&wagate, &database_url, &config, &api_key, &[]).await?;
    let base = format!("http://{}", running.addr);
    let http = reqwest::Client::new();

    let card = include_str!("../testdata/rates/example-eur.csv");
    let loaded = http
        .put(format!("{base}/v1/rates?currency=EUR&effective=2020-01-01"))
        .bearer_auth(&api_key)
        .header("content-type", "text/csv")
        .body(card)
        .send()
        .await?
        .status()
        .as_u16();
    let counts_usage = loaded == 201;

    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let started = Instant::now();
    let next = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let (addr, next, stop, errors) = (running.addr.clone(), next.clone(), stop.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            load::post_webhooks(addr, next, stop, errors, move |n| body(n, now_s)).await
        }));
    }
    while next.load(Ordering::Relaxed) < messages {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut acked = 0;
    for t in tasks {
        acked += t.await??.len();
    }
    let acked_s = started.elapsed().as_secs_f64();
    let store = wagate_store::connect(&database_url, &Default::default()).await?;
    while store.journal_counts().await?.pending > 0 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let processed_s = started.elapsed().as_secs_f64();
    println!(
        "\nwagate usage benchmark ({}): {acked} delivered statuses acknowledged in {acked_s:.1} s, all processed in {processed_s:.1} s: {:.0} statuses/s{}\n",
        if database_url.starts_with("sqlite") { "SQLite" } else { "PostgreSQL" },
        acked as f64 / processed_s,
        if counts_usage { ", usage counted" } else { " (this binary counts no usage)" }
    );
    if !counts_usage {
        let _ = running.child.kill().await;
        let _ = std::fs::remove_dir_all(&dir);
        return Ok(());
    }
    let day = |s: u64| {
        let d = s / 86_400;
        // Civil date of a day since the epoch (Howard Hinnant's algorithm).
        let z = d as i64 + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let (dd, m) = (doy - (153 * mp + 2) / 5 + 1, if mp < 10 { mp + 3 } else { mp - 9 });
        let y = yoe + era * 400 + i64::from(m <= 2);
        format!("{y:04}-{m:02}-{dd:02}")
    };
    let (from, to) = (day(now_s - 30 * 86_400), day(now_s));
    println!("| GET /v1/usage ({from} to {to}), group_by | groups | p50 (ms) | p99 (ms) | max (ms) | under 100 ms |");
    println!("|---|---|---|---|---|---|");
    let mut all_under = true;
    for group_by in [
        "category",
        "day,category,market",
        "account,number,market,category,type",
        "day,account,number,tenant,category,market,type",
    ] {
        let url = format!("{base}/v1/usage?from={from}&to={to}&group_by={group_by}");
        let mut times = Vec::with_capacity(30);
        let mut groups = 0;
        for i in 0..32 {
            let t = Instant::now();
            let r = http.get(&url).bearer_auth(&api_key).send().await?;
            if r.status().as_u16() != 200 {
                bail!("{url} answered {}", r.status());
            }
            let body: serde_json::Value = r.json().await?;
            if i >= 2 {
                times.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            groups = body["groups"].as_array().map_or(0, Vec::len);
            let counted: i64 = body["groups"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|g| g["messages"].as_i64())
                .sum();
            if counted != acked as i64 {
                bail!("the usage counts {counted} messages, {acked} were acknowledged");
            }
        }
        let (p50, p99, max) = stats::p50_p99_max(&mut times);
        all_under &= p99 < 100.0;
        println!(
            "| {group_by} | {groups} | {p50:.1} | {p99:.1} | {max:.1} | {} |",
            if p99 < 100.0 { "yes" } else { "NO" }
        );
    }
    println!(
        "\nevery grouping's p99 under 100 ms: {}",
        if all_under { "yes" } else { "no" }
    );
    let _ = running.child.kill().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
