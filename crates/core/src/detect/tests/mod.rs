use super::*;
use crate::detect::config::NewSenderConfig;
use crate::event::Tls;
use chrono::{DateTime, Utc};

/// 2025-11-24T00:00Z, a Monday.
const MONDAY: i64 = 1_763_942_400;

fn ev(secs: i64, sender: &str, tls: Tls) -> Event {
    let ts = DateTime::<Utc>::from_timestamp(secs, 0).unwrap();
    Event {
        client_ip: "192.0.2.7".parse().ok(),
        ..Event::accepted(ts, sender, tls)
    }
}

/// Three weeks of an office account: 6 messages an hour, 09-16, weekdays.
fn office_history(d: &mut Detector, sender: &str, out: &mut Vec<Alert>) {
    for day in 0..21 {
        if day % 7 >= 5 {
            continue;
        }
        for hour in 9..17 {
            for m in 0..6 {
                let t = MONDAY + day * 86_400 + hour * 3600 + m * 600;
                d.observe(&ev(t, sender, Tls::V1_3), &Fresh, out);
            }
        }
    }
}

/// `n` messages spread evenly over `minutes` from `start`.
fn burst(d: &mut Detector, sender: &str, start: i64, n: i64, minutes: i64, out: &mut Vec<Alert>) {
    for i in 0..n {
        d.observe(
            &ev(start + i * minutes * 60 / n, sender, Tls::V1_3),
            &Fresh,
            out,
        );
    }
}

fn detector() -> Detector {
    Detector::new(Arc::new(DetectConfig::default()))
}

#[test]
fn a_night_burst_from_an_office_account_fires_once_then_resolves() {
    let mut d = detector();
    let mut out = Vec::new();
    office_history(&mut d, "alice@example.com", &mut out);
    assert!(out.is_empty(), "normal office traffic alerted: {out:?}");
    // Week 4, Tuesday 03:00: 300 messages within 30 minutes.
    let start = MONDAY + 22 * 86_400 + 3 * 3600;
    burst(&mut d, "alice@example.com", start, 300, 30, &mut out);
    assert_eq!(out.len(), 1, "{out:?}");
    let a = &out[0];
    assert_eq!(
        (a.kind, a.status),
        (AlertKind::VolumeSpike, AlertStatus::Firing)
    );
    assert_eq!(a.observed, a.threshold.unwrap());
    assert!(a.observed <= 30, "an office account at night: {a:?}");
    assert!((a.at.timestamp() - start) < 6 * 60, "fired late: {a:?}");
    assert_eq!(a.client_ips, ["192.0.2.7"]);
    // Nothing more during the burst; resolved once 04:00-05:00 was quiet.
    d.tick(start + 2 * 3600 - 1, &mut out);
    assert_eq!(out.len(), 1);
    d.tick(start + 2 * 3600 + 301, &mut out);
    assert_eq!(out.len(), 2, "{out:?}");
    assert_eq!(out[1].status, AlertStatus::Resolved);
    assert_eq!(out[1].observed, 300);
    assert_eq!(out[1].at.timestamp(), start + 2 * 3600);
}

#[test]
fn a_sustained_spike_reminds_at_growing_intervals() {
    let mut d = detector();
    let mut out = Vec::new();
    office_history(&mut d, "bob@example.com", &mut out);
    let start = MONDAY + 22 * 86_400;
    for hour in 0..12 {
        burst(
            &mut d,
            "bob@example.com",
            start + hour * 3600,
            200,
            60,
            &mut out,
        );
    }
    let statuses: Vec<(AlertStatus, i64)> = out
        .iter()
        .map(|a| (a.status, (a.at.timestamp() - start) / 3600))
        .collect();
    // Fired in hour 0, reminded after 1 h, then 2 h, then 4 h later.
    assert_eq!(
        statuses,
        [
            (AlertStatus::Firing, 0),
            (AlertStatus::Ongoing, 1),
            (AlertStatus::Ongoing, 3),
            (AlertStatus::Ongoing, 7)
        ]
    );
}

/// What the store holds of one account: its hourly counts, first
/// sighting, client IPs and saved state, for a restarted detector.
struct Saved(Loaded, Persisted);

impl Loader for Saved {
    fn sender(&self, _: &str, _: u32) -> Loaded {
        Loaded {
            hours: self.0.hours.clone(),
            first_seen: self.0.first_seen,
            state: Some(self.1.clone()),
            ips: self.0.ips.clone(),
        }
    }
    fn cooldown(&self, _: &str) -> Option<i64> {
        None
    }
}

/// What the store would hold of `who` at Unix second `now`, with its
/// state as last reported dirty.
fn saved(d: &mut Detector, who: &str, now: i64, ip: &str) -> Saved {
    let persisted = d
        .take_dirty()
        .senders
        .into_iter()
        .rev()
        .find(|(s, _)| s == who)
        .map(|(_, p)| p)
        .unwrap_or_default();
    let state = &d.senders[who];
    let hours: Vec<(u32, u32)> = (0..800u32)
        .map(|i| crate::event::time::hour_number(ev(now, "", Tls::V1_3).ts) - i)
        .map(|h| (h, state.history.get(h)))
        .collect();
    Saved(
        Loaded {
            hours,
            first_seen: Some(state.first_seen),
            state: None,
            ips: vec![ip.parse().unwrap()],
        },
        persisted,
    )
}

#[test]
fn restart_mid_spike_neither_repeats_nor_forgets_the_incident() {
    let mut d = detector();
    let mut out = Vec::new();
    office_history(&mut d, "carol@example.com", &mut out);
    let start = MONDAY + 22 * 86_400 + 2 * 3600;
    burst(&mut d, "carol@example.com", start, 100, 20, &mut out);
    assert_eq!(out.len(), 1);
    let saved = saved(&mut d, "carol@example.com", start, "192.0.2.7");
    assert!(saved.1.spike.is_some());
    let mut restarted = detector();
    let mut after = Vec::new();
    restarted.resume(&["carol@example.com".to_string()], &saved);
    for i in 0..100 {
        let e = ev(start + 1200 + i * 12, "carol@example.com", Tls::V1_3);
        restarted.observe(&e, &saved, &mut after);
    }
    assert!(
        after.is_empty(),
        "alerted again after the restart: {after:?}"
    );
    restarted.tick(start + 2 * 3600 + 400, &mut after);
    assert_eq!(after.len(), 1, "{after:?}");
    assert_eq!(after[0].status, AlertStatus::Resolved);
    assert_eq!(
        after[0].observed, 200,
        "the peak counts messages of both runs"
    );
}

#[test]
fn legacy_tls_is_reported_once_per_sender() {
    let mut d = detector();
    let mut out = Vec::new();
    for i in 0..5 {
        d.observe(
            &ev(MONDAY + i * 60, "printer@example.com", Tls::None),
            &Fresh,
            &mut out,
        );
        d.observe(
            &ev(MONDAY + i * 60, "old@example.com", Tls::V1_1),
            &Fresh,
            &mut out,
        );
        d.observe(
            &ev(MONDAY + i * 60, "new@example.com", Tls::V1_2),
            &Fresh,
            &mut out,
        );
    }
    let got: Vec<(&str, Option<Tls>)> = out.iter().map(|a| (a.sender.as_str(), a.tls)).collect();
    assert_eq!(
        got,
        [
            ("printer@example.com", Some(Tls::None)),
            ("old@example.com", Some(Tls::V1_1))
        ]
    );
    assert!(out.iter().all(|a| a.kind == AlertKind::LegacyTls));
}

#[test]
fn new_accounts_alert_only_when_they_send_in_volume() {
    let mut d = detector();
    let mut out = Vec::new();
    // A new hire: 15 messages an hour through the working day.
    for hour in 9..17 {
        burst(
            &mut d,
            "hire@example.com",
            MONDAY + hour * 3600,
            15,
            60,
            &mut out,
        );
    }
    assert!(out.is_empty(), "{out:?}");
    // A never-seen account sending 400 in an hour.
    burst(
        &mut d,
        "x7@example.com",
        MONDAY + 20 * 3600,
        400,
        60,
        &mut out,
    );
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].kind, AlertKind::NewSender);
    assert_eq!(
        out[0].observed,
        u64::from(NewSenderConfig::default().min_count)
    );
}

#[test]
fn failed_login_bursts_cool_down() {
    let mut d = detector();
    let mut out = Vec::new();
    for i in 0..200 {
        let mut e = ev(MONDAY + i * 60, "dave@example.com", Tls::V1_2);
        e.result = Outcome::AuthFailed;
        e.client_ip = format!("198.51.100.{}", i % 200).parse().ok();
        d.observe(&e, &Fresh, &mut out);
    }
    // 200 minutes of guessing: one alert, the next after 6 hours at the earliest.
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].kind, AlertKind::AuthFailures);
    let dirty = d.take_dirty();
    assert_eq!(dirty.cooldowns.len(), 1);
}

#[test]
fn in_working_hours_a_run_from_a_new_ip_alerts_where_a_merge_from_a_known_one_does_not() {
    let run = |ip: &str| {
        let mut d = detector();
        let mut out = Vec::new();
        office_history(&mut d, "erin@example.com", &mut out);
        // Week 4, Tuesday 10:00-10:30: 40 messages on top of the usual 6.
        let start = MONDAY + 22 * 86_400 + 10 * 3600;
        for i in 0..40 {
            let mut e = ev(start + i * 45, "erin@example.com", Tls::V1_3);
            e.client_ip = ip.parse().ok();
            d.observe(&e, &Fresh, &mut out);
        }
        out
    };
    assert!(run("192.0.2.7").is_empty(), "a merge from the usual client");
    let alerts = run("198.51.100.66");
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert!(alerts[0].observed <= 30, "{:?}", alerts[0]);
    assert!(
        alerts[0]
            .detail
            .contains("client IPs this account had not used before")
    );
}

#[test]
fn a_small_run_from_a_new_ip_alerts_below_the_general_minimum() {
    let run = |ip: &str, n: i64| {
        let mut d = detector();
        let mut out = Vec::new();
        office_history(&mut d, "fay@example.com", &mut out);
        // Week 4, Wednesday 10:00-10:40, on top of the usual 6 an hour.
        let start = MONDAY + 23 * 86_400 + 10 * 3600;
        for i in 0..n {
            let mut e = ev(start + i * 2_400 / n, "fay@example.com", Tls::V1_3);
            e.client_ip = ip.parse().ok();
            d.observe(&e, &Fresh, &mut out);
        }
        out
    };
    let cfg = DetectConfig::default();
    assert!(cfg.volume.min_count_new_ip < cfg.volume.min_count);
    assert!(run("192.0.2.7", 24).is_empty(), "the usual client");
    assert!(run("198.51.100.9", 8).is_empty(), "8 from a new IP");
    let alerts = run("198.51.100.9", 24);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert!(alerts[0].observed < u64::from(cfg.volume.min_count_active));
    assert!(alerts[0].detail.contains("had not used before"));
}

#[test]
fn a_quick_run_from_a_new_ip_alerts_within_a_quarter_of_an_hour() {
    // 12 messages from an address the account never used, over `minutes`,
    // Wednesday of week 4 from 10:00, on top of the usual 6 an hour.
    let run = |minutes: i64| {
        let mut d = detector();
        let mut out = Vec::new();
        office_history(&mut d, "fay@example.com", &mut out);
        let start = MONDAY + 23 * 86_400 + 10 * 3600;
        let mut events: Vec<Event> = (0..12)
            .map(|i| {
                let mut e = ev(start + i * minutes * 60 / 12, "fay@example.com", Tls::V1_3);
                e.client_ip = "198.51.100.9".parse().ok();
                e
            })
            .collect();
        events.extend((0..6).map(|i| ev(start + i * 600, "fay@example.com", Tls::V1_3)));
        events.sort_by_key(|e| e.ts);
        for e in &events {
            d.observe(e, &Fresh, &mut out);
        }
        (out, start)
    };
    let (spread, _) = run(50);
    assert!(spread.is_empty(), "12 over 50 minutes: {spread:?}");
    let (quick, start) = run(10);
    assert_eq!(quick.len(), 1, "{quick:?}");
    assert!(quick[0].at.timestamp() - start < 15 * 60, "{quick:?}");
    assert!(quick[0].detail.contains("had not used before"), "{quick:?}");
}

#[test]
fn new_thresholds_apply_from_the_next_event_and_the_history_stays() {
    let mut strict = DetectConfig::default();
    strict.auth_failures.per_user = 1_000;
    let mut d = Detector::new(Arc::new(strict));
    let mut out = Vec::new();
    let fail = |i: i64| {
        let mut e = ev(MONDAY + i * 60, "dave@example.com", Tls::V1_2);
        e.result = Outcome::AuthFailed;
        e.client_ip = format!("198.51.100.{}", i % 200).parse().ok();
        e
    };
    for i in 0..50 {
        d.observe(&fail(i), &Fresh, &mut out);
    }
    assert!(out.is_empty(), "{out:?}");
    // A reload with the default threshold: the failures already seen count.
    d.reconfigure(Arc::new(DetectConfig::default()));
    d.observe(&fail(50), &Fresh, &mut out);
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].kind, AlertKind::AuthFailures);
}

mod long;
mod replica;
mod resident;
mod shared_ip;
