//! What the hook API and the hook workers share: checking a hook's URL (syntax, and where it
//! leads), the HTTP client that delivers (no redirects, bounded time, and a resolver that refuses
//! private addresses at every connection, so a name that later resolves to the gateway's own
//! network — DNS rebinding — is still refused), and the hooks of the configuration file.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use wagate_core::hooks::is_public;
use wagate_store::Hook;

use crate::config::{HookConfig, HooksConfig};
use crate::AppState;

/// A hook URL's syntax: absolute http(s) with a host, no credentials, no fragment.
pub fn check_url_syntax(url: &str) -> Result<reqwest::Url, String> {
    let u = reqwest::Url::parse(url).map_err(|e| format!("`{url}` is not a URL ({e})"))?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(format!("`{url}` is not http or https"));
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err(format!("`{url}` has no host"));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err("put credentials in `headers`, not in the URL".into());
    }
    if u.fragment().is_some() {
        return Err(format!("`{url}` has a #fragment, which is never sent"));
    }
    Ok(u)
}

/// Checks where a hook URL leads: every address its host resolves to must be public, unless
/// private networks are allowed.
pub async fn check_url_target(url: &str, allow_private: bool) -> Result<(), String> {
    let u = check_url_syntax(url)?;
    if allow_private {
        return Ok(());
    }
    let host = u
        .host_str()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let port = u.port_or_known_default().unwrap_or(443);
    let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| format!("`{host}` does not resolve ({e})"))?
            .collect(),
    };
    match addrs.iter().find(|a| !is_public(a.ip())) {
        Some(a) => Err(format!(
            "`{host}` resolves to {}, a loopback, private or link-local address; set hooks.allow_private_networks = true to allow it",
            a.ip()
        )),
        None => Ok(()),
    }
}

/// Resolves names for deliveries and keeps only public addresses (unless allowed): the check is
/// made where the connection is made.
struct GuardedResolver {
    allow_private: bool,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = addrs
                .into_iter()
                .filter(|a| allow_private || is_public(a.ip()))
                .collect();
            if allowed.is_empty() {
                return Err(format!("`{host}` resolves only to loopback, private or link-local addresses").into());
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The client deliveries go out with.
pub fn http_client(config: &HooksConfig) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(config.timeout_seconds))
        .connect_timeout(Duration::from_secs(config.timeout_seconds.min(10)))
        .pool_max_idle_per_host(config.concurrency_per_hook)
        .user_agent(concat!("wagate/", env!("CARGO_PKG_VERSION")))
        .dns_resolver(Arc::new(GuardedResolver {
            allow_private: config.allow_private_networks,
        }))
        .build()
}

/// Before a delivery: a URL whose host is an IP literal is not resolved, so it is checked here.
pub fn literal_ip_allowed(url: &reqwest::Url, allow_private: bool) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => allow_private || is_public(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => allow_private || is_public(IpAddr::V6(ip)),
        _ => true,
    }
}

fn json_list(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

/// Saves the configuration file's hooks (by name); returns how many.
pub async fn apply_config_hooks(state: &AppState) -> Result<usize, String> {
    let now = crate::now_ms();
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
        state
            .store
            .save_hook(&hook)
            .await
            .map_err(|e| format!("hooks.hook ({}): {e}", h.name))?;
    }
    Ok(state.config.hooks.hook.len())
}

/// Account names (or ids) to ids; the error is the first name no account has.
pub fn account_ids(state: &AppState, names: &[String]) -> Result<Vec<String>, String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_syntax() {
        assert!(check_url_syntax("https://example.com/hook").is_ok());
        for bad in [
            "ftp://x/y",
            "not a url",
            "https://user:pw@example.com/",
            "https://example.com/#x",
            "/relative",
        ] {
            assert!(check_url_syntax(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn private_targets_are_refused_unless_allowed() {
        for url in [
            "http://127.0.0.1:9/x",
            "http://localhost:9/x",
            "http://10.0.0.1/x",
            "http://[::1]/x",
            "http://169.254.169.254/latest",
        ] {
            assert!(check_url_target(url, false).await.is_err(), "{url}");
            assert!(check_url_target(url, true).await.is_ok(), "{url}");
        }
        let r = GuardedResolver { allow_private: false };
        let name: reqwest::dns::Name = "localhost".parse().expect("name");
        assert!(
            reqwest::dns::Resolve::resolve(&r, name).await.is_err(),
            "resolving at connect time refuses it too"
        );
        let u = reqwest::Url::parse("http://127.0.0.1/x").expect("url");
        assert!(!literal_ip_allowed(&u, false));
        assert!(literal_ip_allowed(&u, true));
    }
}
