//! The journal's operations for an operator: webhooks set aside because they failed to apply on
//! their own, webhooks kept in quarantine because no account has their phone number, and
//! requeueing both once the cause is fixed.

use serde::Serialize;
use utoipa::ToSchema;
use wagate_core::time::rfc3339_ms;

use super::receive::release_quarantined;
use crate::auth::Caller;
use crate::error::{EngineError, EngineResult, Kind};
use crate::state::Engine;

#[derive(Serialize, ToSchema)]
pub struct DeadEntryView {
    /// The journal entry's id.
    pub id: i64,
    pub received_at: String,
    pub set_aside_at: Option<String>,
    /// The account it was routed to at intake, if any.
    pub account: Option<String>,
    /// Why it could not be applied (the database's error).
    pub error: Option<String>,
    /// Meta's body as received.
    pub body: String,
}

#[derive(Serialize, ToSchema)]
pub struct DeadList {
    pub data: Vec<DeadEntryView>,
}

/// Webhooks set aside because they failed to apply on their own (the rest kept flowing).
pub async fn dead(state: &Engine, caller: &Caller, limit: i64) -> EngineResult<DeadList> {
    caller.require_global("admin")?;
    let data = state
        .store
        .dead_journal(limit)
        .await?
        .into_iter()
        .map(|e| DeadEntryView {
            id: e.id,
            received_at: rfc3339_ms(e.received_at),
            set_aside_at: e.processed_at.map(rfc3339_ms),
            account: e.account_id,
            error: e.error,
            body: String::from_utf8_lossy(&e.body).to_string(),
        })
        .collect();
    Ok(DeadList { data })
}

#[derive(Serialize, ToSchema)]
pub struct QuarantinedEntryView {
    /// The journal entry's id.
    pub id: i64,
    pub received_at: String,
    /// The WABAs it names.
    pub waba_ids: Vec<String>,
    /// The phone numbers (phone_number_id) it names; those no account has keep it here.
    pub phone_number_ids: Vec<String>,
    /// Meta's body as received.
    pub body: String,
}

#[derive(Serialize, ToSchema)]
pub struct QuarantinedList {
    pub data: Vec<QuarantinedEntryView>,
    /// What to do about them.
    pub hint: &'static str,
}

const QUARANTINE_HINT: &str = "add an account with these phone numbers (and WABA), then POST /v1/journal/quarantined/requeue (a restart also releases them)";

/// Signed webhooks for phone numbers no account has, kept (acknowledged to Meta) until the
/// account exists; oldest first, after the journal id `after`.
pub async fn quarantined(state: &Engine, caller: &Caller, after: i64, limit: i64) -> EngineResult<QuarantinedList> {
    caller.require_global("admin")?;
    let data = state
        .store
        .quarantined_journal(after, limit)
        .await?
        .into_iter()
        .map(|e| {
            let routing = wagate_core::webhook::Routing::parse(&e.body);
            let (mut waba_ids, mut phone_number_ids) = (Vec::new(), Vec::new());
            for (waba, phone) in routing.targets() {
                for (id, list) in [(waba, &mut waba_ids), (phone, &mut phone_number_ids)] {
                    if let Some(id) = id.filter(|id| !list.iter().any(|x: &String| x == id)) {
                        list.push(id.to_string());
                    }
                }
            }
            QuarantinedEntryView {
                id: e.id,
                received_at: rfc3339_ms(e.received_at),
                waba_ids,
                phone_number_ids,
                body: String::from_utf8_lossy(&e.body).to_string(),
            }
        })
        .collect();
    Ok(QuarantinedList {
        data,
        hint: QUARANTINE_HINT,
    })
}

#[derive(Serialize, ToSchema)]
pub struct Released {
    /// Entries queued for processing as the accounts that now have their numbers.
    pub released: u64,
    /// Entries still naming a number no account has.
    pub still_quarantined: u64,
}

/// Processes every quarantined webhook whose phone numbers now all have an account.
pub async fn release(state: &Engine, caller: &Caller) -> EngineResult<Released> {
    caller.require_global("admin")?;
    let (released, still_quarantined) = release_quarantined(state).await?;
    let details = serde_json::json!({"released": released, "still_quarantined": still_quarantined});
    crate::audit::record(state, caller, "journal.quarantine_released", None, None, details).await;
    Ok(Released {
        released,
        still_quarantined,
    })
}

#[derive(Serialize, ToSchema)]
pub struct Requeued {
    pub id: i64,
    pub requeued: bool,
}

/// Queues a set-aside webhook (by its journal id, as given) for processing again.
pub async fn requeue(state: &Engine, caller: &Caller, id: &str) -> EngineResult<Requeued> {
    caller.require_global("admin")?;
    let id: i64 = id.parse().map_err(|_| {
        EngineError::invalid_field(
            "id",
            format!("`{id}` is not a journal entry id"),
            "use the id from GET /v1/journal/dead",
        )
    })?;
    if !state.store.requeue_journal(id).await? {
        return Err(
            EngineError::new(Kind::NotFound, "not_found", format!("no set-aside journal entry {id}"))
                .hint("GET /v1/journal/dead lists the entries that can be requeued"),
        );
    }
    state.wake_processor.notify_one();
    crate::audit::record(
        state,
        caller,
        "journal.requeued",
        Some(&id.to_string()),
        None,
        serde_json::json!({}),
    )
    .await;
    Ok(Requeued { id, requeued: true })
}
