//! A hook's settings, checked: events, format, secret, accounts (within what the caller sees),
//! contacts, headers (masked when shown, sealed at rest), media mode and URL.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;
use wagate_core::hooks::{check_pattern, reserved_header};
use wagate_store::{Hook, HookId};

use crate::auth::Caller;
use crate::error::{EngineError, EngineResult};
use crate::state::Engine;

/// How long the previous secret keeps signing after a rotation.
pub const ROTATION_OVERLAP_MS: i64 = 24 * 3600 * 1000;

/// A header's value as answers show it: never whole, since it is often a credential (kept
/// sealed at rest, like the secret). Long values keep their last four characters.
pub fn masked(value: &str) -> String {
    let n = value.chars().count();
    match n >= 16 {
        true => format!("…{}", value.chars().skip(n - 4).collect::<String>()),
        false => "…".into(),
    }
}

/// The body of `POST /v1/hooks` and `PATCH /v1/hooks/{id}`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HookRequest {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub format: Option<String>,
    pub accounts: Option<Vec<String>>,
    pub contacts: Option<Vec<String>>,
    pub headers: Option<BTreeMap<String, String>>,
    pub media: Option<String>,
    pub ordered: Option<bool>,
    pub description: Option<String>,
    pub enabled: Option<bool>,
    /// The secret to sign with, instead of a generated one: for `meta`, the app secret your bot
    /// already checks (at least 16 characters); for `event`, a `whsec_…` key of 24 to 64 bytes.
    pub secret: Option<String>,
}

/// Applies a request to a hook, checking each field; the URL last, as its check asks DNS.
pub async fn apply(state: &Engine, h: &mut Hook, r: HookRequest) -> EngineResult<()> {
    if let Some(events) = r.events {
        if let Some(e) = events.iter().find_map(|p| check_pattern(p).err()) {
            return Err(
                EngineError::invalid_field("events", e, "use event types or patterns such as message.*")
                    .details(json!({"field": "events", "allowed": wagate_core::webhook::EVENT_TYPES})),
            );
        }
        h.events = serde_json::to_string(&events).unwrap_or_default();
    }
    if let Some(format) = r.format {
        if !["event", "meta"].contains(&format.as_str()) {
            return Err(EngineError::invalid_field(
                "format",
                format!("`{format}` is not a format"),
                "use \"event\" (wagate's events) or \"meta\" (Meta's webhook bodies, re-signed)",
            ));
        }
        h.format = format;
    }
    if let Some(secret) = r.secret {
        check_secret(&h.format, &secret)?;
        h.secret = secret;
    }
    if let Some(accounts) = r.accounts {
        let ids = super::configured::account_ids(state, &accounts)
            .map_err(|name| EngineError::unknown_account("accounts", &name))?;
        h.accounts = serde_json::to_string(&ids).unwrap_or_default();
    }
    if let Some(contacts) = r.contacts {
        h.contacts = serde_json::to_string(&contacts).unwrap_or_default();
    }
    if let Some(mut headers) = r.headers {
        // A value sent back as answers show it (masked) keeps the value stored.
        let stored: BTreeMap<String, String> = serde_json::from_str(&h.headers).unwrap_or_default();
        // A sink's password is kept among the headers, but is not one.
        if let Some(p) = stored.get(super::sinks::PASSWORD_KEY) {
            headers.insert(super::sinks::PASSWORD_KEY.into(), p.clone());
        }
        for (k, v) in headers.iter_mut() {
            if let Some(old) = stored.get(k).filter(|old| masked(old) == *v) {
                v.clone_from(old);
            }
        }
        if let Some(k) = headers.keys().find(|k| reserved_header(k)) {
            return Err(EngineError::invalid_field(
                "headers",
                format!("`{k}` is set by wagate itself and cannot be overridden"),
                "remove it; the webhook-* signature headers are always sent",
            ));
        }
        if let Some(k) = headers
            .iter()
            .find(|(k, v)| {
                reqwest::header::HeaderName::from_bytes(k.as_bytes()).is_err()
                    || reqwest::header::HeaderValue::from_str(v).is_err()
            })
            .map(|(k, _)| k)
        {
            return Err(EngineError::invalid_field(
                "headers",
                format!("`{k}` is not a valid header name or value"),
                "use plain ASCII header names and values",
            ));
        }
        h.headers = serde_json::to_string(&headers).unwrap_or_default();
    }
    if let Some(media) = r.media {
        if !["link", "base64", "both"].contains(&media.as_str()) {
            return Err(EngineError::invalid_field(
                "media",
                format!("`{media}` is not a media mode"),
                "use link, base64 or both",
            ));
        }
        h.media = media;
    }
    if let Some(ordered) = r.ordered {
        h.ordered = ordered;
    }
    if let Some(d) = r.description {
        h.description = Some(d);
    }
    if let Some(e) = r.enabled {
        h.enabled = e;
    }
    if h.format == "meta" && (h.events != "[]" || h.contacts != "[]") {
        return Err(EngineError::invalid_field(
            if h.events != "[]" { "events" } else { "contacts" },
            "a `meta`-format hook receives Meta's webhook bodies whole, as Meta sent them; they are not split by event or contact",
            "leave out events and contacts (filter by accounts), or use format \"event\"",
        ));
    }
    if let Some(url) = r.url {
        super::targets::check_url_target(&url, state.config.hooks.allow_private_networks)
            .await
            .map_err(|e| EngineError::invalid_field("url", e, "give the https URL of your service, or a broker's (nats://host:4222/<subject>, redis://host:6379/0?stream=<key>, amqp://user:password@host:5672/%2f?exchange=<x>&routing_key=<k>)"))?;
        super::sinks::keep_password(h, &url);
    }
    let sink_headers: Vec<String> = serde_json::from_str::<BTreeMap<String, String>>(&h.headers)
        .unwrap_or_default()
        .into_keys()
        .filter(|k| k != super::sinks::PASSWORD_KEY)
        .collect();
    if super::sinks::is_sink(&h.url) && !sink_headers.is_empty() {
        return Err(EngineError::invalid_field(
            "headers",
            format!("a broker takes no HTTP headers (`{}`)", sink_headers.join("`, `")),
            "leave headers out for a broker's hook; credentials go in its URL",
        ));
    }
    Ok(())
}

pub fn check_secret(format: &str, secret: &str) -> EngineResult<()> {
    let ok = if format == "meta" {
        secret.len() >= 16
    } else {
        use base64::Engine;
        secret
            .strip_prefix("whsec_")
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .is_some_and(|k| (24..=64).contains(&k.len()))
    };
    if ok {
        Ok(())
    } else {
        Err(EngineError::invalid_field(
            "secret",
            "the secret is not usable for this format",
            "for meta: the app secret your bot checks (16 characters or more); for event: whsec_ and 24 to 64 bytes in base64, or leave it out to have one made",
        ))
    }
}

/// The hook, if the key may see it: a tenant's key sees its tenant's hooks only, a key of one
/// account the hooks of that account only.
pub async fn find(state: &Engine, caller: &Caller, id: &HookId) -> EngineResult<Hook> {
    state
        .store
        .get_hook(id)
        .await?
        .filter(|h| caller.sees_hook(h))
        .ok_or_else(|| EngineError::not_found("hook", id))
}

/// A tenant's hook filters on its tenant's accounts only; a hook made by a key of one account
/// takes that account's events only (its account when it names none), and belongs to the
/// account's tenant.
pub fn check_accounts(state: &Engine, caller: &Caller, hook: &mut Hook) -> EngineResult<()> {
    let mut accounts: Vec<String> = serde_json::from_str(&hook.accounts).unwrap_or_default();
    if let Some(own) = &caller.account_id {
        if accounts.is_empty() {
            accounts.push(own.to_string());
            hook.accounts = serde_json::to_string(&accounts).unwrap_or_default();
        }
        if hook.tenant.is_none() {
            hook.tenant = state.accounts.by_id(own).and_then(|a| a.tenant.clone());
        }
    }
    match accounts.iter().find(|a| !caller.sees(a)) {
        Some(a) => Err(EngineError::unknown_account("accounts", a)),
        None => Ok(()),
    }
}
