//! The webhook load generator the ingest and scale-out benchmarks share.

use crate::common::APP_SECRET;

/// One load-generator connection (hyper HTTP/1.1, kept alive, like wrk): posts signed webhooks,
/// numbered from the shared counter and built by `body`, until `stop`; returns the
/// acknowledged ones (number, latency in µs) and counts the refused ones in `errors`.
pub async fn post_webhooks(
    addr: String,
    next: std::sync::Arc<std::sync::atomic::AtomicU64>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    errors: std::sync::Arc<std::sync::atomic::AtomicU64>,
    body: impl Fn(u64) -> String,
) -> anyhow::Result<Vec<(u64, u32)>> {
    use std::sync::atomic::Ordering;
    let mut acked: Vec<(u64, u32)> = Vec::with_capacity(1 << 16);
    let stream = tokio::net::TcpStream::connect(&addr).await?;
    stream.set_nodelay(true)?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    while !stop.load(Ordering::Relaxed) {
        let n = next.fetch_add(1, Ordering::Relaxed);
        let body = body(n);
        let sig = wagate_core::signature::sign_hub(APP_SECRET, body.as_bytes());
        let req = hyper::Request::post("/webhooks/whatsapp")
            .header("host", &addr)
            .header("content-type", "application/json")
            .header("x-hub-signature-256", sig)
            .body(http_body_util::Full::new(bytes::Bytes::from(body)))?;
        let t = std::time::Instant::now();
        match sender.send_request(req).await {
            Ok(resp) => {
                let ok = resp.status().as_u16() == 200;
                let _ = http_body_util::BodyExt::collect(resp.into_body()).await;
                if ok {
                    acked.push((n, t.elapsed().as_micros() as u32));
                } else {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(_) => {
                errors.fetch_add(1, Ordering::Relaxed);
                break;
            }
        }
    }
    Ok(acked)
}
