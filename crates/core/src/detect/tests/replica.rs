//! Replicas raise the alert at the same submission as the detector.

use super::*;
use crate::detect::Replica;

/// Feeds `events` to the detector and to a replica taken from it before
/// them: the index of the event at which each raised the alert that opens
/// an incident.
fn first_alerts(d: &mut Detector, who: &str, events: &[Event]) -> (Option<usize>, Option<usize>) {
    let cfg = DetectConfig::default();
    let mut replica = d.replica(who, &Fresh);
    let mut in_replica = None;
    let mut in_detector = None;
    for (i, e) in events.iter().enumerate() {
        if in_replica.is_none() && replica.submit(e, &cfg).is_some() {
            in_replica = Some(i);
        }
        let mut out = Vec::new();
        d.observe(e, &Fresh, &mut out);
        if in_detector.is_none() && out.iter().any(|a| a.status.is_firing() && a.sender == who) {
            in_detector = Some(i);
        }
    }
    (in_detector, in_replica)
}

fn run(who: &str, start: i64, n: i64, seconds: i64, ip: &str) -> Vec<Event> {
    (0..n)
        .map(|i| Event {
            client_ip: ip.parse().ok(),
            ..ev(start + i * seconds / n, who, Tls::V1_3)
        })
        .collect()
}

#[test]
fn a_new_account_alerts_at_the_same_submission_in_its_replica() {
    let mut d = detector();
    let events = run("mallory@example.com", MONDAY, 100, 60, "203.0.113.5");
    let (detector, replica) = first_alerts(&mut d, "mallory@example.com", &events);
    assert_eq!(detector, Some(39), "the new-sender minimum of 40");
    assert_eq!(replica, detector);
}

#[test]
fn an_established_account_bursting_from_a_new_address_alerts_at_the_same_submission() {
    let mut d = detector();
    let mut out = Vec::new();
    office_history(&mut d, "alice@example.com", &mut out);
    // Week 4, Tuesday 14:05, a run from an address it never used, after
    // some mail of its own from the office.
    let start = MONDAY + 22 * 86_400 + 14 * 3600 + 300;
    let mut events = run("alice@example.com", start, 3, 120, "192.0.2.7");
    events.extend(run(
        "alice@example.com",
        start + 200,
        200,
        100,
        "203.0.113.66",
    ));
    let (detector, replica) = first_alerts(&mut d, "alice@example.com", &events);
    assert!(detector.is_some(), "the run alerts");
    assert_eq!(replica, detector);
}

#[test]
fn a_throttled_run_seen_by_the_longer_windows_alerts_at_the_same_submission() {
    let mut d = detector();
    let mut out = Vec::new();
    // Three weeks of a monitor at 2 an hour, then 8 an hour.
    let who = "scanner@example.com";
    for e in run(who, MONDAY, 21 * 24 * 2, 21 * 86_400, "192.0.2.9") {
        d.observe(&e, &Fresh, &mut out);
    }
    assert!(out.is_empty(), "{out:?}");
    let events = run(who, MONDAY + 21 * 86_400, 12 * 8, 12 * 3600, "192.0.2.9");
    let (detector, replica) = first_alerts(&mut d, who, &events);
    assert!(detector.is_some(), "the 3-hour window alerts");
    assert_eq!(replica, detector);
}

#[test]
fn a_replica_read_from_the_store_agrees_with_a_restarted_detector() {
    // Three weeks of office mail, saved; then a run from a new address
    // after a restart: the replica read from what the store holds and the
    // restarted detector alert at the same message.
    let mut d = detector();
    let who = "bob@example.com";
    let mut out = Vec::new();
    office_history(&mut d, who, &mut out);
    let start = MONDAY + 22 * 86_400 + 10 * 3600;
    let saved = saved(&mut d, who, start, "192.0.2.7");
    let cfg = DetectConfig::default();
    let mut replica = Replica::load(who, &saved, start);
    let events = run(who, start, 200, 300, "203.0.113.9");
    let at = events
        .iter()
        .position(|e| replica.submit(e, &cfg).is_some());
    let mut restarted = detector();
    let in_detector = events.iter().position(|e| {
        let mut out = Vec::new();
        restarted.observe(e, &saved, &mut out);
        !out.is_empty()
    });
    assert!(at.is_some(), "the run alerts");
    assert_eq!(at, in_detector);
}
