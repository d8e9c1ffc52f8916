//! The 6- and 24-hour windows.

use super::*;

/// `per_hour` messages every hour, evenly spaced, for `hours` from `start`,
/// from `ip`.
fn evenly(who: &str, start: i64, hours: i64, per_hour: i64, ip: &str) -> Vec<Event> {
    let mut events = Vec::new();
    for h in 0..hours {
        for k in 0..per_hour {
            let mut e = ev(start + h * 3600 + k * 3600 / per_hour, who, Tls::V1_2);
            e.client_ip = ip.parse().ok();
            events.push(e);
        }
    }
    events
}

fn steady(
    d: &mut Detector,
    who: &str,
    start: i64,
    hours: i64,
    per_hour: i64,
    ip: &str,
    out: &mut Vec<Alert>,
) {
    for e in evenly(who, start, hours, per_hour, ip) {
        d.observe(&e, &Fresh, out);
    }
}

#[test]
fn a_slow_burn_of_a_steady_account_fires_within_its_window() {
    let mut d = detector();
    let mut out = Vec::new();
    steady(
        &mut d,
        "scanner@example.com",
        MONDAY,
        21 * 24,
        2,
        "192.0.2.9",
        &mut out,
    );
    assert!(out.is_empty(), "{out:?}");
    // Four times its rate: 8 an hour, never near an hourly threshold.
    let start = MONDAY + 21 * 86_400;
    steady(
        &mut d,
        "scanner@example.com",
        start,
        12,
        8,
        "192.0.2.9",
        &mut out,
    );
    assert_eq!(out.len(), 1, "{out:?}");
    let a = &out[0];
    assert_eq!(
        (a.kind, a.status),
        (AlertKind::VolumeSpike, AlertStatus::Firing)
    );
    // The 2-hour window, a steady account's own, at the end of its
    // second hour.
    assert!(a.detail.contains("in the last 2 h"), "{}", a.detail);
    assert!(a.at.timestamp() - start <= 2 * 3600, "{a:?}");
}

#[test]
fn a_busy_month_end_day_of_an_office_account_stays_quiet_but_a_run_from_elsewhere_does_not() {
    let mut d = detector();
    let mut out = Vec::new();
    office_history(&mut d, "carol@example.com", &mut out);
    assert!(out.is_empty());
    // Week 4, Tuesday: two and a half times the usual day, from the usual
    // address (the same total a throttled run would add).
    let day = MONDAY + 22 * 86_400;
    steady(
        &mut d,
        "carol@example.com",
        day + 9 * 3600,
        8,
        15,
        "192.0.2.7",
        &mut out,
    );
    d.tick(day + 86_400, &mut out);
    assert!(out.is_empty(), "{out:?}");
    // Week 4, Thursday: five times its level (120 messages over four
    // hours, never 50 in one) from an address the account never used,
    // besides its usual day.
    let day = MONDAY + 24 * 86_400;
    let mut events = evenly("carol@example.com", day + 9 * 3600, 8, 6, "192.0.2.7");
    events.extend(evenly(
        "carol@example.com",
        day + 10 * 3600,
        4,
        30,
        "203.0.113.50",
    ));
    events.sort_by_key(|e| e.ts);
    for e in &events {
        d.observe(e, &Fresh, &mut out);
    }
    assert!(
        out.iter()
            .any(|a| a.kind == AlertKind::VolumeSpike && a.status == AlertStatus::Firing),
        "{out:?}"
    );
}

fn resolved(out: &[Alert]) -> Vec<&Alert> {
    out.iter()
        .filter(|a| a.status == AlertStatus::Resolved)
        .collect()
}

fn firing(out: &[Alert]) -> Vec<&Alert> {
    out.iter()
        .filter(|a| a.kind == AlertKind::VolumeSpike && a.status == AlertStatus::Firing)
        .collect()
}

/// `who` from `ip` at 2 an hour for three weeks, alerting nothing, then
/// at `rate` an hour for `hours`: the detector, what it raised, and the
/// second the rate changed.
fn three_weeks_then(who: &str, ip: &str, rate: i64, hours: i64) -> (Detector, Vec<Alert>, i64) {
    let mut d = detector();
    let mut out = Vec::new();
    steady(&mut d, who, MONDAY, 21 * 24, 2, ip, &mut out);
    assert!(out.is_empty(), "{out:?}");
    let start = MONDAY + 21 * 86_400;
    steady(&mut d, who, start, hours, rate, ip, &mut out);
    (d, out, start)
}

#[test]
fn a_steady_level_shift_alerts_once_and_is_then_learnt_also_across_a_restart() {
    let who = "monitor@example.com";
    let ip = "192.0.2.9";
    // Reconfigured to check three times as often, for good.
    let (mut d, out, shift) = three_weeks_then(who, ip, 6, 3 * 24);
    assert_eq!(firing(&out).len(), 1, "{out:?}");
    let learnt = resolved(&out);
    assert_eq!(learnt.len(), 1, "{out:?}");
    assert!(
        learnt[0].detail.contains("a new level"),
        "{}",
        learnt[0].detail
    );
    let opened = firing(&out)[0].at.timestamp();
    let closed = learnt[0].at.timestamp();
    assert!(
        (23 * 3600..=26 * 3600).contains(&(closed - opened)),
        "learnt {} h after it opened",
        (closed - opened) / 3600
    );
    // A restart keeps what was learnt; ten more days at the new level,
    // past the learnt level's end, alert nothing.
    let now = shift + 3 * 86_400;
    let saved = saved(&mut d, who, now, ip);
    assert!(saved.1.learnt.is_some(), "{:?}", saved.1);
    let mut restarted = detector();
    restarted.resume(&[who.to_string()], &saved);
    let mut after = Vec::new();
    for e in evenly(who, now, 10 * 24, 6, ip) {
        restarted.observe(&e, &saved, &mut after);
    }
    assert!(after.is_empty(), "{after:?}");
    // The learnt level does not blind it: three times the new rate is a
    // new incident.
    let burn = now + 10 * 86_400;
    for e in evenly(who, burn, 12, 18, ip) {
        restarted.observe(&e, &saved, &mut after);
    }
    assert_eq!(firing(&after).len(), 1, "{after:?}");
}

/// A scanner at 2 an hour for three weeks, then at `rate` an hour for
/// `before` hours, when the window named by `words` must have fired; a
/// restart from what the store holds; `after` more hours at `rate` alert
/// nothing more, and 8 hours back at 2 an hour close the incident once.
fn restart_mid_burn(rate: i64, before: i64, after: i64, words: &str) {
    let who = "scanner@example.com";
    let ip = "192.0.2.9";
    let (mut d, out, start) = three_weeks_then(who, ip, rate, before);
    assert_eq!(firing(&out).len(), 1, "{out:?}");
    assert!(firing(&out)[0].detail.contains(words), "{out:?}");
    let saved = saved(&mut d, who, start + before * 3600, ip);
    assert!(saved.1.spike.is_some());
    let mut restarted = detector();
    restarted.resume(&[who.to_string()], &saved);
    let mut alerts = Vec::new();
    let end = start + (before + after) * 3600;
    let mut events = evenly(who, start + before * 3600, after, rate, ip);
    events.extend(evenly(who, end, 8, 2, ip));
    for e in &events {
        restarted.observe(e, &saved, &mut alerts);
        restarted.tick(e.ts.timestamp(), &mut alerts);
    }
    assert!(firing(&alerts).is_empty(), "alerted again: {alerts:?}");
    let resolved = resolved(&alerts);
    assert_eq!(resolved.len(), 1, "{alerts:?}");
    // Closed once the burn was over: within three hours of its end.
    assert!(
        (end..=end + 3 * 3600).contains(&resolved[0].at.timestamp()),
        "{resolved:?}"
    );
}

#[test]
fn a_restart_mid_slow_burn_neither_repeats_nor_forgets_the_incident() {
    // Four times the rate: a steady account's 2-hour window.
    restart_mid_burn(8, 8, 6, "in the last 2 h");
    // Three and a half times: the 2-hour window too, into the third hour
    // (a steady account is judged on a loose Poisson tail; it varies far
    // less than a Poisson count).
    restart_mid_burn(7, 8, 6, "in the last 2 h");
    // Two and a half times: the 6-hour window (the 3-hour one wants 20).
    restart_mid_burn(5, 8, 6, "in the last 6 h");
    // Twice: only the 24-hour window sees it.
    restart_mid_burn(4, 26, 6, "in the last 24 hours");
}

#[test]
fn a_throttled_tail_keeps_the_incident_its_burst_opened() {
    let who = "carol@example.com";
    let mut d = detector();
    let mut out = Vec::new();
    office_history(&mut d, who, &mut out);
    // Week 4, Tuesday: the usual day, and from an address the account
    // never used a burst of 60 in half an hour, then 15 an hour (never
    // enough for an hourly alert) for four hours.
    let day = MONDAY + 22 * 86_400;
    let mut events = evenly(who, day + 9 * 3600, 8, 6, "192.0.2.7");
    events.extend(
        evenly(who, day + 10 * 3600, 1, 120, "203.0.113.50")
            .into_iter()
            .take(60),
    );
    events.extend(evenly(who, day + 11 * 3600, 4, 15, "203.0.113.50"));
    events.sort_by_key(|e| e.ts);
    for e in &events {
        d.observe(e, &Fresh, &mut out);
        d.tick(e.ts.timestamp(), &mut out);
    }
    d.tick(day + 86_400, &mut out);
    assert_eq!(firing(&out).len(), 1, "{out:?}");
    let resolved = resolved(&out);
    assert_eq!(resolved.len(), 1, "{out:?}");
    assert!(
        resolved[0].at.timestamp() >= day + 15 * 3600,
        "closed while the run went on: {resolved:?}"
    );
}

#[test]
fn a_monitor_at_three_times_its_rate_is_found_in_hours_at_twice_only_by_the_day() {
    // The hours after the rise that pass before the first alert, if any.
    let found_after = |rate: i64, hours: i64| {
        let (_, out, start) = three_weeks_then("monitor@example.com", "192.0.2.9", rate, hours);
        firing(&out)
            .first()
            .map(|a| (a.at.timestamp() - start) as f64 / 3600.0)
    };
    // Three times: within three hours (3.7 h when a steady account's
    // windows were judged on the tail of a new address, 1e-5).
    let three = found_after(6, 12).expect("three times its rate found");
    assert!(three <= 3.0, "found after {three:.1} h");
    // Twice for twenty hours: nothing yet; the day's window finds it.
    assert_eq!(found_after(4, 20), None);
    assert!(found_after(4, 26).is_some_and(|h| h > 20.0));
}

#[test]
fn a_monitors_run_from_a_new_address_is_found_sooner_than_the_same_from_its_own() {
    let who = "monitor@example.com";
    let own = "192.0.2.9";
    // Three times its rate for twelve hours: its own two an hour go on,
    // four more come from `from`. The hours until the first alert.
    let found_after = |from: &str| {
        let mut d = detector();
        let mut out = Vec::new();
        steady(&mut d, who, MONDAY, 21 * 24, 2, own, &mut out);
        assert!(out.is_empty(), "{out:?}");
        let start = MONDAY + 21 * 86_400;
        let mut events = evenly(who, start, 12, 2, own);
        events.extend(evenly(who, start + 300, 12, 4, from));
        events.sort_by_key(|e| e.ts);
        for e in &events {
            d.observe(e, &Fresh, &mut out);
        }
        firing(&out)
            .first()
            .map(|a| (a.at.timestamp() - start) as f64 / 3600.0)
    };
    let new = found_after("203.0.113.50").expect("the run from a new address found");
    let same = found_after(own).expect("the run from its own device found");
    assert!(new <= 2.0, "from a new address after {new:.1} h");
    assert!(
        new < same,
        "{new:.1} h against {same:.1} h from its own device"
    );
}
