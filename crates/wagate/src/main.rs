//! The `wagate` binary: commands and wiring only.
#![forbid(unsafe_code)]

mod backup;
mod keys;
mod replay;
mod sandbox;
mod send;
mod usage;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use wagate_engine::config::{Config, Overrides, DEFAULT_TOML};
use wagate_engine::KeyPolicy;
use wagate_http::Gateway;

/// jemalloc: the gateway allocates many small, short-lived buffers on several threads (request
/// bodies, JSON values, rows); glibc's allocator spent about a tenth of the machine on them.
/// It is the whole process's `malloc` (the `unprefixed_malloc_on_supported_platforms` feature),
/// so SQLite allocates from it too, rather than from a glibc arena per connection thread: about
/// 5% less CPU per webhook in the ingest benchmark. It runs with one arena (`.cargo/config.toml`
/// says why).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(
    name = "wagate",
    version,
    about = "Self-hosted WhatsApp Business Cloud API gateway",
    propagate_version = true
)]
struct Cli {
    /// Configuration file (TOML); also WAGATE_CONFIG.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway. Without Meta credentials it runs in sandbox mode with the simulator.
    Serve {
        /// Listen address (overrides WAGATE_BIND).
        #[arg(long)]
        bind: Option<String>,
        /// Database URL (overrides WAGATE_DATABASE_URL).
        #[arg(long)]
        database_url: Option<String>,
    },
    /// Run the Meta simulator alone (for your own tests and local development).
    Sim {
        /// Listen address (overrides WAGATE_SIM_BIND).
        #[arg(long)]
        bind: Option<String>,
    },
    /// Configuration: print the effective one (the default), the commented defaults, or check it.
    Config {
        #[command(subcommand)]
        command: Option<ConfigCommand>,
    },
    /// API keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Secrets sealed in the database: make a master key, or seal everything under a new one.
    Secrets {
        #[command(subcommand)]
        command: SecretsCommand,
    },
    /// Events: replay them to a hook.
    Events {
        #[command(subcommand)]
        command: EventsCommand,
    },
    /// A consistent copy of a SQLite gateway's databases and local media, taken while it runs.
    Backup {
        /// An empty (or new) directory.
        dir: PathBuf,
        /// Database URL (overrides WAGATE_DATABASE_URL).
        #[arg(long)]
        database_url: Option<String>,
    },
    /// Puts a backup's databases and media in place (never over a database that is there).
    Restore {
        /// The backup's directory.
        dir: PathBuf,
        /// Database URL (overrides WAGATE_DATABASE_URL).
        #[arg(long)]
        database_url: Option<String>,
    },
    /// Rate cards: load Meta's rates (through a running gateway's API).
    Rates {
        #[command(subcommand)]
        command: RatesCommand,
    },
    /// What the month's messages cost, grouped (through a running gateway's API).
    Usage {
        /// The month, YYYY-MM (default: this month so far).
        #[arg(long)]
        month: Option<String>,
        /// The first day, YYYY-MM-DD (instead of --month).
        #[arg(long)]
        from: Option<String>,
        /// The last day, YYYY-MM-DD, included.
        #[arg(long)]
        to: Option<String>,
        /// Group by: day, account, number, tenant, category, market, type (comma-separated).
        #[arg(long, default_value = "category")]
        by: String,
        /// The gateway's address.
        #[arg(long, env = "WAGATE_URL", default_value = "http://127.0.0.1:8080")]
        url: String,
        /// An API key with read.
        #[arg(long, env = "WAGATE_API_KEY", hide_env_values = true)]
        api_key: String,
    },
    /// Send one message, or a template to every row of a CSV file (through a running gateway's
    /// API), with live progress, a summary, and resume: run it again and each row goes once.
    Send {
        /// The recipient's phone number (one message).
        #[arg(long)]
        to: Option<String>,
        /// A text message.
        #[arg(long)]
        text: Option<String>,
        /// A template's name.
        #[arg(long)]
        template: Option<String>,
        /// The template's language code.
        #[arg(long, default_value = "en_US")]
        lang: String,
        /// One message: a parameter value (`value` or `name=value`), in placeholder order.
        /// CSV: the column that fills a parameter (`column` or `name=column`); default: every
        /// column but the recipient's, in order.
        #[arg(long = "param")]
        params: Vec<String>,
        /// A CSV file with a header row: one message per row.
        #[arg(long)]
        csv: Option<PathBuf>,
        /// The CSV column with the recipient's phone number.
        #[arg(long, default_value = "to")]
        to_column: String,
        /// The account (name or id), when the gateway has several.
        #[arg(long)]
        account: Option<String>,
        /// Seconds to follow the messages after queueing them (0: do not follow).
        #[arg(long, default_value_t = 600)]
        wait: u64,
        /// The gateway's address.
        #[arg(long, env = "WAGATE_URL", default_value = "http://127.0.0.1:8080")]
        url: String,
        /// An API key with the send permission.
        #[arg(long, env = "WAGATE_API_KEY", hide_env_values = true, default_value = "")]
        api_key: String,
    },
    /// Check each account (or one) through a running gateway: token, WABA and numbers,
    /// registration, quality, the app's subscription and webhook, templates, clock, database.
    /// Prints ✓/✗ with the fix for each; exits 0 only when every check passes.
    Doctor {
        /// Only this account (name or id).
        #[arg(long)]
        account: Option<String>,
        /// Fix what can be fixed from here (subscribe the app to the WABA).
        #[arg(long)]
        fix: bool,
        /// The gateway's address.
        #[arg(long, env = "WAGATE_URL", default_value = "http://127.0.0.1:8080")]
        url: String,
        /// An API key (admin for --fix).
        #[arg(long, env = "WAGATE_API_KEY", hide_env_values = true, default_value = "")]
        api_key: String,
    },
    /// Accounts: list, add, delete, rotate a token, pause or resume sending (through a running
    /// gateway's API).
    Accounts {
        #[command(subcommand)]
        command: AccountsCommand,
        /// The gateway's address.
        #[arg(long, env = "WAGATE_URL", default_value = "http://127.0.0.1:8080", global = true)]
        url: String,
        /// An admin API key.
        #[arg(
            long,
            env = "WAGATE_API_KEY",
            hide_env_values = true,
            global = true,
            default_value = ""
        )]
        api_key: String,
    },
    /// Delete what is past retention (`[retention]` in the configuration) now, and print what
    /// went. The gateway also does this in the background.
    Prune {
        #[arg(long)]
        database_url: Option<String>,
    },
    /// Apply the database migrations and exit.
    Migrate {
        #[arg(long)]
        database_url: Option<String>,
    },
    /// Exit 0 when the URL answers 2xx (for container health checks).
    Healthcheck {
        #[arg(default_value = "http://127.0.0.1:8080/ready")]
        url: String,
    },
    /// Print the OpenAPI document of the REST API.
    Openapi,
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the effective configuration (file < environment < flags), each value with where it
    /// came from, secrets masked.
    Print {
        /// Listen address, as `serve --bind` would take it.
        #[arg(long)]
        bind: Option<String>,
        /// Database URL, as `serve --database-url` would take it.
        #[arg(long)]
        database_url: Option<String>,
    },
    /// Print the commented default configuration: every key, with what it does.
    Defaults,
    /// Check the configuration and print problems, one per line.
    Check,
}

#[derive(Subcommand)]
enum EventsCommand {
    /// Deliver past events to a hook again (through a running gateway's API), with progress.
    Replay {
        /// The hook's id (hook_…).
        #[arg(long)]
        hook: String,
        /// From this time: RFC 3339 (2026-01-31T12:00:00Z) or unix seconds.
        #[arg(long)]
        since: String,
        /// Up to this time; default now.
        #[arg(long)]
        until: Option<String>,
        /// Only the events whose delivery to this hook failed.
        #[arg(long)]
        only_failed: bool,
        /// The gateway's address.
        #[arg(long, env = "WAGATE_URL", default_value = "http://127.0.0.1:8080")]
        url: String,
        /// An admin API key.
        #[arg(long, env = "WAGATE_API_KEY", hide_env_values = true)]
        api_key: String,
        /// Seconds to follow the deliveries after queueing them.
        #[arg(long, default_value_t = 600)]
        wait: u64,
    },
}

#[derive(Subcommand)]
enum RatesCommand {
    /// Load a rate card from CSV (market,category,rate[,tier_from,tier_to]); checked whole.
    Import {
        /// The CSV file.
        file: PathBuf,
        /// Its currency (ISO 4217).
        #[arg(long)]
        currency: String,
        /// The first day it prices, YYYY-MM-DD.
        #[arg(long)]
        effective: String,
        /// The gateway's address.
        #[arg(long, env = "WAGATE_URL", default_value = "http://127.0.0.1:8080")]
        url: String,
        /// An admin API key of every account.
        #[arg(long, env = "WAGATE_API_KEY", hide_env_values = true)]
        api_key: String,
    },
}

#[derive(Subcommand)]
enum AccountsCommand {
    /// List the accounts and whether their sending is paused.
    List,
    /// Give an account a new access token, live; a pause Meta's answer caused ends.
    SetToken {
        /// Account name or id.
        name: String,
        /// The token; `-` reads it from standard input (keeps it out of the shell history).
        #[arg(long, default_value = "-")]
        token: String,
    },
    /// Pause an account's sending (queued messages wait; new sends answer account_paused).
    Pause {
        name: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Resume an account's sending.
    Resume { name: String },
    /// Add an account (checked with Meta; its secrets are kept sealed). The access token and
    /// app secret are read from standard input, one per line, to keep them out of the shell
    /// history. Prints the verify token for Meta's webhook settings, once.
    Create {
        name: String,
        #[arg(long)]
        waba_id: String,
        /// Only these numbers (comma-separated); default every number of the WABA.
        #[arg(long, value_delimiter = ',')]
        phone_number_ids: Vec<String>,
    },
    /// Delete an account made through the API (its history stays unless --purge).
    Delete {
        name: String,
        #[arg(long)]
        purge: bool,
    },
}

#[derive(Subcommand)]
enum SecretsCommand {
    /// Print a new random master key (base64 of 32 bytes) for WAGATE_MASTER_KEY.
    NewKey,
    /// Seal every secret in the database under WAGATE_MASTER_KEY, opening those sealed under a
    /// key in WAGATE_MASTER_KEY_PREVIOUS. Gateways keep running: give them the new key first
    /// (with the old one as previous), then run this, then drop the old key.
    Rotate {
        #[arg(long)]
        database_url: Option<String>,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create an API key and print it (it is shown only once).
    Create {
        #[arg(long, default_value = "cli")]
        name: String,
        /// Limit the key to one account (name or id); default: every account.
        #[arg(long)]
        account: Option<String>,
        /// Comma-separated permissions: send, read, admin.
        #[arg(long, default_value = "send,read")]
        scopes: String,
        /// Make the key stop working after this many days.
        #[arg(long)]
        expires_in_days: Option<u32>,
        /// The tenant the key belongs to: it sees that tenant's accounts only.
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long)]
        database_url: Option<String>,
    },
    /// List the keys (never the keys themselves): name, permissions, last use, state.
    List {
        #[arg(long)]
        database_url: Option<String>,
    },
    /// Revoke a key (by id, or by name when one active key has it): it stops working at once.
    Revoke {
        key: String,
        /// Every active key of that name (after `keys rotate`, the old and the new one).
        #[arg(long)]
        all: bool,
        #[arg(long)]
        database_url: Option<String>,
    },
    /// Replace a key with a new one like it and print the new one; the old one stops working at
    /// once, or after --grace-seconds.
    Rotate {
        key: String,
        #[arg(long, default_value_t = 0)]
        grace_seconds: u32,
        #[arg(long)]
        database_url: Option<String>,
    },
}

/// A name as one URL path segment.
fn segment(name: &str) -> String {
    url::form_urlencoded::byte_serialize(name.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

fn env_map() -> BTreeMap<String, String> {
    std::env::vars().collect()
}

fn load(config: Option<&PathBuf>, overrides: &Overrides) -> anyhow::Result<Config> {
    match Config::load(config.map(PathBuf::as_path), &env_map(), overrides) {
        Ok((c, warnings)) => {
            for w in warnings {
                eprintln!("warning: {w}");
            }
            Ok(c)
        }
        Err(e) => {
            eprint!("{e}");
            std::process::exit(2);
        }
    }
}

/// The configuration, with `--database-url` on top.
fn load_with_database(config: Option<&PathBuf>, database_url: Option<String>) -> anyhow::Result<Config> {
    load(
        config,
        &Overrides {
            database_url,
            ..Default::default()
        },
    )
}

/// Logging as `WAGATE_LOG` says (default `info,sqlx=warn`), coloured only on a terminal. A
/// value that names no level is refused (it would silently turn logging off).
fn init_tracing() {
    use std::io::IsTerminal;
    let filter = match std::env::var("WAGATE_LOG") {
        Ok(spec) => match check_log_spec(&spec).and_then(|()| {
            tracing_subscriber::EnvFilter::try_new(&spec).map_err(|e| format!("WAGATE_LOG=`{spec}`: {e}"))
        }) {
            Ok(f) => f,
            Err(why) => {
                eprintln!("error: {why}");
                std::process::exit(2);
            }
        },
        Err(_) => tracing_subscriber::EnvFilter::new("info,sqlx=warn"),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}

/// Every directive of a `WAGATE_LOG` value ends in a level: `warn`, or `wagate_engine=debug`.
fn check_log_spec(spec: &str) -> Result<(), String> {
    const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
    for directive in spec.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let level = directive.rsplit_once('=').map_or(directive, |(_, l)| l);
        if !LEVELS.iter().any(|l| l.eq_ignore_ascii_case(level)) {
            return Err(format!(
                "WAGATE_LOG=`{spec}`: `{directive}` names no level; use off, error, warn, info, debug or trace, alone or per target (info,wagate_engine=debug)"
            ));
        }
    }
    Ok(())
}

/// `wagate config print`: the effective configuration, or its problems (exit 2).
fn explain(config: Option<&PathBuf>, overrides: Overrides) -> anyhow::Result<()> {
    match wagate_engine::config::effective::explain(config.map(PathBuf::as_path), &env_map(), &overrides) {
        Ok(text) => print_out(&text),
        Err(e) => {
            eprint!("{e}");
            std::process::exit(2);
        }
    }
}

/// Writes to standard output; a reader that stopped reading (`wagate openapi | head`) ends the
/// command quietly, as a Unix tool does.
fn print_out(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// A reader that stopped reading (`wagate keys list | head -1`) ends any command quietly, as a
/// Unix tool does: `println!` panics on a closed pipe, and this hook turns that panic into exit 0.
fn end_quietly_on_closed_pipes() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let said = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if said.contains("failed printing to stdout") && said.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info)
    }));
}

fn main() -> std::process::ExitCode {
    end_quietly_on_closed_pipes();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(Cli::parse())) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One readable line with its causes, not a backtrace.
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve { bind, database_url } => {
            init_tracing();
            let config = load(cli.config.as_ref(), &Overrides { bind, database_url })?;
            serve(config).await
        }
        Command::Sim { bind } => {
            init_tracing();
            sandbox::run_standalone(bind).await
        }
        Command::Config {
            command: Some(ConfigCommand::Defaults),
        } => print_out(DEFAULT_TOML),
        Command::Config { command: None } => explain(cli.config.as_ref(), Overrides::default()),
        Command::Config {
            command: Some(ConfigCommand::Print { bind, database_url }),
        } => explain(cli.config.as_ref(), Overrides { bind, database_url }),
        Command::Config {
            command: Some(ConfigCommand::Check),
        } => {
            let c = load(cli.config.as_ref(), &Overrides::default())?;
            println!(
                "configuration is valid: {} account(s){}",
                c.accounts.len(),
                if c.is_sandbox() { " (sandbox mode)" } else { "" }
            );
            Ok(())
        }
        Command::Secrets {
            command: SecretsCommand::NewKey,
        } => {
            println!("{}", wagate_core::seal::MasterKey::generate());
            Ok(())
        }
        Command::Secrets {
            command: SecretsCommand::Rotate { database_url },
        } => {
            let config = load_with_database(cli.config.as_ref(), database_url)?;
            rotate_secrets(&config).await
        }
        Command::Keys { command } => {
            let database_url = match &command {
                KeysCommand::Create { database_url, .. }
                | KeysCommand::List { database_url }
                | KeysCommand::Revoke { database_url, .. }
                | KeysCommand::Rotate { database_url, .. } => database_url.clone(),
            };
            let config = load_with_database(cli.config.as_ref(), database_url)?;
            match command {
                KeysCommand::Create {
                    name,
                    account,
                    scopes,
                    expires_in_days,
                    tenant,
                    ..
                } => create_key(&config, &name, account.as_deref(), &scopes, expires_in_days, tenant).await,
                KeysCommand::List { .. } => keys::list(&config).await,
                KeysCommand::Revoke { key, all, .. } => keys::revoke(&config, &key, all).await,
                KeysCommand::Rotate { key, grace_seconds, .. } => keys::rotate(&config, &key, grace_seconds).await,
            }
        }
        Command::Events {
            command:
                EventsCommand::Replay {
                    hook,
                    since,
                    until,
                    only_failed,
                    url,
                    api_key,
                    wait,
                },
        } => {
            replay::run(replay::ReplayArgs {
                url,
                api_key,
                hook,
                since,
                until,
                only_failed,
                wait: Duration::from_secs(wait),
            })
            .await
        }
        Command::Backup { dir, database_url } => {
            let config = load_with_database(cli.config.as_ref(), database_url)?;
            backup::backup(&config, &dir).await
        }
        Command::Restore { dir, database_url } => {
            let config = load_with_database(cli.config.as_ref(), database_url)?;
            backup::restore(&config, &dir).await
        }
        Command::Rates {
            command:
                RatesCommand::Import {
                    file,
                    currency,
                    effective,
                    url,
                    api_key,
                },
        } => usage::import(&url, &api_key, &file, &currency, &effective).await,
        Command::Usage {
            month,
            from,
            to,
            by,
            url,
            api_key,
        } => {
            let api = replay::Api::new(&url, &api_key);
            usage::report(&api, month.as_deref(), from.as_deref(), to.as_deref(), &by).await
        }
        Command::Send {
            to,
            text,
            template,
            lang,
            params,
            csv,
            to_column,
            account,
            wait,
            url,
            api_key,
        } => {
            let all_went = send::run(send::SendArgs {
                url,
                api_key,
                account,
                to,
                text,
                template,
                lang,
                params,
                csv,
                to_column,
                wait: Duration::from_secs(wait),
            })
            .await?;
            if !all_went {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Doctor {
            account,
            fix,
            url,
            api_key,
        } => {
            if !doctor(&url, &api_key, account.as_deref(), fix).await? {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Accounts { command, url, api_key } => {
            if api_key.is_empty() {
                anyhow::bail!("give an admin API key: --api-key or WAGATE_API_KEY");
            }
            let api = replay::Api::new(&url, &api_key);
            let post = reqwest::Method::POST;
            let answer = match command {
                AccountsCommand::List => api.call(reqwest::Method::GET, "/v1/accounts", None).await?,
                AccountsCommand::SetToken { name, token } => {
                    let token = if token == "-" {
                        let mut t = String::new();
                        std::io::stdin()
                            .read_line(&mut t)
                            .context("reading the token from standard input")?;
                        t.trim().to_string()
                    } else {
                        token
                    };
                    let body = serde_json::json!({ "access_token": token });
                    api.call(
                        reqwest::Method::PUT,
                        &format!("/v1/accounts/{}/token", segment(&name)),
                        Some(body),
                    )
                    .await?
                }
                AccountsCommand::Pause { name, reason } => {
                    let body = serde_json::json!({ "reason": reason });
                    api.call(post, &format!("/v1/accounts/{}/pause", segment(&name)), Some(body))
                        .await?
                }
                AccountsCommand::Resume { name } => {
                    api.call(post, &format!("/v1/accounts/{}/resume", segment(&name)), None)
                        .await?
                }
                AccountsCommand::Create {
                    name,
                    waba_id,
                    phone_number_ids,
                } => {
                    let mut lines = std::io::stdin().lines();
                    let mut read = |what: &str| -> anyhow::Result<String> {
                        Ok(lines
                            .next()
                            .with_context(|| format!("standard input: give the {what} on its own line"))?
                            .with_context(|| format!("reading the {what}"))?
                            .trim()
                            .to_string())
                    };
                    let (token, secret) = (read("access token")?, read("app secret")?);
                    let mut body = serde_json::json!({"name": name, "waba_id": waba_id, "access_token": token, "app_secret": secret});
                    if !phone_number_ids.is_empty() {
                        body["phone_number_ids"] = serde_json::json!(phone_number_ids);
                    }
                    let made = api.call(post, "/v1/accounts", Some(body)).await?;
                    eprintln!(
                        "account `{}` added with {} number(s); in Meta's App Dashboard set the callback URL to <your gateway>{} and the verify token to {} (shown only this once)",
                        made["name"].as_str().unwrap_or(""),
                        made["phone_number_ids"].as_array().map_or(0, Vec::len),
                        made["webhook_path"].as_str().unwrap_or(""),
                        made["verify_token"].as_str().unwrap_or("")
                    );
                    made
                }
                AccountsCommand::Delete { name, purge } => {
                    let path = format!("/v1/accounts/{}?purge={purge}", segment(&name));
                    api.call(reqwest::Method::DELETE, &path, None).await?;
                    println!(
                        "deleted `{name}`{}",
                        if purge {
                            " and its history"
                        } else {
                            "; its history stays"
                        }
                    );
                    return Ok(());
                }
            };
            let accounts = match answer.get("data").and_then(|d| d.as_array()) {
                Some(list) => list.clone(),
                None => vec![answer],
            };
            for a in accounts {
                let state = match a["paused"].as_object() {
                    Some(p) => format!("paused: {}", p.get("reason").and_then(|r| r.as_str()).unwrap_or("")),
                    None => "sending".into(),
                };
                println!(
                    "{:<20} {:<24} {state}",
                    a["name"].as_str().unwrap_or(""),
                    a["id"].as_str().unwrap_or("")
                );
            }
            Ok(())
        }
        Command::Prune { database_url } => {
            let (config, store) = config_and_store(cli.config.as_ref(), database_url, false).await?;
            let started = std::time::Instant::now();
            let blobs =
                wagate_engine::media::blobs::Blobs::open(&config.media, store.clone()).map_err(anyhow::Error::msg)?;
            let p =
                wagate_engine::retention::prune_all(store.as_ref(), &config.retention, &blobs, Duration::ZERO).await?;
            let r = &config.retention;
            println!("{:<34} {:>10}", "pruned (older than)", "rows");
            for (what, days, n) in [
                ("journal, processed", r.journal_days, p.journal),
                ("events", r.events_days, p.events),
                ("hook deliveries", r.events_days, p.deliveries),
                ("hook attempts", r.events_days, p.attempts),
                ("message statuses", r.statuses_days, p.statuses),
                ("send jobs, ended", r.jobs_days, p.jobs),
                ("media", r.media_days, p.media),
            ] {
                let age = if days == 0 {
                    "kept".to_string()
                } else {
                    format!("{days} d")
                };
                println!("{:<34} {:>10}", format!("{what} ({age})"), n);
            }
            println!("{:<34} {:>10}", "idempotency keys (2 d)", p.idempotency_keys);
            println!("{:<34} {:>10}", "media files deleted", p.unreferenced_media.len());
            println!("in {:.1} s", started.elapsed().as_secs_f64());
            Ok(())
        }
        Command::Migrate { database_url } => {
            let (config, store) = config_and_store(cli.config.as_ref(), database_url, true).await?;
            println!("migrations applied ({} at {})", store.backend(), config.database_url);
            Ok(())
        }
        Command::Healthcheck { url } => {
            let resp = reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()?
                .get(&url)
                .send()
                .await;
            match resp {
                Ok(r) if r.status().is_success() => Ok(()),
                Ok(r) => {
                    eprintln!("{url}: HTTP {}", r.status());
                    std::process::exit(1)
                }
                Err(e) => {
                    eprintln!("{url}: {e}");
                    std::process::exit(1)
                }
            }
        }
        Command::Openapi => print_out(&format!(
            "{}\n",
            serde_json::to_string_pretty(&wagate_http::openapi::document())?
        )),
    }
}

/// The configuration (with `--database-url` over it) and its store, migrated.
async fn config_and_store(
    config: Option<&PathBuf>,
    database_url: Option<String>,
    may_create: bool,
) -> anyhow::Result<(Config, std::sync::Arc<dyn wagate_store::Store>)> {
    let config = load_with_database(config, database_url)?;
    let store = open_store(&config, may_create).await?;
    Ok((config, store))
}

/// The configuration's store, migrated, with the master keys the gateway would use (its key
/// file is read, never made here). `may_create`: a command that writes may start a new SQLite
/// database; one that reads (or changes what exists) refuses to make an empty one.
async fn open_store(config: &Config, may_create: bool) -> anyhow::Result<std::sync::Arc<dyn wagate_store::Store>> {
    if let Some(file) = wagate_store::sqlite_file(&config.database_url).filter(|f| !may_create && !f.exists()) {
        anyhow::bail!(
            "there is no database at {} (nothing was created): run wagate in the gateway's directory, or give --database-url or WAGATE_DATABASE_URL",
            file.display()
        );
    }
    let sealer = wagate_engine::master_keys_with(config, false)?;
    let store = wagate_store::connect(
        &config.database_url,
        &wagate_store::ConnectOptions {
            sealer,
            ..Default::default()
        },
    )
    .await
    .with_context(|| format!("opening {}", config.database_url))?;
    store.migrate().await.context("applying migrations")?;
    Ok(store)
}

/// `wagate doctor`: true when every check of every account passed.
async fn doctor(url: &str, api_key: &str, account: Option<&str>, fix: bool) -> anyhow::Result<bool> {
    if api_key.is_empty() {
        anyhow::bail!("give an API key: --api-key or WAGATE_API_KEY");
    }
    let api = replay::Api::new(url, api_key);
    let names: Vec<String> = match account {
        Some(a) => vec![a.to_string()],
        None => api.call(reqwest::Method::GET, "/v1/accounts", None).await?["data"]
            .as_array()
            .map(|list| {
                list.iter()
                    .filter_map(|a| a["name"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
    };
    if names.is_empty() {
        println!("✗ no account: configure one, or connect one (GET /v1/connect/start)");
        return Ok(false);
    }
    let mut all_ok = true;
    for name in names {
        let path = format!("/v1/accounts/{}/health", segment(&name));
        let health = match fix {
            true => {
                api.call(reqwest::Method::POST, &path, Some(serde_json::json!({"fix": true})))
                    .await?
            }
            false => api.call(reqwest::Method::GET, &path, None).await?,
        };
        println!("{name}");
        for c in health["checks"].as_array().map(Vec::as_slice).unwrap_or_default() {
            let ok = c["ok"] == true;
            println!(
                "  {} {:<13} {}",
                if ok { "✓" } else { "✗" },
                c["name"].as_str().unwrap_or(""),
                c["detail"].as_str().unwrap_or("")
            );
            if let Some(f) = c["fix"].as_str().filter(|_| !ok) {
                println!("    fix: {f}");
            }
        }
        all_ok &= health["ok"] == true;
    }
    Ok(all_ok)
}

async fn rotate_secrets(config: &Config) -> anyhow::Result<()> {
    let Some(new) = &config.master_key else {
        anyhow::bail!(
            "WAGATE_MASTER_KEY is not set: set it to the new key (`wagate secrets new-key`) and WAGATE_MASTER_KEY_PREVIOUS to the old one"
        );
    };
    let mut previous = config.previous_master_keys.clone();
    // A SQLite database's own key file, if it has one, holds the key everything is sealed with
    // now: it becomes a previous key, and the new key takes its place in the file *before*
    // anything is sealed again, so that no step can leave secrets under a key kept nowhere.
    // The old key stays beside it until the operator deletes it.
    let file = wagate_store::master_key_path(&config.database_url).filter(|p| p.exists());
    let mut moved = None;
    if let Some(path) = &file {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let old = wagate_core::seal::MasterKey::parse(&text)
            .map_err(|why| anyhow::anyhow!("the master key in {} {why}", path.display()))?;
        if old.id() != new.id() {
            let kept = path.with_extension(format!("key.{}.previous", old.id()));
            std::fs::rename(path, &kept).with_context(|| format!("keeping the old key as {}", kept.display()))?;
            wagate_engine::write_private(path, new.as_text())
                .with_context(|| format!("writing the new key to {}", path.display()))?;
            moved = Some(kept);
            previous.push(old);
        }
    }
    let store = wagate_store::connect(
        &config.database_url,
        &wagate_store::ConnectOptions {
            sealer: wagate_core::seal::Sealer::new(Some(new.clone()), previous),
            ..Default::default()
        },
    )
    .await
    .with_context(|| format!("opening {}", config.database_url))?;
    store.migrate().await.context("applying migrations")?;
    let report = store.seal_secrets(true).await.context(
        "a secret does not open: put the key it was sealed with in WAGATE_MASTER_KEY_PREVIOUS (comma-separated for several)",
    )?;
    let details = serde_json::json!({"key_id": new.id(), "checked": report.checked, "sealed": report.sealed});
    wagate_engine::audit::record_cli(store.as_ref(), "secrets.rotated", None, None, details).await;
    println!(
        "{} secret(s) read, {} sealed again under master key {}",
        report.checked,
        report.sealed,
        new.id()
    );
    match (&file, &moved) {
        (Some(path), Some(kept)) => eprintln!(
            "the new key is in {} (the gateway reads it from there; WAGATE_MASTER_KEY is no longer needed); the old key is kept in {} until you delete it",
            path.display(),
            kept.display()
        ),
        _ => eprintln!(
            "start every gateway with WAGATE_MASTER_KEY set to the new key from now on, then drop the old one from WAGATE_MASTER_KEY_PREVIOUS"
        ),
    }
    Ok(())
}

async fn create_key(
    config: &Config,
    name: &str,
    account: Option<&str>,
    scopes: &str,
    expires_in_days: Option<u32>,
    tenant: Option<String>,
) -> anyhow::Result<()> {
    let scopes: Vec<String> = scopes.split(',').map(str::to_string).collect();
    let scopes = wagate_engine::auth::check_scopes(&scopes).map_err(|e| anyhow::anyhow!("--scopes: {e}"))?;
    if expires_in_days == Some(0) {
        anyhow::bail!("--expires-in-days: give 1 or more days");
    }
    let store = open_store(config, true).await?;
    let account_id = match account {
        None => None,
        Some(key) => {
            let accounts = store.list_accounts().await?;
            let found = accounts
                .iter()
                .find(|a| a.id == key || a.name == key)
                .with_context(|| {
                    format!(
                        "--account: no account `{key}`; known: {}",
                        accounts.iter().map(|a| a.name.as_str()).collect::<Vec<_>>().join(", ")
                    )
                })?;
            Some(found.id.to_string())
        }
    };
    let (secret, mut key) = wagate_engine::auth::new_key(name, account_id.map(Into::into), scopes);
    key.expires_at = expires_in_days.map(|d| wagate_engine::now_ms() + i64::from(d) * 86_400_000);
    key.tenant = tenant;
    let created = store.create_api_key(&key).await?;
    let details =
        serde_json::json!({"name": created.name, "scopes": created.scopes, "expires_in_days": expires_in_days});
    wagate_engine::audit::record_cli(
        store.as_ref(),
        "key.created",
        Some(&created.id),
        created.account_id.as_deref(),
        details,
    )
    .await;
    println!("{secret}");
    eprintln!("API key `{name}` created; it is shown only this once.");
    Ok(())
}

async fn serve(mut config: Config) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(&config.bind).await.with_context(|| {
        format!(
            "cannot listen on {} (set by --bind, WAGATE_BIND or `bind` in the configuration file)",
            config.bind
        )
    })?;
    let api_addr = listener.local_addr()?;
    // Accounts made through the API (or "Connect WhatsApp") live in the database: a gateway that
    // has some is not a sandbox, whatever its configuration file says.
    // (A database that is not there has none, and is not made here: a start that fails later,
    // the simulator's port taken say, leaves no empty database behind.)
    let database_exists = wagate_store::sqlite_file(&config.database_url).is_none_or(|f| f.exists());
    let has_api_accounts = match config.is_sandbox() && database_exists {
        true => open_store(&config, false).await?.has_api_accounts().await?,
        false => false,
    };
    let master_key_given = config.master_key.is_some();
    let sandbox = if config.is_sandbox() && !has_api_accounts {
        Some(sandbox::start(&mut config, api_addr).await?)
    } else {
        None
    };
    let database_url = config.database_url.clone();
    let policy = if sandbox.is_some() {
        KeyPolicy::Always
    } else {
        KeyPolicy::WhenNone
    };
    let gateway = Gateway::start(config, listener, policy).await?;
    // The template catalog, so that sends are checked before they are queued; webhooks keep it
    // current from here on. In sandbox mode before the banner, so the tour sees it.
    let accounts = gateway.state.accounts.all().to_vec();
    let state = gateway.state.clone();
    let sync = async move {
        for account in &accounts {
            match wagate_engine::sending::templates::sync_account(&state, account).await {
                Ok(n) => tracing::info!(account = %account.name, templates = n, "template catalog synced"),
                Err(e) => {
                    tracing::warn!(account = %account.name, error = %e.message, "template catalog not synced; sends are not checked against it until POST /v1/templates/sync succeeds")
                }
            }
        }
    };
    if sandbox.is_some() {
        sync.await;
        // The app hears the sandbox WABA's webhooks once subscribed to it, as Connect does.
        for account in gateway.state.accounts.all().iter() {
            if let Err(e) = wagate_engine::accounts::health::subscribe_app(&gateway.state, account).await {
                tracing::warn!(account = %account.name, error = %e, "subscribing the app to the sandbox WABA failed: no webhooks until `wagate doctor --fix`");
            }
        }
    } else {
        tokio::spawn(sync);
    }
    match &sandbox {
        Some(sim) => sandbox::print_banner(
            gateway.addr,
            sim,
            gateway.new_api_key.as_deref(),
            &database_url,
            &gateway.state.config.data_dir,
            master_key_given,
            &gateway.state.config.auth.jwt.issuer,
        ),
        None => {
            println!(
                "wagate listening on http://{} ({} account(s), database {database_url})",
                gateway.addr,
                gateway.state.accounts.all().len()
            );
            if let Some(key) = &gateway.new_api_key {
                println!("admin API key (shown once): {key}");
            }
        }
    }
    shutdown_signal().await;
    eprintln!("shutting down: finishing in-flight work");
    gateway.shutdown().await;
    if let Some(sim) = sandbox {
        sim.stop().await;
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
