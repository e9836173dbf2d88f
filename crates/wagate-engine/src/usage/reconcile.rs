//! Reconciliation with Meta: each WABA's own `pricing_analytics` (volume and cost per day,
//! country, category and pricing type), read daily and on demand, beside wagate's estimate.

use std::collections::BTreeMap;
use std::time::Duration;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use wagate_graph::GraphPath;
use wagate_store::{AccountScope, MetaUsage};

use super::report::{range, UsageQuery};
use super::{date_of, date_text, day_of, month_start};
use crate::auth::Caller;
use crate::clock::now_ms;
use crate::error::EngineResult;
use crate::state::Engine;

/// The body of `POST /v1/usage/reconcile` (default: the last 7 days).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReconcileRequest {
    /// The first day, `YYYY-MM-DD`.
    pub from: Option<String>,
    /// The last day, included.
    pub to: Option<String>,
}

/// One account's day: wagate's estimate beside Meta's figure.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReconLine {
    pub day: String,
    pub account: String,
    /// Billable messages wagate counted, and their estimated cost in `currency`.
    pub billable: i64,
    pub estimate: String,
    pub currency: Option<String>,
    /// Meta's volume (every priced message, billable or free) and cost, in `meta_currency`;
    /// `null` when Meta has not been read for that day.
    pub meta_volume: Option<i64>,
    pub meta_cost: Option<String>,
    pub meta_currency: Option<String>,
    /// `estimate − meta_cost` when both are in one currency; else `null`.
    pub difference: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Reconciliation {
    pub from: String,
    pub to: String,
    pub data: Vec<ReconLine>,
    /// Accounts Meta could not be asked about, and why.
    pub errors: Vec<String>,
}

fn default_range(r: &ReconcileRequest) -> UsageQuery {
    let today = now_ms().div_euclid(86_400_000);
    UsageQuery {
        from: Some(r.from.clone().unwrap_or_else(|| date_text(date_of(today - 6)))),
        to: Some(r.to.clone().unwrap_or_else(|| date_text(date_of(today)))),
        ..UsageQuery::default()
    }
}

/// Reads one account's pricing analytics for the days `from..=to` and keeps them.
async fn fetch(
    state: &Engine,
    account: &crate::accounts::runtime::AccountRuntime,
    from: i64,
    to: i64,
) -> EngineResult<usize> {
    let (start, end) = (from * 86_400, (to + 1) * 86_400);
    let field = format!(
        "currency,pricing_analytics.start({start}).end({end}).granularity(DAILY).dimensions([\"COUNTRY\",\"PRICING_CATEGORY\",\"PRICING_TYPE\"])"
    );
    let path = GraphPath::new([account.waba_id.as_str()]).query("fields", &field);
    let answer = state.graph.get(&account.access_token(), &path).await?;
    let currency = answer["currency"].as_str().unwrap_or("USD").to_string();
    let mut rows: BTreeMap<(i64, String, String, String), (i64, Decimal)> = BTreeMap::new();
    let points = answer
        .pointer("/pricing_analytics/data")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .flat_map(|d| d["data_points"].as_array().cloned().unwrap_or_default());
    for p in points {
        let day = p["start"].as_i64().unwrap_or(0).div_euclid(86_400);
        let text = |k: &str| p[k].as_str().unwrap_or_default().to_ascii_lowercase();
        let cost = match &p["cost"] {
            Value::Number(n) => n.to_string().parse::<Decimal>().unwrap_or_default(),
            Value::String(s) => s.parse::<Decimal>().unwrap_or_default(),
            _ => Decimal::ZERO,
        };
        let row = rows
            .entry((
                day,
                p["country"].as_str().unwrap_or_default().to_string(),
                text("pricing_category"),
                text("pricing_type"),
            ))
            .or_default();
        row.0 += p["volume"].as_i64().unwrap_or(0);
        row.1 += cost;
    }
    let now = now_ms();
    let rows: Vec<MetaUsage> = rows
        .into_iter()
        .map(|((day, market, category, pricing_type), (volume, cost))| MetaUsage {
            day,
            account_id: account.id.to_string(),
            market,
            category,
            pricing_type,
            volume,
            cost: cost.normalize().to_string(),
            currency: currency.clone(),
            fetched_at: now,
        })
        .collect();
    state.store.put_meta_usage(&account.id, from, to, &rows).await?;
    Ok(rows.len())
}

/// A day's figures of an account: billable messages and the estimate, and Meta's volume, cost
/// and currency (when read).
type DayFigures = (i64, Decimal, Option<(i64, Decimal, String)>);

/// Reads Meta's figures now for the accounts the caller sees, and answers the reconciliation.
pub async fn reconcile(state: &Engine, caller: &Caller, r: &ReconcileRequest) -> EngineResult<Reconciliation> {
    caller.require("admin")?;
    let q = default_range(r);
    let (from, to) = range(&q)?;
    let mut errors = Vec::new();
    for account in crate::accounts::ops::list(state, caller)?.data {
        let Some(runtime) = state.accounts.by_id(&account.id) else {
            continue;
        };
        if let Err(e) = fetch(state, &runtime, from, to).await {
            errors.push(format!("{}: {}", account.name, e.message));
        }
    }
    crate::audit::record(
        state,
        caller,
        "usage.reconciled",
        None,
        None,
        serde_json::json!({"from": date_text(date_of(from)), "to": date_text(date_of(to)), "errors": errors.len()}),
    )
    .await;
    let mut answer = reconciliation(state, caller, &q).await?;
    answer.errors = errors;
    Ok(answer)
}

/// wagate's estimate beside Meta's figures (as last read), per day and account.
pub async fn reconciliation(state: &Engine, caller: &Caller, q: &UsageQuery) -> EngineResult<Reconciliation> {
    caller.require("read")?;
    let (from, to) = range(q)?;
    let scope = AccountScope {
        account_id: caller.account_id.clone().map(String::from),
        account_ids: caller.account_ids(),
    };
    let cards = super::cards::all(state).await?;
    let currency = cards
        .iter()
        .max_by_key(|c| (c.effective_day, c.id))
        .map(|c| c.currency.clone());
    let first = day_of(month_start(date_of(from)));
    let counts = state.store.usage(&scope, first, to).await?;
    let mut lines: BTreeMap<(i64, String), DayFigures> = BTreeMap::new();
    for p in super::report::price(counts, &cards, currency.as_deref().unwrap_or_default()) {
        if p.count.day < from || !p.count.billable {
            continue;
        }
        let line = lines.entry((p.count.day, p.count.account_id.clone())).or_default();
        line.0 += p.count.messages;
        line.1 += p.cost.unwrap_or_default();
    }
    for m in state.store.meta_usage(&scope, from, to).await? {
        let line = lines.entry((m.day, m.account_id.clone())).or_default();
        let meta = line.2.get_or_insert((0, Decimal::ZERO, m.currency.clone()));
        meta.0 += m.volume;
        meta.1 += m.cost.parse::<Decimal>().unwrap_or_default();
    }
    let data = lines
        .into_iter()
        .map(|((day, account_id), (billable, estimate, meta))| ReconLine {
            day: date_text(date_of(day)),
            account: state
                .accounts
                .by_id(&account_id)
                .map_or(account_id.clone(), |a| a.name.clone()),
            billable,
            estimate: estimate.normalize().to_string(),
            currency: currency.clone(),
            difference: meta
                .as_ref()
                .filter(|m| Some(&m.2) == currency.as_ref())
                .map(|m| (estimate - m.1).normalize().to_string()),
            meta_volume: meta.as_ref().map(|m| m.0),
            meta_cost: meta.as_ref().map(|m| m.1.normalize().to_string()),
            meta_currency: meta.map(|m| m.2),
        })
        .collect();
    Ok(Reconciliation {
        from: date_text(date_of(from)),
        to: date_text(date_of(to)),
        data,
        errors: Vec::new(),
    })
}

/// Reads Meta's figures of the last three days for every account, every `every`, until
/// cancelled (the first time a minute after start).
pub async fn run_daily(state: Engine, every: Duration, cancel: tokio_util::sync::CancellationToken) {
    let mut wait = Duration::from_secs(60).min(every);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        wait = every;
        let today = now_ms().div_euclid(86_400_000);
        for account in state.accounts.all().iter() {
            if let Err(e) = fetch(&state, account, today - 2, today).await {
                tracing::warn!(account = %account.name, error = %e.message, "could not read Meta's pricing analytics");
            }
        }
    }
}
