//! What the benchmarks share: the account they play Meta for, and starting the release binary
//! on a fresh database.

use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncBufReadExt, BufReader};

pub const APP_SECRET: &str = "bench-app-secret-0123456789abcdef";
pub const WABA: &str = "102290129340398";
pub const PHONE_ID: &str = "106540352242922";

/// The `wagate` binary: the one given, else the one built beside this benchmark.
pub fn wagate_path(given: Option<String>) -> anyhow::Result<String> {
    Ok(match given {
        Some(p) => p,
        None => std::env::current_exe()?.with_file_name("wagate").display().to_string(),
    })
}

/// A running `wagate serve` and its address (`127.0.0.1:port`).
pub struct Running {
    pub child: tokio::process::Child,
    pub addr: String,
}

/// Starts `wagate serve` with one account (Meta unreachable: the benchmarks play Meta
/// themselves), the configuration file and the extra variables given.
pub async fn start_wagate(
    wagate: &str,
    database_url: &str,
    config: &std::path::Path,
    api_key: &str,
    extra_env: &[(&str, &str)],
) -> anyhow::Result<Running> {
    let mut command = tokio::process::Command::new(wagate);
    command
        .arg("serve")
        .env("WAGATE_CONFIG", config)
        .env("WAGATE_BIND", "127.0.0.1:0")
        .env("WAGATE_DATABASE_URL", database_url)
        .env("WAGATE_LOG", "warn")
        .env("WAGATE_BOOTSTRAP_API_KEY", api_key)
        .env("WHATSAPP_ACCESS_TOKEN", "bench-token")
        .env("WHATSAPP_PHONE_NUMBER_ID", PHONE_ID)
        .env("WHATSAPP_WABA_ID", WABA)
        .env("WHATSAPP_APP_SECRET", APP_SECRET)
        .env("WHATSAPP_VERIFY_TOKEN", "bench-verify")
        .env("WAGATE_GRAPH_URL", "http://127.0.0.1:9");
    for (k, v) in extra_env {
        command.env(k, v);
    }
    spawn(command)
        .await
        .with_context(|| format!("starting {wagate} (build it with cargo build --release -p wagate)"))
}

/// Starts a server whose first line of output names its address (`… http://127.0.0.1:port …`).
pub async fn spawn(mut command: tokio::process::Command) -> anyhow::Result<Running> {
    let mut child = command.stdout(Stdio::piped()).kill_on_drop(true).spawn()?;
    let mut lines = BufReader::new(child.stdout.take().context("stdout")?).lines();
    let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await??
        .context("no output")?;
    let addr = first
        .split("http://")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .with_context(|| format!("unexpected first line: {first}"))?
        .to_string();
    Ok(Running { child, addr })
}

/// `wagate sim` on a free port, playing Meta for the benchmarks' account, without webhooks
/// (set them with `POST /_sim/settings` once the gateway is up).
#[allow(dead_code)]
pub async fn start_sim(wagate: &str) -> anyhow::Result<(tokio::process::Child, String)> {
    let mut child = tokio::process::Command::new(wagate)
        .args(["sim", "--bind", "127.0.0.1:0"])
        .env("WHATSAPP_ACCESS_TOKEN", "bench-token")
        .env("WHATSAPP_APP_SECRET", APP_SECRET)
        .env("WHATSAPP_PHONE_NUMBER_ID", PHONE_ID)
        .env("WHATSAPP_WABA_ID", WABA)
        .env("WAGATE_LOG", "warn")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting wagate sim")?;
    let mut lines = BufReader::new(child.stdout.take().context("stdout")?).lines();
    let url = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(rest) = line.split("simulator on ").nth(1) {
                return rest.split_whitespace().next().map(str::to_string);
            }
        }
        None
    })
    .await?
    .context("the simulator's address")?;
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok((child, url))
}

/// A hook receiver on a free loopback port, answering each request with what `answer` says:
/// (status, and the request's body read). Returns its URL.
#[allow(dead_code)]
pub async fn hook_receiver<F, Fut>(answer: F) -> anyhow::Result<String>
where
    F: Fn(hyper::Request<hyper::body::Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = u16> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let answer = answer.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let answer = answer.clone();
                    async move {
                        let status = answer(req).await;
                        let mut resp =
                            hyper::Response::new(http_body_util::Full::new(bytes::Bytes::from_static(b"ok")));
                        *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or_default();
                        Ok::<_, std::convert::Infallible>(resp)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(url)
}
