//! `wagate events replay`: delivers past events to a hook again, through the REST API of a
//! running gateway. The range is queued in slices (`POST /v1/hooks/{id}/replay`), then the
//! deliveries are followed until they drained; both with a progress bar (rate, ETA) and a summary.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};
use wagate_core::time::{parse_time_ms, rfc3339_ms};

pub struct ReplayArgs {
    pub url: String,
    pub api_key: String,
    pub hook: String,
    pub since: String,
    pub until: Option<String>,
    pub only_failed: bool,
    /// How long to follow the deliveries after queueing them.
    pub wait: Duration,
}

/// The slices a range is queued in: about a hundred, at least a minute each.
fn slices(since: i64, until: i64) -> Vec<(i64, i64)> {
    let step = ((until - since) / 100).max(60_000);
    let mut out = Vec::new();
    let mut at = since;
    while at < until {
        out.push((at, (at + step).min(until)));
        at += step;
    }
    out
}

/// A running gateway's REST API, for the CLI's commands.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl Api {
    pub fn new(base: &str, key: &str) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: base.trim_end_matches('/').to_string(),
            key: key.to_string(),
        }
    }

    /// Calls the API; a non-2xx answer becomes an error with the gateway's message and hint.
    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("cannot reach {}", self.base))?;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let e = &body["error"];
            // The gateway asks for an account in the request's terms; here it is a flag.
            if let (Some("account"), Some(names)) =
                (e["details"]["field"].as_str(), e["details"]["accounts"].as_array())
            {
                let names: Vec<&str> = names.iter().filter_map(Value::as_str).collect();
                bail!(
                    "several accounts are configured ({}) and none was named: give --account {}, or set default_account (WAGATE_DEFAULT_ACCOUNT) on the gateway",
                    names.join(", "),
                    names.first().unwrap_or(&"NAME")
                );
            }
            bail!(
                "{path}: HTTP {status} {}: {} ({})",
                e["code"].as_str().unwrap_or("error"),
                e["message"].as_str().unwrap_or("no message"),
                e["hint"].as_str().unwrap_or("no hint")
            );
        }
        Ok(body)
    }

    async fn health(&self, hook: &str) -> anyhow::Result<(i64, i64, bool)> {
        let h = self
            .call(reqwest::Method::GET, &format!("/v1/hooks/{hook}"), None)
            .await?;
        Ok((
            h["health"]["pending"].as_i64().unwrap_or(0),
            h["health"]["failed"].as_i64().unwrap_or(0),
            h["enabled"].as_bool().unwrap_or(false),
        ))
    }
}

fn bar(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    let style = ProgressStyle::with_template(&format!(
        "{{elapsed_precise}} [{{bar:40}}] {{pos}}/{{len}} {what} ({{per_sec}}, ETA {{eta}})"
    ))
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    bar.set_style(style);
    bar
}

pub async fn run(a: ReplayArgs) -> anyhow::Result<()> {
    let since = parse_time_ms(&a.since).with_context(|| {
        format!(
            "--since `{}` is not a time: use RFC 3339 (2026-01-31T12:00:00Z) or unix seconds",
            a.since
        )
    })?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64;
    let until = match &a.until {
        Some(u) => parse_time_ms(u).with_context(|| format!("--until `{u}` is not a time"))?,
        None => now + 1,
    };
    if until <= since {
        bail!("--until is not after --since: the range is empty");
    }
    let api = Api {
        http: reqwest::Client::builder().timeout(Duration::from_secs(60)).build()?,
        base: a.url.trim_end_matches('/').to_string(),
        key: a.api_key.clone(),
    };
    let started = Instant::now();
    let (pending_before, failed_before, enabled) = api.health(&a.hook).await?;
    if !enabled {
        bail!(
            "hook {} is disabled: enable it first (POST /v1/hooks/{}/enable)",
            a.hook,
            a.hook
        );
    }

    let parts = slices(since, until);
    let queueing = bar(parts.len() as u64, "slices queued");
    let mut queued = 0u64;
    for (from, to) in &parts {
        let r = api
            .call(
                reqwest::Method::POST,
                &format!("/v1/hooks/{}/replay", a.hook),
                Some(json!({"since": rfc3339_ms(*from), "until": rfc3339_ms(*to), "only_failed": a.only_failed})),
            )
            .await?;
        queued += r["queued"].as_u64().unwrap_or(0);
        queueing.set_message(queued.to_string());
        queueing.inc(1);
    }
    queueing.finish_and_clear();
    eprintln!(
        "queued {queued} deliveries to hook {} in {:.1} s",
        a.hook,
        started.elapsed().as_secs_f64()
    );

    let delivering = bar(queued, "delivered");
    let deadline = Instant::now() + a.wait;
    let (mut pending, mut failed) = (pending_before + queued as i64, failed_before);
    while queued > 0 && Instant::now() < deadline {
        let (p, f, on) = api.health(&a.hook).await?;
        (pending, failed) = (p, f);
        let left = (pending - pending_before).clamp(0, queued as i64) as u64;
        delivering.set_position(queued - left);
        if left == 0 || !on {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    delivering.finish_and_clear();
    let left = (pending - pending_before).clamp(0, queued as i64);
    println!(
        "replayed {queued} events to hook {}: {} delivered, {} still pending, {} failed for good, in {:.1} s",
        a.hook,
        queued as i64 - left,
        left,
        (failed - failed_before).max(0),
        started.elapsed().as_secs_f64()
    );
    if left > 0 {
        eprintln!(
            "the rest goes out by the hook's retry schedule; follow it with GET /v1/hooks/{}/attempts",
            a.hook
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_cut_into_slices_that_cover_them() {
        let s = slices(0, 3_600_000);
        assert_eq!(s.len(), 60, "a minute at least");
        assert_eq!(s.first().map(|p| p.0), Some(0));
        assert_eq!(s.last().map(|p| p.1), Some(3_600_000));
        assert!(s.windows(2).all(|w| w[0].1 == w[1].0), "no gap, no overlap");
        assert_eq!(slices(0, 1000), vec![(0, 1000)]);
        assert_eq!(slices(0, 86_400_000 * 30).len(), 100);
    }
}
