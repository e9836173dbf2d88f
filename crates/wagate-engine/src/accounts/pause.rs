//! Pausing an account's sending (by hand, or when Meta's answer says the account cannot send) and
//! resuming it, each raising an `account.alert` event.

use std::sync::atomic::Ordering;

use super::runtime::{AccountRuntime, Pause};
use crate::clock::now_ms;
use crate::state::Engine;

/// Pauses an account's sending: queued messages wait, new sends answer `account_paused`. Kept in
/// the store (a restart stays paused) and told as an `account.alert` event, which is recorded
/// before the API shows the pause. Returns false when it was paused already (nothing is told
/// twice); a pause by hand replaces one from Meta's answer, so that only resume ends it.
pub async fn pause(state: &Engine, account: &AccountRuntime, pause: Pause) -> bool {
    let _turn = account.live.turn.lock().await;
    if account.pause().is_some_and(|before| before.by_hand || !pause.by_hand) {
        return false;
    }
    account.live.held.store(true, Ordering::SeqCst);
    let json = serde_json::to_string(&pause).unwrap_or_default();
    if let Err(e) = state.store.set_account_pause(&account.id, Some(&json)).await {
        tracing::error!(account = %account.name, error = %e, "could not record the pause; it holds until a restart");
    }
    tracing::warn!(account = %account.name, reason = %pause.reason, hint = %pause.hint, "sending paused");
    alert(state, account, "paused", Some(&pause)).await;
    account.set_pause(Some(pause));
    true
}

/// Resumes an account's sending; queued messages go. Returns the pause it ended, if any.
pub async fn resume(state: &Engine, account: &AccountRuntime, why: &str) -> Option<Pause> {
    let _turn = account.live.turn.lock().await;
    let ended = account.pause()?;
    if let Err(e) = state.store.set_account_pause(&account.id, None).await {
        tracing::error!(account = %account.name, error = %e, "could not record the resume; the pause comes back after a restart");
    }
    tracing::info!(account = %account.name, why, "sending resumed");
    alert(state, account, "resumed", None).await;
    account.set_pause(None);
    account.live.held.store(false, Ordering::SeqCst);
    state.wake_sender.notify_one();
    Some(ended)
}

async fn alert(state: &Engine, account: &AccountRuntime, what: &str, pause: Option<&Pause>) {
    let payload = serde_json::json!({
        "source": "wagate",
        "account": account.id,
        "account_name": account.name,
        "alert": format!("sending_{what}"),
        "pause": pause,
    });
    state.emit(Some(&account.id), "account.alert", &payload).await;
}

/// The pause for an account-level error from Meta.
pub fn pause_for_meta_error(error: &wagate_core::meta::MetaError) -> Pause {
    Pause {
        reason: format!("Meta answered {}: {}", error.code, error.summary()),
        code: Some(error.code),
        hint: format!(
            "{}; then PUT /v1/accounts/{{name}}/token with a new token (or `wagate accounts set-token`), or POST /v1/accounts/{{name}}/resume",
            wagate_core::meta::error_info(error.code).hint
        ),
        since: wagate_core::time::rfc3339_ms(now_ms()),
        by_hand: false,
    }
}
