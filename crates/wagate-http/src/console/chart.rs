//! The overview's chart of the last 24 hours, drawn as SVG on the server: one line per kind of
//! activity, hours along the bottom.

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
