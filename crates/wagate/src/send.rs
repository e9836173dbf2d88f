//! `wagate send`: one message, or a template to every row of a CSV file, through a running
//! gateway's API.
//!
//! A CSV goes in batches (`POST /v1/messages/batch`, queued as bulk). Each row carries an
//! idempotency key derived from the file and the row, so running the command again after an
//! interruption sends each row once: rows already queued come back as replays. Bad rows are
//! reported with their line number and the reason; the good rows still go. A live progress bar
//! follows the messages (queued, sent, delivered, failed, rate, ETA), then a summary table.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};

use crate::replay::Api;

pub struct SendArgs {
    pub url: String,
    pub api_key: String,
    pub account: Option<String>,
    pub to: Option<String>,
    pub text: Option<String>,
    pub template: Option<String>,
    pub lang: String,
    /// Single message: parameter values (`value` or `name=value`). CSV: the columns that fill
    /// the parameters, in placeholder order (`column` or `name=column`).
    pub params: Vec<String>,
    pub csv: Option<PathBuf>,
    pub to_column: String,
    /// How long to follow the messages after queueing them (0: do not follow).
    pub wait: Duration,
}

/// The most messages one batch request carries.
const BATCH: usize = 500;

/// Statuses after which a message changes no more (for this command's purpose).
fn settled(status: &str) -> bool {
    matches!(
        status,
        "delivered" | "read" | "played" | "failed" | "cancelled" | "unknown"
    )
}

/// A template's body parameters: positional values, or `name=value` for named placeholders.
fn template_body(name: &str, lang: &str, values: &[(Option<String>, String)]) -> Value {
    let mut template = json!({"name": name, "language": {"code": lang}});
    if !values.is_empty() {
        let parameters: Vec<Value> = values
            .iter()
            .map(|(param, text)| match param {
                Some(p) => json!({"type": "text", "parameter_name": p, "text": text}),
                None => json!({"type": "text", "text": text}),
            })
            .collect();
        template["components"] = json!([{"type": "body", "parameters": parameters}]);
    }
    template
}

fn split_param(p: &str) -> (Option<String>, String) {
    match p.split_once('=') {
        Some((name, v)) if !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') => {
            (Some(name.to_string()), v.to_string())
        }
        _ => (None, p.to_string()),
    }
}

/// The idempotency key of a row: the file (by its absolute path), the line and the row's content.
/// The same row of the same file gets the same key on every run; an edited row is a new message.
fn row_key(file: &Path, line: u64, row: &[String]) -> String {
    let path = std::fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf());
    let h = |s: &str| wagate_core::signature::sha256_hex(s.as_bytes())[..16].to_string();
    format!("csv-{}-{line}-{}", h(&path.to_string_lossy()), h(&row.join("\u{1f}")))
}

pub async fn run(a: SendArgs) -> anyhow::Result<bool> {
    if a.api_key.is_empty() {
        bail!("give an API key with the send permission: --api-key or WAGATE_API_KEY");
    }
    let api = Api::new(&a.url, &a.api_key);
    match &a.csv {
        Some(file) => send_csv(&api, &a, file).await,
        None => send_one(&api, &a).await,
    }
}

async fn send_one(api: &Api, a: &SendArgs) -> anyhow::Result<bool> {
    let Some(to) = &a.to else {
        bail!("give --to (a phone number) and --text or --template; or --csv FILE --template NAME");
    };
    let mut body = match (&a.text, &a.template) {
        (Some(text), None) => json!({"to": to, "type": "text", "text": {"body": text}}),
        (None, Some(name)) => {
            let values: Vec<_> = a.params.iter().map(|p| split_param(p)).collect();
            json!({"to": to, "type": "template", "template": template_body(name, &a.lang, &values)})
        }
        _ => bail!("give either --text or --template"),
    };
    if let Some(acc) = &a.account {
        body["account"] = json!(acc);
    }
    let m = api.call(reqwest::Method::POST, "/v1/messages", Some(body)).await?;
    let id = m["id"].as_str().unwrap_or_default().to_string();
    println!("{id} queued to {to}");
    if a.wait.is_zero() {
        return Ok(true);
    }
    let deadline = Instant::now() + a.wait;
    let mut last = String::new();
    loop {
        let m = api
            .call(reqwest::Method::GET, &format!("/v1/messages/{id}"), None)
            .await?;
        let status = m["status"].as_str().unwrap_or_default().to_string();
        if status != last {
            println!("{id} {status}");
            if status == "failed" {
                println!("  {}", m["error"]);
            }
            last = status.clone();
        }
        if settled(&status) || Instant::now() >= deadline {
            return Ok(status != "failed" && status != "unknown");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

struct Row {
    line: u64,
    body: Value,
}

async fn send_csv(api: &Api, a: &SendArgs, file: &Path) -> anyhow::Result<bool> {
    let Some(template) = &a.template else {
        bail!("a CSV sends a template: give --template NAME (and --lang CODE)");
    };
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_path(file)
        .with_context(|| format!("cannot read {}", file.display()))?;
    let headers: Vec<String> = reader
        .headers()
        .with_context(|| format!("{}: no header row", file.display()))?
        .iter()
        .map(str::to_string)
        .collect();
    let column = |name: &str| headers.iter().position(|h| h == name);
    let Some(to_at) = column(&a.to_column) else {
        bail!(
            "{}: no column `{}` for the recipient (columns: {}); name it with --to-column",
            file.display(),
            a.to_column,
            headers.join(", ")
        );
    };
    // Which column fills which parameter: --param, else every other column in order.
    let mapping: Vec<(Option<String>, usize)> = if a.params.is_empty() {
        (0..headers.len()).filter(|i| *i != to_at).map(|i| (None, i)).collect()
    } else {
        let mut m = Vec::new();
        for p in &a.params {
            let (name, col) = split_param(p);
            let Some(i) = column(&col) else {
                bail!("--param {p}: no column `{col}` (columns: {})", headers.join(", "));
            };
            m.push((name, i));
        }
        m
    };

    let mut rows = Vec::new();
    let mut bad: Vec<(u64, String)> = Vec::new();
    let mut records = 0usize;
    for record in reader.records() {
        records += 1;
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                bad.push((line, format!("not valid CSV: {e}")));
                continue;
            }
        };
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        let cells: Vec<String> = record.iter().map(str::to_string).collect();
        let cell = |i: usize| cells.get(i).cloned().unwrap_or_default();
        let to = cell(to_at);
        if to.is_empty() {
            bad.push((line, format!("the `{}` column is empty", a.to_column)));
            continue;
        }
        let values: Vec<(Option<String>, String)> = mapping.iter().map(|(n, i)| (n.clone(), cell(*i))).collect();
        if let Some((_, i)) = mapping.iter().find(|(_, i)| cell(*i).is_empty()) {
            bad.push((
                line,
                format!("the `{}` column is empty (a template parameter)", headers[*i]),
            ));
            continue;
        }
        let mut body = json!({"to": to, "type": "template", "template": template_body(template, &a.lang, &values),
            "idempotency_key": row_key(file, line, &cells)});
        if let Some(acc) = &a.account {
            body["account"] = json!(acc);
        }
        rows.push(Row { line, body });
    }

    let total = rows.len() as u64;
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:40}] {pos}/{len} {msg} ({per_sec}, ETA {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    // Queue, batch by batch.
    let mut ids: Vec<(u64, String)> = Vec::new();
    let mut replayed = 0usize;
    for chunk in rows.chunks(BATCH) {
        let messages: Vec<Value> = chunk.iter().map(|r| r.body.clone()).collect();
        let answer = api
            .call(
                reqwest::Method::POST,
                "/v1/messages/batch",
                Some(json!({ "messages": messages })),
            )
            .await?;
        for item in answer["data"].as_array().into_iter().flatten() {
            let index = item["index"].as_u64().unwrap_or(0) as usize;
            let line = chunk.get(index).map(|r| r.line).unwrap_or(0);
            match item["message"]["id"].as_str() {
                Some(id) => {
                    ids.push((line, id.to_string()));
                    replayed += usize::from(item["replayed"] == true);
                }
                None => {
                    let e = &item["error"];
                    bad.push((
                        line,
                        format!(
                            "{} ({})",
                            e["message"].as_str().unwrap_or("refused"),
                            e["hint"].as_str().unwrap_or("")
                        ),
                    ));
                }
            }
        }
        bar.set_message(format!("queued {}", ids.len()));
    }
    bad.sort();
    for (line, why) in &bad {
        // A hidden bar (output not a terminal) prints nothing itself.
        if bar.is_hidden() {
            println!("line {line}: {why}");
        } else {
            bar.println(format!("line {line}: {why}"));
        }
    }
    bar.set_length(ids.len() as u64);

    // Follow until every message settled, or the wait ran out.
    let mut statuses: BTreeMap<String, String> = BTreeMap::new();
    let deadline = Instant::now() + a.wait;
    let mut pending: Vec<String> = ids.iter().map(|(_, id)| id.clone()).collect();
    loop {
        let mut still = Vec::new();
        for group in pending.chunks(16) {
            let mut calls = tokio::task::JoinSet::new();
            for id in group {
                let (api, id) = (api.clone(), id.clone());
                calls.spawn(async move {
                    let m = api
                        .call(reqwest::Method::GET, &format!("/v1/messages/{id}"), None)
                        .await;
                    (id, m.map(|m| m["status"].as_str().unwrap_or_default().to_string()))
                });
            }
            while let Some(done) = calls.join_next().await {
                let (id, status) = done.context("a status request failed")?;
                let status = status?;
                if !settled(&status) {
                    still.push(id.clone());
                }
                statuses.insert(id, status);
            }
        }
        pending = still;
        let count = |s: &[&str]| statuses.values().filter(|v| s.contains(&v.as_str())).count();
        let sent = count(&["accepted", "sent", "delivered", "read", "played"]);
        let delivered = count(&["delivered", "read", "played"]);
        let failed = count(&["failed", "cancelled", "unknown"]);
        bar.set_position((ids.len() - pending.len()) as u64);
        bar.set_message(format!(
            "queued {} sent {sent} delivered {delivered} failed {failed}",
            ids.len()
        ));
        if pending.is_empty() || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    bar.finish();

    let mut by_status: BTreeMap<&str, usize> = BTreeMap::new();
    for s in statuses.values() {
        *by_status.entry(s.as_str()).or_default() += 1;
    }
    println!();
    println!("{:<24} {:>8}", "rows", records);
    println!("{:<24} {:>8}", "bad rows (not sent)", bad.len());
    println!("{:<24} {:>8}", "queued", ids.len());
    println!("{:<24} {:>8}", "  of which from a run before", replayed);
    for (status, n) in &by_status {
        println!("{:<24} {:>8}", format!("  {status}"), n);
    }
    if !pending.is_empty() {
        println!(
            "{} messages had not settled when --wait ran out; they are still being sent",
            pending.len()
        );
    }
    let failed = by_status.get("failed").copied().unwrap_or(0) + by_status.get("unknown").copied().unwrap_or(0);
    Ok(bad.is_empty() && failed == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_are_positional_or_named() {
        assert_eq!(split_param("Ana"), (None, "Ana".into()));
        assert_eq!(split_param("first_name=Ana"), (Some("first_name".into()), "Ana".into()));
        assert_eq!(split_param("a b=c"), (None, "a b=c".into()));
        let t = template_body("order", "en_US", &[(None, "1042".into())]);
        assert_eq!(
            t["components"][0]["parameters"][0],
            json!({"type": "text", "text": "1042"})
        );
    }

    #[test]
    fn a_row_keeps_its_key_across_runs_and_an_edit_changes_it() {
        let f = Path::new("/tmp/x.csv");
        let row = vec!["+16505551234".to_string(), "Ana".to_string()];
        assert_eq!(row_key(f, 2, &row), row_key(f, 2, &row));
        assert_ne!(row_key(f, 2, &row), row_key(f, 3, &row));
        assert_ne!(
            row_key(f, 2, &row),
            row_key(f, 2, &["+16505551234".into(), "Bo".into()])
        );
    }
}
