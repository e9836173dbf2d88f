//! `/v1/hooks`: the user's services that receive events. Create (the secret is shown this once),
//! list, get (with health), update, delete, rotate the secret, enable, the attempts, replay.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;
use wagate_core::hooks::{check_pattern, reserved_header};
use wagate_core::time::{parse_time_ms, rfc3339_ms};
use wagate_store::{EventFilter, Hook, HookHealth, HookId};

use crate::api::{opt_i64, page_limit};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::{now_ms, AppState};

/// How long the previous secret keeps signing after a rotation.
const ROTATION_OVERLAP_MS: i64 = 24 * 3600 * 1000;

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

fn view(state: &AppState, h: &Hook, health: Option<HookHealth>) -> HookView {
    let list = |s: &str| serde_json::from_str::<Vec<String>>(s).unwrap_or_default();
    HookView {
        id: h.id.to_string(),
        name: h.name.clone(),
        url: h.url.clone(),
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

fn parse_request(body: &Bytes) -> ApiResult<HookRequest> {
    super::parse_body_of(
        "hook",
        body,
        "send {\"url\": \"https://…\", \"events\": [\"message.*\"]}; see /openapi.json for every field",
    )
}

/// Applies a request to a hook, checking each field; the URL last, as its check asks DNS.
async fn apply(state: &AppState, h: &mut Hook, r: HookRequest) -> ApiResult<()> {
    if let Some(events) = r.events {
        if let Some(e) = events.iter().find_map(|p| check_pattern(p).err()) {
            return Err(
                ApiError::invalid_field("events", e, "use event types or patterns such as message.*")
                    .details(json!({"field": "events", "allowed": wagate_core::webhook::EVENT_TYPES})),
            );
        }
        h.events = serde_json::to_string(&events).unwrap_or_default();
    }
    if let Some(format) = r.format {
        if !["event", "meta"].contains(&format.as_str()) {
            return Err(ApiError::invalid_field(
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
        let ids =
            crate::hooks::account_ids(state, &accounts).map_err(|name| ApiError::unknown_account("accounts", &name))?;
        h.accounts = serde_json::to_string(&ids).unwrap_or_default();
    }
    if let Some(contacts) = r.contacts {
        h.contacts = serde_json::to_string(&contacts).unwrap_or_default();
    }
    if let Some(mut headers) = r.headers {
        // A value sent back as answers show it (masked) keeps the value stored.
        let stored: BTreeMap<String, String> = serde_json::from_str(&h.headers).unwrap_or_default();
        for (k, v) in headers.iter_mut() {
            if let Some(old) = stored.get(k).filter(|old| masked(old) == *v) {
                v.clone_from(old);
            }
        }
        if let Some(k) = headers.keys().find(|k| reserved_header(k)) {
            return Err(ApiError::invalid_field(
                "headers",
                format!("`{k}` is set by wagate itself and cannot be overridden"),
                "remove it; the webhook-* signature headers are always sent",
            ));
        }
        if let Some(k) = headers
            .iter()
            .find(|(k, v)| {
                axum::http::HeaderName::from_bytes(k.as_bytes()).is_err()
                    || axum::http::HeaderValue::from_str(v).is_err()
            })
            .map(|(k, _)| k)
        {
            return Err(ApiError::invalid_field(
                "headers",
                format!("`{k}` is not a valid header name or value"),
                "use plain ASCII header names and values",
            ));
        }
        h.headers = serde_json::to_string(&headers).unwrap_or_default();
    }
    if let Some(media) = r.media {
        if !["link", "base64", "both"].contains(&media.as_str()) {
            return Err(ApiError::invalid_field(
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
        return Err(ApiError::invalid_field(
            if h.events != "[]" { "events" } else { "contacts" },
            "a `meta`-format hook receives Meta's webhook bodies whole, as Meta sent them; they are not split by event or contact",
            "leave out events and contacts (filter by accounts), or use format \"event\"",
        ));
    }
    if let Some(url) = r.url {
        crate::hooks::check_url_target(&url, state.config.hooks.allow_private_networks)
            .await
            .map_err(|e| ApiError::invalid_field("url", e, "give the https URL of your service"))?;
        h.url = url;
    }
    Ok(())
}

fn check_secret(format: &str, secret: &str) -> ApiResult<()> {
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
        Err(ApiError::invalid_field(
            "secret",
            "the secret is not usable for this format",
            "for meta: the app secret your bot checks (16 characters or more); for event: whsec_ and 24 to 64 bytes in base64, or leave it out to have one made",
        ))
    }
}

/// The hook, if the key may see it: a tenant's key sees its tenant's hooks only, a key of one
/// account the hooks of that account only.
async fn find(state: &AppState, caller: &Caller, id: &HookId) -> ApiResult<Hook> {
    state
        .store
        .get_hook(id)
        .await?
        .filter(|h| caller.sees_hook(h))
        .ok_or_else(|| ApiError::not_found("hook", id))
}

/// A tenant's hook filters on its tenant's accounts only; a hook made by a key of one account
/// takes that account's events only (its account when it names none), and belongs to the
/// account's tenant.
fn check_accounts(state: &AppState, caller: &Caller, hook: &mut Hook) -> ApiResult<()> {
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
        Some(a) => Err(ApiError::unknown_account("accounts", a)),
        None => Ok(()),
    }
}

/// Register a hook; the answer carries its secret, this once.
#[utoipa::path(post, path = "/v1/hooks", tag = "hooks", request_body = HookRequest,
    responses((status = 201, body = HookView), (status = 400, body = ErrorBody)), security(("api_key" = [])))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<HookView>)> {
    caller.require("admin")?;
    let r = parse_request(&body)?;
    if r.url.is_none() {
        return Err(ApiError::invalid_field(
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
    apply(&state, &mut hook, r).await?;
    hook.tenant = caller.tenant.clone();
    check_accounts(&state, &caller, &mut hook)?;
    let saved = state.store.save_hook(&hook).await?;
    state.hooks_changed();
    crate::audit::record(
        &state,
        &caller,
        "hook.created",
        Some(&saved.id),
        None,
        json!({"url": saved.url, "format": saved.format}),
    )
    .await;
    let mut v = view(&state, &saved, None);
    v.secret = Some(saved.secret.clone());
    Ok((StatusCode::CREATED, Json(v)))
}

#[derive(Serialize, ToSchema)]
pub struct HookList {
    pub data: Vec<HookView>,
}

/// Every hook.
#[utoipa::path(get, path = "/v1/hooks", tag = "hooks", responses((status = 200, body = HookList)), security(("api_key" = [])))]
pub async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<HookList>> {
    caller.require("admin")?;
    let hooks = state.store.list_hooks().await?;
    Ok(Json(HookList {
        data: hooks
            .iter()
            .filter(|h| caller.sees_hook(h))
            .map(|h| view(&state, h, None))
            .collect(),
    }))
}

/// A hook with its health: success rate, backlog, last error.
#[utoipa::path(get, path = "/v1/hooks/{id}", tag = "hooks", params(("id" = String, Path)),
    responses((status = 200, body = HookView), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<HookId>,
) -> ApiResult<Json<HookView>> {
    caller.require("admin")?;
    let hook = find(&state, &caller, &id).await?;
    let health = state.store.hook_health(&id).await?;
    Ok(Json(view(&state, &hook, Some(health))))
}

/// Change a hook's fields.
#[utoipa::path(patch, path = "/v1/hooks/{id}", tag = "hooks", params(("id" = String, Path)), request_body = HookRequest,
    responses((status = 200, body = HookView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<HookId>,
    body: Bytes,
) -> ApiResult<Json<HookView>> {
    caller.require("admin")?;
    let mut hook = find(&state, &caller, &id).await?;
    let mut r = parse_request(&body)?;
    let changed: Vec<String> = serde_json::from_slice::<serde_json::Map<String, Value>>(&body)
        .map(|m| m.keys().filter(|k| k.as_str() != "secret").cloned().collect())
        .unwrap_or_default();
    let enabled = r.enabled.take();
    apply(&state, &mut hook, r).await?;
    check_accounts(&state, &caller, &mut hook)?;
    hook.updated_at = now_ms();
    state.store.save_hook(&hook).await?;
    if let Some(on) = enabled {
        let reason = (!on).then_some("disabled through the API");
        state.store.set_hook_enabled(&id, on, reason, now_ms()).await?;
    }
    state.hooks_changed();
    crate::audit::record(
        &state,
        &caller,
        "hook.updated",
        Some(&id),
        None,
        json!({"fields": changed}),
    )
    .await;
    let saved = find(&state, &caller, &id).await?;
    Ok(Json(view(&state, &saved, None)))
}

/// Delete a hook with its deliveries and attempts.
#[utoipa::path(delete, path = "/v1/hooks/{id}", tag = "hooks", params(("id" = String, Path)),
    responses((status = 200, description = "{\"deleted\": true}"), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn delete(State(state): State<AppState>, caller: Caller, Path(id): Path<HookId>) -> ApiResult<Json<Value>> {
    caller.require("admin")?;
    find(&state, &caller, &id).await?;
    if !state.store.delete_hook(&id).await? {
        return Err(ApiError::not_found("hook", &id));
    }
    state.hooks_changed();
    crate::audit::record(&state, &caller, "hook.deleted", Some(&id), None, json!({})).await;
    Ok(Json(json!({"deleted": true})))
}

/// A new secret; the previous one keeps signing beside it for 24 hours.
#[utoipa::path(post, path = "/v1/hooks/{id}/secret/rotate", tag = "hooks", params(("id" = String, Path)),
    responses((status = 200, description = "{\"secret\", \"previous_secret_valid_until\"}"), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn rotate(State(state): State<AppState>, caller: Caller, Path(id): Path<HookId>) -> ApiResult<Json<Value>> {
    caller.require("admin")?;
    find(&state, &caller, &id).await?;
    let secret = wagate_core::hooks::new_secret();
    let until = now_ms() + ROTATION_OVERLAP_MS;
    state.store.rotate_hook_secret(&id, &secret, until, now_ms()).await?;
    state.hooks_changed();
    crate::audit::record(
        &state,
        &caller,
        "hook.secret_rotated",
        Some(&id),
        None,
        json!({"previous_secret_valid_until": rfc3339_ms(until)}),
    )
    .await;
    Ok(Json(
        json!({"secret": secret, "previous_secret_valid_until": rfc3339_ms(until)}),
    ))
}

/// Turn a disabled hook back on. It takes new events from now on, and what was pending when it
/// was disabled; replay brings what happened in between.
#[utoipa::path(post, path = "/v1/hooks/{id}/enable", tag = "hooks", params(("id" = String, Path)),
    responses((status = 200, body = HookView), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn enable(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<HookId>,
) -> ApiResult<Json<HookView>> {
    caller.require("admin")?;
    find(&state, &caller, &id).await?;
    state.store.set_hook_enabled(&id, true, None, now_ms()).await?;
    state.hooks_changed();
    crate::audit::record(&state, &caller, "hook.enabled", Some(&id), None, json!({})).await;
    let hook = find(&state, &caller, &id).await?;
    Ok(Json(view(&state, &hook, None)))
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct AttemptQuery {
    #[serde(default, deserialize_with = "opt_i64")]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[serde(default, deserialize_with = "opt_i64")]
    pub cursor: Option<i64>,
}

/// The hook's attempts, newest first.
#[utoipa::path(get, path = "/v1/hooks/{id}/attempts", tag = "hooks", params(("id" = String, Path), AttemptQuery, crate::api::WaitQuery),
    responses((status = 200, description = "{\"data\": [...], \"next_cursor\"}"), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn attempts(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<HookId>,
    Query(q): Query<AttemptQuery>,
    Query(wait): Query<crate::api::WaitQuery>,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    caller.require("admin")?;
    find(&state, &caller, &id).await?;
    let limit = page_limit(q.limit)?;
    let within = wait.within()?;
    // `?wait_for=attempt|succeeded|failed`: until the page holds such an attempt.
    let wanted: Option<fn(&wagate_store::Attempt) -> bool> = match (within, wait.wait_for.as_deref()) {
        (None, _) => None,
        (Some(_), Some("attempt")) => Some(|_| true),
        (Some(_), Some("succeeded")) => Some(|a| a.succeeded),
        (Some(_), Some("failed")) => Some(|a| !a.succeeded),
        (Some(_), other) => {
            return Err(ApiError::invalid_field(
                "wait_for",
                format!("`{}` is not something an attempt can be", other.unwrap_or_default()),
                "wait for attempt, succeeded or failed",
            ))
        }
    };
    let read = || async { Ok(state.store.list_attempts(&id, q.cursor, limit + 1).await?) };
    let (rows, met) = match (within, wanted) {
        (Some(within), Some(wanted)) => {
            let met = |rows: &Vec<wagate_store::Attempt>| rows.iter().take(limit as usize).any(wanted);
            let (rows, met) = crate::api::wait_until(&state, within, read, met).await?;
            (rows, Some(met))
        }
        _ => (read().await?, None),
    };
    let next_cursor = (rows.len() as i64 > limit).then(|| rows[limit as usize - 1].id);
    let data: Vec<Value> = rows.iter().take(limit as usize).map(attempt_json).collect();
    let page = Json(json!({"data": data, "next_cursor": next_cursor}));
    Ok(match met {
        Some(met) => (crate::api::wait_header(met), page).into_response(),
        None => page.into_response(),
    })
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

fn time_field(name: &str, v: &str) -> ApiResult<i64> {
    parse_time_ms(v).ok_or_else(|| {
        ApiError::invalid_field(
            name,
            format!("{name} = `{v}` is not a time"),
            "use RFC 3339 (2026-01-31T12:00:00Z) or unix seconds",
        )
    })
}

/// Deliver again every event in a time range that this hook takes (or only the failed ones).
#[utoipa::path(post, path = "/v1/hooks/{id}/replay", tag = "hooks", params(("id" = String, Path)), request_body = ReplayRequest,
    responses((status = 202, description = "{\"queued\": n}"), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn replay(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<HookId>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.require("admin")?;
    let hook = find(&state, &caller, &id).await?;
    let r: ReplayRequest = super::parse_body_of("replay", &body, "send {\"since\": \"2026-01-31T12:00:00Z\"}")?;
    let since = time_field("since", &r.since)?;
    let until = match &r.until {
        Some(u) => time_field("until", u)?,
        None => now_ms() + 1,
    };
    if until <= since {
        return Err(ApiError::invalid_field(
            "until",
            "until is not after since",
            "give a range that is not empty",
        ));
    }
    let now = now_ms();
    let queued = if r.only_failed {
        state.store.retry_failed_deliveries(&id, since, until, now).await?
    } else if hook.format == "meta" {
        let filter = crate::workers::hooks::filter_for(&state, &hook);
        let (mut after, mut queued) = (0i64, 0u64);
        loop {
            let page = state.store.journal_page(after, Some(since), Some(until), 500).await?;
            let Some(last) = page.last().map(|e| e.id) else { break };
            let taken = crate::workers::hooks::matching_bodies(&filter, &page);
            state.store.add_deliveries(&id, &taken, None, now).await?;
            queued += taken.len() as u64;
            after = last;
        }
        queued
    } else {
        let filter = crate::workers::hooks::filter_for(&state, &hook);
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
            let taken = crate::workers::hooks::matching(&filter, &page);
            state.store.add_deliveries(&id, &taken, None, now).await?;
            queued += taken.len() as u64;
            after = Some(last);
        }
        queued
    };
    state.wake_deliveries.notify_one();
    let details =
        json!({"since": rfc3339_ms(since), "until": rfc3339_ms(until), "only_failed": r.only_failed, "queued": queued});
    crate::audit::record(&state, &caller, "hook.replayed", Some(&id), None, details).await;
    Ok((StatusCode::ACCEPTED, Json(json!({"queued": queued}))))
}
