//! `[detect]`: thresholds of every detector. The defaults are the ones the
//! evaluation (`cargo bench --bench detect_eval`) chose; docs/DETECTION.md shows its tables.

use crate::event::Tls;
use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectConfig {
    /// Run the detectors at all. Off: nothing is learnt and nothing alerts.
    pub enabled: bool,
    /// Who receives alert mails (checked against `mail.allowed_recipients`).
    /// Empty: alerts are recorded and shown by the API, not mailed.
    pub recipients: Vec<String>,
    /// URLs that receive every alert group as a JSON POST.
    pub webhooks: Vec<String>,
    /// Alerts raised within this many seconds of each other go out as one
    /// mail: a spam run from three accounts is one incident, not three mails.
    pub group_seconds: u64,
    /// Alerts about events older than this (an `import` of last month's
    /// logs) are recorded but not mailed, except the reminders and
    /// resolution of an incident whose first alert was mailed.
    pub max_age_minutes: u64,
    pub volume: VolumeConfig,
    pub new_sender: NewSenderConfig,
    pub legacy_tls: LegacyTlsConfig,
    pub auth_failures: FailureConfig,
    pub shared_ip: SharedIpConfig,
}

/// `[detect.shared_ip]`: one client address submitting as several accounts
/// that never used it before (stolen passwords used in a batch).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SharedIpConfig {
    pub enabled: bool,
    /// Accounts new to the address within `window_minutes` that raise an
    /// alert.
    pub min_accounts: u32,
    pub window_minutes: u32,
    /// Largest share of the address's accounts in the window that used it
    /// before: an office NAT, a webmail or relay host in use for weeks has
    /// its regulars, an attacker's address has none.
    pub max_known_share: f64,
    /// Smallest share of distinct usual addresses among the new accounts:
    /// stolen accounts come from everywhere, a domain moving to a new
    /// office address all come from the old one.
    pub min_spread: f64,
    /// After an alert, the address is quiet for this long.
    pub cooldown_hours: u64,
}

impl SharedIpConfig {
    /// The window, in seconds.
    pub fn window_secs(&self) -> i64 {
        i64::from(self.window_minutes) * 60
    }

    /// Until when (Unix seconds) an address alerted on at `at` stays
    /// quiet: the detector's cool-down, which the policy service's own
    /// count of addresses keeps as well.
    pub fn quiet_until(&self, at: i64) -> i64 {
        let hours = i64::try_from(self.cooldown_hours).unwrap_or(i64::MAX);
        at.saturating_add(hours.saturating_mul(3600))
    }
}

impl Default for SharedIpConfig {
    fn default() -> Self {
        SharedIpConfig {
            enabled: true,
            min_accounts: 5,
            window_minutes: 60,
            max_known_share: 0.2,
            min_spread: 0.5,
            cooldown_hours: 6,
        }
    }
}

/// `[detect.volume]`: an account sending far more than it usually does.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VolumeConfig {
    /// No alert below this many messages in one hour, whatever the history:
    /// 0 → 3 messages is never an incident.
    pub min_count: u32,
    /// ... and at least this many in an hour the account usually sends in
    /// (a mail merge during working hours is the user's own doing; the same
    /// volume at 03:00 is not).
    pub min_count_active: u32,
    /// Messages from client IPs the account never used before alert from
    /// this many in an hour, in any hour (a run from an attacker's machine
    /// earns no working-hours allowance).
    pub min_count_new_ip: u32,
    /// The hour's count must reach this multiple of the expected count.
    pub min_ratio: f64,
    /// ... and be this improbable under a Poisson model of the expected count.
    pub p_value: f64,
    /// The same improbability for messages from client IPs the account never
    /// used: a new IP is itself evidence, so less is needed on top of it.
    pub p_value_new_ip: f64,
    /// Expected messages per hour never fall below this (a silent hour is
    /// not proof that the account never sends then).
    pub floor: f64,
    /// Share of the account's busy-hour level expected at any hour: a heavy
    /// user writing at night is less surprising than a quiet one.
    pub activity_share: f64,
    /// A level the account reached at least twice at this hour of day or
    /// week (backups, newsletters) is normal up to this multiple.
    pub repeat_margin: f64,
    /// First re-notification of a sustained spike; the interval doubles.
    pub renotify_minutes: u64,
    /// Longest interval between re-notifications.
    pub renotify_max_hours: u64,
}

/// `[detect.new_sender]`: an account never seen before that sends in volume.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NewSenderConfig {
    /// An account is new for this many hours after its first message.
    pub age_hours: u64,
    /// Messages per hour a new account is expected to send at most.
    pub expected: f64,
    /// No new-sender alert below this many messages in one hour: a new
    /// employee sending normally is not an incident.
    pub min_count: u32,
}

/// `[detect.legacy_tls]`: a sender submitting without TLS or with an old version.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LegacyTlsConfig {
    pub enabled: bool,
    /// Oldest acceptable version; anything older (and no TLS) alerts once per sender.
    pub min_version: Tls,
    /// `daily`: one digest mail a day listing new legacy senders;
    /// `immediate`: with the other alerts.
    pub digest: Digest,
    /// Local hour (0-23) at which the daily digest is mailed.
    pub digest_hour: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Digest {
    Daily,
    Immediate,
}

/// `[detect.auth_failures]`: bursts of failed logins.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FailureConfig {
    pub enabled: bool,
    /// Failed logins for one username within an hour (password guessing).
    /// A phone retrying an old password every 10 minutes stays below it.
    pub per_user: u32,
    /// Failed logins from one client IP within an hour.
    pub per_ip: u32,
    /// Distinct usernames tried from one client IP within an hour (spraying).
    pub ip_distinct_users: u32,
    /// After an alert, the same username or IP is quiet for this long.
    pub cooldown_hours: u64,
}

impl Default for DetectConfig {
    fn default() -> Self {
        DetectConfig {
            enabled: true,
            recipients: Vec::new(),
            webhooks: Vec::new(),
            group_seconds: 60,
            max_age_minutes: 60,
            volume: VolumeConfig::default(),
            new_sender: NewSenderConfig::default(),
            legacy_tls: LegacyTlsConfig::default(),
            auth_failures: FailureConfig::default(),
            shared_ip: SharedIpConfig::default(),
        }
    }
}

impl Default for VolumeConfig {
    fn default() -> Self {
        VolumeConfig {
            min_count: 20,
            min_count_active: 50,
            min_count_new_ip: 10,
            min_ratio: 2.0,
            p_value: 1e-8,
            p_value_new_ip: 1e-5,
            floor: 1.0,
            activity_share: 0.25,
            repeat_margin: 1.5,
            renotify_minutes: 60,
            renotify_max_hours: 24,
        }
    }
}

impl Default for NewSenderConfig {
    fn default() -> Self {
        NewSenderConfig {
            age_hours: 72,
            expected: 10.0,
            min_count: 40,
        }
    }
}

impl Default for LegacyTlsConfig {
    fn default() -> Self {
        LegacyTlsConfig {
            enabled: true,
            min_version: Tls::V1_2,
            digest: Digest::Daily,
            digest_hour: 8,
        }
    }
}

impl Default for FailureConfig {
    fn default() -> Self {
        FailureConfig {
            enabled: true,
            per_user: 20,
            per_ip: 30,
            ip_distinct_users: 10,
            cooldown_hours: 6,
        }
    }
}

impl DetectConfig {
    /// Checks values that need more than their type; returns the key at fault.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        let v = &self.volume;
        if v.min_count_active < v.min_count {
            return Err((
                "detect.volume.min_count_active",
                format!("must be at least min_count ({})", v.min_count),
            ));
        }
        for (key, p) in [
            ("detect.volume.p_value", v.p_value),
            ("detect.volume.p_value_new_ip", v.p_value_new_ip),
        ] {
            if !(p > 0.0 && p < 0.5) {
                return Err((key, "must be between 0 and 0.5 (exclusive)".into()));
            }
        }
        Ok(())
    }
}
