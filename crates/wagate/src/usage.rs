//! `wagate rates import` and `wagate usage`: rate cards and the month's usage and cost, through
//! a running gateway's API (`PUT /v1/rates`, `GET /v1/usage`).

use anyhow::{bail, Context};
use serde_json::Value;

/// Loads a rate card from a CSV file.
pub async fn import(
    url: &str,
    api_key: &str,
    file: &std::path::Path,
    currency: &str,
    effective: &str,
) -> anyhow::Result<()> {
    let csv = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("currency", currency)
        .append_pair("effective", effective)
        .finish();
    let resp = reqwest::Client::new()
        .put(format!("{}/v1/rates?{query}", url.trim_end_matches('/')))
        .bearer_auth(api_key)
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        let e = &body["error"];
        bail!(
            "{}: the card was not loaded (nothing was): {} ({})",
            file.display(),
            e["message"].as_str().unwrap_or("no message"),
            e["hint"].as_str().unwrap_or("no hint")
        );
    }
    println!(
        "loaded card {} in {} from {}: {} rates for {} markets",
        body["id"],
        body["currency"].as_str().unwrap_or_default(),
        body["effective"].as_str().unwrap_or_default(),
        body["rates"],
        body["markets"]
    );
    Ok(())
}

/// The first and last day of a `YYYY-MM` month.
fn month_range(month: &str) -> anyhow::Result<(String, String)> {
    use wagate_engine::usage::{date_text, month_days};
    let (first, last) =
        month_days(month).with_context(|| format!("--month {month}: write it as YYYY-MM, e.g. 2026-11"))?;
    Ok((date_text(first), date_text(last)))
}

/// Prints the usage of a month (or a range) grouped as asked, as a table.
pub async fn report(
    api: &crate::replay::Api,
    month: Option<&str>,
    from: Option<&str>,
    to: Option<&str>,
    by: &str,
) -> anyhow::Result<()> {
    let (from, to) = match (month, from, to) {
        (Some(m), _, _) => {
            let (f, t) = month_range(m)?;
            (Some(f), Some(t))
        }
        (None, f, t) => (f.map(str::to_string), t.map(str::to_string)),
    };
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query.append_pair("group_by", by);
    if let Some(f) = &from {
        query.append_pair("from", f);
    }
    if let Some(t) = &to {
        query.append_pair("to", t);
    }
    let answer = api
        .call(reqwest::Method::GET, &format!("/v1/usage?{}", query.finish()), None)
        .await?;
    let dims: Vec<&str> = by.split(',').map(str::trim).filter(|d| !d.is_empty()).collect();
    let currency = answer["currency"].as_str().unwrap_or("(no card)");
    let mut rows: Vec<Vec<String>> = vec![dims
        .iter()
        .map(|d| d.to_string())
        .chain(["messages".into(), "billable".into(), format!("cost {currency}")])
        .collect()];
    let mut total = (0i64, 0i64, rust_decimal::Decimal::ZERO);
    for g in answer["groups"].as_array().into_iter().flatten() {
        let cost = g["cost"].as_str().unwrap_or("0");
        total.0 += g["messages"].as_i64().unwrap_or(0);
        total.1 += g["billable"].as_i64().unwrap_or(0);
        total.2 += cost.parse::<rust_decimal::Decimal>().unwrap_or_default();
        rows.push(
            dims.iter()
                .map(|d| g[*d].as_str().unwrap_or("").to_string())
                .chain([g["messages"].to_string(), g["billable"].to_string(), cost.to_string()])
                .collect(),
        );
    }
    let mut last: Vec<String> = dims
        .iter()
        .enumerate()
        .map(|(i, _)| if i == 0 { "total".into() } else { String::new() })
        .collect();
    if last.is_empty() {
        last.push("total".into());
        for r in rows.iter_mut() {
            r.insert(0, String::new());
        }
        rows[0][0] = String::new();
    }
    last.extend([
        total.0.to_string(),
        total.1.to_string(),
        total.2.normalize().to_string(),
    ]);
    rows.push(last);
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|i| {
            rows.iter()
                .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    println!(
        "usage {} to {}",
        answer["from"].as_str().unwrap_or_default(),
        answer["to"].as_str().unwrap_or_default()
    );
    for r in &rows {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, c)| match i + 3 >= r.len() {
                true => format!("{c:>w$}", w = widths[i]),
                false => format!("{c:<w$}", w = widths[i]),
            })
            .collect();
        println!("{}", line.join("  ").trim_end());
    }
    for u in answer["unpriced"].as_array().into_iter().flatten() {
        println!(
            "unpriced: {} {} messages to {} (not on the card: not counted above)",
            u["messages"],
            u["category"].as_str().unwrap_or_default(),
            u["market"].as_str().unwrap_or_default()
        );
    }
    Ok(())
}
