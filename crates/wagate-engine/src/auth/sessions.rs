//! Console sign-ins: failed ones are counted per address (by this gateway), and an address with
//! too many is refused for a while. The sessions themselves are kept in the database
//! ([`super::signin`]), so that every gateway sharing it knows them.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::clock::now_ms;

/// Failed sign-ins an address may make within [`FAILURE_WINDOW_MS`] before it is refused.
pub const MAX_FAILURES: u32 = 5;
/// The window failed sign-ins are counted in.
pub const FAILURE_WINDOW_MS: i64 = 5 * 60 * 1000;

/// The failed sign-ins of this gateway, by address.
#[derive(Default)]
pub struct SignInFailures {
    failures: Mutex<HashMap<String, (u32, i64)>>,
}

/// The SHA-256 of a session id: what the database keeps.
pub fn id_hash(id: &str) -> String {
    wagate_core::signature::sha256_hex(id.as_bytes())
}

impl SignInFailures {
    /// Whether `address` made too many failed sign-ins lately.
    pub fn too_many_failures(&self, address: &str) -> bool {
        let map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        map.get(address)
            .is_some_and(|(n, since)| *n >= MAX_FAILURES && now_ms() - since < FAILURE_WINDOW_MS)
    }

    /// A failed sign-in from `address`.
    pub fn failed(&self, address: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let now = now_ms();
        map.retain(|_, (_, since)| now - *since < FAILURE_WINDOW_MS);
        let entry = map.entry(address.to_string()).or_insert((0, now));
        entry.0 += 1;
    }

    /// A good sign-in from `address` clears its failures.
    pub fn succeeded(&self, address: &str) {
        self.failures.lock().unwrap_or_else(|e| e.into_inner()).remove(address);
    }
}
