//! Campaigns, added to a data set of `dataset::generate` (accounts and a
//! random stream of their own: the rest of the data set is unchanged):
//! one client address submitting as 6–20 accounts that never used it, 2–6
//! messages each within an hour (stolen passwords used in a batch), while
//! the owners keep sending from their own addresses. And what looks like
//! one:
//! - "office address move": every account of a domain moves to a new
//!   office address one morning (the old one stops);
//! - "new users of a shared relay": a webmail host that a third of the
//!   accounts have used for weeks, to which 4–8 accounts come for the
//!   first time within an hour (a department told to use webmail);
//! - the offices themselves: accounts of a domain share its address (NAT),
//!   and new hires start there.
#![allow(dead_code)]

use super::dataset::{DAY, Dataset, Gen, HOUR, Incident, START, scaled};
use smtp_auth_insight::event::{Outcome, Tls};

/// The shape's name in the evaluation.
pub const SHAPE: &str = "campaign (one address, 6-20 accounts)";
pub const MOVE: &str = "office address move";
pub const RELAY: &str = "new users of a shared relay";

struct Account {
    name: String,
    domain: usize,
    rate: f64,
    home: String,
    relay: bool,
    /// First day it sends (a new hire), and the day it starts using the
    /// relay when it is one of a department sent there.
    first_day: i64,
    relay_from: Option<i64>,
}

/// Adds the campaigns and their traps to `data`.
pub fn add(data: &mut Dataset, seed: u64, scale: f64) {
    let mut g = Gen::stream(seed, 0x2545_f491, 0xca3a_1617);
    let n = |base: f64| scaled(base, scale);
    let (days, warmup) = (data.days, data.warmup_days);
    let domains = n(8.0);
    let offices: Vec<String> = (0..domains).map(|_| g.ip(11)).collect();
    let relay = g.ip(13);
    let mut accounts = Vec::new();
    for i in 0..domains * 15 {
        let hire = i % 15 == 14;
        accounts.push(Account {
            name: format!(
                "{}{i}@c{}.example",
                if hire { "new" } else { "emp" },
                i % domains
            ),
            domain: i % domains,
            rate: g.range(0.3, 2.0),
            home: g.ip(12),
            relay: g.chance(0.33),
            first_day: if hire { g.int(warmup, days - 3) } else { 0 },
            relay_from: None,
        });
    }
    // Departments sent to the relay: 4-8 accounts that never used it, the
    // same morning.
    for _ in 0..n(3.0) {
        let day = g.int(warmup, days - 2);
        let (mut sent, size) = (0, g.int(4, 8));
        for a in accounts
            .iter_mut()
            .filter(|a| !a.relay && a.relay_from.is_none())
        {
            if sent < size && g.chance(0.3) {
                a.relay_from = Some(day);
                sent += 1;
            }
        }
        data.traps.push((relay.clone(), RELAY, START + day * DAY));
    }
    // The first domain moves to a new office address.
    let move_day = g.int(warmup, days - 2);
    let new_office = g.ip(11);
    data.traps
        .push((new_office.clone(), MOVE, START + move_day * DAY));
    for a in &accounts {
        for day in a.first_day..days {
            if day % 7 >= 5 {
                continue;
            }
            let office = match a.domain == 0 && day >= move_day {
                true => &new_office,
                false => &offices[a.domain],
            };
            for h in 8..17 {
                let k = g.poisson(a.rate);
                // Most from the office, some from a phone.
                g.spread_user(
                    k,
                    START + day * DAY + h * HOUR,
                    HOUR,
                    (&a.name, Tls::V1_3, office),
                    0.05,
                );
            }
            if g.chance(0.3) {
                let k = g.poisson(1.5);
                g.spread(
                    k,
                    START + day * DAY + 19 * HOUR,
                    3 * HOUR,
                    &a.name,
                    Tls::V1_3,
                    &a.home,
                );
            }
            let on_relay = a.relay || a.relay_from.is_some_and(|d| day >= d);
            if on_relay {
                // A department sent to the relay starts at 09:00 that day.
                let from = match a.relay_from == Some(day) {
                    true => START + day * DAY + 9 * HOUR,
                    false => START + day * DAY + 8 * HOUR,
                };
                let k = g.int(1, 3) as u64;
                let secs = if a.relay_from == Some(day) {
                    HOUR
                } else {
                    9 * HOUR
                };
                g.spread(k, from, secs, &a.name, Tls::V1_2, &relay);
            }
        }
    }
    // The campaigns: any hour of the scored days, accounts of any domain.
    for _ in 0..n(8.0) {
        let start = START + g.int(warmup, days - 2) * DAY + g.int(0, 23) * HOUR + g.int(0, 59) * 60;
        let attacker = g.ip(14);
        let k = g.int(6, 20) as usize;
        let mut victims: Vec<usize> = Vec::new();
        while victims.len() < k {
            let v = g.rng.below(accounts.len() as u64) as usize;
            if !victims.contains(&v) && accounts[v].first_day * DAY + START < start {
                victims.push(v);
            }
        }
        for v in victims {
            // A bot going through its list: each account within the first
            // ten minutes, its messages within the hour.
            let first = start + g.int(0, 600);
            let messages = g.int(2, 6);
            g.push(
                first,
                &accounts[v].name,
                Tls::V1_2,
                &attacker,
                Outcome::Accepted,
            );
            g.spread(
                (messages - 1) as u64,
                first,
                start + HOUR - first,
                &accounts[v].name,
                Tls::V1_2,
                &attacker,
            );
        }
        data.campaigns.push(Incident {
            sender: attacker.clone(),
            shape: SHAPE,
            start,
            end: start + HOUR,
            ip: Some(attacker),
        });
    }
    data.events.append(&mut g.events);
    data.events.sort_by_key(|e| e.ts);
}
