//! An account's health, as `wagate doctor` and `GET /v1/accounts/{name}/health` report it: each
//! check with ✓ or ✗, what was found, and the fix. And the daily token check: an invalid token
//! pauses the account, one about to expire raises an `account.alert`.

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use wagate_graph::GraphPath;

use crate::accounts::runtime::AccountRuntime;
use crate::state::Engine;

/// One check.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Check {
    /// `token`, `waba`, `phone_number`, `subscribed`, `registered`, `quality`, `name_status`,
    /// `webhook`, `templates`, `clock`, `database`, `journal`.
    pub name: &'static str,
    pub ok: bool,
    /// What was found.
    pub detail: String,
    /// What to do, when it is not ok.
    pub fix: Option<String>,
}

impl Check {
    fn pass(name: &'static str, detail: impl Into<String>) -> Self {
        Self {
            name,
            ok: true,
            detail: detail.into(),
            fix: None,
        }
    }

    fn fail(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            name,
            ok: false,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AccountHealth {
    pub account: String,
    /// Every check passed.
    pub ok: bool,
    pub checks: Vec<Check>,
}

/// What Meta says of a token.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenInfo {
    pub valid: bool,
    /// Unix seconds; `None`: it never expires (a system user's).
    pub expires_at: Option<i64>,
    pub scopes: Vec<String>,
    /// Why Meta could not say, if it could not.
    pub error: Option<String>,
    /// Meta answered about the token itself (not an outage or a network failure).
    pub definitive: bool,
}

/// Asks Meta what the account's token may do: with the app's token when the Meta app is set,
/// else with the token itself.
pub async fn token_info(state: &Engine, account: &AccountRuntime) -> TokenInfo {
    let token = account.access_token();
    let asker = match (&state.config.meta.app_secret, state.config.meta.app_id.as_str()) {
        (Some(secret), id) if !id.is_empty() => format!("{id}|{secret}"),
        _ => token.clone(),
    };
    match state
        .graph
        .get(
            &asker,
            &GraphPath::new(["debug_token"]).query("input_token", token.as_str()),
        )
        .await
    {
        Ok(answer) => {
            let data = &answer["data"];
            if data["is_valid"] == true {
                let at = data["expires_at"].as_i64().filter(|t| *t > 0);
                state.token_expiry.set(&account.id, at);
            }
            TokenInfo {
                valid: data["is_valid"] == true,
                expires_at: data["expires_at"].as_i64().filter(|t| *t > 0),
                scopes: data["scopes"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
                    .unwrap_or_default(),
                error: data["error"]["message"].as_str().map(str::to_string),
                definitive: true,
            }
        }
        Err(e) => TokenInfo {
            valid: false,
            expires_at: None,
            scopes: Vec::new(),
            error: Some(e.meta().map(|m| m.summary()).unwrap_or_else(|| e.to_string())),
            definitive: e
                .meta()
                .is_some_and(|m| m.class() == wagate_core::meta::RetryClass::Account),
        },
    }
}

const SCOPES: [&str; 2] = ["whatsapp_business_management", "whatsapp_business_messaging"];
const TOKEN_FIX: &str = "make a token with whatsapp_business_messaging and whatsapp_business_management (a system user's does not expire), then PUT /v1/accounts/{name}/token or `wagate accounts set-token`";

fn token_check(state: &Engine, info: &TokenInfo) -> Check {
    let fix = TOKEN_FIX.to_string();
    if !info.valid {
        let why = info.error.clone().unwrap_or_else(|| "Meta says it is not valid".into());
        return Check::fail("token", format!("the access token does not work: {why}"), fix);
    }
    if let Some(missing) = SCOPES.iter().find(|s| !info.scopes.iter().any(|g| g == *s)) {
        return Check::fail("token", format!("the access token lacks {missing}"), fix);
    }
    match info.expires_at {
        None => Check::pass(
            "token",
            "valid, with both WhatsApp permissions; never expires (a system user's)",
        ),
        Some(at) => {
            let left_days = (at * 1000 - crate::clock::now_ms()) / 86_400_000;
            let when = wagate_core::time::rfc3339_ms(at * 1000);
            if left_days < state.config.health.token_expiry_warning_days as i64 {
                Check::fail(
                    "token",
                    format!("valid, but expires at {when} (in {left_days} day(s))"),
                    fix,
                )
            } else {
                Check::pass(
                    "token",
                    format!("valid, with both WhatsApp permissions; expires at {when}"),
                )
            }
        }
    }
}

fn text(v: &Value, k: &str) -> String {
    v[k].as_str().unwrap_or("unknown").to_string()
}

/// Every check of one account. With `fix`, what can be fixed from here is (the app's
/// subscription to the WABA).
pub async fn account_health(state: &Engine, account: &AccountRuntime, fix: bool) -> AccountHealth {
    let mut checks = Vec::new();
    let info = token_info(state, account).await;
    checks.push(token_check(state, &info));
    let token = account.access_token();
    let fields = "id,name";
    checks.push(
        match state
            .graph
            .get(
                &token,
                &GraphPath::new([account.waba_id.as_str()]).query("fields", fields),
            )
            .await
        {
            Ok(w) => Check::pass(
                "waba",
                format!("WABA {} ({}) answers", account.waba_id, text(&w, "name")),
            ),
            Err(e) => Check::fail(
                "waba",
                format!("WABA {} does not answer: {e}", account.waba_id),
                "check the WABA id, and that the token was made for it",
            ),
        },
    );
    for phone in &account.phone_number_ids {
        let path = GraphPath::new([phone.as_str()]).query(
            "fields",
            "display_phone_number,verified_name,quality_rating,name_status,platform_type,status,code_verification_status,throughput,whatsapp_business_manager_messaging_limit",
        );
        match state.graph.get(&token, &path).await {
            Ok(n) => {
                // What Meta said of the number is kept (the console's overview shows it).
                let known = wagate_store::PhoneNumberInfo {
                    phone_number_id: phone.clone(),
                    display_phone_number: n["display_phone_number"].as_str().map(str::to_string),
                    verified_name: n["verified_name"].as_str().map(str::to_string),
                    quality_rating: n["quality_rating"].as_str().map(str::to_string),
                    throughput: n
                        .pointer("/throughput/level")
                        .and_then(|x| x.as_str())
                        .map(str::to_string),
                    name_status: n["name_status"].as_str().map(str::to_string),
                    messaging_limit: n["whatsapp_business_manager_messaging_limit"]
                        .as_str()
                        .map(str::to_string),
                };
                if let Err(e) = state
                    .store
                    .sync_phone_numbers(&account.id, &[known], crate::clock::now_ms())
                    .await
                {
                    tracing::warn!(error = %e, account = %account.name, "could not keep what Meta said of a number");
                }
                checks.push(Check::pass(
                    "phone_number",
                    format!("{phone} ({}) answers", text(&n, "display_phone_number")),
                ));
                checks.push(match n["platform_type"].as_str() {
                    Some("CLOUD_API") => Check::pass("registered", format!("{phone} is registered for the Cloud API")),
                    other => Check::fail(
                        "registered",
                        format!(
                            "{phone} is not registered for the Cloud API (platform {})",
                            other.unwrap_or("unknown")
                        ),
                        format!("POST /{phone}/register with its PIN (or connect it again with ?pin=…)"),
                    ),
                });
                let quality = text(&n, "quality_rating");
                checks.push(match quality.as_str() {
                    "GREEN" | "YELLOW" | "UNKNOWN" => Check::pass("quality", format!("{phone}: quality {quality}")),
                    _ => Check::fail(
                        "quality",
                        format!("{phone}: quality {quality}"),
                        "fewer unwanted messages: check opt-ins, template quality and the users who block you; the limit drops while it stays RED",
                    ),
                });
                let name_status = text(&n, "name_status");
                checks.push(match name_status.as_str() {
                    "APPROVED" | "AVAILABLE_WITHOUT_REVIEW" => Check::pass(
                        "name_status",
                        format!("{phone}: display name {} is {name_status}", text(&n, "verified_name")),
                    ),
                    _ => Check::fail(
                        "name_status",
                        format!("{phone}: display name {} is {name_status}", text(&n, "verified_name")),
                        "see the display name in WhatsApp Manager (it must follow Meta's display name rules)",
                    ),
                });
            }
            Err(e) => checks.push(Check::fail(
                "phone_number",
                format!("{phone} does not answer: {e}"),
                "check the phone_number_id (WhatsApp Manager > Phone numbers)",
            )),
        }
    }
    checks.push(subscription_check(state, account, &token, fix).await);
    checks.push(webhook_check(state, account).await);
    checks.push(match state.store.templates_synced_at(&account.id).await {
        Ok(Some(at)) => Check::pass(
            "templates",
            format!("catalog synced at {}", wagate_core::time::rfc3339_ms(at)),
        ),
        Ok(None) => Check::fail(
            "templates",
            "the template catalog was never synced",
            "POST /v1/templates/sync (sends are not checked against the catalog until then)",
        ),
        Err(e) => Check::fail(
            "templates",
            format!("cannot read the catalog: {e}"),
            "check the database",
        ),
    });
    AccountHealth {
        account: account.name.clone(),
        ok: checks.iter().all(|c| c.ok),
        checks,
    }
}

/// Subscribes the app to the account's WABA, so that Meta sends its webhooks (`--fix`, and the
/// sandbox as it starts, as Connect does for a new account).
pub async fn subscribe_app(state: &Engine, account: &AccountRuntime) -> Result<(), wagate_graph::GraphError> {
    let path = GraphPath::new([account.waba_id.as_str(), "subscribed_apps"]);
    state
        .graph
        .post(&account.access_token(), &path, &serde_json::json!({}))
        .await
        .map(|_| ())
}

async fn subscription_check(state: &Engine, account: &AccountRuntime, token: &str, fix: bool) -> Check {
    let path = GraphPath::new([account.waba_id.as_str(), "subscribed_apps"]);
    let listed = match state.graph.get(token, &path).await {
        Ok(l) => l,
        Err(e) => return Check::fail("subscribed", format!("cannot ask Meta: {e}"), "check the token"),
    };
    let subscribed = listed["data"].as_array().is_some_and(|d| !d.is_empty());
    if subscribed {
        return Check::pass("subscribed", "the app is subscribed to the WABA's webhooks");
    }
    if fix {
        return match subscribe_app(state, account).await {
            Ok(_) => Check::pass(
                "subscribed",
                "the app was not subscribed to the WABA; it is now (--fix)",
            ),
            Err(e) => Check::fail(
                "subscribed",
                format!("subscribing failed: {e}"),
                "check the token's permissions",
            ),
        };
    }
    Check::fail(
        "subscribed",
        "the app is not subscribed to the WABA: Meta sends none of its webhooks",
        format!(
            "run `wagate doctor --account {} --fix`, or POST /{}/subscribed_apps",
            account.name, account.waba_id
        ),
    )
}

async fn webhook_check(state: &Engine, account: &AccountRuntime) -> Check {
    let expected = format!("{}/webhooks/whatsapp", state.public_base);
    let (Some(secret), app_id) = (&state.config.meta.app_secret, state.config.meta.app_id.as_str()) else {
        return Check::pass(
            "webhook",
            format!(
                "not checked (no WAGATE_META_APP_ID/SECRET to ask Meta): in the App Dashboard, the callback URL must be {expected} (or {expected}/{}) with the account's verify token, subscribed to messages",
                account.name
            ),
        );
    };
    if app_id.is_empty() {
        return Check::pass(
            "webhook",
            format!("not checked (no WAGATE_META_APP_ID): the callback URL must be {expected}"),
        );
    }
    let app_token = format!("{app_id}|{secret}");
    match state
        .graph
        .get(&app_token, &GraphPath::new([app_id, "subscriptions"]))
        .await
    {
        Ok(subs) => {
            let waba = subs["data"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|s| s["object"] == "whatsapp_business_account");
            match waba {
                None => Check::fail(
                    "webhook",
                    "the app has no webhook for whatsapp_business_account",
                    format!(
                        "App Dashboard > WhatsApp > Configuration: callback URL {expected}, and subscribe to messages"
                    ),
                ),
                Some(s) => {
                    let url = s["callback_url"].as_str().unwrap_or_default();
                    let messages = s["fields"]
                        .as_array()
                        .is_some_and(|f| f.iter().any(|x| x["name"] == "messages"));
                    if !url.starts_with(&expected) {
                        Check::fail(
                            "webhook",
                            format!("Meta sends webhooks to {url}, not to this gateway ({expected})"),
                            format!("App Dashboard > WhatsApp > Configuration: set the callback URL to {expected}"),
                        )
                    } else if !messages {
                        Check::fail(
                            "webhook",
                            "the app's webhook is not subscribed to messages",
                            "subscribe the webhook field messages",
                        )
                    } else {
                        Check::pass("webhook", format!("Meta sends messages to {url}"))
                    }
                }
            }
        }
        Err(e) => Check::fail(
            "webhook",
            format!("cannot ask Meta for the app's webhook: {e}"),
            "check WAGATE_META_APP_ID and WAGATE_META_APP_SECRET",
        ),
    }
}

/// The gateway's own checks: the database, the journal's backlog, and the clock against Meta's.
pub async fn gateway_checks(state: &Engine) -> Vec<Check> {
    let mut checks = Vec::new();
    checks.push(match state.store.ping().await {
        Ok(()) => Check::pass("database", format!("{} answers", state.store.backend())),
        Err(e) => Check::fail(
            "database",
            format!("the database does not answer: {e}"),
            "check WAGATE_DATABASE_URL and the database server",
        ),
    });
    let limit = state.config.server.ready_max_backlog_seconds as i64 * 1000;
    checks.push(match state.store.oldest_pending_journal().await {
        Ok(None) => Check::pass("journal", "no webhook waits to be processed"),
        Ok(Some(at)) if limit == 0 || crate::clock::now_ms() - at < limit => Check::pass(
            "journal",
            format!("processing is {} s behind", (crate::clock::now_ms() - at) / 1000),
        ),
        Ok(Some(at)) => Check::fail(
            "journal",
            format!("processing is {} s behind", (crate::clock::now_ms() - at) / 1000),
            "see /metrics and the log; more gateways on PostgreSQL share the work",
        ),
        Err(e) => Check::fail("journal", format!("cannot read the journal: {e}"), "check the database"),
    });
    checks.push(clock_check(state).await);
    checks
}

/// The clock against the `Date` Meta's servers answer with (signatures and windows need it).
async fn clock_check(state: &Engine) -> Check {
    let asked = std::time::SystemTime::now();
    let answer = reqwest::Client::new()
        .get(&state.config.graph_url)
        .timeout(std::time::Duration::from_secs(10))
        .send()
        .await;
    let date = answer.ok().and_then(|r| {
        r.headers()
            .get("date")
            .and_then(|d| d.to_str().ok())
            .map(str::to_string)
    });
    let Some(theirs) = date.and_then(|d| httpdate_seconds(&d)) else {
        return Check::pass("clock", "not checked: Meta's answer carried no date");
    };
    let ours = asked
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default();
    let skew = ours - theirs;
    if skew.abs() <= 60 {
        Check::pass("clock", format!("{skew:+} s from Meta's"))
    } else {
        Check::fail(
            "clock",
            format!("{skew:+} s from Meta's"),
            "run NTP (e.g. systemd-timesyncd or chrony) on this machine",
        )
    }
}

/// An HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`) as unix seconds.
fn httpdate_seconds(s: &str) -> Option<i64> {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    time::PrimitiveDateTime::parse(s, format)
        .ok()
        .map(|t| t.assume_utc().unix_timestamp())
}

/// Checks every account's token now: an invalid one pauses the account; one that expires soon
/// raises `account.alert` (`token_expiring`). Returns how many were checked.
pub async fn check_tokens(state: &Engine) -> usize {
    let accounts = state.accounts.all();
    for account in accounts.iter() {
        let info = token_info(state, account).await;
        if let Some(at) = info.expires_at {
            metrics::gauge!("wagate_account_token_expires_in_seconds", "account" => account.name.clone())
                .set((at - crate::clock::now_ms() / 1000) as f64);
        }
        if !info.valid {
            // Only a token Meta says is invalid pauses; one it could not be asked about waits.
            if !info.definitive {
                tracing::warn!(account = %account.name, error = ?info.error, "could not check the account's token; trying again at the next check");
                continue;
            }
            let why = info
                .error
                .clone()
                .unwrap_or_else(|| "Meta says the token is not valid".into());
            let pause = crate::accounts::runtime::Pause {
                reason: format!("the daily token check: {why}"),
                code: Some(190),
                hint: format!("{TOKEN_FIX}, or POST /v1/accounts/{{name}}/resume"),
                since: wagate_core::time::rfc3339_ms(crate::clock::now_ms()),
                by_hand: false,
            };
            crate::accounts::pause::pause(state, account, pause).await;
            continue;
        }
        let soon = crate::clock::now_ms() / 1000 + state.config.health.token_expiry_warning_days as i64 * 86_400;
        if let Some(at) = info.expires_at.filter(|at| *at < soon) {
            let payload = serde_json::json!({
                "source": "wagate",
                "account": account.id,
                "account_name": account.name,
                "alert": "token_expiring",
                "expires_at": wagate_core::time::rfc3339_ms(at * 1000),
                "hint": TOKEN_FIX,
            });
            tracing::warn!(account = %account.name, expires_at = at, "the account's access token expires soon");
            state.emit(Some(&account.id), "account.alert", &payload).await;
        }
    }
    accounts.len()
}

/// The daily token check, until cancelled.
pub async fn run_token_checks(state: Engine, cancel: tokio_util::sync::CancellationToken) {
    let every = std::time::Duration::from_secs(state.config.health.token_check_seconds.max(1));
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let n = check_tokens(&state).await;
        tracing::debug!(accounts = n, "tokens checked");
    }
}
