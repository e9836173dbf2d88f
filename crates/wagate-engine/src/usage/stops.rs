//! Which accounts' marketing is stopped by a spent budget (kept apart so that the engine's
//! state can hold it without knowing budgets).

use std::collections::HashMap;

use rust_decimal::Decimal;

/// An account whose budget (its own or its tenant's) is spent, with hard stop: its figures.
#[derive(Debug, Clone)]
pub struct Stop {
    pub scope: String,
    pub month: String,
    pub spent: Decimal,
    pub amount: Decimal,
    pub currency: String,
}

/// The accounts whose marketing is stopped, as last checked.
#[derive(Default)]
pub struct Stops(std::sync::Mutex<HashMap<String, Stop>>);

impl Stops {
    pub(crate) fn replace(&self, stops: HashMap<String, Stop>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = stops;
    }

    pub(crate) fn get(&self, account_id: &str) -> Option<Stop> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(account_id)
            .cloned()
    }
}
