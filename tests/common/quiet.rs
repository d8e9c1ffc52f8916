//! Compromises that change nothing but the volume, added to a data set of
//! `dataset::generate` (accounts and a random stream of their own):
//!
//! - "steady run, same device": a steady machine account (1.5–3 messages
//!   an hour) sending 3–5× its rate for 12–24 hours from its own address,
//!   with its own TLS version: the device itself is compromised;
//! - "office run, same address": a person at 2–3 messages an hour sending
//!   5–6× that for 3–6 hours from the office address, 56–64 messages in
//!   all (a session hijacked on the office PC).
#![allow(dead_code)]

use super::dataset::{DAY, Dataset, Gen, HOUR, Incident, START, scaled};
use smtp_auth_insight::event::Tls;

pub const DEVICE: &str = "steady run, same device";
pub const DESK: &str = "office run, same address";

/// Adds the two shapes to `data`.
pub fn add(data: &mut Dataset, seed: u64, scale: f64) {
    let mut g = Gen::stream(seed, 0x6c07_8965, 0x1b87_3593);
    let n = |base: f64| scaled(base, scale);
    let (days, warmup) = (data.days, data.warmup_days);
    for i in 0..n(16.0) {
        let name = format!("device{i}@corp.example");
        let (rate, ip) = (g.range(1.5, 3.0), g.ip(3));
        let burn = (i % 2 == 0).then(|| {
            let at = START + g.int(warmup, days - 2) * DAY + g.int(0, 23) * HOUR;
            (at, g.int(12, 24), g.range(3.0, 5.0))
        });
        for h in 0..days * 24 {
            let t = START + h * HOUR;
            let factor = match burn {
                Some((at, hours, f)) if t >= at && t < at + hours * HOUR => f,
                _ => 1.0,
            };
            super::throttled::regular(&mut g, rate * factor, t, &name, &ip);
        }
        if let Some((start, hours, _)) = burn {
            data.incidents.push(Incident {
                sender: name,
                shape: DEVICE,
                start,
                end: start + hours * HOUR,
                ip: None,
            });
        }
    }
    for i in 0..n(24.0) {
        let name = format!("desk{i}@corp{}.example", i % 4);
        let (rate, ip) = (g.range(2.0, 3.0), g.ip(1));
        let run = (i % 3 == 0).then(|| {
            let day = g.int(warmup, days - 2);
            (day, g.int(3, 6), g.int(56, 64) as u64)
        });
        for day in 0..days {
            if day % 7 >= 5 {
                continue;
            }
            for h in 8..17 {
                let k = g.poisson(rate);
                g.spread(k, START + day * DAY + h * HOUR, HOUR, &name, Tls::V1_3, &ip);
            }
            if let Some((_, hours, total)) = run.filter(|r| r.0 == day) {
                let start = START + day * DAY + g.int(9, 16 - hours.min(7)) * HOUR;
                g.spread(total, start, hours * HOUR, &name, Tls::V1_3, &ip);
                data.incidents.push(Incident {
                    sender: name.clone(),
                    shape: DESK,
                    start,
                    end: start + hours * HOUR,
                    ip: None,
                });
            }
        }
    }
    data.events.append(&mut g.events);
    data.events.sort_by_key(|e| e.ts);
}
