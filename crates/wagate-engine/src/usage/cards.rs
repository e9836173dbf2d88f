//! Rate cards: Meta's rates in one currency from a day on. Several coexist; a message is priced
//! with the card of its currency in force on the day it was delivered.

use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::{json, Value};
use utoipa::ToSchema;
use wagate_core::pricing::{self, Rate};

use super::{date_of, date_text, day_of, parse_date};
use crate::auth::Caller;
use crate::clock::now_ms;
use crate::error::{EngineError, EngineResult};
use crate::state::Engine;

/// A card as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CardView {
    pub id: i64,
    pub currency: String,
    /// The first day it prices (`YYYY-MM-DD`, UTC).
    pub effective: String,
    /// How many rows (market, category and tier) it has.
    pub rates: usize,
    pub markets: usize,
    pub loaded_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CardList {
    pub data: Vec<CardView>,
}

/// A card with its rows, for pricing.
#[derive(Debug, Clone)]
pub struct Card {
    pub id: i64,
    pub currency: String,
    pub effective_day: i64,
    pub rates: Vec<Rate>,
}

fn rates_json(rates: &[Rate]) -> String {
    Value::Array(
        rates
            .iter()
            .map(|r| {
                json!({"market": r.market, "category": r.category, "tier_from": r.tier_from,
                       "tier_to": r.tier_to, "rate": r.rate.to_string()})
            })
            .collect(),
    )
    .to_string()
}

fn rates_from(json: &str) -> Vec<Rate> {
    let rows: Vec<Value> = serde_json::from_str(json).unwrap_or_default();
    rows.iter()
        .filter_map(|r| {
            Some(Rate {
                market: r["market"].as_str()?.to_string(),
                category: r["category"].as_str()?.to_string(),
                tier_from: r["tier_from"].as_i64().unwrap_or(0),
                tier_to: r["tier_to"].as_i64(),
                rate: r["rate"].as_str()?.parse::<Decimal>().ok()?,
            })
        })
        .collect()
}

fn view(c: &wagate_store::RateCard) -> CardView {
    let rates = rates_from(&c.rates);
    let mut markets: Vec<&str> = rates.iter().map(|r| r.market.as_str()).collect();
    markets.sort_unstable();
    markets.dedup();
    CardView {
        id: c.id,
        currency: c.currency.clone(),
        effective: date_text(date_of(c.effective)),
        rates: rates.len(),
        markets: markets.len(),
        loaded_at: wagate_core::time::rfc3339_ms(c.created_at),
    }
}

/// Every card, with its rows.
pub async fn all(state: &Engine) -> EngineResult<Vec<Card>> {
    Ok(state
        .store
        .rate_cards()
        .await?
        .into_iter()
        .map(|c| Card {
            rates: rates_from(&c.rates),
            id: c.id,
            currency: c.currency,
            effective_day: c.effective,
        })
        .collect())
}

/// Loads a card from Meta's CSV shape (`market,category,rate[,tier_from,tier_to]`): checked
/// whole, refused with the line and column of its first fault, and nothing taken then. A card of
/// the same currency and day is replaced.
pub async fn import(
    state: &Engine,
    caller: &Caller,
    currency: &str,
    effective: &str,
    csv: &str,
) -> EngineResult<CardView> {
    caller.require_global("admin")?;
    let currency = currency.trim();
    if !pricing::is_currency(currency) {
        return Err(EngineError::invalid_field(
            "currency",
            format!("`{currency}` is not an ISO 4217 currency code"),
            "use the card's currency as three capitals, e.g. EUR, USD, BRL, INR",
        ));
    }
    let day = day_of(parse_date("effective", effective)?);
    let known = |code: &str| wagate_core::phone::parse_country(code).is_ok();
    let rates = pricing::parse_card(csv, &known).map_err(|e| {
        EngineError::invalid_field(
            "csv",
            e.to_string(),
            "fix that line and load the card again; nothing was loaded",
        )
        .details(json!({"field": "csv", "line": e.line, "column": e.column}))
    })?;
    let stored = state
        .store
        .put_rate_card(currency, day, &rates_json(&rates), now_ms())
        .await?;
    let card = view(&stored);
    let details = json!({"currency": card.currency, "effective": card.effective, "rates": card.rates});
    crate::audit::record(state, caller, "rates.loaded", Some(&card.id.to_string()), None, details).await;
    Ok(card)
}

/// The cards loaded, the oldest first.
pub async fn list(state: &Engine, caller: &Caller) -> EngineResult<CardList> {
    caller.require("read")?;
    Ok(CardList {
        data: state.store.rate_cards().await?.iter().map(view).collect(),
    })
}
