//! `[policy]`: the Postfix policy service.

use crate::detect::AlertKind;
use crate::server::Listen;
use serde::Deserialize;

pub use crate::contain::Action as ContainAction;

/// `[policy]`. Without `listen` there is no policy service.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// Address Postfix's `check_policy_service inet:...` connects to.
    pub listen: Option<Listen>,
    /// The `host` of the events it produces and of their ids: the host
    /// name that MTA writes in its log lines, so that a log follower on the
    /// same MTA gives a message the same id. Default: this machine's name.
    pub host: String,
    /// Most connections served at once (Postfix opens one per smtpd
    /// process); more are closed as they arrive, and Postfix falls back on
    /// `smtpd_policy_service_default_action`.
    pub max_connections: usize,
    /// Seconds a connection may stay idle between requests (Postfix closes
    /// its own after `smtpd_policy_service_max_idle`, 300 s by default).
    pub idle_timeout_seconds: u64,
    /// What happens to the submissions of an account an alert contains.
    pub action: ContainAction,
    /// The alert kinds that contain their account.
    pub kinds: Vec<AlertKind>,
    /// Accounts, and `@domain`s, never contained (a monitoring account, a
    /// ticket system that sends in bursts).
    pub never_hold: Vec<String>,
    /// Hours a containment lasts unless released earlier.
    pub hold_hours: u32,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            listen: None,
            host: machine_name(),
            max_connections: 256,
            idle_timeout_seconds: 330,
            action: ContainAction::Monitor,
            kinds: vec![AlertKind::VolumeSpike, AlertKind::NewSender],
            never_hold: Vec::new(),
            hold_hours: 24,
        }
    }
}

/// This machine's short host name, as syslog writes it in log lines.
fn machine_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .and_then(|h| h.trim().split('.').next().map(str::to_owned))
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

impl PolicyConfig {
    /// Checks values that need more than their type; returns the key at
    /// fault.
    pub(crate) fn check(&self) -> Result<(), (&'static str, String)> {
        let host = self.host.as_str();
        if host.is_empty() || host.len() > 253 {
            return Err(("policy.host", "must be 1 to 253 characters".into()));
        }
        if let Some(c) = host
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
        {
            return Err((
                "policy.host",
                format!("{c:?} is not allowed in a host name (letters, digits, '.', '-', '_')"),
            ));
        }
        if self.max_connections == 0 {
            return Err(("policy.max_connections", "must be at least 1".into()));
        }
        if self.idle_timeout_seconds == 0 {
            return Err(("policy.idle_timeout_seconds", "must be at least 1".into()));
        }
        if let Some(k) = self
            .kinds
            .iter()
            .find(|k| matches!(k, AlertKind::LegacyTls | AlertKind::AuthFailures))
        {
            return Err((
                "policy.kinds",
                format!(
                    "{} alerts name no compromised account to contain; use volume_spike and new_sender",
                    k.name()
                ),
            ));
        }
        if !(1..=24 * 90).contains(&self.hold_hours) {
            return Err(("policy.hold_hours", "must be 1 to 2160 (90 days)".into()));
        }
        for n in &self.never_hold {
            let account = n.strip_prefix('@').unwrap_or(n);
            if account.is_empty() || account.contains(char::is_whitespace) {
                return Err((
                    "policy.never_hold",
                    format!("{n:?} is neither an account nor an @domain"),
                ));
            }
        }
        Ok(())
    }

    /// What contains an account (for [`crate::contain::Holds`]).
    pub fn containment(&self) -> crate::contain::Settings {
        crate::contain::Settings {
            kinds: self.kinds.clone(),
            never_hold: self.never_hold.clone(),
            hold_hours: self.hold_hours,
        }
    }
}
