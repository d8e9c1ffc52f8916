//! Each component's part of the configuration: the daemon and the CLI
//! hand these to the components, which never see [`Config`] itself.

use super::Config;
use crate::notify::NotifierSettings;
use crate::report::alert_view::shell_quote;
use crate::reports::mail::DEFAULT_TOP;
use crate::server::ServerSettings;
use crate::store::{Retention, StoreOptions};

impl Config {
    /// What opening the store needs: its path, zone, retention and cache.
    pub(crate) fn store_options(&self) -> StoreOptions {
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
    pub(crate) fn server_settings(&self) -> ServerSettings {
        ServerSettings {
            server: self.server.clone(),
            default_days: self.default_days(),
            tz: self.timezone.0,
        }
    }

    /// What the alert notifier needs.
    pub(crate) fn notifier_settings(&self) -> NotifierSettings {
        NotifierSettings {
            detect: self.detect.clone(),
            mail: self.mail.clone(),
            tz: self.timezone.0,
            public_url: self.public_url(),
            cli: self.cli_command(),
            containment_effect: self.containment_effect().to_owned(),
        }
    }

    /// What happens to a contained account's mail, as mails say it.
    fn containment_effect(&self) -> &'static str {
        use crate::policy::ContainAction;
        match self.policy.action {
            ContainAction::Monitor => {
                "still go out: [policy] action = \"monitor\" only counts what it would stop"
            }
            ContainAction::Hold => {
                "are accepted into Postfix's hold queue and not delivered (postqueue -p \
                 lists them, postsuper -H releases them, postsuper -d deletes them)"
            }
            ContainAction::Defer => {
                "are refused for now with 450 4.7.1; the client keeps them and retries"
            }
            ContainAction::Reject => "are rejected with 5.7.1",
        }
    }

    /// The mails about containments, when `detect.recipients` has any.
    pub(crate) fn contain_notices(
        &self,
        outbox: crate::outbox::Outbox,
    ) -> Result<Option<crate::contain::Notices>, crate::outbox::RecipientError> {
        if self.detect.recipients.is_empty() {
            return Ok(None);
        }
        let effect = self.containment_effect();
        Ok(Some(crate::contain::Notices {
            outbox,
            from: self.mail.sender_mailbox()?,
            to: self.mail.check_recipients(&self.detect.recipients)?,
            base: self.public_url(),
            cli: self.cli_command(),
            effect: effect.to_owned(),
            alert_max_age_minutes: self.detect.max_age_minutes,
        }))
    }

    /// How to call the command line with this configuration on this
    /// server, quoted for a shell.
    pub(crate) fn cli_command(&self) -> String {
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
    pub(crate) fn top_senders(&self) -> usize {
        self.report.top_senders.unwrap_or(DEFAULT_TOP)
    }
}
