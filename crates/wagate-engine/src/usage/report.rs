//! The usage report: the day counts of the accounts the caller sees, priced with the card in
//! force each day (volume tiers counted from the start of each month), grouped as asked.

use std::collections::{BTreeMap, HashMap};

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use wagate_core::pricing;
use wagate_store::{AccountScope, UsageCount};

use super::cards::Card;
use super::{date_of, date_text, day_of, month_start, parse_date};
use crate::auth::accounts::filter_account;
use crate::auth::Caller;
use crate::clock::now_ms;
use crate::error::{EngineError, EngineResult};
use crate::state::Engine;

/// What can be grouped by, in the order groups show them.
pub const DIMENSIONS: [&str; 7] = ["day", "account", "number", "tenant", "category", "market", "type"];

/// `GET /v1/usage`'s parameters.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct UsageQuery {
    /// The first day (`YYYY-MM-DD`, UTC); default: the first of this month.
    pub from: Option<String>,
    /// The last day, included; default: today.
    pub to: Option<String>,
    /// Comma-separated: day, account, number, tenant, category, market, type.
    pub group_by: Option<String>,
    /// The cards' currency; default: the newest card's.
    pub currency: Option<String>,
    /// One account (name or id).
    pub account: Option<String>,
}

/// One group's figures.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct UsageGroup {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub day: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub market: Option<String>,
    /// The pricing type: regular, free_customer_service, free_entry_point.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub pricing_type: Option<String>,
    /// Messages delivered.
    pub messages: i64,
    /// Of which Meta charges.
    pub billable: i64,
    /// The estimated cost of the billable ones that a card prices, in `currency` (a decimal
    /// string).
    pub cost: String,
}

impl UsageGroup {
    /// A group of the dimensions asked, with their values.
    fn of(dims: &[&str], value: impl Fn(&str) -> String) -> Self {
        let v = |d: &str| dims.contains(&d).then(|| value(d));
        Self {
            day: v("day"),
            account: v("account"),
            number: v("number"),
            tenant: v("tenant"),
            category: v("category"),
            market: v("market"),
            pricing_type: v("type"),
            cost: "0".into(),
            ..Self::default()
        }
    }

    /// This group's value of one of [`DIMENSIONS`], if it is grouped by it.
    pub fn dimension(&self, dimension: &str) -> Option<&str> {
        match dimension {
            "day" => self.day.as_deref(),
            "account" => self.account.as_deref(),
            "number" => self.number.as_deref(),
            "tenant" => self.tenant.as_deref(),
            "category" => self.category.as_deref(),
            "market" => self.market.as_deref(),
            _ => self.pricing_type.as_deref(),
        }
    }
}

/// Billable messages no card prices (a market or category missing from the card, no card in
/// force that day, or a recipient known by user id only): never counted as free.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Unpriced {
    /// The recipient's country, or `unknown`.
    pub market: String,
    pub category: String,
    pub messages: i64,
}

/// A card used.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CardUsed {
    pub id: i64,
    pub effective: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UsageReport {
    /// `null` when no card is loaded.
    pub currency: Option<String>,
    pub from: String,
    pub to: String,
    pub cards: Vec<CardUsed>,
    pub groups: Vec<UsageGroup>,
    pub unpriced: Vec<Unpriced>,
}

/// A count with its price.
pub struct Priced {
    pub count: UsageCount,
    /// `None`: billable and unpriced.
    pub cost: Option<Decimal>,
    pub card: Option<i64>,
}

/// The card of `currency` in force on `day`.
fn card_on<'a>(cards: &'a [Card], currency: &str, day: i64) -> Option<&'a Card> {
    cards
        .iter()
        .filter(|c| c.currency == currency && c.effective_day <= day)
        .max_by_key(|c| (c.effective_day, c.id))
}

/// Prices counts (which must start on the first of a month, for its tiers): each billable
/// message at the rate of its tier in its month, market and category, per account.
pub fn price(mut counts: Vec<UsageCount>, cards: &[Card], currency: &str) -> Vec<Priced> {
    counts.sort_by(|a, b| {
        (
            a.day,
            &a.account_id,
            &a.phone_number_id,
            &a.category,
            &a.market,
            &a.pricing_type,
        )
            .cmp(&(
                b.day,
                &b.account_id,
                &b.phone_number_id,
                &b.category,
                &b.market,
                &b.pricing_type,
            ))
    });
    // Billable messages so far this month, per (month, account, category, market).
    let mut before: HashMap<(i64, String, String, String), i64> = HashMap::new();
    counts
        .into_iter()
        .map(|count| {
            if !count.billable {
                return Priced {
                    count,
                    cost: Some(Decimal::ZERO),
                    card: None,
                };
            }
            let month = super::day_of(month_start(date_of(count.day)));
            let key = (
                month,
                count.account_id.clone(),
                count.category.clone(),
                count.market.clone(),
            );
            let so_far = before.entry(key).or_default();
            let card = card_on(cards, currency, count.day);
            let tiers = match (card, count.market.is_empty()) {
                (Some(c), false) => pricing::rates_for(&c.rates, &count.market, &count.category),
                _ => Vec::new(),
            };
            let cost = (!tiers.is_empty()).then(|| pricing::cost(&tiers, *so_far, count.messages));
            *so_far += count.messages;
            Priced {
                card: card.filter(|_| cost.is_some()).map(|c| c.id),
                count,
                cost,
            }
        })
        .collect()
}

/// The days asked (`from`, `to`), checked.
pub fn range(q: &UsageQuery) -> EngineResult<(i64, i64)> {
    let today = day_of(date_of(now_ms().div_euclid(86_400_000)));
    let from = match q.from.as_deref().filter(|f| !f.is_empty()) {
        Some(f) => day_of(parse_date("from", f)?),
        None => day_of(month_start(date_of(today))),
    };
    let to = match q.to.as_deref().filter(|t| !t.is_empty()) {
        Some(t) => day_of(parse_date("to", t)?),
        None => today,
    };
    if to < from {
        return Err(EngineError::invalid_field(
            "to",
            "`to` is before `from`",
            "give a `to` on or after `from`",
        ));
    }
    if to - from > 400 {
        return Err(EngineError::invalid_field(
            "to",
            format!("{} days is too long a range", to - from + 1),
            "ask for at most 400 days at once",
        ));
    }
    Ok((from, to))
}

fn dimensions(group_by: Option<&str>) -> EngineResult<Vec<&'static str>> {
    let mut dims = Vec::new();
    for d in group_by
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
    {
        match DIMENSIONS.iter().find(|k| **k == d) {
            Some(k) if !dims.contains(k) => dims.push(*k),
            Some(_) => {}
            None => {
                return Err(EngineError::invalid_field(
                    "group_by",
                    format!("`{d}` is not something to group by"),
                    format!("use any of {}", DIMENSIONS.join(", ")),
                ))
            }
        }
    }
    Ok(dims)
}

/// The usage of the accounts the caller sees (a tenant's key: its tenant's), priced.
pub async fn usage(state: &Engine, caller: &Caller, q: &UsageQuery) -> EngineResult<UsageReport> {
    caller.require("read")?;
    let (from, to) = range(q)?;
    let dims = dimensions(q.group_by.as_deref())?;
    let scope = AccountScope {
        account_id: filter_account(state, caller, q.account.as_deref())?,
        account_ids: caller.account_ids(),
    };
    let cards = super::cards::all(state).await?;
    let currency = match q.currency.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
        Some(c) if cards.iter().any(|k| k.currency == c) => Some(c.to_string()),
        Some(c) => {
            return Err(EngineError::invalid_field(
                "currency",
                format!("no rate card in {c} is loaded"),
                "load one (PUT /v1/rates or `wagate rates import`), or leave currency out",
            ))
        }
        None => cards
            .iter()
            .max_by_key(|c| (c.effective_day, c.id))
            .map(|c| c.currency.clone()),
    };
    // From the first of `from`'s month: its tiers count the month's messages before `from`.
    let first = day_of(month_start(date_of(from)));
    let counts = state.store.usage(&scope, first, to).await?;
    let priced = price(counts, &cards, currency.as_deref().unwrap_or_default());

    let mut groups: BTreeMap<Vec<String>, UsageGroup> = BTreeMap::new();
    let mut unpriced: BTreeMap<(String, String), i64> = BTreeMap::new();
    let mut used: BTreeMap<i64, CardUsed> = BTreeMap::new();
    for p in priced.into_iter().filter(|p| p.count.day >= from) {
        let c = &p.count;
        let account = state.accounts.by_id(&c.account_id);
        let value = |d: &str| -> String {
            match d {
                "day" => date_text(date_of(c.day)),
                "account" => account
                    .as_ref()
                    .map_or_else(|| c.account_id.clone(), |a| a.name.clone()),
                "number" => c.phone_number_id.clone(),
                "tenant" => account.as_ref().and_then(|a| a.tenant.clone()).unwrap_or_default(),
                "category" => c.category.clone(),
                "market" => c.market.clone(),
                _ => c.pricing_type.clone(),
            }
        };
        let key: Vec<String> = dims.iter().map(|d| value(d)).collect();
        let g = groups.entry(key).or_insert_with(|| UsageGroup::of(&dims, value));
        g.messages += c.messages;
        if c.billable {
            g.billable += c.messages;
        }
        match p.cost {
            Some(cost) => {
                let total = g.cost.parse::<Decimal>().unwrap_or_default() + cost;
                g.cost = total.normalize().to_string();
            }
            None => {
                let market = if c.market.is_empty() {
                    "unknown".to_string()
                } else {
                    c.market.clone()
                };
                *unpriced.entry((market, c.category.clone())).or_default() += c.messages;
            }
        }
        if let Some(card) = p.card.and_then(|id| cards.iter().find(|k| k.id == id)) {
            used.entry(card.id).or_insert_with(|| CardUsed {
                id: card.id,
                effective: date_text(date_of(card.effective_day)),
            });
        }
    }
    Ok(UsageReport {
        currency,
        from: date_text(date_of(from)),
        to: date_text(date_of(to)),
        cards: used.into_values().collect(),
        groups: groups.into_values().collect(),
        unpriced: unpriced
            .into_iter()
            .map(|((market, category), messages)| Unpriced {
                market,
                category,
                messages,
            })
            .collect(),
    })
}

/// The report as CSV: a column per dimension asked, then messages, billable, cost; the
/// currency in the header of the cost column.
pub fn csv(report: &UsageReport, group_by: Option<&str>) -> EngineResult<String> {
    let dims = dimensions(group_by)?;
    let mut out = String::new();
    let cost = format!("cost_{}", report.currency.as_deref().unwrap_or("unpriced"));
    let header: Vec<&str> = dims
        .iter()
        .copied()
        .chain(["messages", "billable", cost.as_str()])
        .collect();
    out.push_str(&header.join(","));
    out.push('\n');
    let quote = |v: &str| match v.contains([',', '"', '\n']) {
        true => format!("\"{}\"", v.replace('"', "\"\"")),
        false => v.to_string(),
    };
    for g in &report.groups {
        let mut cells: Vec<String> = dims.iter().map(|d| quote(g.dimension(d).unwrap_or_default())).collect();
        cells.extend([g.messages.to_string(), g.billable.to_string(), g.cost.clone()]);
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(day: i64, market: &str, category: &str, n: i64) -> UsageCount {
        UsageCount {
            day,
            account_id: "acc".into(),
            phone_number_id: "1".into(),
            category: category.into(),
            market: market.into(),
            pricing_type: "regular".into(),
            billable: true,
            messages: n,
        }
    }

    #[test]
    fn tiers_count_the_month_and_each_day_has_its_card() {
        let csv = "market,category,rate,tier_from,tier_to\nBR,utility,0.01,0,100\nBR,utility,0.005,100,\n";
        let rates = pricing::parse_card(csv, &|_| true).expect("card");
        let d = |text: &str| day_of(parse_date("d", text).expect("date"));
        let cards = vec![
            Card {
                id: 1,
                currency: "EUR".into(),
                effective_day: d("2026-10-01"),
                rates: rates.clone(),
            },
            Card {
                id: 2,
                currency: "EUR".into(),
                effective_day: d("2026-11-15"),
                rates: rates
                    .iter()
                    .map(|r| pricing::Rate {
                        rate: r.rate * Decimal::from(2),
                        ..r.clone()
                    })
                    .collect(),
            },
        ];
        let priced = price(
            vec![
                count(d("2026-11-01"), "BR", "utility", 90),
                count(d("2026-11-02"), "BR", "utility", 20),
                count(d("2026-11-20"), "BR", "utility", 10),
                count(d("2026-12-01"), "BR", "utility", 10),
                count(d("2026-11-02"), "ZW", "marketing", 3),
            ],
            &cards,
            "EUR",
        );
        let cost = |i: usize| priced[i].cost.map(|c| c.normalize().to_string());
        assert_eq!(cost(0).as_deref(), Some("0.9"));
        // Not on the card: unpriced, not free.
        assert_eq!(priced[1].count.market, "ZW");
        assert_eq!(priced[1].cost, None);
        // 10 at 0.01 and 10 past the threshold at 0.005.
        assert_eq!(cost(2).as_deref(), Some("0.15"));
        // The second card (twice the rates) from the 15th, still past the threshold.
        assert_eq!(cost(3).as_deref(), Some("0.1"));
        // A new month starts at the first tier again (card 2).
        assert_eq!(cost(4).as_deref(), Some("0.2"));
    }
}
