//! Bursts of failed logins: per username (password guessing) and per
//! client IP (many attempts, or many usernames: spraying).
//!
//! Counted over a sliding hour, estimated from the running and the previous
//! clock hour (the previous one weighted by how much of it the last 60
//! minutes still cover), so a burst that straddles a full hour is seen
//! whole, for two counters per key. Usernames of failed logins are chosen by
//! the attacker, so the tables are capped: beyond the cap new keys are not
//! tracked until the next hour, and what is tracked still alerts.

use super::alert::{Alert, AlertKind, AlertStatus, whole_seconds};
use super::config::FailureConfig;
use crate::event::Event;
use std::collections::HashMap;
use std::net::IpAddr;

/// Most usernames (and IPs) tracked at a time.
const MAX_KEYS: usize = 100_000;

/// Failed logins in the running and the previous clock hour.
#[derive(Default, Clone, Copy)]
struct Counter {
    hour: u32,
    current: u32,
    previous: u32,
}

impl Counter {
    /// Counts one failure at `ts`; returns the sliding-hour estimate.
    fn bump(&mut self, hour: u32, into_hour: f64) -> u32 {
        if hour == self.hour + 1 {
            self.previous = self.current;
            self.current = 0;
        } else if hour > self.hour + 1 {
            self.previous = 0;
            self.current = 0;
        }
        if hour >= self.hour {
            self.hour = hour;
            self.current += 1;
        }
        self.current + (f64::from(self.previous) * (1.0 - into_hour)).floor() as u32
    }
}

#[derive(Default)]
struct PerIp {
    count: Counter,
    /// Distinct usernames tried in the last hour (Unix seconds of the last
    /// try), up to the spraying threshold.
    users: Vec<(String, i64)>,
}

#[derive(Default)]
pub(super) struct Failures {
    /// Hour of the last pruning of idle keys.
    pruned: u32,
    users: HashMap<String, Counter>,
    ips: HashMap<IpAddr, PerIp>,
}

/// The key an alert is cooled down under.
pub(crate) fn user_key(user: &str) -> String {
    format!("user:{user}")
}

pub(crate) fn ip_key(ip: IpAddr) -> String {
    format!("ip:{ip}")
}

/// Alerts whose threshold this event reached, with their cool-down keys;
/// the caller drops those still cooling down (so a burst alerts once).
pub(crate) type Candidates = Vec<(String, Alert)>;

impl Failures {
    pub(super) fn observe(&mut self, ev: &Event, cfg: &FailureConfig) -> Candidates {
        let ts = ev.ts.timestamp();
        let hour = crate::event::time::hour_number(ev.ts);
        let into_hour = ts.rem_euclid(3600) as f64 / 3600.0;
        if hour > self.pruned {
            // Keys idle for two hours count nothing any more.
            self.pruned = hour;
            self.users.retain(|_, c| c.hour + 1 >= hour);
            self.ips.retain(|_, p| p.count.hour + 1 >= hour);
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
            self.users.insert(ev.sender.clone(), Counter::default());
        }
        if let Some(c) = self.users.get_mut(ev.sender.as_str()) {
            let n = c.bump(hour, into_hour);
            if n >= cfg.per_user {
                out.push((
                    user_key(&ev.sender),
                    base(
                        ev.sender.clone(),
                        n,
                        cfg.per_user,
                        format!("{n} failed logins for this username within an hour"),
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
        let count = per.count.bump(hour, into_hour);
        per.users.retain(|(_, seen)| *seen > ts - 3600);
        let room = (per.users.len() as u32) < cfg.ip_distinct_users;
        match per.users.iter_mut().find(|(u, _)| *u == ev.sender) {
            Some(u) => u.1 = ts,
            None if room => per.users.push((ev.sender.clone(), ts)),
            None => {}
        }
        let distinct = per.users.len() as u32;
        let sprayed = distinct >= cfg.ip_distinct_users;
        if count >= cfg.per_ip || sprayed {
            let (observed, threshold) = if count >= cfg.per_ip {
                (count, cfg.per_ip)
            } else {
                (distinct, cfg.ip_distinct_users)
            };
            out.push((
                ip_key(ip),
                base(
                    ip.to_string(),
                    observed,
                    threshold,
                    format!(
                        "{count} failed logins for {}{distinct} usernames from {ip} within an hour",
                        if sprayed { "at least " } else { "" },
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
        let ts = chrono::DateTime::from_timestamp(1_764_000_000 + minute * 60, 0).unwrap();
        Event {
            result: Outcome::AuthFailed,
            client_ip: ip.parse().ok(),
            ..Event::accepted(ts, user, Tls::V1_2)
        }
    }

    /// The first candidate of each key, as the detector's cool-down keeps them.
    fn first_per_key(f: &mut Failures, events: impl Iterator<Item = Event>) -> Candidates {
        let cfg = FailureConfig::default();
        let mut alerts: Candidates = Vec::new();
        for ev in events {
            for (k, a) in f.observe(&ev, &cfg) {
                if !alerts.iter().any(|(seen, _)| *seen == k) {
                    alerts.push((k, a));
                }
            }
        }
        alerts
    }

    #[test]
    fn guessing_one_password_alerts_once() {
        let mut f = Failures::default();
        let alerts = first_per_key(
            &mut f,
            (0..50).map(|i| failure(i / 2, "bob@x.org", "198.51.100.9")),
        );
        let keys: Vec<&str> = alerts.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["user:bob@x.org", "ip:198.51.100.9"]);
        assert_eq!(alerts[0].1.observed, 20);
    }

    #[test]
    fn a_burst_across_the_full_hour_is_seen_whole() {
        // 1_764_000_000 is 16:00 UTC: minutes 45..75 straddle 17:00, 15
        // failures on each side, none of the clock hours reaching 20.
        let mut f = Failures::default();
        let alerts = first_per_key(
            &mut f,
            (0..30).map(|i| failure(45 + i, "dave@x.org", "198.51.100.10")),
        );
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        assert_eq!(alerts[0].0, "user:dave@x.org");
        assert!(alerts[0].1.at.timestamp() >= 1_764_000_000 + 60 * 60);
    }

    #[test]
    fn spraying_many_usernames_alerts_on_the_ip() {
        let mut f = Failures::default();
        let alerts = first_per_key(
            &mut f,
            (0..12).map(|i| failure(i, &format!("u{i}@x.org"), "203.0.113.5")),
        );
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
