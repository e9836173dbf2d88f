//! The console's usage and costs: the month's spend per day by category (SVG), the top markets,
//! free against billable, per tenant and account, what no card prices, the budgets; loading a
//! rate card and setting a budget.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::response::Response;
use rust_decimal::Decimal;
use wagate_engine::usage::budgets::{self, BudgetRequest, BudgetView};
use wagate_engine::usage::reconcile::{self, ReconLine, ReconcileRequest};
use wagate_engine::usage::report::{self, UsageGroup, UsageQuery, UsageReport};
use wagate_engine::EngineError;

use super::pages::{chrome, render, Chrome};
use super::{encode, form, said, see_other, Signed};
use crate::state::AppState;

struct Line {
    label: String,
    messages: i64,
    billable: i64,
    cost: String,
}

#[derive(Template)]
#[template(path = "console/usage.html")]
struct UsagePage {
    chrome: Option<Chrome>,
    live: bool,
    after: i64,
    csrf: String,
    month: String,
    currency: String,
    chart: String,
    total: Line,
    markets: Vec<Line>,
    types: Vec<Line>,
    accounts: Vec<Line>,
    unpriced: Vec<Line>,
    budgets: Vec<BudgetView>,
    reconciliation: Vec<ReconLine>,
    cards: usize,
    may_load_cards: bool,
    may_set_budgets: bool,
    notice: Option<String>,
    error: Option<String>,
}

#[derive(serde::Deserialize, Default)]
pub struct UsageParams {
    month: Option<String>,
    notice: Option<String>,
    error: Option<String>,
}

fn dec(s: &str) -> Decimal {
    s.parse().unwrap_or_default()
}

fn lines(report: &UsageReport, label: impl Fn(&UsageGroup) -> String) -> Vec<Line> {
    let mut lines: Vec<Line> = report
        .groups
        .iter()
        .map(|g| Line {
            label: label(g),
            messages: g.messages,
            billable: g.billable,
            cost: g.cost.clone(),
        })
        .collect();
    lines.sort_by(|a, b| dec(&b.cost).cmp(&dec(&a.cost)).then(b.messages.cmp(&a.messages)));
    lines
}

/// The month asked (`YYYY-MM`, default this one) as its first and last day, and its name.
fn month_range(month: Option<&str>) -> (Option<String>, Option<String>, String) {
    use wagate_engine::usage::{date_of, date_text, month_days};
    let (first, last) = month.and_then(month_days).unwrap_or_else(|| {
        let today = date_of(wagate_engine::now_ms().div_euclid(86_400_000));
        month_days(&date_text(today)[..7]).unwrap_or((today, today))
    });
    (
        Some(date_text(first)),
        Some(date_text(last)),
        date_text(first)[..7].to_string(),
    )
}

/// `GET /console/usage?month=YYYY-MM`.
pub async fn page(State(state): State<AppState>, signed: Signed, Query(p): Query<UsageParams>) -> Response {
    let caller = &signed.caller;
    let (from, to, month) = month_range(p.month.as_deref());
    let ask = |group_by: &str| UsageQuery {
        from: from.clone(),
        to: to.clone(),
        group_by: Some(group_by.to_string()),
        ..UsageQuery::default()
    };
    let mut error = p.error;
    let mut run = |r: Result<UsageReport, EngineError>| match r {
        Ok(r) => Some(r),
        Err(e) => {
            error.get_or_insert(said(e));
            None
        }
    };
    let by_day = run(report::usage(&state, caller, &ask("day,category")).await);
    let by_market = run(report::usage(&state, caller, &ask("market")).await);
    let by_type = run(report::usage(&state, caller, &ask("type")).await);
    let by_account = run(report::usage(&state, caller, &ask("tenant,account")).await);
    let budgets = budgets::list(&state, caller).await.map(|l| l.data).unwrap_or_default();
    let reconciliation = reconcile::reconciliation(&state, caller, &ask(""))
        .await
        .map(|r| r.data)
        .unwrap_or_default();
    let cards = wagate_engine::usage::cards::list(&state, caller)
        .await
        .map(|l| l.data.len())
        .unwrap_or(0);
    let currency = by_day.as_ref().and_then(|r| r.currency.clone()).unwrap_or_default();
    let total = by_type.as_ref().map_or(
        Line {
            label: "total".into(),
            messages: 0,
            billable: 0,
            cost: "0".into(),
        },
        |r| Line {
            label: "total".into(),
            messages: r.groups.iter().map(|g| g.messages).sum(),
            billable: r.groups.iter().map(|g| g.billable).sum(),
            cost: r
                .groups
                .iter()
                .map(|g| dec(&g.cost))
                .sum::<Decimal>()
                .normalize()
                .to_string(),
        },
    );
    let unpriced = by_market
        .as_ref()
        .map(|r| {
            r.unpriced
                .iter()
                .map(|u| Line {
                    label: format!("{} {}", u.market, u.category),
                    messages: u.messages,
                    billable: u.messages,
                    cost: "not on the card".into(),
                })
                .collect()
        })
        .unwrap_or_default();
    render(UsagePage {
        chrome: chrome(&signed, "/console/usage"),
        live: false,
        after: 0,
        csrf: signed.csrf.clone(),
        chart: by_day
            .as_ref()
            .map(|r| super::chart::spend_svg(r, &currency))
            .unwrap_or_default(),
        markets: by_market
            .as_ref()
            .map(|r| {
                let mut l = lines(r, |g| {
                    g.market
                        .clone()
                        .filter(|m| !m.is_empty())
                        .unwrap_or_else(|| "unknown".into())
                });
                l.truncate(10);
                l
            })
            .unwrap_or_default(),
        types: by_type
            .as_ref()
            .map(|r| lines(r, |g| g.pricing_type.clone().unwrap_or_default()))
            .unwrap_or_default(),
        accounts: by_account
            .as_ref()
            .map(|r| {
                lines(r, |g| match g.tenant.as_deref().filter(|t| !t.is_empty()) {
                    Some(t) => format!("{t} / {}", g.account.clone().unwrap_or_default()),
                    None => g.account.clone().unwrap_or_default(),
                })
            })
            .unwrap_or_default(),
        unpriced,
        total,
        budgets,
        reconciliation,
        cards,
        currency,
        month,
        may_load_cards: caller.require_global("admin").is_ok(),
        may_set_budgets: caller.require("admin").is_ok(),
        notice: p.notice,
        error,
    })
}

/// Back to the usage page, saying what happened.
fn back(outcome: Result<String, EngineError>) -> Response {
    see_other(&match outcome {
        Ok(notice) => format!("/console/usage?notice={}", encode(&notice)),
        Err(e) => format!("/console/usage?error={}", encode(&said(e))),
    })
}

/// `POST /console/usage/rates`: loads a rate card pasted as CSV.
pub async fn load_card(State(state): State<AppState>, signed: Signed, body: Bytes) -> Response {
    let f = form(&body);
    if let Err(r) = signed.check_csrf(f.get("csrf").map(String::as_str)) {
        return r;
    }
    let get = |k: &str| f.get(k).map(String::as_str).unwrap_or_default();
    let outcome =
        wagate_engine::usage::cards::import(&state, &signed.caller, get("currency"), get("effective"), get("csv"))
            .await
            .map(|c| {
                format!(
                    "card {} in {} from {} loaded: {} rates for {} markets",
                    c.id, c.currency, c.effective, c.rates, c.markets
                )
            });
    back(outcome)
}

/// `POST /console/usage/budget`: sets an account's (`account:NAME`) or a tenant's
/// (`tenant:NAME`) monthly budget.
pub async fn set_budget(State(state): State<AppState>, signed: Signed, body: Bytes) -> Response {
    let f = form(&body);
    if let Err(r) = signed.check_csrf(f.get("csrf").map(String::as_str)) {
        return r;
    }
    let caller = &signed.caller;
    let target = f.get("scope").cloned().unwrap_or_default();
    let scope = match target.split_once(':') {
        Some(("account", name)) => budgets::account_scope(&state, caller, name.trim()),
        Some(("tenant", name)) => budgets::tenant_scope(caller, name.trim()),
        _ => Err(EngineError::invalid_field(
            "scope",
            format!("`{target}` is not an account or a tenant"),
            "write account:NAME or tenant:NAME",
        )),
    };
    let request = BudgetRequest {
        amount: serde_json::Value::String(f.get("amount").cloned().unwrap_or_default()),
        currency: f.get("currency").cloned().filter(|c| !c.trim().is_empty()),
        hard_stop: f.get("hard_stop").is_some_and(|v| v == "true"),
    };
    let outcome = match scope {
        Ok(scope) => budgets::put(&state, caller, scope, request).await.map(|b| {
            format!(
                "the {} budget of {} is {} {} a month",
                b.scope, b.name, b.amount, b.currency
            )
        }),
        Err(e) => Err(e),
    };
    back(outcome)
}

/// `POST /console/usage/reconcile`: reads Meta's pricing analytics of the last week now.
pub async fn reconcile_now(State(state): State<AppState>, signed: Signed, body: Bytes) -> Response {
    if let Err(r) = signed.check_csrf(form(&body).get("csrf").map(String::as_str)) {
        return r;
    }
    let outcome = reconcile::reconcile(&state, &signed.caller, &ReconcileRequest::default())
        .await
        .map(|r| match r.errors.is_empty() {
            true => format!("Meta's figures read for {} to {}", r.from, r.to),
            false => format!("Meta's figures read, except: {}", r.errors.join("; ")),
        });
    back(outcome)
}
