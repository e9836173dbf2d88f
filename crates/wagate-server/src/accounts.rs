//! The accounts this gateway acts for, with their secrets, held in memory. Their ids and phone
//! numbers are also in the store, so every stored row can name its account.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use serde::{Deserialize, Serialize};

use crate::config::AccountConfig;

/// An account as this gateway acts for it; cheap to clone (one reference count).
#[derive(Clone)]
pub struct AccountRuntime(Arc<AccountData>);

impl std::ops::Deref for AccountRuntime {
    type Target = AccountData;
    fn deref(&self) -> &AccountData {
        &self.0
    }
}

pub struct AccountData {
    pub id: String,
    pub name: String,
    pub waba_id: String,
    pub phone_number_ids: Vec<String>,
    pub app_secret: String,
    pub verify_token: String,
    /// `config` (the configuration file's) or `api`.
    pub managed_by: String,
    /// Its own sending rate, if set through the API.
    pub messages_per_second: Option<u32>,
    /// The tenant that connected it, if one.
    pub tenant: Option<String>,
    /// What changes while the gateway runs: the token (rotated through the API) and whether
    /// sending is paused. Kept across reloads of the account list.
    live: Arc<Live>,
}

#[derive(Default)]
struct Live {
    access_token: RwLock<String>,
    /// The pause the API shows; set once the pause is stored and its alert recorded.
    pause: Mutex<Option<Pause>>,
    /// Whether the sender holds this account's messages: set the moment a pause begins, so
    /// nothing goes while the pause is being recorded.
    held: AtomicBool,
    /// One pause or resume at a time, so each is recorded and told exactly once.
    turn: tokio::sync::Mutex<()>,
}

/// Why an account's sending is paused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Pause {
    /// What happened, e.g. Meta's error.
    pub reason: String,
    /// Meta's error code, when Meta's answer paused it.
    pub code: Option<i64>,
    /// What to do.
    pub hint: String,
    /// When (RFC 3339).
    pub since: String,
    /// Paused through `POST /v1/accounts/{name}/pause` (a token rotation does not resume it).
    pub by_hand: bool,
}

impl AccountData {
    pub fn access_token(&self) -> String {
        self.live.access_token.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn set_access_token(&self, token: &str) {
        *self.live.access_token.write().unwrap_or_else(|e| e.into_inner()) = token.to_string();
    }

    pub fn pause(&self) -> Option<Pause> {
        self.live.pause.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set_pause(&self, pause: Option<Pause>) {
        *self.live.pause.lock().unwrap_or_else(|e| e.into_inner()) = pause;
    }

    /// Whether the sender holds this account's messages (paused, or being paused).
    pub fn held(&self) -> bool {
        self.live.held.load(Ordering::SeqCst)
    }
}

impl std::fmt::Debug for AccountRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("waba_id", &self.waba_id)
            .finish_non_exhaustive()
    }
}

/// The accounts, as a snapshot that is replaced whole when they change: those of the
/// configuration file (with the file's secrets), and those made through the API (with their
/// secrets from the database). Every gateway sharing the database reloads it when an account
/// changes (PostgreSQL `NOTIFY`, a poll, or a webhook for a number it does not know).
#[derive(Default)]
pub struct Accounts {
    list: RwLock<Arc<Vec<AccountRuntime>>>,
    configured: Vec<AccountConfig>,
    /// When the list was last read from the store (unix ms).
    loaded_at: std::sync::atomic::AtomicI64,
    /// One reload at a time.
    reloading: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Accounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.all().iter()).finish()
    }
}

impl Accounts {
    /// Writes the configured accounts to the store, then reads every account.
    pub async fn register(
        store: &dyn wagate_store::Store,
        configured: &[AccountConfig],
    ) -> Result<Self, wagate_store::StoreError> {
        for a in configured {
            store
                .upsert_account(&wagate_store::NewAccount {
                    name: a.name.clone(),
                    waba_id: a.waba_id.clone(),
                    phone_numbers: a.phone_number_ids.iter().map(|p| (p.clone(), None)).collect(),
                })
                .await?;
        }
        let accounts = Self {
            configured: configured.to_vec(),
            ..Default::default()
        };
        accounts.reload(store).await?;
        Ok(accounts)
    }

    /// Reads the accounts from the store again. An account already known keeps its live state
    /// (pause, token) unless the store changed its token.
    pub async fn reload(&self, store: &dyn wagate_store::Store) -> Result<(), wagate_store::StoreError> {
        let _one = self.reloading.lock().await;
        let stored = store.list_accounts().await?;
        let numbers = store.list_phone_numbers().await?;
        let before = self.all();
        let mut list = Vec::with_capacity(stored.len());
        for a in stored {
            let id = a.id.to_string();
            let phone_number_ids: Vec<String> = numbers
                .iter()
                .filter(|n| n.account_id.as_ref() == id)
                .map(|n| n.phone_number_id.clone())
                .collect();
            let (token, app_secret, verify_token, rate) = if a.managed_by == "config" {
                // Only the gateway whose file has the account acts for it.
                let Some(c) = self.configured.iter().find(|c| c.name == a.name) else {
                    continue;
                };
                (
                    c.access_token().to_string(),
                    c.app_secret().to_string(),
                    c.verify_token().to_string(),
                    c.messages_per_second,
                )
            } else {
                (
                    a.access_token.clone().unwrap_or_default(),
                    a.app_secret.clone().unwrap_or_default(),
                    a.verify_token.clone().unwrap_or_default(),
                    a.messages_per_second.and_then(|n| u32::try_from(n).ok()),
                )
            };
            let live = match before.iter().find(|b| b.id == id) {
                Some(b) => {
                    if a.managed_by != "config" && b.access_token() != token {
                        b.set_access_token(&token);
                    }
                    b.live.clone()
                }
                None => {
                    // A pause outlives a restart: it ends when someone fixes the cause.
                    let pause: Option<Pause> = a.paused.as_deref().and_then(|p| serde_json::from_str(p).ok());
                    Arc::new(Live {
                        access_token: RwLock::new(token),
                        held: AtomicBool::new(pause.is_some()),
                        pause: Mutex::new(pause),
                        turn: tokio::sync::Mutex::new(()),
                    })
                }
            };
            list.push(AccountRuntime(Arc::new(AccountData {
                id,
                name: a.name.clone(),
                waba_id: a.waba_id.clone(),
                phone_number_ids,
                app_secret,
                verify_token,
                managed_by: a.managed_by.clone(),
                messages_per_second: rate,
                tenant: a.tenant.clone(),
                live,
            })));
        }
        *self.list.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(list);
        self.loaded_at.store(crate::now_ms(), Ordering::Relaxed);
        Ok(())
    }

    /// Reloads unless the list was read in the last `min_age_ms` (a webhook for a number this
    /// gateway does not know may be for an account another gateway just made).
    pub async fn reload_if_older(&self, store: &dyn wagate_store::Store, min_age_ms: i64) -> bool {
        if crate::now_ms() - self.loaded_at.load(Ordering::Relaxed) < min_age_ms {
            return false;
        }
        match self.reload(store).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "could not read the accounts again");
                false
            }
        }
    }

    /// The accounts now.
    pub fn all(&self) -> Arc<Vec<AccountRuntime>> {
        self.list.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn find_by(&self, f: impl Fn(&AccountRuntime) -> bool) -> Option<AccountRuntime> {
        self.list
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|a| f(a))
            .cloned()
    }

    /// The ids of accounts whose sending is paused.
    pub fn paused_ids(&self) -> Vec<String> {
        self.all().iter().filter(|a| a.held()).map(|a| a.id.clone()).collect()
    }

    pub fn by_id(&self, id: &str) -> Option<AccountRuntime> {
        self.find_by(|a| a.id == id)
    }

    /// By id or by name.
    pub fn find(&self, key: &str) -> Option<AccountRuntime> {
        self.find_by(|a| a.id == key || a.name == key)
    }

    pub fn by_waba(&self, waba_id: &str) -> Option<AccountRuntime> {
        self.find_by(|a| a.waba_id == waba_id)
    }

    pub fn by_phone(&self, phone_number_id: &str) -> Option<AccountRuntime> {
        self.find_by(|a| a.phone_number_ids.iter().any(|p| p == phone_number_id))
    }

    /// The account a webhook update belongs to: its phone number decides, else its WABA.
    pub fn route(&self, waba_id: Option<&str>, phone_number_id: Option<&str>) -> Option<AccountRuntime> {
        match phone_number_id {
            Some(p) => self.by_phone(p).filter(|a| waba_id.is_none_or(|w| a.waba_id == w)),
            None => waba_id.and_then(|w| self.by_waba(w)),
        }
    }
}

/// Pauses an account's sending: queued messages wait, new sends answer `account_paused`. Kept in
/// the store (a restart stays paused) and told as an `account.alert` event, which is recorded
/// before the API shows the pause. Returns false when it was paused already (nothing is told
/// twice); a pause by hand replaces one from Meta's answer, so that only resume ends it.
pub async fn pause(state: &crate::AppState, account: &AccountRuntime, pause: Pause) -> bool {
    let _turn = account.live.turn.lock().await;
    if account.pause().is_some_and(|before| before.by_hand || !pause.by_hand) {
        return false;
    }
    account.live.held.store(true, Ordering::SeqCst);
    let json = serde_json::to_string(&pause).unwrap_or_default();
    if let Err(e) = state.store.set_account_pause(&account.id, Some(&json)).await {
        tracing::error!(account = %account.name, error = %e, "could not record the pause; it holds until a restart");
    }
    tracing::warn!(account = %account.name, reason = %pause.reason, hint = %pause.hint, "sending paused");
    alert(state, account, "paused", Some(&pause)).await;
    account.set_pause(Some(pause));
    true
}

/// Resumes an account's sending; queued messages go. Returns the pause it ended, if any.
pub async fn resume(state: &crate::AppState, account: &AccountRuntime, why: &str) -> Option<Pause> {
    let _turn = account.live.turn.lock().await;
    let ended = account.pause()?;
    if let Err(e) = state.store.set_account_pause(&account.id, None).await {
        tracing::error!(account = %account.name, error = %e, "could not record the resume; the pause comes back after a restart");
    }
    tracing::info!(account = %account.name, why, "sending resumed");
    alert(state, account, "resumed", None).await;
    account.set_pause(None);
    account.live.held.store(false, Ordering::SeqCst);
    state.wake_sender.notify_one();
    Some(ended)
}

async fn alert(state: &crate::AppState, account: &AccountRuntime, what: &str, pause: Option<&Pause>) {
    let payload = serde_json::json!({
        "source": "wagate",
        "account": account.id,
        "account_name": account.name,
        "alert": format!("sending_{what}"),
        "pause": pause,
    });
    crate::workers::hooks::emit(state, Some(&account.id), "account.alert", &payload).await;
}

/// The pause for an account-level error from Meta.
pub fn pause_for_meta_error(error: &wagate_core::meta::MetaError) -> Pause {
    Pause {
        reason: format!("Meta answered {}: {}", error.code, error.summary()),
        code: Some(error.code),
        hint: format!(
            "{}; then PUT /v1/accounts/{{name}}/token with a new token (or `wagate accounts set-token`), or POST /v1/accounts/{{name}}/resume",
            wagate_core::meta::error_info(error.code).hint
        ),
        since: wagate_core::time::rfc3339_ms(crate::now_ms()),
        by_hand: false,
    }
}
