//! Loading the configuration: embedded defaults < `wagate.toml` < environment < flags, with
//! secrets read from files where asked, and every problem gathered.

use super::*;

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
            usage: file.usage,
            cluster: file.cluster,
            console: file.console,
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
        if let Some(v) = e(&["WAGATE_CONSOLE"], &mut problems) {
            match v.trim() {
                "true" | "1" => c.console.enabled = true,
                "false" | "0" => c.console.enabled = false,
                _ => problems.push(format!("WAGATE_CONSOLE = `{v}`: use true or false")),
            }
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
    pub(super) fn within_data_dir(&mut self) {
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
}
