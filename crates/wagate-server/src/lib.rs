//! The wagate gateway: Meta's webhooks in (journalled before the 200, then processed into
//! messages, statuses and events), the REST API, and the send worker. The app is built without
//! binding a port, so tests run the real thing on `127.0.0.1:0`.
//!
//! Data flows one way: Meta → inbound → store → events; API → store (queue) → sender → Graph.
//! The server holds no SQL: it speaks to the store through [`wagate_store::Store`].
#![forbid(unsafe_code)]

pub mod accounts;
pub mod api;
pub mod audit;
pub mod auth;
pub mod blobs;
pub mod config;
pub mod connect;
pub mod effective;
mod error;
pub mod frontdoor;
pub mod health;
pub mod hooks;
mod inbound;
pub mod jwt;
pub mod limits;
pub mod media;
pub mod openapi;
mod sender;
mod serve;
mod telemetry;
pub mod throttle;
pub mod workers;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use wagate_graph::GraphClient;
use wagate_store::Store;

pub use accounts::{AccountRuntime, Accounts};
pub use api::templates::sync_account as sync_templates;
pub use config::Config;
pub use error::{ApiError, ErrorBody};

/// What every handler and worker shares.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub config: Config,
    pub store: Arc<dyn Store>,
    /// Where the bytes of inbound media live (`media.store`).
    pub blobs: blobs::Blobs,
    pub accounts: Accounts,
    pub graph: GraphClient,
    pub journal: inbound::JournalWriter,
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
    pub sent_waiters: sender::Waiters,
    /// Meta's throughput and pair limits, kept before Meta has to refuse.
    pub throttle: throttle::Throttle,
    pub default_country: Option<phonenumber::country::Id>,
    /// When this gateway started (unix ms): statuses sent while no gateway was up arrive late.
    pub started_at_ms: i64,
    /// Where others reach this gateway: `public_url`, else `http://<the address it listens on>`.
    pub public_base: String,
    /// The JWT issuer's keys, cached (`[auth.jwt]`).
    pub jwks: jwt::Jwks,
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

    /// A hook changed: deliveries use its new settings from now on.
    pub fn hooks_changed(&self) {
        self.hooks_version.fetch_add(1, std::sync::atomic::Ordering::Release);
        self.wake_hooks.notify_one();
        self.wake_deliveries.notify_one();
    }
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("database: {0}")]
    Store(#[from] wagate_store::StoreError),
    #[error("Graph API client: {0}")]
    Graph(#[from] wagate_graph::GraphError),
    #[error("cannot listen: {0}")]
    Io(#[from] std::io::Error),
    #[error("configuration: {0}")]
    Config(String),
}

/// A running gateway.
pub struct Gateway {
    pub addr: SocketAddr,
    pub state: AppState,
    /// An API key created at this start (shown once), if one was.
    pub new_api_key: Option<String>,
    cancel: CancellationToken,
    /// Stops the journal writer once the server no longer takes requests.
    journal_stop: CancellationToken,
    server: JoinHandle<()>,
    tasks: Vec<JoinHandle<()>>,
}

/// The master keys secrets are sealed with: `WAGATE_MASTER_KEY`, else, for a SQLite database,
/// the key kept beside it (`wagate.master.key`, made at the first start and said so); a
/// PostgreSQL database shared by several gateways has none unless one is given.
pub fn master_keys(config: &Config) -> Result<wagate_core::seal::Sealer, StartError> {
    master_keys_with(config, true)
}

/// The same; `create`: make the key file when there is none (a gateway's first start). The
/// command line never makes one: without the file it opens nothing sealed, and says so.
pub fn master_keys_with(config: &Config, create: bool) -> Result<wagate_core::seal::Sealer, StartError> {
    use wagate_core::seal::Sealer;
    let previous = config.previous_master_keys.clone();
    if let Some(key) = &config.master_key {
        return Ok(Sealer::new(Some(key.clone()), previous));
    }
    let Some(path) = wagate_store::master_key_path(&config.database_url) else {
        return Ok(Sealer::new(None, previous));
    };
    if !create && !path.exists() {
        return Ok(Sealer::new(None, previous));
    }
    Ok(Sealer::new(Some(key_file(&path)?), previous))
}

/// Before a first start makes a key file: the database must hold no secret sealed under a key
/// that is not given (its key file was lost or moved). A new key would not open them, and the
/// new file would only hide what went missing.
async fn refuse_a_new_key_over_sealed_secrets(config: &Config) -> Result<(), StartError> {
    if config.master_key.is_some() {
        return Ok(());
    }
    let Some(path) = wagate_store::master_key_path(&config.database_url).filter(|p| !p.exists()) else {
        return Ok(());
    };
    if wagate_store::sqlite_file(&config.database_url).is_none_or(|db| !db.exists()) {
        return Ok(());
    }
    let probe = wagate_store::connect(
        &config.database_url,
        &wagate_store::ConnectOptions {
            sealer: wagate_core::seal::Sealer::new(None, config.previous_master_keys.clone()),
            ..Default::default()
        },
    )
    .await?;
    probe.migrate().await?;
    match probe.seal_secrets(false).await {
        Err(wagate_store::StoreError::Sealed(e)) => Err(StartError::Config(format!(
            "the database holds sealed secrets ({e}), and its key file {} is missing: put the file back, or set WAGATE_MASTER_KEY to the key it held; no new key was made",
            path.display()
        ))),
        Err(e) => Err(e.into()),
        Ok(_) => Ok(()),
    }
}

/// The master key kept in a file, made there (readable by its owner only) the first time, and
/// said so in the log.
pub fn key_file(path: &std::path::Path) -> Result<wagate_core::seal::MasterKey, StartError> {
    use wagate_core::seal::MasterKey;
    let shown = path.display();
    let key = match std::fs::read_to_string(path) {
        Ok(text) => {
            MasterKey::parse(&text).map_err(|why| StartError::Config(format!("the master key in {shown} {why}")))?
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let text = MasterKey::generate();
            write_private(path, &text).map_err(|e| {
                StartError::Config(format!(
                    "cannot write a master key to {shown}: {e}; set WAGATE_MASTER_KEY instead"
                ))
            })?;
            tracing::warn!(path = %shown, "no WAGATE_MASTER_KEY: generated one, which seals the secrets kept in the database; keep it with the database and back it up (without it they cannot be read)");
            MasterKey::parse(&text).map_err(StartError::Config)?
        }
        Err(e) => {
            return Err(StartError::Config(format!(
                "cannot read the master key in {shown}: {e}"
            )))
        }
    };
    Ok(key)
}

/// Writes a new file only its owner can read.
pub fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(format!("{text}\n").as_bytes())?;
    file.sync_all()
}

/// How `start` treats API keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyPolicy {
    /// Create an admin key only when none exists (production).
    WhenNone,
    /// Create a fresh admin key at every start (sandbox: the banner always shows a working key).
    Always,
}

impl Gateway {
    /// Opens the store, runs migrations, registers the accounts, starts the workers and serves.
    pub async fn start(config: Config, listener: TcpListener, keys: KeyPolicy) -> Result<Gateway, StartError> {
        telemetry::install();
        refuse_a_new_key_over_sealed_secrets(&config).await?;
        let sealer = master_keys(&config)?;
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
        let cancel = CancellationToken::new();
        let (journal, journal_rx) = inbound::JournalWriter::channel();
        let limits: Vec<(String, u32)> = config
            .accounts
            .iter()
            .flat_map(|a| {
                let limit = a.messages_per_second.unwrap_or(config.sender.messages_per_second);
                a.phone_number_ids.iter().map(move |p| (p.clone(), limit))
            })
            .collect();
        let throttle = throttle::Throttle::new(
            &limits,
            config.sender.messages_per_second,
            Duration::from_millis(config.sender.pair_interval_ms),
            config.sender.pair_burst,
        );
        let blobs = blobs::Blobs::open(&config.media, store.clone()).map_err(StartError::Config)?;
        let public_base = config.public_url.clone().unwrap_or_else(|| {
            format!(
                "http://{}",
                listener.local_addr().map(|a| a.to_string()).unwrap_or_default()
            )
        });
        let state = AppState(Arc::new(Inner {
            public_base,
            jwks: jwt::Jwks::default(),
            database_failed_at: std::sync::Mutex::new(None),
            started_at_ms: now_ms(),
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
            sent_waiters: sender::Waiters::default(),
        }));
        let applied = hooks::apply_config_hooks(&state).await.map_err(StartError::Config)?;
        if applied > 0 {
            tracing::info!(hooks = applied, "hooks from the configuration applied");
        }
        let addr = listener.local_addr()?;
        let journal_stop = CancellationToken::new();
        let tasks = vec![
            tokio::spawn(inbound::run_journal_writer(
                state.clone(),
                journal_rx,
                journal_stop.clone(),
            )),
            tokio::spawn(inbound::run_processor(state.clone(), cancel.clone())),
            tokio::spawn(sender::run(state.clone(), cancel.clone())),
            tokio::spawn(media::run(state.clone(), cancel.clone())),
            tokio::spawn(workers::hooks::run_fan_out(state.clone(), cancel.clone())),
            tokio::spawn(workers::hooks::run_delivery(state.clone(), cancel.clone())),
            tokio::spawn(workers::prune::run(state.clone(), cancel.clone())),
            tokio::spawn(health::run_token_checks(state.clone(), cancel.clone())),
            tokio::spawn(listen_for_other_gateways(state.clone(), cancel.clone())),
        ];
        let app = router(state.clone());
        let s = &state.config.server;
        let connection_limits = serve::Limits {
            header_timeout: Duration::from_secs(s.header_timeout_seconds),
            idle_timeout: Duration::from_secs(s.idle_timeout_seconds),
            max_connections: limits::connection_cap(s.max_connections),
            max_buf_size: limits::HYPER_MAX_BUF,
            max_headers: limits::HYPER_MAX_HEADERS,
        };
        let server = tokio::spawn(serve::serve(listener, app, connection_limits, cancel.clone()));
        Ok(Gateway {
            addr,
            state,
            new_api_key,
            cancel,
            journal_stop,
            server,
            tasks,
        })
    }

    /// Stops serving, lets in-flight work finish, and waits for the workers.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        // In-flight webhook requests wait for their journal commit, so the writer stops last.
        let _ = self.server.await;
        self.journal_stop.cancel();
        for t in self.tasks {
            let _ = t.await;
        }
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
    let (secret, key) = auth::new_key(name, None, vec!["admin".into()]);
    store.create_api_key(&key).await?;
    Ok(Some(secret))
}

/// Every route of the gateway, with the limits and the one error body around them.
pub fn router(state: AppState) -> Router {
    use axum::http::{header, HeaderValue, StatusCode};
    let limits = &state.config.server;
    let webhook_deadline = tower_http::timeout::TimeoutLayer::with_status_code(
        StatusCode::REQUEST_TIMEOUT,
        Duration::from_secs(limits.webhook_timeout_seconds),
    );
    Router::new()
        .route("/webhooks/whatsapp", get(inbound::verify).post(inbound::receive))
        .route(
            "/webhooks/whatsapp/{account}",
            get(inbound::verify_account).post(inbound::receive_account),
        )
        // A webhook without a well-formed signature header is refused before its body is read.
        .route_layer(axum::middleware::from_fn(inbound::signature_first))
        .layer(axum::extract::DefaultBodyLimit::max(
            state.config.webhook.max_body_bytes,
        ))
        .layer(webhook_deadline)
        .merge(api::routes(limits))
        .route("/connect/callback", get(connect::callback))
        .route("/health", get(telemetry::health))
        .route("/ready", get(telemetry::ready))
        .route("/metrics", get(telemetry::metrics))
        .route("/openapi.json", get(openapi::serve))
        // Meta's own paths, for apps built on Meta's SDKs (`/v23.0/{phone_number_id}/messages`).
        .route("/{version}/{id}/messages", axum::routing::post(frontdoor::messages))
        .route("/{version}/{id}", get(frontdoor::node))
        .fallback(|uri: axum::http::Uri, method: axum::http::Method| async move {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no such endpoint: {method} {}", uri.path()),
            )
            .details(serde_json::json!({"field": "path"}))
            .hint("see /openapi.json for the API")
        })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            error::one_error_shape,
        ))
        .layer(axum::middleware::from_fn_with_state(state.clone(), limits::guard_body))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            limits::check_request,
        ))
        // The verify endpoint echoes Meta's challenge: no browser may read an answer as HTML.
        .layer(tower_http::set_header::SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .with_state(state)
}

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// Work other gateways committed (PostgreSQL `NOTIFY`) wakes the worker that does it here at
/// once; polling stays as the fallback.
async fn listen_for_other_gateways(state: AppState, cancel: CancellationToken) {
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
