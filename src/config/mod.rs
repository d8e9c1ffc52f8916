//! Configuration: one TOML file, every key optional, unknown keys refused.
//!
//! Each section's struct carries the documentation of its keys; the same text
//! is in `config.example.toml`. Values are checked while they are parsed, so an
//! error points at the file, line and key that is wrong.

pub mod bounds;
mod error;
mod parts;

pub use crate::event::time::TimeZone;
pub use crate::secret::Secret;
pub use error::ConfigError;

use crate::outbox::MailConfig;
use crate::server::ServerConfig;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Environment variable naming the config file when `--config` is not given.
pub(crate) const CONFIG_ENV: &str = "SMTP_AUTH_INSIGHT_CONFIG";

/// Where the package installs the configuration: read when neither
/// `--config` nor [`CONFIG_ENV`] names a file and it exists, so that the
/// commands an alert mail gives work on the server as they are.
pub(crate) const DEFAULT_CONFIG: &str = "/etc/smtp-auth-insight/config.toml";

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
    pub mail: MailConfig,
    pub detect: crate::detect::DetectConfig,
    /// `[[schedules]]`: reports mailed on a cron schedule.
    pub schedules: Vec<crate::schedule::ScheduleConfig>,
    /// `[[sources]]`: mail logs the daemon follows.
    pub sources: Vec<crate::source::SourceConfig>,
    /// `[policy]`: the Postfix policy service.
    pub policy: crate::policy::PolicyConfig,
    /// Where this configuration came from, for messages; not a key.
    #[serde(skip)]
    pub source: Option<PathBuf>,
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
    pub(crate) hourly_retention_days: Option<u32>,
    /// Memory the database may use as page cache, in MiB: the main knob for
    /// the daemon's resident size.
    pub cache_mb: u64,
    /// Free space, in MiB, below which the store takes no more writes (new
    /// events get 503; see `store::space`). 0 turns the check off.
    pub min_free_mb: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            data_dir: PathBuf::from("./data"),
            retention_days: 90,
            hourly_retention_days: None,
            cache_mb: 8,
            min_free_mb: 64,
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
    pub(crate) top_senders: Option<usize>,
    /// Length of the default range (ending today) when no start is given;
    /// 7 (the reference product's default), at most store.retention_days.
    /// Read it through [`Config::default_days`].
    pub(crate) default_days: Option<u32>,
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

    /// Parses and checks configuration text: its numbers against their
    /// ranges first (see `bounds`), before they reach their types.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let table: toml::Table =
            toml::from_str(text).map_err(|e| ConfigError::from_toml(text, &e))?;
        bounds::check(&table).map_err(|(key, message)| ConfigError::at_key(text, key, message))?;
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::from_toml(text, &e))?;
        config
            .check()
            .map_err(|(key, message)| ConfigError::at_key(text, key, message))?;
        Ok(config)
    }

    /// Checks that need more than one value; returns the key at fault.
    fn check(&self) -> Result<(), (&'static str, String)> {
        let store = &self.store;
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
        self.server.check()?;
        self.mail.check()?;
        self.detect.check()?;
        self.policy.check()?;
        if !self.detect.recipients.is_empty() {
            self.mail
                .check_recipients(&self.detect.recipients)
                .map_err(|e| ("detect.recipients", e.to_string()))?;
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
            if let crate::schedule::RangeSpec::LastDays(n) = s.range {
                if n > store.retention_days {
                    return Err((
                        "schedules.range",
                        format!(
                            "last_{n}_days reaches back further than store.retention_days ({})",
                            store.retention_days
                        ),
                    ));
                }
            }
            self.mail
                .check_recipients(&s.recipients)
                .map_err(|e| ("schedules.recipients", e.to_string()))?;
        }
        let mut names = std::collections::HashSet::new();
        for source in &self.sources {
            source.check()?;
            if !names.insert(source.name()) {
                return Err(("sources.path", format!("{} is listed twice", source.name())));
            }
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log.level) {
            return Err(("log.level", format!("not a valid filter: {e}")));
        }
        Ok(())
    }

    /// Base URL of the dashboard for links in mails, without a trailing `/`.
    pub fn public_url(&self) -> String {
        self.server.public_url()
    }

    /// Default report length in days: as configured, else 7 capped by retention.
    pub(crate) fn default_days(&self) -> u32 {
        self.report
            .default_days
            .unwrap_or(DEFAULT_REPORT_DAYS.min(self.store.retention_days))
    }

    /// Directory of the sled database inside the data directory.
    pub(crate) fn db_path(&self) -> PathBuf {
        self.store.data_dir.join("db")
    }
}

#[cfg(test)]
mod tests;
