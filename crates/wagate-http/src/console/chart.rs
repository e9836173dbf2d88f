//! Charts drawn as SVG on the server: the overview's last 24 hours (one line per kind of
//! activity, hours along the bottom) and the usage page's spend per day (a bar per day, stacked
//! by category).

use wagate_engine::activity::Hour;

/// The series drawn, with their CSS class (colour) and label.
const SERIES: [(&str, &str); 5] = [
    ("received", "Received"),
    ("sent", "Sent"),
    ("delivered", "Delivered"),
    ("read", "Read"),
    ("failed", "Failed"),
];

fn value(h: &Hour, kind: &str) -> i64 {
    match kind {
        "received" => h.received,
        "sent" => h.sent,
        "delivered" => h.delivered,
        "read" => h.read,
        _ => h.failed,
    }
}

/// The chart as an inline `<svg>` (numbers and fixed labels only: nothing to escape).
pub fn svg(hours: &[Hour]) -> String {
    let (w, h, left, bottom, top) = (720.0_f64, 220.0_f64, 40.0_f64, 24.0_f64, 10.0_f64);
    let max = hours
        .iter()
        .flat_map(|hour| SERIES.iter().map(move |(k, _)| value(hour, k)))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let n = hours.len().max(2) as f64;
    let x = |i: usize| left + (w - left - 8.0) * i as f64 / (n - 1.0);
    let y = |v: i64| top + (h - top - bottom) * (1.0 - v as f64 / max);
    let mut out = format!(
        "<svg class=\"chart\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"Messages per hour, last 24 hours\" xmlns=\"http://www.w3.org/2000/svg\">"
    );
    for frac in [0.0, 0.5, 1.0] {
        let v = (max * frac).round() as i64;
        let yy = y(v);
        out.push_str(&format!(
            "<line class=\"grid\" x1=\"{left}\" x2=\"{}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\"/><text class=\"axis\" x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{v}</text>",
            w - 8.0,
            left - 6.0,
            yy + 4.0
        ));
    }
    for (i, hour) in hours.iter().enumerate().filter(|(i, _)| i % 4 == 3) {
        let label = wagate_core::time::rfc3339_ms(hour.start_ms);
        let hh = label.get(11..16).unwrap_or_default().to_string();
        out.push_str(&format!(
            "<text class=\"axis\" x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{hh}</text>",
            x(i),
            h - 6.0
        ));
    }
    for (kind, _) in SERIES {
        let points: Vec<String> = hours
            .iter()
            .enumerate()
            .map(|(i, hour)| format!("{:.1},{:.1}", x(i), y(value(hour, kind))))
            .collect();
        out.push_str(&format!(
            "<polyline class=\"series {kind}\" data-series=\"{kind}\" points=\"{}\"/>",
            points.join(" ")
        ));
    }
    out.push_str("</svg>");
    out
}

/// The legend: each series with its total over the day.
pub fn legend(hours: &[Hour]) -> Vec<(&'static str, &'static str, i64)> {
    SERIES
        .iter()
        .map(|(kind, label)| (*kind, *label, hours.iter().map(|h| value(h, kind)).sum()))
        .collect()
}

/// The categories of the spend chart, in stacking order.
const CATEGORIES: [&str; 4] = ["marketing", "utility", "authentication", "authentication_international"];

/// The month's estimated cost per day, stacked by category (numbers, dates and fixed labels
/// only: nothing to escape).
pub fn spend_svg(report: &wagate_engine::usage::report::UsageReport, currency: &str) -> String {
    use rust_decimal::prelude::ToPrimitive;
    let mut days: std::collections::BTreeMap<String, [f64; 4]> = std::collections::BTreeMap::new();
    // Every day of the range has its slot, spent or not.
    let day = |t: &str| wagate_engine::usage::parse_date("day", t).map(wagate_engine::usage::day_of);
    if let (Ok(from), Ok(to)) = (day(&report.from), day(&report.to)) {
        for d in from..=to.min(from + 400) {
            days.insert(
                wagate_engine::usage::date_text(wagate_engine::usage::date_of(d)),
                [0.0; 4],
            );
        }
    }
    for g in &report.groups {
        let (Some(day), Some(category)) = (&g.day, &g.category) else {
            continue;
        };
        let bar = days.entry(day.clone()).or_default();
        if let Some(i) = CATEGORIES.iter().position(|c| c == category) {
            bar[i] += g
                .cost
                .parse::<rust_decimal::Decimal>()
                .ok()
                .and_then(|d| d.to_f64())
                .unwrap_or(0.0);
        }
    }
    let (w, h, left, bottom, top) = (720.0_f64, 220.0_f64, 56.0_f64, 24.0_f64, 10.0_f64);
    let max = days.values().map(|b| b.iter().sum::<f64>()).fold(0.0, f64::max);
    let max = if max > 0.0 { max } else { 1.0 };
    let n = days.len().max(1) as f64;
    let slot = (w - left - 8.0) / n;
    let y = |v: f64| top + (h - top - bottom) * (1.0 - v / max);
    let mut out = format!(
        "<svg class=\"chart spend\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"Estimated cost per day by category ({currency})\" xmlns=\"http://www.w3.org/2000/svg\">"
    );
    for frac in [0.0, 0.5, 1.0] {
        let v = max * frac;
        out.push_str(&format!(
            "<line class=\"grid\" x1=\"{left}\" x2=\"{}\" y1=\"{:.1}\" y2=\"{:.1}\"/><text class=\"axis\" x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{v:.2}</text>",
            w - 8.0,
            y(v),
            y(v),
            left - 6.0,
            y(v) + 4.0
        ));
    }
    for (i, (day, bar)) in days.iter().enumerate() {
        let x = left + slot * i as f64 + slot * 0.15;
        let mut base = 0.0;
        for (k, value) in bar.iter().enumerate().filter(|(_, v)| **v > 0.0) {
            let (y0, y1) = (y(base), y(base + value));
            out.push_str(&format!(
                "<rect class=\"bar {}\" data-day=\"{day}\" x=\"{x:.1}\" y=\"{y1:.1}\" width=\"{:.1}\" height=\"{:.1}\"><title>{day} {}: {value:.4} {currency}</title></rect>",
                CATEGORIES[k],
                slot * 0.7,
                (y0 - y1).max(0.5),
                CATEGORIES[k]
            ));
            base += value;
        }
        if days.len() <= 10 || i % 5 == 0 {
            out.push_str(&format!(
                "<text class=\"axis\" x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                x + slot * 0.35,
                h - 6.0,
                day.get(8..10).unwrap_or_default()
            ));
        }
    }
    if days.values().all(|b| b.iter().all(|v| *v == 0.0)) {
        out.push_str(&format!(
            "<text class=\"axis\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">nothing delivered this month yet</text>",
            w / 2.0,
            h / 2.0
        ));
    }
    out.push_str("</svg>");
    out
}
