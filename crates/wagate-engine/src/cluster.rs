//! Gateways sharing a database: each registers itself as an instance and heartbeats. The claims
//! of one that falls silent for `cluster.dead_after_seconds` are taken over by the others — send
//! jobs never called go again at once, those whose call had started are in doubt and await
//! Meta's status webhook, hook deliveries, downloads and webhook batches are free again. A
//! gateway alone on its database (SQLite) takes over its predecessor's claims as it starts, and
//! every gateway gives its own back when it stops.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use wagate_store::{Claims, Store, TakenOver};

use crate::clock::now_ms;
use crate::state::Engine;

/// Registers this process; on SQLite (one gateway per database) first takes over whatever the
/// previous process held. Returns the instance id its claims carry.
pub async fn register(store: &dyn Store) -> Result<String, wagate_store::StoreError> {
    let id = wagate_core::ids::new_id("gw");
    let now = now_ms();
    if store.backend() == "sqlite" {
        if let Some(taken) = store.take_over_claims(Claims::All, now).await? {
            log_taken("the previous run", &taken);
        }
    }
    let host = std::env::var("HOSTNAME").unwrap_or_default();
    store
        .register_instance(&id, &host, std::process::id() as i64, now)
        .await?;
    Ok(id)
}

/// Heartbeats and takes over dead gateways' claims until cancelled.
pub async fn run(state: Engine, cancel: CancellationToken) {
    let cfg = &state.config.cluster;
    let dead_after_ms = cfg.dead_after_seconds as i64 * 1000;
    let mut tick = tokio::time::interval(Duration::from_secs(cfg.heartbeat_seconds.max(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = now_ms();
        match state.store.heartbeat_instance(&state.instance, now).await {
            Ok(true) => {}
            Ok(false) => {
                // Taken for dead (this process stalled past dead_after_seconds): what it held
                // was given to others, whose fences keep this one from finishing it twice.
                tracing::warn!(instance = %state.instance, "this gateway was taken for dead by another (it stalled); registering again");
                let host = std::env::var("HOSTNAME").unwrap_or_default();
                if let Err(e) = state
                    .store
                    .register_instance(&state.instance, &host, std::process::id() as i64, now)
                    .await
                {
                    tracing::error!(error = %e, "registering the gateway again failed");
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "recording the gateway's heartbeat failed");
                continue;
            }
        }
        let stale_before = now - dead_after_ms;
        let dead = match state.store.stale_instances(stale_before).await {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = %e, "reading the other gateways' heartbeats failed");
                continue;
            }
        };
        for instance in dead.iter().filter(|i| **i != state.instance) {
            let whose = Claims::Dead {
                instance,
                stale_before_ms: stale_before,
            };
            match state.store.take_over_claims(whose, now_ms()).await {
                Ok(Some(taken)) => {
                    log_taken(instance, &taken);
                    wake(&state, &taken);
                }
                Ok(None) => {}
                Err(e) => tracing::error!(%instance, error = %e, "taking over a dead gateway's claims failed"),
            }
        }
    }
}

/// Gives back what this gateway still holds (it is stopping), so that others take it at once.
pub async fn release(state: &Engine) {
    match state
        .store
        .take_over_claims(Claims::Own(&state.instance), now_ms())
        .await
    {
        Ok(Some(taken)) => log_taken("this gateway, stopping", &taken),
        Ok(None) => {}
        Err(e) => {
            tracing::error!(error = %e, "giving back this gateway's claims failed; they are taken over once it is seen dead")
        }
    }
}

fn log_taken(whose: &str, taken: &TakenOver) {
    if taken.is_empty() {
        return;
    }
    tracing::warn!(
        from = whose,
        sends = taken.sends_requeued,
        in_doubt = taken.sends_in_doubt,
        deliveries = taken.deliveries,
        media = taken.media,
        journal = taken.journal,
        "claims of a gateway that stopped are taken over"
    );
    metrics::counter!("wagate_claims_taken_over_total")
        .increment(taken.sends_requeued + taken.sends_in_doubt + taken.deliveries + taken.media + taken.journal);
}

fn wake(state: &Engine, taken: &TakenOver) {
    if taken.sends_requeued + taken.sends_in_doubt > 0 {
        state.wake_sender.notify_one();
    }
    if taken.deliveries > 0 {
        state.wake_deliveries.notify_one();
    }
    if taken.media > 0 {
        state.wake_media.notify_one();
    }
    if taken.journal > 0 {
        state.wake_processor.notify_one();
    }
}
