//! Usage and costs: what each account, number and tenant spends, before Meta's invoice.
//!
//! - `cards`: rate cards (Meta's rates per market and category, with volume tiers), loaded from
//!   CSV and checked whole;
//! - `report`: the usage counted as statuses are recorded, priced with the card in force each
//!   day, grouped as asked;
//! - `reconcile`: Meta's own pricing analytics beside the estimate, per day;
//! - `budgets`: monthly budgets of accounts and tenants, their alerts and the hard stop.

pub mod budgets;
pub mod cards;
pub mod reconcile;
pub mod report;
pub mod stops;

use time::Date;

use crate::error::EngineError;

/// Days since the unix epoch of a date.
pub fn day_of(date: Date) -> i64 {
    i64::from(date.to_julian_day()) - 2_440_588
}

/// The date of a day since the unix epoch.
pub fn date_of(day: i64) -> Date {
    Date::from_julian_day((day + 2_440_588) as i32).unwrap_or(Date::MIN)
}

/// A `YYYY-MM-DD` date, named by its field when it is not one.
pub fn parse_date(field: &str, text: &str) -> Result<Date, EngineError> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(text.trim(), format).map_err(|_| {
        EngineError::invalid_field(
            field,
            format!("`{text}` is not a date"),
            "write it as YYYY-MM-DD, e.g. 2026-10-01",
        )
    })
}

/// `YYYY-MM-DD`.
pub fn date_text(date: Date) -> String {
    format!("{:04}-{:02}-{:02}", date.year(), u8::from(date.month()), date.day())
}

/// The first day of the month of `date`.
pub fn month_start(date: Date) -> Date {
    date.replace_day(1).unwrap_or(date)
}

/// The first and last day of a `YYYY-MM` month; `None` when it is not one.
pub fn month_days(month: &str) -> Option<(Date, Date)> {
    let (y, m) = month.trim().split_once('-')?;
    let (y, m) = (
        y.parse::<i32>().ok()?,
        time::Month::try_from(m.parse::<u8>().ok()?).ok()?,
    );
    let first = Date::from_calendar_date(y, m, 1).ok()?;
    let last = Date::from_calendar_date(y, m, time::util::days_in_month(m, y)).ok()?;
    Some((first, last))
}
