//! The download worker: inbound media fetched right after the webhook is processed (Meta's URL
//! expires within minutes and needs the token), checked against Meta's SHA-256, kept by hash;
//! failures are retried with backoff.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use wagate_store::{Media, MediaOutcome};

use crate::clock::now_ms;
use crate::state::Engine;

pub async fn run(state: Engine, cancel: CancellationToken) {
    loop {
        let due = match state.store.claim_media(&state.instance, 8, 120_000, now_ms()).await {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = %e, "claiming media downloads failed");
                Vec::new()
            }
        };
        if due.is_empty() {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = state.wake_media.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
            continue;
        }
        let tasks: Vec<_> = due
            .into_iter()
            .map(|m| {
                let state = state.clone();
                tokio::spawn(async move {
                    let outcome = download(&state, &m).await;
                    if let MediaOutcome::Failed { error } | MediaOutcome::Retry { error, .. } = &outcome {
                        tracing::warn!(media = %m.id, attempts = m.attempts, error = %error, "media download failed");
                    }
                    metrics::counter!("wagate_media_downloads_total", "result" => match outcome {
                        MediaOutcome::Stored { .. } => "stored",
                        MediaOutcome::Retry { .. } => "retry",
                        MediaOutcome::Failed { .. } => "failed",
                    })
                    .increment(1);
                    if let Err(e) = state.store.finish_media(&m.id, &outcome, now_ms()).await {
                        tracing::error!(media = %m.id, error = %e, "recording a media download failed");
                    }
                })
            })
            .collect();
        for t in tasks {
            let _ = t.await;
        }
    }
}

async fn download(state: &Engine, m: &Media) -> MediaOutcome {
    let retry = |error: String| {
        if m.attempts >= state.config.media.max_attempts {
            MediaOutcome::Failed { error }
        } else {
            let delay = wagate_core::retry::backoff_ms(m.attempts as u32, rand::Rng::random::<f64>(&mut rand::rng()));
            MediaOutcome::Retry {
                at: now_ms() + delay,
                error,
            }
        }
    };
    let Some(account) = state.accounts.by_id(&m.account_id) else {
        return MediaOutcome::Failed {
            error: "the media's account is no longer configured".into(),
        };
    };
    let info = match state
        .graph
        .get(
            &account.access_token(),
            &wagate_graph::GraphPath::new([m.meta_media_id.as_str()]),
        )
        .await
    {
        Ok(i) => i,
        Err(e) => return retry(format!("getting the media URL: {e}")),
    };
    let Some(url) = info.get("url").and_then(|u| u.as_str()) else {
        return retry("Meta's answer had no url".into());
    };
    let bytes = match state.graph.download(&account.access_token(), url).await {
        Ok(b) => b,
        Err(e) => return retry(format!("downloading: {e}")),
    };
    let expected = m
        .sha256
        .clone()
        .or_else(|| info.get("sha256").and_then(|s| s.as_str()).map(str::to_string));
    if let Some(expected) = expected {
        let got = wagate_core::signature::sha256_base64(&bytes);
        if got != expected {
            return retry(format!(
                "the bytes do not match Meta's sha256 (expected {expected}, got {got})"
            ));
        }
    }
    let hash = wagate_core::signature::sha256_hex(&bytes);
    if let Err(e) = state.blobs.put(&hash, &bytes).await {
        return retry(e);
    }
    MediaOutcome::Stored {
        content_hash: hash,
        size: bytes.len() as i64,
    }
}
