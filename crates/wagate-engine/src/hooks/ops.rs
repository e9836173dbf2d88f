//! A hook's operations: register (the secret is given this once), list, read with its health,
//! change, delete, rotate the secret, enable, its attempts, and replay a time range.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;
use wagate_core::time::{parse_time_ms, rfc3339_ms};
use wagate_store::{EventFilter, Hook, HookHealth, HookId};

use super::manage::{apply, check_accounts, find, masked, HookRequest, ROTATION_OVERLAP_MS};
use crate::auth::Caller;
use crate::clock::now_ms;
use crate::error::{EngineError, EngineResult};
use crate::events::wait_until;
use crate::state::Engine;

/// A hook, as the API shows it (never with its secret, except right after creation or
/// rotation).
#[derive(Serialize, ToSchema)]
pub struct HookView {
    /// `hook_…`
    pub id: String,
    /// Set for hooks from the configuration file.
    pub name: Option<String>,
    pub url: String,
    pub description: Option<String>,
    /// `event` (wagate's event JSON, signed per Standard Webhooks).
    pub format: String,
    /// Event type patterns; empty: every event.
    pub events: Vec<String>,
    /// Account names; empty: every account.
    pub accounts: Vec<String>,
    /// Contacts (wa_id or user id); empty: every contact.
    pub contacts: Vec<String>,
    /// Extra headers sent with each delivery, their values masked (sealed at rest). Sending a
    /// masked value back in an update keeps the stored one.
    pub headers: BTreeMap<String, String>,
    /// `link`, `base64` or `both`.
    pub media: String,
    /// Per contact, one delivery at a time, in order.
    pub ordered: bool,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    /// `api` or `config`.
    pub source: String,
    pub created_at: String,
    pub updated_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub health: Option<Value>,
    /// Only in the answer to creation and rotation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

pub fn view(state: &Engine, h: &Hook, health: Option<HookHealth>) -> HookView {
    let list = |s: &str| serde_json::from_str::<Vec<String>>(s).unwrap_or_default();
    HookView {
        id: h.id.to_string(),
        name: h.name.clone(),
        url: super::sinks::masked(&h.url),
        description: h.description.clone(),
        format: h.format.clone(),
        events: list(&h.events),
        accounts: list(&h.accounts)
            .iter()
            .map(|id| {
                state
                    .accounts
                    .by_id(id)
                    .map(|a| a.name.clone())
                    .unwrap_or_else(|| id.clone())
            })
            .collect(),
        contacts: list(&h.contacts),
        headers: serde_json::from_str::<BTreeMap<String, String>>(&h.headers)
            .unwrap_or_default()
            .into_iter()
            .filter(|(k, _)| k != super::sinks::PASSWORD_KEY)
            .map(|(k, v)| (k, masked(&v)))
            .collect(),
        media: h.media.clone(),
        ordered: h.ordered,
        enabled: h.enabled,
        disabled_reason: h.disabled_reason.clone(),
        source: h.source.clone(),
        created_at: rfc3339_ms(h.created_at),
        updated_at: rfc3339_ms(h.updated_at),
        health: health.map(|x| {
            let total = x.attempts_succeeded + x.attempts_failed;
            json!({
                "attempts_succeeded": x.attempts_succeeded,
                "attempts_failed": x.attempts_failed,
                "success_rate": if total > 0 { Some(x.attempts_succeeded as f64 / total as f64) } else { None },
                "pending": x.pending,
                "failed": x.failed,
                "last_error": x.last_error,
                "last_attempt_at": x.last_attempt_at.map(rfc3339_ms),
                "failing_since": h.failing_since.map(rfc3339_ms),
            })
        }),
        secret: None,
    }
}

/// Registers a hook; the view carries its secret, this once.
pub async fn create(state: &Engine, caller: &Caller, r: HookRequest) -> EngineResult<HookView> {
    caller.require("admin")?;
    if r.url.is_none() {
        return Err(EngineError::invalid_field(
            "url",
            "url is required",
            "give the https URL of your service",
        ));
    }
    let now = now_ms();
    let mut hook = Hook {
        id: wagate_core::ids::new_id("hook").into(),
        name: None,
        url: String::new(),
        description: None,
        format: "event".into(),
        events: "[]".into(),
        accounts: "[]".into(),
        contacts: "[]".into(),
        headers: "{}".into(),
        media: "link".into(),
        ordered: false,
        enabled: true,
        disabled_reason: None,
        secret: wagate_core::hooks::new_secret(),
        previous_secret: None,
        previous_secret_until: None,
        cursor_seq: 0,
        source: "api".into(),
        failing_since: None,
        created_at: now,
        updated_at: now,
        tenant: None,
    };
    apply(state, &mut hook, r).await?;
    hook.tenant = caller.tenant.clone();
    check_accounts(state, caller, &mut hook)?;
    let saved = state.store.save_hook(&hook).await?;
    state.hooks_changed();
    crate::audit::record(
        state,
        caller,
        "hook.created",
        Some(&saved.id),
        None,
        json!({"url": saved.url, "format": saved.format}),
    )
    .await;
    let mut v = view(state, &saved, None);
    v.secret = Some(saved.secret.clone());
    Ok(v)
}

#[derive(Serialize, ToSchema)]
pub struct HookList {
    pub data: Vec<HookView>,
}

/// Every hook the caller may see.
pub async fn list(state: &Engine, caller: &Caller) -> EngineResult<HookList> {
    caller.require("admin")?;
    let hooks = state.store.list_hooks().await?;
    Ok(HookList {
        data: hooks
            .iter()
            .filter(|h| caller.sees_hook(h))
            .map(|h| view(state, h, None))
            .collect(),
    })
}

/// A hook with its health: success rate, backlog, last error.
pub async fn get(state: &Engine, caller: &Caller, id: &HookId) -> EngineResult<HookView> {
    caller.require("admin")?;
    let hook = find(state, caller, id).await?;
    let health = state.store.hook_health(id).await?;
    Ok(view(state, &hook, Some(health)))
}

/// Changes a hook's fields (`changed`: the fields the request named, for the audit log).
pub async fn update(
    state: &Engine,
    caller: &Caller,
    mut hook: Hook,
    mut r: HookRequest,
    changed: Vec<String>,
) -> EngineResult<HookView> {
    caller.require("admin")?;
    let id = hook.id.clone();
    let enabled = r.enabled.take();
    apply(state, &mut hook, r).await?;
    check_accounts(state, caller, &mut hook)?;
    hook.updated_at = now_ms();
    state.store.save_hook(&hook).await?;
    if let Some(on) = enabled {
        let reason = (!on).then_some("disabled through the API");
        state.store.set_hook_enabled(&id, on, reason, now_ms()).await?;
    }
    state.hooks_changed();
    crate::audit::record(
        state,
        caller,
        "hook.updated",
        Some(&id),
        None,
        json!({"fields": changed}),
    )
    .await;
    let saved = find(state, caller, &id).await?;
    Ok(view(state, &saved, None))
}

/// Deletes a hook with its deliveries and attempts.
pub async fn delete(state: &Engine, caller: &Caller, id: &HookId) -> EngineResult<Value> {
    caller.require("admin")?;
    find(state, caller, id).await?;
    if !state.store.delete_hook(id).await? {
        return Err(EngineError::not_found("hook", id));
    }
    state.hooks_changed();
    crate::audit::record(state, caller, "hook.deleted", Some(id), None, json!({})).await;
    Ok(json!({"deleted": true}))
}

/// A new secret; the previous one keeps signing beside it for 24 hours.
pub async fn rotate(state: &Engine, caller: &Caller, id: &HookId) -> EngineResult<Value> {
    caller.require("admin")?;
    find(state, caller, id).await?;
    let secret = wagate_core::hooks::new_secret();
    let until = now_ms() + ROTATION_OVERLAP_MS;
    state.store.rotate_hook_secret(id, &secret, until, now_ms()).await?;
    state.hooks_changed();
    crate::audit::record(
        state,
        caller,
        "hook.secret_rotated",
        Some(id),
        None,
        json!({"previous_secret_valid_until": rfc3339_ms(until)}),
    )
    .await;
    Ok(json!({"secret": secret, "previous_secret_valid_until": rfc3339_ms(until)}))
}

/// Sends the hook a test event now and answers what its receiver said (nothing is stored but
/// the audit entry).
pub async fn test(state: &Engine, caller: &Caller, id: &HookId) -> EngineResult<super::delivery::TestAnswer> {
    caller.require("admin")?;
    let hook = find(state, caller, id).await?;
    let answer = super::delivery::send_test(state, &hook).await;
    let details = json!({"status_code": answer.status_code, "succeeded": answer.succeeded});
    crate::audit::record(state, caller, "hook.tested", Some(id), None, details).await;
    Ok(answer)
}

/// Turns a disabled hook off, with the reason given (its events wait in the log: enabling it
/// starts from then on, and a replay brings what it missed).
pub async fn disable(state: &Engine, caller: &Caller, id: &HookId) -> EngineResult<HookView> {
    caller.require("admin")?;
    find(state, caller, id).await?;
    let reason = format!("disabled by {}", caller.key_name);
    state.store.set_hook_enabled(id, false, Some(&reason), now_ms()).await?;
    state.hooks_changed();
    crate::audit::record(state, caller, "hook.disabled", Some(id), None, json!({})).await;
    let hook = find(state, caller, id).await?;
    Ok(view(state, &hook, None))
}

/// Turns a disabled hook back on.
pub async fn enable(state: &Engine, caller: &Caller, id: &HookId) -> EngineResult<HookView> {
    caller.require("admin")?;
    find(state, caller, id).await?;
    state.store.set_hook_enabled(id, true, None, now_ms()).await?;
    state.hooks_changed();
    crate::audit::record(state, caller, "hook.enabled", Some(id), None, json!({})).await;
    let hook = find(state, caller, id).await?;
    Ok(view(state, &hook, None))
}

/// A page of the hook's attempts, newest first (`{"data", "next_cursor"}`); with `wait`
/// (`attempt`, `succeeded` or `failed`), once the page holds such an attempt or the time has
/// passed (`Some(met)` says which).
pub async fn attempts(
    state: &Engine,
    caller: &Caller,
    id: &HookId,
    cursor: Option<i64>,
    limit: i64,
    wait: Option<(Duration, &str)>,
) -> EngineResult<(Value, Option<bool>)> {
    caller.require("admin")?;
    find(state, caller, id).await?;
    // `?wait_for=attempt|succeeded|failed`: until the page holds such an attempt.
    let wanted: Option<fn(&wagate_store::Attempt) -> bool> = match wait.map(|(_, w)| w) {
        None => None,
        Some("attempt") => Some(|_| true),
        Some("succeeded") => Some(|a| a.succeeded),
        Some("failed") => Some(|a| !a.succeeded),
        other => {
            return Err(EngineError::invalid_field(
                "wait_for",
                format!("`{}` is not something an attempt can be", other.unwrap_or_default()),
                "wait for attempt, succeeded or failed",
            ))
        }
    };
    let read = || async { Ok(state.store.list_attempts(id, cursor, limit + 1).await?) };
    let (rows, met) = match (wait.map(|(within, _)| within), wanted) {
        (Some(within), Some(wanted)) => {
            let met = |rows: &Vec<wagate_store::Attempt>| rows.iter().take(limit as usize).any(wanted);
            let (rows, met) = wait_until(state, within, read, met).await?;
            (rows, Some(met))
        }
        _ => (read().await?, None),
    };
    let next_cursor = (rows.len() as i64 > limit).then(|| rows[limit as usize - 1].id);
    let data: Vec<Value> = rows.iter().take(limit as usize).map(attempt_json).collect();
    Ok((json!({"data": data, "next_cursor": next_cursor}), met))
}

pub fn attempt_json(a: &wagate_store::Attempt) -> Value {
    json!({
        "id": a.id,
        "event_id": a.event_id,
        "attempted_at": rfc3339_ms(a.attempted_at),
        "succeeded": a.succeeded,
        "status_code": a.status_code,
        "error": a.error,
        "latency_ms": a.latency_ms,
        "response_excerpt": a.response_excerpt,
        "reply": (a.reply_message_id.is_some() || a.reply_error.is_some())
            .then(|| json!({"message_id": a.reply_message_id, "error": a.reply_error})),
    })
}

/// The body of `POST /v1/hooks/{id}/replay`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    /// Events stored from this time on (RFC 3339 or unix seconds): what arrived during an
    /// outage, even when Meta delivered it late.
    pub since: String,
    /// Up to this time; default now.
    pub until: Option<String>,
    /// Only the events whose delivery to this hook failed.
    #[serde(default)]
    pub only_failed: bool,
}

fn time_field(name: &str, v: &str) -> EngineResult<i64> {
    parse_time_ms(v).ok_or_else(|| {
        EngineError::invalid_field(
            name,
            format!("{name} = `{v}` is not a time"),
            "use RFC 3339 (2026-01-31T12:00:00Z) or unix seconds",
        )
    })
}

/// Delivers again every event in a time range that this hook takes (or only the failed ones);
/// returns how many deliveries were queued.
pub async fn replay(state: &Engine, caller: &Caller, hook: &Hook, r: &ReplayRequest) -> EngineResult<u64> {
    caller.require("admin")?;
    let id = &hook.id;
    let since = time_field("since", &r.since)?;
    let until = match &r.until {
        Some(u) => time_field("until", u)?,
        None => now_ms() + 1,
    };
    if until <= since {
        return Err(EngineError::invalid_field(
            "until",
            "until is not after since",
            "give a range that is not empty",
        ));
    }
    let now = now_ms();
    let queued = if r.only_failed {
        state.store.retry_failed_deliveries(id, since, until, now).await?
    } else if hook.format == "meta" {
        let filter = super::filters::filter_for(state, hook);
        let (mut after, mut queued) = (0i64, 0u64);
        loop {
            let page = state.store.journal_page(after, Some(since), Some(until), 500).await?;
            let Some(last) = page.last().map(|e| e.id) else { break };
            let taken = super::filters::matching_bodies(&filter, &page);
            state.store.add_deliveries(id, &taken, None, now).await?;
            queued += taken.len() as u64;
            after = last;
        }
        queued
    } else {
        let filter = super::filters::filter_for(state, hook);
        let mut after = None;
        let mut queued = 0u64;
        loop {
            let page = state
                .store
                .list_events(&EventFilter {
                    stored_since_ms: Some(since),
                    stored_until_ms: Some(until),
                    after_seq: after,
                    limit: 500,
                    ..EventFilter::default()
                })
                .await?;
            let Some(last) = page.last().map(|e| e.seq) else { break };
            let taken = super::filters::matching(&filter, &page);
            state.store.add_deliveries(id, &taken, None, now).await?;
            queued += taken.len() as u64;
            after = Some(last);
        }
        queued
    };
    state.wake_deliveries.notify_one();
    let details =
        json!({"since": rfc3339_ms(since), "until": rfc3339_ms(until), "only_failed": r.only_failed, "queued": queued});
    crate::audit::record(state, caller, "hook.replayed", Some(id), None, details).await;
    Ok(queued)
}
