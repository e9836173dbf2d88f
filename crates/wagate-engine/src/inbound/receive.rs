//! Meta's webhook in: the verify handshake, the signature over the raw bytes, routing to an
//! account (or quarantine), and the journal. A body is acknowledged only once committed.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use wagate_core::signature::{constant_time_eq, verify_hub, SignatureError};
use wagate_core::webhook::Routing;
use wagate_store::{JournalState, NewJournalEntry};

use crate::accounts::runtime::AccountRuntime;
use crate::clock::now_ms;
use crate::error::{EngineError, EngineResult, Kind};
use crate::state::Engine;

/// Meta's subscription handshake (`hub.mode`, `hub.verify_token`, `hub.challenge`): the
/// challenge to echo when the token is one of the accounts' (or the named account's).
pub fn verify(state: &Engine, account: Option<&str>, q: &HashMap<String, String>) -> EngineResult<String> {
    let mode = q.get("hub.mode").map(String::as_str);
    let token = q.get("hub.verify_token").map(String::as_str).unwrap_or_default();
    let challenge = q.get("hub.challenge").cloned().unwrap_or_default();
    let all = match account {
        Some(a) => state.accounts.find(a).into_iter().collect(),
        None => state.accounts.all().to_vec(),
    };
    let candidates: Vec<&str> = all.iter().map(|a| a.verify_token.as_str()).collect();
    // Compare against every candidate so the time taken does not say which one matched.
    let matched = candidates.iter().fold(false, |acc, t| constant_time_eq(t, token) | acc);
    if mode == Some("subscribe") && matched {
        Ok(challenge)
    } else {
        let (field, message) = if mode != Some("subscribe") {
            ("hub.mode", "hub.mode must be `subscribe`")
        } else {
            (
                "hub.verify_token",
                "hub.verify_token does not match the account's verify token",
            )
        };
        Err(reject(
            "verify_token",
            EngineError::new(Kind::Forbidden, "verification_failed", message)
                .details(serde_json::json!({"field": field}))
                .hint("in Meta's App Dashboard (WhatsApp > Configuration), enter the verify_token configured for this account"),
        ))
    }
}

/// A missing or malformed signature header, refused before the body is read.
pub fn check_signature_header(header: Option<&str>) -> EngineResult<()> {
    wagate_core::signature::check_hub_header(header)
        .map(|_| ())
        .map_err(signature_error)
}

fn signature_error(e: SignatureError) -> EngineError {
    match e {
        SignatureError::Missing => reject(
            "signature_missing",
            EngineError::new(Kind::Unauthenticated, "signature_missing", e.to_string())
                .hint("Meta signs every webhook; a request without X-Hub-Signature-256 did not come from Meta"),
        ),
        _ => reject(
            "signature_invalid",
            EngineError::new(Kind::Forbidden, "signature_invalid", e.to_string()).hint(
                "check that the account's app_secret is the App Secret of the Meta app that sends these webhooks",
            ),
        ),
    }
}

fn reject(reason: &'static str, err: EngineError) -> EngineError {
    metrics::counter!("wagate_webhooks_rejected_total", "reason" => reason).increment(1);
    err
}

/// A webhook POST: checks the signature over the raw bytes, routes the body to an account (or to
/// quarantine), and returns once it is committed to the journal. `wait_processed` (not Meta's:
/// a test or the simulator asks) returns only once the body is processed too (at most 10 s).
pub async fn receive(
    state: &Engine,
    account: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    wait_processed: bool,
) -> EngineResult<()> {
    let scoped = match account {
        Some(a) => Some(state.accounts.find(a).ok_or_else(|| {
            reject(
                "unknown_account",
                EngineError::new(Kind::NotFound, "unknown_account", format!("no account `{a}`"))
                    .hint("use the account's name or id in the webhook URL, or /webhooks/whatsapp"),
            )
        })?),
        None => None,
    };
    let header = signature;
    let all = state.accounts.all();
    let candidates: Vec<&AccountRuntime> = match &scoped {
        Some(a) => vec![a],
        None => all.iter().collect(),
    };
    // The Meta app's own secret too: it signs the webhooks of WABAs no account has yet (a
    // business that just connected through the app).
    let app_secret = state.config.meta.app_secret.as_deref().filter(|_| scoped.is_none());
    let secrets = candidates.iter().map(|a| a.app_secret.as_str()).chain(app_secret);
    let signer = match verify_hub(header, body, secrets) {
        Ok(i) => candidates.get(i).copied(),
        Err(e) => return Err(signature_error(e)),
    };
    // A signed body is Meta's, whatever its shape: it is kept, and one that cannot be processed
    // becomes a `webhook.invalid` event (refusing it would only make Meta retry it for days).
    let mut routed = route_body(state, scoped.as_ref(), body);
    // A number this gateway does not know may be of an account another gateway just made.
    if routed.unknown.is_some() && state.accounts.reload_if_older(state.store.as_ref(), 1_000).await {
        state.accounts_changed();
        routed = route_body(state, scoped.as_ref(), body);
    }
    // A body that names nothing (it is not of Meta's shape) belongs to the one that signed it.
    let account_id = match routed.names_nothing {
        true => scoped.as_ref().or(signer).map(|a| a.id.clone()),
        false => routed.account_id,
    };
    let mut journal_state = JournalState::Pending;
    if let Some((waba, phone)) = routed.unknown {
        if state.config.webhook.unknown_accounts == "quarantine" {
            metrics::counter!("wagate_webhooks_quarantined_total").increment(1);
            tracing::warn!(waba = %waba.as_deref().unwrap_or_default(), phone_number_id = %phone.as_deref().unwrap_or_default(),
                "a signed webhook names a phone number no account has; kept in quarantine (GET /v1/journal/quarantined)");
            journal_state = JournalState::Quarantined;
        } else {
            return Err(reject("unknown_account", EngineError::new(Kind::Forbidden, "unknown_account",
                format!("the webhook is for WABA {} / phone number {}, which no account has", waba.unwrap_or_default(), phone.unwrap_or_default()))
                .hint("add the account (waba_id and phone_number_ids) to the configuration, or set webhook.unknown_accounts = \"quarantine\" (the default)")));
        }
    }
    let pending = journal_state == JournalState::Pending;
    state
        .journal
        .append(NewJournalEntry {
            received_at: now_ms(),
            account_id,
            body: body.to_vec(),
            state: journal_state,
        })
        .await?;
    metrics::counter!("wagate_webhooks_received_total").increment(1);
    // Not Meta's: a test or the simulator asks to be answered once the body is processed.
    if pending && wait_processed {
        wait_until_processed(state, Duration::from_secs(10)).await;
    }
    Ok(())
}

/// Waits (at most `within`) until this gateway has processed everything it journalled so far,
/// so that the events of the body just stored can be read.
async fn wait_until_processed(state: &Engine, within: Duration) {
    let stored = state.journal_head.load(Ordering::Relaxed);
    let deadline = tokio::time::Instant::now() + within;
    loop {
        // Made before the check, so that a batch finished right after it still wakes this.
        let processed = state.journal_processed.notified();
        if state.processed_upto.load(Ordering::Relaxed) >= stored {
            return;
        }
        if tokio::time::timeout_at(deadline, processed).await.is_err() {
            return;
        }
    }
}

/// Where a signed body goes.
struct Routed {
    /// The first account it names.
    account_id: Option<String>,
    /// A message or status (it names a phone number) for a number no account has: it waits in
    /// quarantine until the account exists.
    unknown: Option<(Option<String>, Option<String>)>,
    /// The body names no WABA or number at all (it is not of Meta's shape).
    names_nothing: bool,
}

/// Routes a body by the WABAs and numbers it names. An account-level update (no phone number)
/// for a WABA no account has is not unknown: it is how a new customer arrives (Meta's
/// `account_update` with PARTNER_ADDED or PARTNER_APP_INSTALLED names the WABA before it is
/// connected), so it is processed, as an event of no account that carries the WABA id.
fn route_body(state: &Engine, scoped: Option<&AccountRuntime>, body: &[u8]) -> Routed {
    let routing = Routing::parse(body);
    let mut routed = Routed {
        account_id: None,
        unknown: None,
        names_nothing: true,
    };
    for (waba, phone) in routing.targets() {
        if waba.is_none() && phone.is_none() {
            continue;
        }
        routed.names_nothing = false;
        match state.accounts.route(waba, phone) {
            Some(a) if scoped.is_none_or(|s| s.id == a.id) => {
                routed.account_id.get_or_insert_with(|| a.id.clone());
            }
            _ if phone.is_none() => {}
            _ => routed.unknown = Some((waba.map(str::to_string), phone.map(str::to_string))),
        }
    }
    routed
}

/// Releases quarantined webhooks whose every number now has an account: they are processed as
/// that account's. Runs at start (an account added to the configuration picks up what waited
/// for it) and through `POST /v1/journal/quarantined/requeue`. Returns (released, still waiting).
pub async fn release_quarantined(state: &Engine) -> Result<(u64, u64), wagate_store::StoreError> {
    let (mut released, mut waiting, mut after) = (0, 0, 0);
    loop {
        let page = state.store.quarantined_journal(after, 500).await?;
        let Some(last) = page.last() else { break };
        after = last.id;
        for entry in &page {
            let routed = route_body(state, None, &entry.body);
            if routed.unknown.is_some() {
                waiting += 1;
                continue;
            }
            if state
                .store
                .release_quarantined(entry.id, routed.account_id.as_deref())
                .await?
            {
                released += 1;
            }
        }
    }
    if released > 0 {
        tracing::info!(
            released,
            waiting,
            "quarantined webhooks released to the accounts that now exist"
        );
        state.wake_processor.notify_one();
    }
    Ok((released, waiting))
}
