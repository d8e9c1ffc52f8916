//! `[policy]`: the Postfix policy service.

use crate::server::Listen;
use serde::Deserialize;

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
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            listen: None,
            host: machine_name(),
            max_connections: 256,
            idle_timeout_seconds: 330,
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
        Ok(())
    }
}
