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
}

impl AlertKind {
    pub const ALL: [AlertKind; 4] = [
        AlertKind::VolumeSpike,
        AlertKind::NewSender,
        AlertKind::LegacyTls,
        AlertKind::AuthFailures,
    ];

    /// The name in JSON, metrics and summaries.
    pub fn name(self) -> &'static str {
        match self {
            AlertKind::VolumeSpike => "volume_spike",
            AlertKind::NewSender => "new_sender",
            AlertKind::LegacyTls => "legacy_tls",
            AlertKind::AuthFailures => "auth_failures",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            AlertKind::VolumeSpike => "Sending volume spike",
            AlertKind::NewSender => "New sender sending in volume",
            AlertKind::LegacyTls => "Legacy TLS",
            AlertKind::AuthFailures => "Failed login burst",
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
