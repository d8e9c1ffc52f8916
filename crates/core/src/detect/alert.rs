//! What the detectors say: one alert, as `backtest` prints it, the API
//! returns it and the alert mail shows it.

use crate::event::Tls;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// An account sends far more than it usually does at this time.
    VolumeSpike,
    /// An account never seen before sends in volume in its first hours.
    NewSender,
    /// An account submitted without TLS or with a version below the minimum.
    LegacyTls,
    /// A burst of failed logins for one username or from one client IP.
    AuthFailures,
    /// One client address submitting as several accounts that never used
    /// it (`sender` is the address).
    SharedIp,
}

impl AlertKind {
    pub const ALL: [AlertKind; 5] = [
        AlertKind::VolumeSpike,
        AlertKind::NewSender,
        AlertKind::LegacyTls,
        AlertKind::AuthFailures,
        AlertKind::SharedIp,
    ];

    /// The name in JSON, metrics and summaries.
    pub fn name(self) -> &'static str {
        match self {
            AlertKind::VolumeSpike => "volume_spike",
            AlertKind::NewSender => "new_sender",
            AlertKind::LegacyTls => "legacy_tls",
            AlertKind::AuthFailures => "auth_failures",
            AlertKind::SharedIp => "shared_ip",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            AlertKind::VolumeSpike => "Sending volume spike",
            AlertKind::NewSender => "New sender sending in volume",
            AlertKind::LegacyTls => "Legacy TLS",
            AlertKind::AuthFailures => "Failed login burst",
            AlertKind::SharedIp => "One address, many accounts",
        }
    }
}

/// Where an incident stands. Only `firing` opens one; `ongoing` and
/// `resolved` follow a volume alert.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertStatus {
    #[default]
    Firing,
    /// The spike goes on; re-notified at growing intervals.
    Ongoing,
    /// A full hour below the threshold after the last spiking hour.
    Resolved,
}

impl AlertStatus {
    pub const ALL: [AlertStatus; 3] = [
        AlertStatus::Firing,
        AlertStatus::Ongoing,
        AlertStatus::Resolved,
    ];

    /// The name in JSON and metrics.
    pub fn name(self) -> &'static str {
        match self {
            AlertStatus::Firing => "firing",
            AlertStatus::Ongoing => "ongoing",
            AlertStatus::Resolved => "resolved",
        }
    }

    /// How mails and the dashboard say it.
    pub fn label(self) -> &'static str {
        match self {
            AlertStatus::Firing => "new",
            AlertStatus::Ongoing => "still going on",
            AlertStatus::Resolved => "resolved",
        }
    }

    pub fn is_firing(&self) -> bool {
        *self == AlertStatus::Firing
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub kind: AlertKind,
    /// The account (SASL username); the client IP for a per-IP failure burst.
    pub sender: String,
    /// Event time at which the threshold was crossed (or the incident ended).
    pub at: DateTime<Utc>,
    /// Messages (failed logins) in the running hour when it fired; the
    /// peak hour for `ongoing` and `resolved`.
    pub observed: u64,
    /// Messages expected in that hour (0 for legacy TLS).
    pub expected: f64,
    pub detail: String,
    #[serde(default, skip_serializing_if = "AlertStatus::is_firing")]
    pub status: AlertStatus,
    /// Count at which it fired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<u64>,
    /// Client IPs seen in the alerting hour (at most 8).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub client_ips: Vec<String>,
    /// TLS version of the submission that crossed the threshold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<Tls>,
}

/// Rounds an expected count for display (one decimal).
pub(crate) fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// Whole seconds: alerts are compared and printed at that precision.
pub(crate) fn whole_seconds(ts: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(ts.timestamp(), 0).unwrap_or(ts)
}

/// Where an alert's incident stands now: open, or resolved (by a later
/// `resolved` alert of the same account and kind, or by a later `firing`
/// one, which opened another). What the dashboard and the API show instead
/// of the alert's own status, which says only how the incident stood when
/// the alert was raised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Incident {
    Open,
    Resolved,
}

impl Incident {
    pub fn name(self) -> &'static str {
        match self {
            Incident::Open => "open",
            Incident::Resolved => "resolved",
        }
    }
}

/// The incident of each of `newest_first` (alerts as the log is read
/// back, newest first, every alert logged after the oldest of them
/// included). Only volume spikes and new senders have incidents: `None`
/// for the other kinds.
pub fn incidents<'a>(newest_first: impl IntoIterator<Item = &'a Alert>) -> Vec<Option<Incident>> {
    use std::collections::HashMap;
    // Per (account, kind): the status and incident of the closest newer
    // alert.
    let mut newer: HashMap<(&str, AlertKind), (AlertStatus, Incident)> = HashMap::new();
    let mut out = Vec::new();
    for a in newest_first {
        if !matches!(a.kind, AlertKind::VolumeSpike | AlertKind::NewSender) {
            out.push(None);
            continue;
        }
        let key = (a.sender.as_str(), a.kind);
        let incident = match (a.status, newer.get(&key)) {
            (AlertStatus::Resolved, _) => Incident::Resolved,
            (_, None) => Incident::Open,
            // The same incident goes on: as it stands then.
            (_, Some((AlertStatus::Ongoing, later))) => *later,
            (_, Some((AlertStatus::Resolved | AlertStatus::Firing, _))) => Incident::Resolved,
        };
        newer.insert(key, (a.status, incident));
        out.push(Some(incident));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(sender: &str, kind: AlertKind, status: AlertStatus) -> Alert {
        Alert {
            status,
            kind,
            sender: sender.to_owned(),
            ..crate::report::alert_view::sample_alert()
        }
    }

    #[test]
    fn an_incident_is_open_until_resolved_or_replaced() {
        use AlertKind::*;
        use AlertStatus::*;
        // Newest first.
        let log = [
            alert("b", VolumeSpike, Ongoing),
            alert("a", NewSender, Resolved),
            alert("b", VolumeSpike, Firing),
            alert("a", NewSender, Ongoing),
            alert("a", NewSender, Firing),
            alert("c", LegacyTls, Firing),
            alert("b", VolumeSpike, Firing),
            alert("a", VolumeSpike, Firing),
        ];
        let got: Vec<Option<&str>> = incidents(&log)
            .into_iter()
            .map(|i| i.map(Incident::name))
            .collect();
        assert_eq!(
            got,
            [
                Some("open"),     // b's second incident goes on
                Some("resolved"), // a's new-sender incident resolved
                Some("open"),     // opened b's second incident, still going
                Some("resolved"),
                Some("resolved"),
                None,             // legacy TLS: no incident
                Some("resolved"), // b's first, replaced by the second
                Some("open"),     // a's volume spike: another kind
            ]
        );
    }
}
