//! A volume incident: what survives a restart about it, and the words of
//! the alert that opens it.

use super::alert::AlertKind;
use serde::{Deserialize, Serialize};

/// A volume incident still open.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spike {
    pub kind: AlertKind,
    /// Unix seconds it fired.
    pub opened: i64,
    /// Last hour whose count crossed its threshold.
    pub(crate) last_hour: u32,
    /// Largest hourly count since it opened, and what that hour expected.
    pub peak: u32,
    pub(crate) peak_expected: f64,
    /// Unix seconds of the next re-notification, and the interval after it.
    pub(crate) next_notify: i64,
    pub interval: i64,
}

/// What survives a restart beyond the hourly counts the store keeps.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Persisted {
    #[serde(default)]
    pub(crate) legacy_reported: bool,
    /// Boxed: almost every account has none, and every byte here is kept
    /// per account in memory.
    #[serde(default)]
    pub spike: Option<Box<Spike>>,
    /// The hour after the last incident's last spiking hour. The longer
    /// windows start there at the earliest: the run an incident reported
    /// is not counted again to open another one.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub(crate) quiet_from: u32,
    /// A steady account's new level, learnt after it held for a day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub learnt: Option<Box<Learnt>>,
}

/// A rate an account has kept, steadily, for a day since its last
/// incident opened: a monitoring job reconfigured to check twice as often
/// is told once, then taken as the account's level until the seasonal
/// baseline (a median of the last weeks) has caught up with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Learnt {
    /// Messages an hour.
    pub rate: f64,
    /// The first hour the seasonal baseline alone applies again.
    pub until: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

pub(super) fn spike_detail(
    kind: AlertKind,
    count: u32,
    expected: f64,
    threshold: u32,
    age: i64,
) -> String {
    match kind {
        AlertKind::NewSender => format!(
            "first seen {} ago and already {count} messages in one hour \
             (a new account is expected to send at most {expected:.1})",
            age_text(age),
        ),
        _ => format!(
            "{count} messages in the last 60 minutes, {:.1}x the {expected:.1} expected at this \
             time of day and week (threshold {threshold})",
            f64::from(count) / expected,
        ),
    }
}

fn age_text(secs: i64) -> String {
    if secs < 3600 {
        format!("{} min", secs / 60)
    } else {
        format!("{} h", secs / 3600)
    }
}
