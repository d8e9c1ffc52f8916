//! Bursts of failed logins: per username (password guessing) and per
//! client IP (many attempts, or many usernames: spraying).
//!
//! Counted per running event-time hour. Usernames of failed logins are
//! chosen by the attacker, so the tables are capped: beyond the cap new keys
//! are not tracked for the rest of the hour, and what is tracked still alerts.

use super::alert::{Alert, AlertKind, AlertStatus, whole_seconds};
use super::config::FailureConfig;
use crate::event::Event;
use std::collections::HashMap;
use std::net::IpAddr;

/// Most usernames (and IPs) tracked within one hour.
const MAX_KEYS: usize = 100_000;

#[derive(Default)]
struct PerIp {
    count: u32,
    /// Distinct usernames, up to the spraying threshold.
    users: Vec<String>,
}

#[derive(Default)]
pub struct Failures {
    hour: u32,
    users: HashMap<String, u32>,
    ips: HashMap<IpAddr, PerIp>,
}

/// The key an alert is cooled down under.
pub fn user_key(user: &str) -> String {
    format!("user:{user}")
}

pub fn ip_key(ip: IpAddr) -> String {
    format!("ip:{ip}")
}

/// Alerts that crossed a threshold with this event, with their cool-down
/// keys; the caller drops those still cooling down.
pub type Candidates = Vec<(String, Alert)>;

impl Failures {
    pub fn observe(&mut self, ev: &Event, cfg: &FailureConfig) -> Candidates {
        let hour = crate::store::keys::hour_number(ev.ts);
        if hour > self.hour {
            self.hour = hour;
            self.users.clear();
            self.ips.clear();
        } else if hour < self.hour {
            // Late events of a closed hour: that hour's counts are gone.
            return Vec::new();
        }
        let mut out = Vec::new();
        let base = |sender: String, observed: u32, threshold: u32, detail: String| Alert {
            kind: AlertKind::AuthFailures,
            sender,
            at: whole_seconds(ev.ts),
            observed: u64::from(observed),
            expected: 0.0,
            detail,
            status: AlertStatus::Firing,
            threshold: Some(u64::from(threshold)),
            client_ips: ev.client_ip.iter().map(|ip| ip.to_string()).collect(),
            tls: None,
        };
        if !self.users.contains_key(ev.sender.as_str()) && self.users.len() < MAX_KEYS {
            self.users.insert(ev.sender.clone(), 0);
        }
        if let Some(n) = self.users.get_mut(ev.sender.as_str()) {
            *n += 1;
            if *n == cfg.per_user {
                out.push((
                    user_key(&ev.sender),
                    base(
                        ev.sender.clone(),
                        *n,
                        cfg.per_user,
                        format!("{n} failed logins for this username within the hour"),
                    ),
                ));
            }
        }
        let Some(ip) = ev.client_ip else {
            return out;
        };
        if self.ips.len() >= MAX_KEYS && !self.ips.contains_key(&ip) {
            return out;
        }
        let per = self.ips.entry(ip).or_default();
        per.count += 1;
        let before = per.users.len() as u32;
        if before < cfg.ip_distinct_users && !per.users.contains(&ev.sender) {
            per.users.push(ev.sender.clone());
        }
        let distinct = per.users.len() as u32;
        let sprayed = before < cfg.ip_distinct_users && distinct == cfg.ip_distinct_users;
        if per.count == cfg.per_ip || sprayed {
            let (observed, threshold) = if sprayed {
                (distinct, cfg.ip_distinct_users)
            } else {
                (per.count, cfg.per_ip)
            };
            out.push((
                ip_key(ip),
                base(
                    ip.to_string(),
                    observed,
                    threshold,
                    format!(
                        "{} failed logins for {}{} usernames from {ip} within the hour",
                        per.count,
                        if distinct >= cfg.ip_distinct_users {
                            "at least "
                        } else {
                            ""
                        },
                        distinct
                    ),
                ),
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Outcome, Tls};

    fn failure(minute: i64, user: &str, ip: &str) -> Event {
        Event {
            ts: chrono::DateTime::from_timestamp(1_764_000_000 + minute * 60, 0).unwrap(),
            sender: user.into(),
            tls: Tls::V1_2,
            result: Outcome::AuthFailed,
            client_ip: ip.parse().ok(),
            host: None,
            id: None,
            envelope_from: None,
        }
    }

    #[test]
    fn guessing_one_password_alerts_once_per_hour() {
        let cfg = FailureConfig::default();
        let mut f = Failures::default();
        let mut alerts = Vec::new();
        for i in 0..50 {
            alerts.extend(f.observe(&failure(i / 2, "bob@x.org", "198.51.100.9"), &cfg));
        }
        let keys: Vec<&str> = alerts.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["user:bob@x.org", "ip:198.51.100.9"]);
        assert_eq!(alerts[0].1.observed, 20);
    }

    #[test]
    fn spraying_many_usernames_alerts_on_the_ip() {
        let cfg = FailureConfig::default();
        let mut f = Failures::default();
        let mut alerts = Vec::new();
        for i in 0..12 {
            alerts.extend(f.observe(&failure(i, &format!("u{i}@x.org"), "203.0.113.5"), &cfg));
        }
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].0, "ip:203.0.113.5");
        assert!(
            alerts[0].1.detail.contains("10 usernames"),
            "{}",
            alerts[0].1.detail
        );
    }

    #[test]
    fn a_phone_retrying_an_old_password_stays_quiet() {
        let cfg = FailureConfig::default();
        let mut f = Failures::default();
        let mut n = 0;
        for i in 0..(3 * 24 * 6) {
            n += f
                .observe(&failure(i * 10, "carol@x.org", "192.0.2.44"), &cfg)
                .len();
        }
        assert_eq!(n, 0);
    }
}
