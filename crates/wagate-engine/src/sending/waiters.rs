//! Requests waiting for a message to leave `queued` (`?wait=accepted`), woken by the send worker
//! here or, through the store's notification, on another gateway.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

/// Requests waiting for a message to leave `queued` (`?wait=accepted`).
#[derive(Default)]
pub struct Waiters(Mutex<HashMap<String, Arc<Notify>>>);

impl Waiters {
    pub fn register(&self, message_id: &str) -> Arc<Notify> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(message_id.to_string()).or_default().clone()
    }

    pub fn wake(&self, message_id: &str) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.remove(message_id) {
            n.notify_waiters();
            n.notify_one();
        }
    }

    pub fn forget(&self, message_id: &str) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).remove(message_id);
    }
}
