//! Contacts: what we know of a user (by WhatsApp id, phone number in any spelling, or
//! business-scoped user id) and the 24-hour customer-service window of each number they wrote to.

use serde::Serialize;
use utoipa::ToSchema;
use wagate_core::time::rfc3339_ms;

use crate::auth::accounts::filter_account;
use crate::auth::Caller;
use crate::clock::now_ms;
use crate::error::{EngineError, EngineResult};
use crate::state::Engine;

#[derive(Serialize, ToSchema)]
pub struct ContactView {
    pub wa_id: String,
    /// The profile name the user shows.
    pub name: Option<String>,
    pub account: String,
    pub phone_number_id: String,
    pub last_inbound_at: Option<String>,
    /// The window of the number the user wrote to most recently.
    pub window: WindowView,
    /// One entry per business number the user has written to.
    pub windows: Vec<NumberWindow>,
}

#[derive(Serialize, ToSchema)]
pub struct WindowView {
    /// Whether free-form (non-template) messages may be sent now.
    pub open: bool,
    pub expires_at: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct NumberWindow {
    pub account: String,
    pub phone_number_id: String,
    pub open: bool,
    pub expires_at: Option<String>,
}

/// A contact and its windows, among the accounts the caller sees (or the one named).
pub async fn get(state: &Engine, caller: &Caller, wa_id: &str, account: Option<&str>) -> EngineResult<ContactView> {
    caller.require("read")?;
    // A phone number in any spelling, or a business-scoped user id as it is.
    let digits: String = wa_id.chars().filter(char::is_ascii_digit).collect();
    let key = if digits.is_empty() || wagate_core::phone::is_business_scoped_user_id(wa_id) {
        wa_id.to_string()
    } else {
        digits
    };
    let account_id = filter_account(state, caller, account)?;
    let contacts: Vec<_> = state
        .store
        .find_contacts(account_id.as_deref(), &key)
        .await?
        .into_iter()
        .filter(|c| caller.sees(&c.account_id))
        .collect();
    let now = now_ms();
    let Some(first) = contacts.first() else {
        return Err(EngineError::not_found("contact", wa_id)
            .hint("a contact exists once the user has written to one of your numbers"));
    };
    let windows = contacts
        .iter()
        .map(|c| NumberWindow {
            account: c.account_id.to_string(),
            phone_number_id: c.phone_number_id.clone(),
            open: wagate_core::window::is_open(c.window_expires_at, now),
            expires_at: c.window_expires_at.map(rfc3339_ms),
        })
        .collect();
    Ok(ContactView {
        wa_id: first.wa_id.to_string(),
        name: first.name.clone(),
        account: first.account_id.to_string(),
        phone_number_id: first.phone_number_id.clone(),
        last_inbound_at: first.last_inbound_at.map(rfc3339_ms),
        window: WindowView {
            open: wagate_core::window::is_open(first.window_expires_at, now),
            expires_at: first.window_expires_at.map(rfc3339_ms),
        },
        windows,
    })
}

/// A conversation in the inbox: a contact of one of the caller's numbers.
#[derive(Debug, Clone, Serialize)]
pub struct Conversation {
    pub wa_id: String,
    pub name: Option<String>,
    /// The account's name.
    pub account: String,
    pub phone_number_id: String,
    /// When the user last wrote (unix ms).
    pub last_inbound_at: Option<i64>,
    /// When the 24-hour window closes, if it is open (unix ms).
    pub window_open_until: Option<i64>,
    /// When a message to them was last made (unix ms).
    pub last_outbound_at: Option<i64>,
    /// Messages received since the conversation was last marked read.
    pub unread: i64,
    /// The last activity, either way (unix ms): the cursor of the next page.
    pub updated_at: i64,
}

/// The caller's conversations, most recently active first; `search` matches a part of the name
/// or of the number; `before` is the previous page's last `updated_at`.
pub async fn list(
    state: &Engine,
    caller: &Caller,
    search: Option<&str>,
    before: Option<i64>,
    limit: i64,
) -> EngineResult<Vec<Conversation>> {
    caller.require("read")?;
    let filter = wagate_store::ContactFilter {
        account_id: caller.account_id.clone().map(String::from),
        account_ids: caller.account_ids(),
        search: search.map(str::to_string),
        before_updated_at: before,
        limit,
    };
    let now = now_ms();
    Ok(state
        .store
        .list_contacts(&filter)
        .await?
        .into_iter()
        .map(|c| Conversation {
            account: state
                .accounts
                .by_id(&c.account_id)
                .map_or_else(|| c.account_id.to_string(), |a| a.name.clone()),
            window_open_until: c
                .window_expires_at
                .filter(|_| wagate_core::window::is_open(c.window_expires_at, now)),
            wa_id: c.wa_id,
            name: c.name,
            phone_number_id: c.phone_number_id,
            last_inbound_at: c.last_inbound_at,
            last_outbound_at: c.last_outbound_at,
            unread: c.unread,
            updated_at: c.updated_at,
        })
        .collect())
}
