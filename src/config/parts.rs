//! Each component's part of the configuration: the daemon and the CLI
//! hand these to the components, which never see [`Config`] itself.

use super::Config;
use crate::mailer::DEFAULT_TOP;
use crate::notify::NotifierSettings;
use crate::report::alert_view::shell_quote;
use crate::server::ServerSettings;
use crate::store::{Retention, StoreOptions};

impl Config {
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
            min_free_bytes: self.store.min_free_mb << 20,
        }
    }

    /// What the HTTP side needs.
    pub fn server_settings(&self) -> ServerSettings {
        ServerSettings {
            server: self.server.clone(),
            default_days: self.default_days(),
            tz: self.timezone.0,
        }
    }

    /// What the alert notifier needs.
    pub fn notifier_settings(&self) -> NotifierSettings {
        NotifierSettings {
            detect: self.detect.clone(),
            mail: self.mail.clone(),
            tz: self.timezone.0,
            public_url: self.public_url(),
            cli: self.cli_command(),
        }
    }

    /// How to call the command line with this configuration on this
    /// server, quoted for a shell.
    pub fn cli_command(&self) -> String {
        match &self.source {
            Some(path) if path != std::path::Path::new(super::DEFAULT_CONFIG) => {
                let path = std::path::absolute(path).unwrap_or_else(|_| path.clone());
                format!(
                    "smtp-auth-insight --config {}",
                    shell_quote(&path.to_string_lossy())
                )
            }
            _ => "smtp-auth-insight".to_owned(),
        }
    }

    /// Senders listed in the body of a report mail.
    pub fn top_senders(&self) -> usize {
        self.report.top_senders.unwrap_or(DEFAULT_TOP)
    }
}
