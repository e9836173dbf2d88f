//! Which events and journalled bodies a hook takes: its filter, narrowed to its tenant.

use serde_json::Value;
use wagate_core::hooks::HookFilter;
use wagate_store::{Hook, NewDelivery};

use crate::state::Engine;

/// The filter a stored hook stands for.
pub fn filter_of(h: &Hook) -> HookFilter {
    let list = |s: &str| serde_json::from_str::<Vec<String>>(s).unwrap_or_default();
    HookFilter {
        events: list(&h.events),
        accounts: list(&h.accounts),
        contacts: list(&h.contacts),
    }
}

/// A hook's filter as deliveries use it: a tenant's hook takes its tenant's accounts only
/// (those it names, or all of them), and nothing while the tenant has none.
pub fn filter_for(state: &Engine, h: &Hook) -> HookFilter {
    let mut f = filter_of(h);
    if let Some(t) = &h.tenant {
        let mine: Vec<String> = state
            .accounts
            .all()
            .iter()
            .filter(|a| a.tenant.as_deref() == Some(t))
            .map(|a| a.id.clone())
            .collect();
        f.accounts = match f.accounts.is_empty() {
            true => mine,
            false => f.accounts.into_iter().filter(|a| mine.contains(a)).collect(),
        };
        if f.accounts.is_empty() {
            // An account id no account has: matches nothing.
            f.accounts = vec!["acc_none".into()];
        }
    }
    f
}

/// The delivery key of a journalled body (what `meta`-format hooks deliver).
pub fn journal_key(id: i64) -> String {
    format!("journal_{id}")
}

/// The journalled bodies a `meta`-format hook takes: those of its accounts.
pub fn matching_bodies(filter: &HookFilter, entries: &[wagate_store::JournalEntry]) -> Vec<NewDelivery> {
    entries
        .iter()
        .filter(|e| filter.takes_account(e.account_id.as_deref()))
        .map(|e| NewDelivery {
            event_id: journal_key(e.id),
            seq: e.id,
            contact: None,
        })
        .collect()
}

/// The events a hook with this filter takes, each with the contact it is about.
pub fn matching(filter: &HookFilter, events: &[wagate_store::Event]) -> Vec<NewDelivery> {
    events
        .iter()
        .filter_map(|e| {
            let payload: Value = serde_json::from_str(&e.payload).unwrap_or(Value::Null);
            filter
                .matches(&e.event_type, e.account_id.as_deref(), &payload)
                .then(|| NewDelivery {
                    event_id: e.id.to_string(),
                    seq: e.seq,
                    contact: wagate_core::hooks::event_contact(&payload).map(str::to_string),
                })
        })
        .collect()
}
