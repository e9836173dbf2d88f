//! Meta's pricing analytics, simulated: every delivered message that Meta would price is
//! recorded, and `GET /{waba}?fields=pricing_analytics.start(…).end(…).granularity(DAILY)…`
//! answers its volume and cost per day, country, category and pricing type, priced with the
//! simulator's own rates (per category; `POST /_sim/settings {"pricing_rates": {…}}`).

use std::collections::BTreeMap;

use serde_json::{json, Value};

/// A delivered message as Meta prices it.
#[derive(Debug, Clone)]
pub struct PricedDelivery {
    pub waba_id: String,
    pub at_ms: i64,
    pub country: String,
    /// Lower case, as in the status's `pricing.category`.
    pub category: String,
    pub pricing_type: String,
    pub billable: bool,
}

/// The simulator's rates per category (its currency: the WABA's, USD), until set otherwise.
pub fn default_rates() -> BTreeMap<String, f64> {
    [
        ("marketing", 0.025),
        ("utility", 0.004),
        ("authentication", 0.0135),
        ("authentication_international", 0.03),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// The value of `name(…)` in a Graph field expression.
fn modifier<'a>(expr: &'a str, name: &str) -> Option<&'a str> {
    let at = expr.find(&format!("{name}("))? + name.len() + 1;
    let end = expr[at..].find(')')? + at;
    Some(&expr[at..end])
}

/// The `pricing_analytics` field of a WABA, from its `fields=` expression; `None` when not asked.
pub fn analytics(
    fields: &str,
    waba_id: &str,
    delivered: &[PricedDelivery],
    rates: &BTreeMap<String, f64>,
) -> Option<Value> {
    let at = fields.find("pricing_analytics")?;
    let expr = &fields[at..];
    let seconds = |name: &str| modifier(expr, name).and_then(|v| v.trim().parse::<i64>().ok());
    let (start, end) = (seconds("start").unwrap_or(0), seconds("end").unwrap_or(i64::MAX / 1000));
    let daily = modifier(expr, "granularity").is_none_or(|g| g.eq_ignore_ascii_case("DAILY"));
    let bucket = if daily { 86_400 } else { 30 * 86_400 };
    // (bucket start, country, category, type) → (volume, cost).
    let mut points: BTreeMap<(i64, String, String, String), (i64, f64)> = BTreeMap::new();
    for d in delivered.iter().filter(|d| d.waba_id == waba_id) {
        let t = d.at_ms / 1000;
        if t < start || t >= end {
            continue;
        }
        let from = t - t.rem_euclid(bucket);
        let p = points
            .entry((
                from,
                d.country.clone(),
                d.category.to_uppercase(),
                d.pricing_type.to_uppercase(),
            ))
            .or_default();
        p.0 += 1;
        if d.billable {
            p.1 += rates.get(&d.category).copied().unwrap_or(0.0);
        }
    }
    let data_points: Vec<Value> = points
        .into_iter()
        .map(|((from, country, category, kind), (volume, cost))| {
            json!({"start": from, "end": from + bucket, "country": country, "pricing_category": category,
                   "pricing_type": kind, "volume": volume, "cost": (cost * 1e6).round() / 1e6})
        })
        .collect();
    Some(json!({"data": [{"data_points": data_points}]}))
}
