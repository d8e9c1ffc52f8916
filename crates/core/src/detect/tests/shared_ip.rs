//! One address, many accounts: a batch of stolen passwords alerts; a
//! domain moving to a new office address and a relay shared for weeks do
//! not.

use super::*;
use std::net::IpAddr;

const ATTACKER: &str = "203.0.113.66";

fn from(secs: i64, sender: &str, ip: &str) -> Event {
    let ts = DateTime::<Utc>::from_timestamp(secs, 0).unwrap();
    Event {
        client_ip: Some(ip.parse::<IpAddr>().unwrap()),
        ..Event::accepted(ts, sender, Tls::V1_3)
    }
}

/// `accounts` of three domains, each sending a few messages a day from an
/// address of its own (`own(i)`) for a week.
fn owners(d: &mut Detector, accounts: usize, own: impl Fn(usize) -> String) -> Vec<String> {
    let names: Vec<String> = (0..accounts)
        .map(|i| format!("user{i}@d{}.example", i % 3))
        .collect();
    let mut out = Vec::new();
    for day in 0..7 {
        for (i, name) in names.iter().enumerate() {
            for m in 0..3 {
                let t = MONDAY + day * 86_400 + 9 * 3600 + m * 3600 + i as i64 * 7;
                d.observe(&from(t, name, &own(i)), &Fresh, &mut out);
            }
        }
    }
    assert!(out.is_empty(), "{out:?}");
    names
}

fn shared(out: &[Alert]) -> Vec<&Alert> {
    out.iter()
        .filter(|a| a.kind == AlertKind::SharedIp)
        .collect()
}

/// Day 8, 02:00: each account sends `messages` from `ip`, one account
/// after another a minute apart.
fn campaign(d: &mut Detector, names: &[String], ip: &str, messages: i64) -> Vec<Alert> {
    let start = MONDAY + 7 * 86_400 + 2 * 3600;
    let mut out = Vec::new();
    for (i, name) in names.iter().enumerate() {
        for m in 0..messages {
            let t = start + i as i64 * 60 + m * 5;
            d.observe(&from(t, name, ip), &Fresh, &mut out);
        }
    }
    out
}

#[test]
fn twelve_accounts_of_three_domains_from_one_new_address_alert_once() {
    let mut d = detector();
    let names = owners(&mut d, 12, |i| format!("198.51.100.{}", i + 1));
    let out = campaign(&mut d, &names, ATTACKER, 4);
    let alerts = shared(&out);
    assert_eq!(alerts.len(), 1, "{out:?}");
    let a = alerts[0];
    assert_eq!(a.sender, ATTACKER);
    assert_eq!(a.client_ips, vec![ATTACKER.to_owned()]);
    // At the fifth account: the first message of user4.
    assert_eq!(a.observed, 5);
    assert_eq!(
        a.at.timestamp(),
        MONDAY + 7 * 86_400 + 2 * 3600 + 4 * 60,
        "{a:?}"
    );
    for name in &names[..5] {
        assert!(a.detail.contains(name.as_str()), "{}", a.detail);
    }
    // No account alerted on its own: each stayed under its thresholds.
    assert_eq!(out.len(), 1, "{out:?}");
    // The cool-down is saved with the counts.
    let dirty = d.take_dirty();
    assert!(
        dirty
            .cooldowns
            .iter()
            .any(|(k, _)| k == &format!("shared_ip:{ATTACKER}")),
        "{:?}",
        dirty.cooldowns
    );
}

#[test]
fn four_accounts_are_not_a_campaign() {
    let mut d = detector();
    let names = owners(&mut d, 4, |i| format!("198.51.100.{}", i + 1));
    assert!(shared(&campaign(&mut d, &names, ATTACKER, 4)).is_empty());
}

#[test]
fn a_domain_moving_to_a_new_office_address_does_not_alert() {
    let mut d = detector();
    let names = owners(&mut d, 15, |_| "192.0.2.10".to_owned());
    let out = campaign(&mut d, &names, "192.0.2.20", 3);
    assert!(shared(&out).is_empty(), "{out:?}");
}

#[test]
fn a_relay_shared_for_weeks_does_not_alert_for_its_new_users() {
    let mut d = detector();
    // Twenty accounts have used the relay all week, besides their own.
    let regulars = owners(&mut d, 20, |_| "192.0.2.99".to_owned());
    let newcomers: Vec<String> = owners(&mut d, 26, |i| format!("198.51.100.{}", i + 1))
        .into_iter()
        .filter(|n| !regulars.contains(n))
        .collect();
    assert!(newcomers.len() >= 6, "{newcomers:?}");
    // Day 8, 10:00: the regulars send through it as every day, and six
    // accounts use it for the first time.
    let start = MONDAY + 7 * 86_400 + 10 * 3600;
    let mut out = Vec::new();
    for (i, name) in regulars.iter().enumerate() {
        d.observe(
            &from(start + i as i64 * 30, name, "192.0.2.99"),
            &Fresh,
            &mut out,
        );
    }
    for (i, name) in newcomers.iter().take(6).enumerate() {
        d.observe(
            &from(start + 900 + i as i64 * 60, name, "192.0.2.99"),
            &Fresh,
            &mut out,
        );
    }
    assert!(shared(&out).is_empty(), "{out:?}");
}

#[test]
fn off_means_off() {
    let mut cfg = DetectConfig::default();
    cfg.shared_ip.enabled = false;
    let mut d = Detector::new(Arc::new(cfg));
    let names = owners(&mut d, 12, |i| format!("198.51.100.{}", i + 1));
    assert!(shared(&campaign(&mut d, &names, ATTACKER, 4)).is_empty());
}
