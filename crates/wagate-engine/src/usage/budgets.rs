//! Monthly budgets of an account or a tenant. At 80 % and at 100 % of the month's estimated cost
//! an `account.alert` (`budget_80`, `budget_100`) is emitted, once a month (across gateways);
//! with `hard_stop`, marketing templates are then refused (`409 budget_exceeded`) while utility
//! and authentication keep going.

use std::collections::HashMap;
use std::time::Duration;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use wagate_store::{AccountScope, Budget};

use super::stops::Stop;
use super::{date_of, day_of, month_start};
use crate::auth::Caller;
use crate::clock::now_ms;
use crate::error::{EngineError, EngineResult, Kind};
use crate::state::Engine;

/// The body of `PUT /v1/accounts/{name}/budget` and `PUT /v1/tenants/{tenant}/budget`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BudgetRequest {
    /// The month's budget, a decimal string or number (e.g. "250.00").
    #[schema(value_type = String)]
    pub amount: serde_json::Value,
    /// The currency of a loaded rate card (default: the newest card's).
    pub currency: Option<String>,
    /// Refuse new marketing templates once the budget is spent (utility and authentication go on).
    #[serde(default)]
    pub hard_stop: bool,
}

/// A budget with the month so far.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BudgetView {
    /// `account` or `tenant`.
    pub scope: String,
    /// The account's or the tenant's name.
    pub name: String,
    pub amount: String,
    pub currency: String,
    pub hard_stop: bool,
    /// `YYYY-MM`.
    pub month: String,
    /// The month's estimated cost so far.
    pub spent: String,
    /// Of the budget, in whole percent.
    pub percent: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BudgetList {
    pub data: Vec<BudgetView>,
}

/// Refuses a marketing template of an account whose budget is spent under hard stop.
pub fn check_marketing(state: &Engine, account_id: &str) -> EngineResult<()> {
    let Some(stop) = state.budget_stops.get(account_id) else {
        return Ok(());
    };
    Err(EngineError::new(
        Kind::Conflict,
        "budget_exceeded",
        format!(
            "the {} budget of {} {} for {} is spent ({} {} so far): marketing templates are stopped",
            stop.scope, stop.amount, stop.currency, stop.month, stop.spent, stop.currency
        ),
    )
    .details(
        json!({"scope": stop.scope, "month": stop.month, "spent": stop.spent.to_string(),
                    "budget": stop.amount.to_string(), "currency": stop.currency}),
    )
    .hint("utility and authentication templates still go; raise the budget (PUT …/budget) or wait for next month"))
}

fn month_text(day: i64) -> String {
    let d = date_of(day);
    format!("{:04}-{:02}", d.year(), u8::from(d.month()))
}

/// The accounts of a budget's scope.
fn accounts_of(state: &Engine, scope: &str) -> Vec<String> {
    match scope.split_once(':') {
        Some(("account", id)) => vec![id.to_string()],
        Some(("tenant", t)) => state
            .accounts
            .all()
            .iter()
            .filter(|a| a.tenant.as_deref() == Some(t))
            .map(|a| a.id.to_string())
            .collect(),
        _ => Vec::new(),
    }
}

/// The month's estimated cost of some accounts, in `currency`.
async fn spent(state: &Engine, accounts: Vec<String>, currency: &str) -> EngineResult<Decimal> {
    let today = now_ms().div_euclid(86_400_000);
    let first = day_of(month_start(date_of(today)));
    let scope = AccountScope {
        account_id: None,
        account_ids: Some(accounts),
    };
    let counts = state.store.usage(&scope, first, today).await?;
    let cards = super::cards::all(state).await?;
    Ok(super::report::price(counts, &cards, currency)
        .iter()
        .filter_map(|p| p.cost)
        .sum())
}

async fn view(state: &Engine, b: &Budget) -> EngineResult<BudgetView> {
    let amount: Decimal = b.amount.parse().unwrap_or_default();
    let spent = spent(state, accounts_of(state, &b.scope), &b.currency).await?;
    let (kind, id) = b.scope.split_once(':').unwrap_or(("account", &b.scope));
    let name = match kind {
        "account" => state
            .accounts
            .by_id(id)
            .map_or_else(|| id.to_string(), |a| a.name.clone()),
        _ => id.to_string(),
    };
    Ok(BudgetView {
        scope: kind.to_string(),
        name,
        amount: amount.normalize().to_string(),
        currency: b.currency.clone(),
        hard_stop: b.hard_stop,
        month: month_text(now_ms().div_euclid(86_400_000)),
        percent: percent(spent, amount),
        spent: spent.round_dp(4).normalize().to_string(),
    })
}

fn percent(spent: Decimal, amount: Decimal) -> i64 {
    match amount.is_zero() {
        true => 0,
        false => (spent * Decimal::from(100) / amount)
            .floor()
            .try_into()
            .unwrap_or(i64::MAX),
    }
}

/// Sets a budget of a scope (from [`account_scope`] or [`tenant_scope`]).
pub async fn put(state: &Engine, caller: &Caller, scope: String, r: BudgetRequest) -> EngineResult<BudgetView> {
    caller.require("admin")?;
    let amount = match &r.amount {
        serde_json::Value::String(s) => s.trim().parse::<Decimal>().ok(),
        serde_json::Value::Number(n) => n.to_string().parse::<Decimal>().ok(),
        _ => None,
    }
    .filter(|a| !a.is_sign_negative())
    .ok_or_else(|| {
        EngineError::invalid_field(
            "amount",
            format!("{} is not an amount", r.amount),
            "give the month's budget as a decimal, 0 or more, e.g. \"250.00\"",
        )
    })?;
    let cards = super::cards::all(state).await?;
    let currency = match r.currency.as_deref().map(str::trim) {
        Some(c) if cards.iter().any(|k| k.currency == c) => c.to_string(),
        Some(c) => {
            return Err(EngineError::invalid_field(
                "currency",
                format!("no rate card in `{c}` is loaded, so nothing could be counted against it"),
                "load a card in that currency first (PUT /v1/rates), or leave currency out",
            ))
        }
        None => cards
            .iter()
            .max_by_key(|c| (c.effective_day, c.id))
            .map(|c| c.currency.clone())
            .ok_or_else(|| {
                EngineError::invalid_field(
                    "currency",
                    "no rate card is loaded, so a budget could not be counted",
                    "load Meta's rates first (PUT /v1/rates or `wagate rates import`)",
                )
            })?,
    };
    let budget = Budget {
        scope: scope.clone(),
        amount: amount.to_string(),
        currency,
        hard_stop: r.hard_stop,
        alerted: String::new(),
        updated_at: now_ms(),
    };
    state.store.put_budget(&budget).await?;
    let details = json!({"amount": budget.amount, "currency": budget.currency, "hard_stop": budget.hard_stop});
    crate::audit::record(state, caller, "budget.set", Some(&scope), None, details).await;
    check(state).await;
    view(state, &budget).await
}

/// The budget scope of an account the caller sees (checked before anything else is read).
pub fn account_scope(state: &Engine, caller: &Caller, account: &str) -> EngineResult<String> {
    caller.require("admin")?;
    let account = crate::auth::accounts::resolve_account(
        state,
        caller,
        Some(account),
        crate::auth::accounts::AccountFrom::Query,
    )?;
    Ok(format!("account:{}", account.id))
}

/// The budget scope of a tenant: a tenant's key may set its own; a key of one account, none.
pub fn tenant_scope(caller: &Caller, tenant: &str) -> EngineResult<String> {
    caller.require("admin")?;
    if caller.account_id.is_some() {
        return Err(EngineError::new(
            Kind::Forbidden,
            "forbidden",
            "this API key is limited to one account; a tenant's budget spans its accounts",
        )
        .hint("use an admin key of the tenant, or of every tenant"));
    }
    if !caller.sees_tenant(Some(tenant)) {
        return Err(EngineError::not_found("tenant", tenant));
    }
    Ok(format!("tenant:{tenant}"))
}

/// The budgets the caller sees, with the month so far.
pub async fn list(state: &Engine, caller: &Caller) -> EngineResult<BudgetList> {
    caller.require("read")?;
    let mut data = Vec::new();
    for b in state.store.budgets().await? {
        let visible = match b.scope.split_once(':') {
            Some(("account", id)) => caller.sees(id),
            Some(("tenant", t)) => caller.account_id.is_none() && caller.sees_tenant(Some(t)),
            _ => false,
        };
        if visible {
            data.push(view(state, &b).await?);
        }
    }
    Ok(BudgetList { data })
}

/// Checks every budget now: alerts at 80 % and 100 % (once a month each), and which accounts'
/// marketing is stopped.
pub async fn check(state: &Engine) {
    let budgets = match state.store.budgets().await {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(error = %e, "could not read the budgets");
            return;
        }
    };
    let mut stops = HashMap::new();
    let month = month_text(now_ms().div_euclid(86_400_000));
    for b in budgets {
        let accounts = accounts_of(state, &b.scope);
        let amount: Decimal = b.amount.parse().unwrap_or_default();
        let spent = match spent(state, accounts.clone(), &b.currency).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e.message, scope = %b.scope, "could not count a budget");
                continue;
            }
        };
        let percent = percent(spent, amount);
        for (mark, alert) in [(80, "budget_80"), (100, "budget_100")] {
            if percent < mark {
                continue;
            }
            match state
                .store
                .mark_budget_alert(&b.scope, &format!("{month}:{mark}"))
                .await
            {
                Ok(true) => {
                    let (kind, id) = b.scope.split_once(':').unwrap_or(("account", &b.scope));
                    let payload = json!({"source": "wagate", "alert": alert, kind: id, "month": month,
                        "budget": amount.to_string(), "spent": spent.round_dp(4).normalize().to_string(),
                        "currency": b.currency, "hard_stop": b.hard_stop});
                    // A tenant's alert goes with its first account, so that the tenant sees it.
                    let account = accounts.iter().min().cloned();
                    state.emit(account.as_deref(), "account.alert", &payload).await;
                }
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "could not record a budget alert"),
            }
        }
        if b.hard_stop && percent >= 100 {
            let (kind, _) = b.scope.split_once(':').unwrap_or(("account", ""));
            for a in accounts {
                stops.insert(
                    a,
                    Stop {
                        scope: kind.to_string(),
                        month: month.clone(),
                        spent: spent.round_dp(4).normalize(),
                        amount,
                        currency: b.currency.clone(),
                    },
                );
            }
        }
    }
    state.budget_stops.replace(stops);
}

/// Checks the budgets every `every`, until cancelled.
pub async fn run_checks(state: Engine, every: Duration, cancel: tokio_util::sync::CancellationToken) {
    loop {
        check(&state).await;
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}
