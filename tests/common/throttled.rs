//! Throttled compromises, which never cross an hourly threshold, and the
//! traps that look like them, added to a data set of `dataset::generate`
//! (its own accounts, its own random stream: the rest of the data set is
//! unchanged).
//!
//! - steady machine accounts (monitors, scanners, printers: 1.5–3
//!   messages an hour, very regular); some are compromised and send 3–5×
//!   their rate for 12–24 hours ("steady slow burn"), some change their
//!   rate for good ("level shift", a trap that may alert once);
//! - office accounts at 1–3 messages an hour; some are compromised and
//!   send 50–150 messages over 3–6 hours at 5–10× their rate from a new
//!   address ("moderate office run"). Traps: month-end and quarter-end
//!   busy days, a holiday week followed by a normal one, a mail merge
//!   spread over an afternoon from the usual address.
#![allow(dead_code)]

use super::dataset::{DAY, Dataset, Gen, HOUR, Incident, START, scaled};
use chrono::{Datelike, Days, NaiveDate, Weekday};
use smtp_auth_insight::event::{Outcome, Tls};

/// Adds the throttled shapes and their traps to `data`.
pub fn add(data: &mut Dataset, seed: u64, scale: f64) {
    let mut g = Gen::stream(seed, 0x9e37_79b9, 0x7407_7e1e);
    let n = |base: f64| scaled(base, scale);
    let (days, warmup) = (data.days, data.warmup_days);
    let when = |g: &mut Gen, hour_lo: i64, hour_hi: i64| {
        START + g.int(warmup, days - 2) * DAY + g.int(hour_lo, hour_hi) * HOUR
    };
    // Steady machine accounts.
    let steady = n(30.0);
    for i in 0..steady {
        let name = format!("mon{i}@corp.example");
        let (rate, ip) = (g.range(1.5, 3.0), g.ip(3));
        let burn = (i % 4 == 0).then(|| (when(&mut g, 0, 23), g.int(12, 24), g.range(3.0, 5.0)));
        let shift = (i % 4 == 1 && i < 4 * n(4.0)).then(|| (when(&mut g, 0, 23), 2.0));
        for h in 0..days * 24 {
            let t = START + h * HOUR;
            let factor = match shift {
                Some((at, f)) if t >= at => f,
                _ => 1.0,
            };
            regular(&mut g, rate * factor, t, &name, &ip);
        }
        if let Some((start, hours, factor)) = burn {
            let attacker = g.ip(9);
            for h in 0..hours {
                let k = g.poisson(rate * (factor - 1.0));
                g.spread(k, start + h * HOUR, HOUR, &name, Tls::V1_2, &attacker);
            }
            data.incidents
                .push(volume(&name, "steady slow burn", start, hours));
        }
        if let Some((at, _)) = shift {
            data.traps
                .push((name.clone(), "level shift (one alert allowed)", at));
        }
    }
    // Office accounts at a few messages an hour.
    let staff = n(60.0);
    for i in 0..staff {
        let name = format!("staff{i}@corp{}.example", i % 5);
        let (rate, ip) = (g.range(1.0, 3.0), g.ip(1));
        let finance = i % 3 == 0;
        // A holiday needs a week and a normal week after it.
        let holiday = (i % 10 == 1 && days - 14 > warmup).then(|| g.int(warmup, days - 14));
        let merge = (i % 10 == 2).then(|| g.int(warmup, days - 2));
        let run = (i % 7 == 3).then(|| (g.int(warmup, days - 2), g.int(3, 6), g.range(5.0, 10.0)));
        for day in 0..days {
            let date = date_of(day);
            if date.weekday().number_from_monday() > 5 {
                continue;
            }
            if holiday.is_some_and(|h| (h..h + 7).contains(&day)) {
                continue;
            }
            let busy = match (finance, last_weekday_of_month(date)) {
                (true, true) if date.month() % 3 == 0 => 3.0,
                (true, true) => 2.5,
                _ => 1.0,
            };
            for h in 8..17 {
                let k = g.poisson(rate * busy);
                g.spread(k, START + day * DAY + h * HOUR, HOUR, &name, Tls::V1_3, &ip);
            }
            if merge == Some(day) {
                let k = g.int(60, 120) as u64;
                g.spread(
                    k,
                    START + day * DAY + 13 * HOUR,
                    4 * HOUR,
                    &name,
                    Tls::V1_3,
                    &ip,
                );
            }
            if let Some((_, hours, factor)) = run.filter(|r| r.0 == day) {
                let start = START + day * DAY + g.int(9, 16 - hours.min(7)) * HOUR;
                let k = ((rate * factor * hours as f64) as u64).clamp(50, 150);
                let attacker = g.ip(9);
                g.spread(k, start, hours * HOUR, &name, Tls::V1_2, &attacker);
                data.incidents
                    .push(volume(&name, "moderate office run", start, hours));
            }
        }
        if finance {
            data.traps.push((name.clone(), "month-end busy days", 0));
        }
        if let Some(day) = holiday {
            data.traps.push((
                name.clone(),
                "holiday week, then a normal one",
                START + day * DAY,
            ));
        }
        if let Some(day) = merge {
            data.traps.push((
                name.clone(),
                "mail merge over an afternoon",
                START + day * DAY,
            ));
        }
    }
    data.events.append(&mut g.events);
    data.events.sort_by_key(|e| e.ts);
}

/// A volume incident of `hours` from `start`.
fn volume(sender: &str, shape: &'static str, start: i64, hours: i64) -> Incident {
    Incident {
        sender: sender.to_owned(),
        shape,
        start,
        end: start + hours * HOUR,
        ip: None,
    }
}

/// One hour of a steady account: its rate, rounded up or down at random
/// (far less spread than a Poisson count), evenly spaced.
pub(crate) fn regular(g: &mut Gen, rate: f64, from: i64, name: &str, ip: &str) {
    let k = rate.floor() as i64 + i64::from(g.chance(rate.fract()));
    for j in 0..k {
        let t = from + j * HOUR / k.max(1) + g.int(0, 120);
        g.push(t, name, Tls::V1_2, ip, Outcome::Accepted);
    }
}

fn date_of(day: i64) -> NaiveDate {
    let start = chrono::DateTime::from_timestamp(START, 0)
        .map(|t| t.date_naive())
        .unwrap_or_default();
    start + Days::new(day as u64)
}

/// The last Monday-to-Friday day of its month.
fn last_weekday_of_month(date: NaiveDate) -> bool {
    let next = match date.weekday() {
        Weekday::Fri => date + Days::new(3),
        _ => date + Days::new(1),
    };
    date.weekday().number_from_monday() <= 5 && next.month() != date.month()
}
