//! The last day's activity, per hour, and its failures grouped by Meta's error code.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{Activity, FailureGroup, Hour};
use crate::auth::Caller;
use crate::clock::now_ms;
use crate::error::EngineResult;
use crate::state::Engine;

const HOUR_MS: i64 = 3_600_000;

/// The last 24 hours of the accounts the caller sees, from the hourly counts kept as messages
/// and statuses are recorded (a few rows, however busy the day).
pub async fn last_day(state: &Engine, caller: &Caller) -> EngineResult<Activity> {
    caller.require("read")?;
    // What was written since the last count is counted first, so the chart is never behind.
    catch_up(state).await?;
    let scope = wagate_store::AccountScope {
        account_id: caller.account_id.clone().map(String::from),
        account_ids: caller.account_ids(),
    };
    count(state, &scope).await
}

async fn count(state: &Engine, scope: &wagate_store::AccountScope) -> EngineResult<Activity> {
    let now_hour = now_ms() / HOUR_MS;
    let first = now_hour - 23;
    let mut hours: Vec<Hour> = (first..=now_hour)
        .map(|h| Hour {
            start_ms: h * HOUR_MS,
            ..Hour::default()
        })
        .collect();
    for c in state.store.activity(scope, first * HOUR_MS).await? {
        let Some(hour) = usize::try_from(c.hour - first).ok().and_then(|i| hours.get_mut(i)) else {
            continue;
        };
        match c.kind.as_str() {
            "received" => hour.received += c.count,
            "sent" => hour.sent += c.count,
            "delivered" => hour.delivered += c.count,
            "read" | "played" => hour.read += c.count,
            "failed" => hour.failed += c.count,
            _ => {}
        }
    }
    let mut groups: BTreeMap<String, FailureGroup> = BTreeMap::new();
    for error in state.store.recent_failures(scope, first * HOUR_MS, 1000).await? {
        let e: Value = serde_json::from_str(&error).unwrap_or(Value::Null);
        let code = match &e["code"] {
            Value::Number(n) => n.to_string(),
            Value::String(s) => s.clone(),
            _ => "unknown".into(),
        };
        let text = |k: &str| e[k].as_str().unwrap_or_default().to_string();
        groups
            .entry(code.clone())
            .or_insert_with(|| FailureGroup {
                code,
                title: text("title"),
                hint: text("hint"),
                count: 0,
            })
            .count += 1;
    }
    let mut failures: Vec<FailureGroup> = groups.into_values().collect();
    failures.sort_by(|a, b| b.count.cmp(&a.count).then(a.code.cmp(&b.code)));
    Ok(Activity { hours, failures })
}

/// Counts what the event log holds that the hourly counts do not yet (a few statements per
/// thousand events).
pub async fn catch_up(state: &Engine) -> Result<(), wagate_store::StoreError> {
    while state.store.count_new_events(2_000).await? == 2_000 {}
    Ok(())
}

/// Keeps the hourly counts up with the event log, until cancelled.
pub async fn run(state: Engine, cancel: tokio_util::sync::CancellationToken) {
    let mut written = state.events_written.subscribe();
    loop {
        if let Err(e) = catch_up(&state).await {
            tracing::warn!(error = %e, "could not count the hour's activity; will retry");
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = written.changed() => {}
            _ = tokio::time::sleep(std::time::Duration::from_secs(5)) => {}
        }
        // At most one count a second: a busy log is counted in large steps.
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}
