//! Where a hook's URL leads, checked when it is saved, and the HTTP client that delivers (no
//! redirects, bounded time, and a resolver that refuses private addresses at every connection, so
//! a name that later resolves to the gateway's own network — DNS rebinding — is still refused).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use wagate_core::hooks::is_public;

use super::url::check_url_syntax;
use crate::config::HooksConfig;

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
