//! Timestamps: stored as unix milliseconds, shown as RFC 3339.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// RFC 3339 (UTC) for unix milliseconds.
pub fn rfc3339_ms(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// Graph's own timestamps (`2026-12-07T21:00:00+0000`), whole seconds, UTC.
pub fn graph_time(ms: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]+0000");
    OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_default()
}

/// Parses RFC 3339 or unix seconds into unix milliseconds.
pub fn parse_time_ms(s: &str) -> Option<i64> {
    if let Ok(secs) = s.parse::<i64>() {
        return Some(secs * 1000);
    }
    let t = OffsetDateTime::parse(s, &Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

/// Meta's webhook timestamps are unix seconds, as a string or a number.
pub fn meta_timestamp_ms(v: Option<&serde_json::Value>) -> Option<i64> {
    match v? {
        serde_json::Value::String(s) => s.parse::<i64>().ok().map(|s| s * 1000),
        serde_json::Value::Number(n) => n.as_i64().map(|s| s * 1000),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses() {
        assert_eq!(rfc3339_ms(1_749_416_383_000), "2025-06-08T20:59:43Z");
        assert_eq!(parse_time_ms("2025-06-08T20:59:43Z"), Some(1_749_416_383_000));
        assert_eq!(parse_time_ms("1749416383"), Some(1_749_416_383_000));
        assert_eq!(parse_time_ms("yesterday"), None);
        assert_eq!(graph_time(1_765_141_200_999), "2025-12-07T21:00:00+0000");
    }
}
