//! "Connect WhatsApp": a tenant's business signs up through Meta's OAuth dialog and lands back
//! with a working account.
//!
//! Starting (the HTTP door's `GET /v1/connect/start?tenant=…&redirect=…`) gives the dialog's URL. Its `state` is a
//! random id kept in the database (used once, for ten minutes, bound to the tenant and the page
//! to return to), signed with the app secret. Meta sends the browser to `GET /connect/callback`
//! with a code; the gateway exchanges it for a token, asks `debug_token` what it may do and
//! which WABAs were shared, lists the WABA's numbers, subscribes the app to the WABA, registers
//! the number when a PIN was given, makes the account, and sends the browser back to the
//! caller's page with `?account=…`, or with `?error=<code>&error_description=…`. Nothing is
//! made unless every step worked; a subscription made before a later step failed is undone.

use std::collections::HashMap;

use serde::Serialize;
use utoipa::ToSchema;
use wagate_graph::{GraphError, GraphPath};

use crate::accounts::runtime::AccountRuntime;
use crate::auth::Caller;
use crate::clock::now_ms;
use crate::error::{EngineError, EngineResult, Kind};
use crate::state::Engine;

/// How long a started dialog may take.
const STATE_TTL_MS: i64 = 10 * 60 * 1000;
const SCOPES: [&str; 2] = ["whatsapp_business_management", "whatsapp_business_messaging"];

/// The signature of a state id: HMAC-SHA256 with the app secret, bound to the tenant.
pub fn sign_state(app_secret: &str, id: &str, tenant: &str) -> String {
    // `sha256=<hex>`: Meta's webhook signature scheme, reused as a plain HMAC-SHA256.
    let mac = wagate_core::signature::sign_hub(app_secret, format!("connect-state.{id}.{tenant}").as_bytes());
    let hex = mac.trim_start_matches("sha256=");
    format!("{id}.{}", &hex[..hex.len().min(32)])
}

fn app(state: &Engine) -> Result<(String, String), EngineError> {
    match (&state.config.meta.app_id, &state.config.meta.app_secret) {
        (id, Some(secret)) if !id.is_empty() => Ok((id.clone(), secret.clone())),
        _ => Err(EngineError::new(
            Kind::Conflict,
            "connect_not_configured",
            "Connect WhatsApp needs the Meta app: its id and App Secret",
        )
        .hint("set WAGATE_META_APP_ID and WAGATE_META_APP_SECRET (sandbox mode sets them to the simulator's app)")),
    }
}

fn callback_url(state: &Engine) -> String {
    format!("{}/connect/callback", state.public_base)
}

#[derive(Serialize, ToSchema)]
pub struct Started {
    /// Meta's dialog: send the business's browser there.
    pub url: String,
    /// When the dialog must be finished by.
    pub expires_at: String,
}

/// Starts "Connect WhatsApp" for a tenant (`tenant`, `redirect`, `pin` as the query gave them):
/// Meta's dialog URL, with a signed state kept for ten minutes.
pub async fn start(state: &Engine, caller: &Caller, q: &HashMap<String, String>) -> EngineResult<Started> {
    caller.require_all_accounts("admin", "connecting a new account")?;
    let (app_id, app_secret) = app(state)?;
    // A tenant's key connects for its own tenant.
    let tenant = q
        .get("tenant")
        .map(|t| t.trim())
        .or(caller.tenant.as_deref())
        .unwrap_or_default();
    if caller.tenant.as_deref().is_some_and(|own| own != tenant) {
        return Err(EngineError::invalid_field(
            "tenant",
            "this key belongs to another tenant",
            "leave tenant out: a tenant's key connects accounts for its own tenant",
        ));
    }
    if !wagate_core::validate::is_slug(tenant) {
        return Err(EngineError::invalid_field(
            "tenant",
            "tenant is required: 1 to 64 letters, digits, - or _",
            "name who the connected account belongs to, e.g. ?tenant=acme",
        ));
    }
    let redirect = q.get("redirect").map(String::as_str).unwrap_or_default();
    let parsed = url::Url::parse(redirect)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
    if parsed.is_none() || redirect.len() > 2000 {
        return Err(EngineError::invalid_field(
            "redirect",
            format!("`{redirect}` is not an absolute http(s) URL"),
            "give the page of your app the browser returns to, e.g. ?redirect=https://app.example.com/whatsapp/connected",
        ));
    }
    let pin = q.get("pin").filter(|p| !p.is_empty()).cloned();
    if pin
        .as_deref()
        .is_some_and(|p| p.len() != 6 || !p.chars().all(|c| c.is_ascii_digit()))
    {
        return Err(EngineError::invalid_field(
            "pin",
            "pin must be 6 digits",
            "the number's two-step verification PIN, e.g. ?pin=123456",
        ));
    }
    let now = now_ms();
    let id = wagate_core::ids::secret("cs_", 16);
    state
        .store
        .create_connect_state(&wagate_store::ConnectState {
            id: id.clone(),
            tenant: tenant.to_string(),
            redirect: redirect.to_string(),
            pin,
            created_at: now,
            expires_at: now + STATE_TTL_MS,
            used_at: None,
        })
        .await?;
    let mut dialog = url::Url::parse(&format!(
        "{}/{}/dialog/oauth",
        state.config.meta.dialog_url, state.config.api_version
    ))
    .map_err(|e| EngineError::internal(format!("meta.dialog_url is not a URL: {e}")))?;
    {
        let mut pairs = dialog.query_pairs_mut();
        pairs
            .append_pair("client_id", &app_id)
            .append_pair("redirect_uri", &callback_url(state))
            .append_pair("state", &sign_state(&app_secret, &id, tenant))
            .append_pair("response_type", "code")
            .append_pair("scope", &SCOPES.join(","));
        if !state.config.meta.config_id.is_empty() {
            pairs.append_pair("config_id", &state.config.meta.config_id);
        }
    }
    let details = serde_json::json!({"tenant": tenant, "redirect": redirect});
    crate::audit::record(state, caller, "connect.started", Some(tenant), None, details).await;
    Ok(Started {
        url: dialog.to_string(),
        expires_at: wagate_core::time::rfc3339_ms(now + STATE_TTL_MS),
    })
}

/// A failure the caller's page is told of: a stable code and a sentence.
struct Failed(&'static str, String);

/// Where a browser coming back from Meta's dialog is sent.
#[derive(Debug)]
pub enum Landing {
    /// Back to the caller's page with these query pairs (`account`…, or `error`…).
    Back {
        redirect: String,
        pairs: Vec<(String, String)>,
    },
    /// The state is not ours: there is no page the browser may be sent to; say why.
    Refused(String),
    /// The database did not answer.
    Unavailable,
}

fn back_to(redirect: &str, pairs: &[(&str, &str)]) -> Landing {
    Landing::Back {
        redirect: redirect.to_string(),
        pairs: pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
    }
}

/// A callback whose state is not ours: there is no page we may send the browser to.
fn refused(message: &str) -> Landing {
    metrics::counter!("wagate_connect_total", "result" => "bad_state").increment(1);
    Landing::Refused(message.to_string())
}

/// Where Meta's dialog sends the browser back (`state`, and `code` or `error`): finishes the
/// connection and says where the browser goes.
pub async fn callback(state: &Engine, q: &HashMap<String, String>) -> Landing {
    let Ok((app_id, app_secret)) = app(state) else {
        return refused("Connect WhatsApp is not configured on this gateway.");
    };
    let signed = q.get("state").map(String::as_str).unwrap_or_default();
    let Some((id, _)) = signed.split_once('.') else {
        return refused("The link carries no valid state.");
    };
    let taken = match state.store.take_connect_state(id, now_ms()).await {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "could not read a Connect WhatsApp state");
            return Landing::Unavailable;
        }
    };
    let found = match &taken {
        wagate_store::TakenState::Fresh(s)
        | wagate_store::TakenState::Used(s)
        | wagate_store::TakenState::Expired(s) => s,
        wagate_store::TakenState::Unknown => return refused("The link is not one this gateway made."),
    };
    // The signature binds the id to its tenant: a state made up, or moved to another tenant,
    // is refused before anything else.
    if !wagate_core::signature::constant_time_eq(&sign_state(&app_secret, id, &found.tenant), signed) {
        return refused("The link's signature does not match.");
    }
    let fail = |code: &'static str, description: String| {
        metrics::counter!("wagate_connect_total", "result" => code).increment(1);
        tracing::warn!(tenant = %found.tenant, code, %description, "Connect WhatsApp did not finish");
        back_to(&found.redirect, &[("error", code), ("error_description", &description)])
    };
    match &taken {
        wagate_store::TakenState::Used(_) => {
            return fail("state_used", "this sign-up link was used already; start again".into())
        }
        wagate_store::TakenState::Expired(_) => {
            return fail(
                "state_expired",
                "the sign-up took longer than 10 minutes; start again".into(),
            )
        }
        _ => {}
    }
    if let Some(error) = q.get("error") {
        let code = if error == "access_denied" {
            "access_denied"
        } else {
            "dialog_error"
        };
        let why = q
            .get("error_description")
            .cloned()
            .unwrap_or_else(|| "the business did not give its consent".into());
        return fail(code, why);
    }
    let Some(code) = q.get("code").filter(|c| !c.is_empty()) else {
        return fail("no_code", "Meta sent the browser back without a code".into());
    };
    match finish(state, found, &app_id, &app_secret, code).await {
        Ok(account) => {
            metrics::counter!("wagate_connect_total", "result" => "connected").increment(1);
            let details = serde_json::json!({"tenant": found.tenant, "waba_id": account.waba_id, "phone_number_ids": account.phone_number_ids});
            let entry = wagate_store::NewAuditEntry {
                at: now_ms(),
                actor: "connect".into(),
                actor_name: Some(found.tenant.clone()),
                remote: None,
                action: "connect.finished".into(),
                target: Some(account.name.clone()),
                account_id: Some(account.id.clone().into()),
                tenant: Some(found.tenant.clone()),
                details,
            };
            if let Err(e) = state.store.record_audit(&entry).await {
                tracing::error!(error = %e, "could not record the connection in the audit log");
            }
            tracing::info!(tenant = %found.tenant, account = %account.name, waba = %account.waba_id, "Connect WhatsApp: account connected");
            back_to(
                &found.redirect,
                &[
                    ("account", &account.name),
                    ("account_id", &account.id),
                    ("waba_id", &account.waba_id),
                ],
            )
        }
        Err(Failed(code, description)) => fail(code, description),
    }
}

fn meta_failure(code: &'static str, what: &str, e: GraphError) -> Failed {
    let said = match e.meta() {
        Some(m) => m.summary(),
        None => e.to_string(),
    };
    Failed(code, format!("{what}: {said}"))
}

/// The steps after consent; the account is made last, and a subscription is undone if it fails.
async fn finish(
    state: &Engine,
    found: &wagate_store::ConnectState,
    app_id: &str,
    app_secret: &str,
    code: &str,
) -> Result<AccountRuntime, Failed> {
    let app_token = format!("{app_id}|{app_secret}");
    // 1. The code for a token.
    let exchange = GraphPath::new(["oauth", "access_token"])
        .query("client_id", app_id)
        .query("client_secret", app_secret)
        .query("redirect_uri", callback_url(state))
        .query("code", code);
    let answer = state
        .graph
        .get(&app_token, &exchange)
        .await
        .map_err(|e| meta_failure("code_exchange_failed", "Meta did not exchange the code", e))?;
    let token = answer["access_token"]
        .as_str()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Failed("code_exchange_failed", "Meta's answer carried no access token".into()))?
        .to_string();
    // 2. What the token may do, and which WABAs were shared.
    let debug = state
        .graph
        .get(
            &app_token,
            &GraphPath::new(["debug_token"]).query("input_token", token.as_str()),
        )
        .await
        .map_err(|e| meta_failure("token_check_failed", "Meta did not describe the token", e))?;
    let data = &debug["data"];
    if data["is_valid"] != true {
        return Err(Failed("token_invalid", "Meta says the new token is not valid".into()));
    }
    let granted: Vec<&str> = data["scopes"]
        .as_array()
        .map(|a| a.iter().filter_map(|s| s.as_str()).collect())
        .unwrap_or_default();
    if let Some(missing) = SCOPES.iter().find(|s| !granted.contains(s)) {
        return Err(Failed(
            "missing_scope",
            format!("the business did not grant {missing}; start again and keep every permission"),
        ));
    }
    let waba_id = data["granular_scopes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|g| g["scope"] == "whatsapp_business_management")
        .flat_map(|g| g["target_ids"].as_array().cloned().unwrap_or_default())
        .find_map(|id| id.as_str().map(str::to_string))
        .ok_or_else(|| {
            Failed(
                "no_waba",
                "no WhatsApp Business Account was shared; start again and choose one".into(),
            )
        })?;
    // 3. Its numbers.
    let numbers = super::manage::meta_numbers(state, &token, &waba_id)
        .await
        .map_err(|e| Failed("phone_numbers_failed", e.message))?;
    if numbers.is_empty() {
        return Err(Failed(
            "no_phone_number",
            format!("WABA {waba_id} has no phone number yet; add one in WhatsApp Manager"),
        ));
    }
    // A WABA already connected stays as it is (its subscription is the app's, shared).
    if let Some(other) = state
        .accounts
        .by_waba(&waba_id)
        .or_else(|| numbers.iter().find_map(|n| state.accounts.by_phone(&n.phone_number_id)))
    {
        let whose = other
            .tenant
            .as_deref()
            .map(|t| format!(" (tenant {t})"))
            .unwrap_or_default();
        return Err(Failed(
            "already_connected",
            format!(
                "WABA {waba_id} is connected already, as the account {}{whose}",
                other.name
            ),
        ));
    }
    // 4. The app hears the WABA's webhooks.
    let subscription = GraphPath::new([waba_id.as_str(), "subscribed_apps"]);
    state
        .graph
        .post(&token, &subscription, &serde_json::json!({}))
        .await
        .map_err(|e| meta_failure("subscribe_failed", "Meta did not subscribe the app to the WABA", e))?;
    let made = async {
        // 5. The number is registered for the Cloud API, when a PIN was given.
        if let Some(pin) = &found.pin {
            for n in &numbers {
                let path = GraphPath::new([n.phone_number_id.as_str(), "register"]);
                let body = serde_json::json!({"messaging_product": "whatsapp", "pin": pin});
                state
                    .graph
                    .post(&token, &path, &body)
                    .await
                    .map_err(|e| meta_failure("register_failed", "Meta did not register the number", e))?;
            }
        }
        // 6. The account, the tenant's.
        let new = wagate_store::NewApiAccount {
            name: account_name(&found.tenant, &waba_id),
            waba_id: waba_id.clone(),
            access_token: token.clone(),
            app_secret: app_secret.to_string(),
            verify_token: wagate_core::ids::secret("vt_", 16),
            messages_per_second: None,
            phone_numbers: numbers.clone(),
            tenant: Some(found.tenant.clone()),
        };
        super::manage::make_account(state, &new).await.map_err(|e| {
            Failed(
                if e.code == "phone_number_taken" || e.code == "account_exists" {
                    "already_connected"
                } else {
                    "account_failed"
                },
                e.message,
            )
        })
    }
    .await;
    if made.is_err() {
        if let Err(e) = state.graph.delete(&token, &subscription).await {
            tracing::warn!(error = %e, waba = %waba_id, "could not undo the app's subscription to the WABA");
        }
    }
    made
}

/// `<tenant>-<waba id>`: unique per WABA, and says whose it is.
fn account_name(tenant: &str, waba_id: &str) -> String {
    let mut name = format!("{tenant}-{waba_id}");
    name.truncate(64);
    name
}
