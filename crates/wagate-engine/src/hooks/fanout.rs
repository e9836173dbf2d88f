//! Fan-out: reads the event log from each enabled hook's cursor, decides in core which events
//! the hook takes, and records them as deliveries while moving the cursor, in one transaction
//! (the cursor only moves from where it was read, so two gateways never fan out the same events
//! twice).

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use wagate_store::EventFilter;

use super::filters::{filter_for, matching, matching_bodies};
use crate::clock::now_ms;
use crate::state::Engine;

/// Events read per hook per fan-out round.
const FAN_OUT_BATCH: i64 = 500;

/// Turns new events into deliveries, until cancelled.
pub async fn run_fan_out(state: Engine, cancel: CancellationToken) {
    let mut last_backlog = Instant::now();
    loop {
        let moved = match fan_out_once(&state).await {
            Ok(n) => n,
            Err(e) => {
                tracing::error!(error = %e, "hook fan-out failed; will retry");
                0
            }
        };
        if last_backlog.elapsed() > Duration::from_secs(5) {
            last_backlog = Instant::now();
            report_backlog(&state).await;
        }
        if moved > 0 {
            state.mark_hooks_busy();
            state.wake_deliveries.notify_one();
            continue;
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = state.wake_hooks.notified() => {}
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
        }
    }
}

/// One round over the enabled hooks; returns how many events were read.
pub async fn fan_out_once(state: &Engine) -> Result<usize, wagate_store::StoreError> {
    let mut read = 0;
    for hook in state.store.list_hooks().await?.into_iter().filter(|h| h.enabled) {
        if hook.format == "meta" {
            let bodies = state
                .store
                .journal_page(hook.cursor_seq, None, None, FAN_OUT_BATCH)
                .await?;
            let Some(last) = bodies.last().map(|e| e.id) else {
                continue;
            };
            let taken = matching_bodies(&filter_for(state, &hook), &bodies);
            state
                .store
                .add_deliveries(&hook.id, &taken, Some((hook.cursor_seq, last)), now_ms())
                .await?;
            read += bodies.len();
            continue;
        }
        let events = state
            .store
            .list_events(&EventFilter {
                after_seq: Some(hook.cursor_seq),
                limit: FAN_OUT_BATCH,
                ..EventFilter::default()
            })
            .await?;
        let Some(last) = events.last().map(|e| e.seq) else {
            continue;
        };
        let taken = matching(&filter_for(state, &hook), &events);
        state
            .store
            .add_deliveries(&hook.id, &taken, Some((hook.cursor_seq, last)), now_ms())
            .await?;
        read += events.len();
    }
    Ok(read)
}

async fn report_backlog(state: &Engine) {
    let Ok(hooks) = state.store.list_hooks().await else {
        return;
    };
    // Summed over the hooks: `/metrics` is read without a key, so it names no hook (each
    // hook's backlog is in `GET /v1/hooks/{id}`, behind its tenant's key).
    let (mut pending, mut failing) = (0u64, 0u64);
    for h in hooks {
        if let Ok(health) = state.store.hook_health(&h.id).await {
            pending += health.pending.max(0) as u64;
        }
        failing += u64::from(h.failing_since.is_some());
    }
    metrics::gauge!("wagate_hook_backlog").set(pending as f64);
    metrics::gauge!("wagate_hooks_failing").set(failing as f64);
}
