//! The hooks of the configuration file, saved by name at start.

use wagate_store::Hook;

use super::targets::check_url_target;
use crate::clock::now_ms;
use crate::config::HookConfig;
use crate::state::Engine;

fn json_list(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

/// Saves the configuration file's hooks (by name); returns how many.
pub async fn apply_config_hooks(state: &Engine) -> Result<usize, String> {
    let now = now_ms();
    let stored = state.store.list_hooks().await.map_err(|e| e.to_string())?;
    for h in &state.config.hooks.hook {
        let accounts = account_ids(state, &h.accounts)
            .map_err(|e| format!("hooks.hook ({}).accounts: no account `{e}`", h.name))?;
        let mut hook = from_config(h, accounts, now);
        if !stored.iter().any(|s| s.name.as_deref() == Some(h.name.as_str())) {
            // A new hook needs a secret; a stored one keeps its own unless the file gives one.
            ensure_secret(&mut hook);
        }
        check_url_target(&hook.url, state.config.hooks.allow_private_networks)
            .await
            .map_err(|e| format!("hooks.hook ({}).url: {e}", h.name))?;
        // A broker URL's password is kept sealed, as through the API.
        let url = hook.url.clone();
        super::sinks::keep_password(&mut hook, &url);
        state
            .store
            .save_hook(&hook)
            .await
            .map_err(|e| format!("hooks.hook ({}): {e}", h.name))?;
    }
    Ok(state.config.hooks.hook.len())
}

/// Account names (or ids) to ids; the error is the first name no account has.
pub fn account_ids(state: &Engine, names: &[String]) -> Result<Vec<String>, String> {
    names
        .iter()
        .map(|n| state.accounts.find(n).map(|a| a.id.clone()).ok_or_else(|| n.clone()))
        .collect()
}

fn from_config(h: &HookConfig, accounts: Vec<String>, now: i64) -> Hook {
    Hook {
        id: wagate_core::ids::new_id("hook").into(),
        name: Some(h.name.clone()),
        url: h.url.clone(),
        description: h.description.clone(),
        format: h.format.clone().unwrap_or_else(|| "event".into()),
        events: json_list(&h.events),
        accounts: json_list(&accounts),
        contacts: json_list(&h.contacts),
        headers: serde_json::to_string(&h.headers).unwrap_or_else(|_| "{}".into()),
        media: h.media.clone().unwrap_or_else(|| "link".into()),
        ordered: h.ordered,
        enabled: true,
        disabled_reason: None,
        // Empty keeps the stored secret of a hook saved before.
        secret: h.secret.clone().unwrap_or_default(),
        previous_secret: None,
        previous_secret_until: None,
        cursor_seq: 0,
        source: "config".into(),
        failing_since: None,
        created_at: now,
        updated_at: now,
        tenant: None,
    }
}

/// A new hook's secret when the configuration gives none.
pub fn ensure_secret(hook: &mut Hook) {
    if hook.secret.is_empty() {
        hook.secret = wagate_core::hooks::new_secret();
    }
}
