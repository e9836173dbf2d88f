//! Sandbox mode and `wagate sim`: the simulator stands in for Meta.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use wagate_engine::config::{AccountConfig, Config};
use wagate_sim::{SimConfig, Simulator};

pub struct RunningSim {
    pub addr: SocketAddr,
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

impl RunningSim {
    pub async fn stop(self) {
        self.cancel.cancel();
        let _ = self.task.await;
    }
}

/// Starts the in-process simulator and points the configuration at it.
pub async fn start(config: &mut Config, api_addr: SocketAddr) -> anyhow::Result<RunningSim> {
    let listener = tokio::net::TcpListener::bind(&config.sandbox.sim_bind)
        .await
        .with_context(|| {
            format!(
                "listening on {} for the simulator (WAGATE_SIM_BIND)",
                config.sandbox.sim_bind
            )
        })?;
    let addr = listener.local_addr()?;
    let sim_config = SimConfig {
        access_token: wagate_core::ids::secret("sandbox-token-", 12),
        app_secret: wagate_core::ids::secret("", 16),
        webhook_url: Some(format!("http://{api_addr}/webhooks/whatsapp")),
        status_delays: config.sandbox.status_delays_ms.map(Duration::from_millis),
        // As at Meta, the app is not subscribed to the WABA yet: the sandbox subscribes it as it
        // starts, as Connect WhatsApp does (`subscribe_app`).
        subscribed_at_start: false,
        ..SimConfig::default()
    };
    config.graph_url = format!("http://{addr}");
    // Secrets need a master key; a SQLite database keeps one beside it, any other one here, in
    // the data directory.
    if config.master_key.is_none() && wagate_store::master_key_path(&config.database_url).is_none() {
        config.master_key = Some(wagate_engine::key_file(std::path::Path::new("wagate.master.key"))?);
    }
    // "Connect WhatsApp" goes through the simulator's dialog, as the simulator's app.
    config.meta.app_id = sim_config.app_id.clone();
    config.meta.app_secret = Some(sim_config.app_secret.clone());
    config.meta.dialog_url = format!("http://{addr}");
    // Sign-in with JWTs: the simulator's stand-in issuer, unless one is configured.
    if !config.auth.jwt.enabled() {
        config.auth.jwt.issuer = format!("http://{addr}/_sim/oidc");
        config.auth.jwt.audience = "wagate".into();
        config.auth.jwt.jwks_url = format!("http://{addr}/_sim/oidc/jwks.json");
    }
    // In the sandbox, the receiver of a hook is a developer's local service.
    config.hooks.allow_private_networks = true;
    // A second account (connected through the dialog, say) must not break requests that name
    // none: they keep acting for the sandbox's own.
    config.default_account.get_or_insert_with(|| "sandbox".into());
    config.accounts = vec![AccountConfig {
        name: "sandbox".into(),
        waba_id: sim_config.waba_id.clone(),
        phone_number_ids: vec![sim_config.phone_number_id.clone()],
        access_token: Some(sim_config.access_token.clone()),
        access_token_file: None,
        messages_per_second: None,
        app_secret: Some(sim_config.app_secret.clone()),
        app_secret_file: None,
        verify_token: Some(wagate_core::ids::secret("", 8)),
        verify_token_file: None,
    }];
    let cancel = CancellationToken::new();
    let stop = cancel.clone();
    let sim = Simulator::new(sim_config);
    let task = tokio::spawn(async move {
        if let Err(e) = sim.serve(listener, async move { stop.cancelled().await }).await {
            tracing::error!(error = %e, "simulator stopped");
        }
    });
    Ok(RunningSim { addr, cancel, task })
}

pub fn print_banner(
    api: SocketAddr,
    sim: &RunningSim,
    key: Option<&str>,
    database_url: &str,
    data_dir: &std::path::Path,
    master_key_given: bool,
    jwt_issuer: &str,
) {
    let data_dir = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
    let data_dir = data_dir.display();
    let key = key.unwrap_or("<the key in WAGATE_BOOTSTRAP_API_KEY>");
    let secrets = match (master_key_given, wagate_store::master_key_path(database_url)) {
        (true, _) => "sealed under WAGATE_MASTER_KEY".to_string(),
        (false, Some(path)) => format!(
            "sealed under the master key in {} (made at the first start)",
            path.display()
        ),
        (false, None) => "sealed under the master key in wagate.master.key (made at the first start)".to_string(),
    };
    let user = "16505551234";
    println!(
        r#"
wagate {version} is running in SANDBOX MODE: no Meta credentials are configured, so a simulator
stands in for Meta's Cloud API. Set WHATSAPP_ACCESS_TOKEN etc. to talk to Meta for real.

  API        http://{api}/v1
  API key    {key}
  Simulator  http://{sim}   (Graph API stand-in; control API under /_sim/)
  Database   {database_url}
  Data dir   {data_dir}   (WAGATE_DATA_DIR: where the CLI finds the database, its key and wagate.toml)
  Secrets    {secrets}
  Sign-in    JWTs from {jwt_issuer} are taken too

1. Send a first message (a template, as the first message to a user must be):

curl -s http://{api}/v1/messages -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' -d '{{"to":"+{user}","type":"template","template":{{"name":"hello_world","language":{{"code":"en_US"}}}}}}'

2. Make the simulated user reply (this opens the 24-hour window for free-form messages):

curl -s http://{sim}/_sim/users/{user}/messages -H 'Content-Type: application/json' -d '{{"type":"text","text":{{"body":"Hi! Where is my order?"}},"profile_name":"Sheena Nelson"}}'

3. See the reply as an event:

curl -s 'http://{api}/v1/events?type=message.received' -H 'Authorization: Bearer {key}'
"#,
        version = env!("CARGO_PKG_VERSION"),
        sim = sim.addr,
    );
}

/// `wagate sim`: the simulator alone, configured by the same variables as the gateway.
pub async fn run_standalone(bind: Option<String>) -> anyhow::Result<()> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let defaults = SimConfig::default();
    let delays = env("WAGATE_SIM_STATUS_DELAYS_MS")
        .map(|v| {
            let parts: Vec<u64> = v.split(',').filter_map(|p| p.trim().parse().ok()).collect();
            match parts.as_slice() {
                [a, b, c] => Ok([*a, *b, *c].map(Duration::from_millis)),
                _ => Err(anyhow::anyhow!(
                    "WAGATE_SIM_STATUS_DELAYS_MS=`{v}`: give three millisecond values, e.g. 300,300,300"
                )),
            }
        })
        .transpose()?
        .unwrap_or(defaults.status_delays);
    let retry_scale = env("WAGATE_SIM_WEBHOOK_RETRY_SCALE")
        .map(|v| match v.trim().parse::<f64>() {
            Ok(x) if x > 0.0 && x <= 1.0 => Ok(x),
            _ => Err(anyhow::anyhow!(
                "WAGATE_SIM_WEBHOOK_RETRY_SCALE=`{v}`: give a number above 0 and at most 1, e.g. 0.001 to replay Meta's seven days of retries in ten minutes"
            )),
        })
        .transpose()?
        .unwrap_or(defaults.webhook_retry_scale);
    let webhook_version = env("WAGATE_SIM_WEBHOOK_VERSION").unwrap_or(defaults.webhook_version);
    if !webhook_version.starts_with('v') || !webhook_version[1..].split('.').all(|p| p.parse::<u32>().is_ok()) {
        anyhow::bail!("WAGATE_SIM_WEBHOOK_VERSION=`{webhook_version}`: give a Graph version such as v23.0");
    }
    let config = SimConfig {
        access_token: env("WHATSAPP_ACCESS_TOKEN").unwrap_or(defaults.access_token),
        app_id: env("WAGATE_META_APP_ID").unwrap_or(defaults.app_id),
        app_secret: env("WAGATE_META_APP_SECRET")
            .or_else(|| env("WHATSAPP_APP_SECRET"))
            .unwrap_or(defaults.app_secret),
        waba_id: env("WHATSAPP_WABA_ID")
            .or_else(|| env("WHATSAPP_BUSINESS_ACCOUNT_ID"))
            .unwrap_or(defaults.waba_id),
        phone_number_id: env("WHATSAPP_PHONE_NUMBER_ID").unwrap_or(defaults.phone_number_id),
        display_phone_number: defaults.display_phone_number,
        verified_name: defaults.verified_name,
        webhook_url: env("WAGATE_SIM_WEBHOOK_URL"),
        status_delays: delays,
        webhook_version,
        webhook_retry_scale: retry_scale,
        connectable: defaults.connectable,
        subscribed_at_start: true,
    };
    let bind = bind
        .or_else(|| env("WAGATE_SIM_BIND"))
        .unwrap_or_else(|| "127.0.0.1:8090".into());
    let listener = tokio::net::TcpListener::bind(&bind)
        .await
        .with_context(|| format!("listening on {bind}"))?;
    let addr = listener.local_addr()?;
    println!(
        "wagate simulator on http://{addr} — phone_number_id {} in WABA {}, webhooks to {}",
        config.phone_number_id,
        config.waba_id,
        config
            .webhook_url
            .as_deref()
            .unwrap_or("(none: set WAGATE_SIM_WEBHOOK_URL)")
    );
    let sim = Simulator::new(config);
    sim.serve(listener, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
