//! Configuration: embedded defaults < `wagate.toml` < environment < flags. Every problem is
//! reported on its own line naming the key, what is wrong, and how to fix it.

pub mod effective;
mod load;
#[cfg(test)]
mod tests;
mod validate;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The commented default configuration, shipped in the binary.
/// hyper's own longest request target (fixed by hyper): `server.max_uri_bytes` stays below it.
pub const HYPER_MAX_URI: usize = 65_534;
/// hyper's read buffer, which bounds a request head: `server.max_header_bytes` stays below half.
pub const HYPER_MAX_BUF: usize = 128 * 1024;
/// hyper's most header lines: `server.max_headers` stays below it.
pub const HYPER_MAX_HEADERS: usize = 256;

pub const DEFAULT_TOML: &str = include_str!("../../../../config.default.toml");

#[derive(Debug, Clone, serde::Serialize)]
pub struct Config {
    /// Where relative paths (the SQLite database and its key file, media files) and the default
    /// `wagate.toml` are (`WAGATE_DATA_DIR`, default the current directory).
    pub data_dir: PathBuf,
    pub bind: String,
    pub database_url: String,
    pub graph_url: String,
    pub api_version: String,
    /// The gateway's public address, for links it gives out; `None`: relative paths.
    pub public_url: Option<String>,
    pub bootstrap_api_key: Option<String>,
    /// The key that seals secrets in the database (`WAGATE_MASTER_KEY`); `None`: a SQLite
    /// database keeps a generated one beside it, PostgreSQL has none.
    #[serde(serialize_with = "key_id")]
    pub master_key: Option<wagate_core::seal::MasterKey>,
    /// Keys secrets may still be sealed with while a new key replaces them
    /// (`WAGATE_MASTER_KEY_PREVIOUS`, comma-separated).
    #[serde(serialize_with = "key_ids")]
    pub previous_master_keys: Vec<wagate_core::seal::MasterKey>,
    pub default_country: Option<String>,
    pub default_recipient: Option<String>,
    /// The account (name or id) a request that names none acts for, when several exist.
    pub default_account: Option<String>,
    pub server: ServerConfig,
    pub webhook: WebhookConfig,
    pub sender: SenderConfig,
    pub media: MediaConfig,
    pub hooks: HooksConfig,
    pub retention: RetentionConfig,
    pub database: DatabaseConfig,
    pub sandbox: SandboxConfig,
    pub meta: MetaConfig,
    pub health: HealthConfig,
    pub usage: UsageConfig,
    pub cluster: ClusterConfig,
    pub auth: AuthConfig,
    pub console: ConsoleConfig,
    pub accounts: Vec<AccountConfig>,
}

/// The Meta app that "Connect WhatsApp" signs businesses up to.
#[derive(Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct MetaConfig {
    /// The app id (`WAGATE_META_APP_ID`): the dialog's `client_id`.
    pub app_id: String,
    /// The App Secret (`WAGATE_META_APP_SECRET`): exchanges codes, signs the dialog's state, and
    /// checks webhooks for WABAs no account has yet.
    #[serde(default)]
    pub app_secret: Option<String>,
    /// Where Meta's dialog is (`WAGATE_META_DIALOG_URL`).
    pub dialog_url: String,
    /// A Facebook Login for Business configuration (Embedded Signup), if any: `config_id`.
    pub config_id: String,
}

impl std::fmt::Debug for MetaConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetaConfig")
            .field("app_id", &self.app_id)
            .field("app_secret", &self.app_secret.as_ref().map(|_| "…"))
            .field("dialog_url", &self.dialog_url)
            .finish()
    }
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub header_timeout_seconds: u64,
    pub idle_timeout_seconds: u64,
    pub webhook_timeout_seconds: u64,
    pub request_timeout_seconds: u64,
    pub upload_timeout_seconds: u64,
    /// A body is cut with 408 when, this long after its headers, less than
    /// `min_body_bytes_per_second` arrived on average.
    pub body_grace_seconds: u64,
    pub min_body_bytes_per_second: u64,
    /// `/ready` answers 503 while the oldest unprocessed webhook is older than this (0: never).
    pub ready_max_backlog_seconds: u64,
    /// On SIGTERM, how long in-flight work has to finish before its claims are given back.
    pub shutdown_seconds: u64,
    pub max_connections: usize,
    pub max_uri_bytes: usize,
    pub max_header_bytes: usize,
    pub max_headers: usize,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct HooksConfig {
    pub retry_schedule_seconds: Vec<u64>,
    pub allow_private_networks: bool,
    pub timeout_seconds: u64,
    pub concurrency_per_hook: usize,
    pub response_excerpt_bytes: usize,
    pub disable_after_seconds: u64,
    pub media_link_seconds: u64,
    pub media_max_bytes: usize,
    pub media_wait_seconds: u64,
    /// Hooks defined in the file (`[[hooks.hook]]`).
    #[serde(default)]
    pub hook: Vec<HookConfig>,
}

/// A hook from the configuration file.
#[derive(Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct HookConfig {
    pub name: String,
    pub url: String,
    #[serde(default)]
    pub events: Vec<String>,
    #[serde(default)]
    pub accounts: Vec<String>,
    #[serde(default)]
    pub contacts: Vec<String>,
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, String>,
    pub secret: Option<String>,
    pub description: Option<String>,
    pub format: Option<String>,
    pub media: Option<String>,
    #[serde(default)]
    pub ordered: bool,
}

impl std::fmt::Debug for HookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HookConfig")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("events", &self.events)
            .field("secret", &self.secret.as_ref().map(|_| "…"))
            .finish()
    }
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct MediaConfig {
    /// Where inbound media is kept: "local" (`dir`), "database" (every gateway sharing the
    /// database can serve every file) or "s3" (an S3-compatible object store, `s3`).
    pub store: String,
    pub dir: std::path::PathBuf,
    pub max_attempts: i64,
    pub s3: S3Config,
}

/// An S3-compatible object store for `media.store = "s3"`. Empty strings mean "not set".
#[derive(Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    pub bucket: String,
    pub prefix: String,
    pub endpoint: String,
    pub region: String,
    pub allow_http: bool,
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("allow_http", &self.allow_http)
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &(!self.secret_access_key.is_empty()).then_some("…"),
            )
            .finish()
    }
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub max_body_bytes: usize,
    pub unknown_accounts: String,
    /// With more acknowledged webhooks than this waiting to be processed, acknowledgements are
    /// paced to processing (SQLite, one gateway; 0: never).
    pub pace_backlog: u64,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct SenderConfig {
    pub concurrency: usize,
    pub max_attempts: i64,
    pub lease_seconds: u64,
    pub graph_timeout_seconds: u64,
    /// After an error Meta asks to retry much later (131048 spam limit, 131049 per-user
    /// marketing limit, 133015…): the wait before the next try.
    pub later_retry_seconds: u64,
    /// Such a message fails, with Meta's reason, once the next try would fall this long after
    /// it was queued.
    pub later_horizon_seconds: u64,
    /// Meta's throughput per phone number, never exceeded in any one-second window (0: no
    /// limit). An account may set its own (`messages_per_second` in `[[accounts]]`).
    pub messages_per_second: u32,
    /// Spacing of messages to one recipient from one number, for Meta's pair rate limit (0: off).
    pub pair_interval_ms: u64,
    /// How many messages to one recipient may go in a burst before the spacing applies.
    pub pair_burst: u32,
    /// How long a send whose lease ran out during the call (the gateway died) waits for Meta's
    /// status webhook to tell whether it went out.
    pub in_doubt_seconds: u64,
    /// Then, with no status: "retry" (send again) or "unknown" (mark it so; a person decides).
    pub in_doubt_action: String,
}

/// How long kept data stays; 0 keeps it forever.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    pub journal_days: u64,
    pub events_days: u64,
    pub statuses_days: u64,
    pub jobs_days: u64,
    pub media_days: u64,
    /// How often the background pruner runs.
    pub interval_seconds: u64,
    /// Rows deleted per statement.
    pub batch: i64,
}

impl RetentionConfig {
    /// The cut-off times for `now` (unix ms).
    pub fn cutoffs(&self, now: i64) -> wagate_store::Retention {
        let before = |days: u64| (days > 0).then(|| now - days as i64 * 86_400_000);
        wagate_store::Retention {
            journal_before: before(self.journal_days),
            events_before: before(self.events_days),
            statuses_before: before(self.statuses_days),
            jobs_before: before(self.jobs_days),
            media_before: before(self.media_days),
            // Keys are honoured for 24 hours; a day more is kept.
            idempotency_before: Some(now - 2 * 86_400_000),
        }
    }
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    pub max_connections: u32,
    pub sqlite_synchronous: String,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    pub jwt: JwtConfig,
}

/// JWT bearer tokens from an OpenID Connect issuer, besides API keys (`[auth.jwt]`); on when
/// `issuer` is set.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct JwtConfig {
    /// `iss` (`WAGATE_JWT_ISSUER`), e.g. https://securetoken.google.com/<project>.
    pub issuer: String,
    /// `aud` (`WAGATE_JWT_AUDIENCE`), e.g. the Firebase project id.
    pub audience: String,
    /// The issuer's keys (`WAGATE_JWT_JWKS_URL`).
    pub jwks_url: String,
    /// How long the keys are kept before they are read again.
    pub jwks_cache_seconds: u64,
    /// Clock skew allowed on `exp` and `nbf`.
    pub leeway_seconds: u64,
    /// The claim that names the tenant.
    pub tenant_claim: String,
    /// The claim that lists the permissions (an array, or a space- or comma-separated string).
    pub scopes_claim: String,
    /// The permissions of a token without that claim.
    pub default_scopes: Vec<String>,
    /// Refuse tokens without a tenant claim (a SaaS whose every user belongs to a tenant);
    /// otherwise such a token acts for every tenant.
    pub require_tenant: bool,
}

impl JwtConfig {
    pub fn enabled(&self) -> bool {
        !self.issuer.is_empty()
    }
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct HealthConfig {
    pub token_check_seconds: u64,
    pub token_expiry_warning_days: u64,
}

/// `[usage]`: usage and costs.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct UsageConfig {
    /// How often budgets are counted (alerts, the hard stop).
    pub budget_check_seconds: u64,
    /// How often Meta's pricing analytics of the last three days are read.
    pub reconcile_seconds: u64,
}

/// `[cluster]`: gateways sharing a database.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// How often a gateway records that it is alive.
    pub heartbeat_seconds: u64,
    /// A gateway silent this long is dead: its claims are taken over.
    pub dead_after_seconds: u64,
}

/// `[console]`: the web console under `/console`.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleConfig {
    /// Serve the console (`WAGATE_CONSOLE=false` turns it off).
    pub enabled: bool,
    /// How long a sign-in lasts.
    pub session_hours: u64,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct SandboxConfig {
    pub sim_bind: String,
    pub status_delays_ms: [u64; 3],
}

/// One WhatsApp Business Account and what it takes to act for it.
#[derive(Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct AccountConfig {
    pub name: String,
    pub waba_id: String,
    #[serde(default)]
    pub phone_number_ids: Vec<String>,
    #[serde(default)]
    pub access_token: Option<String>,
    #[serde(default)]
    pub access_token_file: Option<PathBuf>,
    /// This account's numbers' throughput, instead of `sender.messages_per_second`.
    #[serde(default)]
    pub messages_per_second: Option<u32>,
    #[serde(default)]
    pub app_secret: Option<String>,
    #[serde(default)]
    pub app_secret_file: Option<PathBuf>,
    #[serde(default)]
    pub verify_token: Option<String>,
    #[serde(default)]
    pub verify_token_file: Option<PathBuf>,
}

impl std::fmt::Debug for AccountConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountConfig")
            .field("name", &self.name)
            .field("waba_id", &self.waba_id)
            .field("phone_number_ids", &self.phone_number_ids)
            .finish_non_exhaustive()
    }
}

impl AccountConfig {
    pub fn access_token(&self) -> &str {
        self.access_token.as_deref().unwrap_or_default()
    }
    pub fn app_secret(&self) -> &str {
        self.app_secret.as_deref().unwrap_or_default()
    }
    pub fn verify_token(&self) -> &str {
        self.verify_token.as_deref().unwrap_or_default()
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    bind: String,
    database_url: String,
    graph_url: String,
    api_version: String,
    public_url: String,
    default_account: String,
    bootstrap_api_key: String,
    phone: PhoneSection,
    server: ServerConfig,
    webhook: WebhookConfig,
    sender: SenderConfig,
    media: MediaConfig,
    hooks: HooksConfig,
    retention: RetentionConfig,
    database: DatabaseConfig,
    sandbox: SandboxConfig,
    meta: MetaConfig,
    health: HealthConfig,
    usage: UsageConfig,
    cluster: ClusterConfig,
    auth: AuthConfig,
    console: ConsoleConfig,
    #[serde(default)]
    accounts: Vec<AccountConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PhoneSection {
    default_country: String,
    default_recipient: String,
}

/// A master key shown by its id only (`wagate config print`).
fn key_id<S: serde::Serializer>(key: &Option<wagate_core::seal::MasterKey>, s: S) -> Result<S::Ok, S::Error> {
    match key {
        Some(k) => s.serialize_some(k.id()),
        None => s.serialize_none(),
    }
}

/// Master keys shown by their ids only (`wagate config print`).
fn key_ids<S: serde::Serializer>(keys: &[wagate_core::seal::MasterKey], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(keys.iter().map(|k| k.id()))
}

/// Values given as command-line flags (the top layer).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub bind: Option<String>,
    pub database_url: Option<String>,
}

/// Configuration problems, one line each.
#[derive(Debug)]
pub struct ConfigErrors(pub Vec<String>);

impl std::fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "wagate cannot start; fix the configuration:")?;
        for p in &self.0 {
            writeln!(f, "  - {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// The gateway's own variables; any other `WAGATE_*` variable is warned about.
pub const KNOWN_WAGATE_VARS: &[&str] = &[
    "WAGATE_CONFIG",
    "WAGATE_BIND",
    "WAGATE_DATABASE_URL",
    "WAGATE_GRAPH_URL",
    "WAGATE_SIM_BIND",
    "WAGATE_SIM_WEBHOOK_URL",
    // Read by `wagate sim`; one environment file configures both processes.
    "WAGATE_SIM_STATUS_DELAYS_MS",
    "WAGATE_SIM_WEBHOOK_VERSION",
    "WAGATE_SIM_WEBHOOK_RETRY_SCALE",
    "WAGATE_BOOTSTRAP_API_KEY",
    "WAGATE_BOOTSTRAP_API_KEY_FILE",
    "WAGATE_MASTER_KEY",
    "WAGATE_META_APP_ID",
    "WAGATE_JWT_ISSUER",
    "WAGATE_JWT_AUDIENCE",
    "WAGATE_JWT_JWKS_URL",
    "WAGATE_META_APP_SECRET",
    "WAGATE_META_DIALOG_URL",
    "WAGATE_MASTER_KEY_PREVIOUS",
    "WAGATE_DEFAULT_COUNTRY",
    "WAGATE_HOOKS_RETRY_SCHEDULE",
    "WAGATE_SENDER_MESSAGES_PER_SECOND",
    "WAGATE_WEBHOOK_PACE_BACKLOG",
    "WAGATE_MEDIA_STORE",
    "WAGATE_MEDIA_S3_BUCKET",
    "WAGATE_MEDIA_S3_ENDPOINT",
    "WAGATE_MEDIA_S3_REGION",
    "WAGATE_MEDIA_S3_PREFIX",
    "WAGATE_MEDIA_S3_ALLOW_HTTP",
    "WAGATE_PUBLIC_URL",
    "WAGATE_DEFAULT_ACCOUNT",
    "WAGATE_CONSOLE",
    "WAGATE_DATA_DIR",
    // Read by the CLI (`wagate events replay`), which talks to a running gateway.
    "WAGATE_URL",
    "WAGATE_API_KEY",
    "WAGATE_HOOKS_ALLOW_PRIVATE_NETWORKS",
    "WAGATE_LOG",
    "WAGATE_TEST_POSTGRES_URL",
];

/// The known variable closest to a misspelt one, if one is close (a typo, not another name).
fn did_you_mean(name: &str) -> Option<&'static str> {
    KNOWN_WAGATE_VARS
        .iter()
        .map(|k| (strsim::levenshtein(name, k), *k))
        .filter(|(d, k)| *d <= 3.max(k.len() / 5))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

type Env = BTreeMap<String, String>;

fn env_get(env: &Env, problems: &mut Vec<String>, names: &[&str]) -> Option<String> {
    for name in names {
        if let Some(v) = env.get(*name).filter(|v| !v.is_empty()) {
            return Some(v.clone());
        }
        let file_var = format!("{name}_FILE");
        if let Some(path) = env.get(&file_var).filter(|v| !v.is_empty()) {
            match std::fs::read_to_string(path) {
                Ok(s) => return Some(s.trim().to_string()),
                Err(e) => problems.push(format!(
                    "{file_var}: cannot read `{path}`: {e}; point it at a readable file"
                )),
            }
        }
    }
    None
}

fn read_secret(value: &mut Option<String>, file: &Option<PathBuf>, key: &str, problems: &mut Vec<String>) {
    if value.as_deref().is_some_and(|v| !v.is_empty()) {
        return;
    }
    if let Some(path) = file {
        match std::fs::read_to_string(path) {
            Ok(s) => *value = Some(s.trim().to_string()),
            Err(e) => problems.push(format!(
                "{key}_file: cannot read `{}`: {e}; point it at a readable file",
                path.display()
            )),
        }
    }
}

fn merge(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

impl Config {
    /// Sandbox mode: no account configured and no Meta app to connect businesses to, so the
    /// simulator stands in for Meta (unless the database has accounts made through the API).
    pub fn is_sandbox(&self) -> bool {
        self.accounts.is_empty() && self.meta.app_id.is_empty()
    }

    pub fn default_country_id(&self) -> Option<phonenumber::country::Id> {
        self.default_country
            .as_deref()
            .and_then(|c| wagate_core::phone::parse_country(c).ok())
    }
}
