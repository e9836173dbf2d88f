//! Meta's per-message pricing, as a rule: rate cards (read from Meta's CSV shape and checked
//! whole), the market a recipient belongs to, and the cost of a month's messages with its volume
//! tiers. Money is `rust_decimal::Decimal`, never floating point.

use std::collections::BTreeMap;
use std::str::FromStr;

use rust_decimal::Decimal;

/// The categories Meta prices (the `category` of a status's `pricing`).
pub const CATEGORIES: [&str; 4] = ["marketing", "utility", "authentication", "authentication_international"];

/// The categories whose rate falls past monthly volume thresholds.
pub const TIERED: [&str; 3] = ["utility", "authentication", "authentication_international"];

/// Meta's regions, for the countries without a rate of their own.
pub const REGIONS: [&str; 8] = [
    "North America",
    "Rest of Africa",
    "Rest of Asia Pacific",
    "Rest of Central & Eastern Europe",
    "Rest of Latin America",
    "Rest of Middle East",
    "Rest of Western Europe",
    "Other",
];

/// The countries of each of Meta's regions (Meta's pricing page; the countries priced on their
/// own are not listed: a card names them by their code).
const REGION_COUNTRIES: [(&str, &str); 7] = [
    ("North America", "US CA"),
    (
        "Rest of Africa",
        "DZ AO BJ BW BF BI CM TD CG CD ER ET GA GM GH GW CI KE LS LR LY MG MW ML MR MA MZ NA NE RW SN SL SO SS SD SZ TZ TG TN UG ZM",
    ),
    (
        "Rest of Asia Pacific",
        "AF AU BD KH CN HK JP LA MN NP NZ PG PH SG LK TW TJ TH TM UZ VN",
    ),
    (
        "Rest of Central & Eastern Europe",
        "AL AM AZ BY BG HR CZ GE GR HU LV LT MK MD PL RO RS SK SI UA",
    ),
    (
        "Rest of Latin America",
        "BO CR DO EC SV GT HT HN JM NI PA PY PR UY VE",
    ),
    ("Rest of Middle East", "BH IQ JO KW LB OM QA YE"),
    ("Rest of Western Europe", "AT BE DK FI IE NO PT SE CH"),
];

/// ISO 4217 currency codes in use.
const CURRENCIES: &str = "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VES VND VUV WST XAF XCD XOF XPF YER ZAR ZMW ZWG";

/// Whether `code` is an ISO 4217 currency (upper case).
pub fn is_currency(code: &str) -> bool {
    code.len() == 3 && CURRENCIES.split(' ').any(|c| c == code)
}

/// Meta's region of a country (alpha-2), `Other` when it is in none.
pub fn region_of(country: &str) -> &'static str {
    REGION_COUNTRIES
        .iter()
        .find(|(_, list)| list.split(' ').any(|c| c == country))
        .map_or("Other", |(region, _)| region)
}

/// One row of a card: the rate of a market and category, within a tier of the month's count.
#[derive(Debug, Clone, PartialEq)]
pub struct Rate {
    /// An ISO 3166 alpha-2 code or one of [`REGIONS`].
    pub market: String,
    pub category: String,
    /// Messages of the month before this tier (0 without tiers).
    pub tier_from: i64,
    /// Where the tier ends (exclusive); `None`: no end.
    pub tier_to: Option<i64>,
    pub rate: Decimal,
}

/// What is wrong with a card, and where (1-based; the header is line 1).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct CardError {
    pub line: usize,
    /// The column's name (`market`, `rate`, …).
    pub column: String,
    pub message: String,
}

fn at(line: usize, column: &str, message: impl Into<String>) -> CardError {
    CardError {
        line,
        column: column.to_string(),
        message: message.into(),
    }
}

/// A market as a card may name it: an alpha-2 code (upper case) or one of Meta's regions.
fn market(text: &str, known_country: &dyn Fn(&str) -> bool) -> Option<String> {
    let t = text.trim();
    if t.len() == 2 && known_country(&t.to_ascii_uppercase()) {
        return Some(t.to_ascii_uppercase());
    }
    REGIONS
        .iter()
        .find(|r| r.eq_ignore_ascii_case(t))
        .map(|r| r.to_string())
}

/// Reads a card (`market,category,rate` and optionally `tier_from,tier_to`), checking all of it:
/// the first fault is returned with its line and column, and nothing is taken.
/// `known_country` says whether an alpha-2 code is a country.
pub fn parse_card(csv_text: &str, known_country: &dyn Fn(&str) -> bool) -> Result<Vec<Rate>, CardError> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(false)
        .from_reader(csv_text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| at(1, "", format!("the header line cannot be read: {e}")))?
        .clone();
    let index = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
    let mut columns = BTreeMap::new();
    for name in ["market", "category", "rate"] {
        let Some(i) = index(name) else {
            return Err(at(
                1,
                name,
                format!("the column `{name}` is missing; the header must name market,category,rate (and optionally tier_from,tier_to)"),
            ));
        };
        columns.insert(name, i);
    }
    let (tier_from, tier_to) = (index("tier_from"), index("tier_to"));
    if tier_from.is_some() != tier_to.is_some() {
        let missing = if tier_from.is_none() { "tier_from" } else { "tier_to" };
        return Err(at(
            1,
            missing,
            format!("the column `{missing}` is missing: tiers need both tier_from and tier_to"),
        ));
    }
    if let Some(unknown) = headers
        .iter()
        .find(|h| !["market", "category", "rate", "tier_from", "tier_to"].contains(&h.to_ascii_lowercase().as_str()))
    {
        return Err(at(1, unknown, format!("`{unknown}` is not a column of a rate card")));
    }
    let mut rates: Vec<(usize, Rate)> = Vec::new();
    for (n, record) in reader.records().enumerate() {
        let line = n + 2;
        let record = record.map_err(|e| at(line, "", format!("the line cannot be read: {e}")))?;
        let field = |name: &str| record.get(columns[name]).unwrap_or_default();
        let market = market(field("market"), known_country).ok_or_else(|| {
            at(
                line,
                "market",
                format!(
                    "`{}` is neither an ISO 3166 alpha-2 country code nor one of Meta's regions ({})",
                    field("market"),
                    REGIONS.join(", ")
                ),
            )
        })?;
        let category = field("category").to_ascii_lowercase();
        if !CATEGORIES.contains(&category.as_str()) {
            return Err(at(
                line,
                "category",
                format!(
                    "`{}` is not a category; use one of {}",
                    field("category"),
                    CATEGORIES.join(", ")
                ),
            ));
        }
        let rate = Decimal::from_str(field("rate"))
            .ok()
            .filter(|r| !r.is_sign_negative())
            .ok_or_else(|| {
                at(
                    line,
                    "rate",
                    format!(
                        "`{}` is not a rate (a number, 0 or more, such as 0.0456)",
                        field("rate")
                    ),
                )
            })?;
        let count = |i: Option<usize>, name: &str| -> Result<Option<i64>, CardError> {
            let text = i.and_then(|i| record.get(i)).unwrap_or_default();
            match text {
                "" => Ok(None),
                t => t.parse::<i64>().ok().filter(|n| *n >= 0).map(Some).ok_or_else(|| {
                    at(
                        line,
                        name,
                        format!("`{t}` is not a count of messages (a whole number, 0 or more)"),
                    )
                }),
            }
        };
        let from = count(tier_from, "tier_from")?;
        let to = count(tier_to, "tier_to")?;
        if (from.is_some() || to.is_some()) && !TIERED.contains(&category.as_str()) {
            return Err(at(
                line,
                "tier_from",
                format!("{category} has no volume tiers; only {} do", TIERED.join(", ")),
            ));
        }
        if let (Some(f), Some(t)) = (from, to) {
            if t <= f {
                return Err(at(
                    line,
                    "tier_to",
                    format!("the tier ends ({t}) before it starts ({f})"),
                ));
            }
        }
        if from.is_none() && to.is_some() {
            return Err(at(line, "tier_from", "a tier with an end needs its start"));
        }
        rates.push((
            line,
            Rate {
                market,
                category,
                tier_from: from.unwrap_or(0),
                tier_to: to,
                rate,
            },
        ));
    }
    if rates.is_empty() {
        return Err(at(2, "market", "the card has no rate"));
    }
    // Per market and category: one rate, or tiers from 0 that follow each other to no end.
    let mut groups: BTreeMap<(String, String), Vec<(usize, &Rate)>> = BTreeMap::new();
    for (line, r) in &rates {
        groups
            .entry((r.market.clone(), r.category.clone()))
            .or_default()
            .push((*line, r));
    }
    for ((market, category), mut rows) in groups {
        rows.sort_by_key(|(_, r)| r.tier_from);
        let mut expected = 0;
        for (i, (line, r)) in rows.iter().enumerate() {
            if r.tier_from != expected {
                let what = match r.tier_from < expected {
                    true => format!("{market} {category}: this tier overlaps the one before (or repeats the market)"),
                    false => format!(
                        "{market} {category}: the tiers leave out counts {expected} to {}",
                        r.tier_from
                    ),
                };
                let column = if i == 0 { "market" } else { "tier_from" };
                return Err(at(*line, column, what));
            }
            match (r.tier_to, i + 1 == rows.len()) {
                (Some(to), _) => expected = to,
                (None, true) => {}
                (None, false) => {
                    let (next_line, _) = rows[i + 1];
                    return Err(at(
                        next_line,
                        "market",
                        format!("{market} {category} is on the card twice (or a tier follows one with no end)"),
                    ));
                }
            }
        }
        if let Some((line, last)) = rows.last().filter(|(_, r)| r.tier_to.is_some()) {
            return Err(at(
                *line,
                "tier_to",
                format!(
                    "{market} {category}: the last tier must have no end (it ends at {})",
                    last.tier_to.unwrap_or_default()
                ),
            ));
        }
    }
    Ok(rates.into_iter().map(|(_, r)| r).collect())
}

/// The rows of a card that price a country's messages of a category: its own, else its
/// region's, else `Other`'s; empty: unpriced.
pub fn rates_for<'a>(card: &'a [Rate], country: &str, category: &str) -> Vec<&'a Rate> {
    let region = region_of(country);
    for market in [country, region, "Other"] {
        let mut rows: Vec<&Rate> = card
            .iter()
            .filter(|r| r.market == market && r.category == category)
            .collect();
        if !rows.is_empty() {
            rows.sort_by_key(|r| r.tier_from);
            return rows;
        }
    }
    Vec::new()
}

/// The cost of `n` billable messages that follow `before` billable messages of the same month,
/// market and category, over a card's tiers.
pub fn cost(tiers: &[&Rate], before: i64, n: i64) -> Decimal {
    let (start, end) = (before, before + n);
    tiers
        .iter()
        .map(|t| {
            let lo = start.max(t.tier_from);
            let hi = end.min(t.tier_to.unwrap_or(i64::MAX));
            match hi > lo {
                true => t.rate * Decimal::from(hi - lo),
                false => Decimal::ZERO,
            }
        })
        .sum()
}

/// What a status says Meta charges for its message: counted once per message, on the status
/// that carries the delivery's pricing (Meta puts it on `sent` and on one of `delivered` or
/// `read`; only delivered messages are charged).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Usage {
    pub category: String,
    /// `regular`, `free_customer_service` or `free_entry_point`.
    pub pricing_type: String,
    pub billable: bool,
    /// The recipient's country (alpha-2); empty when the recipient is known by user id only.
    pub market: String,
}

/// The usage a status records, if it is the delivery's priced status.
pub fn usage_of(status: &str, payload: &serde_json::Value) -> Option<Usage> {
    if !matches!(status, "delivered" | "read") {
        return None;
    }
    let pricing = payload.get("pricing").filter(|p| p.is_object())?;
    let text = |k: &str| {
        pricing
            .get(k)
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_ascii_lowercase()
    };
    let pricing_type = match text("type") {
        t if t.is_empty() => "regular".to_string(),
        t => t,
    };
    Some(Usage {
        category: text("category"),
        // `billable` is on its way out: without it, what is regular is billed.
        billable: pricing
            .get("billable")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(pricing_type == "regular"),
        pricing_type,
        market: payload
            .get("recipient_id")
            .and_then(serde_json::Value::as_str)
            .and_then(market_of)
            .unwrap_or_default(),
    })
}

/// The country of a number (a `wa_id`), remembered by its first seven digits: parsing a number
/// costs tens of microseconds, and the country a number belongs to is decided by its leading
/// digits (the calling code, and for shared codes such as +1 or +44 the digits after it).
pub fn market_of(wa_id: &str) -> Option<String> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static KNOWN: OnceLock<Mutex<HashMap<String, Option<String>>>> = OnceLock::new();
    let prefix: String = wa_id.chars().take(7).collect();
    if prefix.len() < 7 || !prefix.bytes().all(|b| b.is_ascii_digit()) {
        return crate::phone::region_of(wa_id);
    }
    let known = KNOWN.get_or_init(Default::default);
    if let Some(country) = known.lock().unwrap_or_else(|e| e.into_inner()).get(&prefix) {
        return country.clone();
    }
    let country = crate::phone::region_of(wa_id);
    let mut map = known.lock().unwrap_or_else(|e| e.into_inner());
    if map.len() >= 100_000 {
        map.clear();
    }
    map.insert(prefix, country.clone());
    country
}

#[cfg(test)]
mod tests {
    use super::*;

    fn any_country(c: &str) -> bool {
        c.chars().all(|x| x.is_ascii_uppercase()) && c != "ZZ"
    }

    fn parse(csv: &str) -> Result<Vec<Rate>, CardError> {
        parse_card(csv, &any_country)
    }

    #[test]
    fn a_card_with_tiers_prices_each_message_at_its_tiers_rate() {
        let card = parse(
            "market,category,rate,tier_from,tier_to\n\
             BR,marketing,0.0625,,\n\
             BR,utility,0.0080,0,1000\n\
             BR,utility,0.0070,1000,\n\
             Rest of Africa,utility,0.0040,,\n",
        )
        .expect("a good card");
        let tiers = rates_for(&card, "BR", "utility");
        assert_eq!(tiers.len(), 2);
        // 990 before, 20 now: 10 at 0.0080 and 10 at 0.0070.
        assert_eq!(cost(&tiers, 990, 20), Decimal::from_str("0.150").expect("d"));
        assert_eq!(
            cost(&rates_for(&card, "BR", "marketing"), 5_000_000, 2),
            Decimal::from_str("0.125").expect("d")
        );
        // Kenya has no rate of its own: its region's.
        assert_eq!(rates_for(&card, "KE", "utility")[0].market, "Rest of Africa");
        // Nothing for Germany's utility: unpriced, not free.
        assert!(rates_for(&card, "DE", "utility").is_empty());
    }

    #[test]
    fn a_bad_card_is_refused_naming_the_line_and_column() {
        let cases = [
            ("market,rate\nBR,0.1\n", 1, "category"),
            ("market,category,rate\nBR,promotional,0.1\n", 2, "category"),
            ("market,category,rate\nBR,marketing,-0.1\n", 2, "rate"),
            ("market,category,rate\nBR,marketing,cheap\n", 2, "rate"),
            (
                "market,category,rate\nBR,marketing,0.1\nbr,marketing,0.2\n",
                3,
                "market",
            ),
            ("market,category,rate\nZZ,marketing,0.1\n", 2, "market"),
            (
                "market,category,rate,tier_from,tier_to\nBR,utility,0.1,0,1000\nBR,utility,0.09,500,\n",
                3,
                "tier_from",
            ),
            (
                "market,category,rate,tier_from,tier_to\nBR,utility,0.1,0,1000\nBR,utility,0.09,2000,\n",
                3,
                "tier_from",
            ),
            (
                "market,category,rate,tier_from,tier_to\nBR,marketing,0.1,0,1000\n",
                2,
                "tier_from",
            ),
            ("market,category,rate,tier_from\nBR,utility,0.1,0\n", 1, "tier_to"),
        ];
        for (csv, line, column) in cases {
            let e = parse(csv).expect_err(csv);
            assert_eq!((e.line, e.column.as_str()), (line, column), "{csv}: {e}");
        }
    }

    #[test]
    fn the_delivery_s_priced_status_is_the_usage() {
        let status = serde_json::json!({"recipient_id": "5511987654321", "pricing": {"billable": true, "pricing_model": "PMP", "type": "regular", "category": "marketing"}});
        let u = usage_of("delivered", &status).expect("counted");
        assert_eq!(
            (u.market.as_str(), u.category.as_str(), u.billable),
            ("BR", "marketing", true)
        );
        assert_eq!(usage_of("sent", &status), None, "sent is not delivered");
        let free = serde_json::json!({"recipient_id": "16505551234", "pricing": {"type": "free_customer_service", "category": "service"}});
        let u = usage_of("read", &free).expect("counted");
        assert_eq!((u.market.as_str(), u.billable), ("US", false));
    }

    #[test]
    fn a_remembered_country_is_the_country_a_parse_gives() {
        for wa_id in [
            "16505551234",
            "5511987654321",
            "447400123456",
            "447911123456",
            "12425551234",
            "79161234567",
            "77012345678",
        ] {
            let first = market_of(wa_id);
            assert_eq!(first, crate::phone::region_of(wa_id), "{wa_id}");
            assert_eq!(market_of(wa_id), first, "{wa_id}, remembered");
        }
        // The Bahamas share +1 with the US and Canada; Kazakhstan shares +7 with Russia.
        assert_eq!(market_of("12425551234").as_deref(), Some("BS"));
        assert_eq!(market_of("77012345678").as_deref(), Some("KZ"));
    }

    #[test]
    fn currencies_are_iso_4217() {
        assert!(is_currency("EUR") && is_currency("BRL"));
        assert!(!is_currency("EURO") && !is_currency("eur") && !is_currency("XYZ"));
    }
}
