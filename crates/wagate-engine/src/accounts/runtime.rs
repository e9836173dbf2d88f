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
    pub(crate) live: Arc<Live>,
}

#[derive(Default)]
pub(crate) struct Live {
    access_token: RwLock<String>,
    /// The pause the API shows; set once the pause is stored and its alert recorded.
    pub(crate) pause: Mutex<Option<Pause>>,
    /// Whether the sender holds this account's messages: set the moment a pause begins, so
    /// nothing goes while the pause is being recorded.
    pub(crate) held: AtomicBool,
    /// One pause or resume at a time, so each is recorded and told exactly once.
    pub(crate) turn: tokio::sync::Mutex<()>,
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

    pub(crate) fn set_pause(&self, pause: Option<Pause>) {
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
        self.loaded_at.store(crate::clock::now_ms(), Ordering::Relaxed);
        Ok(())
    }

    /// Reloads unless the list was read in the last `min_age_ms` (a webhook for a number this
    /// gateway does not know may be for an account another gateway just made).
    pub async fn reload_if_older(&self, store: &dyn wagate_store::Store, min_age_ms: i64) -> bool {
        if crate::clock::now_ms() - self.loaded_at.load(Ordering::Relaxed) < min_age_ms {
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
