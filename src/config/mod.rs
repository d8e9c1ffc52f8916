//! Configuration: one TOML file, every key optional, unknown keys refused.
//!
//! Each section's struct carries the documentation of its keys; the same text
//! is in `config.example.toml`. Values are checked while they are parsed, so an
//! error points at the file, line and key that is wrong.

mod error;
mod secret;
mod types;

pub use crate::event::time::TimeZone;
pub use error::ConfigError;
pub use secret::Secret;
pub use types::Listen;

use crate::store::{Retention, StoreOptions};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Environment variable naming the config file when `--config` is not given.
pub const CONFIG_ENV: &str = "SMTP_AUTH_INSIGHT_CONFIG";

/// The whole configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// IANA time zone (e.g. "Europe/Berlin") in which days are counted and
    /// reports are cut. Changing it later shifts only data ingested afterwards.
    pub timezone: TimeZone,
    pub server: ServerConfig,
    pub store: StoreConfig,
    pub report: ReportConfig,
    pub log: LogConfig,
    pub mail: crate::notify::MailConfig,
    pub detect: crate::detect::DetectConfig,
    /// `[[schedules]]`: reports mailed on a cron schedule.
    pub schedules: Vec<crate::schedule::ScheduleConfig>,
    /// `[[sources]]`: mail logs the daemon follows.
    pub sources: Vec<crate::source::tail::SourceConfig>,
    /// Where this configuration came from, for messages; not a key.
    #[serde(skip)]
    pub source: Option<PathBuf>,
}

/// `[server]`: the HTTP API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to listen on. Loopback by default: put a TLS proxy in front
    /// before exposing it.
    pub listen: Listen,
    /// Bearer token for `/api`, inline, from a file (`token_file`) or from an
    /// environment variable (`token_env`). When none is configured the daemon
    /// generates one on first start and keeps it in the data directory.
    pub token: Option<String>,
    pub token_file: Option<PathBuf>,
    pub token_env: Option<String>,
    /// `POST /api/v1/reports` requests allowed per hour (429 beyond).
    pub report_requests_per_hour: u32,
    /// Largest accepted request body, in bytes; larger ones get 413. A
    /// request is stored atomically, so this also bounds the memory one
    /// request can take while it is committed.
    pub max_body_bytes: usize,
    /// Base URL under which admins reach the dashboard (behind a TLS proxy,
    /// say); links in alert mails start with it. Default: `http://` and
    /// the listen address.
    pub public_url: Option<String>,
    /// `[[server.users]]`: dashboard logins besides the API token, each
    /// with an Argon2 password hash (`smtp-auth-insight hash-password`).
    pub users: Vec<DashboardUser>,
}

/// A dashboard login.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DashboardUser {
    pub name: String,
    /// PHC string, `$argon2id$v=19$...`.
    pub password_hash: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: Listen::default(),
            token: None,
            token_file: None,
            token_env: None,
            max_body_bytes: 2 * 1024 * 1024,
            report_requests_per_hour: 30,
            users: Vec::new(),
            public_url: None,
        }
    }
}

/// `[store]`: the embedded database.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Directory holding the database and the generated API token.
    pub data_dir: PathBuf,
    /// Days of per-sender statistics kept (today included); older days are
    /// purged automatically and reports cannot reach further back.
    pub retention_days: u32,
    /// Days of per-sender hourly counts kept for the anomaly detector;
    /// default 35 (five weeks of weekly seasonality), at most retention_days.
    /// Read it through [`StoreConfig::hourly_days`].
    pub hourly_retention_days: Option<u32>,
    /// Memory the database may use as page cache, in MiB: the main knob for
    /// the daemon's resident size.
    pub cache_mb: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            data_dir: PathBuf::from("./data"),
            retention_days: 90,
            hourly_retention_days: None,
            cache_mb: 8,
        }
    }
}

impl StoreConfig {
    /// Hourly retention in days: as configured, else 35 capped by retention.
    pub fn hourly_days(&self) -> u32 {
        self.hourly_retention_days
            .unwrap_or(DEFAULT_HOURLY_DAYS.min(self.retention_days))
    }
}

/// The reference product's default report range.
const DEFAULT_REPORT_DAYS: u32 = 7;

/// Five weeks: enough history for a weekly seasonal baseline.
const DEFAULT_HOURLY_DAYS: u32 = 35;

/// `[report]`: defaults for reports.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReportConfig {
    /// Directory with `report.html.hbs` / `report.txt.hbs` replacing the
    /// built-in templates (to brand them).
    pub templates_dir: Option<PathBuf>,
    /// Senders listed in a mail body; all of them are in the CSV attachment.
    pub top_senders: Option<usize>,
    /// Length of the default range (ending today) when no start is given;
    /// 7 (the reference product's default), at most store.retention_days.
    /// Read it through [`Config::default_days`].
    pub default_days: Option<u32>,
}

/// `[log]`: diagnostics on stderr (journald collects them under systemd).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// tracing filter, e.g. "info" or "smtp_auth_insight=debug"; the
    /// `RUST_LOG` environment variable wins when set.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".to_owned(),
        }
    }
}

impl ServerConfig {
    /// The API token's configured source.
    pub fn token(&self) -> Secret<'_> {
        Secret {
            key: "server.token",
            inline: self.token.as_deref(),
            file: self.token_file.as_deref(),
            env: self.token_env.as_deref(),
        }
    }
}

impl Config {
    /// Loads the file at `path`, or the built-in defaults when there is none.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let Some(path) = path else {
            return Ok(Config::default());
        };
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Io {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        let mut config = Config::parse(&text).map_err(|e| e.in_file(path))?;
        config.source = Some(path.to_owned());
        Ok(config)
    }

    /// Parses and checks configuration text.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::from_toml(text, &e))?;
        config
            .check()
            .map_err(|(key, message)| ConfigError::at_key(text, key, message))?;
        Ok(config)
    }

    /// Checks that need more than one value; returns the key at fault.
    fn check(&self) -> Result<(), (&'static str, String)> {
        let store = &self.store;
        if !(1..=3650).contains(&store.retention_days) {
            return Err(("store.retention_days", "must be between 1 and 3650".into()));
        }
        if store
            .hourly_retention_days
            .is_some_and(|h| !(1..=store.retention_days).contains(&h))
        {
            return Err((
                "store.hourly_retention_days",
                format!(
                    "must be between 1 and retention_days ({})",
                    store.retention_days
                ),
            ));
        }
        if self
            .report
            .default_days
            .is_some_and(|d| !(1..=store.retention_days).contains(&d))
        {
            return Err((
                "report.default_days",
                format!(
                    "must be between 1 and store.retention_days ({})",
                    store.retention_days
                ),
            ));
        }
        if store.cache_mb == 0 {
            return Err(("store.cache_mb", "must be at least 1".into()));
        }
        if self.server.max_body_bytes < 1024 {
            return Err(("server.max_body_bytes", "must be at least 1024".into()));
        }
        self.server
            .token()
            .check()
            .map_err(|m| ("server.token", m))?;
        if let Some(url) = &self.server.public_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err((
                    "server.public_url",
                    format!("{url:?} is not an http(s) URL"),
                ));
            }
        }
        let mut users = std::collections::HashSet::new();
        for u in &self.server.users {
            if u.name.is_empty() || !users.insert(&u.name) {
                return Err((
                    "server.users.name",
                    format!("{:?} is empty or used twice", u.name),
                ));
            }
            argon2::PasswordHash::new(&u.password_hash).map_err(|e| {
                (
                    "server.users.password_hash",
                    format!(
                        "not a password hash ({e}); make one with `smtp-auth-insight hash-password`"
                    ),
                )
            })?;
        }
        self.mail.check()?;
        self.detect.check()?;
        if !self.detect.recipients.is_empty() {
            self.mail
                .check_recipients(&self.detect.recipients)
                .map_err(|m| ("detect.recipients", m))?;
        }
        for url in &self.detect.webhooks {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(("detect.webhooks", format!("{url:?} is not an http(s) URL")));
            }
        }
        let mut names = std::collections::HashSet::new();
        for s in &self.schedules {
            if !names.insert(&s.name) {
                return Err(("schedules.name", format!("{:?} is used twice", s.name)));
            }
            crate::schedule::parse_cron(&s.cron).map_err(|m| ("schedules.cron", m))?;
            self.mail
                .check_recipients(&s.recipients)
                .map_err(|m| ("schedules.recipients", m))?;
        }
        let mut paths = std::collections::HashSet::new();
        if let Some(dup) = self.sources.iter().find(|s| !paths.insert(&s.path)) {
            return Err((
                "sources.path",
                format!("{} is listed twice", dup.path.display()),
            ));
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log.level) {
            return Err(("log.level", format!("not a valid filter: {e}")));
        }
        Ok(())
    }

    /// Base URL of the dashboard for links in mails, without a trailing `/`.
    pub fn public_url(&self) -> String {
        match &self.server.public_url {
            Some(u) => u.trim_end_matches('/').to_owned(),
            None => format!("http://{}", self.server.listen.0),
        }
    }

    /// Default report length in days: as configured, else 7 capped by retention.
    pub fn default_days(&self) -> u32 {
        self.report
            .default_days
            .unwrap_or(DEFAULT_REPORT_DAYS.min(self.store.retention_days))
    }

    /// Directory of the sled database inside the data directory.
    pub fn db_path(&self) -> PathBuf {
        self.store.data_dir.join("db")
    }

    /// What opening the store needs: its path, zone, retention and cache.
    pub fn store_options(&self) -> StoreOptions {
        StoreOptions {
            path: self.db_path(),
            tz: self.timezone.0,
            retention: Retention {
                days: self.store.retention_days,
                hourly_days: self.store.hourly_days(),
            },
            cache_bytes: self.store.cache_mb * 1024 * 1024,
        }
    }
}

#[cfg(test)]
mod tests;
