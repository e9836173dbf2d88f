//! `wagate keys list|revoke|rotate`: API keys, managed straight in the database (like
//! `wagate keys create`), so that they work when no key does.

use anyhow::Context;
use wagate_core::time::rfc3339_ms;
use wagate_engine::config::Config;
use wagate_store::ApiKey;

/// The key named by id, or by name when exactly one active key has that name.
async fn find(store: &dyn wagate_store::Store, key: &str, now: i64) -> anyhow::Result<ApiKey> {
    if let Some(k) = store.get_api_key(key).await? {
        return Ok(k);
    }
    let named: Vec<ApiKey> = store
        .list_api_keys()
        .await?
        .into_iter()
        .filter(|k| k.name == key && k.is_active(now))
        .collect();
    match named.as_slice() {
        [one] => Ok(one.clone()),
        [] => anyhow::bail!("no API key with id or (active) name `{key}`; `wagate keys list` shows them"),
        many => anyhow::bail!(
            "{} active keys are named `{key}` ({}); after `wagate keys rotate` the old one works beside the new one until its grace ends: give the id of the one to revoke, or --all to revoke every one",
            many.len(),
            many.iter().map(|k| &*k.id).collect::<Vec<_>>().join(", ")
        ),
    }
}

fn state(k: &ApiKey, now: i64) -> &'static str {
    match () {
        _ if k.revoked_at.is_some() => "revoked",
        _ if !k.is_active(now) => "expired",
        _ => "active",
    }
}

pub async fn list(config: &Config) -> anyhow::Result<()> {
    let store = super::open_store(config, false).await?;
    let accounts = store.list_accounts().await?;
    let now = wagate_engine::now_ms();
    let day = |t: Option<i64>| t.map_or("-".to_string(), |t| rfc3339_ms(t)[..16].replace('T', " "));
    println!(
        "{:<38} {:<16} {:<8} {:<16} {:<10} {:<17} {:<17} STATE",
        "ID", "NAME", "PREFIX", "SCOPES", "ACCOUNT", "LAST USED", "EXPIRES"
    );
    for k in store.list_api_keys().await? {
        let account = match k.account_id.as_deref() {
            None => "(all)".to_string(),
            Some(id) => accounts
                .iter()
                .find(|a| a.id == id)
                .map_or(id.to_string(), |a| a.name.clone()),
        };
        println!(
            "{:<38} {:<16} {:<8} {:<16} {:<10} {:<17} {:<17} {}",
            k.id,
            k.name,
            k.prefix,
            k.scopes,
            account,
            day(k.last_used_at),
            day(k.expires_at),
            state(&k, now)
        );
    }
    Ok(())
}

/// Revokes the key named by id or (active) name; `all`: every active key of that name (a key
/// and the one that replaced it, during a rotation's grace).
pub async fn revoke(config: &Config, key: &str, all: bool) -> anyhow::Result<()> {
    let store = super::open_store(config, false).await?;
    let now = wagate_engine::now_ms();
    let keys = match all {
        false => vec![find(store.as_ref(), key, now).await?],
        true => {
            let named: Vec<ApiKey> = store
                .list_api_keys()
                .await?
                .into_iter()
                .filter(|k| (k.name == key || *k.id == *key) && k.is_active(now))
                .collect();
            if named.is_empty() {
                anyhow::bail!("no active API key with id or name `{key}`; `wagate keys list` shows them");
            }
            named
        }
    };
    for k in keys {
        if !store.revoke_api_key(&k.id, now).await? {
            anyhow::bail!("the API key {} (`{}`) is revoked already", k.id, k.name);
        }
        let details = serde_json::json!({"name": k.name});
        wagate_engine::audit::record_cli(
            store.as_ref(),
            "key.revoked",
            Some(&k.id),
            k.account_id.as_deref(),
            details,
        )
        .await;
        println!("revoked {} (`{}`); it stops working at once", k.id, k.name);
    }
    Ok(())
}

pub async fn rotate(config: &Config, key: &str, grace_seconds: u32) -> anyhow::Result<()> {
    let store = super::open_store(config, false).await?;
    let now = wagate_engine::now_ms();
    let old = find(store.as_ref(), key, now).await?;
    if !old.is_active(now) {
        anyhow::bail!(
            "the API key {} (`{}`) is {}; create a new one with `wagate keys create`",
            old.id,
            old.name,
            state(&old, now)
        );
    }
    let (secret, new) = wagate_engine::auth::rotate_key(store.as_ref(), &old, i64::from(grace_seconds) * 1000, now)
        .await
        .context("rotating the key")?;
    let details = serde_json::json!({"name": old.name, "replaced_by": new.id, "grace_seconds": grace_seconds});
    wagate_engine::audit::record_cli(
        store.as_ref(),
        "key.rotated",
        Some(&old.id),
        old.account_id.as_deref(),
        details,
    )
    .await;
    println!("{secret}");
    match grace_seconds {
        0 => eprintln!(
            "API key `{}` rotated: {} replaces {}, which stopped working; the new key is shown only this once.",
            new.name, new.id, old.id
        ),
        s => eprintln!(
            "API key `{}` rotated: {} replaces {}, which keeps working for {s} s; the new key is shown only this once.",
            new.name, new.id, old.id
        ),
    }
    Ok(())
}
