//! Console sessions, kept on the server: the browser holds only a random session id (in an
//! `HttpOnly` cookie), never the API key. A session names the key by its hash, so that a key
//! revoked or expired ends its sessions at the next request. Failed sign-ins are counted per
//! address, and an address with too many is refused for a while.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::clock::now_ms;

/// Failed sign-ins an address may make within [`FAILURE_WINDOW_MS`] before it is refused.
pub const MAX_FAILURES: u32 = 5;
/// The window failed sign-ins are counted in.
pub const FAILURE_WINDOW_MS: i64 = 5 * 60 * 1000;

/// A signed-in browser.
#[derive(Debug, Clone)]
pub struct Session {
    /// The SHA-256 of the API key it signed in with.
    pub key_hash: String,
    /// The token every form of this session carries.
    pub csrf: String,
    pub expires_at: i64,
}

/// The sessions of this gateway, by the SHA-256 of their id.
#[derive(Default)]
pub struct Sessions {
    sessions: Mutex<HashMap<String, Session>>,
    failures: Mutex<HashMap<String, (u32, i64)>>,
}

fn id_hash(id: &str) -> String {
    wagate_core::signature::sha256_hex(id.as_bytes())
}

impl Sessions {
    /// A new session for the key with this hash, lasting `hours`: its id (for the cookie) and
    /// the session.
    pub fn start(&self, key_hash: String, hours: u64) -> (String, Session) {
        let id = wagate_core::ids::secret("ws_", 24);
        let session = Session {
            key_hash,
            csrf: wagate_core::ids::secret("csrf_", 16),
            expires_at: now_ms() + hours as i64 * 3_600_000,
        };
        let mut map = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        let now = now_ms();
        map.retain(|_, s| s.expires_at > now);
        map.insert(id_hash(&id), session.clone());
        (id, session)
    }

    /// The session with this id, unless it has expired.
    pub fn get(&self, id: &str) -> Option<Session> {
        let mut map = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        let key = id_hash(id);
        match map.get(&key) {
            Some(s) if s.expires_at > now_ms() => Some(s.clone()),
            Some(_) => {
                map.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Ends a session (sign-out).
    pub fn end(&self, id: &str) {
        self.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id_hash(id));
    }

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
