//! Opening the engine: the store (migrated, its secrets sealed), the accounts, the first API
//! key, the configuration's hooks, and the workers; and the listener that wakes them for work
//! other gateways committed.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use wagate_graph::GraphClient;
use wagate_store::Store;

use crate::accounts::runtime::Accounts;
use crate::clock::now_ms;
use crate::config::Config;
pub use crate::error::StartError;
use crate::state::{Engine, Inner};

/// How `start` treats API keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyPolicy {
    /// Create an admin key only when none exists (production).
    WhenNone,
    /// Create a fresh admin key at every start (sandbox: the banner always shows a working key).
    Always,
}

/// An opened engine: its state, the API key made at this start (shown once), and its workers.
pub struct Opened {
    pub engine: Engine,
    pub new_api_key: Option<String>,
    pub workers: Workers,
}

/// The engine's background workers: the journal writer, the processor, the sender, media
/// downloads, hook fan-out and delivery, retention, the token checks, and the listener for
/// other gateways' work.
pub struct Workers {
    /// Stops every worker but the journal writer (the doors share it: they stop taking work).
    pub cancel: CancellationToken,
    /// Stops the journal writer, once nothing can append to the journal any more.
    journal_stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    engine: Engine,
}

impl Workers {
    /// Lets in-flight work finish, for at most `server.shutdown_seconds` (from when `deadline`
    /// was set), then gives back what this gateway still holds so that another takes it at once;
    /// call once the doors no longer take requests (in-flight webhooks wait for their journal
    /// commit, so the writer stops last).
    pub async fn finish(self, deadline: tokio::time::Instant) {
        self.cancel.cancel();
        self.journal_stop.cancel();
        let mut tasks = self.tasks;
        let all = futures_util::future::join_all(tasks.iter_mut());
        if tokio::time::timeout_at(deadline, all).await.is_err() {
            tracing::warn!(
                "in-flight work did not finish within server.shutdown_seconds; giving it back (a send whose call had started is in doubt until Meta's status names it)"
            );
            for t in &tasks {
                t.abort();
            }
        }
        crate::cluster::release(&self.engine).await;
    }

    /// When a stop that starts now must be over (`server.shutdown_seconds`).
    pub fn deadline(&self) -> tokio::time::Instant {
        tokio::time::Instant::now() + Duration::from_secs(self.engine.config.server.shutdown_seconds)
    }
}

impl Engine {
    /// Opens the store, runs migrations, seals what was kept in clear, registers the accounts,
    /// applies the configuration's hooks and starts the workers. `public_base` is where others
    /// reach this gateway (`public_url`, else the address its doors listen on).
    pub async fn open(config: Config, public_base: String, keys: KeyPolicy) -> Result<Opened, StartError> {
        crate::secrets::refuse_a_new_key_over_sealed_secrets(&config).await?;
        let sealer = crate::secrets::master_keys(&config)?;
        let store = wagate_store::connect(
            &config.database_url,
            &wagate_store::ConnectOptions {
                max_connections: config.database.max_connections,
                sqlite_synchronous: config.database.sqlite_synchronous.clone(),
                sealer,
            },
        )
        .await?;
        store.migrate().await?;
        // Every secret kept in the database must open with the keys given (else one clear line,
        // not garbage later); one kept in clear, from before sealing, is sealed now.
        match store.seal_secrets(false).await {
            Ok(r) if r.sealed > 0 => {
                tracing::info!(sealed = r.sealed, "secrets kept in clear are now sealed under the master key")
            }
            Ok(_) => {}
            Err(wagate_store::StoreError::Sealed(e)) => {
                return Err(StartError::Config(format!(
                    "{e}; start with WAGATE_MASTER_KEY set to the key the database's secrets were sealed with (while a key is being replaced, the old one goes in WAGATE_MASTER_KEY_PREVIOUS)"
                )))
            }
            Err(e) => return Err(e.into()),
        }
        let accounts = Accounts::register(store.as_ref(), &config.accounts).await?;
        let new_api_key = ensure_api_key(store.as_ref(), config.bootstrap_api_key.as_deref(), keys).await?;
        let graph = GraphClient::new(
            &config.graph_url,
            &config.api_version,
            Duration::from_secs(config.sender.graph_timeout_seconds),
        )?;
        let instance = crate::cluster::register(store.as_ref()).await?;
        // Phone numbers' metadata, loaded aside now rather than by the first request.
        tokio::task::spawn_blocking(wagate_core::phone::warm);
        let cancel = CancellationToken::new();
        let (journal, journal_rx) = crate::inbound::journal::JournalWriter::channel();
        let limits: Vec<(String, u32)> = config
            .accounts
            .iter()
            .flat_map(|a| {
                let limit = a.messages_per_second.unwrap_or(config.sender.messages_per_second);
                a.phone_number_ids.iter().map(move |p| (p.clone(), limit))
            })
            .collect();
        let throttle = crate::sending::throttle::Throttle::new(
            &limits,
            config.sender.messages_per_second,
            Duration::from_millis(config.sender.pair_interval_ms),
            config.sender.pair_burst,
        );
        let blobs = crate::media::blobs::Blobs::open(&config.media, store.clone()).map_err(StartError::Config)?;
        let state = Engine(Arc::new(Inner {
            public_base,
            jwks: crate::auth::jwt::Jwks::default(),
            token_expiry: Default::default(),
            budget_stops: Default::default(),
            sign_in_failures: Default::default(),
            database_failed_at: std::sync::Mutex::new(None),
            started_at_ms: now_ms(),
            instance,
            blobs,
            throttle,
            default_country: config.default_country_id(),
            config,
            store,
            accounts,
            graph,
            journal,
            wake_processor: Notify::new(),
            journal_head: std::sync::atomic::AtomicI64::new(0),
            processed_upto: std::sync::atomic::AtomicI64::new(0),
            journal_processed: Notify::new(),
            hooks_busy_until: std::sync::atomic::AtomicI64::new(0),
            wake_sender: Notify::new(),
            wake_media: Notify::new(),
            wake_hooks: Notify::new(),
            wake_deliveries: Notify::new(),
            hooks_version: std::sync::atomic::AtomicU64::new(0),
            events_written: tokio::sync::watch::Sender::new(0),
            sent_waiters: crate::sending::waiters::Waiters::default(),
        }));
        let applied = crate::hooks::configured::apply_config_hooks(&state)
            .await
            .map_err(StartError::Config)?;
        if applied > 0 {
            tracing::info!(hooks = applied, "hooks from the configuration applied");
        }
        let journal_stop = CancellationToken::new();
        let tasks = vec![
            tokio::spawn(crate::inbound::process::run_journal_writer(
                state.clone(),
                journal_rx,
                journal_stop.clone(),
            )),
            tokio::spawn(crate::inbound::process::run_processor(state.clone(), cancel.clone())),
            tokio::spawn(crate::sending::worker::run(state.clone(), cancel.clone())),
            tokio::spawn(crate::media::worker::run(state.clone(), cancel.clone())),
            tokio::spawn(crate::hooks::fanout::run_fan_out(state.clone(), cancel.clone())),
            tokio::spawn(crate::hooks::delivery::run_delivery(state.clone(), cancel.clone())),
            tokio::spawn(crate::retention::run(state.clone(), cancel.clone())),
            tokio::spawn(crate::accounts::health::run_token_checks(state.clone(), cancel.clone())),
            tokio::spawn(crate::usage::budgets::run_checks(
                state.clone(),
                std::time::Duration::from_secs(state.config.usage.budget_check_seconds.max(1)),
                cancel.clone(),
            )),
            tokio::spawn(crate::usage::reconcile::run_daily(
                state.clone(),
                std::time::Duration::from_secs(state.config.usage.reconcile_seconds.max(60)),
                cancel.clone(),
            )),
            tokio::spawn(crate::activity::count::run(state.clone(), cancel.clone())),
            tokio::spawn(listen_for_other_gateways(state.clone(), cancel.clone())),
            tokio::spawn(crate::cluster::run(state.clone(), cancel.clone())),
        ];
        Ok(Opened {
            engine: state.clone(),
            new_api_key,
            workers: Workers {
                cancel,
                journal_stop,
                tasks,
                engine: state.clone(),
            },
        })
    }
}

async fn ensure_api_key(
    store: &dyn Store,
    bootstrap: Option<&str>,
    policy: KeyPolicy,
) -> Result<Option<String>, StartError> {
    if let Some(secret) = bootstrap {
        let hash = wagate_core::signature::sha256_hex(secret.as_bytes());
        if store.api_key_by_hash(&hash).await?.is_none() {
            store
                .create_api_key(&wagate_store::NewApiKey {
                    name: "bootstrap".into(),
                    account_id: None,
                    scopes: vec!["admin".into()],
                    key_hash: hash,
                    prefix: secret.chars().take(7).collect(),
                    expires_at: None,
                    tenant: None,
                })
                .await?;
        }
        return Ok(None);
    }
    if policy == KeyPolicy::WhenNone && store.count_api_keys().await? > 0 {
        return Ok(None);
    }
    let name = if policy == KeyPolicy::Always {
        "sandbox"
    } else {
        "admin"
    };
    let (secret, key) = crate::auth::new_key(name, None, vec!["admin".into()]);
    store.create_api_key(&key).await?;
    Ok(Some(secret))
}

/// Work other gateways committed (PostgreSQL `NOTIFY`) wakes the worker that does it here at
/// once; polling stays as the fallback.
async fn listen_for_other_gateways(state: Engine, cancel: CancellationToken) {
    use tokio::sync::broadcast::error::RecvError;
    let Some(mut wakeups) = state.store.wakeups() else {
        return;
    };
    // Accounts are also read again now and then, in case a notification was missed.
    let mut poll = tokio::time::interval(Duration::from_secs(30));
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    poll.tick().await;
    loop {
        let wake = tokio::select! {
            _ = cancel.cancelled() => return,
            _ = poll.tick() => {
                state.reload_accounts().await;
                continue;
            }
            w = wakeups.recv() => w,
        };
        match wake {
            Ok(wagate_store::Wake::Journal) => state.wake_processor.notify_one(),
            Ok(wagate_store::Wake::Jobs) => state.wake_sender.notify_one(),
            Ok(wagate_store::Wake::Media) => state.wake_media.notify_one(),
            Ok(wagate_store::Wake::Events) => {
                state.wake_hooks.notify_one();
                state.events_written.send_modify(|n| *n += 1);
            }
            Ok(wagate_store::Wake::Sent(message_id)) => state.sent_waiters.wake(&message_id),
            Ok(wagate_store::Wake::Accounts) => {
                let state = state.clone();
                tokio::spawn(async move { state.reload_accounts().await });
            }
            // Missed some: wake everything once.
            Err(RecvError::Lagged(_)) => {
                let reload = state.clone();
                tokio::spawn(async move { reload.reload_accounts().await });
                state.wake_processor.notify_one();
                state.wake_sender.notify_one();
                state.wake_media.notify_one();
                state.wake_hooks.notify_one();
            }
            Err(RecvError::Closed) => return,
        }
    }
}
