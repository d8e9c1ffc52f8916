//! `[policy]`: the Postfix policy service.

use super::listen::{Peers, PolicyListen};
use crate::detect::AlertKind;
use crate::event::Network;
use serde::Deserialize;

pub(crate) use crate::contain::Action as ContainAction;

/// `[policy]`. Without `listen` there is no policy service.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// Where Postfix's `check_policy_service` connects: a UNIX socket
    /// (`"unix:/var/spool/postfix/smtp-auth-insight/policy"`, for
    /// `check_policy_service unix:smtp-auth-insight/policy`) or an address
    /// and port (`"127.0.0.1:10040"`, for `inet:127.0.0.1:10040`).
    pub listen: Option<PolicyListen>,
    /// The socket's group (mode 0660): Postfix's, so that its processes
    /// and no other local user may connect. Default: the daemon's own.
    pub socket_group: Option<String>,
    /// TCP peers that may speak: addresses and networks. Default: loopback
    /// only. Any other peer is closed before a request is read.
    pub allow: Option<Vec<Network>>,
    /// The `host` of the events it produces and of their ids: the host
    /// name that MTA writes in its log lines, so that a log follower on the
    /// same MTA gives a message the same id. Default: this machine's name.
    pub host: String,
    /// Most connections served at once (Postfix opens one per smtpd
    /// process). When all are open, the one idle the longest is closed to
    /// make room (Postfix reconnects when it next asks); when all are
    /// answering, a new one is closed and Postfix falls back on
    /// `smtpd_policy_service_default_action`.
    pub max_connections: usize,
    /// Most connections from one peer (an address, or a local user), so
    /// that one of several MTAs cannot take them all. Default: all.
    pub max_connections_per_peer: Option<usize>,
    /// Seconds a connection may stay idle between requests (Postfix closes
    /// its own after `smtpd_policy_service_max_idle`, 300 s by default).
    pub(crate) idle_timeout_seconds: u64,
    /// What happens to the submissions of an account an alert contains.
    pub action: ContainAction,
    /// The alert kinds that contain their account.
    pub kinds: Vec<AlertKind>,
    /// Accounts, and `@domain`s, never contained (a monitoring account, a
    /// ticket system that sends in bursts).
    pub never_hold: Vec<String>,
    /// Hours a containment lasts unless released earlier.
    pub hold_hours: u32,
    /// Hours between the reminders that an account is still contained
    /// (0: none).
    pub remind_hours: f64,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            listen: None,
            socket_group: None,
            allow: None,
            host: machine_name(),
            max_connections: 256,
            max_connections_per_peer: None,
            idle_timeout_seconds: 330,
            action: ContainAction::Monitor,
            kinds: vec![
                AlertKind::VolumeSpike,
                AlertKind::NewSender,
                AlertKind::SharedIp,
            ],
            never_hold: Vec::new(),
            hold_hours: 24,
            remind_hours: 4.0,
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
        if self
            .max_connections_per_peer
            .is_some_and(|n| !(1..=self.max_connections).contains(&n))
        {
            return Err((
                "policy.max_connections_per_peer",
                "must be 1 to policy.max_connections".into(),
            ));
        }
        if let (Some(PolicyListen::Inet(_)), Some(_)) = (&self.listen, &self.socket_group) {
            return Err((
                "policy.socket_group",
                "applies to a UNIX socket (listen = \"unix:/path\"), not to an address".into(),
            ));
        }
        if let Some(k) = self
            .kinds
            .iter()
            .find(|k| matches!(k, AlertKind::LegacyTls | AlertKind::AuthFailures))
        {
            return Err((
                "policy.kinds",
                format!(
                    "{} alerts name no compromised account or address to contain; use \
                     volume_spike, new_sender and shared_ip",
                    k.name()
                ),
            ));
        }
        for n in &self.never_hold {
            if n.parse::<crate::event::Network>().is_ok() {
                continue;
            }
            let account = n.strip_prefix('@').unwrap_or(n);
            if account.is_empty() || account.contains(char::is_whitespace) {
                return Err((
                    "policy.never_hold",
                    format!(
                        "{n:?} is neither an account, an @domain nor a client address or \
                         network (\"192.0.2.25\", \"192.0.2.0/24\")"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Who may speak, for a socket whose group is `group`.
    pub(crate) fn peers(&self, group: u32) -> Peers {
        let loopback = || {
            vec!["127.0.0.0/8".parse(), "::1".parse()]
                .into_iter()
                .flatten()
                .collect()
        };
        Peers {
            allow: self.allow.clone().unwrap_or_else(loopback),
            group,
        }
    }

    /// Why the configuration lets more than the MTA speak, if it does: an
    /// address beyond loopback without an `allow` that says who may.
    pub(crate) fn exposure(&self) -> Option<String> {
        match &self.listen {
            Some(PolicyListen::Inet(addr)) if !addr.ip().is_loopback() && self.allow.is_none() => {
                Some(format!(
                    "policy.listen = \"{addr}\" is reachable beyond this machine, but only \
                     loopback peers are let in without policy.allow: list the MTAs' addresses \
                     there (or listen on a UNIX socket)"
                ))
            }
            _ => None,
        }
    }

    /// What contains an account (for [`crate::contain::Holds`]).
    pub fn containment(&self) -> crate::contain::Settings {
        // Addresses and networks stop containment by address; the rest
        // name accounts and domains.
        let mut never_hold = Vec::new();
        let mut never_hold_nets = Vec::new();
        for n in &self.never_hold {
            match n.parse::<crate::event::Network>() {
                Ok(net) => never_hold_nets.push(net),
                Err(_) => never_hold.push(n.clone()),
            }
        }
        crate::contain::Settings {
            kinds: self.kinds.clone(),
            never_hold,
            never_hold_nets,
            hold_hours: self.hold_hours,
            // Whole seconds; 0 (or less than a second) sends none.
            remind_seconds: (self.remind_hours * 3600.0) as i64,
        }
    }
}
