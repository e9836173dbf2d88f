//! Retention: rows past `[retention]` are deleted in small batches, in the background every
//! `retention.interval_seconds` and by `wagate prune`; inbound media files no row refers to any
//! more are deleted with them.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use wagate_store::{Pruned, Store};

use crate::clock::now_ms;
use crate::config::RetentionConfig;
use crate::media::blobs::Blobs;
use crate::state::Engine;

/// Prunes everything past retention, batch after batch, until nothing is left to delete.
/// `pause` lets other work through between batches.
pub async fn prune_all(
    store: &dyn Store,
    retention: &RetentionConfig,
    blobs: &Blobs,
    pause: Duration,
) -> Result<Pruned, wagate_store::StoreError> {
    let cutoffs = retention.cutoffs(now_ms());
    let mut total = Pruned::default();
    loop {
        let step = store.prune(&cutoffs, retention.batch).await?;
        for hash in &step.unreferenced_media {
            if let Err(error) = blobs.delete(hash).await {
                tracing::warn!(%hash, %error, "could not delete pruned media bytes");
            }
        }
        total.add(&step);
        if step.total() == 0 {
            return Ok(total);
        }
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
    }
}

pub async fn run(state: Engine, cancel: CancellationToken) {
    let every = Duration::from_secs(state.config.retention.interval_seconds);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        match prune_all(
            state.store.as_ref(),
            &state.config.retention,
            &state.blobs,
            Duration::from_millis(50),
        )
        .await
        {
            Ok(p) if p.total() > 0 => tracing::info!(
                journal = p.journal,
                events = p.events,
                statuses = p.statuses,
                jobs = p.jobs,
                deliveries = p.deliveries,
                attempts = p.attempts,
                media = p.media,
                "pruned what is past retention"
            ),
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "pruning failed; it runs again later"),
        }
    }
}
