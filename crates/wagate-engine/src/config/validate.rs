//! Checking a loaded configuration: each problem is one line naming the key, what is wrong and
//! how to fix it.

use super::*;

impl Config {
    pub(super) fn validate(&mut self, problems: &mut Vec<String>) {
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
        if s.max_uri_bytes < 1024 || s.max_uri_bytes > crate::config::HYPER_MAX_URI {
            problems.push(format!(
                "server.max_uri_bytes = {}: use 1024 to {}",
                s.max_uri_bytes,
                crate::config::HYPER_MAX_URI
            ));
        }
        if s.max_header_bytes < 4096 || s.max_header_bytes > crate::config::HYPER_MAX_BUF / 2 {
            problems.push(format!(
                "server.max_header_bytes = {}: use 4096 to {}",
                s.max_header_bytes,
                crate::config::HYPER_MAX_BUF / 2
            ));
        }
        if s.max_headers < 16 || s.max_headers > crate::config::HYPER_MAX_HEADERS {
            problems.push(format!(
                "server.max_headers = {}: use 16 to {}",
                s.max_headers,
                crate::config::HYPER_MAX_HEADERS
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
        if !(1..=24 * 30).contains(&self.console.session_hours) {
            problems.push(format!(
                "console.session_hours = {}: use 1 to 720 (hours a console sign-in lasts)",
                self.console.session_hours
            ));
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
            if let Err(e) = crate::hooks::url::check_url_syntax(&h.url) {
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
        if self.cluster.heartbeat_seconds == 0 || self.cluster.dead_after_seconds < 2 * self.cluster.heartbeat_seconds {
            problems.push(format!(
                "cluster.heartbeat_seconds = {} and cluster.dead_after_seconds = {}: the heartbeat must be at least 1 s and a gateway counts as dead only after missing two (dead_after_seconds >= 2 × heartbeat_seconds)",
                self.cluster.heartbeat_seconds, self.cluster.dead_after_seconds
            ));
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
}
