//! Configuration: embedded defaults < `wagate.toml` < environment < flags. Every problem is
//! reported on its own line naming the key, what is wrong, and how to fix it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The commented default configuration, shipped in the binary.
pub const DEFAULT_TOML: &str = include_str!("../../../config.default.toml");

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
    pub auth: AuthConfig,
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
    auth: AuthConfig,
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
    /// Loads the configuration from the layers. `env` is the process environment (a map, so that
    /// tests need not touch the real one). Returns warnings beside the configuration.
    pub fn load(
        config_path: Option<&Path>,
        env: &Env,
        overrides: &Overrides,
    ) -> Result<(Config, Vec<String>), ConfigErrors> {
        let mut problems = Vec::new();
        let mut warnings = Vec::new();
        let mut table: toml::Table = DEFAULT_TOML
            .parse()
            .map_err(|e| ConfigErrors(vec![format!("built-in defaults: {e}")]))?;
        let data_dir = env
            .get("WAGATE_DATA_DIR")
            .filter(|v| !v.trim().is_empty())
            .map_or_else(|| PathBuf::from("."), PathBuf::from);
        // The file named, else the data directory's `wagate.toml` when there is one.
        let path = config_path
            .map(Path::to_path_buf)
            .or_else(|| env.get("WAGATE_CONFIG").filter(|v| !v.is_empty()).map(PathBuf::from))
            .or_else(|| Some(data_dir.join("wagate.toml")).filter(|p| p.is_file()));
        if let Some(path) = &path {
            match std::fs::read_to_string(path) {
                Ok(text) => match text.parse::<toml::Table>() {
                    Ok(t) => merge(&mut table, t),
                    Err(e) => problems.push(format!(
                        "{}: not valid TOML: {}",
                        path.display(),
                        e.to_string().replace('\n', " ")
                    )),
                },
                Err(e) => problems.push(format!("--config {}: cannot read it: {e}", path.display())),
            }
        }
        let file: FileConfig = match table.try_into() {
            Ok(f) => f,
            Err(e) => {
                problems.push(format!(
                    "{}: {}; see `wagate config print` for every key",
                    path.as_ref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_else(|| "configuration".into()),
                    e.to_string().trim().replace('\n', " ")
                ));
                return Err(ConfigErrors(problems));
            }
        };
        let none_if_empty = |s: String| if s.trim().is_empty() { None } else { Some(s) };
        let mut c = Config {
            data_dir: data_dir.clone(),
            bind: file.bind,
            database_url: file.database_url,
            graph_url: file.graph_url,
            api_version: file.api_version,
            public_url: none_if_empty(file.public_url.trim_end_matches('/').to_string()),
            default_account: none_if_empty(file.default_account.trim().to_string()),
            bootstrap_api_key: none_if_empty(file.bootstrap_api_key),
            master_key: None,
            previous_master_keys: Vec::new(),
            default_country: none_if_empty(file.phone.default_country),
            default_recipient: none_if_empty(file.phone.default_recipient),
            server: file.server,
            webhook: file.webhook,
            sender: file.sender,
            media: file.media,
            hooks: file.hooks,
            retention: file.retention,
            database: file.database,
            sandbox: file.sandbox,
            meta: file.meta,
            health: file.health,
            auth: file.auth,
            accounts: file.accounts,
        };

        // Environment.
        let e = |names: &[&str], problems: &mut Vec<String>| env_get(env, problems, names);
        if let Some(v) = e(&["WAGATE_BIND"], &mut problems) {
            c.bind = v;
        }
        if let Some(v) = e(&["WAGATE_DATABASE_URL"], &mut problems) {
            c.database_url = v;
        }
        if let Some(v) = e(&["WAGATE_GRAPH_URL"], &mut problems) {
            c.graph_url = v;
        }
        if let Some(v) = e(&["WAGATE_SIM_BIND"], &mut problems) {
            c.sandbox.sim_bind = v;
        }
        if let Some(v) = e(&["WAGATE_BOOTSTRAP_API_KEY"], &mut problems) {
            c.bootstrap_api_key = Some(v);
        }
        if let Some(v) = e(&["WAGATE_MASTER_KEY"], &mut problems) {
            match wagate_core::seal::MasterKey::parse(&v) {
                Ok(k) => c.master_key = Some(k),
                Err(why) => problems.push(format!("WAGATE_MASTER_KEY {why}")),
            }
        }
        if let Some(v) = e(&["WAGATE_MASTER_KEY_PREVIOUS"], &mut problems) {
            for (i, text) in v.split(',').map(str::trim).filter(|t| !t.is_empty()).enumerate() {
                match wagate_core::seal::MasterKey::parse(text) {
                    Ok(k) => c.previous_master_keys.push(k),
                    Err(why) => problems.push(format!("WAGATE_MASTER_KEY_PREVIOUS (key {}) {why}", i + 1)),
                }
            }
        }
        if let Some(v) = e(&["WAGATE_JWT_ISSUER"], &mut problems) {
            c.auth.jwt.issuer = v;
        }
        if let Some(v) = e(&["WAGATE_JWT_AUDIENCE"], &mut problems) {
            c.auth.jwt.audience = v;
        }
        if let Some(v) = e(&["WAGATE_JWT_JWKS_URL"], &mut problems) {
            c.auth.jwt.jwks_url = v;
        }
        if let Some(v) = e(&["WAGATE_META_APP_ID"], &mut problems) {
            c.meta.app_id = v;
        }
        if let Some(v) = e(&["WAGATE_META_APP_SECRET"], &mut problems) {
            c.meta.app_secret = Some(v);
        }
        if let Some(v) = e(&["WAGATE_META_DIALOG_URL"], &mut problems) {
            c.meta.dialog_url = v;
        }
        c.meta.app_secret = c.meta.app_secret.take().filter(|s| !s.trim().is_empty());
        c.meta.dialog_url = c.meta.dialog_url.trim_end_matches('/').to_string();
        if let Some(v) = e(&["WAGATE_DEFAULT_COUNTRY"], &mut problems) {
            c.default_country = Some(v);
        }
        if let Some(v) = e(&["WAGATE_DEFAULT_ACCOUNT"], &mut problems) {
            c.default_account = Some(v.trim().to_string());
        }
        if let Some(v) = e(&["WAGATE_PUBLIC_URL"], &mut problems) {
            c.public_url = Some(v.trim_end_matches('/').to_string());
        }
        if let Some(v) = e(&["WAGATE_HOOKS_RETRY_SCHEDULE"], &mut problems) {
            match v
                .split(',')
                .map(|s| s.trim().parse::<u64>())
                .collect::<Result<Vec<_>, _>>()
            {
                Ok(schedule) => c.hooks.retry_schedule_seconds = schedule,
                Err(_) => problems.push(format!(
                    "WAGATE_HOOKS_RETRY_SCHEDULE = `{v}`: use comma-separated seconds, e.g. 5,300,1800"
                )),
            }
        }
        if let Some(v) = e(&["WAGATE_MEDIA_STORE"], &mut problems) {
            c.media.store = v;
        }
        if let Some(v) = e(&["WAGATE_MEDIA_S3_BUCKET"], &mut problems) {
            c.media.s3.bucket = v;
        }
        if let Some(v) = e(&["WAGATE_MEDIA_S3_ENDPOINT"], &mut problems) {
            c.media.s3.endpoint = v;
        }
        if let Some(v) = e(&["WAGATE_MEDIA_S3_REGION"], &mut problems) {
            c.media.s3.region = v;
        }
        if let Some(v) = e(&["WAGATE_MEDIA_S3_PREFIX"], &mut problems) {
            c.media.s3.prefix = v;
        }
        if let Some(v) = e(&["WAGATE_MEDIA_S3_ALLOW_HTTP"], &mut problems) {
            match v.as_str() {
                "true" | "1" => c.media.s3.allow_http = true,
                "false" | "0" => c.media.s3.allow_http = false,
                _ => problems.push(format!("WAGATE_MEDIA_S3_ALLOW_HTTP = `{v}`: use true or false")),
            }
        }
        if let Some(v) = e(&["WAGATE_WEBHOOK_PACE_BACKLOG"], &mut problems) {
            match v.trim().parse::<u64>() {
                Ok(n) => c.webhook.pace_backlog = n,
                Err(_) => problems.push(format!(
                    "WAGATE_WEBHOOK_PACE_BACKLOG = `{v}`: use a whole number of webhooks (0: never pace)"
                )),
            }
        }
        if let Some(v) = e(&["WAGATE_SENDER_MESSAGES_PER_SECOND"], &mut problems) {
            match v.trim().parse::<u32>() {
                Ok(n) => c.sender.messages_per_second = n,
                Err(_) => problems.push(format!(
                    "WAGATE_SENDER_MESSAGES_PER_SECOND = `{v}`: use a whole number of messages per second (0: no limit)"
                )),
            }
        }
        if let Some(v) = e(&["WAGATE_HOOKS_ALLOW_PRIVATE_NETWORKS"], &mut problems) {
            match v.as_str() {
                "true" | "1" => c.hooks.allow_private_networks = true,
                "false" | "0" => c.hooks.allow_private_networks = false,
                _ => problems.push(format!(
                    "WAGATE_HOOKS_ALLOW_PRIVATE_NETWORKS = `{v}`: use true or false"
                )),
            }
        }
        if let Some(v) = e(&["WHATSAPP_API_VERSION"], &mut problems) {
            c.api_version = v;
        }
        if let Some(v) = e(&["WHATSAPP_DEFAULT_RECIPIENT"], &mut problems) {
            c.default_recipient = Some(v);
        }
        for name in env.keys().filter(|k| k.starts_with("WAGATE_")) {
            let base = name.strip_suffix("_FILE").unwrap_or(name);
            if !KNOWN_WAGATE_VARS.contains(&name.as_str()) && !KNOWN_WAGATE_VARS.contains(&base) {
                let guess = did_you_mean(base)
                    .map(|g| format!("did you mean {g}? "))
                    .unwrap_or_default();
                warnings.push(format!(
                    "{name} is not a wagate setting and is ignored ({guess}see `wagate config defaults`)"
                ));
            }
        }

        // One account from Meta's usual variables.
        let token = e(&["WHATSAPP_ACCESS_TOKEN"], &mut problems);
        let phone = e(&["WHATSAPP_PHONE_NUMBER_ID"], &mut problems);
        let waba = e(&["WHATSAPP_WABA_ID", "WHATSAPP_BUSINESS_ACCOUNT_ID"], &mut problems);
        let secret = e(&["WHATSAPP_APP_SECRET"], &mut problems);
        let verify = e(
            &["WHATSAPP_VERIFY_TOKEN", "WHATSAPP_WEBHOOK_VERIFY_TOKEN"],
            &mut problems,
        );
        if token.is_some() || phone.is_some() || waba.is_some() {
            let missing: Vec<&str> = [
                ("WHATSAPP_ACCESS_TOKEN", token.is_none()),
                ("WHATSAPP_PHONE_NUMBER_ID", phone.is_none()),
                ("WHATSAPP_WABA_ID", waba.is_none()),
                ("WHATSAPP_APP_SECRET", secret.is_none()),
                ("WHATSAPP_VERIFY_TOKEN", verify.is_none()),
            ]
            .into_iter()
            .filter_map(|(n, m)| m.then_some(n))
            .collect();
            for m in &missing {
                problems.push(format!("{m} is not set: an account from WHATSAPP_* variables needs it too (find it in Meta's App Dashboard, WhatsApp > API Setup)"));
            }
            if missing.is_empty() {
                c.accounts.retain(|a| a.name != "default");
                c.accounts.push(AccountConfig {
                    name: "default".into(),
                    waba_id: waba.unwrap_or_default(),
                    phone_number_ids: phone.into_iter().collect(),
                    access_token: token,
                    access_token_file: None,
                    messages_per_second: None,
                    app_secret: secret,
                    app_secret_file: None,
                    verify_token: verify,
                    verify_token_file: None,
                });
            }
        }

        // Flags.
        if let Some(v) = &overrides.bind {
            c.bind = v.clone();
        }
        if let Some(v) = &overrides.database_url {
            c.database_url = v.clone();
        }
        c.within_data_dir();

        c.validate(&mut problems);
        if problems.is_empty() {
            Ok((c, warnings))
        } else {
            Err(ConfigErrors(problems))
        }
    }

    /// Relative paths (a SQLite database, the media directory) are in the data directory.
    fn within_data_dir(&mut self) {
        if self.data_dir == Path::new(".") {
            return;
        }
        if let Some(file) = self.database_url.strip_prefix("sqlite://") {
            if !file.starts_with('/') && !file.starts_with(':') && !file.is_empty() {
                self.database_url = format!("sqlite://{}", self.data_dir.join(file).display());
            }
        }
        if self.media.dir.is_relative() {
            self.media.dir = self.data_dir.join(&self.media.dir);
        }
    }

    fn validate(&mut self, problems: &mut Vec<String>) {
        if self.bind.parse::<SocketAddr>().is_err() {
            problems.push(format!(
                "bind (WAGATE_BIND) = `{}` is not an address: use host:port, e.g. 127.0.0.1:8080",
                self.bind
            ));
        }
        if self.sandbox.sim_bind.parse::<SocketAddr>().is_err() {
            problems.push(format!(
                "sandbox.sim_bind (WAGATE_SIM_BIND) = `{}` is not an address: use host:port, e.g. 127.0.0.1:8090",
                self.sandbox.sim_bind
            ));
        }
        if !(self.database_url.starts_with("sqlite:")
            || self.database_url.starts_with("postgres://")
            || self.database_url.starts_with("postgresql://"))
        {
            problems.push(format!("database_url (WAGATE_DATABASE_URL) = `{}` is not supported: use sqlite://wagate.db or postgres://user@host/db", self.database_url));
        }
        if !(self.graph_url.starts_with("http://") || self.graph_url.starts_with("https://")) {
            problems.push(format!(
                "graph_url (WAGATE_GRAPH_URL) = `{}` is not an http(s) URL: use https://graph.facebook.com",
                self.graph_url
            ));
        }
        let v = self.api_version.strip_prefix('v').unwrap_or("");
        if !(v.contains('.')
            && v.split('.')
                .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit())))
        {
            problems.push(format!(
                "api_version (WHATSAPP_API_VERSION) = `{}` is not a Graph API version: use the form v23.0",
                self.api_version
            ));
        }
        if let Some(c) = &self.default_country {
            if wagate_core::phone::parse_country(c).is_err() {
                problems.push(format!("phone.default_country (WAGATE_DEFAULT_COUNTRY) = `{c}` is not a country: use a two-letter ISO code such as US or DE"));
            }
        }
        if let Some(r) = &self.default_recipient {
            let country = self
                .default_country
                .as_deref()
                .and_then(|c| wagate_core::phone::parse_country(c).ok());
            if let Err(e) = wagate_core::phone::normalize(r, country) {
                problems.push(format!(
                    "phone.default_recipient (WHATSAPP_DEFAULT_RECIPIENT): {e}; {}",
                    e.hint()
                ));
            }
        }
        let jwt = &self.auth.jwt;
        if jwt.enabled() {
            if jwt.audience.is_empty() {
                problems.push("auth.jwt.audience (WAGATE_JWT_AUDIENCE) is empty: give the audience tokens are made for, e.g. the Firebase project id".into());
            }
            if !(jwt.jwks_url.starts_with("https://") || jwt.jwks_url.starts_with("http://")) {
                problems.push(format!(
                    "auth.jwt.jwks_url (WAGATE_JWT_JWKS_URL) = `{}` is not a URL: give the issuer's JWKS address",
                    jwt.jwks_url
                ));
            }
            if let Some(bad) = jwt
                .default_scopes
                .iter()
                .find(|s| !crate::auth::SCOPES.contains(&s.as_str()))
            {
                problems.push(format!(
                    "auth.jwt.default_scopes: `{bad}` is not a permission; use send, read and/or admin"
                ));
            }
        }
        if !["refuse", "quarantine"].contains(&self.webhook.unknown_accounts.as_str()) {
            problems.push(format!(
                "webhook.unknown_accounts = `{}`: use \"refuse\" or \"quarantine\"",
                self.webhook.unknown_accounts
            ));
        }
        if !["full", "normal"].contains(&self.database.sqlite_synchronous.as_str()) {
            problems.push(format!(
                "database.sqlite_synchronous = `{}`: use \"full\" or \"normal\"",
                self.database.sqlite_synchronous
            ));
        }
        let s = &self.server;
        for (key, v) in [
            ("server.header_timeout_seconds", s.header_timeout_seconds),
            ("server.idle_timeout_seconds", s.idle_timeout_seconds),
            ("server.webhook_timeout_seconds", s.webhook_timeout_seconds),
            ("server.request_timeout_seconds", s.request_timeout_seconds),
            ("server.upload_timeout_seconds", s.upload_timeout_seconds),
            ("server.body_grace_seconds", s.body_grace_seconds),
        ] {
            if v == 0 {
                problems.push(format!("{key} = 0: use at least 1 (seconds)"));
            }
        }
        if s.max_connections < 16 {
            problems.push(format!(
                "server.max_connections = {}: use at least 16 (the default is 10000)",
                s.max_connections
            ));
        }
        if s.max_uri_bytes < 1024 || s.max_uri_bytes > crate::limits::HYPER_MAX_URI {
            problems.push(format!(
                "server.max_uri_bytes = {}: use 1024 to {}",
                s.max_uri_bytes,
                crate::limits::HYPER_MAX_URI
            ));
        }
        if s.max_header_bytes < 4096 || s.max_header_bytes > crate::limits::HYPER_MAX_BUF / 2 {
            problems.push(format!(
                "server.max_header_bytes = {}: use 4096 to {}",
                s.max_header_bytes,
                crate::limits::HYPER_MAX_BUF / 2
            ));
        }
        if s.max_headers < 16 || s.max_headers > crate::limits::HYPER_MAX_HEADERS {
            problems.push(format!(
                "server.max_headers = {}: use 16 to {}",
                s.max_headers,
                crate::limits::HYPER_MAX_HEADERS
            ));
        }
        if self.sender.graph_timeout_seconds >= s.request_timeout_seconds {
            problems.push(format!(
                "server.request_timeout_seconds = {} must exceed sender.graph_timeout_seconds = {}, or ?wait=accepted is cut off before Meta answers",
                s.request_timeout_seconds, self.sender.graph_timeout_seconds
            ));
        }
        if let Some(u) = &self.public_url {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                problems.push(format!(
                    "public_url (WAGATE_PUBLIC_URL) = `{u}` is not an http(s) URL: use the address others reach the gateway at, e.g. https://wagate.example.com"
                ));
            }
        }
        if self.hooks.retry_schedule_seconds.is_empty() {
            problems.push("hooks.retry_schedule_seconds is empty: give at least one delay, e.g. [5, 300]".into());
        }
        if self.hooks.timeout_seconds == 0 || self.hooks.concurrency_per_hook == 0 {
            problems.push("hooks.timeout_seconds and hooks.concurrency_per_hook must be at least 1".into());
        }
        let mut hook_names = std::collections::HashSet::new();
        for (i, h) in self.hooks.hook.iter().enumerate() {
            if !hook_names.insert(h.name.clone()) {
                problems.push(format!("hooks.hook[{i}] ({}): the name is used twice", h.name));
            }
            if let Err(e) = crate::hooks::check_url_syntax(&h.url) {
                problems.push(format!("hooks.hook[{i}] ({}).url: {e}", h.name));
            }
            for p in &h.events {
                if let Err(e) = wagate_core::hooks::check_pattern(p) {
                    problems.push(format!("hooks.hook[{i}] ({}).events: {e}", h.name));
                }
            }
            for k in h.headers.keys().filter(|k| wagate_core::hooks::reserved_header(k)) {
                problems.push(format!(
                    "hooks.hook[{i}] ({}).headers: `{k}` is set by wagate itself",
                    h.name
                ));
            }
        }
        if self.sender.concurrency == 0 {
            problems.push("sender.concurrency = 0: use at least 1".into());
        }
        if self.sender.lease_seconds <= self.sender.graph_timeout_seconds {
            problems.push(format!(
                "sender.lease_seconds = {} must exceed sender.graph_timeout_seconds = {}, or a lease runs out while Meta is still answering",
                self.sender.lease_seconds, self.sender.graph_timeout_seconds
            ));
        }
        if !["retry", "unknown"].contains(&self.sender.in_doubt_action.as_str()) {
            problems.push(format!(
                "sender.in_doubt_action = `{}`: use \"retry\" or \"unknown\"",
                self.sender.in_doubt_action
            ));
        }
        if self.sender.messages_per_second > 1000 {
            problems.push(format!(
                "sender.messages_per_second = {}: Meta allows at most 1000 per number; use 0 for no limit",
                self.sender.messages_per_second
            ));
        }
        if self.sender.pair_interval_ms > 0 && self.sender.pair_burst == 0 {
            problems.push("sender.pair_burst must be at least 1 (or set sender.pair_interval_ms = 0)".into());
        }
        if !["local", "database", "s3"].contains(&self.media.store.as_str()) {
            problems.push(format!(
                "media.store = `{}`: use \"local\" (media.dir), \"database\" or \"s3\" ([media.s3])",
                self.media.store
            ));
        }
        if self.media.store == "s3" {
            let s3 = &self.media.s3;
            if s3.bucket.trim().is_empty() {
                problems.push(
                    "media.s3.bucket is empty: name the bucket media.store = \"s3\" keeps files in (WAGATE_MEDIA_S3_BUCKET)"
                        .into(),
                );
            }
            if !s3.endpoint.is_empty() && url::Url::parse(&s3.endpoint).is_err() {
                problems.push(format!(
                    "media.s3.endpoint = `{}`: not a URL; use e.g. https://s3.example.com or http://127.0.0.1:9000",
                    s3.endpoint
                ));
            }
            if s3.endpoint.starts_with("http://") && !s3.allow_http {
                problems.push(format!(
                    "media.s3.endpoint = `{}` is plain http: set media.s3.allow_http = true to allow it",
                    s3.endpoint
                ));
            }
            if s3.access_key_id.is_empty() != s3.secret_access_key.is_empty() {
                problems.push(
                    "media.s3.access_key_id and media.s3.secret_access_key go together: set both, or neither (then the AWS_* environment)"
                        .into(),
                );
            }
        }
        if self.retention.batch < 1 {
            problems.push("retention.batch must be at least 1".into());
        }
        if self.retention.interval_seconds == 0 {
            problems.push("retention.interval_seconds must be at least 1".into());
        }
        if self.sender.later_retry_seconds == 0 {
            problems.push("sender.later_retry_seconds must be at least 1".into());
        }
        if self.sender.max_attempts < 1 {
            problems.push("sender.max_attempts must be at least 1".into());
        }
        if let Some(k) = &self.bootstrap_api_key {
            if k.len() < 16 {
                problems.push("bootstrap_api_key (WAGATE_BOOTSTRAP_API_KEY) is shorter than 16 characters: use a long random value, e.g. `openssl rand -hex 24`".into());
            }
        }
        let mut seen = std::collections::HashSet::new();
        for (i, a) in self.accounts.iter_mut().enumerate() {
            let key = format!("accounts[{i}] ({})", a.name);
            if !seen.insert(a.name.clone()) {
                problems.push(format!("{key}: the name is used twice; give each account its own name"));
            }
            read_secret(
                &mut a.access_token,
                &a.access_token_file,
                &format!("{key}.access_token"),
                problems,
            );
            read_secret(
                &mut a.app_secret,
                &a.app_secret_file,
                &format!("{key}.app_secret"),
                problems,
            );
            read_secret(
                &mut a.verify_token,
                &a.verify_token_file,
                &format!("{key}.verify_token"),
                problems,
            );
            if !a.waba_id.chars().all(|c| c.is_ascii_digit()) || a.waba_id.is_empty() {
                problems.push(format!(
                    "{key}.waba_id = `{}`: a WABA id is the number shown in WhatsApp Manager",
                    a.waba_id
                ));
            }
            if a.phone_number_ids.is_empty() {
                problems.push(format!("{key}.phone_number_ids is empty: add the phone number id from App Dashboard > WhatsApp > API Setup"));
            }
            for p in &a.phone_number_ids {
                if p.is_empty() || !p.chars().all(|c| c.is_ascii_digit()) {
                    problems.push(format!(
                        "{key}.phone_number_ids: `{p}` is not a phone number id (digits; not the phone number itself)"
                    ));
                }
            }
            for (field, v) in [
                ("access_token", &a.access_token),
                ("app_secret", &a.app_secret),
                ("verify_token", &a.verify_token),
            ] {
                if v.as_deref().is_none_or(str::is_empty) {
                    problems.push(format!(
                        "{key}.{field} is not set: give it, or {field}_file with a path to it"
                    ));
                }
            }
        }
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_load_and_are_sandbox() {
        let (c, w) = Config::load(None, &env(&[]), &Overrides::default()).expect("defaults are valid");
        assert!(c.is_sandbox());
        assert_eq!(c.bind, "127.0.0.1:8080");
        assert!(w.is_empty());
    }

    #[test]
    fn a_misspelt_variable_gets_a_suggestion_and_the_default_account_is_read() {
        let e = env(&[
            ("WAGATE_DATABSE_URL", "sqlite://x.db"),
            ("WAGATE_NOTHING_LIKE_IT", "1"),
            ("WAGATE_DEFAULT_ACCOUNT", "shop"),
        ]);
        let (c, w) = Config::load(None, &e, &Overrides::default()).expect("valid");
        assert_eq!(c.default_account.as_deref(), Some("shop"));
        let about = |name: &str| w.iter().find(|l| l.starts_with(name)).cloned().unwrap_or_default();
        assert!(
            about("WAGATE_DATABSE_URL").contains("did you mean WAGATE_DATABASE_URL?"),
            "{w:?}"
        );
        let far = about("WAGATE_NOTHING_LIKE_IT");
        assert!(far.contains("is ignored") && !far.contains("did you mean"), "{w:?}");
    }

    #[test]
    fn an_s3_media_store_is_checked_naming_each_key() {
        let e = env(&[
            ("WAGATE_MEDIA_STORE", "s3"),
            ("WAGATE_MEDIA_S3_ENDPOINT", "http://127.0.0.1:9000"),
        ]);
        let problems = Config::load(None, &e, &Overrides::default())
            .expect_err("no bucket, plain http")
            .to_string();
        assert!(problems.contains("media.s3.bucket is empty"), "{problems}");
        assert!(problems.contains("media.s3.allow_http = true"), "{problems}");
        let e = env(&[
            ("WAGATE_MEDIA_STORE", "s3"),
            ("WAGATE_MEDIA_S3_BUCKET", "media"),
            ("WAGATE_MEDIA_S3_ENDPOINT", "http://127.0.0.1:9000"),
            ("WAGATE_MEDIA_S3_ALLOW_HTTP", "true"),
        ]);
        let (c, _) = Config::load(None, &e, &Overrides::default()).expect("valid");
        assert_eq!(c.media.s3.bucket, "media");
        assert!(c.media.s3.allow_http);
        let e = env(&[("WAGATE_MEDIA_STORE", "nfs")]);
        let problems = Config::load(None, &e, &Overrides::default())
            .expect_err("unknown")
            .to_string();
        assert!(problems.contains("media.store = `nfs`"), "{problems}");
    }

    #[test]
    fn env_beats_file_and_flags_beat_env() {
        let dir = wagate_store::testing::TestDir::new("wagate-cfg");
        let path = dir.join("wagate.toml");
        std::fs::write(
            &path,
            "bind = \"127.0.0.1:1111\"\ndatabase_url = \"sqlite://file.db\"\n",
        )
        .expect("write");
        let e = env(&[("WAGATE_BIND", "127.0.0.1:2222")]);
        let (c, _) = Config::load(Some(&path), &e, &Overrides::default()).expect("valid");
        assert_eq!(c.bind, "127.0.0.1:2222");
        assert_eq!(c.database_url, "sqlite://file.db");
        let (c, _) = Config::load(
            Some(&path),
            &e,
            &Overrides {
                bind: Some("127.0.0.1:3333".into()),
                ..Default::default()
            },
        )
        .expect("valid");
        assert_eq!(c.bind, "127.0.0.1:3333");
    }

    #[test]
    fn server_limits_are_checked_with_one_line_each() {
        let dir = wagate_store::testing::TestDir::new("wagate-cfg-limits");
        let file = dir.join("wagate.toml");
        std::fs::write(
            &file,
            "[server]\nheader_timeout_seconds = 0\nrequest_timeout_seconds = 20\nmax_connections = 3\nmax_uri_bytes = 10\n[sender]\ngraph_timeout_seconds = 30\n",
        )
        .expect("write");
        let errors = Config::load(Some(&file), &env(&[]), &Overrides::default())
            .expect_err("bad limits")
            .0;
        for key in [
            "server.header_timeout_seconds",
            "server.request_timeout_seconds",
            "server.max_connections",
            "server.max_uri_bytes",
        ] {
            assert_eq!(
                errors.iter().filter(|l| l.starts_with(key)).count(),
                1,
                "{key}: {errors:?}"
            );
        }
        let (c, _) = Config::load(None, &env(&[]), &Overrides::default()).expect("defaults");
        assert_eq!(
            (c.server.header_timeout_seconds, c.server.max_connections),
            (10, 10_000)
        );
    }

    #[test]
    fn meta_variables_make_an_account() {
        let e = env(&[
            ("WHATSAPP_ACCESS_TOKEN", "tok"),
            ("WHATSAPP_PHONE_NUMBER_ID", "106540352242922"),
            ("WHATSAPP_BUSINESS_ACCOUNT_ID", "102290129340398"),
            ("WHATSAPP_APP_SECRET", "secret"),
            ("WHATSAPP_WEBHOOK_VERIFY_TOKEN", "verify"),
        ]);
        let (c, _) = Config::load(None, &e, &Overrides::default()).expect("valid");
        assert!(!c.is_sandbox());
        assert_eq!(c.accounts[0].waba_id, "102290129340398");
        assert_eq!(c.accounts[0].verify_token(), "verify");
    }

    #[test]
    fn each_problem_gets_its_own_line() {
        let e = env(&[
            ("WAGATE_BIND", "nowhere"),
            ("WAGATE_DATABASE_URL", "mysql://x"),
            ("WHATSAPP_ACCESS_TOKEN", "tok"),
            ("WHATSAPP_API_VERSION", "23"),
            ("WAGATE_TYPO", "1"),
        ]);
        let err = Config::load(None, &e, &Overrides::default()).expect_err("invalid");
        let text = err.to_string();
        for needle in [
            "WAGATE_BIND",
            "WAGATE_DATABASE_URL",
            "WHATSAPP_PHONE_NUMBER_ID is not set",
            "WHATSAPP_APP_SECRET is not set",
            "v23.0",
        ] {
            assert!(text.contains(needle), "missing `{needle}` in:\n{text}");
        }
        assert!(err.0.len() >= 5, "{text}");
    }

    #[test]
    fn unknown_file_keys_are_named() {
        let dir = wagate_store::testing::TestDir::new("wagate-cfg2");
        let path = dir.join("wagate.toml");
        std::fs::write(&path, "[webhook]\nmax_body_bites = 5\n").expect("write");
        let err = Config::load(Some(&path), &env(&[]), &Overrides::default()).expect_err("invalid");
        assert!(err.to_string().contains("max_body_bites"), "{err}");
    }

    #[test]
    fn the_simulators_variables_are_not_warned_about() {
        let e = env(&[
            ("WAGATE_SIM_STATUS_DELAYS_MS", "10,10,10"),
            ("WAGATE_SIM_WEBHOOK_URL", "http://127.0.0.1:1/x"),
            ("WAGATE_SIM_WEBHOOK_VERSION", "v24.0"),
            ("WAGATE_SIM_WEBHOOK_RETRY_SCALE", "0.001"),
        ]);
        let (_, w) = Config::load(None, &e, &Overrides::default()).expect("valid");
        assert!(w.is_empty(), "{w:?}");
    }

    #[test]
    fn unknown_wagate_vars_are_warned_about() {
        let (_, w) = Config::load(None, &env(&[("WAGATE_BIN", "x")]), &Overrides::default()).expect("valid");
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("WAGATE_BIN"));
    }
}
