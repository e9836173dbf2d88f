//! The accounts this gateway acts for, with their secrets, held in memory. Their ids and phone
//! numbers are also in the store, so every stored row can name its account.

use crate::config::AccountConfig;

#[derive(Clone)]
pub struct AccountRuntime {
    pub id: String,
    pub name: String,
    pub waba_id: String,
    pub phone_number_ids: Vec<String>,
    pub access_token: String,
    pub app_secret: String,
    pub verify_token: String,
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

#[derive(Debug, Clone, Default)]
pub struct Accounts {
    list: Vec<AccountRuntime>,
}

impl Accounts {
    /// Writes the configured accounts to the store and keeps them, with their secrets, in memory.
    pub async fn register(
        store: &dyn wagate_store::Store,
        configured: &[AccountConfig],
    ) -> Result<Self, wagate_store::StoreError> {
        let mut list = Vec::new();
        for a in configured {
            let stored = store
                .upsert_account(&wagate_store::NewAccount {
                    name: a.name.clone(),
                    waba_id: a.waba_id.clone(),
                    phone_numbers: a.phone_number_ids.iter().map(|p| (p.clone(), None)).collect(),
                })
                .await?;
            list.push(AccountRuntime {
                id: stored.id,
                name: a.name.clone(),
                waba_id: a.waba_id.clone(),
                phone_number_ids: a.phone_number_ids.clone(),
                access_token: a.access_token().to_string(),
                app_secret: a.app_secret().to_string(),
                verify_token: a.verify_token().to_string(),
            });
        }
        Ok(Self { list })
    }

    pub fn all(&self) -> &[AccountRuntime] {
        &self.list
    }

    pub fn by_id(&self, id: &str) -> Option<&AccountRuntime> {
        self.list.iter().find(|a| a.id == id)
    }

    /// By id or by name.
    pub fn find(&self, key: &str) -> Option<&AccountRuntime> {
        self.list.iter().find(|a| a.id == key || a.name == key)
    }

    pub fn by_waba(&self, waba_id: &str) -> Option<&AccountRuntime> {
        self.list.iter().find(|a| a.waba_id == waba_id)
    }

    pub fn by_phone(&self, phone_number_id: &str) -> Option<&AccountRuntime> {
        self.list
            .iter()
            .find(|a| a.phone_number_ids.iter().any(|p| p == phone_number_id))
    }

    /// The account a webhook update belongs to: its phone number decides, else its WABA.
    pub fn route(&self, waba_id: Option<&str>, phone_number_id: Option<&str>) -> Option<&AccountRuntime> {
        match phone_number_id {
            Some(p) => self.by_phone(p).filter(|a| waba_id.is_none_or(|w| a.waba_id == w)),
            None => waba_id.and_then(|w| self.by_waba(w)),
        }
    }
}
