//! Ingest benchmark: how many signed Meta webhooks per second `wagate serve` acknowledges —
//! durably — and how fast, on this machine.
//!
//! It starts the release binary on a fresh SQLite database (or `--database-url`), sends
//! realistic inbound-text webhooks with distinct, randomly spread wamids over 64 concurrent
//! keep-alive connections for 10 s, prints acks/s, p50, p99 and errors, then checks that every
//! acknowledged message is stored (count and content).
//!
//!     cargo build --release -p wagate && cargo run --release -p wagate-bench --bin ingest
//!
//! Options: --connections N (64), --seconds S (10), --database-url URL, --wagate PATH,
//! --sqlite-synchronous full|normal (full).
//!
//! `--reference` sends the same load to a minimal server instead (in this file): hyper, the same
//! signature check, and a group-committed insert of each body into a SQLite table
//! (`synchronous=FULL`, WAL), nothing else. Its CPU per webhook is the yardstick for wagate's on
//! the day's machine: this VM's speed varies by up to 2x from one hour to the next.

use std::collections::HashMap;
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
    database_url: Option<String>,
    wagate: Option<String>,
    sqlite_synchronous: String,
    reference: bool,
    serve_reference: Option<String>,
}

fn args() -> anyhow::Result<Args> {
    let mut a = Args {
        connections: 64,
        seconds: 10,
        database_url: None,
        wagate: None,
        sqlite_synchronous: "full".into(),
        reference: false,
        serve_reference: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--connections" => a.connections = value()?.parse()?,
            "--seconds" => a.seconds = value()?.parse()?,
            "--database-url" => a.database_url = Some(value()?),
            "--wagate" => a.wagate = Some(value()?),
            "--sqlite-synchronous" => a.sqlite_synchronous = value()?,
            "--reference" => a.reference = true,
            // Internal: the reference server itself, on the SQLite file given.
            "--serve-reference" => a.serve_reference = Some(value()?),
            other => bail!("unknown option {other}; see the top of bench/ingest.rs"),
        }
    }
    Ok(a)
}

/// Real wamids end in a random message id, so their unique index takes keys all over: message
/// `n`'s is a bijective scramble of `n` (splitmix64's finaliser), not a counter, which would
/// append to the index's last page and flatter every store.
fn wamid_of(n: u64) -> String {
    let mut z = n.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    format!("wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQ{z:020X}")
}

fn body(n: u64, sender: u64) -> (String, String) {
    let wamid = wamid_of(n);
    let body = format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"{WABA}","changes":[{{"value":{{"messaging_product":"whatsapp","metadata":{{"display_phone_number":"15550783881","phone_number_id":"{PHONE_ID}"}},"contacts":[{{"profile":{{"name":"Customer {sender}"}},"wa_id":"1650555{sender:04}"}}],"messages":[{{"from":"1650555{sender:04}","id":"{wamid}","timestamp":"{ts}","type":"text","text":{{"body":"Hello, I would like to know where my order #{n} is. Thanks!"}}}}]}},"field":"messages"}}]}}]}}"#,
        ts = 1_760_000_000 + n
    );
    (wamid, body)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = args()?;
    if let Some(path) = &args.serve_reference {
        return reference::serve(path).await;
    }
    let dir = std::env::temp_dir().join(format!("wagate-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    if args.reference {
        return run_reference(&args, &dir).await;
    }
    let wagate = common::wagate_path(args.wagate.clone())?;
    let database_url = args
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", dir.join("bench.db").display()));
    let config = dir.join("wagate.toml");
    std::fs::write(
        &config,
        format!("[database]\nsqlite_synchronous = \"{}\"\n", args.sqlite_synchronous),
    )?;
    let api_key = format!("wg_bench_{}", std::process::id()) + "_0123456789abcdef";
    let mut running = common::start_wagate(&wagate, &database_url, &config, &api_key, &[]).await?;

    let db = if database_url.starts_with("sqlite") {
        format!("SQLite, synchronous={}", args.sqlite_synchronous)
    } else {
        "PostgreSQL".into()
    };
    let load_started = Instant::now();
    let acked = load_and_report(&args, &running.addr, |connections, elapsed| {
        format!("wagate ingest benchmark ({connections} connections, {elapsed:.1} s, {db})")
    })
    .await?;

    // Durability check: every acknowledged webhook is a stored message with its content.
    let verify_started = Instant::now();
    let store = wagate_store::connect(&database_url, &Default::default()).await?;
    loop {
        let c = store.journal_counts().await?;
        if c.pending == 0 {
            break;
        }
        if verify_started.elapsed() > Duration::from_secs(300) {
            bail!("processing did not finish within 5 minutes ({} pending)", c.pending);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let processing_s = verify_started.elapsed().as_secs_f64();
    // Each acknowledged webhook holds one message, which becomes one `message.received` event:
    // events per second from the first webhook sent to the last one processed.
    let events_per_s = acked.len() as f64 / load_started.elapsed().as_secs_f64();
    // Everything the gateway spent on these webhooks: accepting, journalling, processing.
    let usage = running.child.id().and_then(process_usage);
    let mut stored: HashMap<String, String> = HashMap::with_capacity(acked.len());
    let mut before = None;
    loop {
        let page = store
            .list_messages(&wagate_store::MessageFilter {
                direction: Some("inbound".into()),
                before_id: before.clone(),
                limit: 5000,
                ..Default::default()
            })
            .await?;
        let Some(last) = page.last() else { break };
        before = Some(last.id.to_string());
        for m in page {
            let content: serde_json::Value = serde_json::from_str(&m.content)?;
            stored.insert(
                m.wamid.unwrap_or_default(),
                content["text"].as_str().unwrap_or_default().to_string(),
            );
        }
    }
    let mut missing = 0u64;
    let mut wrong = 0u64;
    for (n, _) in &acked {
        let (wamid, _) = body(*n, 0);
        match stored.get(&wamid) {
            None => missing += 1,
            Some(text) if *text != format!("Hello, I would like to know where my order #{n} is. Thanks!") => wrong += 1,
            Some(_) => {}
        }
    }
    let _ = running.child.kill().await;

    println!("| processing drained after (s)   | {:>12.1} |", processing_s);
    println!("| events processed/s (to drain)  | {:>12.0} |", events_per_s);
    if let Some((cpu_s, peak_mib)) = usage {
        println!(
            "| gateway CPU per webhook (µs)   | {:>12.0} |",
            cpu_s * 1e6 / acked.len().max(1) as f64
        );
        println!("| gateway peak RSS (MiB)         | {:>12.1} |", peak_mib);
    }
    println!("| stored messages                | {:>12} |", stored.len());
    println!("| acknowledged but missing       | {:>12} |", missing);
    println!("| stored with wrong content      | {:>12} |", wrong);
    let _ = std::fs::remove_dir_all(&dir);
    if missing > 0 || wrong > 0 {
        bail!("{missing} acknowledged webhooks are missing and {wrong} have wrong content");
    }
    Ok(())
}

/// Posts the load for `--seconds` over `--connections` and prints the acknowledgement half of
/// the table under `title` (made of the connection count and the elapsed seconds); returns the
/// acknowledged webhooks (number, latency in µs).
async fn load_and_report(
    args: &Args,
    addr: &str,
    title: impl Fn(usize, f64) -> String,
) -> anyhow::Result<Vec<(u64, u32)>> {
    // The load generator is lean on purpose (one hyper HTTP/1.1 connection per worker, kept
    // alive, like wrk): it shares the machine's cores with the server it measures.
    let next = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..args.connections {
        let (addr, next, errors, stop) = (addr.to_string(), next.clone(), errors.clone(), stop.clone());
        tasks.push(tokio::spawn(load::post_webhooks(addr, next, stop, errors, move |n| {
            body(n, worker as u64).1
        })));
    }
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut acked = Vec::new();
    for t in tasks {
        acked.extend(t.await??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut lat: Vec<u32> = acked.iter().map(|a| a.1).collect();
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0) as f64
            / 1000.0
    };
    let errors = errors.load(Ordering::Relaxed);

    println!();
    println!("{}", title(args.connections, elapsed));
    println!("| metric                         | value        |");
    println!("|--------------------------------|--------------|");
    println!("| acknowledged webhooks          | {:>12} |", acked.len());
    println!(
        "| acks/s                         | {:>12.0} |",
        acked.len() as f64 / elapsed
    );
    println!("| latency p50 (ms)               | {:>12.2} |", pct(0.50));
    println!("| latency p99 (ms)               | {:>12.2} |", pct(0.99));
    println!(
        "| latency max (ms)               | {:>12.2} |",
        lat.last().copied().unwrap_or(0) as f64 / 1000.0
    );
    println!("| errors                         | {:>12} |", errors);
    Ok(acked)
}

/// `--reference`: the same load against the minimal server, its CPU per webhook and peak RSS,
/// and a check that every acknowledged body is in its table.
async fn run_reference(args: &Args, dir: &std::path::Path) -> anyhow::Result<()> {
    let db = dir.join("reference.db");
    let mut command = tokio::process::Command::new(std::env::current_exe()?);
    command.arg("--serve-reference").arg(&db);
    let common::Running { mut child, addr } = common::spawn(command).await?;
    let acked = load_and_report(args, &addr, |connections, elapsed| {
        format!("reference server ({connections} connections, {elapsed:.1} s, SQLite, synchronous=full): hyper, signature check, group-committed insert")
    })
    .await?;
    let usage = child.id().and_then(process_usage);
    let _ = child.kill().await;
    if let Some((cpu_s, peak_mib)) = usage {
        println!(
            "| server CPU per webhook (µs)    | {:>12.0} |",
            cpu_s * 1e6 / acked.len().max(1) as f64
        );
        println!("| server peak RSS (MiB)          | {:>12.1} |", peak_mib);
    }
    let stored = reference::count(&db).await?;
    println!("| stored bodies                  | {:>12} |", stored);
    let _ = std::fs::remove_dir_all(dir);
    if stored < acked.len() as u64 {
        bail!("{} acknowledged webhooks are missing", acked.len() as u64 - stored);
    }
    Ok(())
}

/// The minimal verify-and-insert server `--reference` measures wagate against.
mod reference {
    use std::str::FromStr;

    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqliteSynchronous};
    use tokio::sync::{mpsc, oneshot};

    async fn open(path: &str) -> anyhow::Result<SqlitePool> {
        let opts = SqliteConnectOptions::from_str(&format!("sqlite://{path}"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full);
        Ok(sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(opts)
            .await?)
    }

    pub async fn count(path: &std::path::Path) -> anyhow::Result<u64> {
        let pool = open(&path.display().to_string()).await?;
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM journal").fetch_one(&pool).await?;
        Ok(n as u64)
    }

    type Pending = (Vec<u8>, oneshot::Sender<bool>);

    /// Group commit: everything waiting goes into one transaction, then every sender hears.
    async fn writer(pool: SqlitePool, mut rx: mpsc::Receiver<Pending>) {
        let mut batch = Vec::with_capacity(1024);
        while rx.recv_many(&mut batch, 1024).await > 0 {
            let ok = async {
                let mut tx = pool.begin().await?;
                for chunk in batch.chunks(200) {
                    let mut qb = sqlx::QueryBuilder::new("INSERT INTO journal (body) ");
                    qb.push_values(chunk, |mut b, (body, _)| {
                        b.push_bind(body.clone());
                    });
                    qb.build().execute(&mut *tx).await?;
                }
                tx.commit().await
            }
            .await
            .is_ok();
            for (_, done) in batch.drain(..) {
                let _ = done.send(ok);
            }
        }
    }

    pub async fn serve(path: &str) -> anyhow::Result<()> {
        use http_body_util::BodyExt;
        let pool = open(path).await?;
        sqlx::query("CREATE TABLE IF NOT EXISTS journal (id INTEGER PRIMARY KEY, body BLOB NOT NULL)")
            .execute(&pool)
            .await?;
        let (tx, rx) = mpsc::channel::<Pending>(8192);
        tokio::spawn(writer(pool, rx));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        println!("listening on http://{}", listener.local_addr()?);
        loop {
            let (stream, _) = listener.accept().await?;
            let tx = tx.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let tx = tx.clone();
                    async move {
                        let header = req
                            .headers()
                            .get("x-hub-signature-256")
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_string);
                        let body = req.into_body().collect().await?.to_bytes();
                        let signed =
                            wagate_core::signature::verify_hub(header.as_deref(), &body, [crate::common::APP_SECRET])
                                .is_ok();
                        let (done, committed) = oneshot::channel();
                        let status = if !signed {
                            403
                        } else if tx.send((body.to_vec(), done)).await.is_ok() && committed.await == Ok(true) {
                            200
                        } else {
                            503
                        };
                        let mut resp = hyper::Response::new(http_body_util::Full::new(bytes::Bytes::new()));
                        *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or_default();
                        Ok::<_, hyper::Error>(resp)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    }
}

/// What a process has used so far, from `/proc` (Linux): CPU seconds (user + system) and peak
/// resident memory in MiB. `None` elsewhere.
pub fn process_usage(pid: u32) -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) close with ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, in USER_HZ (100 per second on Linux).
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let peak_kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some((ticks / 100.0, peak_kib / 1024.0))
}
