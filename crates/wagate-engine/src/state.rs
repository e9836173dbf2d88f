//! The engine's shared state: what every operation and worker reads, and the small named ports
//! between slices (the accounts changed, a hook changed, the database failed).

use std::sync::Arc;

use tokio::sync::Notify;
use wagate_graph::GraphClient;
use wagate_store::Store;

use crate::accounts::runtime::Accounts;
use crate::clock::now_ms;
use crate::config::Config;

/// What every operation and worker shares: the configuration, the store, the accounts and the
/// wake-ups between workers. Cheap to clone.
#[derive(Clone)]
pub struct Engine(pub(crate) Arc<Inner>);

pub struct Inner {
    pub config: Config,
    pub store: Arc<dyn Store>,
    /// Where the bytes of inbound media live (`media.store`).
    pub blobs: crate::media::blobs::Blobs,
    pub accounts: Accounts,
    pub graph: GraphClient,
    pub journal: crate::inbound::journal::JournalWriter,
    pub wake_processor: Notify,
    /// The newest journal entry this gateway committed, and the newest it has processed: their
    /// difference is the backlog that paces acknowledgements (`webhook.pace_backlog`).
    pub journal_head: std::sync::atomic::AtomicI64,
    pub processed_upto: std::sync::atomic::AtomicI64,
    /// A batch was processed.
    pub journal_processed: Notify,
    /// Until when (unix ms) hook deliveries have work in hand: processing then shares the
    /// database writer with them rather than running ahead of what can be delivered.
    pub hooks_busy_until: std::sync::atomic::AtomicI64,
    pub wake_sender: Notify,
    pub wake_media: Notify,
    /// New events: the hook fan-out looks at once.
    pub wake_hooks: Notify,
    /// New or due deliveries, or a freed delivery slot.
    pub wake_deliveries: Notify,
    /// Bumped when a hook is created, changed or deleted: the delivery loop reads them again.
    pub hooks_version: std::sync::atomic::AtomicU64,
    /// Bumped when events are written: every live stream (`/v1/events/stream`) looks.
    pub events_written: tokio::sync::watch::Sender<u64>,
    pub sent_waiters: crate::sending::waiters::Waiters,
    /// Meta's throughput and pair limits, kept before Meta has to refuse.
    pub throttle: crate::sending::throttle::Throttle,
    pub default_country: Option<phonenumber::country::Id>,
    /// When this gateway started (unix ms): statuses sent while no gateway was up arrive late.
    pub started_at_ms: i64,
    /// This gateway process among those sharing the database: its claims carry this id, and
    /// its heartbeat keeps them (`cluster`).
    pub instance: String,
    /// Where others reach this gateway: `public_url`, else `http://<the address it listens on>`.
    pub public_base: String,
    /// The JWT issuer's keys, cached (`[auth.jwt]`).
    pub jwks: crate::auth::jwt::Jwks,
    /// When each account's token expires, as last checked.
    pub token_expiry: TokenExpiry,
    /// The accounts whose marketing a spent budget stops.
    pub budget_stops: crate::usage::stops::Stops,
    /// Failed console sign-ins, by address.
    pub sign_in_failures: crate::auth::sessions::SignInFailures,
    /// When (unix ms) a request was last refused because the database did not answer, and why:
    /// `/ready` reports it for a while (a write lock held elsewhere, say, leaves reads working).
    pub database_failed_at: std::sync::Mutex<Option<(i64, String)>>,
}

impl Inner {
    /// The accounts were read again: their numbers' send limits follow.
    pub fn accounts_changed(&self) {
        let limits: Vec<(String, u32)> = self
            .accounts
            .all()
            .iter()
            .flat_map(|a| {
                let limit = a.messages_per_second.unwrap_or(self.config.sender.messages_per_second);
                a.phone_number_ids.iter().map(move |p| (p.clone(), limit))
            })
            .collect();
        self.throttle.set_limits(&limits);
    }

    /// Reads the accounts again (one changed here or on another gateway).
    pub async fn reload_accounts(&self) {
        match self.accounts.reload(self.store.as_ref()).await {
            Ok(()) => self.accounts_changed(),
            Err(e) => tracing::warn!(error = %e, "could not read the accounts again"),
        }
    }

    /// A request was refused because the database did not answer.
    pub fn database_failed(&self, why: &str) {
        let mut failed = self.database_failed_at.lock().unwrap_or_else(|e| e.into_inner());
        *failed = Some((now_ms(), why.to_string()));
    }

    /// Why the database failed a request in the last `within_ms`, if it did.
    pub fn database_failed_recently(&self, within_ms: i64) -> Option<String> {
        let failed = self.database_failed_at.lock().unwrap_or_else(|e| e.into_inner());
        failed
            .as_ref()
            .filter(|(at, _)| now_ms() - at < within_ms)
            .map(|(_, why)| why.clone())
    }

    /// Hook deliveries moved or claimed work: they count as busy for the next 200 ms.
    pub fn mark_hooks_busy(&self) {
        self.hooks_busy_until
            .store(now_ms() + 200, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether hook deliveries have work in hand (processing then shares the writer with them).
    pub fn hooks_busy(&self) -> bool {
        now_ms() < self.hooks_busy_until.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Records an event of the gateway's own (an account alert, a hook disabled) and lets hooks
    /// and streams see it: the port every slice raises events through.
    pub async fn emit(&self, account_id: Option<&str>, event_type: &str, payload: &serde_json::Value) {
        if let Err(e) = self.store.append_event(account_id, event_type, payload, now_ms()).await {
            tracing::error!(error = %e, event_type, "could not record an event");
            return;
        }
        self.events_written();
    }

    /// Events were written: hooks fan them out, live streams look.
    pub fn events_written(&self) {
        self.wake_hooks.notify_one();
        self.events_written.send_modify(|n| *n += 1);
    }

    /// A hook changed: deliveries use its new settings from now on.
    pub fn hooks_changed(&self) {
        self.hooks_version.fetch_add(1, std::sync::atomic::Ordering::Release);
        self.wake_hooks.notify_one();
        self.wake_deliveries.notify_one();
    }
}

impl std::ops::Deref for Engine {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// When each account's token expires, as last checked by this gateway (unix seconds; `None`:
/// never).
#[derive(Default)]
pub struct TokenExpiry(std::sync::Mutex<std::collections::HashMap<String, Option<i64>>>);

impl TokenExpiry {
    pub(crate) fn set(&self, account_id: &str, at: Option<i64>) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(account_id.to_string(), at);
    }

    /// `None`: not checked yet.
    pub fn get(&self, account_id: &str) -> Option<Option<i64>> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(account_id)
            .copied()
    }
}
